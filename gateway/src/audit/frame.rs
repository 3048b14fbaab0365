//! The trail file's framing: an 8-byte magic, then frames `kind u8 ‖ len u32 BE ‖ payload ‖
//! crc32 u32 BE` (the checksum covers kind, len and payload). A frame holds a record or a
//! checkpoint. The checksum tells a torn write from a whole frame; the hash chain and the
//! signatures, not the checksum, are what make the trail tamper-evident.

use super::record::{Checkpoint, Hash, Record};
use std::io::{self, Read};

/// The first bytes of every trail file.
pub const MAGIC: &[u8; 8] = b"LTAUDIT\x01";
const KIND_RECORD: u8 = 0;
const KIND_CHECKPOINT: u8 = 1;
/// No frame is larger; a length beyond it is damage, not a record. Writer and reader share it:
/// every record is cut to [`super::record::bounds`] before it is sealed, and the largest
/// bounded record (with its two hashes) fits.
pub const MAX_FRAME: u32 = 1 << 20;
const _: () = assert!(super::record::bounds::MAX_CANONICAL + 64 <= MAX_FRAME as usize);

/// What a frame holds. Records are nearly every frame, so they are not boxed.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    Record(Record),
    Checkpoint(Checkpoint),
}

/// A frame that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameError {
    pub offset: u64,
    /// True when the damage reaches the end of the file (a torn last write). A read that
    /// failed (an I/O error) is never a torn write, wherever it happens.
    pub at_end: bool,
    pub problem: String,
}

/// Encodes one frame.
pub fn encode(item: &Item) -> Vec<u8> {
    let (kind, payload) = match item {
        Item::Record(r) => (KIND_RECORD, r.to_bytes()),
        Item::Checkpoint(c) => (KIND_CHECKPOINT, c.to_bytes()),
    };
    let mut out = Vec::with_capacity(payload.len() + 9);
    frame_into(&mut out, kind, |out| out.extend_from_slice(&payload));
    out
}

/// Appends one frame to `out`: kind, length, the payload `write` appends, checksum.
fn frame_into<T>(out: &mut Vec<u8>, kind: u8, write: impl FnOnce(&mut Vec<u8>) -> T) -> T {
    let start = out.len();
    out.push(kind);
    out.extend_from_slice(&[0; 4]);
    let written = write(out);
    let len = (out.len() - start - 5) as u32;
    out[start + 1..start + 5].copy_from_slice(&len.to_be_bytes());
    let crc = crc32fast::hash(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
    written
}

/// Seals the next record of a chain straight into a frame at the end of `out` — the same bytes
/// as `encode(&Item::Record(Record::seal(…)))`, with the canonical encoding built once and no
/// copy of the entry — and returns the record's hash.
pub fn append_record(
    out: &mut Vec<u8>,
    chain_id: &str,
    sequence: u64,
    entry: &super::record::Entry,
    prev_hash: Hash,
) -> Hash {
    frame_into(out, KIND_RECORD, |out| {
        let payload = out.len();
        Record::canonical_into(out, chain_id, sequence, entry);
        let hash = Record::chain_hash(&prev_hash, &out[payload..]);
        out.extend_from_slice(&prev_hash);
        out.extend_from_slice(&hash);
        hash
    })
}

/// Whether a frame's checksum (over kind, len and payload) holds.
fn checksum_holds(frame: &[u8]) -> bool {
    let (body, crc) = frame.split_at(frame.len() - 4);
    crc32fast::hash(body) == u32::from_be_bytes([crc[0], crc[1], crc[2], crc[3]])
}

/// Decodes a frame's payload by its kind.
fn decode_payload(kind: u8, payload: &[u8]) -> Result<Item, &'static str> {
    match kind {
        KIND_RECORD => Record::from_bytes(payload)
            .map(Item::Record)
            .ok_or("malformed record"),
        KIND_CHECKPOINT => Checkpoint::from_bytes(payload)
            .map(Item::Checkpoint)
            .ok_or("malformed checkpoint"),
        _ => Err("unknown frame kind"),
    }
}

/// Reads frames one after the other from a trail of known length.
pub struct FrameReader<R> {
    inner: R,
    offset: u64,
    len: u64,
    done: bool,
    buf: Vec<u8>,
}

impl<R: Read> FrameReader<R> {
    /// Checks the magic; an empty trail yields nothing.
    pub fn new(mut inner: R, len: u64) -> io::Result<Self> {
        if len == 0 {
            return Ok(Self {
                inner,
                offset: 0,
                len,
                done: true,
                buf: Vec::new(),
            });
        }
        let mut magic = [0u8; 8];
        inner.read_exact(&mut magic).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                "not a Liên Thông audit trail (too short)",
            )
        })?;
        if &magic != MAGIC {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "not a Liên Thông audit trail (bad magic)",
            ));
        }
        Ok(Self {
            inner,
            offset: MAGIC.len() as u64,
            len,
            done: false,
            buf: Vec::with_capacity(1024),
        })
    }

    /// Reads from `offset`, the start of a frame of a trail of length `len`; `inner` is already
    /// positioned there (the magic was checked when the trail was opened).
    pub fn at(inner: R, offset: u64, len: u64) -> Self {
        Self {
            inner,
            offset,
            len,
            done: offset >= len,
            buf: Vec::with_capacity(1024),
        }
    }

    /// The offset of the next frame (after the last good one).
    pub fn offset(&self) -> u64 {
        self.offset
    }
}

/// A record frame seen without decoding its fields: enough to check the chain, since the
/// stored canonical bytes are exactly the bytes that were hashed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawRecord<'a> {
    pub chain_id: &'a str,
    pub sequence: u64,
    pub canonical: &'a [u8],
    pub prev_hash: Hash,
    pub hash: Hash,
}

/// A frame without the record decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawItem<'a> {
    Record(RawRecord<'a>),
    Checkpoint(Checkpoint),
}

fn raw_record(payload: &[u8]) -> Option<RawRecord<'_>> {
    let split = payload.len().checked_sub(64)?;
    let (canonical, hashes) = payload.split_at(split);
    let chain_len = u32::from_be_bytes(canonical.get(1..5)?.try_into().ok()?) as usize;
    let chain_id = std::str::from_utf8(canonical.get(5..5 + chain_len)?).ok()?;
    let sequence = u64::from_be_bytes(
        canonical
            .get(5 + chain_len..13 + chain_len)?
            .try_into()
            .ok()?,
    );
    Some(RawRecord {
        chain_id,
        sequence,
        canonical,
        prev_hash: hashes[..32].try_into().ok()?,
        hash: hashes[32..].try_into().ok()?,
    })
}

impl<R: Read> FrameReader<R> {
    /// Reads the next frame's bytes into the buffer and checks its checksum; returns its
    /// offset and whether it ends the file.
    fn read_frame(&mut self) -> Option<Result<u64, FrameError>> {
        if self.done || self.offset >= self.len {
            return None;
        }
        let start = self.offset;
        let fail = |this: &mut Self, at_end: bool, problem: String| {
            this.done = true;
            Some(Err(FrameError {
                offset: start,
                at_end,
                problem,
            }))
        };
        let remaining = self.len - start;
        if remaining < 9 {
            return fail(self, true, "incomplete frame header".into());
        }
        let mut head = [0u8; 5];
        if let Err(e) = self.inner.read_exact(&mut head) {
            return fail(self, false, format!("unreadable: {e}"));
        }
        let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]);
        if len > MAX_FRAME {
            return fail(self, false, format!("frame length {len} is impossible"));
        }
        let total = 5 + u64::from(len) + 4;
        if total > remaining {
            return fail(self, true, "incomplete frame".into());
        }
        self.buf.clear();
        self.buf.resize(total as usize, 0);
        self.buf[..5].copy_from_slice(&head);
        if let Err(e) = self.inner.read_exact(&mut self.buf[5..]) {
            return fail(self, false, format!("unreadable: {e}"));
        }
        let at_end = start + total == self.len;
        if !checksum_holds(&self.buf) {
            return fail(self, at_end, "checksum mismatch".into());
        }
        self.offset = start + total;
        Some(Ok(start))
    }

    fn malformed(&mut self, start: u64, problem: String) -> FrameError {
        self.done = true;
        self.offset = start;
        FrameError {
            offset: start,
            at_end: start + self.buf.len() as u64 == self.len,
            problem,
        }
    }

    /// The next frame with its record left undecoded (for fast verification).
    pub fn next_raw(&mut self) -> Option<Result<(u64, RawItem<'_>), FrameError>> {
        let start = match self.read_frame()? {
            Ok(start) => start,
            Err(e) => return Some(Err(e)),
        };
        let payload = 5..self.buf.len() - 4;
        let problem = match self.buf[0] {
            KIND_RECORD
                if raw_record(&self.buf[payload.clone()])
                    .is_some_and(|r| Record::canonical_is_well_formed(r.canonical)) =>
            {
                None
            }
            KIND_RECORD => Some("malformed record"),
            KIND_CHECKPOINT => match Checkpoint::from_bytes(&self.buf[payload.clone()]) {
                Some(c) => return Some(Ok((start, RawItem::Checkpoint(c)))),
                None => Some("malformed checkpoint"),
            },
            _ => Some("unknown frame kind"),
        };
        if let Some(problem) = problem {
            return Some(Err(self.malformed(start, problem.into())));
        }
        raw_record(&self.buf[payload]).map(|r| Ok((start, RawItem::Record(r))))
    }
}

impl<R: Read> Iterator for FrameReader<R> {
    type Item = Result<(u64, Item), FrameError>;

    fn next(&mut self) -> Option<Self::Item> {
        let start = match self.read_frame()? {
            Ok(start) => start,
            Err(e) => return Some(Err(e)),
        };
        match decode_payload(self.buf[0], &self.buf[5..self.buf.len() - 4]) {
            Ok(item) => Some(Ok((start, item))),
            Err(problem) => Some(Err(self.malformed(start, problem.into()))),
        }
    }
}

/// Reads the one frame at `offset` of a trail file.
pub fn read_at(file: &std::fs::File, offset: u64) -> io::Result<Item> {
    use std::os::unix::fs::FileExt;
    let mut head = [0u8; 5];
    file.read_exact_at(&mut head, offset)?;
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]);
    if len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "impossible frame length",
        ));
    }
    let mut frame = vec![0u8; 5 + len as usize + 4];
    frame[..5].copy_from_slice(&head);
    file.read_exact_at(&mut frame[5..], offset + 5)?;
    let invalid = |p: &str| io::Error::new(io::ErrorKind::InvalidData, p.to_owned());
    if !checksum_holds(&frame) {
        return Err(invalid("checksum mismatch"));
    }
    decode_payload(frame[0], &frame[5..frame.len() - 4]).map_err(invalid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::record::{Entry, GENESIS};

    /// Reads its bytes, then fails as a disk that cannot read a sector does.
    struct FailsAfter(std::io::Cursor<Vec<u8>>, u64);

    impl Read for FailsAfter {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0.position() >= self.1 {
                return Err(io::Error::other("Input/output error"));
            }
            let room = (self.1 - self.0.position()) as usize;
            let n = buf.len().min(room);
            self.0.read(&mut buf[..n])
        }
    }

    #[test]
    fn a_record_sealed_into_a_frame_is_the_record_encoded() {
        let entry = Entry {
            request_id: "r-1".into(),
            fields_disclosed: vec!["full_name".into()],
            ..Entry::default()
        };
        let prev = [3; 32];
        let mut out = b"before".to_vec();
        let hash = append_record(&mut out, "gw-1", 9, &entry, prev);
        let r = Record::seal("gw-1", 9, entry, prev);
        assert_eq!(hash, r.hash);
        assert_eq!(&out[6..], &encode(&Item::Record(r))[..]);
    }

    #[test]
    fn a_read_error_is_never_taken_for_a_torn_write() {
        let mut bytes = MAGIC.to_vec();
        let mut prev = GENESIS;
        for i in 0..3 {
            let r = Record::seal("c", i, Entry::default(), prev);
            prev = r.hash;
            bytes.extend(encode(&Item::Record(r)));
        }
        let len = bytes.len() as u64;
        // The last frame fails to read: an I/O error, not a torn tail, although it is the end.
        let fail_at = len - 10;
        let mut reader =
            FrameReader::new(FailsAfter(std::io::Cursor::new(bytes), fail_at), len).unwrap();
        let errors: Vec<FrameError> = reader.by_ref().filter_map(Result::err).collect();
        assert_eq!(errors.len(), 1);
        assert!(!errors[0].at_end, "{:?}", errors[0]);
        assert!(errors[0].problem.contains("unreadable"));
    }
}
