//! ONNX Runtime access for the analysers.
//!
//! - The runtime library is loaded once per process from a project-local copy that
//!   `scripts/setup` extracts from the pinned `onnxruntime` wheel ([`runtime_library_path`]); a
//!   missing or broken library becomes one sentence naming the file and the fix, never a panic.
//! - Every model is described by a [`ModelSpec`] (file, SHA-256, input and output names and
//!   shapes). [`load`] checks the file's hash and the session's I/O against the spec, so a wrong
//!   or corrupt model fails at start-up, not with garbage scores.
//! - Sessions are created per worker with one intra-op thread: parallelism comes from rayon
//!   across frames/windows; small models run slower with more intra-op threads.

mod models;
mod speech;
pub mod timing;

pub use models::*;
pub use speech::*;

use ort::environment::Environment;
use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, OnceLock};

/// The ONNX Runtime version the `ort` bindings are built against (`api-31`).
pub const ORT_VERSION: &str = "1.31.1";

/// Errors that stop model loading. Each says which file is at fault and what fixes it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum InferenceError {
    #[error("the ONNX Runtime library {path} is missing; run `scripts/setup` to install it")]
    RuntimeMissing { path: PathBuf },
    #[error(
        "the ONNX Runtime library {path} could not be loaded ({reason}); run `scripts/setup` to reinstall it"
    )]
    RuntimeUnloadable { path: PathBuf, reason: String },
    #[error(
        "the model file {path} is missing; restore it with `git checkout -- models/` (then `scripts/setup` checks it)"
    )]
    ModelMissing { path: PathBuf },
    #[error(
        "the model file {path} is corrupt (sha256 {actual}, expected {expected}); restore it with `git checkout -- models/` or rebuild it with `scripts/export-models`"
    )]
    ModelCorrupt {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    #[error("the model file {path} does not have the expected inputs/outputs: {detail}")]
    ModelMismatch { path: PathBuf, detail: String },
    #[error("ONNX Runtime failed on {model}: {reason}")]
    Run { model: String, reason: String },
    #[error("invalid input for {model}: {detail}")]
    BadInput { model: String, detail: String },
}

/// Where the runtime library is looked for, in order: `$VIGIL_ORT_LIB`, next to the executable
/// (`<exe dir>/onnxruntime/`: the relocatable tarball of `scripts/package`), the Debian package's
/// `<exe dir>/../lib/vigil/onnxruntime/`, then the source tree's `vendor/onnxruntime/` (where
/// `scripts/setup` puts it). The first existing file wins; when none exists the last candidate
/// is the one named in the error.
pub fn runtime_library_path() -> Result<PathBuf, InferenceError> {
    let file = format!("libonnxruntime.so.{ORT_VERSION}");
    let mut candidates = Vec::new();
    if let Some(p) = std::env::var_os("VIGIL_ORT_LIB") {
        let p = PathBuf::from(p);
        // An explicit choice is never silently replaced by another library.
        if !p.is_file() {
            return Err(InferenceError::RuntimeMissing { path: p });
        }
        return Ok(p);
    }
    if let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.parent()
    {
        candidates.push(dir.join("onnxruntime").join(&file));
        candidates.push(dir.join("../lib/vigil/onnxruntime").join(&file));
    }
    let vendored = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("vendor/onnxruntime")
        .join(&file);
    candidates.push(vendored.clone());
    candidates
        .into_iter()
        .find(|p| p.is_file())
        .ok_or(InferenceError::RuntimeMissing { path: vendored })
}

static RUNTIME: OnceLock<Result<Environment, InferenceError>> = OnceLock::new();

/// The process-wide ONNX Runtime environment, loading the library on first use.
pub fn runtime() -> Result<&'static Environment, InferenceError> {
    RUNTIME
        .get_or_init(|| {
            let path = runtime_library_path()?;
            let unloadable = |reason: String| InferenceError::RuntimeUnloadable {
                path: path.clone(),
                reason,
            };
            // The loader in `ort` may panic on a file that is not a shared library; keep that
            // inside this function.
            let builder = std::panic::catch_unwind(|| ort::init_from(&path))
                .map_err(|_| unloadable("not a loadable shared library".into()))?
                .map_err(|e| unloadable(e.to_string()))?;
            // ONNX Runtime 1.31 records telemetry (a device id and an event database under
            // ~/.cache/Microsoft, a session file in $TMPDIR). The `vigil` binary sets
            // ORT_DISABLE_TELEMETRY=1 before anything loads (the only full opt-out; see
            // main.rs); library users must do the same. Events are also disabled here.
            builder
                .with_name("vigil")
                .with_telemetry(false)
                .build()
                .map_err(|e| unloadable(e.to_string()))
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Directory holding the model files: `$VIGIL_MODELS_DIR`, `<exe dir>/models` (the tarball),
/// `<exe dir>/../share/vigil/models` (the Debian package), or the source tree's `models/`.
pub fn models_dir() -> PathBuf {
    if let Some(p) = std::env::var_os("VIGIL_MODELS_DIR") {
        return PathBuf::from(p);
    }
    if let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.parent()
    {
        for d in [dir.join("models"), dir.join("../share/vigil/models")] {
            if d.join("SHA256SUMS").is_file() {
                return d;
            }
        }
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("models")
}

/// Checks a model file against its spec's SHA-256, once per process per path.
pub fn verify_file(spec: &ModelSpec) -> Result<PathBuf, InferenceError> {
    static VERIFIED: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
    let path = models_dir().join(spec.file);
    if VERIFIED.lock().unwrap().contains(&path) {
        return Ok(path);
    }
    let bytes =
        std::fs::read(&path).map_err(|_| InferenceError::ModelMissing { path: path.clone() })?;
    let actual = hex::encode(Sha256::digest(&bytes));
    if actual != spec.sha256 {
        return Err(InferenceError::ModelCorrupt {
            path,
            expected: spec.sha256.to_string(),
            actual,
        });
    }
    VERIFIED.lock().unwrap().push(path.clone());
    Ok(path)
}

/// Loads one session of `spec` (call once per worker) after checking the file and the I/O.
pub fn load(spec: &ModelSpec) -> Result<Session, InferenceError> {
    let env = runtime()?;
    let path = verify_file(spec)?;
    let fail = |e: String| InferenceError::Run {
        model: spec.name.to_string(),
        reason: e,
    };
    let session = Session::builder(env)
        .map_err(|e| fail(e.to_string()))?
        .with_intra_threads(1)
        .map_err(|e| fail(e.to_string()))?
        .with_inter_threads(1)
        .map_err(|e| fail(e.to_string()))?
        .with_optimization_level(GraphOptimizationLevel::All)
        .map_err(|e| fail(e.to_string()))?
        .with_memory_pattern(false)
        .map_err(|e| fail(e.to_string()))?
        .commit_from_file(&path)
        .map_err(|e| fail(e.to_string()))?;
    check_io(&path, "input", spec.inputs, session.inputs())?;
    check_io(&path, "output", spec.outputs, session.outputs())?;
    Ok(session)
}

fn check_io(
    path: &Path,
    what: &str,
    expected: &[IoSpec],
    actual: &[ort::value::Outlet],
) -> Result<(), InferenceError> {
    let mismatch = |detail: String| InferenceError::ModelMismatch {
        path: path.to_path_buf(),
        detail,
    };
    if expected.len() != actual.len() {
        return Err(mismatch(format!(
            "{} {what}s, expected {}",
            actual.len(),
            expected.len()
        )));
    }
    for (e, a) in expected.iter().zip(actual) {
        if e.name != a.name() {
            return Err(mismatch(format!(
                "{what} '{}' where '{}' was expected",
                a.name(),
                e.name
            )));
        }
        let shape: Vec<i64> = a
            .dtype()
            .tensor_shape()
            .map(|s| s.to_vec())
            .unwrap_or_default();
        let ok = shape.len() == e.shape.len()
            && shape
                .iter()
                .zip(e.shape)
                .all(|(&got, &want)| want < 0 || got < 0 || got == want);
        if !ok {
            return Err(mismatch(format!(
                "{what} '{}' has shape {shape:?}, expected {:?}",
                e.name, e.shape
            )));
        }
    }
    Ok(())
}

/// Sessions of one model shared by every analysis in the process, checked out per run.
///
/// The VAD and the speaker encoder are stateless between runs (the VAD's recurrent state is an
/// input and an output, kept by each stream), so a server with many concurrent sessions needs
/// only as many ONNX Runtime sessions as inferences can run at the same moment — one per core,
/// each session running on one thread — instead of one per session. The pool holds at most that
/// many; a run that finds them all busy waits for one to come back. Without the bound, a burst
/// of concurrent sessions built a new ONNX Runtime session (≈ 0.6 s of CPU for CAM++) each time
/// all were busy, which made the burst worse and kept the memory of every session built.
/// A run never holds the pool's lock.
pub struct SessionPool {
    spec: &'static ModelSpec,
    slots: Mutex<Slots>,
    /// Signalled when a session comes back to the pool or a slot is given up.
    returned: Condvar,
    /// At most this many sessions (free, checked out or being built).
    cap: usize,
    /// A session being created on a background thread ([`SessionPool::warm_in_background`]);
    /// the first run that finds no free session waits for it instead of creating another.
    warming: Mutex<Option<Warming>>,
}

#[derive(Default)]
struct Slots {
    free: Vec<Session>,
    /// Sessions in existence or being built (free + checked out + warming).
    total: usize,
}

impl SessionPool {
    /// The process-wide pool of `spec` (one per model name), bounded by the cores.
    pub fn of(spec: &'static ModelSpec) -> &'static SessionPool {
        static POOLS: Mutex<Vec<&'static SessionPool>> = Mutex::new(Vec::new());
        let mut pools = POOLS.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = pools.iter().find(|p| p.spec.name == spec.name) {
            return p;
        }
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let p: &'static SessionPool = Box::leak(Box::new(SessionPool::new(spec, cores)));
        pools.push(p);
        p
    }

    fn new(spec: &'static ModelSpec, cap: usize) -> SessionPool {
        SessionPool {
            spec,
            slots: Mutex::new(Slots::default()),
            returned: Condvar::new(),
            cap: cap.max(1),
            warming: Mutex::new(None),
        }
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, Slots> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn warming(&self) -> std::sync::MutexGuard<'_, Option<Warming>> {
        self.warming.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Puts a session (back) among the free ones and wakes a run waiting for one.
    fn give_back(&self, session: Session) {
        self.slots().free.push(session);
        self.returned.notify_one();
    }

    /// Gives up a slot whose session could not be built.
    fn release_slot(&self) {
        self.slots().total -= 1;
        self.returned.notify_one();
    }

    /// Loads one session if none exists yet: a missing or corrupt model fails here, before any
    /// media is decoded.
    pub fn warm(&self) -> Result<(), InferenceError> {
        {
            let mut slots = self.slots();
            if slots.total > 0 {
                return Ok(());
            }
            slots.total += 1;
        }
        let session = self.built(load(self.spec))?;
        self.give_back(session);
        Ok(())
    }

    /// Checks the model file now (a missing or corrupt file fails here, before any media is
    /// decoded) and creates the first session on a background thread. For a large graph whose
    /// session takes longer to build than the first inference takes to come (CAM++: ≈ 0.6 s,
    /// against ≥ 12 s of speech before its first batch), this keeps the build off the critical
    /// path; an error building it surfaces at the first run.
    pub fn warm_in_background(&'static self) -> Result<(), InferenceError> {
        verify_file(self.spec)?;
        // The slot is counted and the handle stored under one lock: a run that checks between
        // the two would otherwise find the pool full with nothing to wait for.
        let mut slots = self.slots();
        if slots.total > 0 {
            return Ok(());
        }
        let handle = std::thread::Builder::new()
            .name("vigil-model-load".into())
            .spawn(move || load(self.spec))
            .map_err(|e| InferenceError::Run {
                model: self.spec.name.to_string(),
                reason: format!("cannot start the loading thread: {e}"),
            })?;
        slots.total += 1;
        *self.warming() = Some(handle);
        Ok(())
    }

    /// Waits for a background warm-up, if one is running. A process must not exit while a
    /// thread is inside ONNX Runtime (its teardown would pull the runtime from under it): every
    /// user of [`SessionPool::warm_in_background`] calls this before it goes away.
    pub fn settle(&self) {
        let warming = self.warming().take();
        if let Some(handle) = warming {
            match handle.join() {
                Ok(Ok(session)) => self.give_back(session),
                _ => self.release_slot(),
            }
        }
    }

    /// A free session, else the one being warmed, else a new one while under the cap, else
    /// the next one to come back.
    fn take(&self) -> Result<Session, InferenceError> {
        let mut slots = self.slots();
        loop {
            if let Some(s) = slots.free.pop() {
                return Ok(s);
            }
            if let Some(handle) = self.warming().take() {
                drop(slots);
                return self.built(handle.join().unwrap_or_else(|_| {
                    Err(InferenceError::Run {
                        model: self.spec.name.to_string(),
                        reason: "the loading thread panicked".into(),
                    })
                }));
            }
            if slots.total < self.cap {
                slots.total += 1;
                drop(slots);
                return self.built(load(self.spec));
            }
            slots = self.returned.wait(slots).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// A session built for a slot already counted; the slot is given up if the build failed.
    fn built(&self, r: Result<Session, InferenceError>) -> Result<Session, InferenceError> {
        if r.is_err() {
            self.release_slot();
        }
        r
    }

    /// Runs `f` with a session of its own (taken from the pool; waits while all are busy).
    pub fn with<R>(
        &self,
        f: impl FnOnce(&mut Session) -> Result<R, InferenceError>,
    ) -> Result<R, InferenceError> {
        let mut session = self.take()?;
        let out = f(&mut session);
        self.give_back(session);
        out
    }
}

type Warming = std::thread::JoinHandle<Result<Session, InferenceError>>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Six threads running the VAD at once through a pool of two: never more than two
    /// sessions exist or run at once, every run gets one, and nothing is lost.
    #[test]
    fn a_pool_never_holds_more_sessions_than_its_cap() {
        static SPEC: ModelSpec = SILERO_VAD;
        let pool: &'static SessionPool = Box::leak(Box::new(SessionPool::new(&SPEC, 2)));
        let running = AtomicUsize::new(0);
        let most = AtomicUsize::new(0);
        let runs = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..6 {
                s.spawn(|| {
                    for _ in 0..5 {
                        pool.with(|_session| {
                            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                            most.fetch_max(now, Ordering::SeqCst);
                            std::thread::sleep(std::time::Duration::from_millis(5));
                            running.fetch_sub(1, Ordering::SeqCst);
                            runs.fetch_add(1, Ordering::SeqCst);
                            Ok(())
                        })
                        .expect("the model loads");
                    }
                });
            }
        });
        assert_eq!(runs.load(Ordering::SeqCst), 30);
        assert!(
            most.load(Ordering::SeqCst) <= 2,
            "{most:?} sessions ran at once"
        );
        let slots = pool.slots();
        assert_eq!(
            (slots.total, slots.free.len()),
            (2, 2),
            "both built, both back"
        );
    }
}
