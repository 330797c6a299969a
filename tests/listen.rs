//! The listener's own limits (issue 19, item 7): slow or idle clients cannot hold connections.
//! Short limits are set so the tests finish quickly; the assertions are on what happens (the
//! server closes the socket, answers 408), never on how long it took.

use axum::Router;
use axum::routing::{get, post};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;
use vigil::server::listen::{Limits, body_timeout, serve};

/// Starts the listener on a runtime of its own; returns its address (the runtime lives as long
/// as the test process).
fn start(limits: Limits) -> std::net::SocketAddr {
    let rt = Box::leak(Box::new(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap(),
    ));
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let router = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/small",
            post(|body: String| async move { body.len().to_string() })
                .layer(body_timeout(Duration::from_secs(1))),
        );
    rt.spawn(serve(listener, router, limits, std::future::pending()));
    addr
}

fn limits() -> Limits {
    Limits {
        header_read_timeout: Duration::from_secs(1),
        max_connections: 4,
    }
}

/// Reads until the server closes the connection (or 30 s pass: then the test fails).
fn read_to_close(s: &mut TcpStream) -> String {
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut out = Vec::new();
    match s.read_to_end(&mut out) {
        Ok(_) => String::from_utf8_lossy(&out).into_owned(),
        Err(e) => panic!("the server kept the connection open: {e}"),
    }
}

#[test]
fn an_idle_connection_is_closed() {
    let addr = start(limits());
    let mut s = TcpStream::connect(addr).unwrap();
    // Nothing sent at all: closed after the header read timeout.
    read_to_close(&mut s);
}

#[test]
fn a_trickled_request_head_is_cut_off() {
    let addr = start(limits());
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\n").unwrap();
    // One header line now and then, never the end of the head.
    let mut cut = false;
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(400));
        if s.write_all(b"X-Slow: 1\r\n").is_err() {
            cut = true;
            break;
        }
    }
    let answer = if cut {
        String::new()
    } else {
        read_to_close(&mut s)
    };
    assert!(!answer.contains("200 OK"), "{answer}");
}

#[test]
fn a_trickled_small_body_gets_408_and_normal_requests_pass() {
    let addr = start(limits());
    let mut ok = TcpStream::connect(addr).unwrap();
    ok.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    assert!(read_to_close(&mut ok).starts_with("HTTP/1.1 200"));

    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(b"POST /small HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
        .unwrap();
    for _ in 0..6 {
        std::thread::sleep(Duration::from_millis(400));
        if s.write_all(b"a").is_err() {
            break;
        }
    }
    let answer = read_to_close(&mut s);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
}
