//! Development officer tokens: JWTs signed with the development issuer's Ed25519 key, carrying
//! the officer, unit and roles, and bound to the unit's client certificate (`cnf.x5t#S256`).

use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The development issuer's name (`iss`).
pub const DEV_ISSUER: &str = "https://sso.lienthong.dev";
/// The gateway's audience (`aud`).
pub const DEV_AUDIENCE: &str = "lienthong-gateway";

/// Why a token could not be made.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("{path} holds no certificate: {detail}")]
    Certificate {
        path: std::path::PathBuf,
        detail: String,
    },
    #[error("the issuer key is unusable: {0}")]
    Key(#[from] jsonwebtoken::errors::Error),
}

/// What a token says.
#[derive(Debug, Clone)]
pub struct TokenSpec {
    pub officer: String,
    pub unit: String,
    pub roles: Vec<String>,
    pub issuer: String,
    pub audience: String,
    /// Valid from `not_before_offset` (may be negative) for `ttl`.
    pub ttl: Duration,
    pub not_before_offset: i64,
    /// Seconds added to `iat` (tests forge a token issued in the future with it).
    pub issued_at_offset: i64,
    /// The certificate the token is bound to, if any.
    pub bound_to: Option<String>,
    /// The key id (`kid`) in the header; `mint` sets the development issuer's.
    pub kid: Option<String>,
    /// On a citizen token: the procedure the citizen consents to an auto-fill for.
    pub procedure: Option<String>,
}

impl TokenSpec {
    /// A token for an officer of a unit, valid now for eight hours, for the dev issuer.
    pub fn new(officer: &str, unit: &str, roles: &[&str]) -> Self {
        Self {
            officer: officer.to_owned(),
            unit: unit.to_owned(),
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            issuer: DEV_ISSUER.to_owned(),
            audience: DEV_AUDIENCE.to_owned(),
            ttl: Duration::from_secs(8 * 3600),
            not_before_offset: 0,
            issued_at_offset: 0,
            bound_to: None,
            kid: None,
            procedure: None,
        }
    }

    /// Binds the token to a certificate (PEM file).
    pub fn bound_to_file(mut self, cert: &Path) -> Result<Self, TokenError> {
        self.bound_to = Some(thumbprint_file(cert)?);
        Ok(self)
    }
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    unit: &'a str,
    roles: &'a [String],
    iat: i64,
    nbf: i64,
    exp: i64,
    jti: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    cnf: Option<Cnf<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    procedure: Option<&'a str>,
}

#[derive(Serialize)]
struct Cnf<'a> {
    #[serde(rename = "x5t#S256")]
    x5t_s256: &'a str,
}

/// The RFC 8705 thumbprint (base64url SHA-256 of the DER) of a PEM certificate file.
pub fn thumbprint_file(cert: &Path) -> Result<String, TokenError> {
    let der = CertificateDer::from_pem_file(cert).map_err(|e| TokenError::Certificate {
        path: cert.to_owned(),
        detail: e.to_string(),
    })?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(der.as_ref())))
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Signs a token with an Ed25519 PKCS#8 key file.
pub fn mint(issuer_key: &Path, spec: &TokenSpec) -> Result<String, TokenError> {
    let pem = std::fs::read(issuer_key).map_err(|source| TokenError::Read {
        path: issuer_key.to_owned(),
        source,
    })?;
    let mut spec = spec.clone();
    if spec.kid.is_none() {
        spec.kid = issuer_jwk(&pem).map(|(kid, _)| kid);
    }
    mint_with(&EncodingKey::from_ed_pem(&pem)?, Algorithm::EdDSA, &spec)
}

/// The development issuer's public key as a JWK (RFC 7517, OKP Ed25519) and its key id (the
/// RFC 7638 thumbprint), from its private key in PEM.
pub fn issuer_jwk(private_pem: &[u8]) -> Option<(String, serde_json::Value)> {
    use ed25519_dalek::pkcs8::DecodePrivateKey;
    let pem = std::str::from_utf8(private_pem).ok()?;
    let key = ed25519_dalek::SigningKey::from_pkcs8_pem(pem).ok()?;
    Some(ed25519_jwk(key.verifying_key().as_bytes()))
}

/// An Ed25519 public key as a JWK, with its RFC 7638 thumbprint as key id.
pub fn ed25519_jwk(public: &[u8]) -> (String, serde_json::Value) {
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let x = b64(public);
    // The thumbprint's input: the required members, in lexicographic order, no spaces.
    let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
    let kid = b64(&Sha256::digest(canonical.as_bytes()));
    let jwk = serde_json::json!({
        "kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "alg": "EdDSA", "use": "sig",
    });
    (kid, jwk)
}

/// Signs a token with any key and algorithm (tests use this to forge bad tokens).
pub fn mint_with(
    key: &EncodingKey,
    algorithm: Algorithm,
    spec: &TokenSpec,
) -> Result<String, TokenError> {
    let now = unix_now();
    let nbf = now + spec.not_before_offset;
    let claims = Claims {
        iss: &spec.issuer,
        sub: &spec.officer,
        aud: &spec.audience,
        unit: &spec.unit,
        roles: &spec.roles,
        iat: now + spec.issued_at_offset,
        nbf,
        exp: nbf + spec.ttl.as_secs() as i64,
        jti: format!("{:032x}", rand::random::<u128>()),
        cnf: spec.bound_to.as_deref().map(|t| Cnf { x5t_s256: t }),
        procedure: spec.procedure.as_deref(),
    };
    let mut header = Header::new(algorithm);
    header.kid = spec.kid.clone();
    Ok(encode(&header, &claims, key)?)
}
