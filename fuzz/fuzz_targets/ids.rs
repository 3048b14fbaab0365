//! The parsers at the edge: personal IDs (with and without a birth-year bound), old ID numbers
//! and partial dates. None panics; what parses prints back to what was parsed; a personal ID's
//! Debug form is masked.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lienthong_domain::{OldIdNumber, PartialDate, PersonalId};

fuzz_target!(|s: &str| {
    if let Ok(id) = PersonalId::parse(s) {
        assert_eq!(id.as_str(), s);
        assert_eq!(PersonalId::parse(id.as_str()).as_ref(), Ok(&id));
        assert!(
            !format!("{id:?}").contains(s),
            "Debug shows the full number"
        );
        let _ = (
            id.birth_year(),
            id.gender(),
            id.province_code(),
            id.masked(),
        );
    }
    if let Ok(id) = PersonalId::parse_born_by(s, 2026) {
        assert!(id.birth_year() <= 2026);
    }
    if let Ok(old) = OldIdNumber::parse(s) {
        assert_eq!(old.as_str(), s);
    }
    if let Ok(d) = PartialDate::parse(s) {
        assert_eq!(PartialDate::parse(&d.to_string()), Ok(d));
    }
});
