//! Decoding a session's media while it arrives (`vigil serve`'s ingest): a spool fed in small
//! pieces gives the same analysis as the finished file, waits for a slow writer, and fails with
//! the writer's reason when aborted.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;
use vigil::ingest::{MediaInput, Spool};
use vigil::pipeline::{ScoreOptions, score};

fn testdata(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(name)
}

/// Copies `src` into a spool file in `chunk`-byte pieces, pausing between them, then ends it.
fn trickle(src: &std::path::Path, spool: Arc<Spool>, chunk: usize, pause: Duration) {
    let bytes = std::fs::read(src).unwrap();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(spool.path())
        .unwrap();
    let mut done = 0;
    for piece in bytes.chunks(chunk) {
        f.write_all(piece).unwrap();
        f.sync_data().unwrap();
        done += piece.len() as u64;
        spool.advance(done);
        std::thread::sleep(pause);
    }
    spool.end();
}

#[test]
fn a_trickled_live_stream_scores_like_the_finished_file() {
    let dir = tempfile::tempdir().unwrap();
    let media = testdata("interview_live.webm");
    let path = dir.path().join("media");
    std::fs::File::create(&path).unwrap();
    let spool = Arc::new(Spool::new(&path, "interview_live.webm", 0));
    let writer = {
        let spool = spool.clone();
        let media = media.clone();
        std::thread::spawn(move || trickle(&media, spool, 48 * 1024, Duration::from_millis(20)))
    };
    let opts = ScoreOptions::default();
    let live = score(&MediaInput::Spool(spool), &opts).expect("the spool decodes");
    writer.join().unwrap();
    let whole = score(&MediaInput::File(media), &opts).unwrap();

    assert_eq!(
        live.media.sha256, whole.media.sha256,
        "the spool holds the same bytes"
    );
    assert_eq!(live.media.source, whole.media.source);
    let (mut a, mut b) = (live.clone(), whole.clone());
    a.generated_at.clear();
    b.generated_at.clear();
    assert_eq!(
        a.to_payload(),
        b.to_payload(),
        "decoding as the bytes arrive changes nothing in the report"
    );
    assert!(live.coverage.frames_analysed >= 19, "{:?}", live.coverage);
}

#[test]
fn an_aborted_spool_fails_with_the_reason_and_never_reports() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("media");
    let head = std::fs::read(testdata("interview_live.webm")).unwrap();
    std::fs::write(&path, &head[..200_000]).unwrap();
    let spool = Arc::new(Spool::new(&path, "live", 200_000));
    let stopper = {
        let spool = spool.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(1500));
            spool.abort("server shutting down");
        })
    };
    let err = score(&MediaInput::Spool(spool), &ScoreOptions::default())
        .expect_err("an aborted session has no report");
    stopper.join().unwrap();
    assert!(err.to_string().contains("server shutting down"), "{err}");
}
