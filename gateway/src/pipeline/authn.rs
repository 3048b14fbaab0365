//! Step 2, authentication of the officer: the bearer token's signature with the issuer's public
//! key (one pinned algorithm per issuer), its times with a small leeway, its audience, its binding
//! to the connection's certificate, and its unit against the certificate's unit. Verified tokens
//! are cached until they expire; keys sit behind an `ArcSwap` so a reload swaps them at once.

use super::rescue::Refusal;
use super::{Caller, Gate};
use crate::catalog::Role;
use crate::config::{Auth, Issuer, IssuerKey};
use arc_swap::ArcSwap;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Validation, decode, decode_header};
use lienthong_domain::{OfficerCode, PersonalId, UnitCode};
use prometheus_client::metrics::counter::Counter;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

/// The officer a request acts for, as established by a verified token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Officer {
    pub code: OfficerCode,
    pub unit: UnitCode,
    pub roles: BTreeSet<Role>,
    /// The token's `jti`, for the audit trail.
    pub token_id: String,
    pub issuer: String,
    /// For a citizen token: the citizen (the token's subject). The officer code is then
    /// [`CITIZEN_CODE`].
    pub citizen: Option<PersonalId>,
}

/// The officer code a citizen's own requests are recorded and limited under: their personal ID
/// is the subject of the record, never an officer code. No officer token may carry it.
pub const CITIZEN_CODE: &str = "CONGDAN";

/// The claims the gateway reads; `iss`, `aud`, `exp`, `nbf` and `iat` are checked by the
/// validation itself.
#[derive(Deserialize)]
struct Claims {
    sub: String,
    unit: String,
    #[serde(default)]
    roles: Vec<String>,
    exp: u64,
    nbf: u64,
    iat: u64,
    jti: String,
    iss: String,
    #[serde(default)]
    cnf: Option<Confirmation>,
    /// On a citizen token: the procedure the citizen consents to an auto-fill for.
    #[serde(default)]
    procedure: Option<String>,
}

/// RFC 8705 confirmation: the SHA-256 thumbprint of the certificate the token is bound to.
#[derive(Deserialize)]
struct Confirmation {
    #[serde(rename = "x5t#S256")]
    x5t_s256: Option<String>,
}

#[derive(Clone)]
struct Verified {
    officer: Officer,
    exp: u64,
    nbf: u64,
    bound_to: Option<String>,
    binding_required: bool,
    /// The issuer's tokens are single-use: each `jti` is accepted once.
    single_use: bool,
    /// The `procedure` claim, bounded.
    procedure: Option<String>,
}

/// A citizen's verified consent to an auto-fill: who, and for which procedure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consent {
    pub citizen: PersonalId,
    pub procedure: String,
}

/// Verified tokens by the SHA-256 of the token, and the key generation they were verified
/// under: a token verified with keys a reload has since replaced is never put back.
#[derive(Default)]
struct Cache {
    generation: u64,
    tokens: HashMap<[u8; 32], Verified>,
    /// `(issuer, jti)` of single-use tokens already used, with their expiry.
    used: HashMap<(String, String), u64>,
}

struct Keys {
    issuers: Vec<Issuer>,
    audience: String,
    leeway: u64,
}

/// The authentication step.
#[derive(Clone)]
pub struct Authn {
    keys: Arc<ArcSwap<Keys>>,
    cache: Arc<Mutex<Cache>>,
    cache_entries: usize,
    /// Tokens found in the cache, and tokens verified.
    hits: Counter,
    misses: Counter,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Authn {
    pub fn new(auth: &Auth) -> Self {
        Self {
            keys: Arc::new(ArcSwap::from_pointee(Keys {
                issuers: auth.issuers.clone(),
                audience: auth.audience.clone(),
                leeway: auth.leeway.as_secs(),
            })),
            cache: Arc::default(),
            cache_entries: auth.cache_entries,
            hits: Counter::default(),
            misses: Counter::default(),
        }
    }

    /// Counts the token cache's hits and misses on these counters.
    pub fn with_metrics(mut self, hits: Counter, misses: Counter) -> Self {
        self.hits = hits;
        self.misses = misses;
        self
    }

    /// Swaps in new issuers and keys; tokens verified with the old ones are forgotten.
    pub fn reload(&self, auth: &Auth) {
        self.keys.store(Arc::new(Keys {
            issuers: auth.issuers.clone(),
            audience: auth.audience.clone(),
            leeway: auth.leeway.as_secs(),
        }));
        if let Ok(mut c) = self.cache.lock() {
            c.generation += 1;
            c.tokens.clear();
        }
    }

    /// Verifies a token's signature and claims (not yet its binding to a connection).
    fn verify(&self, token: &str) -> Result<Verified, Refusal> {
        let keys = self.keys.load();
        let header = decode_header(token)
            .map_err(|e| Refusal::BadToken(format!("it is not a JWT ({e})")))?;
        let candidates: Vec<&Issuer> = keys
            .issuers
            .iter()
            .filter(|i| i.algorithm == header.alg)
            .collect();
        if candidates.is_empty() {
            let accepted: BTreeSet<String> = keys
                .issuers
                .iter()
                .map(|i| format!("{:?}", i.algorithm))
                .collect();
            return Err(Refusal::BadToken(format!(
                "algorithm {:?} is not accepted (accepted: {})",
                header.alg,
                accepted.into_iter().collect::<Vec<_>>().join(", ")
            )));
        }
        let mut last = Refusal::BadToken("no trusted issuer".into());
        for issuer in candidates {
            let mut v = Validation::new(issuer.algorithm);
            v.set_issuer(&[&issuer.issuer]);
            v.set_audience(&[&keys.audience]);
            v.set_required_spec_claims(&["exp", "nbf", "iat", "iss", "aud", "sub"]);
            v.validate_nbf = true;
            v.leeway = keys.leeway;
            // A set's key is held for the call, not copied.
            let held;
            let key = match &issuer.key {
                IssuerKey::Pem(k) => k,
                IssuerKey::Jwks(set) => match set.key(header.kid.as_deref()) {
                    Some(k) => {
                        held = k;
                        &*held
                    }
                    None => {
                        set.nudge();
                        let kid = header
                            .kid
                            .as_deref()
                            .map(|k| crate::audit::record::bound_str(k, 64));
                        last = Refusal::BadToken(match kid {
                            Some(kid) => format!(
                                "its key id {kid:?} is not among the issuer's published keys ({})",
                                set.kids().join(", ")
                            ),
                            None => {
                                "it names no key id (kid) and the issuer publishes several keys"
                                    .into()
                            }
                        });
                        continue;
                    }
                },
            };
            match decode::<Claims>(token, key, &v) {
                Ok(data) => return self.claims(data.claims, issuer),
                Err(e) => {
                    last = match e.kind() {
                        ErrorKind::ExpiredSignature => return Err(Refusal::ExpiredToken),
                        ErrorKind::ImmatureSignature => return Err(Refusal::TokenNotYetValid),
                        ErrorKind::InvalidIssuer => {
                            Refusal::BadToken("its issuer is not trusted by this gateway".into())
                        }
                        ErrorKind::InvalidAudience => Refusal::BadToken(format!(
                            "its audience is not this gateway (expected {:?})",
                            keys.audience
                        )),
                        ErrorKind::InvalidSignature => {
                            Refusal::BadToken("its signature does not verify".into())
                        }
                        ErrorKind::MissingRequiredClaim(c) => {
                            Refusal::BadToken(format!("claim {c:?} is missing"))
                        }
                        ErrorKind::Json(e) => {
                            Refusal::BadToken(format!("its claims are malformed ({e})"))
                        }
                        other => Refusal::BadToken(format!("{other:?}")),
                    }
                }
            }
        }
        Err(last)
    }

    fn claims(&self, c: Claims, issuer: &Issuer) -> Result<Verified, Refusal> {
        let unit = UnitCode::parse(&c.unit).map_err(|e| Refusal::BadToken(format!("unit: {e}")))?;
        let mut roles = BTreeSet::new();
        for r in &c.roles {
            roles.insert(Role::parse(r).ok_or_else(|| {
                Refusal::BadToken(format!(
                    "role {r:?} is unknown (receiver, processor, approver, auditor, admin, citizen)"
                ))
            })?);
        }
        // A citizen token's subject is the citizen's personal ID, and it carries no other role.
        let citizen = if roles.contains(&Role::Citizen) {
            if roles.len() > 1 {
                return Err(Refusal::BadToken(
                    "a citizen token carries the citizen role only".into(),
                ));
            }
            Some(PersonalId::parse(&c.sub).map_err(|e| {
                Refusal::BadToken(format!(
                    "sub: a citizen token's subject is a personal ID ({e})"
                ))
            })?)
        } else {
            None
        };
        let code = match citizen {
            Some(_) => OfficerCode::parse(CITIZEN_CODE),
            None if c.sub == CITIZEN_CODE => {
                return Err(Refusal::BadToken(format!(
                    "sub: {CITIZEN_CODE} is reserved for citizens' own requests"
                )));
            }
            None => OfficerCode::parse(&c.sub),
        }
        .map_err(|e| Refusal::BadToken(format!("sub: {e}")))?;
        if c.jti.is_empty() {
            return Err(Refusal::BadToken("claim \"jti\" is empty".into()));
        }
        let (t, leeway) = (now(), self.keys.load().leeway);
        if c.iat > t + leeway {
            return Err(Refusal::BadToken(
                "it was issued in the future (iat): check the issuer's clock".into(),
            ));
        }
        let max = issuer.max_lifetime.as_secs();
        if c.exp.saturating_sub(c.iat) > max || c.exp > t + max + leeway {
            return Err(Refusal::BadToken(format!(
                "it lives {} s (exp − iat), longer than this issuer's maximum of {max} s: get a shorter-lived token",
                c.exp.saturating_sub(c.iat)
            )));
        }
        Ok(Verified {
            officer: Officer {
                code,
                unit,
                roles,
                token_id: c.jti,
                issuer: c.iss,
                citizen,
            },
            exp: c.exp,
            nbf: c.nbf,
            bound_to: c.cnf.and_then(|c| c.x5t_s256),
            binding_required: issuer.require_certificate_binding,
            single_use: issuer.refuse_replay,
            procedure: c.procedure.map(|p| crate::audit::record::bound_str(&p, 64)),
        })
    }

    /// The verified token, from the cache when it has been seen and is still in date; a
    /// single-use token is accepted once.
    fn verified(&self, token: &str) -> Result<Verified, Refusal> {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let leeway = self.keys.load().leeway;
        let t = now();
        let (cached, generation) = match self.cache.lock() {
            Ok(c) => (c.tokens.get(&key).cloned(), c.generation),
            Err(_) => (None, u64::MAX),
        };
        if cached.is_some() {
            self.hits.inc();
        } else {
            self.misses.inc();
        }
        let v = match cached {
            Some(v) if t > v.exp + leeway => return Err(Refusal::ExpiredToken),
            Some(v) if t + leeway < v.nbf => return Err(Refusal::TokenNotYetValid),
            Some(v) => v,
            None => {
                let v = self.verify(token)?;
                self.remember(key, &v, generation, (t, leeway));
                v
            }
        };
        if v.single_use {
            self.use_once(&v, t)?;
        }
        Ok(v)
    }

    /// Caches a verified token, unless the keys were reloaded since `generation` was read.
    fn remember(&self, key: [u8; 32], v: &Verified, generation: u64, (t, leeway): (u64, u64)) {
        let Ok(mut cache) = self.cache.lock() else {
            return;
        };
        if cache.generation != generation {
            return;
        }
        if cache.tokens.len() >= self.cache_entries {
            cache.tokens.retain(|_, v| v.exp + leeway >= t);
            if cache.tokens.len() >= self.cache_entries {
                cache.tokens.clear();
            }
        }
        cache.tokens.insert(key, v.clone());
    }

    /// Marks a single-use token used, or refuses it when it has been used already.
    fn use_once(&self, v: &Verified, t: u64) -> Result<(), Refusal> {
        let mut cache = self
            .cache
            .lock()
            .map_err(|_| Refusal::Internal("token cache unavailable".into()))?;
        let id = (v.officer.issuer.clone(), v.officer.token_id.clone());
        if cache.used.contains_key(&id) {
            return Err(Refusal::BadToken(
                "it has been used already, and this issuer's tokens are single-use: get a new token for each request".into(),
            ));
        }
        if cache.used.len() >= self.cache_entries {
            let leeway = self.keys.load().leeway;
            cache.used.retain(|_, exp| *exp + leeway >= t);
            if cache.used.len() >= self.cache_entries {
                // Forgetting a used token would let it be replayed: refuse instead.
                tracing::warn!("too many single-use tokens in date to remember: refusing new ones");
                return Err(Refusal::BadToken(
                    "the gateway cannot remember more single-use tokens now: retry shortly".into(),
                ));
            }
        }
        cache.used.insert(id, v.exp);
        Ok(())
    }
}

impl Gate for Authn {
    const STAGE: &'static str = "authn";

    const DEFERRABLE: bool = true;

    fn check(&self, request: &mut http::request::Parts) -> Result<(), Refusal> {
        let caller = request
            .extensions
            .get::<Caller>()
            .ok_or_else(|| Refusal::Internal("authentication before identity".into()))?;
        let value = request
            .headers
            .get(http::header::AUTHORIZATION)
            .ok_or(Refusal::MissingToken)?;
        let token = value
            .to_str()
            .ok()
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .ok_or_else(|| {
                Refusal::BadToken("the authorization metadata must be \"Bearer <token>\"".into())
            })?;
        let v = self.verified(token)?;
        super::audit::note(&request.extensions, |f| {
            f.officer_code = v.officer.code.to_string();
            f.roles = v
                .officer
                .roles
                .iter()
                .map(|r| r.as_str().to_owned())
                .collect();
        });
        if v.officer.unit != caller.unit.code {
            return Err(Refusal::UnitMismatch {
                token: v.officer.unit.to_string(),
                certificate: caller.unit.code.to_string(),
            });
        }
        binding(&v, caller)?;
        request.extensions.insert(v.officer);
        Ok(())
    }
}

/// The token is bound to the connection's certificate, or its issuer does not ask for it.
fn binding(v: &Verified, caller: &Caller) -> Result<(), Refusal> {
    match (&v.bound_to, v.binding_required) {
        (Some(t), _) if *t != caller.certificate.thumbprint => Err(Refusal::CertificateBinding(
            "its cnf.x5t#S256 is not the thumbprint of this connection's certificate".into(),
        )),
        (None, true) => Err(Refusal::CertificateBinding(
            "it carries no cnf.x5t#S256, and this issuer's tokens must be bound to the caller's certificate".into(),
        )),
        _ => Ok(()),
    }
}

impl Authn {
    /// Verifies a consent token as a bearer token is verified (trusted issuer, pinned
    /// algorithm, times, audience, single use where the issuer asks), then: a citizen's token,
    /// given to this unit, bound to this connection's certificate, naming a procedure.
    pub fn consent(&self, token: &str, caller: &Caller) -> Result<Consent, Refusal> {
        let v = self.verified(token).map_err(|r| {
            Refusal::Consent(match r {
                Refusal::BadToken(why) => format!("it is invalid: {why}"),
                Refusal::ExpiredToken => "it has expired: ask the citizen to consent again".into(),
                Refusal::TokenNotYetValid => "it is not valid yet (nbf)".into(),
                other => other.to_string(),
            })
        })?;
        let citizen = v.officer.citizen.clone().ok_or_else(|| {
            Refusal::Consent(
                "it is not a citizen's token (role citizen, the personal ID as subject)".into(),
            )
        })?;
        if v.officer.unit != caller.unit.code {
            return Err(Refusal::Consent(format!(
                "it was given to the portal of unit {}, not to this unit",
                v.officer.unit
            )));
        }
        binding(&v, caller).map_err(|r| match r {
            Refusal::CertificateBinding(why) => Refusal::Consent(why),
            other => other,
        })?;
        let procedure = v.procedure.ok_or_else(|| {
            Refusal::Consent(
                "it names no procedure (claim \"procedure\"): the citizen consents to one procedure's auto-fill".into(),
            )
        })?;
        Ok(Consent { citizen, procedure })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
    use lienthong_devtool::tokens::{TokenSpec, mint_with};
    use std::time::Duration;

    fn keys() -> (EncodingKey, DecodingKey) {
        let k = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        (
            EncodingKey::from_ed_pem(k.serialize_pem().as_bytes()).unwrap(),
            DecodingKey::from_ed_pem(k.public_key_pem().as_bytes()).unwrap(),
        )
    }

    fn auth(key: DecodingKey) -> Auth {
        Auth {
            audience: "lienthong-gateway".into(),
            leeway: Duration::from_secs(30),
            cache_entries: 100,
            issuers: vec![Issuer {
                issuer: "https://sso.lienthong.dev".into(),
                key_digest: String::new(),
                algorithm: Algorithm::EdDSA,
                key: IssuerKey::Pem(key),
                require_certificate_binding: false,
                max_lifetime: Duration::from_secs(12 * 3600),
                refuse_replay: false,
            }],
        }
    }

    /// The race a reload can lose: a token verified with the old keys, put in the cache after
    /// the reload emptied it. It is not put back.
    #[test]
    fn a_token_verified_with_replaced_keys_is_never_cached() {
        let (sign, verify) = keys();
        let (_, other) = keys();
        let spec = TokenSpec::new("CB.H42.0001", "000.00.00.H42", &["receiver"]);
        let token = mint_with(&sign, Algorithm::EdDSA, &spec).unwrap();
        let authn = Authn::new(&auth(verify));
        let before = authn.cache.lock().unwrap().generation;
        let v = authn.verify(&token).unwrap();
        authn.reload(&auth(other));
        authn.remember([1; 32], &v, before, (now(), 30));
        assert!(authn.cache.lock().unwrap().tokens.is_empty());
        let current = authn.cache.lock().unwrap().generation;
        authn.remember([1; 32], &v, current, (now(), 30));
        assert_eq!(authn.cache.lock().unwrap().tokens.len(), 1);
    }
}
