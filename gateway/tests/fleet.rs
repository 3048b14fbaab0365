//! The gateway as a fleet: replicas (the binary, as separate processes) sharing their rate
//! limits in the machine's Redis and shipping their chains to one central store in the
//! machine's PostgreSQL. Each test uses its own key prefix or schema; outages are made with a
//! proxy the test controls, never by touching the shared services.
#![allow(clippy::unwrap_used)]

mod common;

use common::proxy::Proxy;
use common::services::{self, metric, scrape};
use common::start_gateway;
use lienthong_devtool::call;
use lienthong_devtool::env::{DevPki, RunningMock, ensure_gateway_config, spawn_mock};
use lienthong_proto::gateway::v1 as pb;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};
use tonic_types::StatusExt;

const PERSONA: &str = "042188999005";

/// The PKI, the configuration and the mock database the replicas share.
struct Site {
    dir: tempfile::TempDir,
    config: PathBuf,
    upstream: String,
    pki: DevPki,
    _mock: RunningMock,
}

impl Site {
    async fn new() -> Site {
        let dir = tempfile::tempdir().unwrap();
        let (pki, _) = DevPki::ensure(dir.path()).unwrap();
        let mock = spawn_mock(dir.path(), &pki, 3, 100).await.unwrap();
        let upstream = format!("https://{}", mock.addr);
        let config = ensure_gateway_config(dir.path()).unwrap();
        Site {
            dir,
            config,
            upstream,
            pki,
            _mock: mock,
        }
    }

    /// Starts replica `n` (its own chain and trail directory) with `env` added.
    fn replica(&self, n: u32, env: &[(String, String)], stderr: Stdio) -> Replica {
        let mut all: Vec<(String, String)> = vec![
            (
                "LIENTHONG_GATEWAY__AUDIT__DIR".into(),
                format!("\"audit-{n}\""),
            ),
            (
                "LIENTHONG_GATEWAY__AUDIT__CHAIN_ID".into(),
                format!("\"gw-fleet-{n}\""),
            ),
            ("RUST_LOG".into(), "info".into()),
        ];
        all.extend(env.iter().cloned());
        let pairs: Vec<(&str, &str)> = all.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let (child, endpoint) = start_gateway(&self.config, &self.upstream, &pairs, stderr);
        Replica { child, endpoint }
    }

    async fn caller(&self, replica: &Replica, officer: &str) -> call::Caller {
        call::connect(self.dir.path(), &replica.endpoint, officer)
            .await
            .unwrap()
    }
}

struct Replica {
    child: Child,
    endpoint: String,
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn lookup(caller: &call::Caller, dossier: &str) -> tonic::Request<pb::LookupCitizenRequest> {
    caller.request(pb::LookupCitizenRequest {
        context: call::context("1.004227", dossier),
        subject: Some(pb::lookup_citizen_request::Subject::PersonalId(
            PERSONA.into(),
        )),
        fields: vec!["full_name".into()],
    })
}

/// The shared limiter's settings, with the given Redis address and policy.
fn redis_env(redis: std::net::SocketAddr, prefix: &str, policy: &str) -> Vec<(String, String)> {
    [
        ("LIMITS__BACKEND", "\"redis\"".to_owned()),
        ("LIMITS__REDIS__URL", format!("\"redis://{redis}\"")),
        ("LIMITS__REDIS__KEY_PREFIX", format!("\"{prefix}\"")),
        ("LIMITS__REDIS__ON_FAILURE", format!("\"{policy}\"")),
        ("LIMITS__REDIS__REPLICAS", "2".to_owned()),
        ("LIMITS__REDIS__TIMEOUT_MS", "100".to_owned()),
        ("LIMITS__REDIS__PROBE_INTERVAL_MS", "300".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (format!("LIENTHONG_GATEWAY__{k}"), v))
    .collect()
}

fn with(mut env: Vec<(String, String)>, more: &[(&str, &str)]) -> Vec<(String, String)> {
    env.extend(
        more.iter()
            .map(|(k, v)| (format!("LIENTHONG_GATEWAY__{k}"), (*v).to_owned())),
    );
    env
}

/// The ErrorInfo reason of a refusal.
fn reason(status: &tonic::Status) -> String {
    status
        .get_error_details()
        .error_info()
        .map(|i| i.reason.clone())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_together_admit_the_configured_rate() {
    let Some(redis) = services::redis() else {
        return;
    };
    let site = Site::new().await;
    // One officer's limit binds: 40 calls a second, a burst of 10, whichever replica they reach.
    let env = with(
        redis_env(redis, &services::unique("lt-test"), "fail_closed"),
        &[
            ("UNITS__0__OFFICER_RATE__PER_SECOND", "40"),
            ("UNITS__0__OFFICER_RATE__BURST", "10"),
            ("UNITS__0__RATE__PER_SECOND", "10000"),
            ("UNITS__0__RATE__BURST", "10000"),
        ],
    );
    let replicas = [
        site.replica(1, &env, Stdio::null()),
        site.replica(2, &env, Stdio::null()),
    ];
    let run = Duration::from_secs(3);
    let started = Instant::now();
    let mut load = Vec::new();
    for replica in &replicas {
        for task in 0..6 {
            let caller = site.caller(replica, "CB.H42.0001").await;
            load.push(tokio::spawn(async move {
                let mut caller = caller;
                let (mut admitted, mut limited) = (0u32, 0u32);
                let mut i = 0;
                while started.elapsed() < run {
                    i += 1;
                    match caller
                        .client
                        .lookup_citizen(lookup(&caller, &format!("D-{task}-{i}")))
                        .await
                    {
                        Ok(_) => admitted += 1,
                        Err(s) if reason(&s) == "RATE_LIMITED" => {
                            assert!(s.message().contains("officer"), "{s:?}");
                            limited += 1
                        }
                        Err(s) => panic!("{s:?}"),
                    }
                }
                (admitted, limited)
            }));
        }
    }
    let (mut admitted, mut limited) = (0, 0);
    for task in load {
        let (a, l) = task.await.unwrap();
        admitted += a;
        limited += l;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let expected = 10.0 + 40.0 * elapsed;
    assert!(
        limited > admitted,
        "the load must exceed the limit: {admitted} admitted, {limited} limited"
    );
    let off = (f64::from(admitted) - expected).abs() / expected;
    assert!(
        off < 0.05,
        "{admitted} admitted in {elapsed:.2} s by two replicas; the shared limit allows {expected:.0} ({:.1}% off)",
        off * 100.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_unreachable_fail_closed_refuses_quickly_and_recovers() {
    let Some(redis) = services::redis() else {
        return;
    };
    let proxy = Proxy::start(redis).await;
    let site = Site::new().await;
    let admin = std::net::SocketAddr::from(([127, 0, 0, 1], services::free_port()));
    let log = site.dir.path().join("replica.log");
    let env = with(
        redis_env(proxy.addr, &services::unique("lt-test"), "fail_closed"),
        &[("ADMIN_LISTEN", &format!("\"{admin}\""))],
    );
    let replica = site.replica(1, &env, std::fs::File::create(&log).unwrap().into());
    let mut caller = site.caller(&replica, "CB.H42.0001").await;
    caller
        .client
        .lookup_citizen(lookup(&caller, "D-1"))
        .await
        .unwrap();

    proxy.cut();
    for i in 0..5 {
        let asked = Instant::now();
        let refused = caller
            .client
            .lookup_citizen(lookup(&caller, &format!("D-down-{i}")))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), tonic::Code::Unavailable, "{refused:?}");
        assert_eq!(reason(&refused), "RATE_LIMITER_UNAVAILABLE");
        let details = refused.get_error_details();
        assert_eq!(
            details.retry_info().unwrap().retry_delay,
            Some(Duration::from_millis(300))
        );
        assert!(
            details
                .localized_message()
                .unwrap()
                .message
                .contains("giới hạn tần suất"),
            "{refused:?}"
        );
        // The timeout is 100 ms: no call waits much longer than that for Redis.
        assert!(
            asked.elapsed() < Duration::from_secs(1),
            "{:?}",
            asked.elapsed()
        );
    }
    let body = scrape(admin).await;
    assert_eq!(metric(&body, "lienthong_rate_limit_backend_up"), Some(0.0));
    assert_eq!(
        metric(
            &body,
            r#"lienthong_rate_limit_backend_bypassed_total{policy="fail_closed"}"#
        ),
        Some(5.0)
    );
    assert!(metric(&body, "lienthong_rate_limit_backend_failures_total").unwrap() >= 1.0);

    proxy.restore();
    let back = Instant::now();
    loop {
        match caller
            .client
            .lookup_citizen(lookup(&caller, "D-back"))
            .await
        {
            Ok(_) => break,
            Err(s) if reason(&s) == "RATE_LIMITER_UNAVAILABLE" => {
                assert!(
                    back.elapsed() < Duration::from_secs(10),
                    "Redis never came back"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(s) => panic!("{s:?}"),
        }
    }
    let body = scrape(admin).await;
    assert_eq!(metric(&body, "lienthong_rate_limit_backend_up"), Some(1.0));
    drop(replica);
    let log = std::fs::read_to_string(&log).unwrap();
    let down: Vec<_> = log
        .lines()
        .filter(|l| l.contains("shared rate limiter (Redis) unreachable"))
        .collect();
    assert_eq!(down.len(), 1, "one line when it goes down:\n{log}");
    assert!(
        down[0].contains("fail_closed") && down[0].contains("ERROR"),
        "{}",
        down[0]
    );
    assert!(log.contains("answers again"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_unreachable_fail_open_admits_this_replicas_share() {
    let Some(redis) = services::redis() else {
        return;
    };
    let proxy = Proxy::start(redis).await;
    let site = Site::new().await;
    // The officer may make 10 calls a second with a burst of 4; two replicas share that, so
    // alone each admits a burst of 2.
    let admin = std::net::SocketAddr::from(([127, 0, 0, 1], services::free_port()));
    let env = with(
        redis_env(proxy.addr, &services::unique("lt-test"), "fail_open"),
        &[
            ("ADMIN_LISTEN", &format!("\"{admin}\"")),
            ("UNITS__0__OFFICER_RATE__PER_SECOND", "10"),
            ("UNITS__0__OFFICER_RATE__BURST", "4"),
        ],
    );
    proxy.cut();
    let replica = site.replica(1, &env, Stdio::null());
    let mut caller = site.caller(&replica, "CB.H42.0001").await;
    let mut outcomes = Vec::new();
    for i in 0..4 {
        let asked = Instant::now();
        let answer = caller
            .client
            .lookup_citizen(lookup(&caller, &format!("D-open-{i}")))
            .await;
        assert!(
            asked.elapsed() < Duration::from_secs(1),
            "{:?}",
            asked.elapsed()
        );
        outcomes.push(match answer {
            Ok(_) => "ok".to_owned(),
            Err(s) => reason(&s),
        });
    }
    assert_eq!(
        outcomes,
        ["ok", "ok", "RATE_LIMITED", "RATE_LIMITED"],
        "this replica's share: a burst of 2"
    );

    // Redis back (another officer's calls until the limiter says so): the whole burst of 4,
    // shared.
    proxy.restore();
    let mut other = site.caller(&replica, "CB.H42.0002").await;
    let back = Instant::now();
    loop {
        let _ = other.client.lookup_citizen(lookup(&other, "D-probe")).await;
        if metric(&scrape(admin).await, "lienthong_rate_limit_backend_up") == Some(1.0) {
            break;
        }
        assert!(
            back.elapsed() < Duration::from_secs(10),
            "Redis never came back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut admitted = 0;
    for i in 0..6 {
        if caller
            .client
            .lookup_citizen(lookup(&caller, &format!("D-shared-{i}")))
            .await
            .is_ok()
        {
            admitted += 1;
        }
    }
    assert_eq!(admitted, 4, "the shared burst");
}

/// The central store's settings for a replica, through `at` (the proxy), in `schema`.
fn central_env(at: std::net::SocketAddr, schema: &str) -> Vec<(String, String)> {
    [
        (
            "AUDIT__CENTRAL__URL",
            format!("\"postgres://postgres@{at}/test\""),
        ),
        ("AUDIT__CENTRAL__SCHEMA", format!("\"{schema}\"")),
        ("AUDIT__CENTRAL__MAX_RETRY_MS", "400".to_owned()),
        ("AUDIT__CHECKPOINT_EVERY", "50".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (format!("LIENTHONG_GATEWAY__{k}"), v))
    .collect()
}

type Acked = std::sync::Arc<std::sync::Mutex<std::collections::BTreeMap<(String, u64), String>>>;

/// Lookups as `officer` on `replica` until `stop` or the replica goes away; every receipt
/// (chain, sequence → hash) goes into `acked`.
fn load(
    mut caller: call::Caller,
    acked: Acked,
    stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut i = 0;
        while !*stop.borrow() {
            i += 1;
            match caller
                .client
                .lookup_citizen(lookup(&caller, &format!("D-{i}")))
                .await
            {
                Ok(reply) => {
                    let md = reply.metadata();
                    let get = |k: &str| md.get(k).unwrap().to_str().unwrap().to_owned();
                    acked.lock().unwrap().insert(
                        (
                            get("x-audit-chain"),
                            get("x-audit-sequence").parse().unwrap(),
                        ),
                        get("x-audit-hash"),
                    );
                }
                Err(s) if reason(&s) == "RATE_LIMITED" => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(_) => return,
            }
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_receipt_of_two_replicas_reaches_the_central_store() {
    use lienthong_gateway::audit::central::{chains, verify_chain};
    use lienthong_gateway::audit::record::hex;
    use lienthong_gateway::audit::verify::public_key_from_pem;
    let Some(schema) = services::PgSchema::new() else {
        return;
    };
    let pg: std::net::SocketAddr = schema.url["postgres://postgres@".len()..]
        .trim_end_matches("/test")
        .parse()
        .unwrap();
    let proxy = Proxy::start(pg).await;
    let site = Site::new().await;
    let env = central_env(proxy.addr, &schema.name);
    let mut r1 = site.replica(1, &env, Stdio::null());
    let admin = std::net::SocketAddr::from(([127, 0, 0, 1], services::free_port()));
    let r2 = site.replica(
        2,
        &with(env.clone(), &[("ADMIN_LISTEN", &format!("\"{admin}\""))]),
        Stdio::null(),
    );
    // Polls replica 2's metrics until `ok` holds of (central up, lag in records).
    let shipping = |ok: fn(f64, f64) -> bool, what: &'static str| async move {
        let started = Instant::now();
        loop {
            let body = scrape(admin).await;
            let up = metric(&body, "lienthong_audit_central_up").unwrap_or(-1.0);
            let lag = metric(&body, "lienthong_audit_ship_lag_records").unwrap_or(-1.0);
            if ok(up, lag) {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "{what}: central_up {up}, lag {lag}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let acked: Acked = Default::default();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut tasks = vec![
        load(
            site.caller(&r1, "CB.H42.0001").await,
            acked.clone(),
            stopped.clone(),
        ),
        load(
            site.caller(&r2, "CB.H42.0002").await,
            acked.clone(),
            stopped.clone(),
        ),
        load(
            site.caller(&r2, "CB.H56.0001").await,
            acked.clone(),
            stopped.clone(),
        ),
    ];
    let count = |chain: &str| {
        acked
            .lock()
            .unwrap()
            .keys()
            .filter(|(c, _)| c == chain)
            .count()
    };
    let until = |n: usize, chain: &'static str| {
        let started = Instant::now();
        async move {
            while count(chain) < n {
                assert!(
                    started.elapsed() < Duration::from_secs(30),
                    "the load stalled"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    };
    until(60, "gw-fleet-1").await;
    // PostgreSQL goes away; replica 1 is killed mid-load with its backlog unshipped.
    proxy.cut();
    // Replica 2 says so: the store is down and its backlog grows.
    shipping(
        |up, lag| up == 0.0 && lag > 0.0,
        "the outage on the metrics",
    )
    .await;
    let before_kill = count("gw-fleet-1");
    until(before_kill + 60, "gw-fleet-1").await;
    r1.child.kill().unwrap();
    r1.child.wait().unwrap();
    // It restarts while the store is still away, and serves.
    r1 = site.replica(1, &env, Stdio::null());
    tasks.push(load(
        site.caller(&r1, "CB.H42.0003").await,
        acked.clone(),
        stopped.clone(),
    ));
    let after_restart = count("gw-fleet-1");
    until(after_restart + 40, "gw-fleet-1").await;
    proxy.restore();
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.send(true).unwrap();
    for t in tasks {
        let _ = t.await;
    }
    let acked = acked.lock().unwrap().clone();

    // Every acknowledged receipt is in the store with its hash; each chain verifies there.
    let pool = sqlx::PgPool::connect_with(
        schema
            .url
            .parse::<sqlx::postgres::PgConnectOptions>()
            .unwrap()
            .options([("search_path", schema.name.as_str())]),
    )
    .await
    .unwrap();
    let last = |chain: &str| {
        acked
            .keys()
            .filter(|(c, _)| c == chain)
            .map(|(_, s)| *s)
            .max()
            .unwrap()
    };
    let started = Instant::now();
    loop {
        let status = chains(&pool).await.unwrap_or_default();
        let done = ["gw-fleet-1", "gw-fleet-2"].iter().all(|chain| {
            status
                .iter()
                .any(|c| c.chain_id == *chain && c.verified_next > last(chain))
        });
        if done {
            assert!(status.iter().all(|c| c.quarantined == 0), "{status:?}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the backlog was not shipped: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    shipping(
        |up, lag| up == 1.0 && lag == 0.0,
        "the backlog shipped, on the metrics",
    )
    .await;
    let stored: Vec<(String, i64, Vec<u8>)> =
        sqlx::query_as("SELECT chain_id, seq, hash FROM records")
            .fetch_all(&pool)
            .await
            .unwrap();
    let stored: std::collections::HashMap<(String, u64), String> = stored
        .into_iter()
        .map(|(c, s, h)| ((c, s as u64), hex(&h)))
        .collect();
    for (key, hash) in &acked {
        assert_eq!(
            stored.get(key),
            Some(hash),
            "receipt {key:?} not in the store"
        );
    }
    let public_key =
        public_key_from_pem(&std::fs::read_to_string(&site.pki.audit_signing.public_key).unwrap())
            .unwrap();
    for chain in ["gw-fleet-1", "gw-fleet-2"] {
        let report = verify_chain(&pool, chain, u64::MAX, vec![public_key])
            .await
            .unwrap();
        assert!(report.ok(), "{chain}: {report:?}");
        assert!(report.checkpoints_checked >= 1, "{chain}: {report:?}");
    }

    // A national auditor asks one replica for the persona's accesses in every chain.
    let auditor = lienthong_devtool::sample::officer("CB.C06.KT01").unwrap();
    let unit = lienthong_devtool::sample::unit("national-audit").unwrap();
    let files = site.pki.unit(unit);
    let token = lienthong_devtool::tokens::mint(
        &site.pki.issuer.key,
        &lienthong_devtool::tokens::TokenSpec::new(auditor.code, unit.code, auditor.roles)
            .bound_to_file(&files.cert)
            .unwrap(),
    )
    .unwrap();
    let channel = lienthong_devtool::client::mtls_channel(&r2.endpoint, &site.pki.ca, Some(&files))
        .await
        .unwrap();
    let mut audit =
        lienthong_proto::audit::v1::audit_service_client::AuditServiceClient::new(channel);
    let mut request = tonic::Request::new(lienthong_proto::audit::v1::QueryRequest {
        personal_id: PERSONA.into(),
        all_replicas: true,
        limit: 100_000,
        ..Default::default()
    });
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let mut stream = audit.query(request).await.unwrap().into_inner();
    let mut found: std::collections::BTreeMap<String, usize> = Default::default();
    while let Some(r) = stream.message().await.unwrap() {
        assert!(r.citizen_masked_id.starts_with("042"), "{r:?}");
        *found.entry(r.chain_id).or_default() += 1;
    }
    for chain in ["gw-fleet-1", "gw-fleet-2"] {
        let served = acked.keys().filter(|(c, _)| c == chain).count();
        assert!(
            found.get(chain).copied().unwrap_or(0) >= served,
            "{chain}: {found:?}, {served} served"
        );
    }
    // The query is itself on replica 2's trail, saying it read the central store.
    drop(r2);
    let trail = site.dir.path().join("audit-2/gw-fleet-2.trail");
    let file = std::fs::File::open(&trail).unwrap();
    let len = file.metadata().unwrap().len();
    let query_record =
        lienthong_gateway::audit::frame::FrameReader::new(std::io::BufReader::new(file), len)
            .unwrap()
            .map_while(Result::ok)
            .find_map(|(_, item)| match item {
                lienthong_gateway::audit::frame::Item::Record(r)
                    if r.entry.method.ends_with("/Query") =>
                {
                    Some(r)
                }
                _ => None,
            })
            .expect("the query's record");
    assert!(
        query_record
            .entry
            .fields_disclosed
            .contains(&"audit_source:central".to_owned()),
        "{:?}",
        query_record.entry
    );
    drop(r1);
    pool.close().await;
    drop(schema);
}
