//! Transport security: the server's rustls configuration (client certificates chained to the
//! configured CA), and reading the calling unit out of a verified client certificate.

use crate::config::{Config, Upstream};
use base64::Engine;
use lienthong_domain::UnitCode;
use sha2::{Digest, Sha256};
use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};
use x509_parser::extensions::GeneralName;

/// The URI SAN prefix that names a unit in its client certificate.
pub const UNIT_URI_PREFIX: &str = "urn:lienthong:unit:";

/// The server's TLS: its identity, and client certificates verified against the client CA.
///
/// A client certificate is optional at the handshake so that health checks and reflection work
/// for standard tools; a certificate that is presented must chain to the CA and be in date, or
/// the handshake fails. Every citizen-data call without one is refused by the identity step.
pub fn server_config(config: &Config) -> ServerTlsConfig {
    ServerTlsConfig::new()
        .identity(Identity::from_pem(
            &config.tls.cert.bytes,
            &config.tls.key.bytes,
        ))
        .client_ca_root(Certificate::from_pem(&config.tls.client_ca.bytes))
        .client_auth_optional(true)
}

/// The client TLS towards the population database: the gateway is a connected unit too.
pub fn upstream_config(up: &Upstream) -> ClientTlsConfig {
    ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&up.ca.bytes))
        .identity(Identity::from_pem(&up.cert.bytes, &up.key.bytes))
        .domain_name(up.server_name.clone())
}

/// What a verified client certificate says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateIdentity {
    pub unit: UnitCode,
    /// SHA-256 of the DER certificate, lowercase hex (for the audit trail).
    pub fingerprint: String,
    /// SHA-256 of the DER certificate, base64url without padding (RFC 8705 `x5t#S256`).
    pub thumbprint: String,
}

/// Reads the unit from a certificate the TLS layer has already verified: the URI SAN
/// `urn:lienthong:unit:<code>`, or failing that the subject's common name.
pub fn identify(der: &[u8]) -> Result<CertificateIdentity, String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| format!("it cannot be parsed ({e})"))?;
    let from_san = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .and_then(|san| {
            san.value.general_names.iter().find_map(|n| match n {
                GeneralName::URI(u) => u.strip_prefix(UNIT_URI_PREFIX).map(str::to_owned),
                _ => None,
            })
        });
    let name = match from_san {
        Some(n) => n,
        None => cert
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .map(str::to_owned)
            .ok_or("it names no unit (no URI SAN urn:lienthong:unit:<code>, no common name)")?,
    };
    let unit = UnitCode::parse(&name).map_err(|e| format!("it names no valid unit: {e}"))?;
    let digest = Sha256::digest(der);
    Ok(CertificateIdentity {
        unit,
        fingerprint: digest.iter().map(|b| format!("{b:02x}")).collect(),
        thumbprint: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest),
    })
}
