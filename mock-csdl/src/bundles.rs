//! Interlinked bundles (thủ tục liên thông) as cases: each step another agency's action, handed
//! off to the next when done, and applied to the records as the real databases would. The rules
//! are fixed and documented, so a test knows what each action does.
//!
//! **Birth** (subject: the declaring parent, living):
//! 1. `1.001193` birth registration (commune People's Committee, civil status). Entered:
//!    `ho_ten_tre` (two to six words of letters), `ngay_sinh_tre` (a full date, not in the
//!    future, under six years ago), `gioi_tinh_tre` ("Nam"/"Nữ"), `noi_sinh_tre` (optional). The
//!    database issues the child's personal ID (the province of the parent's permanent residence,
//!    serials from 998000 up) and creates the record: parents the declaring parent and their
//!    spouse, ethnicity the declaring parent's, place of origin the father's, addresses the
//!    declaring parent's until residence is registered; the electronic birth certificate number
//!    is the outcome.
//! 2. `1.004222` permanent residence (commune police): the child joins the declaring parent's
//!    household (child of the head or of the head's spouse, grandchild of the head's child) at
//!    its address. Rejected when the parent is on no household register.
//! 3. `1.011456` health-insurance card for a child under 6 (social insurance). Entered:
//!    `noi_dang_ky_kcb` (the first-contact clinic). The card's number is issued; it is valid
//!    until the child is 72 months old.
//!
//! **Death** (subject: the deceased, or a citizen whose death is to be registered):
//! 1. `1.000656` death registration (commune People's Committee, civil status). Entered:
//!    `ngay_chet` (a full date, not in the future, not before birth), `noi_chet`, `nguoi_di_khai`,
//!    `nguyen_nhan_chet` (optional). The record shows the death, the card is revoked, a spouse on
//!    record is widowed; the electronic death certificate number is the outcome.
//! 2. `1.004222` removal from permanent residence (commune police): struck off the household
//!    register; a head is succeeded by the spouse, else the next member; an emptied household is
//!    closed.
//! 3. `1.011457` funeral allowance (commune People's Committee and social insurance). Entered:
//!    `nguoi_lo_mai_tang`, `so_tai_khoan` (optional, 6–20 digits). With a social-insurance number
//!    on record: the funeral allowance, 10 × the base salary (2,340,000 đồng since 1 July 2024),
//!    and the survivor allowance, assessed from the contribution record; without one, aged 80 or
//!    more: the social-protection funeral support, 20 × the social-assistance standard (500,000
//!    đồng); otherwise rejected: no benefit applies.
//!
//! A death already registered when the case opens shows its first step ALREADY_ON_RECORD; a
//! deceased citizen already struck off, the first two. Missing or malformed entered values reject
//! the step with the reason (the agency may act again); a step not yet handed off is refused.

use crate::store::{Store, StoreError};
use crate::updates::{MAX_TEXT, now_us, too_long};
use lienthong_domain::{
    CardStatus, CitizenField, CitizenRecord, Gender, HistoricalPlace, HouseholdLink, LifeStatus,
    MaritalStatus, PartialDate, PersonalId, Provenance, Relation, Source, former_communes,
};
use serde::{Deserialize, Serialize};

/// The most entered values taken in one action.
pub const MAX_ENTERED: usize = 16;

/// Which bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BundleKind {
    Birth,
    Death,
}

/// Where a step stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StepStatus {
    Waiting,
    Ready,
    Done,
    Rejected,
    AlreadyOnRecord,
}

/// One step: an agency's procedure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub procedure: String,
    pub status: StepStatus,
    /// Whom the step is about; None while the newborn has no number.
    pub subject: Option<PersonalId>,
    pub handed_off_at_us: Option<i64>,
    pub acted_at_us: Option<i64>,
    pub acted_by: String,
    pub entered: Vec<(String, String)>,
    pub outcome: Vec<(String, String)>,
    pub reason: String,
    pub reason_vi: String,
}

impl Step {
    /// The agency that acts, in English and Vietnamese.
    pub fn agency(&self) -> (&'static str, &'static str) {
        match self.procedure.as_str() {
            "1.001193" | "1.000656" => (
                "commune People's Committee (civil status)",
                "UBND cấp xã (tư pháp – hộ tịch)",
            ),
            "1.004222" => (
                "commune police (residence registration)",
                "Công an cấp xã (đăng ký cư trú)",
            ),
            "1.011456" => ("social insurance agency", "Cơ quan Bảo hiểm xã hội"),
            _ => (
                "commune People's Committee (social affairs) and social insurance agency",
                "UBND cấp xã (lĩnh vực xã hội) và cơ quan Bảo hiểm xã hội",
            ),
        }
    }
}

/// A case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Case {
    pub id: String,
    pub kind: BundleKind,
    pub subject: PersonalId,
    pub source_system: String,
    pub dossier_id: String,
    pub request_id: String,
    pub opened_at_us: i64,
    pub steps: Vec<Step>,
    /// The request ids of the actions taken, so a repeated one changes nothing.
    pub actions: Vec<String>,
}

impl Case {
    /// Whether every step is done or was already on record.
    pub fn completed(&self) -> bool {
        self.steps
            .iter()
            .all(|s| matches!(s.status, StepStatus::Done | StepStatus::AlreadyOnRecord))
    }
}

/// Why a case cannot be opened or acted on.
#[derive(Debug, thiserror::Error)]
pub enum CaseError {
    #[error("no citizen record has that personal ID")]
    CitizenNotFound,
    #[error("no case of this source system has that id")]
    CaseNotFound,
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotReady(String),
    #[error("{field} is longer than {MAX_TEXT} bytes")]
    TooLong { field: &'static str },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What opening a case names.
#[derive(Debug, Clone)]
pub struct Opening {
    pub kind: BundleKind,
    pub subject: PersonalId,
    pub source_system: String,
    pub dossier_id: String,
    pub request_id: String,
}

/// One agency's action.
#[derive(Debug, Clone)]
pub struct Action {
    pub case_id: String,
    pub procedure: String,
    pub entered: Vec<(String, String)>,
    pub source_system: String,
    pub officer: String,
    pub request_id: String,
}

fn step(procedure: &str, status: StepStatus, subject: Option<&PersonalId>, now: i64) -> Step {
    Step {
        procedure: procedure.to_owned(),
        status,
        subject: subject.cloned(),
        handed_off_at_us: (status == StepStatus::Ready).then_some(now),
        acted_at_us: None,
        acted_by: String::new(),
        entered: Vec::new(),
        outcome: Vec::new(),
        reason: String::new(),
        reason_vi: String::new(),
    }
}

/// Entered values, source system, dossier id, officer and request id: at most
/// [`MAX_TEXT`] bytes each, as for updates.
fn bounded(fields: &[(&'static str, &str)]) -> Result<(), CaseError> {
    match too_long(fields) {
        Some(field) => Err(CaseError::TooLong { field }),
        None => Ok(()),
    }
}

/// Case actions change several records; one at a time.
static ACTIONS: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serialised() -> std::sync::MutexGuard<'static, ()> {
    ACTIONS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Opens a case (or finds the one with the same source system and request id).
pub fn open(store: &Store, o: Opening) -> Result<Case, CaseError> {
    let _one_at_a_time = serialised();
    bounded(&[
        ("source_system", &o.source_system),
        ("dossier_id", &o.dossier_id),
        ("request_id", &o.request_id),
    ])?;
    if !o.request_id.is_empty()
        && let Some(id) = store.case_by_request(&o.source_system, &o.request_id)?
        && let Some(existing) = store.case(&id)?
    {
        return Ok(existing);
    }
    let record = store
        .citizen(&o.subject)?
        .ok_or(CaseError::CitizenNotFound)?;
    let now = now_us();
    let deceased = matches!(record.life_status, LifeStatus::Deceased { .. });
    let s = Some(&o.subject);
    let steps = match o.kind {
        BundleKind::Birth => {
            if deceased {
                return Err(CaseError::Invalid(
                    "the declaring parent has died: the birth is declared by the other parent or a relative".into(),
                ));
            }
            vec![
                step("1.001193", StepStatus::Ready, s, now),
                step("1.004222", StepStatus::Waiting, None, now),
                step("1.011456", StepStatus::Waiting, None, now),
            ]
        }
        BundleKind::Death => {
            use StepStatus::{AlreadyOnRecord, Ready, Waiting};
            let (first, second, third) = match (deceased, record.household.is_some()) {
                (false, _) => (Ready, Waiting, Waiting),
                (true, true) => (AlreadyOnRecord, Ready, Waiting),
                (true, false) => (AlreadyOnRecord, AlreadyOnRecord, Ready),
            };
            vec![
                step("1.000656", first, s, now),
                step("1.004222", second, s, now),
                step("1.011457", third, s, now),
            ]
        }
    };
    let case = Case {
        id: format!("LT{:010}", store.next_id()? % 10_000_000_000),
        kind: o.kind,
        subject: o.subject,
        source_system: o.source_system,
        dossier_id: o.dossier_id,
        request_id: o.request_id,
        opened_at_us: now,
        steps,
        actions: Vec::new(),
    };
    store.put_case(&case)?;
    Ok(case)
}

/// One case, as its source system sees it.
pub fn get(store: &Store, id: &str, source_system: &str) -> Result<Case, CaseError> {
    match store.case(id)? {
        Some(c) if c.source_system == source_system => Ok(c),
        _ => Err(CaseError::CaseNotFound),
    }
}

/// Applies an agency's action to its step: done (the records changed, the next step handed
/// off) or rejected with the reason. A repeated request id gives back the case as it is.
pub fn complete(store: &Store, a: Action) -> Result<Case, CaseError> {
    let _one_at_a_time = serialised();
    bounded(&[("officer", &a.officer), ("request_id", &a.request_id)])?;
    if a.entered.len() > MAX_ENTERED {
        return Err(CaseError::Invalid(format!(
            "{} entered values: at most {MAX_ENTERED}",
            a.entered.len()
        )));
    }
    for (_, v) in &a.entered {
        bounded(&[("entered", v)])?;
    }
    let mut case = get(store, &a.case_id, &a.source_system)?;
    if !a.request_id.is_empty() && case.actions.contains(&a.request_id) {
        return Ok(case);
    }
    let Some(i) = case.steps.iter().position(|s| s.procedure == a.procedure) else {
        let steps: Vec<&str> = case.steps.iter().map(|s| s.procedure.as_str()).collect();
        return Err(CaseError::Invalid(format!(
            "{} is not a step of this case: its steps are {}",
            a.procedure,
            steps.join(", ")
        )));
    };
    match case.steps[i].status {
        StepStatus::Ready | StepStatus::Rejected => {}
        StepStatus::Waiting => {
            return Err(CaseError::NotReady(format!(
                "step {} waits for step {}",
                a.procedure,
                case.steps[i - 1].procedure
            )));
        }
        StepStatus::Done | StepStatus::AlreadyOnRecord => {
            return Err(CaseError::NotReady(format!(
                "step {} is already done",
                a.procedure
            )));
        }
    }
    let now = now_us();
    let result = act(store, &case, i, &a.entered, now)?;
    let current = case.steps[i].subject.clone();
    let s = &mut case.steps[i];
    s.acted_at_us = Some(now);
    s.acted_by = a.officer;
    s.entered = a.entered;
    match result {
        Ok(Done {
            outcome,
            next_subject,
        }) => {
            s.status = StepStatus::Done;
            s.outcome = outcome;
            s.reason.clear();
            s.reason_vi.clear();
            if let Some(next) = case.steps.get_mut(i + 1)
                && next.status == StepStatus::Waiting
            {
                next.status = StepStatus::Ready;
                next.handed_off_at_us = Some(now);
                if next_subject.is_some() {
                    next.subject = next_subject;
                } else if next.subject.is_none() {
                    next.subject = current;
                }
            }
        }
        Err((reason, reason_vi)) => {
            s.status = StepStatus::Rejected;
            s.outcome.clear();
            s.reason = reason;
            s.reason_vi = reason_vi;
        }
    }
    if !a.request_id.is_empty() {
        case.actions.push(a.request_id);
    }
    store.put_case(&case)?;
    Ok(case)
}

struct Done {
    outcome: Vec<(String, String)>,
    /// The subject of the next step, when it changes (the newborn).
    next_subject: Option<PersonalId>,
}

type Rejection = (String, String);

fn reject<T>(en: &str, vi: &str) -> Result<T, Rejection> {
    Err((en.to_owned(), vi.to_owned()))
}

fn entered<'a>(values: &'a [(String, String)], key: &str) -> Option<&'a str> {
    values
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

fn required<'a>(values: &'a [(String, String)], key: &str) -> Result<&'a str, Rejection> {
    entered(values, key).ok_or_else(|| {
        (
            format!("{key} was not entered: it is required for this step"),
            format!("chưa nhập {key}: trường bắt buộc của bước này"),
        )
    })
}

/// Today, by the clock, as a civil date (UTC).
fn today() -> PartialDate {
    PartialDate::from_days_since_epoch(now_us().div_euclid(86_400_000_000))
}

fn full_date(values: &[(String, String)], key: &str) -> Result<PartialDate, Rejection> {
    let text = required(values, key)?;
    match PartialDate::parse(text) {
        Ok(d) if d.is_full() && d.days_since_epoch() <= today().days_since_epoch() => Ok(d),
        Ok(d) if d.is_full() => Err((
            format!("{key} is in the future"),
            format!("{key} là ngày trong tương lai"),
        )),
        _ => Err((
            format!("{key} is not a full date: write dd/mm/yyyy"),
            format!("{key} không phải ngày đầy đủ: đề nghị ghi theo dạng dd/mm/yyyy"),
        )),
    }
}

fn provenance(record: &mut CitizenRecord, field: CitizenField, source: Source, now: i64) {
    record.provenance.retain(|p| p.field != field);
    record.provenance.push(Provenance {
        field,
        source,
        updated_at: now.div_euclid(1_000_000),
        system: None,
    });
}

fn citizen(store: &Store, id: &PersonalId) -> Result<CitizenRecord, CaseError> {
    store.citizen(id)?.ok_or(CaseError::CitizenNotFound)
}

fn number(prefix: &str, province: u16, store: &Store) -> Result<String, CaseError> {
    let year = today().year();
    Ok(format!(
        "{prefix}{year}{province:03}{:06}",
        store.next_id()? % 1_000_000
    ))
}

/// The step's effect: Ok(Ok) done, Ok(Err) rejected with the reason.
fn act(
    store: &Store,
    case: &Case,
    i: usize,
    values: &[(String, String)],
    now: i64,
) -> Result<Result<Done, Rejection>, CaseError> {
    let subject = case.steps[i]
        .subject
        .clone()
        .unwrap_or(case.subject.clone());
    let done = |outcome: Vec<(&str, String)>| {
        Ok(Ok(Done {
            outcome: outcome
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
            next_subject: None,
        }))
    };
    match (case.kind, case.steps[i].procedure.as_str()) {
        (BundleKind::Birth, "1.001193") => register_birth(store, &subject, values, now),
        (BundleKind::Birth, "1.004222") => {
            let mut child = citizen(store, &subject)?;
            let parent = citizen(store, &case.subject)?;
            let Some(link) = &parent.household else {
                return Ok(reject(
                    "the declaring parent is on no household register: register the child's residence where a parent is registered",
                    "người đi khai không có tên trong sổ hộ khẩu nào: đề nghị đăng ký thường trú cho trẻ tại nơi cha hoặc mẹ thường trú",
                ));
            };
            let Some(mut household) = store.household(&link.household_id)? else {
                return Ok(reject(
                    "the declaring parent's household is not on record",
                    "không tìm thấy hộ gia đình của người đi khai",
                ));
            };
            let relation = match link.relation_to_head {
                Relation::Head | Relation::Spouse => Relation::Child,
                Relation::Child => Relation::Grandchild,
                _ => Relation::Other,
            };
            household
                .members
                .push((child.personal_id.clone(), relation));
            child.household = Some(HouseholdLink {
                household_id: household.id.clone(),
                relation_to_head: relation,
            });
            child.permanent_address = household.address.clone();
            child.current_address = household.address.clone();
            for f in [CitizenField::Household, CitizenField::PermanentAddress] {
                provenance(&mut child, f, Source::Residence, now);
            }
            store.put_household(&household)?;
            store.put_citizen(&child)?;
            done(vec![
                ("household_id", household.id.as_str().to_owned()),
                ("permanent_address", household.address.formatted()),
            ])
        }
        (BundleKind::Birth, _) => {
            let mut child = citizen(store, &subject)?;
            let clinic = match required(values, "noi_dang_ky_kcb") {
                Ok(c) => c,
                Err(r) => return Ok(Err(r)),
            };
            let sixth = match child.date_of_birth {
                PartialDate::Full(y, m, d) => {
                    PartialDate::from_parts(y + 6, m, d.min(28)).unwrap_or(PartialDate::Year(y + 6))
                }
                other => PartialDate::Year(other.year() + 6),
            };
            if sixth.days_since_epoch() <= today().days_since_epoch() {
                return Ok(reject(
                    "the child is 6 or older: the card for children under 6 does not apply",
                    "trẻ đã đủ 6 tuổi: không thuộc diện cấp thẻ BHYT trẻ em dưới 6 tuổi",
                ));
            }
            if child.health_insurance_number.is_some() {
                return Ok(reject(
                    "the child already holds a health-insurance number",
                    "trẻ đã có mã số BHXH",
                ));
            }
            let province = child.permanent_address.province_code();
            let hi = format!("{province:02}{:08}", store.next_id()? % 100_000_000);
            child.health_insurance_number = Some(hi.clone());
            provenance(
                &mut child,
                CitizenField::HealthInsuranceNumber,
                Source::SocialInsurance,
                now,
            );
            store.put_citizen(&child)?;
            done(vec![
                ("health_insurance_number", hi),
                ("valid_until", sixth.to_string()),
                ("first_contact_clinic", clinic.to_owned()),
            ])
        }
        (BundleKind::Death, "1.000656") => register_death(store, &subject, values, now),
        (BundleKind::Death, "1.004222") => strike_off(store, &subject, now),
        (BundleKind::Death, _) => {
            let record = citizen(store, &subject)?;
            let arranger = match required(values, "nguoi_lo_mai_tang") {
                Ok(a) => a.to_owned(),
                Err(r) => return Ok(Err(r)),
            };
            if let Some(account) = entered(values, "so_tai_khoan")
                && !(6..=20).contains(&account.len())
            {
                return Ok(reject(
                    "so_tai_khoan is not a bank account number: 6 to 20 digits",
                    "so_tai_khoan không phải số tài khoản ngân hàng: từ 6 đến 20 chữ số",
                ));
            }
            let LifeStatus::Deceased { date } = record.life_status else {
                return Ok(reject(
                    "the record does not show the death: register it first",
                    "CSDL chưa ghi nhận việc chết: đề nghị đăng ký khai tử trước",
                ));
            };
            let age = record.date_of_birth.age_on(date);
            let mut outcome = vec![("funeral_arranger", arranger)];
            if record.health_insurance_number.is_some() {
                outcome.push((
                    "funeral_allowance",
                    "23.400.000 đồng: 10 × mức lương cơ sở 2.340.000 đồng (trợ cấp mai táng, Bảo hiểm xã hội)".into(),
                ));
                outcome.push((
                    "survivor_allowance",
                    "xét theo quá trình đóng bảo hiểm xã hội (trợ cấp tuất)".into(),
                ));
            } else if age >= 80 {
                outcome.push((
                    "funeral_support",
                    "10.000.000 đồng: 20 × mức chuẩn trợ giúp xã hội 500.000 đồng (hỗ trợ chi phí mai táng, bảo trợ xã hội)".into(),
                ));
            } else {
                return Ok(reject(
                    "no funeral benefit applies: the deceased held no social-insurance number and was under 80",
                    "không thuộc diện hưởng chế độ mai táng: người chết không có mã số BHXH và chưa đủ 80 tuổi",
                ));
            }
            done(outcome)
        }
    }
}

fn words_of_letters(name: &str) -> bool {
    let words: Vec<&str> = name.split_whitespace().collect();
    (2..=6).contains(&words.len())
        && words
            .iter()
            .all(|w| w.chars().all(|c| c.is_alphabetic() || c == '\''))
}

/// Step 1 of the birth bundle: the child's number and record.
fn register_birth(
    store: &Store,
    parent_id: &PersonalId,
    values: &[(String, String)],
    now: i64,
) -> Result<Result<Done, Rejection>, CaseError> {
    let parent = citizen(store, parent_id)?;
    let checked = (|| {
        let name = required(values, "ho_ten_tre")?;
        if !words_of_letters(name) {
            return reject(
                "ho_ten_tre is not a name: two to six words of letters",
                "ho_ten_tre không phải họ tên: từ hai đến sáu từ bằng chữ",
            );
        }
        let born = full_date(values, "ngay_sinh_tre")?;
        if born.age_on(today()) >= 6 {
            return reject(
                "ngay_sinh_tre is six years ago or more: the bundle is for children under 6; register the birth on its own",
                "ngay_sinh_tre cách đây từ sáu năm trở lên: liên thông chỉ áp dụng cho trẻ dưới 6 tuổi",
            );
        }
        if born.days_since_epoch() <= parent.date_of_birth.days_since_epoch() {
            return reject(
                "ngay_sinh_tre is before the declaring parent's own birth",
                "ngay_sinh_tre trước ngày sinh của người đi khai",
            );
        }
        let gender = match required(values, "gioi_tinh_tre")? {
            "Nam" | "nam" => Gender::Male,
            "Nữ" | "nữ" => Gender::Female,
            _ => {
                return reject(
                    "gioi_tinh_tre is not a gender: \"Nam\" or \"Nữ\"",
                    "gioi_tinh_tre không hợp lệ: \"Nam\" hoặc \"Nữ\"",
                );
            }
        };
        Ok((
            name.split_whitespace().collect::<Vec<_>>().join(" "),
            born,
            gender,
        ))
    })();
    let (name, born, gender) = match checked {
        Ok(v) => v,
        Err(r) => return Ok(Err(r)),
    };
    let spouse = match parent.spouse.as_ref().and_then(|s| s.personal_id.as_ref()) {
        Some(id) => store.citizen(id)?,
        None => None,
    };
    let (father, mother) = match parent.gender {
        Gender::Male => (Some(&parent), spouse.as_ref()),
        Gender::Female => (spouse.as_ref(), Some(&parent)),
    };
    let province = parent.permanent_address.province_code();
    let year = born.year();
    let digit = match (year >= 2000, gender) {
        (true, Gender::Male) => 2,
        (true, Gender::Female) => 3,
        (false, Gender::Male) => 0,
        (false, Gender::Female) => 1,
    };
    let mut id = None;
    for serial in 998_000..999_000 {
        let candidate = format!("{province:03}{digit}{:02}{serial:06}", year.rem_euclid(100));
        if let Ok(p) = PersonalId::parse(&candidate)
            && store.citizen(&p)?.is_none()
        {
            id = Some(p);
            break;
        }
    }
    let Some(id) = id else {
        return Ok(reject(
            "the database has no number left for this province, year and gender in the mock's range",
            "CSDL không còn số định danh trong dải dành cho trường hợp này",
        ));
    };
    // The place of birth registration in the pre-2025 units: the district the parent's commune
    // was made from.
    let district = former_communes()
        .of_ward(parent.permanent_address.ward)
        .next()
        .map(|c| c.district)
        .unwrap_or(parent.place_of_birth.district);
    let mut child = CitizenRecord {
        personal_id: id.clone(),
        old_id_number: None,
        previous_old_id_numbers: Vec::new(),
        full_name: name,
        date_of_birth: born,
        gender,
        nationality: parent.nationality.clone(),
        ethnicity: parent.ethnicity.clone(),
        religion: "Không".to_owned(),
        place_of_birth: HistoricalPlace { district },
        place_of_origin: father.unwrap_or(&parent).place_of_origin,
        permanent_address: parent.permanent_address.clone(),
        temporary_address: None,
        current_address: parent.current_address.clone(),
        household: None,
        father: father.map(|f| f.as_relative()),
        mother: mother.map(|m| m.as_relative()),
        spouse: None,
        marital_status: MaritalStatus::Single,
        card: None,
        phone: None,
        eid_level: lienthong_domain::EidLevel::None,
        health_insurance_number: None,
        life_status: LifeStatus::Alive,
        provenance: Vec::new(),
    };
    for f in [
        CitizenField::PersonalId,
        CitizenField::FullName,
        CitizenField::DateOfBirth,
        CitizenField::Gender,
        CitizenField::Father,
        CitizenField::Mother,
    ] {
        provenance(&mut child, f, Source::CivilStatus, now);
    }
    store.put_citizen(&child)?;
    Ok(Ok(Done {
        outcome: vec![
            ("personal_id".to_owned(), id.as_str().to_owned()),
            (
                "birth_certificate_number".to_owned(),
                number("KS", province, store)?,
            ),
        ],
        next_subject: Some(id),
    }))
}

/// Step 1 of the death bundle: the death on record, the card revoked, the spouse widowed.
fn register_death(
    store: &Store,
    id: &PersonalId,
    values: &[(String, String)],
    now: i64,
) -> Result<Result<Done, Rejection>, CaseError> {
    let mut record = citizen(store, id)?;
    let checked = (|| {
        let date = full_date(values, "ngay_chet")?;
        if date.days_since_epoch() < record.date_of_birth.days_since_epoch() {
            return reject(
                "ngay_chet is before the date of birth",
                "ngay_chet trước ngày sinh",
            );
        }
        required(values, "noi_chet")?;
        required(values, "nguoi_di_khai")?;
        Ok(date)
    })();
    let date = match checked {
        Ok(d) => d,
        Err(r) => return Ok(Err(r)),
    };
    record.life_status = LifeStatus::Deceased { date };
    if let Some(card) = &mut record.card {
        card.status = CardStatus::Revoked;
        provenance(&mut record, CitizenField::Card, Source::IdCard, now);
    }
    provenance(
        &mut record,
        CitizenField::LifeStatus,
        Source::CivilStatus,
        now,
    );
    if let Some(spouse_id) = record.spouse.as_ref().and_then(|s| s.personal_id.clone())
        && let Some(mut spouse) = store.citizen(&spouse_id)?
        && spouse.life_status == LifeStatus::Alive
    {
        spouse.marital_status = MaritalStatus::Widowed;
        provenance(
            &mut spouse,
            CitizenField::MaritalStatus,
            Source::CivilStatus,
            now,
        );
        store.put_citizen(&spouse)?;
    }
    store.put_citizen(&record)?;
    let province = record.permanent_address.province_code();
    Ok(Ok(Done {
        outcome: vec![
            ("date_of_death".to_owned(), date.to_string()),
            (
                "death_certificate_number".to_owned(),
                number("KT", province, store)?,
            ),
        ],
        next_subject: None,
    }))
}

/// Step 2 of the death bundle: struck off the household register.
fn strike_off(
    store: &Store,
    id: &PersonalId,
    now: i64,
) -> Result<Result<Done, Rejection>, CaseError> {
    let mut record = citizen(store, id)?;
    let Some(link) = record.household.take() else {
        return Ok(Ok(Done {
            outcome: vec![(
                "struck_off".to_owned(),
                "not on any household register".to_owned(),
            )],
            next_subject: None,
        }));
    };
    if let Some(mut household) = store.household(&link.household_id)? {
        household.members.retain(|(m, _)| m != id);
        if household.members.is_empty() {
            store.remove_household(&household.id)?;
        } else {
            if household.head == *id {
                let successor = household
                    .members
                    .iter()
                    .position(|(_, r)| *r == Relation::Spouse)
                    .unwrap_or(0);
                household.members[successor].1 = Relation::Head;
                let new_head = household.members[successor].0.clone();
                household.head = new_head.clone();
                if let Some(mut head) = store.citizen(&new_head)? {
                    head.household = Some(HouseholdLink {
                        household_id: household.id.clone(),
                        relation_to_head: Relation::Head,
                    });
                    provenance(&mut head, CitizenField::Household, Source::Residence, now);
                    store.put_citizen(&head)?;
                }
            }
            store.put_household(&household)?;
        }
    }
    provenance(&mut record, CitizenField::Household, Source::Residence, now);
    store.put_citizen(&record)?;
    Ok(Ok(Done {
        outcome: vec![
            (
                "household_id".to_owned(),
                link.household_id.as_str().to_owned(),
            ),
            ("struck_off_on".to_owned(), today().to_string()),
        ],
        next_subject: None,
    }))
}
