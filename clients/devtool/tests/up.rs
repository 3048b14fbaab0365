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
    let Up {
        mut child,
        endpoint,
        printed,
        ..
    } = Up::start(dir.path());
    assert!(
        printed.contains("Liên Thông mock environment is up"),
        "{printed}"
    );
    // One call, so that the trail has a record for the closing checkpoint to cover.
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
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "up did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
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

/// A team's sandbox is reached by its own names: `pki --host` issues the server certificates
/// for them, `up` keeps them, a caller checking any of them connects and one checking another
/// name is refused; a name that cannot be certified is refused with what to give instead.
#[cfg(unix)]
#[test]
fn server_certificates_name_the_hosts_a_team_reaches_them_by() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dev(dir.path(), &["pki", "--host", "sandbox tinh.gov.vn"])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success());
    assert!(
        said.contains("\"sandbox tinh.gov.vn\" is not a host name") && said.contains("10.0.0.5"),
        "{said}"
    );
    let pki = dev(
        dir.path(),
        &["pki", "--host", "Lienthong.Sandbox.test,10.0.0.5"],
    )
    .output()
    .unwrap();
    let said = String::from_utf8_lossy(&pki.stdout);
    assert!(pki.status.success(), "{pki:?}");
    let names = "localhost, 127.0.0.1, lienthong.sandbox.test, 10.0.0.5";
    assert!(
        said.contains(&format!("server certificates name: {names}")),
        "{said}"
    );

    // `up` without --host keeps them, and says the gateway is only reachable locally.
    let mut up = Up::start(dir.path());
    assert!(
        up.printed.contains(&format!("server names      {names}")),
        "{}",
        up.printed
    );
    let call = |server_name: &str| {
        dev(dir.path(), &["call", "lookup", "042188999005"])
            .args(["--procedure", "1.004222", "--endpoint", &up.endpoint])
            .args(["--server-name", server_name])
            .output()
            .unwrap()
    };
    for name in ["lienthong.sandbox.test", "10.0.0.5", "localhost"] {
        let out = call(name);
        assert!(out.status.success(), "{name}: {out:?}");
    }
    let other = call("other.sandbox.test");
    let said = String::from_utf8_lossy(&other.stderr);
    assert!(!other.status.success());
    assert!(said.contains("certificate"), "{said}");
    up.child.kill().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut up.child.stderr.take().unwrap(), &mut stderr).unwrap();
    up.child.wait().unwrap();
    assert!(
        stderr.contains("only this machine reaches")
            && stderr.contains("--gateway-listen 0.0.0.0:"),
        "{stderr}"
    );

    // Back to the local names: the server certificates are reissued, the CA is kept.
    let ca = std::fs::read(dir.path().join("pki/ca.pem")).unwrap();
    let local = dev(dir.path(), &["pki", "--host", "localhost"])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&local.stdout);
    assert!(
        said.contains("server certificates reissued")
            && said.contains("server certificates name: localhost, 127.0.0.1\n"),
        "{said}"
    );
    assert_eq!(ca, std::fs::read(dir.path().join("pki/ca.pem")).unwrap());
}

/// `lienthong-dev up` serving a small environment on random local ports.
struct Up {
    child: std::process::Child,
    /// The gateway's endpoint, as printed.
    endpoint: String,
    /// What it printed up to the gateway's endpoint.
    printed: String,
}

impl Up {
    fn start(dir: &std::path::Path) -> Self {
        let mut child = dev(dir, &["up", "--citizens", "50"])
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
        let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut printed = String::new();
        for line in stdout.by_ref() {
            let line = line.unwrap();
            printed.push_str(&line);
            printed.push('\n');
            if line.trim_start().starts_with("server names") {
                break;
            }
        }
        // The rest of what it prints, read so that it never waits on a full pipe.
        std::thread::spawn(move || stdout.for_each(drop));
        let endpoint = printed
            .lines()
            .find_map(|l| l.split_whitespace().find(|w| w.starts_with("https://")))
            .unwrap_or_else(|| panic!("no endpoint in {printed}"))
            .to_owned();
        Self {
            child,
            endpoint,
            printed,
        }
    }
}

/// `lienthong-dev --dir <dir> <args…>`.
fn dev(dir: &std::path::Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_lienthong-dev"));
    command.arg("--dir").arg(dir).args(args);
    command
}
