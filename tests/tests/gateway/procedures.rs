//! Every procedure in the catalog: a lookup discloses exactly its fields, and autofill fills its
//! e-form.

use crate::helpers::*;
use lienthong_proto::gateway::v1 as pb;
use std::collections::BTreeSet;
use std::time::Duration;

/// The persona each procedure is exercised with.
fn subject_of(code: &str) -> &'static str {
    match code {
        "1.001193" | "LT.KHAISINH" => persona("household-spouse"),
        "1.000656" | "1.011457" | "LT.KHAITU" => persona("deceased"),
        "1.011456" => persona("child-under-6"),
        _ => persona("complete-adult"),
    }
}

#[tokio::test]
async fn every_procedure_discloses_exactly_its_fields_and_fills_its_form() {
    let env = spawn_env().await;
    // A processor may use every procedure in the shipped catalog.
    let mut s = env.officer("CB.H42.0002").await;
    let catalog = s
        .client
        .list_procedures(authed(&s.token, pb::ListProceduresRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .procedures;
    assert!(catalog.len() >= 22, "{}", catalog.len());
    assert!(catalog.iter().all(|p| p.available));
    let status = |code: &str| {
        let p = catalog.iter().find(|p| p.code == code).unwrap();
        pb::CodeStatus::try_from(p.code_status).unwrap()
    };
    assert_eq!(status("2.000488"), pb::CodeStatus::Superseded);
    assert_eq!(status("1.004873"), pb::CodeStatus::National);
    assert_eq!(status("MH.HOCHIEU"), pb::CodeStatus::Illustrative);
    for p in &catalog {
        env.clock.advance(Duration::from_secs(10));
        let subject = subject_of(&p.code);
        let allowed: BTreeSet<&str> = p.allowed_fields.iter().map(String::as_str).collect();

        let found = s
            .lookup(&p.code, subject)
            .await
            .unwrap_or_else(|e| panic!("{}: {e:?}", p.code))
            .into_inner();
        let disclosed: BTreeSet<&str> = found.disclosed_fields.iter().map(String::as_str).collect();
        assert_eq!(disclosed, allowed, "{}", p.code);
        let citizen = found.citizen.unwrap();
        let set: BTreeSet<&str> = set_fields(&citizen).into_iter().collect();
        assert!(
            set.is_subset(&allowed),
            "{}: {:?} leaked",
            p.code,
            set.difference(&allowed)
        );
        assert!(
            set.contains("full_name") == allowed.contains("full_name"),
            "{}",
            p.code
        );
        for prov in &citizen.provenance {
            assert!(
                allowed.contains(prov.field.as_str()),
                "{}: provenance of {}",
                p.code,
                prov.field
            );
        }

        let form = s
            .client
            .autofill_form(authed(&s.token, autofill(&p.code, subject)))
            .await
            .unwrap_or_else(|e| panic!("{}: {e:?}", p.code))
            .into_inner();
        assert_eq!(form.form_id, p.form_id);
        assert_eq!(
            form.filled.len() + form.unfilled.len(),
            p.form_fields.len(),
            "{}",
            p.code
        );
        assert!(!form.filled.is_empty(), "{}: nothing filled", p.code);
        for f in &form.filled {
            let template = p
                .form_fields
                .iter()
                .find(|t| t.key == f.form_field)
                .unwrap();
            assert_eq!(f.attribute, template.attribute, "{}", p.code);
            assert!(!f.value.is_empty());
        }
        for u in &form.unfilled {
            let template = p
                .form_fields
                .iter()
                .find(|t| t.key == u.form_field)
                .unwrap();
            if template.attribute.is_empty() {
                assert_eq!(
                    u.reason,
                    pb::UnfilledReason::MustBeDeclared as i32,
                    "{}",
                    u.form_field
                );
            } else {
                assert_ne!(u.reason, pb::UnfilledReason::MustBeDeclared as i32);
            }
            assert!(!u.explanation_vi.is_empty());
        }
    }
}

fn value<'a>(form: &'a pb::AutofillFormResponse, key: &str) -> Option<&'a str> {
    form.filled
        .iter()
        .find(|f| f.form_field == key)
        .map(|f| f.value.as_str())
}

fn reason(form: &pb::AutofillFormResponse, key: &str) -> Option<pb::UnfilledReason> {
    form.unfilled
        .iter()
        .find(|f| f.form_field == key)
        .map(|f| pb::UnfilledReason::try_from(f.reason).unwrap())
}

#[tokio::test]
async fn the_birth_bundle_fills_the_newborns_form_from_both_parents() {
    let env = spawn_env().await;
    let mut s = env.officer("CB.H42.0001").await;
    for declaring in ["household-spouse", "household-head"] {
        let form = s.autofill("LT.KHAISINH", persona(declaring)).await.unwrap();
        assert_eq!(
            value(&form, "ho_ten_me"),
            Some("Phạm Thị Lan"),
            "{declaring}"
        );
        assert_eq!(
            value(&form, "ho_ten_cha"),
            Some("Lê Văn Hùng"),
            "{declaring}"
        );
        assert_eq!(
            value(&form, "so_dinh_danh_cha"),
            Some(persona("household-head"))
        );
        assert_eq!(
            value(&form, "so_dinh_danh_me"),
            Some(persona("household-spouse"))
        );
        // From the other parent's own record, not just the reference on the declarant's.
        assert!(value(&form, "dan_toc_cha").is_some() && value(&form, "dan_toc_me").is_some());
        assert_eq!(value(&form, "quoc_tich_me"), Some("Việt Nam"));
        assert_eq!(
            reason(&form, "ho_ten_tre"),
            Some(pb::UnfilledReason::MustBeDeclared)
        );
        let filled = form
            .filled
            .iter()
            .find(|f| f.form_field == "ho_ten_me")
            .unwrap();
        assert_eq!(filled.provenance.as_ref().unwrap().source, "civil-status");
    }
}

#[tokio::test]
async fn autofill_says_why_a_field_is_empty() {
    let env = spawn_env().await;
    let mut s = env.officer("CB.H42.0001").await;
    // No phone in her own name.
    let form = s.autofill("1.004222", persona("no-phone")).await.unwrap();
    assert_eq!(
        reason(&form, "so_dien_thoai"),
        Some(pb::UnfilledReason::NotOnRecord)
    );
    assert!(value(&form, "ho_ten").is_some());
    // Birth date known by year only.
    let form = s
        .autofill("1.004222", persona("partial-birth-date"))
        .await
        .unwrap();
    assert_eq!(
        reason(&form, "ngay_sinh"),
        Some(pb::UnfilledReason::PartialValue)
    );
    // A child without a card: the marriage form's card fields.
    let form = s
        .autofill("1.000894", persona("child-under-6"))
        .await
        .unwrap();
    assert_eq!(
        reason(&form, "ngay_cap"),
        Some(pb::UnfilledReason::NotOnRecord)
    );
    // The deceased's date of death fills the death-registration form.
    let form = s.autofill("1.000656", persona("deceased")).await.unwrap();
    assert_eq!(value(&form, "ngay_chet"), Some("30/09/2026"));
}

#[tokio::test]
async fn asking_for_fewer_fields_discloses_only_those() {
    let env = spawn_env().await;
    let mut s = env.officer("CB.H42.0001").await;
    let mut req = lookup("1.004227", persona("complete-adult"));
    req.fields = vec!["full_name".into(), "permanent_address".into()];
    let r = s
        .client
        .lookup_citizen(authed(&s.token, req))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.disclosed_fields, ["full_name", "permanent_address"]);
    assert_eq!(
        set_fields(&r.citizen.unwrap()),
        ["full_name", "permanent_address"]
    );
    // By old ID number too, for the procedure that confirms it.
    let req = pb::LookupCitizenRequest {
        context: ctx("1.010103"),
        subject: Some(pb::lookup_citizen_request::Subject::OldIdNumber(
            "189990010".into(),
        )),
        fields: vec!["personal_id".into(), "old_id_number".into()],
    };
    let r = s
        .client
        .lookup_citizen(authed(&s.token, req))
        .await
        .unwrap()
        .into_inner();
    let c = r.citizen.unwrap();
    assert_eq!(c.personal_id, persona("old-id-holder"));
    assert_eq!(c.old_id_number, "189990010");
}
