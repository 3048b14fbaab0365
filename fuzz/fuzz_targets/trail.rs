//! The trail reader and verifier: any bytes as a trail file. Neither reader panics, and the two
//! ways of verifying (decoding every record; hashing the stored bytes) agree on what they find.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lienthong_gateway::audit::frame::FrameReader;
use lienthong_gateway::audit::verify::{Options, verify, verify_stored};
use std::sync::LazyLock;

static OPTS: LazyLock<Options> = LazyLock::new(|| Options {
    keys: vec![ed25519_key()],
    from_genesis: true,
    to_sequence: None,
    anchor: None,
});

fn ed25519_key() -> ed25519_dalek::VerifyingKey {
    ed25519_dalek::SigningKey::from_bytes(&[7; 32]).verifying_key()
}

fuzz_target!(|bytes: &[u8]| {
    let len = bytes.len() as u64;
    let decoded = FrameReader::new(bytes, len).map(|frames| verify(frames, &OPTS));
    let stored = verify_stored(bytes, len, &OPTS);
    match (decoded, stored) {
        (Ok(a), Ok(b)) => {
            assert_eq!(a.records_checked, b.records_checked, "{a:?} / {b:?}");
            assert_eq!(
                a.first_bad.as_ref().map(|(s, _)| *s),
                b.first_bad.as_ref().map(|(s, _)| *s),
                "{a:?} / {b:?}"
            );
            assert_eq!(a.head, b.head);
        }
        (Err(_), Err(_)) => {}
        (a, b) => panic!("one reader opened the trail, the other did not: {a:?} / {b:?}"),
    }
});
