//! The citizen record of the national population database, as the domain sees it: typed fields,
//! provenance per field, and the names by which the procedure catalog grants or withholds them.

use crate::address::{Address, HistoricalPlace};
use crate::date::PartialDate;
use crate::personal_id::{OldIdNumber, PersonalId};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Gender as recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Gender {
    Male,
    Female,
}

impl Gender {
    /// "Nam" / "Nữ", as on forms.
    pub fn label_vi(self) -> &'static str {
        match self {
            Gender::Male => "Nam",
            Gender::Female => "Nữ",
        }
    }
}

/// Marital status (tình trạng hôn nhân).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MaritalStatus {
    Single,
    Married,
    Divorced,
    Widowed,
}

/// Relation to the head of household (quan hệ với chủ hộ).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Relation {
    Head,
    Spouse,
    Child,
    Parent,
    Grandchild,
    Other,
}

/// Chip CCCD or the 2024 Căn cước card.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CardType {
    ChipCccd,
    CanCuoc,
}

/// The state of an identity card.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CardStatus {
    Valid,
    Expired,
    Revoked,
    Lost,
}

/// An identity card; its number is the personal ID.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdCard {
    pub card_type: CardType,
    pub issue_date: PartialDate,
    pub issue_place: String,
    /// None for a card valid for life (issued after 60).
    pub expiry_date: Option<PartialDate>,
    pub status: CardStatus,
}

/// VNeID account level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EidLevel {
    None,
    Level1,
    Level2,
    /// A level 1 account registered and awaiting approval (two to three days): it cannot log in.
    Level1Pending,
}

/// Alive, or deceased with the date of death.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LifeStatus {
    Alive,
    Deceased { date: PartialDate },
}

/// A father, mother or spouse as referred to from a record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Relative {
    /// Their personal ID when they are themselves on record.
    pub personal_id: Option<PersonalId>,
    pub full_name: String,
    pub date_of_birth: PartialDate,
}

/// A citizen's membership of a household.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HouseholdLink {
    pub household_id: HouseholdId,
    pub relation_to_head: Relation,
}

/// Household number (mã hộ): 'HK' and ten digits in the mock database.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct HouseholdId(String);

/// Why a string is not a household number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a household number: expected 'HK' followed by 10 digits, e.g. HK0420000001")]
pub struct HouseholdIdError(pub String);

impl HouseholdId {
    /// Parses "HK" + 10 digits.
    pub fn parse(s: &str) -> Result<Self, HouseholdIdError> {
        let ok = s.len() == 12
            && s.starts_with("HK")
            && s.as_bytes()[2..].iter().all(u8::is_ascii_digit);
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(HouseholdIdError(s.to_owned()))
        }
    }

    /// The household number of a province's n-th household.
    pub fn new(province_code: u16, n: u32) -> Self {
        Self(format!("HK{province_code:03}{n:07}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for HouseholdId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HouseholdId({})", self.0)
    }
}

/// A household (hộ gia đình) and its members, head first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Household {
    pub id: HouseholdId,
    pub head: PersonalId,
    pub members: Vec<(PersonalId, Relation)>,
    pub address: Address,
}

/// The system a value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Source {
    /// Hộ tịch: birth, marriage, death registration.
    CivilStatus,
    /// Cư trú: residence registration.
    Residence,
    /// Căn cước: identity card issuance.
    IdCard,
    /// Bảo hiểm xã hội: social insurance.
    SocialInsurance,
    /// Declared by the citizen (e.g. phone number) and not otherwise confirmed.
    SelfDeclared,
    /// Sent back by a provincial system (làm sạch, làm giàu dữ liệu) and accepted.
    ProvincialUpdate,
}

impl Source {
    /// The stable name used on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::CivilStatus => "civil-status",
            Source::Residence => "residence",
            Source::IdCard => "id-card",
            Source::SocialInsurance => "social-insurance",
            Source::SelfDeclared => "self-declared",
            Source::ProvincialUpdate => "provincial-update",
        }
    }
}

/// Where one field's value came from and when it last changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provenance {
    pub field: CitizenField,
    pub source: Source,
    /// Seconds since the Unix epoch (UTC).
    pub updated_at: i64,
    /// For [`Source::ProvincialUpdate`]: the unit code of the system whose update was accepted.
    pub system: Option<String>,
}

macro_rules! citizen_fields {
    ($($variant:ident => $name:literal, $label:literal;)*) => {
        /// The name of a field of the citizen record, as the procedure catalog and the wire use it.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum CitizenField { $($variant,)* }

        impl CitizenField {
            /// Every field, in record order.
            pub const ALL: &'static [CitizenField] = &[$(CitizenField::$variant,)*];

            /// The fields provincial systems may send back to the database (write-back).
            pub const UPDATABLE: [CitizenField; 3] = [
                CitizenField::Phone,
                CitizenField::HealthInsuranceNumber,
                CitizenField::CurrentAddress,
            ];

            /// The field's name on the wire, e.g. "full_name".
            pub fn as_str(self) -> &'static str {
                match self { $(CitizenField::$variant => $name,)* }
            }

            /// The field's Vietnamese label, as on forms.
            pub fn label_vi(self) -> &'static str {
                match self { $(CitizenField::$variant => $label,)* }
            }

            /// Parses a field name.
            pub fn parse(s: &str) -> Result<Self, UnknownField> {
                match s {
                    $($name => Ok(CitizenField::$variant),)*
                    _ => Err(UnknownField(s.chars().take(64).collect())),
                }
            }
        }
    };
}

citizen_fields! {
    PersonalId => "personal_id", "Số định danh cá nhân";
    OldIdNumber => "old_id_number", "Số CMND";
    PreviousOldIdNumbers => "previous_old_id_numbers", "Số CMND đã được cấp trước đó";
    FullName => "full_name", "Họ, chữ đệm và tên";
    DateOfBirth => "date_of_birth", "Ngày, tháng, năm sinh";
    Gender => "gender", "Giới tính";
    Nationality => "nationality", "Quốc tịch";
    Ethnicity => "ethnicity", "Dân tộc";
    Religion => "religion", "Tôn giáo";
    PlaceOfBirth => "place_of_birth", "Nơi đăng ký khai sinh";
    PlaceOfOrigin => "place_of_origin", "Quê quán";
    PermanentAddress => "permanent_address", "Nơi thường trú";
    TemporaryAddress => "temporary_address", "Nơi tạm trú";
    CurrentAddress => "current_address", "Nơi ở hiện tại";
    Household => "household", "Hộ gia đình";
    Father => "father", "Cha";
    Mother => "mother", "Mẹ";
    Spouse => "spouse", "Vợ/chồng";
    MaritalStatus => "marital_status", "Tình trạng hôn nhân";
    Card => "card", "Thẻ căn cước";
    Phone => "phone", "Số điện thoại";
    EidLevel => "eid_level", "Mức định danh điện tử";
    HealthInsuranceNumber => "health_insurance_number", "Mã số BHXH";
    LifeStatus => "life_status", "Tình trạng sống/chết";
}

/// A field name that is not a field of the citizen record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not a field of the citizen record (e.g. full_name, date_of_birth, permanent_address)"
)]
pub struct UnknownField(pub String);

/// A citizen record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CitizenRecord {
    pub personal_id: PersonalId,
    /// The last 9-digit number (CMND) the citizen held.
    pub old_id_number: Option<OldIdNumber>,
    /// Numbers held before it (a card lost and issued again, a move to another province),
    /// oldest first.
    pub previous_old_id_numbers: Vec<OldIdNumber>,
    pub full_name: String,
    pub date_of_birth: PartialDate,
    pub gender: Gender,
    /// ISO 3166-1 alpha-2.
    pub nationality: String,
    pub ethnicity: String,
    pub religion: String,
    pub place_of_birth: HistoricalPlace,
    pub place_of_origin: HistoricalPlace,
    pub permanent_address: Address,
    pub temporary_address: Option<Address>,
    pub current_address: Address,
    pub household: Option<HouseholdLink>,
    pub father: Option<Relative>,
    pub mother: Option<Relative>,
    pub spouse: Option<Relative>,
    pub marital_status: MaritalStatus,
    pub card: Option<IdCard>,
    pub phone: Option<String>,
    pub eid_level: EidLevel,
    pub health_insurance_number: Option<String>,
    pub life_status: LifeStatus,
    pub provenance: Vec<Provenance>,
}

impl CitizenRecord {
    /// Whether the record holds a value for the field.
    pub fn has(&self, field: CitizenField) -> bool {
        use CitizenField as F;
        match field {
            F::OldIdNumber => self.old_id_number.is_some(),
            F::PreviousOldIdNumbers => !self.previous_old_id_numbers.is_empty(),
            F::TemporaryAddress => self.temporary_address.is_some(),
            F::Household => self.household.is_some(),
            F::Father => self.father.is_some(),
            F::Mother => self.mother.is_some(),
            F::Spouse => self.spouse.is_some(),
            F::Card => self.card.is_some(),
            F::Phone => self.phone.is_some(),
            F::HealthInsuranceNumber => self.health_insurance_number.is_some(),
            _ => true,
        }
    }

    /// The record as a relative reference.
    pub fn as_relative(&self) -> Relative {
        Relative {
            personal_id: Some(self.personal_id.clone()),
            full_name: self.full_name.clone(),
            date_of_birth: self.date_of_birth,
        }
    }

    /// Whether the record is consistent with its own personal ID: province of birth registration,
    /// gender and birth year as encoded in the number. Returns what disagrees.
    pub fn id_inconsistencies(&self) -> Vec<&'static str> {
        let mut problems = Vec::new();
        if self.personal_id.gender() != self.gender {
            problems.push("gender digit does not match the recorded gender");
        }
        if self.personal_id.birth_year() != self.date_of_birth.year() {
            problems.push("birth-year digits do not match the date of birth");
        }
        if self.personal_id.province_code() != self.place_of_birth.province_code() {
            problems.push("province code does not match the place of birth registration");
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_names_round_trip() {
        for f in CitizenField::ALL {
            assert_eq!(CitizenField::parse(f.as_str()), Ok(*f));
        }
        assert_eq!(CitizenField::ALL.len(), 24);
        assert!(CitizenField::parse("password").is_err());
    }

    #[test]
    fn household_ids() {
        let id = HouseholdId::new(42, 17);
        assert_eq!(id.as_str(), "HK0420000017");
        assert_eq!(HouseholdId::parse("HK0420000017"), Ok(id));
        assert!(HouseholdId::parse("HK042000001").is_err());
        assert!(HouseholdId::parse("XX0420000017").is_err());
    }
}
