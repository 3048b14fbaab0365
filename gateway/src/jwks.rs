//! A token issuer's published keys, as a JWK Set (RFC 7517) read from a file or fetched from a
//! URL, the way an identity provider publishes them: only keys for the issuer's pinned
//! algorithm are kept, by key id (`kid`), and the set is read again every refresh interval
//! (sooner when a token names a key id not yet known), so keys rotate without a restart.

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::rt::TokioIo;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey};
use rustls::pki_types::pem::PemObject;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Weak};
use std::time::Duration;

/// Where the set is published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    File(PathBuf),
    /// `http://` or `https://` (verified with the configured CA bundle).
    Url(http::Uri),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::File(p) => write!(f, "{}", p.display()),
            Source::Url(u) => write!(f, "{u}"),
        }
    }
}

/// The largest JWK Set read, in bytes.
const MAX_BYTES: usize = 1024 * 1024;
/// The longest a fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// At most one early refresh (for an unknown key id) per this interval.
const EARLY_REFRESH: Duration = Duration::from_secs(10);

/// An issuer's keys by key id, swapped whole at each refresh.
pub struct Jwks {
    pub source: Source,
    pub algorithm: Algorithm,
    pub refresh: Duration,
    /// PEM CA bundle for an `https://` source.
    ca: Option<Vec<u8>>,
    keys: arc_swap::ArcSwap<BTreeMap<String, Arc<DecodingKey>>>,
    wake: Arc<tokio::sync::Notify>,
}

impl std::fmt::Debug for Jwks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jwks")
            .field("source", &self.source)
            .field("algorithm", &self.algorithm)
            .field("kids", &self.kids())
            .finish_non_exhaustive()
    }
}

impl Jwks {
    pub fn new(
        source: Source,
        algorithm: Algorithm,
        refresh: Duration,
        ca: Option<Vec<u8>>,
    ) -> Self {
        Self {
            source,
            algorithm,
            refresh,
            ca,
            keys: arc_swap::ArcSwap::from_pointee(BTreeMap::new()),
            wake: Arc::default(),
        }
    }

    /// The keys of a JWK Set usable with `algorithm`, by key id ("" for a key without one).
    pub fn parse(
        text: &[u8],
        algorithm: Algorithm,
    ) -> Result<BTreeMap<String, Arc<DecodingKey>>, String> {
        let set: JwkSet =
            serde_json::from_slice(text).map_err(|e| format!("not a JWK Set: {e}"))?;
        let mut keys = BTreeMap::new();
        for jwk in &set.keys {
            let declared = jwk.common.key_algorithm.map(|a| format!("{a:?}"));
            if declared.is_some_and(|a| a != format!("{algorithm:?}")) {
                continue;
            }
            let Ok(key) = DecodingKey::from_jwk(jwk) else {
                continue;
            };
            let fits = matches!(
                (&jwk.algorithm, algorithm),
                (
                    jsonwebtoken::jwk::AlgorithmParameters::OctetKeyPair(_),
                    Algorithm::EdDSA
                ) | (
                    jsonwebtoken::jwk::AlgorithmParameters::EllipticCurve(_),
                    Algorithm::ES256 | Algorithm::ES384
                ) | (
                    jsonwebtoken::jwk::AlgorithmParameters::RSA(_),
                    Algorithm::RS256
                        | Algorithm::RS384
                        | Algorithm::RS512
                        | Algorithm::PS256
                        | Algorithm::PS384
                        | Algorithm::PS512
                )
            );
            if fits {
                keys.insert(jwk.common.key_id.clone().unwrap_or_default(), Arc::new(key));
            }
        }
        if keys.is_empty() {
            return Err(format!(
                "it holds no key usable with {algorithm:?} ({} key(s) in all)",
                set.keys.len()
            ));
        }
        Ok(keys)
    }

    /// Puts a set's keys in force.
    pub fn set(&self, keys: BTreeMap<String, Arc<DecodingKey>>) {
        self.keys.store(Arc::new(keys));
    }

    /// The key a token names: by its `kid`, or the only key when it names none.
    pub fn key(&self, kid: Option<&str>) -> Option<Arc<DecodingKey>> {
        let keys = self.keys.load();
        match kid {
            Some(kid) => keys.get(kid).cloned(),
            None if keys.len() == 1 => keys.values().next().cloned(),
            None => None,
        }
    }

    /// The key ids in force.
    pub fn kids(&self) -> Vec<String> {
        self.keys.load().keys().cloned().collect()
    }

    /// Asks for an early refresh (a token named a key id not yet known).
    pub fn nudge(&self) {
        self.wake.notify_one();
    }

    /// Reads the set again from its source and puts it in force; returns how many keys.
    pub async fn fetch(&self) -> Result<usize, String> {
        let text = match &self.source {
            Source::File(path) => tokio::fs::read(path)
                .await
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?,
            Source::Url(uri) => self.get(uri).await?,
        };
        let keys = Self::parse(&text, self.algorithm)?;
        let n = keys.len();
        self.set(keys);
        Ok(n)
    }

    async fn get(&self, uri: &http::Uri) -> Result<Vec<u8>, String> {
        let failed = |e: &dyn std::fmt::Display| format!("cannot fetch {uri}: {e}");
        let host = uri.host().ok_or_else(|| failed(&"no host"))?.to_owned();
        let https = uri.scheme_str() == Some("https");
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let request = http::Request::get(uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"))
            .header(http::header::HOST, &host)
            .header(http::header::ACCEPT, "application/json")
            .body(Empty::<Bytes>::new())
            .map_err(|e| failed(&e))?;
        let fetch = async {
            let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
                .await
                .map_err(|e| failed(&e))?;
            let response = if https {
                let mut roots = rustls::RootCertStore::empty();
                for cert in rustls::pki_types::CertificateDer::pem_slice_iter(
                    self.ca.as_deref().unwrap_or_default(),
                ) {
                    roots
                        .add(cert.map_err(|e| failed(&e))?)
                        .map_err(|e| failed(&e))?;
                }
                let config = rustls::ClientConfig::builder_with_provider(Arc::new(
                    rustls::crypto::ring::default_provider(),
                ))
                .with_safe_default_protocol_versions()
                .map_err(|e| failed(&e))?
                .with_root_certificates(roots)
                .with_no_client_auth();
                let name = rustls::pki_types::ServerName::try_from(host.clone())
                    .map_err(|e| failed(&e))?;
                let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
                    .connect(name, tcp)
                    .await
                    .map_err(|e| failed(&e))?;
                send(TokioIo::new(tls), request).await
            } else {
                send(TokioIo::new(tcp), request).await
            }
            .map_err(|e| failed(&e))?;
            if !response.status().is_success() {
                return Err(failed(&format!("HTTP {}", response.status())));
            }
            let body = Limited::new(response.into_body(), MAX_BYTES)
                .collect()
                .await
                .map_err(|e| failed(&e))?;
            Ok(body.to_bytes().to_vec())
        };
        tokio::time::timeout(FETCH_TIMEOUT, fetch)
            .await
            .map_err(|_| failed(&format!("no answer within {} s", FETCH_TIMEOUT.as_secs())))?
    }
}

async fn send<T>(
    io: TokioIo<T>,
    request: http::Request<Empty<Bytes>>,
) -> Result<http::Response<hyper::body::Incoming>, hyper::Error>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await?;
    tokio::spawn(conn);
    sender.send_request(request).await
}

/// Puts the JWK Sets of `auth` in force: a URL's set is fetched now (if it cannot be, its
/// issuer's tokens are refused until a later read succeeds), and each set is kept fresh.
pub async fn start(auth: &crate::config::Auth) {
    for issuer in &auth.issuers {
        if let crate::config::IssuerKey::Jwks(set) = &issuer.key {
            if matches!(set.source, Source::Url(_))
                && let Err(e) = set.fetch().await
            {
                tracing::warn!(issuer = %issuer.issuer, error = %e, "the issuer's keys could not be fetched; its tokens are refused until they are");
            }
            keep_fresh(set);
        }
    }
}

/// Keeps a set fresh while it is in force: reads it every refresh interval, and soon after a
/// token names an unknown key id. A failed read keeps the keys in force (and says so in the
/// log). Ends when the configuration that holds the set is replaced.
pub fn keep_fresh(jwks: &Arc<Jwks>) {
    let weak: Weak<Jwks> = Arc::downgrade(jwks);
    let (wake, interval) = (jwks.wake.clone(), jwks.refresh);
    tokio::spawn(async move {
        let mut last_early = tokio::time::Instant::now() - EARLY_REFRESH;
        loop {
            // Waiting holds no reference to the set, so a reload that drops it ends the loop.
            let early = async {
                wake.notified().await;
                tokio::time::sleep_until(last_early + EARLY_REFRESH).await;
            };
            tokio::select! {
                () = tokio::time::sleep(interval) => {}
                () = early => last_early = tokio::time::Instant::now(),
            }
            let Some(j) = weak.upgrade() else { return };
            match j.fetch().await {
                Ok(n) => tracing::debug!(source = %j.source, keys = n, "issuer keys refreshed"),
                Err(e) => {
                    tracing::warn!(source = %j.source, error = %e, "issuer keys could not be refreshed; the keys in force are kept")
                }
            }
        }
    });
}
