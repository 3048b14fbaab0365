//! The citizen-consent channel: a citizen applying online consents, through their VNeID login,
//! to an auto-fill of one procedure's form. The exchange then withholds the phone number, the
//! card's issue date and the parents' dates of birth; a level 1 account awaiting approval, or
//! another citizen's or another procedure's consent, is refused; the trail says which channel.

use crate::helpers::*;
use lienthong_devtool::tokens::TokenSpec;
use lienthong_proto::gateway::v1 as pb;
use std::collections::BTreeMap;
use tonic::Code;

/// The consent a citizen's VNeID login gives Hà Tĩnh's portal for one procedure.
fn consent(env: &TestEnv, personal_id: &str, procedure: &str) -> String {
    env.token_with("CB.H42.0001", |t| TokenSpec {
        officer: personal_id.into(),
        roles: vec!["citizen".into()],
        procedure: Some(procedure.into()),
        ..t
    })
}

fn form(procedure: &str, personal_id: &str, token: Option<&str>) -> pb::AutofillFormRequest {
    let mut context = ctx(procedure).unwrap();
    if let Some(token) = token {
        context.channel = pb::Channel::CitizenConsent as i32;
        context.consent_token = token.into();
    }
    pb::AutofillFormRequest {
        context: Some(context),
        subject: Some(pb::autofill_form_request::Subject::PersonalId(
            personal_id.into(),
        )),
    }
}

/// The form by key: the value, or the reason it is empty.
fn by_key(f: &pb::AutofillFormResponse) -> BTreeMap<String, Result<String, pb::UnfilledReason>> {
    let mut out = BTreeMap::new();
    for x in &f.filled {
        out.insert(x.form_field.clone(), Ok(x.value.clone()));
    }
    for x in &f.unfilled {
        out.insert(
            x.form_field.clone(),
            Err(pb::UnfilledReason::try_from(x.reason).unwrap()),
        );
    }
    out
}

#[tokio::test]
async fn consent_withholds_the_phone_the_card_date_and_the_parents_birth_dates() {
    let env = spawn_env().await;
    let mut s = env.officer("CB.H42.0001").await;
    let adult = persona("complete-adult");
    for (procedure, withheld) in [
        // Passport: phone, parents' dates of birth.
        (
            "MH.HOCHIEU",
            &["so_dien_thoai", "ngay_sinh_cha", "ngay_sinh_me"][..],
        ),
        // Identity card: the issue date of the card in use.
        ("MH.CANCUOC", &["ngay_cap_the_cu"][..]),
    ] {
        let officer = s
            .client
            .autofill_form(authed(&s.token, form(procedure, adult, None)))
            .await
            .unwrap()
            .into_inner();
        let token = consent(&env, adult, procedure);
        let citizen = s
            .client
            .autofill_form(authed(&s.token, form(procedure, adult, Some(&token))))
            .await
            .unwrap()
            .into_inner();
        let (officer, citizen) = (by_key(&officer), by_key(&citizen));
        assert_eq!(
            officer.keys().collect::<Vec<_>>(),
            citizen.keys().collect::<Vec<_>>()
        );
        for (key, value) in &citizen {
            if withheld.contains(&key.as_str()) {
                assert_eq!(
                    *value,
                    Err(pb::UnfilledReason::WithheldByChannel),
                    "{procedure} {key}"
                );
            } else {
                assert_eq!(value, &officer[key], "{procedure} {key}");
            }
        }
        // What the officer channel fills and consent withholds.
        assert!(procedure != "MH.HOCHIEU" || officer["so_dien_thoai"].is_ok());
        assert!(officer.get("ngay_cap_the_cu").is_none_or(Result::is_ok));
    }
    // On a birth form the "mother" and "father" are the declaring parent and her husband, not
    // her own parents: their dates of birth are shared.
    let mother = persona("household-spouse");
    let token = consent(&env, mother, "1.001193");
    let birth = s
        .client
        .autofill_form(authed(&s.token, form("1.001193", mother, Some(&token))))
        .await
        .unwrap()
        .into_inner();
    let birth = by_key(&birth);
    assert!(birth["ngay_sinh_me"].is_ok(), "{birth:?}");
    assert!(birth["ngay_sinh_cha"].is_ok(), "{birth:?}");
    // The reason comes in words, in both languages.
    let token = consent(&env, adult, "MH.HOCHIEU");
    let reply = s
        .client
        .autofill_form(authed(&s.token, form("MH.HOCHIEU", adult, Some(&token))))
        .await
        .unwrap()
        .into_inner();
    let phone = reply
        .unfilled
        .iter()
        .find(|u| u.form_field == "so_dien_thoai")
        .unwrap();
    assert!(phone.explanation.contains("citizen-consent"), "{phone:?}");
    assert!(phone.explanation_vi.contains("VNeID"), "{phone:?}");

    // The trail tells the channels apart, and what was withheld was not disclosed.
    let records = env.records_about(adult).await;
    let consented: Vec<_> = records
        .iter()
        .filter(|r| r.purpose == "administrative_procedure/citizen_consent")
        .collect();
    assert_eq!(consented.len(), 3, "{records:?}");
    for r in &consented {
        assert!(!r.fields_disclosed.iter().any(|f| f == "phone"), "{r:?}");
        assert!(
            !r.fields_disclosed.iter().any(|f| f == "card.issue_date"),
            "{r:?}"
        );
    }
    assert_eq!(
        records
            .iter()
            .filter(|r| r.purpose == "administrative_procedure")
            .count(),
        2
    );
}

async fn consented(s: &mut Session, procedure: &str, subject: &str, token: &str) -> tonic::Status {
    s.client
        .autofill_form(authed(&s.token, form(procedure, subject, Some(token))))
        .await
        .expect_err("refused")
}

#[tokio::test]
async fn consent_is_the_citizen_s_own_for_this_procedure_and_needs_a_level_2_account() {
    let env = spawn_env().await;
    let mut s = env.officer("CB.H42.0001").await;
    let adult = persona("complete-adult");
    // Another citizen's consent (her husband's).
    let husband = persona("complete-adult-spouse");
    let token = consent(&env, husband, "MH.HOCHIEU");
    let st = consented(&mut s, "MH.HOCHIEU", adult, &token).await;
    assert_refused(&st, Code::PermissionDenied, "CONSENT_INVALID");
    assert!(st.message().contains("another citizen"), "{st:?}");
    // Consent to another procedure.
    let token = consent(&env, adult, "MH.CANCUOC");
    let st = consented(&mut s, "MH.HOCHIEU", adult, &token).await;
    assert_refused(&st, Code::PermissionDenied, "CONSENT_INVALID");
    assert!(st.message().contains("MH.CANCUOC"), "{st:?}");
    // A citizen token naming no procedure, an officer's token, a forged one.
    let plain = env.token_with("CB.H42.0001", |t| TokenSpec {
        officer: adult.into(),
        roles: vec!["citizen".into()],
        ..t
    });
    let st = consented(&mut s, "MH.HOCHIEU", adult, &plain).await;
    assert_refused(&st, Code::PermissionDenied, "CONSENT_INVALID");
    assert!(st.message().contains("procedure"), "{st:?}");
    let officer = env.token("CB.H42.0002");
    let st = consented(&mut s, "MH.HOCHIEU", adult, &officer).await;
    assert_refused(&st, Code::PermissionDenied, "CONSENT_INVALID");
    assert!(st.message().contains("citizen"), "{st:?}");
    let st = consented(&mut s, "MH.HOCHIEU", adult, "eyJhbGciOiJIUzI1NiJ9.e30.x").await;
    assert_refused(&st, Code::PermissionDenied, "CONSENT_INVALID");
    // Given to another province's portal.
    let elsewhere = env.token_with("CB.H42.0001", |t| TokenSpec {
        officer: adult.into(),
        unit: "000.00.00.H56".into(),
        roles: vec!["citizen".into()],
        procedure: Some("MH.HOCHIEU".into()),
        ..t
    });
    let st = consented(&mut s, "MH.HOCHIEU", adult, &elsewhere).await;
    assert_refused(&st, Code::PermissionDenied, "CONSENT_INVALID");
    assert!(st.message().contains("000.00.00.H56"), "{st:?}");
    // A level 1 account awaiting approval cannot consent; nor can a citizen with no account.
    let pending = persona("vneid-pending");
    let token = consent(&env, pending, "MH.HOCHIEU");
    let st = consented(&mut s, "MH.HOCHIEU", pending, &token).await;
    assert_refused(&st, Code::FailedPrecondition, "CONSENT_NOT_POSSIBLE");
    assert!(st.message().contains("awaiting approval"), "{st:?}");
    let no_account = persona("no-phone");
    let token = consent(&env, no_account, "MH.HOCHIEU");
    let st = consented(&mut s, "MH.HOCHIEU", no_account, &token).await;
    assert_refused(&st, Code::FailedPrecondition, "CONSENT_NOT_POSSIBLE");
    assert!(st.message().contains("no VNeID account"), "{st:?}");
    // At the one-stop desk, on the officer channel, her form is filled.
    s.client
        .autofill_form(authed(&s.token, form("MH.HOCHIEU", pending, None)))
        .await
        .unwrap();
}

#[tokio::test]
async fn the_consent_channel_serves_auto_fill_only_and_its_token_is_bounded() {
    let env = spawn_env().await;
    let mut s = env.officer("CB.H42.0001").await;
    let adult = persona("complete-adult");
    let token = consent(&env, adult, "1.004194");
    let mut context = ctx("1.004194").unwrap();
    context.channel = pb::Channel::CitizenConsent as i32;
    context.consent_token = token.clone();
    let st = s
        .client
        .lookup_citizen(authed(
            &s.token,
            pb::LookupCitizenRequest {
                context: Some(context.clone()),
                subject: Some(pb::lookup_citizen_request::Subject::PersonalId(
                    adult.into(),
                )),
                fields: vec![],
            },
        ))
        .await
        .unwrap_err();
    assert_refused(&st, Code::InvalidArgument, "INVALID_ARGUMENT");
    assert!(st.message().contains("AutofillForm only"), "{st:?}");
    // A token on the officer channel, an unknown channel, an oversize token.
    let mut officer_with_token = form("1.004194", adult, None);
    officer_with_token.context.as_mut().unwrap().consent_token = token;
    let mut unknown = form("1.004194", adult, None);
    unknown.context.as_mut().unwrap().channel = 9;
    let mut oversize = form("1.004194", adult, Some("x"));
    oversize.context.as_mut().unwrap().consent_token = "a".repeat(9000);
    for (req, field) in [
        (officer_with_token, "context.consent_token"),
        (unknown, "context.channel"),
        (oversize, "context.consent_token"),
    ] {
        let st = s
            .client
            .autofill_form(authed(&s.token, req))
            .await
            .unwrap_err();
        assert_refused(&st, Code::InvalidArgument, "INVALID_ARGUMENT");
        assert!(st.message().contains(field), "{st:?}");
    }
}
