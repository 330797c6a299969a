//! Evidence Pack: the audit artifact that bundles signed reports with everything needed to
//! check them later and offline — their HTML renderings, the public keys, the policy file and a
//! manifest with the SHA-256 of every input and every file (plus a `SHA256SUMS` that
//! `sha256sum -c` understands).
//!
//! Every report is verified before it goes in: a pack never carries an unverifiable report.
//! The pack is assembled in memory and written atomically (a directory renamed into place, or
//! a ZIP written to a temporary file and renamed), so a failure leaves nothing behind.

use super::dsse::{self, Envelope};
use super::html::{self, SignatureCheck};
use super::{Report, SessionInfo};
use ed25519_dalek::VerifyingKey;
use ed25519_dalek::pkcs8::EncodePublicKey;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

pub const SCHEMA: &str = "vigil.evidence-pack/v1";

#[derive(Debug, thiserror::Error)]
pub enum PackError {
    #[error("{path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("{path}: signature does not verify with any given public key ({reason})")]
    Unverified { path: PathBuf, reason: String },
    #[error("{path}: {reason}")]
    NotAReport { path: PathBuf, reason: String },
    #[error("report {0} is given twice")]
    Duplicate(String),
    #[error("cannot write the pack {path}: already exists; choose a new path")]
    Exists { path: PathBuf },
    #[error("cannot write the pack {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write the pack {path}: {source}")]
    Zip {
        path: PathBuf,
        source: zip::result::ZipError,
    },
}

/// One file of the pack.
#[derive(Debug, Clone)]
pub struct PackFile {
    pub path: String,
    pub bytes: Vec<u8>,
}

#[derive(Debug, Clone, Serialize)]
pub struct InputEntry {
    pub role: &'static str,
    pub name: String,
    pub sha256: String,
    pub bytes: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct FileEntry {
    pub path: String,
    pub sha256: String,
    pub bytes: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReportEntry {
    pub report_id: String,
    pub file: String,
    pub html: String,
    pub keyid: String,
    pub signature: &'static str,
    pub verification_status: String,
    pub risk_tier: String,
    pub integrity: f64,
    pub policy: super::PolicyRef,
    pub session: SessionInfo,
}

#[derive(Debug, Clone, Serialize)]
pub struct Manifest {
    pub schema: &'static str,
    pub created_at: String,
    pub vigil_version: &'static str,
    pub inputs: Vec<InputEntry>,
    pub reports: Vec<ReportEntry>,
    /// Extra top-level sections added by callers (e.g. the release gate's summary).
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
    /// Every file of the pack except the manifest itself and SHA256SUMS.
    pub files: Vec<FileEntry>,
}

/// A pack being assembled.
pub struct Pack {
    pub manifest: Manifest,
    pub files: Vec<PackFile>,
}

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

fn read(path: &Path) -> Result<Vec<u8>, PackError> {
    std::fs::read(path).map_err(|e| PackError::Read {
        path: path.to_owned(),
        reason: e.to_string(),
    })
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// The report in a DSSE envelope, verified by the first of `keys` that accepts it, with that
/// key's id; the last key's refusal is the error when none does.
fn verify_report(
    path: &Path,
    bytes: &[u8],
    keys: &[(PathBuf, VerifyingKey)],
) -> Result<(Report, String), PackError> {
    let env: Envelope = serde_json::from_slice(bytes).map_err(|e| PackError::NotAReport {
        path: path.to_path_buf(),
        reason: format!("not a DSSE envelope: {e}"),
    })?;
    let mut last_err = String::from("no public key given");
    for (_, key) in keys {
        match dsse::verify(&env, key) {
            Ok(payload) => {
                let report =
                    Report::from_payload(&payload).map_err(|reason| PackError::NotAReport {
                        path: path.to_path_buf(),
                        reason,
                    })?;
                return Ok((report, dsse::key_id(key)));
            }
            Err(e) => last_err = e.to_string(),
        }
    }
    Err(PackError::Unverified {
        path: path.to_path_buf(),
        reason: last_err,
    })
}

impl Pack {
    /// Verifies every report against `keys` and assembles the pack.
    pub fn build(
        reports: &[PathBuf],
        keys: &[(PathBuf, VerifyingKey)],
        policy: Option<&Path>,
        created_at: String,
    ) -> Result<Pack, PackError> {
        let mut pack = Pack {
            manifest: Manifest {
                schema: SCHEMA,
                created_at,
                vigil_version: env!("CARGO_PKG_VERSION"),
                inputs: Vec::new(),
                reports: Vec::new(),
                extra: serde_json::Map::new(),
                files: Vec::new(),
            },
            files: Vec::new(),
        };
        for (path, key) in keys {
            pack.add_key(path, key)?;
        }
        for path in reports {
            let bytes = read(path)?;
            let (report, keyid) = verify_report(path, &bytes, keys)?;
            pack.add_report(path, bytes, report, keyid)?;
        }
        if let Some(p) = policy {
            let bytes = read(p)?;
            pack.input("policy", p, &bytes);
            pack.add(format!("policy/{}", file_name(p)), bytes);
        }
        Ok(pack)
    }

    /// Adds a public key as an input and as `keys/<keyid>.pub.pem`.
    fn add_key(&mut self, path: &Path, key: &VerifyingKey) -> Result<(), PackError> {
        let pem = key
            .to_public_key_pem(Default::default())
            .map_err(|e| PackError::Read {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?;
        let keyid = dsse::key_id(key);
        self.input("public_key", path, pem.as_bytes());
        self.add(
            format!("keys/{}.pub.pem", keyid.replace(':', "_")),
            pem.into_bytes(),
        );
        Ok(())
    }

    /// Adds a verified report, its rendered page and its manifest entry; a report id already in
    /// the pack is an error.
    fn add_report(
        &mut self,
        path: &Path,
        bytes: Vec<u8>,
        report: Report,
        keyid: String,
    ) -> Result<(), PackError> {
        if self
            .manifest
            .reports
            .iter()
            .any(|r| r.report_id == report.report_id)
        {
            return Err(PackError::Duplicate(report.report_id));
        }
        self.input("report", path, &bytes);
        let file = format!("reports/{}.vigil.json", report.report_id);
        let html_file = format!("reports/{}.html", report.report_id);
        let page = html::render(
            &report,
            &SignatureCheck::Valid {
                keyid: keyid.clone(),
            },
        );
        self.add(file.clone(), bytes);
        self.add(html_file.clone(), page.into_bytes());
        self.manifest.reports.push(ReportEntry {
            report_id: report.report_id.clone(),
            file,
            html: html_file,
            keyid,
            signature: "valid",
            verification_status: report.score.verification_status.as_str().to_owned(),
            risk_tier: report.score.risk_tier.as_str().to_owned(),
            integrity: report.score.integrity,
            policy: report.pipeline.policy.clone(),
            session: report.session.clone(),
        });
        Ok(())
    }

    fn input(&mut self, role: &'static str, path: &Path, bytes: &[u8]) {
        self.manifest.inputs.push(InputEntry {
            role,
            name: file_name(path),
            sha256: sha256_hex(bytes),
            bytes: bytes.len() as u64,
        });
    }

    /// Adds a file (and its manifest entry).
    pub fn add(&mut self, path: String, bytes: Vec<u8>) {
        self.manifest.files.push(FileEntry {
            path: path.clone(),
            sha256: sha256_hex(&bytes),
            bytes: bytes.len() as u64,
        });
        self.files.push(PackFile { path, bytes });
    }

    /// All files including `manifest.json` and `SHA256SUMS`, in a fixed order.
    pub fn finish(&self) -> Vec<PackFile> {
        let mut files = self.files.clone();
        let manifest = serde_json::to_vec_pretty(&self.manifest).expect("manifest serialises");
        files.push(PackFile {
            path: "manifest.json".into(),
            bytes: manifest,
        });
        let sums: String = files
            .iter()
            .map(|f| format!("{}  {}\n", sha256_hex(&f.bytes), f.path))
            .collect();
        files.push(PackFile {
            path: "SHA256SUMS".into(),
            bytes: sums.into_bytes(),
        });
        files
    }

    /// Writes the pack to `out`: a ZIP when the name ends in `.zip`, else a directory (which
    /// must not exist yet).
    pub fn write(&self, out: &Path) -> Result<(), PackError> {
        let werr = |source: std::io::Error| PackError::Write {
            path: out.to_owned(),
            source,
        };
        let zerr = |source: zip::result::ZipError| PackError::Zip {
            path: out.to_owned(),
            source,
        };
        if out.exists() {
            return Err(PackError::Exists {
                path: out.to_owned(),
            });
        }
        let parent = out
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let files = self.finish();
        let is_zip = out
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("zip"));
        if is_zip {
            let tmp = tempfile::NamedTempFile::new_in(parent).map_err(werr)?;
            {
                let mut z = zip::ZipWriter::new(tmp.as_file());
                let opts = zip::write::SimpleFileOptions::default()
                    .compression_method(zip::CompressionMethod::Deflated);
                for f in &files {
                    z.start_file(f.path.as_str(), opts).map_err(zerr)?;
                    std::io::Write::write_all(&mut z, &f.bytes).map_err(werr)?;
                }
                z.finish().map_err(zerr)?;
            }
            tmp.as_file().sync_all().map_err(werr)?;
            tmp.persist(out).map_err(|e| werr(e.error))?;
        } else {
            let tmp = tempfile::Builder::new()
                .prefix(".vigil-pack-")
                .tempdir_in(parent)
                .map_err(werr)?;
            for f in &files {
                let p = tmp.path().join(&f.path);
                if let Some(d) = p.parent() {
                    std::fs::create_dir_all(d).map_err(werr)?;
                }
                std::fs::write(&p, &f.bytes).map_err(werr)?;
            }
            let kept = tmp.keep();
            std::fs::rename(&kept, out).map_err(|e| {
                let _ = std::fs::remove_dir_all(&kept);
                werr(e)
            })?;
        }
        Ok(())
    }
}
