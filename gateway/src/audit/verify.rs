//! Checking a trail with only the public key: every record's hash, the links between records,
//! the sequence, the checkpoint signatures and what they cover, and optionally an anchor (a
//! checkpoint obtained earlier) that the trail must still reach. Names the first bad sequence.

use super::frame::{FrameError, Item, RawItem};
use super::record::{Checkpoint, GENESIS, Hash, Record, key_id};
use ed25519_dalek::VerifyingKey;
use std::collections::HashMap;

/// What a check found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub records_checked: u64,
    pub checkpoints_checked: u64,
    /// The first sequence found bad and what is wrong there.
    pub first_bad: Option<(u64, String)>,
    /// The last record checked: its sequence and hash.
    pub head: Option<(u64, Hash)>,
    /// Records after the last checkpoint (not yet covered by a signature).
    pub uncovered: u64,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.first_bad.is_none()
    }
}

/// How to check.
#[derive(Debug, Clone)]
pub struct Options {
    /// The checkpoint keys: the current one and any retired ones. A checkpoint is checked
    /// with the key its key id names.
    pub keys: Vec<VerifyingKey>,
    /// The chain must start at sequence 0 from the genesis hash (a whole trail); false for an
    /// export, which starts wherever it starts.
    pub from_genesis: bool,
    /// Stop after this sequence.
    pub to_sequence: Option<u64>,
    /// A checkpoint the trail must reach and agree with (detects truncation).
    pub anchor: Option<Checkpoint>,
}

/// A record as the checker sees it: its place, its stored hashes, and the hash recomputed from
/// its contents.
struct Seen<'a> {
    chain_id: &'a str,
    sequence: u64,
    prev_hash: Hash,
    hash: Hash,
    computed: Hash,
}

/// The checker's state, fed one frame at a time. Each step returns false to stop.
struct Verifier<'o> {
    opts: &'o Options,
    keys: Vec<(String, VerifyingKey)>,
    report: Report,
    expected: Option<u64>,
    last_hash: Option<Hash>,
    chain_id: Option<String>,
    since_checkpoint: HashMap<u64, Hash>,
    last_checkpoint: Option<u64>,
    anchor_hash: Option<Hash>,
}

impl<'o> Verifier<'o> {
    fn new(opts: &'o Options) -> Self {
        Self {
            keys: opts.keys.iter().map(|k| (key_id(k), *k)).collect(),
            report: Report::default(),
            expected: opts.from_genesis.then_some(0),
            last_hash: opts.from_genesis.then_some(GENESIS),
            chain_id: None,
            since_checkpoint: HashMap::new(),
            last_checkpoint: None,
            anchor_hash: None,
            opts,
        }
    }

    /// Whether the checkpoint verifies under the known key its key id names.
    fn signed(&self, c: &Checkpoint) -> bool {
        self.keys
            .iter()
            .any(|(id, k)| *id == c.key_id && c.verify(k))
    }

    fn known(&self) -> String {
        let ids: Vec<&str> = self.keys.iter().map(|(id, _)| id.as_str()).collect();
        ids.join(", ")
    }

    fn bad(&mut self, seq: u64, problem: String) -> bool {
        self.report.first_bad = Some((seq, problem));
        false
    }

    fn damaged(&mut self, e: FrameError) -> bool {
        let what = if e.at_end {
            format!(
                "the trail ends with an incomplete or damaged record at byte {} ({}): torn write or truncation",
                e.offset, e.problem
            )
        } else {
            format!(
                "record damaged at byte {} ({}): edited",
                e.offset, e.problem
            )
        };
        self.bad(self.expected.unwrap_or(0), what)
    }

    fn record(&mut self, r: Seen<'_>) -> bool {
        if self.opts.to_sequence.is_some_and(|to| r.sequence > to) {
            return false;
        }
        match &self.chain_id {
            Some(c) if c != r.chain_id => {
                let problem = format!(
                    "record belongs to chain {:?}, not {c:?}: inserted",
                    r.chain_id
                );
                return self.bad(r.sequence, problem);
            }
            Some(_) => {}
            None => self.chain_id = Some(r.chain_id.to_owned()),
        }
        if let Some(exp) = self.expected {
            if r.sequence > exp {
                let problem = format!(
                    "sequence gap: expected {exp}, found {}: record {exp} removed or moved",
                    r.sequence
                );
                return self.bad(exp, problem);
            }
            if r.sequence < exp {
                let problem = format!(
                    "sequence {} appears again after {}: record reordered or inserted",
                    r.sequence,
                    exp - 1
                );
                return self.bad(r.sequence, problem);
            }
        }
        if self.last_hash.is_some_and(|prev| r.prev_hash != prev) {
            return self.bad(r.sequence, "chain broken: prev_hash is not the previous record's hash (record removed, reordered or inserted)".into());
        }
        if r.computed != r.hash {
            return self.bad(r.sequence, "hash mismatch: record edited".into());
        }
        self.report.records_checked += 1;
        self.report.head = Some((r.sequence, r.hash));
        self.since_checkpoint.insert(r.sequence, r.hash);
        if self
            .opts
            .anchor
            .as_ref()
            .is_some_and(|a| a.sequence == r.sequence)
        {
            self.anchor_hash = Some(r.hash);
        }
        self.expected = Some(r.sequence + 1);
        self.last_hash = Some(r.hash);
        true
    }

    fn checkpoint(&mut self, c: &Checkpoint) -> bool {
        let first_covered = self.last_checkpoint.map(|s| s + 1).unwrap_or(0);
        if !self.signed(c) {
            // A checkpoint naming a key the verifier was not given says nothing about the trail:
            // the wrong key was given. One naming a given key that does not verify is forged.
            let known = self.keys.iter().any(|(id, _)| *id == c.key_id);
            let problem = if known {
                format!(
                    "checkpoint at {} does not verify with key {}, the key it names: forged or edited",
                    c.sequence, c.key_id
                )
            } else {
                format!(
                    "WRONG KEY: the checkpoint at {} is signed by key {}, and the key(s) given are {}: give the gateway's checkpoint public key (and any retired one) — this says nothing yet about the trail",
                    c.sequence,
                    c.key_id,
                    self.known()
                )
            };
            return self.bad(c.sequence, problem);
        }
        match self.since_checkpoint.get(&c.sequence) {
            Some(h) if *h == c.record_hash => {}
            Some(_) => {
                let problem = format!(
                    "records {first_covered}..={} do not match the signed checkpoint at {}: rewritten",
                    c.sequence, c.sequence
                );
                return self.bad(first_covered, problem);
            }
            None if self.opts.to_sequence.is_some_and(|to| c.sequence > to) => return false,
            None => {
                let problem = format!(
                    "checkpoint at {} covers a record that is not before it: records removed or reordered",
                    c.sequence
                );
                return self.bad(c.sequence, problem);
            }
        }
        self.report.checkpoints_checked += 1;
        self.last_checkpoint = Some(c.sequence);
        self.since_checkpoint.clear();
        true
    }

    fn finish(mut self) -> Report {
        if self.report.first_bad.is_some() {
            return self.report;
        }
        self.report.uncovered = self.since_checkpoint.len() as u64;
        if let Some(a) = self.opts.anchor.clone() {
            if !self.signed(&a) {
                self.bad(
                    a.sequence,
                    "the anchor checkpoint does not verify with this key".into(),
                );
            } else {
                match self.report.head {
                    Some((head, _)) if head < a.sequence => {
                        let problem = format!(
                            "trail truncated: it ends at {head} but a signed checkpoint covers {}",
                            a.sequence
                        );
                        self.bad(head + 1, problem);
                    }
                    None => {
                        let problem = format!(
                            "trail truncated: it is empty but a signed checkpoint covers {}",
                            a.sequence
                        );
                        self.bad(0, problem);
                    }
                    _ if self.anchor_hash.is_some_and(|h| h != a.record_hash) => {
                        let problem = format!(
                            "record {} does not match the anchor checkpoint: rewritten",
                            a.sequence
                        );
                        self.bad(a.sequence, problem);
                    }
                    _ => {}
                }
            }
        }
        self.report
    }
}

/// Checks a sequence of frames, in file order.
pub fn verify(
    items: impl IntoIterator<Item = Result<(u64, Item), FrameError>>,
    opts: &Options,
) -> Report {
    let mut v = Verifier::new(opts);
    for item in items {
        let go_on = match item {
            Err(e) => v.damaged(e),
            Ok((_, Item::Record(r))) => v.record(Seen {
                chain_id: &r.chain_id,
                sequence: r.sequence,
                prev_hash: r.prev_hash,
                hash: r.hash,
                computed: r.recompute(),
            }),
            Ok((_, Item::Checkpoint(c))) => v.checkpoint(&c),
        };
        if !go_on {
            break;
        }
    }
    v.finish()
}

/// A public key from its PEM (SubjectPublicKeyInfo), as `audit-signing.pub.pem` holds it.
pub fn public_key_from_pem(pem: &str) -> Result<VerifyingKey, String> {
    use ed25519_dalek::pkcs8::DecodePublicKey;
    VerifyingKey::from_public_key_pem(pem).map_err(|e| format!("not an Ed25519 public key: {e}"))
}

/// Checks a trail file (`opts.from_genesis` should be true: a file starts the chain). Records
/// are not decoded: each stored canonical encoding is hashed as it is, which is what was
/// hashed when it was written.
pub fn verify_file(path: &std::path::Path, opts: &Options) -> std::io::Result<Report> {
    let file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    verify_stored(std::io::BufReader::with_capacity(1 << 20, file), len, opts)
}

/// Checks a trail of `len` bytes read from `reader` as [`verify_file`] does: the stored bytes
/// hashed as they are.
pub fn verify_stored(
    reader: impl std::io::Read,
    len: u64,
    opts: &Options,
) -> std::io::Result<Report> {
    let mut frames = super::frame::FrameReader::new(reader, len)?;
    let mut v = Verifier::new(opts);
    while let Some(frame) = frames.next_raw() {
        let go_on = match frame {
            Err(e) => v.damaged(e),
            Ok((_, RawItem::Record(r))) => v.record(Seen {
                chain_id: r.chain_id,
                sequence: r.sequence,
                prev_hash: r.prev_hash,
                hash: r.hash,
                computed: Record::chain_hash(&r.prev_hash, r.canonical),
            }),
            Ok((_, RawItem::Checkpoint(c))) => v.checkpoint(&c),
        };
        if !go_on {
            break;
        }
    }
    Ok(v.finish())
}
