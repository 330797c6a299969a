//! `vigil rescore` on real recordings: a directory archive with sidecars and previous reports made
//! under another policy, re-runs that score nothing, `--jobs` that changes nothing, a run killed
//! with SIGKILL and finished by a re-run, forged previous reports and bad manifests.

mod common;

use common::{
    output_text as text, read_report, rescore_payloads as payloads, rescore_summary as summary,
    testdata, vigil, walk,
};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const CONSENT: &str = r#""consent": {"recorded_at": "2026-11-20T09:00:00Z", "method": "meeting_bot_prompt", "text_version": "v3"}"#;

fn policy(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("policies")
        .join(name)
        .display()
        .to_string()
}

fn copy(name: &str, to: &Path) -> PathBuf {
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::copy(testdata(name), to).unwrap();
    to.to_path_buf()
}

/// Scores `media` with the default policy into its `X.vigil.json` sidecar (the "previous" run).
fn previous(home: &Path, media: &Path, extra: &[&str]) {
    let out = PathBuf::from(format!("{}.vigil.json", media.display()));
    common::score(
        home,
        media.to_str().unwrap(),
        &out,
        &[&["--sampling", "keyframes"], extra].concat(),
    );
}

fn rescore(home: &Path, args: &[&str]) -> std::process::Output {
    let mut c = vigil(home);
    c.arg("rescore")
        .args(args)
        .timeout(Duration::from_secs(600));
    c.output().unwrap()
}

/// A forged copy of a signed report: the verdict in the payload changed, the signature kept.
fn forge(report: &Path) {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut env: Value = serde_json::from_slice(&std::fs::read(report).unwrap()).unwrap();
    let mut p: Value =
        serde_json::from_slice(&b64.decode(env["payload"].as_str().unwrap()).unwrap()).unwrap();
    p["score"]["verification_status"] = "verified".into();
    env["payload"] = b64.encode(serde_json::to_vec(&p).unwrap()).into();
    std::fs::write(report, serde_json::to_vec(&env).unwrap()).unwrap();
}

#[test]
fn an_archive_under_another_policy_lists_what_changed_and_a_re_run_scores_nothing() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let arch = h.join("archive");
    // A face swap: `needs_review` under vigil-default, `rejected` under vigil-strict.
    let swap = copy(
        "face_identity_cut.mp4",
        &arch.join("a/face_identity_cut.mp4"),
    );
    previous(h, &swap, &[]);
    // A session with its ids and consent in a sidecar, scored before with the same sidecar.
    let clip = copy("clip_vp8_opus.webm", &arch.join("b/clip_vp8_opus.webm"));
    let sidecar = arch.join("b/clip_vp8_opus.webm.session.json");
    std::fs::write(
        &sidecar,
        format!(r#"{{"session_id": "s-1", "application_id": "31415", {CONSENT}}}"#),
    )
    .unwrap();
    previous(h, &clip, &["--session", sidecar.to_str().unwrap()]);
    // A previous report whose payload was altered after signing.
    let looped = copy("looping.mp4", &arch.join("a/looping.mp4"));
    previous(h, &looped, &[]);
    forge(&arch.join("a/looping.mp4.vigil.json"));
    // A session naming a candidate without consent: never analysed.
    copy("clip_vp9_opus.webm", &arch.join("c/no_consent.webm"));
    std::fs::write(
        arch.join("c/no_consent.webm.session.json"),
        r#"{"candidate_external_id": "C-9"}"#,
    )
    .unwrap();
    // Not media, whatever the name says.
    std::fs::write(arch.join("notes.mp4"), "meeting notes, not a recording\n").unwrap();

    let out = h.join("out");
    let strict = policy("vigil-strict.toml");
    let args = |out: &Path, jobs: &str| -> Vec<String> {
        [
            arch.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--policy",
            &strict,
            "--sampling",
            "keyframes",
            "--jobs",
            jobs,
            "--json",
        ]
        .map(String::from)
        .to_vec()
    };
    let a2 = args(&out, "2");
    let o = rescore(h, &a2.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(o.status.code(), Some(1), "one session failed: {}", text(&o));
    let s = summary(&out);
    assert_eq!(
        (s["total"].as_u64(), s["scored"].as_u64()),
        (Some(4), Some(3))
    );
    assert_eq!(s["skipped"], 0);
    let failed = s["failed"].as_array().unwrap();
    assert_eq!(failed.len(), 1, "{s:#}");
    assert!(
        failed[0]["media"]
            .as_str()
            .unwrap()
            .ends_with("c/no_consent.webm")
    );
    assert!(
        failed[0]["error"].as_str().unwrap().contains("consent"),
        "{s:#}"
    );
    let changed = s["changed"].as_array().unwrap();
    assert_eq!(changed.len(), 1, "{s:#}");
    let c = &changed[0];
    assert!(
        c["media"]
            .as_str()
            .unwrap()
            .ends_with("a/face_identity_cut.mp4")
    );
    assert_eq!(c["verification_status"]["old"], "needs_review");
    assert_eq!(c["verification_status"]["new"], "rejected");
    assert_eq!(c["report"], "a/face_identity_cut.mp4.vigil.json");
    assert_ne!(c["report_id"]["old"], c["report_id"]["new"]);
    assert_eq!(
        s["unchanged"], 1,
        "the sidecar session's verdict is the same: {s:#}"
    );
    let untrusted = s["untrusted_previous"].as_array().unwrap();
    assert_eq!(untrusted.len(), 1, "{s:#}");
    assert!(
        untrusted[0]["previous_report"]
            .as_str()
            .unwrap()
            .ends_with("looping.mp4.vigil.json")
    );
    assert!(
        untrusted[0]["reason"]
            .as_str()
            .unwrap()
            .contains("signature")
    );
    assert!(
        s["ignored"][0]["path"]
            .as_str()
            .unwrap()
            .ends_with("notes.mp4")
    );
    assert_eq!(s["policy"]["id"], "vigil-strict");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("no_consent.webm") && stderr.contains("not trusted"),
        "{stderr}"
    );
    // One JSON progress line per session, then the closing summary.
    let lines: Vec<Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 5);
    assert_eq!(lines[4]["summary"]["changed"], 1);
    let html = std::fs::read_to_string(out.join("rescore.html")).unwrap();
    assert!(html.contains("href=\"a/face_identity_cut.mp4.vigil.html\""));
    assert!(out.join("a/face_identity_cut.mp4.vigil.html").is_file());

    // The same payload as `vigil score` gives for the same media, session and policy.
    let direct = h.join("direct.vigil.json");
    common::score(
        h,
        clip.to_str().unwrap(),
        &direct,
        &[
            "--session",
            sidecar.to_str().unwrap(),
            "--policy",
            &strict,
            "--sampling",
            "keyframes",
        ],
    );
    let (_, mut d) = read_report(&direct);
    d.as_object_mut().unwrap().remove("generated_at");
    let first = payloads(&out);
    assert_eq!(first["b/clip_vp8_opus.webm.vigil.json"], d);

    // Re-running the finished command scores nothing and reports the same changes.
    let before: Vec<Vec<u8>> = walk(&out)
        .iter()
        .filter(|p| p.to_string_lossy().ends_with(".vigil.json"))
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    let o = rescore(h, &a2.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let s2 = summary(&out);
    assert_eq!(
        (s2["scored"].as_u64(), s2["skipped"].as_u64()),
        (Some(0), Some(3))
    );
    assert_eq!(s2["changed"], s["changed"]);
    let after: Vec<Vec<u8>> = walk(&out)
        .iter()
        .filter(|p| p.to_string_lossy().ends_with(".vigil.json"))
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    assert_eq!(
        before, after,
        "a skipped session's report is left as it was"
    );

    // --jobs 1 gives the same payloads as --jobs 2.
    let out1 = h.join("out1");
    let a1 = args(&out1, "1");
    let o = rescore(h, &a1.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert_eq!(payloads(&out1), first);
}

#[test]
fn a_rescore_killed_mid_run_finishes_on_re_run_with_every_report_once() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let arch = h.join("archive");
    for (i, f) in [
        "clip_vp8_opus.webm",
        "clip_vp9_opus.webm",
        "clip_h264_opus.mkv",
        "interview.mp4",
        "face_same_person.mp4",
    ]
    .iter()
    .enumerate()
    {
        copy(f, &arch.join(format!("{i}/{f}")));
    }
    let out = h.join("out");
    let args = [
        arch.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--sampling",
        "keyframes",
        "--jobs",
        "1",
        "--json",
    ];
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("vigil"))
        .env("XDG_DATA_HOME", h)
        .arg("rescore")
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once the first session is recorded and the second is being scored.
    let deadline = Instant::now() + Duration::from_secs(300);
    while payloads_present(&out) < 1 {
        assert!(Instant::now() < deadline, "no report appeared");
        assert!(
            child.try_wait().unwrap().is_none(),
            "finished before the kill"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let partial = payloads_present(&out);
    assert!(partial < 5, "killed before the end ({partial} reports)");
    // Whatever is on disk is a whole, verifiable report.
    let _ = payloads(&out);

    let o = rescore(h, &args);
    assert!(o.status.success(), "{}", text(&o));
    let s = summary(&out);
    assert_eq!(s["total"], 5);
    assert_eq!(
        s["scored"].as_u64().unwrap() + s["skipped"].as_u64().unwrap(),
        5,
        "{s:#}"
    );
    assert!(s["skipped"].as_u64().unwrap() >= 1, "{s:#}");
    let files = walk(&out);
    assert!(
        files.iter().all(|p| !p
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with(".vigil-partial-")),
        "{files:?}"
    );
    // Every report once, and byte-identical payloads to an uninterrupted run.
    let resumed = payloads(&out);
    assert_eq!(resumed.len(), 5);
    let clean = h.join("clean");
    let mut a = args;
    a[2] = clean.to_str().unwrap();
    let o = rescore(h, &a);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(payloads(&clean), resumed);
}

fn payloads_present(out: &Path) -> usize {
    if !out.is_dir() {
        return 0;
    }
    walk(out)
        .iter()
        .filter(|p| p.to_string_lossy().ends_with(".vigil.json"))
        .count()
}

#[test]
fn manifests_and_missing_archives_are_entries_not_aborts() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let m = h.join("m");
    copy("audio_only.ogg", &m.join("media/call.ogg"));
    std::fs::write(
        m.join("list.jsonl"),
        format!(
            "{}\nthis is not json\n{}\n{}\n",
            r#"{"media": "media/call.ogg", "session": {"session_id": "x-1"}}"#,
            r#"{"media": "media/gone.ogg"}"#,
            r#"{"media": "media/call.ogg", "surprise": 1}"#,
        ),
    )
    .unwrap();
    let out = h.join("out");
    let o = rescore(
        h,
        &[
            m.join("list.jsonl").to_str().unwrap(),
            h.join("no-such-archive").to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let s = summary(&out);
    assert_eq!(
        (s["total"].as_u64(), s["scored"].as_u64()),
        (Some(5), Some(1)),
        "{s:#}"
    );
    let errors: Vec<String> = s["failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| format!("{} {}", f["media"], f["error"]))
        .collect();
    assert_eq!(errors.len(), 4, "{errors:#?}");
    assert!(
        errors
            .iter()
            .any(|e| e.contains("list.jsonl:2") && e.contains("manifest line"))
    );
    assert!(
        errors
            .iter()
            .any(|e| e.contains("list.jsonl:4") && e.contains("surprise"))
    );
    assert!(
        errors
            .iter()
            .any(|e| e.contains("no-such-archive") && e.contains("archive"))
    );
    assert!(errors.iter().any(|e| e.contains("gone.ogg")));
    let (_, p) = read_report(&out.join("media/call.ogg.vigil.json"));
    assert_eq!(p["session"]["session_id"], "x-1");
    // Usage errors are exit 2 and write nothing.
    let o = rescore(h, &["--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let o = rescore(
        h,
        &[
            m.to_str().unwrap(),
            "--out",
            h.join("o2").to_str().unwrap(),
            "--deliver",
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(!h.join("o2").exists());
}
