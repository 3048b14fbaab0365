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
    // The same form on the two channels: a VNeID consent withholds the phone number.
    let form = |consent: bool| {
        let mut cmd = dev(dir.path(), &["call", "autofill", "042188999005"]);
        cmd.args([
            "--procedure",
            "MH.HOCHIEU",
            "--endpoint",
            &endpoint,
            "--json",
        ]);
        if consent {
            cmd.arg("--consent");
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let (officer, citizen) = (form(false), form(true));
    assert!(!officer.contains("WITHHELD_BY_CHANNEL"), "{officer}");
    assert!(
        citizen.contains("UNFILLED_REASON_WITHHELD_BY_CHANNEL"),
        "{citizen}"
    );
    // Write-back: a phone number sent back is pending, then accepted after the review delay.
    let as_processor = ["--procedure", "MH.LAMGIAU", "--officer", "CB.H42.0002"];
    let sent = dev(dir.path(), &["call", "update", "042188999005"])
        .args([
            "--field",
            "phone",
            "--value",
            "0987 654 321",
            "--evidence",
            "HS-1",
        ])
        .args(as_processor)
        .args(["--endpoint", &endpoint])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&sent.stdout).into_owned();
    assert!(
        sent.status.success() && said.contains("PENDING"),
        "{sent:?}"
    );
    let update_id = said.split_whitespace().next().unwrap().to_owned();
    let started = Instant::now();
    loop {
        let polled = dev(dir.path(), &["call", "update-status", &update_id])
            .args(as_processor)
            .args(["--endpoint", &endpoint])
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&polled.stdout).into_owned();
        assert!(polled.status.success(), "{polled:?}");
        if said.contains("ACCEPTED") {
            break;
        }
        assert!(said.contains("PENDING"), "{said}");
        assert!(started.elapsed() < Duration::from_secs(30), "{said}");
        std::thread::sleep(Duration::from_millis(500));
    }
    // A bundle case: opened, its first step acted on with values entered, then read.
    let call = |args: &[&str]| {
        let out = dev(dir.path(), &["call"])
            .args(args)
            .args(["--endpoint", &endpoint])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let opened = call(&["open-bundle", "042190999002", "--procedure", "LT.KHAISINH"]);
    assert!(opened.contains("1.001193  READY"), "{opened}");
    let case_id = opened.split_whitespace().next().unwrap().to_owned();
    let acted = call(&[
        "bundle-step",
        &case_id,
        "--procedure",
        "1.001193",
        "--enter",
        "ho_ten_tre=Lê Gia Bảo",
        "--enter",
        "ngay_sinh_tre=01/11/2026",
        "--enter",
        "gioi_tinh_tre=Nam",
    ]);
    assert!(
        acted.contains("1.001193  DONE") && acted.contains("recorded personal_id = 04222699"),
        "{acted}"
    );
    let seen = call(&["bundle-case", &case_id, "--procedure", "LT.KHAISINH"]);
    assert!(seen.contains("1.004222  READY"), "{seen}");
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

/// A team registers its own unit against the running environment: certificate, key and a
/// PKCS#12 bundle Java and OpenSSL open with the printed password; its officer's token; calls
/// within its procedures served, others refused; its certificate revoked without a restart,
/// then a new one issued.
#[cfg(unix)]
#[test]
fn a_team_registers_its_own_unit_calls_as_its_officer_and_revokes_its_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let mut up = Up::start(dir.path());
    let add = || {
        dev(dir.path(), &["unit", "add", "--code", "000.00.00.H48"])
            .args(["--name", "Hệ thống một cửa tỉnh Quảng Ngãi"])
            .args(["--procedures", "1.004222,LT.KHAISINH"])
            .output()
            .unwrap()
    };
    let added = add();
    let said = String::from_utf8_lossy(&added.stdout).into_owned();
    assert!(added.status.success(), "{added:?}");
    assert!(said.contains("gateway       reloaded"), "{said}");
    let password = said
        .split("password ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap()
        .to_owned();
    let units = dir.path().join("pki/units");
    let bundle = units.join("000.00.00.H48.p12");
    // OpenSSL opens the bundle: the unit's certificate and the CA, and the key.
    let openssl = Command::new("openssl")
        .args(["pkcs12", "-noenc", "-in"])
        .arg(&bundle)
        .args(["-passin", &format!("pass:{password}")])
        .output()
        .unwrap();
    let pem = String::from_utf8_lossy(&openssl.stdout);
    assert!(openssl.status.success(), "{openssl:?}");
    assert!(
        pem.contains("CN=000.00.00.H48") && pem.contains("PRIVATE KEY"),
        "{pem}"
    );
    assert_eq!(pem.matches("BEGIN CERTIFICATE").count(), 2, "{pem}");
    // So does Java's keytool, as a key entry; a wrong password is refused.
    let keytool = |pass: &str| {
        Command::new("keytool")
            .args(["-list", "-storetype", "PKCS12", "-keystore"])
            .arg(&bundle)
            .args(["-storepass", pass])
            .output()
            .unwrap()
    };
    let listed = keytool(&password);
    assert!(
        String::from_utf8_lossy(&listed.stdout).contains("PrivateKeyEntry"),
        "{listed:?}"
    );
    assert!(!keytool("not-the-password").status.success());

    let officer = ["--officer", "CB.H48.0001", "--unit", "000.00.00.H48"];
    let call = |procedure: &str| {
        dev(dir.path(), &["call", "lookup", "042188999005"])
            .args(["--procedure", procedure, "--endpoint", &up.endpoint])
            .args(officer)
            .args(["--roles", "receiver"])
            .output()
            .unwrap()
    };
    let served = call("1.004222");
    assert!(served.status.success(), "{served:?}");
    let refused = call("1.004227");
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stdout).contains("PROCEDURE_NOT_ALLOWED")
            || String::from_utf8_lossy(&refused.stderr).contains("PROCEDURE_NOT_ALLOWED"),
        "{refused:?}"
    );
    // A token for the officer, within the issuer's maximum lifetime only.
    let token = dev(dir.path(), &["token"])
        .args(officer)
        .args(["--roles", "receiver,processor", "--minutes", "90"])
        .output()
        .unwrap();
    assert!(token.status.success(), "{token:?}");
    assert_eq!(
        String::from_utf8_lossy(&token.stdout)
            .trim()
            .split('.')
            .count(),
        3
    );
    let too_long = dev(dir.path(), &["token"])
        .args(officer)
        .args(["--roles", "receiver", "--minutes", "1000"])
        .output()
        .unwrap();
    assert!(!too_long.status.success());
    assert!(
        String::from_utf8_lossy(&too_long.stderr).contains("1 to 720 minutes"),
        "{too_long:?}"
    );
    // Registered twice: refused, with what to do.
    let again = add();
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("unit revoke"),
        "{again:?}"
    );

    // Revoked: refused from the next call, without a restart; listed as revoked.
    let revoke = dev(dir.path(), &["unit", "revoke", "--code", "000.00.00.H48"])
        .output()
        .unwrap();
    assert!(revoke.status.success(), "{revoke:?}");
    assert!(
        String::from_utf8_lossy(&revoke.stdout).contains("1 certificate(s) revoked"),
        "{revoke:?}"
    );
    let after = call("1.004222");
    assert!(!after.status.success());
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&after.stdout),
        String::from_utf8_lossy(&after.stderr)
    );
    assert!(said.contains("CERTIFICATE_REVOKED"), "{said}");
    let list = dev(dir.path(), &["unit", "list"]).output().unwrap();
    let listed = String::from_utf8_lossy(&list.stdout);
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with("000.00.00.H48") && l.contains("REVOKED")),
        "{listed}"
    );
    // Added again: a new certificate, served again.
    let renewed = add();
    assert!(renewed.status.success(), "{renewed:?}");
    let served = call("1.004222");
    assert!(served.status.success(), "{served:?}");
    up.child.kill().unwrap();
    up.child.wait().unwrap();
}

/// `lienthong-dev check` against a running environment: every check passes for a provincial
/// officer and for a commune counter's (whose refusals are checked instead), the JUnit report
/// says so, and a gateway that cannot be reached is exit status 2 with the reason.
#[cfg(unix)]
#[test]
fn the_conformance_check_passes_against_the_sandbox_and_reports_for_ci() {
    let dir = tempfile::tempdir().unwrap();
    let mut up = Up::start(dir.path());
    let junit = dir.path().join("conformance.xml");
    let check = dev(dir.path(), &["check", "--endpoint", &up.endpoint])
        .arg("--junit")
        .arg(&junit)
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&check.stdout);
    assert_eq!(check.status.code(), Some(0), "{table}\n{check:?}");
    assert!(table.contains(" 0 failed"), "{table}");
    for group in [
        "identity",
        "token",
        "procedures",
        "verification",
        "bundles",
        "refusals",
        "rate limits",
        "receipts",
    ] {
        assert!(
            table
                .lines()
                .any(|l| l.starts_with("PASS") && l.contains(group)),
            "{group}: {table}"
        );
    }
    assert!(table.contains("LT.KHAITU step 3: 1.011457"), "{table}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains("failures=\"0\"") && xml.contains("<testcase classname=\"bundles\""),
        "{xml}"
    );
    // A commune counter's officer, with another unit's certificate for the binding check.
    let units = dir.path().join("pki/units");
    let commune = dev(
        dir.path(),
        &[
            "check",
            "--endpoint",
            &up.endpoint,
            "--officer",
            "CB.XTS.0001",
        ],
    )
    .arg("--other-cert")
    .arg(units.join("thanh-hoa.pem"))
    .arg("--other-key")
    .arg(units.join("thanh-hoa.key"))
    .output()
    .unwrap();
    let table = String::from_utf8_lossy(&commune.stdout);
    assert_eq!(commune.status.code(), Some(0), "{table}");
    assert!(
        table.contains("not available, refused") && table.contains("0 skipped"),
        "{table}"
    );
    // The wrong CA: the gateway's certificate is not trusted.
    let untrusted = dev(dir.path(), &["check", "--endpoint", &up.endpoint, "--ca"])
        .arg(units.join("ha-tinh.pem"))
        .output()
        .unwrap();
    assert_eq!(untrusted.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&untrusted.stderr).contains("UnknownIssuer"),
        "{untrusted:?}"
    );
    up.child.kill().unwrap();
    up.child.wait().unwrap();
}

/// Options that cannot apply to an environment that already holds a population are refused
/// with the reason instead of being ignored; an absurd population is refused before anything.
#[test]
fn population_options_that_cannot_apply_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let absurd = dev(dir.path(), &["prepare", "--citizens", "99999999999"])
        .output()
        .unwrap();
    assert!(!absurd.status.success());
    assert!(
        String::from_utf8_lossy(&absurd.stderr).contains("10000000"),
        "{absurd:?}"
    );
    let first = dev(dir.path(), &["prepare", "--citizens", "40", "--seed", "3"])
        .output()
        .unwrap();
    assert!(first.status.success(), "{first:?}");
    // The same options, or none: the environment is used as it is.
    for args in [&["prepare", "--citizens", "40"][..], &["prepare"][..]] {
        let again = dev(dir.path(), args).output().unwrap();
        assert!(again.status.success(), "{args:?}: {again:?}");
    }
    let other = dev(dir.path(), &["prepare", "--citizens", "60", "--seed", "4"])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&other.stderr);
    assert!(!other.status.success());
    assert!(
        said.contains("--citizens 60 (it holds 40)")
            && said.contains("--seed 4 (it was generated with 3)")
            && said.contains("csdl.sled"),
        "{said}"
    );
}

/// A team's system on another machine, as a second address on this one (127.0.0.2) and a host
/// name its resolver would give: the environment serves there under that name; the team
/// registers its unit, mints its officer's token, calls over gRPC by address and passes the
/// conformance check by name, all with the commands the README gives.
#[cfg(unix)]
#[test]
fn a_team_on_another_machine_name_registers_calls_and_passes_the_check() {
    let dir = tempfile::tempdir().unwrap();
    let mut up = Up::start_on(
        dir.path(),
        "127.0.0.2",
        &["--host", "lienthong.sandbox.tinh.test,127.0.0.2"],
    );
    assert!(
        up.endpoint.starts_with("https://127.0.0.2:"),
        "{}",
        up.endpoint
    );
    let add = dev(dir.path(), &["unit", "add", "--code", "000.00.00.H48"])
        .args([
            "--name",
            "Hệ thống một cửa tỉnh Quảng Ngãi",
            "--procedures",
            "*",
        ])
        .output()
        .unwrap();
    assert!(add.status.success(), "{add:?}");
    let token = dev(
        dir.path(),
        &[
            "token",
            "--officer",
            "CB.H48.0001",
            "--unit",
            "000.00.00.H48",
        ],
    )
    .args(["--roles", "receiver", "--minutes", "60"])
    .output()
    .unwrap();
    assert!(token.status.success(), "{token:?}");
    let token_file = dir.path().join("officer.jwt");
    std::fs::write(&token_file, &token.stdout).unwrap();
    let units = dir.path().join("pki/units");
    let call = dev(
        dir.path(),
        &["call", "lookup", "042188999005", "--procedure", "1.004222"],
    )
    .args(["--endpoint", &up.endpoint, "--officer", "CB.H48.0001"])
    .args(["--unit", "000.00.00.H48", "--roles", "receiver"])
    .output()
    .unwrap();
    assert!(call.status.success(), "{call:?}");
    // The check, as the team runs it: its own files, the gateway by the name it was given.
    let check = dev(dir.path(), &["check", "--endpoint", &up.endpoint])
        .args(["--server-name", "lienthong.sandbox.tinh.test"])
        .arg("--ca")
        .arg(dir.path().join("pki/ca.pem"))
        .arg("--cert")
        .arg(units.join("000.00.00.H48.pem"))
        .arg("--key")
        .arg(units.join("000.00.00.H48.key"))
        .arg("--token-file")
        .arg(&token_file)
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&check.stdout);
    assert_eq!(check.status.code(), Some(0), "{table}\n{check:?}");
    up.child.kill().unwrap();
    up.child.wait().unwrap();
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
        Self::start_on(dir, "127.0.0.1", &[])
    }

    /// `up` with its gateway (gRPC and HTTP/JSON) on `address`, and more arguments.
    fn start_on(dir: &std::path::Path, address: &str, more: &[&str]) -> Self {
        let any = format!("{address}:0");
        let mut child = dev(dir, &["up", "--citizens", "50"])
            .args(["--gateway-listen", &any, "--http-listen", &any])
            .args(["--admin-listen", "127.0.0.1:0"])
            .args(more)
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
            .map(|e| e.trim_end_matches(|c: char| !c.is_ascii_digit()))
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
