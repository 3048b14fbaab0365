//! `auditctl serve`: the reviewer's console, the audit trail in a browser. It holds no data and
//! decides nothing: every page is one or more calls to the gateway's AuditService, made over the
//! console's unit certificate with the signed-in auditor's own token, so the gateway's rules
//! (auditors only, each unit's scope) apply to every page and every page is itself audited.
//! Pages are rendered on the server (maud); charts are SVG drawn here; no page needs script.

mod chart;
mod pages;
mod text;

use crate::report::{self, Signal, Thresholds};
use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Form, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use lienthong_devtool::sample::SampleOfficer;
use lienthong_devtool::tokens::{TokenSpec, mint};
use lienthong_gateway::audit::record::{Checkpoint, Record};
use lienthong_gateway::audit_service::{checkpoint_from_pb, record_from_pb};
use lienthong_proto::audit::v1 as pb;
use maud::Markup;
use pb::audit_service_client::AuditServiceClient;
use serde::Deserialize;
use std::path::PathBuf;
use std::sync::Arc;
pub use text::Lang;
use tokio_stream::StreamExt;
use tonic::transport::Channel;

/// Records on a page of search results, unless the reader chooses (up to `PAGE_MAX`).
const PAGE: u32 = 50;
const PAGE_MAX: u32 = 500;
/// At most this many records in a CSV download (the gateway's own bound on one query).
const CSV_MAX: u32 = 100_000;
/// At most this many records examined by the misuse report.
const REPORT_MAX: u32 = 50_000;
/// A token longer than this is not one (the gateway's own bound is lower).
const TOKEN_MAX: usize = 8 * 1024;

/// Signing in as a sample officer, in the development environment only: tokens minted with the
/// development issuer's key, bound to the console's certificate.
pub struct DevLogin {
    pub issuer_key: PathBuf,
    pub cert: PathBuf,
    pub officers: Vec<&'static SampleOfficer>,
}

/// The fleet's central store, for the verification page: its URL, schema and the checkpoint
/// keys its chains are verified with.
pub struct Central {
    pub url: String,
    pub schema: String,
    pub keys: Vec<ed25519_dalek::VerifyingKey>,
}

/// What every page shares.
struct Inner {
    client: AuditServiceClient<Channel>,
    unit_code: String,
    dev: Option<DevLogin>,
    central: Option<Central>,
}

#[derive(Clone)]
pub struct Console(Arc<Inner>);

impl Console {
    pub fn new(
        channel: Channel,
        unit_code: String,
        dev: Option<DevLogin>,
        central: Option<Central>,
    ) -> Self {
        Self(Arc::new(Inner {
            client: AuditServiceClient::new(channel),
            unit_code,
            dev,
            central,
        }))
    }

    pub fn router(self) -> Router {
        Router::new()
            .route("/", get(search_form))
            .route("/search", get(search_form).post(search))
            .route("/search.csv", post(search_csv))
            .route("/record/{sequence}", get(record))
            .route("/verify", get(verify))
            .route("/report", get(misuse_report))
            .route("/export", get(export_form).post(export))
            .route("/login", get(login_form).post(login))
            .route("/login/dev", post(login_dev))
            .route("/logout", post(logout))
            .route("/lang/{code}", get(language))
            .route("/citizen", get(citizen_history))
            .route("/citizen/login", post(citizen_login))
            .route("/citizen/login/dev", post(citizen_login_dev))
            .route("/citizen/logout", post(citizen_logout))
            .layer(DefaultBodyLimit::max(64 * 1024))
            .with_state(self)
    }

    fn client(&self) -> AuditServiceClient<Channel> {
        self.0.client.clone()
    }
}

/// Who is reading, from the request's cookies: the token (none before signing in) and the
/// language.
pub struct Session {
    token: Option<String>,
    /// A citizen's token, for their own access history (a cookie of its own).
    citizen: Option<String>,
    lang: Lang,
}

impl<S: Send + Sync> FromRequestParts<S> for Session {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let mut session = Session {
            token: None,
            citizen: None,
            lang: Lang::Vi,
        };
        for value in parts.headers.get_all(header::COOKIE) {
            let Ok(value) = value.to_str() else { continue };
            for pair in value.split(';') {
                match pair.trim().split_once('=') {
                    Some(("lt_token", t)) if !t.is_empty() && t.len() <= TOKEN_MAX => {
                        session.token = Some(t.to_owned());
                    }
                    Some(("lt_citizen", t)) if !t.is_empty() && t.len() <= TOKEN_MAX => {
                        session.citizen = Some(t.to_owned());
                    }
                    Some(("lt_lang", l)) => session.lang = Lang::parse(l).unwrap_or(Lang::Vi),
                    _ => {}
                }
            }
        }
        Ok(session)
    }
}

impl Session {
    /// The officer code a token names, for the page header only (the gateway checks the token).
    fn officer(&self) -> String {
        use base64::Engine;
        let claims = self
            .token
            .as_deref()
            .and_then(|t| t.split('.').nth(1))
            .and_then(|p| {
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(p)
                    .ok()
            })
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
        claims
            .as_ref()
            .and_then(|c| c.get("sub"))
            .and_then(|s| s.as_str())
            .map(|s| s.chars().take(64).collect())
            .unwrap_or_default()
    }

    /// A call to the gateway carrying this session's token.
    fn call<T>(&self, message: T) -> tonic::Request<T> {
        bearer(self.token.as_deref(), message)
    }
}

/// A call to the gateway carrying a token.
fn bearer<T>(token: Option<&str>, message: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(message);
    if let Some(Ok(v)) = token.map(|t| format!("Bearer {t}").parse()) {
        r.metadata_mut().insert("authorization", v);
    }
    r
}

/// What a page could not show: the gateway's refusal, or the reader's own mistake.
enum Problem {
    Refused(tonic::Status),
    Input(String),
}

impl From<tonic::Status> for Problem {
    fn from(s: tonic::Status) -> Self {
        Problem::Refused(s)
    }
}

/// A page, or the page saying why not. The reader signs in first: without a session nothing is
/// asked of the gateway.
async fn respond(
    console: &Console,
    session: &Session,
    title: &str,
    body: impl std::future::Future<Output = Result<Markup, Problem>>,
) -> Response {
    if session.token.is_none() {
        return Redirect::to("/login").into_response();
    }
    let (status, body) = shown(session.lang, body.await);
    let header = pages::Header {
        lang: session.lang,
        unit: &console.0.unit_code,
        officer: session.officer(),
        citizen: false,
    };
    (status, pages::layout(&header, title, body)).into_response()
}

/// A page's body and status, or the page saying what the gateway refused or what was wrong.
fn shown(lang: Lang, body: Result<Markup, Problem>) -> (StatusCode, Markup) {
    match body {
        Ok(body) => (StatusCode::OK, body),
        Err(Problem::Refused(s)) => {
            let status = match s.code() {
                tonic::Code::Unauthenticated => StatusCode::UNAUTHORIZED,
                tonic::Code::PermissionDenied => StatusCode::FORBIDDEN,
                tonic::Code::InvalidArgument => StatusCode::BAD_REQUEST,
                tonic::Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
                _ => StatusCode::BAD_GATEWAY,
            };
            (status, pages::refused(lang, &s))
        }
        Err(Problem::Input(message)) => (StatusCode::BAD_REQUEST, pages::mistake(&message)),
    }
}

/// The search filters, as the form sends them (every field optional).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct SearchForm {
    pub personal_id: String,
    pub officer: String,
    pub unit: String,
    pub procedure: String,
    pub outcome: String,
    pub reason: String,
    pub from: String,
    pub to: String,
    pub after: String,
    /// Records per page.
    pub size: Option<u32>,
}

impl SearchForm {
    pub fn page_size(&self) -> u32 {
        self.size.unwrap_or(PAGE).clamp(1, PAGE_MAX)
    }

    fn request(&self, limit: u32) -> Result<pb::QueryRequest, Problem> {
        let time = |s: &str, what: &str| {
            if s.trim().is_empty() {
                return Ok(None);
            }
            crate::parse_local(s.trim())
                .map(Some)
                .map_err(|e| Problem::Input(format!("{what}: {e}")))
        };
        let bounded = |s: &str| s.trim().chars().take(128).collect::<String>();
        Ok(pb::QueryRequest {
            personal_id: bounded(&self.personal_id),
            officer_code: bounded(&self.officer),
            unit_code: bounded(&self.unit),
            procedure_code: bounded(&self.procedure),
            reason: bounded(&self.reason),
            outcome: match self.outcome.as_str() {
                "served" => pb::OutcomeFilter::Served,
                "refused" => pb::OutcomeFilter::Refused,
                _ => pb::OutcomeFilter::Any,
            } as i32,
            from: time(&self.from, "from")?,
            to: time(&self.to, "to")?,
            limit,
            page_after: bounded(&self.after),
            ..Default::default()
        })
    }
}

/// Records of a query with each one's page cursor, gathered (a page, or the report's bound).
async fn gather(
    console: &Console,
    session: &Session,
    q: pb::QueryRequest,
) -> Result<Vec<(Record, String)>, Problem> {
    let mut stream = console.client().query(session.call(q)).await?.into_inner();
    let mut out = Vec::new();
    while let Some(r) = stream.message().await? {
        let record = record_from_pb(&r)
            .ok_or_else(|| Problem::Input("the gateway sent a malformed record".into()))?;
        out.push((record, r.page_cursor));
    }
    Ok(out)
}

async fn search_form(State(console): State<Console>, session: Session) -> Response {
    let body = pages::search(session.lang, &SearchForm::default(), None);
    let title = session.lang.t("search.title");
    respond(&console, &session, title, async { Ok(body) }).await
}

async fn search(
    State(console): State<Console>,
    session: Session,
    Form(form): Form<SearchForm>,
) -> Response {
    let body = async {
        let size = form.page_size();
        let found = gather(&console, &session, form.request(size)?).await?;
        let next = (found.len() == size as usize)
            .then(|| found.last().map(|(_, c)| c.clone()))
            .flatten();
        let records: Vec<Record> = found.into_iter().map(|(r, _)| r).collect();
        Ok(pages::search(
            session.lang,
            &form,
            Some(pages::Results {
                records: &records,
                next,
            }),
        ))
    };
    respond(&console, &session, session.lang.t("search.title"), body).await
}

/// Every record of a search (up to the bound) as CSV, streamed as the gateway sends them.
async fn search_csv(
    State(console): State<Console>,
    session: Session,
    Form(form): Form<SearchForm>,
) -> Response {
    if session.token.is_none() {
        return Redirect::to("/login").into_response();
    }
    let started = async {
        let q = SearchForm {
            after: String::new(),
            ..form
        }
        .request(CSV_MAX)?;
        Ok::<_, Problem>(console.client().query(session.call(q)).await?.into_inner())
    }
    .await;
    let stream = match started {
        Ok(s) => s,
        Err(p) => return respond(&console, &session, "CSV", async { Err(p) }).await,
    };
    let header = tokio_stream::once(Ok(format!("{}\n", crate::csv::HEADER)));
    let lines = stream.map(|r| match r {
        Ok(r) => record_from_pb(&r)
            .map(|r| format!("{}\n", crate::csv::line(&r)))
            .ok_or_else(|| std::io::Error::other("malformed record")),
        Err(s) => Err(std::io::Error::other(s.message().to_owned())),
    });
    download(
        "text/csv; charset=utf-8",
        "attachment; filename=\"audit-search.csv\"",
        Body::from_stream(header.chain(lines)),
    )
}

/// A streamed file for the browser to save.
fn download(content_type: &'static str, disposition: &'static str, body: Body) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static(disposition),
    );
    (headers, body).into_response()
}

/// How a record stands in its chain: the covering checkpoint and what verification found up
/// to it.
pub struct Standing {
    pub cover: Option<Checkpoint>,
    pub verified: pb::VerifyResponse,
}

async fn standing(console: &Console, session: &Session, seq: u64) -> Result<Standing, Problem> {
    let checkpoints = console
        .client()
        .list_checkpoints(session.call(pb::ListCheckpointsRequest { from_sequence: seq }))
        .await?
        .into_inner()
        .checkpoints;
    let cover = checkpoints.first().and_then(checkpoint_from_pb);
    let verified = console
        .client()
        .verify(session.call(pb::VerifyRequest {
            from_sequence: 0,
            to_sequence: cover.as_ref().map_or(0, |c| c.sequence),
        }))
        .await?
        .into_inner();
    Ok(Standing { cover, verified })
}

async fn record(
    State(console): State<Console>,
    session: Session,
    Path(sequence): Path<String>,
) -> Response {
    let body = async {
        let seq: u64 = sequence.parse().map_err(|_| {
            Problem::Input("a record is named by its sequence number, e.g. /record/42".into())
        })?;
        let found = gather(
            &console,
            &session,
            pb::QueryRequest {
                sequence: Some(seq),
                limit: 1,
                ..Default::default()
            },
        )
        .await?;
        let Some((r, _)) = found.into_iter().next() else {
            return Ok(pages::missing(session.lang, seq));
        };
        let standing = standing(&console, &session, seq).await?;
        Ok(pages::record(session.lang, &r, &standing))
    };
    // The path as the reader typed it, bounded: a sequence number is at most 20 digits.
    let shown_sequence: String = sequence.chars().take(20).collect();
    let title = format!("{} #{shown_sequence}", session.lang.t("record.title"));
    respond(&console, &session, &title, body).await
}

async fn verify(State(console): State<Console>, session: Session) -> Response {
    let body = async {
        let verified = console
            .client()
            .verify(session.call(pb::VerifyRequest::default()))
            .await?
            .into_inner();
        let checkpoints: Vec<Checkpoint> = console
            .client()
            .list_checkpoints(session.call(pb::ListCheckpointsRequest::default()))
            .await?
            .into_inner()
            .checkpoints
            .iter()
            .filter_map(checkpoint_from_pb)
            .collect();
        // The central store's chains, for a reader the gateway has just accepted as an auditor.
        let central = match &console.0.central {
            Some(c) => Some(crate::chains::verify(&c.url, &c.schema, c.keys.clone()).await),
            None => None,
        };
        Ok(pages::verification(
            session.lang,
            &verified,
            &checkpoints,
            central.as_ref(),
        ))
    };
    respond(&console, &session, session.lang.t("verify.title"), body).await
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ReportQuery {
    pub days: Option<u32>,
    pub officer: String,
}

/// What the misuse report page shows.
pub struct ReportView {
    pub days: u32,
    pub examined: usize,
    pub truncated: bool,
    pub signals: Vec<Signal>,
    pub per_hour: Vec<(String, [f64; 24])>,
    pub by_reason: Vec<chart::Bar>,
    pub officer: Option<(String, [f64; 24], [f64; 24])>,
}

fn local_hour(time_us: i64) -> usize {
    ((time_us + 7 * 3_600_000_000).rem_euclid(86_400_000_000) / 3_600_000_000) as usize
}

/// The report over what the trail holds of the last `days` days in the auditor's scope.
fn report_view(records: &[Record], days: u32, officer: &str, truncated: bool) -> ReportView {
    use std::collections::{BTreeMap, BTreeSet};
    let signals = report::signals(records, &Thresholds::default());
    let mut per_unit: BTreeMap<&str, [f64; 24]> = BTreeMap::new();
    let mut reasons: BTreeMap<&str, u64> = BTreeMap::new();
    for r in records {
        let e = &r.entry;
        let unit = if e.unit_code.is_empty() {
            "—"
        } else {
            &e.unit_code
        };
        per_unit.entry(unit).or_insert([0.0; 24])[local_hour(e.time_us)] += 1.0;
        if e.outcome_code != 0 {
            *reasons.entry(e.outcome_reason.as_str()).or_default() += 1;
        }
    }
    let mut by_reason: Vec<chart::Bar> = reasons
        .into_iter()
        .map(|(label, value)| chart::Bar {
            label: if label.is_empty() {
                "—".into()
            } else {
                label.into()
            },
            value,
        })
        .collect();
    by_reason.sort_by_key(|b| std::cmp::Reverse(b.value));
    // The officer against their unit: their requests per hour, and the unit's per officer.
    let officer = records
        .iter()
        .find(|r| !officer.is_empty() && r.entry.officer_code == officer)
        .map(|r| r.entry.unit_code.clone())
        .map(|unit| {
            let mut own = [0.0; 24];
            let mut all = [0.0; 24];
            let mut officers = BTreeSet::new();
            for r in records.iter().filter(|r| r.entry.unit_code == unit) {
                let h = local_hour(r.entry.time_us);
                all[h] += 1.0;
                officers.insert(r.entry.officer_code.as_str());
                if r.entry.officer_code == officer {
                    own[h] += 1.0;
                }
            }
            let n = officers.len().max(1) as f64;
            (officer.to_owned(), own, all.map(|v| v / n))
        });
    ReportView {
        days,
        examined: records.len(),
        truncated,
        signals,
        per_hour: per_unit
            .into_iter()
            .map(|(u, v)| (u.to_owned(), v))
            .collect(),
        by_reason,
        officer,
    }
}

async fn misuse_report(
    State(console): State<Console>,
    session: Session,
    Query(q): Query<ReportQuery>,
) -> Response {
    let days = q.days.unwrap_or(7).clamp(1, 366);
    let body = async {
        let now = lienthong_gateway::audit::log::timestamp_us();
        let from = now - i64::from(days) * 86_400_000_000;
        let found = gather(
            &console,
            &session,
            pb::QueryRequest {
                from: Some(lienthong_proto::Timestamp {
                    seconds: from.div_euclid(1_000_000),
                    nanos: 0,
                }),
                limit: REPORT_MAX,
                ..Default::default()
            },
        )
        .await?;
        let truncated = found.len() == REPORT_MAX as usize;
        let records: Vec<Record> = found.into_iter().map(|(r, _)| r).collect();
        let officer: String = q.officer.trim().chars().take(64).collect();
        let view = report_view(&records, days, &officer, truncated);
        Ok(pages::report(session.lang, &view))
    };
    respond(&console, &session, session.lang.t("report.title"), body).await
}

async fn export_form(State(console): State<Console>, session: Session) -> Response {
    let body = pages::export_form(session.lang);
    let title = session.lang.t("export.title");
    respond(&console, &session, title, async { Ok(body) }).await
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ExportForm {
    pub from: String,
    pub to: String,
}

/// A signed range as JSON lines (the format `auditctl export` writes and `auditctl verify
/// --export` reads), streamed.
async fn export(
    State(console): State<Console>,
    session: Session,
    Form(form): Form<ExportForm>,
) -> Response {
    if session.token.is_none() {
        return Redirect::to("/login").into_response();
    }
    let number = |s: &str, what: &str| -> Result<u64, Problem> {
        let s = s.trim();
        if s.is_empty() {
            return Ok(0);
        }
        s.parse()
            .map_err(|_| Problem::Input(format!("{what}: {s:?} is not a sequence number")))
    };
    let started = async {
        let q = pb::ExportRequest {
            from_sequence: number(&form.from, "from")?,
            to_sequence: number(&form.to, "to")?,
        };
        let mut stream = console.client().export(session.call(q)).await?.into_inner();
        // The first item says whether the range can be read; the rest are streamed.
        let first = stream.message().await?;
        Ok::<_, Problem>((first, stream))
    }
    .await;
    let (first, stream) = match started {
        Ok(s) => s,
        Err(p) => {
            let title = session.lang.t("export.title");
            return respond(&console, &session, title, async { Err(p) }).await;
        }
    };
    let line = |chunk: pb::ExportChunk| -> Result<String, std::io::Error> {
        let item = match chunk.item {
            Some(pb::export_chunk::Item::Record(r)) => record_from_pb(&r)
                .map(lienthong_gateway::audit::frame::Item::Record)
                .ok_or_else(|| std::io::Error::other("malformed record"))?,
            Some(pb::export_chunk::Item::Checkpoint(c)) => checkpoint_from_pb(&c)
                .map(lienthong_gateway::audit::frame::Item::Checkpoint)
                .ok_or_else(|| std::io::Error::other("malformed checkpoint"))?,
            None => return Ok(String::new()),
        };
        Ok(format!("{}\n", crate::json::export_line(&item)))
    };
    let rest = stream.map(move |c| match c {
        Ok(c) => line(c),
        Err(s) => Err(std::io::Error::other(s.message().to_owned())),
    });
    download(
        "application/jsonl",
        "attachment; filename=\"audit-export.jsonl\"",
        Body::from_stream(tokio_stream::iter(first.map(line)).chain(rest)),
    )
}

async fn login_form(State(console): State<Console>, session: Session) -> Response {
    let officers: Vec<&SampleOfficer> = console
        .0
        .dev
        .as_ref()
        .map(|d| d.officers.clone())
        .unwrap_or_default();
    let header = pages::Header {
        lang: session.lang,
        unit: &console.0.unit_code,
        officer: String::new(),
        citizen: false,
    };
    let title = session.lang.t("login.title");
    pages::layout(&header, title, pages::login(session.lang, &officers)).into_response()
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct LoginForm {
    pub token: String,
    pub officer: String,
}

/// The session cookie: kept from scripts, sent only to this site, gone when the browser closes.
fn signed_in(token: &str) -> Response {
    session_cookie("lt_token", token, "/", "")
}

/// Sets (or, with `"; Max-Age=0"`, clears) a session cookie and goes on to `then`.
fn session_cookie(name: &str, token: &str, then: &str, expiry: &str) -> Response {
    let cookie = format!("{name}={token}; HttpOnly; SameSite=Strict; Path=/{expiry}");
    match HeaderValue::from_str(&cookie) {
        Ok(v) => ([(header::SET_COOKIE, v)], Redirect::to(then)).into_response(),
        Err(_) => (
            StatusCode::BAD_REQUEST,
            "a token is letters, digits, '-', '_' and '.': paste it again",
        )
            .into_response(),
    }
}

/// Whether pasted text has the shape of a JWT (the gateway checks the rest).
fn token_shaped(token: &str) -> bool {
    !token.is_empty()
        && token.len() <= TOKEN_MAX
        && token
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

fn not_a_token() -> Response {
    (
        StatusCode::BAD_REQUEST,
        "not a token: paste the JWT your identity provider issued (three parts joined by dots)",
    )
        .into_response()
}

async fn login(Form(form): Form<LoginForm>) -> Response {
    let token = form.token.trim();
    if !token_shaped(token) {
        return not_a_token();
    }
    signed_in(token)
}

async fn login_dev(State(console): State<Console>, Form(form): Form<LoginForm>) -> Response {
    let Some(dev) = &console.0.dev else {
        return (StatusCode::NOT_FOUND, "not a development console").into_response();
    };
    let Some(officer) = dev.officers.iter().find(|o| o.code == form.officer) else {
        return (StatusCode::BAD_REQUEST, "not a sample officer of this unit").into_response();
    };
    match dev.mint(officer.code, &console.0.unit_code, officer.roles) {
        Ok(token) => signed_in(&token),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e).into_response(),
    }
}

impl DevLogin {
    /// A development token bound to the console's certificate.
    fn mint(&self, subject: &str, unit: &str, roles: &[&str]) -> Result<String, String> {
        TokenSpec::new(subject, unit, roles)
            .bound_to_file(&self.cert)
            .map_err(|e| e.to_string())
            .and_then(|spec| mint(&self.issuer_key, &spec).map_err(|e| e.to_string()))
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct HistoryQuery {
    pub after: String,
}

/// A citizen's own access history: every access to their data, from their own token.
async fn citizen_history(
    State(console): State<Console>,
    session: Session,
    Query(q): Query<HistoryQuery>,
) -> Response {
    let lang = session.lang;
    let header = pages::Header {
        lang,
        unit: &console.0.unit_code,
        officer: String::new(),
        citizen: true,
    };
    let title = lang.t("citizen.title");
    let Some(token) = session.citizen.as_deref() else {
        let dev = console.0.dev.is_some();
        return pages::layout(&header, title, pages::citizen_login(lang, dev)).into_response();
    };
    let body = async {
        let request = pb::ListMyAccessesRequest {
            limit: PAGE,
            page_after: q.after.chars().take(64).collect(),
            ..Default::default()
        };
        let mut stream = console
            .client()
            .list_my_accesses(bearer(Some(token), request))
            .await?
            .into_inner();
        let mut accesses = Vec::new();
        while let Some(a) = stream.message().await? {
            accesses.push(a);
        }
        let next = (accesses.len() == PAGE as usize)
            .then(|| accesses.last().map(|a| a.page_cursor.clone()))
            .flatten();
        Ok::<_, Problem>(pages::citizen_history(lang, &accesses, next))
    }
    .await;
    let (status, body) = shown(lang, body);
    (status, pages::layout(&header, title, body)).into_response()
}

async fn citizen_login(Form(form): Form<LoginForm>) -> Response {
    let token = form.token.trim();
    if !token_shaped(token) {
        return not_a_token();
    }
    session_cookie("lt_citizen", token, "/citizen", "")
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CitizenDevForm {
    pub personal_id: String,
}

/// Development: a citizen token for a personal ID, as VNeID would issue it after the citizen
/// proved who they are.
async fn citizen_login_dev(
    State(console): State<Console>,
    Form(form): Form<CitizenDevForm>,
) -> Response {
    let Some(dev) = &console.0.dev else {
        return (StatusCode::NOT_FOUND, "not a development console").into_response();
    };
    let id = match lienthong_domain::PersonalId::parse(form.personal_id.trim()) {
        Ok(id) => id,
        Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    };
    match dev.mint(id.as_str(), &console.0.unit_code, &["citizen"]) {
        Ok(token) => session_cookie("lt_citizen", &token, "/citizen", ""),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e).into_response(),
    }
}

async fn citizen_logout() -> Response {
    session_cookie("lt_citizen", "", "/citizen", "; Max-Age=0")
}

async fn logout() -> Response {
    session_cookie("lt_token", "", "/login", "; Max-Age=0")
}

async fn language(Path(code): Path<String>, headers: HeaderMap) -> Response {
    let lang = Lang::parse(&code).unwrap_or(Lang::Vi);
    // Back to the page the reader came from, on this site only.
    let back = headers
        .get(header::REFERER)
        .and_then(|v| v.to_str().ok())
        .and_then(|r| r.split_once("://").map(|(_, rest)| rest))
        .and_then(|rest| rest.find('/').map(|i| rest[i..].to_owned()))
        .filter(|p| p.starts_with('/') && !p.starts_with("//"))
        .unwrap_or_else(|| "/".into());
    let cookie = format!("lt_lang={}; SameSite=Strict; Path=/", lang.code());
    let cookie = HeaderValue::from_str(&cookie).unwrap_or(HeaderValue::from_static("lt_lang=vi"));
    ([(header::SET_COOKIE, cookie)], Redirect::to(&back)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_signal_kind_has_words_in_both_languages() {
        for kind in [
            "shared-account",
            "dormant-account",
            "no-dossier",
            "off-hours",
            "high-volume",
            "refusal-burst",
            "verification-probing",
        ] {
            let key = format!("kind.{kind}");
            for lang in [Lang::Vi, Lang::En] {
                assert_ne!(lang.t(&key), key, "{key} in {lang:?}");
            }
        }
    }

    #[test]
    fn the_local_hour_is_vietnam_time() {
        // 2026-11-23 01:30 UTC is 08:30 in Hà Nội.
        let t = (lienthong_domain::date::days_from_civil(2026, 11, 23) * 86_400 + 5400) * 1_000_000;
        assert_eq!(local_hour(t), 8);
    }
}
