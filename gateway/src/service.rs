//! The CitizenGateway handlers. Each one parses the wire request into domain values, asks the
//! policy, calls the database and converts the answer back: proto ↔ domain happens here and in
//! `lienthong_proto::convert` only. Refusals are typed [`Refusal`]s until the last moment.

use crate::audit::log::timestamp_us;
use crate::audit::record::Entry;
use crate::autofill::{self, Link, Related, UnfilledReason};
use crate::catalog::{CodeStatus, Procedure, Purpose};
use crate::config::Environment;
use crate::pipeline::audit::{AuditSlot, Auditor, Call, Subject};
use crate::pipeline::authn::{Authn, Consent};
use crate::pipeline::policy::{self, Channel, MAX_CONSENT_TOKEN_BYTES, Permit, RequestContext};
use crate::pipeline::rescue::Refusal;
use crate::pipeline::{Caller, Deferred, Limits, Officer, VerificationBudget};
use crate::upstream::{CitizenKey, Upstream};
use crate::verify::{self, FieldCheck, Normalization, Outcome, Overall};
use governor::clock::Clock;
use lienthong_domain::{
    CitizenField, CitizenRecord, DossierId, EidLevel, OldIdNumber, PersonalId, ProcedureCode,
    RequestId,
};
use lienthong_proto::convert::citizen_to_pb_disclosed;
use lienthong_proto::csdl::v1 as csdl;
use lienthong_proto::gateway::v1 as pb;
use pb::citizen_gateway_server::CitizenGateway;
use std::pin::Pin;
use std::time::Instant;
use tokio::sync::{mpsc, watch};
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

/// The gateway's service state, shared by every call; built once by the app.
pub struct Gateway<C: Clock> {
    pub environment: Environment,
    pub upstream: Upstream,
    pub limits: Limits<C>,
    pub budget: VerificationBudget,
    pub auditor: Auditor,
    /// Turns true when the gateway starts draining (ends long streams).
    pub draining: watch::Receiver<bool>,
    /// A VerifyBatch stream that sends nothing for this long is closed.
    pub batch_idle: std::time::Duration,
    /// Verifies consent tokens with the issuers officer tokens are verified with.
    pub authn: Authn,
}

impl<C: Clock> Clone for Gateway<C> {
    fn clone(&self) -> Self {
        Self {
            environment: self.environment,
            upstream: self.upstream.clone(),
            limits: self.limits.clone(),
            budget: self.budget.clone(),
            auditor: self.auditor.clone(),
            draining: self.draining.clone(),
            batch_idle: self.batch_idle,
            authn: self.authn.clone(),
        }
    }
}

/// The request's audit slot (a fresh one when the audit layer is not in front, as in unit tests).
fn slot_of<T>(request: &Request<T>) -> AuditSlot {
    request
        .extensions()
        .get::<AuditSlot>()
        .cloned()
        .unwrap_or_default()
}

/// Notes a refusal for the audit record and turns it into the caller's status.
fn refuse(slot: &AuditSlot, r: Refusal) -> Status {
    slot.note(|f| f.refusal = Some(r.clone()));
    r.to_status()
}

/// A handler's result as the reply, its refusal noted for the audit record.
fn answer<T>(slot: &AuditSlot, result: Result<T, Refusal>) -> Result<Response<T>, Status> {
    result.map(Response::new).map_err(|r| refuse(slot, r))
}

/// Notes what the request says it is for (bounded), before anything can refuse it.
fn note_context(slot: &AuditSlot, ctx: Option<&pb::RequestContext>) {
    if let Some(c) = ctx {
        let cap = |s: &str| s.chars().take(64).collect::<String>();
        slot.note(|f| {
            f.request_id = cap(&c.request_id);
            f.procedure_code = cap(&c.procedure_code);
            f.dossier_id = cap(&c.dossier_id);
        });
    }
}

/// What a citizen-data request says it is for and whom it is about.
trait Asks {
    fn context(&self) -> Option<&pb::RequestContext>;
    fn subject(&self) -> Result<CitizenKey, Refusal>;
}

/// The requests that name their citizen by personal ID or by old ID number.
macro_rules! asks_by_either_number {
    ($($request:ident in $module:ident),*) => {$(
        impl Asks for pb::$request {
            fn context(&self) -> Option<&pb::RequestContext> {
                self.context.as_ref()
            }
            fn subject(&self) -> Result<CitizenKey, Refusal> {
                use pb::$module::Subject as S;
                match &self.subject {
                    Some(S::PersonalId(p)) => subject_key(Some(p), None),
                    Some(S::OldIdNumber(o)) => subject_key(None, Some(o)),
                    None => subject_key(None, None),
                }
            }
        }
    )*};
}

asks_by_either_number!(
    LookupCitizenRequest in lookup_citizen_request,
    AutofillFormRequest in autofill_form_request
);

impl Asks for pb::VerifyCitizenRequest {
    fn context(&self) -> Option<&pb::RequestContext> {
        self.context.as_ref()
    }
    fn subject(&self) -> Result<CitizenKey, Refusal> {
        verification_subject(&self.personal_id, &self.old_id_number, &[]).map(|(key, _)| key)
    }
}

/// Whom a verification names: the 12-digit ID, or, for a source system that holds only the
/// 9-digit number, that number — then verified as a claim of old_id_number too, unless the
/// claims declare it. The claims to check come back with it.
fn verification_subject(
    personal: &str,
    old_id_number: &str,
    declared: &[pb::Claim],
) -> Result<(CitizenKey, Vec<pb::Claim>), Refusal> {
    let non_empty = |s: &str| (!s.is_empty()).then_some(s.to_owned());
    match (non_empty(personal), non_empty(old_id_number)) {
        (Some(_), Some(_)) => Err(Refusal::invalid(
            "old_id_number",
            "is given with personal_id: name the citizen by one of them",
        )),
        (None, Some(old)) => {
            let key = subject_key(None, Some(&old))?;
            let mut claims = declared.to_vec();
            if !claims.iter().any(|c| c.field == "old_id_number") {
                claims.push(pb::Claim {
                    field: "old_id_number".into(),
                    value: old,
                });
            }
            Ok((key, claims))
        }
        _ => Ok((
            CitizenKey::PersonalId(personal_id("personal_id", personal)?),
            declared.to_vec(),
        )),
    }
}

impl Asks for pb::SubmitUpdateRequest {
    fn context(&self) -> Option<&pb::RequestContext> {
        self.context.as_ref()
    }
    fn subject(&self) -> Result<CitizenKey, Refusal> {
        subject_key(Some(&self.personal_id), None)
    }
}

impl Asks for pb::GetUpdateRequest {
    fn context(&self) -> Option<&pb::RequestContext> {
        self.context.as_ref()
    }
    /// The citizen is known once the database has answered.
    fn subject(&self) -> Result<CitizenKey, Refusal> {
        Err(Refusal::invalid("update_id", "names no citizen"))
    }
}

impl Asks for pb::OpenBundleRequest {
    fn context(&self) -> Option<&pb::RequestContext> {
        self.context.as_ref()
    }
    fn subject(&self) -> Result<CitizenKey, Refusal> {
        subject_key(Some(&self.personal_id), None)
    }
}

/// The requests that name a case: the citizen is known once the database has answered.
macro_rules! asks_by_case {
    ($($request:ident),*) => {$(
        impl Asks for pb::$request {
            fn context(&self) -> Option<&pb::RequestContext> {
                self.context.as_ref()
            }
            fn subject(&self) -> Result<CitizenKey, Refusal> {
                Err(Refusal::invalid("case_id", "names no citizen"))
            }
        }
    )*};
}

asks_by_case!(CompleteBundleStepRequest, GetBundleCaseRequest);

impl Asks for pb::GetHouseholdRequest {
    fn context(&self) -> Option<&pb::RequestContext> {
        self.context.as_ref()
    }
    fn subject(&self) -> Result<CitizenKey, Refusal> {
        subject_key(Some(&self.personal_id), None)
    }
}

/// Notes the request's context and the citizen it names, then says who is calling (or the
/// deferred refusal): so that the record of a refused attempt names what it was for.
fn read_request<T: Asks>(
    slot: &AuditSlot,
    request: Request<T>,
) -> Result<(Caller, Officer, T), Refusal> {
    let who = who(&request);
    let req = request.into_inner();
    note_context(slot, req.context());
    if let Ok(key) = req.subject() {
        note_subject(slot, &key);
    }
    let (caller, officer) = who?;
    Ok((caller, officer, req))
}

fn note_subject(slot: &AuditSlot, key: &CitizenKey) {
    let subject = subject_of(key);
    slot.note(|f| f.subject = Some(subject));
}

/// The trail's subject for a citizen named by either number.
fn subject_of(key: &CitizenKey) -> Subject {
    match key {
        CitizenKey::PersonalId(p) => Subject::Personal(p.clone()),
        CitizenKey::OldId(o) => Subject::Old(o.clone()),
    }
}

/// What the trail says a verification compared: each field with its verdict
/// (`date_of_birth:MISMATCH`).
fn verdicts(checks: &[FieldCheck]) -> Vec<String> {
    checks
        .iter()
        .map(|c| {
            let verdict = match c.outcome {
                Outcome::Match => "MATCH",
                Outcome::Mismatch => "MISMATCH",
                Outcome::NotOnRecord => "NOT_ON_RECORD",
                Outcome::NotProvided => "NOT_PROVIDED",
                Outcome::MatchIgnoringDiacritics => "MATCH_IGNORING_DIACRITICS",
                Outcome::LegacyEncoding => "LEGACY_ENCODING",
                Outcome::Superseded => "SUPERSEDED",
            };
            format!("{}:{verdict}", c.field)
        })
        .collect()
}

/// The caller and officer the pipeline established, or the refusal a pipeline step deferred
/// to this handler (which has by then noted what the request was for).
fn who<T>(request: &Request<T>) -> Result<(Caller, Officer), Refusal> {
    if let Some(Deferred(refusal)) = request.extensions().get::<Deferred>() {
        return Err(refusal.clone());
    }
    let caller = request.extensions().get::<Caller>().cloned();
    let officer = request.extensions().get::<Officer>().cloned();
    caller
        .zip(officer)
        .ok_or_else(|| Refusal::Internal("a handler ran without the pipeline".into()))
}

fn context(ctx: Option<&pb::RequestContext>) -> Result<RequestContext, Refusal> {
    let Some(ctx) = ctx else {
        return Err(Refusal::invalid(
            "context",
            "is missing: every request names its request_id, procedure_code and dossier_id",
        ));
    };
    let mut errors = Vec::new();
    let request_id = RequestId::parse(&ctx.request_id)
        .map_err(|e| errors.push(("context.request_id".to_owned(), e.to_string())))
        .ok();
    let procedure = ProcedureCode::parse(&ctx.procedure_code)
        .map_err(|e| errors.push(("context.procedure_code".to_owned(), e.to_string())))
        .ok();
    let dossier = if ctx.dossier_id.is_empty() {
        errors.push((
            "context.dossier_id".to_owned(),
            "is missing: name the dossier (mã hồ sơ) this request serves; lookups without a dossier are refused".to_owned(),
        ));
        None
    } else {
        DossierId::parse(&ctx.dossier_id)
            .map_err(|e| errors.push(("context.dossier_id".to_owned(), e.to_string())))
            .ok()
    };
    let channel = channel(ctx)
        .map_err(|(field, why)| errors.push((field.to_owned(), why)))
        .ok();
    match (request_id, procedure, dossier, channel) {
        (Some(request_id), Some(procedure), Some(dossier), Some(channel)) => Ok(RequestContext {
            request_id,
            procedure,
            dossier,
            channel,
        }),
        _ => Err(Refusal::InvalidArgument(errors)),
    }
}

/// The channel and, on the citizen-consent channel, its token (bounded, not yet verified).
fn channel(ctx: &pb::RequestContext) -> Result<Channel, (&'static str, String)> {
    let token = ctx.consent_token.trim();
    match pb::Channel::try_from(ctx.channel) {
        Ok(pb::Channel::Unspecified | pb::Channel::OfficerDossier) if token.is_empty() => {
            Ok(Channel::OfficerDossier)
        }
        Ok(pb::Channel::Unspecified | pb::Channel::OfficerDossier) => Err((
            "context.consent_token",
            "is only read on the citizen-consent channel: set context.channel to CHANNEL_CITIZEN_CONSENT, or leave the token out".into(),
        )),
        Ok(pb::Channel::CitizenConsent) if token.is_empty() => Err((
            "context.consent_token",
            "is missing: the citizen-consent channel needs the token of the citizen's VNeID consent to this procedure".into(),
        )),
        Ok(pb::Channel::CitizenConsent) if token.len() > MAX_CONSENT_TOKEN_BYTES => Err((
            "context.consent_token",
            format!("is longer than {MAX_CONSENT_TOKEN_BYTES} bytes: it is not a consent token"),
        )),
        Ok(pb::Channel::CitizenConsent) => Ok(Channel::CitizenConsent {
            token: token.to_owned(),
        }),
        Err(_) => Err((
            "context.channel",
            format!(
                "{} is not a channel: use CHANNEL_OFFICER_DOSSIER (1) or CHANNEL_CITIZEN_CONSENT (2)",
                ctx.channel
            ),
        )),
    }
}

/// The longest value and evidence reference a write-back takes.
const MAX_UPDATE_TEXT: usize = 128;

/// The consent is the citizen's own.
fn consent_of(consent: &Consent, subject: &PersonalId) -> Result<(), Refusal> {
    if consent.citizen == *subject {
        Ok(())
    } else {
        Err(Refusal::Consent(
            "it is another citizen's consent: only the citizen the form is about can consent to it"
                .into(),
        ))
    }
}

/// Only a level 2 VNeID account consents to sharing population data.
fn may_consent(level: EidLevel) -> Result<(), Refusal> {
    let (detail, detail_vi) = match level {
        EidLevel::Level2 => return Ok(()),
        EidLevel::Level1Pending => (
            "the citizen's level 1 VNeID account is still awaiting approval (two to three days) and cannot log in: apply on the officer channel at the one-stop desk, or once the account is approved and raised to level 2",
            "tài khoản định danh điện tử mức 1 của công dân đang chờ phê duyệt (2–3 ngày), chưa đăng nhập được: đề nghị nộp hồ sơ trực tiếp tại bộ phận một cửa, hoặc sau khi tài khoản được phê duyệt và nâng lên mức 2",
        ),
        EidLevel::Level1 => (
            "the citizen's VNeID account is level 1: consent to share population data needs level 2 (identity checked in person); apply on the officer channel at the one-stop desk",
            "tài khoản định danh điện tử của công dân ở mức 1: việc đồng ý chia sẻ dữ liệu dân cư cần tài khoản mức 2; đề nghị nộp hồ sơ trực tiếp tại bộ phận một cửa",
        ),
        EidLevel::None => (
            "the citizen has no VNeID account: apply on the officer channel at the one-stop desk",
            "công dân chưa có tài khoản định danh điện tử: đề nghị nộp hồ sơ trực tiếp tại bộ phận một cửa",
        ),
    };
    Err(Refusal::ConsentNotPossible {
        detail: detail.into(),
        detail_vi: detail_vi.into(),
    })
}

/// The current year (UTC), for numbers whose birth year lies in the future.
fn current_year() -> i32 {
    let days = timestamp_us().div_euclid(86_400_000_000);
    lienthong_domain::date::civil_from_days(days).0
}

fn personal_id(field: &str, s: &str) -> Result<PersonalId, Refusal> {
    PersonalId::parse_born_by(s, current_year()).map_err(|e| Refusal::invalid(field, e))
}

fn subject_key(personal: Option<&str>, old: Option<&str>) -> Result<CitizenKey, Refusal> {
    match (personal, old) {
        (Some(p), _) => Ok(CitizenKey::PersonalId(personal_id("personal_id", p)?)),
        (None, Some(o)) => Ok(CitizenKey::OldId(
            OldIdNumber::parse(o).map_err(|e| Refusal::invalid("old_id_number", e))?,
        )),
        (None, None) => Err(Refusal::invalid(
            "subject",
            "is missing: give personal_id (12 digits) or old_id_number (9 digits)",
        )),
    }
}

/// At most this many entries in a request's `fields` (the citizen record has 23 fields).
pub const MAX_FIELDS: usize = 32;
/// At most this many claims in one verification (one per verifiable field).
pub const MAX_CLAIMS: usize = verify::VERIFIABLE.len();
/// A declared value is at most this many characters.
pub const MAX_CLAIM_VALUE_CHARS: usize = 256;

/// Parsed field names, each once, in the order first named.
fn field_names(names: &[String], at: &str) -> Result<Vec<CitizenField>, Refusal> {
    if names.len() > MAX_FIELDS {
        return Err(Refusal::invalid(
            at,
            format!(
                "has {} entries; at most {MAX_FIELDS}: name each field once",
                names.len()
            ),
        ));
    }
    let mut fields = Vec::new();
    let mut errors = Vec::new();
    for (i, n) in names.iter().enumerate() {
        match CitizenField::parse(n) {
            Ok(f) if !fields.contains(&f) => fields.push(f),
            Ok(_) => {}
            Err(e) => errors.push((format!("{at}[{i}]"), e.to_string())),
        }
    }
    if errors.is_empty() {
        Ok(fields)
    } else {
        Err(Refusal::InvalidArgument(errors))
    }
}

/// Parsed claims: each a verifiable field the procedure allows.
fn claims(
    permit: &Permit<'_>,
    claims: &[pb::Claim],
) -> Result<Vec<(CitizenField, String)>, Refusal> {
    if claims.is_empty() {
        return Err(Refusal::invalid(
            "claims",
            "is empty: declare at least one value to verify",
        ));
    }
    if claims.len() > MAX_CLAIMS {
        return Err(Refusal::invalid(
            "claims",
            format!(
                "has {} claims; at most {MAX_CLAIMS}: one claim per field per request",
                claims.len()
            ),
        ));
    }
    let mut errors = Vec::new();
    let mut fields: Vec<CitizenField> = Vec::with_capacity(claims.len());
    for (i, c) in claims.iter().enumerate() {
        match CitizenField::parse(&c.field) {
            Ok(f) if fields.contains(&f) => errors.push((
                format!("claims[{i}].field"),
                format!(
                    "{} is claimed more than once: one claim per field per request",
                    f.as_str()
                ),
            )),
            Ok(f) => fields.push(f),
            Err(e) => errors.push((format!("claims[{i}].field"), e.to_string())),
        }
        if c.value.chars().count() > MAX_CLAIM_VALUE_CHARS {
            errors.push((
                format!("claims[{i}].value"),
                format!("is longer than {MAX_CLAIM_VALUE_CHARS} characters"),
            ));
        }
    }
    if !errors.is_empty() {
        return Err(Refusal::InvalidArgument(errors));
    }
    let not_verifiable: Vec<(String, String)> = fields
        .iter()
        .enumerate()
        .filter(|(_, f)| !verify::VERIFIABLE.contains(f))
        .map(|(i, f)| {
            (
                format!("claims[{i}].field"),
                verify::ClaimError::NotVerifiable {
                    field: f.as_str().to_owned(),
                }
                .to_string(),
            )
        })
        .collect();
    if !not_verifiable.is_empty() {
        return Err(Refusal::InvalidArgument(not_verifiable));
    }
    permit.fields(&fields)?;
    Ok(fields
        .into_iter()
        .zip(claims.iter().map(|c| c.value.clone()))
        .collect())
}

fn check_claims(
    record: &CitizenRecord,
    claims: &[(CitizenField, String)],
) -> Result<Vec<FieldCheck>, Refusal> {
    let mut checks = Vec::new();
    let mut errors = Vec::new();
    for (i, (field, value)) in claims.iter().enumerate() {
        match verify::check(record, *field, value) {
            Ok(c) => checks.push(c),
            Err(e) => errors.push((format!("claims[{i}].value"), e.to_string())),
        }
    }
    if errors.is_empty() {
        Ok(checks)
    } else {
        Err(Refusal::InvalidArgument(errors))
    }
}

fn verification_to_pb(
    permit: &Permit<'_>,
    record: &CitizenRecord,
    checks: Vec<FieldCheck>,
) -> pb::VerifyCitizenResponse {
    let result = match verify::overall(&checks) {
        Overall::Match => pb::OverallResult::Match,
        Overall::Mismatch => pb::OverallResult::Mismatch,
        Overall::NeedsReview => pb::OverallResult::NeedsReview,
    };
    pb::VerifyCitizenResponse {
        result: result as i32,
        fields: checks
            .into_iter()
            .map(|c| pb::FieldVerification {
                field: c.field,
                result: match c.outcome {
                    Outcome::Match => pb::FieldResult::Match,
                    Outcome::Mismatch => pb::FieldResult::Mismatch,
                    Outcome::NotOnRecord => pb::FieldResult::NotOnRecord,
                    Outcome::NotProvided => pb::FieldResult::NotProvided,
                    Outcome::MatchIgnoringDiacritics => pb::FieldResult::MatchIgnoringDiacritics,
                    Outcome::LegacyEncoding => pb::FieldResult::LegacyEncoding,
                    Outcome::Superseded => pb::FieldResult::Superseded,
                } as i32,
                normalizations: c
                    .normalizations
                    .iter()
                    .map(|n| {
                        (match n {
                            Normalization::UnicodeNfc => pb::Normalization::UnicodeNfc,
                            Normalization::Case => pb::Normalization::Case,
                            Normalization::Whitespace => pb::Normalization::Whitespace,
                            Normalization::Diacritics => pb::Normalization::Diacritics,
                            Normalization::DateFormat => pb::Normalization::DateFormat,
                            Normalization::Address => pb::Normalization::Address,
                            Normalization::TonePlacement => pb::Normalization::TonePlacement,
                            Normalization::Pre2025Units => pb::Normalization::Pre2025Units,
                        }) as i32
                    })
                    .collect(),
                explanation: c.explanation,
                explanation_vi: c.explanation_vi,
            })
            .collect(),
        subject_deceased: permit.procedure.fields.contains(&CitizenField::LifeStatus)
            && matches!(
                record.life_status,
                lienthong_domain::LifeStatus::Deceased { .. }
            ),
    }
}

fn purpose_to_pb(p: Purpose) -> pb::Purpose {
    match p {
        Purpose::AdministrativeProcedure => pb::Purpose::AdministrativeProcedure,
        Purpose::SocioEconomicStatistics => pb::Purpose::SocioEconomicStatistics,
        Purpose::DigitalCitizen => pb::Purpose::DigitalCitizen,
        Purpose::DataEcosystem => pb::Purpose::DataEcosystem,
        Purpose::LeadershipDecision => pb::Purpose::LeadershipDecision,
    }
}

fn procedure_to_pb(p: &Procedure, available: bool) -> pb::Procedure {
    pb::Procedure {
        code: p.code.to_string(),
        name: p.name.clone(),
        name_en: p.name_en.clone(),
        purpose: purpose_to_pb(p.purpose) as i32,
        allowed_fields: p.fields.iter().map(|f| f.as_str().to_owned()).collect(),
        roles: p.roles.iter().map(|r| r.as_str().to_owned()).collect(),
        household_access: p.household_access,
        code_status: match p.code_status {
            CodeStatus::National => pb::CodeStatus::National,
            CodeStatus::Superseded => pb::CodeStatus::Superseded,
            CodeStatus::Illustrative => pb::CodeStatus::Illustrative,
        } as i32,
        updatable_fields: p.updates.iter().map(|f| f.as_str().to_owned()).collect(),
        form_id: p.form.id.clone(),
        form_fields: p
            .form
            .fields
            .iter()
            .map(|f| pb::FormField {
                key: f.key.clone(),
                label: f.label.clone(),
                attribute: f.attribute.map(|a| a.to_string()).unwrap_or_default(),
            })
            .collect(),
        bundle: p.bundle.iter().map(|b| b.to_string()).collect(),
        available,
    }
}

fn item_error(r: &Refusal) -> pb::ItemError {
    let (message, message_vi) = r.messages();
    pb::ItemError {
        code: r.code() as i32,
        reason: match r {
            Refusal::InvalidArgument(_) => "MALFORMED_ITEM",
            other => other.reason(),
        }
        .to_owned(),
        message,
        message_vi,
    }
}

impl<C: Clock + Clone + Send + Sync + 'static> Gateway<C> {
    /// The permit of a request on the officer channel.
    fn permit<'c>(
        &self,
        slot: &AuditSlot,
        caller: &'c Caller,
        officer: &Officer,
        ctx: Option<&pb::RequestContext>,
    ) -> Result<Permit<'c>, Refusal> {
        let permit = self.permit_on_any_channel(slot, caller, officer, ctx)?;
        if permit.context.channel != Channel::OfficerDossier {
            return Err(Refusal::invalid(
                "context.channel",
                "the citizen-consent channel serves AutofillForm only: look up, verify and read households on the officer channel (CHANNEL_OFFICER_DOSSIER)",
            ));
        }
        Ok(permit)
    }

    fn permit_on_any_channel<'c>(
        &self,
        slot: &AuditSlot,
        caller: &'c Caller,
        officer: &Officer,
        ctx: Option<&pb::RequestContext>,
    ) -> Result<Permit<'c>, Refusal> {
        note_context(slot, ctx);
        let permit = policy::authorize(
            self.environment,
            &caller.catalog,
            caller,
            officer,
            context(ctx)?,
        )?;
        let purpose = permit.procedure.purpose.as_str();
        slot.note(|f| {
            f.purpose = match permit.context.channel {
                Channel::OfficerDossier => purpose.to_owned(),
                Channel::CitizenConsent { .. } => format!("{purpose}/citizen_consent"),
            }
        });
        Ok(permit)
    }

    /// On the citizen-consent channel: the consent token is the subject's own, for this
    /// procedure, and their VNeID account may consent (level 2). Checked before the record is
    /// read when the request names the personal ID, and against the record after.
    fn consent_before(
        &self,
        caller: &Caller,
        permit: &Permit<'_>,
        key: &CitizenKey,
    ) -> Result<Option<Consent>, Refusal> {
        let Channel::CitizenConsent { token } = &permit.context.channel else {
            return Ok(None);
        };
        let consent = self.authn.consent(token, caller)?;
        if consent.procedure != permit.procedure.code.as_str() {
            return Err(Refusal::Consent(format!(
                "it consents to procedure {}, not to {}: ask the citizen to consent to this procedure",
                consent.procedure, permit.procedure.code
            )));
        }
        if let CitizenKey::PersonalId(id) = key {
            consent_of(&consent, id)?;
        }
        Ok(Some(consent))
    }

    async fn lookup(
        &self,
        slot: &AuditSlot,
        request: Request<pb::LookupCitizenRequest>,
    ) -> Result<pb::LookupCitizenResponse, Refusal> {
        let (caller, officer, req) = read_request(slot, request)?;
        let permit = self.permit(slot, &caller, &officer, req.context.as_ref())?;
        let key = req.subject()?;
        let fields = permit.fields(&field_names(&req.fields, "fields")?)?;
        let _slot = self.upstream.enter(&caller.unit.code)?;
        let record = self
            .upstream
            .citizen(&key, &permit.context.request_id)
            .await?;
        slot.note(|f| {
            f.subject = Some(Subject::Personal(record.personal_id.clone()));
            f.fields = fields.iter().map(|f| f.as_str().to_owned()).collect();
        });
        Ok(pb::LookupCitizenResponse {
            citizen: Some(citizen_to_pb_disclosed(&record, &fields)),
            disclosed_fields: fields.iter().map(|f| f.as_str().to_owned()).collect(),
        })
    }

    async fn verify(
        &self,
        slot: &AuditSlot,
        request: Request<pb::VerifyCitizenRequest>,
    ) -> Result<pb::VerifyCitizenResponse, Refusal> {
        let (caller, officer, req) = read_request(slot, request)?;
        let permit = self.permit(slot, &caller, &officer, req.context.as_ref())?;
        let (key, declared) =
            verification_subject(&req.personal_id, &req.old_id_number, &req.claims)?;
        let claims = claims(&permit, &declared)?;
        let record = self
            .verified_record(&permit, &caller, &officer, &key, &claims)
            .await?;
        slot.note(|f| f.subject = Some(Subject::Personal(record.personal_id.clone())));
        let checks = check_claims(&record, &claims)?;
        slot.note(|f| f.fields = verdicts(&checks));
        Ok(verification_to_pb(&permit, &record, checks))
    }

    async fn autofill(
        &self,
        slot: &AuditSlot,
        request: Request<pb::AutofillFormRequest>,
    ) -> Result<pb::AutofillFormResponse, Refusal> {
        let (caller, officer, req) = read_request(slot, request)?;
        let permit = self.permit_on_any_channel(slot, &caller, &officer, req.context.as_ref())?;
        let key = req.subject()?;
        let consent = self.consent_before(&caller, &permit, &key)?;
        let _slot = self.upstream.enter(&caller.unit.code)?;
        self.fill_form(
            slot,
            &caller,
            Filling {
                procedure: permit.procedure,
                request_id: &permit.context.request_id,
                subject: Whose::ToRead(key),
                consent: consent.as_ref(),
                method: AUTOFILL_METHOD,
            },
        )
        .await
    }

    /// A procedure's form filled from the subject's record (and, where the form needs them, the
    /// records of the subject's parents or spouse, each read recorded under its own pseudonym).
    async fn fill_form(
        &self,
        slot: &AuditSlot,
        caller: &Caller,
        filling: Filling<'_>,
    ) -> Result<pb::AutofillFormResponse, Refusal> {
        let Filling {
            procedure,
            request_id,
            subject: key,
            consent,
            method,
        } = filling;
        let subject = match key {
            Whose::ToRead(key) => self.upstream.citizen(&key, request_id).await?,
            Whose::Read(record) => *record,
        };
        slot.note(|f| f.subject = Some(Subject::Personal(subject.personal_id.clone())));
        let fill_channel = match consent {
            Some(consent) => {
                consent_of(consent, &subject.personal_id)?;
                may_consent(subject.eid_level)?;
                autofill::FillChannel::CitizenConsent
            }
            None => autofill::FillChannel::Officer,
        };
        let template = &procedure.form;
        let mut related = Related::default();
        for (link, id) in autofill::records_needed(&subject, template) {
            let record = match self
                .upstream
                .citizen(&CitizenKey::PersonalId(id), request_id)
                .await
            {
                Ok(r) => Some(r),
                Err(Refusal::CitizenNotFound) => None,
                Err(e) => return Err(e),
            };
            match link {
                Link::Father => related.father = record,
                Link::Mother => related.mother = record,
                Link::Spouse => related.spouse = record,
                Link::Itself => {}
            }
        }
        let form = autofill::fill(template, &subject, &related, fill_channel);
        // The other people whose own records were read get records of their own, so a search
        // by their personal ID finds this access too.
        for (link, person) in [
            (Link::Father, &related.father),
            (Link::Mother, &related.mother),
            (Link::Spouse, &related.spouse),
        ] {
            let Some(person) = person else { continue };
            let fields: Vec<String> = form
                .filled
                .iter()
                .filter(|f| autofill::link(&subject, template.subject, f.attribute.person) == link)
                .map(|f| f.attribute.to_string())
                .collect();
            // Named as the form names them ("father" for a declaring mother's spouse).
            let role = fields
                .first()
                .and_then(|f| f.split_once('.'))
                .map(|(person, _)| person.to_owned())
                .unwrap_or_else(|| format!("{link:?}").to_lowercase());
            self.audit_other(slot, caller, method, &role, &person.personal_id, fields)
                .await?;
        }
        slot.note(|f| {
            f.fields = form
                .filled
                .iter()
                .map(|f| f.attribute.to_string())
                .collect()
        });
        Ok(pb::AutofillFormResponse {
            procedure_code: procedure.code.to_string(),
            form_id: template.id.clone(),
            filled: form
                .filled
                .into_iter()
                .map(|f| pb::FilledField {
                    form_field: f.key,
                    label: f.label,
                    value: f.value,
                    attribute: f.attribute.to_string(),
                    provenance: f
                        .provenance
                        .map(|p| lienthong_proto::csdl::v1::FieldProvenance {
                            field: p.field.as_str().to_owned(),
                            source: p.source.as_str().to_owned(),
                            updated_at: Some(lienthong_proto::Timestamp {
                                seconds: p.updated_at,
                                nanos: 0,
                            }),
                            source_system: p.system.unwrap_or_default(),
                        }),
                })
                .collect(),
            unfilled: form
                .unfilled
                .into_iter()
                .map(|u| pb::UnfilledField {
                    form_field: u.key,
                    label: u.label,
                    reason: match u.reason {
                        UnfilledReason::NotOnRecord => pb::UnfilledReason::NotOnRecord,
                        UnfilledReason::PartialValue => pb::UnfilledReason::PartialValue,
                        UnfilledReason::RelatedRecordMissing => {
                            pb::UnfilledReason::RelatedRecordMissing
                        }
                        UnfilledReason::MustBeDeclared => pb::UnfilledReason::MustBeDeclared,
                        UnfilledReason::WithheldByChannel => pb::UnfilledReason::WithheldByChannel,
                    } as i32,
                    explanation: u.explanation,
                    explanation_vi: u.explanation_vi,
                })
                .collect(),
        })
    }

    /// Records, durably, that another person's data was read or returned for this request:
    /// a record under their own pseudonym, with the request id `<request id>#<suffix>`.
    async fn audit_other(
        &self,
        slot: &AuditSlot,
        caller: &Caller,
        method: &str,
        suffix: &str,
        person: &PersonalId,
        fields: Vec<String>,
    ) -> Result<(), Refusal> {
        let mut facts = slot.facts();
        facts.request_id = format!("{}#{suffix}", facts.request_id);
        facts.subject = Some(Subject::Personal(person.clone()));
        facts.fields = fields;
        let peer = caller.peer.map(|p| p.to_string()).unwrap_or_default();
        let entry = self.auditor.entry(
            &facts,
            &Call {
                method,
                peer: &peer,
                time_us: timestamp_us(),
                latency_us: 0,
                code: 0,
            },
        );
        self.auditor
            .log
            .append(entry)
            .await
            .map(|_| ())
            .map_err(|_| Refusal::AuditUnavailable)
    }

    /// Write-back: one field sent back to the database, under a procedure that may update it.
    /// The source system is the calling unit, from its certificate.
    async fn submit(
        &self,
        slot: &AuditSlot,
        request: Request<pb::SubmitUpdateRequest>,
    ) -> Result<pb::SubmitUpdateResponse, Refusal> {
        let (caller, officer, req) = read_request(slot, request)?;
        let permit = self.permit(slot, &caller, &officer, req.context.as_ref())?;
        let id = personal_id("personal_id", &req.personal_id)?;
        let field = CitizenField::parse(&req.field).map_err(|e| Refusal::invalid("field", e))?;
        if !permit.procedure.updates.contains(&field) {
            return Err(Refusal::FieldNotAllowed {
                procedure: permit.procedure.code.to_string(),
                fields: format!("{} (to update)", field.as_str()),
            });
        }
        for (name, value) in [("value", &req.value), ("evidence_ref", &req.evidence_ref)] {
            if value.len() > MAX_UPDATE_TEXT {
                return Err(Refusal::invalid(
                    name,
                    format!("is longer than {MAX_UPDATE_TEXT} bytes"),
                ));
            }
        }
        if req.value.trim().is_empty() {
            return Err(Refusal::invalid("value", "is empty: send the new value"));
        }
        slot.note(|f| f.fields = vec![field.as_str().to_owned()]);
        let _slot = self.upstream.enter(&caller.unit.code)?;
        let update = self
            .upstream
            .submit_update(lienthong_proto::csdl::v1::SubmitUpdateRequest {
                personal_id: id.as_str().to_owned(),
                field: field.as_str().to_owned(),
                value: req.value,
                source_system: caller.unit.code.to_string(),
                dossier_id: permit.context.dossier.to_string(),
                evidence_ref: req.evidence_ref,
                request_id: permit.context.request_id.to_string(),
            })
            .await?;
        Ok(pb::SubmitUpdateResponse {
            update: Some(update),
        })
    }

    /// Where one of the unit's updates stands.
    async fn update_status(
        &self,
        slot: &AuditSlot,
        request: Request<pb::GetUpdateRequest>,
    ) -> Result<pb::GetUpdateResponse, Refusal> {
        let (caller, officer, req) = read_request(slot, request)?;
        let permit = self.permit(slot, &caller, &officer, req.context.as_ref())?;
        if permit.procedure.updates.is_empty() {
            return Err(Refusal::FieldNotAllowed {
                procedure: permit.procedure.code.to_string(),
                fields: "(none to update)".into(),
            });
        }
        database_id(
            &req.update_id,
            "CN",
            "update_id",
            "an update id",
            "SubmitUpdate",
        )?;
        let _slot = self.upstream.enter(&caller.unit.code)?;
        let update = self
            .upstream
            .update(&req.update_id, caller.unit.code.as_str())
            .await?;
        if let Ok(id) = PersonalId::parse(&update.personal_id) {
            slot.note(|f| f.subject = Some(Subject::Personal(id)));
        }
        Ok(pb::GetUpdateResponse {
            update: Some(update),
        })
    }

    /// Opens a bundle case under the bundle's procedure, with the bundle's form filled.
    async fn open_bundle(
        &self,
        slot: &AuditSlot,
        request: Request<pb::OpenBundleRequest>,
    ) -> Result<pb::BundleResponse, Refusal> {
        let (caller, officer, req) = read_request(slot, request)?;
        let permit = self.permit(slot, &caller, &officer, req.context.as_ref())?;
        let kind = bundle_kind(permit.procedure)?;
        let id = personal_id("personal_id", &req.personal_id)?;
        let _slot = self.upstream.enter(&caller.unit.code)?;
        let subject = self
            .upstream
            .citizen(
                &CitizenKey::PersonalId(id.clone()),
                &permit.context.request_id,
            )
            .await?;
        if kind == csdl::BundleKind::Birth
            && matches!(
                subject.life_status,
                lienthong_domain::LifeStatus::Deceased { .. }
            )
        {
            return Err(Refusal::invalid(
                "personal_id",
                "names a declaring parent who has died: the birth is declared by the other parent or a relative",
            ));
        }
        let form = self
            .fill_form(
                slot,
                &caller,
                Filling {
                    procedure: permit.procedure,
                    request_id: &permit.context.request_id,
                    subject: Whose::Read(Box::new(subject)),
                    consent: None,
                    method: OPEN_BUNDLE_METHOD,
                },
            )
            .await?;
        let case = self
            .upstream
            .open_case(csdl::OpenCaseRequest {
                kind: kind as i32,
                personal_id: id.as_str().to_owned(),
                source_system: caller.unit.code.to_string(),
                dossier_id: permit.context.dossier.to_string(),
                request_id: permit.context.request_id.to_string(),
            })
            .await?;
        Ok(pb::BundleResponse {
            case: Some(case),
            form: Some(form),
        })
    }

    /// One agency's action on a case's ready step, under the step's own procedure: the step's
    /// form filled from the record as it stands, then the action.
    async fn complete_bundle_step(
        &self,
        slot: &AuditSlot,
        request: Request<pb::CompleteBundleStepRequest>,
    ) -> Result<pb::BundleResponse, Refusal> {
        let (caller, officer, req) = read_request(slot, request)?;
        let permit = self.permit(slot, &caller, &officer, req.context.as_ref())?;
        let case_id = case_id(&req.case_id)?;
        let procedure = permit.procedure;
        if req.entered.len() > MAX_ENTERED {
            return Err(Refusal::invalid(
                "entered",
                format!("holds {} values: at most {MAX_ENTERED}", req.entered.len()),
            ));
        }
        for (i, e) in req.entered.iter().enumerate() {
            if e.value.len() > MAX_UPDATE_TEXT {
                return Err(Refusal::invalid(
                    format!("entered[{i}].value"),
                    format!("is longer than {MAX_UPDATE_TEXT} bytes"),
                ));
            }
        }
        let _slot = self.upstream.enter(&caller.unit.code)?;
        let case = self
            .upstream
            .case(&case_id, caller.unit.code.as_str())
            .await?;
        if let Ok(subject) = PersonalId::parse(&case.subject_personal_id) {
            slot.note(|f| f.subject = Some(Subject::Personal(subject)));
        }
        let step = case
            .steps
            .iter()
            .find(|s| s.procedure_code == procedure.code.as_str())
            .ok_or_else(|| {
                let steps: Vec<&str> = case
                    .steps
                    .iter()
                    .map(|s| s.procedure_code.as_str())
                    .collect();
                Refusal::invalid(
                    "context.procedure_code",
                    format!(
                        "{} is not a step of case {case_id}: act under one of its steps' procedures ({})",
                        procedure.code,
                        steps.join(", ")
                    ),
                )
            })?;
        // A step waiting for another is refused here; a done one goes to the database, which
        // gives back the case for a repeated request and refuses anything else.
        let not_ready = step_ready(&case, step).err();
        if step.status == csdl::StepStatus::Waiting as i32
            && let Some(refusal) = not_ready
        {
            return Err(refusal);
        }
        let subject = PersonalId::parse(&step.subject_personal_id).map_err(|_| {
            Refusal::UpstreamUnavailable("the database replied with a malformed case".into())
        })?;
        let form = self
            .fill_form(
                slot,
                &caller,
                Filling {
                    procedure,
                    request_id: &permit.context.request_id,
                    subject: Whose::ToRead(CitizenKey::PersonalId(subject)),
                    consent: None,
                    method: COMPLETE_STEP_METHOD,
                },
            )
            .await?;
        // The officer enters what the record could not fill.
        let open: Vec<&str> = form
            .unfilled
            .iter()
            .map(|u| u.form_field.as_str())
            .collect();
        for (i, e) in req.entered.iter().enumerate() {
            if !open.contains(&e.key.as_str()) {
                let key: String = e.key.chars().take(64).collect();
                return Err(Refusal::invalid(
                    format!("entered[{i}].key"),
                    format!(
                        "{key:?} is not a field of form {} left for the officer to enter (the record fills the others); enter: {}",
                        procedure.form.id,
                        open.join(", ")
                    ),
                ));
            }
        }
        let case = self
            .upstream
            .complete_case_step(csdl::CompleteCaseStepRequest {
                case_id,
                procedure_code: procedure.code.to_string(),
                entered: req.entered,
                source_system: caller.unit.code.to_string(),
                officer: officer.code.to_string(),
                request_id: permit.context.request_id.to_string(),
            })
            .await
            .map_err(|e| match (e, not_ready) {
                (Refusal::StepNotReady { .. }, Some(ours)) => ours,
                (e, _) => e,
            })?;
        self.audit_case_people(slot, &caller, COMPLETE_STEP_METHOD, &case)
            .await?;
        Ok(pb::BundleResponse {
            case: Some(case),
            form: Some(form),
        })
    }

    /// Where a case stands, under the bundle's procedure or one of its steps'.
    async fn bundle_case(
        &self,
        slot: &AuditSlot,
        request: Request<pb::GetBundleCaseRequest>,
    ) -> Result<pb::BundleResponse, Refusal> {
        let (caller, officer, req) = read_request(slot, request)?;
        let permit = self.permit(slot, &caller, &officer, req.context.as_ref())?;
        let case_id = case_id(&req.case_id)?;
        let _slot = self.upstream.enter(&caller.unit.code)?;
        let case = self
            .upstream
            .case(&case_id, caller.unit.code.as_str())
            .await?;
        let code = permit.procedure.code.as_str();
        let steps: Vec<&str> = case
            .steps
            .iter()
            .map(|s| s.procedure_code.as_str())
            .collect();
        let bundle: Vec<&str> = permit.procedure.bundle.iter().map(|c| c.as_str()).collect();
        if !steps.contains(&code) && bundle != steps {
            return Err(Refusal::invalid(
                "context.procedure_code",
                format!(
                    "{code} is neither the case's bundle nor one of its steps ({})",
                    steps.join(", ")
                ),
            ));
        }
        if let Ok(subject) = PersonalId::parse(&case.subject_personal_id) {
            slot.note(|f| {
                f.subject = Some(Subject::Personal(subject));
                f.fields = vec!["personal_id".to_owned()];
            });
        }
        self.audit_case_people(slot, &caller, GET_CASE_METHOD, &case)
            .await?;
        Ok(pb::BundleResponse {
            case: Some(case),
            form: None,
        })
    }

    /// The people a case names besides its subject (a newborn): the reply carries their number
    /// and what the steps recorded for them, so each gets a record of their own.
    async fn audit_case_people(
        &self,
        slot: &AuditSlot,
        caller: &Caller,
        method: &str,
        case: &csdl::BundleCase,
    ) -> Result<(), Refusal> {
        let main = slot.facts().subject;
        let mut seen: Vec<&str> = Vec::new();
        let people = std::iter::once(case.subject_personal_id.as_str())
            .chain(case.steps.iter().map(|s| s.subject_personal_id.as_str()));
        for id in people {
            if seen.contains(&id) {
                continue;
            }
            seen.push(id);
            let Ok(person) = PersonalId::parse(id) else {
                continue;
            };
            if matches!(&main, Some(Subject::Personal(p)) if *p == person) {
                continue;
            }
            let mut fields = vec!["personal_id".to_owned()];
            for s in case.steps.iter().filter(|s| s.subject_personal_id == id) {
                for o in &s.outcome {
                    let field = match o.key.as_str() {
                        "household_id" => Some("household"),
                        k => CitizenField::parse(k).ok().map(|f| f.as_str()),
                    };
                    if let Some(f) = field
                        && !fields.iter().any(|x| x == f)
                    {
                        fields.push(f.to_owned());
                    }
                }
            }
            let suffix = format!("case-person-{}", seen.len());
            self.audit_other(slot, caller, method, &suffix, &person, fields)
                .await?;
        }
        Ok(())
    }

    async fn household(
        &self,
        slot: &AuditSlot,
        request: Request<pb::GetHouseholdRequest>,
    ) -> Result<pb::GetHouseholdResponse, Refusal> {
        let (caller, officer, req) = read_request(slot, request)?;
        let permit = self.permit(slot, &caller, &officer, req.context.as_ref())?;
        permit.household()?;
        let id = personal_id("personal_id", &req.personal_id)?;
        let _slot = self.upstream.enter(&caller.unit.code)?;
        let household = self
            .upstream
            .household(&id, &permit.context.request_id)
            .await?;
        // Every other member's number, name and birth date leave too: each gets a record of
        // their own, so a search by their personal ID finds this access.
        for (i, member) in household.members.iter().enumerate() {
            let Ok(member_id) = PersonalId::parse(&member.personal_id) else {
                return Err(Refusal::UpstreamUnavailable(
                    "the database replied with a malformed household member".into(),
                ));
            };
            if member_id == id {
                continue;
            }
            let fields = [
                "personal_id",
                "full_name",
                "date_of_birth",
                "relation_to_head",
            ]
            .map(|f| format!("household.member.{f}"))
            .to_vec();
            self.audit_other(
                slot,
                &caller,
                HOUSEHOLD_METHOD,
                &format!("member-{i}"),
                &member_id,
                fields,
            )
            .await?;
        }
        slot.note(|f| f.fields = vec!["household".to_owned()]);
        Ok(pb::GetHouseholdResponse {
            household: Some(household),
        })
    }

    fn procedures(
        &self,
        request: Request<pb::ListProceduresRequest>,
    ) -> Result<pb::ListProceduresResponse, Refusal> {
        let (caller, officer) = who(&request)?;
        let include_unavailable = request.into_inner().include_unavailable;
        let approved = policy::unit_approved(self.environment, &caller.unit).is_ok();
        Ok(pb::ListProceduresResponse {
            procedures: caller
                .catalog
                .iter()
                .map(|p| {
                    let available = approved
                        && caller.unit.procedures.contains(&p.code)
                        && !p.roles.is_disjoint(&officer.roles);
                    (p, available)
                })
                .filter(|(_, available)| *available || include_unavailable)
                .map(|(p, available)| procedure_to_pb(p, available))
                .collect(),
        })
    }

    /// Takes the claims from the officer's verification budget for this citizen.
    fn charge(
        &self,
        officer: &Officer,
        id: &PersonalId,
        claims: &[(CitizenField, String)],
    ) -> Result<(), Refusal> {
        let fields: Vec<CitizenField> = claims.iter().map(|(f, _)| *f).collect();
        self.budget
            .charge(&officer.code, id, &fields, timestamp_us())
    }

    /// The record a verification compares with, its claims charged to the officer's daily
    /// budget for that citizen: before the read when the request names the personal ID, after
    /// it when the citizen is named by an old number.
    async fn verified_record(
        &self,
        permit: &Permit<'_>,
        caller: &Caller,
        officer: &Officer,
        key: &CitizenKey,
        claims: &[(CitizenField, String)],
    ) -> Result<CitizenRecord, Refusal> {
        if let CitizenKey::PersonalId(id) = key {
            self.charge(officer, id, claims)?;
        }
        let _slot = self.upstream.enter(&caller.unit.code)?;
        let record = self
            .upstream
            .citizen(key, &permit.context.request_id)
            .await?;
        if let CitizenKey::OldId(_) = key {
            self.charge(officer, &record.personal_id, claims)?;
        }
        Ok(record)
    }

    /// One batch item, charged to the officer's, the unit's and the global rate and to the
    /// verification budget like a VerifyCitizen call; its own refusals become an item error,
    /// the batch goes on. Returns the reply and the verdicts for the item's record.
    async fn batch_item(
        &self,
        permit: &Permit<'_>,
        caller: &Caller,
        officer: &Officer,
        item: &pb::VerifyBatchRequest,
    ) -> Result<(pb::VerifyCitizenResponse, Vec<String>, PersonalId), Refusal> {
        self.limits
            .admit_any(&caller.unit.code, &officer.code, true)
            .await?;
        let (key, declared) =
            verification_subject(&item.personal_id, &item.old_id_number, &item.claims)?;
        let claims = claims(permit, &declared)?;
        let record = self
            .verified_record(permit, caller, officer, &key, &claims)
            .await?;
        let checks = check_claims(&record, &claims)?;
        let fields = verdicts(&checks);
        let reply = verification_to_pb(permit, &record, checks);
        Ok((reply, fields, record.personal_id))
    }
}

/// Resolves once the gateway starts draining.
pub async fn drained(draining: &mut watch::Receiver<bool>) {
    let _ = draining.wait_for(|d| *d).await;
}

const BATCH_METHOD: &str = "/lienthong.gateway.v1.CitizenGateway/VerifyBatch";
const AUTOFILL_METHOD: &str = "/lienthong.gateway.v1.CitizenGateway/AutofillForm";
const HOUSEHOLD_METHOD: &str = "/lienthong.gateway.v1.CitizenGateway/GetHousehold";
const OPEN_BUNDLE_METHOD: &str = "/lienthong.gateway.v1.CitizenGateway/OpenBundle";
const COMPLETE_STEP_METHOD: &str = "/lienthong.gateway.v1.CitizenGateway/CompleteBundleStep";
const GET_CASE_METHOD: &str = "/lienthong.gateway.v1.CitizenGateway/GetBundleCase";
/// The most values an officer enters on one step.
const MAX_ENTERED: usize = 16;

/// What a form is filled for: the procedure, the request, the subject, the consent on the
/// citizen-consent channel, and the method other people's records are recorded under.
struct Filling<'a> {
    procedure: &'a Procedure,
    request_id: &'a RequestId,
    subject: Whose,
    consent: Option<&'a Consent>,
    method: &'static str,
}

/// The record that fills a form: one to read, or one the call has already read.
enum Whose {
    ToRead(CitizenKey),
    Read(Box<CitizenRecord>),
}

/// The database's kind of case for a bundle procedure, by its first step.
fn bundle_kind(p: &Procedure) -> Result<csdl::BundleKind, Refusal> {
    match p.bundle.first().map(|c| c.as_str()) {
        Some("1.001193") => Ok(csdl::BundleKind::Birth),
        Some("1.000656") => Ok(csdl::BundleKind::Death),
        Some(_) => Err(Refusal::invalid(
            "context.procedure_code",
            format!(
                "bundle {} is not one the database runs as a case: the birth bundle (from 1.001193) and the death bundle (from 1.000656) are",
                p.code
            ),
        )),
        None => Err(Refusal::invalid(
            "context.procedure_code",
            format!(
                "{} is not an interlinked bundle: open a case under a bundle's code (e.g. LT.KHAISINH, LT.KHAITU)",
                p.code
            ),
        )),
    }
}

/// One of the database's ids: its prefix and ten digits, as `from` returned it.
fn database_id<'s>(
    s: &'s str,
    prefix: &str,
    field: &str,
    what: &str,
    from: &str,
) -> Result<&'s str, Refusal> {
    match s.strip_prefix(prefix) {
        Some(digits) if digits.len() == 10 && digits.bytes().all(|b| b.is_ascii_digit()) => Ok(s),
        _ => Err(Refusal::invalid(
            field,
            format!("is not {what}: \"{prefix}\" and 10 digits, as {from} returned it"),
        )),
    }
}

/// "LT" and ten digits, as OpenBundle returned it.
fn case_id(s: &str) -> Result<String, Refusal> {
    database_id(s, "LT", "case_id", "a case id", "OpenBundle").map(str::to_owned)
}

/// The step may be acted on: handed off (or rejected and acted on again).
fn step_ready(case: &csdl::BundleCase, step: &csdl::CaseStep) -> Result<(), Refusal> {
    use csdl::StepStatus as S;
    let status = S::try_from(step.status).unwrap_or(S::Unspecified);
    let code = &step.procedure_code;
    let (detail, detail_vi) = match status {
        S::Ready | S::Rejected => return Ok(()),
        S::Waiting => {
            let before = case
                .steps
                .iter()
                .take_while(|s| s.procedure_code != *code)
                .filter(|s| s.status != S::Done as i32 && s.status != S::AlreadyOnRecord as i32)
                .map(|s| s.procedure_code.as_str())
                .last()
                .unwrap_or_default();
            (
                format!(
                    "step {code} of case {} waits for step {before}",
                    case.case_id
                ),
                format!(
                    "bước {code} của hồ sơ {} đang chờ bước {before}",
                    case.case_id
                ),
            )
        }
        S::AlreadyOnRecord => (
            format!(
                "step {code} of case {} was already on record when the case opened",
                case.case_id
            ),
            format!(
                "bước {code} của hồ sơ {} đã có trong CSDL trước khi mở hồ sơ",
                case.case_id
            ),
        ),
        _ => (
            format!("step {code} of case {} is already done", case.case_id),
            format!("bước {code} của hồ sơ {} đã hoàn thành", case.case_id),
        ),
    };
    Err(Refusal::StepNotReady { detail, detail_vi })
}

type BatchStream = Pin<Box<dyn Stream<Item = Result<pb::VerifyBatchResponse, Status>> + Send>>;

#[tonic::async_trait]
impl<C: Clock + Clone + Send + Sync + 'static> CitizenGateway for Gateway<C> {
    async fn lookup_citizen(
        &self,
        request: Request<pb::LookupCitizenRequest>,
    ) -> Result<Response<pb::LookupCitizenResponse>, Status> {
        let slot = slot_of(&request);
        answer(&slot, self.lookup(&slot, request).await)
    }

    async fn verify_citizen(
        &self,
        request: Request<pb::VerifyCitizenRequest>,
    ) -> Result<Response<pb::VerifyCitizenResponse>, Status> {
        let slot = slot_of(&request);
        answer(&slot, self.verify(&slot, request).await)
    }

    async fn autofill_form(
        &self,
        request: Request<pb::AutofillFormRequest>,
    ) -> Result<Response<pb::AutofillFormResponse>, Status> {
        let slot = slot_of(&request);
        answer(&slot, self.autofill(&slot, request).await)
    }

    async fn get_household(
        &self,
        request: Request<pb::GetHouseholdRequest>,
    ) -> Result<Response<pb::GetHouseholdResponse>, Status> {
        let slot = slot_of(&request);
        answer(&slot, self.household(&slot, request).await)
    }

    type VerifyBatchStream = BatchStream;

    async fn verify_batch(
        &self,
        request: Request<Streaming<pb::VerifyBatchRequest>>,
    ) -> Result<Response<BatchStream>, Status> {
        let slot = slot_of(&request);
        let who = who(&request);
        let mut input = request.into_inner();
        // The first item names the batch's context, also for the record of a refused batch;
        // a batch refused as a whole names its first citizen too (items have their own records).
        let first = input.message().await;
        if let Ok(Some(first)) = &first {
            note_context(&slot, first.context.as_ref());
        }
        let refuse_batch = |r: Refusal| {
            if let Ok(Some(first)) = &first
                && let Ok(key) = verification_subject(&first.personal_id, &first.old_id_number, &[])
                    .map(|(k, _)| k)
            {
                note_subject(&slot, &key);
            }
            refuse(&slot, r)
        };
        let (caller, officer) = who.map_err(refuse_batch)?;
        let cap = policy::bulk_cap(&caller.unit).map_err(refuse_batch)?;
        let first = match first? {
            Some(first) => first,
            None => {
                return Err(refuse(
                    &slot,
                    Refusal::invalid("context", "the stream ended before its first item"),
                ));
            }
        };
        // Checked now so a refused batch is refused as a whole, before any item.
        let procedure = self
            .permit(&slot, &caller, &officer, first.context.as_ref())
            .map_err(|r| {
                if let Ok(key) = verification_subject(&first.personal_id, &first.old_id_number, &[])
                    .map(|(k, _)| k)
                {
                    note_subject(&slot, &key);
                }
                refuse(&slot, r)
            })?
            .procedure
            .code
            .clone();
        let base = slot.facts();
        let peer = caller.peer.map(|p| p.to_string()).unwrap_or_default();
        let (tx, rx) = mpsc::channel(16);
        let gateway = self.clone();
        tokio::spawn(async move {
            let Ok(permit) = gateway.permit(
                &AuditSlot::default(),
                &caller,
                &officer,
                first.context.as_ref(),
            ) else {
                return;
            };
            // Each item, and a refusal that ends the stream, has its own record, written before
            // its answer is sent.
            let audit = |item_id: &str,
                         subject: Option<Subject>,
                         fields: Vec<String>,
                         started: (i64, Instant),
                         outcome: Option<&Refusal>| {
                let mut facts = base.clone();
                facts.request_id = format!(
                    "{}#{}",
                    base.request_id,
                    item_id.chars().take(64).collect::<String>()
                );
                facts.subject = subject;
                facts.fields = fields;
                facts.refusal = outcome.cloned();
                let code = outcome.map(|r| r.code() as i32).unwrap_or(0);
                let entry: Entry = gateway.auditor.entry(
                    &facts,
                    &Call {
                        method: BATCH_METHOD,
                        peer: &peer,
                        time_us: started.0,
                        latency_us: started.1.elapsed().as_micros() as u64,
                        code,
                    },
                );
                gateway.auditor.metrics.request(&entry, outcome);
                let auditor = gateway.auditor.clone();
                async move { auditor.record(entry).await }
            };
            let mut draining = gateway.draining.clone();
            let mut next = Some(first);
            let mut count: u32 = 0;
            loop {
                let item = match next.take() {
                    Some(item) => item,
                    None => {
                        let idle = gateway.batch_idle;
                        let next = tokio::select! {
                            m = tokio::time::timeout(idle, input.message()) => match m {
                                Ok(m) => m.map_err(Ok),
                                Err(_) => Err(Err(Refusal::BatchIdle { idle, answered: count })),
                            },
                            () = drained(&mut draining) => {
                                Err(Ok(Refusal::ShuttingDown { answered: count }.to_status()))
                            }
                        };
                        match next {
                            Ok(Some(item)) => item,
                            Ok(None) => break,
                            Err(Ok(status)) => {
                                let _ = tx.send(Err(status)).await;
                                break;
                            }
                            // An idle stream is closed, and its end is recorded.
                            Err(Err(refusal)) => {
                                let started = (timestamp_us(), Instant::now());
                                let status =
                                    match audit("idle", None, Vec::new(), started, Some(&refusal))
                                        .await
                                    {
                                        Ok(_) => refusal.to_status(),
                                        Err(_) => Refusal::AuditUnavailable.to_status(),
                                    };
                                let _ = tx.send(Err(status)).await;
                                break;
                            }
                        }
                    }
                };
                let started = (timestamp_us(), Instant::now());
                count += 1;
                let ending = if count > cap {
                    Some(Refusal::BatchTooLarge { max: cap })
                } else {
                    item.context
                        .as_ref()
                        .filter(|c| !c.procedure_code.is_empty() && c.procedure_code != procedure.as_str())
                        .map(|c| {
                            Refusal::invalid(
                                "context.procedure_code",
                                format!("a batch serves one procedure ({procedure}); start another stream for {}", c.procedure_code),
                            )
                        })
                };
                if let Some(refusal) = ending {
                    let status =
                        match audit(&item.item_id, None, Vec::new(), started, Some(&refusal)).await
                        {
                            Ok(_) => refusal.to_status(),
                            Err(_) => Refusal::AuditUnavailable.to_status(),
                        };
                    let _ = tx.send(Err(status)).await;
                    break;
                }
                let result = gateway.batch_item(&permit, &caller, &officer, &item).await;
                let (result, fields, subject) = match result {
                    Ok((reply, fields, id)) => (Ok(reply), fields, Some(Subject::Personal(id))),
                    Err(e) => {
                        let named =
                            verification_subject(&item.personal_id, &item.old_id_number, &[]);
                        (
                            Err(e),
                            Vec::new(),
                            named.ok().map(|(key, _)| subject_of(&key)),
                        )
                    }
                };
                let audited = audit(
                    &item.item_id,
                    subject,
                    fields,
                    started,
                    result.as_ref().err(),
                )
                .await;
                if audited.is_err() {
                    let _ = tx.send(Err(Refusal::AuditUnavailable.to_status())).await;
                    break;
                }
                let outcome = match result {
                    Ok(r) => pb::verify_batch_response::Outcome::Result(r),
                    Err(e) => pb::verify_batch_response::Outcome::Error(item_error(&e)),
                };
                let reply = pb::VerifyBatchResponse {
                    item_id: item.item_id,
                    outcome: Some(outcome),
                };
                if tx.send(Ok(reply)).await.is_err() {
                    break;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn list_procedures(
        &self,
        request: Request<pb::ListProceduresRequest>,
    ) -> Result<Response<pb::ListProceduresResponse>, Status> {
        let slot = slot_of(&request);
        answer(&slot, self.procedures(request))
    }

    async fn submit_update(
        &self,
        request: Request<pb::SubmitUpdateRequest>,
    ) -> Result<Response<pb::SubmitUpdateResponse>, Status> {
        let slot = slot_of(&request);
        answer(&slot, self.submit(&slot, request).await)
    }

    async fn get_update(
        &self,
        request: Request<pb::GetUpdateRequest>,
    ) -> Result<Response<pb::GetUpdateResponse>, Status> {
        let slot = slot_of(&request);
        answer(&slot, self.update_status(&slot, request).await)
    }

    async fn open_bundle(
        &self,
        request: Request<pb::OpenBundleRequest>,
    ) -> Result<Response<pb::BundleResponse>, Status> {
        let slot = slot_of(&request);
        answer(&slot, self.open_bundle(&slot, request).await)
    }

    async fn complete_bundle_step(
        &self,
        request: Request<pb::CompleteBundleStepRequest>,
    ) -> Result<Response<pb::BundleResponse>, Status> {
        let slot = slot_of(&request);
        answer(&slot, self.complete_bundle_step(&slot, request).await)
    }

    async fn get_bundle_case(
        &self,
        request: Request<pb::GetBundleCaseRequest>,
    ) -> Result<Response<pb::BundleResponse>, Status> {
        let slot = slot_of(&request);
        answer(&slot, self.bundle_case(&slot, request).await)
    }
}
