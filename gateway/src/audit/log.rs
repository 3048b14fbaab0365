//! The trail on disk and its writer. Opening checks the whole chain (a torn last frame is cut
//! with a warning; anything else inconsistent is an error naming the sequence and byte), brings
//! the indexes up to date, and starts the group-commit writer: appends are batched, written and
//! fsynced together, and each caller gets its receipt only once its record is on disk. A failed
//! write fails that batch and every append after it (fail closed). While failed, the writer
//! checks every second whether the cause is gone (space freed, the file system writable again):
//! it cuts whatever the failed write left past the last good record, proves with a probe file
//! that it can write and sync, and serves again. A trail file removed or replaced under the
//! running gateway is never written again: that takes a restart, which re-checks the trail.
//! Checkpoints are signed every N records or T seconds, and at shutdown.

use super::frame::{self, FrameReader, Item, MAGIC};
use super::index::{Counts, Filter, Index, IndexKeys, Pending};
use super::record::{Checkpoint, Entry, GENESIS, Hash, Record};
use crate::metrics::AuditMetrics;
use ed25519_dalek::SigningKey;
use std::fs::{File, OpenOptions};
use std::io::{BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, OnceLock, mpsc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::oneshot;

/// Why the trail cannot be opened or written.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AuditError {
    #[error(
        "the audit trail {path} is inconsistent at sequence {sequence} (byte {offset}): {problem}; it was not modified — restore it from backup or move it aside to start a new chain"
    )]
    Inconsistent {
        path: PathBuf,
        sequence: u64,
        offset: u64,
        problem: String,
    },
    #[error(
        "audit trail I/O error on {path}: {problem}; check that audit.dir exists, is writable by the gateway's user and has free space"
    )]
    Io { path: PathBuf, problem: String },
    #[error("the audit trail cannot be written ({0}); nothing is served until it can")]
    Unwritable(String),
    #[error("the audit index failed: {0}")]
    Index(String),
}

/// Where a record landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub chain_id: Arc<str>,
    pub sequence: u64,
    pub hash: Hash,
}

/// How the trail is kept.
#[derive(Clone)]
pub struct Settings {
    pub dir: PathBuf,
    pub chain_id: String,
    pub signing_key: SigningKey,
    pub checkpoint_every: u64,
    pub checkpoint_interval: Duration,
    pub max_batch: usize,
}

enum Msg {
    Append(Box<Entry>, oneshot::Sender<Result<Receipt, AuditError>>),
    Stop(oneshot::Sender<()>),
}

/// The audit trail: append, read, query.
#[derive(Clone)]
pub struct AuditLog {
    tx: mpsc::Sender<Msg>,
    path: PathBuf,
    index: Index,
    /// True while the trail cannot be written.
    failed: tokio::sync::watch::Receiver<bool>,
    /// The sequence after the last record acknowledged to its caller.
    acknowledged: Arc<AtomicU64>,
    /// Index keys of the newest records, not yet in a run.
    pending: Arc<Pending>,
    /// Where the writer reports its fsyncs and checkpoints, once set.
    metrics: Arc<OnceLock<AuditMetrics>>,
}

/// Microseconds since the epoch, now.
pub fn timestamp_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// The trail file of a chain in a directory.
pub fn trail_path(dir: &Path, chain_id: &str) -> PathBuf {
    dir.join(format!("{chain_id}.trail"))
}

struct Head {
    next_seq: u64,
    last_hash: Hash,
    len: u64,
    since_checkpoint: u64,
}

/// Reads the whole trail, checking the chain; cuts a torn tail. Calls `each` for every frame.
fn recover(
    path: &Path,
    file: &File,
    chain_id: &str,
    mut each: impl FnMut(u64, &Item),
) -> Result<Head, AuditError> {
    let io = |e: std::io::Error| AuditError::Io {
        path: path.to_owned(),
        problem: e.to_string(),
    };
    let len = file.metadata().map_err(io)?.len();
    let mut from_start = file;
    from_start.seek(SeekFrom::Start(0)).map_err(io)?;
    let mut reader =
        FrameReader::new(BufReader::with_capacity(1 << 20, from_start), len).map_err(io)?;
    let mut head = Head {
        next_seq: 0,
        last_hash: GENESIS,
        len: if len == 0 { 0 } else { MAGIC.len() as u64 },
        since_checkpoint: 0,
    };
    let inconsistent = |sequence: u64, offset: u64, problem: String| AuditError::Inconsistent {
        path: path.to_owned(),
        sequence,
        offset,
        problem,
    };
    let mut torn: Option<u64> = None;
    for item in &mut reader {
        match item {
            Err(e) if e.at_end => {
                torn = Some(e.offset);
                tracing::warn!(offset = e.offset, problem = %e.problem, trail = %path.display(), "cutting a torn last record from the audit trail");
                break;
            }
            Err(e) => return Err(inconsistent(head.next_seq, e.offset, e.problem)),
            Ok((offset, item)) => {
                match &item {
                    Item::Record(r) => {
                        if r.chain_id != chain_id {
                            return Err(inconsistent(
                                r.sequence,
                                offset,
                                format!(
                                    "the record belongs to chain {:?}, this gateway is {chain_id:?}",
                                    r.chain_id
                                ),
                            ));
                        }
                        if r.sequence != head.next_seq {
                            return Err(inconsistent(
                                head.next_seq,
                                offset,
                                format!(
                                    "expected sequence {}, found {}",
                                    head.next_seq, r.sequence
                                ),
                            ));
                        }
                        if r.prev_hash != head.last_hash || r.recompute() != r.hash {
                            return Err(inconsistent(
                                r.sequence,
                                offset,
                                "the hash chain does not hold".into(),
                            ));
                        }
                        head.next_seq += 1;
                        head.last_hash = r.hash;
                        head.since_checkpoint += 1;
                    }
                    Item::Checkpoint(_) => head.since_checkpoint = 0,
                }
                each(offset, &item);
            }
        }
    }
    let good = reader.offset();
    if let Some(offset) = torn {
        file.set_len(offset).map_err(io)?;
        file.sync_all().map_err(io)?;
        head.len = offset;
    } else {
        head.len = good.max(head.len);
    }
    Ok(head)
}

impl AuditLog {
    /// Opens (or starts) the chain's trail in `settings.dir`, checks it, brings the indexes up
    /// to date and starts the writer.
    pub fn open(settings: Settings) -> Result<Self, AuditError> {
        let path = trail_path(&settings.dir, &settings.chain_id);
        let io = |e: std::io::Error| AuditError::Io {
            path: path.clone(),
            problem: e.to_string(),
        };
        std::fs::create_dir_all(&settings.dir).map_err(io)?;
        let existed = path.exists();
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(io)?;
        if !existed {
            // The new file's directory entry is durable too, not only its contents.
            File::open(&settings.dir)
                .and_then(|d| d.sync_all())
                .map_err(io)?;
        }
        let ierr = |e: std::io::Error| AuditError::Index(e.to_string());
        let older = settings.dir.join("index.sled");
        if older.exists() {
            // Indexes of earlier builds: derived, so replaced.
            tracing::warn!(path = %older.display(), "removing audit indexes of an older format; they are rebuilt from the trail");
            std::fs::remove_dir_all(&older).map_err(ierr)?;
        }
        let index = Index::open(&settings.dir.join("index")).map_err(ierr)?;
        // The indexes are derived: reuse them only if the record they say they end at is in
        // the trail with the same hash; otherwise start them again.
        let indexed = match index.head() {
            Some((seq, hash)) => {
                let agrees = index.offset(seq).map_err(ierr)?.is_some_and(|offset| {
                    matches!(frame::read_at(&file, offset), Ok(Item::Record(r)) if r.sequence == seq && r.hash == hash)
                });
                if !agrees {
                    tracing::warn!("audit indexes disagree with the trail; rebuilding them");
                    index.clear();
                }
                agrees.then_some(seq)
            }
            None => None,
        };
        // One pass: check the chain and index what the indexes do not cover yet, counting what
        // every index should hold.
        let mut failure: Option<std::io::Error> = None;
        let mut added = 0u64;
        let mut expected = Counts::default();
        let mut keys = Vec::new();
        let head = recover(
            &path,
            &file,
            &settings.chain_id,
            |offset, item| match item {
                Item::Record(r) => {
                    expected.record(r);
                    if indexed.is_none_or(|s| r.sequence > s) {
                        added += 1;
                        if let Err(e) = index_buffered(&index, &mut keys, r, offset) {
                            failure.get_or_insert(e);
                        }
                    }
                }
                Item::Checkpoint(c) => index.add_checkpoint(c.sequence, offset),
            },
        )?;
        if let Some(e) = failure {
            return Err(ierr(e));
        }
        index.add_keys(&keys).map_err(ierr)?;
        if added > 0 {
            tracing::info!(records = added, "indexed the audit trail");
        }
        // Runs are checked whole when opened; the counts catch what is left (runs of a trail
        // that was replaced by one of the same head).
        let held = index.counts();
        if held != expected {
            tracing::warn!(
                ?held,
                ?expected,
                "audit indexes disagree with the trail's counts; rebuilding them from the trail"
            );
            index.clear();
            (&file).seek(SeekFrom::Start(0)).map_err(io)?;
            let mut reader =
                FrameReader::new(BufReader::with_capacity(1 << 20, &file), head.len).map_err(io)?;
            let mut keys = Vec::new();
            for item in &mut reader {
                match item {
                    Ok((offset, Item::Record(r))) => {
                        index_buffered(&index, &mut keys, &r, offset).map_err(ierr)?
                    }
                    Ok((offset, Item::Checkpoint(c))) => index.add_checkpoint(c.sequence, offset),
                    Err(e) => {
                        return Err(AuditError::Io {
                            path: path.clone(),
                            problem: format!(
                                "rereading for the index at byte {}: {}",
                                e.offset, e.problem
                            ),
                        });
                    }
                }
            }
            index.add_keys(&keys).map_err(ierr)?;
        }

        let (tx, rx) = mpsc::channel();
        let (failed_tx, failed) = tokio::sync::watch::channel(false);
        let acknowledged = Arc::new(AtomicU64::new(head.next_seq));
        let chain_id: Arc<str> = settings.chain_id.as_str().into();
        let identity = file_identity(&file.metadata().map_err(io)?);
        let (index_tx, index_rx) = mpsc::channel();
        let pending = Arc::new(Pending::default());
        let indexer = Indexer {
            index: index.clone(),
            pending: pending.clone(),
            failing: false,
        };
        std::thread::Builder::new()
            .name("audit-indexer".into())
            .spawn(move || indexer.run(index_rx))
            .map_err(io)?;
        let metrics: Arc<OnceLock<AuditMetrics>> = Arc::default();
        let writer = Writer {
            acknowledged: acknowledged.clone(),
            identity,
            removed: false,
            file,
            path: path.clone(),
            chain_id,
            head,
            index: index.clone(),
            pending: pending.clone(),
            flush_asked: false,
            indexer: index_tx,
            failed: failed_tx,
            last_checkpoint_at: Instant::now(),
            settings,
            metrics: metrics.clone(),
        };
        std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(io)?;
        Ok(Self {
            tx,
            path,
            index,
            failed,
            acknowledged,
            pending,
            metrics,
        })
    }

    /// Reports the writer's fsyncs and checkpoints on `metrics` from now on (once).
    pub fn instrument(&self, metrics: AuditMetrics) {
        let _ = self.metrics.set(metrics);
    }

    /// Resolves once the trail is failed (`true`) or writable (`false`).
    pub async fn until_failed(&self, failed: bool) {
        let mut rx = self.failed.clone();
        let _ = rx.wait_for(|f| *f == failed).await;
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends a record, cut to the record bounds, and waits until it is on disk.
    pub async fn append(&self, entry: Entry) -> Result<Receipt, AuditError> {
        let entry = entry.bounded();
        if *self.failed.borrow() {
            return Err(AuditError::Unwritable("an earlier write failed".into()));
        }
        let (reply, wait) = oneshot::channel();
        self.tx
            .send(Msg::Append(Box::new(entry), reply))
            .map_err(|_| AuditError::Unwritable("the writer has stopped".into()))?;
        wait.await
            .map_err(|_| AuditError::Unwritable("the writer has stopped".into()))?
    }

    /// Appends a record without waiting for it (for calls that ended with nobody to answer:
    /// the writer still writes and fsyncs it in order). Usable from `Drop`.
    pub fn append_detached(&self, entry: Entry) {
        let (reply, _) = oneshot::channel();
        if self
            .tx
            .send(Msg::Append(Box::new(entry.bounded()), reply))
            .is_err()
        {
            tracing::error!("an audit record was lost: the writer has stopped");
        }
    }

    /// Signs a last checkpoint, syncs, and stops the writer.
    pub async fn close(&self) {
        let (reply, wait) = oneshot::channel();
        if self.tx.send(Msg::Stop(reply)).is_ok() {
            let _ = wait.await;
        }
    }

    /// The sequence after the last record acknowledged so far. A query bounded by it sees
    /// every record whose receipt was given before it began (a record's index keys are in
    /// place before its receipt), and nothing written after (its own record).
    pub fn acknowledged(&self) -> u64 {
        self.acknowledged.load(SeqCst)
    }

    /// Where record `seq` starts in the trail: from the keys not yet written as a run, else
    /// from the index; None when there is no such record yet.
    fn offset(&self, seq: u64) -> Result<Option<u64>, AuditError> {
        match self.pending.offset(seq) {
            Some(offset) => Ok(Some(offset)),
            None => self
                .index
                .offset(seq)
                .map_err(|e| AuditError::Index(e.to_string())),
        }
    }

    /// A record by sequence.
    pub fn record(&self, seq: u64) -> Result<Option<Record>, AuditError> {
        let Some(offset) = self.offset(seq)? else {
            return Ok(None);
        };
        let file = File::open(&self.path).map_err(|e| AuditError::Io {
            path: self.path.clone(),
            problem: e.to_string(),
        })?;
        match frame::read_at(&file, offset) {
            Ok(Item::Record(r)) => Ok(Some(r)),
            Ok(Item::Checkpoint(_)) => {
                Err(AuditError::Index("offset points at a checkpoint".into()))
            }
            Err(e) => Err(AuditError::Io {
                path: self.path.clone(),
                problem: e.to_string(),
            }),
        }
    }

    /// The records matching a filter, oldest first, at most `limit`, each handed to `each` as
    /// it is read (nothing is gathered in memory); `each` returns false to stop.
    pub fn query_each(
        &self,
        filter: &Filter,
        limit: usize,
        mut each: impl FnMut(Record) -> bool,
    ) -> Result<(), AuditError> {
        if let Some(seq) = filter.sequence {
            if limit > 0
                && let Some(r) = self.record(seq)?
                && filter.matches(&r)
            {
                each(r);
            }
            return Ok(());
        }
        let file = File::open(&self.path).map_err(|e| AuditError::Io {
            path: self.path.clone(),
            problem: e.to_string(),
        })?;
        let mut found = 0;
        for candidate in self.index.candidates(filter, &self.pending) {
            let (seq, offset) = candidate.map_err(|e| AuditError::Index(e.to_string()))?;
            if let Ok(Item::Record(r)) = frame::read_at(&file, offset)
                && r.sequence == seq
                && filter.matches(&r)
            {
                found += 1;
                if !each(r) || found >= limit {
                    break;
                }
            }
        }
        Ok(())
    }

    /// The records matching a filter, oldest first, at most `limit`.
    pub fn query(&self, filter: &Filter, limit: usize) -> Result<Vec<Record>, AuditError> {
        let mut out = Vec::new();
        self.query_each(filter, limit, |r| {
            out.push(r);
            true
        })?;
        Ok(out)
    }

    /// Signed checkpoints at or after a sequence, read from the trail.
    pub fn checkpoints(&self, from: u64) -> Result<Vec<Checkpoint>, AuditError> {
        let offsets = self.index.checkpoints_from(from);
        if offsets.is_empty() {
            return Ok(Vec::new());
        }
        let io = |e: std::io::Error| AuditError::Io {
            path: self.path.clone(),
            problem: e.to_string(),
        };
        let file = File::open(&self.path).map_err(io)?;
        offsets
            .into_iter()
            .map(|offset| match frame::read_at(&file, offset).map_err(io)? {
                Item::Checkpoint(c) => Ok(c),
                Item::Record(_) => Err(AuditError::Index(format!(
                    "the checkpoint index points at a record (byte {offset})"
                ))),
            })
            .collect()
    }

    /// The frames from record `seq` on (checkpoints included), as the trail is on disk now;
    /// None when no record `seq` has been written yet.
    pub fn frames_from(
        &self,
        seq: u64,
    ) -> Result<Option<FrameReader<BufReader<File>>>, AuditError> {
        let Some(offset) = self.offset(seq)? else {
            return Ok(None);
        };
        let io = |e: std::io::Error| AuditError::Io {
            path: self.path.clone(),
            problem: e.to_string(),
        };
        let mut file = File::open(&self.path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        file.seek(SeekFrom::Start(offset)).map_err(io)?;
        Ok(Some(FrameReader::at(
            BufReader::with_capacity(256 * 1024, file),
            offset,
            len,
        )))
    }

    /// Every frame of the trail as it is on disk now, for verification and export.
    pub fn frames(&self) -> Result<FrameReader<BufReader<File>>, AuditError> {
        let io = |e: std::io::Error| AuditError::Io {
            path: self.path.clone(),
            problem: e.to_string(),
        };
        let file = File::open(&self.path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        FrameReader::new(BufReader::with_capacity(1 << 20, file), len).map_err(io)
    }
}

/// At start: adds a record's index keys to `keys`, and writes them as a run once a batch is
/// full (the caller writes the rest at the end).
fn index_buffered(
    index: &Index,
    keys: &mut Vec<IndexKeys>,
    r: &Record,
    offset: u64,
) -> std::io::Result<()> {
    keys.push(IndexKeys::of(r.sequence, &r.entry, offset, r.hash));
    if keys.len() < START_BATCH {
        return Ok(());
    }
    index.add_keys(keys)?;
    keys.clear();
    Ok(())
}

/// Which file a handle or a path is: device and inode.
fn file_identity(m: &std::fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (m.dev(), m.ino())
}

struct Writer {
    metrics: Arc<OnceLock<AuditMetrics>>,
    acknowledged: Arc<AtomicU64>,
    /// The trail file's device and inode, to notice it removed or replaced under us.
    identity: (u64, u64),
    /// Set when the file was removed or replaced: only a restart recovers from that.
    removed: bool,
    file: File,
    path: PathBuf,
    chain_id: Arc<str>,
    head: Head,
    index: Index,
    /// Written records' index keys, until the indexer writes them as a run.
    pending: Arc<Pending>,
    /// Whether the indexer was asked to flush since the pending keys last grew past the mark.
    flush_asked: bool,
    indexer: mpsc::Sender<IndexJob>,
    /// Set, for good, when a write fails; every append fails from then on.
    failed: tokio::sync::watch::Sender<bool>,
    last_checkpoint_at: Instant,
    settings: Settings,
}

type Append = (Box<Entry>, oneshot::Sender<Result<Receipt, AuditError>>);

impl Writer {
    fn run(mut self, rx: mpsc::Receiver<Msg>) {
        loop {
            let failed = *self.failed.borrow();
            if failed {
                self.try_recover();
            }
            let wait = if *self.failed.borrow() {
                Duration::from_secs(1)
            } else if self.head.since_checkpoint > 0 {
                self.settings
                    .checkpoint_interval
                    .saturating_sub(self.last_checkpoint_at.elapsed())
            } else {
                Duration::from_secs(3600)
            };
            let first = match rx.recv_timeout(wait) {
                Ok(m) => m,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if !*self.failed.borrow() {
                        self.checkpoint();
                    }
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    self.checkpoint();
                    return;
                }
            };
            let mut batch: Vec<Append> = Vec::new();
            let mut stop = None;
            match first {
                Msg::Append(e, r) => batch.push((e, r)),
                Msg::Stop(r) => stop = Some(r),
            }
            while stop.is_none() && batch.len() < self.settings.max_batch {
                match rx.try_recv() {
                    Ok(Msg::Append(e, r)) => batch.push((e, r)),
                    Ok(Msg::Stop(r)) => stop = Some(r),
                    Err(_) => break,
                }
            }
            if !batch.is_empty() {
                self.commit(batch);
            }
            if self.head.since_checkpoint >= self.settings.checkpoint_every
                || (self.head.since_checkpoint > 0
                    && self.last_checkpoint_at.elapsed() >= self.settings.checkpoint_interval)
            {
                self.checkpoint();
            }
            if let Some(reply) = stop {
                self.checkpoint();
                // The indexer indexes what it was sent, flushes and releases the index; then
                // the file is released too, and only then is the close confirmed.
                let (done, indexed) = mpsc::channel();
                let _ = self.indexer.send(IndexJob::Stop(done));
                let _ = indexed.recv();
                drop(self);
                let _ = reply.send(());
                return;
            }
        }
    }

    /// Writes and fsyncs a batch; then answers every caller.
    fn commit(&mut self, batch: Vec<Append>) {
        if *self.failed.borrow() {
            for (_, reply) in batch {
                let _ = reply.send(Err(AuditError::Unwritable(
                    "an earlier write failed".into(),
                )));
            }
            return;
        }
        let mut buf = Vec::with_capacity(batch.len() * 512);
        if self.head.len == 0 {
            buf.extend_from_slice(MAGIC);
        }
        // Each record sealed straight into the batch's buffer: no copy of its entry.
        let mut records = Vec::with_capacity(batch.len());
        let mut prev = self.head.last_hash;
        for (i, (entry, _)) in batch.iter().enumerate() {
            let sequence = self.head.next_seq + i as u64;
            let offset = self.head.len + buf.len() as u64;
            prev = frame::append_record(&mut buf, &self.chain_id, sequence, entry, prev);
            records.push((offset, sequence, prev));
        }
        let started = Instant::now();
        if let Err(e) = self.write(&buf) {
            tracing::error!(error = %e, trail = %self.path.display(), "audit trail write failed: failing closed");
            self.fail();
            for (_, reply) in batch {
                let _ = reply.send(Err(AuditError::Unwritable(e.clone())));
            }
            return;
        }
        self.head.len += buf.len() as u64;
        if let Some(m) = self.metrics.get() {
            m.fsync(records.len(), started.elapsed(), self.head.len);
        }
        self.head.next_seq += records.len() as u64;
        self.head.last_hash = prev;
        self.head.since_checkpoint += records.len() as u64;
        // Indexed before any receipt is given: the keys wait in memory, where queries find
        // them, until the indexer writes a large batch of them as a run.
        let waiting = self.pending.push(
            batch
                .iter()
                .zip(&records)
                .map(|((e, _), &(offset, seq, hash))| IndexKeys::of(seq, e, offset, hash)),
        );
        if waiting < FLUSH_AT {
            self.flush_asked = false;
        } else if !self.flush_asked {
            self.flush_asked = self.indexer.send(IndexJob::Flush).is_ok();
        }
        self.acknowledged.store(self.head.next_seq, SeqCst);
        for ((_, reply), (_, sequence, hash)) in batch.into_iter().zip(&records) {
            let _ = reply.send(Ok(Receipt {
                chain_id: self.chain_id.clone(),
                sequence: *sequence,
                hash: *hash,
            }));
        }
    }

    /// From now on every append fails, until [`Writer::try_recover`] succeeds.
    fn fail(&self) {
        self.failed.send_replace(true);
    }

    /// Whether the path still names the file this writer holds.
    fn still_ours(&self) -> Result<(), String> {
        match std::fs::metadata(&self.path) {
            Ok(m) if file_identity(&m) == self.identity => Ok(()),
            Ok(_) => Err("the trail file was replaced while the gateway ran".into()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err("the trail file was removed while the gateway ran".into())
            }
            Err(e) => Err(format!("the trail file cannot be checked: {e}")),
        }
    }

    fn write(&mut self, buf: &[u8]) -> Result<(), String> {
        if let Err(e) = self.still_ours() {
            if !self.removed {
                self.removed = true;
                tracing::error!(trail = %self.path.display(), "{e}: failing closed; restore the file (or move it aside to start a new chain) and restart the gateway");
            }
            return Err(format!("{e}; restore it and restart the gateway"));
        }
        self.file.write_all(buf).map_err(|e| e.to_string())?;
        self.file.sync_data().map_err(|e| e.to_string())
    }

    /// After a failure: serves again once the cause is gone. Cuts what the failed write left
    /// after the last good frame, then proves that the directory takes a write and a sync.
    fn try_recover(&mut self) {
        if self.removed {
            return;
        }
        let dir = self.settings.dir.clone();
        let probe = dir.join(".lienthong-write-probe");
        let attempt = || -> std::io::Result<()> {
            self.file.set_len(self.head.len)?;
            self.file.sync_all()?;
            let mut f = File::create(&probe)?;
            f.write_all(&[0u8; 64 * 1024])?;
            f.sync_all()?;
            drop(f);
            std::fs::remove_file(&probe)
        };
        match attempt() {
            Ok(()) if self.still_ours().is_ok() => {
                tracing::warn!(trail = %self.path.display(), sequence = self.head.next_seq, "the audit trail is writable again: serving");
                self.failed.send_replace(false);
            }
            Ok(()) => {}
            Err(_) => {
                let _ = std::fs::remove_file(&probe);
            }
        }
    }

    /// Signs and writes a checkpoint of the current head, if anything is uncovered.
    fn checkpoint(&mut self) {
        self.last_checkpoint_at = Instant::now();
        if self.head.since_checkpoint == 0 || *self.failed.borrow() {
            return;
        }
        let c = Checkpoint::sign(
            &self.settings.signing_key,
            &self.chain_id,
            self.head.next_seq - 1,
            self.head.last_hash,
            timestamp_us(),
        );
        let buf = frame::encode(&Item::Checkpoint(c.clone()));
        match self.write(&buf) {
            Ok(()) => {
                self.index.add_checkpoint(c.sequence, self.head.len);
                self.head.len += buf.len() as u64;
                self.head.since_checkpoint = 0;
                if let Some(m) = self.metrics.get() {
                    m.checkpoint(c.sequence, c.time_us);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "audit checkpoint write failed: failing closed");
                self.fail();
            }
        }
    }
}

/// Pending index keys past which the writer asks the indexer to flush at once.
const FLUSH_AT: usize = 4096;
/// How often the indexer writes pending keys as a run when fewer are waiting.
const FLUSH_INTERVAL: Duration = Duration::from_millis(200);
/// The most keys written as one run by the indexer.
const FLUSH_BATCH: usize = 8192;
/// The most keys written as one run while the start indexes the trail.
const START_BATCH: usize = 1 << 16;

/// What the writer asks of the indexer.
enum IndexJob {
    /// Many keys are pending: write them now.
    Flush,
    /// Write every pending key, release the index, then answer.
    Stop(mpsc::Sender<()>),
}

/// Writes pending index keys as runs, off the writer's thread and in large batches (one
/// run per batch), every `FLUSH_INTERVAL` or when the writer says many are waiting.
struct Indexer {
    index: Index,
    pending: Arc<Pending>,
    /// Whether the last attempt failed (logged once, not at every tick).
    failing: bool,
}

impl Indexer {
    fn run(mut self, rx: mpsc::Receiver<IndexJob>) {
        let stop = loop {
            match rx.recv_timeout(FLUSH_INTERVAL) {
                Ok(IndexJob::Flush) | Err(mpsc::RecvTimeoutError::Timeout) => self.flush(),
                Ok(IndexJob::Stop(done)) => break Some(done),
                Err(mpsc::RecvTimeoutError::Disconnected) => break None,
            }
        };
        self.flush();
        // Release the index before saying so.
        drop(self);
        if let Some(done) = stop {
            let _ = done.send(());
        }
    }

    /// Writes every pending key, oldest first, one run per batch. A batch that cannot be
    /// written (a full disk) stays pending, where queries still find it, and is tried again
    /// at the next tick.
    fn flush(&mut self) {
        loop {
            let keys = self.pending.oldest(FLUSH_BATCH);
            if keys.is_empty() {
                return;
            }
            if let Err(e) = self.index.add_keys(&keys) {
                if !self.failing {
                    tracing::error!(error = %e, pending = keys.len(), "audit index update failed; the keys stay in memory and are tried again");
                }
                self.failing = true;
                return;
            }
            if std::mem::take(&mut self.failing) {
                tracing::warn!("audit index updates succeed again");
            }
            self.pending.forget(keys.len());
            if keys.len() < FLUSH_BATCH {
                return;
            }
        }
    }
}
