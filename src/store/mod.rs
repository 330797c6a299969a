//! Durable state in one embedded SQLite database: signed reports and the ATS delivery outbox.
//!
//! Why SQLite: the outbox must survive a kill at any instruction, and SQLite in WAL mode with
//! `synchronous=FULL` gives atomic, durable transactions without a server. Registering a report
//! and creating its delivery rows is one transaction, so a report is either fully queued for
//! every connector or not at all.
//!
//! Delivery rows are *leased*, not locked: a worker claims due rows by writing `lease_until`,
//! and a worker killed mid-send simply lets the lease expire, after which the row is claimable
//! again. The attempt counter is incremented at claim time, before anything is sent, so the
//! connector knows on the next attempt that an earlier one may have reached the ATS and must
//! look for its own report there before posting again (Greenhouse has no idempotency keys).
//!
//! Why one file of this length: the outbox's schema, migrations and every statement on it are kept
//! together so that each transaction's invariants can be read in one place; governance tables are in
//! `governance.rs`, live sessions in `live.rs`, tests in `tests.rs`.

pub mod audit;
pub mod governance;
pub mod live;
mod shared;

pub use shared::{CallError, Conn, Shared};

/// Stores an enum in a TEXT column as its snake_case name (strum's `IntoStaticStr` and
/// `EnumString`); a name read back that no variant has is an error, never a default — a row
/// written by a newer version, or edited by hand, must not silently change meaning.
macro_rules! sql_text_enum {
    ($($t:ty),* $(,)?) => {$(
        impl rusqlite::types::ToSql for $t {
            fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
                Ok(rusqlite::types::ToSqlOutput::from(<&'static str>::from(*self)))
            }
        }
        impl rusqlite::types::FromSql for $t {
            fn column_result(
                v: rusqlite::types::ValueRef<'_>,
            ) -> rusqlite::types::FromSqlResult<Self> {
                let s = v.as_str()?;
                s.parse().map_err(|_| {
                    rusqlite::types::FromSqlError::Other(
                        format!("unknown {} '{s}'", stringify!($t)).into(),
                    )
                })
            }
        }
    )*};
}
pub(crate) use sql_text_enum;

use audit::Action;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Schema version stored in `PRAGMA user_version`; bump with a migration step.
const SCHEMA_VERSION: i64 = 2;

const SCHEMA: &str = "
CREATE TABLE reports (
    report_id           TEXT PRIMARY KEY,
    tenant              TEXT NOT NULL,
    application_id      TEXT NOT NULL,
    candidate_id        TEXT,
    department          TEXT,
    session_id          TEXT,
    integrity           REAL NOT NULL,
    risk_tier           TEXT NOT NULL,
    verification_status TEXT NOT NULL,
    envelope            BLOB NOT NULL,
    html                BLOB,
    created_at_ms       INTEGER NOT NULL
);
CREATE INDEX reports_candidate ON reports(tenant, candidate_id);
CREATE TABLE deliveries (
    id              INTEGER PRIMARY KEY,
    report_id       TEXT NOT NULL REFERENCES reports(report_id) ON DELETE CASCADE,
    connector       TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'dead')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    total_attempts  INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms INTEGER NOT NULL,
    lease_until_ms  INTEGER,
    last_error      TEXT,
    remote_ref      TEXT,
    progress        TEXT NOT NULL DEFAULT '{}',
    created_at_ms   INTEGER NOT NULL,
    delivered_at_ms INTEGER,
    UNIQUE (report_id, connector)
);
CREATE INDEX deliveries_due ON deliveries(state, next_attempt_ms);
CREATE TABLE delivery_attempts (
    delivery_id INTEGER NOT NULL REFERENCES deliveries(id) ON DELETE CASCADE,
    attempt     INTEGER NOT NULL,
    started_ms  INTEGER NOT NULL,
    duration_ms INTEGER NOT NULL,
    outcome     TEXT NOT NULL,
    detail      TEXT,
    PRIMARY KEY (delivery_id, attempt)
);
";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the database {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error(
        "the database {path} has schema version {found}, newer than this vigil understands ({SCHEMA_VERSION}); upgrade vigil"
    )]
    TooNew { path: PathBuf, found: i64 },
    #[error("database error: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("report {report_id} is already registered for tenant '{tenant}'")]
    OtherTenant { report_id: String, tenant: String },
    #[error("no report with id {0}")]
    NoSuchReport(String),
    #[error("no delivery with id {0}")]
    NoSuchDelivery(i64),
}

/// Milliseconds since the Unix epoch (the store's clock unit).
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as i64
}

/// A report as the outbox needs it: ids, the summary fields written to the ATS, and the bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct NewReport {
    pub report_id: String,
    pub tenant: String,
    pub application_id: String,
    pub candidate_id: Option<String>,
    /// Department (requisition) of the session, for canary scoping.
    pub department: Option<String>,
    /// Vigil session id, carried into logs next to the ATS ids.
    pub session_id: Option<String>,
    pub integrity: f64,
    pub risk_tier: String,
    pub verification_status: String,
    /// The signed DSSE envelope, exactly as written by `vigil score`.
    pub envelope: Vec<u8>,
    /// Optional HTML rendering, attached next to the envelope when present.
    pub html: Option<Vec<u8>>,
}

impl NewReport {
    /// The row for a scored `report` and its signed `envelope`: ids, department, score, tier
    /// and status as the report carries them. Callers that know better (a bot's own session id,
    /// an operator's `--candidate`) override fields with struct update syntax.
    pub fn of(
        report: &crate::report::Report,
        tenant: &str,
        application_id: String,
        envelope: Vec<u8>,
        html: Option<Vec<u8>>,
    ) -> NewReport {
        NewReport {
            report_id: report.report_id.clone(),
            tenant: tenant.to_owned(),
            application_id,
            candidate_id: report.session.candidate_external_id.clone(),
            department: report.session.department.clone(),
            session_id: report.session.session_id.clone(),
            integrity: report.score.integrity,
            risk_tier: report.score.risk_tier.as_str().to_owned(),
            verification_status: report.score.verification_status.as_str().to_owned(),
            envelope,
            html,
        }
    }
}

/// What `register` did: queued now, or already known (idempotent re-registration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registered {
    Queued { deliveries: usize },
    AlreadyKnown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::EnumString, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum DeliveryState {
    Pending,
    Delivered,
    Dead,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

sql_text_enum!(DeliveryState);

/// One claimed delivery with everything a connector needs to send it.
#[derive(Debug, Clone)]
pub struct Job {
    pub delivery_id: i64,
    pub connector: String,
    /// 1 for the first attempt of the current budget (reset by a requeue).
    pub attempt: u32,
    /// Attempts made before this one, ever (a requeue does not reset it): when > 0, an earlier
    /// attempt may already have reached the ATS.
    pub prior_attempts: u32,
    /// Connector-specific record of steps already completed (JSON object).
    pub progress: serde_json::Map<String, serde_json::Value>,
    pub report: NewReport,
}

/// A delivery row for status listings.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryRow {
    pub id: i64,
    pub report_id: String,
    pub tenant: String,
    pub application_id: String,
    pub connector: String,
    pub state: DeliveryState,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub remote_ref: Option<String>,
}

/// Counts per delivery state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub pending: u64,
    pub delivered: u64,
    pub dead: u64,
}

/// One connection to the database. Not `Sync`: give each thread its own `Store`.
pub struct Store {
    conn: Connection,
}

impl Store {
    /// Opens (creating if needed) the database at `path`, in WAL mode with full fsync.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Open {
                path: path.to_owned(),
                source: rusqlite::Error::ToSqlConversionFailure(Box::new(e)),
            })?;
        }
        let conn = Connection::open(path).map_err(|source| StoreError::Open {
            path: path.to_owned(),
            source,
        })?;
        let open_err = |source| StoreError::Open {
            path: path.to_owned(),
            source,
        };
        conn.busy_timeout(Duration::from_secs(10))
            .map_err(open_err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(open_err)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(open_err)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(open_err)?;
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(open_err)?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::TooNew {
                path: path.to_owned(),
                found: version,
            });
        }
        if version == 0 {
            let tx = conn.unchecked_transaction().map_err(open_err)?;
            tx.execute_batch(SCHEMA).map_err(open_err)?;
            tx.execute_batch(audit::SCHEMA).map_err(open_err)?;
            tx.execute_batch(governance::SCHEMA).map_err(open_err)?;
            tx.execute_batch(live::SCHEMA).map_err(open_err)?;
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)
                .map_err(open_err)?;
            tx.commit().map_err(open_err)?;
        } else if version == 1 {
            // 1 → 2: sessions driven by `vigil serve`.
            let tx = conn.unchecked_transaction().map_err(open_err)?;
            tx.execute_batch(live::SCHEMA).map_err(open_err)?;
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)
                .map_err(open_err)?;
            tx.commit().map_err(open_err)?;
        }
        Ok(Store { conn })
    }

    /// Stores the report and one pending delivery per connector, in one transaction.
    /// Registering the same report id again changes nothing (and returns `AlreadyKnown`).
    pub fn register(
        &mut self,
        report: &NewReport,
        connectors: &[&str],
        actor: &str,
        now: i64,
    ) -> Result<Registered, StoreError> {
        self.register_with(report, connectors, actor, None, now)
    }

    /// [`Store::register`] with `context` recorded in the audit entry under `context` (a
    /// rescore records the policy it used and the report the new one supersedes).
    pub fn register_with(
        &mut self,
        report: &NewReport,
        connectors: &[&str],
        actor: &str,
        context: Option<serde_json::Value>,
        now: i64,
    ) -> Result<Registered, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let inserted = tx.execute(
            "INSERT OR IGNORE INTO reports (report_id, tenant, application_id, candidate_id,
                integrity, risk_tier, verification_status, envelope, html, created_at_ms, department,
                session_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            params![
                report.report_id,
                report.tenant,
                report.application_id,
                report.candidate_id,
                report.integrity,
                report.risk_tier,
                report.verification_status,
                report.envelope,
                report.html,
                now,
                report.department,
                report.session_id
            ],
        )?;
        if inserted == 0 {
            let tenant: String = tx.query_row(
                "SELECT tenant FROM reports WHERE report_id = ?1",
                [&report.report_id],
                |r| r.get(0),
            )?;
            if tenant != report.tenant {
                return Err(StoreError::OtherTenant {
                    report_id: report.report_id.clone(),
                    tenant,
                });
            }
            return Ok(Registered::AlreadyKnown);
        }
        for c in connectors {
            tx.execute(
                "INSERT INTO deliveries (report_id, connector, state, next_attempt_ms, created_at_ms)
                 VALUES (?1, ?2, 'pending', ?3, ?3)",
                params![report.report_id, c, now],
            )?;
        }
        let mut details = serde_json::json!({
            "tenant": report.tenant,
            "application_id": report.application_id,
            "candidate_id": report.candidate_id,
            "envelope_sha256": hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&report.envelope)),
            "verification_status": report.verification_status,
            "connectors": connectors,
        });
        if let Some(c) = context {
            details["context"] = c;
        }
        audit::append(
            &tx,
            now,
            actor,
            Action::ReportRegistered,
            &report.report_id,
            details,
        )?;
        tx.commit()?;
        Ok(Registered::Queued {
            deliveries: connectors.len(),
        })
    }

    /// Claims up to `limit` due deliveries for `lease`, incrementing their attempt counters.
    /// Rows whose lease expired (a worker died mid-send) are due again.
    ///
    /// `exclude` lists deliveries the caller still has in flight: their lease may have run out
    /// while the outcome is being recorded, and a second concurrent attempt could post twice.
    pub fn claim_due(
        &mut self,
        now: i64,
        limit: usize,
        lease: Duration,
        exclude: &std::collections::HashSet<i64>,
    ) -> Result<Vec<Job>, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let ids: Vec<i64> = {
            let mut st = tx.prepare(
                "SELECT id FROM deliveries
                 WHERE state = 'pending' AND next_attempt_ms <= ?1
                   AND (lease_until_ms IS NULL OR lease_until_ms <= ?1)
                 ORDER BY next_attempt_ms, id LIMIT ?2",
            )?;
            let candidates: Vec<i64> = st
                .query_map(params![now, (limit + exclude.len()) as i64], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            candidates
                .into_iter()
                .filter(|id| !exclude.contains(id))
                .take(limit)
                .collect()
        };
        let lease_until = now + lease.as_millis() as i64;
        let mut jobs = Vec::with_capacity(ids.len());
        for id in ids {
            tx.execute(
                "UPDATE deliveries SET lease_until_ms = ?2, attempts = attempts + 1,
                    total_attempts = total_attempts + 1 WHERE id = ?1",
                params![id, lease_until],
            )?;
            jobs.push(tx.query_row(
                "SELECT d.id, d.connector, d.attempts, d.progress, r.report_id, r.tenant,
                        r.application_id, r.candidate_id, r.integrity, r.risk_tier,
                        r.verification_status, r.envelope, r.html, d.total_attempts, r.department,
                        r.session_id
                 FROM deliveries d JOIN reports r USING (report_id) WHERE d.id = ?1",
                [id],
                |r| {
                    let progress: String = r.get(3)?;
                    Ok(Job {
                        delivery_id: r.get(0)?,
                        connector: r.get(1)?,
                        attempt: r.get(2)?,
                        prior_attempts: r.get::<_, u32>(13)?.saturating_sub(1),
                        progress: serde_json::from_str(&progress).unwrap_or_default(),
                        report: NewReport {
                            report_id: r.get(4)?,
                            tenant: r.get(5)?,
                            application_id: r.get(6)?,
                            candidate_id: r.get(7)?,
                            department: r.get(14)?,
                            session_id: r.get(15)?,
                            integrity: r.get(8)?,
                            risk_tier: r.get(9)?,
                            verification_status: r.get(10)?,
                            envelope: r.get(11)?,
                            html: r.get(12)?,
                        },
                    })
                },
            )?);
        }
        tx.commit()?;
        Ok(jobs)
    }

    /// Records a completed step so a later attempt skips it (e.g. the attachment's remote id).
    pub fn save_progress(
        &mut self,
        delivery_id: i64,
        progress: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<(), StoreError> {
        let text = serde_json::Value::Object(progress.clone()).to_string();
        self.conn.execute(
            "UPDATE deliveries SET progress = ?2 WHERE id = ?1",
            params![delivery_id, text],
        )?;
        Ok(())
    }

    /// Marks a delivery done and logs the attempt.
    pub fn mark_delivered(
        &mut self,
        job: &Job,
        remote_ref: &str,
        started: i64,
        now: i64,
    ) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        tx.execute(
            "UPDATE deliveries SET state = 'delivered', lease_until_ms = NULL, remote_ref = ?2,
                delivered_at_ms = ?3, last_error = NULL WHERE id = ?1",
            params![job.delivery_id, remote_ref, now],
        )?;
        log_attempt(&tx, job, started, now, "delivered", None)?;
        audit::append(
            &tx,
            now,
            "delivery-worker",
            Action::ReportDelivered,
            &job.report.report_id,
            serde_json::json!({
                "delivery_id": job.delivery_id,
                "tenant": job.report.tenant,
                "connector": job.connector,
                "application_id": job.report.application_id,
                "remote_ref": remote_ref,
                "attempt": job.attempt,
            }),
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Schedules another attempt at `next`, or dead-letters the row when `dead` is set.
    pub fn mark_failed(
        &mut self,
        job: &Job,
        error: &str,
        next: Option<i64>,
        started: i64,
        now: i64,
    ) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        match next {
            Some(at) => tx.execute(
                "UPDATE deliveries SET lease_until_ms = NULL, next_attempt_ms = ?2, last_error = ?3
                 WHERE id = ?1",
                params![job.delivery_id, at, error],
            )?,
            None => tx.execute(
                "UPDATE deliveries SET state = 'dead', lease_until_ms = NULL, last_error = ?2
                 WHERE id = ?1",
                params![job.delivery_id, error],
            )?,
        };
        let outcome = if next.is_some() { "retry" } else { "dead" };
        log_attempt(&tx, job, started, now, outcome, Some(error))?;
        if next.is_none() {
            audit::append(
                &tx,
                now,
                "delivery-worker",
                Action::DeliveryDeadLettered,
                &job.report.report_id,
                serde_json::json!({
                    "delivery_id": job.delivery_id,
                    "connector": job.connector,
                    "attempts": job.attempt,
                    "error": error,
                }),
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Requeues a dead-lettered (or pending) delivery with a fresh attempt budget.
    pub fn requeue(
        &mut self,
        delivery_id: i64,
        actor: &str,
        now: i64,
    ) -> Result<DeliveryState, StoreError> {
        let tx = self.conn.transaction()?;
        let row: Option<(DeliveryState, String, String)> = tx
            .query_row(
                "SELECT state, report_id, connector FROM deliveries WHERE id = ?1",
                [delivery_id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let (state, report_id, connector) = row.ok_or(StoreError::NoSuchDelivery(delivery_id))?;
        if state != DeliveryState::Delivered {
            tx.execute(
                "UPDATE deliveries SET state = 'pending', attempts = 0, next_attempt_ms = ?2,
                    lease_until_ms = NULL WHERE id = ?1",
                params![delivery_id, now],
            )?;
            audit::append(
                &tx,
                now,
                actor,
                Action::DeliveryRequeued,
                &report_id,
                serde_json::json!({"delivery_id": delivery_id, "connector": connector}),
            )?;
        }
        tx.commit()?;
        Ok(state)
    }

    /// Appends an audit entry on its own (for actions outside the outbox).
    pub fn audit(
        &mut self,
        actor: &str,
        action: Action,
        subject: &str,
        details: serde_json::Value,
        now: i64,
    ) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        audit::append(&tx, now, actor, action, subject, details)?;
        tx.commit()?;
        Ok(())
    }

    /// Recomputes the audit chain.
    pub fn audit_verify(&self) -> Result<audit::Verdict, StoreError> {
        Ok(audit::verify(&self.conn)?)
    }

    /// Audit entries after `after`, oldest first.
    pub fn audit_entries(&self, after: i64, limit: usize) -> Result<Vec<audit::Entry>, StoreError> {
        Ok(audit::entries(&self.conn, after, limit)?)
    }

    /// Ids of every dead-lettered delivery.
    pub fn dead_ids(&self) -> Result<Vec<i64>, StoreError> {
        let mut st = self
            .conn
            .prepare("SELECT id FROM deliveries WHERE state = 'dead' ORDER BY id")?;
        let ids = st.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
        Ok(ids)
    }

    pub fn counts(&self) -> Result<Counts, StoreError> {
        let mut c = Counts::default();
        let mut st = self
            .conn
            .prepare("SELECT state, COUNT(*) FROM deliveries GROUP BY state")?;
        let rows = st.query_map([], |r| {
            Ok((r.get::<_, DeliveryState>(0)?, r.get::<_, i64>(1)?))
        })?;
        for row in rows {
            let (s, n) = row?;
            match s {
                DeliveryState::Pending => c.pending = n as u64,
                DeliveryState::Delivered => c.delivered = n as u64,
                DeliveryState::Dead => c.dead = n as u64,
            }
        }
        Ok(c)
    }

    /// Earliest time a pending delivery becomes due (or its lease expires), if any is pending.
    pub fn next_due(&self) -> Result<Option<i64>, StoreError> {
        Ok(self.conn.query_row(
            "SELECT MIN(MAX(next_attempt_ms, COALESCE(lease_until_ms, 0)))
             FROM deliveries WHERE state = 'pending'",
            [],
            |r| r.get(0),
        )?)
    }

    /// Deliveries, newest first, optionally only one state.
    /// One page of deliveries, newest first: at most `limit` rows (in `state`, if given) whose id
    /// is below `before` (keyset paging: pass the last row's id to get the next page).
    pub fn deliveries(
        &self,
        state: Option<DeliveryState>,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<DeliveryRow>, StoreError> {
        let mut st = self.conn.prepare(
            "SELECT d.id, d.report_id, r.tenant, r.application_id, d.connector, d.state,
                    d.attempts, d.last_error, d.remote_ref
             FROM deliveries d JOIN reports r USING (report_id)
             WHERE (?1 IS NULL OR d.state = ?1) AND (?2 IS NULL OR d.id < ?2)
             ORDER BY d.id DESC LIMIT ?3",
        )?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = st.query_map(params![state.map(|s| s.as_str()), before, limit], |r| {
            Ok(DeliveryRow {
                id: r.get(0)?,
                report_id: r.get(1)?,
                tenant: r.get(2)?,
                application_id: r.get(3)?,
                connector: r.get(4)?,
                state: r.get(5)?,
                attempts: r.get(6)?,
                last_error: r.get(7)?,
                remote_ref: r.get(8)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn metrics(&self) -> Result<Metrics, StoreError> {
        let mut m = Metrics {
            deliveries: self.counts()?,
            ..Metrics::default()
        };
        let mut st = self.conn.prepare(
            "SELECT a.outcome, d.connector, COUNT(*), SUM(a.duration_ms)
             FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id
             GROUP BY a.outcome, d.connector ORDER BY a.outcome, d.connector",
        )?;
        let rows = st.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })?;
        let mut per_conn: std::collections::BTreeMap<String, (u64, u64)> = Default::default();
        for row in rows {
            let (outcome, conn, n, ms) = row?;
            m.attempts.push((outcome, conn.clone(), n as u64));
            let e = per_conn.entry(conn).or_default();
            e.0 += ms as u64;
            e.1 += n as u64;
        }
        m.attempt_ms = per_conn.into_iter().map(|(c, (s, n))| (c, s, n)).collect();
        m.review_queue = self.review_queue()?.len() as u64;
        m.kill_switch = self.kill_switch()?.on;
        m.inbound_rejected = self.rejections()?;
        m.audit_entries = self
            .conn
            .query_row("SELECT COUNT(*) FROM audit", [], |r| r.get::<_, i64>(0))?
            as u64;
        Ok(m)
    }

    /// Attempts per delivered row and time from registration to delivery, for BENCHMARKS.md.
    pub fn attempt_stats(&self) -> Result<AttemptStats, StoreError> {
        Ok(self.conn.query_row(
            "SELECT COUNT(*), COALESCE(SUM(attempts), 0), COALESCE(MAX(attempts), 0),
                    COALESCE(MIN(created_at_ms), 0), COALESCE(MAX(delivered_at_ms), 0)
             FROM deliveries WHERE state = 'delivered'",
            [],
            |r| {
                Ok(AttemptStats {
                    delivered: r.get::<_, i64>(0)? as u64,
                    attempts: r.get::<_, i64>(1)? as u64,
                    max_attempts: r.get::<_, i64>(2)? as u32,
                    first_created_ms: r.get(3)?,
                    last_delivered_ms: r.get(4)?,
                })
            },
        )?)
    }
}

/// Figures for the Prometheus endpoint, read from durable state (so they survive restarts and
/// agree across worker processes).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Metrics {
    pub deliveries: Counts,
    /// Attempts by outcome (`delivered`, `retry`, `dead`) and connector.
    pub attempts: Vec<(String, String, u64)>,
    /// Sum and count of attempt durations per connector, milliseconds.
    pub attempt_ms: Vec<(String, u64, u64)>,
    pub review_queue: u64,
    pub kill_switch: bool,
    pub inbound_rejected: u64,
    pub audit_entries: u64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AttemptStats {
    pub delivered: u64,
    pub attempts: u64,
    pub max_attempts: u32,
    pub first_created_ms: i64,
    pub last_delivered_ms: i64,
}

fn log_attempt(
    tx: &rusqlite::Transaction<'_>,
    job: &Job,
    started: i64,
    now: i64,
    outcome: &str,
    detail: Option<&str>,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT OR REPLACE INTO delivery_attempts
            (delivery_id, attempt, started_ms, duration_ms, outcome, detail)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            job.delivery_id,
            job.attempt,
            started,
            now - started,
            outcome,
            detail
        ],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests;
