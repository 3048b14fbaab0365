//! One immutable run of the trail's indexes: a file holding, for a contiguous range of
//! sequences, six sorted sections of fixed-width entries, found by binary search.
//!
//! Layout (integers big-endian, so that byte order is sort order):
//! - header, 104 bytes: magic and format `LTAIDX03`, first and last sequence, the last
//!   record's hash, and the number of entries in each section;
//! - sections, in order: offsets, officer, unit, citizen, procedure, time. Every entry is 24
//!   bytes: an 8-byte key, the sequence, the record's file offset. The key is the sequence in
//!   `offsets`, the value's prefix in the value sections and the time (sign bit flipped) in
//!   `time`; each section is sorted by key, then sequence;
//! - trailer: the SHA-256 of everything before it.
//!
//! A run is written to a temporary name and renamed into place, and checked in full (size and
//! digest) when opened: a run cut or garbled by a crash is seen and dropped, never half-read.

use super::super::record::Hash;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

const MAGIC: &[u8; 8] = b"LTAIDX03";
pub const SECTIONS: usize = 6;
const HEADER: u64 = 8 + 8 + 8 + 32 + 8 * SECTIONS as u64;
const TRAILER: u64 = 32;
pub const WIDTH: usize = 24;
/// Entries read per system call when a section is walked.
const CHUNK: usize = 512;

/// Section numbers.
pub const OFFSETS: usize = 0;
/// The first value section (officer); unit, citizen and procedure follow.
pub const VALUES: usize = 1;
pub const TIME: usize = 5;

pub type Entry = [u8; WIDTH];

pub fn entry(key: [u8; 8], seq: u64, offset: u64) -> Entry {
    let mut e = [0u8; WIDTH];
    e[..8].copy_from_slice(&key);
    e[8..16].copy_from_slice(&seq.to_be_bytes());
    e[16..].copy_from_slice(&offset.to_be_bytes());
    e
}

/// An entry's sequence and file offset.
pub fn seq_offset(e: &Entry) -> (u64, u64) {
    let n = |b: &[u8]| u64::from_be_bytes(b.try_into().unwrap_or_default());
    (n(&e[8..16]), n(&e[16..]))
}

/// What a run covers and holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub first: u64,
    pub last: u64,
    pub last_hash: Hash,
    pub counts: [u64; SECTIONS],
}

impl Summary {
    fn to_bytes(self) -> Vec<u8> {
        let mut h = Vec::with_capacity(HEADER as usize);
        h.extend_from_slice(MAGIC);
        h.extend_from_slice(&self.first.to_be_bytes());
        h.extend_from_slice(&self.last.to_be_bytes());
        h.extend_from_slice(&self.last_hash);
        for c in self.counts {
            h.extend_from_slice(&c.to_be_bytes());
        }
        h
    }

    fn from_bytes(h: &[u8]) -> Option<Self> {
        if h.get(..8)? != MAGIC {
            return None;
        }
        let n = |at: usize| Some(u64::from_be_bytes(h.get(at..at + 8)?.try_into().ok()?));
        let mut counts = [0; SECTIONS];
        for (i, c) in counts.iter_mut().enumerate() {
            *c = n(56 + 8 * i)?;
        }
        Some(Self {
            first: n(8)?,
            last: n(16)?,
            last_hash: h.get(24..56)?.try_into().ok()?,
            counts,
        })
    }

    /// The records the run covers.
    pub fn records(&self) -> u64 {
        self.counts[OFFSETS]
    }

    fn file_len(&self) -> Option<u64> {
        self.counts.iter().try_fold(HEADER + TRAILER, |len, c| {
            len.checked_add(c.checked_mul(WIDTH as u64)?)
        })
    }

    fn file_name(&self) -> String {
        format!("run-{:020}-{:020}.idx", self.first, self.last)
    }
}

/// A run on disk, open for reading.
#[derive(Debug)]
pub struct Run {
    pub summary: Summary,
    path: PathBuf,
    file: File,
}

impl Run {
    /// Opens a run and checks it whole: its header, its size and its digest.
    pub fn open(path: &Path) -> io::Result<Self> {
        let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_string());
        let file = File::open(path)?;
        let len = file.metadata()?.len();
        let mut reader = BufReader::with_capacity(1 << 20, &file);
        let mut header = [0u8; HEADER as usize];
        reader.read_exact(&mut header)?;
        let summary = Summary::from_bytes(&header).ok_or_else(|| bad("not an index run"))?;
        if summary.file_len() != Some(len) || summary.last < summary.first {
            return Err(bad("cut short or of the wrong size"));
        }
        let mut digest = Sha256::new();
        digest.update(header);
        let mut body = (&mut reader).take(len - HEADER - TRAILER);
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = body.read(&mut buf)?;
            if n == 0 {
                break;
            }
            digest.update(&buf[..n]);
        }
        let mut trailer = [0u8; TRAILER as usize];
        reader.read_exact(&mut trailer)?;
        if digest.finalize()[..] != trailer[..] {
            return Err(bad("its digest does not match its contents"));
        }
        Ok(Self {
            summary,
            path: path.to_owned(),
            file,
        })
    }

    /// Writes a run of sorted sections and opens it.
    pub fn write(
        dir: &Path,
        summary: Summary,
        sections: [Vec<Entry>; SECTIONS],
    ) -> io::Result<Self> {
        let mut w = Writer::create(dir, summary)?;
        for section in sections {
            for e in section {
                w.push(&e)?;
            }
        }
        w.finish()
    }

    /// Merges adjacent runs (oldest first) into one, section by section.
    pub fn merge(dir: &Path, runs: &[Arc<Run>]) -> io::Result<Self> {
        let (Some(first), Some(last)) = (runs.first(), runs.last()) else {
            return Err(io::Error::other("nothing to merge"));
        };
        let mut counts = [0u64; SECTIONS];
        for r in runs {
            for (c, n) in counts.iter_mut().zip(r.summary.counts) {
                *c += n;
            }
        }
        let summary = Summary {
            first: first.summary.first,
            last: last.summary.last,
            last_hash: last.summary.last_hash,
            counts,
        };
        let mut w = Writer::create(dir, summary)?;
        for s in 0..SECTIONS {
            let mut heads: Vec<_> = runs.iter().map(|r| r.walk(s, 0).peekable()).collect();
            loop {
                // The smallest head; among equal keys the older run's (its sequences are lower).
                let mut min: Option<(usize, Entry)> = None;
                for (i, h) in heads.iter_mut().enumerate() {
                    match h.peek() {
                        Some(Ok(e)) if min.is_none_or(|(_, m)| *e < m) => min = Some((i, *e)),
                        Some(Err(_)) => {
                            return Err(h
                                .next()
                                .and_then(Result::err)
                                .unwrap_or_else(|| io::Error::other("read failed")));
                        }
                        _ => {}
                    }
                }
                let Some((i, e)) = min else { break };
                heads[i].next();
                w.push(&e)?;
            }
        }
        w.finish()
    }

    /// Removes the run's file (it stays readable through handles already open).
    pub fn remove(&self) {
        let _ = std::fs::remove_file(&self.path);
    }

    fn section_start(&self, s: usize) -> u64 {
        HEADER + WIDTH as u64 * self.summary.counts[..s].iter().sum::<u64>()
    }

    fn read(&self, s: usize, i: u64) -> io::Result<Entry> {
        let mut e = [0u8; WIDTH];
        self.file
            .read_exact_at(&mut e, self.section_start(s) + i * WIDTH as u64)?;
        Ok(e)
    }

    /// The position of the first entry of section `s` not below `key` (compared on the key's
    /// length).
    pub fn lower_bound(&self, s: usize, key: &[u8]) -> io::Result<u64> {
        let (mut lo, mut hi) = (0, self.summary.counts[s]);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.read(s, mid)?[..key.len()] < *key {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        Ok(lo)
    }

    /// The entries of section `s` from position `from`, read in chunks.
    pub fn walk(self: &Arc<Self>, s: usize, from: u64) -> Walk {
        Walk {
            run: self.clone(),
            section: s,
            next: from,
            end: self.summary.counts[s],
            buf: Vec::new(),
            at: 0,
        }
    }

    /// The file offset of a record the run covers.
    pub fn offset(&self, seq: u64) -> io::Result<Option<u64>> {
        let i = self.lower_bound(OFFSETS, &seq.to_be_bytes())?;
        if i >= self.summary.counts[OFFSETS] {
            return Ok(None);
        }
        let (found, offset) = seq_offset(&self.read(OFFSETS, i)?);
        Ok((found == seq).then_some(offset))
    }
}

/// A walk over a section.
pub struct Walk {
    run: Arc<Run>,
    section: usize,
    next: u64,
    end: u64,
    buf: Vec<u8>,
    at: usize,
}

impl Iterator for Walk {
    type Item = io::Result<Entry>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.at >= self.buf.len() {
            if self.next >= self.end {
                return None;
            }
            let n = (self.end - self.next).min(CHUNK as u64);
            self.buf.resize(n as usize * WIDTH, 0);
            let at = self.run.section_start(self.section) + self.next * WIDTH as u64;
            if let Err(e) = self.run.file.read_exact_at(&mut self.buf, at) {
                self.next = self.end;
                self.buf.clear();
                return Some(Err(e));
            }
            self.next += n;
            self.at = 0;
        }
        let e: Entry = self.buf[self.at..self.at + WIDTH].try_into().ok()?;
        self.at += WIDTH;
        Some(Ok(e))
    }
}

/// Writes a run under a temporary name; `finish` renames it into place.
struct Writer {
    summary: Summary,
    out: BufWriter<File>,
    digest: Sha256,
    tmp: PathBuf,
    path: PathBuf,
    left: u64,
}

/// Distinguishes the temporary files of one process.
static TMP: AtomicU64 = AtomicU64::new(0);

impl Writer {
    fn create(dir: &Path, summary: Summary) -> io::Result<Self> {
        let tmp = dir.join(format!(
            "tmp-{}-{}.idx",
            std::process::id(),
            TMP.fetch_add(1, Ordering::Relaxed)
        ));
        let mut out = BufWriter::with_capacity(1 << 20, File::create(&tmp)?);
        let header = summary.to_bytes();
        out.write_all(&header)?;
        let mut digest = Sha256::new();
        digest.update(&header);
        Ok(Self {
            summary,
            out,
            digest,
            tmp,
            path: dir.join(summary.file_name()),
            left: summary.counts.iter().sum(),
        })
    }

    fn push(&mut self, e: &Entry) -> io::Result<()> {
        self.left = self
            .left
            .checked_sub(1)
            .ok_or_else(|| io::Error::other("more entries than the header says"))?;
        self.digest.update(e);
        self.out.write_all(e)
    }

    fn finish(mut self) -> io::Result<Run> {
        if self.left != 0 {
            return Err(io::Error::other("fewer entries than the header says"));
        }
        let digest = std::mem::take(&mut self.digest).finalize();
        self.out.write_all(&digest)?;
        self.out.flush()?;
        std::fs::rename(&self.tmp, &self.path)?;
        Ok(Run {
            summary: self.summary,
            file: File::open(&self.path)?,
            path: self.path.clone(),
        })
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Unfinished (an error part way): leave nothing behind. After a rename this is a no-op.
        let _ = std::fs::remove_file(&self.tmp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(first: u64, last: u64, counts: [u64; SECTIONS]) -> Summary {
        Summary {
            first,
            last,
            last_hash: [last as u8; 32],
            counts,
        }
    }

    fn sections(seqs: std::ops::Range<u64>) -> [Vec<Entry>; SECTIONS] {
        let mut s: [Vec<Entry>; SECTIONS] = Default::default();
        for seq in seqs {
            s[OFFSETS].push(entry(seq.to_be_bytes(), seq, seq * 100));
            s[VALUES].push(entry([(seq % 3) as u8; 8], seq, seq * 100));
            s[TIME].push(entry((seq * 10).to_be_bytes(), seq, seq * 100));
        }
        for section in &mut s {
            section.sort_unstable();
        }
        s
    }

    fn counts(s: &[Vec<Entry>; SECTIONS]) -> [u64; SECTIONS] {
        let mut c = [0; SECTIONS];
        for (c, s) in c.iter_mut().zip(s) {
            *c = s.len() as u64;
        }
        c
    }

    fn run(dir: &Path, seqs: std::ops::Range<u64>) -> Arc<Run> {
        let s = sections(seqs.clone());
        Arc::new(Run::write(dir, summary(seqs.start, seqs.end - 1, counts(&s)), s).unwrap())
    }

    fn values(r: &Arc<Run>, key: u8) -> Vec<u64> {
        let from = r.lower_bound(VALUES, &[key; 8]).unwrap();
        r.walk(VALUES, from)
            .map(|e| e.unwrap())
            .take_while(|e| e[..8] == [key; 8])
            .map(|e| seq_offset(&e).0)
            .collect()
    }

    #[test]
    fn a_written_run_reopens_and_answers() {
        let dir = tempfile::tempdir().unwrap();
        let written = run(dir.path(), 10..2000);
        let r = Arc::new(Run::open(&written.path).unwrap());
        assert_eq!(r.summary, written.summary);
        assert_eq!(r.offset(10).unwrap(), Some(1000));
        assert_eq!(r.offset(1999).unwrap(), Some(199_900));
        assert_eq!(r.offset(2000).unwrap(), None);
        assert_eq!(r.offset(9).unwrap(), None);
        let ones = values(&r, 1);
        assert_eq!(ones.len(), (10..2000).filter(|s| s % 3 == 1).count());
        assert!(ones.windows(2).all(|w| w[0] < w[1]), "sequence order");
        assert!(values(&r, 7).is_empty());
    }

    #[test]
    fn merged_runs_hold_every_entry_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let a = run(dir.path(), 0..700);
        let b = run(dir.path(), 700..701);
        let c = run(dir.path(), 701..1500);
        let m = Arc::new(Run::merge(dir.path(), &[a, b, c.clone()]).unwrap());
        assert_eq!((m.summary.first, m.summary.last), (0, 1499));
        assert_eq!(m.summary.last_hash, c.summary.last_hash);
        let whole = run(tempfile::tempdir().unwrap().path(), 0..1500);
        for s in 0..SECTIONS {
            let merged: Vec<_> = m.walk(s, 0).map(|e| e.unwrap()).collect();
            let direct: Vec<_> = whole.walk(s, 0).map(|e| e.unwrap()).collect();
            assert_eq!(merged, direct, "section {s}");
        }
    }

    #[test]
    fn a_damaged_run_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let r = run(dir.path(), 0..100);
        let bytes = std::fs::read(&r.path).unwrap();
        // Cut short.
        std::fs::write(&r.path, &bytes[..bytes.len() - 1]).unwrap();
        assert!(Run::open(&r.path).is_err());
        // One byte changed.
        let mut garbled = bytes.clone();
        garbled[HEADER as usize + 5] ^= 1;
        std::fs::write(&r.path, &garbled).unwrap();
        assert!(Run::open(&r.path).is_err());
        // Zeros of the right length, as a crash can leave.
        std::fs::write(&r.path, vec![0u8; bytes.len()]).unwrap();
        assert!(Run::open(&r.path).is_err());
        std::fs::write(&r.path, &bytes).unwrap();
        assert!(Run::open(&r.path).is_ok());
    }

    #[test]
    fn a_header_that_promises_more_than_is_written_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let s = sections(0..10);
        let mut c = counts(&s);
        c[TIME] += 1;
        assert!(Run::write(dir.path(), summary(0, 9, c), s).is_err());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
