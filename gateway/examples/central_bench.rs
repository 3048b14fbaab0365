//! The central audit store measured on a real PostgreSQL: ingest throughput through the
//! store's own checks (`ingest_records`), then the reviewers' queries over what it holds.
//!
//! `cargo run --release -p lienthong-gateway --example central_bench -- postgres://postgres@127.0.0.1:5432/test 1000000`
//!
//! Works in a schema of its own (`lt_bench_<pid>`), dropped at the end. Two chains of N/2
//! records each: 20,000 citizens, 300 officers in 30 units, 10 procedures, one in eight refused.
#![allow(clippy::unwrap_used)]

use lienthong_gateway::audit::central::{self, CentralReader};
use lienthong_gateway::audit::index::Filter;
use lienthong_gateway::audit::record::{Entry, GENESIS, Record};
use lienthong_gateway::config::Central;
use std::time::{Duration, Instant};
use tokio_stream::StreamExt;

fn entry(i: u64) -> Entry {
    let refused = i % 8 == 7;
    Entry {
        time_us: 1_795_000_000_000_000 + i as i64 * 10_000,
        request_id: format!("bench-{i:x}"),
        unit_code: format!("000.00.00.H{:02}", i % 30),
        cert_fingerprint: "ab".repeat(32),
        peer_address: "10.0.0.7:55012".into(),
        officer_code: format!("CB.H{:02}.{:04}", i % 30, i % 300),
        roles: vec!["receiver".into()],
        method: "/lienthong.gateway.v1.CitizenGateway/LookupCitizen".into(),
        procedure_code: format!("1.00422{}", i % 10),
        dossier_id: format!("H42.01-{i}"),
        purpose: "administrative_procedure".into(),
        citizen_pseudonym: format!("{:064x}", (i * 7919) % 20_000),
        citizen_masked_id: "042•••••••005".into(),
        fields_disclosed: if refused {
            vec![]
        } else {
            vec![
                "full_name".into(),
                "date_of_birth".into(),
                "permanent_address".into(),
            ]
        },
        outcome_code: if refused { 7 } else { 0 },
        outcome_reason: if refused {
            "FIELD_NOT_ALLOWED".into()
        } else {
            String::new()
        },
        outcome_message: String::new(),
        latency_us: 900,
    }
}

/// The i-th query of a kind.
type MakeFilter = Box<dyn Fn(u64) -> Filter>;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".into());
    let n: u64 = args.next().map(|a| a.parse().unwrap()).unwrap_or(1_000_000);
    let settings = Central {
        url,
        schema: format!("lt_bench_{}", std::process::id()),
        batch: 1000,
        max_retry: Duration::from_secs(1),
    };
    let pool = central::connect(&settings).await.unwrap();
    let started = Instant::now();
    let mut sent = 0u64;
    for chain in ["gw-bench-1", "gw-bench-2"] {
        let mut prev = GENESIS;
        let mut batch = Vec::with_capacity(1000);
        for seq in 0..n / 2 {
            let r = Record::seal(
                chain,
                seq,
                entry(seq * 2 + u64::from(chain.ends_with('2'))),
                prev,
            );
            prev = r.hash;
            batch.push(r.to_bytes());
            if batch.len() == 1000 || seq + 1 == n / 2 {
                let (_, _, refused, _): (i32, i32, i32, i64) =
                    sqlx::query_as("SELECT * FROM ingest_records($1, $2)")
                        .bind(chain)
                        .bind(std::mem::take(&mut batch))
                        .fetch_one(&pool)
                        .await
                        .unwrap();
                assert_eq!(refused, 0);
            }
            sent += 1;
        }
    }
    let took = started.elapsed();
    println!(
        "ingest: {sent} records in {:.1} s through ingest_records (batches of 1000): {:.0} records/s",
        took.as_secs_f64(),
        sent as f64 / took.as_secs_f64()
    );
    sqlx::query("ANALYZE records").execute(&pool).await.unwrap();
    let reader = CentralReader::with_pool(pool.clone());
    let queries: Vec<(&str, MakeFilter)> = vec![
        (
            "by citizen (all their accesses)",
            Box::new(|i| Filter {
                citizen_pseudonym: format!("{:064x}", (i * 31) % 20_000),
                ..Filter::default()
            }),
        ),
        (
            "by officer, one day",
            Box::new(|i| Filter {
                officer: format!("CB.H{:02}.{:04}", i % 30, i % 300),
                from_us: Some(1_795_000_000_000_000 + (i as i64 % 100) * 1_000_000_000),
                to_us: Some(
                    1_795_000_000_000_000 + (i as i64 % 100) * 1_000_000_000 + 86_400_000_000,
                ),
                ..Filter::default()
            }),
        ),
        (
            "by unit, refused, first 100",
            Box::new(|i| Filter {
                unit: format!("000.00.00.H{:02}", i % 30),
                served: Some(false),
                ..Filter::default()
            }),
        ),
        (
            "by procedure and reason, first 100",
            Box::new(|i| Filter {
                procedure: format!("1.00422{}", i % 10),
                reason: "FIELD_NOT_ALLOWED".into(),
                ..Filter::default()
            }),
        ),
    ];
    for (name, filter) in &queries {
        let mut times = Vec::new();
        let mut rows = 0;
        for i in 0..200 {
            let started = Instant::now();
            let found: Vec<_> = reader.query(&filter(i), 100).collect().await;
            times.push(started.elapsed());
            rows += found.len();
            assert!(found.iter().all(|r| r.is_ok()));
        }
        times.sort();
        println!(
            "query {name}: p50 {:.2} ms, p99 {:.2} ms ({:.0} records per answer)",
            percentile(&times, 0.5).as_secs_f64() * 1e3,
            percentile(&times, 0.99).as_secs_f64() * 1e3,
            rows as f64 / 200.0
        );
    }
    sqlx::query(&format!("DROP SCHEMA \"{}\" CASCADE", settings.schema))
        .execute(&pool)
        .await
        .unwrap();
}
