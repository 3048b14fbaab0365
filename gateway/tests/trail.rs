//! The trail on disk: each kind of tampering is found and the first bad sequence named; a torn
//! last record is cut at start, damage in the middle stops the start with the sequence and byte.
#![allow(clippy::unwrap_used)]

use ed25519_dalek::SigningKey;
use lienthong_gateway::audit::frame::{self, FrameReader, Item};
use lienthong_gateway::audit::index::{Filter, Index, IndexKeys};
use lienthong_gateway::audit::log::{AuditError, AuditLog, Settings, trail_path};
use lienthong_gateway::audit::record::{Entry, Record};
use lienthong_gateway::audit::verify::{Options, Report, verify, verify_file};
use std::io::BufReader;
use std::path::Path;
use std::time::Duration;

fn key() -> SigningKey {
    SigningKey::from_bytes(&[7; 32])
}

fn settings(dir: &Path) -> Settings {
    Settings {
        dir: dir.to_owned(),
        chain_id: "gw-test".into(),
        signing_key: key(),
        checkpoint_every: 4,
        checkpoint_interval: Duration::from_secs(3600),
        max_batch: 3,
    }
}

fn entry(i: u64) -> Entry {
    Entry {
        time_us: 1_795_000_000_000_000 + i as i64 * 1_000_000,
        request_id: format!("r-{i}"),
        unit_code: "000.00.00.H42".into(),
        officer_code: format!("CB.H42.000{}", i % 3),
        method: "/lienthong.gateway.v1.CitizenGateway/LookupCitizen".into(),
        procedure_code: "1.004222".into(),
        dossier_id: format!("D-{i}"),
        citizen_pseudonym: format!("{:064x}", i % 5),
        fields_disclosed: vec!["full_name".into()],
        ..Entry::default()
    }
}

/// A trail of `n` records (checkpoints every 4, and one at close).
async fn trail(dir: &Path, n: u64) {
    let log = AuditLog::open(settings(dir)).unwrap();
    for i in 0..n {
        let r = log.append(entry(i)).await.unwrap();
        assert_eq!(r.sequence, i);
    }
    log.close().await;
}

fn items(path: &Path) -> Vec<Item> {
    let file = std::fs::File::open(path).unwrap();
    let len = file.metadata().unwrap().len();
    FrameReader::new(BufReader::new(file), len)
        .unwrap()
        .map(|i| i.unwrap().1)
        .collect()
}

fn write(path: &Path, items: &[Item]) {
    let mut bytes = frame::MAGIC.to_vec();
    for i in items {
        bytes.extend(frame::encode(i));
    }
    std::fs::write(path, bytes).unwrap();
}

/// Checks a trail both ways — decoding every record, and hashing the stored bytes as the fast
/// path does — and insists that they agree.
fn check(path: &Path, anchor: Option<&Item>) -> Report {
    let anchor = anchor.and_then(|a| match a {
        Item::Checkpoint(c) => Some(c.clone()),
        _ => None,
    });
    let file = std::fs::File::open(path).unwrap();
    let len = file.metadata().unwrap().len();
    let opts = Options {
        keys: vec![key().verifying_key()],
        from_genesis: true,
        to_sequence: None,
        anchor,
    };
    let decoded = verify(FrameReader::new(BufReader::new(file), len).unwrap(), &opts);
    let fast = verify_file(path, &opts).unwrap();
    assert_eq!(fast, decoded, "the two ways of checking disagree");
    fast
}

/// Options for a whole trail, with these keys.
fn with_keys(keys: Vec<ed25519_dalek::VerifyingKey>) -> Options {
    Options {
        keys,
        from_genesis: true,
        to_sequence: None,
        anchor: None,
    }
}

/// The index runs on disk, oldest first.
fn run_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut runs: Vec<_> = std::fs::read_dir(dir.join("index"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "idx"))
        .collect();
    runs.sort();
    runs
}

/// Every record's index keys, read from the trail.
fn trail_keys(dir: &Path) -> Vec<IndexKeys> {
    let file = std::fs::File::open(trail_path(dir, "gw-test")).unwrap();
    let len = file.metadata().unwrap().len();
    FrameReader::new(BufReader::new(file), len)
        .unwrap()
        .filter_map(|i| match i.unwrap() {
            (offset, Item::Record(r)) => Some(IndexKeys::of(r.sequence, &r.entry, offset, r.hash)),
            _ => None,
        })
        .collect()
}

/// Replaces the indexes with runs of the given keys, one run per batch.
fn write_runs(dir: &Path, batches: &[&[IndexKeys]]) {
    let index = Index::open(&dir.join("index")).unwrap();
    index.clear();
    for keys in batches {
        index.add_keys(keys).unwrap();
    }
}

/// Who looked at each of the five pseudonyms: every record, in order.
fn assert_every_citizen_found(log: &AuditLog, n: u64) {
    for p in 0..5u64 {
        let filter = Filter {
            citizen_pseudonym: format!("{p:064x}"),
            ..Default::default()
        };
        let expected: Vec<u64> = (0..n).filter(|i| i % 5 == p).collect();
        assert_eq!(sequences(log, &filter, 100), expected, "pseudonym {p}");
    }
}

/// The sequences a query finds.
fn sequences(log: &AuditLog, filter: &Filter, limit: usize) -> Vec<u64> {
    log.query(filter, limit)
        .unwrap()
        .iter()
        .map(|r| r.sequence)
        .collect()
}

fn record_index(items: &[Item], seq: u64) -> usize {
    items
        .iter()
        .position(|i| matches!(i, Item::Record(r) if r.sequence == seq))
        .unwrap()
}

#[tokio::test]
async fn an_untouched_trail_verifies() {
    let dir = tempfile::tempdir().unwrap();
    trail(dir.path(), 10).await;
    let path = trail_path(dir.path(), "gw-test");
    let r = check(&path, None);
    assert!(r.ok(), "{r:?}");
    assert_eq!(r.records_checked, 10);
    assert_eq!(r.checkpoints_checked, 3, "at 3, 7 and the closing one at 9");
    assert_eq!(r.uncovered, 0);
}

#[tokio::test]
async fn each_kind_of_tampering_names_the_first_bad_sequence() {
    let dir = tempfile::tempdir().unwrap();
    trail(dir.path(), 10).await;
    let path = trail_path(dir.path(), "gw-test");
    let original = items(&path);
    let last_checkpoint = original.last().cloned();
    type Tamper = Box<dyn Fn(&mut Vec<Item>)>;
    let cases: Vec<(&str, Tamper, u64, &str)> = vec![
        (
            "edited",
            Box::new(|v: &mut Vec<Item>| {
                let i = record_index(v, 5);
                if let Item::Record(r) = &mut v[i] {
                    r.entry.officer_code = "CB.H42.9999".into();
                }
            }),
            5,
            "edited",
        ),
        (
            "removed",
            Box::new(|v: &mut Vec<Item>| {
                let i = record_index(v, 5);
                v.remove(i);
            }),
            5,
            "removed",
        ),
        (
            "reordered",
            Box::new(|v: &mut Vec<Item>| {
                let (a, b) = (record_index(v, 5), record_index(v, 6));
                v.swap(a, b);
            }),
            5,
            "",
        ),
        (
            "inserted (a forged record with the next sequence and a valid hash)",
            Box::new(|v: &mut Vec<Item>| {
                let i = record_index(v, 5);
                let Item::Record(prev) = &v[i - 1] else {
                    panic!()
                };
                let forged = Record::seal("gw-test", 5, entry(99), prev.hash);
                v.insert(i, Item::Record(forged));
            }),
            5,
            "",
        ),
        (
            "rewritten (every hash after the edit recomputed)",
            Box::new(|v: &mut Vec<Item>| {
                let mut prev = None;
                for item in v.iter_mut() {
                    if let Item::Record(r) = item {
                        if r.sequence == 5 {
                            r.entry.dossier_id = "FORGED".into();
                        }
                        if let Some(p) = prev {
                            r.prev_hash = p;
                        }
                        r.hash = r.recompute();
                        prev = Some(r.hash);
                    }
                }
            }),
            4,
            "rewritten",
        ),
    ];
    for (what, tamper, first_bad, says) in cases {
        let mut v = original.clone();
        tamper(&mut v);
        write(&path, &v);
        let r = check(&path, None);
        let (seq, problem) = r
            .first_bad
            .clone()
            .unwrap_or_else(|| panic!("{what}: not detected"));
        assert_eq!(seq, first_bad, "{what}: {problem}");
        assert!(problem.contains(says), "{what}: {problem}");
    }

    // Truncated at a frame boundary, closing checkpoint included: only an anchor (a checkpoint
    // the reviewer kept, e.g. from ListCheckpoints or an export) shows what is missing.
    let mut v = original.clone();
    let cut = record_index(&v, 8);
    v.truncate(cut);
    write(&path, &v);
    assert!(
        check(&path, None).ok(),
        "a prefix of a trail is a valid trail"
    );
    let r = check(&path, last_checkpoint.as_ref());
    let (seq, problem) = r.first_bad.unwrap();
    assert_eq!(seq, 8, "{problem}");
    assert!(problem.contains("truncated"), "{problem}");

    // Bytes changed in place without fixing the checksum.
    write(&path, &original);
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    std::fs::write(&path, &bytes).unwrap();
    let r = check(&path, None);
    assert!(r.first_bad.is_some());
}

#[tokio::test]
async fn a_torn_last_record_is_cut_and_the_chain_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    trail(dir.path(), 6).await;
    let path = trail_path(dir.path(), "gw-test");
    let whole = std::fs::read(&path).unwrap();
    // Half a record at the end, as a crash mid-write leaves it.
    let half = frame::encode(&Item::Record(Record::seal("gw-test", 6, entry(6), [0; 32])));
    let mut torn = whole.clone();
    torn.extend_from_slice(&half[..half.len() / 2]);
    std::fs::write(&path, &torn).unwrap();
    let log = AuditLog::open(settings(dir.path())).unwrap();
    assert_eq!(
        std::fs::read(&path).unwrap().len(),
        whole.len(),
        "torn tail cut"
    );
    let r = log.append(entry(6)).await.unwrap();
    assert_eq!(r.sequence, 6);
    log.close().await;
    assert!(check(&path, None).ok());
}

#[tokio::test]
async fn damage_in_the_middle_stops_the_start_and_says_where() {
    let dir = tempfile::tempdir().unwrap();
    trail(dir.path(), 6).await;
    let path = trail_path(dir.path(), "gw-test");
    let mut v = items(&path);
    let i = record_index(&v, 2);
    if let Item::Record(r) = &mut v[i] {
        r.entry.fields_disclosed.push("phone".into());
    }
    write(&path, &v);
    let before = std::fs::read(&path).unwrap();
    match AuditLog::open(settings(dir.path())) {
        Err(AuditError::Inconsistent { sequence, .. }) => assert_eq!(sequence, 2),
        Err(other) => panic!("{other}"),
        Ok(_) => panic!("a damaged trail was opened"),
    }
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "the trail is left as it was"
    );
}

#[tokio::test]
async fn indexes_are_rebuilt_when_missing_and_answer_queries() {
    let dir = tempfile::tempdir().unwrap();
    trail(dir.path(), 12).await;
    assert!(!run_files(dir.path()).is_empty());
    std::fs::remove_dir_all(dir.path().join("index")).unwrap();
    let log = AuditLog::open(settings(dir.path())).unwrap();
    let filter = Filter {
        citizen_pseudonym: format!("{:064x}", 2),
        ..Default::default()
    };
    let found = sequences(&log, &filter, 100);
    assert_eq!(found, [2, 7]);
    let by_officer = Filter {
        officer: "CB.H42.0001".into(),
        ..Default::default()
    };
    let found = sequences(&log, &by_officer, 2);
    assert_eq!(found, [1, 4], "oldest first, limited");
    log.close().await;
}

#[tokio::test]
async fn indexes_that_disagree_with_the_trail_are_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    trail(dir.path(), 8).await;
    // Indexes from another history: as many records, but not this trail's last hash.
    let mut keys = trail_keys(dir.path());
    keys[7].hash = [9; 32];
    write_runs(dir.path(), &[&keys]);
    let log = AuditLog::open(settings(dir.path())).unwrap();
    let filter = Filter {
        officer: "CB.H42.0002".into(),
        ..Default::default()
    };
    let found = sequences(&log, &filter, 100);
    assert_eq!(found, [2, 5]);
    assert_eq!(log.record(7).unwrap().unwrap().entry.request_id, "r-7");
    log.close().await;
}

#[tokio::test]
async fn a_run_lost_from_the_middle_is_indexed_again_with_everything_after_it() {
    let dir = tempfile::tempdir().unwrap();
    trail(dir.path(), 12).await;
    let keys = trail_keys(dir.path());
    write_runs(dir.path(), &[&keys[..4], &keys[4..8], &keys[8..]]);
    let runs = run_files(dir.path());
    assert_eq!(runs.len(), 3, "three runs of four: too few to merge");
    std::fs::remove_file(&runs[1]).unwrap();
    let log = AuditLog::open(settings(dir.path())).unwrap();
    assert_every_citizen_found(&log, 12);
    log.close().await;
    assert!(!run_files(dir.path()).is_empty());
}

#[tokio::test]
async fn a_damaged_run_is_removed_and_its_records_indexed_again() {
    let dir = tempfile::tempdir().unwrap();
    trail(dir.path(), 12).await;
    let keys = trail_keys(dir.path());
    write_runs(dir.path(), &[&keys[..4], &keys[4..]]);
    let runs = run_files(dir.path());
    assert_eq!(runs.len(), 2);
    // A crash after the rename, before the data reached the disk: the right size, zeros.
    let len = std::fs::metadata(&runs[0]).unwrap().len() as usize;
    std::fs::write(&runs[0], vec![0u8; len]).unwrap();
    let log = AuditLog::open(settings(dir.path())).unwrap();
    assert_every_citizen_found(&log, 12);
    log.close().await;
}

#[tokio::test]
async fn an_index_that_lost_entries_is_caught_by_its_count_and_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    trail(dir.path(), 12).await;
    // Well-formed runs, and the head agrees with the trail, but one index lost entries.
    let mut keys = trail_keys(dir.path());
    for k in keys.iter_mut().step_by(3) {
        k.values[2] = None;
    }
    write_runs(dir.path(), &[&keys]);
    let log = AuditLog::open(settings(dir.path())).unwrap();
    assert_every_citizen_found(&log, 12);
    log.close().await;
}

#[tokio::test]
async fn indexes_of_an_older_format_are_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    trail(dir.path(), 12).await;
    // A run of an earlier format, and the sled indexes of earlier builds beside it.
    for run in run_files(dir.path()) {
        let mut bytes = std::fs::read(&run).unwrap();
        bytes[7] = b'2';
        std::fs::write(&run, bytes).unwrap();
    }
    let older = dir.path().join("index.sled");
    std::fs::create_dir(&older).unwrap();
    std::fs::write(older.join("db"), b"sled").unwrap();
    let log = AuditLog::open(settings(dir.path())).unwrap();
    assert!(!older.exists(), "the older indexes are removed");
    let filter = Filter {
        citizen_pseudonym: format!("{:064x}", 3),
        ..Default::default()
    };
    assert_eq!(sequences(&log, &filter, 100), [3, 8]);
    log.close().await;
}

#[tokio::test]
async fn a_second_process_on_the_same_indexes_is_refused_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(settings(dir.path())).unwrap();
    let second = Index::open(&dir.path().join("index"));
    let e = second.err().expect("the directory is locked");
    assert!(e.to_string().contains("in use"), "{e}");
    log.close().await;
    drop(log);
    // Released with the log.
    Index::open(&dir.path().join("index")).unwrap();
}

#[tokio::test]
async fn a_query_after_the_last_receipt_finds_every_record_not_yet_in_a_run() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(settings(dir.path())).unwrap();
    // Appends in flight together, so the writer commits them in batches.
    let appends: Vec<_> = (0..40)
        .map(|i| {
            let log = log.clone();
            tokio::spawn(async move { log.append(entry(i)).await.unwrap().sequence })
        })
        .collect();
    let mut sequences_written = Vec::new();
    for a in appends {
        sequences_written.push(a.await.unwrap());
    }
    sequences_written.sort();
    assert_eq!(sequences_written, (0..40).collect::<Vec<_>>());
    // The indexer writes keys as a run every 200 ms; asked at once, the query (and a read
    // by sequence) finds them among the keys still in memory.
    let before = log.acknowledged();
    assert_eq!(before, 40);
    let filter = Filter {
        officer: "CB.H42.0001".into(),
        before: Some(before),
        ..Default::default()
    };
    let expected: Vec<u64> = (0..40).filter(|i| i % 3 == 1).collect();
    assert_eq!(sequences(&log, &filter, 100), expected);
    assert_eq!(log.record(39).unwrap().unwrap().entry.request_id, "r-39");
    log.close().await;
}

#[tokio::test]
async fn checkpoints_signed_before_a_key_rotation_verify_with_the_retired_key() {
    let dir = tempfile::tempdir().unwrap();
    trail(dir.path(), 5).await;
    let new_key = SigningKey::from_bytes(&[8; 32]);
    let log = AuditLog::open(Settings {
        signing_key: new_key.clone(),
        ..settings(dir.path())
    })
    .unwrap();
    for i in 5..9 {
        log.append(entry(i)).await.unwrap();
    }
    log.close().await;
    let path = trail_path(dir.path(), "gw-test");
    let only_new = verify_file(&path, &with_keys(vec![new_key.verifying_key()])).unwrap();
    let (seq, problem) = only_new.first_bad.unwrap();
    assert_eq!(seq, 3, "the first checkpoint, signed with the old key");
    assert!(problem.contains("WRONG KEY"), "{problem}");
    let both = verify_file(
        &path,
        &with_keys(vec![new_key.verifying_key(), key().verifying_key()]),
    )
    .unwrap();
    assert!(both.ok(), "{both:?}");
    assert_eq!(
        both.checkpoints_checked, 3,
        "at 3 and 4 with the old key, at 8 with the new"
    );
}

/// A record whose frame and header are sound but whose entry does not decode (found by the
/// `trail` fuzz target): the reader that decodes and the one that hashes the stored bytes name
/// the same first bad sequence.
#[test]
fn both_verifiers_agree_on_a_record_whose_entry_is_malformed() {
    let bytes = include_bytes!("../../fuzz/corpus/trail/malformed-entry-sequence-0");
    let opts = Options {
        keys: vec![key().verifying_key()],
        from_genesis: true,
        to_sequence: None,
        anchor: None,
    };
    let len = bytes.len() as u64;
    let decoded = verify(FrameReader::new(&bytes[..], len).unwrap(), &opts);
    let stored = lienthong_gateway::audit::verify::verify_stored(&bytes[..], len, &opts).unwrap();
    assert_eq!(decoded.records_checked, stored.records_checked);
    let first_bad = |r: &Report| r.first_bad.as_ref().map(|(s, _)| *s);
    assert_eq!(first_bad(&decoded), Some(2), "{decoded:?}");
    assert_eq!(first_bad(&stored), Some(2), "{stored:?}");
    assert!(stored.first_bad.unwrap().1.contains("malformed record"));
}
