//! Append-only, hash-chained audit log (in the same SQLite database as the outbox).
//!
//! Each entry stores `hash = SHA-256(prev_hash ‖ entry JSON)` where the JSON holds its sequence
//! number, time, actor, action, subject and details, so editing any entry, removing one from
//! the middle or reordering them breaks the chain from that point on. Triggers refuse UPDATE
//! and DELETE, so nothing in Vigil can rewrite history by accident; someone with write access
//! to the file can still drop the triggers, which `verify` then detects — except truncation of
//! the newest entries, which only an anchored head hash (`vigil audit verify` prints it; keep
//! it in the Evidence Pack or a ticket) can reveal.
//!
//! Entries are appended inside the transaction that makes the change they record.

use rusqlite::{Transaction, params};
use serde::Serialize;
use sha2::{Digest, Sha256};

pub(super) const SCHEMA: &str = "
CREATE TABLE audit (
    seq       INTEGER PRIMARY KEY,
    at_ms     INTEGER NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    subject   TEXT NOT NULL,
    details   TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
";

/// The hash before the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What happened, as stable snake_case identifiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, strum::IntoStaticStr)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Action {
    SessionRegistered,
    ReportRegistered,
    ReportDelivered,
    DeliveryDeadLettered,
    DeliveryRequeued,
    CandidateDataDeleted,
    RetentionPurge,
    ExceptionGranted,
    ReviewDecision,
    KillSwitchChanged,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// One entry as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entry {
    pub seq: i64,
    pub at_ms: i64,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub details: serde_json::Value,
    pub prev_hash: String,
    pub hash: String,
}

/// The bytes that get hashed for an entry (field order fixed by the struct).
#[derive(Serialize)]
struct Hashed<'a> {
    seq: i64,
    at_ms: i64,
    actor: &'a str,
    action: &'a str,
    subject: &'a str,
    details: &'a serde_json::Value,
}

fn entry_hash(prev: &str, h: &Hashed<'_>) -> String {
    let mut d = Sha256::new();
    d.update(prev.as_bytes());
    d.update(serde_json::to_vec(h).expect("audit entry serialises"));
    hex::encode(d.finalize())
}

/// Appends an entry inside `tx`.
pub(super) fn append(
    tx: &Transaction<'_>,
    at_ms: i64,
    actor: &str,
    action: Action,
    subject: &str,
    details: serde_json::Value,
) -> rusqlite::Result<()> {
    let (seq, prev): (i64, String) = tx
        .query_row(
            "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .or_else(|e| match e {
            rusqlite::Error::QueryReturnedNoRows => Ok((0, GENESIS.to_owned())),
            e => Err(e),
        })?;
    let seq = seq + 1;
    let action = action.as_str();
    let hash = entry_hash(
        &prev,
        &Hashed {
            seq,
            at_ms,
            actor,
            action,
            subject,
            details: &details,
        },
    );
    tx.execute(
        "INSERT INTO audit (seq, at_ms, actor, action, subject, details, prev_hash, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            seq,
            at_ms,
            actor,
            action,
            subject,
            details.to_string(),
            prev,
            hash
        ],
    )?;
    Ok(())
}

/// What `verify` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The chain is intact: `entries` entries, the newest with hash `head`.
    Intact { entries: u64, head: String },
    /// The first entry that does not check, and why.
    Broken { seq: i64, reason: String },
}

/// Recomputes the whole chain.
pub(super) fn verify(conn: &rusqlite::Connection) -> rusqlite::Result<Verdict> {
    let mut st = conn.prepare(
        "SELECT seq, at_ms, actor, action, subject, details, prev_hash, hash FROM audit ORDER BY seq",
    )?;
    let mut rows = st.query([])?;
    let mut prev = GENESIS.to_owned();
    let mut expected_seq = 1;
    let mut n = 0;
    while let Some(r) = rows.next()? {
        let seq: i64 = r.get(0)?;
        let details_text: String = r.get(5)?;
        let prev_hash: String = r.get(6)?;
        let hash: String = r.get(7)?;
        if seq != expected_seq {
            return Ok(Verdict::Broken {
                seq: expected_seq,
                reason: format!("entry {expected_seq} is missing (next is {seq})"),
            });
        }
        if prev_hash != prev {
            return Ok(Verdict::Broken {
                seq,
                reason: "its prev_hash does not match the previous entry".into(),
            });
        }
        let Ok(details) = serde_json::from_str::<serde_json::Value>(&details_text) else {
            return Ok(Verdict::Broken {
                seq,
                reason: "details are not JSON".into(),
            });
        };
        let actor: String = r.get(2)?;
        let action: String = r.get(3)?;
        let subject: String = r.get(4)?;
        let recomputed = entry_hash(
            &prev,
            &Hashed {
                seq,
                at_ms: r.get(1)?,
                actor: &actor,
                action: &action,
                subject: &subject,
                details: &details,
            },
        );
        if recomputed != hash {
            return Ok(Verdict::Broken {
                seq,
                reason: "its content does not match its hash (edited)".into(),
            });
        }
        prev = hash;
        expected_seq += 1;
        n += 1;
    }
    Ok(Verdict::Intact {
        entries: n,
        head: prev,
    })
}

/// Entries with `seq > after`, oldest first, at most `limit`.
pub(super) fn entries(
    conn: &rusqlite::Connection,
    after: i64,
    limit: usize,
) -> rusqlite::Result<Vec<Entry>> {
    let mut st = conn.prepare(
        "SELECT seq, at_ms, actor, action, subject, details, prev_hash, hash FROM audit
         WHERE seq > ?1 ORDER BY seq LIMIT ?2",
    )?;
    let rows = st.query_map(params![after, limit as i64], |r| {
        let details: String = r.get(5)?;
        Ok(Entry {
            seq: r.get(0)?,
            at_ms: r.get(1)?,
            actor: r.get(2)?,
            action: r.get(3)?,
            subject: r.get(4)?,
            details: serde_json::from_str(&details).unwrap_or(serde_json::Value::Null),
            prev_hash: r.get(6)?,
            hash: r.get(7)?,
        })
    })?;
    rows.collect()
}
