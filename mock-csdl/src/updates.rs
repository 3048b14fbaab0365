//! Write-back: corrections and enrichments provincial systems send to the database ("làm sạch,
//! làm giàu dữ liệu"), each queued with its status. The rules are fixed and documented, so a
//! test knows the outcome of what it sends:
//!
//! 1. only `phone` and `health_insurance_number` are taken this way (INVALID_ARGUMENT otherwise);
//! 2. an update without an evidence reference is rejected;
//! 3. so is one for a deceased citizen;
//! 4. a phone number must be a Vietnamese mobile number (10 digits from 03, 05, 07, 08 or 09;
//!    "+84" and spaces are read), a health-insurance number 10 digits;
//! 5. a value the record already holds is rejected;
//! 6. anything else is accepted.
//!
//! Rules 2–5 decide at once (REJECTED). An update that passes them is PENDING for the review
//! delay, then ACCEPTED: the record holds the value from then on, with provenance
//! `provincial-update`, the source system and the time of acceptance. The same source system
//! and request id give back the same update.

use crate::store::{Store, StoreError};
use lienthong_domain::{CitizenField, CitizenRecord, LifeStatus, PersonalId, Provenance, Source};
use serde::{Deserialize, Serialize};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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
        "{0:?} cannot be updated this way: send phone or health_insurance_number (other fields change through their own procedures)"
    )]
    Field(String),
    #[error("{field} is longer than {MAX_TEXT} bytes")]
    TooLong { field: &'static str },
    #[error("no citizen record has that personal ID")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
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
    for (field, value) in [
        ("value", &s.value),
        ("source_system", &s.source_system),
        ("dossier_id", &s.dossier_id),
        ("evidence_ref", &s.evidence_ref),
        ("request_id", &s.request_id),
    ] {
        if value.len() > MAX_TEXT {
            return Err(SubmitError::TooLong { field });
        }
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
    let value = match s.field {
        CitizenField::Phone => mobile(&s.value).unwrap_or_else(|| s.value.trim().to_owned()),
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
    let (valid, current) = match s.field {
        CitizenField::Phone => (mobile(&s.value).is_some(), record.phone.as_deref()),
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
