//! The central audit store against the machine's real PostgreSQL, each test in its own schema
//! (dropped afterwards): the shipper follows a trail and resumes; the store verifies on
//! arrival and keeps forged, reordered and conflicting records aside; a gap is reported until
//! it is filled; reviewers query across chains and verify each chain with the public key.
#![allow(clippy::unwrap_used)]

mod common;

use common::services::PgSchema;
use ed25519_dalek::SigningKey;
use lienthong_gateway::audit::central::{self, CentralReader, Shipper, chains, verify_chain};
use lienthong_gateway::audit::index::Filter;
use lienthong_gateway::audit::log::{AuditLog, Settings};
use lienthong_gateway::audit::record::{Checkpoint, Entry, GENESIS, Record};
use lienthong_gateway::config::Central;
use lienthong_gateway::metrics::ShippingMetrics;
use sqlx::PgPool;
use std::path::Path;
use std::time::{Duration, Instant};
use tokio_stream::StreamExt;

/// A schema of its own on the machine's PostgreSQL, dropped when the test ends.
struct Schema {
    settings: Central,
    _schema: PgSchema,
}

impl Schema {
    async fn new() -> Option<Schema> {
        let schema = PgSchema::new()?;
        Some(Schema {
            settings: Central {
                url: schema.url.clone(),
                schema: schema.name.clone(),
                batch: 7,
                max_retry: Duration::from_millis(500),
            },
            _schema: schema,
        })
    }
}

fn key() -> SigningKey {
    SigningKey::from_bytes(&[7; 32])
}

fn settings(dir: &Path, chain: &str) -> Settings {
    Settings {
        dir: dir.to_owned(),
        chain_id: chain.into(),
        signing_key: key(),
        checkpoint_every: 5,
        checkpoint_interval: Duration::from_secs(3600),
        max_batch: 16,
    }
}

fn entry(i: u64) -> Entry {
    Entry {
        time_us: 1_795_000_000_000_000 + i as i64 * 1_000_000,
        request_id: format!("r-{i}"),
        unit_code: "000.00.00.H42".into(),
        officer_code: format!("CB.H42.000{}", i % 3),
        roles: vec!["receiver".into()],
        method: "/lienthong.gateway.v1.CitizenGateway/LookupCitizen".into(),
        procedure_code: "1.004222".into(),
        dossier_id: format!("D-{i}"),
        citizen_pseudonym: format!("{:064x}", i % 5),
        citizen_masked_id: "042•••••••005".into(),
        fields_disclosed: vec!["full_name".into(), "date_of_birth".into()],
        outcome_code: if i % 4 == 3 { 7 } else { 0 },
        outcome_reason: if i % 4 == 3 {
            "FIELD_NOT_ALLOWED".into()
        } else {
            String::new()
        },
        outcome_message: "ệ".into(),
        latency_us: i,
        ..Entry::default()
    }
}

async fn wait_for(pool: &PgPool, chain: &str, verified_next: u64) {
    let started = Instant::now();
    loop {
        let status = chains(pool).await.unwrap_or_default();
        if status
            .iter()
            .any(|c| c.chain_id == chain && c.verified_next == verified_next)
        {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "chain {chain} never reached {verified_next}: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn ingest(pool: &PgPool, chain: &str, records: &[&Record]) -> (i32, i32, i32, i64) {
    let items: Vec<Vec<u8>> = records.iter().map(|r| r.to_bytes()).collect();
    sqlx::query_as("SELECT * FROM ingest_records($1, $2)")
        .bind(chain)
        .bind(items)
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn quarantine(pool: &PgPool) -> Vec<(Option<i64>, String)> {
    sqlx::query_as("SELECT seq, reason FROM quarantine ORDER BY id")
        .fetch_all(pool)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_chains_ship_resume_and_answer_one_query() {
    let Some(schema) = Schema::new().await else {
        return;
    };
    let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    let dir = tempfile::tempdir().unwrap();
    let pool = central::connect(&schema.settings).await.unwrap();
    let metrics = ShippingMetrics::default();
    let mut logs = Vec::new();
    for chain in ["gw-a", "gw-b"] {
        let log = AuditLog::open(settings(&dir.path().join(chain), chain)).unwrap();
        for i in 0..23 {
            log.append(entry(i)).await.unwrap();
        }
        logs.push(log);
    }
    // Ship, stop the shipper half way through a second burst, start it again: it resumes
    // from where the store stands.
    let ship = |stop: tokio::sync::watch::Receiver<bool>| -> Vec<_> {
        logs.iter()
            .zip(["gw-a", "gw-b"])
            .map(|(log, chain)| {
                tokio::spawn(
                    Shipper::new(
                        log.clone(),
                        chain.into(),
                        schema.settings.clone(),
                        metrics.clone(),
                    )
                    .run(stop.clone()),
                )
            })
            .collect()
    };
    let (stop, rx) = tokio::sync::watch::channel(false);
    let shippers = ship(rx);
    wait_for(&pool, "gw-a", 23).await;
    wait_for(&pool, "gw-b", 23).await;
    stop.send(true).unwrap();
    for s in shippers {
        s.await.unwrap();
    }
    for log in &logs {
        for i in 23..40 {
            log.append(entry(i)).await.unwrap();
        }
    }
    let (_stop, rx) = tokio::sync::watch::channel(false);
    ship(rx);
    wait_for(&pool, "gw-a", 40).await;
    wait_for(&pool, "gw-b", 40).await;
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM records")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(stored, 80, "each record once");
    assert!(quarantine(&pool).await.is_empty());

    // One query, both chains: citizen pseudonym 2 is in records 2, 7, 12, … of each.
    let reader = CentralReader::with_pool(pool.clone());
    let found: Vec<Record> = reader
        .query(
            &Filter {
                citizen_pseudonym: format!("{:064x}", 2),
                ..Filter::default()
            },
            100,
        )
        .map(|r| r.unwrap())
        .collect()
        .await;
    assert_eq!(found.len(), 16);
    assert!(found.iter().any(|r| r.chain_id == "gw-a"));
    assert!(found.iter().any(|r| r.chain_id == "gw-b"));
    assert!(
        found
            .windows(2)
            .all(|w| w[0].entry.time_us <= w[1].entry.time_us)
    );
    for r in &found {
        assert_eq!(
            r.recompute(),
            r.hash,
            "the record reads back as it was hashed"
        );
        assert_eq!(r.entry, entry(r.sequence));
    }
    let refused: Vec<Record> = reader
        .query(
            &Filter {
                served: Some(false),
                officer: "CB.H42.0000".into(),
                from_us: Some(entry(10).time_us),
                ..Filter::default()
            },
            100,
        )
        .map(|r| r.unwrap())
        .collect()
        .await;
    let mut seqs: Vec<u64> = refused.iter().map(|r| r.sequence).collect();
    seqs.sort();
    seqs.dedup();
    assert_eq!(
        seqs,
        vec![15, 27, 39],
        "refused, by officer 0, from record 10"
    );

    // Each chain verifies from the store with the public key alone.
    for chain in ["gw-a", "gw-b"] {
        let report = verify_chain(&pool, chain, u64::MAX, vec![key().verifying_key()])
            .await
            .unwrap();
        assert!(report.ok(), "{report:?}");
        assert_eq!(report.records_checked, 40);
        assert!(report.checkpoints_checked >= 7, "{report:?}");
    }
    pool.close().await;
    drop(schema);
}

#[tokio::test]
async fn the_store_refuses_forged_reordered_and_conflicting_records_and_reports_gaps() {
    let Some(schema) = Schema::new().await else {
        return;
    };
    let pool = central::connect(&schema.settings).await.unwrap();
    let mut chain = Vec::new();
    let mut prev = GENESIS;
    for i in 0..8 {
        let r = Record::seal("gw-x", i, entry(i), prev);
        prev = r.hash;
        chain.push(r);
    }
    // 0..3 arrive, then 5..7 (record 4 is late): a gap after 3.
    assert_eq!(
        ingest(&pool, "gw-x", &[&chain[0], &chain[1], &chain[2], &chain[3]]).await,
        (4, 0, 0, 4)
    );
    assert_eq!(
        ingest(&pool, "gw-x", &[&chain[5], &chain[6], &chain[7]]).await,
        (3, 0, 0, 4)
    );
    let status = chains(&pool).await.unwrap();
    assert_eq!(status[0].verified_next, 4);
    assert_eq!(status[0].waiting_past_gap, 3, "{status:?}");

    // Forged: contents edited after hashing.
    let mut edited = chain[4].clone();
    edited.entry.officer_code = "CB.H42.9999".into();
    // Reordered: a real record of another history claiming place 4.
    let other = Record::seal("gw-x", 4, entry(99), [9; 32]);
    // Misdirected: a record of another chain.
    let elsewhere = Record::seal("gw-y", 4, entry(4), chain[3].hash);
    assert_eq!(
        ingest(&pool, "gw-x", &[&edited, &other, &elsewhere]).await,
        (0, 0, 3, 4)
    );
    let reasons = quarantine(&pool).await;
    assert!(reasons[0].1.starts_with("forged"), "{reasons:?}");
    assert!(reasons[1].1.starts_with("reordered"), "{reasons:?}");
    assert!(reasons[2].1.starts_with("misdirected"), "{reasons:?}");

    // The real record 4 fills the gap: the prefix runs to the end.
    assert_eq!(ingest(&pool, "gw-x", &[&chain[4]]).await, (1, 0, 0, 8));
    // Sent again: duplicates, nothing changes.
    assert_eq!(
        ingest(&pool, "gw-x", &[&chain[2], &chain[7]]).await,
        (0, 2, 0, 8)
    );
    // A different record at a place already filled: conflicting, kept aside.
    let conflicting = Record::seal("gw-x", 2, entry(77), chain[1].hash);
    assert_eq!(ingest(&pool, "gw-x", &[&conflicting]).await, (0, 0, 1, 8));
    assert!(quarantine(&pool).await[3].1.starts_with("conflicting"));
    // Garbage: malformed, kept with its bytes.
    let garbage: Vec<Vec<u8>> = vec![vec![1u8; 100]];
    let (_, _, refused, _): (i32, i32, i32, i64) =
        sqlx::query_as("SELECT * FROM ingest_records('gw-x', $1)")
            .bind(garbage)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(refused, 1);

    // A record that arrived past a gap and does not link to the record that fills it.
    let mut prev = chain[7].hash;
    let mut next = Vec::new();
    for i in 8..11 {
        let r = Record::seal("gw-x", i, entry(i), prev);
        prev = r.hash;
        next.push(r);
    }
    let impostor = Record::seal("gw-x", 9, entry(55), [3; 32]);
    assert_eq!(ingest(&pool, "gw-x", &[&impostor]).await, (1, 0, 0, 8));
    assert_eq!(ingest(&pool, "gw-x", &[&next[0]]).await, (1, 0, 1, 9));
    let last = quarantine(&pool).await.pop().unwrap();
    assert_eq!(last.0, Some(9));
    assert!(last.1.contains("does not link to record 8"), "{last:?}");
    assert_eq!(
        ingest(&pool, "gw-x", &[&next[1], &next[2]]).await,
        (2, 0, 0, 11)
    );

    // A checkpoint that names a hash its record does not have.
    let bad = Checkpoint::sign(&key(), "gw-x", 5, [1; 32], 0);
    let kept: bool = sqlx::query_scalar("SELECT ingest_checkpoint('gw-x', $1)")
        .bind(bad.to_bytes())
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(!kept);
    let good = Checkpoint::sign(&key(), "gw-x", 5, chain[5].hash, 0);
    let kept: bool = sqlx::query_scalar("SELECT ingest_checkpoint('gw-x', $1)")
        .bind(good.to_bytes())
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(kept);
    let status = chains(&pool).await.unwrap();
    assert_eq!(status[0].verified_next, 11);
    assert_eq!(status[0].waiting_past_gap, 0);
    assert_eq!(status[0].quarantined, 7, "{status:?}");
    pool.close().await;
    drop(schema);
}
