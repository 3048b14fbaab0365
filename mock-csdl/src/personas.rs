//! The persona table: citizens with fixed, documented IDs, one per test scenario, present in
//! every store whatever the seed and size. Their numbers use serial, old-ID and household ranges
//! the generator never gives out, so they never collide with generated citizens.
//!
//! The chaos personas come with built-in faults (see [`builtin_faults`]).

use crate::faults::{Effect, FaultRule, Scope};
use crate::generator::{Batch, provenance_for};
use lienthong_domain::{
    Address, CardStatus, CardType, CitizenRecord, DistrictCode, EidLevel, Gender, HistoricalPlace,
    Household, HouseholdId, HouseholdLink, IdCard, LifeStatus, MaritalStatus, OldIdNumber,
    PartialDate, PersonalId, Relation, Relative, WardCode,
};

/// One row of the persona table.
#[derive(Debug, Clone, Copy)]
pub struct Persona {
    pub key: &'static str,
    pub personal_id: &'static str,
    pub old_id_number: Option<&'static str>,
    pub full_name: &'static str,
    pub scenario: &'static str,
    pub scenario_vi: &'static str,
}

/// The table, in the order it is documented in PERSONAS.md.
pub const PERSONAS: &[Persona] = &[
    Persona {
        key: "complete-adult",
        personal_id: "042188999005",
        old_id_number: Some("189990005"),
        full_name: "Trần Thị Minh Thư",
        scenario: "adult with every field on record: old ID 189990005 and the earlier 189990105, valid card, phone, VNeID level 2, spouse on record, temporary residence in Hà Nội",
        scenario_vi: "công dân có đầy đủ mọi trường thông tin",
    },
    Persona {
        key: "complete-adult-spouse",
        personal_id: "042087999006",
        old_id_number: None,
        full_name: "Đặng Quốc Việt",
        scenario: "husband of complete-adult, head of their household",
        scenario_vi: "chồng của công dân đầy đủ thông tin, chủ hộ",
    },
    Persona {
        key: "household-head",
        personal_id: "042085999001",
        old_id_number: None,
        full_name: "Lê Văn Hùng",
        scenario: "head of a household with spouse and two children (one under 6, one newborn); father in the birth bundle",
        scenario_vi: "chủ hộ có vợ và hai con (một cháu dưới 6 tuổi, một cháu mới sinh)",
    },
    Persona {
        key: "household-spouse",
        personal_id: "042190999002",
        old_id_number: None,
        full_name: "Phạm Thị Lan",
        scenario: "wife of household-head; the declaring mother in the birth bundle",
        scenario_vi: "vợ chủ hộ; người mẹ đi khai sinh",
    },
    Persona {
        key: "child-under-6",
        personal_id: "042222999003",
        old_id_number: None,
        full_name: "Lê Minh Khôi",
        scenario: "child under 6 (born 15/06/2022): no card, no phone, health-insurance number on record",
        scenario_vi: "trẻ em dưới 6 tuổi, có mã số BHXH",
    },
    Persona {
        key: "newborn",
        personal_id: "042326999004",
        old_id_number: None,
        full_name: "Lê Ngọc Bảo Anh",
        scenario: "newborn (born 02/10/2026): no card, no phone, no health-insurance number yet",
        scenario_vi: "trẻ mới sinh, chưa có thẻ căn cước, chưa có mã số BHXH",
    },
    Persona {
        key: "deceased",
        personal_id: "042038999007",
        old_id_number: None,
        full_name: "Hoàng Văn Tám",
        scenario: "deceased on 30/09/2026, struck off permanent residence; subject of the death bundle",
        scenario_vi: "công dân đã chết, đã xóa đăng ký thường trú",
    },
    Persona {
        key: "deceased-on-register",
        personal_id: "042140999022",
        old_id_number: None,
        full_name: "Trần Thị Gái",
        scenario: "died 15/10/2026, death registered but not yet struck off: still on her son old-id-holder's household register; her card revoked",
        scenario_vi: "đã mất ngày 15/10/2026, chưa xóa đăng ký thường trú: vẫn có tên trong sổ hộ khẩu của con trai",
    },
    Persona {
        key: "revoked-card",
        personal_id: "042079999008",
        old_id_number: None,
        full_name: "Vũ Đức Thắng",
        scenario: "identity card revoked",
        scenario_vi: "thẻ căn cước bị thu hồi",
    },
    Persona {
        key: "expired-card",
        personal_id: "042300999009",
        old_id_number: None,
        full_name: "Bùi Thị Hằng",
        scenario: "chip CCCD issued at 21, expired on her 25th birthday (05/01/2025) and not renewed",
        scenario_vi: "thẻ CCCD gắn chip đã hết hạn",
    },
    Persona {
        key: "old-id-holder",
        personal_id: "042065999010",
        old_id_number: Some("189990010"),
        full_name: "Ngô Văn Lực",
        scenario: "holds an old 9-digit ID (CMND 189990010) that maps to his personal ID",
        scenario_vi: "có số CMND 9 số cũ",
    },
    Persona {
        key: "several-old-ids",
        personal_id: "042072999023",
        old_id_number: Some("029990023"),
        full_name: "Võ Văn Thắng",
        scenario: "held three 9-digit numbers: 189990023 (Hà Tĩnh, 1988), 189990123 (issued again after a loss, 2001) and 029990023 (Hồ Chí Minh City, after a move, 2009); a lookup by any of them finds him",
        scenario_vi: "từng được cấp ba số CMND 9 số",
    },
    Persona {
        key: "legacy-encoded-name",
        personal_id: "042187999024",
        old_id_number: None,
        full_name: "Nguyễn Thị Ngọc Diễm",
        scenario: "her province's older system holds her name in the TCVN3 (ABC) font encoding: declared as read there, \"NguyÔn ThÞ Ngäc DiÔm\", it must be reported as a legacy encoding, never compared",
        scenario_vi: "hệ thống cũ của tỉnh lưu họ tên theo mã TCVN3",
    },
    Persona {
        key: "vneid-pending",
        personal_id: "042198999025",
        old_id_number: None,
        full_name: "Lương Thị Thu",
        scenario: "registered a level 1 VNeID account on 30/10/2026, still awaiting approval (two to three days): she cannot log in, so she cannot consent to an auto-fill",
        scenario_vi: "tài khoản VNeID mức 1 đang chờ phê duyệt",
    },
    Persona {
        key: "pre-2025-address",
        personal_id: "042184999026",
        old_id_number: None,
        full_name: "Trương Thị Quỳnh",
        scenario: "permanent residence in Thôn Tân Hòa, Xã Cẩm Xuyên (2025 units); her province's older system still holds it in the pre-2025 units, \"Thôn Tân Hòa, Xã Cẩm Quang, Huyện Cẩm Xuyên, Tỉnh Hà Tĩnh\": Xã Cẩm Quang became part of Xã Cẩm Xuyên on 1 July 2025, so it verifies as a match with NORMALIZATION_PRE_2025_UNITS",
        scenario_vi: "hệ thống cũ của tỉnh lưu địa chỉ theo đơn vị hành chính trước 01/7/2025",
    },
    Persona {
        key: "no-phone",
        personal_id: "042158999011",
        old_id_number: None,
        full_name: "Đinh Thị Nga",
        scenario: "no phone number in her own name, no VNeID account",
        scenario_vi: "không có số điện thoại đứng tên, chưa có VNeID",
    },
    Persona {
        key: "partial-birth-date",
        personal_id: "042048999012",
        old_id_number: None,
        full_name: "Phan Văn Thọ",
        scenario: "birth date known by year only (1948)",
        scenario_vi: "chỉ có năm sinh",
    },
    Persona {
        key: "partial-birth-month",
        personal_id: "042152999013",
        old_id_number: None,
        full_name: "Hồ Thị Mai",
        scenario: "birth date known by month and year only (05/1952)",
        scenario_vi: "chỉ có tháng và năm sinh",
    },
    Persona {
        key: "similar-name",
        personal_id: "042092999014",
        old_id_number: None,
        full_name: "Nguyễn Văn Hạ",
        scenario: "name differs from the common 'Nguyễn Văn Hà' by one tone mark: a declared 'Hà' must never match",
        scenario_vi: "tên chỉ khác 'Nguyễn Văn Hà' một dấu thanh",
    },
    Persona {
        key: "diacritics-variants",
        personal_id: "042195999015",
        old_id_number: None,
        full_name: "Nguyễn Thị Thùy Linh",
        scenario: "name declared in many spellings: decomposed Unicode, upper case, extra spaces, old-style tone placement 'Thuỳ', no diacritics",
        scenario_vi: "tên được khai theo nhiều cách viết dấu khác nhau",
    },
    Persona {
        key: "record-mismatch",
        personal_id: "042170999016",
        old_id_number: None,
        full_name: "Đỗ Thị Huyền",
        scenario: "record differs from what she declares: placeholder birth date 01/01/1970 (she declares 12/08/1970), name without the middle name 'Thu', address in the 2025 commune while she declares the old district",
        scenario_vi: "dữ liệu khác với thông tin công dân thường khai",
    },
    Persona {
        key: "thanh-hoa-adult",
        personal_id: "038194999021",
        old_id_number: None,
        full_name: "Lê Thị Hoa",
        scenario: "adult registered in Thanh Hóa, for calls from another province's one-stop system",
        scenario_vi: "công dân thường trú tại Thanh Hóa",
    },
    Persona {
        key: "chaos-slow",
        personal_id: "042080999017",
        old_id_number: None,
        full_name: "Trần Văn Chậm",
        scenario: "every lookup takes 3 seconds",
        scenario_vi: "mọi truy vấn chậm 3 giây",
    },
    Persona {
        key: "chaos-fail",
        personal_id: "042081999018",
        old_id_number: None,
        full_name: "Trần Văn Lỗi",
        scenario: "every lookup fails with UNAVAILABLE",
        scenario_vi: "mọi truy vấn đều lỗi UNAVAILABLE",
    },
    Persona {
        key: "chaos-timeout",
        personal_id: "042082999019",
        old_id_number: None,
        full_name: "Trần Văn Treo",
        scenario: "every lookup hangs for 60 seconds, past any sensible deadline",
        scenario_vi: "mọi truy vấn treo 60 giây",
    },
    Persona {
        key: "chaos-flaky",
        personal_id: "042183999020",
        old_id_number: None,
        full_name: "Trần Thị Chờn",
        scenario: "every other lookup fails with UNAVAILABLE (the first succeeds)",
        scenario_vi: "cứ hai truy vấn thì một truy vấn lỗi",
    },
];

/// A persona by key.
pub fn persona(key: &str) -> Option<&'static Persona> {
    PERSONAS.iter().find(|p| p.key == key)
}

/// The built-in faults of the chaos personas.
pub fn builtin_faults() -> Vec<FaultRule> {
    let for_persona = |key: &str, effect: Effect| FaultRule {
        id: format!("persona:{key}"),
        scope: Scope {
            method: None,
            personal_id: persona(key).map(|p| p.personal_id.to_owned()),
        },
        effect,
        seed: 0,
        builtin: true,
    };
    vec![
        for_persona(
            "chaos-slow",
            Effect::Latency {
                fixed_ms: 3_000,
                jitter_ms: 0,
            },
        ),
        for_persona(
            "chaos-fail",
            Effect::Error {
                rate: 1.0,
                code: tonic::Code::Unavailable,
                message: String::new(),
            },
        ),
        for_persona(
            "chaos-timeout",
            Effect::Latency {
                fixed_ms: 60_000,
                jitter_ms: 0,
            },
        ),
        for_persona(
            "chaos-flaky",
            Effect::EveryNth {
                n: 2,
                code: tonic::Code::Unavailable,
            },
        ),
    ]
}

// --- building the records ----------------------------------------------------------------

fn id(s: &str) -> PersonalId {
    PersonalId::parse(s).expect("persona IDs in the table are valid")
}

fn ward(code: u32) -> WardCode {
    WardCode::try_from(code).expect("persona wards exist in the 2025 table")
}

fn district(code: u32) -> DistrictCode {
    DistrictCode::try_from(code).expect("persona districts exist in the pre-2025 table")
}

fn date(y: i32, m: u32, d: u32) -> PartialDate {
    PartialDate::from_parts(y, m, d).expect("persona dates are valid")
}

fn household_id(n: u32) -> HouseholdId {
    HouseholdId::new(42, crate::generator::PERSONA_HOUSEHOLD_START + n)
}

const THANH_SEN: u32 = 18073;
const CAM_XUYEN: u32 = 18673;
const HOAN_KIEM: u32 = 70;
const HAC_THANH: u32 = 14797;
const TP_HA_TINH: u32 = 436;
const CAN_LOC: u32 = 443;
const HUYEN_CAM_XUYEN: u32 = 446;
const TP_THANH_HOA: u32 = 380;

fn chip(issued: PartialDate, expiry: Option<PartialDate>, status: CardStatus) -> IdCard {
    IdCard {
        card_type: CardType::ChipCccd,
        issue_date: issued,
        issue_place: "Cục Cảnh sát quản lý hành chính về trật tự xã hội".to_owned(),
        expiry_date: expiry,
        status,
    }
}

fn can_cuoc(issued: PartialDate, expiry: Option<PartialDate>) -> IdCard {
    IdCard {
        card_type: CardType::CanCuoc,
        issue_date: issued,
        issue_place: "Bộ Công an".to_owned(),
        expiry_date: expiry,
        status: CardStatus::Valid,
    }
}

/// A plain adult of Hà Tĩnh from a table row; each persona then changes what its scenario needs.
fn base(key: &str, gender: Gender, dob: PartialDate) -> CitizenRecord {
    let p = persona(key).expect("persona keys used here are in the table");
    // The last three digits of the ID give each persona its own house and insurance number.
    let n: u32 = p.personal_id[9..].parse().unwrap_or(0);
    let home = Address {
        detail: format!("Số {} đường Phan Đình Phùng", 100 + n),
        ward: ward(THANH_SEN),
    };
    CitizenRecord {
        personal_id: id(p.personal_id),
        old_id_number: p
            .old_id_number
            .map(|o| OldIdNumber::parse(o).expect("valid")),
        previous_old_id_numbers: Vec::new(),
        full_name: p.full_name.to_owned(),
        date_of_birth: dob,
        gender,
        nationality: "VN".to_owned(),
        ethnicity: "Kinh".to_owned(),
        religion: "Không".to_owned(),
        place_of_birth: HistoricalPlace {
            district: district(TP_HA_TINH),
        },
        place_of_origin: HistoricalPlace {
            district: district(CAN_LOC),
        },
        permanent_address: home.clone(),
        temporary_address: None,
        current_address: home,
        household: None,
        father: None,
        mother: None,
        spouse: None,
        marital_status: MaritalStatus::Single,
        card: Some(can_cuoc(date(2024, 9, 12), None)),
        phone: Some(format!("0912{}", &p.personal_id[6..])),
        eid_level: EidLevel::Level2,
        health_insurance_number: Some(format!(
            "42{}",
            crate::generator::PERSONA_INSURANCE_START + u64::from(n)
        )),
        life_status: LifeStatus::Alive,
        provenance: Vec::new(),
    }
}

fn set_address(r: &mut CitizenRecord, detail: &str, ward_code: u32) {
    let a = Address {
        detail: detail.to_owned(),
        ward: ward(ward_code),
    };
    r.permanent_address = a.clone();
    r.current_address = a;
}

fn marry(a: &mut CitizenRecord, b: &mut CitizenRecord) {
    a.spouse = Some(b.as_relative());
    b.spouse = Some(a.as_relative());
    a.marital_status = MaritalStatus::Married;
    b.marital_status = MaritalStatus::Married;
}

fn join(h: &mut Household, r: &mut CitizenRecord, relation: Relation) {
    r.household = Some(HouseholdLink {
        household_id: h.id.clone(),
        relation_to_head: relation,
    });
    r.permanent_address = h.address.clone();
    if r.temporary_address.is_none() {
        r.current_address = h.address.clone();
    }
    h.members.push((r.personal_id.clone(), relation));
}

fn new_household(n: u32, head: &mut CitizenRecord) -> Household {
    let mut h = Household {
        id: household_id(n),
        head: head.personal_id.clone(),
        members: Vec::new(),
        address: head.permanent_address.clone(),
    };
    join(&mut h, head, Relation::Head);
    h
}

/// Every persona's record and household.
pub fn batch() -> Batch {
    use Gender::{Female, Male};
    let mut out = Batch::default();

    // The family: household-head, household-spouse, child-under-6, newborn.
    let mut hung = base("household-head", Male, date(1985, 4, 12));
    set_address(&mut hung, "Số 15 đường Trần Phú", THANH_SEN);
    hung.card = Some(can_cuoc(date(2025, 3, 20), Some(date(2045, 4, 12))));
    let mut lan = base("household-spouse", Female, date(1990, 9, 3));
    lan.place_of_origin = HistoricalPlace {
        district: district(HUYEN_CAM_XUYEN),
    };
    lan.card = Some(chip(
        date(2021, 5, 10),
        Some(date(2030, 9, 3)),
        CardStatus::Valid,
    ));
    marry(&mut hung, &mut lan);
    let mut khoi = base("child-under-6", Male, date(2022, 6, 15));
    let mut bao_anh = base("newborn", Female, date(2026, 10, 2));
    for child in [&mut khoi, &mut bao_anh] {
        child.father = Some(hung.as_relative());
        child.mother = Some(lan.as_relative());
        child.card = None;
        child.phone = None;
        child.eid_level = EidLevel::None;
    }
    bao_anh.health_insurance_number = None;
    let mut family = new_household(1, &mut hung);
    join(&mut family, &mut lan, Relation::Spouse);
    join(&mut family, &mut khoi, Relation::Child);
    join(&mut family, &mut bao_anh, Relation::Child);

    // complete-adult and her husband.
    let mut thu = base("complete-adult", Female, date(1988, 3, 14));
    // Her first card was lost in 2008 and issued again under 189990005.
    thu.previous_old_id_numbers = vec![OldIdNumber::parse("189990105").expect("valid")];
    let mut viet = base("complete-adult-spouse", Male, date(1987, 11, 2));
    set_address(&mut viet, "Số 8 đường Hà Huy Tập", THANH_SEN);
    thu.father = Some(Relative {
        personal_id: None,
        full_name: "Trần Văn Bình".to_owned(),
        date_of_birth: PartialDate::Year(1960),
    });
    thu.mother = Some(Relative {
        personal_id: None,
        full_name: "Nguyễn Thị Xuân".to_owned(),
        date_of_birth: PartialDate::Year(1963),
    });
    let hanoi = Address {
        detail: "Số 24 phố Hàng Bạc".to_owned(),
        ward: ward(HOAN_KIEM),
    };
    thu.temporary_address = Some(hanoi.clone());
    thu.current_address = hanoi;
    thu.card = Some(chip(
        date(2021, 4, 2),
        Some(date(2028, 3, 14)),
        CardStatus::Valid,
    ));
    marry(&mut thu, &mut viet);
    let mut couple = new_household(2, &mut viet);
    join(&mut couple, &mut thu, Relation::Spouse);

    // deceased: struck off residence, no household.
    let mut tam = base("deceased", Male, date(1938, 2, 20));
    tam.life_status = LifeStatus::Deceased {
        date: date(2026, 9, 30),
    };
    tam.spouse = Some(Relative {
        personal_id: None,
        full_name: "Đỗ Thị Nụ".to_owned(),
        date_of_birth: PartialDate::Year(1941),
    });
    tam.marital_status = MaritalStatus::Married;
    // His card was issued in his lifetime and revoked at his death.
    tam.card = Some(chip(date(2021, 6, 1), None, CardStatus::Revoked));
    tam.phone = None;

    let mut thang = base("revoked-card", Male, date(1979, 11, 30));
    thang.card = Some(chip(
        date(2021, 8, 16),
        Some(date(2039, 11, 30)),
        CardStatus::Revoked,
    ));
    let mut hang = base("expired-card", Female, date(2000, 1, 5));
    hang.card = Some(chip(
        date(2021, 2, 1),
        Some(date(2025, 1, 5)),
        CardStatus::Expired,
    ));
    let mut luc = base("old-id-holder", Male, date(1965, 7, 22));
    luc.card = Some(can_cuoc(date(2025, 8, 10), None));
    // His mother died a fortnight before "today": the death is registered, the household
    // register not yet changed.
    let mut gai = base("deceased-on-register", Female, date(1940, 3, 8));
    gai.life_status = LifeStatus::Deceased {
        date: date(2026, 10, 15),
    };
    gai.marital_status = MaritalStatus::Widowed;
    gai.card = Some(chip(date(2021, 4, 20), None, CardStatus::Revoked));
    gai.phone = None;
    gai.eid_level = EidLevel::None;
    let mut thang_vo = base("several-old-ids", Male, date(1972, 3, 18));
    thang_vo.previous_old_id_numbers = ["189990023", "189990123"]
        .into_iter()
        .map(|o| OldIdNumber::parse(o).expect("valid"))
        .collect();
    thang_vo.card = Some(chip(date(2021, 6, 2), None, CardStatus::Valid));
    let mut diem = base("legacy-encoded-name", Female, date(1987, 10, 21));
    diem.card = Some(chip(
        date(2021, 4, 2),
        Some(date(2027, 10, 21)),
        CardStatus::Valid,
    ));
    let mut thu_luong = base("vneid-pending", Female, date(1998, 5, 27));
    thu_luong.eid_level = EidLevel::Level1Pending;
    thu_luong.card = Some(can_cuoc(date(2026, 10, 20), Some(date(2038, 5, 27))));
    let mut quynh = base("pre-2025-address", Female, date(1984, 3, 8));
    set_address(&mut quynh, "Thôn Tân Hòa", CAM_XUYEN);
    quynh.card = Some(can_cuoc(date(2024, 11, 20), Some(date(2044, 3, 8))));
    let mut nga = base("no-phone", Female, date(1958, 12, 1));
    nga.phone = None;
    nga.eid_level = EidLevel::None;
    let mut tho = base("partial-birth-date", Male, PartialDate::Year(1948));
    tho.card = Some(chip(date(2021, 7, 3), None, CardStatus::Valid));
    let mut mai = base(
        "partial-birth-month",
        Female,
        PartialDate::YearMonth(1952, 5),
    );
    mai.card = Some(chip(date(2021, 7, 3), None, CardStatus::Valid));
    let mut ha = base("similar-name", Male, date(1992, 8, 8));
    ha.card = Some(chip(
        date(2021, 3, 9),
        Some(date(2032, 8, 8)),
        CardStatus::Valid,
    ));
    let mut linh = base("diacritics-variants", Female, date(1995, 2, 14));
    linh.card = Some(chip(
        date(2022, 1, 19),
        Some(date(2035, 2, 14)),
        CardStatus::Valid,
    ));
    let mut huyen = base("record-mismatch", Female, date(1970, 1, 1));
    set_address(&mut huyen, "Tổ dân phố 3", CAM_XUYEN);
    huyen.place_of_birth = HistoricalPlace {
        district: district(HUYEN_CAM_XUYEN),
    };
    huyen.place_of_origin = huyen.place_of_birth;
    huyen.card = Some(chip(
        date(2021, 5, 5),
        Some(date(2030, 1, 1)),
        CardStatus::Valid,
    ));
    let mut hoa = base("thanh-hoa-adult", Female, date(1994, 6, 30));
    hoa.place_of_birth = HistoricalPlace {
        district: district(TP_THANH_HOA),
    };
    hoa.place_of_origin = hoa.place_of_birth;
    set_address(&mut hoa, "Số 45 đường Lê Lợi", HAC_THANH);
    hoa.health_insurance_number = Some("3899000021".to_owned());
    let chaos = [
        base("chaos-slow", Male, date(1980, 1, 10)),
        base("chaos-fail", Male, date(1981, 2, 11)),
        base("chaos-timeout", Male, date(1982, 3, 12)),
        base("chaos-flaky", Female, date(1983, 4, 13)),
    ];

    let mut households = vec![family, couple];
    let mut singles = vec![
        thang, hang, luc, nga, tho, mai, ha, linh, huyen, hoa, thang_vo, diem, thu_luong, quynh,
    ];
    singles.extend(chaos);
    for (n, r) in singles.iter_mut().enumerate() {
        households.push(new_household(3 + n as u32, r));
    }
    if let Some(h) = households
        .iter_mut()
        .find(|h| h.head.as_str() == persona("old-id-holder").map_or("", |p| p.personal_id))
    {
        join(h, &mut gai, Relation::Parent);
    }
    // Thanh Hóa's household is numbered in its province.
    if let Some(h) = households.iter_mut().find(|h| h.head.province_code() == 38) {
        h.id = HouseholdId::new(38, crate::generator::PERSONA_HOUSEHOLD_START + 1);
    }
    let mut citizens = vec![hung, lan, khoi, bao_anh, thu, viet, tam, gai];
    citizens.extend(singles);
    for c in &mut citizens {
        if let Some(link) = &mut c.household
            && let Some(h) = households
                .iter()
                .find(|h| h.members.iter().any(|(m, _)| *m == c.personal_id))
        {
            link.household_id = h.id.clone();
        }
        let seed = crate::generator::splitmix(u64::from(c.personal_id.serial()));
        c.provenance = provenance_for(c, seed);
    }
    out.citizens = citizens;
    out.households = households;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_persona_has_a_consistent_record() {
        let b = batch();
        assert_eq!(b.citizens.len(), PERSONAS.len());
        for p in PERSONAS {
            let r = b
                .citizens
                .iter()
                .find(|c| c.personal_id.as_str() == p.personal_id)
                .unwrap_or_else(|| panic!("{} has no record", p.key));
            assert_eq!(r.full_name, p.full_name, "{}", p.key);
            assert_eq!(r.id_inconsistencies(), Vec::<&str>::new(), "{}", p.key);
            assert!(
                r.personal_id.serial() >= crate::generator::PERSONA_SERIAL_START,
                "{} uses a generated serial",
                p.key
            );
        }
    }

    #[test]
    fn households_agree_with_their_members() {
        let b = batch();
        for h in &b.households {
            for (m, rel) in &h.members {
                let r = b.citizens.iter().find(|c| &c.personal_id == m).unwrap();
                let link = r.household.as_ref().unwrap();
                assert_eq!(&link.household_id, &h.id);
                assert_eq!(&link.relation_to_head, rel);
            }
        }
    }

    #[test]
    fn each_persona_shows_its_scenario() {
        let b = batch();
        let get = |key: &str| {
            let id = persona(key).unwrap().personal_id;
            b.citizens
                .iter()
                .find(|c| c.personal_id.as_str() == id)
                .unwrap()
                .clone()
        };
        let status = |key: &str| get(key).card.map(|c| c.status);
        assert_eq!(status("revoked-card"), Some(CardStatus::Revoked));
        assert_eq!(status("expired-card"), Some(CardStatus::Expired));
        assert_eq!(status("complete-adult"), Some(CardStatus::Valid));
        let newborn = get("newborn");
        assert!(newborn.card.is_none() && newborn.phone.is_none());
        assert!(newborn.health_insurance_number.is_none());
        assert_eq!(newborn.mother.unwrap().full_name, "Phạm Thị Lan");
        let child = get("child-under-6");
        assert!(child.date_of_birth.age_on(crate::generator::WORLD_DATE) < 6);
        assert!(child.health_insurance_number.is_some());
        assert!(matches!(
            get("deceased").life_status,
            LifeStatus::Deceased { .. }
        ));
        assert!(get("deceased").household.is_none());
        let gai = get("deceased-on-register");
        assert!(matches!(gai.life_status, LifeStatus::Deceased { .. }));
        assert_eq!(
            gai.household.map(|h| h.relation_to_head),
            Some(Relation::Parent),
            "still on the register"
        );
        assert_eq!(gai.card.map(|c| c.status), Some(CardStatus::Revoked));
        assert_eq!(
            get("deceased").card.map(|c| c.status),
            Some(CardStatus::Revoked)
        );
        assert!(get("no-phone").phone.is_none());
        assert_eq!(get("vneid-pending").eid_level, EidLevel::Level1Pending);
        let several = get("several-old-ids");
        assert_eq!(several.previous_old_id_numbers.len(), 2);
        assert_eq!(
            several.old_id_number.map(|o| o.as_str().to_owned()),
            Some("029990023".to_owned())
        );
        assert_eq!(
            get("partial-birth-date").date_of_birth,
            PartialDate::Year(1948)
        );
        assert_eq!(
            get("partial-birth-month").date_of_birth,
            PartialDate::YearMonth(1952, 5)
        );
        let complete = get("complete-adult");
        for field in lienthong_domain::CitizenField::ALL {
            assert!(complete.has(*field), "complete-adult lacks {field:?}");
        }
        assert_eq!(
            complete.provenance.len(),
            lienthong_domain::CitizenField::ALL.len()
        );
        assert_ne!(complete.current_address, complete.permanent_address);
        assert_eq!(get("similar-name").full_name, "Nguyễn Văn Hạ");
        assert_eq!(get("thanh-hoa-adult").permanent_address.province_code(), 38);
    }
}
