//! `vigil ats sandbox`: the local sandbox ATS with fault injection, for demos and tests.

use super::{runtime, shutdown_signal};
use crate::ats::sandbox::{self, Duplicates, FaultConfig, FaultKind, Sandbox, SandboxConfig};
use crate::cli::{Exit, Failure};
use std::process::ExitCode;
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct SandboxArgs {
    /// Address to listen on (port 0 picks a free port; the URL is printed on stdout).
    #[arg(long, default_value = "127.0.0.1:8787")]
    pub listen: String,
    /// Probability of a fault per API request.
    #[arg(long, default_value_t = 0.0)]
    pub fault_rate: f64,
    /// Fault kinds to draw from (comma-separated) [default: all].
    #[arg(long, value_delimiter = ',', value_parser = parse_fault)]
    pub faults: Vec<FaultKind>,
    /// Seed of the fault draws (same seed, same sequence).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// How long a `timeout` fault hangs, in milliseconds.
    #[arg(long, default_value_t = 5000)]
    pub hang_ms: u64,
    /// Delay of a `slow` fault, in milliseconds.
    #[arg(long, default_value_t = 300)]
    pub slow_ms: u64,
    /// What the sandbox does with a duplicate file.
    #[arg(long, value_enum, default_value_t = Duplicates::Accept)]
    pub duplicates: Duplicates,
    /// Lifetime of Greenhouse access tokens, in seconds.
    #[arg(long, default_value_t = 3600)]
    pub token_ttl_s: u64,
    /// File extensions the sandbox organisation blocks (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub block_ext: Vec<String>,
}

pub(super) fn parse_fault(s: &str) -> Result<FaultKind, String> {
    serde_json::from_value(serde_json::Value::String(s.to_owned())).map_err(|_| {
        let names: Vec<String> = FaultKind::ALL
            .iter()
            .map(|k| {
                serde_json::to_value(k)
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        format!("unknown fault '{s}' (one of {})", names.join(", "))
    })
}

pub(super) fn run_sandbox(a: SandboxArgs) -> Result<ExitCode, Failure> {
    if !(0.0..=1.0).contains(&a.fault_rate) {
        return Err(Failure::new(
            Exit::Config,
            "--fault-rate must be within 0..1",
        ));
    }
    let cfg = SandboxConfig {
        faults: FaultConfig {
            rate: a.fault_rate,
            kinds: if a.faults.is_empty() {
                FaultKind::ALL.to_vec()
            } else {
                a.faults
            },
            seed: a.seed,
            hang_ms: a.hang_ms,
            slow_ms: a.slow_ms,
        },
        duplicates: a.duplicates,
        token_ttl: Duration::from_secs(a.token_ttl_s),
        blocked_extensions: a.block_ext,
    };
    let rt = runtime()?;
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(&a.listen)
            .await
            .map_err(|e| {
                Failure::new(Exit::Config, format!("cannot listen on {}: {e}", a.listen))
            })?;
        let addr = listener
            .local_addr()
            .map_err(|e| Failure::new(Exit::Config, e.to_string()))?;
        println!("sandbox ATS listening on http://{addr}");
        println!(
            "  greenhouse client {} / secret {} · lever key {} · webhook secret {}",
            sandbox::GREENHOUSE_CLIENT_ID,
            sandbox::GREENHOUSE_CLIENT_SECRET,
            sandbox::LEVER_API_KEY,
            sandbox::WEBHOOK_SECRET
        );
        use std::io::Write;
        let _ = std::io::stdout().flush();
        sandbox::serve(Sandbox::new(cfg), listener, shutdown_signal())
            .await
            .map_err(|e| Failure::new(Exit::Config, format!("sandbox server: {e}")))
    })?;
    Ok(ExitCode::SUCCESS)
}
