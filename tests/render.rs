//! The HTML report in a real headless browser (Debian `chromium`, installed by scripts/setup):
//! it loads with no console messages (no errors, no blocked fetches), shows the verdict, the
//! timeline plot and every event, and escapes hostile ids. A screenshot is kept in
//! `target/test-output/render/` for people to look at.

mod common;

use common::{testdata, vigil};
use std::path::{Path, PathBuf};
use std::process::Command;

fn chromium() -> &'static str {
    for c in ["chromium", "chromium-browser", "google-chrome"] {
        if Command::new("sh")
            .args(["-c", &format!("command -v {c} >/dev/null")])
            .status()
            .is_ok_and(|s| s.success())
        {
            return c;
        }
    }
    panic!("no chromium on PATH: scripts/setup installs the Debian `chromium` package");
}

/// Loads `page` headless and returns (serialised DOM after load, browser log on stderr).
fn browse(page: &Path, screenshot: Option<&Path>) -> (String, String) {
    let url = format!("file://{}", page.display());
    let common_args = [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--hide-scrollbars",
        "--enable-logging=stderr",
        "--v=0",
        "--window-size=1100,1600",
    ];
    let profile = tempfile::tempdir().unwrap();
    let o = Command::new(chromium())
        .args(common_args)
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(&url)
        .output()
        .expect("chromium runs");
    assert!(o.status.success(), "chromium failed: {o:?}");
    if let Some(shot) = screenshot {
        let o = Command::new(chromium())
            .args(common_args)
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg(format!("--screenshot={}", shot.display()))
            .arg(&url)
            .output()
            .unwrap();
        assert!(
            o.status.success() && shot.exists(),
            "screenshot failed: {o:?}"
        );
    }
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn output_dir() -> PathBuf {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-output/render");
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn console_messages(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| l.contains("CONSOLE") || l.contains("Refused to") || l.contains("ERR_"))
        .collect()
}

#[test]
fn report_page_loads_clean_with_plot_and_every_event() {
    let home = tempfile::tempdir().unwrap();
    let session = home.path().join("session.json");
    // Hostile ids must come out as text, never as markup.
    std::fs::write(
        &session,
        r#"{"candidate_external_id": "<script>document.title='pwned'</script>", "application_id": "app-\"><img src=x>", "consent": {"recorded_at": "2026-11-20T09:00:00Z", "method": "meeting_bot_prompt", "text_version": "v3"}}"#,
    )
    .unwrap();
    let report = home.path().join("r.vigil.json");
    let html = home.path().join("r.html");
    let (_, payload) = common::score(
        home.path(),
        testdata("lipsync_mismatch.mp4").to_str().unwrap(),
        &report,
        &[
            "--session",
            session.to_str().unwrap(),
            "--html",
            html.to_str().unwrap(),
        ],
    );
    let events = payload["events"].as_array().unwrap();
    assert!(!events.is_empty(), "the fixture has a lip-sync event");

    // `vigil render` on the signed file gives the same page as `score --html`.
    let rendered = home.path().join("rendered.html");
    let o = vigil(home.path())
        .args(["render"])
        .arg(&report)
        .arg("--html")
        .arg(&rendered)
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    assert_eq!(
        std::fs::read(&html).unwrap(),
        std::fs::read(&rendered).unwrap()
    );
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(!page.contains("<script"), "no script, escaped ids");
    assert!(!page.contains("<img"), "no injected element");
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "no external assets"
    );

    let shot = output_dir().join("lipsync_mismatch.png");
    let (dom, log) = browse(&html, Some(&shot));
    assert!(
        console_messages(&log).is_empty(),
        "browser console: {:?}",
        console_messages(&log)
    );
    assert!(dom.contains(r#"<svg id="timeline""#), "plot present");
    assert!(dom.contains(r#"data-series="voice_similarity""#));
    assert!(dom.contains(r#"data-series="face_distance""#));
    assert!(dom.contains("Signature valid"));
    assert!(dom.contains(&format!(
        r#"id="integrity">{:.0}"#,
        payload["score"]["integrity"].as_f64().unwrap()
    )));
    for (i, e) in events.iter().enumerate() {
        let kind = e["kind"].as_str().unwrap();
        assert!(
            dom.contains(&format!(r#"id="event-{i}" data-kind="{kind}""#)),
            "event {i} ({kind}) is listed"
        );
        assert!(
            dom.contains(&format!(r#"class="span" data-event="{i}""#)),
            "event {i} is shaded on the plot"
        );
    }
    assert!(
        !dom.contains("<title>pwned"),
        "the hostile id did not run: {}",
        &dom[..200]
    );
    assert!(
        dom.contains("&lt;script&gt;"),
        "the hostile id shows as text"
    );
}

#[test]
fn a_tampered_report_renders_as_untrusted_and_exits_1() {
    let home = tempfile::tempdir().unwrap();
    let report = home.path().join("r.vigil.json");
    common::score(
        home.path(),
        testdata("audio_only.ogg").to_str().unwrap(),
        &report,
        &[],
    );
    let mut env: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    env["signatures"][0]["sig"] = serde_json::Value::String(base64_of(&[0u8; 64]));
    std::fs::write(&report, serde_json::to_vec(&env).unwrap()).unwrap();
    let html = home.path().join("r.html");
    let o = vigil(home.path())
        .arg("render")
        .arg(&report)
        .arg("--html")
        .arg(&html)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("Signature NOT verified"));
    assert!(!page.contains("Signature valid"));
    // Issue 19: the warning leads, before any verdict, and the verdict has no verdict colour.
    let warning = page.find("Signature NOT verified").unwrap();
    let verdict = page.find(r#"id="verdict""#).unwrap();
    assert!(warning < verdict, "the warning must come first");
    assert!(page.contains("unverified claim:"));
    for colour in [
        "background:#2b8a3e",
        "background:#c92a2a",
        "background:#e67700",
    ] {
        assert!(
            !page.contains(colour),
            "verdict styling {colour} on an untrusted page"
        );
    }

    // A payload tampered into something that is not a report still gets a page that says so.
    env["payload"] = serde_json::Value::String(base64_of(b"{not json"));
    std::fs::write(&report, serde_json::to_vec(&env).unwrap()).unwrap();
    let o = vigil(home.path())
        .arg("render")
        .arg(&report)
        .arg("--html")
        .arg(&html)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("Not a valid Vigil report"), "{page}");
    assert!(!page.contains("verdict"));
}

fn base64_of(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}
