//! GStreamer ingest: any container/codec the installed plug-ins decode → sampled I420 video frames
//! and 16 kHz mono f32 audio, each with its presentation timestamp.
//!
//! ```text
//! uridecodebin ─ video/x-raw → queue → [sampling probe] → videoconvert → I420 → appsink ┐
//!              └ audio/x-raw → queue → audioconvert → audioresample → F32 16k → appsink ┤→ bounded channel → consumer
//! ```
//!
//! The sampling probe drops the frames between samples before conversion; ten a second it first
//! reduces one to a [`Glimpse`] (luma means for the loop search, and a luma thumbnail in which
//! lip-sync follows the mouth) and sends it down the same channel, so the consumer sees glimpses
//! and sampled frames in pts order.
//!
//! The appsinks run with `sync=false` and a small `max-buffers` and never drop: their callbacks
//! block on a bounded crossbeam channel, so a slow consumer back-pressures the decoders instead of
//! memory growing with session length. The consumer also polls the bus, turns errors into
//! [`IngestError`]s that name the input and the cause, and gives up when nothing has arrived for
//! [`IngestConfig::stall_timeout`].
//!
//! Files: this one holds the configuration, the items and errors, and [`run`]; `input.rs` the
//! media inputs; `spool.rs` the growing spool file of a live session; `links.rs` the video and
//! audio branches; `guard.rs` the limits on what a stream may make the decoders do; `bus.rs` bus
//! errors and stable codec and container names.
//!
//! Why this file is still long: [`run`]'s bus loop and the bounded hand-over between GStreamer's
//! streaming threads and the caller (items, errors, back-pressure) belong together.

mod bus;
mod guard;
mod input;
mod links;
pub mod spool;

use bus::*;
use guard::*;
use links::*;

pub use input::{MediaInput, unsafe_char};
pub use spool::Spool;

use crate::media::{
    AUDIO_RATE, AudioChunk, AudioStreamInfo, Glimpse, Pts, VideoFrame, VideoStreamInfo, YuvMatrix,
};
use crossbeam_channel::{Receiver, Sender, bounded};
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_video as gst_video;
use gstreamer_video::prelude::VideoFrameExt;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How video frames are sampled before they reach the analysers.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum Sampling {
    /// Decode every frame, keep one frame per `every_s` seconds (converted only when kept).
    Interval { every_s: f64 },
    /// Feed only keyframes to the decoder: 10–20× cheaper, spacing set by the encoder's GOP.
    Keyframes,
    /// Keep every decoded frame.
    All,
}

impl Default for Sampling {
    fn default() -> Self {
        Sampling::Interval { every_s: 1.0 }
    }
}

impl std::str::FromStr for Sampling {
    type Err = String;
    /// `all`, `keyframes`, or an interval in seconds such as `1`, `0.5s`, `2s`.
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "all" => Ok(Sampling::All),
            "keyframes" | "key" => Ok(Sampling::Keyframes),
            other => {
                let num = other.strip_suffix('s').unwrap_or(other);
                match num.parse::<f64>() {
                    Ok(v) if v.is_finite() && v > 0.0 && v <= 60.0 => {
                        Ok(Sampling::Interval { every_s: v })
                    }
                    _ => Err(format!(
                        "invalid sampling '{other}': use 'all', 'keyframes' or an interval in seconds between 0 and 60 such as '1s'"
                    )),
                }
            }
        }
    }
}

/// Ingest settings.
#[derive(Debug, Clone)]
pub struct IngestConfig {
    /// Video sampling; default one frame per second.
    pub sampling: Sampling,
    /// Capacity of the channel between the GStreamer streaming threads and the consumer
    /// (items; full ⇒ the streaming thread blocks). Default 8.
    pub queue_capacity: usize,
    /// Give up when no sample or state change has arrived for this long. Default 30 s.
    pub stall_timeout: Duration,
    /// Set by another thread to stop decoding (server shutdown, an interrupted session):
    /// `run` then returns [`IngestError::Cancelled`] within ~50 ms.
    pub cancel: Option<Arc<std::sync::atomic::AtomicBool>>,
    /// Whether an `http(s)://` source follows redirects. Default true; a server pulling from an
    /// allow-listed host turns it off so a redirect cannot lead it elsewhere.
    pub follow_redirects: bool,
    /// A stream whose timestamps jump forward by more than this is cut at the jump (nothing
    /// after it is decoded) and the jump reported: analysis time must follow the bytes, not
    /// what the timestamps claim. Default 30 s (Opus DTX or lost packets leave gaps of well
    /// under a second).
    pub max_gap: Duration,
    /// Media timestamped beyond this is not decoded (and the cut reported). Default 6 h.
    pub max_duration: Duration,
    /// Video frames of more pixels than this are refused before they are decoded (as the
    /// container declares them) or after the first one (as the bitstream does): a 500 KB file
    /// of 16 376 × 16 376 frames would otherwise take 400 MB per frame. Default 4096 × 4096.
    pub max_frame_pixels: u64,
    /// Threads of the video decoder (libav's `max-threads`, libvpx's `threads`, dav1d's
    /// `n-threads`); 0 lets the decoder choose (one per core). `None` chooses by sampling: see
    /// [`IngestConfig::video_decoder_threads`].
    pub decoder_threads: Option<u32>,
}

impl IngestConfig {
    /// The video decoder's thread count for this run. Frame threading makes libavcodec spend
    /// about a quarter more CPU for the same frames (BENCHMARKS.md § Decoder threading), so it is
    /// worth it only where the decoder is the bottleneck and cores would otherwise idle: one
    /// session decoding every frame (`Interval`, `All`) on an otherwise idle machine. With
    /// keyframes the decoder sees one frame in dozens and the analysers fill the cores, so it
    /// decodes on one thread. Callers running several sessions at once (rescore with
    /// `--jobs` > 1, fleet workers, the server) set 1: their cores are already busy.
    pub fn video_decoder_threads(&self) -> u32 {
        self.decoder_threads.unwrap_or(match self.sampling {
            Sampling::Keyframes => 1,
            Sampling::Interval { .. } | Sampling::All => 0,
        })
    }
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            sampling: Sampling::default(),
            queue_capacity: 8,
            stall_timeout: Duration::from_secs(30),
            cancel: None,
            follow_redirects: true,
            max_gap: Duration::from_secs(30),
            max_duration: Duration::from_secs(6 * 3600),
            max_frame_pixels: 4096 * 4096,
            decoder_threads: None,
        }
    }
}

/// One decoded item, in stream order per kind.
#[derive(Debug)]
pub enum Item {
    Video(VideoFrame),
    Audio(AudioChunk),
    /// A frame decoded between samples, reduced for the loop search (sampling by interval only:
    /// one every [`GLIMPSE_STEP_NS`]; in pts order with the sampled frames).
    Glimpse(Glimpse),
}

/// Spacing of [`Item::Glimpse`]s: a tenth of a second.
pub const GLIMPSE_STEP_NS: u64 = 100_000_000;

/// What was found in the input once it has been decoded to the end.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct MediaSummary {
    /// Demuxer used (e.g. `qtdemux`), null for elementary streams.
    pub container: Option<String>,
    pub video: Option<VideoStreamInfo>,
    pub audio: Option<AudioStreamInfo>,
    /// Where a stream was cut: a timestamp jump or the duration limit (reported as events).
    #[serde(skip)]
    pub cuts: Vec<Cut>,
    /// Compressed bytes the demuxer handed to the decoders (all streams).
    #[serde(skip)]
    pub demuxed_bytes: Option<u64>,
    /// The picture came from an image decoder (PNG, JPEG, …): a photo, not a recording.
    #[serde(skip)]
    pub image_decoder: Option<String>,
}

/// A stream cut short because of its timestamps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cut {
    pub stream: StreamKind,
    /// End of the last buffer kept (stream time).
    pub at: Pts,
    /// Timestamp of the first buffer dropped.
    pub claimed: Pts,
    pub reason: CutReason,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    Video,
    Audio,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CutReason {
    /// The timestamps jump forward by more than `max_gap`.
    TimestampJump,
    /// The timestamps pass `max_duration`.
    DurationLimit,
}

/// Why the input could not be ingested. Every variant names the input; all map to exit code 3.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("{input}: no such file")]
    NotFound { input: String },
    #[error("{input}: {reason}")]
    BadInput { input: String, reason: String },
    #[error(
        "{input}: no installed GStreamer plug-in can handle {what}; install the package that provides it (scripts/setup installs the base, good, bad, ugly and libav sets)"
    )]
    MissingPlugin { input: String, what: String },
    #[error("{input}: cannot be read or decoded: {reason}")]
    Unreadable { input: String, reason: String },
    #[error("{input}: contains no decodable audio or video stream")]
    NoStreams { input: String },
    #[error("{input}: no progress for {secs} s while decoding; giving up")]
    Stalled { input: String, secs: u64 },
    #[error("GStreamer could not be initialised: {0}")]
    Init(#[source] gst::glib::Error),
    #[error("{input}: GStreamer element '{element}' is missing; run scripts/setup")]
    MissingElement { input: String, element: String },
    #[error("{input}: decoding was stopped")]
    Cancelled { input: String },
}

/// Initialises GStreamer (idempotent).
fn init() -> Result<(), IngestError> {
    gst::init().map_err(IngestError::Init)
}

/// Why [`run`] stopped: the media (an [`IngestError`]), or the consumer's own error, returned
/// as the consumer gave it.
#[derive(Debug, thiserror::Error)]
pub enum RunError<E> {
    #[error(transparent)]
    Ingest(#[from] IngestError),
    #[error("{0}")]
    Consumer(E),
}

impl From<RunError<std::convert::Infallible>> for IngestError {
    fn from(e: RunError<std::convert::Infallible>) -> Self {
        match e {
            RunError::Ingest(e) => e,
            RunError::Consumer(never) => match never {},
        }
    }
}

/// Shared between the pad-added handler (streaming thread) and the consumer.
#[derive(Default)]
struct Found {
    video: Option<VideoStreamInfo>,
    audio: Option<AudioStreamInfo>,
    video_decoder: Option<String>,
    audio_decoder: Option<String>,
    demuxer: Option<String>,
    link_error: Option<String>,
    demuxed_bytes: u64,
    cuts: Vec<Cut>,
    image_decoder: Option<String>,
    /// Video frame size beyond `max_frame_pixels`, once seen.
    oversize: Option<(u64, u64)>,
}

/// Stops the pipeline when the ingest ends, in the only safe order: first drop the receiver so
/// any streaming thread blocked on a full channel wakes up with an error, then go to `Null`
/// (which unblocks a feeder waiting in `push_buffer`), then join the feeder.
struct Running {
    rx: Option<Receiver<Item>>,
    pipeline: gst::Pipeline,
    feeder: Option<Arc<Feeder>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.rx.take();
        if let Some(f) = &self.feeder {
            f.stop.store(true, Ordering::Relaxed);
        }
        let _ = self.pipeline.set_state(gst::State::Null);
        if let Some(f) = &self.feeder
            && let Some(t) = f.thread.lock().unwrap_or_else(|p| p.into_inner()).take()
        {
            let _ = t.join();
        }
    }
}

/// Feeds a growing [`Spool`] into uridecodebin's `appsrc`, never past the durable length.
struct Feeder {
    spool: Arc<Spool>,
    stop: std::sync::atomic::AtomicBool,
    /// Set while the feeder has read everything and waits for the client: the decoder is not
    /// stalled then, the bot is (the server applies its own idle timeout).
    waiting_for_input: std::sync::atomic::AtomicBool,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// Bytes handed to `appsrc` per buffer, and the most it queues before `push_buffer` blocks.
const FEED_CHUNK: usize = 64 * 1024;
const FEED_QUEUE_BYTES: u64 = 1 << 20;

impl Feeder {
    fn start(self: &Arc<Self>, src: gst_app::AppSrc) {
        src.set_stream_type(gst_app::AppStreamType::Stream);
        src.set_max_bytes(FEED_QUEUE_BYTES);
        src.set_property("block", true);
        let me = self.clone();
        let handle = std::thread::Builder::new()
            .name("vigil-feed".into())
            .spawn(move || me.feed(&src))
            .expect("spawning the spool feeder thread");
        *self.thread.lock().unwrap_or_else(|p| p.into_inner()) = Some(handle);
    }

    fn feed(&self, src: &gst_app::AppSrc) {
        use spool::Wait;
        use std::io::{Read, Seek, SeekFrom};
        let fail = |msg: String| {
            gst::element_error!(src, gst::ResourceError::Read, ("{}", msg));
        };
        let mut file = match std::fs::File::open(self.spool.path()) {
            Ok(f) => f,
            Err(e) => return fail(format!("cannot open the received media: {e}")),
        };
        let mut offset = 0u64;
        let mut buf = vec![0u8; FEED_CHUNK];
        while !self.stop.load(Ordering::Relaxed) {
            match self.spool.wait_beyond(offset, Duration::from_millis(200)) {
                Wait::Data(durable) => {
                    self.waiting_for_input.store(false, Ordering::Relaxed);
                    let want = (durable - offset).min(FEED_CHUNK as u64) as usize;
                    let read = file
                        .seek(SeekFrom::Start(offset))
                        .and_then(|_| file.read(&mut buf[..want]));
                    match read {
                        Ok(0) => return fail("the received media is shorter than recorded".into()),
                        Ok(n) => {
                            offset += n as u64;
                            self.spool.note_read(offset);
                            let buffer = gst::Buffer::from_slice(buf[..n].to_vec());
                            if src.push_buffer(buffer).is_err() {
                                return; // flushing or stopped: the pipeline is shutting down
                            }
                        }
                        Err(e) => return fail(format!("cannot read the received media: {e}")),
                    }
                }
                Wait::Idle => self.waiting_for_input.store(true, Ordering::Relaxed),
                Wait::Ended => {
                    self.waiting_for_input.store(false, Ordering::Relaxed);
                    let _ = src.end_of_stream();
                    return;
                }
                Wait::Aborted(reason) => return fail(reason),
            }
        }
    }
}

/// Decodes `input` to the end, handing every item to `on_item` as it arrives. Returns what the
/// input contained. `on_item` runs on the calling thread; while it works, decoding waits.
pub fn run<F, E>(
    input: &MediaInput,
    cfg: &IngestConfig,
    mut on_item: F,
) -> Result<MediaSummary, RunError<E>>
where
    F: FnMut(Item) -> Result<(), E>,
{
    init()?;
    input.check_exists()?;
    let name = input.display_name();

    let (tx, rx) = bounded::<Item>(cfg.queue_capacity.max(1));
    let pipeline = gst::Pipeline::new();
    let found = Arc::new(Mutex::new(Found::default()));
    let feeder = build(&pipeline, input, cfg, &name, &found, tx)?;
    let mut running = Running {
        rx: Some(rx),
        pipeline: pipeline.clone(),
        feeder: feeder.clone(),
    };
    let bus = pipeline.bus().expect("a pipeline has a bus");
    if pipeline.set_state(gst::State::Playing).is_err() {
        // The cause is on the bus.
        let err = drain_bus_for_error(&bus, &name);
        return Err(err
            .unwrap_or(IngestError::Unreadable {
                input: name,
                reason: "the pipeline refused to start".into(),
            })
            .into());
    }
    let rx = running
        .rx
        .as_ref()
        .expect("receiver present until drop")
        .clone();
    let pumped = pump(
        &rx,
        &bus,
        cfg,
        &name,
        &found,
        feeder.as_deref(),
        &mut on_item,
    )?;
    drop(rx);
    drop(running.rx.take());
    drop(running);
    summarise(&found, cfg, name, pumped).map_err(RunError::from)
}

/// Adds the decoder to `pipeline`, wires its dynamic pads to `tx` and, for a spool, its feeder.
fn build(
    pipeline: &gst::Pipeline,
    input: &MediaInput,
    cfg: &IngestConfig,
    name: &str,
    found: &Arc<Mutex<Found>>,
    tx: Sender<Item>,
) -> Result<Option<Arc<Feeder>>, IngestError> {
    let decodebin = make("uridecodebin", name)?;
    decodebin.set_property("uri", input.uri());
    pipeline
        .add(&decodebin)
        .expect("fresh pipeline accepts an element");
    watch_elements(pipeline, cfg, found);

    let feeder = match input {
        MediaInput::Spool(spool) => {
            let feeder = Arc::new(Feeder {
                spool: spool.clone(),
                stop: false.into(),
                waiting_for_input: false.into(),
                thread: Mutex::new(None),
            });
            let f = feeder.clone();
            decodebin.connect("source-setup", false, move |args| {
                let src = args[1].get::<gst::Element>().ok()?;
                if let Ok(src) = src.downcast::<gst_app::AppSrc>() {
                    f.start(src);
                }
                None
            });
            Some(feeder)
        }
        MediaInput::Uri(_) if !cfg.follow_redirects => {
            decodebin.connect("source-setup", false, |args| {
                let src = args[1].get::<gst::Element>().ok()?;
                if src.find_property("automatic-redirect").is_some() {
                    src.set_property("automatic-redirect", false);
                }
                None
            });
            None
        }
        _ => None,
    };

    let sampling = cfg.sampling;
    let found = found.clone();
    let pipeline_weak = pipeline.downgrade();
    let name = name.to_string();
    decodebin.connect_pad_added(move |_, pad| {
        let Some(pipeline) = pipeline_weak.upgrade() else {
            return;
        };
        if let Err(e) = on_pad_added(&pipeline, pad, &found, &tx, sampling) {
            tracing::warn!(input = %name, "could not link decoded stream: {e}");
            found.lock().unwrap().link_error = Some(e);
        }
    });
    Ok(feeder)
}

/// What the decoding loop saw besides the items it handed on.
struct Pumped {
    got_items: bool,
    missing_plugin: Option<String>,
}

/// Hands decoded items to `on_item` and reads the bus until the end of the stream, an error, a
/// cancel or a stall.
fn pump<F, E>(
    rx: &Receiver<Item>,
    bus: &gst::Bus,
    cfg: &IngestConfig,
    name: &str,
    found: &Mutex<Found>,
    feeder: Option<&Feeder>,
    on_item: &mut F,
) -> Result<Pumped, RunError<E>>
where
    F: FnMut(Item) -> Result<(), E>,
{
    let mut last_progress = Instant::now();
    let mut missing_plugin: Option<String> = None;
    let mut got_items = false;
    let mut eos = false;
    loop {
        if let Ok(item) = rx.recv_timeout(Duration::from_millis(50)) {
            got_items = true;
            on_item(item).map_err(RunError::Consumer)?;
            // After the consumer's own work: only time spent waiting for GStreamer counts.
            last_progress = Instant::now();
        }
        while let Some(msg) = bus.pop() {
            use gst::MessageView;
            match msg.view() {
                MessageView::Eos(_) => eos = true,
                MessageView::Error(err) => {
                    // Refusing an oversized stream can make elements fail: ours is the cause.
                    if let Some(e) = oversize_error(found, cfg, name) {
                        return Err(e.into());
                    }
                    return Err(classify_error(
                        name,
                        err.error(),
                        err.debug(),
                        missing_plugin.take(),
                    )
                    .into());
                }
                MessageView::Warning(w) => {
                    tracing::warn!(input = %name, "GStreamer warning: {}", w.error());
                }
                MessageView::Element(el) => {
                    if let Some(s) = el.structure()
                        && s.name() == "missing-plugin"
                    {
                        missing_plugin = Some(describe_missing_plugin(s));
                    }
                }
                MessageView::StateChanged(_) | MessageView::StreamStart(_) => {
                    last_progress = Instant::now();
                }
                _ => {}
            }
        }
        if eos {
            for item in rx.try_iter() {
                got_items = true;
                on_item(item).map_err(RunError::Consumer)?;
            }
            return Ok(Pumped {
                got_items,
                missing_plugin,
            });
        }
        if cfg
            .cancel
            .as_ref()
            .is_some_and(|c| c.load(Ordering::Relaxed))
        {
            return Err(IngestError::Cancelled {
                input: name.to_string(),
            }
            .into());
        }
        if feeder.is_some_and(|f| f.waiting_for_input.load(Ordering::Relaxed)) {
            last_progress = Instant::now();
        }
        if last_progress.elapsed() > cfg.stall_timeout {
            return Err(IngestError::Stalled {
                input: name.to_string(),
                secs: cfg.stall_timeout.as_secs(),
            }
            .into());
        }
    }
}

/// What the input contained, or why what was decoded does not count.
fn summarise(
    found: &Mutex<Found>,
    cfg: &IngestConfig,
    name: String,
    pumped: Pumped,
) -> Result<MediaSummary, IngestError> {
    if let Some(e) = oversize_error(found, cfg, &name) {
        return Err(e);
    }
    let found = found.lock().unwrap();
    if let Some(e) = &found.link_error {
        return Err(IngestError::Unreadable {
            input: name,
            reason: e.clone(),
        });
    }
    // A stream the installed plug-ins cannot decode is an installation problem, not a
    // recording without that stream: fail rather than report `no_video`/`no_audio`.
    if let Some(what) = pumped.missing_plugin {
        return Err(IngestError::MissingPlugin { input: name, what });
    }
    if !pumped.got_items {
        return Err(IngestError::NoStreams { input: name });
    }
    let mut video = found.video.clone();
    if let Some(v) = video.as_mut() {
        v.codec = found.video_decoder.as_deref().map(codec_name);
    }
    let mut audio = found.audio.clone();
    if let Some(a) = audio.as_mut() {
        a.codec = found.audio_decoder.as_deref().map(codec_name);
    }
    Ok(MediaSummary {
        container: found.demuxer.as_deref().map(container_name),
        video,
        audio,
        cuts: found.cuts.clone(),
        demuxed_bytes: found.demuxer.is_some().then_some(found.demuxed_bytes),
        image_decoder: found.image_decoder.clone(),
    })
}

/// The first decoded picture of an image or video (all frames decoded until then; for reference
/// photos and tests).
pub fn first_video_frame(input: &MediaInput) -> Result<Option<VideoFrame>, IngestError> {
    let mut frame = None;
    let cfg = IngestConfig {
        sampling: Sampling::All,
        ..IngestConfig::default()
    };
    run(input, &cfg, |item| {
        if let Item::Video(f) = item {
            frame.get_or_insert(f);
        }
        Ok::<_, std::convert::Infallible>(())
    })?;
    Ok(frame)
}

/// All of an input's audio as 16 kHz mono samples (for short clips: tests and benches).
pub fn decode_audio(input: &MediaInput) -> Result<Vec<f32>, IngestError> {
    let mut samples = Vec::new();
    run(input, &IngestConfig::default(), |item| {
        if let Item::Audio(a) = item {
            samples.extend(a.samples);
        }
        Ok(())
    })?;
    Ok(samples)
}

fn make(factory: &str, input: &str) -> Result<gst::Element, IngestError> {
    gst::ElementFactory::make(factory)
        .build()
        .map_err(|_| IngestError::MissingElement {
            input: input.to_string(),
            element: factory.to_string(),
        })
}
