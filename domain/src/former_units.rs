//! The pre-2025 communes, wards and townships and the 2025 commune each became on 1 July 2025,
//! from the statistics office's conversion table (Bảng chuyển đổi đơn vị hành chính mới – cũ):
//! how an address a provincial system still writes in the old three-level units reads today.
//!
//! Coverage: 10,027 pre-2025 communes of all 63 old provinces, going into 3,314 of the 3,321
//! 2025 communes; the 46 rows whose 2025 commune could not be matched by name or code to the
//! published 2025 list are left out (the 2025 communes Chân Mây - Lăng Cô in Huế, An Nhơn in Hồ
//! Chí Minh City and five others have no former commune here).

use crate::units::{DistrictCode, WardCode, units};
use std::collections::HashMap;
use std::sync::OnceLock;

const CONVERSION_2025: &str = include_str!("../data/ward-conversion-2025.csv");

/// How much of a former commune went into a 2025 commune.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Share {
    /// All of it ("nhập toàn bộ", or kept as it was).
    Whole,
    /// Part of its area or population ("nhập một phần"): the rest went elsewhere.
    Part,
}

/// A commune, ward or township of the pre-2025 units (mã xã cũ).
#[derive(Debug)]
pub struct FormerCommune {
    pub code: u32,
    /// As published, with its kind: "Xã Cẩm Quang", "Thị trấn Cẩm Xuyên", "Phường Hàng Bạc".
    pub name: String,
    pub district: DistrictCode,
    /// The 2025 communes it went into, and how much of it each received.
    pub became: Vec<(WardCode, Share)>,
}

impl FormerCommune {
    /// "Xã Cẩm Quang, Huyện Cẩm Xuyên, Tỉnh Hà Tĩnh".
    pub fn formatted(&self) -> String {
        let district = self.district.district();
        let province = units()
            .old_province(district.province_code)
            .map(|p| p.name.as_str())
            .unwrap_or_default();
        format!("{}, {}, {province}", self.name, district.name)
    }

    /// How much of it went into `ward`, if any.
    pub fn share_in(&self, ward: WardCode) -> Option<Share> {
        self.became
            .iter()
            .find(|(w, _)| *w == ward)
            .map(|(_, share)| *share)
    }
}

/// The conversion table, parsed once.
#[derive(Debug)]
pub struct FormerCommunes {
    pub communes: Vec<FormerCommune>,
    by_ward: HashMap<WardCode, Vec<usize>>,
}

impl FormerCommunes {
    /// The former communes that went, wholly or in part, into a 2025 commune.
    pub fn of_ward(&self, ward: WardCode) -> impl Iterator<Item = &FormerCommune> {
        self.by_ward
            .get(&ward)
            .into_iter()
            .flatten()
            .map(|&i| &self.communes[i])
    }
}

/// The table. It is compiled into the binary; the unit tests check every row.
pub fn former_communes() -> &'static FormerCommunes {
    static TABLE: OnceLock<FormerCommunes> = OnceLock::new();
    TABLE.get_or_init(load)
}

fn load() -> FormerCommunes {
    let mut communes: Vec<FormerCommune> = Vec::new();
    let mut index: HashMap<u32, usize> = HashMap::new();
    for line in CONVERSION_2025.lines().skip(1) {
        let r: Vec<&str> = line.split(',').map(str::trim).collect();
        let [code, name, district, ward, whole] = r[..] else {
            continue;
        };
        let (Ok(code), Ok(district), Ok(ward)) = (
            code.parse::<u32>(),
            DistrictCode::parse(district),
            WardCode::parse(ward),
        ) else {
            continue;
        };
        let share = if whole == "1" {
            Share::Whole
        } else {
            Share::Part
        };
        let i = *index.entry(code).or_insert_with(|| {
            communes.push(FormerCommune {
                code,
                name: name.to_owned(),
                district,
                became: Vec::new(),
            });
            communes.len() - 1
        });
        communes[i].became.push((ward, share));
    }
    let mut by_ward: HashMap<WardCode, Vec<usize>> = HashMap::new();
    for (i, c) in communes.iter().enumerate() {
        for (w, _) in &c.became {
            by_ward.entry(*w).or_default().push(i);
        }
    }
    FormerCommunes { communes, by_ward }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_parses_and_the_coverage_is_the_documented_one() {
        let rows = CONVERSION_2025.lines().skip(1).count();
        let t = former_communes();
        let parsed: usize = t.communes.iter().map(|c| c.became.len()).sum();
        assert_eq!(
            parsed, rows,
            "every row names a known district and 2025 commune"
        );
        assert_eq!(t.communes.len(), 10_027);
        assert_eq!(t.by_ward.len(), 3_314);
        let old_provinces: std::collections::HashSet<u16> = t
            .communes
            .iter()
            .map(|c| c.district.district().province_code)
            .collect();
        assert_eq!(old_provinces.len(), 63);
    }

    #[test]
    fn a_former_commune_lands_in_its_own_2025_province() {
        for c in &former_communes().communes {
            let old = units()
                .old_province(c.district.district().province_code)
                .unwrap();
            for (w, _) in &c.became {
                assert_eq!(
                    w.ward().province_code,
                    old.province_2025,
                    "{} went into {} of another province",
                    c.name,
                    w.ward().name
                );
            }
        }
    }

    #[test]
    fn cam_quang_became_cam_xuyen_and_dai_nai_was_split() {
        let t = former_communes();
        let cam_xuyen = WardCode::parse("18673").unwrap();
        let names: Vec<&str> = t.of_ward(cam_xuyen).map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            ["Thị trấn Cẩm Xuyên", "Xã Cẩm Quang", "Xã Cẩm Quan"],
            "Cẩm Xuyên township, Cẩm Quang and Cẩm Quan became Xã Cẩm Xuyên"
        );
        let quang = t.communes.iter().find(|c| c.code == 18697).unwrap();
        assert_eq!(
            quang.formatted(),
            "Xã Cẩm Quang, Huyện Cẩm Xuyên, Tỉnh Hà Tĩnh"
        );
        assert_eq!(quang.share_in(cam_xuyen), Some(Share::Whole));
        let dai_nai = t.communes.iter().find(|c| c.code == 18082).unwrap();
        assert_eq!(dai_nai.became.len(), 2);
        assert!(dai_nai.became.iter().all(|(_, s)| *s == Share::Part));
    }
}
