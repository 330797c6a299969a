//! Analysers: each a pure stage over decoded items, keyed by timestamp.
//!
//! - [`video`]: frozen and looping camera detection from sampled frames.
//! - [`audio`]: per-second audio levels and streaming voice activity (Silero VAD).

pub mod audio;
pub mod video;
