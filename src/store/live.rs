//! Sessions a bot drives through `vigil serve`: who created them, where their media stands, and
//! how they ended. The received bytes themselves live in the spool directory; `received_bytes`
//! is the durable length (only ever written after the bytes were fsynced), so after a crash the
//! spool is cut back to it and the bot resumes from there.

use super::audit::{self, Action};
use super::{Store, StoreError};
use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};

pub(super) const SCHEMA: &str = "
CREATE TABLE live_sessions (
    id             TEXT PRIMARY KEY,
    tenant         TEXT NOT NULL,
    bot            TEXT NOT NULL,
    application_id TEXT NOT NULL,
    candidate_id   TEXT,
    session_json   TEXT NOT NULL,
    source         TEXT NOT NULL CHECK (source IN ('upload', 'live', 'url')),
    source_url     TEXT,
    media_name     TEXT NOT NULL,
    state          TEXT NOT NULL
        CHECK (state IN ('receiving', 'finalizing', 'done', 'failed', 'interrupted')),
    received_bytes INTEGER NOT NULL DEFAULT 0,
    created_at_ms  INTEGER NOT NULL,
    ended_at_ms    INTEGER,
    finished_at_ms INTEGER,
    report_id      TEXT,
    error          TEXT
);
CREATE INDEX live_sessions_state ON live_sessions(state);
CREATE INDEX live_sessions_tenant ON live_sessions(tenant, created_at_ms);
";

/// Where a session's media comes from.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    strum::EnumString,
    strum::IntoStaticStr,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Source {
    /// A recorded file sent in resumable chunks.
    Upload,
    /// A live stream (WebM/Matroska over a streaming HTTP request body).
    Live,
    /// A recording Vigil pulls from an allow-listed URL.
    Url,
}

/// A session's lifecycle. `receiving → finalizing → done | failed`; `interrupted` when it can
/// never finish (the bot vanished, or its media was lost).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    strum::EnumString,
    strum::IntoStaticStr,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum State {
    Receiving,
    Finalizing,
    Done,
    Failed,
    Interrupted,
}

impl State {
    pub const ALL: [State; 5] = [
        State::Receiving,
        State::Finalizing,
        State::Done,
        State::Failed,
        State::Interrupted,
    ];

    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Still admitted: holds a slot and an analysis thread.
    pub fn is_active(self) -> bool {
        matches!(self, State::Receiving | State::Finalizing)
    }
}

impl Source {
    /// The wire name (as in the API and the `source` column).
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

super::sql_text_enum!(State, Source);

/// One row of `live_sessions`.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveSession {
    pub id: String,
    pub tenant: String,
    pub bot: String,
    pub application_id: String,
    pub candidate_id: Option<String>,
    /// The report's `session` section (ids and consent), as JSON.
    pub session_json: String,
    pub source: Source,
    pub source_url: Option<String>,
    /// How the media is named in messages and the report (the bot's file name, never a path).
    pub media_name: String,
    pub state: State,
    pub received_bytes: u64,
    pub created_at_ms: i64,
    pub ended_at_ms: Option<i64>,
    pub finished_at_ms: Option<i64>,
    pub report_id: Option<String>,
    pub error: Option<String>,
}

/// A stored report's signed envelope and its HTML rendering (when one was stored).
pub type Artifacts = (Vec<u8>, Option<Vec<u8>>);

const COLUMNS: &str = "id, tenant, bot, application_id, candidate_id, session_json, source, \
    source_url, media_name, state, received_bytes, created_at_ms, ended_at_ms, finished_at_ms, report_id, error";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<LiveSession> {
    Ok(LiveSession {
        id: r.get(0)?,
        tenant: r.get(1)?,
        bot: r.get(2)?,
        application_id: r.get(3)?,
        candidate_id: r.get(4)?,
        session_json: r.get(5)?,
        source: r.get(6)?,
        source_url: r.get(7)?,
        media_name: r.get(8)?,
        state: r.get(9)?,
        received_bytes: r.get::<_, i64>(10)?.max(0) as u64,
        created_at_ms: r.get(11)?,
        ended_at_ms: r.get(12)?,
        finished_at_ms: r.get(13)?,
        report_id: r.get(14)?,
        error: r.get(15)?,
    })
}

impl Store {
    /// Records a new session (audited: who started analysing which application).
    pub fn create_live_session(&mut self, s: &LiveSession) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        tx.execute(
            &format!("INSERT INTO live_sessions ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)"),
            params![
                s.id,
                s.tenant,
                s.bot,
                s.application_id,
                s.candidate_id,
                s.session_json,
                s.source.as_str(),
                s.source_url,
                s.media_name,
                s.state.as_str(),
                s.received_bytes as i64,
                s.created_at_ms,
                s.ended_at_ms,
                s.finished_at_ms,
                s.report_id,
                s.error
            ],
        )?;
        audit::append(
            &tx,
            s.created_at_ms,
            &format!("bot:{}", s.bot),
            Action::SessionRegistered,
            &s.id,
            serde_json::json!({"tenant": s.tenant, "application_id": s.application_id, "source": s.source.as_str()}),
        )?;
        tx.commit()?;
        Ok(())
    }

    /// A session of `tenant` (another tenant's session is simply not found).
    pub fn live_session(&self, tenant: &str, id: &str) -> Result<Option<LiveSession>, StoreError> {
        Ok(self
            .conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM live_sessions WHERE id = ?1 AND tenant = ?2"),
                params![id, tenant],
                row,
            )
            .optional()?)
    }

    /// Sessions still receiving or finalizing (to resume after a restart), oldest first.
    pub fn active_live_sessions(&self) -> Result<Vec<LiveSession>, StoreError> {
        let mut st = self.conn.prepare(&format!(
            "SELECT {COLUMNS} FROM live_sessions WHERE state IN ('receiving', 'finalizing')
             ORDER BY created_at_ms, id"
        ))?;
        let rows = st.query_map([], row)?.collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Records that the first `bytes` of the session's media are durable on disk; false when
    /// the session is no longer receiving (the bytes must then not be acknowledged).
    pub fn set_received(&self, id: &str, bytes: u64) -> Result<bool, StoreError> {
        Ok(self.conn.execute(
            "UPDATE live_sessions SET received_bytes = MAX(received_bytes, ?2)
             WHERE id = ?1 AND state = 'receiving'",
            params![id, bytes as i64],
        )? == 1)
    }

    /// `receiving → interrupted` with the reason; false when the session had already moved on
    /// (e.g. the bot ended it a moment before).
    pub fn interrupt_live_session(
        &self,
        id: &str,
        why: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        Ok(self.conn.execute(
            "UPDATE live_sessions SET state = 'interrupted', error = ?2, finished_at_ms = ?3,
                ended_at_ms = COALESCE(ended_at_ms, ?3)
             WHERE id = ?1 AND state = 'receiving'",
            params![id, why, now],
        )? == 1)
    }

    /// `receiving → finalizing` (the bot ended the session); false when it was not receiving.
    pub fn end_live_session(&self, id: &str, now: i64) -> Result<bool, StoreError> {
        Ok(self.conn.execute(
            "UPDATE live_sessions SET state = 'finalizing', ended_at_ms = ?2
             WHERE id = ?1 AND state = 'receiving'",
            params![id, now],
        )? == 1)
    }

    /// Moves an active session to a final state.
    pub fn finish_live_session(
        &self,
        id: &str,
        state: State,
        report_id: Option<&str>,
        error: Option<&str>,
        now: i64,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE live_sessions SET state = ?2, report_id = ?3, error = ?4, finished_at_ms = ?5,
                ended_at_ms = COALESCE(ended_at_ms, ?5)
             WHERE id = ?1 AND state IN ('receiving', 'finalizing')",
            params![id, state.as_str(), report_id, error, now],
        )?;
        Ok(())
    }

    /// Number of sessions in each state (all of them; for `/metrics`).
    pub fn live_session_counts(&self) -> Result<Vec<(State, u64)>, StoreError> {
        let mut st = self
            .conn
            .prepare("SELECT state, COUNT(*) FROM live_sessions GROUP BY state")?;
        let found: Vec<(String, i64)> = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        Ok(State::ALL
            .into_iter()
            .map(|s| {
                let n = found
                    .iter()
                    .find(|(k, _)| k == s.as_str())
                    .map_or(0, |(_, n)| *n as u64);
                (s, n)
            })
            .collect())
    }

    /// The signed envelope and HTML of a report belonging to `tenant`.
    pub fn report_artifacts(
        &self,
        tenant: &str,
        report_id: &str,
    ) -> Result<Option<Artifacts>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT envelope, html FROM reports WHERE report_id = ?1 AND tenant = ?2",
                params![report_id, tenant],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
    }
}
