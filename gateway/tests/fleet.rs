//! The gateway as a fleet: replicas (the binary, as separate processes) sharing their rate
//! limits in the machine's Redis. Each test uses its own key prefix; Redis outages are made
//! with a proxy the test controls, never by touching the shared service.
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
