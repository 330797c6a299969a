//! GStreamer ingest: any container/codec the installed plug-ins decode → sampled I420 video frames
//! and 16 kHz mono f32 audio, each with its presentation timestamp.
//!
//! ```text
//! uridecodebin ─ video/x-raw → queue → [sampling probe] → videoconvert → I420 → appsink ┐
//!              └ audio/x-raw → queue → audioconvert → audioresample → F32 16k → appsink ┤→ bounded channel → consumer
//! ```
//!
//! The appsinks run with `sync=false` and a small `max-buffers` and never drop: their callbacks
//! block on a bounded crossbeam channel, so a slow consumer back-pressures the decoders instead of
//! memory growing with session length. The consumer also polls the bus, turns errors into
//! [`IngestError`]s that name the input and the cause, and gives up when nothing has arrived for
//! [`IngestConfig::stall_timeout`].

mod input;
pub mod spool;

pub use input::{MediaInput, unsafe_char};
pub use spool::Spool;

use crate::media::{
    AUDIO_RATE, AudioChunk, AudioStreamInfo, Pts, VideoFrame, VideoStreamInfo, YuvMatrix,
};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, bounded};
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
}

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

/// Watches one stream's compressed buffers in front of its decoder: counts their bytes and
/// cuts the stream at a timestamp jump or past the duration limit.
struct StreamGuard {
    stream: StreamKind,
    max_gap: u64,
    max_duration: u64,
    last_end: Option<u64>,
    cut: bool,
}

impl StreamGuard {
    /// Whether the buffer is kept; records a cut in `found` the first time one is dropped.
    fn admit(&mut self, buffer: &gst::BufferRef, found: &Mutex<Found>) -> bool {
        let mut f = found.lock().unwrap_or_else(|p| p.into_inner());
        f.demuxed_bytes += buffer.size() as u64;
        if self.cut {
            return false;
        }
        let Some(pts) = buffer.pts().map(|t| t.nseconds()) else {
            return true;
        };
        let at = self.last_end.unwrap_or(0);
        let reason = if self.last_end.is_some_and(|end| pts > end + self.max_gap) {
            Some(CutReason::TimestampJump)
        } else if pts > self.max_duration {
            Some(CutReason::DurationLimit)
        } else {
            None
        };
        if let Some(reason) = reason {
            self.cut = true;
            f.cuts.push(Cut {
                stream: self.stream,
                at: Pts(at),
                claimed: Pts(pts),
                reason,
            });
            return false;
        }
        let end = pts + buffer.duration().map_or(0, |d| d.nseconds());
        self.last_end = Some(self.last_end.map_or(end, |e| e.max(end)));
        true
    }

    /// Whether a GAP event (start, duration) is passed on: not once the stream is cut; one that
    /// reaches beyond the gap a jump would be (or past the duration limit) cuts the stream.
    fn admit_gap(
        &mut self,
        (start, duration): (gst::ClockTime, Option<gst::ClockTime>),
        found: &Mutex<Found>,
    ) -> bool {
        if self.cut {
            return false;
        }
        let end = start.nseconds() + duration.map_or(0, |d| d.nseconds());
        let reason = if end > self.last_end.unwrap_or(0) + self.max_gap {
            CutReason::TimestampJump
        } else if end > self.max_duration {
            CutReason::DurationLimit
        } else {
            return true;
        };
        self.cut = true;
        found
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .cuts
            .push(Cut {
                stream: self.stream,
                at: Pts(self.last_end.unwrap_or(0)),
                claimed: Pts(end),
                reason,
            });
        false
    }
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
    let decodebin = make("uridecodebin", &name)?;
    decodebin.set_property("uri", input.uri());
    pipeline
        .add(&decodebin)
        .expect("fresh pipeline accepts an element");

    let found = Arc::new(Mutex::new(Found::default()));
    watch_elements(&pipeline, cfg, &found);

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
    {
        let found = found.clone();
        let pipeline_weak = pipeline.downgrade();
        let name = name.clone();
        decodebin.connect_pad_added(move |_, pad| {
            let Some(pipeline) = pipeline_weak.upgrade() else {
                return;
            };
            if let Err(e) = on_pad_added(&pipeline, pad, &found, &tx, sampling) {
                tracing::warn!(input = %name, "could not link decoded stream: {e}");
                found.lock().unwrap().link_error = Some(e);
            }
        });
    }

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
    let mut last_progress = Instant::now();
    let mut missing_plugin: Option<String> = None;
    let mut got_items = false;
    let mut eos = false;
    loop {
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(item) => {
                got_items = true;
                on_item(item).map_err(RunError::Consumer)?;
                // After the consumer's own work: only time spent waiting for GStreamer counts.
                last_progress = Instant::now();
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {}
        }
        while let Some(msg) = bus.pop() {
            use gst::MessageView;
            match msg.view() {
                MessageView::Eos(_) => eos = true,
                MessageView::Error(err) => {
                    // Refusing an oversized stream can make elements fail: ours is the cause.
                    if let Some(e) = oversize_error(&found, cfg, &name) {
                        return Err(e.into());
                    }
                    return Err(classify_error(
                        &name,
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
            break;
        }
        if cfg
            .cancel
            .as_ref()
            .is_some_and(|c| c.load(Ordering::Relaxed))
        {
            return Err(IngestError::Cancelled { input: name }.into());
        }
        if feeder
            .as_ref()
            .is_some_and(|f| f.waiting_for_input.load(Ordering::Relaxed))
        {
            last_progress = Instant::now();
        }
        if last_progress.elapsed() > cfg.stall_timeout {
            return Err(IngestError::Stalled {
                input: name,
                secs: cfg.stall_timeout.as_secs(),
            }
            .into());
        }
    }
    drop(rx);
    drop(running.rx.take());
    drop(running);

    if let Some(e) = oversize_error(&found, cfg, &name) {
        return Err(e.into());
    }
    let found = found.lock().unwrap();
    if let Some(e) = &found.link_error {
        return Err(IngestError::Unreadable {
            input: name,
            reason: e.clone(),
        }
        .into());
    }
    // A stream the installed plug-ins cannot decode is an installation problem, not a
    // recording without that stream: fail rather than report `no_video`/`no_audio`.
    if let Some(what) = missing_plugin {
        return Err(IngestError::MissingPlugin { input: name, what }.into());
    }
    if !got_items {
        return Err(IngestError::NoStreams { input: name }.into());
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

/// Sets a video decoder's thread count under whichever name its plug-in gives it (decoders
/// without one are left as they are).
fn set_decoder_threads(decoder: &gst::Element, threads: u32) {
    for name in ["max-threads", "threads", "n-threads"] {
        if decoder.find_property(name).is_some() {
            decoder.set_property_from_str(name, &threads.to_string());
            return;
        }
    }
}

/// Records which demuxer/decoders uridecodebin picked (stable names for the report); in front of
/// every decoder a [`StreamGuard`] counts the compressed bytes and cuts the stream at a
/// timestamp jump, and in keyframes mode delta units are dropped before the video decoder so it
/// never decodes them.
fn watch_elements(pipeline: &gst::Pipeline, cfg: &IngestConfig, found: &Arc<Mutex<Found>>) {
    let found = found.clone();
    let (sampling, max_gap, max_duration) = (cfg.sampling, cfg.max_gap, cfg.max_duration);
    let max_pixels = cfg.max_frame_pixels;
    let decoder_threads = cfg.video_decoder_threads();
    pipeline.connect_deep_element_added(move |_, _, element| {
        let Some(factory) = element.factory() else {
            return;
        };
        let klass = factory.klass();
        let fname = factory.name().to_string();
        let stream = if klass.contains("Demuxer") {
            let mut f = found.lock().unwrap();
            if f.demuxer.is_none() {
                f.demuxer = Some(fname);
            }
            return;
        } else if klass.contains("Decoder") && klass.contains("Image") {
            found.lock().unwrap().image_decoder.get_or_insert(fname);
            return;
        } else if klass.contains("Decoder") && klass.contains("Video") {
            set_decoder_threads(element, decoder_threads);
            StreamKind::Video
        } else if klass.contains("Decoder") && klass.contains("Audio") {
            StreamKind::Audio
        } else {
            return;
        };
        {
            let mut f = found.lock().unwrap();
            let slot = match stream {
                StreamKind::Video => &mut f.video_decoder,
                StreamKind::Audio => &mut f.audio_decoder,
            };
            if slot.is_none() {
                *slot = Some(fname);
            }
        }
        let Some(sink) = element.static_pad("sink") else {
            return;
        };
        let guard = Mutex::new(StreamGuard {
            stream,
            max_gap: max_gap.as_nanos() as u64,
            max_duration: max_duration.as_nanos() as u64,
            last_end: None,
            cut: false,
        });
        let skip_deltas = stream == StreamKind::Video && sampling == Sampling::Keyframes;
        if stream == StreamKind::Video {
            guard_decoder_output(element, max_pixels, found.clone());
        }
        let found = found.clone();
        let probe = gst::PadProbeType::BUFFER | gst::PadProbeType::EVENT_DOWNSTREAM;
        sink.add_probe(probe, move |_, info| {
            let mut g = guard.lock().unwrap_or_else(|p| p.into_inner());
            if stream == StreamKind::Video && oversize_caps(info, max_pixels, &found) {
                g.cut = true;
            }
            // Demuxers keep sparse streams in step with GAP events: one across a jump would
            // make the decoder (or audiorate) fill the whole claimed gap.
            if let Some(gst::PadProbeData::Event(e)) = &info.data {
                return match e.view() {
                    gst::EventView::Gap(gap) if !g.admit_gap(gap.get(), &found) => {
                        // As in `drop_buffer`: take it and answer `Handled`.
                        drop(info.take_event());
                        gst::PadProbeReturn::Handled
                    }
                    _ => gst::PadProbeReturn::Ok,
                };
            }
            let Some(b) = info.buffer() else {
                return gst::PadProbeReturn::Ok;
            };
            let keep = g.admit(b, &found)
                && !(skip_deltas && b.flags().contains(gst::BufferFlags::DELTA_UNIT));
            if keep {
                gst::PadProbeReturn::Ok
            } else {
                drop_buffer(info)
            }
        });
    });
}

fn oversize_error(found: &Mutex<Found>, cfg: &IngestConfig, name: &str) -> Option<IngestError> {
    let (w, h) = found.lock().unwrap_or_else(|p| p.into_inner()).oversize?;
    Some(IngestError::BadInput {
        input: name.to_owned(),
        reason: format!(
            "video frames of {w}×{h} pixels exceed the limit of {} pixels; refused before decoding them",
            cfg.max_frame_pixels
        ),
    })
}

/// For a video CAPS event beyond `max_pixels`: records the size and answers true (the stream is
/// then refused).
fn oversize_caps(info: &gst::PadProbeInfo, max_pixels: u64, found: &Mutex<Found>) -> bool {
    let Some(gst::PadProbeData::Event(e)) = &info.data else {
        return false;
    };
    let gst::EventView::Caps(c) = e.view() else {
        return false;
    };
    let Some(st) = c.caps().structure(0) else {
        return false;
    };
    let dim = |k: &str| st.get::<i32>(k).ok().map(|v| v.max(0) as u64);
    match (dim("width"), dim("height")) {
        (Some(w), Some(h)) if w * h > max_pixels => {
            found
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .oversize
                .get_or_insert((w, h));
            true
        }
        _ => false,
    }
}

/// Refuses everything after an oversized video CAPS event on the decoder's output (the
/// bitstream's own size, when the container understated it).
fn guard_decoder_output(element: &gst::Element, max_pixels: u64, found: Arc<Mutex<Found>>) {
    let Some(src) = element.static_pad("src") else {
        return;
    };
    let refused = std::sync::atomic::AtomicBool::new(false);
    let probe = gst::PadProbeType::BUFFER | gst::PadProbeType::EVENT_DOWNSTREAM;
    src.add_probe(probe, move |_, info| {
        if oversize_caps(info, max_pixels, &found) {
            refused.store(true, Ordering::Relaxed);
        }
        if refused.load(Ordering::Relaxed) && info.buffer().is_some() {
            return drop_buffer(info);
        }
        gst::PadProbeReturn::Ok
    });
}

/// Discards the probed buffer. Taking it and answering `Handled` is the documented equivalent of
/// `Drop`; returning `Drop` from a probe on a decoder's sink pad made GStreamer unref a null
/// buffer (a `gst_mini_object_unref` critical per dropped frame) with gstreamer-rs 0.25.
fn drop_buffer(info: &mut gst::PadProbeInfo) -> gst::PadProbeReturn {
    drop(info.take_buffer());
    gst::PadProbeReturn::Handled
}

fn on_pad_added(
    pipeline: &gst::Pipeline,
    pad: &gst::Pad,
    found: &Arc<Mutex<Found>>,
    tx: &Sender<Item>,
    sampling: Sampling,
) -> Result<(), String> {
    let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
    let Some(s) = caps.structure(0) else {
        return link_fakesink(pipeline, pad);
    };
    let media = s.name().to_string();
    let mut f = found.lock().unwrap();
    if media.starts_with("video/") && f.video.is_none() {
        let width = s.get::<i32>("width").unwrap_or(0).max(0) as u32;
        let height = s.get::<i32>("height").unwrap_or(0).max(0) as u32;
        let fps = s
            .get::<gst::Fraction>("framerate")
            .ok()
            .filter(|f| f.numer() > 0 && f.denom() > 0)
            .map(|f| f.numer() as f64 / f.denom() as f64);
        f.video = Some(VideoStreamInfo {
            codec: None,
            width,
            height,
            fps,
        });
        drop(f);
        link_video(pipeline, pad, tx.clone(), sampling)
    } else if media.starts_with("audio/") && f.audio.is_none() {
        f.audio = Some(AudioStreamInfo {
            codec: None,
            source_rate: s.get::<i32>("rate").unwrap_or(0).max(0) as u32,
            source_channels: s.get::<i32>("channels").unwrap_or(0).max(0) as u32,
        });
        drop(f);
        link_audio(pipeline, pad, tx.clone())
    } else {
        drop(f);
        // Second video/audio stream, subtitles, …: consumed so the decodebin does not stall.
        link_fakesink(pipeline, pad)
    }
}

fn add_chain(
    pipeline: &gst::Pipeline,
    pad: &gst::Pad,
    names: &[&str],
) -> Result<Vec<gst::Element>, String> {
    let mut elems = Vec::with_capacity(names.len());
    for n in names {
        elems.push(
            gst::ElementFactory::make(n)
                .build()
                .map_err(|_| format!("GStreamer element '{n}' is missing; run scripts/setup"))?,
        );
    }
    pipeline.add_many(&elems).map_err(|e| e.to_string())?;
    gst::Element::link_many(&elems).map_err(|e| e.to_string())?;
    for e in &elems {
        e.sync_state_with_parent().map_err(|e| e.to_string())?;
    }
    let sink = elems[0]
        .static_pad("sink")
        .ok_or("queue without sink pad")?;
    pad.link(&sink).map_err(|e| format!("{e:?}"))?;
    Ok(elems)
}

fn link_fakesink(pipeline: &gst::Pipeline, pad: &gst::Pad) -> Result<(), String> {
    let elems = add_chain(pipeline, pad, &["queue", "fakesink"])?;
    elems[1].set_property("sync", false);
    Ok(())
}

fn link_video(
    pipeline: &gst::Pipeline,
    pad: &gst::Pad,
    tx: Sender<Item>,
    sampling: Sampling,
) -> Result<(), String> {
    let appsink = gst_app::AppSink::builder()
        .caps(
            &gst_video::VideoCapsBuilder::new()
                .format(gst_video::VideoFormat::I420)
                .build(),
        )
        .sync(false)
        .max_buffers(4)
        .drop(false)
        .build();
    let queue = gst::ElementFactory::make("queue")
        .build()
        .map_err(|e| e.to_string())?;
    let convert = gst::ElementFactory::make("videoconvert")
        .build()
        .map_err(|_| {
            "GStreamer element 'videoconvert' is missing; run scripts/setup".to_string()
        })?;
    pipeline
        .add_many([&queue, &convert, appsink.upcast_ref()])
        .map_err(|e| e.to_string())?;
    gst::Element::link_many([&queue, &convert, appsink.upcast_ref()]).map_err(|e| e.to_string())?;

    if let Sampling::Interval { every_s } = sampling {
        // Drop frames before conversion: they were decoded (H.264 needs them as references) but
        // converting and copying them would be wasted. Keep the first frame at or after each
        // due time; a quarter-frame tolerance absorbs container timestamp rounding.
        let interval = (every_s * 1e9) as u64;
        let tolerance = 8_000_000u64;
        let next_due = Arc::new(AtomicU64::new(0));
        let src = queue.static_pad("src").expect("queue has a src pad");
        src.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            let Some(buf) = info.buffer() else {
                return gst::PadProbeReturn::Ok;
            };
            let Some(pts) = buf.pts() else {
                return gst::PadProbeReturn::Ok;
            };
            let pts = pts.nseconds();
            let due = next_due.load(Ordering::Relaxed);
            // Timestamps that jump backwards (a reset stream) restart the sampling grid.
            if pts + interval < due.saturating_sub(interval) {
                next_due.store(0, Ordering::Relaxed);
            }
            if pts + tolerance >= next_due.load(Ordering::Relaxed) {
                next_due.store(
                    pts + interval.saturating_sub(tolerance).max(1),
                    Ordering::Relaxed,
                );
                gst::PadProbeReturn::Ok
            } else {
                drop_buffer(info)
            }
        });
    }

    let mut index = 0u64;
    let mut last_pts = 0u64;
    appsink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                let frame =
                    copy_i420(&sample, index, &mut last_pts).ok_or(gst::FlowError::Error)?;
                index += 1;
                tx.send(Item::Video(frame))
                    .map_err(|_| gst::FlowError::Flushing)?;
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    for e in [&queue, &convert, appsink.upcast_ref()] {
        e.sync_state_with_parent().map_err(|e| e.to_string())?;
    }
    let sink = queue.static_pad("sink").expect("queue has a sink pad");
    pad.link(&sink).map_err(|e| format!("{e:?}"))?;
    Ok(())
}

/// Presentation time of a buffer as running time (0 = start of the stream's segment), so inputs
/// whose timestamps do not start at zero (MPEG-TS, live sources) still report seconds from the
/// start. Buffers without a timestamp take the previous one.
fn running_time(sample: &gst::Sample, buffer: &gst::BufferRef, last: &mut u64) -> Pts {
    let rt = buffer.pts().and_then(|pts| {
        sample
            .segment()
            .and_then(|seg| seg.downcast_ref::<gst::ClockTime>())
            .map_or(Some(pts), |seg| seg.to_running_time(pts))
    });
    if let Some(t) = rt {
        *last = t.nseconds();
    }
    Pts(*last)
}

/// Copies the I420 planes out of a GStreamer buffer into tightly packed vectors (honouring any
/// stride the decoder used).
fn copy_i420(sample: &gst::Sample, index: u64, last_pts: &mut u64) -> Option<VideoFrame> {
    let caps = sample.caps()?;
    let info = gst_video::VideoInfo::from_caps(caps).ok()?;
    let buffer = sample.buffer()?;
    if info.width() == 0 || info.height() == 0 {
        return None;
    }
    let pts = running_time(sample, buffer, last_pts);
    let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(buffer, &info).ok()?;
    let (w, h) = (info.width() as usize, info.height() as usize);
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    let plane = |i: u32, pw: usize, ph: usize| -> Option<Vec<u8>> {
        let data = frame.plane_data(i).ok()?;
        let stride = frame.plane_stride()[i as usize] as usize;
        let mut out = Vec::with_capacity(pw * ph);
        for row in 0..ph {
            out.extend_from_slice(data.get(row * stride..row * stride + pw)?);
        }
        Some(out)
    };
    let colorimetry = info.colorimetry();
    let colour = match (colorimetry.matrix(), colorimetry.range()) {
        (gst_video::VideoColorMatrix::Bt709, _) => YuvMatrix::Bt709,
        (_, gst_video::VideoColorRange::Range0_255) => YuvMatrix::Bt601Full,
        _ => YuvMatrix::Bt601,
    };
    Some(VideoFrame {
        pts,
        index,
        width: w as u32,
        height: h as u32,
        colour,
        y: plane(0, w, h)?,
        u: plane(1, cw, ch)?,
        v: plane(2, cw, ch)?,
    })
}

fn link_audio(pipeline: &gst::Pipeline, pad: &gst::Pad, tx: Sender<Item>) -> Result<(), String> {
    let caps = gst::Caps::builder("audio/x-raw")
        .field("format", "F32LE")
        .field("layout", "interleaved")
        .field("rate", AUDIO_RATE as i32)
        .field("channels", 1i32)
        .build();
    let appsink = gst_app::AppSink::builder()
        .caps(&caps)
        .sync(false)
        .max_buffers(8)
        .drop(false)
        .build();
    let mut elems = Vec::new();
    // audiorate fills timestamp gaps (Opus DTX, lost packets) with silence and drops overlaps,
    // so counting samples from the first one keeps audio events aligned with the video.
    for n in ["queue", "audioconvert", "audioresample", "audiorate"] {
        elems.push(
            gst::ElementFactory::make(n)
                .build()
                .map_err(|_| format!("GStreamer element '{n}' is missing; run scripts/setup"))?,
        );
    }
    elems.push(appsink.clone().upcast());
    pipeline.add_many(&elems).map_err(|e| e.to_string())?;
    gst::Element::link_many(&elems).map_err(|e| e.to_string())?;
    let mut last_pts = 0u64;
    appsink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                let buffer = sample.buffer().ok_or(gst::FlowError::Error)?;
                let pts = running_time(&sample, buffer, &mut last_pts);
                let map = buffer.map_readable().map_err(|_| gst::FlowError::Error)?;
                let samples: Vec<f32> = map
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect();
                tx.send(Item::Audio(AudioChunk { pts, samples }))
                    .map_err(|_| gst::FlowError::Flushing)?;
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    for e in &elems {
        e.sync_state_with_parent().map_err(|e| e.to_string())?;
    }
    let sink = elems[0].static_pad("sink").expect("queue has a sink pad");
    sink.add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, |_, info| {
        open_segment_end(info);
        gst::PadProbeReturn::Ok
    });
    pad.link(&sink).map_err(|e| format!("{e:?}"))?;
    Ok(())
}

/// Clears the stop of a time SEGMENT event. At EOS audiorate fills silence up to the segment's
/// stop — the duration the container *claims* — so a header claiming 100 000 s would cost
/// minutes of analysis of nothing; without a stop the audio ends with its last sample.
fn open_segment_end(info: &mut gst::PadProbeInfo) {
    let Some(gst::PadProbeData::Event(ev)) = &mut info.data else {
        return;
    };
    let gst::EventView::Segment(s) = ev.view() else {
        return;
    };
    let Some(seg) = s.segment().downcast_ref::<gst::ClockTime>() else {
        return;
    };
    if seg.stop().is_none() {
        return;
    }
    let mut open = seg.clone();
    open.set_stop(gst::ClockTime::NONE);
    *ev = gst::event::Segment::builder(&open)
        .seqnum(ev.seqnum())
        .build();
}

fn drain_bus_for_error(bus: &gst::Bus, name: &str) -> Option<IngestError> {
    let mut missing = None;
    while let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(200)) {
        match msg.view() {
            gst::MessageView::Error(err) => {
                return Some(classify_error(name, err.error(), err.debug(), missing));
            }
            gst::MessageView::Element(el) => {
                if let Some(s) = el.structure()
                    && s.name() == "missing-plugin"
                {
                    missing = Some(describe_missing_plugin(s));
                }
            }
            _ => {}
        }
    }
    None
}

fn describe_missing_plugin(s: &gst::StructureRef) -> String {
    let kind = s.get::<String>("type").unwrap_or_else(|_| "element".into());
    let detail = s
        .get::<gst::Caps>("detail")
        .ok()
        .and_then(|c| c.structure(0).map(|s| s.name().to_string()))
        .or_else(|| s.get::<String>("detail").ok())
        .unwrap_or_else(|| "unknown".into());
    format!("{kind} for {detail}")
}

fn classify_error(
    name: &str,
    err: gst::glib::Error,
    details: Option<gst::glib::GString>,
    missing: Option<String>,
) -> IngestError {
    let input = name.to_string();
    // GStreamer's debug text can quote the full URI (credentials, signed query): not logged.
    drop(details);
    tracing::debug!(input = %name, "GStreamer error: {err}");
    if let Some(what) = missing {
        return IngestError::MissingPlugin { input, what };
    }
    if let Some(e) = err.kind::<gst::ResourceError>() {
        return match e {
            gst::ResourceError::NotFound => IngestError::NotFound { input },
            _ => IngestError::Unreadable {
                input,
                reason: err.message().to_string(),
            },
        };
    }
    if let Some(e) = err.kind::<gst::StreamError>() {
        return match e {
            gst::StreamError::TypeNotFound | gst::StreamError::WrongType => IngestError::BadInput {
                input,
                reason:
                    "not a media file GStreamer recognises (could not determine the stream type)"
                        .into(),
            },
            gst::StreamError::CodecNotFound => IngestError::MissingPlugin {
                input,
                what: "a stream in this file".into(),
            },
            _ => IngestError::Unreadable {
                input,
                reason: err.message().to_string(),
            },
        };
    }
    IngestError::Unreadable {
        input,
        reason: err.message().to_string(),
    }
}

/// Friendly codec name for the decoder uridecodebin picked (stable across runs).
fn codec_name(decoder: &str) -> String {
    match decoder {
        "avdec_h264" | "openh264dec" => "h264",
        "avdec_h265" | "libde265dec" => "h265",
        "vp8dec" | "avdec_vp8" => "vp8",
        "vp9dec" | "avdec_vp9" => "vp9",
        "dav1ddec" | "av1dec" | "avdec_av1" => "av1",
        "avdec_aac" | "faad" | "fdkaacdec" => "aac",
        "opusdec" | "avdec_opus" => "opus",
        "vorbisdec" => "vorbis",
        "flacdec" => "flac",
        "mpg123audiodec" | "avdec_mp3" => "mp3",
        "wavparse" => "pcm",
        other => other,
    }
    .to_string()
}

fn container_name(demuxer: &str) -> String {
    match demuxer {
        "qtdemux" => "mp4",
        "tsdemux" => "mpegts",
        "matroskademux" => "matroska",
        "oggdemux" => "ogg",
        "wavparse" => "wav",
        "avidemux" => "avi",
        other => other,
    }
    .to_string()
}
