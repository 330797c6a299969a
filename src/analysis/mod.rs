//! Analysers: each a pure stage over decoded items, keyed by timestamp.
//!
//! - [`video`]: frozen and looping camera detection from sampled frames.
//! - [`face`]: face presence, extra faces, identity consistency, low light.
//! - [`lipsync`]: speech while the on-camera mouth stays closed.
//! - [`voice`]: speaker embeddings over speech, voice consistency; [`voice_thread`] runs it on
//!   its own thread beside the VAD.
//! - [`audio`]: per-second audio levels, streaming voice activity (Silero VAD) and the shared STFT.
//! - [`spectral`]: cheap spectral anomaly detectors (splice, replay, synthetic voice, background
//!   voice, clipping, dropouts) over every STFT frame; weak evidence only.

pub mod audio;
pub mod face;
pub mod lipsync;
pub mod spectral;
pub mod video;
pub mod voice;
pub mod voice_thread;
