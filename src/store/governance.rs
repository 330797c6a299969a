//! Governance state next to the outbox: inbound ATS events (de-duplication), retention
//! deletions, review decisions and exceptions, and the kill switch. Every change is written
//! with its audit entry in one transaction.
//!
//! Why one file of this length: each governance change and its audit entry are written in one
//! transaction, and the statements for all of them share the audit helper.

use super::audit::{self, Action};
use super::{Store, StoreError};
use rusqlite::{OptionalExtension, params};

pub(super) const SCHEMA: &str = "
CREATE TABLE inbound_events (
    tenant         TEXT NOT NULL,
    vendor         TEXT NOT NULL,
    event_id       TEXT NOT NULL,
    action         TEXT NOT NULL,
    received_at_ms INTEGER NOT NULL,
    PRIMARY KEY (tenant, vendor, event_id)
);
CREATE TABLE decisions (
    id             INTEGER PRIMARY KEY,
    tenant         TEXT NOT NULL,
    application_id TEXT NOT NULL,
    report_id      TEXT,
    decision       TEXT NOT NULL CHECK (decision IN ('approve', 'reject', 'appeal', 'exception')),
    decided_by     TEXT NOT NULL,
    reason         TEXT NOT NULL,
    at_ms          INTEGER NOT NULL
);
CREATE INDEX decisions_app ON decisions(tenant, application_id, id);
CREATE TABLE sessions (
    tenant         TEXT NOT NULL,
    interview_id   TEXT NOT NULL,
    application_id TEXT NOT NULL,
    candidate_id   TEXT,
    starts_at      TEXT,
    video_url      TEXT,
    source         TEXT NOT NULL,
    registered_ms  INTEGER NOT NULL,
    PRIMARY KEY (tenant, interview_id)
);
CREATE TABLE inbound_rejections (
    at_ms  INTEGER NOT NULL,
    tenant TEXT NOT NULL,
    vendor TEXT NOT NULL,
    reason TEXT NOT NULL
);
CREATE TABLE settings (
    key           TEXT PRIMARY KEY,
    value         TEXT NOT NULL,
    updated_by    TEXT NOT NULL,
    updated_at_ms INTEGER NOT NULL
);
";

/// A reviewer's decision on a report, or an exception for an application.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::EnumString, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum Decision {
    Approve,
    Reject,
    Appeal,
    Exception,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

super::sql_text_enum!(Decision);

/// A deletion asked for by an ATS webhook, checked by the handler (signature, freshness and,
/// where the vendor's API allows, confirmation) before it reaches the store.
#[derive(Debug, Clone)]
pub struct DeletionRequest {
    pub tenant: String,
    pub vendor: String,
    /// Every id the event is known by: the vendor's event id and a hash of what is signed. All
    /// must be new, else it is a redelivery or a replay under another id.
    pub event_ids: Vec<String>,
    pub action: String,
    pub candidate_id: Option<String>,
    pub application_ids: Vec<String>,
    /// What the vendor's API answered when asked to confirm (kept in the audit entry).
    pub confirmation: Option<serde_json::Value>,
}

/// What an inbound deletion removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Deleted {
    pub reports: u64,
    pub deliveries: u64,
}

/// The newest report of an application, as the stage gate needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct AppReport {
    pub report_id: String,
    pub candidate_id: Option<String>,
    pub department: Option<String>,
    pub verification_status: String,
    pub risk_tier: String,
}

/// Kill-switch state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KillSwitch {
    pub on: bool,
    pub owner: String,
    pub reason: String,
    pub since_ms: i64,
}

/// A report waiting for a person.
#[derive(Debug, Clone, PartialEq)]
pub struct Pending {
    pub report_id: String,
    pub tenant: String,
    pub application_id: String,
    pub risk_tier: String,
    pub integrity: f64,
    pub last_decision: Option<String>,
}

/// An interview Vigil will monitor (from the ATS schedule or supplied by a bot).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ScheduledSession {
    pub tenant: String,
    pub interview_id: String,
    pub application_id: String,
    pub candidate_id: Option<String>,
    pub starts_at: Option<String>,
    pub video_url: Option<String>,
    pub source: String,
}

impl Store {
    /// Registers a session for an interview; true when new (re-registering is a no-op).
    pub fn register_session(&mut self, s: &ScheduledSession, now: i64) -> Result<bool, StoreError> {
        let tx = self.conn.transaction()?;
        let new = tx.execute(
            "INSERT OR IGNORE INTO sessions (tenant, interview_id, application_id, candidate_id,
                starts_at, video_url, source, registered_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                s.tenant,
                s.interview_id,
                s.application_id,
                s.candidate_id,
                s.starts_at,
                s.video_url,
                s.source,
                now
            ],
        )? == 1;
        if new {
            audit::append(
                &tx,
                now,
                &s.source,
                Action::SessionRegistered,
                &s.interview_id,
                serde_json::json!({"tenant": s.tenant, "application_id": s.application_id}),
            )?;
        }
        tx.commit()?;
        Ok(new)
    }

    /// Records an inbound webhook refused for its signature (nothing else is done with it).
    /// Kept for the retention period like everything else; counted in the metrics.
    pub fn record_rejection(
        &mut self,
        tenant: &str,
        vendor: &str,
        reason: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO inbound_rejections (at_ms, tenant, vendor, reason) VALUES (?1, ?2, ?3, ?4)",
            params![now, tenant, vendor, reason],
        )?;
        Ok(())
    }

    /// Inbound webhooks refused so far.
    pub fn rejections(&self) -> Result<u64, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT COUNT(*) FROM inbound_rejections", [], |r| {
                r.get::<_, i64>(0)
            })? as u64)
    }

    /// Registered sessions of a tenant, by start time.
    pub fn sessions(&self, tenant: &str) -> Result<Vec<ScheduledSession>, StoreError> {
        let mut st = self.conn.prepare(
            "SELECT tenant, interview_id, application_id, candidate_id, starts_at, video_url, source
             FROM sessions WHERE tenant = ?1 ORDER BY starts_at, interview_id",
        )?;
        let rows = st.query_map([tenant], |r| {
            Ok(ScheduledSession {
                tenant: r.get(0)?,
                interview_id: r.get(1)?,
                application_id: r.get(2)?,
                candidate_id: r.get(3)?,
                starts_at: r.get(4)?,
                video_url: r.get(5)?,
                source: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Records an inbound event id; false when it was seen before (then nothing is done).
    fn first_time(
        tx: &rusqlite::Transaction<'_>,
        tenant: &str,
        vendor: &str,
        event_id: &str,
        action: &str,
        now: i64,
    ) -> rusqlite::Result<bool> {
        Ok(tx.execute(
            "INSERT OR IGNORE INTO inbound_events (tenant, vendor, event_id, action, received_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![tenant, vendor, event_id, action, now],
        )? == 1)
    }

    /// Records every id of an event; true only when none was seen before (a redelivery, or a
    /// replay under another id, matches at least one).
    fn first_time_all(
        tx: &rusqlite::Transaction<'_>,
        tenant: &str,
        vendor: &str,
        event_ids: &[String],
        action: &str,
        now: i64,
    ) -> rusqlite::Result<bool> {
        let mut all_new = !event_ids.is_empty();
        for id in event_ids {
            all_new &= Store::first_time(tx, tenant, vendor, id, action, now)?;
        }
        Ok(all_new)
    }

    /// Whether any of an event's ids was already recorded (read only).
    pub fn inbound_seen(
        &self,
        tenant: &str,
        vendor: &str,
        event_ids: &[String],
    ) -> Result<bool, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT 1 FROM inbound_events WHERE tenant = ?1 AND vendor = ?2 AND event_id = ?3",
        )?;
        for id in event_ids {
            if st.exists(params![tenant, vendor, id])? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Handles a candidate deletion or anonymisation from the ATS: removes every stored report
    /// (and its outbox rows) of the candidate or of the listed applications, once per event
    /// (every id in `event_ids` must be new). `None` when the event was already processed.
    pub fn delete_candidate(
        &mut self,
        d: &DeletionRequest,
        now: i64,
    ) -> Result<Option<Deleted>, StoreError> {
        let DeletionRequest {
            tenant,
            vendor,
            event_ids,
            action,
            candidate_id,
            application_ids,
            confirmation,
        } = d;
        let (tenant, vendor, action) = (tenant.as_str(), vendor.as_str(), action.as_str());
        let candidate_id = candidate_id.as_deref();
        let tx = self.conn.transaction()?;
        if !Store::first_time_all(&tx, tenant, vendor, event_ids, action, now)? {
            return Ok(None);
        }
        let mut ids: Vec<String> = Vec::new();
        {
            let mut st = tx
                .prepare("SELECT report_id FROM reports WHERE tenant = ?1 AND candidate_id = ?2")?;
            if let Some(c) = candidate_id {
                for r in st.query_map(params![tenant, c], |r| r.get(0))? {
                    ids.push(r?);
                }
            }
            let mut st = tx.prepare(
                "SELECT report_id FROM reports WHERE tenant = ?1 AND application_id = ?2",
            )?;
            for a in application_ids {
                for r in st.query_map(params![tenant, a], |r| r.get(0))? {
                    ids.push(r?);
                }
            }
        }
        ids.sort();
        ids.dedup();
        // Finished `vigil serve` sessions go too; active ones keep running and their report is
        // deleted when it arrives only by a later deletion event (noted in the docs).
        if let Some(c) = candidate_id {
            tx.execute(
                "DELETE FROM sessions WHERE tenant = ?1 AND candidate_id = ?2",
                params![tenant, c],
            )?;
            tx.execute(
                "DELETE FROM live_sessions WHERE tenant = ?1 AND candidate_id = ?2
                 AND state NOT IN ('receiving', 'finalizing')",
                params![tenant, c],
            )?;
        }
        for a in application_ids {
            tx.execute(
                "DELETE FROM sessions WHERE tenant = ?1 AND application_id = ?2",
                params![tenant, a],
            )?;
            tx.execute(
                "DELETE FROM live_sessions WHERE tenant = ?1 AND application_id = ?2
                 AND state NOT IN ('receiving', 'finalizing')",
                params![tenant, a],
            )?;
        }
        let mut deleted = Deleted::default();
        for id in &ids {
            deleted.deliveries +=
                tx.execute("DELETE FROM deliveries WHERE report_id = ?1", [id])? as u64;
            deleted.reports += tx.execute("DELETE FROM reports WHERE report_id = ?1", [id])? as u64;
        }
        audit::append(
            &tx,
            now,
            &format!("{vendor} webhook"),
            Action::CandidateDataDeleted,
            candidate_id.unwrap_or("-"),
            serde_json::json!({
                "tenant": tenant, "event": action, "event_id": event_ids[0],
                "application_ids": application_ids, "reports_deleted": deleted.reports,
                "deliveries_deleted": deleted.deliveries, "report_ids": ids,
                "confirmed_by": confirmation,
            }),
        )?;
        tx.commit()?;
        Ok(Some(deleted))
    }

    /// Records an inbound event that needs no action (so a redelivery is recognised).
    pub fn note_inbound(
        &mut self,
        tenant: &str,
        vendor: &str,
        event_ids: &[String],
        action: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let tx = self.conn.transaction()?;
        let first = Store::first_time_all(&tx, tenant, vendor, event_ids, action, now)?;
        tx.commit()?;
        Ok(first)
    }

    /// Deletes reports (and outbox rows) registered before `cutoff_ms`.
    pub fn purge_before(
        &mut self,
        cutoff_ms: i64,
        actor: &str,
        now: i64,
    ) -> Result<Deleted, StoreError> {
        let tx = self.conn.transaction()?;
        let deliveries = tx.execute(
            "DELETE FROM deliveries WHERE report_id IN
               (SELECT report_id FROM reports WHERE created_at_ms < ?1)",
            [cutoff_ms],
        )? as u64;
        let reports =
            tx.execute("DELETE FROM reports WHERE created_at_ms < ?1", [cutoff_ms])? as u64;
        tx.execute(
            "DELETE FROM inbound_events WHERE received_at_ms < ?1",
            [cutoff_ms],
        )?;
        tx.execute(
            "DELETE FROM inbound_rejections WHERE at_ms < ?1",
            [cutoff_ms],
        )?;
        tx.execute(
            "DELETE FROM live_sessions WHERE created_at_ms < ?1
             AND state NOT IN ('receiving', 'finalizing')",
            [cutoff_ms],
        )?;
        audit::append(
            &tx,
            now,
            actor,
            Action::RetentionPurge,
            "retention",
            serde_json::json!({"cutoff_ms": cutoff_ms, "reports_deleted": reports, "deliveries_deleted": deliveries}),
        )?;
        tx.commit()?;
        Ok(Deleted {
            reports,
            deliveries,
        })
    }

    /// Records a review decision on a report (approve / reject / appeal).
    pub fn decide(
        &mut self,
        report_id: &str,
        decision: Decision,
        by: &str,
        reason: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        let row: Option<(String, String)> = tx
            .query_row(
                "SELECT tenant, application_id FROM reports WHERE report_id = ?1",
                [report_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let (tenant, app) = row.ok_or_else(|| StoreError::NoSuchReport(report_id.to_owned()))?;
        tx.execute(
            "INSERT INTO decisions (tenant, application_id, report_id, decision, decided_by, reason, at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![tenant, app, report_id, decision.as_str(), by, reason, now],
        )?;
        audit::append(
            &tx,
            now,
            by,
            Action::ReviewDecision,
            report_id,
            serde_json::json!({"tenant": tenant, "application_id": app, "decision": decision.as_str(), "reason": reason}),
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Grants an audited exception: the application may advance without a verified report.
    pub fn grant_exception(
        &mut self,
        tenant: &str,
        application_id: &str,
        by: &str,
        reason: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT INTO decisions (tenant, application_id, report_id, decision, decided_by, reason, at_ms)
             VALUES (?1, ?2, NULL, 'exception', ?3, ?4, ?5)",
            params![tenant, application_id, by, reason, now],
        )?;
        audit::append(
            &tx,
            now,
            by,
            Action::ExceptionGranted,
            application_id,
            serde_json::json!({"tenant": tenant, "reason": reason}),
        )?;
        tx.commit()?;
        Ok(())
    }

    /// The newest report registered for an application.
    pub fn latest_report(
        &self,
        tenant: &str,
        application_id: &str,
    ) -> Result<Option<AppReport>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT report_id, candidate_id, department, verification_status, risk_tier
                 FROM reports WHERE tenant = ?1 AND application_id = ?2
                 ORDER BY created_at_ms DESC, rowid DESC LIMIT 1",
                params![tenant, application_id],
                |r| {
                    Ok(AppReport {
                        report_id: r.get(0)?,
                        candidate_id: r.get(1)?,
                        department: r.get(2)?,
                        verification_status: r.get(3)?,
                        risk_tier: r.get(4)?,
                    })
                },
            )
            .optional()?)
    }

    /// The newest decision on a report, and whether an exception exists for the application.
    pub fn decisions_for(
        &self,
        tenant: &str,
        application_id: &str,
        report_id: Option<&str>,
    ) -> Result<(Option<Decision>, bool), StoreError> {
        let last: Option<Decision> = match report_id {
            Some(r) => self
                .conn
                .query_row(
                    "SELECT decision FROM decisions WHERE report_id = ?1 ORDER BY id DESC LIMIT 1",
                    [r],
                    |r| r.get(0),
                )
                .optional()?,
            None => None,
        };
        let exception: bool = self.conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM decisions WHERE tenant = ?1 AND application_id = ?2
                            AND decision = 'exception')",
            params![tenant, application_id],
            |r| r.get(0),
        )?;
        Ok((last, exception))
    }

    /// Reports with status `needs_review` whose newest decision is not final (none or appeal).
    pub fn review_queue(&self) -> Result<Vec<Pending>, StoreError> {
        let mut st = self.conn.prepare(
            "SELECT r.report_id, r.tenant, r.application_id, r.risk_tier, r.integrity,
                    (SELECT decision FROM decisions d WHERE d.report_id = r.report_id
                     ORDER BY d.id DESC LIMIT 1) AS last
             FROM reports r WHERE r.verification_status = 'needs_review'
             ORDER BY r.created_at_ms, r.report_id",
        )?;
        let rows = st.query_map([], |r| {
            Ok(Pending {
                report_id: r.get(0)?,
                tenant: r.get(1)?,
                application_id: r.get(2)?,
                risk_tier: r.get(3)?,
                integrity: r.get(4)?,
                last_decision: r.get(5)?,
            })
        })?;
        let all: Vec<Pending> = rows.collect::<Result<_, _>>()?;
        Ok(all
            .into_iter()
            .filter(|p| matches!(p.last_decision.as_deref(), None | Some("appeal")))
            .collect())
    }

    pub fn kill_switch(&self) -> Result<KillSwitch, StoreError> {
        let row: Option<(String, String, i64)> = self
            .conn
            .query_row(
                "SELECT value, updated_by, updated_at_ms FROM settings WHERE key = 'kill_switch'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        Ok(match row {
            None => KillSwitch {
                on: false,
                owner: String::new(),
                reason: String::new(),
                since_ms: 0,
            },
            Some((v, by, at)) => {
                let v: serde_json::Value = serde_json::from_str(&v).unwrap_or_default();
                KillSwitch {
                    on: v["on"].as_bool().unwrap_or(false),
                    owner: by,
                    reason: v["reason"].as_str().unwrap_or_default().to_owned(),
                    since_ms: at,
                }
            }
        })
    }

    pub fn set_kill_switch(
        &mut self,
        on: bool,
        owner: &str,
        reason: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT INTO settings (key, value, updated_by, updated_at_ms) VALUES ('kill_switch', ?1, ?2, ?3)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_by = excluded.updated_by,
                 updated_at_ms = excluded.updated_at_ms",
            params![serde_json::json!({"on": on, "reason": reason}).to_string(), owner, now],
        )?;
        audit::append(
            &tx,
            now,
            owner,
            Action::KillSwitchChanged,
            "kill_switch",
            serde_json::json!({"on": on, "reason": reason}),
        )?;
        tx.commit()?;
        Ok(())
    }
}
