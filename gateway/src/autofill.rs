//! Filling a procedure's e-form from the record ("không yêu cầu khai báo lại"): each form field
//! from its citizen attribute, with provenance, or left empty with the reason.

use crate::catalog::{Attribute, FormSubject, FormTemplate, Part, Person};
use lienthong_domain::{
    CardStatus, CardType, CitizenField, CitizenRecord, EidLevel, Gender, LifeStatus, MaritalStatus,
    PartialDate, PersonalId, Provenance, Relation, Relative,
};

/// Why a form field is empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnfilledReason {
    NotOnRecord,
    PartialValue,
    RelatedRecordMissing,
    MustBeDeclared,
    /// On record, but not shared on the request's channel.
    WithheldByChannel,
}

/// How the data is reached: the citizen-consent channel withholds some of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FillChannel {
    Officer,
    CitizenConsent,
}

/// What the citizen-consent channel does not share (Thanh Hóa's report, under a VNeID login):
/// the citizen's phone number, their card's issue date and their parents' dates of birth.
fn withheld_on_consent(a: &Attribute, link: Link) -> bool {
    matches!(
        (link, a.field, a.part),
        (Link::Itself, CitizenField::Phone, _)
            | (
                Link::Itself,
                CitizenField::Card,
                Some(Part::CardIssueDate) | None
            )
            | (Link::Father | Link::Mother, CitizenField::DateOfBirth, _)
    )
}

/// A filled form field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filled {
    pub key: String,
    pub label: String,
    pub value: String,
    pub attribute: Attribute,
    pub provenance: Option<Provenance>,
}

/// An empty form field and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unfilled {
    pub key: String,
    pub label: String,
    pub reason: UnfilledReason,
    pub explanation: String,
    pub explanation_vi: String,
}

/// The filled form.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Form {
    pub filled: Vec<Filled>,
    pub unfilled: Vec<Unfilled>,
}

/// The people a form can draw on: the subject's record, and the related people's records when
/// they were read.
#[derive(Debug, Default)]
pub struct Related {
    pub father: Option<CitizenRecord>,
    pub mother: Option<CitizenRecord>,
    pub spouse: Option<CitizenRecord>,
}

/// Which relative of the subject stands for a person of the form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    Itself,
    Father,
    Mother,
    Spouse,
}

/// How a form's person maps to the subject: for a declaring parent, "mother" is the subject when
/// she is a woman and her spouse otherwise.
pub fn link(subject: &CitizenRecord, form: FormSubject, person: Person) -> Link {
    match (form, person) {
        (_, Person::Subject) => Link::Itself,
        (FormSubject::Citizen, Person::Father) => Link::Father,
        (FormSubject::Citizen, Person::Mother) => Link::Mother,
        (_, Person::Spouse) => Link::Spouse,
        (FormSubject::DeclaringParent, Person::Mother) => match subject.gender {
            Gender::Female => Link::Itself,
            Gender::Male => Link::Spouse,
        },
        (FormSubject::DeclaringParent, Person::Father) => match subject.gender {
            Gender::Male => Link::Itself,
            Gender::Female => Link::Spouse,
        },
    }
}

/// The relatives whose own record the form needs (more than name, ID and date of birth), with
/// their personal ID when the subject's record has it.
pub fn records_needed(subject: &CitizenRecord, template: &FormTemplate) -> Vec<(Link, PersonalId)> {
    let mut needed: Vec<(Link, PersonalId)> = Vec::new();
    for a in template.fields.iter().filter_map(|f| f.attribute) {
        let l = link(subject, template.subject, a.person);
        let reference_enough = a.on_reference();
        if l == Link::Itself || reference_enough || needed.iter().any(|(n, _)| *n == l) {
            continue;
        }
        if let Some(id) = reference(subject, l).and_then(|r| r.personal_id.clone()) {
            needed.push((l, id));
        }
    }
    needed
}

fn reference(subject: &CitizenRecord, l: Link) -> Option<&Relative> {
    match l {
        Link::Itself => None,
        Link::Father => subject.father.as_ref(),
        Link::Mother => subject.mother.as_ref(),
        Link::Spouse => subject.spouse.as_ref(),
    }
}

fn related(related: &Related, l: Link) -> Option<&CitizenRecord> {
    match l {
        Link::Itself => None,
        Link::Father => related.father.as_ref(),
        Link::Mother => related.mother.as_ref(),
        Link::Spouse => related.spouse.as_ref(),
    }
}

enum Value {
    Filled(String, Option<Provenance>),
    Empty(UnfilledReason, String, String),
}

/// Fills the template, leaving out what the channel withholds.
pub fn fill(
    template: &FormTemplate,
    subject: &CitizenRecord,
    others: &Related,
    channel: FillChannel,
) -> Form {
    let mut form = Form::default();
    for f in &template.fields {
        let Some(a) = f.attribute else {
            form.unfilled.push(Unfilled {
                key: f.key.clone(),
                label: f.label.clone(),
                reason: UnfilledReason::MustBeDeclared,
                explanation: "the population database does not hold this; the citizen declares it"
                    .into(),
                explanation_vi: "CSDLQG về dân cư không lưu thông tin này; công dân kê khai".into(),
            });
            continue;
        };
        let l = link(subject, template.subject, a.person);
        if channel == FillChannel::CitizenConsent && withheld_on_consent(&a, l) {
            form.unfilled.push(Unfilled {
                key: f.key.clone(),
                label: f.label.clone(),
                reason: UnfilledReason::WithheldByChannel,
                explanation: "not shared on the citizen-consent channel (a VNeID login shares neither the phone number, the card's issue date nor the parents' dates of birth): the citizen declares it".into(),
                explanation_vi: "không được chia sẻ khi công dân đăng nhập bằng tài khoản VNeID (số điện thoại, ngày cấp thẻ, ngày sinh của cha mẹ): công dân tự kê khai".into(),
            });
            continue;
        }
        let value = match l {
            Link::Itself => from_record(subject, &a),
            other => match (related(others, other), reference(subject, other)) {
                (Some(record), _) => from_record(record, &a),
                (None, Some(r)) if a.on_reference() => from_reference(subject, other, r, &a),
                _ => Value::Empty(
                    UnfilledReason::RelatedRecordMissing,
                    format!("the {} is not on record", person_en(other)),
                    format!("CSDL không có hồ sơ của {}", person_vi(other)),
                ),
            },
        };
        match value {
            Value::Filled(value, provenance) => form.filled.push(Filled {
                key: f.key.clone(),
                label: f.label.clone(),
                value,
                attribute: a,
                provenance,
            }),
            Value::Empty(reason, explanation, explanation_vi) => form.unfilled.push(Unfilled {
                key: f.key.clone(),
                label: f.label.clone(),
                reason,
                explanation,
                explanation_vi,
            }),
        }
    }
    form
}

fn person_en(l: Link) -> &'static str {
    match l {
        Link::Itself => "citizen",
        Link::Father => "father",
        Link::Mother => "mother",
        Link::Spouse => "spouse",
    }
}

fn person_vi(l: Link) -> &'static str {
    match l {
        Link::Itself => "công dân",
        Link::Father => "cha",
        Link::Mother => "mẹ",
        Link::Spouse => "vợ/chồng",
    }
}

fn provenance(record: &CitizenRecord, field: CitizenField) -> Option<Provenance> {
    record.provenance.iter().find(|p| p.field == field).cloned()
}

fn not_on_record() -> Value {
    Value::Empty(
        UnfilledReason::NotOnRecord,
        "the record holds no value for this field".into(),
        "CSDL không có dữ liệu cho trường này".into(),
    )
}

fn date(d: PartialDate) -> Value {
    match d {
        PartialDate::Full(..) => Value::Filled(d.to_string(), None),
        PartialDate::YearMonth(..) => Value::Empty(
            UnfilledReason::PartialValue,
            "the record holds only the month and year".into(),
            "CSDL chỉ có tháng và năm".into(),
        ),
        PartialDate::Year(_) => Value::Empty(
            UnfilledReason::PartialValue,
            "the record holds only the year".into(),
            "CSDL chỉ có năm".into(),
        ),
    }
}

fn text(s: Option<&str>) -> Value {
    match s {
        Some(s) if !s.is_empty() => Value::Filled(s.to_owned(), None),
        _ => not_on_record(),
    }
}

/// The nationality as written on forms.
pub fn nationality_vi(code: &str) -> String {
    match code {
        "VN" => "Việt Nam".to_owned(),
        other => other.to_owned(),
    }
}

fn relation_vi(r: Relation) -> &'static str {
    match r {
        Relation::Head => "Chủ hộ",
        Relation::Spouse => "Vợ/chồng",
        Relation::Child => "Con",
        Relation::Parent => "Cha/mẹ",
        Relation::Grandchild => "Cháu",
        Relation::Other => "Khác",
    }
}

fn from_record(r: &CitizenRecord, a: &Attribute) -> Value {
    use CitizenField as F;
    let value = match (a.field, a.part) {
        (F::PersonalId, _) => text(Some(r.personal_id.as_str())),
        (F::OldIdNumber, _) => text(r.old_id_number.as_ref().map(|o| o.as_str())),
        (F::PreviousOldIdNumbers, _) => {
            let numbers: Vec<&str> = r
                .previous_old_id_numbers
                .iter()
                .map(|o| o.as_str())
                .collect();
            text(Some(&numbers.join(", ")))
        }
        (F::FullName, _) => text(Some(&r.full_name)),
        (F::DateOfBirth, _) => date(r.date_of_birth),
        (F::Gender, _) => text(Some(r.gender.label_vi())),
        (F::Nationality, _) => text(Some(&nationality_vi(&r.nationality))),
        (F::Ethnicity, _) => text(Some(&r.ethnicity)),
        (F::Religion, _) => text(Some(&r.religion)),
        (F::PlaceOfBirth, _) => text(Some(&r.place_of_birth.formatted())),
        (F::PlaceOfOrigin, _) => text(Some(&r.place_of_origin.formatted())),
        (F::PermanentAddress, _) => text(Some(&r.permanent_address.formatted())),
        (F::TemporaryAddress, _) => text(
            r.temporary_address
                .as_ref()
                .map(|a| a.formatted())
                .as_deref(),
        ),
        (F::CurrentAddress, _) => text(Some(&r.current_address.formatted())),
        (F::Father, _) => text(r.father.as_ref().map(|p| p.full_name.as_str())),
        (F::Mother, _) => text(r.mother.as_ref().map(|p| p.full_name.as_str())),
        (F::Spouse, _) => text(r.spouse.as_ref().map(|p| p.full_name.as_str())),
        (F::MaritalStatus, _) => text(Some(match r.marital_status {
            MaritalStatus::Single => "Chưa kết hôn",
            MaritalStatus::Married => "Đã kết hôn",
            MaritalStatus::Divorced => "Đã ly hôn",
            MaritalStatus::Widowed => "Góa",
        })),
        (F::Phone, _) => text(r.phone.as_deref()),
        (F::EidLevel, _) => text(Some(match r.eid_level {
            EidLevel::None => "Chưa có tài khoản định danh điện tử",
            EidLevel::Level1 => "Mức 1",
            EidLevel::Level1Pending => "Mức 1 (đang chờ phê duyệt)",
            EidLevel::Level2 => "Mức 2",
        })),
        (F::HealthInsuranceNumber, _) => text(r.health_insurance_number.as_deref()),
        (F::LifeStatus, Some(Part::DateOfDeath)) => match r.life_status {
            LifeStatus::Deceased { date: d } => date(d),
            LifeStatus::Alive => Value::Empty(
                UnfilledReason::NotOnRecord,
                "no death is registered for this citizen".into(),
                "CSDL chưa ghi nhận công dân đã chết".into(),
            ),
        },
        (F::LifeStatus, _) => text(Some(match r.life_status {
            LifeStatus::Alive => "Còn sống",
            LifeStatus::Deceased { .. } => "Đã chết",
        })),
        (F::Card, part) => match (&r.card, part) {
            (None, _) => Value::Empty(
                UnfilledReason::NotOnRecord,
                "no identity card has been issued".into(),
                "công dân chưa được cấp thẻ căn cước".into(),
            ),
            (Some(c), Some(Part::CardType)) => text(Some(match c.card_type {
                CardType::ChipCccd => "Căn cước công dân gắn chip",
                CardType::CanCuoc => "Thẻ căn cước",
            })),
            (Some(c), Some(Part::CardIssueDate)) => date(c.issue_date),
            (Some(c), Some(Part::CardIssuePlace)) => text(Some(&c.issue_place)),
            (Some(c), Some(Part::CardExpiryDate)) => match c.expiry_date {
                Some(d) => date(d),
                None => text(Some("Không thời hạn")),
            },
            (Some(c), _) => text(Some(match c.status {
                CardStatus::Valid => "Còn hiệu lực",
                CardStatus::Expired => "Hết hạn",
                CardStatus::Revoked => "Đã thu hồi",
                CardStatus::Lost => "Đã báo mất",
            })),
        },
        (F::Household, part) => match (&r.household, part) {
            (None, _) => Value::Empty(
                UnfilledReason::NotOnRecord,
                "the citizen belongs to no household on record".into(),
                "công dân không thuộc hộ gia đình nào trong CSDL".into(),
            ),
            (Some(h), Some(Part::HouseholdRelation)) => text(Some(relation_vi(h.relation_to_head))),
            (Some(h), _) => text(Some(h.household_id.as_str())),
        },
    };
    match value {
        Value::Filled(v, _) => Value::Filled(v, provenance(r, a.field)),
        empty => empty,
    }
}

fn from_reference(subject: &CitizenRecord, l: Link, r: &Relative, a: &Attribute) -> Value {
    let field = match l {
        Link::Father => CitizenField::Father,
        Link::Mother => CitizenField::Mother,
        _ => CitizenField::Spouse,
    };
    let value = match a.field {
        CitizenField::FullName => text(Some(&r.full_name)),
        CitizenField::PersonalId => text(r.personal_id.as_ref().map(|p| p.as_str())),
        _ => date(r.date_of_birth),
    };
    match value {
        Value::Filled(v, _) => Value::Filled(v, provenance(subject, field)),
        empty => empty,
    }
}
