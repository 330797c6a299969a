//! `vigil serve --config FILE`: the raw TOML (serde, `deny_unknown_fields`), overridden by
//! `VIGIL_SERVE_<KEY>` environment variables for top-level settings, then validated into
//! [`ServeConfig`].
//!
//! ```toml
//! listen = "127.0.0.1:8790"
//! ats = "ats.toml"              # tenants, the SQLite store and connectors (the outbox); required
//! spool_dir = "spool"           # received media until its report is done (default: next to the store)
//! signing_key = "vigil.key"     # default: the key `vigil keygen` writes
//! policy = "policy.toml"        # default: the built-in policy
//! sampling = "1s"               # video sampling, as `vigil score --sampling`
//! max_sessions = 20             # admitted (receiving + finalizing) sessions; beyond: 503
//! max_sessions_per_tenant = 10  # one tenant's share; beyond: 429 (default: half of
//!                               # max_sessions when tokens name several tenants, else all)
//! max_sessions_per_token = 10   # one bot token's share (default: the tenant's)
//! max_chunk_bytes = 16777216    # largest upload chunk (PATCH body)
//! max_media_bytes = 8589934592  # largest media per session
//! idle_timeout_s = 300          # an active session without new bytes for this long is interrupted
//! max_duration_s = 21600        # media timestamped beyond this is not analysed (reported)
//! max_frame_pixels = 16777216   # larger video frames are refused before decoding (session `failed`)
//! metrics_token_sha256 = "…"    # /metrics then needs `Authorization: Bearer <token>` (default: open)
//! shutdown_grace_s = 30         # on SIGTERM, finalizing sessions get this long to finish
//! requests_per_minute = 600     # per bot token (burst: a tenth of it)
//! url_hosts = []                # hosts media may be pulled from; empty: URL sessions refused
//! deliver = true                # run the ATS delivery worker in this process
//!
//! [[tokens]]                    # one per bot; `vigil serve token` prints a new one
//! name = "zoom-bot"
//! tenant = "acme"
//! sha256 = "…"                  # SHA-256 of the token, hex: the token itself is never stored
//! ```
//!
//! Environment overrides use the key upper-cased, e.g. `VIGIL_SERVE_LISTEN=0.0.0.0:8790`,
//! `VIGIL_SERVE_MAX_SESSIONS=8`; values are TOML (a bare word is taken as a string).

use crate::ats::config::{AtsConfig, ConfigError};
use crate::ingest::Sampling;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Prefix of the environment variables that override top-level settings.
pub const ENV_PREFIX: &str = "VIGIL_SERVE_";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    #[serde(default = "default_listen")]
    listen: String,
    ats: PathBuf,
    spool_dir: Option<PathBuf>,
    signing_key: Option<PathBuf>,
    policy: Option<PathBuf>,
    #[serde(default = "default_sampling")]
    sampling: String,
    #[serde(default = "default_max_sessions")]
    max_sessions: usize,
    max_sessions_per_tenant: Option<usize>,
    max_sessions_per_token: Option<usize>,
    #[serde(default = "default_max_chunk")]
    max_chunk_bytes: u64,
    #[serde(default = "default_max_media")]
    max_media_bytes: u64,
    #[serde(default = "default_idle")]
    idle_timeout_s: u64,
    #[serde(default = "default_max_duration")]
    max_duration_s: u64,
    #[serde(default = "default_max_frame_pixels")]
    max_frame_pixels: u64,
    metrics_token_sha256: Option<String>,
    #[serde(default = "default_grace")]
    shutdown_grace_s: u64,
    #[serde(default = "default_rpm")]
    requests_per_minute: u32,
    #[serde(default)]
    url_hosts: Vec<String>,
    #[serde(default = "yes")]
    deliver: bool,
    #[serde(default)]
    tokens: Vec<RawToken>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawToken {
    name: String,
    tenant: String,
    sha256: String,
}

fn default_listen() -> String {
    "127.0.0.1:8790".into()
}
fn default_sampling() -> String {
    "1s".into()
}
/// What two cores sustain within 2 s of real time with room to spare (BENCHMARKS.md, "Server
/// mode": 20 and 24 live 360p sessions sustained on every run since the model pools are bounded
/// by the cores; 16 before).
fn default_max_sessions() -> usize {
    20
}
fn default_max_chunk() -> u64 {
    16 << 20
}
fn default_max_media() -> u64 {
    8 << 30
}
fn default_max_frame_pixels() -> u64 {
    4096 * 4096
}

fn default_max_duration() -> u64 {
    6 * 3600
}

fn default_idle() -> u64 {
    300
}
fn default_grace() -> u64 {
    30
}
fn default_rpm() -> u32 {
    600
}
fn yes() -> bool {
    true
}

/// A bot's credential as configured: the token's hash, its name and its one tenant.
#[derive(Debug, Clone)]
pub struct TokenEntry {
    pub name: String,
    pub tenant: String,
    pub sha256: [u8; 32],
}

/// Validated server settings.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub listen: String,
    pub ats: AtsConfig,
    pub spool_dir: PathBuf,
    pub signing_key: Option<PathBuf>,
    pub policy: Option<PathBuf>,
    pub sampling: Sampling,
    pub max_sessions: usize,
    /// Sessions one tenant may hold at once, so one tenant cannot take every slot.
    pub max_sessions_per_tenant: usize,
    /// Sessions one bot token may hold at once.
    pub max_sessions_per_token: usize,
    pub max_chunk_bytes: u64,
    pub max_media_bytes: u64,
    pub idle_timeout: Duration,
    /// Media timestamped beyond this is not decoded; the cut is a `timestamp_jump` event.
    pub max_duration: Duration,
    /// Video frames of more pixels are refused before decoding.
    pub max_frame_pixels: u64,
    /// SHA-256 of the token `/metrics` requires; `None`: `/metrics` is open (bind the listener
    /// to a private address then).
    pub metrics_token_sha256: Option<[u8; 32]>,
    pub shutdown_grace: Duration,
    pub requests_per_minute: u32,
    pub url_hosts: Vec<String>,
    pub deliver: bool,
    pub tokens: Vec<TokenEntry>,
}

impl ServeConfig {
    /// Reads `path`, applies `VIGIL_SERVE_*` from the process environment, validates.
    pub fn load(path: &Path) -> Result<ServeConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path, std::env::vars())
    }

    /// Parses `text` (read from `path`, which anchors relative paths) with `env` overrides.
    pub fn parse(
        text: &str,
        path: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<ServeConfig, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            path: path.to_owned(),
            message,
        };
        let raw = read_raw(text, path, env)?;
        let base = path.parent().unwrap_or(Path::new("."));
        let rel = |p: &Path| {
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                base.join(p)
            }
        };
        let ats = AtsConfig::load(&rel(&raw.ats))?;
        let sampling: Sampling = raw
            .sampling
            .parse()
            .map_err(|e: String| invalid(format!("sampling: {e}")))?;
        check_bounds(&raw, &invalid)?;
        let metrics_token_sha256 = raw
            .metrics_token_sha256
            .as_deref()
            .map(|h| {
                crate::ats::token::parse_sha256_hex(h).ok_or_else(|| {
                        invalid("metrics_token_sha256 must be 64 hex digits (a token's SHA-256; `vigil serve token` prints one)".into())
                    })
            })
            .transpose()?;
        let tokens = tokens(raw.tokens, &ats, &raw.ats, &invalid)?;
        let (per_tenant, per_token) = shares(
            raw.max_sessions,
            raw.max_sessions_per_tenant,
            raw.max_sessions_per_token,
            &tokens,
            &invalid,
        )?;
        let spool_dir = match raw.spool_dir {
            Some(p) => rel(&p),
            None => ats
                .store_path
                .parent()
                .unwrap_or(Path::new("."))
                .join("spool"),
        };
        Ok(ServeConfig {
            listen: raw.listen,
            spool_dir,
            signing_key: raw.signing_key.as_deref().map(rel),
            policy: raw.policy.as_deref().map(rel),
            sampling,
            max_sessions: raw.max_sessions,
            max_sessions_per_tenant: per_tenant,
            max_sessions_per_token: per_token,
            max_chunk_bytes: raw.max_chunk_bytes,
            max_media_bytes: raw.max_media_bytes,
            idle_timeout: Duration::from_secs(raw.idle_timeout_s),
            max_duration: Duration::from_secs(raw.max_duration_s),
            max_frame_pixels: raw.max_frame_pixels,
            metrics_token_sha256,
            shutdown_grace: Duration::from_secs(raw.shutdown_grace_s),
            requests_per_minute: raw.requests_per_minute,
            url_hosts: raw
                .url_hosts
                .into_iter()
                .map(|h| h.to_ascii_lowercase())
                .collect(),
            deliver: raw.deliver,
            tokens,
            ats,
        })
    }
}

/// The TOML file with `VIGIL_SERVE_*` environment overrides applied (never `tokens`), parsed.
fn read_raw(
    text: &str,
    path: &Path,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Raw, ConfigError> {
    let parse_err = |message: String| ConfigError::Parse {
        path: path.to_owned(),
        message,
    };
    let mut table: toml::Table = toml::from_str(text).map_err(|e| parse_err(e.to_string()))?;
    let mut overrides: Vec<(String, String)> = env
        .into_iter()
        .filter(|(k, _)| k.starts_with(ENV_PREFIX))
        .collect();
    overrides.sort();
    for (var, value) in overrides {
        let key = var[ENV_PREFIX.len()..].to_ascii_lowercase();
        if key == "tokens" {
            return Err(ConfigError::Invalid {
                path: path.to_owned(),
                message: format!("{var}: tokens cannot be set from the environment"),
            });
        }
        let v = toml::from_str::<toml::Table>(&format!("v = {value}"))
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or(toml::Value::String(value));
        table.insert(key, v);
    }
    table
        .try_into()
        .map_err(|e: toml::de::Error| parse_err(e.to_string()))
}

/// The numeric limits and the listen address are in range.
fn check_bounds(raw: &Raw, invalid: &dyn Fn(String) -> ConfigError) -> Result<(), ConfigError> {
    let fail = |m: &str| Err(invalid(m.into()));
    if raw.max_sessions == 0 {
        return fail("max_sessions must be at least 1");
    }
    if raw.max_chunk_bytes < 64 * 1024 || raw.max_chunk_bytes > 1 << 30 {
        return fail("max_chunk_bytes must be between 65536 and 1073741824");
    }
    if raw.max_media_bytes < raw.max_chunk_bytes {
        return fail("max_media_bytes must be at least max_chunk_bytes");
    }
    if !(64 * 64..=8192 * 8192).contains(&raw.max_frame_pixels) {
        return fail("max_frame_pixels must be 4096–67108864");
    }
    if !(60..=7 * 86_400).contains(&raw.max_duration_s) {
        return fail("max_duration_s must be 60–604800");
    }
    if raw.idle_timeout_s < 5 {
        return fail("idle_timeout_s must be at least 5");
    }
    if raw.requests_per_minute == 0 {
        return fail("requests_per_minute must be at least 1");
    }
    if raw.listen.parse::<std::net::SocketAddr>().is_err() {
        return Err(invalid(format!(
            "listen '{}' is not an address such as 127.0.0.1:8790",
            raw.listen
        )));
    }
    Ok(())
}

/// The bot tokens: each of a configured tenant, a well-formed SHA-256, none twice, at least one.
fn tokens(
    raw: Vec<RawToken>,
    ats: &AtsConfig,
    ats_path: &Path,
    invalid: &dyn Fn(String) -> ConfigError,
) -> Result<Vec<TokenEntry>, ConfigError> {
    let mut tokens = Vec::with_capacity(raw.len());
    for t in raw {
        if ats.tenant(&t.tenant).is_none() {
            return Err(invalid(format!(
                "token '{}': tenant '{}' is not configured in {}",
                t.name,
                t.tenant,
                ats_path.display()
            )));
        }
        let hash = crate::ats::token::parse_sha256_hex(&t.sha256).ok_or_else(|| {
                invalid(format!(
                    "token '{}': sha256 must be 64 hex digits (the token's SHA-256; `vigil serve token` prints it)",
                    t.name
                ))
            })?;
        if tokens.iter().any(|x: &TokenEntry| x.sha256 == hash) {
            return Err(invalid(format!(
                "token '{}': the same token is configured twice",
                t.name
            )));
        }
        tokens.push(TokenEntry {
            name: t.name,
            tenant: t.tenant,
            sha256: hash,
        });
    }
    if tokens.is_empty() {
        return Err(invalid(
            "no [[tokens]]: every API call needs a bot token; create one with `vigil serve token --tenant ID --name BOT`".into(),
        ));
    }
    Ok(tokens)
}

/// Sessions one tenant and one bot token may hold: by default half the server each when
/// several tenants share it (else all of it), and a token as many as its tenant.
fn shares(
    max_sessions: usize,
    per_tenant: Option<usize>,
    per_token: Option<usize>,
    tokens: &[TokenEntry],
    invalid: &dyn Fn(String) -> ConfigError,
) -> Result<(usize, usize), ConfigError> {
    let tenants: std::collections::BTreeSet<&str> =
        tokens.iter().map(|t| t.tenant.as_str()).collect();
    let per_tenant = per_tenant.unwrap_or(if tenants.len() > 1 {
        max_sessions.div_ceil(2)
    } else {
        max_sessions
    });
    if per_tenant == 0 || per_tenant > max_sessions {
        return Err(invalid(format!(
            "max_sessions_per_tenant must be 1–max_sessions ({max_sessions})"
        )));
    }
    let per_token = per_token.unwrap_or(per_tenant);
    if per_token == 0 || per_token > per_tenant {
        return Err(invalid(format!(
            "max_sessions_per_token must be 1–max_sessions_per_tenant ({per_tenant})"
        )));
    }
    Ok((per_tenant, per_token))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir_with_ats() -> tempfile::TempDir {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let ats = dir.path().join("ats.toml");
        std::fs::write(
            &ats,
            "[store]\npath = \"vigil.db\"\n[[tenants]]\nid = \"acme\"\n[tenants.webhook]\nurl = \"http://127.0.0.1:9/h\"\nsecret = \"whsec_c2FuZGJveC13ZWJob29rLXNlY3JldC0wMTIzNDU2Nzg5\"\n",
        )
        .unwrap();
        std::fs::set_permissions(&ats, std::fs::Permissions::from_mode(0o600)).unwrap();
        dir
    }

    const TOKEN: &str = "[[tokens]]\nname = \"bot\"\ntenant = \"acme\"\nsha256 = \"6893fd004ef6d13260626191a26bdb22cbe45036d2153a80a0797bdb0f66fa2b\"\n";

    fn parse(dir: &Path, text: &str, env: &[(&str, &str)]) -> Result<ServeConfig, ConfigError> {
        ServeConfig::parse(
            text,
            &dir.join("serve.toml"),
            env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        )
    }

    #[test]
    fn defaults_and_environment_overrides() {
        let d = dir_with_ats();
        let text = format!("ats = \"ats.toml\"\n{TOKEN}");
        let c = parse(d.path(), &text, &[]).unwrap();
        assert_eq!(c.listen, "127.0.0.1:8790");
        assert_eq!(c.max_sessions, 20);
        assert!(c.url_hosts.is_empty() && c.deliver);
        assert_eq!(c.spool_dir, d.path().join("spool"), "next to the store");
        let c = parse(
            d.path(),
            &text,
            &[
                ("VIGIL_SERVE_LISTEN", "0.0.0.0:9000"),
                ("VIGIL_SERVE_MAX_SESSIONS", "3"),
                ("VIGIL_SERVE_URL_HOSTS", "[\"Media.Example.com\"]"),
                ("VIGIL_SERVE_DELIVER", "false"),
                ("UNRELATED", "x"),
            ],
        )
        .unwrap();
        assert_eq!(c.listen, "0.0.0.0:9000");
        assert_eq!(c.max_sessions, 3);
        assert_eq!(c.url_hosts, ["media.example.com"]);
        assert!(!c.deliver);
    }

    #[test]
    fn mistakes_are_named() {
        let d = dir_with_ats();
        let err =
            |text: &str, env: &[(&str, &str)]| parse(d.path(), text, env).unwrap_err().to_string();
        let base = format!("ats = \"ats.toml\"\n{TOKEN}");
        assert!(err(&format!("max_sesions = 3\n{base}"), &[]).contains("max_sesions"));
        assert!(err(&base, &[("VIGIL_SERVE_MAX_SESIONS", "3")]).contains("max_sesions"));
        assert!(err(&base, &[("VIGIL_SERVE_TOKENS", "[]")]).contains("environment"));
        assert!(err(&base, &[("VIGIL_SERVE_MAX_SESSIONS", "0")]).contains("max_sessions"));
        assert!(err(&base, &[("VIGIL_SERVE_LISTEN", "nowhere")]).contains("listen"));
        assert!(err("ats = \"ats.toml\"\n", &[]).contains("no [[tokens]]"));
        let other = TOKEN.replace("acme", "globex");
        assert!(err(&format!("ats = \"ats.toml\"\n{other}"), &[]).contains("globex"));
        let short = TOKEN.replace("6893fd00", "");
        assert!(err(&format!("ats = \"ats.toml\"\n{short}"), &[]).contains("64 hex"));
        assert!(err(&format!("ats = \"ats.toml\"\n{TOKEN}{TOKEN}"), &[]).contains("twice"));
        let shares = |extra: &str| err(&format!("{extra}\n{base}"), &[]);
        assert!(shares("max_sessions_per_tenant = 21").contains("1–max_sessions (20)"));
        assert!(
            shares("max_sessions_per_tenant = 4\nmax_sessions_per_token = 5")
                .contains("1–max_sessions_per_tenant (4)")
        );
        assert!(shares("idle_timeout_s = 4").contains("idle_timeout_s"));
    }
}
