//! What the tests against a fleet's central store share: the machine's PostgreSQL with a schema
//! of the test's own, a checkpoint key on disk, and a chain of records to ingest.
#![allow(dead_code, clippy::unwrap_used)]

use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::EncodePublicKey;
use lienthong_gateway::audit::record::{Entry, GENESIS, Record};
use std::path::{Path, PathBuf};

/// The central store: its URL, the test's own schema (migrated), and a pool on it.
pub struct Store {
    pub url: String,
    pub schema: String,
    pub pool: sqlx::PgPool,
}

impl Store {
    /// The machine's PostgreSQL, or None when it is not reachable (the test says it skipped;
    /// under LIENTHONG_REQUIRE_SERVICES=1 it fails instead).
    pub async fn open(tag: &str) -> Option<Self> {
        let pg =
            std::env::var("LIENTHONG_TEST_POSTGRES").unwrap_or_else(|_| "127.0.0.1:5432".into());
        if std::net::TcpStream::connect(&pg).is_err() {
            let message = format!(
                "PostgreSQL is not reachable at {pg}: start one (README, Fleet) or set LIENTHONG_TEST_POSTGRES"
            );
            assert_ne!(
                std::env::var("LIENTHONG_REQUIRE_SERVICES").as_deref(),
                Ok("1"),
                "{message}"
            );
            eprintln!("SKIPPED: {message}");
            return None;
        }
        let url = format!("postgres://postgres@{pg}/test");
        let schema = format!("lt_test_{tag}_{}", std::process::id());
        let settings = lienthong_gateway::config::Central {
            url: url.clone(),
            schema: schema.clone(),
            batch: 100,
            max_retry: std::time::Duration::from_secs(1),
        };
        let pool = lienthong_gateway::audit::central::connect(&settings)
            .await
            .unwrap();
        Some(Self { url, schema, pool })
    }

    pub async fn ingest(&self, chain: &str, records: &[Record]) {
        let items: Vec<Vec<u8>> = records.iter().map(Record::to_bytes).collect();
        sqlx::query("SELECT * FROM ingest_records($1, $2)")
            .bind(chain)
            .bind(items)
            .execute(&self.pool)
            .await
            .unwrap();
    }

    /// A checkpoint over `records[seq]`, signed with `key`.
    pub async fn checkpoint(&self, key: &SigningKey, chain: &str, seq: u64, hash: [u8; 32]) {
        let c = lienthong_gateway::audit::record::Checkpoint::sign(key, chain, seq, hash, 0);
        sqlx::query("SELECT ingest_checkpoint($1, $2)")
            .bind(chain)
            .bind(c.to_bytes())
            .execute(&self.pool)
            .await
            .unwrap();
    }

    pub async fn drop_schema(&self) {
        sqlx::query(&format!("DROP SCHEMA \"{}\" CASCADE", self.schema))
            .execute(&self.pool)
            .await
            .unwrap();
    }
}

/// A checkpoint signing key, and its public key written as PEM in `dir`.
pub fn signing_key(dir: &Path, seed: u8) -> (SigningKey, PathBuf) {
    let key = SigningKey::from_bytes(&[seed; 32]);
    let pem = dir.join("audit.pub.pem");
    let text = key.verifying_key().to_public_key_pem(Default::default());
    std::fs::write(&pem, text.unwrap()).unwrap();
    (key, pem)
}

/// A chain of `n` sealed records, one a microsecond.
pub fn chain(chain_id: &str, n: u64) -> Vec<Record> {
    let mut prev = GENESIS;
    (0..n)
        .map(|i| {
            let entry = Entry {
                time_us: 1_795_000_000_000_000 + i as i64,
                officer_code: "CB.H42.0001".into(),
                ..Entry::default()
            };
            let r = Record::seal(chain_id, i, entry, prev);
            prev = r.hash;
            r
        })
        .collect()
}
