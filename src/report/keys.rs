//! Signing keys: PKCS#8 PEM private keys (mode 0600) and SPKI PEM public keys.

use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{SigningKey, VerifyingKey};
use rand_core::OsRng;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("signing key {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("cannot write key {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot encode key {path}: {source}")]
    Encode {
        path: PathBuf,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error(
        "{path} already exists; pass --force to replace it (reports signed with it will then need its public key kept elsewhere)"
    )]
    Exists { path: PathBuf },
    #[error("no user data directory (set $HOME or XDG_DATA_HOME, or pass --key)")]
    NoDataDir,
}

/// Default private key location: `$XDG_DATA_HOME/vigil/signing-key.pem`.
pub fn default_key_path() -> Result<PathBuf, KeyError> {
    if let Some(p) = std::env::var_os("VIGIL_SIGNING_KEY") {
        return Ok(PathBuf::from(p));
    }
    Ok(dirs::data_dir()
        .ok_or(KeyError::NoDataDir)?
        .join("vigil")
        .join("signing-key.pem"))
}

/// Public key file written next to a private key: `<name>.pub.pem`.
pub fn public_path_for(private: &Path) -> PathBuf {
    let stem = private
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    private.with_file_name(format!("{stem}.pub.pem"))
}

pub fn read_signing_key(path: &Path) -> Result<SigningKey, KeyError> {
    let pem = std::fs::read_to_string(path).map_err(|e| KeyError::Read {
        path: path.into(),
        reason: e.to_string(),
    })?;
    SigningKey::from_pkcs8_pem(&pem).map_err(|e| KeyError::Read {
        path: path.into(),
        reason: format!("not an Ed25519 PKCS#8 PEM private key ({e})"),
    })
}

/// Reads a public key: SPKI PEM, or a PKCS#8 private key (its public half).
pub fn read_verifying_key(path: &Path) -> Result<VerifyingKey, KeyError> {
    let pem = std::fs::read_to_string(path).map_err(|e| KeyError::Read {
        path: path.into(),
        reason: e.to_string(),
    })?;
    if let Ok(k) = VerifyingKey::from_public_key_pem(&pem) {
        return Ok(k);
    }
    SigningKey::from_pkcs8_pem(&pem)
        .map(|k| k.verifying_key())
        .map_err(|_| KeyError::Read {
            path: path.into(),
            reason: "not an Ed25519 public key (SPKI PEM)".into(),
        })
}

/// Generates a key pair at `path` (private, mode 0600) and `<stem>.pub.pem`.
pub fn generate(path: &Path, force: bool) -> Result<SigningKey, KeyError> {
    if path.exists() && !force {
        return Err(KeyError::Exists { path: path.into() });
    }
    let werr = |source: std::io::Error| KeyError::Write {
        path: path.into(),
        source,
    };
    let eerr = |e: Box<dyn std::error::Error + Send + Sync>| KeyError::Encode {
        path: path.into(),
        source: e,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(werr)?;
    }
    let key = SigningKey::generate(&mut OsRng);
    let pem = key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| eerr(e.into()))?;
    write_private(path, pem.as_bytes(), force).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            KeyError::Exists { path: path.into() }
        } else {
            werr(e)
        }
    })?;
    let public = key
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .map_err(|e| eerr(e.into()))?;
    std::fs::write(public_path_for(path), public).map_err(werr)?;
    Ok(key)
}

/// Writes the private key under a unique temporary name (mode 0600 from creation) and links it
/// into place: without `force`, an existing key is never replaced — two processes creating the
/// default key at once end with one key, the loser getting `AlreadyExists`.
fn write_private(path: &Path, bytes: &[u8], force: bool) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".signing-key-")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    if force {
        tmp.persist(path).map_err(|e| e.error)?;
    } else {
        tmp.persist_noclobber(path).map_err(|e| e.error)?;
    }
    Ok(())
}
