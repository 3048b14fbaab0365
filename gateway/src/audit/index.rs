//! The trail's indexes (sled): by officer, unit, citizen pseudonym, procedure and time, plus
//! sequence → file offset and the checkpoints. Derived data: the trail is the truth, and the
//! indexes are rebuilt from it when missing, stale or of an older format.
//!
//! The indexes are written in groups, one group per batch of records moved into sled:
//! - a value index (officer, unit, citizen, procedure) holds one entry per value and group: the
//!   key is the first 8 bytes of the value's SHA-256 and the group's first sequence with that
//!   value (big-endian, so entries are in sequence order within a value); the value is the list
//!   of (sequence, file offset) pairs, 16 bytes each, so a query reads records without a second
//!   lookup. Two values that share a key prefix only cost a query a record it reads and filters
//!   out;
//! - `offsets` holds one entry per run of consecutive sequences: first sequence → their offsets;
//! - the time index holds one entry per record: (time, sequence) → offset.
//!
//! The newest records' keys wait in memory ([`Pending`]) and reach sled in large batches, one
//! batch per tree; a query reads sled for what was flushed and the pending keys for the rest, so
//! every acknowledged record is found.

use super::record::{Checkpoint, Entry, Hash, Record};
use sha2::{Digest, Sha256};
use std::path::Path;

/// The on-disk format of the indexes; indexes of another format are rebuilt at start.
const FORMAT: &[u8] = b"3";

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
    }
}

/// Entries per index (offsets, officer, unit, citizen, procedure, time, checkpoints): what the
/// indexes hold, or what the trail says they should hold.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts(pub [u64; 7]);

impl Counts {
    /// Counts what indexing `r` adds.
    pub fn record(&mut self, r: &Record) {
        let e = &r.entry;
        self.0[0] += 1;
        self.0[1] += u64::from(!e.officer_code.is_empty());
        self.0[2] += u64::from(!e.unit_code.is_empty());
        self.0[3] += u64::from(!e.citizen_pseudonym.is_empty());
        self.0[4] += u64::from(!e.procedure_code.is_empty());
        self.0[5] += 1;
    }

    pub fn checkpoint(&mut self) {
        self.0[6] += 1;
    }
}

/// The indexes.
#[derive(Clone)]
pub struct Index {
    db: sled::Db,
    offsets: sled::Tree,
    by_officer: sled::Tree,
    by_unit: sled::Tree,
    by_citizen: sled::Tree,
    by_procedure: sled::Tree,
    by_time: sled::Tree,
    checkpoints: sled::Tree,
    meta: sled::Tree,
}

/// The 8-byte prefix standing for a value in a value index.
fn prefix(value: &str) -> [u8; 8] {
    let digest = Sha256::digest(value.as_bytes());
    let mut p = [0u8; 8];
    p.copy_from_slice(&digest[..8]);
    p
}

fn key(prefix: &[u8; 8], seq: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(prefix);
    k[8..].copy_from_slice(&seq.to_be_bytes());
    k
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

/// Which index answers a filter: a value index (officer 0, unit 1, citizen 2, procedure 3) with
/// the value's prefix, or the time index with a range.
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
}

/// The keys of records acknowledged but not yet in sled, oldest first.
#[derive(Default)]
pub struct Pending {
    keys: std::sync::Mutex<Vec<IndexKeys>>,
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

    /// Forgets the oldest `n` keys (once they are in sled).
    pub fn forget(&self, n: usize) {
        let mut pending = self.lock();
        let n = n.min(pending.len());
        pending.drain(..n);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<IndexKeys>> {
        // A panic while holding the lock leaves a Vec that is still whole.
        self.keys.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn time_key(time_us: i64, seq: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&((time_us as u64) ^ (1 << 63)).to_be_bytes());
    k[8..].copy_from_slice(&seq.to_be_bytes());
    k
}

/// The big-endian number in the last 8 bytes: a key's sequence, or a value's offset.
fn seq_of(k: &[u8]) -> Option<u64> {
    let tail: [u8; 8] = k.get(k.len().checked_sub(8)?..)?.try_into().ok()?;
    Some(u64::from_be_bytes(tail))
}

impl Index {
    /// Opens the indexes. A lock still held by a process (or an instance in this process) that
    /// is shutting down is waited for, up to two seconds.
    pub fn open(path: &Path) -> sled::Result<Self> {
        // The page cache bounds most of the gateway's memory; 32 MiB keeps queries by citizen
        // in milliseconds on a million-record trail (BENCHMARKS.md).
        let config = sled::Config::new()
            .path(path)
            .cache_capacity(32 * 1024 * 1024);
        let mut attempts = 0;
        let db = loop {
            match config.open() {
                Ok(db) => break db,
                Err(e) if attempts < 40 && e.to_string().contains("lock") => {
                    attempts += 1;
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                Err(e) => return Err(e),
            }
        };
        let meta = db.open_tree("meta")?;
        let offsets = db.open_tree("offsets")?;
        if offsets.is_empty() && meta.get("format")?.is_none() {
            meta.insert("format", FORMAT)?;
        }
        Ok(Self {
            offsets,
            by_officer: db.open_tree("by_officer")?,
            by_unit: db.open_tree("by_unit")?,
            by_citizen: db.open_tree("by_citizen")?,
            by_procedure: db.open_tree("by_procedure")?,
            by_time: db.open_tree("by_time")?,
            checkpoints: db.open_tree("checkpoints")?,
            meta,
            db,
        })
    }

    /// Whether the indexes are of this build's format.
    pub fn current_format(&self) -> sled::Result<bool> {
        Ok(self
            .meta
            .get("format")?
            .is_some_and(|f| f.as_ref() == FORMAT))
    }

    /// Forgets everything (before a rebuild).
    pub fn clear(&self) -> sled::Result<()> {
        for t in [
            &self.offsets,
            &self.by_officer,
            &self.by_unit,
            &self.by_citizen,
            &self.by_procedure,
            &self.by_time,
            &self.checkpoints,
            &self.meta,
        ] {
            t.clear()?;
        }
        self.meta.insert("format", FORMAT)?;
        Ok(())
    }

    /// Indexes records (in sequence order) with one batch per tree: one entry per value in
    /// each value index, one per run of consecutive sequences in `offsets`, one per record in
    /// the time index.
    pub fn add_keys(&self, records: &[IndexKeys]) -> sled::Result<()> {
        let mut offsets = sled::Batch::default();
        for run in records.chunk_by(|a, b| b.sequence == a.sequence + 1) {
            let packed: Vec<u8> = run.iter().flat_map(|k| k.offset.to_be_bytes()).collect();
            offsets.insert(&run[0].sequence.to_be_bytes(), packed);
        }
        self.offsets.apply_batch(offsets)?;
        for (i, tree) in self.value_trees().into_iter().enumerate() {
            let mut groups: std::collections::HashMap<[u8; 8], Vec<u8>> = Default::default();
            let mut order = Vec::new();
            for k in records {
                if let Some(p) = k.values[i] {
                    let group = groups.entry(p).or_insert_with(|| {
                        order.push((p, k.sequence));
                        Vec::new()
                    });
                    group.extend_from_slice(&k.sequence.to_be_bytes());
                    group.extend_from_slice(&k.offset.to_be_bytes());
                }
            }
            let mut batch = sled::Batch::default();
            for (p, first) in order {
                if let Some(packed) = groups.remove(&p) {
                    batch.insert(&key(&p, first), packed);
                }
            }
            tree.apply_batch(batch)?;
        }
        let mut by_time = sled::Batch::default();
        for k in records {
            by_time.insert(&time_key(k.time_us, k.sequence), &k.offset.to_be_bytes());
        }
        self.by_time.apply_batch(by_time)?;
        Ok(())
    }

    /// Officer, unit, citizen, procedure: in the order of [`IndexKeys::values`].
    fn value_trees(&self) -> [&sled::Tree; 4] {
        [
            &self.by_officer,
            &self.by_unit,
            &self.by_citizen,
            &self.by_procedure,
        ]
    }

    /// How many entries each index holds: offsets, officer, unit, citizen, procedure, time,
    /// checkpoints. (Each count scans its tree.)
    pub fn counts(&self) -> Counts {
        let n = |t: &sled::Tree| t.iter().keys().count() as u64;
        // Grouped trees: what their entries list.
        let listed = |t: &sled::Tree, width: u64| {
            t.iter()
                .values()
                .filter_map(|v| v.ok())
                .map(|v| v.len() as u64 / width)
                .sum::<u64>()
        };
        Counts([
            listed(&self.offsets, 8),
            listed(&self.by_officer, 16),
            listed(&self.by_unit, 16),
            listed(&self.by_citizen, 16),
            listed(&self.by_procedure, 16),
            n(&self.by_time),
            n(&self.checkpoints),
        ])
    }

    pub fn add_checkpoint(&self, c: &Checkpoint) -> sled::Result<()> {
        self.checkpoints
            .insert(c.sequence.to_be_bytes(), c.to_bytes())?;
        Ok(())
    }

    /// Records that the indexes cover the trail up to `seq` with `hash`.
    pub fn set_head(&self, seq: u64, hash: &Hash) -> sled::Result<()> {
        let mut v = seq.to_be_bytes().to_vec();
        v.extend_from_slice(hash);
        self.meta.insert("head", v)?;
        Ok(())
    }

    /// What the indexes cover.
    pub fn head(&self) -> sled::Result<Option<(u64, Hash)>> {
        Ok(self.meta.get("head")?.and_then(|v| {
            let seq = u64::from_be_bytes(v.get(..8)?.try_into().ok()?);
            let hash: Hash = v.get(8..40)?.try_into().ok()?;
            Some((seq, hash))
        }))
    }

    pub fn flush(&self) -> sled::Result<()> {
        self.db.flush().map(|_| ())
    }

    /// The file offset of a record.
    pub fn offset(&self, seq: u64) -> sled::Result<Option<u64>> {
        let Some((first, packed)) = self
            .offsets
            .range(..=seq.to_be_bytes())
            .next_back()
            .transpose()?
        else {
            return Ok(None);
        };
        let Some(first) = seq_of(&first) else {
            return Ok(None);
        };
        let at = usize::try_from(seq - first)
            .unwrap_or(usize::MAX)
            .saturating_mul(8);
        Ok(packed
            .get(at..at.saturating_add(8))
            .and_then(|b| Some(u64::from_be_bytes(b.try_into().ok()?))))
    }

    /// Candidate records for a filter, oldest first, from the most selective index: each
    /// sequence with its file offset. The keys still pending come after what sled holds.
    pub fn candidates<'a>(
        &'a self,
        f: &Filter,
        pending: &Pending,
    ) -> Box<dyn Iterator<Item = (u64, u64)> + 'a> {
        let selector = Selector::of(f);
        // Read the pending keys first: a key leaves them only once it is in sled, so each
        // record is in sled (before the first pending sequence) or among these.
        let (tail, first_pending) = {
            let keys = pending.lock();
            let first = keys.first().map_or(u64::MAX, |k| k.sequence);
            let tail: Vec<(u64, u64)> = keys
                .iter()
                .filter(|k| selector.admits(k))
                .map(|k| (k.sequence, k.offset))
                .collect();
            (tail, first)
        };
        let indexed: Box<dyn Iterator<Item = (u64, u64)>> = match selector {
            Selector::Value(i, p) => Box::new(
                self.value_trees()[i]
                    .scan_prefix(p)
                    .values()
                    .filter_map(|v| v.ok())
                    .flat_map(|packed| {
                        packed
                            .chunks_exact(16)
                            .filter_map(|pair| {
                                let (seq, offset) = pair.split_at(8);
                                Some((seq_of(seq)?, seq_of(offset)?))
                            })
                            .collect::<Vec<_>>()
                    }),
            ),
            Selector::Time(from, to) => Box::new(
                self.by_time
                    .range(time_key(from, 0)..time_key(to, 0))
                    .filter_map(|kv| {
                        let (k, v) = kv.ok()?;
                        Some((seq_of(&k)?, seq_of(&v)?))
                    }),
            ),
        };
        Box::new(
            indexed
                .filter(move |(seq, _)| *seq < first_pending)
                .chain(tail),
        )
    }

    /// The checkpoints at or after a sequence, oldest first.
    pub fn checkpoints_from(&self, seq: u64) -> Vec<Checkpoint> {
        self.checkpoints
            .range(seq.to_be_bytes()..)
            .values()
            .filter_map(|v| v.ok().and_then(|v| Checkpoint::from_bytes(&v)))
            .collect()
    }
}
