//! The interlinked bundles as cases: each step another agency's procedure, acted on in order
//! by an officer who holds a role for it, with the step's form filled and what the officer
//! entered; the records change in the database as they would (a newborn appears with a number,
//! a household gains a child, a deceased citizen is struck off).

use crate::helpers::*;
use lienthong_domain::PartialDate;
use lienthong_proto::csdl::v1 as csdl;
use lienthong_proto::gateway::v1 as pb;
use tonic::Code;

use csdl::StepStatus as S;

fn entered(pairs: &[(&str, &str)]) -> Vec<csdl::EnteredValue> {
    pairs
        .iter()
        .map(|(k, v)| csdl::EnteredValue {
            key: (*k).into(),
            value: (*v).into(),
        })
        .collect()
}

/// A date `days` before today, as dd/mm/yyyy.
fn days_ago(days: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    PartialDate::from_days_since_epoch(now / 86_400 - days).to_string()
}

async fn open(
    s: &mut Session,
    bundle: &str,
    personal_id: &str,
) -> Result<pb::BundleResponse, tonic::Status> {
    Ok(s.client
        .open_bundle(authed(
            &s.token,
            pb::OpenBundleRequest {
                context: ctx(bundle),
                personal_id: personal_id.into(),
            },
        ))
        .await?
        .into_inner())
}

async fn case_of(
    s: &mut Session,
    procedure: &str,
    case_id: &str,
) -> Result<pb::BundleResponse, tonic::Status> {
    Ok(s.client
        .get_bundle_case(authed(
            &s.token,
            pb::GetBundleCaseRequest {
                context: ctx(procedure),
                case_id: case_id.into(),
            },
        ))
        .await?
        .into_inner())
}

async fn act(
    s: &mut Session,
    step: &str,
    case_id: &str,
    values: &[(&str, &str)],
) -> Result<pb::BundleResponse, tonic::Status> {
    act_as(s, ctx(step), case_id, values).await
}

async fn act_as(
    s: &mut Session,
    context: Option<pb::RequestContext>,
    case_id: &str,
    values: &[(&str, &str)],
) -> Result<pb::BundleResponse, tonic::Status> {
    Ok(s.client
        .complete_bundle_step(authed(
            &s.token,
            pb::CompleteBundleStepRequest {
                context,
                case_id: case_id.into(),
                entered: entered(values),
            },
        ))
        .await?
        .into_inner())
}

fn statuses(c: &csdl::BundleCase) -> Vec<S> {
    c.steps
        .iter()
        .map(|s| S::try_from(s.status).unwrap())
        .collect()
}

fn outcome<'c>(step: &'c csdl::CaseStep, key: &str) -> &'c str {
    step.outcome
        .iter()
        .find(|o| o.key == key)
        .map(|o| o.value.as_str())
        .unwrap_or_else(|| panic!("no {key} in {:?}", step.outcome))
}

#[tokio::test]
async fn the_birth_bundle_registers_the_child_then_its_residence_then_its_insurance() {
    let env = spawn_env().await;
    let mut receiver = env.officer("CB.H42.0001").await;
    let mut approver = env.officer("CB.H42.0003").await;
    let mother = persona("household-spouse");

    // Not a bundle: refused with the reason.
    let e = open(&mut receiver, "1.001193", mother).await.unwrap_err();
    assert_refused(&e, Code::InvalidArgument, "INVALID_ARGUMENT");
    assert!(e.message().contains("not an interlinked bundle"), "{e:?}");
    // A declaring parent who has died: refused, naming the field, before any form is filled.
    let e = open(&mut receiver, "LT.KHAISINH", persona("deceased"))
        .await
        .unwrap_err();
    assert_refused(&e, Code::InvalidArgument, "INVALID_ARGUMENT");
    assert!(e.message().contains("has died"), "{e:?}");

    let opened = open(&mut receiver, "LT.KHAISINH", mother).await.unwrap();
    let case = opened.case.unwrap();
    assert_eq!(statuses(&case), [S::Ready, S::Waiting, S::Waiting]);
    let agencies: Vec<&str> = case.steps.iter().map(|s| s.agency_vi.as_str()).collect();
    assert_eq!(agencies[0], "UBND cấp xã (tư pháp – hộ tịch)");
    assert_eq!(agencies[1], "Công an cấp xã (đăng ký cư trú)");
    let form = opened.form.unwrap();
    assert_eq!(form.procedure_code, "LT.KHAISINH");
    assert!(
        form.filled
            .iter()
            .any(|f| f.form_field == "ho_ten_cha" && f.value == "Lê Văn Hùng")
    );
    let id = case.case_id.clone();

    // Out of order: the residence step waits for the registration.
    let e = act(&mut approver, "1.004222", &id, &[]).await.unwrap_err();
    assert_refused(&e, Code::FailedPrecondition, "STEP_NOT_READY");
    assert!(e.message().contains("waits for step 1.001193"), "{e:?}");
    // A key the officer does not enter on this form.
    let e = act(&mut receiver, "1.001193", &id, &[("ho_ten", "Lê Gia Bảo")])
        .await
        .unwrap_err();
    assert_refused(&e, Code::InvalidArgument, "INVALID_ARGUMENT");
    assert!(e.message().contains("ho_ten_tre"), "{e:?}");

    // A date in the future: the step is rejected with the reason, and may be acted on again.
    let born = days_ago(3);
    let tomorrow = days_ago(-1);
    let r = act(
        &mut receiver,
        "1.001193",
        &id,
        &[
            ("ho_ten_tre", "Lê Gia Bảo"),
            ("ngay_sinh_tre", &tomorrow),
            ("gioi_tinh_tre", "Nam"),
        ],
    )
    .await
    .unwrap();
    let c = r.case.unwrap();
    assert_eq!(statuses(&c), [S::Rejected, S::Waiting, S::Waiting]);
    assert!(c.steps[0].reason.contains("future"), "{:?}", c.steps[0]);
    assert!(!c.steps[0].reason_vi.is_empty());

    let r = act(
        &mut receiver,
        "1.001193",
        &id,
        &[
            ("ho_ten_tre", "Lê Gia Bảo"),
            ("ngay_sinh_tre", &born),
            ("gioi_tinh_tre", "Nam"),
            ("noi_sinh_tre", "Bệnh viện Đa khoa tỉnh Hà Tĩnh"),
        ],
    )
    .await
    .unwrap();
    // The step's form was filled from the declaring mother's record and her husband's.
    let step_form = r.form.unwrap();
    assert_eq!(step_form.procedure_code, "1.001193");
    assert!(
        step_form
            .filled
            .iter()
            .any(|f| f.form_field == "ho_ten_me" && f.value == "Phạm Thị Lan")
    );
    let c = r.case.unwrap();
    assert_eq!(statuses(&c), [S::Done, S::Ready, S::Waiting]);
    assert_eq!(c.steps[0].acted_by, "CB.H42.0001");
    assert_eq!(c.steps[0].entered.len(), 4);
    let child = outcome(&c.steps[0], "personal_id").to_owned();
    // Hà Tĩnh (042), a boy born in this century (2), the year, a serial.
    assert_eq!(&child[..4], "0422");
    assert_eq!(&child[4..6], &born[8..10]);
    assert!(outcome(&c.steps[0], "birth_certificate_number").starts_with("KS"));
    assert_eq!(c.steps[1].subject_personal_id, child);
    assert!(c.steps[1].handed_off_at.is_some());

    // The newborn is on record, with both parents.
    let looked = receiver
        .fields_of(
            "1.011456",
            &child,
            &["full_name", "father", "mother", "health_insurance_number"],
        )
        .await;
    assert_eq!(looked.full_name, "Lê Gia Bảo");
    assert_eq!(looked.father.unwrap().full_name, "Lê Văn Hùng");
    assert_eq!(looked.mother.unwrap().full_name, "Phạm Thị Lan");
    assert!(looked.health_insurance_number.is_empty());

    // Permanent residence: the commune police act under 1.004222; the child joins the family.
    let r = act(&mut approver, "1.004222", &id, &[]).await.unwrap();
    let c = r.case.unwrap();
    assert_eq!(statuses(&c), [S::Done, S::Done, S::Ready]);
    assert_eq!(outcome(&c.steps[1], "household_id"), "HK0429990001");
    assert_eq!(r.form.unwrap().procedure_code, "1.004222");
    let household = receiver.household("LT.KHAISINH", &child).await.unwrap();
    assert!(household.members.iter().any(|m| m.personal_id == child));

    // Health insurance: without the clinic, rejected; with it, the card's number.
    let c = act(&mut receiver, "1.011456", &id, &[])
        .await
        .unwrap()
        .case
        .unwrap();
    assert_eq!(statuses(&c)[2], S::Rejected);
    assert!(c.steps[2].reason.contains("noi_dang_ky_kcb"));
    let last = ctx("1.011456");
    let done = act_as(
        &mut receiver,
        last.clone(),
        &id,
        &[("noi_dang_ky_kcb", "Trạm Y tế phường Thành Sen")],
    )
    .await
    .unwrap()
    .case
    .unwrap();
    assert_eq!(statuses(&done), [S::Done, S::Done, S::Done]);
    assert!(done.completed);
    let hi = outcome(&done.steps[2], "health_insurance_number");
    assert_eq!(hi.len(), 10);
    assert!(hi.starts_with("42"));
    // The same request again gives back the same case; a new one finds the step done.
    let again = act_as(
        &mut receiver,
        last,
        &id,
        &[("noi_dang_ky_kcb", "Trạm Y tế phường Thành Sen")],
    )
    .await
    .unwrap()
    .case
    .unwrap();
    assert_eq!(again, done);
    let e = act(
        &mut receiver,
        "1.011456",
        &id,
        &[("noi_dang_ky_kcb", "Trạm Y tế phường Thành Sen")],
    )
    .await
    .unwrap_err();
    assert_refused(&e, Code::FailedPrecondition, "STEP_NOT_READY");

    // Every step's call is on the newborn's own trail.
    let methods: Vec<String> = env
        .records_about(&child)
        .await
        .into_iter()
        .map(|r| r.method)
        .collect();
    assert!(
        methods
            .iter()
            .filter(|m| m.ends_with("/CompleteBundleStep"))
            .count()
            >= 3,
        "{methods:?}"
    );
}

#[tokio::test]
async fn the_death_bundle_strikes_off_then_pays_the_funeral_allowance() {
    let env = spawn_env().await;
    let mut receiver = env.officer("CB.H42.0001").await;
    let mut processor = env.officer("CB.H42.0002").await;
    let mut approver = env.officer("CB.H42.0003").await;

    // Her death is registered but she is still on her son's register: the case starts at the
    // removal from permanent residence.
    let gai = persona("deceased-on-register");
    let case = open(&mut receiver, "LT.KHAITU", gai)
        .await
        .unwrap()
        .case
        .unwrap();
    assert_eq!(statuses(&case), [S::AlreadyOnRecord, S::Ready, S::Waiting]);
    let c = act(&mut approver, "1.004222", &case.case_id, &[])
        .await
        .unwrap()
        .case
        .unwrap();
    assert_eq!(statuses(&c), [S::AlreadyOnRecord, S::Done, S::Ready]);
    let household = receiver
        .household("LT.KHAISINH", persona("old-id-holder"))
        .await
        .unwrap();
    assert!(household.members.iter().all(|m| m.personal_id != gai));
    // The funeral allowance is a processor's: a receiver is refused by the policy.
    let e = act(
        &mut receiver,
        "1.011457",
        &case.case_id,
        &[("nguoi_lo_mai_tang", "Ngô Văn Lực")],
    )
    .await
    .unwrap_err();
    assert_refused(&e, Code::PermissionDenied, "ROLE_NOT_ALLOWED");
    let c = act(
        &mut processor,
        "1.011457",
        &case.case_id,
        &[("nguoi_lo_mai_tang", "Ngô Văn Lực")],
    )
    .await
    .unwrap()
    .case
    .unwrap();
    assert!(c.completed, "{c:?}");
    let benefits: Vec<&str> = c.steps[2].outcome.iter().map(|o| o.key.as_str()).collect();
    assert!(
        benefits.contains(&"funeral_allowance") || benefits.contains(&"funeral_support"),
        "{benefits:?}"
    );

    // A living citizen: the death is registered first, then she is struck off and her
    // household, of which she was the only member, is closed.
    let nga = persona("no-phone");
    let case = open(&mut receiver, "LT.KHAITU", nga)
        .await
        .unwrap()
        .case
        .unwrap();
    assert_eq!(statuses(&case), [S::Ready, S::Waiting, S::Waiting]);
    let date = days_ago(2);
    let c = act(
        &mut receiver,
        "1.000656",
        &case.case_id,
        &[
            ("ngay_chet", &date),
            ("noi_chet", "Tại nhà"),
            ("nguoi_di_khai", "Đinh Văn Nam"),
        ],
    )
    .await
    .unwrap()
    .case
    .unwrap();
    assert_eq!(statuses(&c), [S::Done, S::Ready, S::Waiting]);
    assert_eq!(outcome(&c.steps[0], "date_of_death"), date);
    assert!(outcome(&c.steps[0], "death_certificate_number").starts_with("KT"));
    let record = receiver.fields_of("1.000656", nga, &["life_status"]).await;
    let life = record.life_status.unwrap();
    assert!(life.deceased, "{life:?}");
    act(&mut approver, "1.004222", &case.case_id, &[])
        .await
        .unwrap();
    let e = receiver.household("LT.KHAISINH", nga).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");

    // Another unit's case is not found; a malformed id is named.
    let mut other = env.officer("CB.H56.0001").await;
    let e = case_of(&mut other, "LT.KHAITU", &case.case_id)
        .await
        .unwrap_err();
    assert_refused(&e, Code::NotFound, "CASE_NOT_FOUND");
    let e = case_of(&mut receiver, "LT.KHAITU", "LT12")
        .await
        .unwrap_err();
    assert_refused(&e, Code::InvalidArgument, "INVALID_ARGUMENT");
    // Under one of its steps' procedures, by an officer who holds a role for it.
    let seen = case_of(&mut processor, "1.011457", &case.case_id)
        .await
        .unwrap();
    assert!(seen.form.is_none());
    assert_eq!(statuses(&seen.case.unwrap()), [S::Done, S::Done, S::Ready]);
}
