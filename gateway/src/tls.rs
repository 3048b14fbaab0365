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
        .timeout(config.transport.tls_handshake_timeout)
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

/// How a certificate may name its unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnitNaming {
    /// Only the URI SAN `urn:lienthong:unit:<code>` (production).
    UriSanOnly,
    /// The URI SAN, or the common name of a certificate that has no URI SAN at all
    /// (development and sandbox certificates made by hand).
    CommonNameFallback,
}

/// Reads the unit from a certificate the TLS layer has already verified: the URI SAN
/// `urn:lienthong:unit:<code>`; a certificate with URI SANs that name no unit names none,
/// whatever its common name says.
pub fn identify(der: &[u8], naming: UnitNaming) -> Result<CertificateIdentity, String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| format!("it cannot be parsed ({e})"))?;
    let uris: Vec<&str> = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|san| {
            san.value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    GeneralName::URI(u) => Some(*u),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    let from_san = uris
        .iter()
        .find_map(|u| u.strip_prefix(UNIT_URI_PREFIX).map(str::to_owned));
    let name = match (from_san, naming) {
        (Some(n), _) => n,
        (None, UnitNaming::CommonNameFallback) if uris.is_empty() => cert
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .map(str::to_owned)
            .ok_or("it names no unit (no URI SAN urn:lienthong:unit:<code>, no common name)")?,
        (None, UnitNaming::CommonNameFallback) => {
            return Err("its URI SAN names no unit (expected urn:lienthong:unit:<code>)".into());
        }
        (None, UnitNaming::UriSanOnly) => {
            return Err(
                "it names no unit: a production gateway reads the unit from the URI SAN urn:lienthong:unit:<code> only".into(),
            );
        }
    };
    let unit = UnitCode::parse(&name).map_err(|e| format!("it names no valid unit: {e}"))?;
    let digest = Sha256::digest(der);
    Ok(CertificateIdentity {
        unit,
        fingerprint: digest.iter().map(|b| format!("{b:02x}")).collect(),
        thumbprint: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(cn: &str, uri: Option<&str>) -> Vec<u8> {
        let mut p = rcgen::CertificateParams::default();
        p.distinguished_name.push(rcgen::DnType::CommonName, cn);
        if let Some(u) = uri {
            p.subject_alt_names
                .push(rcgen::SanType::URI(u.to_owned().try_into().unwrap()));
        }
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        p.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn the_unit_comes_from_the_uri_san_and_the_common_name_only_in_development() {
        use UnitNaming::*;
        let proper = cert("anything", Some("urn:lienthong:unit:000.00.00.H42"));
        for naming in [UriSanOnly, CommonNameFallback] {
            assert_eq!(
                identify(&proper, naming).unwrap().unit.as_str(),
                "000.00.00.H42"
            );
        }
        // A URI SAN that names something else: no unit, whatever the CN says.
        let other = cert("000.00.00.H42", Some("https://evil.example/"));
        for naming in [UriSanOnly, CommonNameFallback] {
            assert!(identify(&other, naming).is_err(), "{naming:?}");
        }
        // No URI SAN at all: the CN counts in development only.
        let cn_only = cert("000.00.00.H42", None);
        assert!(identify(&cn_only, UriSanOnly).is_err());
        assert_eq!(
            identify(&cn_only, CommonNameFallback)
                .unwrap()
                .unit
                .as_str(),
            "000.00.00.H42"
        );
    }
}
