use super::*;

fn report(id: &str) -> NewReport {
    NewReport {
        report_id: id.into(),
        tenant: "acme".into(),
        application_id: "42".into(),
        candidate_id: Some("7".into()),
        department: None,
        session_id: None,
        integrity: 97.5,
        risk_tier: "low".into(),
        verification_status: "verified".into(),
        envelope: b"{}".to_vec(),
        html: None,
    }
}

fn none() -> std::collections::HashSet<i64> {
    Default::default()
}

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(&dir.path().join("v.db")).unwrap();
    (dir, s)
}

#[test]
fn register_is_idempotent_and_atomic() {
    let (_d, mut s) = store();
    let r = report("r1");
    assert_eq!(
        s.register(&r, &["greenhouse", "webhook"], "test", 0)
            .unwrap(),
        Registered::Queued { deliveries: 2 }
    );
    assert_eq!(
        s.register(&r, &["greenhouse", "webhook"], "test", 5)
            .unwrap(),
        Registered::AlreadyKnown
    );
    assert_eq!(s.counts().unwrap().pending, 2);
    // A duplicate connector name violates UNIQUE: the whole registration rolls back.
    assert!(
        s.register(&report("r2"), &["lever", "lever"], "test", 0)
            .is_err()
    );
    assert_eq!(s.counts().unwrap().pending, 2);
    assert_eq!(
        s.register(&report("r2"), &["lever"], "test", 0).unwrap(),
        Registered::Queued { deliveries: 1 }
    );
}

#[test]
fn leases_expire_and_attempts_count_at_claim() {
    let (_d, mut s) = store();
    s.register(&report("r1"), &["greenhouse"], "test", 0)
        .unwrap();
    let lease = Duration::from_millis(1000);
    let jobs = s.claim_due(10, 8, lease, &none()).unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].attempt, 1);
    // Leased: nobody else gets it until the lease runs out.
    assert!(s.claim_due(500, 8, lease, &none()).unwrap().is_empty());
    let again = s.claim_due(1010, 8, lease, &none()).unwrap();
    assert_eq!(again[0].attempt, 2, "a crashed attempt still counts");
    s.mark_failed(&again[0], "HTTP 503", Some(5000), 1010, 1020)
        .unwrap();
    assert!(s.claim_due(4999, 8, lease, &none()).unwrap().is_empty());
    let third = s.claim_due(5000, 8, lease, &none()).unwrap();
    s.mark_delivered(&third[0], "att-1", 5000, 5001).unwrap();
    assert_eq!(
        s.counts().unwrap(),
        Counts {
            pending: 0,
            delivered: 1,
            dead: 0
        }
    );
    assert!(s.claim_due(99_999, 8, lease, &none()).unwrap().is_empty());
}

#[test]
fn dead_letters_can_be_requeued() {
    let (_d, mut s) = store();
    s.register(&report("r1"), &["webhook"], "test", 0).unwrap();
    let j = s.claim_due(0, 1, Duration::from_secs(1), &none()).unwrap();
    s.mark_failed(&j[0], "HTTP 400", None, 0, 1).unwrap();
    assert_eq!(s.dead_ids().unwrap(), vec![j[0].delivery_id]);
    assert_eq!(
        s.requeue(j[0].delivery_id, "test", 2).unwrap(),
        DeliveryState::Dead
    );
    let again = s.claim_due(2, 1, Duration::from_secs(1), &none()).unwrap();
    assert_eq!(again[0].attempt, 1, "requeue grants a fresh attempt budget");
    assert_eq!(
        again[0].prior_attempts, 1,
        "but remembers the ATS may have been reached"
    );
    assert!(matches!(
        s.requeue(999, "test", 0),
        Err(StoreError::NoSuchDelivery(999))
    ));
}

#[test]
fn audit_chain_records_and_detects_tampering() {
    let (dir, mut s) = store();
    s.register(&report("r1"), &["webhook"], "test", 0).unwrap();
    let j = s.claim_due(0, 1, Duration::from_secs(1), &none()).unwrap();
    s.mark_delivered(&j[0], "msg_r1", 0, 1).unwrap();
    let entries = s.audit_entries(0, 10).unwrap();
    let actions: Vec<&str> = entries.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["report_registered", "report_delivered"]);
    let head = match s.audit_verify().unwrap() {
        audit::Verdict::Intact { entries: 2, head } => head,
        v => panic!("{v:?}"),
    };
    assert_eq!(head, entries[1].hash);
    // Rewriting history is refused by the triggers...
    assert!(
        s.conn
            .execute("UPDATE audit SET actor = 'x' WHERE seq = 1", [])
            .is_err()
    );
    assert!(
        s.conn
            .execute("DELETE FROM audit WHERE seq = 1", [])
            .is_err()
    );
    // ...and detected when someone drops them first.
    let raw = Connection::open(dir.path().join("v.db")).unwrap();
    raw.execute_batch(
        "DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete;
         UPDATE audit SET details = '{\"tenant\":\"other\"}' WHERE seq = 1;",
    )
    .unwrap();
    assert!(matches!(
        s.audit_verify().unwrap(),
        audit::Verdict::Broken { seq: 1, .. }
    ));
}

#[test]
fn progress_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.db");
    {
        let mut s = Store::open(&path).unwrap();
        s.register(&report("r1"), &["greenhouse"], "test", 0)
            .unwrap();
        let j = s.claim_due(0, 1, Duration::from_secs(1), &none()).unwrap();
        let mut p = serde_json::Map::new();
        p.insert("attachment_id".into(), "99".into());
        s.save_progress(j[0].delivery_id, &p).unwrap();
    }
    let mut s = Store::open(&path).unwrap();
    let j = s
        .claim_due(5000, 1, Duration::from_secs(1), &none())
        .unwrap();
    assert_eq!(j[0].progress["attachment_id"], "99");
    assert_eq!(j[0].attempt, 2);
}
