//! What the tests that run the gateway binary share: starting it, and reading a receipt.
#![allow(clippy::unwrap_used, dead_code)]

pub mod proxy;
pub mod services;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// Starts the gateway binary on a random port in front of `upstream`, with `env` added and its
/// standard error to `stderr`; returns it with the endpoint it reports.
pub fn start_gateway(
    config: &Path,
    upstream: &str,
    env: &[(&str, &str)],
    stderr: Stdio,
) -> (Child, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_lienthong-gateway"));
    command
        .arg("--config")
        .arg(config)
        .env("LIENTHONG_GATEWAY__LISTEN", "\"127.0.0.1:0\"")
        .env(
            "LIENTHONG_GATEWAY__UPSTREAM__ENDPOINT",
            format!("\"{upstream}\""),
        )
        .env_remove("LIENTHONG_LOG_FORMAT")
        .stdout(Stdio::piped())
        .stderr(stderr);
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix("lienthong-gateway listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    (child, format!("https://{addr}"))
}

/// The receipt's sequence, from a reply's or a refusal's metadata.
pub fn sequence(md: &tonic::metadata::MetadataMap) -> u64 {
    md.get("x-audit-sequence")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}
