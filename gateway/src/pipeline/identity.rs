//! Step 1, identity: which connected unit is calling, from the client certificate the TLS
//! handshake has verified, and whether this gateway knows that unit.

use super::Gate;
use super::rescue::Refusal;
use crate::config::Unit;
use crate::tls::{self, CertificateIdentity};
use lienthong_domain::UnitCode;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};

/// The calling system, as established by mutual TLS.
#[derive(Debug, Clone)]
pub struct Caller {
    pub unit: Arc<Unit>,
    pub certificate: CertificateIdentity,
    pub peer: Option<SocketAddr>,
}

/// The identity step.
#[derive(Clone)]
pub struct Identify {
    units: Arc<BTreeMap<UnitCode, Arc<Unit>>>,
}

impl Identify {
    pub fn new(units: &BTreeMap<UnitCode, Unit>) -> Self {
        Self {
            units: Arc::new(
                units
                    .iter()
                    .map(|(k, v)| (k.clone(), Arc::new(v.clone())))
                    .collect(),
            ),
        }
    }
}

/// The peer address of a request, when known.
pub fn peer_addr(extensions: &http::Extensions) -> Option<SocketAddr> {
    extensions
        .get::<TlsConnectInfo<TcpConnectInfo>>()
        .and_then(|i| i.get_ref().remote_addr())
        .or_else(|| {
            extensions
                .get::<TcpConnectInfo>()
                .and_then(TcpConnectInfo::remote_addr)
        })
}

impl Gate for Identify {
    fn check(&self, request: &mut http::request::Parts) -> Result<(), Refusal> {
        let certs = request
            .extensions
            .get::<TlsConnectInfo<TcpConnectInfo>>()
            .and_then(TlsConnectInfo::peer_certs)
            .ok_or(Refusal::NoClientCertificate)?;
        let leaf = certs.first().ok_or(Refusal::NoClientCertificate)?;
        let certificate = tls::identify(leaf).map_err(Refusal::BadClientCertificate)?;
        crate::audit::layer::note(&request.extensions, |f| {
            f.unit_code = certificate.unit.to_string();
            f.cert_fingerprint = certificate.fingerprint.clone();
        });
        let unit = self
            .units
            .get(&certificate.unit)
            .ok_or_else(|| Refusal::UnknownUnit(certificate.unit.to_string()))?
            .clone();
        let peer = peer_addr(&request.extensions);
        request.extensions.insert(Caller {
            unit,
            certificate,
            peer,
        });
        Ok(())
    }
}
