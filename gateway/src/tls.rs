//! Transport security: the server's rustls configuration (client certificates chained to the
//! configured CA), the accept loop that performs each handshake within its timeout and reports
//! the ones that fail (for the audit trail), and reading the calling unit out of a verified
//! client certificate.

use crate::config::{Config, Upstream};
use base64::Engine;
use lienthong_domain::UnitCode;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::Connected;
use tonic::transport::{Certificate, ClientTlsConfig, Identity};
use x509_parser::extensions::GeneralName;

/// The URI SAN prefix that names a unit in its client certificate.
pub const UNIT_URI_PREFIX: &str = "urn:lienthong:unit:";

/// The server's TLS: its identity, and client certificates verified against the client CA
/// (rustls with ring, TLS 1.2 and 1.3, ALPN h2).
///
/// A client certificate is optional at the handshake so that health checks and reflection work
/// for standard tools; a certificate that is presented must chain to the CA and be in date, or
/// the handshake fails. Every citizen-data call without one is refused by the identity step.
pub fn server_config(config: &Config) -> Result<Arc<rustls::ServerConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&config.tls.client_ca.bytes) {
        let cert = cert.map_err(|e| format!("tls.client_ca: {e}"))?;
        roots.add(cert).map_err(|e| format!("tls.client_ca: {e}"))?;
    }
    let verifier =
        rustls::server::WebPkiClientVerifier::builder_with_provider(roots.into(), provider.clone())
            .allow_unauthenticated()
            .build()
            .map_err(|e| format!("tls.client_ca: {e}"))?;
    let certs = CertificateDer::pem_slice_iter(&config.tls.cert.bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("tls.cert: {e}"))?;
    let key = PrivateKeyDer::from_pem_slice(&config.tls.key.bytes)
        .map_err(|e| format!("tls.key: {e}"))?;
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .map_err(|e| format!("tls.cert / tls.key: {e}"))?;
    tls.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(tls))
}

/// What the transport knows of a connection: its peer and the client certificate chain the
/// handshake verified (none when the client presented none). Every request of the connection
/// carries it in its extensions.
#[derive(Debug, Clone)]
pub struct PeerInfo {
    pub remote: Option<SocketAddr>,
    pub certificates: Option<Arc<Vec<CertificateDer<'static>>>>,
}

/// A connection whose TLS handshake succeeded.
pub struct TlsConn {
    inner: tokio_rustls::server::TlsStream<TcpStream>,
    info: PeerInfo,
}

impl Connected for TlsConn {
    type ConnectInfo = PeerInfo;

    fn connect_info(&self) -> PeerInfo {
        self.info.clone()
    }
}

impl AsyncRead for TlsConn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsConn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// A handshake that failed, for the audit trail.
#[derive(Debug, Clone)]
pub struct HandshakeFailure {
    pub peer: SocketAddr,
    /// True when the peer sent too little in time (a connection left idle).
    pub timed_out: bool,
    /// What went wrong, as rustls says it (bounded).
    pub detail: String,
}

/// Accepts connections and performs their TLS handshakes (each within `timeout`, each in its
/// own task), yielding the connections that completed one. A handshake that fails is reported
/// on `failures` (without blocking: when the channel is full it is counted in the log only),
/// unless the peer closed before sending anything (a TCP health probe).
pub fn incoming(
    listener: TcpListener,
    config: Arc<rustls::ServerConfig>,
    timeout: Duration,
    failures: mpsc::Sender<HandshakeFailure>,
    metrics: Arc<crate::metrics::Metrics>,
) -> (
    ReceiverStream<Result<TlsConn, std::io::Error>>,
    tokio::task::JoinHandle<()>,
) {
    let (tx, rx) = mpsc::channel(256);
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let accepting = tokio::spawn(async move {
        loop {
            let (tcp, peer) = match listener.accept().await {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors and the like: pause, do not spin.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            // Without TCP_NODELAY small replies wait out delayed ACKs (~40 ms each).
            let _ = tcp.set_nodelay(true);
            let acceptor = acceptor.clone();
            let tx = tx.clone();
            let failures = failures.clone();
            let metrics = metrics.clone();
            tokio::spawn(async move {
                let failure = match tokio::time::timeout(timeout, acceptor.accept(tcp)).await {
                    Ok(Ok(tls)) => {
                        metrics.tls_handshakes.inc();
                        let certificates =
                            tls.get_ref().1.peer_certificates().map(|c| {
                                Arc::new(c.iter().map(|c| c.clone().into_owned()).collect())
                            });
                        let conn = TlsConn {
                            inner: tls,
                            info: PeerInfo {
                                remote: Some(peer),
                                certificates,
                            },
                        };
                        let _ = tx.send(Ok(conn)).await;
                        return;
                    }
                    Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                        metrics.tls_failure("closed");
                        return;
                    }
                    Ok(Err(e)) => HandshakeFailure {
                        peer,
                        timed_out: false,
                        detail: crate::audit::record::bound_str(&e.to_string(), 200),
                    },
                    Err(_) => HandshakeFailure {
                        peer,
                        timed_out: true,
                        detail: format!("no handshake within {} ms", timeout.as_millis()),
                    },
                };
                metrics.tls_failure(if failure.timed_out {
                    "timeout"
                } else {
                    "rejected"
                });
                if failures.try_send(failure).is_err() {
                    tracing::warn!(%peer, "a failed TLS handshake was not recorded: too many at once");
                }
            });
        }
    });
    (ReceiverStream::new(rx), accepting)
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
