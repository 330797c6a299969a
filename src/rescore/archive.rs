//! What a `vigil rescore` ARCHIVE holds: directories walked for media (recognised by GStreamer's
//! type finder, not by extension) with their `X.session.json` / `X.vigil.json` sidecars, and
//! `*.jsonl` manifests of one session per line.
//!
//! Nothing here is fatal for the batch: a missing archive, an unreadable file or a bad manifest
//! line becomes a [`Problem`] that the summary lists, and the walk goes on.

use crate::report::SessionInfo;
use serde::Deserialize;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

/// Suffix of a previous signed report beside its media (what `vigil score` writes by default).
pub const REPORT_SUFFIX: &str = ".vigil.json";
/// Suffix of a session sidecar beside its media (the `--session` format of `vigil score`).
pub const SESSION_SUFFIX: &str = ".session.json";
/// Bytes read from a file's start for type finding (enough for every container GStreamer
/// recognises from its header; MP4 with a leading `ftyp` needs 12).
const PROBE_BYTES: usize = 64 * 1024;

/// One session to score.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// The media as `vigil score` would be given it: a path (as found or as written in the
    /// manifest, resolved against the manifest's directory) or a URI.
    pub media: String,
    /// Where its outputs go under `--out`, without suffix: the media's path relative to its
    /// archive.
    pub rel: PathBuf,
    /// The session ids and consent, when a sidecar or the manifest line gave them.
    pub session: SessionSource,
    /// The previous signed report to compare with, when there is one.
    pub previous: Option<PathBuf>,
}

/// Where a job's session came from. A sidecar that cannot be read is kept as an error so the
/// job fails with it (the media is never scored without the session it was recorded under).
#[derive(Debug, Clone, PartialEq)]
pub enum SessionSource {
    None,
    Given(Box<SessionInfo>),
    Invalid(String),
}

/// Something in an archive that could not be turned into a job.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub source: String,
    pub error: String,
}

/// A file of a directory archive that is not media (left alone, listed for the record).
#[derive(Debug, Clone, PartialEq)]
pub struct Ignored {
    pub path: String,
    pub kind: String,
}

#[derive(Debug, Default)]
pub struct Collected {
    pub jobs: Vec<Job>,
    pub problems: Vec<Problem>,
    pub ignored: Vec<Ignored>,
}

/// One manifest line: `{"media": PATH|URI, "session": {...}?, "previous_report": PATH?}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestLine {
    media: String,
    #[serde(default)]
    session: Option<SessionInfo>,
    #[serde(default)]
    previous_report: Option<PathBuf>,
}

/// Collects the jobs of every archive, in the order given (files of a directory sorted by
/// path, so the order — and the summary — does not depend on the file system). `skip` is a
/// directory never walked (the output directory when it lies inside an archive).
pub fn collect(archives: &[PathBuf], skip: &Path) -> Collected {
    let mut out = Collected::default();
    for a in archives {
        let meta = match std::fs::metadata(a) {
            Ok(m) => m,
            Err(e) => {
                out.problems.push(problem(a, format!("archive: {e}")));
                continue;
            }
        };
        if meta.is_dir() {
            walk(a, skip, &mut out);
        } else if a.extension().is_some_and(|e| e == "jsonl") {
            manifest(a, &mut out);
        } else {
            out.problems.push(problem(
                a,
                "archive: neither a directory nor a *.jsonl manifest".into(),
            ));
        }
    }
    out
}

fn problem(p: &Path, error: String) -> Problem {
    Problem {
        source: p.display().to_string(),
        error,
    }
}

fn walk(root: &Path, skip: &Path, out: &mut Collected) {
    let skip = skip.canonicalize().ok();
    let it = walkdir::WalkDir::new(root)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| skip.is_none() || e.path().canonicalize().ok() != skip);
    for entry in it {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                let p = e.path().unwrap_or(root).to_path_buf();
                out.problems.push(problem(&p, format!("unreadable: {e}")));
                continue;
            }
        };
        if !entry.file_type().is_file() {
            continue;
        }
        let path = entry.path();
        let name = entry.file_name().to_string_lossy();
        if name.ends_with(REPORT_SUFFIX) || name.ends_with(SESSION_SUFFIX) {
            continue;
        }
        match probe(path) {
            Ok(Probe::Media) => {
                let rel = path.strip_prefix(root).unwrap_or(path).to_path_buf();
                out.jobs.push(Job {
                    media: path.display().to_string(),
                    rel,
                    session: sidecar_session(path),
                    previous: Some(sidecar(path, REPORT_SUFFIX)).filter(|p| p.is_file()),
                });
            }
            Ok(Probe::Other(kind)) => out.ignored.push(Ignored {
                path: path.display().to_string(),
                kind,
            }),
            Err(e) => out.problems.push(problem(path, format!("unreadable: {e}"))),
        }
    }
}

fn sidecar(media: &Path, suffix: &str) -> PathBuf {
    let mut s = media.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

fn sidecar_session(media: &Path) -> SessionSource {
    let p = sidecar(media, SESSION_SUFFIX);
    match std::fs::read_to_string(&p) {
        Ok(text) => match serde_json::from_str(&text) {
            Ok(s) => SessionSource::Given(Box::new(s)),
            Err(e) => SessionSource::Invalid(format!("session file {}: {e}", p.display())),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => SessionSource::None,
        Err(e) => SessionSource::Invalid(format!("session file {}: {e}", p.display())),
    }
}

fn manifest(path: &Path, out: &mut Collected) {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            out.problems.push(problem(path, format!("manifest: {e}")));
            return;
        }
    };
    let base = path.parent().unwrap_or(Path::new("."));
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at = format!("{}:{}", path.display(), i + 1);
        match serde_json::from_str::<ManifestLine>(line) {
            Ok(l) => match manifest_job(l, base) {
                Ok(job) => out.jobs.push(job),
                Err(error) => out.problems.push(Problem { source: at, error }),
            },
            Err(e) => out.problems.push(Problem {
                source: at,
                error: format!("manifest line: {e}"),
            }),
        }
    }
}

fn manifest_job(l: ManifestLine, base: &Path) -> Result<Job, String> {
    let is_uri = l.media.contains("://");
    let (media, rel) = if is_uri {
        let url = url::Url::parse(&l.media).map_err(|e| format!("media URI: {e}"))?;
        let mut rel = PathBuf::from(url.host_str().unwrap_or("remote"));
        rel.extend(
            url.path_segments()
                .into_iter()
                .flatten()
                .filter(|s| safe(s)),
        );
        (l.media, rel)
    } else {
        let p = PathBuf::from(&l.media);
        let rel = relative_out(&p);
        (base.join(&p).display().to_string(), rel)
    };
    if rel.as_os_str().is_empty() {
        return Err(format!(
            "media {media}: no file name to name its report after"
        ));
    }
    Ok(Job {
        media,
        rel,
        session: l
            .session
            .map_or(SessionSource::None, |s| SessionSource::Given(Box::new(s))),
        previous: l.previous_report.map(|p| base.join(p)),
    })
}

/// A path's normal components only: `../x/./a.mp4` → `x/a.mp4`, `/data/a.mp4` → `data/a.mp4`,
/// so an output never escapes `--out`.
fn relative_out(p: &Path) -> PathBuf {
    p.components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s),
            _ => None,
        })
        .collect()
}

fn safe(segment: &str) -> bool {
    !segment.is_empty() && segment != "." && segment != ".."
}

enum Probe {
    Media,
    Other(String),
}

/// GStreamer's type finder on the file's first bytes: audio and video containers and streams
/// are media; anything else (text, images, unknown bytes) is not.
fn probe(path: &Path) -> std::io::Result<Probe> {
    let mut buf = Vec::with_capacity(PROBE_BYTES);
    std::fs::File::open(path)?
        .take(PROBE_BYTES as u64)
        .read_to_end(&mut buf)?;
    if buf.is_empty() {
        return Ok(Probe::Other("empty".into()));
    }
    if gstreamer::init().is_err() {
        return Err(std::io::Error::other("GStreamer cannot be initialised"));
    }
    let caps = match gstreamer_base::functions::type_find_helper_for_data(
        None::<&gstreamer::Object>,
        &buf,
    ) {
        Ok((caps, _)) => caps,
        Err(_) => return Ok(Probe::Other("unknown".into())),
    };
    let name = caps
        .structure(0)
        .map(|s| s.name().to_string())
        .unwrap_or_default();
    let media = name.starts_with("video/")
        || name.starts_with("audio/")
        || matches!(
            name.as_str(),
            "application/ogg" | "application/x-id3" | "application/mxf" | "application/x-apetag"
        );
    Ok(if media {
        Probe::Media
    } else {
        Probe::Other(name)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_outputs_never_escape_the_output_directory() {
        assert_eq!(
            relative_out(Path::new("../x/./a.mp4")),
            PathBuf::from("x/a.mp4")
        );
        assert_eq!(
            relative_out(Path::new("/data/a.mp4")),
            PathBuf::from("data/a.mp4")
        );
        let j = manifest_job(
            ManifestLine {
                media: "https://media.example/a/../b/c.webm?sig=1".into(),
                session: None,
                previous_report: None,
            },
            Path::new("/m"),
        )
        .unwrap();
        assert_eq!(j.rel, PathBuf::from("media.example/b/c.webm"));
    }
}
