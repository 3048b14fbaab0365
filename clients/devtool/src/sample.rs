//! The sample connected units and officers of the development environment. Their codes match
//! `deploy/gateway.dev.toml`, which gives each unit its environment, approval, procedures and
//! limits.

/// A sample connected unit.
#[derive(Debug, Clone, Copy)]
pub struct SampleUnit {
    /// Short name, also the stem of its certificate files under `pki/units/`.
    pub key: &'static str,
    pub code: &'static str,
    pub name: &'static str,
    /// What it shows in the development environment.
    pub role: &'static str,
}

/// The sample units.
pub const UNITS: &[SampleUnit] = &[
    SampleUnit {
        key: "ha-tinh",
        code: "000.00.00.H42",
        name: "Hệ thống thông tin giải quyết TTHC tỉnh Hà Tĩnh",
        role: "provincial one-stop system, production, approved, every procedure",
    },
    SampleUnit {
        key: "thanh-hoa",
        code: "000.00.00.H56",
        name: "Hệ thống thông tin giải quyết TTHC tỉnh Thanh Hóa",
        role: "provincial one-stop system, production, approved, every procedure",
    },
    SampleUnit {
        key: "thanh-sen",
        code: "001.01.42.H42",
        name: "Bộ phận một cửa UBND phường Thành Sen",
        role: "commune counter: civil status and residence only, low limits, no bulk",
    },
    SampleUnit {
        key: "sandbox",
        code: "000.00.00.S01",
        name: "Đơn vị thử nghiệm tích hợp",
        role: "sandbox credentials only: served by a sandbox gateway, refused by production",
    },
    SampleUnit {
        key: "pending",
        code: "000.00.00.P01",
        name: "Hệ thống một cửa chờ phê duyệt kết nối",
        role: "connection request pending: every data call refused (UNIT_NOT_APPROVED)",
    },
    SampleUnit {
        key: "national-audit",
        code: "000.00.00.C06",
        name: "Cục Cảnh sát QLHC về TTXH (C06) — kiểm tra nhật ký",
        role: "national audit: no procedure, reads every unit's audit records",
    },
];

/// The unit the gateway itself connects to the population database as.
pub const GATEWAY_UNIT: SampleUnit = SampleUnit {
    key: "gateway-upstream",
    code: "000.00.00.LTG",
    name: "Cổng kết nối Liên Thông",
    role: "the gateway, as a connected unit of the population database",
};

/// A sample officer.
#[derive(Debug, Clone, Copy)]
pub struct SampleOfficer {
    pub code: &'static str,
    pub unit: &'static str,
    pub roles: &'static [&'static str],
    pub role: &'static str,
}

/// The sample officers.
pub const OFFICERS: &[SampleOfficer] = &[
    SampleOfficer {
        code: "CB.H42.0001",
        unit: "ha-tinh",
        roles: &["receiver"],
        role: "receives dossiers at the Hà Tĩnh one-stop",
    },
    SampleOfficer {
        code: "CB.H42.0002",
        unit: "ha-tinh",
        roles: &["processor"],
        role: "processes dossiers (criminal-record certificates, funeral allowance)",
    },
    SampleOfficer {
        code: "CB.H42.0003",
        unit: "ha-tinh",
        roles: &["approver"],
        role: "approves residence dossiers",
    },
    SampleOfficer {
        code: "CB.H42.KT01",
        unit: "ha-tinh",
        roles: &["auditor"],
        role: "reviews the audit trail; never sees citizen data",
    },
    SampleOfficer {
        code: "CB.H56.0001",
        unit: "thanh-hoa",
        roles: &["receiver", "processor"],
        role: "Thanh Hóa one-stop officer",
    },
    SampleOfficer {
        code: "CB.XTS.0001",
        unit: "thanh-sen",
        roles: &["receiver", "processor"],
        role: "commune counter officer",
    },
    SampleOfficer {
        code: "CB.S01.0001",
        unit: "sandbox",
        roles: &["receiver", "processor", "approver"],
        role: "integration tester",
    },
    SampleOfficer {
        code: "CB.P01.0001",
        unit: "pending",
        roles: &["receiver"],
        role: "officer of the unit awaiting approval",
    },
    SampleOfficer {
        code: "CB.C06.KT01",
        unit: "national-audit",
        roles: &["auditor"],
        role: "national auditor: every unit's records, exports",
    },
];

/// A sample unit by key.
pub fn unit(key: &str) -> Option<&'static SampleUnit> {
    UNITS.iter().find(|u| u.key == key)
}

/// A sample officer by code.
pub fn officer(code: &str) -> Option<&'static SampleOfficer> {
    OFFICERS.iter().find(|o| o.code == code)
}
