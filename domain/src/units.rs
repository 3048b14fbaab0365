//! Vietnam's administrative units, embedded in the binary: the two-level units in force since
//! 1 July 2025 (34 provinces, 3,321 communes/wards) for current addresses, the pre-2025 units
//! (63 provinces, 696 districts) for historical places, and which old province went where.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt;
use std::sync::OnceLock;

const UNITS_2025: &str = include_str!("../data/admin-units-2025.csv");
const UNITS_PRE2025: &str = include_str!("../data/admin-units-pre2025.csv");
const MERGE_2025: &str = include_str!("../data/province-merge-2025.csv");

/// The province codes of the pre-2025 list, the ones that open a personal ID number.
pub const PRE2025_PROVINCE_CODES: &[u16] = &[
    1, 2, 4, 6, 8, 10, 11, 12, 14, 15, 17, 19, 20, 22, 24, 25, 26, 27, 30, 31, 33, 34, 35, 36, 37,
    38, 40, 42, 44, 45, 46, 48, 49, 51, 52, 54, 56, 58, 60, 62, 64, 66, 67, 68, 70, 72, 74, 75, 77,
    79, 80, 82, 83, 84, 86, 87, 89, 91, 92, 93, 94, 95, 96,
];

/// Why a code is not an administrative unit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    #[error("{0:?} is not a number: unit codes are digits, e.g. \"00070\" or \"42\"")]
    NotNumber(String),
    #[error("there is no commune or ward with code {0:05} in the 2025 units")]
    UnknownWard(u32),
    #[error("there is no district with code {0:03} in the pre-2025 units")]
    UnknownDistrict(u32),
    #[error("there is no province with code {0:02} in the 2025 units")]
    UnknownProvince(u32),
}

fn parse_code(s: &str) -> Result<u32, UnitError> {
    let t = s.trim();
    if t.is_empty() || t.len() > 6 || !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(UnitError::NotNumber(s.to_owned()));
    }
    t.parse().map_err(|_| UnitError::NotNumber(s.to_owned()))
}

/// A commune, ward or special zone of the 2025 units (mã xã/phường, 5 digits).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct WardCode(u32);

impl WardCode {
    /// Parses "00070" or "70" and checks the ward exists.
    pub fn parse(s: &str) -> Result<Self, UnitError> {
        Self::try_from(parse_code(s)?)
    }
    /// The numeric code.
    pub fn get(self) -> u32 {
        self.0
    }
    /// The ward's entry in the table.
    pub fn ward(self) -> &'static Ward {
        &units().wards[units().ward_index[&self.0]]
    }
}

impl TryFrom<u32> for WardCode {
    type Error = UnitError;
    fn try_from(code: u32) -> Result<Self, UnitError> {
        if units().ward_index.contains_key(&code) {
            Ok(Self(code))
        } else {
            Err(UnitError::UnknownWard(code))
        }
    }
}

impl From<WardCode> for u32 {
    fn from(c: WardCode) -> u32 {
        c.0
    }
}

impl fmt::Display for WardCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:05}", self.0)
    }
}

impl fmt::Debug for WardCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WardCode({:05})", self.0)
    }
}

/// A district of the pre-2025 units (mã huyện, 3 digits).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct DistrictCode(u16);

impl DistrictCode {
    /// Parses "001" or "1" and checks the district exists.
    pub fn parse(s: &str) -> Result<Self, UnitError> {
        Self::try_from(parse_code(s)?)
    }
    /// The numeric code.
    pub fn get(self) -> u16 {
        self.0
    }
    /// The district's entry in the table.
    pub fn district(self) -> &'static District {
        &units().districts[units().district_index[&self.0]]
    }
}

impl TryFrom<u32> for DistrictCode {
    type Error = UnitError;
    fn try_from(code: u32) -> Result<Self, UnitError> {
        match u16::try_from(code) {
            Ok(c) if units().district_index.contains_key(&c) => Ok(Self(c)),
            _ => Err(UnitError::UnknownDistrict(code)),
        }
    }
}

impl From<DistrictCode> for u32 {
    fn from(c: DistrictCode) -> u32 {
        u32::from(c.0)
    }
}

impl fmt::Display for DistrictCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:03}", self.0)
    }
}

impl fmt::Debug for DistrictCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DistrictCode({:03})", self.0)
    }
}

/// A province or centrally-run city of the 2025 units (mã tỉnh, 2 digits).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct ProvinceCode(u16);

impl ProvinceCode {
    /// Parses "42" or "042" and checks the province exists in the 2025 units.
    pub fn parse(s: &str) -> Result<Self, UnitError> {
        Self::try_from(parse_code(s)?)
    }
    /// The numeric code.
    pub fn get(self) -> u16 {
        self.0
    }
    /// The province's entry in the table.
    pub fn province(self) -> &'static Province {
        units()
            .provinces
            .iter()
            .find(|p| p.code == self.0)
            .unwrap_or(&units().provinces[0])
    }
}

impl TryFrom<u32> for ProvinceCode {
    type Error = UnitError;
    fn try_from(code: u32) -> Result<Self, UnitError> {
        match u16::try_from(code) {
            Ok(c) if units().provinces.iter().any(|p| p.code == c) => Ok(Self(c)),
            _ => Err(UnitError::UnknownProvince(code)),
        }
    }
}

impl From<ProvinceCode> for u32 {
    fn from(c: ProvinceCode) -> u32 {
        u32::from(c.0)
    }
}

impl fmt::Display for ProvinceCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}", self.0)
    }
}

impl fmt::Debug for ProvinceCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProvinceCode({:02})", self.0)
    }
}

/// A 2025 province or centrally-run city.
#[derive(Debug)]
pub struct Province {
    pub code: u16,
    /// As published, e.g. "Hà Tĩnh" or "Thành phố Hà Nội".
    pub name: String,
    /// Whether it is a centrally-run city (thành phố trung ương).
    pub is_city: bool,
}

impl Province {
    /// The name as written in an address: "Tỉnh Hà Tĩnh", "Thành phố Hà Nội".
    pub fn full_name(&self) -> String {
        if self.is_city {
            self.name.clone()
        } else {
            format!("Tỉnh {}", self.name)
        }
    }
}

/// A 2025 commune, ward or special zone.
#[derive(Debug)]
pub struct Ward {
    pub code: u32,
    /// As published, with its kind: "Phường Hoàn Kiếm", "Xã Cẩm Xuyên".
    pub name: String,
    /// Whether it is an urban ward (phường) rather than a commune or special zone.
    pub is_urban: bool,
    pub province_code: u16,
}

/// A pre-2025 province.
#[derive(Debug)]
pub struct OldProvince {
    pub code: u16,
    /// As published: "Tỉnh Hà Tĩnh", "Thành phố Hà Nội".
    pub name: String,
    /// The 2025 province it became part of.
    pub province_2025: u16,
}

/// A pre-2025 district.
#[derive(Debug)]
pub struct District {
    pub code: u16,
    /// As published: "Quận Ba Đình", "Huyện Cẩm Xuyên".
    pub name: String,
    pub province_code: u16,
}

/// The embedded tables, parsed once.
#[derive(Debug)]
pub struct AdminUnits {
    pub provinces: Vec<Province>,
    pub wards: Vec<Ward>,
    pub old_provinces: Vec<OldProvince>,
    pub districts: Vec<District>,
    ward_index: HashMap<u32, usize>,
    district_index: HashMap<u16, usize>,
}

impl AdminUnits {
    /// The 2025 wards of a 2025 province.
    pub fn wards_of(&self, province_2025: u16) -> impl Iterator<Item = &Ward> {
        self.wards
            .iter()
            .filter(move |w| w.province_code == province_2025)
    }

    /// The districts of a pre-2025 province.
    pub fn districts_of(&self, old_province: u16) -> impl Iterator<Item = &District> {
        self.districts
            .iter()
            .filter(move |d| d.province_code == old_province)
    }

    /// A pre-2025 province by code.
    pub fn old_province(&self, code: u16) -> Option<&OldProvince> {
        self.old_provinces.iter().find(|p| p.code == code)
    }
}

/// The tables. They are compiled into the binary, so parsing cannot fail at run time; the unit
/// tests check every row.
pub fn units() -> &'static AdminUnits {
    static UNITS: OnceLock<AdminUnits> = OnceLock::new();
    UNITS.get_or_init(load)
}

fn rows(csv: &str) -> impl Iterator<Item = Vec<&str>> {
    csv.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split(',').map(str::trim).collect())
}

fn num<T: std::str::FromStr + Default>(s: &str) -> T {
    s.parse().unwrap_or_default()
}

fn load() -> AdminUnits {
    let merge: HashMap<u16, u16> = rows(MERGE_2025).map(|r| (num(r[0]), num(r[1]))).collect();
    let mut provinces: Vec<Province> = Vec::new();
    let mut wards = Vec::new();
    for r in rows(UNITS_2025) {
        let code: u16 = num(r[0]);
        if !provinces.iter().any(|p| p.code == code) {
            provinces.push(Province {
                code,
                name: r[1].to_owned(),
                is_city: r[2] == "thành phố trung ương",
            });
        }
        wards.push(Ward {
            code: num(r[3]),
            name: r[4].to_owned(),
            is_urban: r[5] == "phường",
            province_code: code,
        });
    }
    let mut old_provinces: Vec<OldProvince> = Vec::new();
    let mut districts = Vec::new();
    for r in rows(UNITS_PRE2025) {
        let code: u16 = num(r[0]);
        if !old_provinces.iter().any(|p| p.code == code) {
            old_provinces.push(OldProvince {
                code,
                name: r[1].to_owned(),
                province_2025: merge.get(&code).copied().unwrap_or(code),
            });
        }
        districts.push(District {
            code: num(r[2]),
            name: r[3].to_owned(),
            province_code: code,
        });
    }
    let ward_index = wards.iter().enumerate().map(|(i, w)| (w.code, i)).collect();
    let district_index = districts
        .iter()
        .enumerate()
        .map(|(i, d)| (d.code, i))
        .collect();
    AdminUnits {
        provinces,
        wards,
        old_provinces,
        districts,
        ward_index,
        district_index,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_have_the_published_sizes() {
        let u = units();
        assert_eq!(u.provinces.len(), 34);
        assert_eq!(u.wards.len(), 3321);
        assert_eq!(u.old_provinces.len(), 63);
        assert_eq!(u.districts.len(), 696);
        assert_eq!(u.ward_index.len(), 3321, "ward codes are unique");
        assert_eq!(u.district_index.len(), 696, "district codes are unique");
    }

    #[test]
    fn id_province_codes_are_the_pre2025_list() {
        let mut codes: Vec<u16> = units().old_provinces.iter().map(|p| p.code).collect();
        codes.sort_unstable();
        assert_eq!(codes, PRE2025_PROVINCE_CODES);
    }

    #[test]
    fn every_old_province_went_to_a_2025_province_and_none_is_empty() {
        let u = units();
        let merge: HashMap<u16, u16> = rows(MERGE_2025).map(|r| (num(r[0]), num(r[1]))).collect();
        assert_eq!(merge.len(), 63);
        for p in &u.old_provinces {
            assert!(
                merge.contains_key(&p.code),
                "{} has no 2025 province",
                p.name
            );
            assert!(ProvinceCode::try_from(u32::from(p.province_2025)).is_ok());
        }
        for p in &u.provinces {
            assert!(
                u.old_provinces.iter().any(|o| o.province_2025 == p.code),
                "{} receives no old province",
                p.name
            );
            assert!(u.wards_of(p.code).count() > 0, "{} has no wards", p.name);
        }
    }

    #[test]
    fn codes_parse_and_print() {
        let w = WardCode::parse("00070").unwrap();
        assert_eq!(w.to_string(), "00070");
        assert_eq!(w.ward().name, "Phường Hoàn Kiếm");
        assert_eq!(WardCode::parse("70").unwrap(), w);
        assert_eq!(WardCode::parse("99999"), Err(UnitError::UnknownWard(99999)));
        assert_eq!(
            WardCode::parse("7O"),
            Err(UnitError::NotNumber("7O".into()))
        );
        let d = DistrictCode::parse("001").unwrap();
        assert_eq!(d.district().name, "Quận Ba Đình");
        assert_eq!(
            DistrictCode::parse("999"),
            Err(UnitError::UnknownDistrict(999))
        );
        assert_eq!(
            ProvinceCode::parse("42").unwrap().province().full_name(),
            "Tỉnh Hà Tĩnh"
        );
        assert_eq!(
            ProvinceCode::parse("1").unwrap().province().full_name(),
            "Thành phố Hà Nội"
        );
        assert_eq!(ProvinceCode::parse("2"), Err(UnitError::UnknownProvince(2)));
    }
}
