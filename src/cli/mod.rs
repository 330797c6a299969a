//! Command line: `vigil score | rescore | verify | keygen | ats …`.
//!
//! Exit codes (README.md § Commands): 0 ok · 1 a check failed · 2 usage, configuration or installation
//! error · 3 input media unreadable or unsupported. Errors go to stderr as one line naming the
//! file and the cause; logs go to stderr through `tracing` (`RUST_LOG`).
//!
//! Why one file of this length: the command-line surface (every subcommand's arguments as clap
//! derives, with their help texts) is declared in one place; handlers live in the files beside it.

mod ats;
mod release_gate;
mod rescore;
mod serve;
mod worker;

use crate::ingest::{IngestConfig, IngestError, MediaInput, Sampling};
use crate::pipeline::{self, PipelineError, ScoreOptions};
use crate::report::dsse::{self, Envelope};
use crate::report::{Report, SessionInfo, html, keys, pack, write_atomic};
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(
    name = "vigil",
    version,
    about = "Interview-integrity analysis with signed reports"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Analyse a recording and write a signed report.
    Score(ScoreArgs),
    /// Check a report's signature and payload (exit 0 valid, 1 invalid).
    Verify(VerifyArgs),
    /// Create a signing key pair.
    Keygen(KeygenArgs),
    /// Render a signed report as one self-contained HTML page (exit 1 if the signature does
    /// not verify; the page then says so).
    Render(RenderArgs),
    /// Bundle verified reports, their HTML, the public keys, the policy and a SHA-256 manifest
    /// into an audit artifact (a directory, or a ZIP when OUT ends in .zip).
    EvidencePack(EvidencePackArgs),
    /// Deliver signed reports to applicant tracking systems (outbox, worker, sandbox).
    Ats(ats::AtsArgs),
    /// Run the release gate of a connector (contracts, sandbox fixtures end to end, rollout
    /// controls) and write its Evidence Pack; exit 1 on any mismatch.
    ReleaseGate(ReleaseGateArgs),
    /// The hash-chained audit log: verify it or list entries.
    Audit(ats::AuditArgs),
    /// Re-score an archive of recorded sessions (directories or *.jsonl manifests) under the
    /// current policy: resumable, parallel, with a diff of every changed verdict.
    Rescore(rescore::RescoreArgs),
    /// Score jobs from a NATS JetStream queue (a `vigil rescore --queue` fleet) until SIGTERM.
    Worker(worker::WorkerArgs),
    /// Run the HTTP server meeting-platform bots send sessions to (live or recorded media in,
    /// signed reports out to the ATS outbox); `vigil serve token` creates a bot token.
    Serve(serve::ServeArgs),
}

#[derive(Debug, clap::Args)]
pub struct ScoreArgs {
    /// Media file path or URI (file://, http://, https://).
    pub media: String,
    /// Where to write the signed report [default: <MEDIA>.vigil.json].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Session ids as JSON: session_id, interview_id, application_id, candidate_external_id,
    /// ats, requisition_id, department.
    #[arg(long, value_name = "FILE.json")]
    pub session: Option<PathBuf>,
    /// Ed25519 private key (PKCS#8 PEM) [default: $VIGIL_SIGNING_KEY or the user data dir's
    /// vigil/signing-key.pem, created on first use].
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// A photo of the candidate (e.g. from ID verification): the session's faces are compared
    /// with it and it becomes the enrolled identity.
    #[arg(long, value_name = "IMAGE")]
    pub reference_face: Option<String>,
    /// A recording of the candidate's voice (≥ 8 s of speech): the session's voice is compared
    /// with it and it becomes the enrolled voice.
    #[arg(long, value_name = "AUDIO")]
    pub reference_voice: Option<String>,
    /// Video sampling: an interval in seconds (`1s`), `keyframes` (fast) or `all`.
    #[arg(long, default_value = "1s")]
    pub sampling: Sampling,
    /// Seconds without decoding progress before giving up.
    #[arg(long, default_value_t = 30)]
    pub stall_timeout: u64,
    /// Media timestamped beyond this many seconds is not analysed (the cut is reported as a
    /// `timestamp_jump` event).
    #[arg(long, default_value_t = 21_600, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_duration: u64,
    /// Video frames of more pixels than this are refused before they are decoded.
    #[arg(long, default_value_t = 4096 * 4096, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_frame_pixels: u64,
    /// Video decoder threads (0 = one per core). Default: 1 with keyframes, 0 when every frame
    /// is decoded. The report does not depend on it.
    #[arg(long, value_parser = clap::value_parser!(u32).range(0..=16))]
    pub decoder_threads: Option<u32>,
    /// Print the report payload as JSON on stdout instead of the summary.
    #[arg(long)]
    pub json: bool,
    /// Also write the HTML rendering here.
    #[arg(long, value_name = "OUT.html")]
    pub html: Option<PathBuf>,
    /// Scoring policy (TOML; see policies/vigil-default.toml) [default: the built-in
    /// vigil-default].
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct EvidencePackArgs {
    /// Signed reports (DSSE envelopes).
    #[arg(required = true)]
    pub reports: Vec<PathBuf>,
    /// Output directory (must not exist) or `.zip` file.
    #[arg(long, value_name = "DIR|ZIP")]
    pub out: PathBuf,
    /// Public keys the reports may be signed with (repeatable) [default: the default signing
    /// key's].
    #[arg(long, value_name = "FILE")]
    pub pubkey: Vec<PathBuf>,
    /// The policy file the reports were scored with, included and hashed.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct ReleaseGateArgs {
    /// The release gate (YAML in the shape of the seed's; see contracts/release-gate.yaml).
    pub file: PathBuf,
    /// Evidence Pack to write (directory, or .zip).
    #[arg(long, value_name = "DIR|ZIP")]
    pub out: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct RenderArgs {
    /// Signed report (DSSE envelope JSON).
    pub report: PathBuf,
    /// Where to write the HTML page.
    #[arg(long, value_name = "OUT.html")]
    pub html: PathBuf,
    /// Public key to check the signature with [default: the default signing key's].
    #[arg(long, value_name = "FILE")]
    pub pubkey: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// Signed report (DSSE envelope JSON).
    pub report: PathBuf,
    /// Public key (SPKI PEM) [default: the public half of the default signing key].
    #[arg(long, value_name = "FILE")]
    pub pubkey: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct KeygenArgs {
    /// Private key path [default: the user data dir's vigil/signing-key.pem]; the public key is
    /// written next to it as <name>.pub.pem.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Replace an existing key.
    #[arg(long)]
    pub force: bool,
}

/// What a `vigil` exit status means (README § Exit codes). Every command maps its outcome to
/// one of these, here and nowhere else as a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Ok = 0,
    /// A check failed: a forged or tampered report, a session or delivery that failed, a
    /// release gate that did not pass.
    CheckFailed = 1,
    /// Usage, configuration or installation error.
    Config = 2,
    /// The input media is unreadable or unsupported.
    Media = 3,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e as u8)
    }
}

/// `Exit::Ok` when `ok`, else `Exit::CheckFailed`.
fn checked(ok: bool) -> ExitCode {
    (if ok { Exit::Ok } else { Exit::CheckFailed }).into()
}

/// An error with the exit status it maps to.
#[derive(Debug)]
pub struct Failure {
    pub code: Exit,
    pub message: String,
}

impl Failure {
    fn new(code: Exit, message: impl std::fmt::Display) -> Self {
        Failure {
            code,
            message: message.to_string(),
        }
    }
}

impl From<PipelineError> for Failure {
    fn from(e: PipelineError) -> Self {
        let code = match &e {
            PipelineError::Ingest(IngestError::Init(_) | IngestError::MissingElement { .. }) => {
                Exit::Config
            }
            PipelineError::Ingest(_)
            | PipelineError::Hash { .. }
            | PipelineError::ReferenceMedia { .. } => Exit::Media,
            PipelineError::Inference(_)
            | PipelineError::Reference { .. }
            | PipelineError::ReferenceVoice { .. }
            | PipelineError::Consent(_) => Exit::Config,
        };
        Failure::new(code, e)
    }
}

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return (if e.use_stderr() {
                Exit::Config
            } else {
                Exit::Ok
            })
            .into();
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match run(cli) {
        Ok(code) => code,
        Err(f) => {
            eprintln!("vigil: {}", f.message);
            f.code.into()
        }
    }
}

pub fn run(cli: Cli) -> Result<ExitCode, Failure> {
    match cli.command {
        Command::Score(a) => score(a),
        Command::Verify(a) => verify(a),
        Command::Keygen(a) => keygen(a),
        Command::Render(a) => render(a),
        Command::EvidencePack(a) => evidence_pack(a),
        Command::Ats(a) => ats::run(a),
        Command::Audit(a) => ats::audit(a),
        Command::ReleaseGate(a) => gate(a),
        Command::Serve(a) => serve::run(a),
        Command::Rescore(a) => rescore::run(a),
        Command::Worker(a) => worker::run(a),
    }
}

fn score(a: ScoreArgs) -> Result<ExitCode, Failure> {
    let input = MediaInput::parse(&a.media).map_err(|e| Failure::new(Exit::Media, e))?;
    let session = match &a.session {
        Some(p) => read_session(p)?,
        None => SessionInfo::default(),
    };
    let policy = match &a.policy {
        Some(p) => crate::scoring::Policy::load(p).map_err(|e| Failure::new(Exit::Config, e))?,
        None => crate::scoring::Policy::default(),
    };
    let key = load_or_create_key(a.key.as_deref())?;
    let opts = ScoreOptions {
        policy,
        ingest: IngestConfig {
            sampling: a.sampling,
            stall_timeout: Duration::from_secs(a.stall_timeout.max(1)),
            max_duration: Duration::from_secs(a.max_duration),
            max_frame_pixels: a.max_frame_pixels,
            decoder_threads: a.decoder_threads,
            ..IngestConfig::default()
        },
        session,
        reference_face: a
            .reference_face
            .as_deref()
            .map(MediaInput::parse)
            .transpose()
            .map_err(|e| Failure::new(Exit::Config, e))?,
        reference_voice: a
            .reference_voice
            .as_deref()
            .map(MediaInput::parse)
            .transpose()
            .map_err(|e| Failure::new(Exit::Config, e))?,
        ..ScoreOptions::default()
    };
    let report = pipeline::score(&input, &opts)?;
    crate::inference::timing::log_model_times();
    let payload = report.to_payload();
    let envelope = dsse::sign(&payload, &key);
    let out = a.out.unwrap_or_else(|| default_out(&input));
    write_atomic(
        &out,
        &serde_json::to_vec_pretty(&envelope).expect("envelope serialises"),
    )
    .map_err(|e| {
        Failure::new(
            Exit::Config,
            format!("cannot write report {}: {e}", out.display()),
        )
    })?;
    if let Some(html_out) = &a.html {
        let page = html::render(
            &report,
            &html::SignatureCheck::Valid {
                keyid: envelope.signatures[0].keyid.clone(),
            },
        );
        write_atomic(html_out, page.as_bytes()).map_err(|e| {
            Failure::new(
                Exit::Config,
                format!("cannot write {}: {e}", html_out.display()),
            )
        })?;
    }
    if a.json {
        println!("{}", String::from_utf8_lossy(&payload));
    } else {
        print!("{}", summary(&report, &out, &envelope.signatures[0].keyid));
    }
    Ok(ExitCode::SUCCESS)
}

fn read_session(p: &Path) -> Result<SessionInfo, Failure> {
    let text = std::fs::read_to_string(p)
        .map_err(|e| Failure::new(Exit::Config, format!("session file {}: {e}", p.display())))?;
    serde_json::from_str(&text)
        .map_err(|e| Failure::new(Exit::Config, format!("session file {}: {e}", p.display())))
}

fn load_or_create_key(explicit: Option<&Path>) -> Result<ed25519_dalek::SigningKey, Failure> {
    if let Some(p) = explicit {
        return keys::read_signing_key(p).map_err(|e| Failure::new(Exit::Config, e));
    }
    let path = keys::default_key_path().map_err(|e| Failure::new(Exit::Config, e))?;
    if path.exists() {
        return keys::read_signing_key(&path).map_err(|e| Failure::new(Exit::Config, e));
    }
    let key = match keys::generate(&path, false) {
        Ok(k) => k,
        // Another process created it a moment ago (workers starting together): use theirs.
        Err(keys::KeyError::Exists { .. }) => {
            return keys::read_signing_key(&path).map_err(|e| Failure::new(Exit::Config, e));
        }
        Err(e) => return Err(Failure::new(Exit::Config, e)),
    };
    eprintln!(
        "vigil: created a new signing key {} (public key {}, key id {})",
        path.display(),
        keys::public_path_for(&path).display(),
        dsse::key_id(&key.verifying_key())
    );
    Ok(key)
}

fn default_out(input: &MediaInput) -> PathBuf {
    match input {
        MediaInput::File(p) => {
            let mut s = p.as_os_str().to_owned();
            s.push(".vigil.json");
            PathBuf::from(s)
        }
        MediaInput::Uri(u) => {
            let name = u
                .path_segments()
                .and_then(|mut s| s.next_back().map(str::to_string))
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "remote".into());
            PathBuf::from(format!("{name}.vigil.json"))
        }
        MediaInput::Spool(s) => PathBuf::from(format!("{}.vigil.json", s.name())),
    }
}

fn summary(r: &Report, out: &Path, keyid: &str) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let m = &r.media;
    let _ = writeln!(s, "Vigil integrity report {}", r.report_id);
    let video = m
        .video
        .as_ref()
        .map(|v| {
            format!(
                "{} {}x{}",
                v.codec.as_deref().unwrap_or("?"),
                v.width,
                v.height
            )
        })
        .unwrap_or_else(|| "none".into());
    let audio = m
        .audio
        .as_ref()
        .map(|a| format!("{} {} Hz", a.codec.as_deref().unwrap_or("?"), a.source_rate))
        .unwrap_or_else(|| "none".into());
    let _ = writeln!(
        s,
        "  media      {} ({:.1} s; video {video}; audio {audio})",
        m.source, m.duration_s
    );
    let _ = writeln!(
        s,
        "  coverage   {} frames, {} audio windows, {} s of speech",
        r.coverage.frames_analysed,
        r.coverage.audio_windows_analysed,
        r.coverage
            .speech_s
            .map(|x| format!("{x:.1}"))
            .unwrap_or_else(|| "no".into())
    );
    let _ = writeln!(
        s,
        "  verdict    integrity {:.1}/100, risk {}, status {}",
        r.score.integrity,
        serde_json::to_value(r.score.risk_tier)
            .unwrap()
            .as_str()
            .unwrap_or(""),
        serde_json::to_value(r.score.verification_status)
            .unwrap()
            .as_str()
            .unwrap_or("")
    );
    for reason in &r.score.status_reasons {
        let _ = writeln!(s, "             - {reason}");
    }
    if r.events.is_empty() {
        let _ = writeln!(s, "  events     none");
    } else {
        let _ = writeln!(s, "  events     {}", r.events.len());
        for e in &r.events {
            let kind = serde_json::to_value(e.kind).unwrap();
            let _ = writeln!(
                s,
                "    {:>7.1}–{:<7.1} {} ({:.2}): {}",
                e.start_s,
                e.end_s,
                kind.as_str().unwrap_or(""),
                e.confidence,
                e.reason
            );
        }
    }
    let _ = writeln!(s, "Signed report ({keyid}): {}", out.display());
    s
}

fn verify(a: VerifyArgs) -> Result<ExitCode, Failure> {
    let text = std::fs::read(&a.report)
        .map_err(|e| Failure::new(Exit::Config, format!("{}: {e}", a.report.display())))?;
    let pub_path = match a.pubkey {
        Some(p) => p,
        None => keys::public_path_for(
            &keys::default_key_path().map_err(|e| Failure::new(Exit::Config, e))?,
        ),
    };
    let key = keys::read_verifying_key(&pub_path).map_err(|e| Failure::new(Exit::Config, e))?;
    let invalid = |why: String| -> Result<ExitCode, Failure> {
        println!("INVALID {}: {why}", a.report.display());
        Ok(Exit::CheckFailed.into())
    };
    let env: Envelope = match serde_json::from_slice(&text) {
        Ok(e) => e,
        Err(e) => return invalid(format!("not a DSSE envelope: {e}")),
    };
    let payload = match dsse::verify(&env, &key) {
        Ok(p) => p,
        Err(e) => return invalid(e.to_string()),
    };
    match Report::from_payload(&payload) {
        Ok(r) => {
            println!(
                "VALID {}: report {} signed by {}",
                a.report.display(),
                r.report_id,
                dsse::key_id(&key)
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => invalid(e),
    }
}

fn render(a: RenderArgs) -> Result<ExitCode, Failure> {
    let text = std::fs::read(&a.report)
        .map_err(|e| Failure::new(Exit::Config, format!("{}: {e}", a.report.display())))?;
    let env: Envelope = serde_json::from_slice(&text).map_err(|e| {
        Failure::new(
            Exit::CheckFailed,
            format!("{}: not a DSSE envelope: {e}", a.report.display()),
        )
    })?;
    let pub_path = match a.pubkey {
        Some(p) => p,
        None => keys::public_path_for(
            &keys::default_key_path().map_err(|e| Failure::new(Exit::Config, e))?,
        ),
    };
    let key = keys::read_verifying_key(&pub_path).map_err(|e| Failure::new(Exit::Config, e))?;
    // An invalid signature still renders (what was received is shown, marked as untrusted),
    // but the page says so and the exit code is 1.
    let (payload, check) = match dsse::verify(&env, &key) {
        Ok(p) => (
            p,
            html::SignatureCheck::Valid {
                keyid: dsse::key_id(&key),
            },
        ),
        Err(e) => {
            use base64::Engine;
            let raw = base64::engine::general_purpose::STANDARD
                .decode(&env.payload)
                .map_err(|_| {
                    Failure::new(
                        Exit::CheckFailed,
                        format!("{}: payload is not base64", a.report.display()),
                    )
                })?;
            (
                raw,
                html::SignatureCheck::Invalid {
                    reason: e.to_string(),
                },
            )
        }
    };
    let page = match (Report::from_payload(&payload), &check) {
        (Ok(report), _) => html::render(&report, &check),
        // Tampered into something that is not a report: the page says so (and exit 1 below).
        (Err(e), html::SignatureCheck::Invalid { reason }) => {
            html::render_unreadable(reason, &e.to_string())
        }
        (Err(e), html::SignatureCheck::Valid { .. }) => {
            return Err(Failure::new(
                Exit::CheckFailed,
                format!("{}: {e}", a.report.display()),
            ));
        }
    };
    write_atomic(&a.html, page.as_bytes()).map_err(|e| {
        Failure::new(
            Exit::Config,
            format!("cannot write {}: {e}", a.html.display()),
        )
    })?;
    match check {
        html::SignatureCheck::Valid { keyid } => {
            println!("{} (signature valid, {keyid})", a.html.display());
            Ok(ExitCode::SUCCESS)
        }
        html::SignatureCheck::Invalid { reason } => {
            eprintln!(
                "vigil: {}: signature NOT valid ({reason}); the page is marked untrusted",
                a.report.display()
            );
            Ok(Exit::CheckFailed.into())
        }
    }
}

fn evidence_pack(a: EvidencePackArgs) -> Result<ExitCode, Failure> {
    let key_paths = if a.pubkey.is_empty() {
        vec![keys::public_path_for(
            &keys::default_key_path().map_err(|e| Failure::new(Exit::Config, e))?,
        )]
    } else {
        a.pubkey
    };
    let mut keys_loaded = Vec::new();
    for p in key_paths {
        let k = keys::read_verifying_key(&p).map_err(|e| Failure::new(Exit::Config, e))?;
        keys_loaded.push((p, k));
    }
    let now = crate::report::now_rfc3339();
    let pack =
        pack::Pack::build(&a.reports, &keys_loaded, a.policy.as_deref(), now).map_err(|e| {
            let code = match e {
                pack::PackError::Unverified { .. }
                | pack::PackError::NotAReport { .. }
                | pack::PackError::Duplicate(_) => Exit::CheckFailed,
                _ => Exit::Config,
            };
            Failure::new(code, e)
        })?;
    pack.write(&a.out)
        .map_err(|e| Failure::new(Exit::Config, e))?;
    println!(
        "evidence pack {}: {} report(s), {} file(s), manifest.json + SHA256SUMS",
        a.out.display(),
        pack.manifest.reports.len(),
        pack.files.len()
    );
    Ok(ExitCode::SUCCESS)
}

fn gate(a: ReleaseGateArgs) -> Result<ExitCode, Failure> {
    let r = release_gate::run(&a.file, &a.out).map_err(|e| Failure::new(Exit::Config, e))?;
    let mark = |p: bool| if p { "PASS" } else { "FAIL" };
    for (section, checks) in [
        ("contract", &r.contracts),
        ("fixture", &r.fixtures),
        ("rollout", &r.rollout_controls),
    ] {
        for c in checks {
            println!("{} {section} {}", mark(c.passed), c.name);
            for d in &c.details {
                println!("       {d}");
            }
        }
    }
    println!(
        "release gate {}: {} — Evidence Pack {}",
        r.integration,
        mark(r.passed),
        a.out.display()
    );
    Ok(checked(r.passed))
}

fn keygen(a: KeygenArgs) -> Result<ExitCode, Failure> {
    let path = match a.out {
        Some(p) => p,
        None => keys::default_key_path().map_err(|e| Failure::new(Exit::Config, e))?,
    };
    let key = keys::generate(&path, a.force).map_err(|e| Failure::new(Exit::Config, e))?;
    println!(
        "private key {}\npublic key  {}\nkey id      {}",
        path.display(),
        keys::public_path_for(&path).display(),
        dsse::key_id(&key.verifying_key())
    );
    Ok(ExitCode::SUCCESS)
}
