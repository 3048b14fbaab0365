//! Write-back: corrections and enrichments provincial systems send to the database ("làm sạch,
//! làm giàu dữ liệu"), each queued with its status. The rules are fixed and documented, so a
//! test knows the outcome of what it sends:
//!
//! 1. only `phone`, `health_insurance_number` and `current_address` are taken this way
//!    (INVALID_ARGUMENT otherwise);
//! 2. an update without an evidence reference is rejected;
//! 3. so is one for a deceased citizen;
//! 4. a phone number must be a Vietnamese mobile number (10 digits from 03, 05, 07, 08 or 09;
//!    "+84" and spaces are read), a health-insurance number 10 digits, a current address one in
//!    the 2025 units — "detail, commune, province", the commune and the province as published
//!    (letter case and spacing aside; the province's "Tỉnh"/"Thành phố" may be left out); an
//!    address naming a pre-2025 commune is rejected with the commune it became;
//! 5. a value the record already holds is rejected;
//! 6. anything else is accepted.
//!
//! Rules 2–5 decide at once (REJECTED). An update that passes them is PENDING for the review
//! delay, then ACCEPTED: the record holds the value from then on, with provenance
//! `provincial-update`, the source system and the time of acceptance. The same source system
//! and request id give back the same update.

use crate::store::{Store, StoreError};
use lienthong_domain::units::units;
use lienthong_domain::{
    Address, CitizenField, CitizenRecord, LifeStatus, PersonalId, Provenance, Source, WardCode,
    former_communes,
};
use serde::{Deserialize, Serialize};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use unicode_normalization::UnicodeNormalization;

/// The longest value, evidence reference, dossier id, source system and request id taken.
pub const MAX_TEXT: usize = 128;

/// What the database decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Verdict {
    Accepted,
    Rejected { reason: String, reason_vi: String },
}

/// A queued update.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataUpdate {
    pub id: String,
    pub personal_id: PersonalId,
    pub field: CitizenField,
    /// The value as it will be stored (a phone number normalised to 0xxxxxxxxx).
    pub value: String,
    pub source_system: String,
    pub dossier_id: String,
    pub evidence_ref: String,
    pub request_id: String,
    /// Microseconds since the Unix epoch.
    pub submitted_at_us: i64,
    /// When the verdict shows (and, accepted, takes effect).
    pub decided_at_us: i64,
    pub verdict: Verdict,
    /// Whether an accepted value has been written into the record.
    pub applied: bool,
}

/// Where an update stands at a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Pending,
    Accepted,
    Rejected,
}

impl DataUpdate {
    /// The status at `now_us`.
    pub fn status_at(&self, now_us: i64) -> Status {
        match (&self.verdict, now_us >= self.decided_at_us) {
            (_, false) => Status::Pending,
            (Verdict::Accepted, true) => Status::Accepted,
            (Verdict::Rejected { .. }, true) => Status::Rejected,
        }
    }
}

/// What a submission names.
#[derive(Debug, Clone)]
pub struct Submission {
    pub personal_id: PersonalId,
    pub field: CitizenField,
    pub value: String,
    pub source_system: String,
    pub dossier_id: String,
    pub evidence_ref: String,
    pub request_id: String,
}

/// Why a submission is not taken at all.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error(
        "{0:?} cannot be updated this way: send phone, health_insurance_number or current_address (other fields change through their own procedures)"
    )]
    Field(String),
    #[error("{field} is longer than {MAX_TEXT} bytes")]
    TooLong { field: &'static str },
    #[error("no citizen record has that personal ID")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The first of the named values longer than [`MAX_TEXT`] bytes, by name.
pub fn too_long(values: &[(&'static str, &str)]) -> Option<&'static str> {
    values
        .iter()
        .find(|(_, v)| v.len() > MAX_TEXT)
        .map(|(field, _)| *field)
}

pub fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// Queues a submission (or finds the one with the same source system and request id).
pub fn submit(store: &Store, s: Submission, delay: Duration) -> Result<DataUpdate, SubmitError> {
    if !CitizenField::UPDATABLE.contains(&s.field) {
        return Err(SubmitError::Field(s.field.as_str().to_owned()));
    }
    if let Some(field) = too_long(&[
        ("value", &s.value),
        ("source_system", &s.source_system),
        ("dossier_id", &s.dossier_id),
        ("evidence_ref", &s.evidence_ref),
        ("request_id", &s.request_id),
    ]) {
        return Err(SubmitError::TooLong { field });
    }
    if !s.request_id.is_empty()
        && let Some(id) = store.update_by_request(&s.source_system, &s.request_id)?
        && let Some(existing) = store.update(&id)?
    {
        return Ok(existing);
    }
    let record = store
        .citizen(&s.personal_id)?
        .ok_or(SubmitError::NotFound)?;
    let (value, verdict) = decide(&record, &s);
    let now = now_us();
    let decided_at_us = match verdict {
        Verdict::Accepted => now + delay.as_micros() as i64,
        Verdict::Rejected { .. } => now,
    };
    let update = DataUpdate {
        id: format!("CN{:010}", store.next_id()? % 10_000_000_000),
        personal_id: s.personal_id,
        field: s.field,
        value,
        source_system: s.source_system,
        dossier_id: s.dossier_id,
        evidence_ref: s.evidence_ref,
        request_id: s.request_id,
        submitted_at_us: now,
        decided_at_us,
        verdict,
        applied: false,
    };
    store.put_update(&update)?;
    Ok(update)
}

fn rejected(reason: &str, reason_vi: &str) -> Verdict {
    Verdict::Rejected {
        reason: reason.to_owned(),
        reason_vi: reason_vi.to_owned(),
    }
}

/// The rules, in order; the value as it would be stored.
fn decide(record: &CitizenRecord, s: &Submission) -> (String, Verdict) {
    let address = match s.field {
        CitizenField::CurrentAddress => Some(address_2025(&s.value)),
        _ => None,
    };
    let value = match (s.field, &address) {
        (CitizenField::Phone, _) => mobile(&s.value).unwrap_or_else(|| s.value.trim().to_owned()),
        (_, Some(Ok(a))) => a.formatted(),
        _ => s.value.trim().to_owned(),
    };
    if s.evidence_ref.trim().is_empty() {
        return (
            value,
            rejected(
                "no evidence reference: name the document the value comes from",
                "không có căn cứ: đề nghị nêu giấy tờ là nguồn của thông tin",
            ),
        );
    }
    if matches!(record.life_status, LifeStatus::Deceased { .. }) {
        return (
            value,
            rejected(
                "the citizen has died: a deceased citizen's record is not enriched",
                "công dân đã chết: không bổ sung thông tin cho người đã chết",
            ),
        );
    }
    if let Some(Err((en, vi))) = &address {
        return (value, rejected(en, vi));
    }
    let on_record = record.current_address.formatted();
    let (valid, current) = match s.field {
        CitizenField::Phone => (mobile(&s.value).is_some(), record.phone.as_deref()),
        CitizenField::CurrentAddress => (true, Some(on_record.as_str())),
        _ => (
            value.len() == 10 && value.bytes().all(|b| b.is_ascii_digit()),
            record.health_insurance_number.as_deref(),
        ),
    };
    if !valid {
        let (en, vi) = match s.field {
            CitizenField::Phone => (
                "not a Vietnamese mobile number: 10 digits starting 03, 05, 07, 08 or 09",
                "không phải số di động Việt Nam: 10 chữ số, bắt đầu bằng 03, 05, 07, 08 hoặc 09",
            ),
            _ => (
                "not a health-insurance number: 10 digits",
                "không phải mã số BHXH: 10 chữ số",
            ),
        };
        return (value, rejected(en, vi));
    }
    if current == Some(value.as_str()) {
        return (
            value,
            rejected(
                "the record already holds this value",
                "CSDL đã có thông tin này",
            ),
        );
    }
    (value, Verdict::Accepted)
}

/// Lower case, NFC, single spaces: how published unit names are compared.
fn unit_key(s: &str) -> String {
    s.nfc()
        .collect::<String>()
        .to_lowercase()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// An address in the 2025 units, "detail, commune, province", or why it is not one.
pub fn address_2025(text: &str) -> Result<Address, (String, String)> {
    let parts: Vec<&str> = text.split(',').map(str::trim).collect();
    let fail = |en: String, vi: String| Err((en, vi));
    let [detail @ .., commune, province] = parts.as_slice() else {
        return fail(
            "not an address in the 2025 units: write \"detail, commune, province\", e.g. \"Số 12 đường Trần Phú, Phường Thành Sen, Tỉnh Hà Tĩnh\"".into(),
            "không phải địa chỉ theo đơn vị hành chính mới: đề nghị ghi \"số nhà/thôn, xã/phường, tỉnh/thành phố\"".into(),
        );
    };
    let province_key = unit_key(province);
    let Some(p) = units()
        .provinces
        .iter()
        .find(|p| unit_key(&p.full_name()) == province_key || unit_key(&p.name) == province_key)
    else {
        return fail(
            format!("{province:?} is not a province or city of the 2025 units"),
            format!("{province:?} không phải tỉnh, thành phố theo đơn vị hành chính mới"),
        );
    };
    let commune_key = unit_key(commune);
    if let Some(w) = units()
        .wards_of(p.code)
        .find(|w| unit_key(&w.name) == commune_key)
    {
        return Ok(Address {
            detail: detail.join(", "),
            ward: WardCode::try_from(w.code).map_err(|e| (e.to_string(), e.to_string()))?,
        });
    }
    // A commune of the pre-2025 units: say what it became.
    let former = former_communes().communes.iter().find(|c| {
        unit_key(&c.name) == commune_key
            && c.became
                .iter()
                .any(|(w, _)| w.ward().province_code == p.code)
    });
    match former {
        Some(c) => {
            let now: Vec<&str> = c
                .became
                .iter()
                .map(|(w, _)| w.ward().name.as_str())
                .collect();
            fail(
                format!(
                    "{} is a commune of the pre-2025 units: since 1 July 2025 it is (part of) {}; write the 2025 commune",
                    c.name,
                    now.join(", ")
                ),
                format!(
                    "{} là đơn vị hành chính cũ: từ 01/7/2025 thuộc {}; đề nghị ghi đơn vị hành chính mới",
                    c.name,
                    now.join(", ")
                ),
            )
        }
        None => fail(
            format!(
                "{commune:?} is not a commune or ward of {} in the 2025 units",
                p.full_name()
            ),
            format!(
                "{commune:?} không phải xã, phường của {} theo đơn vị hành chính mới",
                p.full_name()
            ),
        ),
    }
}

/// A Vietnamese mobile number as 0xxxxxxxxx, from "0912 345 678" or "+84 912 345 678".
fn mobile(s: &str) -> Option<String> {
    let digits: String = s
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '.')
        .collect();
    let digits = match digits.strip_prefix("+84") {
        Some(rest) => format!("0{rest}"),
        None => digits,
    };
    let ok = digits.len() == 10
        && digits.bytes().all(|b| b.is_ascii_digit())
        && ["03", "05", "07", "08", "09"]
            .iter()
            .any(|p| digits.starts_with(p));
    ok.then_some(digits)
}

/// Writes the citizen's accepted updates that have come due into the record; the record as it
/// now stands.
pub fn apply_due(store: &Store, mut record: CitizenRecord) -> Result<CitizenRecord, StoreError> {
    let now = now_us();
    let mut changed = false;
    for mut u in store.updates_of(&record.personal_id)? {
        if u.applied || u.status_at(now) != Status::Accepted {
            continue;
        }
        match u.field {
            CitizenField::Phone => record.phone = Some(u.value.clone()),
            CitizenField::HealthInsuranceNumber => {
                record.health_insurance_number = Some(u.value.clone())
            }
            CitizenField::CurrentAddress => match address_2025(&u.value) {
                Ok(a) => record.current_address = a,
                Err(_) => continue,
            },
            _ => continue,
        }
        record.provenance.retain(|p| p.field != u.field);
        record.provenance.push(Provenance {
            field: u.field,
            source: Source::ProvincialUpdate,
            updated_at: u.decided_at_us.div_euclid(1_000_000),
            system: Some(u.source_system.clone()),
        });
        u.applied = true;
        store.put_update(&u)?;
        changed = true;
    }
    if changed {
        store.put_citizen(&record)?;
    }
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mobile_numbers() {
        assert_eq!(mobile("0912 345 678").as_deref(), Some("0912345678"));
        assert_eq!(mobile("+84 912 345 678").as_deref(), Some("0912345678"));
        assert_eq!(mobile("0212345678"), None);
        assert_eq!(mobile("091234567"), None);
        assert_eq!(mobile("09123456789"), None);
    }
}
