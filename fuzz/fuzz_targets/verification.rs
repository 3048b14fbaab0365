//! Verification of declared values: any value, against every verifiable field of every persona,
//! never panics, answers the same twice, and never repeats the record's value in its
//! explanation.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lienthong_domain::CitizenRecord;
use lienthong_gateway::verify::{VERIFIABLE, check};
use std::sync::LazyLock;

static RECORDS: LazyLock<Vec<CitizenRecord>> =
    LazyLock::new(|| mock_csdl::personas::batch().citizens);

fuzz_target!(|declared: &str| {
    for record in RECORDS.iter().take(4) {
        for &field in VERIFIABLE {
            let first = check(record, field, declared);
            assert_eq!(first, check(record, field, declared), "not deterministic");
            if let Ok(c) = first {
                let name = record.full_name.as_str();
                assert!(
                    name.len() < 4 || !c.explanation.contains(name),
                    "the record's name in an explanation"
                );
                assert!(c.explanation.len() < 1_000 && c.explanation_vi.len() < 1_000);
            }
        }
    }
});
