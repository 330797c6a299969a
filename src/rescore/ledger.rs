//! The rescore ledger (`DIR/rescore.sqlite`): one row per session key, so a re-run scores only
//! what is missing and the summary is built from here, not from memory (an archive of any
//! size costs a few rows per session, never RAM).
//!
//! The key is SHA-256 over the media's SHA-256 (or a remote URI), the session JSON, the policy's
//! SHA-256, the sampling, the Vigil version and every model's SHA-256: change any of them and the
//! session is scored again. A row is `done` only after its report file was renamed into place,
//! so a process killed at any moment leaves either no row or a complete report.

use rusqlite::{Connection, OptionalExtension, params};
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("ledger {path}: {source}")]
    Open {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("ledger: {0}")]
    Sql(#[from] rusqlite::Error),
}

/// What the ledger knows about a session key.
#[derive(Debug, Clone, PartialEq)]
pub enum Known {
    New,
    Done { outcome: String },
    Failed { error: String },
}

pub struct Ledger {
    conn: Connection,
    run: i64,
}

impl Ledger {
    /// Opens (or creates) the ledger and starts a run.
    pub fn open(path: &Path, args: &str) -> Result<Ledger, LedgerError> {
        let open_err = |source| LedgerError::Open {
            path: path.display().to_string(),
            source,
        };
        let conn = Connection::open(path).map_err(open_err)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             PRAGMA busy_timeout = 5000;
             CREATE TABLE IF NOT EXISTS runs (
                 id INTEGER PRIMARY KEY,
                 started_at TEXT NOT NULL,
                 args TEXT NOT NULL
             );
             CREATE TABLE IF NOT EXISTS sessions (
                 key TEXT PRIMARY KEY,
                 media TEXT NOT NULL,
                 rel TEXT NOT NULL,
                 state TEXT NOT NULL CHECK (state IN ('done', 'failed')),
                 attempts INTEGER NOT NULL,
                 error TEXT,
                 outcome TEXT,
                 updated_at TEXT NOT NULL
             );
             CREATE TABLE IF NOT EXISTS run_entries (
                 run INTEGER NOT NULL,
                 seq INTEGER NOT NULL,
                 media TEXT NOT NULL,
                 state TEXT NOT NULL CHECK (state IN ('scored', 'skipped', 'failed')),
                 entry TEXT NOT NULL,
                 PRIMARY KEY (run, seq)
             );",
        )
        .map_err(open_err)?;
        conn.execute(
            "INSERT INTO runs (started_at, args) VALUES (?1, ?2)",
            params![crate::report::now_rfc3339(), args],
        )
        .map_err(open_err)?;
        let run = conn.last_insert_rowid();
        Ok(Ledger { conn, run })
    }

    /// A second connection for a worker thread: reads only (it records nothing).
    pub fn reader(path: &Path) -> Result<Ledger, LedgerError> {
        let conn = Connection::open(path).map_err(|source| LedgerError::Open {
            path: path.display().to_string(),
            source,
        })?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        Ok(Ledger { conn, run: 0 })
    }

    pub fn known(&self, key: &str) -> Result<Known, LedgerError> {
        let row: Option<(String, Option<String>, Option<String>)> = self
            .conn
            .query_row(
                "SELECT state, error, outcome FROM sessions WHERE key = ?1",
                [key],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        Ok(match row {
            None => Known::New,
            Some((state, _, Some(outcome))) if state == "done" => Known::Done { outcome },
            Some((_, error, _)) => Known::Failed {
                error: error.unwrap_or_default(),
            },
        })
    }

    /// Records a session's result and this run's entry for it, in one transaction.
    pub fn record(&mut self, r: &Record<'_>) -> Result<(), LedgerError> {
        let tx = self.conn.transaction()?;
        let now = crate::report::now_rfc3339();
        if let Some(key) = r.key {
            match r.state {
                RunState::Scored => tx.execute(
                    "INSERT INTO sessions (key, media, rel, state, attempts, outcome, updated_at)
                     VALUES (?1, ?2, ?3, 'done', 1, ?4, ?5)
                     ON CONFLICT (key) DO UPDATE SET state = 'done', error = NULL,
                        attempts = attempts + 1, outcome = ?4, updated_at = ?5",
                    params![key, r.media, r.rel, r.entry, now],
                )?,
                RunState::Failed => tx.execute(
                    "INSERT INTO sessions (key, media, rel, state, attempts, error, updated_at)
                     VALUES (?1, ?2, ?3, 'failed', 1, ?4, ?5)
                     ON CONFLICT (key) DO UPDATE SET state = 'failed', error = ?4,
                        attempts = attempts + 1, updated_at = ?5",
                    params![key, r.media, r.rel, r.error, now],
                )?,
                RunState::Skipped => 0,
            };
        }
        tx.execute(
            "INSERT OR REPLACE INTO run_entries (run, seq, media, state, entry)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![self.run, r.seq as i64, r.media, r.state.as_str(), r.entry],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// This run's entries in job order, streamed to `f`.
    pub fn entries(
        &self,
        mut f: impl FnMut(RunState, &str) -> Result<(), LedgerError>,
    ) -> Result<(), LedgerError> {
        let mut stmt = self
            .conn
            .prepare("SELECT state, entry FROM run_entries WHERE run = ?1 ORDER BY seq")?;
        let mut rows = stmt.query([self.run])?;
        while let Some(r) = rows.next()? {
            let state: RunState = r.get(0)?;
            let entry: String = r.get(1)?;
            f(state, &entry)?;
        }
        Ok(())
    }
}

/// One session's result as the ledger stores it.
#[derive(Debug)]
pub struct Record<'a> {
    /// The session key (none when the job failed before it could be computed).
    pub key: Option<&'a str>,
    /// Position of the job in this run (the summary's order).
    pub seq: u64,
    pub media: &'a str,
    pub rel: &'a str,
    pub state: RunState,
    /// The session's summary entry (JSON).
    pub entry: &'a str,
    pub error: Option<&'a str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::EnumString, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum RunState {
    Scored,
    Skipped,
    Failed,
}

impl RunState {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

crate::store::sql_text_enum!(RunState);
