//! `vigil rescore ARCHIVE… --out DIR`: the command line around [`crate::rescore`] — arguments,
//! progress (a bar on a terminal, JSON lines with `--json`), the closing summary and exit codes
//! (0 every session scored or skipped, 1 any failed, 2 usage or configuration).

use super::{Exit, Failure, checked, load_or_create_key};
use crate::ats::config::AtsConfig;
use crate::ingest::{IngestConfig, Sampling};
use crate::pipeline::ScoreOptions;
use crate::report::keys;
use crate::rescore::{self, Entry, Options, Tally, summary};
use crate::store::Store;
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(Debug, clap::Args)]
pub struct RescoreArgs {
    /// Directories (walked recursively; media found by probing) or `*.jsonl` manifests (one
    /// `{"media", "session"?, "previous_report"?}` per line).
    #[arg(required = true, value_name = "ARCHIVE")]
    pub archives: Vec<PathBuf>,
    /// Output directory: reports, rescore.json, rescore.html and the ledger (rescore.sqlite).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Scoring policy (TOML) [default: the built-in vigil-default].
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Video sampling, as for `vigil score`.
    #[arg(long, default_value = "1s")]
    pub sampling: Sampling,
    /// Sessions scored at once [default: one per core, as many as available memory allows at
    /// 512 MiB each].
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub jobs: Option<u16>,
    /// Ed25519 private key to sign the new reports [default: as `vigil score`].
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// Public keys a previous report may be signed with to be compared (repeatable) [default:
    /// the signing key's own public key].
    #[arg(long, value_name = "FILE")]
    pub pubkey: Vec<PathBuf>,
    /// Score again the sessions that failed in an earlier run.
    #[arg(long)]
    pub retry_failed: bool,
    /// One JSON line per session on stdout instead of a progress bar.
    #[arg(long)]
    pub json: bool,
    /// Queue the changed verdicts to the tenant's ATS connectors (needs --config and --tenant).
    #[arg(long, requires_all = ["config", "tenant"])]
    pub deliver: bool,
    /// ATS configuration (TOML), for --deliver.
    #[arg(long, value_name = "FILE", env = "VIGIL_ATS_CONFIG")]
    pub config: Option<PathBuf>,
    /// Tenant whose connectors receive the changed verdicts, for --deliver.
    #[arg(long)]
    pub tenant: Option<String>,
    /// Score on a fleet: publish the jobs to this NATS JetStream server (`nats://` or `tls://`)
    /// for `vigil worker` processes and gather their reports (media paths or URIs must be
    /// readable by the workers).
    #[arg(long, value_name = "URL", env = "VIGIL_QUEUE")]
    pub queue: Option<String>,
    /// With --queue: send each local media file to the workers through the JetStream object
    /// store (deleted once its report is recorded) instead of by path.
    #[arg(long, requires = "queue")]
    pub upload: bool,
    /// Seconds without decoding progress before a session is given up.
    #[arg(long, default_value_t = 30)]
    pub stall_timeout: u64,
}

pub fn run(a: RescoreArgs) -> Result<ExitCode, Failure> {
    // Read once: the same text is the local policy and, on a fleet, every worker's.
    let policy_source = match &a.policy {
        Some(p) => Some((
            p.display().to_string(),
            std::fs::read_to_string(p)
                .map_err(|e| Failure::new(Exit::Config, format!("policy {}: {e}", p.display())))?,
        )),
        None => None,
    };
    let policy = match &policy_source {
        Some((name, text)) => {
            crate::scoring::Policy::parse(text, name).map_err(|e| Failure::new(Exit::Config, e))?
        }
        None => crate::scoring::Policy::default(),
    };
    // Everything --deliver needs is checked before any scoring starts.
    let ats = match (a.deliver, &a.config, &a.tenant) {
        (true, Some(c), Some(t)) => {
            let cfg = AtsConfig::load(c).map_err(|e| Failure::new(Exit::Config, e))?;
            let tenant = cfg.tenant(t).cloned().ok_or_else(|| {
                Failure::new(
                    Exit::Config,
                    format!("{}: no tenant '{t}' is configured", c.display()),
                )
            })?;
            let store = Store::open(&cfg.store_path).map_err(|e| Failure::new(Exit::Config, e))?;
            Some((store, tenant))
        }
        _ => None,
    };
    let key = load_or_create_key(a.key.as_deref())?;
    let mut trusted = Vec::new();
    for p in &a.pubkey {
        trusted.push(keys::read_verifying_key(p).map_err(|e| Failure::new(Exit::Config, e))?);
    }
    if trusted.is_empty() {
        trusted.push(key.verifying_key());
    }
    let own = key.verifying_key();
    let jobs = a.jobs.map_or_else(rescore::default_jobs, usize::from);
    let opts = Options {
        archives: a.archives.clone(),
        out: a.out.clone(),
        score: ScoreOptions {
            policy,
            ingest: IngestConfig {
                sampling: a.sampling,
                stall_timeout: Duration::from_secs(a.stall_timeout.max(1)),
                // Sessions in parallel already fill the cores.
                decoder_threads: (jobs > 1).then_some(1),
                ..IngestConfig::default()
            },
            ..ScoreOptions::default()
        },
        key,
        trusted,
        jobs,
        retry_failed: a.retry_failed,
        args: std::env::args().collect::<Vec<_>>().join(" "),
    };
    let progress = Progress::new(a.json);
    let observe = |e: &Entry, t: &Tally| progress.session(e, t);
    let (ledger, tally, ignored) = match &a.queue {
        Some(url) => {
            let queue = crate::fleet::coordinator::QueueOptions {
                url: url.clone(),
                policy: policy_source,
                upload: a.upload,
            };
            crate::fleet::coordinator::run(&opts, &queue, observe)
                .map_err(|e| Failure::new(Exit::Config, e))?
        }
        None => rescore::run(&opts, observe).map_err(|e| Failure::new(Exit::Config, e))?,
    };
    progress.finish();
    let mut s = summary::build(&ledger, &tally, ignored, &opts.score, rescore::models())
        .map_err(|e| Failure::new(Exit::Config, e))?;
    if let Some((mut store, tenant)) = ats {
        s.delivery = Some(rescore::deliver::queue(
            &mut store, &tenant, &opts.out, &own, &s.policy, &s.changed,
        ));
    }
    summary::write(&opts.out, &s).map_err(|e| Failure::new(Exit::Config, e))?;
    for f in &s.failed {
        eprintln!("vigil: rescore: {}: {}", f.media, f.error);
    }
    for u in &s.untrusted_previous {
        eprintln!(
            "vigil: rescore: {}: previous report {} not trusted: {}",
            u.media, u.previous_report, u.reason
        );
    }
    let delivery_failed = s.delivery.as_ref().is_some_and(|d| !d.failed.is_empty());
    closing(&s, &opts.out, a.json);
    Ok(checked(s.failed.is_empty() && !delivery_failed))
}

fn closing(s: &summary::Summary, out: &std::path::Path, json: bool) {
    let json_path = out.join(summary::JSON);
    if json {
        let line = serde_json::json!({
            "summary": {
                "total": s.total, "scored": s.scored, "skipped": s.skipped,
                "failed": s.failed.len(), "changed": s.changed.len(), "unchanged": s.unchanged,
                "untrusted_previous": s.untrusted_previous.len(),
            },
            "rescore_json": json_path,
            "rescore_html": out.join(summary::HTML),
        });
        println!("{line}");
        return;
    }
    println!(
        "rescore: {} sessions — {} scored, {} skipped, {} failed; {} changed, {} unchanged, {} \
         without a previous report, {} previous report(s) not trusted",
        s.total,
        s.scored,
        s.skipped,
        s.failed.len(),
        s.changed.len(),
        s.unchanged,
        s.without_previous,
        s.untrusted_previous.len()
    );
    for c in &s.changed {
        println!(
            "  changed {}: {} → {}, {} → {}, integrity {:.1} → {:.1}",
            c.media,
            c.change.verification_status.old,
            c.change.verification_status.new,
            c.change.risk_tier.old,
            c.change.risk_tier.new,
            c.change.integrity.old,
            c.change.integrity.new
        );
    }
    if let Some(d) = &s.delivery {
        println!(
            "delivery to {}: {} queued, {} already queued, {} failed",
            d.tenant,
            d.queued.len(),
            d.already_queued.len(),
            d.failed.len()
        );
    }
    println!(
        "Summary: {} and {}",
        json_path.display(),
        out.join(summary::HTML).display()
    );
}

/// A progress bar on a terminal (hidden otherwise), or one JSON line per session.
struct Progress {
    bar: Option<ProgressBar>,
    started: Instant,
}

impl Progress {
    fn new(json: bool) -> Progress {
        let bar = (!json).then(|| {
            let b = ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
            b.set_style(
                ProgressStyle::with_template(
                    "{bar:30} {pos}/{len} sessions · {msg} · elapsed {elapsed} · ETA {eta}",
                )
                .expect("the template is valid"),
            );
            b
        });
        Progress {
            bar,
            started: Instant::now(),
        }
    }

    fn session(&self, e: &Entry, t: &Tally) {
        let wall = self.started.elapsed().as_secs_f64();
        let speed = if wall > 0.0 { t.media_s / wall } else { 0.0 };
        match &self.bar {
            Some(b) => {
                b.set_length(t.total as u64);
                b.set_position(t.done as u64);
                b.set_message(format!(
                    "{:.2} media h · {speed:.1}× real time · {} failed",
                    t.media_s / 3600.0,
                    t.failed
                ));
            }
            None => {
                let line = serde_json::json!({
                    "done": t.done, "total": t.total, "media_hours": t.media_s / 3600.0,
                    "x_real_time": speed, "session": e,
                });
                println!("{line}");
            }
        }
    }

    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
