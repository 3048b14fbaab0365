//! The gateway's configuration: one TOML file, overridden by `LIENTHONG_GATEWAY__*` environment
//! variables, read into raw settings and validated once into a typed [`Config`]. Every bad key
//! is reported at once, by name.

use crate::catalog::Catalog;
use jsonwebtoken::{Algorithm, DecodingKey};
use lienthong_domain::{ProcedureCode, UnitCode};
use serde::Deserialize;
use sha2::Digest as _;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

/// The prefix of environment overrides: `LIENTHONG_GATEWAY__UPSTREAM__ENDPOINT` sets
/// `upstream.endpoint`; `LIENTHONG_GATEWAY__UNITS__0__BATCH_MAX_ITEMS` sets the first unit's.
pub const ENV_PREFIX: &str = "LIENTHONG_GATEWAY__";

/// Why the configuration is unusable: every problem, each naming its key.
#[derive(Debug, thiserror::Error)]
pub struct ConfigError {
    pub file: PathBuf,
    pub problems: Vec<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "the gateway configuration {} has {} problem(s):",
            self.file.display(),
            self.problems.len()
        )?;
        for p in &self.problems {
            writeln!(f, "  - {p}")?;
        }
        Ok(())
    }
}

/// Sandbox (test connections) or production.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Environment {
    Sandbox,
    Production,
}

impl Environment {
    pub fn as_str(self) -> &'static str {
        match self {
            Environment::Sandbox => "sandbox",
            Environment::Production => "production",
        }
    }
}

/// Where a unit stands in the connection approval process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Approval {
    Approved,
    Pending,
    Suspended,
}

impl Approval {
    pub fn as_str(self) -> &'static str {
        match self {
            Approval::Approved => "approved",
            Approval::Pending => "pending",
            Approval::Suspended => "suspended",
        }
    }
}

/// A rate: so many per second, with a burst.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub per_second: NonZeroU32,
    pub burst: NonZeroU32,
}

/// A connected unit (đơn vị kết nối).
#[derive(Debug, Clone)]
pub struct Unit {
    pub code: UnitCode,
    pub name: String,
    /// The environment its credentials were issued for.
    pub environment: Environment,
    pub approval: Approval,
    /// The procedures it may use.
    pub procedures: BTreeSet<ProcedureCode>,
    /// The unit's own rate.
    pub rate: Rate,
    /// Each of its officers' rate.
    pub officer_rate: Rate,
    /// The most items one VerifyBatch stream may carry; 0 refuses bulk verification.
    pub batch_max_items: u32,
    /// Whose records this unit's auditors may read.
    pub audit_scope: AuditScope,
}

/// Whose audit records a unit's auditors may read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditScope {
    /// Every unit's, and the records of callers no unit was established for.
    National,
    /// These units' only.
    Units(BTreeSet<UnitCode>),
}

/// Where an issuer's public keys come from.
#[derive(Clone)]
pub enum IssuerKey {
    /// One key, from a PEM file.
    Pem(DecodingKey),
    /// A JWK Set from a file or a URL, refreshed; tokens name their key by `kid`.
    Jwks(std::sync::Arc<crate::jwks::Jwks>),
}

/// A token issuer the gateway trusts.
#[derive(Clone)]
pub struct Issuer {
    pub issuer: String,
    /// The one algorithm this issuer signs with; tokens with any other `alg` are refused.
    pub algorithm: Algorithm,
    pub key: IssuerKey,
    /// SHA-256 of the public key's PEM (or of the JWK Set's source), hex: which key this is,
    /// without the key (a reload says when it changed).
    pub key_digest: String,
    /// Whether tokens must carry `cnf.x5t#S256`, the thumbprint of the calling certificate.
    pub require_certificate_binding: bool,
    /// The longest a token may live (`exp − iat`); a longer-lived token is refused.
    pub max_lifetime: Duration,
    /// Whether each token (by `jti`) may be used once only: a replay is refused.
    pub refuse_replay: bool,
}

impl fmt::Debug for Issuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Issuer")
            .field("issuer", &self.issuer)
            .field("algorithm", &self.algorithm)
            .field("key_digest", &self.key_digest)
            .field(
                "require_certificate_binding",
                &self.require_certificate_binding,
            )
            .finish_non_exhaustive()
    }
}

/// Officer-token checking.
#[derive(Debug, Clone)]
pub struct Auth {
    pub audience: String,
    pub leeway: Duration,
    pub cache_entries: usize,
    pub issuers: Vec<Issuer>,
}

/// PEM material, read at start.
#[derive(Clone)]
pub struct Pem {
    pub path: PathBuf,
    pub bytes: Vec<u8>,
}

impl fmt::Debug for Pem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pem({})", self.path.display())
    }
}

/// The server's TLS material.
#[derive(Debug, Clone)]
pub struct ServerTls {
    pub cert: Pem,
    pub key: Pem,
    pub client_ca: Pem,
}

/// The population database.
#[derive(Debug, Clone)]
pub struct Upstream {
    pub endpoint: String,
    /// The TLS server name to expect in its certificate.
    pub server_name: String,
    pub ca: Pem,
    pub cert: Pem,
    pub key: Pem,
    pub timeout: Duration,
    pub retry: bool,
    pub breaker_failures: u32,
    pub breaker_open: Duration,
    /// Calls in flight to the database at once, in all (a bulkhead: past it, `UPSTREAM_BUSY`).
    pub max_in_flight: u32,
    /// Calls in flight at once for one unit, so one unit cannot take every slot.
    pub max_in_flight_per_unit: u32,
}

/// The audit trail.
#[derive(Clone)]
pub struct Audit {
    /// Where the trail (`<chain_id>.trail`) and its indexes (`index/`) live.
    pub dir: PathBuf,
    /// This gateway instance's chain.
    pub chain_id: String,
    /// Signs the checkpoints.
    pub signing_key: ed25519_dalek::SigningKey,
    /// Public keys of retired signing keys, so checkpoints signed before a rotation still verify.
    pub previous_keys: Vec<ed25519_dalek::VerifyingKey>,
    /// Keys the citizen pseudonyms (HMAC-SHA-256).
    pub pseudonym_key: Vec<u8>,
    pub checkpoint_every: u64,
    pub checkpoint_interval: Duration,
    /// Most records written and fsynced together.
    pub max_batch: usize,
    /// Where the records are shipped for the whole fleet; None keeps them on this replica only.
    pub central: Option<Central>,
}

impl fmt::Debug for Audit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Audit")
            .field("dir", &self.dir)
            .field("chain_id", &self.chain_id)
            .field("checkpoint_every", &self.checkpoint_every)
            .field("checkpoint_interval", &self.checkpoint_interval)
            .field("central", &self.central)
            .finish_non_exhaustive()
    }
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub environment: Environment,
    pub listen: SocketAddr,
    /// A plaintext listener serving only gRPC health (`grpc.health.v1`), for probes that cannot
    /// speak TLS (Kubernetes `grpc` probes); off unless set.
    pub health_listen: Option<SocketAddr>,
    /// A plaintext HTTP listener serving `GET /metrics` (Prometheus); off unless set. Bind it
    /// where only the monitoring system reaches it.
    pub admin_listen: Option<SocketAddr>,
    /// The HTTP/JSON API (mutual TLS, HTTP/1.1 and HTTP/2); off unless set.
    pub http_listen: Option<SocketAddr>,
    /// The largest HTTP/JSON request body, in bytes.
    pub http_max_body_bytes: usize,
    pub tls: ServerTls,
    pub upstream: Upstream,
    pub auth: Auth,
    /// The global rate, protecting the population database.
    pub global_rate: Rate,
    /// The share of the global rate VerifyBatch items may take, so that batches cannot starve
    /// single calls.
    pub batch_share_percent: u32,
    /// The fleet's shared limiter; None keeps the limits in this process.
    pub shared_limits: Option<SharedLimits>,
    pub max_message_bytes: usize,
    pub shutdown_grace: Duration,
    pub units: BTreeMap<UnitCode, Unit>,
    /// Client certificates refused although they chain to the CA: SHA-256 of the DER,
    /// lowercase hex (`CERTIFICATE_REVOKED`).
    pub revoked_certificates: BTreeSet<String>,
    pub catalog: Catalog,
    pub audit: Audit,
    pub door: DoorSettings,
    pub transport: TransportLimits,
    /// How many claims one officer may make on one field of one citizen in one day (Vietnam
    /// time), in VerifyCitizen and VerifyBatch together.
    pub verification_budget_per_day: u32,
    /// Where this configuration was read from, so that a reload reads it the same way; None
    /// when it was parsed from text.
    pub source: Option<ConfigSource>,
}

/// A configuration file and the environment overrides applied to it.
#[derive(Debug, Clone)]
pub struct ConfigSource {
    pub path: PathBuf,
    /// The `LIENTHONG_GATEWAY__*` variables, as they were at start.
    pub env: Vec<(String, String)>,
}

impl ConfigSource {
    /// Reads and validates the file again, with the same overrides.
    pub fn load(&self) -> Result<Config, ConfigError> {
        Config::load(&self.path, self.env.clone())
    }
}

/// The transport's limits (`[transport]`), each set explicitly.
#[derive(Debug, Clone, Copy)]
pub struct TransportLimits {
    /// HTTP/2 streams one connection may have open at once.
    pub max_concurrent_streams: u32,
    /// A TLS handshake not finished by then is dropped (idle TCP connections with it).
    pub tls_handshake_timeout: Duration,
    /// HTTP/2 PING interval, and how long to wait for its answer before closing.
    pub keepalive_interval: Duration,
    pub keepalive_timeout: Duration,
    /// The longest one call may take in the gateway (the reply of a stream: until it starts).
    pub request_timeout: Duration,
    /// Connections are asked to go away (GOAWAY) after this age, then given a grace to finish.
    pub max_connection_age: Duration,
    pub max_connection_age_grace: Duration,
    /// The largest header list (metadata) a request may carry, in bytes.
    pub max_header_list_bytes: u32,
    /// The largest reply message, in bytes.
    pub max_response_bytes: usize,
    /// A VerifyBatch stream that sends no item for this long is closed.
    pub batch_idle_timeout: Duration,
}

/// What unauthenticated callers may cost (`[door]`).
#[derive(Debug, Clone, Copy)]
pub struct DoorSettings {
    /// Calls without a client certificate, per peer address.
    pub rate: Rate,
    /// Refusals before an officer is established: this many full records per peer, reason
    /// and window, then one summary record with the count.
    pub records_per_window: u32,
    pub window: Duration,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    environment: Environment,
    listen: String,
    #[serde(default)]
    health_listen: Option<String>,
    #[serde(default)]
    admin_listen: Option<String>,
    #[serde(default)]
    http_listen: Option<String>,
    #[serde(default = "default_http_max_body_bytes")]
    http_max_body_bytes: usize,
    procedures_file: PathBuf,
    #[serde(default = "default_max_message_bytes")]
    max_message_bytes: usize,
    #[serde(default = "default_grace")]
    shutdown_grace_ms: u64,
    tls: RawTls,
    upstream: RawUpstream,
    auth: RawAuth,
    limits: RawLimits,
    audit: RawAudit,
    #[serde(default)]
    door: RawDoor,
    #[serde(default)]
    verification: RawVerification,
    #[serde(default)]
    transport: RawTransport,
    #[serde(default)]
    units: Vec<RawUnit>,
    #[serde(default)]
    revoked_certificates: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawTransport {
    max_concurrent_streams: u32,
    tls_handshake_timeout_ms: u64,
    keepalive_interval_ms: u64,
    keepalive_timeout_ms: u64,
    request_timeout_ms: u64,
    max_connection_age_ms: u64,
    max_connection_age_grace_ms: u64,
    max_header_list_bytes: u32,
    max_response_bytes: usize,
    batch_idle_timeout_ms: u64,
}

impl Default for RawTransport {
    fn default() -> Self {
        Self {
            max_concurrent_streams: 100,
            tls_handshake_timeout_ms: 5_000,
            keepalive_interval_ms: 30_000,
            keepalive_timeout_ms: 10_000,
            request_timeout_ms: 30_000,
            max_connection_age_ms: 3_600_000,
            max_connection_age_grace_ms: 60_000,
            max_header_list_bytes: 16 * 1024,
            max_response_bytes: 4 * 1024 * 1024,
            batch_idle_timeout_ms: 30_000,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawVerification {
    budget_per_day: u32,
}

impl Default for RawVerification {
    fn default() -> Self {
        Self { budget_per_day: 5 }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawDoor {
    rate: RawRate,
    records_per_window: u32,
    window_ms: u64,
}

impl Default for RawDoor {
    fn default() -> Self {
        Self {
            rate: RawRate {
                per_second: 5,
                burst: 20,
            },
            records_per_window: 5,
            window_ms: 60_000,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAudit {
    dir: PathBuf,
    chain_id: String,
    signing_key: PathBuf,
    #[serde(default)]
    previous_public_keys: Vec<PathBuf>,
    pseudonym_key: PathBuf,
    #[serde(default = "default_checkpoint_every")]
    checkpoint_every: u64,
    #[serde(default = "default_checkpoint_interval")]
    checkpoint_interval_ms: u64,
    #[serde(default = "default_max_batch")]
    max_batch: usize,
    #[serde(default)]
    central: Option<RawCentral>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCentral {
    url: String,
    #[serde(default = "default_central_schema")]
    schema: String,
    #[serde(default = "default_central_batch")]
    batch: usize,
    #[serde(default = "default_central_retry")]
    max_retry_ms: u64,
}

fn default_central_schema() -> String {
    "lienthong_audit".to_owned()
}
fn default_central_batch() -> usize {
    500
}
fn default_central_retry() -> u64 {
    30_000
}

/// The central audit store (`[audit.central]`): PostgreSQL, where every replica ships its chain.
#[derive(Clone)]
pub struct Central {
    /// `postgres://user[:password]@host:port/database`; never printed (it may hold a password).
    pub url: String,
    /// The schema the store's tables live in (created and migrated at start).
    pub schema: String,
    /// Most records shipped in one transaction.
    pub batch: usize,
    /// The longest wait between attempts while the store is unreachable.
    pub max_retry: Duration,
}

impl fmt::Debug for Central {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Central")
            .field("schema", &self.schema)
            .field("batch", &self.batch)
            .field("max_retry", &self.max_retry)
            .finish_non_exhaustive()
    }
}

fn default_checkpoint_every() -> u64 {
    1000
}
fn default_checkpoint_interval() -> u64 {
    60_000
}
fn default_max_batch() -> usize {
    512
}

fn default_max_message_bytes() -> usize {
    256 * 1024
}
fn default_grace() -> u64 {
    10_000
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert: PathBuf,
    key: PathBuf,
    client_ca: PathBuf,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUpstream {
    endpoint: String,
    #[serde(default = "default_server_name")]
    server_name: String,
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    #[serde(default = "default_timeout")]
    timeout_ms: u64,
    #[serde(default = "yes")]
    retry: bool,
    #[serde(default = "default_breaker_failures")]
    breaker_failures: u32,
    #[serde(default = "default_breaker_open")]
    breaker_open_ms: u64,
    #[serde(default = "default_max_in_flight")]
    max_in_flight: u32,
    #[serde(default = "default_max_in_flight_per_unit")]
    max_in_flight_per_unit: u32,
}

fn default_max_in_flight() -> u32 {
    128
}
fn default_max_in_flight_per_unit() -> u32 {
    64
}

fn default_server_name() -> String {
    "localhost".to_owned()
}
fn default_timeout() -> u64 {
    2_000
}
fn yes() -> bool {
    true
}
fn default_breaker_failures() -> u32 {
    10
}
fn default_breaker_open() -> u64 {
    5_000
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAuth {
    audience: String,
    #[serde(default = "default_leeway")]
    leeway_seconds: u64,
    #[serde(default = "default_cache")]
    token_cache_entries: usize,
    issuers: Vec<RawIssuer>,
}

fn default_leeway() -> u64 {
    30
}
fn default_cache() -> usize {
    10_000
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIssuer {
    issuer: String,
    algorithm: String,
    #[serde(default)]
    public_key: Option<PathBuf>,
    /// A JWK Set: a file, or an `http://` / `https://` URL.
    #[serde(default)]
    jwks: Option<String>,
    #[serde(default = "default_jwks_refresh")]
    jwks_refresh_seconds: u64,
    /// The CA bundle (PEM) that verifies an `https://` JWK Set's server.
    #[serde(default)]
    jwks_ca: Option<PathBuf>,
    #[serde(default = "yes")]
    require_certificate_binding: bool,
    #[serde(default = "default_max_lifetime")]
    max_lifetime_seconds: u64,
    #[serde(default)]
    refuse_replay: bool,
}

fn default_jwks_refresh() -> u64 {
    300
}

fn default_max_lifetime() -> u64 {
    12 * 3600
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    per_second: u32,
    burst: u32,
    #[serde(default = "default_batch_share")]
    batch_share_percent: u32,
    #[serde(default)]
    backend: LimitsBackend,
    #[serde(default)]
    redis: Option<RawRedisLimits>,
}

/// Where the rate limits are kept.
#[derive(Deserialize, Debug, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LimitsBackend {
    /// In this process (governor): each replica limits on its own.
    #[default]
    Local,
    /// In Redis, shared by every replica of the fleet.
    Redis,
}

/// What the shared limiter does when Redis cannot be reached in time.
#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OnFailure {
    /// Fall back to this replica's own limiter at each rate divided by `replicas`.
    FailOpen,
    /// Refuse every call (`RATE_LIMITER_UNAVAILABLE`) until Redis answers again.
    FailClosed,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRedisLimits {
    url: String,
    #[serde(default = "default_redis_prefix")]
    key_prefix: String,
    #[serde(default = "default_redis_timeout")]
    timeout_ms: u64,
    on_failure: OnFailure,
    replicas: u32,
    #[serde(default = "default_redis_probe")]
    probe_interval_ms: u64,
}

fn default_redis_prefix() -> String {
    "lienthong:limits".to_owned()
}
fn default_redis_timeout() -> u64 {
    50
}
fn default_redis_probe() -> u64 {
    1_000
}

/// The fleet's shared limiter (`[limits.redis]`, with `backend = "redis"`).
#[derive(Clone)]
pub struct SharedLimits {
    /// `redis://[user:password@]host:port[/db]`; never printed (it may hold a password).
    pub url: String,
    /// Every key the limiter writes starts with it (one prefix per fleet).
    pub key_prefix: String,
    /// The longest a call waits for Redis before the failure policy decides.
    pub timeout: Duration,
    pub on_failure: OnFailure,
    /// How many replicas share the limits: with `fail_open`, each admits rate / replicas.
    pub replicas: NonZeroU32,
    /// After a failure, calls skip Redis for this long (one call then tries it again), so a
    /// Redis that does not answer costs one timeout per interval, not one per call.
    pub probe_interval: Duration,
}

impl fmt::Debug for SharedLimits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedLimits")
            .field("key_prefix", &self.key_prefix)
            .field("timeout", &self.timeout)
            .field("on_failure", &self.on_failure)
            .field("replicas", &self.replicas)
            .finish_non_exhaustive()
    }
}

fn default_batch_share() -> u32 {
    50
}

#[derive(Deserialize, Clone, Copy)]
#[serde(deny_unknown_fields)]
struct RawRate {
    per_second: u32,
    burst: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUnit {
    code: String,
    name: String,
    environment: Environment,
    approval: Approval,
    /// Procedure codes, or ["*"] for the whole catalog.
    procedures: Vec<String>,
    rate: RawRate,
    officer_rate: RawRate,
    #[serde(default)]
    batch_max_items: u32,
    /// The units whose records this unit's auditors may read: unit codes, or ["*"] for every
    /// unit (a national auditor); default: the unit itself.
    #[serde(default)]
    audit_scope: Vec<String>,
}

impl Config {
    /// Reads `path`, applies overrides from `env` (pass `std::env::vars()`), and validates.
    pub fn load(
        path: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let fail = |problems: Vec<String>| ConfigError {
            file: path.to_owned(),
            problems,
        };
        let env: Vec<(String, String)> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with(ENV_PREFIX))
            .collect();
        let text = std::fs::read_to_string(path)
            .map_err(|e| fail(vec![format!("cannot read the file: {e}")]))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let mut config = Self::parse(&text, base, env.clone()).map_err(fail)?;
        config.source = Some(ConfigSource {
            path: path.to_owned(),
            env,
        });
        Ok(config)
    }

    /// Parses and validates configuration text whose relative paths start at `base`; every
    /// problem, each naming its key.
    pub fn parse(
        text: &str,
        base: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, Vec<String>> {
        let env: Vec<(String, String)> = env.into_iter().collect();
        let mut value: toml::Table = text.parse().map_err(|e| vec![format!("{e}")])?;
        apply_overrides(&mut value, env.clone()).map_err(|p| vec![p])?;
        let raw: RawConfig = toml::Value::Table(value)
            .try_into()
            .map_err(|e: toml::de::Error| vec![e.message().to_owned()])
            .map_err(|p| with_sources(p, &env))?;
        validate(raw, base).map_err(|p| with_sources(p, &env))
    }
}

/// Says of each problem whether its key was set in the file or by an environment variable.
fn with_sources(problems: Vec<String>, env: &[(String, String)]) -> Vec<String> {
    let overridden: Vec<(String, &str)> = env
        .iter()
        .filter_map(|(name, _)| {
            let path = name.strip_prefix(ENV_PREFIX)?;
            Some((
                path.split("__")
                    .map(str::to_lowercase)
                    .collect::<Vec<_>>()
                    .join("."),
                name.as_str(),
            ))
        })
        .collect();
    problems
        .into_iter()
        .map(|p| {
            let Some((key, _)) = p.split_once(':') else {
                return p;
            };
            // `units[0] (000.00.00.H42).rate` → `units.0.rate`.
            let mut dotted = String::new();
            let mut skip = false;
            for c in key.chars() {
                match c {
                    '(' => skip = true,
                    ')' => skip = false,
                    _ if skip || c == ' ' || c == ']' => {}
                    '[' => dotted.push('.'),
                    c => dotted.push(c),
                }
            }
            match overridden
                .iter()
                .find(|(k, _)| dotted == *k || dotted.starts_with(&format!("{k}.")))
            {
                Some((_, name)) => format!("{p} (set by {name} in the environment)"),
                None if key.contains(' ') && !key.contains('(') => p,
                None => format!("{p} (in the file)"),
            }
        })
        .collect()
}

/// Applies `LIENTHONG_GATEWAY__A__B=value` as `a.b = value` (a TOML value when it parses as one,
/// otherwise a string).
fn apply_overrides(
    table: &mut toml::Table,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<(), String> {
    for (name, raw) in env {
        let Some(path) = name.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        let keys: Vec<String> = path.split("__").map(str::to_lowercase).collect();
        let value = format!("v = {raw}")
            .parse::<toml::Table>()
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| toml::Value::String(raw.clone()));
        let mut at = toml::Value::Table(std::mem::take(table));
        let set = set_path(&mut at, &keys, value);
        if let toml::Value::Table(t) = at {
            *table = t;
        }
        set.map_err(|problem| format!("{name}: {problem}"))?;
    }
    Ok(())
}

/// Sets `keys` (table keys, or indexes into arrays such as `units.0.rate`) to `value`.
fn set_path(root: &mut toml::Value, keys: &[String], value: toml::Value) -> Result<(), String> {
    let Some((first, rest)) = keys.split_first() else {
        *root = value;
        return Ok(());
    };
    let next = match root {
        toml::Value::Table(t) if rest.is_empty() => {
            t.insert(first.clone(), value);
            return Ok(());
        }
        toml::Value::Table(t) => t
            .entry(first.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new())),
        toml::Value::Array(a) => {
            let len = a.len();
            let i: usize = first
                .parse()
                .map_err(|_| format!("{first} is not an index into a list"))?;
            a.get_mut(i)
                .ok_or_else(|| format!("index {i} is past the end of a list of {len}"))?
        }
        _ => return Err(format!("{first} cannot be set inside a plain value")),
    };
    set_path(next, rest, value)
}

struct Check<'a> {
    base: &'a Path,
    problems: Vec<String>,
    /// Outside the development environment (sandbox), private keys readable by anyone but
    /// their owner are refused.
    strict_secrets: bool,
}

impl Check<'_> {
    fn pem(&mut self, key: &str, path: &Path) -> Pem {
        let path = self.base.join(path);
        let bytes = std::fs::read(&path).unwrap_or_else(|e| {
            self.problems
                .push(format!("{key}: cannot read {}: {e}", path.display()));
            Vec::new()
        });
        Pem { path, bytes }
    }

    /// A private key: read like any PEM, and refused when its group or others may read it
    /// (in production; a warning in the sandbox).
    fn secret(&mut self, key: &str, path: &Path) -> Pem {
        use std::os::unix::fs::PermissionsExt;
        let pem = self.pem(key, path);
        if let Ok(meta) = std::fs::metadata(&pem.path) {
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                let problem = format!(
                    "{key}: {} is readable by others (mode {mode:03o}); a private key must be 0600 or 0400: chmod 600 it",
                    pem.path.display()
                );
                if self.strict_secrets {
                    self.problems.push(problem);
                } else {
                    tracing::warn!("{problem}");
                }
            }
        }
        pem
    }

    fn rate(&mut self, key: &str, r: RawRate) -> Rate {
        let nz = |v: u32, what: &str, problems: &mut Vec<String>| {
            NonZeroU32::new(v).unwrap_or_else(|| {
                problems.push(format!("{key}.{what}: must be at least 1"));
                NonZeroU32::MIN
            })
        };
        Rate {
            per_second: nz(r.per_second, "per_second", &mut self.problems),
            burst: nz(r.burst, "burst", &mut self.problems),
        }
    }

    fn ms(&mut self, key: &str, ms: u64) -> Duration {
        if ms == 0 {
            self.problems.push(format!("{key}: must be more than 0"));
        }
        Duration::from_millis(ms)
    }
}

/// A SHA-256 fingerprint as lowercase hex, from hex with or without colons, in any case.
fn default_http_max_body_bytes() -> usize {
    4 * 1024 * 1024
}

fn parse_fingerprint(text: &str) -> Option<String> {
    let text = text.trim();
    let text = text
        .strip_prefix("sha256 Fingerprint=")
        .or_else(|| text.strip_prefix("SHA256 Fingerprint="))
        .unwrap_or(text);
    let hex: String = text.chars().filter(|c| *c != ':').collect();
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| hex.to_ascii_lowercase())
}

fn validate(raw: RawConfig, base: &Path) -> Result<Config, Vec<String>> {
    let mut c = Check {
        base,
        problems: Vec::new(),
        strict_secrets: raw.environment == Environment::Production,
    };
    let listen = SocketAddr::from_str(&raw.listen).unwrap_or_else(|e| {
        c.problems.push(format!(
            "listen: {:?} is not a socket address ({e}); e.g. \"0.0.0.0:7443\"",
            raw.listen
        ));
        SocketAddr::from(([127, 0, 0, 1], 0))
    });
    let health_listen = raw.health_listen.as_deref().and_then(|h| {
        SocketAddr::from_str(h)
            .map_err(|e| {
                c.problems.push(format!(
                    "health_listen: {h:?} is not a socket address ({e}); e.g. \"0.0.0.0:50052\""
                ))
            })
            .ok()
    });
    let admin_listen = raw.admin_listen.as_deref().and_then(|h| {
        SocketAddr::from_str(h)
            .map_err(|e| {
                c.problems.push(format!(
                    "admin_listen: {h:?} is not a socket address ({e}); e.g. \"127.0.0.1:9464\""
                ))
            })
            .ok()
    });
    let http_listen = raw.http_listen.as_deref().and_then(|h| {
        SocketAddr::from_str(h)
            .map_err(|e| {
                c.problems.push(format!(
                    "http_listen: {h:?} is not a socket address ({e}); e.g. \"0.0.0.0:50443\""
                ))
            })
            .ok()
    });
    if raw.http_max_body_bytes < 1024 || raw.http_max_body_bytes > 64 * 1024 * 1024 {
        c.problems.push(format!(
            "http_max_body_bytes: {} is outside 1024 to 67108864",
            raw.http_max_body_bytes
        ));
    }
    let tls = ServerTls {
        cert: c.pem("tls.cert", &raw.tls.cert),
        key: c.secret("tls.key", &raw.tls.key),
        client_ca: c.pem("tls.client_ca", &raw.tls.client_ca),
    };
    let up = raw.upstream;
    if !up.endpoint.starts_with("https://") {
        c.problems.push(format!(
            "upstream.endpoint: {:?} must be an https:// URL; the population database is reached over mutual TLS only",
            up.endpoint
        ));
    }
    let upstream = Upstream {
        endpoint: up.endpoint,
        server_name: up.server_name,
        ca: c.pem("upstream.ca", &up.ca),
        cert: c.pem("upstream.cert", &up.cert),
        key: c.secret("upstream.key", &up.key),
        timeout: c.ms("upstream.timeout_ms", up.timeout_ms),
        retry: up.retry,
        breaker_failures: up.breaker_failures.max(1),
        breaker_open: c.ms("upstream.breaker_open_ms", up.breaker_open_ms),
        max_in_flight: up.max_in_flight,
        max_in_flight_per_unit: up.max_in_flight_per_unit,
    };
    if up.max_in_flight == 0 {
        c.problems
            .push("upstream.max_in_flight: must be at least 1".to_owned());
    }
    if up.max_in_flight_per_unit == 0 || up.max_in_flight_per_unit > up.max_in_flight {
        c.problems.push(format!(
            "upstream.max_in_flight_per_unit: must be between 1 and upstream.max_in_flight ({})",
            up.max_in_flight
        ));
    }
    let auth = validate_auth(&mut c, raw.auth);
    let global_rate = c.rate(
        "limits",
        RawRate {
            per_second: raw.limits.per_second,
            burst: raw.limits.burst,
        },
    );
    if !(1..=100).contains(&raw.limits.batch_share_percent) {
        c.problems.push(format!(
            "limits.batch_share_percent: {} must be between 1 and 100",
            raw.limits.batch_share_percent
        ));
    }
    let batch_share_percent = raw.limits.batch_share_percent.clamp(1, 100);
    let shared_limits = validate_shared_limits(&mut c, raw.limits.backend, raw.limits.redis);
    if raw.max_message_bytes < 1024 {
        c.problems
            .push("max_message_bytes: must be at least 1024".to_owned());
    }
    let catalog_path = base.join(&raw.procedures_file);
    let catalog = match std::fs::read_to_string(&catalog_path) {
        Err(e) => {
            c.problems.push(format!(
                "procedures_file: cannot read {}: {e}",
                catalog_path.display()
            ));
            Catalog::default()
        }
        Ok(text) => Catalog::parse(&text).unwrap_or_else(|errors| {
            c.problems.extend(
                errors
                    .into_iter()
                    .map(|e| format!("procedures_file ({}): {e}", catalog_path.display())),
            );
            Catalog::default()
        }),
    };
    let mut units = BTreeMap::new();
    for (i, u) in raw.units.into_iter().enumerate() {
        let key = format!("units[{i}]");
        let Ok(code) =
            UnitCode::parse(&u.code).map_err(|e| c.problems.push(format!("{key}.code: {e}")))
        else {
            continue;
        };
        let key = format!("units[{i}] ({code})");
        let mut procedures = BTreeSet::new();
        if u.procedures == ["*"] {
            procedures.extend(catalog.iter().map(|p| p.code.clone()));
        } else {
            for p in &u.procedures {
                match ProcedureCode::parse(p) {
                    Ok(p) if catalog.contains(&p) || catalog.is_empty() => {
                        procedures.insert(p);
                    }
                    Ok(p) => c
                        .problems
                        .push(format!("{key}.procedures: {p} is not in the catalog")),
                    Err(e) => c.problems.push(format!("{key}.procedures: {e}")),
                }
            }
        }
        let audit_scope = if u.audit_scope == ["*"] {
            AuditScope::National
        } else {
            let mut units = BTreeSet::from([code.clone()]);
            for s in &u.audit_scope {
                match UnitCode::parse(s) {
                    Ok(c) => {
                        units.insert(c);
                    }
                    Err(e) => c.problems.push(format!("{key}.audit_scope: {e}")),
                }
            }
            AuditScope::Units(units)
        };
        let unit = Unit {
            audit_scope,
            name: u.name,
            environment: u.environment,
            approval: u.approval,
            procedures,
            rate: c.rate(&format!("{key}.rate"), u.rate),
            officer_rate: c.rate(&format!("{key}.officer_rate"), u.officer_rate),
            batch_max_items: u.batch_max_items,
            code: code.clone(),
        };
        if units.insert(code, unit).is_some() {
            c.problems.push(format!("{key}.code: defined twice"));
        }
    }
    if units.is_empty() {
        c.problems
            .push("units: no unit is configured, so every call would be refused".to_owned());
    }
    let mut revoked_certificates = BTreeSet::new();
    for (i, fingerprint) in raw.revoked_certificates.iter().enumerate() {
        match parse_fingerprint(fingerprint) {
            Some(hex) => {
                revoked_certificates.insert(hex);
            }
            None => c.problems.push(format!(
                "revoked_certificates[{i}]: {:?} is not a SHA-256 fingerprint (64 hexadecimal digits, colons allowed), e.g. the output of `openssl x509 -noout -fingerprint -sha256`",
                fingerprint.chars().take(100).collect::<String>()
            )),
        }
    }
    let shutdown_grace = Duration::from_millis(raw.shutdown_grace_ms);
    let audit = validate_audit(&mut c, raw.audit);
    let door = DoorSettings {
        rate: c.rate("door.rate", raw.door.rate),
        records_per_window: raw.door.records_per_window,
        window: c.ms("door.window_ms", raw.door.window_ms),
    };
    let t = &raw.transport;
    if t.max_concurrent_streams == 0 {
        c.problems
            .push("transport.max_concurrent_streams: must be at least 1".to_owned());
    }
    if t.max_header_list_bytes < 1024 {
        c.problems
            .push("transport.max_header_list_bytes: must be at least 1024".to_owned());
    }
    if t.max_response_bytes < 64 * 1024 {
        c.problems
            .push("transport.max_response_bytes: must be at least 65536".to_owned());
    }
    let transport = TransportLimits {
        max_concurrent_streams: t.max_concurrent_streams,
        tls_handshake_timeout: c.ms(
            "transport.tls_handshake_timeout_ms",
            t.tls_handshake_timeout_ms,
        ),
        keepalive_interval: c.ms("transport.keepalive_interval_ms", t.keepalive_interval_ms),
        keepalive_timeout: c.ms("transport.keepalive_timeout_ms", t.keepalive_timeout_ms),
        request_timeout: c.ms("transport.request_timeout_ms", t.request_timeout_ms),
        max_connection_age: c.ms("transport.max_connection_age_ms", t.max_connection_age_ms),
        max_connection_age_grace: c.ms(
            "transport.max_connection_age_grace_ms",
            t.max_connection_age_grace_ms,
        ),
        max_header_list_bytes: t.max_header_list_bytes,
        max_response_bytes: t.max_response_bytes,
        batch_idle_timeout: c.ms("transport.batch_idle_timeout_ms", t.batch_idle_timeout_ms),
    };
    let attempts = if upstream.retry { 2 } else { 1 };
    if transport.request_timeout <= upstream.timeout * attempts {
        tracing::warn!(
            "transport.request_timeout_ms ({} ms) is not longer than upstream.timeout_ms × attempts ({} ms): slow lookups will end as REQUEST_TIMEOUT",
            transport.request_timeout.as_millis(),
            (upstream.timeout * attempts).as_millis()
        );
    }
    if raw.verification.budget_per_day == 0 {
        c.problems.push(
            "verification.budget_per_day: must be at least 1 (every verification would be refused)"
                .to_owned(),
        );
    }
    if c.problems.is_empty() {
        Ok(Config {
            environment: raw.environment,
            listen,
            health_listen,
            admin_listen,
            http_listen,
            http_max_body_bytes: raw.http_max_body_bytes,
            tls,
            upstream,
            auth,
            global_rate,
            batch_share_percent,
            shared_limits,
            max_message_bytes: raw.max_message_bytes,
            shutdown_grace,
            units,
            revoked_certificates,
            catalog,
            audit,
            door,
            transport,
            verification_budget_per_day: raw.verification.budget_per_day,
            source: None,
        })
    } else {
        Err(c.problems)
    }
}

fn validate_shared_limits(
    c: &mut Check<'_>,
    backend: LimitsBackend,
    raw: Option<RawRedisLimits>,
) -> Option<SharedLimits> {
    let raw = match (backend, raw) {
        (LimitsBackend::Local, None) => return None,
        (LimitsBackend::Local, Some(_)) => {
            c.problems.push(
                "limits.redis: set, but limits.backend is \"local\"; set limits.backend = \"redis\" to share the limits, or remove [limits.redis]".to_owned(),
            );
            return None;
        }
        (LimitsBackend::Redis, None) => {
            c.problems.push(
                "limits.backend: \"redis\" needs a [limits.redis] table with url, on_failure and replicas".to_owned(),
            );
            return None;
        }
        (LimitsBackend::Redis, Some(raw)) => raw,
    };
    if !raw.url.starts_with("redis://") {
        c.problems.push(
            "limits.redis.url: must be a redis:// URL (e.g. \"redis://127.0.0.1:6379\"); for TLS, reach Redis through a local TLS tunnel".to_owned(),
        );
    } else if redis::Client::open(raw.url.as_str()).is_err() {
        // The URL may hold a password: it is not repeated.
        c.problems
            .push("limits.redis.url: not a valid Redis URL".to_owned());
    }
    let prefix_ok = !raw.key_prefix.is_empty()
        && raw.key_prefix.len() <= 64
        && raw
            .key_prefix
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'{' && b != b'}');
    if !prefix_ok {
        c.problems.push(format!(
            "limits.redis.key_prefix: {:?} must be 1-64 visible ASCII characters without braces",
            record_bound(&raw.key_prefix)
        ));
    }
    let timeout = c.ms("limits.redis.timeout_ms", raw.timeout_ms);
    if raw.timeout_ms > 1_000 {
        c.problems.push(format!(
            "limits.redis.timeout_ms: {} is longer than a call should wait for its rate limit; at most 1000",
            raw.timeout_ms
        ));
    }
    let replicas = NonZeroU32::new(raw.replicas).unwrap_or_else(|| {
        c.problems
            .push("limits.redis.replicas: must be at least 1".to_owned());
        NonZeroU32::MIN
    });
    Some(SharedLimits {
        url: raw.url,
        key_prefix: raw.key_prefix,
        timeout,
        on_failure: raw.on_failure,
        replicas,
        probe_interval: c.ms("limits.redis.probe_interval_ms", raw.probe_interval_ms),
    })
}

fn record_bound(s: &str) -> String {
    crate::audit::record::bound_str(s, 80)
}

fn validate_audit(c: &mut Check<'_>, raw: RawAudit) -> Audit {
    use ed25519_dalek::pkcs8::DecodePrivateKey;
    let chain_ok = !raw.chain_id.is_empty()
        && raw.chain_id.len() <= 64
        && raw
            .chain_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if !chain_ok {
        c.problems.push(format!(
            "audit.chain_id: {:?} must be 1-64 letters, digits, '-', '_' or '.'",
            raw.chain_id
        ));
    }
    let key_pem = c.secret("audit.signing_key", &raw.signing_key);
    let signing_key = std::str::from_utf8(&key_pem.bytes)
        .ok()
        .and_then(|pem| ed25519_dalek::SigningKey::from_pkcs8_pem(pem).ok())
        .unwrap_or_else(|| {
            if !key_pem.bytes.is_empty() {
                c.problems.push(format!(
                    "audit.signing_key: {} is not an Ed25519 private key in PKCS#8 PEM",
                    key_pem.path.display()
                ));
            }
            ed25519_dalek::SigningKey::from_bytes(&[0; 32])
        });
    let mut previous_keys = Vec::new();
    for (i, path) in raw.previous_public_keys.iter().enumerate() {
        let key = format!("audit.previous_public_keys[{i}]");
        let pem = c.pem(&key, path);
        if pem.bytes.is_empty() {
            continue;
        }
        match crate::audit::verify::public_key_from_pem(&String::from_utf8_lossy(&pem.bytes)) {
            Ok(k) => previous_keys.push(k),
            Err(e) => c
                .problems
                .push(format!("{key}: {}: {e}", pem.path.display())),
        }
    }
    let secret = c.secret("audit.pseudonym_key", &raw.pseudonym_key);
    let text = String::from_utf8_lossy(&secret.bytes);
    let hex = text.trim();
    let pseudonym_key: Vec<u8> = (0..hex.len() / 2)
        .filter_map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok())
        .collect();
    if !secret.bytes.is_empty()
        && (pseudonym_key.len() < 32 || pseudonym_key.len() * 2 != hex.len())
    {
        c.problems.push(format!(
            "audit.pseudonym_key: {} must hold at least 32 bytes as hex (64 hex digits)",
            secret.path.display()
        ));
    }
    if raw.checkpoint_every == 0 {
        c.problems
            .push("audit.checkpoint_every: must be at least 1".to_owned());
    }
    Audit {
        dir: c.base.join(&raw.dir),
        chain_id: raw.chain_id,
        signing_key,
        previous_keys,
        pseudonym_key,
        checkpoint_every: raw.checkpoint_every.max(1),
        checkpoint_interval: c.ms("audit.checkpoint_interval_ms", raw.checkpoint_interval_ms),
        max_batch: raw.max_batch.clamp(1, 65_536),
        central: raw.central.map(|raw| validate_central(c, raw)),
    }
}

fn validate_central(c: &mut Check<'_>, raw: RawCentral) -> Central {
    if !(raw.url.starts_with("postgres://") || raw.url.starts_with("postgresql://")) {
        c.problems.push(
            "audit.central.url: must be a postgres:// URL (e.g. \"postgres://lienthong@db:5432/lienthong\")".to_owned(),
        );
    } else if raw.url.parse::<sqlx::postgres::PgConnectOptions>().is_err() {
        // The URL may hold a password: it is not repeated.
        c.problems
            .push("audit.central.url: not a valid PostgreSQL URL".to_owned());
    }
    let schema_ok = !raw.schema.is_empty()
        && raw.schema.len() <= 63
        && raw
            .schema
            .starts_with(|ch: char| ch.is_ascii_lowercase() || ch == '_')
        && raw
            .schema
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !schema_ok {
        c.problems.push(format!(
            "audit.central.schema: {:?} must be 1-63 lowercase letters, digits or '_', starting with a letter or '_'",
            record_bound(&raw.schema)
        ));
    }
    if !(1..=10_000).contains(&raw.batch) {
        c.problems.push(format!(
            "audit.central.batch: {} must be between 1 and 10000",
            raw.batch
        ));
    }
    Central {
        url: raw.url,
        schema: raw.schema,
        batch: raw.batch.clamp(1, 10_000),
        max_retry: c.ms("audit.central.max_retry_ms", raw.max_retry_ms),
    }
}

/// An issuer's JWK Set: a file is read now (it must hold a key for the algorithm); a URL is
/// fetched when the gateway starts.
fn jwks_issuer(
    c: &mut Check<'_>,
    key: &str,
    algorithm: Algorithm,
    jwks: &str,
    r: &RawIssuer,
) -> Option<(IssuerKey, String)> {
    use crate::jwks::{Jwks, Source};
    if r.jwks_refresh_seconds == 0 || r.jwks_refresh_seconds > 86_400 {
        c.problems.push(format!(
            "{key}.jwks_refresh_seconds: {} is outside 1 to 86400",
            r.jwks_refresh_seconds
        ));
        return None;
    }
    let refresh = Duration::from_secs(r.jwks_refresh_seconds);
    let digest = crate::audit::record::hex(&sha2::Sha256::digest(jwks.as_bytes()));
    if jwks.starts_with("http://") || jwks.starts_with("https://") {
        let uri: http::Uri = match jwks.parse() {
            Ok(u) => u,
            Err(e) => {
                c.problems
                    .push(format!("{key}.jwks: {jwks:?} is not a URL: {e}"));
                return None;
            }
        };
        let ca = match (&r.jwks_ca, uri.scheme_str()) {
            (Some(path), _) => {
                let pem = c.pem(&format!("{key}.jwks_ca"), path);
                Some(pem.bytes)
            }
            (None, Some("https")) => {
                c.problems.push(format!(
                    "{key}.jwks_ca: an https JWK Set needs the CA bundle that verifies its server (e.g. /etc/ssl/certs/ca-certificates.crt)"
                ));
                return None;
            }
            (None, _) => None,
        };
        let set = Jwks::new(Source::Url(uri), algorithm, refresh, ca);
        return Some((IssuerKey::Jwks(std::sync::Arc::new(set)), digest));
    }
    let path = c.base.join(jwks);
    let text = match std::fs::read(&path) {
        Ok(t) => t,
        Err(e) => {
            c.problems
                .push(format!("{key}.jwks: cannot read {}: {e}", path.display()));
            return None;
        }
    };
    match Jwks::parse(&text, algorithm) {
        Ok(keys) => {
            let set = Jwks::new(Source::File(path), algorithm, refresh, None);
            set.set(keys);
            Some((IssuerKey::Jwks(std::sync::Arc::new(set)), digest))
        }
        Err(e) => {
            c.problems
                .push(format!("{key}.jwks: {}: {e}", path.display()));
            None
        }
    }
}

fn validate_auth(c: &mut Check<'_>, raw: RawAuth) -> Auth {
    if raw.audience.trim().is_empty() {
        c.problems
            .push("auth.audience: must not be empty".to_owned());
    }
    if raw.issuers.is_empty() {
        c.problems
            .push("auth.issuers: no issuer is trusted, so every token would be refused".to_owned());
    }
    let mut issuers = Vec::new();
    for (i, r) in raw.issuers.into_iter().enumerate() {
        let key = format!("auth.issuers[{i}]");
        let algorithm = match Algorithm::from_str(&r.algorithm) {
            Ok(a @ (Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)) => {
                c.problems.push(format!(
                    "{key}.algorithm: {a:?} is a shared-secret algorithm; the gateway only verifies with an issuer's public key (EdDSA, ES256, ES384, RS256, PS256...)"
                ));
                continue;
            }
            Ok(a) => a,
            Err(_) => {
                c.problems.push(format!(
                    "{key}.algorithm: {:?} is not a JWS algorithm; use EdDSA, ES256, ES384, RS256 or PS256",
                    r.algorithm
                ));
                continue;
            }
        };
        let (issuer_key, digest) = match (&r.public_key, &r.jwks) {
            (Some(path), None) => {
                let pem = c.pem(&format!("{key}.public_key"), path);
                if pem.bytes.is_empty() {
                    continue;
                }
                let decoded = match algorithm {
                    Algorithm::EdDSA => DecodingKey::from_ed_pem(&pem.bytes),
                    Algorithm::ES256 | Algorithm::ES384 => DecodingKey::from_ec_pem(&pem.bytes),
                    _ => DecodingKey::from_rsa_pem(&pem.bytes),
                };
                match decoded {
                    Ok(k) => (
                        IssuerKey::Pem(k),
                        crate::audit::record::hex(&sha2::Sha256::digest(&pem.bytes)),
                    ),
                    Err(e) => {
                        c.problems.push(format!(
                            "{key}.public_key: {} is not a {algorithm:?} public key in PEM: {e}",
                            pem.path.display()
                        ));
                        continue;
                    }
                }
            }
            (None, Some(jwks)) => match jwks_issuer(c, &key, algorithm, jwks, &r) {
                Some(j) => j,
                None => continue,
            },
            _ => {
                c.problems.push(format!(
                    "{key}: give exactly one of public_key (a PEM file) and jwks (a JWK Set file or URL)"
                ));
                continue;
            }
        };
        issuers.push(Issuer {
            issuer: r.issuer,
            algorithm,
            key: issuer_key,
            key_digest: digest,
            require_certificate_binding: r.require_certificate_binding,
            max_lifetime: Duration::from_secs(r.max_lifetime_seconds),
            refuse_replay: r.refuse_replay,
        });
    }
    Auth {
        audience: raw.audience,
        leeway: Duration::from_secs(raw.leeway_seconds),
        cache_entries: raw.token_cache_entries,
        issuers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_set_nested_keys_with_typed_values() {
        let mut t: toml::Table = "[upstream]\ntimeout_ms = 2000\n".parse().unwrap();
        apply_overrides(
            &mut t,
            [
                (
                    "LIENTHONG_GATEWAY__UPSTREAM__TIMEOUT_MS".into(),
                    "500".into(),
                ),
                ("LIENTHONG_GATEWAY__LISTEN".into(), "0.0.0.0:9000".into()),
                ("OTHER".into(), "x".into()),
            ],
        )
        .unwrap();
        let mut units: toml::Table = "[[units]]\nbatch_max_items = 1\n".parse().unwrap();
        apply_overrides(
            &mut units,
            [(
                "LIENTHONG_GATEWAY__UNITS__0__BATCH_MAX_ITEMS".into(),
                "7".into(),
            )],
        )
        .unwrap();
        assert_eq!(units["units"][0]["batch_max_items"].as_integer(), Some(7));
        let e = apply_overrides(
            &mut units,
            [(
                "LIENTHONG_GATEWAY__UNITS__3__BATCH_MAX_ITEMS".into(),
                "7".into(),
            )],
        )
        .unwrap_err();
        assert!(e.contains("index 3 is past the end"), "{e}");
        assert_eq!(t["upstream"]["timeout_ms"].as_integer(), Some(500));
        assert_eq!(t["listen"].as_str(), Some("0.0.0.0:9000"));
        assert!(!t.contains_key("other"));
    }

    #[test]
    fn every_bad_key_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gateway.toml");
        std::fs::write(
            dir.path().join("procedures.toml"),
            include_str!("../../deploy/procedures.toml"),
        )
        .unwrap();
        std::fs::write(
            &path,
            r#"
environment = "sandbox"
listen = "not-an-address"
procedures_file = "procedures.toml"
[tls]
cert = "missing.pem"
key = "missing.key"
client_ca = "missing-ca.pem"
[upstream]
endpoint = "http://127.0.0.1:1"
ca = "missing-ca.pem"
cert = "c.pem"
key = "c.key"
[auth]
audience = "lienthong"
issuers = [{ issuer = "x", algorithm = "HS256", public_key = "k.pem" }]
[limits]
per_second = 0
burst = 10
backend = "redis"
[limits.redis]
url = "http://127.0.0.1:6379"
key_prefix = "a{b}"
timeout_ms = 5000
on_failure = "fail_open"
replicas = 0
[audit]
dir = "audit"
chain_id = "gw 1"
signing_key = "missing-signing.key"
pseudonym_key = "missing-pseudonym.key"
[audit.central]
url = "mysql://127.0.0.1/x"
schema = "Bad-Schema"
batch = 0
[[units]]
code = "H42"
name = "x"
environment = "production"
approval = "approved"
procedures = ["*"]
rate = { per_second = 1, burst = 1 }
officer_rate = { per_second = 1, burst = 1 }
[[units]]
code = "000.00.00.H42"
name = "x"
environment = "production"
approval = "approved"
procedures = ["9.999999"]
rate = { per_second = 1, burst = 0 }
officer_rate = { per_second = 1, burst = 1 }
"#,
        )
        .unwrap();
        let e = Config::load(&path, []).unwrap_err();
        let all = e.to_string();
        for expected in [
            "listen: \"not-an-address\"",
            "tls.cert: cannot read",
            "upstream.endpoint: \"http://127.0.0.1:1\" must be an https:// URL",
            "auth.issuers[0].algorithm: HS256 is a shared-secret algorithm",
            "limits.per_second: must be at least 1",
            "units[0].code: \"H42\" is not a valid unit code",
            "units[1] (000.00.00.H42).procedures: 9.999999 is not in the catalog",
            "units[1] (000.00.00.H42).rate.burst: must be at least 1",
            "audit.chain_id: \"gw 1\" must be",
            "audit.signing_key: cannot read",
            "limits.redis.url: must be a redis:// URL",
            "limits.redis.key_prefix: \"a{b}\" must be",
            "limits.redis.timeout_ms: 5000 is longer",
            "limits.redis.replicas: must be at least 1",
            "audit.central.url: must be a postgres:// URL",
            "audit.central.schema: \"Bad-Schema\" must be",
            "audit.central.batch: 0 must be between 1 and 10000",
        ] {
            assert!(all.contains(expected), "missing {expected:?} in:\n{all}");
        }
        assert!(
            all.contains("units[0].code: \"H42\" is not a valid unit code")
                && all.contains("(in the file)"),
            "{all}"
        );
        // A value from the environment says so.
        let e = Config::load(
            &path,
            [(
                "LIENTHONG_GATEWAY__UNITS__1__RATE__BURST".to_owned(),
                "0".to_owned(),
            )],
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("units[1] (000.00.00.H42).rate.burst: must be at least 1 (set by LIENTHONG_GATEWAY__UNITS__1__RATE__BURST in the environment)"),
            "{e}"
        );
    }

    #[test]
    fn a_redis_table_needs_the_redis_backend_and_the_backend_needs_its_table() {
        let check = |limits: &str| {
            let mut c = Check {
                base: Path::new("."),
                problems: Vec::new(),
                strict_secrets: false,
            };
            let raw: RawLimits = toml::from_str(limits).unwrap();
            validate_shared_limits(&mut c, raw.backend, raw.redis);
            c.problems.join("\n")
        };
        assert!(
            check("per_second = 1\nburst = 1\nbackend = \"redis\"")
                .contains("limits.backend: \"redis\" needs a [limits.redis] table")
        );
        assert!(
            check("per_second = 1\nburst = 1\n[redis]\nurl = \"redis://h\"\non_failure = \"fail_closed\"\nreplicas = 2")
                .contains("limits.redis: set, but limits.backend is \"local\"")
        );
        assert_eq!(check("per_second = 1\nburst = 1"), "");
        let secret = check(
            "per_second = 1\nburst = 1\nbackend = \"redis\"\n[redis]\nurl = \"redis://:hunter2@h:notaport\"\non_failure = \"fail_closed\"\nreplicas = 2",
        );
        assert!(
            secret.contains("limits.redis.url: not a valid Redis URL"),
            "{secret}"
        );
        assert!(
            !secret.contains("hunter2"),
            "the password is never repeated"
        );
    }

    #[test]
    fn unknown_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gateway.toml");
        std::fs::write(&path, "environment = \"sandbox\"\nlisten_addr = \"x\"\n").unwrap();
        let e = Config::load(&path, []).unwrap_err().to_string();
        assert!(e.contains("listen_addr"), "{e}");
    }
}
