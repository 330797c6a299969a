//! Vigil: interview-integrity analysis with signed, offline-verifiable reports.
//!
//! Data flow (see DESIGN.md / README.md):
//! [`ingest`] (GStreamer → bounded channel) → [`analysis`] (rayon workers, ONNX models via
//! [`inference`]) → [`scoring`] (policy → events, score, tier, status) → [`report`] (payload +
//! DSSE/Ed25519 envelope). [`pipeline`] wires them for `vigil score`; [`cli`] is the command line.

pub mod analysis;
pub mod ats;
pub mod cli;
pub mod dsp;
pub mod fleet;
pub mod inference;
pub mod ingest;
pub mod media;
pub mod pipeline;
pub mod release_gate;
pub mod report;
pub mod rescore;
pub mod scoring;
pub mod server;
pub mod store;
