//! Verification of declared values against the record, field by field: which normalisations
//! were needed, and an explanation that never contains the record's own value.

use lienthong_domain::{
    Address, CitizenField, CitizenRecord, FormerCommune, Gender, PartialDate, Share,
    former_communes,
};
use std::collections::HashMap;
use std::sync::OnceLock;
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// The outcome for one declared field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Match,
    Mismatch,
    NotOnRecord,
    NotProvided,
    MatchIgnoringDiacritics,
    /// The declared text is in a legacy Vietnamese font encoding read as Unicode: not compared.
    LegacyEncoding,
    /// The declared number is one the citizen held before a later one replaced it.
    Superseded,
}

/// A normalisation applied to both sides before comparing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Normalization {
    UnicodeNfc,
    Case,
    Whitespace,
    Diacritics,
    DateFormat,
    Address,
    TonePlacement,
    /// An address in the pre-2025 units read as the 2025 commune it became.
    Pre2025Units,
}

impl Normalization {
    fn label(self) -> (&'static str, &'static str) {
        match self {
            Normalization::UnicodeNfc => ("Unicode NFC", "chuẩn Unicode NFC"),
            Normalization::Case => ("letter case", "chữ hoa/chữ thường"),
            Normalization::Whitespace => ("spacing", "khoảng trắng"),
            Normalization::Diacritics => ("diacritics removed", "bỏ dấu"),
            Normalization::DateFormat => ("date format", "định dạng ngày"),
            Normalization::Address => (
                "address abbreviations and punctuation",
                "viết tắt đơn vị hành chính và dấu câu",
            ),
            Normalization::TonePlacement => (
                "tone-mark placement (Thuỳ = Thùy)",
                "vị trí dấu thanh (Thuỳ = Thùy)",
            ),
            Normalization::Pre2025Units => (
                "pre-2025 units read as the 2025 commune they became",
                "đơn vị hành chính trước 01/7/2025 quy đổi sang xã, phường mới",
            ),
        }
    }
}

/// The verification of one claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldCheck {
    pub field: String,
    pub outcome: Outcome,
    pub normalizations: Vec<Normalization>,
    pub explanation: String,
    pub explanation_vi: String,
}

/// The overall result of a verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overall {
    Match,
    Mismatch,
    NeedsReview,
}

/// Why a claim cannot be checked at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClaimError {
    #[error("{field:?} cannot be verified by value; verifiable fields: {VERIFIABLE_LIST}")]
    NotVerifiable { field: String },
    #[error(
        "{value:?} is not a date: use dd/mm/yyyy, mm/yyyy, yyyy, yyyy-mm-dd, dd-mm-yyyy, dd.mm.yyyy or ddmmyyyy"
    )]
    BadDate { value: String },
    #[error("{value:?} is not a gender: use \"Nam\" or \"Nữ\"")]
    BadGender { value: String },
}

/// The fields whose declared values can be compared with the record.
pub const VERIFIABLE: &[CitizenField] = &[
    CitizenField::PersonalId,
    CitizenField::OldIdNumber,
    CitizenField::FullName,
    CitizenField::DateOfBirth,
    CitizenField::Gender,
    CitizenField::Nationality,
    CitizenField::Ethnicity,
    CitizenField::Religion,
    CitizenField::PlaceOfBirth,
    CitizenField::PlaceOfOrigin,
    CitizenField::PermanentAddress,
    CitizenField::TemporaryAddress,
    CitizenField::CurrentAddress,
    CitizenField::Father,
    CitizenField::Mother,
    CitizenField::Spouse,
    CitizenField::Phone,
    CitizenField::HealthInsuranceNumber,
];

const VERIFIABLE_LIST: &str = "personal_id, old_id_number, full_name, date_of_birth, gender, nationality, ethnicity, religion, place_of_birth, place_of_origin, permanent_address, temporary_address, current_address, father, mother, spouse (their full name), phone, health_insurance_number";

/// The overall result over the field checks: any mismatch is a mismatch; anything short of a
/// plain match needs an officer's review.
pub fn overall(checks: &[FieldCheck]) -> Overall {
    if checks.iter().any(|c| c.outcome == Outcome::Mismatch) {
        Overall::Mismatch
    } else if checks.iter().all(|c| c.outcome == Outcome::Match) {
        Overall::Match
    } else {
        Overall::NeedsReview
    }
}

/// Which legacy Vietnamese font encoding a text seems to be in, read as Unicode (Windows-1252 /
/// Latin-1): TCVN3 (ABC) puts its accented letters on Latin-1 symbols ("NguyÔn V¨n Hµ"),
/// VNI-Windows writes a base letter then a Latin-1 mark ("Nguyeãn Vaên Haø"). Unicode
/// Vietnamese uses none of the Latin-1 characters these produce.
pub fn legacy_encoding(text: &str) -> Option<&'static str> {
    // Latin-1 letters Vietnamese itself uses (in precomposed Unicode).
    const VIETNAMESE: &str = "àáâãèéêìíòóôõùúýÀÁÂÃÈÉÊÌÍÒÓÔÕÙÚÝ";
    // Marks VNI-Windows writes after a base letter.
    const VNI_MARKS: &str = "øûïöäåëØÛÏÖÄÅË";
    let foreign: Vec<char> = text
        .chars()
        .filter(|c| ('\u{a0}'..='\u{ff}').contains(c) && !VIETNAMESE.contains(*c))
        .collect();
    if foreign.is_empty() {
        return None;
    }
    // TCVN3 alone puts letters on the symbols of U+00A1..U+00BF ("V¨n", "H¹") and on Þ (ị);
    // otherwise a mark after a letter is VNI's ("Haø"). TCVN3's other letters share Latin-1
    // with VNI's marks ("Ngäc"), so the symbols are looked for first.
    let tcvn_symbol = foreign
        .iter()
        .any(|c| ('\u{a1}'..='\u{bf}').contains(c) || *c == 'Þ');
    let vni = !tcvn_symbol
        && text
            .chars()
            .zip(text.chars().skip(1))
            .any(|(a, b)| a.is_ascii_alphabetic() && VNI_MARKS.contains(b));
    Some(if vni { "VNI-Windows" } else { "TCVN3 (ABC)" })
}

/// Checks one declared value against the record.
pub fn check(
    record: &CitizenRecord,
    field: CitizenField,
    declared: &str,
) -> Result<FieldCheck, ClaimError> {
    use CitizenField as F;
    let name = field.as_str().to_owned();
    if declared.trim().is_empty() {
        return Ok(verdict(name, Outcome::NotProvided, vec![]));
    }
    if let Some(encoding) = legacy_encoding(declared) {
        return Ok(FieldCheck {
            explanation: format!(
                "the declared text looks like Vietnamese in the legacy {encoding} encoding read as Unicode; it was not compared: convert the source system's text to Unicode and declare again"
            ),
            explanation_vi: format!(
                "giá trị khai có vẻ là tiếng Việt mã {encoding} cũ bị đọc như Unicode nên không được đối chiếu: đề nghị chuyển dữ liệu của hệ thống nguồn sang Unicode rồi khai lại"
            ),
            ..verdict(name, Outcome::LegacyEncoding, vec![])
        });
    }
    let on_record: Option<String> = match field {
        F::PersonalId => Some(record.personal_id.as_str().to_owned()),
        F::OldIdNumber => return Ok(check_old_id(name, record, declared)),
        F::FullName => Some(record.full_name.clone()),
        F::DateOfBirth => return check_date(name, record.date_of_birth, declared),
        F::Gender => return check_gender(name, record.gender, declared),
        F::Nationality => return Ok(check_nationality(name, &record.nationality, declared)),
        F::Ethnicity => Some(record.ethnicity.clone()),
        F::Religion => Some(record.religion.clone()),
        F::PlaceOfBirth => {
            return Ok(check_address(
                name,
                &record.place_of_birth.formatted(),
                declared,
            ));
        }
        F::PlaceOfOrigin => {
            return Ok(check_address(
                name,
                &record.place_of_origin.formatted(),
                declared,
            ));
        }
        F::PermanentAddress => {
            return Ok(address_field(
                name,
                Some(&record.permanent_address),
                declared,
            ));
        }
        F::TemporaryAddress => {
            return Ok(address_field(
                name,
                record.temporary_address.as_ref(),
                declared,
            ));
        }
        F::CurrentAddress => {
            return Ok(address_field(name, Some(&record.current_address), declared));
        }
        F::Father => record.father.as_ref().map(|r| r.full_name.clone()),
        F::Mother => record.mother.as_ref().map(|r| r.full_name.clone()),
        F::Spouse => record.spouse.as_ref().map(|r| r.full_name.clone()),
        F::Phone => return Ok(check_phone(name, record.phone.as_deref(), declared)),
        F::HealthInsuranceNumber => record.health_insurance_number.clone(),
        _ => return Err(ClaimError::NotVerifiable { field: name }),
    };
    Ok(match on_record {
        None => verdict(name, Outcome::NotOnRecord, vec![]),
        Some(value) => compare_text(name, &value, declared, false),
    })
}

fn address_field(name: String, on_record: Option<&Address>, declared: &str) -> FieldCheck {
    match on_record {
        None => verdict(name, Outcome::NotOnRecord, vec![]),
        Some(a) => {
            let plain = check_address(name, &a.formatted(), declared);
            if plain.outcome != Outcome::Mismatch {
                return plain;
            }
            check_former_units(&plain.field, a, declared).unwrap_or(plain)
        }
    }
}

/// An address part as compared: Unicode NFC, spacing, case, unit abbreviations and punctuation,
/// tone placement; the province without its "Tỉnh"/"Thành phố".
fn address_key(s: &str) -> Vec<String> {
    let nfc: String = s.nfc().collect();
    normalize_address(&nfc)
        .split(", ")
        .map(canonical_tones)
        .collect()
}

/// The former communes by the key of "commune, district, province" as the pre-2025 units wrote
/// them.
fn former_index() -> &'static HashMap<Vec<String>, Vec<&'static FormerCommune>> {
    static INDEX: OnceLock<HashMap<Vec<String>, Vec<&'static FormerCommune>>> = OnceLock::new();
    INDEX.get_or_init(|| {
        let mut index: HashMap<Vec<String>, Vec<&'static FormerCommune>> = HashMap::new();
        for c in &former_communes().communes {
            index
                .entry(address_key(&c.formatted()))
                .or_default()
                .push(c);
        }
        index
    })
}

/// A declared address written in the pre-2025 units ("…, Xã Cẩm Quang, Huyện Cẩm Xuyên, Tỉnh Hà
/// Tĩnh"), read through the conversion table as the 2025 commune it became. None when the
/// declared address does not end in a pre-2025 commune, district and province, or when its
/// commune became the one on record but the rest of the address differs (a plain mismatch).
fn check_former_units(name: &str, on_record: &Address, declared: &str) -> Option<FieldCheck> {
    let parts = address_key(declared);
    let split = parts.len().checked_sub(3)?;
    let (detail, units) = parts.split_at(split);
    let candidates = former_index().get(units)?;
    let record = address_key(&on_record.formatted());
    let record_detail = &record[..record.len().saturating_sub(2)];
    let became = candidates
        .iter()
        .find_map(|c| c.share_in(on_record.ward).map(|share| (*c, share)));
    let old = |c: &FormerCommune| {
        let district = &c.district.district().name;
        format!("{}, {district}", c.name)
    };
    match became {
        Some(_) if detail != record_detail => None,
        Some((c, share)) => {
            let canonical = match &on_record.detail {
                d if d.is_empty() => c.formatted(),
                d => format!("{d}, {}", c.formatted()),
            };
            let mut normalizations = vec![Normalization::Pre2025Units];
            if declared.trim() != canonical {
                normalizations.insert(0, Normalization::Address);
            }
            let (how, how_vi) = match share {
                Share::Whole => ("became", "đã được sắp xếp toàn bộ vào"),
                Share::Part => ("became in part", "đã được sắp xếp một phần vào"),
            };
            Some(FieldCheck {
                explanation: format!(
                    "matches the record: the address is written in the pre-2025 units; {} {how} the 2025 commune on record on 1 July 2025",
                    old(c)
                ),
                explanation_vi: format!(
                    "khớp với dữ liệu trong CSDL: địa chỉ ghi theo đơn vị hành chính trước 01/7/2025; {} {how_vi} xã, phường trong CSDL từ 01/7/2025",
                    old(c)
                ),
                ..verdict(name.to_owned(), Outcome::Match, normalizations)
            })
        }
        None => {
            let c = candidates.first()?;
            let now: Vec<&str> = c
                .became
                .iter()
                .map(|(w, _)| w.ward().name.as_str())
                .collect();
            let now = now.join(", ");
            Some(FieldCheck {
                explanation: format!(
                    "differs from the record: the address is written in the pre-2025 units and {} became {now} on 1 July 2025, not the commune on record; check the citizen's documents",
                    old(c)
                ),
                explanation_vi: format!(
                    "không khớp với dữ liệu trong CSDL: địa chỉ ghi theo đơn vị hành chính trước 01/7/2025, {} nay là {now}, không phải xã, phường trong CSDL; đề nghị kiểm tra giấy tờ của công dân",
                    old(c)
                ),
                ..verdict(
                    name.to_owned(),
                    Outcome::Mismatch,
                    vec![Normalization::Pre2025Units],
                )
            })
        }
    }
}

fn check_address(name: String, on_record: &str, declared: &str) -> FieldCheck {
    compare_text(name, on_record, declared, true)
}

type Step = (Normalization, fn(&str) -> String);

/// Compares two strings through the normalisation ladder, stopping at the first equality.
fn compare_text(name: String, on_record: &str, declared: &str, address: bool) -> FieldCheck {
    if on_record == declared {
        return verdict(name, Outcome::Match, vec![]);
    }
    let mut steps: Vec<Step> = vec![
        (Normalization::UnicodeNfc, |s| s.nfc().collect()),
        (Normalization::Whitespace, collapse_whitespace),
        (Normalization::Case, |s| s.to_lowercase()),
    ];
    if address {
        steps.push((Normalization::Address, normalize_address));
    }
    steps.push((Normalization::TonePlacement, canonical_tones));
    let apply = |chosen: &[Step], s: &str| chosen.iter().fold(s.to_owned(), |acc, (_, f)| f(&acc));
    let equal = |chosen: &[Step]| apply(chosen, on_record) == apply(chosen, declared);
    let equal_without_diacritics = |chosen: &[Step]| {
        strip_diacritics(&apply(chosen, on_record)) == strip_diacritics(&apply(chosen, declared))
    };
    let (outcome, mut chosen): (Outcome, Vec<Step>) =
        match (1..=steps.len()).find(|&k| equal(&steps[..k])) {
            Some(k) => (Outcome::Match, steps[..k].to_vec()),
            None if equal_without_diacritics(&steps) => {
                (Outcome::MatchIgnoringDiacritics, steps.clone())
            }
            None => return verdict(name, Outcome::Mismatch, vec![]),
        };
    // Keep only the normalisations the result needs: drop each one whose absence changes nothing.
    let holds = |c: &[Step]| match outcome {
        Outcome::Match => equal(c),
        _ => equal_without_diacritics(c),
    };
    let mut i = 0;
    while i < chosen.len() {
        let mut without = chosen.clone();
        without.remove(i);
        if holds(&without) {
            chosen = without;
        } else {
            i += 1;
        }
    }
    let mut applied: Vec<Normalization> = chosen.iter().map(|(n, _)| *n).collect();
    if outcome == Outcome::MatchIgnoringDiacritics {
        applied.push(Normalization::Diacritics);
    }
    verdict(name, outcome, applied)
}

fn collapse_whitespace(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

const TONE_MARKS: [char; 5] = ['\u{300}', '\u{301}', '\u{303}', '\u{309}', '\u{323}'];

/// Each word as its letters without the tone mark, followed by the tone: a Vietnamese syllable
/// carries one tone, wherever the old or new convention puts it.
fn canonical_tones(s: &str) -> String {
    s.split(' ')
        .map(|word| {
            let mut tone = None;
            let base: String = word
                .nfd()
                .filter(|c| {
                    if TONE_MARKS.contains(c) {
                        tone = Some(*c);
                        false
                    } else {
                        true
                    }
                })
                .nfc()
                .collect();
            match tone {
                Some(t) => format!("{base}#{:x}", u32::from(t)),
                None => base,
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Removes every diacritic (and the tone tag `canonical_tones` appends), and maps đ to d.
fn strip_diacritics(s: &str) -> String {
    s.split(' ')
        .map(|word| {
            word.split('#')
                .next()
                .unwrap_or_default()
                .nfd()
                .filter(|c| !is_combining_mark(*c))
                .map(|c| match c {
                    'đ' => 'd',
                    'Đ' => 'D',
                    c => c,
                })
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Expands unit-type abbreviations ("P." → "phường", "TP." → "thành phố"), drops punctuation, a
/// trailing "Việt Nam" and the word "tỉnh"/"thành phố" before the province. The unit type itself
/// still counts: "xã cẩm xuyên" is not "huyện cẩm xuyên". Folds case to read abbreviations.
fn normalize_address(s: &str) -> String {
    let s = s.to_lowercase();
    const ABBREVIATIONS: [(&str, &str); 8] = [
        ("tp.", "thành phố "),
        ("tt.", "thị trấn "),
        ("p.", "phường "),
        ("x.", "xã "),
        ("q.", "quận "),
        ("h.", "huyện "),
        ("t.", "tỉnh "),
        ("tx.", "thị xã "),
    ];
    let mut parts: Vec<String> = s
        .split([',', ';'])
        .map(|part| {
            let mut p = part.trim().to_owned();
            for (abbr, full) in ABBREVIATIONS {
                if let Some(rest) = p.strip_prefix(abbr) {
                    p = format!("{full}{}", rest.trim_start());
                    break;
                }
            }
            let p: String = p
                .chars()
                .map(|c| {
                    if matches!(c, '.' | '-' | '–') {
                        ' '
                    } else {
                        c
                    }
                })
                .collect();
            collapse_whitespace(&p)
        })
        .filter(|p| !p.is_empty())
        .collect();
    if parts
        .last()
        .is_some_and(|p| p == "việt nam" || p == "vn" || p == "viet nam")
    {
        parts.pop();
    }
    if let Some(last) = parts.last_mut() {
        for prefix in ["tỉnh ", "thành phố "] {
            if let Some(rest) = last.strip_prefix(prefix) {
                *last = rest.to_owned();
                break;
            }
        }
    }
    parts.join(", ")
}

fn check_date(
    name: String,
    on_record: PartialDate,
    declared: &str,
) -> Result<FieldCheck, ClaimError> {
    let d = PartialDate::parse(declared).map_err(|_| ClaimError::BadDate {
        value: declared.chars().take(40).collect(),
    })?;
    let reformatted = d.to_string() != declared.trim();
    let norms = if reformatted {
        vec![Normalization::DateFormat]
    } else {
        vec![]
    };
    let agree_on_common = d.year() == on_record.year()
        && (d.month().is_none() || on_record.month().is_none() || d.month() == on_record.month())
        && (d.day().is_none() || on_record.day().is_none() || d.day() == on_record.day());
    let precision = |p: PartialDate| match p {
        PartialDate::Year(_) => 0,
        PartialDate::YearMonth(..) => 1,
        PartialDate::Full(..) => 2,
    };
    // A declared date less precise than the record is a mismatch, and nothing in the reply
    // (outcome, normalisations, explanation) tells it from any other mismatch: otherwise a
    // caller could read a birth date by declaring the year, then the month, then the day.
    let mismatch = || {
        FieldCheck {
        explanation: "differs from the record (a date less precise than the record never matches: declare day, month and year); check the citizen's documents".into(),
        explanation_vi: "không khớp với dữ liệu trong CSDL (ngày khai thiếu so với CSDL không bao giờ được coi là khớp: khai đủ ngày, tháng, năm); đề nghị kiểm tra giấy tờ của công dân".into(),
        ..verdict(name.clone(), Outcome::Mismatch, vec![])
    }
    };
    // Many registers hold 01/01 where the day and month were never known: a full date
    // declared against that placeholder, in the same year, needs an officer's eye.
    let placeholder = matches!(on_record, PartialDate::Full(y, 1, 1) if y == d.year())
        && matches!(d, PartialDate::Full(_, m, day) if (m, day) != (1, 1));
    Ok(if placeholder {
        FieldCheck {
            explanation: "the record holds 01/01, the placeholder many registers keep for an unknown day and month; the year agrees, the day and month cannot be confirmed: check the citizen's documents".into(),
            explanation_vi: "CSDL ghi 01/01, là giá trị thay thế nhiều sổ hộ tịch dùng khi không rõ ngày, tháng; năm khớp, ngày và tháng không thể xác nhận: đề nghị kiểm tra giấy tờ của công dân".into(),
            ..verdict(name, Outcome::NotOnRecord, norms)
        }
    } else if !agree_on_common || precision(d) < precision(on_record) {
        mismatch()
    } else if precision(d) == precision(on_record) {
        verdict(name, Outcome::Match, norms)
    } else {
        FieldCheck {
            explanation: "the record holds this date only partially (year or month and year); the declared parts that are on record agree, the rest cannot be confirmed".into(),
            explanation_vi: "CSDL chỉ lưu một phần ngày này (năm hoặc tháng và năm); phần có trong CSDL khớp, phần còn lại không thể xác nhận".into(),
            ..verdict(name, Outcome::NotOnRecord, norms)
        }
    })
}

fn check_gender(name: String, on_record: Gender, declared: &str) -> Result<FieldCheck, ClaimError> {
    let folded = strip_diacritics(&collapse_whitespace(declared).to_lowercase());
    let g = match folded.as_str() {
        "nam" | "male" | "m" => Gender::Male,
        "nu" | "female" | "f" => Gender::Female,
        _ => {
            return Err(ClaimError::BadGender {
                value: declared.chars().take(20).collect(),
            });
        }
    };
    let exact = declared == on_record.label_vi();
    Ok(match (g == on_record, exact) {
        (false, _) => verdict(name, Outcome::Mismatch, vec![]),
        (true, true) => verdict(name, Outcome::Match, vec![]),
        (true, false) => verdict(name, Outcome::Match, vec![Normalization::Case]),
    })
}

fn check_nationality(name: String, on_record: &str, declared: &str) -> FieldCheck {
    let folded = strip_diacritics(&collapse_whitespace(declared).to_lowercase());
    let code = match folded.as_str() {
        "viet nam" | "vietnam" | "vn" | "vnm" => "VN".to_owned(),
        other => other.to_uppercase(),
    };
    if declared == on_record {
        verdict(name, Outcome::Match, vec![])
    } else if code == on_record {
        verdict(name, Outcome::Match, vec![Normalization::Case])
    } else {
        verdict(name, Outcome::Mismatch, vec![])
    }
}

/// The declared 9-digit number against the last one on record and those it replaced.
fn check_old_id(name: String, record: &CitizenRecord, declared: &str) -> FieldCheck {
    let Some(last) = &record.old_id_number else {
        return verdict(name, Outcome::NotOnRecord, vec![]);
    };
    let digits: String = declared.chars().filter(|c| !c.is_whitespace()).collect();
    let spacing = if digits == declared {
        vec![]
    } else {
        vec![Normalization::Whitespace]
    };
    if last.as_str() == digits {
        verdict(name, Outcome::Match, spacing)
    } else if record
        .previous_old_id_numbers
        .iter()
        .any(|o| o.as_str() == digits)
    {
        verdict(name, Outcome::Superseded, spacing)
    } else {
        verdict(name, Outcome::Mismatch, vec![])
    }
}

fn check_phone(name: String, on_record: Option<&str>, declared: &str) -> FieldCheck {
    let Some(on_record) = on_record else {
        return verdict(name, Outcome::NotOnRecord, vec![]);
    };
    let digits = |s: &str| -> String {
        let d: String = s.chars().filter(char::is_ascii_digit).collect();
        match d.strip_prefix("84") {
            Some(rest) if s.trim_start().starts_with('+') || d.len() == 11 => format!("0{rest}"),
            _ => d,
        }
    };
    if declared == on_record {
        verdict(name, Outcome::Match, vec![])
    } else if digits(declared) == digits(on_record) {
        verdict(name, Outcome::Match, vec![Normalization::Whitespace])
    } else {
        verdict(name, Outcome::Mismatch, vec![])
    }
}

/// The verdict with its explanations, none of which mention the record's value.
fn verdict(field: String, outcome: Outcome, normalizations: Vec<Normalization>) -> FieldCheck {
    let after = |en: &str, vi: &str| -> (String, String) {
        if normalizations.is_empty() {
            (en.to_owned(), vi.to_owned())
        } else {
            let (ens, vis): (Vec<_>, Vec<_>) = normalizations.iter().map(|n| n.label()).unzip();
            (
                format!("{en} after normalising {}", ens.join(", ")),
                format!("{vi} sau khi chuẩn hóa {}", vis.join(", ")),
            )
        }
    };
    let (explanation, explanation_vi) = match outcome {
        Outcome::Match => after("matches the record", "khớp với dữ liệu trong CSDL"),
        Outcome::Mismatch => (
            "differs from the record; check the citizen's documents".into(),
            "không khớp với dữ liệu trong CSDL; đề nghị kiểm tra giấy tờ của công dân".into(),
        ),
        Outcome::NotOnRecord => (
            "the record holds no value for this field".into(),
            "CSDL không có dữ liệu cho trường này".into(),
        ),
        Outcome::NotProvided => (
            "no value was declared".into(),
            "công dân chưa khai giá trị".into(),
        ),
        Outcome::LegacyEncoding => (
            "the declared text is in a legacy encoding; it was not compared".into(),
            "giá trị khai ở mã cũ; không được đối chiếu".into(),
        ),
        Outcome::Superseded => (
            "is a number the citizen held before a later one replaced it: the same person, but the source system holds a superseded number; update it (look the citizen up by personal ID)".into(),
            "là số CMND công dân được cấp trước đây và đã được thay bằng số khác: cùng một người nhưng hệ thống nguồn đang lưu số cũ; đề nghị cập nhật (tra cứu công dân theo số định danh cá nhân)".into(),
        ),
        Outcome::MatchIgnoringDiacritics => (
            "agrees with the record only once diacritics are removed: not a match, an officer must check the source document".into(),
            "chỉ giống dữ liệu trong CSDL khi bỏ dấu: không được coi là khớp, cán bộ cần đối chiếu giấy tờ gốc".into(),
        ),
    };
    FieldCheck {
        field,
        outcome,
        normalizations,
        explanation,
        explanation_vi,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lienthong_domain::{CitizenRecord, Gender, PartialDate};

    /// The "complete-adult" persona's record.
    fn record() -> CitizenRecord {
        let id = mock_csdl::personas::persona("complete-adult")
            .unwrap()
            .personal_id;
        mock_csdl::personas::batch()
            .citizens
            .into_iter()
            .find(|c| c.personal_id.as_str() == id)
            .unwrap()
    }

    fn check_name(on_record: &str, declared: &str) -> (Outcome, Vec<Normalization>) {
        let mut r = record();
        r.full_name = on_record.to_owned();
        let c = check(&r, CitizenField::FullName, declared).unwrap();
        assert!(
            !c.explanation.contains(on_record) && !c.explanation_vi.contains(on_record),
            "the explanation reveals the record: {}",
            c.explanation
        );
        (c.outcome, c.normalizations)
    }

    #[test]
    fn names_through_the_normalisation_ladder() {
        use Normalization::*;
        use Outcome::*;
        let nfd: String = "Nguyễn Thị Thùy Linh".nfd().collect();
        let table: Vec<(&str, &str, Outcome, Vec<Normalization>)> = vec![
            (
                "Nguyễn Thị Thùy Linh",
                "Nguyễn Thị Thùy Linh",
                Match,
                vec![],
            ),
            ("Nguyễn Thị Thùy Linh", &nfd, Match, vec![UnicodeNfc]),
            (
                "Nguyễn Thị Thùy Linh",
                "  Nguyễn  Thị Thùy Linh ",
                Match,
                vec![Whitespace],
            ),
            (
                "Nguyễn Thị Thùy Linh",
                "NGUYỄN THỊ THÙY LINH",
                Match,
                vec![Case],
            ),
            (
                "Nguyễn Thị Thùy Linh",
                "Nguyễn Thị Thuỳ Linh",
                Match,
                vec![TonePlacement],
            ),
            (
                "Nguyễn Thị Thùy Linh",
                "Nguyen Thi Thuy Linh",
                MatchIgnoringDiacritics,
                vec![Diacritics],
            ),
            (
                "Nguyễn Thị Thùy Linh",
                "nguyen thi thuy linh",
                MatchIgnoringDiacritics,
                vec![Case, Diacritics],
            ),
            (
                "Nguyễn Văn Hạ",
                "Nguyễn Văn Hà",
                MatchIgnoringDiacritics,
                vec![Diacritics],
            ),
            ("Đỗ Thị Huyền", "Đỗ Thị Thu Huyền", Mismatch, vec![]),
            (
                "Đỗ Thị Huyền",
                "Do Thi Huyen",
                MatchIgnoringDiacritics,
                vec![Diacritics],
            ),
        ];
        for (on_record, declared, outcome, norms) in table {
            let got = check_name(on_record, declared);
            assert_eq!(got, (outcome, norms), "{on_record:?} vs {declared:?}");
        }
    }

    #[test]
    fn legacy_encodings_are_recognised_and_never_compared() {
        assert_eq!(legacy_encoding("NguyÔn V¨n Hµ"), Some("TCVN3 (ABC)"));
        assert_eq!(legacy_encoding("Traàn Thò Minh Thö"), Some("VNI-Windows"));
        assert_eq!(legacy_encoding("Nguyeãn Vaên Haø"), Some("VNI-Windows"));
        // ọ is "ä" in TCVN3, a VNI mark too: the TCVN3 letter Þ (ị) decides.
        assert_eq!(legacy_encoding("NguyÔn ThÞ Ngäc DiÔm"), Some("TCVN3 (ABC)"));
        for unicode in [
            "Nguyễn Thị Thùy Linh",
            "Đặng Quốc Việt",
            "Số 24 phố Hàng Bạc, Phường Hoàn Kiếm, Thành phố Hà Nội",
            "ÀÁÂÃÈÉÊÌÍÒÓÔÕÙÚÝ àáâãèéêìíòóôõùúý Ơ Ư ă đ",
            "Lê Văn Hùng",
        ] {
            assert_eq!(legacy_encoding(unicode), None, "{unicode}");
        }
        let mut r = record();
        r.full_name = "Nguyễn Văn Hà".into();
        let got = check(&r, CitizenField::FullName, "NguyÔn V¨n Hµ").unwrap();
        assert_eq!(got.outcome, Outcome::LegacyEncoding);
        assert!(got.explanation.contains("TCVN3"), "{}", got.explanation);
        assert_eq!(overall(&[got]), Overall::NeedsReview);
    }

    #[test]
    fn dates_partial_and_full() {
        let mut r = record();
        r.date_of_birth = PartialDate::ymd(1970, 1, 1).unwrap();
        let c =
            |r: &CitizenRecord, s: &str| check(r, CitizenField::DateOfBirth, s).unwrap().outcome;
        assert_eq!(c(&r, "01/01/1970"), Outcome::Match);
        assert_eq!(c(&r, "1970-01-01"), Outcome::Match);
        // 01/01 is the placeholder of an unknown day and month: another day of that year cannot
        // be confirmed; another year is a mismatch.
        assert_eq!(c(&r, "12/08/1970"), Outcome::NotOnRecord);
        assert_eq!(c(&r, "12.08.1970"), Outcome::NotOnRecord);
        assert_eq!(c(&r, "12081971"), Outcome::Mismatch);
        r.date_of_birth = PartialDate::ymd(1970, 3, 1).unwrap();
        assert_eq!(c(&r, "12/08/1970"), Outcome::Mismatch, "not a placeholder");
        assert_eq!(c(&r, "01-03-1970"), Outcome::Match);
        r.date_of_birth = PartialDate::ymd(1970, 1, 1).unwrap();
        assert_eq!(
            c(&r, "1970"),
            Outcome::Mismatch,
            "less precise than the record"
        );
        // Nothing tells a less precise date that agrees from one that does not.
        let whole = |s: &str| check(&r, CitizenField::DateOfBirth, s).unwrap();
        for (agrees, differs) in [("1970", "1971"), ("01/1970", "02/1970"), ("1970", "1969")] {
            assert_eq!(whole(agrees), whole(differs), "{agrees} vs {differs}");
        }
        r.date_of_birth = PartialDate::Year(1948);
        assert_eq!(c(&r, "1948"), Outcome::Match);
        assert_eq!(c(&r, "03/04/1948"), Outcome::NotOnRecord);
        assert_eq!(c(&r, "03/04/1949"), Outcome::Mismatch);
        assert!(check(&r, CitizenField::DateOfBirth, "yesterday").is_err());
        let f = check(&r, CitizenField::DateOfBirth, "1948-01-01").unwrap();
        assert!(!f.explanation.contains("1948"));
    }

    #[test]
    fn addresses_keep_the_unit_type() {
        let r = record();
        let formatted = r.permanent_address.formatted();
        let ok = |declared: &str| check(&r, CitizenField::PermanentAddress, declared).unwrap();
        assert_eq!(ok(&formatted).outcome, Outcome::Match);
        let abbreviated = formatted.replace("Phường ", "P. ").replace("Tỉnh ", "");
        assert_ne!(abbreviated, formatted);
        let c = ok(&format!("{abbreviated}, Việt Nam"));
        assert_eq!(c.outcome, Outcome::Match, "{abbreviated}");
        assert!(c.normalizations.contains(&Normalization::Address));
        let other_type = formatted.replace("Phường ", "Huyện ");
        assert_eq!(ok(&other_type).outcome, Outcome::Mismatch);
    }

    #[test]
    fn an_address_in_the_pre_2025_units_reads_as_the_commune_it_became() {
        let mut r = record();
        let at = |ward: &str| Address {
            detail: "Thôn Tân Hòa".into(),
            ward: lienthong_domain::WardCode::parse(ward).unwrap(),
        };
        r.permanent_address = at("18673"); // Xã Cẩm Xuyên
        let ok = |r: &CitizenRecord, declared: &str| {
            check(r, CitizenField::PermanentAddress, declared).unwrap()
        };
        let c = ok(
            &r,
            "Thôn Tân Hòa, Xã Cẩm Quang, Huyện Cẩm Xuyên, Tỉnh Hà Tĩnh",
        );
        assert_eq!(c.outcome, Outcome::Match, "{}", c.explanation);
        assert_eq!(c.normalizations, [Normalization::Pre2025Units]);
        assert!(
            c.explanation
                .contains("Xã Cẩm Quang, Huyện Cẩm Xuyên became")
        );
        assert!(!c.explanation.contains("Xã Cẩm Xuyên"), "{}", c.explanation);
        let c = ok(&r, "thôn tân hoà, X. Cẩm Quang, H. Cẩm Xuyên, Hà Tĩnh");
        assert_eq!(c.outcome, Outcome::Match);
        assert_eq!(
            c.normalizations,
            [Normalization::Address, Normalization::Pre2025Units]
        );
        // The township of the same name also became Xã Cẩm Xuyên.
        let c = ok(
            &r,
            "Thôn Tân Hòa, TT. Cẩm Xuyên, Huyện Cẩm Xuyên, Tỉnh Hà Tĩnh",
        );
        assert_eq!(c.outcome, Outcome::Match);
        // Another commune of the old district became another 2025 commune: reported as such.
        let c = ok(
            &r,
            "Thôn Tân Hòa, Xã Cẩm Nhượng, Huyện Cẩm Xuyên, Tỉnh Hà Tĩnh",
        );
        assert_eq!(c.outcome, Outcome::Mismatch);
        assert_eq!(c.normalizations, [Normalization::Pre2025Units]);
        assert!(
            c.explanation.contains("became Xã Thiên Cầm"),
            "{}",
            c.explanation
        );
        // The right commune with another hamlet is a plain mismatch.
        let c = ok(&r, "Thôn 5, Xã Cẩm Quang, Huyện Cẩm Xuyên, Tỉnh Hà Tĩnh");
        assert_eq!(c.outcome, Outcome::Mismatch);
        assert!(c.normalizations.is_empty());
        // The old district alone names no commune: it is not read as one.
        let c = ok(&r, "Thôn Tân Hòa, Huyện Cẩm Xuyên, Tỉnh Hà Tĩnh");
        assert_eq!(c.outcome, Outcome::Mismatch);
        assert!(c.normalizations.is_empty());
        // Phường Đại Nài was split between Thành Sen and Hà Huy Tập.
        r.permanent_address = at("18652"); // Phường Hà Huy Tập
        let c = ok(
            &r,
            "Thôn Tân Hòa, Phường Đại Nài, Thành phố Hà Tĩnh, Tỉnh Hà Tĩnh",
        );
        assert_eq!(c.outcome, Outcome::Match);
        assert!(c.explanation.contains("became in part"));
        r.permanent_address = at("00070"); // Phường Hoàn Kiếm, Hà Nội
        let c = ok(&r, "Thôn Tân Hòa, Phường Hàng Bạc, Quận Hoàn Kiếm, Hà Nội");
        assert_eq!(c.outcome, Outcome::Match, "{}", c.explanation);
    }

    #[test]
    fn old_numbers_the_last_and_the_superseded() {
        let mut r = record();
        r.old_id_number = Some(lienthong_domain::OldIdNumber::parse("029990023").unwrap());
        r.previous_old_id_numbers =
            vec![lienthong_domain::OldIdNumber::parse("189990023").unwrap()];
        let outcome = |r: &CitizenRecord, declared: &str| {
            check(r, CitizenField::OldIdNumber, declared).unwrap()
        };
        assert_eq!(outcome(&r, "029990023").outcome, Outcome::Match);
        assert_eq!(outcome(&r, "029 990 023").outcome, Outcome::Match);
        let superseded = outcome(&r, "189990023");
        assert_eq!(superseded.outcome, Outcome::Superseded);
        assert!(!superseded.explanation.contains("029990023"));
        assert_eq!(overall(&[superseded]), Overall::NeedsReview);
        assert_eq!(outcome(&r, "189990024").outcome, Outcome::Mismatch);
        r.old_id_number = None;
        r.previous_old_id_numbers.clear();
        assert_eq!(outcome(&r, "189990023").outcome, Outcome::NotOnRecord);
    }

    #[test]
    fn other_fields() {
        let mut r = record();
        r.phone = None;
        assert_eq!(
            check(&r, CitizenField::Phone, "0912345678")
                .unwrap()
                .outcome,
            Outcome::NotOnRecord
        );
        r.phone = Some("0912345678".into());
        assert_eq!(
            check(&r, CitizenField::Phone, "+84 912 345 678")
                .unwrap()
                .outcome,
            Outcome::Match
        );
        assert_eq!(
            check(&r, CitizenField::Phone, "0912345679")
                .unwrap()
                .outcome,
            Outcome::Mismatch
        );
        r.gender = Gender::Female;
        assert_eq!(
            check(&r, CitizenField::Gender, "Nữ").unwrap().outcome,
            Outcome::Match
        );
        assert_eq!(
            check(&r, CitizenField::Gender, "nu").unwrap().outcome,
            Outcome::Match
        );
        assert_eq!(
            check(&r, CitizenField::Gender, "Nam").unwrap().outcome,
            Outcome::Mismatch
        );
        assert!(check(&r, CitizenField::Gender, "khác").is_err());
        assert_eq!(
            check(&r, CitizenField::Nationality, "Việt Nam")
                .unwrap()
                .outcome,
            Outcome::Match
        );
        assert_eq!(
            check(&r, CitizenField::FullName, "  ").unwrap().outcome,
            Outcome::NotProvided
        );
        assert!(check(&r, CitizenField::Card, "x").is_err());
    }

    #[test]
    fn overall_results() {
        let f = |o| FieldCheck {
            field: "x".into(),
            outcome: o,
            normalizations: vec![],
            explanation: String::new(),
            explanation_vi: String::new(),
        };
        assert_eq!(
            overall(&[f(Outcome::Match), f(Outcome::Match)]),
            Overall::Match
        );
        assert_eq!(
            overall(&[f(Outcome::Match), f(Outcome::MatchIgnoringDiacritics)]),
            Overall::NeedsReview
        );
        assert_eq!(
            overall(&[f(Outcome::NotOnRecord), f(Outcome::Mismatch)]),
            Overall::Mismatch
        );
    }
}
