//! Checking a trail with only the public key: every record's hash, the links between records,
//! the sequence, the checkpoint signatures and what they cover, and optionally an anchor (a
//! checkpoint obtained earlier) that the trail must still reach. Names the first bad sequence.

use super::frame::{FrameError, Item};
use super::record::{Checkpoint, GENESIS, Hash, key_id};
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
    pub key: VerifyingKey,
    /// The chain must start at sequence 0 from the genesis hash (a whole trail); false for an
    /// export, which starts wherever it starts.
    pub from_genesis: bool,
    /// Stop after this sequence.
    pub to_sequence: Option<u64>,
    /// A checkpoint the trail must reach and agree with (detects truncation).
    pub anchor: Option<Checkpoint>,
}

/// Checks a sequence of frames, in file order.
pub fn verify(
    items: impl IntoIterator<Item = Result<(u64, Item), FrameError>>,
    opts: &Options,
) -> Report {
    let mut report = Report::default();
    let kid = key_id(&opts.key);
    let mut expected: Option<u64> = if opts.from_genesis { Some(0) } else { None };
    let mut last_hash: Option<Hash> = if opts.from_genesis {
        Some(GENESIS)
    } else {
        None
    };
    let mut chain_id: Option<String> = None;
    let mut since_checkpoint: HashMap<u64, Hash> = HashMap::new();
    let mut last_checkpoint: Option<u64> = None;
    let mut anchor_hash: Option<Hash> = None;
    let bad = |report: &mut Report, seq: u64, problem: String| {
        report.first_bad = Some((seq, problem));
    };
    for item in items {
        let next = expected.unwrap_or(0);
        match item {
            Err(e) => {
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
                bad(&mut report, next, what);
                return report;
            }
            Ok((_, Item::Record(r))) => {
                if opts.to_sequence.is_some_and(|to| r.sequence > to) {
                    break;
                }
                if let Some(c) = &chain_id {
                    if *c != r.chain_id {
                        bad(
                            &mut report,
                            r.sequence,
                            format!(
                                "record belongs to chain {:?}, not {c:?}: inserted",
                                r.chain_id
                            ),
                        );
                        return report;
                    }
                } else {
                    chain_id = Some(r.chain_id.clone());
                }
                if let Some(exp) = expected {
                    if r.sequence > exp {
                        bad(
                            &mut report,
                            exp,
                            format!(
                                "sequence gap: expected {exp}, found {}: record {exp} removed or moved",
                                r.sequence
                            ),
                        );
                        return report;
                    }
                    if r.sequence < exp {
                        bad(
                            &mut report,
                            r.sequence,
                            format!(
                                "sequence {} appears again after {}: record reordered or inserted",
                                r.sequence,
                                exp - 1
                            ),
                        );
                        return report;
                    }
                }
                if last_hash.is_some_and(|prev| r.prev_hash != prev) {
                    bad(&mut report, r.sequence, "chain broken: prev_hash is not the previous record's hash (record removed, reordered or inserted)".into());
                    return report;
                }
                if r.recompute() != r.hash {
                    bad(
                        &mut report,
                        r.sequence,
                        "hash mismatch: record edited".into(),
                    );
                    return report;
                }
                report.records_checked += 1;
                report.head = Some((r.sequence, r.hash));
                since_checkpoint.insert(r.sequence, r.hash);
                if opts
                    .anchor
                    .as_ref()
                    .is_some_and(|a| a.sequence == r.sequence)
                {
                    anchor_hash = Some(r.hash);
                }
                expected = Some(r.sequence + 1);
                last_hash = Some(r.hash);
            }
            Ok((_, Item::Checkpoint(c))) => {
                let first_covered = last_checkpoint.map(|s| s + 1).unwrap_or(0);
                if c.key_id != kid || !c.verify(&opts.key) {
                    bad(
                        &mut report,
                        c.sequence,
                        format!(
                            "checkpoint at {} does not verify with key {kid} (signed by {}): forged or edited",
                            c.sequence, c.key_id
                        ),
                    );
                    return report;
                }
                match since_checkpoint.get(&c.sequence) {
                    Some(h) if *h == c.record_hash => {}
                    Some(_) => {
                        bad(
                            &mut report,
                            first_covered,
                            format!(
                                "records {first_covered}..={} do not match the signed checkpoint at {}: rewritten",
                                c.sequence, c.sequence
                            ),
                        );
                        return report;
                    }
                    None if opts.to_sequence.is_some_and(|to| c.sequence > to) => break,
                    None => {
                        bad(
                            &mut report,
                            c.sequence,
                            format!(
                                "checkpoint at {} covers a record that is not before it: records removed or reordered",
                                c.sequence
                            ),
                        );
                        return report;
                    }
                }
                report.checkpoints_checked += 1;
                last_checkpoint = Some(c.sequence);
                since_checkpoint.clear();
            }
        }
    }
    report.uncovered = since_checkpoint.len() as u64;
    if let Some(a) = &opts.anchor {
        if a.key_id != kid || !a.verify(&opts.key) {
            bad(
                &mut report,
                a.sequence,
                "the anchor checkpoint does not verify with this key".into(),
            );
        } else {
            match report.head {
                Some((head, _)) if head < a.sequence => bad(
                    &mut report,
                    head + 1,
                    format!(
                        "trail truncated: it ends at {head} but a signed checkpoint covers {}",
                        a.sequence
                    ),
                ),
                None => bad(
                    &mut report,
                    0,
                    format!(
                        "trail truncated: it is empty but a signed checkpoint covers {}",
                        a.sequence
                    ),
                ),
                _ if anchor_hash.is_some_and(|h| h != a.record_hash) => bad(
                    &mut report,
                    a.sequence,
                    format!(
                        "record {} does not match the anchor checkpoint: rewritten",
                        a.sequence
                    ),
                ),
                _ => {}
            }
        }
    }
    report
}

/// A public key from its PEM (SubjectPublicKeyInfo), as `audit-signing.pub.pem` holds it.
pub fn public_key_from_pem(pem: &str) -> Result<VerifyingKey, String> {
    use ed25519_dalek::pkcs8::DecodePublicKey;
    VerifyingKey::from_public_key_pem(pem).map_err(|e| format!("not an Ed25519 public key: {e}"))
}

/// Checks a trail file from its first record.
pub fn verify_file(
    path: &std::path::Path,
    key: VerifyingKey,
    anchor: Option<Checkpoint>,
) -> std::io::Result<Report> {
    let file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    let frames =
        super::frame::FrameReader::new(std::io::BufReader::with_capacity(1 << 20, file), len)?;
    Ok(verify(
        frames,
        &Options {
            key,
            from_genesis: true,
            to_sequence: None,
            anchor,
        },
    ))
}
