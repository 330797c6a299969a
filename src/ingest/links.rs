//! Linking the decoder's pads: the video branch (sampling, I420 copies), the audio branch
//! (F32 16 kHz mono), and a fakesink for anything else.

use super::*;

pub(super) fn on_pad_added(
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

pub(super) fn add_chain(
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

pub(super) fn link_fakesink(pipeline: &gst::Pipeline, pad: &gst::Pad) -> Result<(), String> {
    let elems = add_chain(pipeline, pad, &["queue", "fakesink"])?;
    elems[1].set_property("sync", false);
    Ok(())
}

pub(super) fn link_video(
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
        let next_glimpse = AtomicU64::new(0);
        let glimpses = tx.clone();
        let src = queue.static_pad("src").expect("queue has a src pad");
        src.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
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
                // Timestamps that jump backwards restart the glimpses too.
                let glimpse_due = next_glimpse.load(Ordering::Relaxed);
                if pts + tolerance >= glimpse_due || pts + GLIMPSE_STEP_NS < glimpse_due {
                    next_glimpse.store(pts + GLIMPSE_STEP_NS - tolerance, Ordering::Relaxed);
                    if let Some(g) = info.buffer().and_then(|b| glimpse_of(pad, b)) {
                        // A closed channel means the run is ending; the appsink reports it.
                        let _ = glimpses.send(Item::Glimpse(g));
                    }
                }
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

/// A dropped frame's glimpse, read from its luma plane where the decoder's format has one of 8
/// bits (every YUV and grey format GStreamer's decoders emit at 8 bits); `None` otherwise, and
/// the loop search then sees the sampled frames only.
fn glimpse_of(pad: &gst::Pad, buffer: &gst::BufferRef) -> Option<Glimpse> {
    let caps = pad.current_caps()?;
    let info = gst_video::VideoInfo::from_caps(&caps).ok()?;
    let f = info.format_info();
    let luma_first = f.plane()[0] == 0 && f.poffset()[0] == 0 && f.pixel_stride()[0] == 1;
    if !(f.is_yuv() || f.is_gray()) || f.depth()[0] != 8 || !luma_first {
        return None;
    }
    let pts = buffer.pts()?;
    let segment = pad.sticky_event::<gst::event::Segment>(0);
    let running = segment
        .as_ref()
        .and_then(|e| e.segment().downcast_ref::<gst::ClockTime>())
        .map_or(Some(pts), |seg| seg.to_running_time(pts))?;
    let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(buffer, &info).ok()?;
    Glimpse::of_luma(
        Pts(running.nseconds()),
        frame.plane_data(0).ok()?,
        info.width() as usize,
        info.height() as usize,
        frame.plane_stride()[0].try_into().ok()?,
    )
}

/// Presentation time of a buffer as running time (0 = start of the stream's segment), so inputs
/// whose timestamps do not start at zero (MPEG-TS, live sources) still report seconds from the
/// start. Buffers without a timestamp take the previous one.
pub(super) fn running_time(sample: &gst::Sample, buffer: &gst::BufferRef, last: &mut u64) -> Pts {
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
pub(super) fn copy_i420(
    sample: &gst::Sample,
    index: u64,
    last_pts: &mut u64,
) -> Option<VideoFrame> {
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

pub(super) fn link_audio(
    pipeline: &gst::Pipeline,
    pad: &gst::Pad,
    tx: Sender<Item>,
) -> Result<(), String> {
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
pub(super) fn open_segment_end(info: &mut gst::PadProbeInfo) {
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
