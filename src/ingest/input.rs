//! What the user passed as MEDIA: a local path or a URI GStreamer can open.

use super::IngestError;
use super::spool::Spool;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A media input: a local file, a remote URI (`http(s)://`, `file://`, anything GStreamer has a
/// source for), or a session's spool that is still growing (`vigil serve`).
#[derive(Debug, Clone)]
pub enum MediaInput {
    File(PathBuf),
    Uri(url::Url),
    /// Decoded as it arrives, through an `appsrc`; ends when the writer ends the spool.
    Spool(Arc<Spool>),
}

impl MediaInput {
    /// Parses MEDIA as given on the command line: a string with a URI scheme is a URI
    /// (`file://` URIs become paths); anything else is a path.
    pub fn parse(s: &str) -> Result<Self, IngestError> {
        if s.contains("://")
            && let Ok(url) = url::Url::parse(s)
        {
            if url.scheme() == "file" {
                let path = url.to_file_path().map_err(|_| IngestError::BadInput {
                    input: s.to_string(),
                    reason: "not a valid local file URI".into(),
                })?;
                return Ok(MediaInput::File(path));
            }
            return Ok(MediaInput::Uri(url));
        }
        Ok(MediaInput::File(PathBuf::from(s)))
    }

    /// How the input is named in messages and logs: the path as given, or the URI without
    /// credentials, query or fragment (presigned URLs carry their signature in the query).
    pub fn display_name(&self) -> String {
        match self {
            MediaInput::File(p) => p.display().to_string(),
            MediaInput::Uri(_) | MediaInput::Spool(_) => self.report_name(),
        }
    }

    /// Name recorded in the report: the file name only (paths can carry a candidate's name or
    /// a home directory), or the URI without credentials and query.
    pub fn report_name(&self) -> String {
        match self {
            MediaInput::File(p) => p
                .file_name()
                .map(|n| {
                    n.to_string_lossy()
                        .chars()
                        .map(|c| if unsafe_char(c) { '\u{FFFD}' } else { c })
                        .collect()
                })
                .unwrap_or_default(),
            MediaInput::Uri(u) => {
                let mut u = u.clone();
                let _ = u.set_password(None);
                let _ = u.set_username("");
                u.set_query(None);
                u.set_fragment(None);
                u.to_string()
            }
            MediaInput::Spool(s) => s.name().to_string(),
        }
    }

    /// A complete local file (hashed while it is decoded); `None` for URIs and growing spools.
    pub fn path(&self) -> Option<&Path> {
        match self {
            MediaInput::File(p) => Some(p),
            MediaInput::Uri(_) | MediaInput::Spool(_) => None,
        }
    }

    pub(crate) fn check_exists(&self) -> Result<(), IngestError> {
        if let MediaInput::File(p) = self {
            let meta = std::fs::metadata(p).map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => IngestError::NotFound {
                    input: self.display_name(),
                },
                _ => IngestError::Unreadable {
                    input: self.display_name(),
                    reason: e.to_string(),
                },
            })?;
            if meta.is_dir() {
                return Err(IngestError::BadInput {
                    input: self.display_name(),
                    reason: "is a directory, not a media file".into(),
                });
            }
            if meta.len() == 0 {
                return Err(IngestError::BadInput {
                    input: self.display_name(),
                    reason: "is empty (0 bytes)".into(),
                });
            }
            let cut = super::spool::file_lacks_index(p, meta.len()).map_err(|e| {
                IngestError::Unreadable {
                    input: self.display_name(),
                    reason: e.to_string(),
                }
            })?;
            if cut {
                return Err(IngestError::Unreadable {
                    input: self.display_name(),
                    reason: "an MP4/MOV file without its index (moov box) has no playable \
                             streams; the recording was probably cut before the recorder \
                             finished it"
                        .into(),
                });
            }
        }
        Ok(())
    }

    /// The URI handed to GStreamer.
    pub(crate) fn uri(&self) -> String {
        match self {
            MediaInput::File(p) => {
                let abs = std::path::absolute(p).unwrap_or_else(|_| p.clone());
                url::Url::from_file_path(&abs)
                    .map(|u| u.to_string())
                    .unwrap_or_else(|_| format!("file://{}", abs.display()))
            }
            MediaInput::Uri(u) => u.to_string(),
            MediaInput::Spool(_) => "appsrc://".to_string(),
        }
    }
}

/// Characters a name shown to people must not carry: controls, and the bidirectional
/// formatting characters that make `evil\u{202E}4pm.exe` read as `evilexe.mp4`.
pub fn unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}
