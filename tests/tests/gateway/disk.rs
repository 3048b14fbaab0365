//! The trail's disk misbehaving: full under a running gateway (fails closed with UNAVAILABLE /
//! AUDIT_UNAVAILABLE and health NOT_SERVING, and serves again by itself once space is freed),
//! read-only at start (a clear error), the file removed under a running gateway (fails closed
//! until a restart). The audit directory is a small tmpfs mounted for the test (root is
//! needed to mount; CI runs as root and insists on it).

use crate::helpers::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use tonic::Code;

/// A tmpfs mounted for a test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(path: &Path, size: &str) -> Option<Self> {
        std::fs::create_dir_all(path).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .status()
            .is_ok_and(|s| s.success());
        if !ok && std::env::var_os("CI").is_some() {
            panic!("CI must be able to mount a tmpfs (run as root)");
        }
        ok.then(|| Tmpfs(path.to_owned()))
    }

    /// Remounts with `options` (e.g. `ro`); only possible while nothing holds a file open for
    /// writing.
    fn remount(&self, options: &str) {
        let ok = Command::new("mount")
            .args(["-o", &format!("remount,{options}")])
            .arg(&self.0)
            .status()
            .unwrap()
            .success();
        assert!(ok, "remount {options}");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

async fn health(env: &TestEnv) -> i32 {
    let mut h = tonic_health::pb::health_client::HealthClient::new(env.channel(None).await);
    h.check(tonic_health::pb::HealthCheckRequest {
        service: String::new(),
    })
    .await
    .unwrap()
    .into_inner()
    .status
}

/// Waits up to 10 s for the overall health status.
async fn wait_health(env: &TestEnv, want: tonic_health::ServingStatus) {
    let want = want as i32;
    for _ in 0..200 {
        if health(env).await == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("health never became {want}");
}

/// Fills a file system until it refuses another byte.
fn fill(dir: &Path) -> PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    for size in [64 * 1024, 4096, 1] {
        let chunk = vec![0u8; size];
        while f.write_all(&chunk).is_ok() {}
    }
    let _ = f.sync_all();
    path
}

#[tokio::test]
async fn a_full_disk_fails_closed_and_the_gateway_serves_again_when_space_is_freed() {
    let mut mounted = None;
    let mut env = spawn_env_prepared(&[], |dir| {
        mounted = Tmpfs::mount(&dir.join("audit"), "4m");
    })
    .await;
    let Some(disk) = mounted else {
        eprintln!("skipped: cannot mount a tmpfs here (not root)");
        return;
    };
    let adult = persona("complete-adult");
    let mut s = env.officer("CB.H42.0001").await;
    let first = receipt_sequence(s.lookup("1.004222", adult).await.unwrap().metadata());

    // Full: the last page of the trail still takes a few records; then refused without
    // data, NOT_SERVING.
    let filler = fill(&disk.0);
    let mut first = first;
    let e = loop {
        match s.lookup("1.004222", adult).await {
            Ok(r) => first = receipt_sequence(r.metadata()),
            Err(e) => break e,
        }
        assert!(first < 100, "a full disk kept taking records");
    };
    assert_refused(&e, Code::Unavailable, "AUDIT_UNAVAILABLE");
    wait_health(&env, tonic_health::ServingStatus::NotServing).await;
    let e = s.lookup("1.004222", adult).await.unwrap_err();
    assert_refused(&e, Code::Unavailable, "AUDIT_UNAVAILABLE");
    // Space freed: serving again, the chain going on where it stopped.
    std::fs::remove_file(filler).unwrap();
    wait_health(&env, tonic_health::ServingStatus::Serving).await;
    let next = receipt_sequence(s.lookup("1.004222", adult).await.unwrap().metadata());
    assert_eq!(next, first + 1, "the failed calls left no record");

    env.shutdown().await;
    let report = lienthong_gateway::audit::verify::verify_file(
        &env.trail(),
        &lienthong_gateway::audit::verify::Options {
            keys: vec![
                lienthong_gateway::audit::verify::public_key_from_pem(
                    &std::fs::read_to_string(&env.pki.audit_signing.public_key).unwrap(),
                )
                .unwrap(),
            ],
            from_genesis: true,
            to_sequence: None,
            anchor: None,
        },
    )
    .unwrap();
    assert!(report.ok(), "{report:?}");
    drop(disk);
}

#[tokio::test]
async fn a_trail_removed_under_the_gateway_fails_closed_until_a_restart() {
    let env = spawn_env().await;
    let adult = persona("complete-adult");
    let mut s = env.officer("CB.H42.0001").await;
    s.lookup("1.004222", adult).await.unwrap();
    std::fs::remove_file(env.trail()).unwrap();
    for _ in 0..2 {
        let e = s.lookup("1.004222", adult).await.unwrap_err();
        assert_refused(&e, Code::Unavailable, "AUDIT_UNAVAILABLE");
    }
    wait_health(&env, tonic_health::ServingStatus::NotServing).await;
    // It does not come back by itself: nothing is written to a file nobody can read.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        health(&env).await,
        tonic_health::ServingStatus::NotServing as i32
    );
    assert!(!env.trail().exists());
}

#[tokio::test]
async fn a_read_only_audit_folder_stops_the_start_with_a_clear_error() {
    use lienthong_devtool::env::{DevPki, ensure_gateway_config, spawn_mock};
    let dir = tempfile::tempdir().unwrap();
    let Some(disk) = Tmpfs::mount(&dir.path().join("audit"), "1m") else {
        eprintln!("skipped: cannot mount a tmpfs here (not root)");
        return;
    };
    disk.remount("ro");
    let (pki, _) = DevPki::ensure(dir.path()).unwrap();
    let mock = spawn_mock(dir.path(), &pki, 7, 50).await.unwrap();
    let config = ensure_gateway_config(dir.path()).unwrap();
    let e = match lienthong_devtool::env::bind_gateway(
        &config,
        "127.0.0.1:0".parse().unwrap(),
        mock.addr,
    )
    .await
    {
        Ok(_) => panic!("a gateway started on a read-only audit folder"),
        Err(e) => e.to_string(),
    };
    assert!(
        e.contains("Read-only file system") && e.contains("audit.dir") && e.contains("writable"),
        "{e}"
    );
}
