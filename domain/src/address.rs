//! Addresses: current ones in the 2025 units, historical places in the pre-2025 units. The
//! formatted Vietnamese string is derived from the codes, never stored.

use crate::units::{DistrictCode, WardCode, units};
use serde::{Deserialize, Serialize};

/// An address in the 2025 two-level units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address {
    /// House number and street, or hamlet (thôn, xóm, tổ dân phố).
    pub detail: String,
    /// The commune, ward or special zone.
    pub ward: WardCode,
}

impl Address {
    /// The 2025 province the ward belongs to.
    pub fn province_code(&self) -> u16 {
        self.ward.ward().province_code
    }

    /// The 2025 province as written in an address: "Tỉnh Hà Tĩnh", "Thành phố Hà Nội".
    pub fn province_name(&self) -> String {
        crate::units::ProvinceCode::try_from(u32::from(self.province_code()))
            .map(|p| p.province().full_name())
            .unwrap_or_default()
    }

    /// "Số 12 đường Trần Phú, Phường Thành Sen, Tỉnh Hà Tĩnh".
    pub fn formatted(&self) -> String {
        let ward = self.ward.ward();
        let province = self.province_name();
        if self.detail.is_empty() {
            format!("{}, {province}", ward.name)
        } else {
            format!("{}, {}, {province}", self.detail, ward.name)
        }
    }
}

/// A place in the pre-2025 units (district and province), for place of birth and of origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoricalPlace {
    /// The pre-2025 district.
    pub district: DistrictCode,
}

impl HistoricalPlace {
    /// The pre-2025 province code.
    pub fn province_code(&self) -> u16 {
        self.district.district().province_code
    }

    /// The pre-2025 province's name: "Tỉnh Hà Tĩnh".
    pub fn province_name(&self) -> &'static str {
        units()
            .old_province(self.province_code())
            .map(|p| p.name.as_str())
            .unwrap_or_default()
    }

    /// "Huyện Cẩm Xuyên, Tỉnh Hà Tĩnh".
    pub fn formatted(&self) -> String {
        format!(
            "{}, {}",
            self.district.district().name,
            self.province_name()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatting_is_derived_from_the_codes() {
        let a = Address {
            detail: "Số 12 phố Hàng Bạc".into(),
            ward: WardCode::parse("00070").unwrap(),
        };
        assert_eq!(
            a.formatted(),
            "Số 12 phố Hàng Bạc, Phường Hoàn Kiếm, Thành phố Hà Nội"
        );
        assert_eq!(a.province_code(), 1);
        let p = HistoricalPlace {
            district: DistrictCode::parse("001").unwrap(),
        };
        assert_eq!(p.formatted(), "Quận Ba Đình, Thành phố Hà Nội");
    }
}
