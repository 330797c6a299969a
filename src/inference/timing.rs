//! Time spent inside each model, process-wide: the models' own cost, which is the floor under
//! any pipeline that runs them (issue 17's comparison in BENCHMARKS.md subtracts it from the
//! whole run to see what the rest costs). `vigil score` logs it at debug level
//! (`RUST_LOG=vigil::inference=debug`).
//!
//! Two relaxed atomic adds per model run; no lock, nothing that depends on the input.

use super::{ALL_MODELS, ModelSpec};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

const N: usize = ALL_MODELS.len();
static RUNS: [AtomicU64; N] = [const { AtomicU64::new(0) }; N];
static NANOS: [AtomicU64; N] = [const { AtomicU64::new(0) }; N];

/// Runs `f` (one model run) and adds its wall time to the model's account. With one intra-op
/// thread per session, the wall time of a run is the CPU time of the thread that ran it.
pub fn timed<R>(spec: &ModelSpec, f: impl FnOnce() -> R) -> R {
    let start = Instant::now();
    let out = f();
    if let Some(i) = ALL_MODELS.iter().position(|m| m.name == spec.name) {
        let ns = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        RUNS[i].fetch_add(1, Ordering::Relaxed);
        NANOS[i].fetch_add(ns, Ordering::Relaxed);
    }
    out
}

/// One model's account since the process started.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelTime {
    pub model: &'static str,
    pub runs: u64,
    pub seconds: f64,
}

/// The models that ran, in `ALL_MODELS` order.
pub fn model_times() -> Vec<ModelTime> {
    ALL_MODELS
        .iter()
        .enumerate()
        .filter_map(|(i, m)| {
            let runs = RUNS[i].load(Ordering::Relaxed);
            (runs > 0).then(|| ModelTime {
                model: m.name,
                runs,
                seconds: NANOS[i].load(Ordering::Relaxed) as f64 / 1e9,
            })
        })
        .collect()
}

/// Logs every model's account at debug level.
pub fn log_model_times() {
    let times = model_times();
    let total: f64 = times.iter().map(|t| t.seconds).sum();
    for t in &times {
        tracing::debug!(
            model = t.model,
            runs = t.runs,
            seconds = format!("{:.3}", t.seconds),
            ms_per_run = format!("{:.3}", 1e3 * t.seconds / t.runs as f64),
            "time inside the model"
        );
    }
    tracing::debug!(seconds = format!("{total:.3}"), "time inside all models");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inference::AASIST;

    #[test]
    fn a_timed_run_is_counted_against_its_model() {
        let before = model_times().into_iter().find(|t| t.model == AASIST.name);
        let out = timed(&AASIST, || {
            std::thread::sleep(std::time::Duration::from_millis(2));
            7
        });
        assert_eq!(out, 7);
        let after = model_times()
            .into_iter()
            .find(|t| t.model == AASIST.name)
            .unwrap();
        let (runs, secs) = before.map_or((0, 0.0), |b| (b.runs, b.seconds));
        assert!(after.runs > runs);
        assert!(after.seconds - secs >= 0.002);
    }
}
