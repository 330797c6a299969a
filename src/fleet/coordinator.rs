//! `vigil rescore … --queue nats://…`: the coordinator. It prepares the run exactly as a local
//! rescore does (ledger, archive, skips), publishes one job per session still to score (message id
//! = the ledger key, so re-running never enqueues a job twice), and gathers the workers' results
//! from its durable consumer on the results stream into the same ledger, reports and summary.
//! Killed and re-run, it finds the results that arrived meanwhile waiting in the stream.

use super::{
    FleetError, JobMsg, RESULTS_PREFIX, RESULTS_STREAM, ResultMsg, connect, ensure, js_err,
};
use crate::report::Report;
use crate::report::dsse::{self, Envelope};
use crate::rescore::archive::{Ignored, Job};
use crate::rescore::ledger::{Ledger, RunState};
use crate::rescore::{
    Entry, Options, Outcome, Prepared, RescoreError, Tally, apply, job_session, prepare,
    session_key, settled, write_outputs,
};
use async_nats::jetstream::{self, consumer};
use futures_util::{FutureExt, StreamExt};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::time::Duration;

/// Where the queue is and what the workers are told.
pub struct QueueOptions {
    pub url: String,
    /// The policy file as read (name, text), sent to every worker; `None`: the built-in policy.
    pub policy: Option<(String, String)>,
    /// Send local media through the JetStream object store instead of by path.
    pub upload: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum CoordinatorError {
    #[error(transparent)]
    Rescore(#[from] RescoreError),
    #[error(transparent)]
    Fleet(#[from] FleetError),
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

/// The coordinator's id: from the canonical output directory, so a re-run on the same `--out`
/// reads the same durable results.
pub fn coordinator_id(out: &std::path::Path) -> String {
    let p = out.canonicalize().unwrap_or_else(|_| out.to_path_buf());
    hex::encode(&Sha256::digest(p.as_os_str().as_encoded_bytes())[..8])
}

/// Runs the batch through the queue; returns what [`crate::rescore::run`] returns.
pub fn run(
    opts: &Options,
    queue: &QueueOptions,
    mut observe: impl FnMut(&Entry, &Tally),
) -> Result<(Ledger, Tally, Vec<Ignored>), CoordinatorError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(CoordinatorError::Runtime)?;
    let prepared = prepare(opts, &mut observe)?;
    rt.block_on(coordinate(opts, queue, prepared, &mut observe))
}

/// Sessions waiting for a result, by key (identical media + session at two paths share one).
type Pending = HashMap<String, Vec<(u64, Job)>>;

/// What the run writes as it goes: the ledger, the running tally and the caller's observer.
struct Books<'o, F> {
    ledger: Ledger,
    tally: Tally,
    observe: &'o mut F,
}

impl<F: FnMut(&Entry, &Tally)> Books<'_, F> {
    fn apply(&mut self, o: Outcome) -> Result<(), RescoreError> {
        apply(&mut self.ledger, &mut self.tally, o, &mut *self.observe)
    }
}

/// The queue side of one run: where jobs go and where their results come back.
struct Queue<'a> {
    js: jetstream::Context,
    opts: &'a Options,
    queue: &'a QueueOptions,
    /// The object store local media is uploaded to (`--upload`).
    bucket: Option<jetstream::object_store::ObjectStore>,
    /// This coordinator's results subject.
    reply: String,
}

async fn coordinate(
    opts: &Options,
    queue: &QueueOptions,
    p: Prepared,
    observe: &mut impl FnMut(&Entry, &Tally),
) -> Result<(Ledger, Tally, Vec<Ignored>), CoordinatorError> {
    let Prepared {
        ledger,
        tally,
        jobs,
        first_seq,
        ignored,
        key_base,
    } = p;
    let js = connect(&queue.url, "vigil-rescore").await?;
    ensure(&js).await?;
    std::fs::create_dir_all(&opts.out).ok();
    let id = coordinator_id(&opts.out);
    let reply = format!("{RESULTS_PREFIX}.{id}");
    let results = results_consumer(&js, &id, &reply).await?;
    let bucket = match queue.upload {
        true => Some(super::media_bucket(&js).await?),
        false => None,
    };
    let q = Queue {
        js,
        opts,
        queue,
        bucket,
        reply,
    };
    let mut books = Books {
        ledger,
        tally,
        observe,
    };
    let mut pending = Pending::new();
    for (i, job) in jobs.into_iter().enumerate() {
        let seq = first_seq + i as u64;
        if let Some(o) = q
            .enqueue(seq, job, &key_base, &books.ledger, &mut pending)
            .await?
        {
            books.apply(o)?;
        }
    }
    q.gather(&results, pending, &mut books).await?;
    Ok((books.ledger, books.tally, ignored))
}

/// This coordinator's durable consumer on the results stream (created on its first run).
async fn results_consumer(
    js: &jetstream::Context,
    id: &str,
    reply: &str,
) -> Result<consumer::PullConsumer, FleetError> {
    js.get_stream(RESULTS_STREAM)
        .await
        .map_err(js_err)?
        .get_or_create_consumer(
            &format!("coordinator-{id}"),
            consumer::pull::Config {
                durable_name: Some(format!("coordinator-{id}")),
                filter_subject: reply.to_string(),
                ack_policy: consumer::AckPolicy::Explicit,
                ack_wait: super::ACK_WAIT,
                ..Default::default()
            },
        )
        .await
        .map_err(js_err)
}

impl Queue<'_> {
    /// Publishes one job unless it is already settled (an earlier run scored it) or cannot run;
    /// those come back as their outcome. A published job joins `pending`, once per key.
    async fn enqueue(
        &self,
        seq: u64,
        job: Result<Job, (String, String)>,
        key_base: &str,
        ledger: &Ledger,
        pending: &mut Pending,
    ) -> Result<Option<Outcome>, CoordinatorError> {
        let job = match job {
            Ok(j) => j,
            Err((media, error)) => return Ok(Some(failed(seq, None, &media, error, ""))),
        };
        let rel = job.rel.display().to_string();
        let prepared = job_session(&job).and_then(|s| {
            let key = session_key(&job, &s, key_base)?;
            Ok((s, key))
        });
        let (session, key) = match prepared {
            Ok(x) => x,
            Err(e) => return Ok(Some(failed(seq, None, &job.media, e, &rel))),
        };
        if let Some(o) = settled(self.opts, ledger, &job, seq, &key).map_err(RescoreError::from)? {
            return Ok(Some(o));
        }
        if !pending.contains_key(&key) {
            let object = match &self.bucket {
                Some(b) => match upload(b, &key, &job.media).await {
                    Ok(o) => Some(o),
                    Err(e) => {
                        let error = e.to_string();
                        return Ok(Some(failed(seq, Some(key), &job.media, error, &rel)));
                    }
                },
                None => None,
            };
            let policy = self.queue.policy.as_ref();
            let msg = JobMsg {
                object,
                key: key.clone(),
                media: job.media.clone(),
                session,
                policy_toml: policy.map(|p| p.1.clone()),
                policy_name: policy
                    .map_or_else(|| "built-in vigil-default".into(), |p| p.0.clone()),
                sampling: self.opts.score.ingest.sampling,
                reply: self.reply.clone(),
            };
            publish_job(&self.js, &msg).await?;
        }
        pending.entry(key).or_default().push((seq, job));
        Ok(None)
    }

    /// Gathers results until no session is waiting: each result is recorded for every session
    /// waiting on its key, and a job no worker answered (JetStream's max-deliveries advisory)
    /// fails its sessions instead of being waited on for ever.
    async fn gather<F: FnMut(&Entry, &Tally)>(
        &self,
        results: &consumer::PullConsumer,
        mut pending: Pending,
        books: &mut Books<'_, F>,
    ) -> Result<(), CoordinatorError> {
        let mut exhausted = self
            .js
            .client()
            .subscribe(super::MAX_DELIVERIES_ADVISORY)
            .await
            .map_err(js_err)?;
        let jobs_stream = self
            .js
            .get_stream(super::JOBS_STREAM)
            .await
            .map_err(js_err)?;
        tracing::info!(waiting = pending.len(), "jobs published; gathering results");
        while !pending.is_empty() {
            // Bounded on the client side too: a pull request sent just before the server
            // restarts is never answered.
            let fetched = tokio::time::timeout(
                super::FETCH_EXPIRES + Duration::from_secs(5),
                fetch_results(results),
            )
            .await
            .unwrap_or_else(|_| Ok(Vec::new()));
            while let Some(Some(adv)) = exhausted.next().now_or_never() {
                self.exhausted(&jobs_stream, &adv.payload, &mut pending, books)
                    .await?;
            }
            let messages = match fetched {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(error = %e, "fetching results failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            for m in messages {
                if let Ok(r) = serde_json::from_slice::<ResultMsg>(&m.payload)
                    && let Some(waiting) = pending.remove(&r.key)
                {
                    for (seq, job) in waiting {
                        books.apply(outcome(self.opts, seq, &job, &r))?;
                    }
                    // Its report is recorded: the uploaded media is no longer needed.
                    if let Some(b) = &self.bucket {
                        let _ = b.delete(&r.key).await;
                    }
                }
                // Recorded (or a duplicate answer): the result has done its work.
                let _ = m.double_ack().await;
            }
        }
        Ok(())
    }

    /// A max-deliveries advisory: when it names one of this coordinator's jobs, the job leaves
    /// the queue and its waiting sessions fail.
    async fn exhausted<F: FnMut(&Entry, &Tally)>(
        &self,
        jobs_stream: &jetstream::stream::Stream,
        advisory: &[u8],
        pending: &mut Pending,
        books: &mut Books<'_, F>,
    ) -> Result<(), CoordinatorError> {
        let Some((stream_seq, job)) = exhausted_job(jobs_stream, advisory).await else {
            return Ok(());
        };
        if job.reply != self.reply {
            return Ok(()); // another coordinator's job
        }
        // It will not be delivered again: take it out of the queue.
        let _ = jobs_stream.delete_message(stream_seq).await;
        for (seq, j) in pending.remove(&job.key).unwrap_or_default() {
            let error = format!(
                "no worker answered in {} deliveries (the workers holding it died or were stopped)",
                super::MAX_DELIVER
            );
            let rel = j.rel.display().to_string();
            books.apply(failed(seq, Some(job.key.clone()), &j.media, error, &rel))?;
        }
        Ok(())
    }
}

/// Puts a local media file into the bucket as object `key` (kept when a killed run already put
/// it), streaming it in 128 KiB chunks.
async fn upload(
    bucket: &jetstream::object_store::ObjectStore,
    key: &str,
    media: &str,
) -> Result<String, FleetError> {
    if bucket.info(key).await.is_ok() {
        return Ok(key.to_string());
    }
    let mut file = tokio::fs::File::open(media)
        .await
        .map_err(|e| FleetError::JetStream(format!("upload {media}: {e}")))?;
    bucket
        .put(key, &mut file)
        .await
        .map_err(|e| FleetError::JetStream(format!("upload {media}: {e}")))?;
    Ok(key.to_string())
}

/// Up to 16 results, waiting at most [`super::FETCH_EXPIRES`] for the first.
async fn fetch_results(
    results: &consumer::PullConsumer,
) -> Result<Vec<jetstream::Message>, FleetError> {
    let mut batch = results
        .fetch()
        .max_messages(16)
        .expires(super::FETCH_EXPIRES)
        .messages()
        .await
        .map_err(js_err)?;
    let mut out = Vec::new();
    while let Some(m) = batch.next().await {
        match m {
            Ok(m) => out.push(m),
            Err(e) => return Err(js_err(e)),
        }
    }
    Ok(out)
}

/// The job an exhausted-deliveries advisory names, with its stream sequence.
async fn exhausted_job(jobs: &jetstream::stream::Stream, advisory: &[u8]) -> Option<(u64, JobMsg)> {
    #[derive(serde::Deserialize)]
    struct Advisory {
        stream_seq: u64,
    }
    let a: Advisory = serde_json::from_slice(advisory).ok()?;
    let m = jobs.get_raw_message(a.stream_seq).await.ok()?;
    Some((a.stream_seq, serde_json::from_slice(&m.payload).ok()?))
}

async fn publish_job(js: &jetstream::Context, msg: &JobMsg) -> Result<(), FleetError> {
    let body = serde_json::to_vec(msg).expect("job serialises");
    for attempt in 0.. {
        let sent = js
            .send_publish(
                super::JOBS_SUBJECT,
                jetstream::message::PublishMessage::build()
                    .message_id(&msg.key)
                    .payload(body.clone().into()),
            )
            .await;
        let acked = match sent {
            Ok(ack) => ack.await.map(|_| ()).map_err(js_err),
            Err(e) => Err(js_err(e)),
        };
        match acked {
            Ok(()) => return Ok(()),
            Err(e) if attempt < 30 => {
                tracing::warn!(error = %e, attempt, "publishing a job failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => return Err(e),
        }
    }
    unreachable!("the loop returns")
}

fn failed(seq: u64, key: Option<String>, media: &str, error: String, rel: &str) -> Outcome {
    Outcome {
        seq,
        key,
        state: RunState::Failed,
        entry: Entry::failed(media, error),
        rel: rel.to_string(),
    }
}

/// A worker's answer for one session: its report written (when its signature verifies with a
/// trusted key), or its error.
fn outcome(opts: &Options, seq: u64, job: &Job, r: &ResultMsg) -> Outcome {
    let rel = job.rel.display().to_string();
    let key = Some(r.key.clone());
    let Some(envelope) = &r.envelope else {
        let error = r.error.clone().unwrap_or_else(|| "failed".into());
        return failed(seq, key, &job.media, error, &rel);
    };
    let written = trusted_report(opts, envelope.as_bytes())
        .and_then(|(report, keyid)| write_outputs(opts, job, envelope.as_bytes(), &keyid, &report));
    match written {
        Ok(entry) => Outcome {
            seq,
            key,
            state: RunState::Scored,
            entry,
            rel,
        },
        Err(e) => failed(
            seq,
            key,
            &job.media,
            format!("worker {}: {e}", r.worker),
            &rel,
        ),
    }
}

fn trusted_report(opts: &Options, bytes: &[u8]) -> Result<(Report, String), String> {
    let env: Envelope =
        serde_json::from_slice(bytes).map_err(|e| format!("not a DSSE envelope: {e}"))?;
    for key in &opts.trusted {
        if let Ok(payload) = dsse::verify(&env, key) {
            return Ok((Report::from_payload(&payload)?, dsse::key_id(key)));
        }
    }
    Err(
        "the report is not signed by a trusted key (give the workers' public key with --pubkey)"
            .into(),
    )
}
