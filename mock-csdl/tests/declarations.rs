//! `mock-csdl declarations` as a tester runs it: a store, then declarations ready for
//! `POST /v1/VerifyBatch`, each naming its kind; impossible rates refused with the reason.
#![allow(clippy::unwrap_used)]

use std::process::Command;

fn mock(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_mock-csdl"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn declarations_come_from_the_store_and_name_their_kind() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let store = store.to_str().unwrap();
    let g = mock(&[
        "generate",
        "--store",
        store,
        "--citizens",
        "300",
        "--seed",
        "3",
    ]);
    assert!(g.status.success(), "{}", String::from_utf8_lossy(&g.stderr));
    let declare = || {
        mock(&[
            "declarations",
            "--store",
            store,
            "--count",
            "200",
            "--seed",
            "5",
        ])
    };
    let d = declare();
    assert!(d.status.success(), "{}", String::from_utf8_lossy(&d.stderr));
    let items: Vec<serde_json::Value> = serde_json::from_slice(&d.stdout).unwrap();
    assert_eq!(items.len(), 200);
    assert_eq!(items[0]["context"]["procedureCode"], "2.000488");
    assert!(items[1].get("context").is_none());
    let kinds: std::collections::BTreeSet<&str> = items
        .iter()
        .map(|i| i["itemId"].as_str().unwrap().split_once(':').unwrap().1)
        .collect();
    for kind in &kinds {
        assert!(
            mock_csdl::declarations::Kind::parse(kind).is_some(),
            "{kind}"
        );
    }
    assert!(kinds.contains("exact") && kinds.len() >= 5, "{kinds:?}");
    // The same seed, the same declarations.
    assert_eq!(declare().stdout, d.stdout);

    let bad = mock(&[
        "declarations",
        "--store",
        store,
        "--rate",
        "0.8",
        "--variations",
        "0.5",
    ]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("together at most 1"));
}
