//! The central audit store (PostgreSQL): every replica ships its chain there, in order, so that
//! one query answers for the whole fleet. The local trail stays the source of truth (a reply
//! waits for its fsync, never for the store); the [`Shipper`] follows it, idempotently (the
//! store is keyed by chain and sequence, and a record it already holds is a duplicate) and
//! resumably (it asks the store where its chain stands). The store verifies each record on
//! arrival itself (`migrations/`): the hash, the link to the record before, the chain; what
//! does not hold is kept aside in `quarantine`, and a chain with a gap says so until it is
//! filled.

use super::AuditLog;
use super::frame::RawItem;
use super::index::Filter;
use super::record::{Checkpoint, Record};
use crate::config::Central;
use crate::metrics::ShippingMetrics;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{QueryBuilder, Row};
use std::str::FromStr;
use std::time::Duration;
use tokio::sync::watch;
use tokio_stream::{Stream, StreamExt};

/// The store's schema, versioned files applied at start.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// What went wrong with the central store.
#[derive(Debug, thiserror::Error)]
pub enum CentralError {
    #[error("the central audit store cannot be reached or refused the request: {0}")]
    Database(#[from] sqlx::Error),
    #[error("the central audit store's schema cannot be brought up to date: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("the local trail cannot be read for shipping: {0}")]
    Trail(String),
}

fn options(settings: &Central) -> Result<PgConnectOptions, CentralError> {
    Ok(PgConnectOptions::from_str(&settings.url)?
        .application_name("lienthong-gateway")
        .options([
            ("search_path", settings.schema.as_str()),
            ("statement_timeout", "30s"),
        ]))
}

/// A pool on the store's schema that connects when first used (the gateway starts whether or
/// not the store is up).
pub fn lazy_pool(settings: &Central) -> Result<PgPool, CentralError> {
    Ok(PgPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(3))
        .connect_lazy_with(options(settings)?))
}

/// Connects, creates the schema if needed and applies the migrations not yet applied.
pub async fn connect(settings: &Central) -> Result<PgPool, CentralError> {
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(3))
        .connect_with(options(settings)?)
        .await?;
    // The schema name was checked at load (lowercase letters, digits, '_'). Two replicas
    // starting together may both create it: the loser's unique violation means it is there.
    let created = sqlx::query(&format!(
        "CREATE SCHEMA IF NOT EXISTS \"{}\"",
        settings.schema
    ))
    .execute(&pool)
    .await;
    match created {
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("23505") => {}
        other => {
            other?;
        }
    }
    MIGRATOR.run(&pool).await?;
    Ok(pool)
}

/// What one shipping pass did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Shipped {
    pub accepted: u64,
    pub duplicates: u64,
    pub refused: u64,
    /// The chain's verified prefix in the store after the pass.
    pub verified_next: u64,
}

/// One batch read from the trail: stored forms of records, checkpoints, the oldest record's time.
struct Batch {
    records: Vec<Vec<u8>>,
    checkpoints: Vec<Vec<u8>>,
    oldest_us: Option<i64>,
}

/// Reads up to `max` records from `from` (and the checkpoints among them), stopping before
/// `until` (what has been acknowledged: nothing unacknowledged leaves the replica).
fn read_batch(log: &AuditLog, from: u64, until: u64, max: usize) -> Result<Batch, CentralError> {
    let mut batch = Batch {
        records: Vec::new(),
        checkpoints: Vec::new(),
        oldest_us: None,
    };
    let Some(mut frames) = log
        .frames_from(from)
        .map_err(|e| CentralError::Trail(e.to_string()))?
    else {
        return Ok(batch);
    };
    while let Some(frame) = frames.next_raw() {
        let (_, item) = match frame {
            Ok(frame) => frame,
            // The writer is appending the frame after the last one read: it is not
            // acknowledged yet, so this batch ends here.
            Err(e) if e.at_end => break,
            Err(e) => {
                return Err(CentralError::Trail(format!(
                    "byte {}: {}",
                    e.offset, e.problem
                )));
            }
        };
        match item {
            RawItem::Record(r) => {
                if r.sequence >= until || batch.records.len() >= max {
                    break;
                }
                if batch.oldest_us.is_none() {
                    batch.oldest_us = Record::from_bytes(&stored(&r)).map(|r| r.entry.time_us);
                }
                batch.records.push(stored(&r));
            }
            RawItem::Checkpoint(c) if c.sequence < until => batch.checkpoints.push(c.to_bytes()),
            RawItem::Checkpoint(_) => break,
        }
    }
    Ok(batch)
}

/// A record's stored form: canonical ‖ prev_hash ‖ hash.
fn stored(r: &super::frame::RawRecord<'_>) -> Vec<u8> {
    let mut b = Vec::with_capacity(r.canonical.len() + 64);
    b.extend_from_slice(r.canonical);
    b.extend_from_slice(&r.prev_hash);
    b.extend_from_slice(&r.hash);
    b
}

/// Follows the local trail and ships every acknowledged record and checkpoint to the store.
pub struct Shipper {
    log: AuditLog,
    chain_id: String,
    settings: Central,
    metrics: ShippingMetrics,
}

impl Shipper {
    pub fn new(
        log: AuditLog,
        chain_id: String,
        settings: Central,
        metrics: ShippingMetrics,
    ) -> Self {
        Self {
            log,
            chain_id,
            settings,
            metrics,
        }
    }

    /// The store's verified prefix of this chain (0 when it has never seen it).
    async fn position(&self, pool: &PgPool) -> Result<u64, CentralError> {
        let next: Option<i64> =
            sqlx::query_scalar("SELECT verified_next FROM chains WHERE chain_id = $1")
                .bind(&self.chain_id)
                .fetch_optional(pool)
                .await?;
        Ok(next.unwrap_or(0).max(0) as u64)
    }

    /// Ships one batch from `next`; returns what the store did.
    async fn ship_batch(&self, pool: &PgPool, next: u64) -> Result<Shipped, CentralError> {
        let acknowledged = self.log.acknowledged();
        self.metrics.shipped.set(next);
        self.metrics
            .lag_records
            .set(acknowledged.saturating_sub(next));
        if next >= acknowledged {
            self.metrics.lag_seconds.set(0.0);
            return Ok(Shipped {
                verified_next: next,
                ..Shipped::default()
            });
        }
        let log = self.log.clone();
        let max = self.settings.batch;
        let batch = tokio::task::spawn_blocking(move || read_batch(&log, next, acknowledged, max))
            .await
            .map_err(|e| CentralError::Trail(e.to_string()))??;
        if let Some(oldest) = batch.oldest_us {
            let age = (super::log::timestamp_us() - oldest).max(0) as f64 / 1e6;
            self.metrics.lag_seconds.set(age);
        }
        let mut tx = pool.begin().await?;
        let row = sqlx::query(
            "SELECT accepted, duplicates, refused, verified_next FROM ingest_records($1, $2)",
        )
        .bind(&self.chain_id)
        .bind(&batch.records)
        .fetch_one(&mut *tx)
        .await?;
        let mut shipped = Shipped {
            accepted: row.get::<i32, _>(0).max(0) as u64,
            duplicates: row.get::<i32, _>(1).max(0) as u64,
            refused: row.get::<i32, _>(2).max(0) as u64,
            verified_next: row.get::<i64, _>(3).max(0) as u64,
        };
        for checkpoint in &batch.checkpoints {
            let kept: bool = sqlx::query_scalar("SELECT ingest_checkpoint($1, $2)")
                .bind(&self.chain_id)
                .bind(checkpoint)
                .fetch_one(&mut *tx)
                .await?;
            shipped.refused += u64::from(!kept);
        }
        tx.commit().await?;
        self.metrics.refused.inc_by(shipped.refused);
        self.metrics.shipped.set(shipped.verified_next);
        self.metrics
            .lag_records
            .set(acknowledged.saturating_sub(shipped.verified_next));
        Ok(shipped)
    }

    /// Ships until `stop` turns true, then makes one last pass (bounded) so that a graceful
    /// shutdown leaves nothing behind when the store is up; what it cannot ship is shipped at
    /// the next start.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut pool: Option<PgPool> = None;
        let mut next = 0u64;
        let mut down = false;
        let mut wait = Duration::from_millis(200);
        // The sequence at which the store refused this replica's own record: shipping stops
        // there (it would be refused again) until an operator has looked.
        let mut stalled: Option<u64> = None;
        loop {
            let stopping = *stop.borrow();
            let pass = async {
                let p = match &pool {
                    Some(p) => p.clone(),
                    None => {
                        let p = connect(&self.settings).await?;
                        next = self.position(&p).await?;
                        pool = Some(p.clone());
                        p
                    }
                };
                let mut progressed = false;
                loop {
                    if stalled == Some(next) {
                        return Ok::<bool, CentralError>(progressed);
                    }
                    let shipped = self.ship_batch(&p, next).await?;
                    if shipped.refused > 0 {
                        tracing::warn!(
                            chain = %self.chain_id,
                            refused = shipped.refused,
                            "the central audit store refused records or checkpoints and kept them aside (see its quarantine table)"
                        );
                    }
                    if shipped.verified_next <= next {
                        if shipped.accepted + shipped.duplicates + shipped.refused > 0 {
                            stalled = Some(next);
                            tracing::error!(
                                chain = %self.chain_id,
                                sequence = next,
                                "the central audit store holds a different record at this sequence, or refuses this one: shipping of this chain has stopped; compare the local trail with the store (auditctl verify --central)"
                            );
                        }
                        return Ok(progressed);
                    }
                    progressed = true;
                    next = shipped.verified_next;
                }
            };
            let outcome = if stopping {
                tokio::time::timeout(Duration::from_secs(5), pass)
                    .await
                    .unwrap_or(Ok(false))
            } else {
                pass.await
            };
            match outcome {
                Ok(_) => {
                    if down {
                        tracing::info!(chain = %self.chain_id, shipped_to = next, "central audit store reachable again: the backlog is shipped");
                    }
                    down = false;
                    wait = Duration::from_millis(200);
                    self.metrics.up.set(1);
                }
                Err(e) => {
                    self.metrics.failures.inc();
                    self.metrics.up.set(0);
                    // A database error may have left the connections unusable; a trail read
                    // error says nothing about them.
                    if !matches!(e, CentralError::Trail(_)) {
                        pool = None;
                    }
                    if !down {
                        tracing::error!(chain = %self.chain_id, problem = %e, "central audit store unreachable or refusing the shipment: records are kept on this replica and shipped when it answers");
                    }
                    down = true;
                    wait = (wait * 2).min(self.settings.max_retry);
                }
            }
            if stopping {
                return;
            }
            // New records wake the shipper at the next poll; a failure waits longer.
            let pause = if down {
                wait
            } else {
                Duration::from_millis(100)
            };
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = stop.changed() => {}
            }
        }
    }
}

/// Reads the store for reviewers: records matching a filter across every chain.
#[derive(Clone)]
pub struct CentralReader {
    pool: PgPool,
}

impl CentralReader {
    pub fn new(settings: &Central) -> Result<Self, CentralError> {
        Ok(Self {
            pool: lazy_pool(settings)?,
        })
    }

    pub fn with_pool(pool: PgPool) -> Self {
        Self { pool }
    }

    /// The records matching `filter` in every chain, oldest first, at most `limit`, streamed
    /// as PostgreSQL returns them.
    pub fn query(
        &self,
        filter: &Filter,
        limit: usize,
    ) -> impl Stream<Item = Result<Record, CentralError>> + Send + 'static {
        let mut q = QueryBuilder::<sqlx::Postgres>::new(
            "SELECT canonical, prev_hash, hash FROM records WHERE true",
        );
        let text = |q: &mut QueryBuilder<sqlx::Postgres>, column: &str, value: &str| {
            if !value.is_empty() {
                q.push(format!(" AND {column} = "));
                q.push_bind(value.to_owned());
            }
        };
        text(&mut q, "officer_code", &filter.officer);
        text(&mut q, "unit_code", &filter.unit);
        text(&mut q, "citizen_pseudonym", &filter.citizen_pseudonym);
        text(&mut q, "procedure_code", &filter.procedure);
        text(&mut q, "outcome_reason", &filter.reason);
        // A reason is a refusal's: saying so lets the refusals' partial indexes answer.
        let refused = filter.served == Some(false) || !filter.reason.is_empty();
        match filter.served {
            Some(true) => {
                q.push(" AND outcome_code = 0");
            }
            _ if refused => {
                q.push(" AND outcome_code <> 0");
            }
            _ => {}
        }
        if let Some(units) = &filter.units_in {
            q.push(" AND unit_code = ANY(");
            q.push_bind(units.clone());
            q.push(")");
        }
        if let Some(from) = filter.from_us {
            q.push(" AND time_us >= ");
            q.push_bind(from);
        }
        if let Some(to) = filter.to_us {
            q.push(" AND time_us < ");
            q.push_bind(to);
        }
        q.push(" ORDER BY time_us, chain_id, seq LIMIT ");
        q.push_bind(limit as i64);
        let pool = self.pool.clone();
        async_stream(move |tx| async move {
            let mut rows = q.build().fetch(&pool);
            while let Some(row) = rows.next().await {
                let item = row.map_err(CentralError::from).and_then(|row| {
                    let mut b: Vec<u8> = row.get(0);
                    b.extend_from_slice(&row.get::<Vec<u8>, _>(1));
                    b.extend_from_slice(&row.get::<Vec<u8>, _>(2));
                    Record::from_bytes(&b).ok_or_else(|| {
                        CentralError::Trail("the store returned a malformed record".into())
                    })
                });
                if tx.send(item).await.is_err() {
                    return;
                }
            }
        })
    }
}

/// A stream fed by a task (the query's rows borrow the pool; the task owns it).
fn async_stream<T, F, Fut>(f: F) -> impl Stream<Item = T> + Send + 'static
where
    T: Send + 'static,
    F: FnOnce(tokio::sync::mpsc::Sender<T>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(f(tx));
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

/// One chain as the store holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainStatus {
    pub chain_id: String,
    /// Records 0 .. verified_next-1 are present and linked (checked by the store on arrival).
    pub verified_next: u64,
    /// Records stored past a gap, waiting for it to be filled.
    pub waiting_past_gap: u64,
    pub quarantined: u64,
}

/// Every chain in the store.
pub async fn chains(pool: &PgPool) -> Result<Vec<ChainStatus>, CentralError> {
    let rows = sqlx::query(
        "SELECT chain_id, verified_next, waiting_past_gap, quarantined FROM chain_status ORDER BY chain_id",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| ChainStatus {
            chain_id: r.get(0),
            verified_next: r.get::<i64, _>(1).max(0) as u64,
            waiting_past_gap: r.get::<i64, _>(2).max(0) as u64,
            quarantined: r.get::<i64, _>(3).max(0) as u64,
        })
        .collect())
}

/// A chain's records (from sequence 0, in order, those before `below`) and checkpoints, merged
/// as they would stand in a trail: each checkpoint after the record it covers. For
/// verification with the public keys only.
pub fn chain_items(
    pool: &PgPool,
    chain_id: &str,
    below: u64,
) -> impl Stream<Item = Result<super::frame::Item, CentralError>> + Send + 'static {
    let pool = pool.clone();
    let chain = chain_id.to_owned();
    async_stream(move |tx| async move {
        let checkpoints: Result<Vec<Vec<u8>>, _> = sqlx::query_scalar(
            "SELECT body FROM checkpoints WHERE chain_id = $1 AND seq < $2 ORDER BY seq",
        )
        .bind(&chain)
        .bind(i64::try_from(below).unwrap_or(i64::MAX))
        .fetch_all(&pool)
        .await;
        let checkpoints = match checkpoints {
            Ok(c) => c,
            Err(e) => {
                let _ = tx.send(Err(e.into())).await;
                return;
            }
        };
        let decoded: Vec<Checkpoint> = checkpoints
            .iter()
            .filter_map(|b| Checkpoint::from_bytes(b))
            .collect();
        let mut checkpoints = decoded.into_iter().peekable();
        let mut rows = sqlx::query(
            "SELECT canonical, prev_hash, hash FROM records WHERE chain_id = $1 AND seq < $2 ORDER BY seq",
        )
        .bind(&chain)
        .bind(i64::try_from(below).unwrap_or(i64::MAX))
        .fetch(&pool);
        while let Some(row) = rows.next().await {
            let record = match row {
                Ok(row) => {
                    let mut b: Vec<u8> = row.get(0);
                    b.extend_from_slice(&row.get::<Vec<u8>, _>(1));
                    b.extend_from_slice(&row.get::<Vec<u8>, _>(2));
                    Record::from_bytes(&b)
                        .ok_or_else(|| CentralError::Trail("a malformed record".into()))
                }
                Err(e) => Err(e.into()),
            };
            let seq = record.as_ref().map(|r| r.sequence).ok();
            if tx
                .send(record.map(super::frame::Item::Record))
                .await
                .is_err()
            {
                return;
            }
            while let (Some(seq), Some(c)) = (seq, checkpoints.peek()) {
                if c.sequence > seq {
                    break;
                }
                let c = checkpoints.next().map(super::frame::Item::Checkpoint);
                if let Some(c) = c
                    && tx.send(Ok(c)).await.is_err()
                {
                    return;
                }
            }
        }
    })
}

/// Verifies a chain's records before `below` and their checkpoints as they stand in the store,
/// from sequence 0, with the public keys only (the verifier a trail file gets, not the store's
/// own checks). The rows are read as the verifier goes, never gathered in memory.
pub async fn verify_chain(
    pool: &PgPool,
    chain_id: &str,
    below: u64,
    keys: Vec<ed25519_dalek::VerifyingKey>,
) -> Result<super::verify::Report, CentralError> {
    let mut items = Box::pin(chain_items(pool, chain_id, below));
    let handle = tokio::runtime::Handle::current();
    let options = super::verify::Options {
        keys,
        from_genesis: true,
        to_sequence: None,
        anchor: None,
    };
    tokio::task::spawn_blocking(move || {
        let frames = std::iter::from_fn(|| handle.block_on(items.next())).map(|item| {
            item.map(|i| (0, i)).map_err(|e| super::frame::FrameError {
                offset: 0,
                at_end: false,
                problem: e.to_string(),
            })
        });
        super::verify::verify(frames, &options)
    })
    .await
    .map_err(|e| CentralError::Trail(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::log::Settings;
    use crate::audit::record::Entry;

    /// The writer may be in the middle of the frame after the last acknowledged record: the
    /// batch ends there, it is not a damaged trail.
    #[tokio::test]
    async fn a_frame_being_written_ends_the_batch() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open(Settings {
            dir: dir.path().to_owned(),
            chain_id: "gw-t".into(),
            signing_key: ed25519_dalek::SigningKey::from_bytes(&[1; 32]),
            checkpoint_every: 1000,
            checkpoint_interval: Duration::from_secs(3600),
            max_batch: 8,
        })
        .unwrap();
        for i in 0..3 {
            log.append(Entry {
                request_id: format!("r-{i}"),
                ..Entry::default()
            })
            .await
            .unwrap();
        }
        // Half a frame at the end, as a write in progress leaves it.
        use std::io::Write;
        std::fs::OpenOptions::new()
            .append(true)
            .open(log.path())
            .unwrap()
            .write_all(&[0, 0, 0, 1, 0, 7, 7])
            .unwrap();
        let batch = read_batch(&log, 0, 3, 100).unwrap();
        assert_eq!(batch.records.len(), 3);
        let batch = read_batch(&log, 1, 3, 100).unwrap();
        assert_eq!(batch.records.len(), 2);
        assert_eq!(
            Record::from_bytes(&batch.records[0])
                .unwrap()
                .entry
                .request_id,
            "r-1"
        );
    }
}
