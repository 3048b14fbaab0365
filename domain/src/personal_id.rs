//! Personal ID numbers (số định danh cá nhân) and old 9-digit ID numbers (số CMND), parsed once.
//!
//! A personal ID is 12 digits: the 3-digit code of the province where the birth was registered
//! (pre-2025 list), one digit for gender and century, the last two digits of the birth year, and
//! six random digits. `Debug` prints the masked form so that a full number never reaches a log by
//! accident; use [`PersonalId::as_str`] where the full number is really meant.

use crate::Gender;
use crate::units::PRE2025_PROVINCE_CODES;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a string is not a personal ID number. Each variant names the part that is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PersonalIdError {
    #[error("a personal ID number has 12 digits; this one has {0} characters")]
    Length(usize),
    #[error("a personal ID number has only digits; found {found:?} at position {position}")]
    NotDigit { position: usize, found: char },
    #[error(
        "the first three digits ({0}) are not the code of a province (pre-2025 list, e.g. 001 Hà Nội, 042 Hà Tĩnh)"
    )]
    Province(String),
    #[error("the birth year {0} cannot be encoded: personal ID numbers cover 1800 to 2299")]
    Year(i32),
    #[error("the serial part must be below 1000000, got {0}")]
    Serial(u32),
    #[error(
        "digits 4 to 6 (gender/century and year) say the holder was born in {year}, which is after {current}: check the number with the citizen's card"
    )]
    FutureBirth { year: i32, current: i32 },
}

/// A valid 12-digit personal ID number.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PersonalId([u8; 12]);

impl PersonalId {
    /// Parses a personal ID number, saying which part is wrong when it is not one.
    pub fn parse(s: &str) -> Result<Self, PersonalIdError> {
        let count = s.chars().count();
        if count != 12 {
            return Err(PersonalIdError::Length(count));
        }
        if let Some((position, found)) = s.chars().enumerate().find(|(_, c)| !c.is_ascii_digit()) {
            return Err(PersonalIdError::NotDigit { position, found });
        }
        let mut digits = [0u8; 12];
        digits.copy_from_slice(s.as_bytes());
        let province = &s[..3];
        let code: u16 = province.parse().unwrap_or(u16::MAX);
        if !PRE2025_PROVINCE_CODES.contains(&code) {
            return Err(PersonalIdError::Province(province.to_owned()));
        }
        Ok(Self(digits))
    }

    /// Parses a number whose holder must be born by `current_year`: a birth year in the future
    /// makes the number malformed.
    pub fn parse_born_by(s: &str, current_year: i32) -> Result<Self, PersonalIdError> {
        let id = Self::parse(s)?;
        let year = id.birth_year();
        if year > current_year {
            return Err(PersonalIdError::FutureBirth {
                year,
                current: current_year,
            });
        }
        Ok(id)
    }

    /// Builds the number of a citizen from its parts.
    pub fn new(
        province_code: u16,
        gender: Gender,
        birth_year: i32,
        serial: u32,
    ) -> Result<Self, PersonalIdError> {
        if !PRE2025_PROVINCE_CODES.contains(&province_code) {
            return Err(PersonalIdError::Province(format!("{province_code:03}")));
        }
        if serial >= 1_000_000 {
            return Err(PersonalIdError::Serial(serial));
        }
        let century_digit = match birth_year {
            1900..=1999 => 0,
            2000..=2099 => 2,
            2100..=2199 => 4,
            2200..=2299 => 6,
            1800..=1899 => 8,
            _ => return Err(PersonalIdError::Year(birth_year)),
        };
        let gender_digit = century_digit
            + match gender {
                Gender::Male => 0,
                Gender::Female => 1,
            };
        let text = format!(
            "{province_code:03}{gender_digit}{:02}{serial:06}",
            birth_year.rem_euclid(100)
        );
        Self::parse(&text)
    }

    /// The full number. Only for the wire and the audit trail; logs use [`Self::masked`].
    pub fn as_str(&self) -> &str {
        // The bytes are ASCII digits by construction.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The province-of-registration code (pre-2025 list), e.g. 42 for Hà Tĩnh.
    pub fn province_code(&self) -> u16 {
        self.digits(0, 3) as u16
    }

    /// The gender encoded in the fourth digit.
    pub fn gender(&self) -> Gender {
        if self.digit(3).is_multiple_of(2) {
            Gender::Male
        } else {
            Gender::Female
        }
    }

    /// The birth year encoded in the number (century from the fourth digit, then two digits).
    pub fn birth_year(&self) -> i32 {
        let century = match self.digit(3) / 2 {
            0 => 1900,
            1 => 2000,
            2 => 2100,
            3 => 2200,
            _ => 1800,
        };
        century + self.digits(4, 6) as i32
    }

    /// The six serial digits.
    pub fn serial(&self) -> u32 {
        self.digits(6, 12)
    }

    /// The number with its middle hidden: `042•••••••123` keeps the province and the last three.
    pub fn masked(&self) -> String {
        format!("{}•••••••{}", &self.as_str()[..3], &self.as_str()[9..])
    }

    fn digit(&self, i: usize) -> u32 {
        u32::from(self.0[i] - b'0')
    }

    fn digits(&self, from: usize, to: usize) -> u32 {
        (from..to).fold(0, |acc, i| acc * 10 + self.digit(i))
    }
}

impl fmt::Debug for PersonalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PersonalId({})", self.masked())
    }
}

impl TryFrom<String> for PersonalId {
    type Error = PersonalIdError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<PersonalId> for String {
    fn from(id: PersonalId) -> Self {
        id.as_str().to_owned()
    }
}

/// Why a string is not an old ID number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OldIdError {
    #[error("an old ID number (CMND) has 9 digits; this one has {0} characters")]
    Length(usize),
    #[error("an old ID number has only digits; found {found:?} at position {position}")]
    NotDigit { position: usize, found: char },
}

/// An old 9-digit ID number (chứng minh nhân dân), which maps to a personal ID.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct OldIdNumber([u8; 9]);

impl OldIdNumber {
    /// Parses a 9-digit old ID number.
    pub fn parse(s: &str) -> Result<Self, OldIdError> {
        let count = s.chars().count();
        if count != 9 {
            return Err(OldIdError::Length(count));
        }
        if let Some((position, found)) = s.chars().enumerate().find(|(_, c)| !c.is_ascii_digit()) {
            return Err(OldIdError::NotDigit { position, found });
        }
        let mut digits = [0u8; 9];
        digits.copy_from_slice(s.as_bytes());
        Ok(Self(digits))
    }

    /// The full number.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The number with its middle hidden: `183•••789`.
    pub fn masked(&self) -> String {
        format!("{}•••{}", &self.as_str()[..3], &self.as_str()[6..])
    }
}

impl fmt::Debug for OldIdNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OldIdNumber({})", self.masked())
    }
}

impl TryFrom<String> for OldIdNumber {
    type Error = OldIdError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<OldIdNumber> for String {
    fn from(id: OldIdNumber) -> Self {
        id.as_str().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_birth_year_in_the_future_is_malformed() {
        assert_eq!(
            PersonalId::parse_born_by("042299999005", 2026),
            Err(PersonalIdError::FutureBirth {
                year: 2099,
                current: 2026
            })
        );
        for future in ["042490999005", "042690999005"] {
            assert!(PersonalId::parse_born_by(future, 2026).is_err(), "{future}");
        }
        assert!(PersonalId::parse_born_by("042226999005", 2026).is_ok());
        assert!(PersonalId::parse_born_by("042188999005", 2026).is_ok());
    }

    fn check(input: &str, expected: Result<(), PersonalIdError>) {
        assert_eq!(
            PersonalId::parse(input).map(|_| ()),
            expected,
            "input {input:?}"
        );
    }

    #[test]
    fn parse_table() {
        check("042188999001", Ok(()));
        check("001090000001", Ok(()));
        check("04218899900", Err(PersonalIdError::Length(11)));
        check("0421889990012", Err(PersonalIdError::Length(13)));
        check("", Err(PersonalIdError::Length(0)));
        check(
            "04218899900a",
            Err(PersonalIdError::NotDigit {
                position: 11,
                found: 'a',
            }),
        );
        check(
            "04218 999001",
            Err(PersonalIdError::NotDigit {
                position: 5,
                found: ' ',
            }),
        );
        // 003 was never a province code; 099 neither.
        check("003188999001", Err(PersonalIdError::Province("003".into())));
        check("099188999001", Err(PersonalIdError::Province("099".into())));
        // Twelve characters, but not twelve ASCII digits.
        check(
            "04218899900٣",
            Err(PersonalIdError::NotDigit {
                position: 11,
                found: '٣',
            }),
        );
    }

    #[test]
    fn parts_are_decoded() {
        let id = PersonalId::parse("042188999001").unwrap();
        assert_eq!(id.province_code(), 42);
        assert_eq!(id.gender(), Gender::Female);
        assert_eq!(id.birth_year(), 1988);
        assert_eq!(id.serial(), 999001);
        assert_eq!(id.masked(), "042•••••••001");
        assert_eq!(format!("{id:?}"), "PersonalId(042•••••••001)");
        let id = PersonalId::parse("038822123456").unwrap();
        assert_eq!((id.gender(), id.birth_year()), (Gender::Male, 1822));
        let id = PersonalId::parse("001325000001").unwrap();
        assert_eq!((id.gender(), id.birth_year()), (Gender::Female, 2025));
    }

    #[test]
    fn old_id_table() {
        assert!(OldIdNumber::parse("183456789").is_ok());
        assert_eq!(
            OldIdNumber::parse("18345678").unwrap_err(),
            OldIdError::Length(8)
        );
        assert_eq!(
            OldIdNumber::parse("18345678x").unwrap_err(),
            OldIdError::NotDigit {
                position: 8,
                found: 'x'
            }
        );
        assert_eq!(
            format!("{:?}", OldIdNumber::parse("183456789").unwrap()),
            "OldIdNumber(183•••789)"
        );
    }

    fn any_gender() -> impl Strategy<Value = Gender> {
        prop_oneof![Just(Gender::Male), Just(Gender::Female)]
    }

    proptest! {
        #[test]
        fn built_ids_round_trip(
            province in proptest::sample::select(PRE2025_PROVINCE_CODES),
            gender in any_gender(),
            year in 1800i32..2300,
            serial in 0u32..1_000_000,
        ) {
            let id = PersonalId::new(province, gender, year, serial).unwrap();
            let parsed = PersonalId::parse(id.as_str()).unwrap();
            prop_assert_eq!(&parsed, &id);
            prop_assert_eq!(parsed.province_code(), province);
            prop_assert_eq!(parsed.gender(), gender);
            prop_assert_eq!(parsed.birth_year(), year);
            prop_assert_eq!(parsed.serial(), serial);
        }

        #[test]
        fn wrong_length_is_rejected(s in "[0-9]{0,11}|[0-9]{13,20}") {
            prop_assert_eq!(PersonalId::parse(&s), Err(PersonalIdError::Length(s.len())));
        }

        #[test]
        fn any_non_digit_is_rejected(s in "[0-9]{12}", pos in 0usize..12, c in "[^0-9]") {
            let mut chars: Vec<char> = s.chars().collect();
            let c = c.chars().next().unwrap();
            chars[pos] = c;
            let input: String = chars.into_iter().collect();
            prop_assert!(PersonalId::parse(&input).is_err());
        }

        #[test]
        fn unknown_provinces_are_rejected(code in 0u16..1000, rest in "[0-9]{9}") {
            prop_assume!(!PRE2025_PROVINCE_CODES.contains(&code));
            let input = format!("{code:03}{rest}");
            prop_assert_eq!(
                PersonalId::parse(&input),
                Err(PersonalIdError::Province(format!("{code:03}")))
            );
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,20}") {
            let _ = PersonalId::parse(&s);
            let _ = OldIdNumber::parse(&s);
        }

        #[test]
        fn old_ids_round_trip(s in "[0-9]{9}") {
            let id = OldIdNumber::parse(&s).unwrap();
            prop_assert_eq!(id.as_str(), s.as_str());
        }

        #[test]
        fn serde_round_trip(s in "042[0-9]{9}") {
            let id = PersonalId::parse(&s).unwrap();
            let back: PersonalId = String::from(id.clone()).try_into().unwrap();
            prop_assert_eq!(back, id);
        }
    }
}
