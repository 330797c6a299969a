//! A session's media as it arrives: an append-only file on disk that grows while a bot uploads or
//! streams, read by the decoder as it grows.
//!
//! The writer (the HTTP server) appends bytes, makes them durable (`fsync`) and only then calls
//! [`Spool::advance`]; the reader (ingest's feeder thread, see `ingest::run`) never reads past the
//! durable length. So the analysers see exactly the bytes a restart would find on disk, and a
//! session resumed after a crash decodes the same stream again.

use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// The growing media file of one session, shared between its writer and its decoder.
pub struct Spool {
    path: PathBuf,
    name: String,
    state: Mutex<State>,
    changed: Condvar,
    /// Bytes the decoder has taken so far (for the analysis backlog metric).
    read: std::sync::atomic::AtomicU64,
}

#[derive(Debug, Default)]
struct State {
    durable: u64,
    ended: bool,
    aborted: Option<String>,
}

/// What the reader finds when it asks for bytes past `offset`.
#[derive(Debug, PartialEq, Eq)]
pub enum Wait {
    /// Bytes up to this durable length may be read.
    Data(u64),
    /// The writer ended the session and every byte has been read.
    Ended,
    /// Nothing new within the timeout; the client is slow or pausing.
    Idle,
    /// The session was stopped (shutdown, cancel): stop decoding with this reason.
    Aborted(String),
}

impl std::fmt::Debug for Spool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spool")
            .field("path", &self.path)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Spool {
    /// A spool over `path` whose first `durable` bytes are already on disk. `name` is how the
    /// media is called in messages and in the report (never a path).
    pub fn new(path: impl Into<PathBuf>, name: impl Into<String>, durable: u64) -> Spool {
        Spool {
            path: path.into(),
            name: name.into(),
            state: Mutex::new(State {
                durable,
                ..State::default()
            }),
            changed: Condvar::new(),
            read: 0.into(),
        }
    }

    /// Records that the decoder has taken the first `offset` bytes.
    pub fn note_read(&self, offset: u64) {
        self.read
            .store(offset, std::sync::atomic::Ordering::Relaxed);
    }

    /// Durable bytes not yet taken by the decoder.
    pub fn backlog(&self) -> u64 {
        self.durable_len()
            .saturating_sub(self.read.load(std::sync::atomic::Ordering::Relaxed))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Bytes now durable on disk (only ever grows).
    pub fn advance(&self, durable: u64) {
        let mut s = self.lock();
        if durable > s.durable {
            s.durable = durable;
            self.changed.notify_all();
        }
    }

    pub fn durable_len(&self) -> u64 {
        self.lock().durable
    }

    /// No more bytes will come: the reader drains what is there, then sees end of stream.
    pub fn end(&self) {
        self.lock().ended = true;
        self.changed.notify_all();
    }

    pub fn is_ended(&self) -> bool {
        self.lock().ended
    }

    pub fn is_aborted(&self) -> bool {
        self.lock().aborted.is_some()
    }

    /// Stops the reader: decoding fails with `reason` instead of finishing.
    pub fn abort(&self, reason: impl Into<String>) {
        self.lock().aborted.get_or_insert(reason.into());
        self.changed.notify_all();
    }

    /// Waits up to `timeout` for bytes past `offset`, the end, or an abort.
    pub fn wait_beyond(&self, offset: u64, timeout: Duration) -> Wait {
        let mut s = self.lock();
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(r) = &s.aborted {
                return Wait::Aborted(r.clone());
            }
            if s.durable > offset {
                return Wait::Data(s.durable);
            }
            if s.ended {
                return Wait::Ended;
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Wait::Idle;
            }
            s = self
                .changed
                .wait_timeout(s, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}

/// Whether an ISO BMFF (MP4/MOV) file must be complete before it can be decoded: its sample
/// index (`moov`) comes after the media data (`mdat`), so a stream reader would have to hold all
/// of `mdat` in memory. `None` until enough of the head has arrived to tell; `Some(false)` for
/// anything that is not ISO BMFF (Matroska/WebM, MPEG-TS, Ogg, … decode as they arrive) and for
/// fragmented or fast-start MP4.
pub fn needs_whole_file(head: &[u8]) -> Option<bool> {
    const PROBE: usize = 12;
    if head.len() < PROBE {
        return None;
    }
    let kind = &head[4..8];
    if kind != b"ftyp" && kind != b"styp" {
        return Some(false);
    }
    let mut at = 0usize;
    loop {
        if head.len() < at + 8 {
            return None;
        }
        let size32 = u32::from_be_bytes(head[at..at + 4].try_into().expect("4 bytes")) as u64;
        let kind = &head[at + 4..at + 8];
        match kind {
            b"moov" | b"moof" => return Some(false),
            b"mdat" => return Some(true),
            _ => {}
        }
        let size = match size32 {
            0 => return Some(false), // box to the end of the file without moov/mdat: not ours to judge
            1 => {
                if head.len() < at + 16 {
                    return None;
                }
                u64::from_be_bytes(head[at + 8..at + 16].try_into().expect("8 bytes"))
            }
            s => s,
        };
        if size < 8 {
            return Some(false); // malformed: let the demuxer report it
        }
        at = at.saturating_add(usize::try_from(size).unwrap_or(usize::MAX));
        if at > (64 << 20) {
            // A head this large without media data is not an interview recording layout we
            // can stream; decode it once complete.
            return Some(true);
        }
    }
}

/// [`needs_whole_file`] for the first `len` bytes of the file at `path`, walking the top-level
/// box headers by seeking (a large box before the media data is skipped, not read).
pub fn file_needs_whole(path: &Path, len: u64) -> std::io::Result<Option<bool>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path)?;
    let mut head = [0u8; 16];
    let mut at = 0u64;
    let mut first = true;
    loop {
        if at + 8 > len {
            return Ok(None);
        }
        f.seek(SeekFrom::Start(at))?;
        let n = (len - at).min(16) as usize;
        f.read_exact(&mut head[..n])?;
        let kind = &head[4..8];
        if first {
            first = false;
            if !is_bmff_box(kind) {
                return Ok(Some(false));
            }
        }
        match kind {
            b"moov" | b"moof" => return Ok(Some(false)),
            b"mdat" => return Ok(Some(true)),
            _ => {}
        }
        let size = match u32::from_be_bytes(head[0..4].try_into().expect("4 bytes")) as u64 {
            0 => return Ok(Some(false)),
            1 if n < 16 => return Ok(None),
            1 => u64::from_be_bytes(head[8..16].try_into().expect("8 bytes")),
            s => s,
        };
        if size < 8 {
            return Ok(Some(false));
        }
        at = at.saturating_add(size);
    }
}

/// Whether the ISO BMFF (MP4/MOV) file at `path` (`len` bytes) has no sample index (`moov`, or
/// `moof` for a fragmented file) among its top-level boxes: a recording cut before the recorder
/// wrote its index, which has no playable stream. `false` for anything that is not ISO BMFF and
/// for malformed box sizes, which the demuxer reports itself.
///
/// Checked before decoding because GStreamer's answer to such a file is not reliable: on a busy
/// machine `qtdemux`'s "no playable streams" error has been seen never to reach the pipeline's bus
/// (CI, December 2026), leaving the decoder to wait for the stall timeout.
pub fn file_lacks_index(path: &Path, len: u64) -> std::io::Result<bool> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path)?;
    let mut head = [0u8; 16];
    let mut at = 0u64;
    while at + 8 <= len {
        f.seek(SeekFrom::Start(at))?;
        let n = (len - at).min(16) as usize;
        f.read_exact(&mut head[..n])?;
        let kind = &head[4..8];
        if at == 0 && !is_bmff_box(kind) {
            return Ok(false);
        }
        if kind == b"moov" || kind == b"moof" {
            return Ok(false);
        }
        let size = match u32::from_be_bytes(head[0..4].try_into().expect("4 bytes")) as u64 {
            0 => return Ok(true), // the last box runs to the end of the file: no index after it
            1 if n < 16 => return Ok(true),
            1 => u64::from_be_bytes(head[8..16].try_into().expect("8 bytes")),
            s => s,
        };
        if size < 8 {
            return Ok(false);
        }
        at = at.saturating_add(size);
    }
    Ok(at > 0)
}

/// Top-level box types an ISO BMFF / QuickTime file can start with.
fn is_bmff_box(kind: &[u8]) -> bool {
    matches!(
        kind,
        b"ftyp" | b"styp" | b"wide" | b"free" | b"skip" | b"mdat" | b"moov" | b"pnot"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boxed(kind: &[u8; 4], len: u32) -> Vec<u8> {
        let mut b = len.to_be_bytes().to_vec();
        b.extend_from_slice(kind);
        b.resize(len as usize, 0);
        b
    }

    #[test]
    fn mp4_layouts() {
        let ftyp = boxed(b"ftyp", 32);
        let mut late = ftyp.clone();
        late.extend(boxed(b"free", 8));
        late.extend(&boxed(b"mdat", 64)[..8]);
        assert_eq!(needs_whole_file(&late), Some(true));
        let mut fast = ftyp.clone();
        fast.extend(&boxed(b"moov", 100)[..8]);
        assert_eq!(needs_whole_file(&fast), Some(false));
        assert_eq!(
            needs_whole_file(&ftyp),
            None,
            "undecided until the next box header"
        );
        assert_eq!(
            needs_whole_file(&[0x1a, 0x45, 0xdf, 0xa3, 0, 0, 0, 0, 0, 0, 0, 0]),
            Some(false)
        );
        assert_eq!(needs_whole_file(b"short"), None);
    }

    #[test]
    fn an_mp4_cut_before_its_index_is_recognised() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m");
        let check = |bytes: &[u8]| {
            std::fs::write(&p, bytes).unwrap();
            file_lacks_index(&p, bytes.len() as u64).unwrap()
        };
        let mut whole = boxed(b"ftyp", 32);
        whole.extend(boxed(b"mdat", 4096));
        whole.extend(boxed(b"moov", 100));
        assert!(!check(&whole), "complete, index at the end");
        assert!(check(&whole[..2000]), "cut inside the media data");
        assert!(check(&whole[..32 + 4096]), "cut exactly before the index");
        let mut open_ended = boxed(b"ftyp", 32);
        open_ended.extend(&boxed(b"mdat", 64)[..8]);
        open_ended[32..36].copy_from_slice(&0u32.to_be_bytes());
        open_ended.extend([0u8; 100]);
        assert!(check(&open_ended), "media data to the end, never finished");
        let mut fragmented = boxed(b"ftyp", 32);
        fragmented.extend(boxed(b"moof", 64));
        assert!(!check(&fragmented));
        assert!(
            !check(&[0x1a, 0x45, 0xdf, 0xa3, 0, 0, 0, 0, 0, 0, 0, 0]),
            "Matroska"
        );
        assert!(!check(b"tiny"));
        let bundled = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/interview.mp4");
        let len = std::fs::metadata(&bundled).unwrap().len();
        assert!(!file_lacks_index(&bundled, len).unwrap());
    }

    #[test]
    fn file_probe_skips_large_boxes_and_knows_quicktime() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m");
        let mut b = boxed(b"ftyp", 32);
        b.extend(boxed(b"uuid", 200_000)); // a big box before the media data
        b.extend(&boxed(b"mdat", 64)[..8]);
        std::fs::write(&p, &b).unwrap();
        assert_eq!(file_needs_whole(&p, b.len() as u64).unwrap(), Some(true));
        assert_eq!(
            file_needs_whole(&p, 100_000).unwrap(),
            None,
            "undecided inside the big box"
        );
        let mut qt = boxed(b"wide", 8);
        qt.extend(&boxed(b"mdat", 64)[..8]);
        std::fs::write(&p, &qt).unwrap();
        assert_eq!(file_needs_whole(&p, qt.len() as u64).unwrap(), Some(true));
        std::fs::write(&p, [0x1a, 0x45, 0xdf, 0xa3, 0, 0, 0, 0, 0, 0, 0, 0]).unwrap();
        assert_eq!(
            file_needs_whole(&p, 12).unwrap(),
            Some(false),
            "Matroska streams"
        );
    }

    #[test]
    fn the_bundled_recording_is_not_fast_start() {
        let head = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/testdata/interview.mp4"
        ))
        .unwrap();
        assert_eq!(needs_whole_file(&head[..64]), Some(true));
    }

    #[test]
    fn reader_waits_for_durable_bytes_then_the_end() {
        let s = std::sync::Arc::new(Spool::new("/nonexistent", "t", 0));
        assert_eq!(s.wait_beyond(0, Duration::from_millis(10)), Wait::Idle);
        let w = s.clone();
        let t = std::thread::spawn(move || w.wait_beyond(0, Duration::from_secs(10)));
        s.advance(5);
        assert_eq!(t.join().unwrap(), Wait::Data(5));
        s.end();
        assert_eq!(s.wait_beyond(3, Duration::ZERO), Wait::Data(5));
        assert_eq!(s.wait_beyond(5, Duration::ZERO), Wait::Ended);
        s.abort("shutdown");
        assert_eq!(
            s.wait_beyond(5, Duration::ZERO),
            Wait::Aborted("shutdown".into())
        );
    }
}
