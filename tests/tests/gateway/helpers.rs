//! `spawn_env()`: the mock database and the gateway, each on a random port with real mutual TLS,
//! the development PKI and configuration in a temp dir, and the gateway's rate limits on a fake
//! clock. The calls themselves go through the generated proto client only.

use governor::clock::FakeRelativeClock;
use lienthong_devtool::client::mtls_channel;
use lienthong_devtool::env::{DevPki, ensure_gateway_config, spawn_mock};
use lienthong_devtool::pki::CertFiles;
use lienthong_devtool::sample;
use lienthong_devtool::tokens::{TokenSpec, mint};
use lienthong_gateway::config::ENV_PREFIX;
use lienthong_gateway::{App, Config};
use lienthong_proto::gateway::v1 as pb;
use pb::citizen_gateway_client::CitizenGatewayClient;
use std::net::SocketAddr;
use tonic::transport::Channel;
use tonic::{Code, Status};
use tonic_types::StatusExt;

pub struct TestEnv {
    pub addr: SocketAddr,
    /// The plaintext health listener, when `HEALTH_LISTEN` is set.
    pub health_addr: Option<SocketAddr>,
    /// The admin listener (`GET /metrics`), when `ADMIN_LISTEN` is set.
    pub admin_addr: Option<SocketAddr>,
    /// The HTTP/JSON API, when `HTTP_LISTEN` is set.
    pub http_addr: Option<SocketAddr>,
    /// The mock database's admin service.
    pub mock_admin: SocketAddr,
    pub pki: DevPki,
    pub clock: FakeRelativeClock,
    pub dir: tempfile::TempDir,
    _mock: lienthong_devtool::env::RunningMock,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    gateway: Option<tokio::task::JoinHandle<Result<(), lienthong_gateway::AppError>>>,
}

/// Every log line of this test process (the gateway and the mock database run in it), as JSON
/// at info and above, the way an operator collects them.
static LOGS: std::sync::Mutex<Vec<u8>> = std::sync::Mutex::new(Vec::new());

struct Captured;

impl std::io::Write for Captured {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        LOGS.lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs the capture once per process.
fn capture_logs() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = tracing_subscriber::fmt()
            .json()
            .with_max_level(tracing::Level::INFO)
            .with_writer(|| Captured)
            .try_init();
    });
}

/// What is wrong with a log line, if it holds a personal ID (a run of exactly 12 digits) or a
/// token (a JWT begins `eyJ`).
pub fn secret_in(line: &str) -> Option<&'static str> {
    if line.contains("eyJ") {
        return Some("a token");
    }
    let mut run = 0;
    for c in line.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_digit() {
            run += 1;
        } else if run == 12 {
            return Some("a personal ID");
        } else {
            run = 0;
        }
    }
    None
}

/// The log lines captured so far.
pub fn captured_logs() -> String {
    String::from_utf8_lossy(&LOGS.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
}

/// Fails if any log line so far holds a personal ID or a token: every test of this binary —
/// the attack matrix, the hostile callers, the refusals — writes its logs here, and any test
/// that ends checks all of them.
pub fn assert_logs_hold_no_secrets() {
    for line in captured_logs().lines() {
        if let Some(what) = secret_in(line) {
            panic!("{what} in the log: {line}");
        }
    }
}

/// Overrides of the development gateway configuration, as `KEY__SUB = value` pairs.
pub async fn spawn_env_with(overrides: &[(&str, &str)]) -> TestEnv {
    spawn_env_prepared(overrides, |_| {}).await
}

/// As `spawn_env_with`, running `prepare` on the environment directory before the gateway starts.
pub async fn spawn_env_prepared(
    overrides: &[(&str, &str)],
    prepare: impl FnOnce(&std::path::Path),
) -> TestEnv {
    spawn_env_of(200, overrides, prepare).await
}

/// As `spawn_env_prepared`, with a store of `citizens` generated citizens (seed 7) and the
/// personas.
pub async fn spawn_env_of(
    citizens: u64,
    overrides: &[(&str, &str)],
    prepare: impl FnOnce(&std::path::Path),
) -> TestEnv {
    capture_logs();
    let dir = tempfile::tempdir().unwrap();
    let (pki, _) = DevPki::ensure(dir.path()).unwrap();
    let mock = spawn_mock(dir.path(), &pki, 7, citizens).await.unwrap();
    let mock_addr = mock.addr;
    let mock_admin = mock.admin_addr;
    let config_file = ensure_gateway_config(dir.path()).unwrap();
    prepare(dir.path());
    let mut env: Vec<(String, String)> = vec![
        (format!("{ENV_PREFIX}LISTEN"), "\"127.0.0.1:0\"".into()),
        (
            format!("{ENV_PREFIX}UPSTREAM__ENDPOINT"),
            format!("\"https://{mock_addr}\""),
        ),
    ];
    env.extend(
        overrides
            .iter()
            .map(|(k, v)| (format!("{ENV_PREFIX}{k}"), (*v).to_owned())),
    );
    let config = Config::load(&config_file, env).unwrap();
    let clock = FakeRelativeClock::default();
    let app = App::with_clock(config, clock.clone()).await.unwrap();
    let addr = app.local_addr();
    let health_addr = app.health_addr();
    let admin_addr = app.admin_addr();
    let http_addr = app.http_addr();
    let (gw_stop, rx) = tokio::sync::oneshot::channel::<()>();
    let gateway = tokio::spawn(app.run_until_stopped(async {
        let _ = rx.await;
    }));
    TestEnv {
        addr,
        health_addr,
        admin_addr,
        http_addr,
        mock_admin,
        pki,
        clock,
        dir,
        _mock: mock,
        stop: Some(gw_stop),
        gateway: Some(gateway),
    }
}

pub async fn spawn_env() -> TestEnv {
    spawn_env_with(&[]).await
}

/// The sample officer's unit key.
fn unit_of(officer: &str) -> &'static sample::SampleUnit {
    let o = sample::officer(officer).unwrap();
    sample::unit(o.unit).unwrap()
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            assert_logs_hold_no_secrets();
        }
    }
}

impl TestEnv {
    /// Stops the gateway gracefully and waits until it has finished (closing checkpoint signed);
    /// the directory stays.
    pub async fn shutdown(&mut self) {
        self.stop.take();
        if let Some(g) = self.gateway.take() {
            g.await.unwrap().unwrap();
        }
    }

    /// The gateway's trail file (development config: audit/gw-dev-1.trail).
    pub fn trail(&self) -> std::path::PathBuf {
        self.dir.path().join("audit").join("gw-dev-1.trail")
    }

    pub fn unit_cert(&self, unit_key: &str) -> CertFiles {
        self.pki.unit(sample::unit(unit_key).unwrap())
    }

    pub async fn channel(&self, identity: Option<&CertFiles>) -> Channel {
        mtls_channel(&format!("https://{}", self.addr), &self.pki.ca, identity)
            .await
            .unwrap()
    }

    /// A client connected with the unit's certificate.
    pub async fn client_for_unit(&self, unit_key: &str) -> CitizenGatewayClient<Channel> {
        CitizenGatewayClient::new(self.channel(Some(&self.unit_cert(unit_key))).await)
    }

    /// A valid token for a sample officer, bound to their unit's certificate.
    pub fn token(&self, officer: &str) -> String {
        self.token_with(officer, |s| s)
    }

    /// A token for a sample officer, adjusted.
    pub fn token_with(&self, officer: &str, adjust: impl FnOnce(TokenSpec) -> TokenSpec) -> String {
        let o = sample::officer(officer).unwrap();
        let unit = unit_of(officer);
        let spec = TokenSpec::new(o.code, unit.code, o.roles)
            .bound_to_file(&self.pki.unit(unit).cert)
            .unwrap();
        mint(&self.pki.issuer.key, &adjust(spec)).unwrap()
    }

    /// Every record of the trail about a citizen, as Hà Tĩnh's auditor finds them by personal ID.
    pub async fn records_about(
        &self,
        personal_id: &str,
    ) -> Vec<lienthong_proto::audit::v1::AuditRecord> {
        use lienthong_proto::audit::v1 as audit;
        let mut client = audit::audit_service_client::AuditServiceClient::new(
            self.channel(Some(&self.unit_cert("ha-tinh"))).await,
        );
        let mut stream = client
            .query(authed(
                &self.token("CB.H42.KT01"),
                audit::QueryRequest {
                    personal_id: personal_id.into(),
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner();
        let mut out = Vec::new();
        while let Some(r) = stream.message().await.unwrap() {
            out.push(r);
        }
        out
    }

    /// An officer's session: their unit's connection and their token.
    pub async fn officer(&self, officer: &str) -> Session {
        Session {
            client: self.client_for_unit(unit_of(officer).key).await,
            token: self.token(officer),
        }
    }
}

/// A connected one-stop system acting for one officer.
pub struct Session {
    pub client: CitizenGatewayClient<Channel>,
    pub token: String,
}

impl Session {
    pub async fn lookup(
        &mut self,
        procedure: &str,
        personal_id: &str,
    ) -> Result<tonic::Response<pb::LookupCitizenResponse>, Status> {
        let req = authed(&self.token, lookup(procedure, personal_id));
        self.client.lookup_citizen(req).await
    }

    pub async fn autofill(
        &mut self,
        procedure: &str,
        personal_id: &str,
    ) -> Result<pb::AutofillFormResponse, Status> {
        let req = authed(&self.token, autofill(procedure, personal_id));
        Ok(self.client.autofill_form(req).await?.into_inner())
    }

    pub async fn verify(
        &mut self,
        procedure: &str,
        personal_id: &str,
        claims: &[(&str, &str)],
    ) -> Result<pb::VerifyCitizenResponse, Status> {
        let req = authed(&self.token, verify(procedure, personal_id, claims));
        Ok(self.client.verify_citizen(req).await?.into_inner())
    }

    /// The record with only the named fields, as served.
    pub async fn fields_of(
        &mut self,
        procedure: &str,
        personal_id: &str,
        fields: &[&str],
    ) -> lienthong_proto::csdl::v1::Citizen {
        let mut message = lookup(procedure, personal_id);
        message.fields = fields.iter().map(|f| (*f).to_owned()).collect();
        let req = authed(&self.token, message);
        let reply = self.client.lookup_citizen(req).await.unwrap();
        reply.into_inner().citizen.unwrap()
    }

    /// A member's household.
    pub async fn household(
        &mut self,
        procedure: &str,
        personal_id: &str,
    ) -> Result<lienthong_proto::csdl::v1::Household, Status> {
        let req = authed(
            &self.token,
            pb::GetHouseholdRequest {
                context: ctx(procedure),
                personal_id: personal_id.into(),
            },
        );
        Ok(self
            .client
            .get_household(req)
            .await?
            .into_inner()
            .household
            .unwrap())
    }
}

/// The audit sequence of a reply's receipt.
pub fn receipt_sequence(md: &tonic::metadata::MetadataMap) -> u64 {
    md.get("x-audit-sequence")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

pub fn authed<T>(token: &str, message: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(message);
    r.metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    r
}

pub fn ctx(procedure: &str) -> Option<pb::RequestContext> {
    Some(pb::RequestContext {
        request_id: format!("req-{:x}", rand_id()),
        procedure_code: procedure.to_owned(),
        dossier_id: "H42.01-251123-0001".to_owned(),
        ..Default::default()
    })
}

fn rand_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(1);
    N.fetch_add(1, Ordering::Relaxed)
}

pub fn lookup(procedure: &str, personal_id: &str) -> pb::LookupCitizenRequest {
    pb::LookupCitizenRequest {
        context: ctx(procedure),
        subject: Some(pb::lookup_citizen_request::Subject::PersonalId(
            personal_id.to_owned(),
        )),
        fields: vec![],
    }
}

pub fn autofill(procedure: &str, personal_id: &str) -> pb::AutofillFormRequest {
    pb::AutofillFormRequest {
        context: ctx(procedure),
        subject: Some(pb::autofill_form_request::Subject::PersonalId(
            personal_id.to_owned(),
        )),
    }
}

pub fn verify(
    procedure: &str,
    personal_id: &str,
    claims: &[(&str, &str)],
) -> pb::VerifyCitizenRequest {
    pb::VerifyCitizenRequest {
        old_id_number: String::new(),
        context: ctx(procedure),
        personal_id: personal_id.to_owned(),
        claims: claims
            .iter()
            .map(|(f, v)| pb::Claim {
                field: (*f).to_owned(),
                value: (*v).to_owned(),
            })
            .collect(),
    }
}

/// A persona's personal ID.
pub fn persona(key: &str) -> &'static str {
    mock_csdl::personas::persona(key).unwrap().personal_id
}

/// Asserts a refusal's code and ErrorInfo reason, and that it says it in Vietnamese too.
#[track_caller]
pub fn assert_refused(status: &Status, code: Code, reason: &str) {
    assert_eq!(status.code(), code, "{status:?}");
    let details = status.get_error_details();
    let vi = details
        .localized_message()
        .unwrap_or_else(|| panic!("no localized message in {status:?}"));
    assert_eq!(vi.locale, "vi-VN");
    assert!(!vi.message.is_empty());
    let info = details
        .error_info()
        .unwrap_or_else(|| panic!("no ErrorInfo in {status:?}"));
    assert_eq!(info.reason, reason, "{status:?}");
    assert_eq!(info.domain, "lienthong.gov.vn");
}

/// The names of the fields set in a citizen message: the test's own reading of the wire.
pub fn set_fields(c: &lienthong_proto::csdl::v1::Citizen) -> Vec<&'static str> {
    let mut out = Vec::new();
    let mut add = |set: bool, name: &'static str| {
        if set {
            out.push(name);
        }
    };
    add(!c.personal_id.is_empty(), "personal_id");
    add(!c.old_id_number.is_empty(), "old_id_number");
    add(
        !c.previous_old_id_numbers.is_empty(),
        "previous_old_id_numbers",
    );
    add(!c.full_name.is_empty(), "full_name");
    add(c.date_of_birth.is_some(), "date_of_birth");
    add(c.gender != 0, "gender");
    add(!c.nationality.is_empty(), "nationality");
    add(!c.ethnicity.is_empty(), "ethnicity");
    add(!c.religion.is_empty(), "religion");
    add(c.place_of_birth.is_some(), "place_of_birth");
    add(c.place_of_origin.is_some(), "place_of_origin");
    add(c.permanent_address.is_some(), "permanent_address");
    add(c.temporary_address.is_some(), "temporary_address");
    add(c.current_address.is_some(), "current_address");
    add(c.household.is_some(), "household");
    add(c.father.is_some(), "father");
    add(c.mother.is_some(), "mother");
    add(c.spouse.is_some(), "spouse");
    add(c.marital_status != 0, "marital_status");
    add(c.card.is_some(), "card");
    add(!c.phone.is_empty(), "phone");
    add(c.eid_level != 0, "eid_level");
    add(
        !c.health_insurance_number.is_empty(),
        "health_insurance_number",
    );
    add(c.life_status.is_some(), "life_status");
    out
}

/// Every record of the trail as it is on disk now.
pub fn records(env: &TestEnv) -> Vec<lienthong_gateway::audit::record::Record> {
    use lienthong_gateway::audit::frame::{FrameReader, Item};
    let file = std::fs::File::open(env.trail()).unwrap();
    let len = file.metadata().unwrap().len();
    FrameReader::new(std::io::BufReader::new(file), len)
        .unwrap()
        .filter_map(|f| match f.unwrap() {
            (_, Item::Record(r)) => Some(r),
            _ => None,
        })
        .collect()
}

impl TestEnv {
    /// The mock database's admin service, with the development admin certificate.
    pub async fn mock_admin(
        &self,
    ) -> lienthong_proto::csdl::v1::registry_admin_client::RegistryAdminClient<Channel> {
        lienthong_proto::csdl::v1::registry_admin_client::RegistryAdminClient::new(
            mtls_channel(
                &format!("https://{}", self.mock_admin),
                &self.pki.ca,
                Some(&self.pki.dev_client),
            )
            .await
            .unwrap(),
        )
    }

    /// Delays every lookup in the mock database by `ms`.
    pub async fn slow_database(&self, ms: u32) {
        use lienthong_proto::csdl::v1 as csdl;
        self.mock_admin()
            .await
            .set_fault(csdl::SetFaultRequest {
                fault: Some(csdl::Fault {
                    effect: Some(csdl::fault::Effect::Latency(csdl::LatencyFault {
                        fixed_ms: ms,
                        jitter_ms: 0,
                    })),
                    ..Default::default()
                }),
            })
            .await
            .unwrap();
    }
}
