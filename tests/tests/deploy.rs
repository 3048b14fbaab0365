//! The deploy files checked with the validators this machine has: `systemd-analyze verify` for
//! the units (their commands pointed at stand-in executables: the binaries are not installed
//! here) and `systemd-sysusers --root` for the service user. Without systemd's tools the test
//! says so and skips, unless `LIENTHONG_REQUIRE_SERVICES=1` (CI), where it fails.
#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

fn tool(name: &str) -> bool {
    let found = Command::new(name).arg("--version").output().is_ok();
    if !found {
        let message = format!("{name} is not installed (Debian: apt-get install systemd)");
        assert_ne!(
            std::env::var("LIENTHONG_REQUIRE_SERVICES").as_deref(),
            Ok("1"),
            "{message}"
        );
        eprintln!("SKIPPED: {message}");
    }
    found
}

/// `systemd-analyze verify` on a copy of `unit` whose /usr/local/bin commands are stand-ins in
/// `dir`; returns what it printed.
fn verify_unit(dir: &Path, name: &str, text: &str) -> String {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for exe in ["lienthong-gateway", "mock-csdl"] {
        let path = bin.join(exe);
        std::fs::write(&path, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let unit = dir.join(name);
    std::fs::write(
        &unit,
        text.replace("/usr/local/bin/", &format!("{}/", bin.display())),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit)
        .output()
        .unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn the_systemd_units_verify_cleanly() {
    if !tool("systemd-analyze") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for name in ["lienthong-gateway.service", "mock-csdl.service"] {
        let text = std::fs::read_to_string(deploy().join("systemd").join(name)).unwrap();
        for needed in [
            "Wants=network-online.target",
            "After=network-online.target",
            "User=lienthong",
            "StateDirectory=lienthong",
            "ProtectSystem=strict",
        ] {
            assert!(text.contains(needed), "{name} lacks {needed}");
        }
        let said = verify_unit(dir.path(), name, &text);
        assert_eq!(said, "", "{name}: systemd-analyze verify says:\n{said}");
    }
    // The validator is listening: a unit with a mistake is reported.
    let said = verify_unit(
        dir.path(),
        "broken.service",
        "[Unit]\nDescription=x\n[Service]\nExecStart=/usr/local/bin/mock-csdl\nStateDirektory=x\n",
    );
    assert!(said.contains("Unknown key"), "{said}");
}

#[test]
fn the_service_user_is_created_by_sysusers() {
    if !tool("systemd-sysusers") {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("etc")).unwrap();
    let out = Command::new("systemd-sysusers")
        .arg(format!("--root={}", root.path().display()))
        .arg(deploy().join("systemd/lienthong.sysusers"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let passwd = std::fs::read_to_string(root.path().join("etc/passwd")).unwrap();
    let user = passwd
        .lines()
        .find(|l| l.starts_with("lienthong:"))
        .unwrap_or_else(|| panic!("no lienthong user in\n{passwd}"));
    assert!(
        user.ends_with(":/var/lib/lienthong:/usr/sbin/nologin"),
        "{user}"
    );
}

#[test]
fn the_license_matches_the_manifest_and_keys_stay_out_of_images() {
    let root = deploy().join("..");
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    assert!(manifest.contains("license = \"Apache-2.0\""));
    let license = std::fs::read_to_string(root.join("LICENSE")).unwrap();
    assert!(license.contains("Apache License") && license.contains("Version 2.0, January 2004"));
    let ignored = std::fs::read_to_string(root.join(".dockerignore")).unwrap();
    for entry in ["target/", ".lienthong/", "**/*.key"] {
        assert!(
            ignored.lines().any(|l| l == entry),
            "{entry} not in .dockerignore"
        );
    }
}

#[test]
fn the_kubernetes_manifests_validate_and_run_restricted() {
    let k8s = deploy().join("k8s");
    let files: Vec<PathBuf> = ["gateway.yaml", "mock-csdl.yaml", "fleet.yaml"]
        .iter()
        .map(|f| k8s.join(f))
        .collect();
    for f in &files[..2] {
        let text = std::fs::read_to_string(f).unwrap();
        for needed in [
            "runAsNonRoot: true",
            "fsGroup: 10001",
            "type: RuntimeDefault",
            "allowPrivilegeEscalation: false",
            "drop: [\"ALL\"]",
        ] {
            assert!(text.contains(needed), "{} lacks {needed}", f.display());
        }
    }
    // The schema validator (PyPI's kubernetes-validate; .ci/run installs it).
    let found = Command::new("kubernetes-validate")
        .arg("--version")
        .output()
        .is_ok();
    if !found {
        let message =
            "kubernetes-validate is not installed (pip install kubernetes-validate==1.31.0)";
        assert_ne!(
            std::env::var("LIENTHONG_REQUIRE_SERVICES").as_deref(),
            Ok("1"),
            "{message}"
        );
        eprintln!("SKIPPED: {message}");
        return;
    }
    let out = Command::new("kubernetes-validate")
        .args(["-k", "1.31", "--strict"])
        .args(&files)
        .output()
        .unwrap();
    let said =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert_eq!(said.matches(" passed for resource ").count(), 9, "{said}");
    // The validator is listening: a misspelt field fails the strict schema.
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.yaml");
    std::fs::write(
        &broken,
        std::fs::read_to_string(&files[1])
            .unwrap()
            .replace("serviceName:", "serviceNmae:"),
    )
    .unwrap();
    let out = Command::new("kubernetes-validate")
        .args(["-k", "1.31", "--strict"])
        .arg(&broken)
        .output()
        .unwrap();
    assert!(!out.status.success(), "{out:?}");
}
