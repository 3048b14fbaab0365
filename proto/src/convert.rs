//! The one place where wire types become domain types and back: one conversion per type and
//! direction. Anything arriving from the wire is parsed here; the domain never sees prost.

use crate::csdl::v1 as pb;
use lienthong_domain::{
    Address, CardStatus, CardType, CitizenField, CitizenRecord, DistrictCode, EidLevel, Gender,
    HistoricalPlace, HouseholdId, HouseholdLink, IdCard, LifeStatus, MaritalStatus, OldIdNumber,
    PartialDate, PersonalId, Provenance, Relation, Relative, Source, WardCode,
};

/// A wire message that does not make a valid domain value; names the field and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct WireError {
    /// The path of the offending field, e.g. "citizen.date_of_birth".
    pub field: String,
    /// What is wrong with it.
    pub problem: String,
}

impl WireError {
    /// An error at a field path.
    pub fn new(field: impl Into<String>, problem: impl ToString) -> Self {
        Self {
            field: field.into(),
            problem: problem.to_string(),
        }
    }
}

fn at<T, E: ToString>(field: &str, r: Result<T, E>) -> Result<T, WireError> {
    r.map_err(|e| WireError::new(field, e))
}

fn required<T>(field: &str, v: Option<T>) -> Result<T, WireError> {
    v.ok_or_else(|| WireError::new(field, "is required"))
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

// --- dates ---------------------------------------------------------------------------------

/// Domain date → wire date.
pub fn date_to_pb(d: PartialDate) -> pb::Date {
    let (year, month, day) = d.to_parts();
    pb::Date {
        year,
        month: month as i32,
        day: day as i32,
    }
}

/// Wire date → domain date; `None` when the date is absent (year 0).
pub fn date_from_pb(field: &str, d: &pb::Date) -> Result<Option<PartialDate>, WireError> {
    if d.year == 0 && d.month == 0 && d.day == 0 {
        return Ok(None);
    }
    let month = at(field, u32::try_from(d.month))?;
    let day = at(field, u32::try_from(d.day))?;
    at(field, PartialDate::from_parts(d.year, month, day)).map(Some)
}

fn opt_date(field: &str, d: Option<&pb::Date>) -> Result<Option<PartialDate>, WireError> {
    match d {
        Some(d) => date_from_pb(field, d),
        None => Ok(None),
    }
}

fn req_date(field: &str, d: Option<&pb::Date>) -> Result<PartialDate, WireError> {
    required(field, opt_date(field, d)?)
}

// --- enums ---------------------------------------------------------------------------------

/// Domain gender → wire enum value.
pub fn gender_to_pb(g: Gender) -> pb::Gender {
    match g {
        Gender::Male => pb::Gender::Male,
        Gender::Female => pb::Gender::Female,
    }
}

/// Wire enum value → domain gender.
pub fn gender_from_pb(field: &str, g: i32) -> Result<Gender, WireError> {
    match pb::Gender::try_from(g) {
        Ok(pb::Gender::Male) => Ok(Gender::Male),
        Ok(pb::Gender::Female) => Ok(Gender::Female),
        _ => Err(WireError::new(
            field,
            "must be GENDER_MALE or GENDER_FEMALE",
        )),
    }
}

fn marital_to_pb(m: MaritalStatus) -> pb::MaritalStatus {
    match m {
        MaritalStatus::Single => pb::MaritalStatus::Single,
        MaritalStatus::Married => pb::MaritalStatus::Married,
        MaritalStatus::Divorced => pb::MaritalStatus::Divorced,
        MaritalStatus::Widowed => pb::MaritalStatus::Widowed,
    }
}

fn marital_from_pb(m: i32) -> Result<MaritalStatus, WireError> {
    match pb::MaritalStatus::try_from(m) {
        Ok(pb::MaritalStatus::Single) => Ok(MaritalStatus::Single),
        Ok(pb::MaritalStatus::Married) => Ok(MaritalStatus::Married),
        Ok(pb::MaritalStatus::Divorced) => Ok(MaritalStatus::Divorced),
        Ok(pb::MaritalStatus::Widowed) => Ok(MaritalStatus::Widowed),
        _ => Err(WireError::new("marital_status", "is not set")),
    }
}

/// Domain relation → wire enum.
pub fn relation_to_pb(r: Relation) -> pb::Relation {
    match r {
        Relation::Head => pb::Relation::Head,
        Relation::Spouse => pb::Relation::Spouse,
        Relation::Child => pb::Relation::Child,
        Relation::Parent => pb::Relation::Parent,
        Relation::Grandchild => pb::Relation::Grandchild,
        Relation::Other => pb::Relation::Other,
    }
}

fn relation_from_pb(field: &str, r: i32) -> Result<Relation, WireError> {
    match pb::Relation::try_from(r) {
        Ok(pb::Relation::Head) => Ok(Relation::Head),
        Ok(pb::Relation::Spouse) => Ok(Relation::Spouse),
        Ok(pb::Relation::Child) => Ok(Relation::Child),
        Ok(pb::Relation::Parent) => Ok(Relation::Parent),
        Ok(pb::Relation::Grandchild) => Ok(Relation::Grandchild),
        Ok(pb::Relation::Other) => Ok(Relation::Other),
        _ => Err(WireError::new(field, "is not set")),
    }
}

fn eid_to_pb(e: EidLevel) -> pb::EidLevel {
    match e {
        EidLevel::None => pb::EidLevel::None,
        EidLevel::Level1 => pb::EidLevel::EidLevel1,
        EidLevel::Level2 => pb::EidLevel::EidLevel2,
        EidLevel::Level1Pending => pb::EidLevel::EidLevel1Pending,
    }
}

fn eid_from_pb(e: i32) -> EidLevel {
    match pb::EidLevel::try_from(e) {
        Ok(pb::EidLevel::EidLevel1) => EidLevel::Level1,
        Ok(pb::EidLevel::EidLevel2) => EidLevel::Level2,
        Ok(pb::EidLevel::EidLevel1Pending) => EidLevel::Level1Pending,
        _ => EidLevel::None,
    }
}

// --- places --------------------------------------------------------------------------------

/// Domain address → wire address, with the derived names and formatted string.
pub fn address_to_pb(a: &Address) -> pb::Address {
    pb::Address {
        detail: a.detail.clone(),
        ward_code: a.ward.to_string(),
        ward_name: a.ward.ward().name.clone(),
        province_code: format!("{:02}", a.province_code()),
        province_name: a.province_name(),
        formatted: a.formatted(),
    }
}

/// Wire address → domain address (only the detail and ward code are read; names are derived).
pub fn address_from_pb(field: &str, a: &pb::Address) -> Result<Address, WireError> {
    Ok(Address {
        detail: a.detail.clone(),
        ward: at(&format!("{field}.ward_code"), WardCode::parse(&a.ward_code))?,
    })
}

fn opt_address(field: &str, a: Option<&pb::Address>) -> Result<Option<Address>, WireError> {
    a.map(|a| address_from_pb(field, a)).transpose()
}

/// Domain historical place → wire place.
pub fn place_to_pb(p: &HistoricalPlace) -> pb::HistoricalPlace {
    pb::HistoricalPlace {
        district_code: p.district.to_string(),
        district_name: p.district.district().name.clone(),
        province_code: format!("{:02}", p.province_code()),
        province_name: p.province_name().to_owned(),
        formatted: p.formatted(),
    }
}

/// Wire historical place → domain place.
pub fn place_from_pb(field: &str, p: &pb::HistoricalPlace) -> Result<HistoricalPlace, WireError> {
    Ok(HistoricalPlace {
        district: at(
            &format!("{field}.district_code"),
            DistrictCode::parse(&p.district_code),
        )?,
    })
}

// --- people --------------------------------------------------------------------------------

/// Domain relative → wire relative.
pub fn relative_to_pb(r: &Relative) -> pb::Relative {
    pb::Relative {
        personal_id: r
            .personal_id
            .as_ref()
            .map(|id| id.as_str().to_owned())
            .unwrap_or_default(),
        full_name: r.full_name.clone(),
        date_of_birth: Some(date_to_pb(r.date_of_birth)),
    }
}

fn relative_from_pb(field: &str, r: &pb::Relative) -> Result<Relative, WireError> {
    Ok(Relative {
        personal_id: non_empty(&r.personal_id)
            .map(|s| at(&format!("{field}.personal_id"), PersonalId::parse(&s)))
            .transpose()?,
        full_name: r.full_name.clone(),
        date_of_birth: req_date(&format!("{field}.date_of_birth"), r.date_of_birth.as_ref())?,
    })
}

fn card_to_pb(c: &IdCard) -> pb::IdCard {
    pb::IdCard {
        r#type: match c.card_type {
            CardType::ChipCccd => pb::CardType::ChipCccd,
            CardType::CanCuoc => pb::CardType::CanCuoc,
        } as i32,
        issue_date: Some(date_to_pb(c.issue_date)),
        issue_place: c.issue_place.clone(),
        expiry_date: c.expiry_date.map(date_to_pb),
        status: match c.status {
            CardStatus::Valid => pb::CardStatus::Valid,
            CardStatus::Expired => pb::CardStatus::Expired,
            CardStatus::Revoked => pb::CardStatus::Revoked,
            CardStatus::Lost => pb::CardStatus::Lost,
        } as i32,
    }
}

fn card_from_pb(c: &pb::IdCard) -> Result<IdCard, WireError> {
    Ok(IdCard {
        card_type: match pb::CardType::try_from(c.r#type) {
            Ok(pb::CardType::ChipCccd) => CardType::ChipCccd,
            Ok(pb::CardType::CanCuoc) => CardType::CanCuoc,
            _ => return Err(WireError::new("card.type", "is not set")),
        },
        issue_date: req_date("card.issue_date", c.issue_date.as_ref())?,
        issue_place: c.issue_place.clone(),
        expiry_date: opt_date("card.expiry_date", c.expiry_date.as_ref())?,
        status: match pb::CardStatus::try_from(c.status) {
            Ok(pb::CardStatus::Valid) => CardStatus::Valid,
            Ok(pb::CardStatus::Expired) => CardStatus::Expired,
            Ok(pb::CardStatus::Revoked) => CardStatus::Revoked,
            Ok(pb::CardStatus::Lost) => CardStatus::Lost,
            _ => return Err(WireError::new("card.status", "is not set")),
        },
    })
}

fn provenance_to_pb(p: &Provenance) -> pb::FieldProvenance {
    pb::FieldProvenance {
        field: p.field.as_str().to_owned(),
        source: p.source.as_str().to_owned(),
        updated_at: Some(pbjson_types::Timestamp {
            seconds: p.updated_at,
            nanos: 0,
        }),
        source_system: p.system.clone().unwrap_or_default(),
    }
}

fn provenance_from_pb(p: &pb::FieldProvenance) -> Result<Provenance, WireError> {
    let source = match p.source.as_str() {
        "civil-status" => Source::CivilStatus,
        "residence" => Source::Residence,
        "id-card" => Source::IdCard,
        "social-insurance" => Source::SocialInsurance,
        "self-declared" => Source::SelfDeclared,
        "provincial-update" => Source::ProvincialUpdate,
        other => {
            return Err(WireError::new(
                "provenance.source",
                format!("unknown source {other:?}"),
            ));
        }
    };
    Ok(Provenance {
        field: at("provenance.field", CitizenField::parse(&p.field))?,
        source,
        updated_at: p.updated_at.as_ref().map(|t| t.seconds).unwrap_or(0),
        system: non_empty(&p.source_system),
    })
}

/// Domain record → wire record. The household carries its id and the citizen's relation; its
/// members and address are filled by whoever holds the household table.
pub fn citizen_to_pb(c: &CitizenRecord) -> pb::Citizen {
    pb::Citizen {
        personal_id: c.personal_id.as_str().to_owned(),
        old_id_number: c
            .old_id_number
            .as_ref()
            .map(|o| o.as_str().to_owned())
            .unwrap_or_default(),
        previous_old_id_numbers: c
            .previous_old_id_numbers
            .iter()
            .map(|o| o.as_str().to_owned())
            .collect(),
        full_name: c.full_name.clone(),
        date_of_birth: Some(date_to_pb(c.date_of_birth)),
        gender: gender_to_pb(c.gender) as i32,
        nationality: c.nationality.clone(),
        ethnicity: c.ethnicity.clone(),
        religion: c.religion.clone(),
        place_of_birth: Some(place_to_pb(&c.place_of_birth)),
        place_of_origin: Some(place_to_pb(&c.place_of_origin)),
        permanent_address: Some(address_to_pb(&c.permanent_address)),
        temporary_address: c.temporary_address.as_ref().map(address_to_pb),
        current_address: Some(address_to_pb(&c.current_address)),
        household: c.household.as_ref().map(|h| pb::Household {
            household_id: h.household_id.as_str().to_owned(),
            relation_to_head: relation_to_pb(h.relation_to_head) as i32,
            ..Default::default()
        }),
        father: c.father.as_ref().map(relative_to_pb),
        mother: c.mother.as_ref().map(relative_to_pb),
        spouse: c.spouse.as_ref().map(relative_to_pb),
        marital_status: marital_to_pb(c.marital_status) as i32,
        card: c.card.as_ref().map(card_to_pb),
        phone: c.phone.clone().unwrap_or_default(),
        eid_level: eid_to_pb(c.eid_level) as i32,
        health_insurance_number: c.health_insurance_number.clone().unwrap_or_default(),
        life_status: Some(match c.life_status {
            LifeStatus::Alive => pb::LifeStatus::default(),
            LifeStatus::Deceased { date } => pb::LifeStatus {
                deceased: true,
                date_of_death: Some(date_to_pb(date)),
            },
        }),
        provenance: c.provenance.iter().map(provenance_to_pb).collect(),
    }
}

/// Domain record → wire record with only the disclosed fields set (and provenance for those
/// only): the gateway's data minimisation, in the one place records become wire messages.
pub fn citizen_to_pb_disclosed(
    c: &CitizenRecord,
    disclosed: &std::collections::BTreeSet<CitizenField>,
) -> pb::Citizen {
    use CitizenField as F;
    let mut out = citizen_to_pb(c);
    let keep = |f: F| disclosed.contains(&f);
    if !keep(F::PersonalId) {
        out.personal_id.clear();
    }
    if !keep(F::OldIdNumber) {
        out.old_id_number.clear();
    }
    if !keep(F::PreviousOldIdNumbers) {
        out.previous_old_id_numbers.clear();
    }
    if !keep(F::FullName) {
        out.full_name.clear();
    }
    if !keep(F::DateOfBirth) {
        out.date_of_birth = None;
    }
    if !keep(F::Gender) {
        out.gender = pb::Gender::Unspecified as i32;
    }
    if !keep(F::Nationality) {
        out.nationality.clear();
    }
    if !keep(F::Ethnicity) {
        out.ethnicity.clear();
    }
    if !keep(F::Religion) {
        out.religion.clear();
    }
    if !keep(F::PlaceOfBirth) {
        out.place_of_birth = None;
    }
    if !keep(F::PlaceOfOrigin) {
        out.place_of_origin = None;
    }
    if !keep(F::PermanentAddress) {
        out.permanent_address = None;
    }
    if !keep(F::TemporaryAddress) {
        out.temporary_address = None;
    }
    if !keep(F::CurrentAddress) {
        out.current_address = None;
    }
    if !keep(F::Household) {
        out.household = None;
    }
    if !keep(F::Father) {
        out.father = None;
    }
    if !keep(F::Mother) {
        out.mother = None;
    }
    if !keep(F::Spouse) {
        out.spouse = None;
    }
    if !keep(F::MaritalStatus) {
        out.marital_status = pb::MaritalStatus::Unspecified as i32;
    }
    if !keep(F::Card) {
        out.card = None;
    }
    if !keep(F::Phone) {
        out.phone.clear();
    }
    if !keep(F::EidLevel) {
        out.eid_level = pb::EidLevel::None as i32;
    }
    if !keep(F::HealthInsuranceNumber) {
        out.health_insurance_number.clear();
    }
    if !keep(F::LifeStatus) {
        out.life_status = None;
    }
    out.provenance
        .retain(|p| CitizenField::parse(&p.field).is_ok_and(keep));
    out
}

/// Checks a household from the wire: its number and every member's personal ID parse.
pub fn household_check(h: &pb::Household) -> Result<(), WireError> {
    at(
        "household.household_id",
        HouseholdId::parse(&h.household_id),
    )?;
    at(
        "household.head_personal_id",
        PersonalId::parse(&h.head_personal_id),
    )?;
    for (i, m) in h.members.iter().enumerate() {
        at(
            &format!("household.members[{i}].personal_id"),
            PersonalId::parse(&m.personal_id),
        )?;
    }
    Ok(())
}

/// Wire record → domain record: every field parsed, the first bad one named.
pub fn citizen_from_pb(c: &pb::Citizen) -> Result<CitizenRecord, WireError> {
    Ok(CitizenRecord {
        personal_id: at("personal_id", PersonalId::parse(&c.personal_id))?,
        old_id_number: non_empty(&c.old_id_number)
            .map(|s| at("old_id_number", OldIdNumber::parse(&s)))
            .transpose()?,
        previous_old_id_numbers: c
            .previous_old_id_numbers
            .iter()
            .map(|s| at("previous_old_id_numbers", OldIdNumber::parse(s)))
            .collect::<Result<_, _>>()?,
        full_name: c.full_name.clone(),
        date_of_birth: req_date("date_of_birth", c.date_of_birth.as_ref())?,
        gender: gender_from_pb("gender", c.gender)?,
        nationality: c.nationality.clone(),
        ethnicity: c.ethnicity.clone(),
        religion: c.religion.clone(),
        place_of_birth: place_from_pb(
            "place_of_birth",
            required("place_of_birth", c.place_of_birth.as_ref())?,
        )?,
        place_of_origin: place_from_pb(
            "place_of_origin",
            required("place_of_origin", c.place_of_origin.as_ref())?,
        )?,
        permanent_address: address_from_pb(
            "permanent_address",
            required("permanent_address", c.permanent_address.as_ref())?,
        )?,
        temporary_address: opt_address("temporary_address", c.temporary_address.as_ref())?,
        current_address: address_from_pb(
            "current_address",
            required("current_address", c.current_address.as_ref())?,
        )?,
        household: c
            .household
            .as_ref()
            .map(|h| -> Result<HouseholdLink, WireError> {
                Ok(HouseholdLink {
                    household_id: at(
                        "household.household_id",
                        HouseholdId::parse(&h.household_id),
                    )?,
                    relation_to_head: relation_from_pb(
                        "household.relation_to_head",
                        h.relation_to_head,
                    )?,
                })
            })
            .transpose()?,
        father: c
            .father
            .as_ref()
            .map(|r| relative_from_pb("father", r))
            .transpose()?,
        mother: c
            .mother
            .as_ref()
            .map(|r| relative_from_pb("mother", r))
            .transpose()?,
        spouse: c
            .spouse
            .as_ref()
            .map(|r| relative_from_pb("spouse", r))
            .transpose()?,
        marital_status: marital_from_pb(c.marital_status)?,
        card: c.card.as_ref().map(card_from_pb).transpose()?,
        phone: non_empty(&c.phone),
        eid_level: eid_from_pb(c.eid_level),
        health_insurance_number: non_empty(&c.health_insurance_number),
        life_status: match &c.life_status {
            Some(l) if l.deceased => LifeStatus::Deceased {
                date: req_date("life_status.date_of_death", l.date_of_death.as_ref())?,
            },
            _ => LifeStatus::Alive,
        },
        provenance: c
            .provenance
            .iter()
            .map(provenance_from_pb)
            .collect::<Result<_, _>>()?,
    })
}
