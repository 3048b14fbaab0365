//! `lienthong-dev check`: a conformance suite a provincial team runs against any deployment of
//! the gateway that serves the sandbox personas, calling it as its own one-stop system would:
//! TLS and identity, the token and its binding, each procedure's fields, verification on the
//! personas, auto-fill and both interlinked bundles step by step (their cases opened, a step
//! not ready refused), refusals and their details,
//! rate limits (RetryInfo honoured), and a receipt on every reply. The result is a table for
//! people, JUnit XML for CI and an exit code for scripts.

use crate::client::mtls_channel_as;
use crate::pki::CertFiles;
use lienthong_proto::gateway::v1 as pb;
use pb::citizen_gateway_client::CitizenGatewayClient;
use std::collections::BTreeSet;
use std::fmt::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tonic::transport::Channel;
use tonic::{Code, Status};
use tonic_types::StatusExt;

/// Where and as whom to check.
#[derive(Debug, Clone)]
pub struct Target {
    pub endpoint: String,
    pub server_name: Option<String>,
    pub ca: PathBuf,
    /// The unit's certificate and key.
    pub identity: CertFiles,
    /// The officer's token, bound to that certificate.
    pub token: String,
    /// Another unit's certificate, to check that the token is refused with it.
    pub other: Option<CertFiles>,
}

/// How a check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    Fail,
    Skip,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "PASS",
            Outcome::Fail => "FAIL",
            Outcome::Skip => "SKIP",
        }
    }
}

/// One check's result.
#[derive(Debug, Clone)]
pub struct Case {
    pub group: &'static str,
    pub name: String,
    pub outcome: Outcome,
    pub detail: String,
    pub duration: Duration,
}

/// The personas of the sandbox the checks rely on (PERSONAS.md).
mod persona {
    pub const COMPLETE_ADULT: &str = "042188999005";
    pub const COMPLETE_ADULT_NAME: &str = "Trần Thị Minh Thư";
    pub const DECLARING_MOTHER: &str = "042190999002";
    pub const NEWBORN: &str = "042326999004";
    pub const DECEASED: &str = "042038999007";
    pub const PARTIAL_BIRTH_DATE: &str = "042048999012";
    pub const SIMILAR_NAME: &str = "042092999014";
    pub const DIACRITICS_VARIANTS: &str = "042195999015";
    pub const RECORD_MISMATCH: &str = "042170999016";
    pub const PRE_2025_ADDRESS: &str = "042184999026";
}

/// The most a check waits when a rate limit asks it to.
const MAX_RETRY_WAIT: Duration = Duration::from_secs(5);

/// A connected one-stop system that counts receipts and honours RetryInfo.
struct Session {
    client: CitizenGatewayClient<Channel>,
    token: String,
    calls: u32,
    without_receipt: Vec<String>,
    retries: u32,
    dossier: u32,
}

impl Session {
    fn new(channel: Channel, token: &str) -> Self {
        Self {
            client: CitizenGatewayClient::new(channel),
            token: token.to_owned(),
            calls: 0,
            without_receipt: Vec::new(),
            retries: 0,
            dossier: 0,
        }
    }

    fn request<T>(&mut self, message: T) -> tonic::Request<T> {
        let mut r = tonic::Request::new(message);
        if !self.token.is_empty()
            && let Ok(v) = format!("Bearer {}", self.token).parse()
        {
            r.metadata_mut().insert("authorization", v);
        }
        r.set_timeout(Duration::from_secs(15));
        r
    }

    fn context(&mut self, procedure: &str) -> Option<pb::RequestContext> {
        self.dossier += 1;
        Some(pb::RequestContext {
            request_id: format!("check-{:016x}", rand::random::<u64>()),
            procedure_code: procedure.to_owned(),
            dossier_id: format!("CHECK-{:04}", self.dossier),
            ..Default::default()
        })
    }

    fn note_receipt(&mut self, what: &str, metadata: &tonic::metadata::MetadataMap) {
        self.calls += 1;
        let has = ["x-audit-chain", "x-audit-sequence", "x-audit-hash"]
            .iter()
            .all(|k| metadata.get(*k).is_some());
        if !has {
            self.without_receipt.push(what.to_owned());
        }
    }

    /// One call, waiting as RetryInfo says when a rate limit refuses it (short waits only).
    async fn call<T, F, Fut>(&mut self, what: &str, mut attempt: F) -> Result<T, Status>
    where
        F: FnMut(CitizenGatewayClient<Channel>, &mut Session) -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<T>, Status>>,
    {
        for n in 0..5 {
            let client = self.client.clone();
            match attempt(client, self).await {
                Ok(reply) => {
                    self.note_receipt(what, reply.metadata());
                    return Ok(reply.into_inner());
                }
                Err(status) => {
                    self.note_receipt(what, status.metadata());
                    let delay = retry_delay(&status);
                    match delay {
                        Some(d)
                            if status.code() == Code::ResourceExhausted
                                && d <= MAX_RETRY_WAIT
                                && n < 4 =>
                        {
                            self.retries += 1;
                            tokio::time::sleep(d).await;
                        }
                        _ => return Err(status),
                    }
                }
            }
        }
        Err(Status::resource_exhausted("still limited after 4 retries"))
    }

    async fn list(
        &mut self,
        include_unavailable: bool,
    ) -> Result<pb::ListProceduresResponse, Status> {
        self.call("ListProcedures", |mut c, s| {
            let req = s.request(pb::ListProceduresRequest {
                include_unavailable,
            });
            async move { c.list_procedures(req).await }
        })
        .await
    }

    async fn lookup(
        &mut self,
        procedure: &str,
        id: &str,
        fields: &[&str],
    ) -> Result<pb::LookupCitizenResponse, Status> {
        let fields: Vec<String> = fields.iter().map(|f| (*f).to_owned()).collect();
        let (procedure, id) = (procedure.to_owned(), id.to_owned());
        self.call("LookupCitizen", move |mut c, s| {
            let message = pb::LookupCitizenRequest {
                context: s.context(&procedure),
                subject: Some(pb::lookup_citizen_request::Subject::PersonalId(id.clone())),
                fields: fields.clone(),
            };
            let req = s.request(message);
            async move { c.lookup_citizen(req).await }
        })
        .await
    }

    async fn verify(
        &mut self,
        procedure: &str,
        id: &str,
        claims: &[(&str, &str)],
    ) -> Result<pb::VerifyCitizenResponse, Status> {
        let claims: Vec<pb::Claim> = claims
            .iter()
            .map(|(f, v)| pb::Claim {
                field: (*f).to_owned(),
                value: (*v).to_owned(),
            })
            .collect();
        let (procedure, id) = (procedure.to_owned(), id.to_owned());
        self.call("VerifyCitizen", move |mut c, s| {
            let message = pb::VerifyCitizenRequest {
                context: s.context(&procedure),
                personal_id: id.clone(),
                claims: claims.clone(),
                old_id_number: String::new(),
            };
            let req = s.request(message);
            async move { c.verify_citizen(req).await }
        })
        .await
    }

    async fn open_bundle(&mut self, bundle: &str, id: &str) -> Result<pb::BundleResponse, Status> {
        let (bundle, id) = (bundle.to_owned(), id.to_owned());
        self.call("OpenBundle", move |mut c, s| {
            let message = pb::OpenBundleRequest {
                context: s.context(&bundle),
                personal_id: id.clone(),
            };
            let req = s.request(message);
            async move { c.open_bundle(req).await }
        })
        .await
    }

    /// A bundle step acted on with nothing entered.
    async fn bundle_step(
        &mut self,
        step: &str,
        case_id: &str,
    ) -> Result<pb::BundleResponse, Status> {
        let (step, case_id) = (step.to_owned(), case_id.to_owned());
        self.call("CompleteBundleStep", move |mut c, s| {
            let message = pb::CompleteBundleStepRequest {
                context: s.context(&step),
                case_id: case_id.clone(),
                entered: Vec::new(),
            };
            let req = s.request(message);
            async move { c.complete_bundle_step(req).await }
        })
        .await
    }

    async fn autofill(
        &mut self,
        procedure: &str,
        id: &str,
    ) -> Result<pb::AutofillFormResponse, Status> {
        let (procedure, id) = (procedure.to_owned(), id.to_owned());
        self.call("AutofillForm", move |mut c, s| {
            let message = pb::AutofillFormRequest {
                context: s.context(&procedure),
                subject: Some(pb::autofill_form_request::Subject::PersonalId(id.clone())),
            };
            let req = s.request(message);
            async move { c.autofill_form(req).await }
        })
        .await
    }
}

fn retry_delay(status: &Status) -> Option<Duration> {
    status
        .get_error_details()
        .retry_info()
        .and_then(|r| r.retry_delay)
}

/// The reason of a refusal (ErrorInfo), or "".
fn reason(status: &Status) -> String {
    status
        .get_error_details()
        .error_info()
        .map(|i| i.reason.clone())
        .unwrap_or_default()
}

/// What a refusal says, in one line.
fn said(status: &Status) -> String {
    let r = reason(status);
    format!("{:?} {} — {}", status.code(), r, status.message())
}

/// Whether a refusal is as expected and carries its details: the code, the reason and a
/// Vietnamese message.
fn refused_as(status: &Status, code: Code, reasons: &[&str]) -> Result<String, String> {
    let details = status.get_error_details();
    let vi = details
        .localized_message()
        .filter(|m| m.locale == "vi-VN" && !m.message.is_empty());
    if status.code() != code || !reasons.contains(&reason(status).as_str()) {
        return Err(format!(
            "expected {code:?} {}, got {}",
            reasons.join(" or "),
            said(status)
        ));
    }
    if vi.is_none() {
        return Err(format!("{} without a vi-VN LocalizedMessage", said(status)));
    }
    Ok(said(status))
}

/// Records checks as they run.
struct Suite {
    cases: Vec<Case>,
}

impl Suite {
    fn add(
        &mut self,
        group: &'static str,
        name: impl Into<String>,
        started: Instant,
        result: Result<String, String>,
    ) {
        let (outcome, detail) = match result {
            Ok(d) => (Outcome::Pass, d),
            Err(d) => (Outcome::Fail, d),
        };
        self.cases.push(Case {
            group,
            name: name.into(),
            outcome,
            detail,
            duration: started.elapsed(),
        });
    }

    fn skip(&mut self, group: &'static str, name: impl Into<String>, why: impl Into<String>) {
        self.cases.push(Case {
            group,
            name: name.into(),
            outcome: Outcome::Skip,
            detail: why.into(),
            duration: Duration::ZERO,
        });
    }
}

/// Runs every check. An error means the gateway could not be reached at all.
pub async fn run(target: &Target) -> Result<Vec<Case>, String> {
    let channel = mtls_channel_as(
        &target.endpoint,
        target.server_name.as_deref(),
        &target.ca,
        Some(&target.identity),
    )
    .await
    .map_err(|e| e.to_string())?;
    let mut s = Session::new(channel, &target.token);
    let mut suite = Suite { cases: Vec::new() };

    // TLS and identity.
    let t = Instant::now();
    let catalog = match s.list(true).await {
        Ok(c) => c,
        Err(e) => return Err(format!("the gateway refused ListProcedures: {}", said(&e))),
    };
    let available: Vec<&pb::Procedure> =
        catalog.procedures.iter().filter(|p| p.available).collect();
    suite.add(
        "identity",
        "mutual TLS with the unit's certificate and the officer's token",
        t,
        Ok(format!(
            "ListProcedures served: {} procedures, {} available to this officer",
            catalog.procedures.len(),
            available.len()
        )),
    );
    identity_checks(target, &mut s, &mut suite).await;
    procedure_checks(&catalog, &mut s, &mut suite).await;
    verification_checks(&available, &mut s, &mut suite).await;
    bundle_checks(&catalog, &mut s, &mut suite).await;
    refusal_checks(&mut s, &mut suite).await;
    rate_limit_checks(&mut s, &mut suite).await;
    let t = Instant::now();
    let result = if s.without_receipt.is_empty() {
        Ok(format!(
            "{} replies, each with x-audit-chain, -sequence and -hash",
            s.calls
        ))
    } else {
        Err(format!(
            "{} of {} replies without a receipt: {}",
            s.without_receipt.len(),
            s.calls,
            s.without_receipt.join(", ")
        ))
    };
    suite.add(
        "receipts",
        "every reply carries its audit receipt",
        t,
        result,
    );
    Ok(suite.cases)
}

async fn identity_checks(target: &Target, s: &mut Session, suite: &mut Suite) {
    // No client certificate.
    let t = Instant::now();
    let result = match mtls_channel_as(
        &target.endpoint,
        target.server_name.as_deref(),
        &target.ca,
        None,
    )
    .await
    {
        Ok(channel) => {
            let mut anonymous = Session::new(channel, &target.token);
            match anonymous.list(false).await {
                Ok(_) => Err("served without a client certificate".into()),
                Err(e) => refused_as(&e, Code::Unauthenticated, &["NO_CLIENT_CERTIFICATE"]),
            }
        }
        Err(e) => Err(format!("cannot connect without a certificate: {e}")),
    };
    suite.add(
        "identity",
        "a call without a client certificate is refused",
        t,
        result,
    );
    // No token, a tampered token.
    let token = s.token.clone();
    for (name, bad, expected) in [
        (
            "a call without a token is refused",
            String::new(),
            "MISSING_TOKEN",
        ),
        (
            "a token with a forged signature is refused",
            tamper(&token),
            "BAD_TOKEN",
        ),
    ] {
        let t = Instant::now();
        s.token = bad;
        let result = match s.list(false).await {
            Ok(_) => Err("served".into()),
            Err(e) => refused_as(&e, Code::Unauthenticated, &[expected]),
        };
        suite.add("token", name, t, result);
    }
    s.token = token;
    // The token over another unit's connection.
    match &target.other {
        Some(other) => {
            let t = Instant::now();
            let result = match mtls_channel_as(
                &target.endpoint,
                target.server_name.as_deref(),
                &target.ca,
                Some(other),
            )
            .await
            {
                Ok(channel) => {
                    let mut elsewhere = Session::new(channel, &target.token);
                    match elsewhere.list(false).await {
                        Ok(_) => {
                            Err("the token was accepted over another unit's certificate".into())
                        }
                        Err(e) => {
                            refused_as(&e, Code::Unauthenticated, &["TOKEN_CERTIFICATE_MISMATCH"])
                                .or_else(|_| {
                                    refused_as(&e, Code::PermissionDenied, &["UNIT_MISMATCH"])
                                })
                        }
                    }
                }
                Err(e) => Err(format!("cannot connect with the other certificate: {e}")),
            };
            suite.add(
                "token",
                "the token is refused over another unit's certificate",
                t,
                result,
            );
        }
        None => suite.skip(
            "token",
            "the token is refused over another unit's certificate",
            "give --other-cert and --other-key (another unit's certificate) to check the binding",
        ),
    }
}

/// A token whose signature no longer verifies.
fn tamper(token: &str) -> String {
    let mut t = token.to_owned();
    if let Some(last) = t.pop() {
        t.push(if last == 'A' { 'B' } else { 'A' });
    }
    t
}

/// The JSON names of the fields a Citizen message has set (its per-field provenance is not a
/// field of its own).
fn set_fields(c: &lienthong_proto::csdl::v1::Citizen) -> BTreeSet<String> {
    match serde_json::to_value(c) {
        Ok(serde_json::Value::Object(o)) => {
            o.keys().filter(|k| *k != "provenance").cloned().collect()
        }
        _ => BTreeSet::new(),
    }
}

fn camel(snake: &str) -> String {
    let mut out = String::new();
    let mut upper = false;
    for ch in snake.chars() {
        if ch == '_' {
            upper = true;
        } else if upper {
            out.extend(ch.to_uppercase());
            upper = false;
        } else {
            out.push(ch);
        }
    }
    out
}

async fn procedure_checks(
    catalog: &pb::ListProceduresResponse,
    s: &mut Session,
    suite: &mut Suite,
) {
    let every_field: BTreeSet<&str> = catalog
        .procedures
        .iter()
        .flat_map(|p| p.allowed_fields.iter().map(String::as_str))
        .collect();
    let mut unavailable_checked = 0;
    for p in &catalog.procedures {
        if !p.bundle.is_empty() {
            continue;
        }
        if !p.available {
            if unavailable_checked >= 3 {
                continue;
            }
            unavailable_checked += 1;
            let t = Instant::now();
            let result = match s.lookup(&p.code, persona::COMPLETE_ADULT, &[]).await {
                Ok(_) => Err("served, though ListProcedures says it is not available".into()),
                Err(e) => refused_as(
                    &e,
                    Code::PermissionDenied,
                    &[
                        "PROCEDURE_NOT_ALLOWED",
                        "ROLE_NOT_ALLOWED",
                        "UNIT_NOT_APPROVED",
                    ],
                ),
            };
            suite.add(
                "procedures",
                format!("{}: not available, refused", p.code),
                t,
                result,
            );
            continue;
        }
        let t = Instant::now();
        let allowed: BTreeSet<String> = p.allowed_fields.iter().map(|f| camel(f)).collect();
        let result = match s.lookup(&p.code, persona::COMPLETE_ADULT, &[]).await {
            Ok(reply) => {
                let got = reply.citizen.as_ref().map(set_fields).unwrap_or_default();
                let extra: Vec<&String> = got.difference(&allowed).collect();
                let undeclared: Vec<&String> = reply
                    .disclosed_fields
                    .iter()
                    .filter(|f| !p.allowed_fields.contains(f))
                    .collect();
                if !extra.is_empty() || !undeclared.is_empty() {
                    Err(format!(
                        "fields outside the procedure were served: {extra:?} {undeclared:?}"
                    ))
                } else if got.is_empty() {
                    Err("nothing was served".into())
                } else {
                    Ok(format!(
                        "served {} of its {} fields",
                        got.len(),
                        allowed.len()
                    ))
                }
            }
            Err(e) => Err(said(&e)),
        };
        suite.add(
            "procedures",
            format!("{}: lookup returns only its fields", p.code),
            t,
            result,
        );
        let outside = every_field
            .iter()
            .find(|f| !p.allowed_fields.iter().any(|a| a == *f));
        match outside {
            Some(field) => {
                let t = Instant::now();
                let result = match s.lookup(&p.code, persona::COMPLETE_ADULT, &[field]).await {
                    Ok(_) => Err(format!("{field} was served")),
                    Err(e) => refused_as(&e, Code::PermissionDenied, &["FIELD_NOT_ALLOWED"]),
                };
                suite.add(
                    "procedures",
                    format!("{}: a field outside it ({field}) is refused", p.code),
                    t,
                    result,
                );
            }
            None => suite.skip(
                "procedures",
                format!("{}: a field outside it is refused", p.code),
                "it allows every field",
            ),
        }
    }
}

async fn verification_checks(available: &[&pb::Procedure], s: &mut Session, suite: &mut Suite) {
    let Some(p) = available.iter().find(|p| {
        p.bundle.is_empty()
            && ["full_name", "date_of_birth"]
                .iter()
                .all(|f| p.allowed_fields.iter().any(|a| a == f))
    }) else {
        suite.skip(
            "verification",
            "verification on the personas",
            "no available procedure may verify full_name and date_of_birth",
        );
        return;
    };
    let code = p.code.clone();
    let cases: [(&str, &str, (&str, &str), pb::FieldResult); 6] = [
        (
            "the exact name matches",
            persona::COMPLETE_ADULT,
            ("full_name", persona::COMPLETE_ADULT_NAME),
            pb::FieldResult::Match,
        ),
        (
            "a name differing by one tone mark is never a match",
            persona::SIMILAR_NAME,
            ("full_name", "Nguyễn Văn Hà"),
            pb::FieldResult::MatchIgnoringDiacritics,
        ),
        (
            "case and old-style tone placement are normalised",
            persona::DIACRITICS_VARIANTS,
            ("full_name", "NGUYỄN THỊ THUỲ LINH"),
            pb::FieldResult::Match,
        ),
        (
            "a full date against a year-only record is not on record",
            persona::PARTIAL_BIRTH_DATE,
            ("date_of_birth", "15/03/1948"),
            pb::FieldResult::NotOnRecord,
        ),
        (
            "a full date against the 01/01 placeholder needs review",
            persona::RECORD_MISMATCH,
            ("date_of_birth", "12.08.1970"),
            pb::FieldResult::NotOnRecord,
        ),
        (
            "a date that differs is a mismatch",
            persona::COMPLETE_ADULT,
            ("date_of_birth", "15-03-1988"),
            pb::FieldResult::Mismatch,
        ),
    ];
    for (name, id, claim, expected) in cases {
        let t = Instant::now();
        let result = match s.verify(&code, id, &[claim]).await {
            Ok(reply) => match reply.fields.first() {
                Some(f) if f.result == expected as i32 => {
                    Ok(format!("{} ({})", expected.as_str_name(), f.explanation))
                }
                Some(f) => Err(format!(
                    "expected {}, got {} ({})",
                    expected.as_str_name(),
                    pb::FieldResult::try_from(f.result)
                        .map(|r| r.as_str_name())
                        .unwrap_or("?"),
                    f.explanation
                )),
                None => Err("no field result".into()),
            },
            Err(e) => Err(said(&e)),
        };
        suite.add("verification", format!("{code}: {name}"), t, result);
    }
    let name = format!("{code}: an address in the pre-2025 units reads as the commune it became");
    if !p.allowed_fields.iter().any(|a| a == "permanent_address") {
        suite.skip(
            "verification",
            name,
            "the procedure may not verify permanent_address",
        );
        return;
    }
    let t = Instant::now();
    let declared = (
        "permanent_address",
        "Thôn Tân Hòa, Xã Cẩm Quang, Huyện Cẩm Xuyên, Tỉnh Hà Tĩnh",
    );
    let result = match s
        .verify(&code, persona::PRE_2025_ADDRESS, &[declared])
        .await
    {
        Ok(reply) => match reply.fields.first() {
            Some(f)
                if f.result == pb::FieldResult::Match as i32
                    && f.normalizations
                        .contains(&(pb::Normalization::Pre2025Units as i32)) =>
            {
                Ok(f.explanation.clone())
            }
            Some(f) => Err(format!(
                "expected MATCH with NORMALIZATION_PRE_2025_UNITS, got {} {:?} ({})",
                f.result, f.normalizations, f.explanation
            )),
            None => Err("no field result".into()),
        },
        Err(e) => Err(said(&e)),
    };
    suite.add("verification", name, t, result);
}

/// What a filled form shows: its fields filled, and those the officer still enters.
fn form_summary(form: &pb::AutofillFormResponse) -> String {
    let filled: Vec<&str> = form.filled.iter().map(|f| f.label.as_str()).collect();
    let unfilled: Vec<&str> = form.unfilled.iter().map(|f| f.label.as_str()).collect();
    let mut out = format!("{} filled", filled.len());
    if !unfilled.is_empty() {
        let _ = write!(out, "; the officer enters: {}", unfilled.join("; "));
    }
    out
}

async fn bundle_checks(catalog: &pb::ListProceduresResponse, s: &mut Session, suite: &mut Suite) {
    for (bundle, subject_of) in [
        ("LT.KHAISINH", [persona::DECLARING_MOTHER, persona::NEWBORN]),
        ("LT.KHAITU", [persona::DECEASED, persona::DECEASED]),
    ] {
        let Some(p) = catalog.procedures.iter().find(|p| p.code == bundle) else {
            suite.skip("bundles", bundle, "not in the catalog");
            continue;
        };
        if !p.available {
            suite.skip("bundles", bundle, "not available to this unit and officer");
            continue;
        }
        let t = Instant::now();
        let result = match s.autofill(bundle, subject_of[0]).await {
            Ok(form) if !form.filled.is_empty() => {
                Ok(format!("form {}: {}", form.form_id, form_summary(&form)))
            }
            Ok(form) => Err(format!("form {}: nothing filled", form.form_id)),
            Err(e) => Err(said(&e)),
        };
        suite.add("bundles", format!("{bundle}: the bundle's form"), t, result);
        for (i, step) in p.bundle.iter().enumerate() {
            let Some(sp) = catalog.procedures.iter().find(|c| &c.code == step) else {
                suite.skip(
                    "bundles",
                    format!("{bundle} step {}: {step}", i + 1),
                    "not in the catalog",
                );
                continue;
            };
            // The first step's subject is the bundle's; the others concern the newborn (or the
            // deceased).
            let subject = if i == 0 { subject_of[0] } else { subject_of[1] };
            let name = format!("{bundle} step {}: {step} {}", i + 1, sp.name);
            if !sp.available {
                let t = Instant::now();
                let result = match s.autofill(step, subject).await {
                    Ok(_) => Err("served, though not available to this officer".into()),
                    Err(e) => refused_as(
                        &e,
                        Code::PermissionDenied,
                        &["ROLE_NOT_ALLOWED", "PROCEDURE_NOT_ALLOWED"],
                    )
                    .map(|d| format!("another officer's step here: {d}")),
                };
                suite.add("bundles", name, t, result);
                continue;
            }
            let t = Instant::now();
            let result = match s.autofill(step, subject).await {
                Ok(form) => Ok(format!("form {}: {}", form.form_id, form_summary(&form))),
                Err(e) => Err(said(&e)),
            };
            suite.add("bundles", name, t, result);
        }
        case_checks(bundle, p, subject_of[0], s, suite).await;
    }
}

/// A bundle case: opened with its steps, and a step that is not ready (waiting for another, or
/// already done) refused. Nothing is acted on, so no record changes.
async fn case_checks(
    bundle: &str,
    p: &pb::Procedure,
    subject: &str,
    s: &mut Session,
    suite: &mut Suite,
) {
    let t = Instant::now();
    let opened = s.open_bundle(bundle, subject).await;
    let result = match &opened {
        Ok(r) => match &r.case {
            Some(c)
                if c.steps
                    .iter()
                    .map(|s| &s.procedure_code)
                    .eq(p.bundle.iter()) =>
            {
                Ok(format!("{}: {} steps", c.case_id, c.steps.len()))
            }
            Some(c) => Err(format!(
                "the case's steps are not the bundle's: {:?}",
                c.steps
            )),
            None => Err("no case in the reply".into()),
        },
        Err(e) => Err(said(e)),
    };
    let ok = result.is_ok();
    suite.add("bundles", format!("{bundle}: a case opens"), t, result);
    let case = match opened {
        Ok(pb::BundleResponse { case: Some(c), .. }) if ok => c,
        _ => return,
    };
    // A step waiting for another, or one already done (a death already registered).
    let ready = [
        lienthong_proto::csdl::v1::StepStatus::Ready as i32,
        lienthong_proto::csdl::v1::StepStatus::Rejected as i32,
    ];
    let Some(waiting) = case.steps.iter().find(|st| !ready.contains(&st.status)) else {
        suite.skip(
            "bundles",
            format!("{bundle}: a step not ready is refused"),
            "every step is ready",
        );
        return;
    };
    let name = format!(
        "{bundle}: {} (not ready) is refused",
        waiting.procedure_code
    );
    let t = Instant::now();
    let result = match s.bundle_step(&waiting.procedure_code, &case.case_id).await {
        Ok(_) => Err("acted on".into()),
        // An officer without a role for the step is refused before the order is looked at.
        Err(e) => refused_as(
            &e,
            e.code(),
            &[
                "STEP_NOT_READY",
                "ROLE_NOT_ALLOWED",
                "PROCEDURE_NOT_ALLOWED",
            ],
        )
        .and_then(|d| match e.code() {
            Code::FailedPrecondition | Code::PermissionDenied => Ok(d),
            other => Err(format!("expected FAILED_PRECONDITION, got {other:?}")),
        }),
    };
    suite.add("bundles", name, t, result);
}

async fn refusal_checks(s: &mut Session, suite: &mut Suite) {
    let t = Instant::now();
    let result = match s.lookup("9.999999", persona::COMPLETE_ADULT, &[]).await {
        Ok(_) => Err("served".into()),
        Err(e) => refused_as(&e, Code::InvalidArgument, &["UNKNOWN_PROCEDURE"]).and_then(|d| {
            let named = e.get_error_details().bad_request().is_some_and(|b| {
                b.field_violations
                    .iter()
                    .any(|v| v.field == "context.procedure_code")
            });
            if named {
                Ok(d)
            } else {
                Err(format!("{d}: no BadRequest naming context.procedure_code"))
            }
        }),
    };
    suite.add(
        "refusals",
        "an unknown procedure: INVALID_ARGUMENT naming the field",
        t,
        result,
    );
    let t = Instant::now();
    let result = match s.lookup("1.004222", "04218899", &[]).await {
        Ok(_) => Err("served".into()),
        Err(e) if e.code() == Code::InvalidArgument => {
            let named = e
                .get_error_details()
                .bad_request()
                .is_some_and(|b| b.field_violations.iter().any(|v| v.field == "personal_id"));
            if named {
                Ok(said(&e))
            } else {
                Err(format!("{}: no BadRequest naming personal_id", said(&e)))
            }
        }
        Err(e) => Err(format!("expected INVALID_ARGUMENT, got {}", said(&e))),
    };
    suite.add(
        "refusals",
        "a malformed personal ID: INVALID_ARGUMENT naming personal_id",
        t,
        result,
    );
}

async fn rate_limit_checks(s: &mut Session, suite: &mut Suite) {
    // Reported only when something was limited: with nothing limited there is nothing to check.
    let retried = "limited calls are retried as RetryInfo says";
    if s.retries > 0 {
        let detail = format!(
            "{} call(s) limited on the way were retried after the RetryInfo delay and served",
            s.retries
        );
        suite.add("rate limits", retried, Instant::now(), Ok(detail));
    } else {
        suite.skip("rate limits", retried, "no call was limited on the way");
    }
    // Past the officer's limit on purpose: the refusal says which limit and when to retry.
    let t = Instant::now();
    let mut limited = None;
    for _ in 0..300 {
        let req = s.request(pb::ListProceduresRequest {
            include_unavailable: false,
        });
        match s.client.clone().list_procedures(req).await {
            Ok(r) => s.note_receipt("ListProcedures", r.metadata()),
            Err(e) => {
                s.note_receipt("ListProcedures", e.metadata());
                limited = Some(e);
                break;
            }
        }
    }
    let Some(e) = limited else {
        suite.skip(
            "rate limits",
            "a limited call says which limit and when to retry",
            "no limit was reached in 300 calls",
        );
        return;
    };
    let details = e.get_error_details();
    let result = refused_as(&e, Code::ResourceExhausted, &["RATE_LIMITED"]).and_then(|d| {
        let quota = details
            .quota_failure()
            .and_then(|q| q.violations.first().map(|v| v.subject.clone()));
        match (quota, retry_delay(&e)) {
            (Some(q), Some(delay)) => Ok(format!(
                "{d}; limit {q}, retry after {} ms",
                delay.as_millis()
            )),
            _ => Err(format!("{d}: without QuotaFailure and RetryInfo")),
        }
    });
    suite.add(
        "rate limits",
        "a limited call says which limit and when to retry",
        t,
        result,
    );
    if let Some(delay) = retry_delay(&e).filter(|d| *d <= MAX_RETRY_WAIT) {
        tokio::time::sleep(delay).await;
        let t = Instant::now();
        let result = match s.list(false).await {
            Ok(_) => Ok(format!("served after waiting {} ms", delay.as_millis())),
            Err(e) => Err(said(&e)),
        };
        suite.add(
            "rate limits",
            "after the RetryInfo delay the call is served",
            t,
            result,
        );
    }
}

/// The table for people.
pub fn table(cases: &[Case]) -> String {
    let mut out = String::new();
    let width = cases
        .iter()
        .map(|c| c.name.chars().count())
        .max()
        .unwrap_or(10)
        .min(72);
    for c in cases {
        let name: String = c.name.chars().take(width).collect();
        let _ = writeln!(
            out,
            "{}  {:<12} {:<width$}  {}",
            c.outcome.as_str(),
            c.group,
            name,
            c.detail
        );
    }
    let count = |o| cases.iter().filter(|c| c.outcome == o).count();
    let _ = writeln!(
        out,
        "\n{} passed, {} failed, {} skipped",
        count(Outcome::Pass),
        count(Outcome::Fail),
        count(Outcome::Skip)
    );
    out
}

/// JUnit XML for CI systems.
pub fn junit(cases: &[Case]) -> String {
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    let count = |o| cases.iter().filter(|c| c.outcome == o).count();
    let total: f64 = cases.iter().map(|c| c.duration.as_secs_f64()).sum();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites><testsuite name=\"lienthong-conformance\" tests=\"{}\" failures=\"{}\" skipped=\"{}\" time=\"{total:.3}\">",
        cases.len(),
        count(Outcome::Fail),
        count(Outcome::Skip)
    );
    for c in cases {
        let _ = write!(
            out,
            "  <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\">",
            esc(c.group),
            esc(&c.name),
            c.duration.as_secs_f64()
        );
        match c.outcome {
            Outcome::Pass => {
                let _ = write!(out, "<system-out>{}</system-out>", esc(&c.detail));
            }
            Outcome::Fail => {
                let _ = write!(out, "<failure message=\"{}\"/>", esc(&c.detail));
            }
            Outcome::Skip => {
                let _ = write!(out, "<skipped message=\"{}\"/>", esc(&c.detail));
            }
        }
        out.push_str("</testcase>\n");
    }
    out.push_str("</testsuite></testsuites>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_escape_and_count() {
        let cases = vec![
            Case {
                group: "a",
                name: "x <y>".into(),
                outcome: Outcome::Pass,
                detail: "ok & fine".into(),
                duration: Duration::from_millis(5),
            },
            Case {
                group: "b",
                name: "z".into(),
                outcome: Outcome::Fail,
                detail: "\"bad\"".into(),
                duration: Duration::ZERO,
            },
            Case {
                group: "b",
                name: "w".into(),
                outcome: Outcome::Skip,
                detail: "n/a".into(),
                duration: Duration::ZERO,
            },
        ];
        let xml = junit(&cases);
        assert!(
            xml.contains("tests=\"3\" failures=\"1\" skipped=\"1\""),
            "{xml}"
        );
        assert!(
            xml.contains("x &lt;y&gt;")
                && xml.contains("&quot;bad&quot;")
                && xml.contains("ok &amp; fine")
        );
        assert!(table(&cases).contains("1 passed, 1 failed, 1 skipped"));
        assert_eq!(camel("date_of_birth"), "dateOfBirth");
        assert_eq!(tamper("a.b.cA"), "a.b.cB");
    }
}
