//! One audit record and one signed checkpoint: their fields, their canonical encoding (the bytes
//! that are hashed and signed), and the domain-separated hashes. The on-disk format depends on
//! this file; the known-answer test pins it.

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};

/// A SHA-256 digest.
pub type Hash = [u8; 32];

/// The hash before the first record.
pub const GENESIS: Hash = [0; 32];

const RECORD_VERSION: u8 = 1;
const CHECKPOINT_DOMAIN: &[u8] = b"lienthong-audit-checkpoint-v1";

/// What a request was and how it ended: everything the record holds except its place in the
/// chain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entry {
    /// When the request arrived, microseconds since the Unix epoch (UTC).
    pub time_us: i64,
    pub request_id: String,
    pub unit_code: String,
    pub cert_fingerprint: String,
    pub peer_address: String,
    pub officer_code: String,
    pub roles: Vec<String>,
    pub method: String,
    pub procedure_code: String,
    pub dossier_id: String,
    pub purpose: String,
    /// Keyed HMAC-SHA-256 of the personal ID, hex; empty when the request named no citizen.
    pub citizen_pseudonym: String,
    pub citizen_masked_id: String,
    pub fields_disclosed: Vec<String>,
    /// gRPC status code; 0 for OK.
    pub outcome_code: i32,
    pub outcome_reason: String,
    pub outcome_message: String,
    pub latency_us: u64,
}

/// The bounds every record is cut to before it is sealed, so that no request can make a
/// record larger than a frame (or than a reviewer's screen). A string over its bound is cut
/// at a character boundary and ends in `…`; a list over its bound keeps its first entries and
/// ends in one entry `…+N` saying how many were left out. Control characters become U+FFFD.
pub mod bounds {
    /// Every string field except the outcome message, in bytes.
    pub const STR: usize = 256;
    /// The outcome message, in bytes.
    pub const MESSAGE: usize = 1024;
    /// Entries of `roles` and of `fields_disclosed`.
    pub const LIST: usize = 64;
    /// Each entry of a list, in bytes.
    pub const LIST_ITEM: usize = 128;
    /// The chain id (checked when the configuration is loaded).
    pub const CHAIN_ID: usize = 64;
    /// The largest canonical encoding a bounded entry can have.
    pub const MAX_CANONICAL: usize = 1
        + (4 + CHAIN_ID)
        + 8
        + 8
        + 13 * (4 + STR)
        + (4 + MESSAGE)
        + 2 * (4 + LIST * (4 + LIST_ITEM))
        + 4
        + 8;
}

/// Cuts a string to at most `max` bytes as [`bounds`] describes.
pub fn bound_str(s: &str, max: usize) -> String {
    const ELLIPSIS: &str = "…";
    let clean = |c: char| if c.is_control() { '\u{FFFD}' } else { c };
    if s.len() <= max && !s.chars().any(char::is_control) {
        return s.to_owned();
    }
    let mut out = String::with_capacity(max.min(s.len()));
    let total: usize = s.chars().map(|c| clean(c).len_utf8()).sum();
    let budget = if total <= max {
        max
    } else {
        max - ELLIPSIS.len()
    };
    for c in s.chars().map(clean) {
        if out.len() + c.len_utf8() > budget {
            out.push_str(ELLIPSIS);
            break;
        }
        out.push(c);
    }
    out
}

fn bound_list(list: &[String]) -> Vec<String> {
    let keep = if list.len() > bounds::LIST {
        bounds::LIST - 1
    } else {
        list.len()
    };
    let mut out: Vec<String> = list[..keep]
        .iter()
        .map(|s| bound_str(s, bounds::LIST_ITEM))
        .collect();
    if keep < list.len() {
        out.push(format!("…+{}", list.len() - keep));
    }
    out
}

impl Entry {
    /// The entry cut to the [`bounds`]; an entry within them is unchanged.
    pub fn bounded(self) -> Entry {
        let s = |v: String| {
            if v.len() <= bounds::STR && !v.chars().any(char::is_control) {
                v
            } else {
                bound_str(&v, bounds::STR)
            }
        };
        Entry {
            time_us: self.time_us,
            request_id: s(self.request_id),
            unit_code: s(self.unit_code),
            cert_fingerprint: s(self.cert_fingerprint),
            peer_address: s(self.peer_address),
            officer_code: s(self.officer_code),
            roles: bound_list(&self.roles),
            method: s(self.method),
            procedure_code: s(self.procedure_code),
            dossier_id: s(self.dossier_id),
            purpose: s(self.purpose),
            citizen_pseudonym: s(self.citizen_pseudonym),
            citizen_masked_id: s(self.citizen_masked_id),
            fields_disclosed: bound_list(&self.fields_disclosed),
            outcome_code: self.outcome_code,
            outcome_reason: s(self.outcome_reason),
            outcome_message: bound_str(&self.outcome_message, bounds::MESSAGE),
            latency_us: self.latency_us,
        }
    }
}

/// A record in the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub chain_id: String,
    pub sequence: u64,
    pub entry: Entry,
    pub prev_hash: Hash,
    pub hash: Hash,
}

/// Where canonical bytes go: a buffer, or straight into a hash.
trait Sink {
    fn put(&mut self, bytes: &[u8]);
}

impl Sink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

impl Sink for Sha256 {
    fn put(&mut self, bytes: &[u8]) {
        self.update(bytes);
    }
}

struct Encoder<S>(S);

impl<S: Sink> Encoder<S> {
    fn str(&mut self, s: &str) {
        self.0.put(&(s.len() as u32).to_be_bytes());
        self.0.put(s.as_bytes());
    }
    fn list(&mut self, l: &[String]) {
        self.0.put(&(l.len() as u32).to_be_bytes());
        for s in l {
            self.str(s);
        }
    }
}

/// Writes the canonical encoding of a record into a sink.
fn encode_record<S: Sink>(w: &mut Encoder<S>, chain_id: &str, sequence: u64, e: &Entry) {
    w.0.put(&[RECORD_VERSION]);
    w.str(chain_id);
    w.0.put(&sequence.to_be_bytes());
    w.0.put(&e.time_us.to_be_bytes());
    w.str(&e.request_id);
    w.str(&e.unit_code);
    w.str(&e.cert_fingerprint);
    w.str(&e.peer_address);
    w.str(&e.officer_code);
    w.list(&e.roles);
    w.str(&e.method);
    w.str(&e.procedure_code);
    w.str(&e.dossier_id);
    w.str(&e.purpose);
    w.str(&e.citizen_pseudonym);
    w.str(&e.citizen_masked_id);
    w.list(&e.fields_disclosed);
    w.0.put(&e.outcome_code.to_be_bytes());
    w.str(&e.outcome_reason);
    w.str(&e.outcome_message);
    w.0.put(&e.latency_us.to_be_bytes());
}

/// Reads a canonical encoding back.
struct Decoder<'a>(&'a [u8]);

impl Decoder<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_be_bytes(self.take(8)?.try_into().ok()?))
    }
    fn str(&mut self) -> Option<String> {
        let n = self.u32()? as usize;
        String::from_utf8(self.take(n)?.to_vec()).ok()
    }
    fn list(&mut self) -> Option<Vec<String>> {
        let n = self.u32()? as usize;
        if n > self.0.len() {
            return None;
        }
        (0..n).map(|_| self.str()).collect()
    }
    fn hash(&mut self) -> Option<Hash> {
        self.take(32)?.try_into().ok()
    }
    /// A string's bytes, checked as UTF-8 but not copied.
    fn skip_str(&mut self) -> Option<()> {
        let n = self.u32()? as usize;
        std::str::from_utf8(self.take(n)?).ok().map(|_| ())
    }
    fn skip_list(&mut self) -> Option<()> {
        let n = self.u32()? as usize;
        if n > self.0.len() {
            return None;
        }
        (0..n).try_for_each(|_| self.skip_str())
    }
}

impl Record {
    /// Whether `canonical` is a canonical encoding that [`Record::from_bytes`] would decode (with
    /// the two hashes after it), checked without building the record: readers that hash the
    /// stored bytes agree with those that decode on which records are malformed.
    pub fn canonical_is_well_formed(canonical: &[u8]) -> bool {
        let mut d = Decoder(canonical);
        let mut walk = || -> Option<()> {
            if d.take(1)? != [RECORD_VERSION] {
                return None;
            }
            d.skip_str()?; // chain
            d.u64()?; // sequence
            d.u64()?; // time
            for _ in 0..5 {
                d.skip_str()?; // request, unit, certificate, peer, officer
            }
            d.skip_list()?; // roles
            for _ in 0..6 {
                d.skip_str()?; // method, procedure, dossier, purpose, pseudonym, masked ID
            }
            d.skip_list()?; // fields disclosed
            d.u32()?; // outcome code
            d.skip_str()?; // outcome reason
            d.skip_str()?; // outcome message
            d.u64()?; // latency
            d.0.is_empty().then_some(())
        };
        walk().is_some()
    }
}

impl Record {
    /// The canonical encoding of everything but the two hashes: version, chain, sequence, then
    /// the entry's fields in declaration order; strings and lists length-prefixed (u32 BE),
    /// integers big-endian.
    pub fn canonical(chain_id: &str, sequence: u64, e: &Entry) -> Vec<u8> {
        let mut w = Encoder(Vec::with_capacity(512));
        encode_record(&mut w, chain_id, sequence, e);
        w.0
    }

    /// Appends the canonical encoding to `out` (no intermediate buffer).
    pub fn canonical_into(out: &mut Vec<u8>, chain_id: &str, sequence: u64, e: &Entry) {
        let mut w = Encoder(std::mem::take(out));
        encode_record(&mut w, chain_id, sequence, e);
        *out = w.0;
    }

    /// SHA-256(0x00 ‖ prev ‖ canonical): the leading byte separates record hashes from any other
    /// use of the hash.
    pub fn chain_hash(prev: &Hash, canonical: &[u8]) -> Hash {
        let mut h = Sha256::new();
        h.update([0x00]);
        h.update(prev);
        h.update(canonical);
        h.finalize().into()
    }

    /// Makes the next record of a chain.
    pub fn seal(chain_id: &str, sequence: u64, entry: Entry, prev_hash: Hash) -> Self {
        let hash = Self::chain_hash(&prev_hash, &Self::canonical(chain_id, sequence, &entry));
        Self {
            chain_id: chain_id.to_owned(),
            sequence,
            entry,
            prev_hash,
            hash,
        }
    }

    /// The record's hash as recomputed from its contents (encoded straight into the hash).
    pub fn recompute(&self) -> Hash {
        let mut h = Sha256::new();
        h.update([0x00]);
        h.update(self.prev_hash);
        let mut w = Encoder(h);
        encode_record(&mut w, &self.chain_id, self.sequence, &self.entry);
        w.0.finalize().into()
    }

    /// The stored form: canonical ‖ prev_hash ‖ hash.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = Self::canonical(&self.chain_id, self.sequence, &self.entry);
        b.extend_from_slice(&self.prev_hash);
        b.extend_from_slice(&self.hash);
        b
    }

    /// Parses the stored form; None when it is not one.
    pub fn from_bytes(b: &[u8]) -> Option<Self> {
        let mut d = Decoder(b);
        if d.take(1)? != [RECORD_VERSION] {
            return None;
        }
        let chain_id = d.str()?;
        let sequence = d.u64()?;
        let entry = Entry {
            time_us: d.u64()? as i64,
            request_id: d.str()?,
            unit_code: d.str()?,
            cert_fingerprint: d.str()?,
            peer_address: d.str()?,
            officer_code: d.str()?,
            roles: d.list()?,
            method: d.str()?,
            procedure_code: d.str()?,
            dossier_id: d.str()?,
            purpose: d.str()?,
            citizen_pseudonym: d.str()?,
            citizen_masked_id: d.str()?,
            fields_disclosed: d.list()?,
            outcome_code: d.u32()? as i32,
            outcome_reason: d.str()?,
            outcome_message: d.str()?,
            latency_us: d.u64()?,
        };
        let prev_hash = d.hash()?;
        let hash = d.hash()?;
        d.0.is_empty().then_some(Self {
            chain_id,
            sequence,
            entry,
            prev_hash,
            hash,
        })
    }
}

/// A signed statement that the chain's record `sequence` has hash `record_hash`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub chain_id: String,
    pub sequence: u64,
    pub record_hash: Hash,
    pub time_us: i64,
    /// Hex of the first 8 bytes of SHA-256 of the public key.
    pub key_id: String,
    pub signature: [u8; 64],
}

/// The key id of a public key.
pub fn key_id(key: &VerifyingKey) -> String {
    Sha256::digest(key.as_bytes())[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Checkpoint {
    /// The signed bytes: a domain string, then chain, sequence, record hash, time, key id.
    pub fn message(
        chain_id: &str,
        sequence: u64,
        record_hash: &Hash,
        time_us: i64,
        key_id: &str,
    ) -> Vec<u8> {
        let mut w = Encoder(Vec::with_capacity(128));
        w.0.push(0x01);
        w.0.put(CHECKPOINT_DOMAIN);
        w.str(chain_id);
        w.0.put(&sequence.to_be_bytes());
        w.0.put(record_hash);
        w.0.put(&time_us.to_be_bytes());
        w.str(key_id);
        w.0
    }

    pub fn sign(
        key: &SigningKey,
        chain_id: &str,
        sequence: u64,
        record_hash: Hash,
        time_us: i64,
    ) -> Self {
        let key_id = key_id(&key.verifying_key());
        let signature = key
            .sign(&Self::message(
                chain_id,
                sequence,
                &record_hash,
                time_us,
                &key_id,
            ))
            .to_bytes();
        Self {
            chain_id: chain_id.to_owned(),
            sequence,
            record_hash,
            time_us,
            key_id,
            signature,
        }
    }

    /// Whether the signature verifies under `key`.
    pub fn verify(&self, key: &VerifyingKey) -> bool {
        let msg = Self::message(
            &self.chain_id,
            self.sequence,
            &self.record_hash,
            self.time_us,
            &self.key_id,
        );
        key.verify(&msg, &Signature::from_bytes(&self.signature))
            .is_ok()
    }

    /// The stored form: message ‖ signature.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = Self::message(
            &self.chain_id,
            self.sequence,
            &self.record_hash,
            self.time_us,
            &self.key_id,
        );
        b.extend_from_slice(&self.signature);
        b
    }

    pub fn from_bytes(b: &[u8]) -> Option<Self> {
        let mut d = Decoder(b);
        if d.take(1)? != [0x01] || d.take(CHECKPOINT_DOMAIN.len())? != CHECKPOINT_DOMAIN {
            return None;
        }
        let chain_id = d.str()?;
        let sequence = d.u64()?;
        let record_hash = d.hash()?;
        let time_us = d.u64()? as i64;
        let key_id = d.str()?;
        let signature: [u8; 64] = d.take(64)?.try_into().ok()?;
        d.0.is_empty().then_some(Self {
            chain_id,
            sequence,
            record_hash,
            time_us,
            key_id,
            signature,
        })
    }
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses lowercase or uppercase hex into 32 bytes.
pub fn parse_hash(s: &str) -> Option<Hash> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, chunk) in s.as_bytes().chunks(2).enumerate() {
        out[i] = u8::from_str_radix(std::str::from_utf8(chunk).ok()?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Entry {
        Entry {
            time_us: 1_795_000_000_000_000,
            request_id: "r-1".into(),
            unit_code: "000.00.00.H42".into(),
            cert_fingerprint: "ab".repeat(32),
            peer_address: "10.0.0.7:55012".into(),
            officer_code: "CB.H42.0001".into(),
            roles: vec!["receiver".into()],
            method: "/lienthong.gateway.v1.CitizenGateway/LookupCitizen".into(),
            procedure_code: "1.004222".into(),
            dossier_id: "H42.01-0001".into(),
            purpose: "administrative_procedure".into(),
            citizen_pseudonym: "cd".repeat(32),
            citizen_masked_id: "042•••••••005".into(),
            fields_disclosed: vec!["full_name".into(), "date_of_birth".into()],
            outcome_code: 0,
            outcome_reason: String::new(),
            outcome_message: String::new(),
            latency_us: 1234,
        }
    }

    /// The expected hash was computed independently (a few lines of Python following the
    /// encoding described on `Record::canonical`), not copied from this code's output.
    #[test]
    fn known_answer_pins_the_format() {
        let r = Record::seal("gw-1", 0, entry(), GENESIS);
        assert_eq!(
            hex(&r.hash),
            "08896f6224563ad3c7fa45674d8dec9ceec1648b30a037ba2b543124a209402c"
        );
        let next = Record::seal("gw-1", 1, entry(), r.hash);
        assert_eq!(next.prev_hash, r.hash);
        assert_ne!(next.hash, r.hash);
    }

    #[test]
    fn records_and_checkpoints_round_trip() {
        let r = Record::seal("gw-1", 7, entry(), [9; 32]);
        assert_eq!(Record::from_bytes(&r.to_bytes()), Some(r.clone()));
        assert_eq!(r.recompute(), r.hash);
        let mut bytes = r.to_bytes();
        bytes.push(0);
        assert_eq!(Record::from_bytes(&bytes), None, "trailing bytes");
        let key = SigningKey::from_bytes(&[3; 32]);
        let c = Checkpoint::sign(&key, "gw-1", 7, r.hash, 42);
        assert!(c.verify(&key.verifying_key()));
        assert_eq!(Checkpoint::from_bytes(&c.to_bytes()), Some(c.clone()));
        let other = SigningKey::from_bytes(&[4; 32]);
        assert!(!c.verify(&other.verifying_key()));
        let mut forged = c;
        forged.sequence = 8;
        assert!(!forged.verify(&key.verifying_key()));
    }

    /// Every field at (and over) its bound: the record is cut to the largest possible
    /// record, which fits a frame and reads back.
    #[test]
    fn the_largest_possible_record_fits_a_frame_and_reads_back() {
        let long = "ệ\n".repeat(100_000);
        let list = vec!["ệ".repeat(100); 80_000];
        let e = Entry {
            time_us: i64::MAX,
            request_id: long.clone(),
            unit_code: long.clone(),
            cert_fingerprint: long.clone(),
            peer_address: long.clone(),
            officer_code: long.clone(),
            roles: list.clone(),
            method: long.clone(),
            procedure_code: long.clone(),
            dossier_id: long.clone(),
            purpose: long.clone(),
            citizen_pseudonym: long.clone(),
            citizen_masked_id: long.clone(),
            fields_disclosed: list,
            outcome_code: i32::MAX,
            outcome_reason: long.clone(),
            outcome_message: long,
            latency_us: u64::MAX,
        }
        .bounded();
        assert_eq!(e.roles.len(), bounds::LIST);
        assert_eq!(e.fields_disclosed.last().unwrap(), "…+79937");
        assert!(e.request_id.ends_with('…') && e.request_id.len() <= bounds::STR);
        assert!(
            !e.request_id.contains('\n'),
            "control characters are replaced"
        );
        let chain = "c".repeat(bounds::CHAIN_ID);
        let canonical = Record::canonical(&chain, u64::MAX, &e);
        assert!(
            canonical.len() <= bounds::MAX_CANONICAL,
            "{}",
            canonical.len()
        );
        assert!(
            canonical.len() > bounds::MAX_CANONICAL - 2_000,
            "the bound is tight"
        );
        let r = Record::seal(&chain, u64::MAX, e, GENESIS);
        let frame = super::super::frame::encode(&super::super::frame::Item::Record(r.clone()));
        assert!(frame.len() as u64 <= u64::from(super::super::frame::MAX_FRAME) + 9);
        let back = super::super::frame::FrameReader::new(
            &[&super::super::frame::MAGIC[..], &frame].concat()[..],
            (8 + frame.len()) as u64,
        )
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
        assert_eq!(back.1, super::super::frame::Item::Record(r));
    }

    #[test]
    fn bounded_strings_are_cut_at_a_character_boundary() {
        assert_eq!(bound_str("abc", 3), "abc");
        assert_eq!(bound_str("abcd", 4), "abcd");
        assert_eq!(bound_str("abcdefgh", 5), "ab…");
        assert_eq!(bound_str("ệệệ", 8), "ệ…");
        assert_eq!(bound_str("a\tb", 10), "a\u{FFFD}b");
        let within = entry();
        assert_eq!(within.clone().bounded(), within);
    }

    #[test]
    fn any_field_change_changes_the_hash() {
        let base = Record::seal("gw-1", 0, entry(), GENESIS).hash;
        let mut e = entry();
        e.fields_disclosed.push("phone".into());
        assert_ne!(Record::seal("gw-1", 0, e, GENESIS).hash, base);
        let mut e = entry();
        e.roles = vec!["receiver".into(), "".into()];
        assert_ne!(Record::seal("gw-1", 0, e, GENESIS).hash, base);
        assert_ne!(Record::seal("gw-2", 0, entry(), GENESIS).hash, base);
    }
}
