//! `vigil worker` fleets on a real NATS JetStream server (Debian's `nats-server`, started here on a
//! free loopback port with a temporary store): workers killed, the server restarted and the
//! coordinator killed mid-run, a job that always fails, and a worker without credentials.

mod common;

use common::{rescore_payloads as payloads, rescore_summary as summary, testdata};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Nats {
    child: Child,
    port: u16,
    store: PathBuf,
    auth: Option<(String, String)>,
}

impl Nats {
    fn start(store: &Path, auth: Option<(&str, &str)>) -> Nats {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut n = Nats {
            child: spawn_nats(port, store, auth),
            port,
            store: store.to_path_buf(),
            auth: auth.map(|(u, p)| (u.to_string(), p.to_string())),
        };
        n.wait_ready();
        n
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not start");
            assert!(
                self.child.try_wait().unwrap().is_none(),
                "nats-server exited"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL, then start again on the same port and store.
    fn restart(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        std::thread::sleep(Duration::from_millis(500));
        let auth = self.auth.clone();
        self.child = spawn_nats(
            self.port,
            &self.store,
            auth.as_ref().map(|(u, p)| (u.as_str(), p.as_str())),
        );
        self.wait_ready();
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_nats(port: u16, store: &Path, auth: Option<(&str, &str)>) -> Child {
    let mut c = Command::new("nats-server");
    c.args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
        .arg(store)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some((u, p)) = auth {
        c.args(["--user", u, "--pass", p]);
    }
    c.spawn()
        .expect("nats-server runs (scripts/setup installs Debian's nats-server)")
}

fn vigil_cmd(home: &Path) -> Command {
    let mut c = Command::new(assert_cmd::cargo::cargo_bin("vigil"));
    c.env("XDG_DATA_HOME", home)
        .env_remove("VIGIL_SIGNING_KEY")
        .env_remove("VIGIL_QUEUE")
        .env("RUST_LOG", "vigil=info");
    c
}

fn worker(home: &Path, url: &str, name: &str) -> (Child, PathBuf) {
    worker_with(home, url, name, &[])
}

fn worker_with(home: &Path, url: &str, name: &str, env: &[(&str, &str)]) -> (Child, PathBuf) {
    let log = home.join(format!("{name}.log"));
    let child = vigil_cmd(home)
        .envs(env.iter().copied())
        .args(["worker", "--queue", url, "--jobs", "1", "--name", name])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    (child, log)
}

fn coordinator(home: &Path, arch: &Path, out: &Path, url: &str) -> Child {
    coordinator_with(home, arch, out, url, &[])
}

fn coordinator_with(
    home: &Path,
    arch: &Path,
    out: &Path,
    url: &str,
    env: &[(&str, &str)],
) -> Child {
    vigil_cmd(home)
        .envs(env.iter().copied())
        .arg("rescore")
        .arg(arch)
        .arg("--out")
        .arg(out)
        .args(["--sampling", "keyframes", "--json", "--queue", url])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(out.with_extension("log")).unwrap())
        .spawn()
        .unwrap()
}

/// The same archive scored on this machine, for comparison with a fleet's output.
fn local_rescore(home: &Path, arch: &Path, out: &Path) -> std::process::Output {
    vigil_cmd(home)
        .arg("rescore")
        .arg(arch)
        .arg("--out")
        .arg(out)
        .args(["--sampling", "keyframes", "--json"])
        .output()
        .unwrap()
}

fn wait_exit(c: &mut Child, secs: u64) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(s) = c.try_wait().unwrap() {
            return s.code().unwrap_or(-1);
        }
        assert!(Instant::now() < deadline, "did not finish in {secs} s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn wait_for(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `n` sessions: small real recordings, each with its own session id (so each is its own job).
fn archive(dir: &Path, n: usize) {
    let clips = [
        "clip_vp8_opus.webm",
        "clip_vp9_opus.webm",
        "clip_h264_opus.mkv",
        "audio_only.ogg",
    ];
    for i in 0..n {
        let f = clips[i % clips.len()];
        let media = dir.join(format!("s{i:02}/{f}"));
        std::fs::create_dir_all(media.parent().unwrap()).unwrap();
        std::fs::copy(testdata(f), &media).unwrap();
        std::fs::write(
            format!("{}.session.json", media.display()),
            format!(r#"{{"session_id": "fleet-{i}"}}"#),
        )
        .unwrap();
    }
}

fn jobs_published(url: &str) -> u64 {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let js = vigil::fleet::connect(url, "test").await.unwrap();
        let mut s = js.get_stream(vigil::fleet::JOBS_STREAM).await.unwrap();
        s.info().await.unwrap().state.last_sequence
    })
}

#[test]
fn three_workers_one_killed_and_the_server_restarted_score_every_session_once() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let arch = h.join("archive");
    archive(&arch, 24);
    // Media that probes as MP4 but cannot be decoded: fails on every delivery.
    let bytes = std::fs::read(testdata("interview.mp4")).unwrap();
    std::fs::create_dir_all(arch.join("z")).unwrap();
    std::fs::write(arch.join("z/corrupt.mp4"), &bytes[..4096]).unwrap();
    let mut nats = Nats::start(&h.join("js"), None);
    let url = nats.url();
    let mut workers: Vec<(Child, PathBuf)> = ["w1", "w2", "w3"]
        .iter()
        .map(|n| worker(h, &url, n))
        .collect();
    let out = h.join("out");
    let mut coord = coordinator(h, &arch, &out, &url);

    // Kill w1 while it scores a job; note which.
    let w1_log = workers[0].1.clone();
    let scoring_key = |log: &Path| {
        std::fs::read_to_string(log)
            .unwrap_or_default()
            .lines()
            .find(|l| l.contains("scoring"))
            .and_then(|l| l.split("key=").nth(1))
            .map(|k| k.split_whitespace().next().unwrap().to_string())
    };
    wait_for("w1 to take a job", 120, || {
        if let Some(s) = coord.try_wait().unwrap() {
            let log = std::fs::read_to_string(out.with_extension("log")).unwrap_or_default();
            panic!("the coordinator stopped early ({s}):\n{log}");
        }
        scoring_key(&w1_log).is_some()
    });
    let killed_key = scoring_key(&w1_log).unwrap();
    workers[0].0.kill().unwrap(); // SIGKILL
    workers[0].0.wait().unwrap();
    // Restart the server once mid-run.
    std::thread::sleep(Duration::from_millis(500));
    nats.restart();

    let deadline = Instant::now() + Duration::from_secs(300);
    while coord.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let tail = |p: &Path| {
                let t = std::fs::read_to_string(p).unwrap_or_default();
                t.lines().rev().take(15).collect::<Vec<_>>().join("\n")
            };
            let workers: Vec<String> = workers.iter().map(|w| tail(&w.1)).collect();
            panic!(
                "the coordinator did not finish:\n{}\nworkers:\n{}",
                tail(&out.with_extension("log")),
                workers.join("\n---\n")
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let code = wait_exit(&mut coord, 1);
    let log = std::fs::read_to_string(out.with_extension("log")).unwrap();
    assert_eq!(
        code, 1,
        "the corrupt session failed, the rest were scored:\n{log}"
    );
    let s = summary(&out);
    assert_eq!(
        (s["total"].as_u64(), s["scored"].as_u64()),
        (Some(25), Some(24)),
        "{s:#}"
    );
    let failed = s["failed"].as_array().unwrap();
    assert_eq!(failed.len(), 1, "{s:#}");
    assert!(
        failed[0]["media"]
            .as_str()
            .unwrap()
            .ends_with("corrupt.mp4")
    );
    assert!(
        failed[0]["error"]
            .as_str()
            .unwrap()
            .contains("all 3 deliveries"),
        "{s:#}"
    );
    // The killed worker's job was redelivered and finished by another worker.
    let others: String = workers[1..]
        .iter()
        .map(|w| std::fs::read_to_string(&w.1).unwrap())
        .collect();
    assert!(
        others.contains(&format!("key={killed_key}")),
        "the job {killed_key} killed with w1 was finished elsewhere"
    );
    // Every report once, byte-identical in payload to a local rescore of the same archive.
    let fleet = payloads(&out);
    assert_eq!(fleet.len(), 24);
    let local = h.join("local");
    let o = local_rescore(h, &arch, &local);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(payloads(&local), fleet);
    for w in &mut workers[1..] {
        // SIGTERM: finish what is in hand, exit 0.
        unsafe { libc_kill(w.0.id() as i32, 15) };
        assert_eq!(wait_exit(&mut w.0, 60), 0);
    }
}

unsafe extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

#[test]
fn a_coordinator_killed_and_re_run_publishes_nothing_twice_and_loses_nothing() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let arch = h.join("archive");
    archive(&arch, 8);
    let nats = Nats::start(&h.join("js"), None);
    let url = nats.url();
    let out = h.join("out");
    // Jobs queue up before any worker runs; the coordinator is killed while it waits.
    let mut coord = coordinator(h, &arch, &out, &url);
    wait_for("the jobs to be published", 120, || {
        std::fs::read_to_string(out.with_extension("log"))
            .unwrap_or_default()
            .contains("gathering results")
    });
    coord.kill().unwrap();
    coord.wait().unwrap();
    assert_eq!(jobs_published(&url), 8);
    // Workers answer while no coordinator is running; the results wait in the stream.
    let mut w = worker(h, &url, "w1");
    wait_for("the queue to drain", 300, || {
        std::fs::read_to_string(&w.1)
            .unwrap_or_default()
            .matches("scoring")
            .count()
            >= 8
    });
    let mut again = coordinator(h, &arch, &out, &url);
    assert_eq!(wait_exit(&mut again, 300), 0);
    assert_eq!(jobs_published(&url), 8, "no job was published twice");
    let s = summary(&out);
    assert_eq!(
        (s["scored"].as_u64(), s["failed"].as_array().unwrap().len()),
        (Some(8), 0)
    );
    assert_eq!(payloads(&out).len(), 8);
    w.0.kill().unwrap();
    w.0.wait().unwrap();
}

/// A job whose workers all die: JetStream gives up after 3 deliveries and says so; the
/// coordinator records the failure instead of waiting for ever.
#[test]
fn a_job_whose_workers_all_die_is_recorded_as_failed() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let arch = h.join("archive");
    std::fs::create_dir_all(&arch).unwrap();
    std::fs::copy(testdata("interview.mp4"), arch.join("long.mp4")).unwrap();
    let nats = Nats::start(&h.join("js"), None);
    let url = nats.url();
    let out = h.join("out");
    let fast = [("VIGIL_FLEET_ACK_WAIT_S", "2")];
    let mut coord = coordinator_with(h, &arch, &out, &url, &fast);
    for i in 0..3 {
        let (mut w, log) = worker_with(h, &url, &format!("doomed{i}"), &fast);
        wait_for("the worker to take the job", 120, || {
            std::fs::read_to_string(&log)
                .unwrap_or_default()
                .contains("scoring")
        });
        w.kill().unwrap(); // SIGKILL while scoring
        w.wait().unwrap();
    }
    // A healthy worker asks for work: JetStream finds the job out of deliveries and says so.
    let (mut healthy, healthy_log) = worker_with(h, &url, "healthy", &fast);
    assert_eq!(wait_exit(&mut coord, 120), 1);
    let s = summary(&out);
    let failed = s["failed"].as_array().unwrap();
    assert_eq!(failed.len(), 1, "{s:#}");
    assert!(
        failed[0]["error"]
            .as_str()
            .unwrap()
            .contains("no worker answered"),
        "{s:#}"
    );
    healthy.kill().unwrap();
    healthy.wait().unwrap();
    let log = std::fs::read_to_string(healthy_log).unwrap();
    assert!(!log.contains("scoring"), "a 4th delivery happened:\n{log}");
}

#[test]
fn a_worker_without_credentials_is_refused_with_a_clear_error() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let nats = Nats::start(&h.join("js"), Some(("vigil", "s3cret-pass")));
    let o = vigil_cmd(h)
        .args(["worker", "--queue", &nats.url()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr).to_lowercase();
    assert!(err.contains("nats") && err.contains("authoriz"), "{err}");
    // With them, it connects (and stops on SIGTERM).
    let mut ok = vigil_cmd(h)
        .args(["worker", "--queue", &nats.url()])
        .env("VIGIL_NATS_USER", "vigil")
        .env("VIGIL_NATS_PASSWORD", "s3cret-pass")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        ok.try_wait().unwrap().is_none(),
        "the worker with credentials runs"
    );
    unsafe { libc_kill(ok.id() as i32, 15) };
    assert_eq!(wait_exit(&mut ok, 30), 0);
    let log = ok.wait_with_output().unwrap();
    assert!(!String::from_utf8_lossy(&log.stderr).contains("s3cret-pass"));
}

/// `--upload`: the workers never see the archive's paths; the media travel through the JetStream
/// object store, the payloads match a local rescore, and the objects are gone afterwards.
#[test]
fn uploaded_media_reach_workers_through_the_object_store_and_are_deleted() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let arch = h.join("archive");
    archive(&arch, 4);
    let nats = Nats::start(&h.join("js"), None);
    let url = nats.url();
    let out = h.join("out");
    let mut w = worker(h, &url, "w1");
    let mut coord = vigil_cmd(h)
        .arg("rescore")
        .arg(&arch)
        .arg("--out")
        .arg(&out)
        .args([
            "--sampling",
            "keyframes",
            "--json",
            "--upload",
            "--queue",
            &url,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert_eq!(wait_exit(&mut coord, 300), 0);
    let log = std::fs::read_to_string(&w.1).unwrap();
    // The worker scored copies fetched from the bucket.
    assert_eq!(
        log.matches("media fetched from the object store").count(),
        4,
        "{log}"
    );
    let local = h.join("local");
    let o = local_rescore(h, &arch, &local);
    assert!(o.status.success());
    assert_eq!(payloads(&out), payloads(&local));
    assert_eq!(payloads(&out).len(), 4);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let left = rt.block_on(async {
        let js = vigil::fleet::connect(&url, "test").await.unwrap();
        let bucket = vigil::fleet::media_bucket(&js).await.unwrap();
        let mut list = bucket.list().await.unwrap();
        let mut n = 0;
        while let Some(o) = futures_util::StreamExt::next(&mut list).await {
            o.unwrap();
            n += 1;
        }
        n
    });
    assert_eq!(
        left, 0,
        "every uploaded object is deleted once its report is recorded"
    );
    w.0.kill().unwrap();
    w.0.wait().unwrap();
}
