//! Shared helpers for the integration tests: run the real `vigil` binary with an isolated key
//! directory, read its reports, and serve files over HTTP from the test itself.

#![allow(dead_code)]

use assert_cmd::Command;
use base64::Engine;
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
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

/// Serves `body` on 127.0.0.1 for the life of the process; returns the base URL.
pub fn http_server(body: Vec<u8>, mode: Serve) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(64) {
            let Ok(mut stream) = stream else { continue };
            let body = body.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request = String::new();
                if reader.read_line(&mut request).is_err() {
                    return;
                }
                let mut range_start = 0usize;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    let lower = line.to_ascii_lowercase();
                    if let Some(r) = lower.strip_prefix("range: bytes=") {
                        range_start = r
                            .split('-')
                            .next()
                            .unwrap_or("0")
                            .trim()
                            .parse()
                            .unwrap_or(0);
                    }
                }
                if !request.starts_with("GET /media") {
                    let _ = stream.write_all(
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    );
                    return;
                }
                match mode {
                    Serve::File => {
                        let start = range_start.min(body.len());
                        let part = &body[start..];
                        let head = if range_start > 0 {
                            format!(
                                "HTTP/1.1 206 Partial Content\r\nContent-Type: video/webm\r\nContent-Length: {}\r\nContent-Range: bytes {}-{}/{}\r\nAccept-Ranges: bytes\r\nConnection: close\r\n\r\n",
                                part.len(),
                                start,
                                body.len() - 1,
                                body.len()
                            )
                        } else {
                            format!(
                                "HTTP/1.1 200 OK\r\nContent-Type: video/webm\r\nContent-Length: {}\r\nAccept-Ranges: bytes\r\nConnection: close\r\n\r\n",
                                part.len()
                            )
                        };
                        let _ = stream.write_all(head.as_bytes());
                        let _ = stream.write_all(part);
                    }
                    Serve::Stall => {
                        let head = format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: video/webm\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            body.len()
                        );
                        let _ = stream.write_all(head.as_bytes());
                        let _ = stream.write_all(&body[..4096.min(body.len())]);
                        // Hold the connection open without sending more, then give up.
                        let mut sink = [0u8; 16];
                        stream.set_read_timeout(Some(Duration::from_secs(60))).ok();
                        let _ = stream.read(&mut sink);
                    }
                }
            });
        }
    });
    format!("http://{addr}")
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
