//! Step 1, identity: which connected unit is calling, from the client certificate the TLS
//! handshake has verified, and whether this gateway knows that unit.

use super::Gate;
use super::rescue::Refusal;
use crate::catalog::Catalog;
use crate::config::{Config, Environment, Unit};
use crate::tls::{self, CertificateIdentity};
use arc_swap::ArcSwap;
use lienthong_domain::UnitCode;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

/// The calling system, as established by mutual TLS.
#[derive(Debug, Clone)]
pub struct Caller {
    pub unit: Arc<Unit>,
    /// The catalog in force when the call arrived: the call finishes under it, whatever a
    /// reload changes meanwhile.
    pub catalog: Arc<Catalog>,
    pub certificate: CertificateIdentity,
    pub peer: Option<SocketAddr>,
}

/// The identity step.
#[derive(Clone)]
pub struct Identify {
    live: Arc<ArcSwap<Known>>,
    naming: tls::UnitNaming,
    /// Certificates already read, by their DER: a connection presents the same certificate on
    /// every call, so it is parsed and hashed once, not per request.
    seen: Arc<Mutex<HashMap<Vec<u8>, CertificateIdentity>>>,
}

/// At most this many certificates are remembered; the memory is forgotten when full.
const SEEN_CAPACITY: usize = 4096;

/// The units, the revoked certificates and the catalog in force, swapped whole by a reload.
struct Known {
    units: BTreeMap<UnitCode, Arc<Unit>>,
    revoked: BTreeSet<String>,
    catalog: Arc<Catalog>,
}

impl Known {
    fn new(config: &Config) -> Self {
        Self {
            units: config
                .units
                .iter()
                .map(|(k, v)| (k.clone(), Arc::new(v.clone())))
                .collect(),
            revoked: config.revoked_certificates.clone(),
            catalog: Arc::new(config.catalog.clone()),
        }
    }
}

impl Identify {
    /// The units, revoked certificates and catalog of `config`. Production gateways read the
    /// unit from the URI SAN only.
    pub fn new(config: &Config) -> Self {
        let naming = match config.environment {
            Environment::Production => tls::UnitNaming::UriSanOnly,
            Environment::Sandbox => tls::UnitNaming::CommonNameFallback,
        };
        Self {
            naming,
            live: Arc::new(ArcSwap::from_pointee(Known::new(config))),
            seen: Arc::default(),
        }
    }

    /// Puts the units, revoked certificates and catalog of `config` in force for the calls
    /// that arrive from now on.
    pub fn replace(&self, config: &Config) {
        self.live.store(Arc::new(Known::new(config)));
    }

    /// What a verified certificate says, read once per certificate.
    fn identify(&self, der: &[u8]) -> Result<CertificateIdentity, Refusal> {
        if let Some(known) = self.seen.lock().ok().and_then(|m| m.get(der).cloned()) {
            return Ok(known);
        }
        let identity = tls::identify(der, self.naming).map_err(Refusal::BadClientCertificate)?;
        if let Ok(mut seen) = self.seen.lock() {
            if seen.len() >= SEEN_CAPACITY {
                seen.clear();
            }
            seen.insert(der.to_vec(), identity.clone());
        }
        Ok(identity)
    }
}

/// The peer address of a request, when known.
pub fn peer_addr(extensions: &http::Extensions) -> Option<SocketAddr> {
    extensions.get::<tls::PeerInfo>().and_then(|i| i.remote)
}

impl Gate for Identify {
    const STAGE: &'static str = "identity";

    fn check(&self, request: &mut http::request::Parts) -> Result<(), Refusal> {
        let certs = request
            .extensions
            .get::<tls::PeerInfo>()
            .and_then(|i| i.certificates.clone())
            .ok_or(Refusal::NoClientCertificate)?;
        let leaf = certs.first().ok_or(Refusal::NoClientCertificate)?;
        let certificate = self.identify(leaf)?;
        super::audit::note(&request.extensions, |f| {
            f.unit_code = certificate.unit.to_string();
            f.cert_fingerprint = certificate.fingerprint.clone();
        });
        let known = self.live.load();
        if known.revoked.contains(&certificate.fingerprint) {
            return Err(Refusal::CertificateRevoked {
                unit: certificate.unit.to_string(),
                fingerprint: certificate.fingerprint,
            });
        }
        let unit = known
            .units
            .get(&certificate.unit)
            .ok_or_else(|| Refusal::UnknownUnit(certificate.unit.to_string()))?
            .clone();
        let peer = peer_addr(&request.extensions);
        request.extensions.insert(Caller {
            unit,
            catalog: known.catalog.clone(),
            certificate,
            peer,
        });
        Ok(())
    }
}
