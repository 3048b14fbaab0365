//! The trail's indexes: by officer, unit, citizen pseudonym, procedure and time, plus
//! sequence → file offset. Derived data: the trail is the truth, and the indexes are rebuilt
//! from it when missing, damaged or behind.
//!
//! The indexes are a list of immutable runs ([`run`]), each covering a contiguous range of
//! sequences, oldest first, with no gaps. A run holds one entry per record in each section it
//! applies to: in a value section (officer, unit, citizen, procedure) the first 8 bytes of the
//! value's SHA-256, then the sequence and the file offset, so a query reads records without a
//! second lookup; two values that share a prefix only cost a query a record it reads and
//! filters out. Runs are merged in the background, four of a size into one, so a trail of
//! N records has O(log N) runs and each record is rewritten O(log N) times.
//!
//! The newest records' keys wait in memory ([`Pending`]) and become a run in large batches; a
//! query reads the runs for what they cover and the pending keys for the rest, so every
//! acknowledged record is found. The checkpoints' places in the trail are kept in memory: the
//! start reads the whole trail and finds them anyway.

mod run;

use super::record::{Entry, Hash, Record};
use run::{OFFSETS, Run, SECTIONS, Summary, TIME, VALUES};
use sha2::{Digest, Sha256};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};

/// A query's filters; empty strings match everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub officer: String,
    pub unit: String,
    pub citizen_pseudonym: String,
    pub procedure: String,
    /// None: any; Some(true): served (code 0); Some(false): refused or failed.
    pub served: Option<bool>,
    pub reason: String,
    /// Microseconds since the epoch, inclusive / exclusive.
    pub from_us: Option<i64>,
    pub to_us: Option<i64>,
    /// When set, only records of these units (an auditor's scope).
    pub units_in: Option<Vec<String>>,
    /// When set, only records before this sequence (what the trail held when a query began).
    pub before: Option<u64>,
    /// When set, only records after this one in the query's order: the next page.
    pub after: Option<Cursor>,
    /// When set, only the record at this sequence.
    pub sequence: Option<u64>,
    /// When set, only records of callers without this role.
    pub without_role: Option<String>,
}

/// A record's place in a query's order, to continue after it. A query answered from a value
/// index (officer, unit, citizen, procedure) is in sequence order; one answered from the time
/// index alone is in (time, sequence) order. Both are "oldest first", and each is stable, so a
/// page that ends at a record continues exactly after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub time_us: i64,
    pub sequence: u64,
}

impl Cursor {
    /// The cursor of a record.
    pub fn of(r: &Record) -> Self {
        Self {
            time_us: r.entry.time_us,
            sequence: r.sequence,
        }
    }

    /// Its text form, `<time µs>.<sequence>`, opaque to callers.
    pub fn token(&self) -> String {
        format!("{}.{}", self.time_us, self.sequence)
    }

    /// Reads a token made by [`Cursor::token`].
    pub fn parse(token: &str) -> Option<Self> {
        let (time, seq) = token.split_once('.')?;
        Some(Self {
            time_us: time.parse().ok()?,
            sequence: seq.parse().ok()?,
        })
    }
}

impl Filter {
    /// Whether a record passes every filter.
    pub fn matches(&self, r: &Record) -> bool {
        let e = &r.entry;
        (self.officer.is_empty() || e.officer_code == self.officer)
            && (self.unit.is_empty() || e.unit_code == self.unit)
            && (self.citizen_pseudonym.is_empty() || e.citizen_pseudonym == self.citizen_pseudonym)
            && (self.procedure.is_empty() || e.procedure_code == self.procedure)
            && self.served.is_none_or(|s| s == (e.outcome_code == 0))
            && (self.reason.is_empty() || e.outcome_reason == self.reason)
            && self.from_us.is_none_or(|f| e.time_us >= f)
            && self.to_us.is_none_or(|t| e.time_us < t)
            && self
                .units_in
                .as_ref()
                .is_none_or(|units| units.contains(&e.unit_code))
            && self.before.is_none_or(|b| r.sequence < b)
            && self.sequence.is_none_or(|s| r.sequence == s)
            && self
                .without_role
                .as_ref()
                .is_none_or(|role| !e.roles.contains(role))
    }
}

/// Entries per section (offsets, officer, unit, citizen, procedure, time): what the indexes
/// hold, or what the trail says they should hold.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts(pub [u64; SECTIONS]);

impl Counts {
    /// Counts what indexing `r` adds.
    pub fn record(&mut self, r: &Record) {
        let e = &r.entry;
        self.0[OFFSETS] += 1;
        self.0[VALUES] += u64::from(!e.officer_code.is_empty());
        self.0[VALUES + 1] += u64::from(!e.unit_code.is_empty());
        self.0[VALUES + 2] += u64::from(!e.citizen_pseudonym.is_empty());
        self.0[VALUES + 3] += u64::from(!e.procedure_code.is_empty());
        self.0[TIME] += 1;
    }
}

/// The 8-byte prefix standing for a value in a value index.
fn prefix(value: &str) -> [u8; 8] {
    let digest = Sha256::digest(value.as_bytes());
    let mut p = [0u8; 8];
    p.copy_from_slice(&digest[..8]);
    p
}

/// A time as a key that sorts as the time does.
fn time_key(time_us: i64) -> [u8; 8] {
    ((time_us as u64) ^ (1 << 63)).to_be_bytes()
}

/// What indexing one record writes: its sequence, offset, hash and time, and the key prefixes
/// of its officer, unit, citizen and procedure (None where the record names none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexKeys {
    pub sequence: u64,
    pub offset: u64,
    pub hash: Hash,
    pub time_us: i64,
    /// Officer, unit, citizen, procedure.
    pub values: [Option<[u8; 8]>; 4],
}

impl IndexKeys {
    pub fn of(sequence: u64, e: &Entry, offset: u64, hash: Hash) -> Self {
        let p = |v: &str| (!v.is_empty()).then(|| prefix(v));
        Self {
            sequence,
            offset,
            hash,
            time_us: e.time_us,
            values: [
                p(&e.officer_code),
                p(&e.unit_code),
                p(&e.citizen_pseudonym),
                p(&e.procedure_code),
            ],
        }
    }
}

/// Which section answers a filter: a value section (officer 0, unit 1, citizen 2, procedure 3)
/// with the value's prefix, or the time section with a range.
#[derive(Clone, Copy)]
enum Selector {
    Value(usize, [u8; 8]),
    Time(i64, i64),
}

impl Selector {
    /// The most selective index for a filter.
    fn of(f: &Filter) -> Self {
        [
            (2, &f.citizen_pseudonym),
            (0, &f.officer),
            (1, &f.unit),
            (3, &f.procedure),
        ]
        .into_iter()
        .find(|(_, v)| !v.is_empty())
        .map(|(i, v)| Self::Value(i, prefix(v)))
        .unwrap_or(Self::Time(
            f.from_us.unwrap_or(i64::MIN),
            f.to_us.unwrap_or(i64::MAX),
        ))
    }

    fn admits(&self, k: &IndexKeys) -> bool {
        match self {
            Self::Value(i, p) => k.values[*i].as_ref() == Some(p),
            Self::Time(from, to) => (*from..*to).contains(&k.time_us),
        }
    }

    /// The section, the key and sequence its entries start from (after the cursor, when there
    /// is one), and whether an entry's key is still in range.
    fn section(&self, after: Option<Cursor>) -> (usize, [u8; 16], KeyRange) {
        let (s, key, seq, hi, exact) = match *self {
            Self::Value(i, p) => {
                let seq = after.map_or(0, |c| c.sequence.saturating_add(1));
                (VALUES + i, p, seq, p, true)
            }
            Self::Time(from, to) => {
                let (time, seq) = match after {
                    Some(c) if c.time_us >= from => (c.time_us, c.sequence.saturating_add(1)),
                    _ => (from, 0),
                };
                (TIME, time_key(time), seq, time_key(to), false)
            }
        };
        let mut lo = [0u8; 16];
        lo[..8].copy_from_slice(&key);
        lo[8..].copy_from_slice(&seq.to_be_bytes());
        (s, lo, KeyRange { hi, exact })
    }

    /// A pending record's entry in this selector's section.
    fn entry(&self, k: &IndexKeys) -> run::Entry {
        let key = match self {
            Self::Value(i, _) => k.values[*i].unwrap_or_default(),
            Self::Time(..) => time_key(k.time_us),
        };
        run::entry(key, k.sequence, k.offset)
    }
}

/// Where a selector's entries end: at another key (a value), or at the range's end (time).
#[derive(Clone, Copy)]
struct KeyRange {
    hi: [u8; 8],
    exact: bool,
}

impl KeyRange {
    fn contains(&self, e: &io::Result<run::Entry>) -> bool {
        let Ok(e) = e else { return true };
        if self.exact {
            e[..8] == self.hi
        } else {
            e[..8] < self.hi[..]
        }
    }
}

/// The keys of records acknowledged but not yet in a run, oldest first.
#[derive(Default)]
pub struct Pending {
    keys: Mutex<Vec<IndexKeys>>,
}

impl Pending {
    /// Adds the keys of just-written records; returns how many are pending now.
    pub fn push(&self, keys: impl IntoIterator<Item = IndexKeys>) -> usize {
        let mut pending = self.lock();
        pending.extend(keys);
        pending.len()
    }

    /// A copy of up to `n` of the oldest pending keys.
    pub fn oldest(&self, n: usize) -> Vec<IndexKeys> {
        let pending = self.lock();
        pending[..n.min(pending.len())].to_vec()
    }

    /// Forgets the oldest `n` keys (once they are in a run).
    pub fn forget(&self, n: usize) {
        let mut pending = self.lock();
        let n = n.min(pending.len());
        pending.drain(..n);
    }

    /// The file offset of a pending record.
    pub fn offset(&self, seq: u64) -> Option<u64> {
        let pending = self.lock();
        let i = pending.partition_point(|k| k.sequence < seq);
        pending
            .get(i)
            .filter(|k| k.sequence == seq)
            .map(|k| k.offset)
    }

    fn lock(&self) -> MutexGuard<'_, Vec<IndexKeys>> {
        // A panic while holding the lock leaves a Vec that is still whole.
        self.keys.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Runs merged at once: this many of one size (a power of four).
const FANOUT: usize = 4;

/// A run's size class: records rounded down to a power of four.
fn size_class(records: u64) -> u32 {
    records.max(1).ilog(FANOUT as u64)
}

/// The indexes, shared by the writer, the indexer and the queries.
#[derive(Clone)]
pub struct Index {
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    /// Oldest first; each begins where the one before ends.
    runs: RwLock<Vec<Arc<Run>>>,
    /// Held while the list of runs changes (adding, merging, clearing).
    changing: Mutex<()>,
    /// Each checkpoint's sequence and offset in the trail, in trail order.
    checkpoints: Mutex<Vec<(u64, u64)>>,
    /// Locked while this process uses the directory.
    _lock: std::fs::File,
}

impl Index {
    /// Opens the indexes in `dir` (created if missing). Every run is checked; what a crash
    /// left half-written, and every run after a gap, is removed (the start indexes those
    /// records again from the trail). A lock still held by a process (or an instance in this
    /// process) that is shutting down is waited for, up to two seconds.
    pub fn open(dir: &Path) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let lock = std::fs::File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("LOCK"))?;
        let mut attempts = 0;
        loop {
            match lock.try_lock() {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) if attempts < 40 => {
                    attempts += 1;
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(io::Error::other(format!(
                        "{} is in use by another gateway process; stop it or give this one \
                         its own audit directory",
                        dir.display()
                    )));
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(e),
            }
        }
        let mut runs = Vec::new();
        for item in std::fs::read_dir(dir)? {
            let path = item?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.starts_with("tmp-") {
                std::fs::remove_file(&path)?;
            } else if name.starts_with("run-") && name.ends_with(".idx") {
                match Run::open(&path) {
                    Ok(run) => runs.push(run),
                    Err(e) => {
                        tracing::warn!(run = %path.display(), error = %e, "audit index run unreadable: removed, its records are indexed again");
                        std::fs::remove_file(&path)?;
                    }
                }
            }
        }
        // Oldest first; of two runs that begin together, the merged (longer) one first.
        runs.sort_by_key(|r| (r.summary.first, std::cmp::Reverse(r.summary.last)));
        let mut kept: Vec<Arc<Run>> = Vec::new();
        for run in runs {
            let next = kept.last().map_or(0, |k| k.summary.last + 1);
            if run.summary.last < next {
                // An input of a merge whose result is in place.
                run.remove();
            } else if run.summary.first == next {
                kept.push(Arc::new(run));
            } else {
                tracing::warn!(
                    first = run.summary.first,
                    expected = next,
                    "audit index run does not follow the one before: removed, its records are indexed again"
                );
                run.remove();
            }
        }
        Ok(Self {
            inner: Arc::new(Inner {
                dir: dir.to_owned(),
                runs: RwLock::new(kept),
                changing: Mutex::new(()),
                checkpoints: Mutex::new(Vec::new()),
                _lock: lock,
            }),
        })
    }

    fn runs(&self) -> Vec<Arc<Run>> {
        self.inner
            .runs
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set_runs(&self, runs: Vec<Arc<Run>>) {
        *self
            .inner
            .runs
            .write()
            .unwrap_or_else(PoisonError::into_inner) = runs;
    }

    fn changing(&self) -> MutexGuard<'_, ()> {
        self.inner
            .changing
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn checkpoint_list(&self) -> MutexGuard<'_, Vec<(u64, u64)>> {
        self.inner
            .checkpoints
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Forgets everything (before a rebuild).
    pub fn clear(&self) {
        let _changing = self.changing();
        for run in self.runs() {
            run.remove();
        }
        self.set_runs(Vec::new());
        self.checkpoint_list().clear();
    }

    /// The last record the runs cover: its sequence and hash.
    pub fn head(&self) -> Option<(u64, Hash)> {
        self.runs()
            .last()
            .map(|r| (r.summary.last, r.summary.last_hash))
    }

    /// Indexes records that follow the last one covered, in sequence order and without gaps,
    /// as one new run; then merges runs where four of a size have gathered.
    pub fn add_keys(&self, keys: &[IndexKeys]) -> io::Result<()> {
        let (Some(first), Some(last)) = (keys.first(), keys.last()) else {
            return Ok(());
        };
        let _changing = self.changing();
        let next = self.head().map_or(0, |(seq, _)| seq + 1);
        let contiguous = keys.windows(2).all(|w| w[1].sequence == w[0].sequence + 1);
        if first.sequence != next || !contiguous {
            return Err(io::Error::other(format!(
                "index keys from sequence {} do not follow the indexes' last ({next} expected)",
                first.sequence
            )));
        }
        let mut sections: [Vec<run::Entry>; SECTIONS] = Default::default();
        for k in keys {
            sections[OFFSETS].push(run::entry(k.sequence.to_be_bytes(), k.sequence, k.offset));
            for (i, v) in k.values.iter().enumerate() {
                if let Some(p) = v {
                    sections[VALUES + i].push(run::entry(*p, k.sequence, k.offset));
                }
            }
            sections[TIME].push(run::entry(time_key(k.time_us), k.sequence, k.offset));
        }
        let mut counts = [0; SECTIONS];
        for (c, s) in counts.iter_mut().zip(&mut sections) {
            s.sort_unstable();
            *c = s.len() as u64;
        }
        let summary = Summary {
            first: first.sequence,
            last: last.sequence,
            last_hash: last.hash,
            counts,
        };
        let run = Run::write(&self.inner.dir, summary, sections)?;
        let mut runs = self.runs();
        runs.push(Arc::new(run));
        self.set_runs(runs);
        self.merge()
    }

    /// While the newest runs include four of one size class, merges them into one.
    fn merge(&self) -> io::Result<()> {
        loop {
            let runs = self.runs();
            let Some(newest) = runs.last() else {
                return Ok(());
            };
            let class = size_class(newest.summary.records());
            let same = runs
                .iter()
                .rev()
                .take_while(|r| size_class(r.summary.records()) == class)
                .count();
            if same < FANOUT {
                return Ok(());
            }
            let at = runs.len() - same;
            let merged = Arc::new(Run::merge(&self.inner.dir, &runs[at..])?);
            let mut now = runs[..at].to_vec();
            now.push(merged);
            self.set_runs(now);
            for old in &runs[at..] {
                old.remove();
            }
        }
    }

    /// How many entries each section holds across the runs.
    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        for run in self.runs() {
            for (c, n) in c.0.iter_mut().zip(run.summary.counts) {
                *c += n;
            }
        }
        c
    }

    /// Notes where a checkpoint is in the trail.
    pub fn add_checkpoint(&self, seq: u64, offset: u64) {
        self.checkpoint_list().push((seq, offset));
    }

    /// The trail offsets of the checkpoints at or after a sequence, oldest first.
    pub fn checkpoints_from(&self, seq: u64) -> Vec<u64> {
        let list = self.checkpoint_list();
        let i = list.partition_point(|(s, _)| *s < seq);
        list[i..].iter().map(|(_, offset)| *offset).collect()
    }

    /// The file offset of a record the runs cover.
    pub fn offset(&self, seq: u64) -> io::Result<Option<u64>> {
        let runs = self.runs();
        let i = runs.partition_point(|r| r.summary.last < seq);
        match runs.get(i) {
            Some(run) if run.summary.first <= seq => run.offset(seq),
            _ => Ok(None),
        }
    }

    /// Candidate records for a filter, oldest first, from the most selective index: each
    /// sequence with its file offset. The keys still pending come after what the runs hold.
    pub fn candidates(
        &self,
        f: &Filter,
        pending: &Pending,
    ) -> impl Iterator<Item = io::Result<(u64, u64)>> + use<> {
        let selector = Selector::of(f);
        let (section, lo, range) = selector.section(f.after);
        // Read the pending keys first: a key leaves them only once its run is in place, so
        // each record is in a run (before the first pending sequence) or among these.
        let (tail, first_pending) = {
            let keys = pending.lock();
            let first = keys.first().map_or(u64::MAX, |k| k.sequence);
            let mut tail: Vec<run::Entry> = keys
                .iter()
                .filter(|k| selector.admits(k))
                .map(|k| selector.entry(k))
                .filter(|e| e[..16] >= lo[..])
                .collect();
            // Runs keep their entries sorted by key and sequence; so do these.
            tail.sort_unstable();
            (tail, first)
        };
        let walks = self.runs().into_iter().map(move |run| {
            let start = match run.lower_bound(section, &lo) {
                Ok(i) => i,
                Err(e) => return Box::new(std::iter::once(Err(e))) as Walk,
            };
            Box::new(
                run.walk(section, start)
                    .take_while(move |e| range.contains(e))
                    .filter(move |e| e.as_ref().map_or(true, |e| seq_of(e) < first_pending)),
            ) as Walk
        });
        let tail = Box::new(tail.into_iter().map(Ok)) as Walk;
        let walks = walks.chain(std::iter::once(tail));
        // A value section is in sequence order across runs, oldest run first: one walk after
        // the other. The time section is in time order within each run only: the walks are
        // merged.
        let entries: Walk = match selector {
            Selector::Value(..) => Box::new(walks.flatten()),
            Selector::Time(..) => Box::new(Merge::new(walks.collect())),
        };
        entries.map(|e| e.map(|e| run::seq_offset(&e)))
    }
}

type Walk = Box<dyn Iterator<Item = io::Result<run::Entry>> + Send>;

fn seq_of(e: &run::Entry) -> u64 {
    run::seq_offset(e).0
}

/// Sorted walks merged into one sorted walk (by key, then sequence); an error comes first.
struct Merge {
    walks: Vec<std::iter::Peekable<Walk>>,
}

impl Merge {
    fn new(walks: Vec<Walk>) -> Self {
        Self {
            walks: walks.into_iter().map(Iterator::peekable).collect(),
        }
    }
}

impl Iterator for Merge {
    type Item = io::Result<run::Entry>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut best: Option<(usize, [u8; 16])> = None;
        for i in 0..self.walks.len() {
            match self.walks[i].peek() {
                None => {}
                Some(Err(_)) => return self.walks[i].next(),
                Some(Ok(e)) => {
                    let key: [u8; 16] = e[..16].try_into().unwrap_or_default();
                    if best.is_none_or(|(_, b)| key < b) {
                        best = Some((i, key));
                    }
                }
            }
        }
        self.walks[best?.0].next()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(seqs: std::ops::Range<u64>) -> Vec<IndexKeys> {
        seqs.map(|seq| IndexKeys {
            sequence: seq,
            offset: seq * 1000,
            hash: [seq as u8; 32],
            time_us: 1_000_000 + seq as i64,
            values: [
                Some(prefix(&format!("officer {}", seq % 7))),
                Some(prefix("unit")),
                (seq % 2 == 0).then(|| prefix(&format!("citizen {}", seq % 10))),
                None,
            ],
        })
        .collect()
    }

    fn found(index: &Index, f: &Filter, pending: &Pending) -> Vec<u64> {
        index.candidates(f, pending).map(|c| c.unwrap().0).collect()
    }

    fn run_files(dir: &Path) -> usize {
        std::fs::read_dir(dir)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|x| x == "idx")
            })
            .count()
    }

    #[test]
    fn runs_of_one_size_are_merged_and_every_record_is_still_found() {
        let dir = tempfile::tempdir().unwrap();
        let index = Index::open(dir.path()).unwrap();
        let all = keys(0..256);
        for batch in all.chunks(4) {
            index.add_keys(batch).unwrap();
            // Never more than three runs of a size class, and few classes.
            assert!(index.runs().len() <= 3 * 5, "{} runs", index.runs().len());
        }
        // 64 runs of 4 → 16 of 16 → 4 of 64 → 1 of 256.
        assert_eq!(index.runs().len(), 1);
        assert_eq!(run_files(dir.path()), 1, "merged runs' files are removed");
        assert_eq!(index.head(), Some((255, [255; 32])));
        let pending = Pending::default();
        let officer = Filter {
            officer: "officer 3".into(),
            ..Default::default()
        };
        let expected: Vec<u64> = (0..256).filter(|s| s % 7 == 3).collect();
        assert_eq!(found(&index, &officer, &pending), expected);
        let citizen = Filter {
            citizen_pseudonym: "citizen 4".into(),
            ..Default::default()
        };
        let expected: Vec<u64> = (0..256).filter(|s| s % 10 == 4).collect();
        assert_eq!(found(&index, &citizen, &pending), expected);
        let time = Filter {
            from_us: Some(1_000_010),
            to_us: Some(1_000_013),
            ..Default::default()
        };
        assert_eq!(found(&index, &time, &pending), [10, 11, 12]);
        for seq in [0, 77, 255] {
            assert_eq!(index.offset(seq).unwrap(), Some(seq * 1000));
        }
        assert_eq!(index.offset(256).unwrap(), None);
        assert_eq!(index.counts(), Counts([256, 256, 256, 128, 0, 256]));
    }

    #[test]
    fn pending_keys_are_found_after_the_runs_and_only_once() {
        let dir = tempfile::tempdir().unwrap();
        let index = Index::open(dir.path()).unwrap();
        let all = keys(0..40);
        index.add_keys(&all[..30]).unwrap();
        let pending = Pending::default();
        // Keys 25.. pending as well: they were moved into a run while a query read them.
        pending.push(all[25..].iter().cloned());
        let unit = Filter {
            unit: "unit".into(),
            ..Default::default()
        };
        assert_eq!(found(&index, &unit, &pending), (0..40).collect::<Vec<_>>());
        assert_eq!(pending.offset(33), Some(33_000));
        assert_eq!(pending.offset(3), None);
    }

    /// Every page of a query, `size` candidates at a time, each continuing after the last.
    fn paged(index: &Index, f: &Filter, pending: &Pending, size: usize) -> Vec<u64> {
        let mut all = Vec::new();
        let mut f = f.clone();
        loop {
            let page: Vec<(u64, u64)> = index
                .candidates(&f, pending)
                .take(size)
                .map(|c| c.unwrap())
                .collect();
            let Some(&(seq, _)) = page.last() else {
                return all;
            };
            all.extend(page.iter().map(|c| c.0));
            // The record's time, as the cursor of a real page carries it.
            f.after = Some(Cursor {
                time_us: time_of(seq),
                sequence: seq,
            });
        }
    }

    /// Arrival times that disagree with the write order, as under load (a slow call is written
    /// after a quick one that arrived later): every third record arrived 5 µs before the two
    /// written ahead of it.
    fn time_of(seq: u64) -> i64 {
        1_000_000 + seq as i64 * 2 - if seq % 3 == 2 { 5 } else { 0 }
    }

    #[test]
    fn pages_continue_after_their_last_record_without_loss_or_repeat() {
        let dir = tempfile::tempdir().unwrap();
        let index = Index::open(dir.path()).unwrap();
        let mut all = keys(0..100);
        for k in &mut all {
            k.time_us = time_of(k.sequence);
        }
        // Several runs, and the newest keys pending.
        for batch in all[..80].chunks(16) {
            index.add_keys(batch).unwrap();
        }
        let pending = Pending::default();
        pending.push(all[70..].iter().cloned());
        let officer = Filter {
            officer: "officer 3".into(),
            ..Default::default()
        };
        let whole = found(&index, &officer, &pending);
        assert_eq!(whole, (0..100).filter(|s| s % 7 == 3).collect::<Vec<_>>());
        for size in [1, 2, 5] {
            assert_eq!(
                paged(&index, &officer, &pending, size),
                whole,
                "page of {size}"
            );
        }
        // The time index alone: (time, sequence) order across runs and pending keys.
        let time = Filter {
            from_us: Some(time_of(10)),
            to_us: Some(time_of(90)),
            ..Default::default()
        };
        let whole = found(&index, &time, &pending);
        let mut expected: Vec<u64> = (0..100)
            .filter(|s| (time_of(10)..time_of(90)).contains(&time_of(*s)))
            .collect();
        expected.sort_by_key(|s| (time_of(*s), *s));
        assert_eq!(whole, expected);
        for size in [1, 3, 7] {
            assert_eq!(
                paged(&index, &time, &pending, size),
                whole,
                "page of {size}"
            );
        }
    }

    #[test]
    fn keys_that_do_not_follow_the_last_indexed_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let index = Index::open(dir.path()).unwrap();
        assert!(index.add_keys(&keys(1..5)).is_err(), "must start at 0");
        index.add_keys(&keys(0..5)).unwrap();
        assert!(index.add_keys(&keys(6..9)).is_err(), "a gap");
        let mut out_of_order = keys(5..9);
        out_of_order.swap(1, 2);
        assert!(index.add_keys(&out_of_order).is_err());
        assert_eq!(index.head().map(|h| h.0), Some(4));
        // Reopened, the same.
        drop(index);
        let index = Index::open(dir.path()).unwrap();
        assert_eq!(index.head().map(|h| h.0), Some(4));
        index.add_keys(&keys(5..9)).unwrap();
    }
}
