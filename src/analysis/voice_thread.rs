//! The voice analyser on its own thread, behind a bounded queue.
//!
//! CAM++ is the costliest model of a session (≈ 55 ms of one core per 3 s window, BENCHMARKS.md
//! "One-hour comparison with a Python pipeline"): run inline on the audio thread, the Silero VAD
//! and the speaker encoder took turns on one core, and on a long recording that thread — not the
//! video work — set the wall-clock time. Here the audio thread hands over runs of speech and the
//! voice thread embeds them while the VAD goes on. The analyser sees exactly the calls it saw
//! inline (the same 512-sample steps with the same stream indices, in order), so its outcome is
//! unchanged.
//!
//! Memory: at most [`VOICE_QUEUE`] runs of at most one second of speech wait in the queue; a full
//! queue holds the audio thread back like any other queue of the pipeline.

use crate::analysis::audio::VAD_STEP;
use crate::analysis::voice::{VoiceAnalyser, VoiceOutcome};
use crate::inference::{CAMPPLUS, InferenceError};
use crate::media::{AUDIO_RATE, Pts};
use crossbeam_channel::Sender;
use std::thread::JoinHandle;

/// Runs of speech waiting for the voice thread.
const VOICE_QUEUE: usize = 8;
/// A run is handed over once it holds this many samples (one second).
const RUN_SAMPLES: usize = AUDIO_RATE as usize;

enum Msg {
    Start(Pts),
    /// Consecutive VAD steps of speech; `first` is the stream index of the first sample.
    Speech {
        first: u64,
        samples: Vec<f32>,
    },
    Finish,
}

type Outcome = Result<Option<VoiceOutcome>, InferenceError>;

/// A [`VoiceAnalyser`] running on its own thread. Same calls, same order, same outcome.
pub struct VoiceThread {
    tx: Option<Sender<Msg>>,
    handle: Option<JoinHandle<Outcome>>,
    run: Vec<f32>,
    run_first: u64,
    /// The stream start, sent ahead of the first run.
    start: Option<Pts>,
}

impl VoiceThread {
    pub fn spawn(mut analyser: VoiceAnalyser) -> Self {
        let (tx, rx) = crossbeam_channel::bounded::<Msg>(VOICE_QUEUE);
        let handle = std::thread::Builder::new()
            .name("vigil-voice".into())
            .spawn(move || -> Outcome {
                for msg in rx {
                    match msg {
                        Msg::Start(pts) => analyser.set_stream_start(pts),
                        Msg::Speech { first, samples } => {
                            for (k, step) in samples.chunks(VAD_STEP).enumerate() {
                                analyser.push_speech(step, first + (k * VAD_STEP) as u64)?;
                            }
                        }
                        Msg::Finish => return analyser.finish().map(Some),
                    }
                }
                // The sender went away without `Finish`: the session was abandoned.
                Ok(None)
            })
            .expect("spawning the voice analysis thread");
        VoiceThread {
            tx: Some(tx),
            handle: Some(handle),
            run: Vec::with_capacity(RUN_SAMPLES + VAD_STEP),
            run_first: 0,
            start: None,
        }
    }

    /// See [`VoiceAnalyser::set_stream_start`] (it reaches the thread ahead of the first run).
    pub fn set_stream_start(&mut self, pts: Pts) {
        self.start = Some(pts);
    }

    /// See [`VoiceAnalyser::push_speech`]: one VAD step of speech, in stream order.
    pub fn push_speech(&mut self, samples: &[f32], first: u64) -> Result<(), InferenceError> {
        if !self.run.is_empty() && first != self.run_first + self.run.len() as u64 {
            self.hand_over()?;
        }
        if self.run.is_empty() {
            self.run_first = first;
        }
        self.run.extend_from_slice(samples);
        if self.run.len() >= RUN_SAMPLES {
            self.hand_over()?;
        }
        Ok(())
    }

    /// Hands the remaining speech over and waits for the analyser's outcome.
    pub fn finish(mut self) -> Result<VoiceOutcome, InferenceError> {
        self.hand_over()?;
        self.send_start()?;
        self.send(Msg::Finish)?;
        self.join()?.ok_or_else(ended)
    }

    fn hand_over(&mut self) -> Result<(), InferenceError> {
        if self.run.is_empty() {
            return Ok(());
        }
        self.send_start()?;
        let samples = std::mem::replace(&mut self.run, Vec::with_capacity(RUN_SAMPLES + VAD_STEP));
        self.send(Msg::Speech {
            first: self.run_first,
            samples,
        })
    }

    /// The stream start, once, ahead of anything else (a session without speech gets it too, as
    /// the inline analyser did).
    fn send_start(&mut self) -> Result<(), InferenceError> {
        match self.start.take() {
            Some(pts) => self.send(Msg::Start(pts)),
            None => Ok(()),
        }
    }

    /// A send fails only when the thread has stopped, i.e. on an error: that error is returned.
    fn send(&mut self, msg: Msg) -> Result<(), InferenceError> {
        match &self.tx {
            Some(tx) if tx.send(msg).is_ok() => Ok(()),
            _ => Err(self.join().err().unwrap_or_else(ended)),
        }
    }

    fn join(&mut self) -> Outcome {
        self.tx = None;
        match self.handle.take() {
            Some(h) => h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)),
            None => Err(ended()),
        }
    }
}

impl Drop for VoiceThread {
    /// An abandoned session (an error elsewhere) never leaves the thread running behind it.
    fn drop(&mut self) {
        self.tx = None;
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Only reachable if the thread stopped without an outcome or an error (a bug).
fn ended() -> InferenceError {
    InferenceError::Run {
        model: CAMPPLUS.name.into(),
        reason: "the voice analysis thread ended without an outcome".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::voice::VoiceParams;

    fn speech(steps: usize, seed: u32) -> Vec<f32> {
        // Deterministic noise bursts: enough to make windows; the outcome only has to match.
        let mut x = seed;
        (0..steps * VAD_STEP)
            .map(|i| {
                x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                let env = if (i / 4000) % 3 == 0 { 0.05 } else { 0.3 };
                env * ((x >> 8) as f32 / (1u32 << 24) as f32 - 0.5)
            })
            .collect()
    }

    #[test]
    fn the_threaded_analyser_reaches_the_inline_outcome() {
        // Two runs of speech with a gap between them (a new segment), a session without speech,
        // then an abandoned thread.
        let runs = [
            (0u64, speech(500, 1)),
            (700 * VAD_STEP as u64, speech(350, 2)),
        ];
        let mut inline = VoiceAnalyser::new(VoiceParams::default(), None).unwrap();
        let mut threaded =
            VoiceThread::spawn(VoiceAnalyser::new(VoiceParams::default(), None).unwrap());
        inline.set_stream_start(Pts(1_000));
        threaded.set_stream_start(Pts(1_000));
        for (first, samples) in &runs {
            for (k, step) in samples.chunks(VAD_STEP).enumerate() {
                let at = first + (k * VAD_STEP) as u64;
                inline.push_speech(step, at).unwrap();
                threaded.push_speech(step, at).unwrap();
            }
        }
        let (a, b) = (inline.finish().unwrap(), threaded.finish().unwrap());
        assert!(a.windows >= 8, "several batches of windows ({})", a.windows);
        assert_eq!(a.windows, b.windows);
        assert_eq!(a.enrolled, b.enrolled);
        assert_eq!(format!("{:?}", a.samples), format!("{:?}", b.samples));
        assert_eq!(format!("{:?}", a.findings), format!("{:?}", b.findings));
        assert_eq!(a.mean_embedding, b.mean_embedding);
        let mut silent =
            VoiceThread::spawn(VoiceAnalyser::new(VoiceParams::default(), None).unwrap());
        silent.set_stream_start(Pts(0));
        assert_eq!(silent.finish().unwrap().windows, 0);
        drop(VoiceThread::spawn(
            VoiceAnalyser::new(VoiceParams::default(), None).unwrap(),
        ));
    }
}
