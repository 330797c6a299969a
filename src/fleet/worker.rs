//! `vigil worker --queue nats://…`: pulls jobs from the `vigil-workers` consumer, scores each with
//! the same pipeline as `vigil score`, publishes the signed report to the job's reply subject, then
//! acknowledges. While a job is scored an in-progress acknowledgement goes out every quarter of
//! the consumer's ack wait, so a long interview is never redelivered while its worker lives; a
//! worker that dies has its job redelivered after the ack wait ([`super::ACK_WAIT`]). A job that fails on its last delivery is
//! answered with the error (never dropped silently); earlier failures are handed back (nak) for
//! another try. SIGTERM: no new job is taken, the jobs in hand are finished, then exit.

use super::{FleetError, JobMsg, MAX_DELIVER, ResultMsg, connect, ensure, js_err};
use crate::ingest::{IngestConfig, MediaInput};
use crate::pipeline::{self, ScoreOptions};
use crate::report::dsse;
use async_nats::jetstream::{self, AckKind, Message};
use ed25519_dalek::SigningKey;
use futures_util::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

pub struct WorkerOptions {
    pub url: String,
    pub jobs: usize,
    pub key: SigningKey,
    pub name: String,
}

/// Runs until `stop` completes, then finishes the jobs in hand.
pub async fn run(
    opts: WorkerOptions,
    stop: impl std::future::Future<Output = ()>,
) -> Result<u64, FleetError> {
    let js = connect(&opts.url, &opts.name).await?;
    let consumer = ensure(&js).await?;
    let progress_every = consumer.cached_info().config.ack_wait / 4;
    let key = Arc::new(opts.key);
    let slots = Arc::new(Semaphore::new(opts.jobs.max(1)));
    let mut done = 0u64;
    let mut tasks = tokio::task::JoinSet::new();
    tokio::pin!(stop);
    tracing::info!(worker = %opts.name, jobs = opts.jobs, "worker ready");
    loop {
        // Take a job only when a slot is free: a job never waits in a worker's hands.
        let permit = tokio::select! {
            _ = &mut stop => break,
            p = slots.clone().acquire_owned() => p.expect("the semaphore is never closed"),
        };
        let next = tokio::select! {
            _ = &mut stop => break,
            m = fetch_one(&consumer) => m,
        };
        let msg = match next {
            Ok(Some(m)) => m,
            Ok(None) => continue,
            Err(e) => {
                tracing::warn!(error = %e, "fetching a job failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let (js, key, name) = (js.clone(), key.clone(), opts.name.clone());
        tasks.spawn(async move {
            let _permit = permit;
            handle(&js, msg, &key, &name, progress_every).await
        });
        while let Some(r) = tasks.try_join_next() {
            done += u64::from(r.unwrap_or(false));
        }
    }
    tracing::info!(
        in_hand = tasks.len(),
        "stopping: finishing the jobs in hand"
    );
    while let Some(r) = tasks.join_next().await {
        done += u64::from(r.unwrap_or(false));
    }
    Ok(done)
}

/// One job, or none within 5 s. Bounded on the client side too: a pull request sent just before
/// the server restarts is never answered, and must not hold the worker.
async fn fetch_one(
    consumer: &jetstream::consumer::PullConsumer,
) -> Result<Option<Message>, FleetError> {
    tokio::time::timeout(
        super::FETCH_EXPIRES + Duration::from_secs(5),
        fetch(consumer),
    )
    .await
    .unwrap_or(Ok(None))
}

async fn fetch(
    consumer: &jetstream::consumer::PullConsumer,
) -> Result<Option<Message>, FleetError> {
    let mut batch = consumer
        .fetch()
        .max_messages(1)
        .expires(super::FETCH_EXPIRES)
        .messages()
        .await
        .map_err(js_err)?;
    match batch.next().await {
        Some(Ok(m)) => Ok(Some(m)),
        Some(Err(e)) => Err(js_err(e)),
        None => Ok(None),
    }
}

/// Scores one job and answers it; true when a report was published.
async fn handle(
    js: &jetstream::Context,
    msg: Message,
    key: &SigningKey,
    name: &str,
    progress_every: Duration,
) -> bool {
    let delivered = msg.info().map(|i| i.delivered).unwrap_or(1);
    let job: JobMsg = match serde_json::from_slice(&msg.payload) {
        Ok(j) => j,
        Err(e) => {
            // Not a job at all: nobody can answer it, and retrying cannot help.
            tracing::error!(error = %e, "malformed job message; terminated");
            let _ = msg.ack_with(AckKind::Term).await;
            return false;
        }
    };
    tracing::info!(key = %job.key, media = %job.media, delivered, "scoring");
    // Uploaded media is fetched into a private directory under its own file name (the report
    // names the media by file name, so the payload is the same as scoring the original).
    let staged = match &job.object {
        Some(object) => match download(js, object, &job.media).await {
            Ok(s) => {
                tracing::info!(key = %job.key, "media fetched from the object store");
                Some(s)
            }
            Err(e) => {
                tracing::warn!(key = %job.key, error = %e, "fetching the media failed; handed back");
                let _ = msg
                    .ack_with(AckKind::Nak(Some(Duration::from_secs(2))))
                    .await;
                return false;
            }
        },
        None => None,
    };
    let scoring = {
        let (mut job, key) = (job.clone(), key.clone());
        if let Some((_, path)) = &staged {
            job.media = path.display().to_string();
        }
        tokio::task::spawn_blocking(move || score(&job, &key))
    };
    tokio::pin!(scoring);
    let outcome = loop {
        tokio::select! {
            r = &mut scoring => break r.unwrap_or_else(|e| Err(JobError::Panicked(e.to_string()))),
            _ = tokio::time::sleep(progress_every) => {
                let _ = msg.ack_with(AckKind::Progress).await;
            }
        }
    };
    let last = delivered >= MAX_DELIVER;
    let result = match &outcome {
        Ok(envelope) => ResultMsg {
            key: job.key.clone(),
            envelope: Some(envelope.clone()),
            error: None,
            worker: name.to_string(),
            delivered,
        },
        Err(e) if last => ResultMsg {
            key: job.key.clone(),
            envelope: None,
            error: Some(format!("failed on all {MAX_DELIVER} deliveries, last: {e}")),
            worker: name.to_string(),
            delivered,
        },
        Err(e) => {
            tracing::warn!(key = %job.key, error = %e, delivered, "job failed; handed back");
            let _ = msg
                .ack_with(AckKind::Nak(Some(Duration::from_secs(2))))
                .await;
            return false;
        }
    };
    let body = serde_json::to_vec(&result).expect("result serialises");
    // The answer must be stored before the job is acknowledged: otherwise a crash in between
    // would lose it. A duplicate answer (a redelivered job answered twice) is harmless.
    for attempt in 0..30 {
        match publish(js, &job.reply, &job.key, delivered, body.clone()).await {
            Ok(()) => {
                let _ = msg.double_ack().await;
                return outcome.is_ok();
            }
            Err(e) => {
                tracing::warn!(key = %job.key, error = %e, attempt, "publishing the result failed");
                let _ = msg.ack_with(AckKind::Progress).await;
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
    }
    // Give the job back; another delivery will answer it.
    let _ = msg.ack_with(AckKind::Nak(None)).await;
    false
}

/// Copies an uploaded object into a new private directory as `<file name of media>`.
async fn download(
    js: &jetstream::Context,
    object: &str,
    media: &str,
) -> Result<(tempfile::TempDir, std::path::PathBuf), FleetError> {
    let bucket = super::media_bucket(js).await?;
    let mut reader = bucket.get(object).await.map_err(js_err)?;
    let dir = tempfile::tempdir().map_err(js_err)?;
    let name = std::path::Path::new(media)
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_else(|| "media".into());
    let path = dir.path().join(name);
    let mut file = tokio::fs::File::create(&path).await.map_err(js_err)?;
    tokio::io::copy(&mut reader, &mut file)
        .await
        .map_err(js_err)?;
    file.sync_all().await.map_err(js_err)?;
    Ok((dir, path))
}

async fn publish(
    js: &jetstream::Context,
    subject: &str,
    key: &str,
    delivered: i64,
    body: Vec<u8>,
) -> Result<(), FleetError> {
    let ack = js
        .send_publish(
            subject.to_string(),
            jetstream::message::PublishMessage::build()
                .message_id(format!("{key}.{delivered}"))
                .payload(body.into()),
        )
        .await
        .map_err(js_err)?;
    ack.await.map_err(js_err)?;
    Ok(())
}

/// The blocking part: the same pipeline, policy and sampling as `vigil score`.
fn score(job: &JobMsg, key: &SigningKey) -> Result<String, JobError> {
    let policy = match &job.policy_toml {
        Some(text) => {
            crate::scoring::Policy::parse(text, &job.policy_name).map_err(|e| JobError::Policy {
                name: job.policy_name.clone(),
                source: e,
            })?
        }
        None => crate::scoring::Policy::default(),
    };
    let input = MediaInput::parse(&job.media)?;
    let opts = ScoreOptions {
        policy,
        session: job.session.clone(),
        ingest: IngestConfig {
            sampling: job.sampling,
            // A fleet worker's machine runs as many workers as it has cores.
            decoder_threads: Some(1),
            ..IngestConfig::default()
        },
        ..ScoreOptions::default()
    };
    let report = pipeline::score(&input, &opts)?;
    let envelope = dsse::sign(&report.to_payload(), key);
    Ok(serde_json::to_string_pretty(&envelope).expect("envelope serialises"))
}

/// Why a job produced no report; its text travels in the result message to the coordinator.
#[derive(Debug, thiserror::Error)]
enum JobError {
    #[error("policy {name}: {source}")]
    Policy {
        name: String,
        #[source]
        source: crate::scoring::policy::PolicyError,
    },
    #[error(transparent)]
    Media(#[from] crate::ingest::IngestError),
    #[error(transparent)]
    Pipeline(#[from] pipeline::PipelineError),
    #[error("scoring panicked: {0}")]
    Panicked(String),
}
