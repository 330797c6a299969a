//! ATS configuration: the raw TOML (serde, `deny_unknown_fields`) parsed, then validated into
//! typed settings with secrets resolved.
//!
//! Connect once: per tenant, at most one configuration per ATS (Greenhouse, Lever, a generic
//! signed webhook). Secrets are read from the environment (`{ env = "NAME" }`), from a file
//! (`{ file = "path" }`), or inline in the config file — inline and file secrets only when the
//! file is not readable by group or others, like OpenSSH does for private keys. A [`Secret`]
//! never prints its value (`Debug` and `Display` show `***`).
//!
//! ```toml
//! [store]
//! path = "vigil.db"                 # default: <data dir>/vigil/vigil.db
//!
//! [delivery]                        # every field optional; defaults shown
//! max_attempts = 8
//! backoff_base_ms = 2000
//! backoff_cap_ms = 600000
//! max_retry_after_s = 3600
//! request_timeout_ms = 30000
//! settle_ms = 30000                 # least wait after a timeout/reset/5xx (default: the timeout)
//! concurrency = 4
//! lease_s = 300
//!
//! [[tenants]]
//! id = "acme"
//!
//! [tenants.greenhouse]
//! client_id = "abc"
//! client_secret = { env = "VIGIL_GREENHOUSE_SECRET" }
//! user_id = 4080                    # the token's `sub`: writes are audited as this user
//! custom_fields = { integrity = "vigil_integrity", risk_tier = "vigil_risk_tier", verification_status = "vigil_status" }
//!
//! [tenants.lever]
//! api_key = { env = "VIGIL_LEVER_KEY" }
//! perform_as = "8d49b010-cc6a-4f40-ace5-e86061c677ed"
//! webhook_signature_token = { env = "VIGIL_LEVER_SIGNATURE_TOKEN" }
//! webhook_max_age_s = 3600          # oldest `triggeredAt` accepted (Lever signs no body)
//!
//! [tenants.webhook]
//! url = "https://hooks.example.com/vigil"
//! secret = { env = "VIGIL_WEBHOOK_SECRET" }   # whsec_<base64>
//! ```
//!
//! Why one file of this length: the file format is parsed and validated in one place, one function per
//! section, so that every check of a value sits next to its parse; the format's documentation above is
//! part of it.

use super::retry::RetryPolicy;
use base64::Engine;
use serde::Deserialize;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// A secret value. Never printed, never serialised.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// A secret byte string (an HMAC key). Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretBytes(Vec<u8>);

impl SecretBytes {
    pub fn new(b: impl Into<Vec<u8>>) -> SecretBytes {
        SecretBytes(b.into())
    }
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBytes(***)")
    }
}

/// Where a secret comes from, as written in the config file.
#[derive(Debug, Deserialize)]
#[serde(untagged, deny_unknown_fields)]
pub enum SecretSource {
    Env { env: String },
    File { file: PathBuf },
    Inline(String),
}

// ---------------------------------------------------------------- raw (as written) ----

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    store: RawStore,
    #[serde(default)]
    retention: RawRetention,
    #[serde(default)]
    delivery: RawDelivery,
    #[serde(default)]
    tenants: Vec<RawTenant>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRetention {
    /// Reports (and their outbox rows) older than this are purged by `vigil ats purge`.
    /// Default 365.
    days: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStore {
    path: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDelivery {
    max_attempts: Option<u32>,
    backoff_base_ms: Option<u64>,
    backoff_cap_ms: Option<u64>,
    max_retry_after_s: Option<u64>,
    request_timeout_ms: Option<u64>,
    settle_ms: Option<u64>,
    concurrency: Option<usize>,
    lease_s: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTenant {
    id: String,
    /// Canary scope: Vigil's verdict gates the stage only for these candidates; others are
    /// monitored (reports still delivered) but never blocked.
    canary: Option<RawCanary>,
    greenhouse: Option<RawGreenhouse>,
    lever: Option<RawLever>,
    webhook: Option<RawWebhook>,
    /// Bearer tokens of the stage-gate clients (`vigil ats gate-token` makes one).
    #[serde(default)]
    gate_tokens: Vec<RawGateToken>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGateToken {
    name: String,
    /// SHA-256 of the token, hex: the token itself is never stored.
    sha256: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCanary {
    /// Departments in scope (case-insensitive); empty = every department.
    #[serde(default)]
    departments: Vec<String>,
    /// Share of new candidates in scope, 0–100, chosen by a hash of the candidate id so a
    /// candidate never flips in and out.
    percent: f64,
}

/// Canary scope of a tenant (`None` on the tenant: everyone is in scope).
#[derive(Debug, Clone, PartialEq)]
pub struct Canary {
    pub departments: Vec<String>,
    pub percent: f64,
}

impl Canary {
    /// Deterministic: SHA-256 of the candidate id, first 8 bytes mod 10 000, against the
    /// percentage in hundredths.
    pub fn includes(&self, candidate_id: &str, department: Option<&str>) -> bool {
        if !self.departments.is_empty()
            && !department
                .is_some_and(|d| self.departments.iter().any(|x| x.eq_ignore_ascii_case(d)))
        {
            return false;
        }
        let h = <sha2::Sha256 as sha2::Digest>::digest(candidate_id.as_bytes());
        let bucket = u64::from_be_bytes(h[..8].try_into().expect("8 bytes")) % 10_000;
        (bucket as f64) < self.percent * 100.0
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGreenhouse {
    /// Default `https://harvest.greenhouse.io`.
    base_url: Option<String>,
    /// Default `https://auth.greenhouse.io/token`.
    token_url: Option<String>,
    client_id: String,
    client_secret: SecretSource,
    user_id: u64,
    /// `admin_only` (default), `private` or `public`.
    visibility: Option<String>,
    custom_fields: Option<RawCustomFields>,
    /// Secret of the Greenhouse web hooks pointed at `vigil ats listen` (HMAC-SHA256 of the raw
    /// body, header `Signature: sha256 <hex>`).
    webhook_secret: Option<SecretSource>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCustomFields {
    integrity: Option<FieldRef>,
    risk_tier: Option<FieldRef>,
    verification_status: Option<FieldRef>,
}

/// A Greenhouse custom field: its numeric id or its `name_key`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum FieldRef {
    Id(u64),
    NameKey(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLever {
    /// Default `https://api.lever.co` (sandbox: `https://api.sandbox.lever.co`).
    base_url: Option<String>,
    api_key: SecretSource,
    perform_as: String,
    /// `signatureToken` of the Lever webhooks pointed at `vigil ats listen`.
    webhook_signature_token: Option<SecretSource>,
    /// Oldest `triggeredAt` accepted on a webhook, in seconds (default 3600, 60–86 400). Lever
    /// signs only `token + triggeredAt`, so an old signed pair must not be usable forever.
    webhook_max_age_s: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebhook {
    url: String,
    secret: SecretSource,
}

// ---------------------------------------------------------------- validated ----

#[derive(Debug, Clone)]
pub struct AtsConfig {
    pub store_path: PathBuf,
    /// Retention period of stored reports.
    pub retention: Duration,
    pub delivery: DeliverySettings,
    pub tenants: Vec<Tenant>,
}

#[derive(Debug, Clone, Copy)]
pub struct DeliverySettings {
    pub retry: RetryPolicy,
    pub request_timeout: Duration,
    /// Deliveries in flight at once (per worker process).
    pub concurrency: usize,
    /// How long a claimed delivery stays leased; must exceed the worst-case attempt time.
    pub lease: Duration,
}

#[derive(Debug, Clone)]
pub struct Tenant {
    pub id: String,
    pub canary: Option<Canary>,
    pub greenhouse: Option<GreenhouseConfig>,
    pub lever: Option<LeverConfig>,
    pub webhook: Option<WebhookConfig>,
    /// Who may ask this tenant's stage gate (and only it): hashed bearer tokens of their own,
    /// never a webhook secret (that would hand every gate client the key that signs deletions).
    pub gate_tokens: Vec<GateToken>,
}

/// A stage-gate client's token, by its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateToken {
    pub name: String,
    pub sha256: [u8; 32],
}

impl Tenant {
    /// Connector names configured for this tenant, in a fixed order.
    pub fn connectors(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if self.greenhouse.is_some() {
            v.push(super::GREENHOUSE);
        }
        if self.lever.is_some() {
            v.push(super::LEVER);
        }
        if self.webhook.is_some() {
            v.push(super::WEBHOOK);
        }
        v
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    AdminOnly,
    Private,
    Public,
}

impl Visibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::AdminOnly => "admin_only",
            Visibility::Private => "private",
            Visibility::Public => "public",
        }
    }
}

#[derive(Debug, Clone)]
pub struct GreenhouseConfig {
    pub base_url: url::Url,
    pub token_url: url::Url,
    pub client_id: String,
    pub client_secret: Secret,
    pub user_id: u64,
    pub visibility: Visibility,
    pub integrity_field: Option<FieldRef>,
    pub risk_tier_field: Option<FieldRef>,
    pub status_field: Option<FieldRef>,
    pub webhook_secret: Option<Secret>,
}

#[derive(Debug, Clone)]
pub struct LeverConfig {
    pub base_url: url::Url,
    pub api_key: Secret,
    pub perform_as: String,
    pub webhook_signature_token: Option<Secret>,
    /// Oldest `triggeredAt` accepted on an inbound webhook.
    pub webhook_max_age: std::time::Duration,
}

/// Default of `tenants.lever.webhook_max_age_s`.
pub const LEVER_WEBHOOK_MAX_AGE_S: u64 = 3600;

#[derive(Debug, Clone)]
pub struct WebhookConfig {
    pub url: url::Url,
    /// The decoded HMAC key (the bytes after `whsec_`).
    pub key: SecretBytes,
}

impl AtsConfig {
    pub fn load(path: &Path) -> Result<AtsConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let private = is_private(path);
        AtsConfig::parse(&text, path, private)
    }

    /// Parses and validates; `private` says whether the file is unreadable by group and others
    /// (required for inline secrets).
    pub fn parse(text: &str, path: &Path, private: bool) -> Result<AtsConfig, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        let cx = Cx {
            path,
            base_dir: path.parent().unwrap_or(Path::new(".")),
            private,
        };
        let delivery = cx.delivery(raw.delivery)?;
        let mut seen = BTreeSet::new();
        let mut tenants = Vec::new();
        for t in raw.tenants {
            if t.id.is_empty() || !seen.insert(t.id.clone()) {
                return Err(cx.invalid(format!("tenant id '{}' is empty or repeated", t.id)));
            }
            tenants.push(cx.tenant(t)?);
        }
        let store_path = match raw.store.path {
            Some(p) => cx.base_dir.join(p),
            None => dirs::data_dir()
                .ok_or_else(|| {
                    cx.invalid("no data directory for the store: set [store] path".into())
                })?
                .join("vigil")
                .join("vigil.db"),
        };
        let days = raw.retention.days.unwrap_or(365);
        if days == 0 {
            return Err(cx.invalid("retention.days must be at least 1".into()));
        }
        Ok(AtsConfig {
            retention: Duration::from_secs(days as u64 * 86_400),
            store_path,
            delivery,
            tenants,
        })
    }

    pub fn tenant(&self, id: &str) -> Option<&Tenant> {
        self.tenants.iter().find(|t| t.id == id)
    }
}

/// What validating a config file needs besides the raw values: where it is (errors name it,
/// secret files are relative to it) and whether it may hold inline secrets.
struct Cx<'a> {
    path: &'a Path,
    base_dir: &'a Path,
    /// The file is not readable by group or others.
    private: bool,
}

impl Cx<'_> {
    fn invalid(&self, message: String) -> ConfigError {
        ConfigError::Invalid {
            path: self.path.to_owned(),
            message,
        }
    }

    /// Reads a secret from the environment, a private file, or (in a private config) inline.
    fn secret(&self, what: &str, s: SecretSource) -> Result<Secret, ConfigError> {
        match s {
            SecretSource::Env { env } => std::env::var(&env).map(Secret).map_err(|_| {
                self.invalid(format!(
                    "{what}: environment variable {env} is not set (or not UTF-8)"
                ))
            }),
            SecretSource::File { file } => {
                let file = self.base_dir.join(file);
                if !is_private(&file) {
                    return Err(self.invalid(format!(
                        "{what}: secret file {} must not be readable by group or others (chmod 600)",
                        file.display()
                    )));
                }
                std::fs::read_to_string(&file)
                    .map(|s| Secret(s.trim().to_owned()))
                    .map_err(|e| {
                        self.invalid(format!("{what}: cannot read {}: {e}", file.display()))
                    })
            }
            SecretSource::Inline(v) if self.private => Ok(Secret(v)),
            SecretSource::Inline(_) => Err(self.invalid(format!(
                "{what}: an inline secret needs a config file not readable by group or others (chmod 600), or use {{ env = \"NAME\" }}"
            ))),
        }
    }

    fn url(&self, what: &str, s: &str) -> Result<url::Url, ConfigError> {
        let u = url::Url::parse(s).map_err(|e| self.invalid(format!("{what}: '{s}': {e}")))?;
        if !matches!(u.scheme(), "http" | "https") {
            return Err(self.invalid(format!("{what}: '{s}' is not an http(s) URL")));
        }
        Ok(u)
    }

    fn delivery(&self, d: RawDelivery) -> Result<DeliverySettings, ConfigError> {
        let defaults = RetryPolicy::default();
        let request_timeout = Duration::from_millis(d.request_timeout_ms.unwrap_or(30_000));
        let ms = |v: Option<u64>, default| v.map(Duration::from_millis).unwrap_or(default);
        let delivery = DeliverySettings {
            retry: RetryPolicy {
                max_attempts: d.max_attempts.unwrap_or(defaults.max_attempts),
                base: ms(d.backoff_base_ms, defaults.base),
                cap: ms(d.backoff_cap_ms, defaults.cap),
                max_retry_after: d
                    .max_retry_after_s
                    .map(Duration::from_secs)
                    .unwrap_or(defaults.max_retry_after),
                settle: ms(d.settle_ms, request_timeout),
            },
            request_timeout,
            concurrency: d.concurrency.unwrap_or(4),
            lease: Duration::from_secs(d.lease_s.unwrap_or(300)),
        };
        if delivery.retry.max_attempts == 0 || delivery.retry.max_attempts > 100 {
            return Err(self.invalid("delivery.max_attempts must be 1..=100".into()));
        }
        if delivery.concurrency == 0 || delivery.concurrency > 256 {
            return Err(self.invalid("delivery.concurrency must be 1..=256".into()));
        }
        if delivery.request_timeout.is_zero() {
            return Err(self.invalid("delivery.request_timeout_ms must be > 0".into()));
        }
        // A lease shorter than a request could hand a live delivery to a second worker.
        if delivery.lease < delivery.request_timeout * 4 {
            return Err(self.invalid(format!(
                "delivery.lease_s ({} s) must be at least 4 × request_timeout_ms (an attempt makes up to 4 requests)",
                delivery.lease.as_secs()
            )));
        }
        Ok(delivery)
    }

    fn tenant(&self, t: RawTenant) -> Result<Tenant, ConfigError> {
        let greenhouse = t
            .greenhouse
            .map(|g| self.greenhouse(&format!("tenants.{}.greenhouse", t.id), g))
            .transpose()?;
        let lever = t
            .lever
            .map(|l| self.lever(&format!("tenants.{}.lever", t.id), l))
            .transpose()?;
        let webhook = t
            .webhook
            .map(|w| self.webhook(&format!("tenants.{}.webhook", t.id), w))
            .transpose()?;
        if greenhouse.is_none() && lever.is_none() && webhook.is_none() {
            return Err(self.invalid(format!(
                "tenant '{}' has no greenhouse, lever or webhook connector",
                t.id
            )));
        }
        let canary = match t.canary {
            Some(c) if !(0.0..=100.0).contains(&c.percent) => {
                return Err(self.invalid(format!(
                    "tenants.{}.canary.percent must be within 0..100",
                    t.id
                )));
            }
            Some(c) => Some(Canary {
                departments: c.departments,
                percent: c.percent,
            }),
            None => None,
        };
        let gate_tokens = self.gate_tokens(&t.id, t.gate_tokens)?;
        Ok(Tenant {
            canary,
            id: t.id,
            greenhouse,
            lever,
            webhook,
            gate_tokens,
        })
    }

    fn greenhouse(&self, what: &str, g: RawGreenhouse) -> Result<GreenhouseConfig, ConfigError> {
        let visibility = match g.visibility.as_deref().unwrap_or("admin_only") {
            "admin_only" => Visibility::AdminOnly,
            "private" => Visibility::Private,
            "public" => Visibility::Public,
            v => {
                return Err(self.invalid(format!(
                    "{what}.visibility: '{v}' is not admin_only, private or public"
                )));
            }
        };
        let cf = g.custom_fields.unwrap_or(RawCustomFields {
            integrity: None,
            risk_tier: None,
            verification_status: None,
        });
        Ok(GreenhouseConfig {
            base_url: self.url(
                &format!("{what}.base_url"),
                g.base_url
                    .as_deref()
                    .unwrap_or("https://harvest.greenhouse.io"),
            )?,
            token_url: self.url(
                &format!("{what}.token_url"),
                g.token_url
                    .as_deref()
                    .unwrap_or("https://auth.greenhouse.io/token"),
            )?,
            client_id: g.client_id,
            client_secret: self.secret(&format!("{what}.client_secret"), g.client_secret)?,
            user_id: g.user_id,
            visibility,
            integrity_field: cf.integrity,
            risk_tier_field: cf.risk_tier,
            status_field: cf.verification_status,
            webhook_secret: g
                .webhook_secret
                .map(|w| self.secret(&format!("{what}.webhook_secret"), w))
                .transpose()?,
        })
    }

    fn lever(&self, what: &str, l: RawLever) -> Result<LeverConfig, ConfigError> {
        if l.perform_as.trim().is_empty() {
            return Err(self.invalid(format!("{what}.perform_as is empty")));
        }
        let max_age = l.webhook_max_age_s.unwrap_or(LEVER_WEBHOOK_MAX_AGE_S);
        if !(60..=86_400).contains(&max_age) {
            return Err(self.invalid(format!(
                "{what}.webhook_max_age_s is {max_age}; it must be 60–86400"
            )));
        }
        Ok(LeverConfig {
            base_url: self.url(
                &format!("{what}.base_url"),
                l.base_url.as_deref().unwrap_or("https://api.lever.co"),
            )?,
            api_key: self.secret(&format!("{what}.api_key"), l.api_key)?,
            perform_as: l.perform_as,
            webhook_signature_token: l
                .webhook_signature_token
                .map(|w| self.secret(&format!("{what}.webhook_signature_token"), w))
                .transpose()?,
            webhook_max_age: Duration::from_secs(max_age),
        })
    }

    fn webhook(&self, what: &str, w: RawWebhook) -> Result<WebhookConfig, ConfigError> {
        let s = self.secret(&format!("{what}.secret"), w.secret)?;
        Ok(WebhookConfig {
            url: self.url(&format!("{what}.url"), &w.url)?,
            key: decode_whsec(s.expose())
                .map_err(|m| self.invalid(format!("{what}.secret: {m}")))?,
        })
    }

    fn gate_tokens(
        &self,
        tenant: &str,
        raw: Vec<RawGateToken>,
    ) -> Result<Vec<GateToken>, ConfigError> {
        let mut out: Vec<GateToken> = Vec::new();
        for g in raw {
            let sha256 = super::token::parse_sha256_hex(&g.sha256).ok_or_else(|| {
                self.invalid(format!(
                    "tenants.{tenant}.gate_tokens '{}': sha256 must be 64 hex digits (`vigil ats gate-token` prints it)",
                    g.name
                ))
            })?;
            if out.iter().any(|x| x.sha256 == sha256) {
                return Err(self.invalid(format!(
                    "tenants.{tenant}.gate_tokens '{}': the same token is configured twice",
                    g.name
                )));
            }
            out.push(GateToken {
                name: g.name,
                sha256,
            });
        }
        Ok(out)
    }
}

/// Decodes a Standard Webhooks secret (`whsec_` + base64 of 24–64 random bytes).
pub fn decode_whsec(s: &str) -> Result<SecretBytes, String> {
    let b64 = s
        .strip_prefix("whsec_")
        .ok_or("must start with whsec_ (Standard Webhooks secret format)")?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| "the part after whsec_ is not base64".to_string())?;
    if !(24..=64).contains(&bytes.len()) {
        return Err(format!(
            "decodes to {} bytes; Standard Webhooks secrets are 24–64 bytes",
            bytes.len()
        ));
    }
    Ok(SecretBytes(bytes))
}

/// True when the file's permissions give nothing to group or others (always true off Unix).
fn is_private(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path)
            .map(|m| m.permissions().mode() & 0o077 == 0)
            .unwrap_or(false)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &str = r#"
        [store]
        path = "state/vigil.db"
        [delivery]
        max_attempts = 5
        [[tenants]]
        id = "acme"
        [tenants.greenhouse]
        client_id = "cid"
        client_secret = "inline-secret"
        user_id = 7
        custom_fields = { integrity = "vigil_integrity", risk_tier = 123 }
        [tenants.webhook]
        url = "http://127.0.0.1:9/hook"
        secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    "#;

    #[test]
    fn parses_and_validates() {
        let c = AtsConfig::parse(OK, Path::new("/etc/vigil/ats.toml"), true).unwrap();
        assert_eq!(c.store_path, Path::new("/etc/vigil/state/vigil.db"));
        assert_eq!(c.delivery.retry.max_attempts, 5);
        let t = c.tenant("acme").unwrap();
        assert_eq!(t.connectors(), vec!["greenhouse", "webhook"]);
        let g = t.greenhouse.as_ref().unwrap();
        assert_eq!(g.visibility, Visibility::AdminOnly);
        assert_eq!(
            g.integrity_field,
            Some(FieldRef::NameKey("vigil_integrity".into()))
        );
        assert_eq!(g.risk_tier_field, Some(FieldRef::Id(123)));
        assert_eq!(format!("{:?}", g.client_secret), "Secret(***)");
        assert!(!format!("{c:?}").contains("inline-secret"));
    }

    #[test]
    fn inline_secret_needs_a_private_file() {
        let e = AtsConfig::parse(OK, Path::new("a.toml"), false).unwrap_err();
        assert!(e.to_string().contains("chmod 600"), "{e}");
    }

    #[test]
    fn unknown_fields_and_bad_values_are_rejected() {
        let typo = OK.replace("client_id", "clientid");
        assert!(AtsConfig::parse(&typo, Path::new("a.toml"), true).is_err());
        let vis = OK.replace("user_id = 7", "user_id = 7\nvisibility = \"everyone\"");
        let e = AtsConfig::parse(&vis, Path::new("a.toml"), true).unwrap_err();
        assert!(e.to_string().contains("visibility"), "{e}");
        let env = OK.replace(
            "client_secret = \"inline-secret\"",
            "client_secret = { env = \"VIGIL_TEST_SURELY_UNSET_VAR\" }",
        );
        let e = AtsConfig::parse(&env, Path::new("a.toml"), true).unwrap_err();
        assert!(e.to_string().contains("VIGIL_TEST_SURELY_UNSET_VAR"), "{e}");
        let bad_whsec = OK.replace("whsec_MfKQ", "MfKQ");
        assert!(AtsConfig::parse(&bad_whsec, Path::new("a.toml"), true).is_err());
    }

    #[test]
    fn whsec_decodes_to_key_bytes() {
        let k = decode_whsec("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(k.expose().len(), 24);
        assert!(decode_whsec("whsec_c2hvcnQ=").is_err(), "too short");
    }
}
