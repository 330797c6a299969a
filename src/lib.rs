//! Vigil: interview-integrity analysis with signed, offline-verifiable reports.
//!
//! Modules mirror the data flow, and each imports only from the ones before it
//! (`tests/layers.rs` fails on an import that points back up):
//!
//! 1. [`media`], [`dsp`]: shared media types and signal processing (STFT, mel, fbank).
//! 2. [`ingest`] (GStreamer → bounded channel), [`inference`] (ONNX Runtime sessions, models).
//! 3. [`analysis`]: the analysers on rayon workers (face, voice, audio, spectral, video, lip-sync).
//! 4. [`scoring`]: policy → events, score, tier, status.
//! 5. [`report`]: the payload, its DSSE/Ed25519 envelope, HTML and evidence packs.
//! 6. [`pipeline`]: ingest → analysis → scoring → report for one session (`vigil score`).
//! 7. [`store`]: SQLite — reports, the delivery outbox, audit log, governance, live sessions.
//! 8. [`ats`]: the ATS writer (Greenhouse, Lever, webhooks), its worker and sandbox.
//! 9. [`rescore`]: batch re-scoring of archives; [`fleet`]: the same over NATS JetStream.
//! 10. [`server`] (`vigil serve`), [`cli`] (every command, the release gate among them): the
//!     applications.

pub mod analysis;
pub mod ats;
pub mod cli;
pub mod dsp;
pub mod fleet;
pub mod inference;
pub mod ingest;
pub mod media;
pub mod pipeline;
pub mod report;
pub mod rescore;
pub mod scoring;
pub mod server;
pub mod store;
