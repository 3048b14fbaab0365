//! Verification on the personas built for it: spellings of a name, a name one tone mark away,
//! a record that differs from what the citizen declares, partial birth dates.

use crate::helpers::*;
use lienthong_proto::gateway::v1 as pb;
use pb::{FieldResult as R, Normalization as N, OverallResult as O};
use unicode_normalization::UnicodeNormalization;

/// These tests are about verdicts, not about the daily verification budget (see hostile.rs),
/// so they run with a large one.
async fn spawn_verification_env() -> TestEnv {
    spawn_env_with(&[("VERIFICATION__BUDGET_PER_DAY", "1000")]).await
}

async fn check(
    s: &mut Session,
    persona_key: &str,
    claims: &[(&str, &str)],
) -> pb::VerifyCitizenResponse {
    s.verify("1.004222", persona(persona_key), claims)
        .await
        .unwrap()
}

fn result(r: &pb::VerifyCitizenResponse) -> (O, Vec<(R, Vec<N>)>) {
    (
        O::try_from(r.result).unwrap(),
        r.fields
            .iter()
            .map(|f| {
                (
                    R::try_from(f.result).unwrap(),
                    f.normalizations
                        .iter()
                        .map(|n| N::try_from(*n).unwrap())
                        .collect(),
                )
            })
            .collect(),
    )
}

#[tokio::test]
async fn spellings_of_one_name() {
    let env = spawn_verification_env().await;
    let mut s = env.officer("CB.H42.0001").await;
    let nfd: String = "Nguyễn Thị Thùy Linh".nfd().collect();
    let table: Vec<(&str, O, R, Vec<N>)> = vec![
        ("Nguyễn Thị Thùy Linh", O::Match, R::Match, vec![]),
        (&nfd, O::Match, R::Match, vec![N::UnicodeNfc]),
        ("NGUYỄN THỊ THÙY LINH", O::Match, R::Match, vec![N::Case]),
        (
            "Nguyễn  Thị Thùy   Linh ",
            O::Match,
            R::Match,
            vec![N::Whitespace],
        ),
        (
            "Nguyễn Thị Thuỳ Linh",
            O::Match,
            R::Match,
            vec![N::TonePlacement],
        ),
        (
            "Nguyen Thi Thuy Linh",
            O::NeedsReview,
            R::MatchIgnoringDiacritics,
            vec![N::Diacritics],
        ),
        ("Nguyễn Thị Linh", O::Mismatch, R::Mismatch, vec![]),
    ];
    for (declared, overall, field, norms) in table {
        let r = check(&mut s, "diacritics-variants", &[("full_name", declared)]).await;
        assert_eq!(result(&r), (overall, vec![(field, norms)]), "{declared:?}");
        let f = &r.fields[0];
        assert!(!f.explanation.is_empty() && !f.explanation_vi.is_empty());
    }
}

#[tokio::test]
async fn one_tone_mark_is_a_different_name() {
    let env = spawn_verification_env().await;
    let mut s = env.officer("CB.H42.0001").await;
    let r = check(&mut s, "similar-name", &[("full_name", "Nguyễn Văn Hà")]).await;
    assert_eq!(
        result(&r),
        (
            O::NeedsReview,
            vec![(R::MatchIgnoringDiacritics, vec![N::Diacritics])]
        )
    );
    // The record's own value is never echoed.
    let f = &r.fields[0];
    assert!(!f.explanation.contains("Hạ") && !f.explanation_vi.contains("Hạ"));
}

#[tokio::test]
async fn a_record_that_differs_from_the_declaration() {
    let env = spawn_verification_env().await;
    let mut s = env.officer("CB.H42.0001").await;
    let r = check(
        &mut s,
        "record-mismatch",
        &[
            ("full_name", "Đỗ Thị Thu Huyền"),
            ("date_of_birth", "12/08/1970"),
            (
                "permanent_address",
                "Tổ dân phố 3, Huyện Cẩm Xuyên, Tỉnh Hà Tĩnh",
            ),
            ("gender", "Nữ"),
            ("phone", ""),
        ],
    )
    .await;
    let (overall, fields) = result(&r);
    assert_eq!(overall, O::Mismatch);
    let outcomes: Vec<R> = fields.iter().map(|(r, _)| *r).collect();
    // Her record's 01/01/1970 is the placeholder of an unknown day and month: her declared
    // 12/08/1970 cannot be confirmed, and is not a mismatch either.
    assert_eq!(
        outcomes,
        [
            R::Mismatch,
            R::NotOnRecord,
            R::Mismatch,
            R::Match,
            R::NotProvided
        ]
    );
    assert!(
        r.fields[1].explanation.contains("placeholder"),
        "{:?}",
        r.fields[1]
    );
    // A full date in another year is a mismatch, placeholder or not.
    let r = check(
        &mut s,
        "record-mismatch",
        &[("date_of_birth", "12/08/1971")],
    )
    .await;
    assert_eq!(result(&r).0, O::Mismatch);
    for f in &r.fields {
        assert!(!f.explanation.contains("01/01/1970"));
        assert!(!f.explanation.contains("Xã Cẩm Xuyên"));
    }
    // Declared the way the record has it, abbreviated: a match after normalisation.
    let r = check(
        &mut s,
        "record-mismatch",
        &[
            ("full_name", "Đỗ Thị Huyền"),
            ("date_of_birth", "1970-01-01"),
            ("permanent_address", "Tổ dân phố 3, X. Cẩm Xuyên, Hà Tĩnh"),
        ],
    )
    .await;
    assert_eq!(
        result(&r),
        (
            O::Match,
            vec![
                (R::Match, vec![]),
                (R::Match, vec![N::DateFormat]),
                (R::Match, vec![N::Address]),
            ]
        )
    );
}

#[tokio::test]
async fn an_address_held_in_the_pre_2025_units_is_read_as_the_commune_it_became() {
    let env = spawn_verification_env().await;
    let mut s = env.officer("CB.H42.0001").await;
    let declare = |address: &'static str| {
        [
            ("full_name", "Trương Thị Quỳnh"),
            ("permanent_address", address),
        ]
    };
    // As her province's older system holds it: Xã Cẩm Quang became part of Xã Cẩm Xuyên.
    let r = check(
        &mut s,
        "pre-2025-address",
        &declare("Thôn Tân Hòa, Xã Cẩm Quang, Huyện Cẩm Xuyên, Tỉnh Hà Tĩnh"),
    )
    .await;
    assert_eq!(
        result(&r),
        (
            O::Match,
            vec![(R::Match, vec![]), (R::Match, vec![N::Pre2025Units])]
        )
    );
    assert!(r.fields[1].explanation.contains("pre-2025 units"));
    assert!(r.fields[1].explanation_vi.contains("trước 01/7/2025"));
    // Abbreviated, lower case, old tone placement: still read.
    let r = check(
        &mut s,
        "pre-2025-address",
        &declare("thôn tân hoà, X. Cẩm Quang, H. Cẩm Xuyên, T. Hà Tĩnh"),
    )
    .await;
    assert_eq!(result(&r).0, O::Match);
    // Cẩm Nhượng became Xã Thiên Cầm: a mismatch that says where the declared commune went,
    // never what the record holds.
    let r = check(
        &mut s,
        "pre-2025-address",
        &declare("Thôn Tân Hòa, Xã Cẩm Nhượng, Huyện Cẩm Xuyên, Tỉnh Hà Tĩnh"),
    )
    .await;
    assert_eq!(
        result(&r),
        (
            O::Mismatch,
            vec![(R::Match, vec![]), (R::Mismatch, vec![N::Pre2025Units])]
        )
    );
    let f = &r.fields[1];
    assert!(f.explanation.contains("became Xã Thiên Cầm"), "{f:?}");
    assert!(!f.explanation.contains("Xã Cẩm Xuyên") && !f.explanation_vi.contains("Xã Cẩm Xuyên"));
}

#[tokio::test]
async fn a_citizen_named_by_an_old_number_is_found_and_the_number_verified() {
    let env = spawn_verification_env().await;
    let mut s = env.officer("CB.H42.0002").await;
    let thang = persona("several-old-ids");
    let verify = |old: &str, personal: &str| pb::VerifyCitizenRequest {
        context: ctx("1.010103"),
        personal_id: personal.into(),
        old_id_number: old.into(),
        claims: vec![pb::Claim {
            field: "full_name".into(),
            value: "Võ Văn Thắng".into(),
        }],
    };
    // A system that holds only his last 9-digit number: found, and the number matches.
    let r = s
        .client
        .verify_citizen(authed(&s.token, verify("029990023", "")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        result(&r),
        (O::Match, vec![(R::Match, vec![]), (R::Match, vec![])])
    );
    assert_eq!(r.fields[1].field, "old_id_number");
    // One that holds a number a later one replaced: the same man, to be updated.
    let r = s
        .client
        .verify_citizen(authed(&s.token, verify("189990123", "")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(result(&r).0, O::NeedsReview);
    assert_eq!(R::try_from(r.fields[1].result).unwrap(), R::Superseded);
    // The trail names him by his personal ID.
    let about = env.records_about(thang).await;
    assert!(
        about
            .iter()
            .filter(|r| r.method.ends_with("/VerifyCitizen"))
            .count()
            >= 2,
        "{about:?}"
    );
    // Both numbers, or a number nobody holds, are refused.
    let e = s
        .client
        .verify_citizen(authed(&s.token, verify("029990023", thang)))
        .await
        .unwrap_err();
    assert_refused(&e, tonic::Code::InvalidArgument, "INVALID_ARGUMENT");
    assert!(e.message().contains("old_id_number"), "{e:?}");
    let e = s
        .client
        .verify_citizen(authed(&s.token, verify("189999999", "")))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound);
    // Under a procedure that may not verify the old number, naming the citizen by it is refused.
    let mut under = verify("029990023", "");
    under.context = ctx("1.004222");
    let e = s
        .client
        .verify_citizen(authed(&s.token, under))
        .await
        .unwrap_err();
    assert_refused(&e, tonic::Code::PermissionDenied, "FIELD_NOT_ALLOWED");
    // In a batch, the same.
    let item = pb::VerifyBatchRequest {
        context: ctx("1.010103"),
        item_id: "cmnd".into(),
        personal_id: String::new(),
        old_id_number: "029990023".into(),
        claims: verify("", "").claims,
    };
    let mut replies = s
        .client
        .verify_batch(authed(&s.token, tokio_stream::iter(vec![item])))
        .await
        .unwrap()
        .into_inner();
    let reply = replies.message().await.unwrap().unwrap();
    match reply.outcome.unwrap() {
        pb::verify_batch_response::Outcome::Result(r) => assert_eq!(result(&r).0, O::Match),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn partial_birth_dates() {
    let env = spawn_verification_env().await;
    let mut s = env.officer("CB.H42.0001").await;
    let outcome = |r: pb::VerifyCitizenResponse| result(&r).1[0].0;
    let r = check(&mut s, "partial-birth-date", &[("date_of_birth", "1948")]).await;
    assert_eq!(outcome(r), R::Match);
    let r = check(
        &mut s,
        "partial-birth-date",
        &[("date_of_birth", "15/03/1948")],
    )
    .await;
    assert_eq!(outcome(r), R::NotOnRecord);
    let r = check(
        &mut s,
        "partial-birth-date",
        &[("date_of_birth", "15/03/1949")],
    )
    .await;
    assert_eq!(outcome(r), R::Mismatch);
    let r = check(
        &mut s,
        "partial-birth-month",
        &[("date_of_birth", "05/1952")],
    )
    .await;
    assert_eq!(outcome(r), R::Match);
    let r = check(
        &mut s,
        "partial-birth-month",
        &[("date_of_birth", "20/05/1952")],
    )
    .await;
    assert_eq!(outcome(r), R::NotOnRecord);
    // A malformed date is a bad request naming the claim.
    let claims = [("date_of_birth", "March 1948")];
    let status = s
        .verify("1.004222", persona("partial-birth-date"), &claims)
        .await
        .unwrap_err();
    assert_refused(&status, tonic::Code::InvalidArgument, "INVALID_ARGUMENT");
}

#[tokio::test]
async fn a_deceased_subject_is_flagged_where_the_procedure_sees_life_status() {
    let env = spawn_verification_env().await;
    let mut s = env.officer("CB.H42.0001").await;
    let claims = [("full_name", "Hoàng Văn Tám")];
    let r = s
        .verify("1.000656", persona("deceased"), &claims)
        .await
        .unwrap();
    assert!(r.subject_deceased);
    let r = check(&mut s, "deceased", &[("full_name", "Hoàng Văn Tám")]).await;
    assert!(
        !r.subject_deceased,
        "residence registration does not see life status"
    );
}

#[tokio::test]
async fn text_in_a_legacy_encoding_is_reported_and_never_compared() {
    let env = spawn_verification_env().await;
    let mut s = env.officer("CB.H42.0001").await;
    // "Nguyễn Văn Hạ" typed in TCVN3 and read as Unicode.
    let r = check(&mut s, "similar-name", &[("full_name", "NguyÔn V¨n H¹")]).await;
    assert_eq!(result(&r).0, O::NeedsReview, "{r:?}");
    assert_eq!(R::try_from(r.fields[0].result).unwrap(), R::LegacyEncoding);
    assert!(r.fields[0].explanation.contains("TCVN3"), "{r:?}");
    assert!(r.fields[0].explanation_vi.contains("Unicode"), "{r:?}");
}

#[tokio::test]
async fn every_old_number_finds_the_citizen_and_a_superseded_one_is_reported() {
    let env = spawn_verification_env().await;
    let mut s = env.officer("CB.H42.0002").await;
    let thang = persona("several-old-ids");
    // The confirmation procedure finds him by each of the three numbers and lists them.
    for old in ["189990023", "189990123", "029990023"] {
        let req = pb::LookupCitizenRequest {
            context: ctx("1.010103"),
            subject: Some(pb::lookup_citizen_request::Subject::OldIdNumber(old.into())),
            fields: vec![
                "personal_id".into(),
                "old_id_number".into(),
                "previous_old_id_numbers".into(),
            ],
        };
        let c = s
            .client
            .lookup_citizen(authed(&s.token, req))
            .await
            .unwrap()
            .into_inner()
            .citizen
            .unwrap();
        assert_eq!(c.personal_id, thang, "by {old}");
        assert_eq!(c.old_id_number, "029990023");
        assert_eq!(c.previous_old_id_numbers, ["189990023", "189990123"]);
    }
    // A source system holding a superseded number: the same person, to be updated.
    let r = s
        .verify("2.000488", thang, &[("old_id_number", "189990123")])
        .await
        .unwrap();
    assert_eq!(result(&r).0, O::NeedsReview, "{r:?}");
    assert_eq!(R::try_from(r.fields[0].result).unwrap(), R::Superseded);
    assert!(!r.fields[0].explanation.contains("029990023"), "{r:?}");
    let r = s
        .verify("2.000488", thang, &[("old_id_number", "029 990 023")])
        .await
        .unwrap();
    assert_eq!(
        result(&r),
        (O::Match, vec![(R::Match, vec![N::Whitespace])])
    );
    let r = s
        .verify("2.000488", thang, &[("old_id_number", "189990124")])
        .await
        .unwrap();
    assert_eq!(result(&r).0, O::Mismatch);
}

#[tokio::test]
async fn a_name_held_in_tcvn3_is_reported_as_such() {
    let env = spawn_verification_env().await;
    let mut s = env.officer("CB.H42.0001").await;
    let r = check(
        &mut s,
        "legacy-encoded-name",
        &[("full_name", "NguyÔn ThÞ Ngäc DiÔm")],
    )
    .await;
    assert_eq!(result(&r).0, O::NeedsReview, "{r:?}");
    assert_eq!(R::try_from(r.fields[0].result).unwrap(), R::LegacyEncoding);
    assert!(r.fields[0].explanation.contains("TCVN3"), "{r:?}");
    let r = check(
        &mut s,
        "legacy-encoded-name",
        &[("full_name", "Nguyễn Thị Ngọc Diễm")],
    )
    .await;
    assert_eq!(result(&r).0, O::Match, "{r:?}");
}
