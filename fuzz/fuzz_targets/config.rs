//! The configuration loader: any text as the gateway's TOML, with an override applied on top.
//! Never panics; a refusal names at least one problem.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lienthong_gateway::Config;
use std::path::Path;

fuzz_target!(|text: &str| {
    let env = [
        (
            "LIENTHONG_GATEWAY__UPSTREAM__TIMEOUT_MS".to_owned(),
            "800".to_owned(),
        ),
        (
            "LIENTHONG_GATEWAY__UNITS__0__AUDIT_SCOPE".to_owned(),
            "[\"*\"]".to_owned(),
        ),
    ];
    if let Err(problems) = Config::parse(text, Path::new("/nonexistent"), env) {
        assert!(!problems.is_empty());
    }
});
