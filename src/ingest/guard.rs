//! Limits on what a stream may make the decoders do: a guard in front of each decoder (bytes,
//! timestamp jumps, duration), oversize frames after it, and the decoder's thread count.

use super::*;

/// Watches one stream's compressed buffers in front of its decoder: counts their bytes and
/// cuts the stream at a timestamp jump or past the duration limit.
pub(super) struct StreamGuard {
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

/// Sets a video decoder's thread count under whichever name its plug-in gives it (decoders
/// without one are left as they are).
pub(super) fn set_decoder_threads(decoder: &gst::Element, threads: u32) {
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
pub(super) fn watch_elements(
    pipeline: &gst::Pipeline,
    cfg: &IngestConfig,
    found: &Arc<Mutex<Found>>,
) {
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

pub(super) fn oversize_error(
    found: &Mutex<Found>,
    cfg: &IngestConfig,
    name: &str,
) -> Option<IngestError> {
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
pub(super) fn oversize_caps(
    info: &gst::PadProbeInfo,
    max_pixels: u64,
    found: &Mutex<Found>,
) -> bool {
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
pub(super) fn guard_decoder_output(
    element: &gst::Element,
    max_pixels: u64,
    found: Arc<Mutex<Found>>,
) {
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
pub(super) fn drop_buffer(info: &mut gst::PadProbeInfo) -> gst::PadProbeReturn {
    drop(info.take_buffer());
    gst::PadProbeReturn::Handled
}
