//! Admitted sessions: their spool, the analysis thread that decodes the media while it arrives,
//! and the finalisation that signs the report and puts it in the outbox.
//!
//! Each admitted session has one OS thread running [`pipeline::score`] over its growing spool
//! (the GStreamer and model work happens there and on the rayon pool, never on the async
//! runtime). Ending a session only ends the spool: the decoder drains the last bytes and the
//! analysers finish, so the report is ready moments later. State transitions are written to
//! SQLite before they are acted on, so a restart finds every session where it was: receiving
//! sessions resume (the bot continues from the durable offset), finalizing ones are analysed
//! again from their spool, and one whose media is gone is reported as interrupted.
//!
//! Why one file of this length: admission, the per-session state machine, its durable transitions and
//! restart recovery are one piece of logic over one lock.

use super::config::ServeConfig;
use crate::ingest::{IngestConfig, IngestError, MediaInput, Spool, spool};
use crate::pipeline::{self, PipelineError, Progress, ScoreOptions};
use crate::report::{dsse, html};
use crate::scoring::Policy;
use crate::store::live::{LiveSession, Source, State};
use crate::store::{Conn, NewReport, Shared, StoreError, now_ms};
use ed25519_dalek::SigningKey;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::Histogram;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Why a session could not be admitted or driven.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("{active} sessions are active, the configured maximum; retry later")]
    Full { active: usize },
    #[error(
        "{active} sessions of this tenant (or bot) are active, its share of the server; retry later"
    )]
    TenantFull { active: usize },
    #[error("the server is shutting down")]
    ShuttingDown,
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("cannot write the session's media: {0}")]
    Io(#[from] std::io::Error),
}

/// Media a bot must deliver to count as active for the idle timeout: 16 KiB is 4 s of a
/// 32 kbit/s audio-only stream, and 4.5 hours of one byte every 20 s.
const PROGRESS_BYTES: u64 = 16 * 1024;

/// When a session's media started and stopped arriving, and the bot's last progress: one
/// logical state, so one lock.
#[derive(Debug)]
struct Clock {
    first_byte: Option<Instant>,
    /// Last sign of progress from the bot (see [`Active::idle_for`]) and the bytes received
    /// since it.
    last_progress: Instant,
    since_progress: u64,
    ended: Option<Instant>,
}

/// An admitted session (receiving or finalizing).
pub struct Active {
    pub id: String,
    pub tenant: String,
    /// The bot (token name) that created the session.
    pub bot: String,
    pub source: Source,
    pub spool: Arc<Spool>,
    pub progress: Arc<Progress>,
    /// One writer at a time (a second concurrent upload gets 409).
    pub writer: tokio::sync::Mutex<()>,
    clock: Mutex<Clock>,
    /// Stopped by a shutdown: the analysis result is discarded, the state stays as stored.
    parked: AtomicBool,
    /// Stops the decoder whatever its source (spool, complete file, URL).
    cancel: Arc<AtomicBool>,
    /// Incremented by every live-stream request: an older request still open (a half-open
    /// connection) sees it change and hands over to the reconnecting bot.
    pub stream_gen: AtomicU64,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Active {
    /// Seconds the analysis is behind the live stream (wall time since the first byte minus
    /// the media time analysed); `None` before the first byte or once ended.
    pub fn lag_s(&self) -> Option<f64> {
        let c = self.clock();
        let first = c.first_byte.filter(|_| c.ended.is_none())?;
        Some((first.elapsed().as_secs_f64() - self.progress.media_s()).max(0.0))
    }

    /// Marks `bytes` as durable: the decoder may read them.
    pub fn received(&self, bytes: u64) {
        let now = Instant::now();
        let mut c = self.clock();
        c.first_byte.get_or_insert(now);
        c.since_progress += bytes;
        if c.since_progress >= PROGRESS_BYTES {
            (c.last_progress, c.since_progress) = (now, 0);
        }
        drop(c);
        self.spool.advance(bytes);
    }

    /// How long since the bot last delivered [`PROGRESS_BYTES`] of media: a byte now and then
    /// does not keep a session alive.
    fn idle_for(&self) -> Duration {
        self.clock().last_progress.elapsed()
    }

    /// When the session was ended (by the bot, or found ended after a restart).
    fn ended_at(&self) -> Option<Instant> {
        self.clock().ended
    }

    /// Records the end once; a later call keeps the first time.
    fn mark_ended(&self) {
        self.clock().ended.get_or_insert(Instant::now());
    }

    fn clock(&self) -> std::sync::MutexGuard<'_, Clock> {
        self.clock.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stops the analysis: the spool reader and the decoder both give up.
    fn stop(&self, reason: &str) {
        self.cancel.store(true, Ordering::Relaxed);
        self.spool.abort(reason);
    }

    /// True once the session takes no more media (ended, or stopped).
    pub fn closed(&self) -> bool {
        self.spool.is_ended() || self.spool.is_aborted()
    }
}

/// Upper bounds (seconds) of the report latency histogram's buckets.
pub const LATENCY_BOUNDS: [f64; 8] = [0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0];

/// Figures for `/metrics` kept in memory (the session counts come from the store). The metric
/// types share their state between clones, so a scrape registers clones of these.
#[derive(Debug)]
pub struct Stats {
    /// Seconds from the end of a session to its signed report in the outbox.
    pub latency: Histogram,
    pub admission_refused: Counter,
    pub rate_limited: Counter,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            latency: Histogram::new(LATENCY_BOUNDS),
            admission_refused: Counter::default(),
            rate_limited: Counter::default(),
        }
    }
}

/// Everything the API needs to drive sessions.
pub struct Sessions {
    pub cfg: Arc<ServeConfig>,
    pub store: Shared,
    key: SigningKey,
    policy: Policy,
    active: Mutex<HashMap<String, Arc<Active>>>,
    pub stats: Stats,
    shutting_down: AtomicBool,
}

impl Sessions {
    pub fn new(
        cfg: Arc<ServeConfig>,
        store: Shared,
        key: SigningKey,
        policy: Policy,
    ) -> Arc<Sessions> {
        Arc::new(Sessions {
            cfg,
            store,
            key,
            policy,
            active: Mutex::new(HashMap::new()),
            stats: Stats::default(),
            shutting_down: AtomicBool::new(false),
        })
    }

    fn store(&self) -> Result<Conn<'_>, StoreError> {
        self.store.lock()
    }

    pub fn dir(&self, id: &str) -> PathBuf {
        self.cfg.spool_dir.join(id)
    }

    pub fn active(&self, id: &str) -> Option<Arc<Active>> {
        self.active.lock().unwrap().get(id).cloned()
    }

    pub fn active_all(&self) -> Vec<Arc<Active>> {
        let mut v: Vec<_> = self.active.lock().unwrap().values().cloned().collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Relaxed)
    }

    /// Admits a new session: spool directory, references, the row, the analysis thread.
    /// `references` are (file name, bytes) pairs written next to the media.
    pub fn admit(
        self: &Arc<Self>,
        row: LiveSession,
        references: Vec<(&'static str, Vec<u8>)>,
    ) -> Result<Arc<Active>, SessionError> {
        if self.is_shutting_down() {
            return Err(SessionError::ShuttingDown);
        }
        // Reserve the slot under the lock; the disk and database work happens outside it.
        let active = {
            let mut map = self.active.lock().unwrap();
            if map.len() >= self.cfg.max_sessions {
                self.stats.admission_refused.inc();
                return Err(SessionError::Full { active: map.len() });
            }
            let of_tenant = map.values().filter(|a| a.tenant == row.tenant).count();
            let of_bot = map
                .values()
                .filter(|a| a.tenant == row.tenant && a.bot == row.bot)
                .count();
            if of_tenant >= self.cfg.max_sessions_per_tenant
                || of_bot >= self.cfg.max_sessions_per_token
            {
                self.stats.admission_refused.inc();
                return Err(SessionError::TenantFull {
                    active: of_tenant.max(of_bot),
                });
            }
            let active = self.activate(&row, row.media_name.clone());
            map.insert(row.id.clone(), active.clone());
            active
        };
        let dir = self.dir(&row.id);
        let prepared = (|| -> Result<(), SessionError> {
            std::fs::create_dir_all(&dir)?;
            std::fs::File::create(dir.join("media"))?.sync_all()?;
            for (name, bytes) in &references {
                write_synced(&dir.join(name), bytes)?;
            }
            sync_dir(&dir)?;
            self.store()?.create_live_session(&row)?;
            Ok(())
        })();
        if let Err(e) = prepared {
            let _ = std::fs::remove_dir_all(&dir);
            self.active.lock().unwrap().remove(&row.id);
            return Err(e);
        }
        self.start(active.clone(), row);
        Ok(active)
    }

    fn activate(&self, row: &LiveSession, media_name: String) -> Arc<Active> {
        let now = Instant::now();
        Arc::new(Active {
            id: row.id.clone(),
            tenant: row.tenant.clone(),
            bot: row.bot.clone(),
            source: row.source,
            spool: Arc::new(Spool::new(
                self.dir(&row.id).join("media"),
                media_name,
                row.received_bytes,
            )),
            progress: Arc::new(Progress::default()),
            writer: tokio::sync::Mutex::new(()),
            clock: Mutex::new(Clock {
                first_byte: (row.received_bytes > 0).then_some(now),
                last_progress: now,
                since_progress: 0,
                ended: None,
            }),
            parked: AtomicBool::new(false),
            cancel: Arc::new(AtomicBool::new(false)),
            stream_gen: AtomicU64::new(0),
            thread: Mutex::new(None),
        })
    }

    fn start(self: &Arc<Self>, active: Arc<Active>, row: LiveSession) {
        let me = self.clone();
        let a = active.clone();
        let handle = std::thread::Builder::new()
            .name(format!("vigil-session-{}", &row.id[..row.id.len().min(12)]))
            .spawn(move || me.analyse(a, row))
            .expect("spawning a session analysis thread");
        *active.thread.lock().unwrap() = Some(handle);
    }

    /// Resumes the sessions a previous process left active. Returns how many resumed and how
    /// many could not be (their media is gone: reported as interrupted).
    pub fn recover(self: &Arc<Self>) -> Result<(usize, usize), SessionError> {
        let rows = self.store()?.active_live_sessions()?;
        let (mut resumed, mut lost) = (0, 0);
        for row in rows {
            let media = self.dir(&row.id).join("media");
            if row.source != Source::Url {
                let ok = std::fs::OpenOptions::new()
                    .write(true)
                    .open(&media)
                    .and_then(|f| {
                        // Bytes past the recorded length were never acknowledged: cut them.
                        if f.metadata()?.len() < row.received_bytes {
                            return Err(std::io::Error::other("shorter than recorded"));
                        }
                        f.set_len(row.received_bytes)?;
                        f.sync_all()
                    });
                if let Err(e) = ok {
                    tracing::error!(session = %row.id, tenant = %row.tenant, "cannot resume: received media lost ({e})");
                    self.store()?.finish_live_session(
                        &row.id,
                        State::Interrupted,
                        None,
                        Some("the server restarted and this session's received media was lost"),
                        now_ms(),
                    )?;
                    let _ = std::fs::remove_dir_all(self.dir(&row.id));
                    lost += 1;
                    continue;
                }
            }
            let active = self.activate(&row, row.media_name.clone());
            if row.state == State::Finalizing {
                active.mark_ended();
                active.spool.end();
            }
            tracing::info!(session = %row.id, tenant = %row.tenant, state = row.state.as_str(), bytes = row.received_bytes, "resuming session after restart");
            self.active
                .lock()
                .unwrap()
                .insert(row.id.clone(), active.clone());
            self.start(active, row);
            resumed += 1;
        }
        // Media of sessions that reached a final state but whose directory survived a crash
        // (between the final state and the deletion) is not kept.
        if let Ok(entries) = std::fs::read_dir(&self.cfg.spool_dir) {
            let active = self.active.lock().unwrap();
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with("vs_") && !active.contains_key(&name) {
                    tracing::info!(session = %name, "deleting media left by a finished session");
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        Ok((resumed, lost))
    }

    /// The bot ended the session: no more media; the report follows.
    pub fn end(&self, active: &Active) -> Result<bool, SessionError> {
        let changed = self.store()?.end_live_session(&active.id, now_ms())?;
        if changed {
            active.mark_ended();
            active.spool.end();
        }
        Ok(changed)
    }

    /// Interrupts receiving sessions whose bot has sent nothing for the idle timeout.
    pub fn reap_idle(&self) {
        for a in self.active_all() {
            // A URL session receives nothing from the bot: Vigil is pulling it.
            if a.source != Source::Url
                && a.ended_at().is_none()
                && a.idle_for() > self.cfg.idle_timeout
            {
                let why = format!(
                    "no media for {} s and the session was never ended",
                    self.cfg.idle_timeout.as_secs()
                );
                match self
                    .store()
                    .and_then(|s| s.interrupt_live_session(&a.id, &why, now_ms()))
                {
                    Ok(true) => {
                        tracing::warn!(session = %a.id, tenant = %a.tenant, "interrupted an idle session: {why}");
                        a.stop(&why);
                    }
                    Ok(false) => {} // ended or finished meanwhile
                    Err(e) => {
                        tracing::error!(session = %a.id, "cannot record the interruption: {e}")
                    }
                }
            }
        }
    }

    /// First step of a shutdown, as soon as the signal arrives: stop admitting and park every
    /// session still receiving (its analysis stops; its state and media stay and it resumes on
    /// the next start). Open uploads and streams notice and answer 503 with their offset.
    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::Relaxed);
        for a in self.active_all() {
            if a.ended_at().is_none() {
                a.parked.store(true, Ordering::Relaxed);
                a.stop("the server is shutting down; the session resumes on restart");
            }
        }
    }

    /// Second step: finalizing sessions get `grace` to finish; the rest are parked.
    pub fn finish_shutdown(&self, grace: Duration) {
        self.begin_shutdown();
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline && !self.active.lock().unwrap().is_empty() {
            std::thread::sleep(Duration::from_millis(50));
        }
        for a in self.active_all() {
            tracing::warn!(session = %a.id, "parking a session that did not finish within the grace period");
            a.parked.store(true, Ordering::Relaxed);
            a.stop("the server is shutting down; the session resumes on restart");
        }
        for a in self.active_all() {
            if let Some(t) = a.thread.lock().unwrap().take() {
                let _ = t.join();
            }
        }
    }

    /// Both steps (tests, and callers without a listener to drain).
    pub fn shutdown(&self, grace: Duration) {
        self.begin_shutdown();
        self.finish_shutdown(grace);
    }

    /// The analysis thread: decode as the media arrives, score, sign, hand to the outbox.
    fn analyse(self: Arc<Self>, active: Arc<Active>, row: LiveSession) {
        let outcome =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.score(&active, &row)))
                .unwrap_or_else(|_| Err(AnalysisError::Panicked));
        let now = now_ms();
        let finished = match outcome {
            Err(_) if active.parked.load(Ordering::Relaxed) => {
                tracing::info!(session = %row.id, "analysis stopped for shutdown; state kept");
                self.active.lock().unwrap().remove(&row.id);
                return;
            }
            Ok(report_id) => {
                let latency = active.ended_at().map(|e| e.elapsed().as_secs_f64());
                if let Some(l) = latency {
                    self.stats.latency.observe(l);
                }
                tracing::info!(session = %row.id, tenant = %row.tenant, candidate = row.candidate_id.as_deref().unwrap_or("-"), report = %report_id, latency_s = latency.unwrap_or(0.0), "report signed and queued");
                Ok(())
            }
            Err(e) => {
                e.log(&row);
                let message = e.to_string();
                self.store().and_then(|s| {
                    s.finish_live_session(&row.id, State::Failed, None, Some(&message), now)
                })
            }
        };
        if let Err(e) = finished {
            tracing::error!(session = %row.id, "cannot record the session's end: {e}");
        }
        // Raw media is kept only until the session reaches a final state.
        let _ = std::fs::remove_dir_all(self.dir(&row.id));
        self.active.lock().unwrap().remove(&row.id);
    }

    /// Runs the pipeline and registers the signed report; `Err` is the message for the API.
    fn score(&self, active: &Active, row: &LiveSession) -> Result<String, AnalysisError> {
        let dir = self.dir(&row.id);
        let input = match row.source {
            Source::Url => MediaInput::parse(row.source_url.as_deref().unwrap_or_default())
                .map_err(AnalysisError::Source)?,
            Source::Live => MediaInput::Spool(active.spool.clone()),
            Source::Upload => self.upload_input(active)?,
        };
        let session =
            serde_json::from_str(&row.session_json).map_err(AnalysisError::StoredSession)?;
        let reference = |name: &str| {
            let p = dir.join(name);
            p.exists().then_some(MediaInput::File(p))
        };
        let opts = ScoreOptions {
            ingest: IngestConfig {
                sampling: self.cfg.sampling,
                stall_timeout: Duration::from_secs(60),
                cancel: Some(active.cancel.clone()),
                follow_redirects: false,
                max_duration: self.cfg.max_duration,
                max_frame_pixels: self.cfg.max_frame_pixels,
                // Live sessions share the server's cores.
                decoder_threads: Some(1),
                ..IngestConfig::default()
            },
            session,
            policy: self.policy.clone(),
            reference_face: reference("reference_face"),
            reference_voice: reference("reference_voice"),
            progress: Some(active.progress.clone()),
            media_name: (row.source != Source::Url).then(|| active.spool.name().to_string()),
            ..ScoreOptions::default()
        };
        let media_path = dir.join("media").display().to_string();
        let dir_prefix = format!("{}/", dir.display());
        let report = pipeline::score(&input, &opts).map_err(|e| AnalysisError::Pipeline {
            // Messages name the media as the bot named it and references by their role, never
            // by a server path.
            message: e
                .to_string()
                .replace(&media_path, active.spool.name())
                .replace(&dir_prefix, ""),
            source: e,
        })?;
        let payload = report.to_payload();
        let envelope = dsse::sign(&payload, &self.key);
        let page = html::render(
            &report,
            &html::SignatureCheck::Valid {
                keyid: envelope.signatures[0].keyid.clone(),
            },
        );
        let new = NewReport {
            candidate_id: row.candidate_id.clone(),
            session_id: Some(row.id.clone()),
            ..NewReport::of(
                &report,
                &row.tenant,
                row.application_id.clone(),
                serde_json::to_vec_pretty(&envelope).expect("envelope serialises"),
                Some(page.into_bytes()),
            )
        };
        let connectors = self
            .cfg
            .ats
            .tenant(&row.tenant)
            .map(|t| t.connectors())
            .unwrap_or_default();
        let mut store = self.store().map_err(AnalysisError::StoreReport)?;
        let now = now_ms();
        store
            .register(&new, &connectors, &format!("bot:{}", row.bot), now)
            .map_err(AnalysisError::StoreReport)?;
        store
            .finish_live_session(&row.id, State::Done, Some(&report.report_id), None, now)
            .map_err(AnalysisError::MarkDone)?;
        Ok(report.report_id)
    }

    /// A recorded upload decodes as it arrives unless it is an MP4 with its index at the end;
    /// that layout is decoded from the complete file once the bot ends the session.
    fn upload_input(&self, active: &Active) -> Result<MediaInput, AnalysisError> {
        let spool = &active.spool;
        let whole = || loop {
            match spool.wait_beyond(u64::MAX, Duration::from_millis(500)) {
                spool::Wait::Ended => return Ok(MediaInput::File(spool.path().to_path_buf())),
                spool::Wait::Aborted(r) => return Err(AnalysisError::Aborted(r)),
                _ => {}
            }
        };
        loop {
            let len = spool.durable_len();
            let layout =
                spool::file_needs_whole(spool.path(), len).map_err(AnalysisError::Received)?;
            match layout {
                Some(false) => return Ok(MediaInput::Spool(spool.clone())),
                Some(true) => return whole(),
                // Undecided at the end: decode the complete file (pull mode handles any layout).
                None => match spool.wait_beyond(len, Duration::from_millis(500)) {
                    spool::Wait::Ended => return whole(),
                    spool::Wait::Aborted(r) => return Err(AnalysisError::Aborted(r)),
                    _ => {}
                },
            }
        }
    }
}

/// Why a session's analysis ended without a report. Its text is what the API shows the bot
/// (the media named as the bot named it, never a server path); a store fault says only that
/// the report is retried, its cause goes to the log.
#[derive(Debug, thiserror::Error)]
enum AnalysisError {
    #[error(transparent)]
    Source(IngestError),
    /// The upload stopped before its end (the reason is the spool's).
    #[error("{0}")]
    Aborted(String),
    #[error("cannot read the received media: {0}")]
    Received(#[source] std::io::Error),
    #[error("stored session is unreadable: {0}")]
    StoredSession(#[source] serde_json::Error),
    #[error("{message}")]
    Pipeline {
        message: String,
        #[source]
        source: PipelineError,
    },
    #[error("the report could not be stored; it is retried on restart")]
    StoreReport(#[source] StoreError),
    #[error("the session could not be marked done")]
    MarkDone(#[source] StoreError),
    #[error("internal error during the analysis; it has been logged")]
    Panicked,
}

impl AnalysisError {
    /// Logs the failure: the bot's message, and for the server's own faults the cause it
    /// does not see.
    fn log(&self, row: &LiveSession) {
        let candidate = row.candidate_id.as_deref().unwrap_or("-");
        match self {
            AnalysisError::StoreReport(e) | AnalysisError::MarkDone(e) => {
                tracing::error!(session = %row.id, tenant = %row.tenant, candidate, "{self}: {e}")
            }
            AnalysisError::Panicked => {
                tracing::error!(session = %row.id, tenant = %row.tenant, candidate, "the analysis panicked")
            }
            _ => {
                tracing::warn!(session = %row.id, tenant = %row.tenant, candidate, "session failed: {self}")
            }
        }
    }
}

fn write_synced(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut f = std::fs::File::create(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

fn sync_dir(dir: &std::path::Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}
