//! The verification budget: a verification answers match or mismatch, so an officer who could
//! verify the same field of the same citizen without end could read the value by guessing. Each
//! officer may make at most `budget_per_day` claims on one field of one citizen per day
//! (Vietnam time), VerifyCitizen and VerifyBatch together; past it the request is refused
//! (RESOURCE_EXHAUSTED, RATE_LIMITED, QuotaFailure `verification:<officer>:<masked id>:<field>`,
//! RetryInfo until the next day).

use super::rescue::{LimitKind, Refusal};
use lienthong_domain::{CitizenField, OfficerCode, PersonalId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const DAY_US: i64 = 86_400_000_000;
/// Vietnam's offset from UTC.
const VN_OFFSET_US: i64 = 7 * 3_600_000_000;
/// At most this many (officer, citizen, field) counts a day; past it, new ones are refused
/// (fail closed) until the day ends.
const MAX_ENTRIES: usize = 1_000_000;

type Key = (OfficerCode, PersonalId, CitizenField);

#[derive(Default)]
struct Day {
    day: i64,
    counts: HashMap<Key, u32>,
}

/// The budgets of one gateway.
#[derive(Clone)]
pub struct VerificationBudget {
    per_day: u32,
    state: Arc<Mutex<Day>>,
}

impl VerificationBudget {
    pub fn new(per_day: u32) -> Self {
        Self {
            per_day,
            state: Arc::default(),
        }
    }

    /// Takes one claim on each field from the officer's budget for this citizen, or refuses
    /// them all (none is taken) when any field's budget is spent.
    pub fn charge(
        &self,
        officer: &OfficerCode,
        citizen: &PersonalId,
        fields: &[CitizenField],
        now_us: i64,
    ) -> Result<(), Refusal> {
        let local = now_us + VN_OFFSET_US;
        let today = local.div_euclid(DAY_US);
        let retry_after = Duration::from_micros((DAY_US - local.rem_euclid(DAY_US)).max(1) as u64);
        let Ok(mut state) = self.state.lock() else {
            return Err(Refusal::Internal("verification budget unavailable".into()));
        };
        if state.day != today {
            state.day = today;
            state.counts.clear();
        }
        let refuse = |field: CitizenField| Refusal::RateLimited {
            kind: LimitKind::Verification,
            subject: format!(
                "{}:{}:{}",
                officer.as_str(),
                citizen.masked(),
                field.as_str()
            ),
            retry_after,
        };
        for &field in fields {
            let key = (officer.clone(), citizen.clone(), field);
            match state.counts.get(&key) {
                Some(&n) if n >= self.per_day => return Err(refuse(field)),
                None if state.counts.len() >= MAX_ENTRIES => {
                    tracing::warn!(
                        "verification budget table full: refusing new counts until tomorrow"
                    );
                    return Err(refuse(field));
                }
                _ => {}
            }
        }
        for &field in fields {
            *state
                .counts
                .entry((officer.clone(), citizen.clone(), field))
                .or_insert(0) += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_field_of_each_citizen_has_its_own_budget_for_the_day() {
        let b = VerificationBudget::new(2);
        let o = OfficerCode::parse("CB.H42.0001").unwrap();
        let p = PersonalId::parse("042188999005").unwrap();
        let q = PersonalId::parse("042188999006").unwrap();
        let dob = CitizenField::DateOfBirth;
        let name = CitizenField::FullName;
        let t = 1_795_000_000_000_000;
        assert!(b.charge(&o, &p, &[dob], t).is_ok());
        assert!(b.charge(&o, &p, &[dob, name], t).is_ok());
        match b.charge(&o, &p, &[name, dob], t) {
            Err(Refusal::RateLimited { kind, subject, .. }) => {
                assert_eq!(kind, LimitKind::Verification);
                assert_eq!(subject, "CB.H42.0001:042•••••••005:date_of_birth");
            }
            other => panic!("{other:?}"),
        }
        // Nothing was taken from the name's budget by the refused request.
        assert!(b.charge(&o, &p, &[name], t).is_ok());
        assert!(b.charge(&o, &q, &[dob], t).is_ok(), "another citizen");
        // The next day (Vietnam time) starts afresh.
        assert!(b.charge(&o, &p, &[dob], t + DAY_US).is_ok());
    }
}
