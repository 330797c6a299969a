//! Scaling `vigil rescore` past one machine on NATS JetStream (ARCHITECTURE.md § Fleet): the
//! coordinator publishes one job per session to a work-queue stream, `vigil worker` processes pull
//! them through one durable consumer with explicit acknowledgement, and results come back through
//! a results stream the coordinator reads durably.
//!
//! | name | what | settings |
//! |---|---|---|
//! | `VIGIL_JOBS` stream | subject `vigil.jobs` | work-queue retention, file storage, 1 MiB messages, 24 h de-duplication window on `Nats-Msg-Id` = the job key |
//! | `vigil-workers` consumer | durable pull, on `VIGIL_JOBS` | explicit ack, ack wait 60 s (workers send in-progress acks every 15 s), max deliver 3 |
//! | `VIGIL_RESULTS` stream | subjects `vigil.results.<coordinator id>` | limits retention, 7 days, file storage, 64 MiB messages |
//! | `coordinator-<id>` consumer | durable pull, filtered to its subject | explicit ack, ack wait 60 s |
//!
//! The coordinator id is derived from the output directory, so a coordinator killed and re-run on
//! the same `--out` finds the results that arrived while it was away.

pub mod coordinator;
pub mod worker;

use crate::report::SessionInfo;
use async_nats::jetstream::{self, consumer, stream};
use serde::{Deserialize, Serialize};
use std::time::Duration;

pub const JOBS_STREAM: &str = "VIGIL_JOBS";
pub const JOBS_SUBJECT: &str = "vigil.jobs";
pub const WORKERS: &str = "vigil-workers";
pub const RESULTS_STREAM: &str = "VIGIL_RESULTS";
pub const RESULTS_PREFIX: &str = "vigil.results";
/// A job not acknowledged (nor marked in progress) for this long goes to another worker. Set when
/// the consumer is created; `VIGIL_FLEET_ACK_WAIT_S` overrides it (tests use seconds).
pub const ACK_WAIT: Duration = Duration::from_secs(60);
/// Subject of JetStream's advisory when a job exhausted its deliveries without an answer.
pub const MAX_DELIVERIES_ADVISORY: &str =
    "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.VIGIL_JOBS.vigil-workers";

/// The ack wait of a consumer created now.
pub fn ack_wait() -> Duration {
    std::env::var("VIGIL_FLEET_ACK_WAIT_S")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|&s| s >= 1)
        .map_or(ACK_WAIT, Duration::from_secs)
}
/// How long a pull request waits for a message on the server.
pub const FETCH_EXPIRES: Duration = Duration::from_secs(5);
/// Deliveries of one job before it is recorded as failed.
pub const MAX_DELIVER: i64 = 3;
pub const MAX_JOB_BYTES: i32 = 1024 * 1024;
/// Object store bucket for `--upload`: media the workers cannot read themselves, one object per
/// job (named by its key, 128 KiB chunks), deleted once its report is recorded.
pub const MEDIA_BUCKET: &str = "vigil-media";
pub const MAX_RESULT_BYTES: i32 = 64 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("NATS {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("JetStream: {0}")]
    JetStream(String),
}

fn js_err(e: impl std::fmt::Display) -> FleetError {
    FleetError::JetStream(e.to_string())
}

/// One session to score, as published to `vigil.jobs`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobMsg {
    /// The ledger key (also the message id, so a job is never enqueued twice).
    pub key: String,
    /// A path or URI every worker can read.
    pub media: String,
    pub session: SessionInfo,
    /// The policy file's text (workers score with exactly the coordinator's policy) and its name.
    pub policy_toml: Option<String>,
    pub policy_name: String,
    pub sampling: crate::ingest::Sampling,
    /// Where the result goes.
    pub reply: String,
    /// With `--upload`: the media's object in [`MEDIA_BUCKET`] (then `media` only names it).
    #[serde(default)]
    pub object: Option<String>,
}

/// A worker's answer, published to the job's `reply` subject.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResultMsg {
    pub key: String,
    /// The signed report (DSSE envelope bytes, as `vigil score` writes them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub envelope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Which worker, for the record.
    pub worker: String,
    pub delivered: i64,
}

/// Connects with credentials from the URL (`nats://user:pass@host`) or the environment
/// (`VIGIL_NATS_USER` + `VIGIL_NATS_PASSWORD`, `VIGIL_NATS_TOKEN`, or an nkey seed in
/// `VIGIL_NATS_NKEY`); TLS when the URL says `tls://`.
pub async fn connect(url: &str, name: &str) -> Result<jetstream::Context, FleetError> {
    let err = |reason: String| FleetError::Connect {
        url: redact(url),
        reason,
    };
    let mut opts = async_nats::ConnectOptions::new()
        .name(name)
        .connection_timeout(Duration::from_secs(10));
    if let (Ok(u), Ok(p)) = (
        std::env::var("VIGIL_NATS_USER"),
        std::env::var("VIGIL_NATS_PASSWORD"),
    ) {
        opts = opts.user_and_password(u, p);
    } else if let Ok(t) = std::env::var("VIGIL_NATS_TOKEN") {
        opts = opts.token(t);
    } else if let Ok(seed) = std::env::var("VIGIL_NATS_NKEY") {
        opts = opts.nkey(seed);
    }
    // The first connection must succeed (a refused login is an error here, not a silent retry);
    // after that the client reconnects by itself, and callers retry what failed meanwhile.
    let client = opts.connect(url).await.map_err(|e| err(e.to_string()))?;
    Ok(jetstream::new(client))
}

/// The URL without a password, for messages.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            u.to_string()
        }
        Err(_) => url.to_string(),
    }
}

/// The media bucket, created when missing (file storage, objects older than 7 days expire).
pub async fn media_bucket(
    js: &jetstream::Context,
) -> Result<jetstream::object_store::ObjectStore, FleetError> {
    if let Ok(b) = js.get_object_store(MEDIA_BUCKET).await {
        return Ok(b);
    }
    match js
        .create_object_store(jetstream::object_store::Config {
            bucket: MEDIA_BUCKET.into(),
            storage: stream::StorageType::File,
            max_age: Duration::from_secs(7 * 24 * 3600),
            ..Default::default()
        })
        .await
    {
        Ok(b) => Ok(b),
        // Another process may have created it meanwhile.
        Err(e) => js
            .get_object_store(MEDIA_BUCKET)
            .await
            .map_err(|_| js_err(e)),
    }
}

/// Creates the streams and the workers' consumer when missing (idempotent). Processes starting
/// together race to create them: a failed attempt is retried, and then finds them.
pub async fn ensure(js: &jetstream::Context) -> Result<consumer::PullConsumer, FleetError> {
    let mut attempt = 0;
    loop {
        match ensure_once(js).await {
            Ok(c) => return Ok(c),
            Err(e) if attempt < 5 => {
                tracing::debug!(error = %e, attempt, "creating the streams raced; again");
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

async fn ensure_once(js: &jetstream::Context) -> Result<consumer::PullConsumer, FleetError> {
    let jobs = js
        .get_or_create_stream(stream::Config {
            name: JOBS_STREAM.into(),
            subjects: vec![JOBS_SUBJECT.into()],
            retention: stream::RetentionPolicy::WorkQueue,
            storage: stream::StorageType::File,
            max_message_size: MAX_JOB_BYTES,
            duplicate_window: Duration::from_secs(24 * 3600),
            ..Default::default()
        })
        .await
        .map_err(js_err)?;
    js.get_or_create_stream(stream::Config {
        name: RESULTS_STREAM.into(),
        subjects: vec![format!("{RESULTS_PREFIX}.>")],
        retention: stream::RetentionPolicy::Limits,
        storage: stream::StorageType::File,
        max_message_size: MAX_RESULT_BYTES,
        max_age: Duration::from_secs(7 * 24 * 3600),
        ..Default::default()
    })
    .await
    .map_err(js_err)?;
    jobs.get_or_create_consumer(
        WORKERS,
        consumer::pull::Config {
            durable_name: Some(WORKERS.into()),
            ack_policy: consumer::AckPolicy::Explicit,
            ack_wait: ack_wait(),
            max_deliver: MAX_DELIVER,
            ..Default::default()
        },
    )
    .await
    .map_err(js_err)
}
