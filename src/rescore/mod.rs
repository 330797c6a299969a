//! `vigil rescore`: re-score an archive of recorded sessions under the current policy and
//! models, in parallel within bounds, resumable, with a diff of every changed verdict.
//!
//! Data flow: [`archive::collect`] lists the jobs (directory walks and manifests) → `--jobs`
//! worker threads take them in order; each hashes the media, looks its key up in the
//! [`ledger`], and when it is new scores it with [`crate::pipeline::score`] exactly as
//! `vigil score` does, writes the signed report and its HTML atomically, and compares the verdict
//! with the previous report ([`diff`]) → the calling thread records each result in the ledger
//! (bounded channel of `jobs` results) and reports progress → [`summary`] writes `rescore.json`
//! and `rescore.html` from the ledger.
//!
//! Memory: one decoding pipeline per job (≈ 360 MiB peak each on 720p, BENCHMARKS.md) plus a
//! few hundred bytes per session for the job list; results are not kept in memory.

pub mod archive;
pub mod deliver;
pub mod diff;
pub mod ledger;
pub mod summary;

use crate::inference::{CAMPPLUS, ModelRef, SILERO_VAD};
use crate::ingest::MediaInput;
use crate::pipeline::{self, ScoreOptions};
use crate::report::dsse;
use crate::report::{SessionInfo, html, write_atomic};
use archive::{Job, SessionSource};
use diff::Previous;
use ed25519_dalek::{SigningKey, VerifyingKey};
use ledger::{Known, Ledger, LedgerError, Record, RunState};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The ledger's file name inside `--out`.
pub const LEDGER: &str = "rescore.sqlite";
/// Peak memory budgeted per concurrent job when `--jobs` is not given (measured peak of a 720p
/// session in BENCHMARKS.md ≈ 360 MiB, plus headroom).
pub const MEMORY_PER_JOB: u64 = 512 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum RescoreError {
    #[error("output directory {path}: {source}")]
    Out {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start a worker thread: {0}")]
    Thread(#[source] std::io::Error),
}

/// Everything a run needs.
pub struct Options {
    pub archives: Vec<PathBuf>,
    pub out: PathBuf,
    /// Policy, sampling and ingest limits, as `vigil score` takes them (the session is set per
    /// job).
    pub score: ScoreOptions,
    pub key: SigningKey,
    /// Keys a previous report may be signed with to be trusted for the diff.
    pub trusted: Vec<VerifyingKey>,
    pub jobs: usize,
    pub retry_failed: bool,
    /// The command line, recorded with the run in the ledger.
    pub args: String,
}

/// One session's line in the summary (also what the ledger keeps for it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub media: String,
    pub state: String,
    /// The new signed report and its HTML, relative to `--out`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integrity: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risk_tier: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification_status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_s: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub previous: Previous,
}

impl Entry {
    pub fn failed(media: &str, error: String) -> Entry {
        Entry {
            media: media.to_string(),
            state: RunState::Failed.as_str().into(),
            report: None,
            html: None,
            report_id: None,
            integrity: None,
            risk_tier: None,
            verification_status: None,
            duration_s: None,
            error: Some(error),
            previous: Previous::None,
        }
    }
}

/// Running totals, passed to the progress observer after each session.
#[derive(Debug, Clone, Copy, Default)]
pub struct Tally {
    pub total: usize,
    pub done: usize,
    pub scored: usize,
    pub skipped: usize,
    pub failed: usize,
    /// Media seconds of the sessions scored in this run.
    pub media_s: f64,
}

/// One session's result, as the ledger records it.
pub struct Outcome {
    pub seq: u64,
    pub key: Option<String>,
    pub state: RunState,
    pub entry: Entry,
    pub rel: String,
}

/// A run set up: the ledger open, the archive collected, its problems recorded.
pub struct Prepared {
    pub ledger: Ledger,
    pub tally: Tally,
    /// The jobs in order; an `Err` is a job that cannot run (media, error).
    pub jobs: Vec<Result<Job, (String, String)>>,
    /// The sequence number of `jobs[0]` in this run's entries.
    pub first_seq: u64,
    pub ignored: Vec<archive::Ignored>,
    /// What every session key of this run shares (policy, sampling, version, models).
    pub key_base: String,
}

/// Creates `--out`, clears what a killed run left half-written, opens the ledger and collects the
/// archives; archive problems are recorded (and observed) as failures.
pub fn prepare(
    opts: &Options,
    observe: &mut impl FnMut(&Entry, &Tally),
) -> Result<Prepared, RescoreError> {
    std::fs::create_dir_all(&opts.out).map_err(|source| RescoreError::Out {
        path: opts.out.display().to_string(),
        source,
    })?;
    sweep_partials(&opts.out);
    let mut ledger = Ledger::open(&opts.out.join(LEDGER), &opts.args)?;
    let collected = archive::collect(&opts.archives, &opts.out);
    let mut tally = Tally {
        total: collected.jobs.len() + collected.problems.len(),
        ..Tally::default()
    };
    let mut seq = 0u64;
    for p in &collected.problems {
        let o = Outcome {
            seq,
            key: None,
            state: RunState::Failed,
            entry: Entry::failed(&p.source, p.error.clone()),
            rel: String::new(),
        };
        apply(&mut ledger, &mut tally, o, observe)?;
        seq += 1;
    }
    Ok(Prepared {
        ledger,
        tally,
        jobs: dedupe_outputs(collected.jobs),
        first_seq: seq,
        ignored: collected.ignored,
        key_base: key_base(&opts.score),
    })
}

/// Records one session's outcome in the ledger and the totals, then shows it to `observe`.
pub fn apply(
    ledger: &mut Ledger,
    tally: &mut Tally,
    o: Outcome,
    observe: &mut impl FnMut(&Entry, &Tally),
) -> Result<(), RescoreError> {
    record(ledger, o.seq, o.key.as_deref(), &o.rel, o.state, &o.entry)?;
    match o.state {
        RunState::Scored => {
            tally.scored += 1;
            tally.media_s += o.entry.duration_s.unwrap_or(0.0);
        }
        RunState::Skipped => tally.skipped += 1,
        RunState::Failed => tally.failed += 1,
    }
    tally.done += 1;
    observe(&o.entry, tally);
    Ok(())
}

/// Runs the batch on this machine; `observe` sees every session's entry as it completes.
/// Returns the ledger and totals; the summary files are written by [`summary::write`].
pub fn run(
    opts: &Options,
    mut observe: impl FnMut(&Entry, &Tally),
) -> Result<(Ledger, Tally, Vec<archive::Ignored>), RescoreError> {
    let Prepared {
        mut ledger,
        mut tally,
        jobs,
        first_seq,
        ignored,
        key_base,
    } = prepare(opts, &mut observe)?;
    let ctx = Context {
        opts,
        key_base,
        next: AtomicUsize::new(0),
        first_seq,
    };
    let (tx, rx) = crossbeam_channel::bounded::<Outcome>(opts.jobs.max(1));
    std::thread::scope(|s| -> Result<(), RescoreError> {
        for _ in 0..opts.jobs.max(1).min(jobs.len().max(1)) {
            let tx = tx.clone();
            let (ctx, jobs) = (&ctx, &jobs);
            std::thread::Builder::new()
                .name("vigil-rescore".into())
                .spawn_scoped(s, move || ctx.work(jobs, &tx))
                .map_err(RescoreError::Thread)?;
        }
        drop(tx);
        for o in rx {
            apply(&mut ledger, &mut tally, o, &mut observe)?;
        }
        Ok(())
    })?;
    Ok((ledger, tally, ignored))
}

/// Removes what a killed run left half-written (temporary files never renamed into place).
fn sweep_partials(out: &Path) {
    let partial = walkdir::WalkDir::new(out)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(crate::report::PARTIAL_PREFIX)
        });
    for e in partial {
        if let Err(err) = std::fs::remove_file(e.path()) {
            tracing::warn!(path = %e.path().display(), %err, "cannot remove a partial file");
        }
    }
}

pub(crate) fn record(
    ledger: &mut Ledger,
    seq: u64,
    key: Option<&str>,
    rel: &str,
    state: RunState,
    entry: &Entry,
) -> Result<(), RescoreError> {
    let json = serde_json::to_string(entry).expect("entry serialises");
    ledger.record(&Record {
        key,
        seq,
        media: &entry.media,
        rel,
        state,
        entry: &json,
        error: entry.error.as_deref(),
    })?;
    Ok(())
}

/// Two jobs writing the same output (the same relative path in two archives) would overwrite
/// each other: the second becomes a failure naming the first.
fn dedupe_outputs(jobs: Vec<Job>) -> Vec<Result<Job, (String, String)>> {
    let mut seen = std::collections::HashMap::new();
    jobs.into_iter()
        .map(|j| match seen.get(&j.rel) {
            Some(first) => Err((
                j.media.clone(),
                format!(
                    "its report {}{} would overwrite the one of {first}",
                    j.rel.display(),
                    archive::REPORT_SUFFIX
                ),
            )),
            None => {
                seen.insert(j.rel.clone(), j.media.clone());
                Ok(j)
            }
        })
        .collect()
}

/// What every session key shares in a run: policy, sampling, version and models.
fn key_base(score: &ScoreOptions) -> String {
    let mut h = Sha256::new();
    h.update(score.policy.sha256.as_bytes());
    h.update(serde_json::to_vec(&score.ingest.sampling).expect("sampling serialises"));
    h.update(env!("CARGO_PKG_VERSION").as_bytes());
    for m in &models() {
        h.update(m.sha256.as_bytes());
    }
    hex::encode(h.finalize())
}

struct Context<'a> {
    opts: &'a Options,
    key_base: String,
    next: AtomicUsize,
    first_seq: u64,
}

impl Context<'_> {
    /// A worker: takes the next job until none is left. Each worker reads the ledger through its
    /// own connection (WAL: readers never wait for the recording thread).
    fn work(
        &self,
        jobs: &[Result<Job, (String, String)>],
        tx: &crossbeam_channel::Sender<Outcome>,
    ) {
        let reader = Ledger::reader(&self.opts.out.join(LEDGER));
        loop {
            let i = self.next.fetch_add(1, Ordering::Relaxed);
            let Some(job) = jobs.get(i) else { return };
            let seq = self.first_seq + i as u64;
            let outcome = match (job, &reader) {
                (Err((media, error)), _) => Outcome {
                    seq,
                    key: None,
                    state: RunState::Failed,
                    entry: Entry::failed(media, error.clone()),
                    rel: String::new(),
                },
                (Ok(job), Err(e)) => Outcome {
                    seq,
                    key: None,
                    state: RunState::Failed,
                    entry: Entry::failed(&job.media, e.to_string()),
                    rel: String::new(),
                },
                (Ok(job), Ok(reader)) => self.one(job, seq, reader),
            };
            if tx.send(outcome).is_err() {
                return;
            }
        }
    }

    fn one(&self, job: &Job, seq: u64, reader: &Ledger) -> Outcome {
        let rel = job.rel.display().to_string();
        let fail = |key: Option<String>, error: String| Outcome {
            seq,
            key,
            state: RunState::Failed,
            entry: Entry::failed(&job.media, error),
            rel: rel.clone(),
        };
        let session = match job_session(job) {
            Ok(s) => s,
            Err(e) => return fail(None, e),
        };
        let key = match self.session_key(job, &session) {
            Ok(k) => k,
            Err(e) => return fail(None, e),
        };
        match settled(self.opts, reader, job, seq, &key) {
            Ok(Some(o)) => return o,
            Ok(None) => {}
            Err(e) => return fail(Some(key), e.to_string()),
        }
        match self.score(job, session) {
            Ok(entry) => Outcome {
                seq,
                key: Some(key),
                state: RunState::Scored,
                entry,
                rel,
            },
            Err(e) => fail(Some(key), e),
        }
    }

    fn session_key(&self, job: &Job, session: &SessionInfo) -> Result<String, String> {
        session_key(job, session, &self.key_base)
    }

    /// Scores one session exactly as `vigil score` does and writes its report and HTML.
    fn score(&self, job: &Job, session: SessionInfo) -> Result<Entry, String> {
        let input = MediaInput::parse(&job.media).map_err(|e| e.to_string())?;
        let opts = ScoreOptions {
            session,
            ..self.opts.score.clone()
        };
        let report = pipeline::score(&input, &opts).map_err(|e| e.to_string())?;
        let envelope = dsse::sign(&report.to_payload(), &self.opts.key);
        let bytes = serde_json::to_vec_pretty(&envelope).expect("envelope serialises");
        write_outputs(
            self.opts,
            job,
            &bytes,
            &envelope.signatures[0].keyid,
            &report,
        )
    }
}

/// The outcome of a session the ledger already settles — done with its report on disk
/// (skipped), or failed and not to be retried — or `None` when it must be scored.
pub fn settled(
    opts: &Options,
    ledger: &Ledger,
    job: &Job,
    seq: u64,
    key: &str,
) -> Result<Option<Outcome>, LedgerError> {
    let rel = job.rel.display().to_string();
    Ok(match ledger.known(key)? {
        Known::Done { outcome } if report_path(&opts.out, job).is_file() => {
            serde_json::from_str::<Entry>(&outcome)
                .ok()
                .map(|mut entry| {
                    entry.state = RunState::Skipped.as_str().into();
                    Outcome {
                        seq,
                        key: Some(key.to_string()),
                        state: RunState::Skipped,
                        entry,
                        rel,
                    }
                })
        }
        Known::Failed { error } if !opts.retry_failed => Some(Outcome {
            seq,
            key: Some(key.to_string()),
            state: RunState::Failed,
            entry: Entry::failed(&job.media, error),
            rel,
        }),
        _ => None,
    })
}

/// Every model a session may use, sorted: part of each session key and of `rescore.json`.
pub fn models() -> Vec<ModelRef> {
    let mut models = crate::analysis::face::model_refs();
    models.push(SILERO_VAD.reference());
    models.push(CAMPPLUS.reference());
    models.sort();
    models
}

/// A job's session: from its sidecar or manifest line, or none.
pub fn job_session(job: &Job) -> Result<SessionInfo, String> {
    match &job.session {
        SessionSource::None => Ok(SessionInfo::default()),
        SessionSource::Given(s) => Ok((**s).clone()),
        SessionSource::Invalid(e) => Err(e.clone()),
    }
}

/// The ledger key of a session (module docs of [`ledger`]).
pub fn session_key(job: &Job, session: &SessionInfo, key_base: &str) -> Result<String, String> {
    let media = match MediaInput::parse(&job.media).map_err(|e| e.to_string())? {
        MediaInput::File(p) => pipeline::hash_file(&p).map_err(|e| e.to_string())?.0,
        other => other.display_name(),
    };
    let mut h = Sha256::new();
    h.update(media.as_bytes());
    h.update([0]);
    h.update(serde_json::to_vec(session).expect("session serialises"));
    h.update([0]);
    h.update(key_base.as_bytes());
    Ok(hex::encode(h.finalize()))
}

/// Where a job's signed report goes.
pub fn report_path(out: &Path, job: &Job) -> PathBuf {
    with_suffix(&out.join(&job.rel), archive::REPORT_SUFFIX)
}

/// Writes a session's signed report (`envelope`, as signed) and its HTML atomically, compares the
/// verdict with the previous report, and returns the session's entry.
pub fn write_outputs(
    opts: &Options,
    job: &Job,
    envelope: &[u8],
    keyid: &str,
    report: &crate::report::Report,
) -> Result<Entry, String> {
    let out = report_path(&opts.out, job);
    let page_path = with_suffix(&opts.out.join(&job.rel), summary::HTML_SUFFIX);
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let page = html::render(
        report,
        &html::SignatureCheck::Valid {
            keyid: keyid.to_string(),
        },
    );
    // The HTML first: a report file on disk means the session is complete.
    write_atomic(&page_path, page.as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", page_path.display()))?;
    write_atomic(&out, envelope).map_err(|e| format!("cannot write {}: {e}", out.display()))?;
    let previous = match &job.previous {
        Some(p) => diff::compare(p, &opts.trusted, report),
        None => Previous::None,
    };
    let rel = |p: &Path| p.strip_prefix(&opts.out).unwrap_or(p).display().to_string();
    Ok(Entry {
        media: job.media.clone(),
        state: RunState::Scored.as_str().into(),
        report: Some(rel(&out)),
        html: Some(rel(&page_path)),
        report_id: Some(report.report_id.clone()),
        integrity: Some(report.score.integrity),
        risk_tier: Some(report.score.risk_tier.as_str().to_owned()),
        verification_status: Some(report.score.verification_status.as_str().to_owned()),
        duration_s: Some(report.media.duration_s),
        error: None,
        previous,
    })
}

pub(crate) fn with_suffix(p: &Path, suffix: &str) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// `--jobs` when not given: one per core, as many as memory allows at [`MEMORY_PER_JOB`] each
/// (from /proc/meminfo's MemAvailable), at least one.
pub fn default_jobs() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let by_memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemAvailable:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(cores, |kb| (kb * 1024 / MEMORY_PER_JOB) as usize);
    cores.min(by_memory).max(1)
}
