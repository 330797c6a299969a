//! The delivery worker: claims due outbox rows, runs each through its connector on the tokio
//! runtime (network I/O only), and records the outcome durably before moving on.
//!
//! SQLite calls are blocking, so they run through [`Shared::call`] on the blocking pool, and the
//! store's lock is never held across an `.await`. Outcomes are explicit: delivered, retry at a time,
//! or dead-lettered (logged at error level under the `vigil::alert` target and counted).

use super::retry::{Class, RetryPolicy, SendError, TransportKind};
use super::{Connector, Receipt};
use crate::store::{Job, Shared, Store, StoreError, now_ms};
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;

/// Logs a delivery event with the ids that tie the ATS and Vigil together (the delivery, report,
/// candidate, session, tenant, application, connector and attempt), then the event's own fields.
/// The fields are on the event itself, not a span, so the `vigil::alert` dead-letter line keeps
/// them under any filter.
macro_rules! delivery_log {
    ($level:ident, target: $target:expr, $job:ident, $($rest:tt)+) => {
        delivery_log!(@ $level, ($target), $job, $($rest)+)
    };
    ($level:ident, $job:ident, $($rest:tt)+) => {
        delivery_log!(@ $level, (module_path!()), $job, $($rest)+)
    };
    (@ $level:ident, ($target:expr), $job:ident, $($rest:tt)+) => {
        tracing::$level!(
            target: $target,
            delivery = $job.delivery_id,
            report = %$job.report.report_id,
            candidate.external_id = %$job.report.candidate_id.as_deref().unwrap_or(""),
            session = %$job.report.session_id.as_deref().unwrap_or(""),
            tenant = %$job.report.tenant,
            application = %$job.report.application_id,
            connector = %$job.connector,
            attempt = $job.attempt,
            $($rest)+
        )
    };
}

/// How long to sleep when nothing is due and nothing is in flight (upper bound; the worker
/// wakes earlier when the next row becomes due).
const IDLE_POLL: Duration = Duration::from_millis(500);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunMode {
    /// Return once no delivery is pending (dead letters do not keep it running).
    UntilIdle,
    /// Run until the shutdown future completes.
    Forever,
}

/// What one worker run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunStats {
    pub attempts: u64,
    pub delivered: u64,
    pub retried: u64,
    pub dead_lettered: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("a store or delivery task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

pub struct Worker {
    store: Shared,
    connectors: Arc<HashMap<(String, String), Connector>>,
    retry: RetryPolicy,
    concurrency: usize,
    lease: Duration,
}

enum Outcome {
    Delivered(Receipt),
    Failed(SendError),
}

impl Worker {
    pub fn new(
        store: Store,
        connectors: Vec<(String, Connector)>,
        retry: RetryPolicy,
        concurrency: usize,
        lease: Duration,
    ) -> Worker {
        let map = connectors
            .into_iter()
            .map(|(tenant, c)| ((tenant, c.name().to_owned()), c))
            .collect();
        Worker {
            store: Shared::new(store),
            connectors: Arc::new(map),
            retry,
            concurrency: concurrency.max(1),
            lease,
        }
    }

    async fn with_store<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, WorkerError> {
        Ok(self.store.call(f).await??)
    }

    /// Runs deliveries until idle (or until `shutdown` completes in `Forever` mode). In-flight
    /// attempts are finished, never abandoned, when shutting down.
    pub async fn run(
        &self,
        mode: RunMode,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<RunStats, WorkerError> {
        let mut stats = RunStats::default();
        let mut inflight: JoinSet<(Job, i64, Outcome)> = JoinSet::new();
        let mut in_flight_ids: HashSet<i64> = HashSet::new();
        let mut rng = StdRng::from_entropy();
        tokio::pin!(shutdown);
        let mut stopping = false;
        loop {
            // Record finished attempts before claiming more, so no lease runs out while an
            // outcome waits in the join set.
            while let Some(done) = inflight.try_join_next() {
                self.finished(done?, &mut in_flight_ids, &mut stats, &mut rng)
                    .await?;
            }
            let has_room = !stopping && inflight.len() < self.concurrency;
            if has_room {
                let free = self.concurrency - inflight.len();
                let lease = self.lease;
                let exclude = in_flight_ids.clone();
                let jobs = self
                    .with_store(move |s| s.claim_due(now_ms(), free, lease, &exclude))
                    .await?;
                for job in jobs {
                    in_flight_ids.insert(job.delivery_id);
                    stats.attempts += 1;
                    inflight.spawn(run_attempt(self.connectors.clone(), job, lease));
                }
            }
            if inflight.is_empty() {
                if stopping {
                    break;
                }
                let pending = self.with_store(|s| Ok(s.counts()?.pending)).await?;
                if mode == RunMode::UntilIdle && pending == 0 {
                    break;
                }
            }
            let wait = if !stopping && inflight.len() < self.concurrency {
                self.with_store(|s| s.next_due())
                    .await?
                    .map(|t| Duration::from_millis((t - now_ms()).max(1) as u64))
                    .unwrap_or(IDLE_POLL)
                    .min(IDLE_POLL)
            } else {
                IDLE_POLL
            };
            tokio::select! {
                Some(done) = inflight.join_next() => {
                    self.finished(done?, &mut in_flight_ids, &mut stats, &mut rng).await?;
                }
                _ = tokio::time::sleep(wait) => {}
                _ = &mut shutdown, if !stopping => stopping = true,
            }
        }
        Ok(stats)
    }

    /// A finished attempt: no longer in flight, outcome persisted.
    async fn finished(
        &self,
        (job, started, outcome): (Job, i64, Outcome),
        in_flight_ids: &mut HashSet<i64>,
        stats: &mut RunStats,
        rng: &mut StdRng,
    ) -> Result<(), WorkerError> {
        in_flight_ids.remove(&job.delivery_id);
        self.record(job, started, outcome, stats, rng).await
    }

    /// Persists one attempt's outcome (and the steps it completed).
    async fn record(
        &self,
        mut job: Job,
        started: i64,
        outcome: Outcome,
        stats: &mut RunStats,
        rng: &mut StdRng,
    ) -> Result<(), WorkerError> {
        let now = now_ms();
        match outcome {
            Outcome::Delivered(receipt) => {
                stats.delivered += 1;
                delivery_log!(info, job, remote_ref = %receipt.remote_ref, "delivered");
                self.with_store(move |s| {
                    s.save_progress(job.delivery_id, &job.progress)?;
                    s.mark_delivered(&job, &receipt.remote_ref, started, now)
                })
                .await?;
            }
            Outcome::Failed(err) => {
                let class = err.classify();
                let delay = self.retry.delay_after(job.attempt, &err, rng);
                let text = err.to_string();
                match delay {
                    Some(d) => {
                        stats.retried += 1;
                        delivery_log!(
                            warn,
                            job,
                            retry_in_ms = d.as_millis() as u64,
                            error = %text,
                            "attempt failed; will retry"
                        );
                    }
                    None => {
                        stats.dead_lettered += 1;
                        let why = if class == Class::Permanent {
                            "permanent error"
                        } else {
                            "attempts exhausted"
                        };
                        delivery_log!(
                            error,
                            target: "vigil::alert",
                            job,
                            error = %text,
                            "dead letter ({why}): requeue with `vigil ats retry {}`",
                            job.delivery_id
                        );
                    }
                }
                let next = delay.map(|d| now + d.as_millis() as i64);
                let progress = std::mem::take(&mut job.progress);
                self.with_store(move |s| {
                    s.save_progress(job.delivery_id, &progress)?;
                    s.mark_failed(&job, &text, next, started, now)
                })
                .await?;
            }
        }
        Ok(())
    }
}

/// One attempt, bounded by half the lease: it must end before the lease does, or the row
/// becomes claimable while this attempt may still write to the ATS.
async fn run_attempt(
    connectors: Arc<HashMap<(String, String), Connector>>,
    mut job: Job,
    lease: Duration,
) -> (Job, i64, Outcome) {
    use tracing::Instrument;
    let started = now_ms();
    let deadline = lease / 2;
    // One span per attempt carrying the ids that tie the ATS and Vigil together; connectors
    // record the ATS's request id into it when the ATS returns one.
    let span = tracing::info_span!(
        "delivery_attempt",
        delivery = job.delivery_id,
        report = %job.report.report_id,
        tenant = %job.report.tenant,
        connector = %job.connector,
        application = %job.report.application_id,
        candidate.external_id = %job.report.candidate_id.as_deref().unwrap_or(""),
        session = %job.report.session_id.as_deref().unwrap_or(""),
        attempt = job.attempt,
        ats.request_id = tracing::field::Empty,
    );
    let outcome = match tokio::time::timeout(deadline, attempt(&connectors, &mut job))
        .instrument(span)
        .await
    {
        Ok(o) => o,
        Err(_) => Outcome::Failed(SendError::Transport {
            call: "delivery attempt",
            kind: TransportKind::Timeout,
            detail: format!(
                "abandoned after {} ms (half the lease)",
                deadline.as_millis()
            ),
        }),
    };
    (job, started, outcome)
}

/// Runs one attempt; the connector records completed steps in `job.progress`, which the
/// worker persists whatever the outcome.
async fn attempt(connectors: &HashMap<(String, String), Connector>, job: &mut Job) -> Outcome {
    let key = (job.report.tenant.clone(), job.connector.clone());
    let Some(c) = connectors.get(&key) else {
        return Outcome::Failed(SendError::Config(format!(
            "tenant '{}' has no '{}' connector configured any more",
            job.report.tenant, job.connector
        )));
    };
    match c
        .deliver(&job.report, job.prior_attempts, &mut job.progress)
        .await
    {
        Ok(receipt) => Outcome::Delivered(receipt),
        Err(e) => Outcome::Failed(e),
    }
}
