//! Shared helpers for the integration tests: run the real `vigil` binary with an isolated key
//! directory, read its reports, and serve files over HTTP from the test itself.

#![allow(dead_code)]

use assert_cmd::Command;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use futures_util::StreamExt;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub fn testdata(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(name)
}

/// A `vigil` command whose default signing key lives in `home` (never the user's real one).
pub fn vigil(home: &Path) -> Command {
    let mut c = Command::cargo_bin("vigil").expect("vigil binary is built");
    c.env("XDG_DATA_HOME", home)
        .env_remove("VIGIL_SIGNING_KEY")
        .env_remove("VIGIL_ORT_LIB")
        .env_remove("VIGIL_MODELS_DIR")
        .env("no_proxy", "127.0.0.1,localhost")
        .env("NO_PROXY", "127.0.0.1,localhost")
        .timeout(Duration::from_secs(120));
    c
}

/// Scores `media` into `dir` and returns (envelope, payload).
pub fn score(home: &Path, media: &str, out: &Path, extra: &[&str]) -> (Value, Value) {
    let mut c = vigil(home);
    c.arg("score").arg(media).arg("--out").arg(out).args(extra);
    let o = c.output().unwrap();
    assert!(
        o.status.success(),
        "vigil score {media} failed: {}\n{}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        !stderr.contains("CRITICAL") && !stderr.contains("panicked"),
        "vigil score {media} logged GStreamer criticals or panicked:\n{stderr}"
    );
    read_report(out)
}

pub fn read_report(path: &Path) -> (Value, Value) {
    let env: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let payload = base64::engine::general_purpose::STANDARD
        .decode(env["payload"].as_str().unwrap())
        .unwrap();
    (env, serde_json::from_slice(&payload).unwrap())
}

/// Scores a committed fixture in a fresh key directory and returns the payload.
pub fn scored(file: &str, extra: &[&str]) -> Value {
    let home = tempfile::tempdir().unwrap();
    let out = home.path().join("r.json");
    score(home.path(), testdata(file).to_str().unwrap(), &out, extra).1
}

/// An event's (start_s, end_s).
pub fn span(e: &Value) -> (f64, f64) {
    (e["start_s"].as_f64().unwrap(), e["end_s"].as_f64().unwrap())
}

/// Runs `gst-launch-1.0 -q <elements> ! filesink location=<out>` to make a test input.
pub fn gst_make(out: &Path, elements: &[&str]) {
    let ok = std::process::Command::new("gst-launch-1.0")
        .arg("-q")
        .args(elements)
        .args(["!", "filesink"])
        .arg(format!("location={}", out.display()))
        .status()
        .expect("gst-launch-1.0 runs (scripts/setup installs it)");
    assert!(
        ok.success(),
        "gst-launch-1.0 could not make {}",
        out.display()
    );
}

pub fn events_of<'a>(payload: &'a Value, kind: &str) -> Vec<&'a Value> {
    payload["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == kind)
        .collect()
}

/// How the test HTTP server behaves.
#[derive(Clone, Copy)]
pub enum Serve {
    /// Serve the file with Range support.
    File,
    /// Send the headers and a few bytes, then go silent.
    Stall,
}

/// Serves `body` at `/media…` on 127.0.0.1 (axum, on its own thread and runtime) for the life
/// of the process; returns the base URL.
pub fn http_server(body: Vec<u8>, mode: Serve) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let body = Arc::new(body);
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap| {
                media(uri, headers, body.clone(), mode)
            });
            axum::serve(listener, app).await.unwrap();
        });
    });
    format!("http://{addr}")
}

/// `GET /media…`: the whole body, or from a `Range: bytes=N-` offset; or (stalling) the
/// headers and the first 4 KiB, then nothing for a minute.
async fn media(uri: Uri, headers: HeaderMap, body: Arc<Vec<u8>>, mode: Serve) -> Response {
    if !uri.path().starts_with("/media") {
        return StatusCode::NOT_FOUND.into_response();
    }
    let webm = (header::CONTENT_TYPE, "video/webm".to_string());
    match mode {
        Serve::File => {
            let start = headers
                .get(header::RANGE)
                .and_then(|v| v.to_str().ok())
                .and_then(|r| r.strip_prefix("bytes="))
                .and_then(|r| r.split('-').next())
                .and_then(|n| n.trim().parse::<usize>().ok())
                .unwrap_or(0)
                .min(body.len());
            let part = body[start..].to_vec();
            let ranges = (header::ACCEPT_RANGES, "bytes".to_string());
            if start == 0 {
                return ([webm, ranges], part).into_response();
            }
            let range = format!("bytes {start}-{}/{}", body.len() - 1, body.len());
            let headers = [webm, ranges, (header::CONTENT_RANGE, range)];
            (StatusCode::PARTIAL_CONTENT, headers, part).into_response()
        }
        Serve::Stall => {
            let first = axum::body::Bytes::copy_from_slice(&body[..4096.min(body.len())]);
            let chunks = futures_util::stream::iter([Ok::<_, std::io::Error>(first)]).chain(
                futures_util::stream::once(async {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    Err(std::io::Error::other("the test server gave up"))
                }),
            );
            let length = (header::CONTENT_LENGTH, body.len().to_string());
            ([webm, length], axum::body::Body::from_stream(chunks)).into_response()
        }
    }
}

/// Every file under `dir`, sorted.
pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            v.extend(walk(&p));
        } else {
            v.push(p);
        }
    }
    v.sort();
    v
}

/// Every signed report under a `vigil rescore` output, by path relative to it → its payload
/// without `generated_at` (what must be byte-identical between runs).
pub fn rescore_payloads(out: &Path) -> std::collections::BTreeMap<String, Value> {
    let mut m = std::collections::BTreeMap::new();
    for e in walk(out) {
        let name = e.strip_prefix(out).unwrap().display().to_string();
        if name.ends_with(".vigil.json") {
            let (_, mut p) = read_report(&e);
            p.as_object_mut().unwrap().remove("generated_at");
            m.insert(name, p);
        }
    }
    m
}

/// A `vigil rescore` output's `rescore.json`.
pub fn rescore_summary(out: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(out.join("rescore.json")).unwrap()).unwrap()
}

/// A finished command's status and output, for assertion messages.
pub fn output_text(o: &std::process::Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}
