//! `lienthong-dev up` as a container runtime or a service manager stops it: SIGTERM drains and
//! exits cleanly, like Ctrl-C, and the gateway's trail ends with its closing checkpoint; a
//! second `up` on a running environment says where it runs.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[cfg(unix)]
#[test]
fn sigterm_stops_the_environment_like_ctrl_c() {
    let dir = tempfile::tempdir().unwrap();
    let mut up = dev(dir.path(), &["up", "--citizens", "50"])
        .args([
            "--gateway-listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
        ])
        .args([
            "--csdl-listen",
            "127.0.0.1:0",
            "--csdl-admin-listen",
            "127.0.0.1:0",
        ])
        .args(["--csdl-metrics-listen", "127.0.0.1:0"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Serving once it has printed what a one-stop system needs.
    let mut stdout = BufReader::new(up.stdout.take().unwrap()).lines();
    let mut printed = String::new();
    for line in stdout.by_ref() {
        let line = line.unwrap();
        printed.push_str(&line);
        printed.push('\n');
        if line.trim_start().starts_with("endpoint") && line.contains("https://127.0.0.1:") {
            break;
        }
    }
    assert!(
        printed.contains("Liên Thông mock environment is up"),
        "{printed}"
    );
    // The rest of what it prints, read so that it never waits on a full pipe.
    std::thread::spawn(move || stdout.for_each(drop));
    // One call, so that the trail has a record for the closing checkpoint to cover.
    let endpoint = printed
        .lines()
        .find_map(|l| l.split_whitespace().find(|w| w.starts_with("https://")))
        .unwrap()
        .to_owned();
    let call = dev(dir.path(), &["call", "lookup", "042188999005"])
        .args(["--procedure", "1.004222", "--endpoint", &endpoint])
        .output()
        .unwrap();
    assert!(call.status.success(), "{call:?}");
    // A second `up` on the same directory says it is running, and where.
    let again = dev(dir.path(), &["up", "--citizens", "50"])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&again.stderr);
    assert!(!again.status.success());
    assert!(
        said.contains("is already running") && said.contains(&endpoint),
        "{said}"
    );
    let pid = up.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let started = Instant::now();
    let status = loop {
        if let Some(status) = up.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "up did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut up.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(status.success(), "{status:?}\n{stderr}");
    assert!(
        stderr.contains("stopping: draining in-flight calls"),
        "{stderr}"
    );
    assert!(
        !dir.path().join("up.running").exists(),
        "the running mark is removed at a clean stop"
    );
    // The gateway closed its trail: it ends with a checkpoint.
    let trail = dir.path().join("audit/gw-dev-1.trail");
    let file = std::fs::File::open(&trail).unwrap();
    let len = file.metadata().unwrap().len();
    let last = lienthong_gateway::audit::frame::FrameReader::new(BufReader::new(file), len)
        .unwrap()
        .map(|f| f.unwrap().1)
        .last();
    assert!(
        matches!(
            last,
            Some(lienthong_gateway::audit::frame::Item::Checkpoint(_))
        ),
        "{last:?}"
    );
}

/// `lienthong-dev --dir <dir> <args…>`.
fn dev(dir: &std::path::Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_lienthong-dev"));
    command.arg("--dir").arg(dir).args(args);
    command
}
