//! Write-back: a province sends a correction or an enrichment back to the population database
//! through the gateway. It is authorized by a procedure that may update the field, audited like
//! a read, queued at the database (PENDING), then accepted — later lookups show the value with
//! the province as its provenance — or rejected with the reason, by the database's documented
//! rules.

use crate::helpers::*;
use lienthong_proto::csdl::v1 as csdl;
use lienthong_proto::gateway::v1 as pb;
use std::time::{Duration, Instant};
use tonic::Code;

const PROCEDURE: &str = "MH.LAMGIAU";

fn submission(
    personal_id: &str,
    field: &str,
    value: &str,
    evidence: &str,
) -> pb::SubmitUpdateRequest {
    pb::SubmitUpdateRequest {
        context: ctx(PROCEDURE),
        personal_id: personal_id.into(),
        field: field.into(),
        value: value.into(),
        evidence_ref: evidence.into(),
    }
}

async fn submit(
    s: &mut Session,
    req: pb::SubmitUpdateRequest,
) -> Result<csdl::DataUpdate, tonic::Status> {
    Ok(s.client
        .submit_update(authed(&s.token, req))
        .await?
        .into_inner()
        .update
        .unwrap())
}

async fn status(s: &mut Session, id: &str) -> Result<csdl::DataUpdate, tonic::Status> {
    Ok(s.client
        .get_update(authed(
            &s.token,
            pb::GetUpdateRequest {
                context: ctx(PROCEDURE),
                update_id: id.into(),
            },
        ))
        .await?
        .into_inner()
        .update
        .unwrap())
}

fn state(u: &csdl::DataUpdate) -> csdl::UpdateStatus {
    csdl::UpdateStatus::try_from(u.status).unwrap()
}

async fn phone_of(s: &mut Session, personal_id: &str) -> (String, csdl::FieldProvenance) {
    let c = s.fields_of(PROCEDURE, personal_id, &["phone"]).await;
    let provenance = c
        .provenance
        .iter()
        .find(|p| p.field == "phone")
        .cloned()
        .unwrap();
    (c.phone, provenance)
}

#[tokio::test]
async fn an_accepted_update_shows_in_later_lookups_with_the_province_as_its_source() {
    let env = spawn_env().await;
    let mut s = env.officer("CB.H42.0002").await;
    let adult = persona("complete-adult");
    let (before, _) = phone_of(&mut s, adult).await;
    let mut req = submission(adult, "phone", "+84 987 654 321", "HS-H42-2026-000123");
    let update = submit(&mut s, req.clone()).await.unwrap();
    assert_eq!(state(&update), csdl::UpdateStatus::Pending, "{update:?}");
    assert_eq!(update.value, "0987654321");
    assert_eq!(update.source_system, "000.00.00.H42");
    assert!(update.update_id.starts_with("CN"), "{update:?}");
    // The same request again gives back the same update.
    let again = submit(&mut s, req.clone()).await.unwrap();
    assert_eq!(again.update_id, update.update_id);
    // Pending: lookups still show the old value.
    assert_eq!(phone_of(&mut s, adult).await.0, before);
    let started = Instant::now();
    let decided = loop {
        let u = status(&mut s, &update.update_id).await.unwrap();
        if state(&u) != csdl::UpdateStatus::Pending {
            break u;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "still pending");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(state(&decided), csdl::UpdateStatus::Accepted, "{decided:?}");
    assert!(decided.decided_at.is_some() && decided.reason.is_empty());
    let (after, provenance) = phone_of(&mut s, adult).await;
    assert_eq!(after, "0987654321");
    assert_eq!(provenance.source, "provincial-update");
    assert_eq!(provenance.source_system, "000.00.00.H42");
    // Sending the value the record now holds is rejected at once.
    req.context = ctx(PROCEDURE);
    let same = submit(&mut s, req).await.unwrap();
    assert_eq!(state(&same), csdl::UpdateStatus::Rejected);
    assert!(same.reason.contains("already holds"), "{same:?}");

    // The trail: the write and the polls, each naming the citizen and the field.
    let mut writes = 0;
    let mut polls = 0;
    for r in env.records_about(adult).await {
        if r.method.ends_with("/SubmitUpdate") {
            writes += 1;
            assert_eq!(r.fields_disclosed, ["phone"]);
            assert_eq!(r.purpose, "data_ecosystem");
        }
        if r.method.ends_with("/GetUpdate") {
            polls += 1;
        }
    }
    assert_eq!(writes, 3);
    assert!(polls >= 1);
}

#[tokio::test]
async fn a_current_address_is_sent_back_in_the_2025_units() {
    let env = spawn_env().await;
    let mut s = env.officer("CB.H42.0002").await;
    let adult = persona("complete-adult");
    // Read as published whatever the case and spacing; stored as the formatted address.
    let u = submit(
        &mut s,
        submission(
            adult,
            "current_address",
            "Số 5 đường Nguyễn Du,  phường thành sen, Hà Tĩnh",
            "HS-H42-2026-000200",
        ),
    )
    .await
    .unwrap();
    assert_eq!(state(&u), csdl::UpdateStatus::Pending, "{u:?}");
    assert_eq!(
        u.value,
        "Số 5 đường Nguyễn Du, Phường Thành Sen, Tỉnh Hà Tĩnh"
    );
    let started = Instant::now();
    while state(&status(&mut s, &u.update_id).await.unwrap()) == csdl::UpdateStatus::Pending {
        assert!(started.elapsed() < Duration::from_secs(20), "still pending");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let c = s.fields_of(PROCEDURE, adult, &["current_address"]).await;
    let address = c.current_address.unwrap();
    assert_eq!(address.ward_code, "18073");
    assert_eq!(address.detail, "Số 5 đường Nguyễn Du");
    let provenance = c
        .provenance
        .iter()
        .find(|p| p.field == "current_address")
        .unwrap();
    assert_eq!(provenance.source, "provincial-update");
    // A commune of the pre-2025 units is rejected with the commune it became; an unknown one
    // with the province named.
    for (value, reason) in [
        ("Thôn 3, Xã Cẩm Quang, Tỉnh Hà Tĩnh", "Xã Cẩm Xuyên"),
        ("Thôn 3, Xã Không Có, Tỉnh Hà Tĩnh", "Tỉnh Hà Tĩnh"),
        ("Thôn 3, Phường Thành Sen, Tỉnh Hà Tây", "Hà Tây"),
        ("Hà Tĩnh", "detail, commune, province"),
    ] {
        let u = submit(&mut s, submission(adult, "current_address", value, "GT-1"))
            .await
            .unwrap();
        assert_eq!(state(&u), csdl::UpdateStatus::Rejected, "{u:?}");
        assert!(u.reason.contains(reason), "{value}: {u:?}");
    }
}

#[tokio::test]
async fn the_database_rejects_by_its_rules_with_the_reason() {
    let env = spawn_env().await;
    let mut s = env.officer("CB.H42.0002").await;
    let adult = persona("complete-adult");
    for (req, reason) in [
        (submission(adult, "phone", "0987654321", ""), "evidence"),
        (
            submission(persona("deceased"), "phone", "0987654321", "GT-1"),
            "died",
        ),
        (submission(adult, "phone", "0212345678", "GT-1"), "mobile"),
        (
            submission(adult, "health_insurance_number", "42-99", "GT-1"),
            "10 digits",
        ),
    ] {
        let u = submit(&mut s, req).await.unwrap();
        assert_eq!(state(&u), csdl::UpdateStatus::Rejected, "{u:?}");
        assert!(u.reason.contains(reason), "{u:?}");
        assert!(!u.reason_vi.is_empty());
        // Decided at once, and it stays so.
        let again = status(&mut s, &u.update_id).await.unwrap();
        assert_eq!(state(&again), csdl::UpdateStatus::Rejected);
    }
}

#[tokio::test]
async fn only_a_procedure_that_may_update_the_field_sends_it_back() {
    let env = spawn_env().await;
    let mut s = env.officer("CB.H42.0002").await;
    let adult = persona("complete-adult");
    // A field the procedure may not update.
    let st = submit(
        &mut s,
        submission(adult, "full_name", "Trần Thị Thư", "GT-1"),
    )
    .await
    .unwrap_err();
    assert_refused(&st, Code::PermissionDenied, "FIELD_NOT_ALLOWED");
    // A procedure that updates nothing.
    let mut req = submission(adult, "phone", "0987654321", "GT-1");
    req.context = ctx("1.004194");
    let st = submit(&mut s, req).await.unwrap_err();
    assert_refused(&st, Code::PermissionDenied, "FIELD_NOT_ALLOWED");
    // A receiver may not (the procedure is for processors).
    let mut receiver = env.officer("CB.H42.0001").await;
    let st = submit(
        &mut receiver,
        submission(adult, "phone", "0987654321", "GT-1"),
    )
    .await
    .unwrap_err();
    assert_refused(&st, Code::PermissionDenied, "ROLE_NOT_ALLOWED");
    // Bounded input.
    let st = submit(&mut s, submission(adult, "phone", &"9".repeat(200), "GT-1"))
        .await
        .unwrap_err();
    assert_refused(&st, Code::InvalidArgument, "INVALID_ARGUMENT");
    let st = submit(&mut s, submission(adult, "phone", "", "GT-1"))
        .await
        .unwrap_err();
    assert_refused(&st, Code::InvalidArgument, "INVALID_ARGUMENT");
    // Another province does not see Hà Tĩnh's update; a malformed id is refused.
    let u = submit(&mut s, submission(adult, "phone", "0987654321", "GT-1"))
        .await
        .unwrap();
    let mut thanh_hoa = env.officer("CB.H56.0001").await;
    let st = status(&mut thanh_hoa, &u.update_id).await.unwrap_err();
    assert_refused(&st, Code::NotFound, "UPDATE_NOT_FOUND");
    let st = status(&mut s, "../etc").await.unwrap_err();
    assert_refused(&st, Code::InvalidArgument, "INVALID_ARGUMENT");
}
