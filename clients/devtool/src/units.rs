//! A team's own connected unit in the development environment: its client certificate (PEM,
//! and a PKCS#12 bundle for Java and .NET key stores), its entry in the gateway configuration,
//! revocation of its certificate, and the running gateway told to reload.

use crate::env::DevPki;
use crate::pki::{CertFiles, DevCa, PkiError, Validity};
use crate::running::Running;
use crate::sample;
use lienthong_domain::UnitCode;
use lienthong_gateway::config::{Config, ENV_PREFIX};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivatePkcs8KeyDer};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use toml_edit::{Array, DocumentMut, InlineTable, Item, Table, value};

/// Why a unit could not be registered, listed or revoked.
#[derive(Debug, thiserror::Error)]
pub enum UnitError {
    #[error(transparent)]
    Pki(#[from] PkiError),
    #[error("{0}")]
    Refused(String),
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the gateway configuration would be invalid, so nothing was changed:\n  {}",
        .0.join("\n  ")
    )]
    Invalid(Vec<String>),
    #[error("{0}")]
    Config(lienthong_gateway::ConfigError),
    #[error(
        "no environment in {0}: start one with `lienthong-dev up` (or point --dir / LIENTHONG_DIR at it)"
    )]
    NoEnvironment(PathBuf),
}

/// A unit to register.
#[derive(Debug, Clone)]
pub struct NewUnit {
    pub code: UnitCode,
    pub name: String,
    /// Procedure codes, or `*` for every procedure of the catalog.
    pub procedures: Vec<String>,
    /// `sandbox` or `production`: the environment its credentials are issued for.
    pub environment: String,
}

/// What `add` made.
#[derive(Debug)]
pub struct Registered {
    pub certificate: CertFiles,
    /// PKCS#12 (AES-256, HMAC-SHA-256): the key, the certificate and the CA.
    pub bundle: PathBuf,
    pub bundle_password: String,
    /// SHA-256 of the certificate, hex.
    pub fingerprint: String,
}

/// A unit as `list` shows it.
#[derive(Debug)]
pub struct Listed {
    pub code: String,
    pub name: String,
    pub environment: &'static str,
    pub approval: &'static str,
    pub procedures: Vec<String>,
    pub certificate: Option<PathBuf>,
    /// Whether the gateway refuses that certificate.
    pub revoked: bool,
}

/// The client certificate of a unit in this environment: a sample unit's, or one registered
/// with `unit add` (`pki/units/<code>.pem`).
pub fn certificate_of(pki: &DevPki, code: &str) -> Option<CertFiles> {
    if let Some(u) = sample::UNITS.iter().find(|u| u.code == code) {
        return Some(pki.unit(u));
    }
    let files = registered_files(pki, code);
    files.cert.exists().then_some(files)
}

fn registered_files(pki: &DevPki, code: &str) -> CertFiles {
    let units = pki.ca.with_file_name("units");
    CertFiles {
        cert: units.join(format!("{code}.pem")),
        key: units.join(format!("{code}.key")),
    }
}

/// SHA-256 of a PEM certificate's DER, lowercase hex (what `revoked_certificates` holds).
pub fn fingerprint(cert: &Path) -> Result<String, UnitError> {
    let der = CertificateDer::from_pem_file(cert).map_err(|e| UnitError::Read {
        path: cert.to_owned(),
        source: std::io::Error::other(e.to_string()),
    })?;
    Ok(Sha256::digest(der.as_ref())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// The environment's gateway configuration, as text and as the gateway reads it.
struct GatewayConfig {
    path: PathBuf,
    doc: DocumentMut,
}

impl GatewayConfig {
    fn open(dir: &Path) -> Result<Self, UnitError> {
        let path = dir.join("gateway.toml");
        if !path.exists() {
            return Err(UnitError::NoEnvironment(dir.to_owned()));
        }
        let text = std::fs::read_to_string(&path).map_err(|source| UnitError::Read {
            path: path.clone(),
            source,
        })?;
        let doc = text.parse::<DocumentMut>().map_err(|e| {
            UnitError::Refused(format!("{} is not valid TOML: {e}", path.display()))
        })?;
        Ok(Self { path, doc })
    }

    fn units(&self) -> Vec<&Table> {
        self.doc
            .get("units")
            .and_then(Item::as_array_of_tables)
            .map(|a| a.iter().collect())
            .unwrap_or_default()
    }

    fn revoked(&self) -> Vec<String> {
        self.doc
            .get("revoked_certificates")
            .and_then(Item::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(|s| s.to_ascii_lowercase().replace(':', "")))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Writes the edited configuration beside the file and validates it as the gateway would;
    /// nothing is in place until the result is committed.
    fn stage(&self) -> Result<Staged, UnitError> {
        let next = self.path.with_extension("toml.next");
        std::fs::write(&next, self.doc.to_string()).map_err(|source| UnitError::Write {
            path: next.clone(),
            source,
        })?;
        if let Err(e) = load(&next) {
            let _ = std::fs::remove_file(&next);
            return Err(UnitError::Invalid(e.problems));
        }
        Ok(Staged {
            next,
            path: self.path.clone(),
        })
    }
}

/// A validated configuration written beside the one in force.
struct Staged {
    next: PathBuf,
    path: PathBuf,
}

impl Staged {
    /// Puts it in place, atomically (renamed over the file).
    fn commit(self) -> Result<(), UnitError> {
        std::fs::rename(&self.next, &self.path).map_err(|source| UnitError::Write {
            path: self.path.clone(),
            source,
        })
    }
}

impl Drop for Staged {
    /// Not committed (a later step failed): the staged file goes.
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.next);
    }
}

/// A configuration file as the gateway would load it (with this process's overrides).
fn load(path: &Path) -> Result<Config, lienthong_gateway::ConfigError> {
    Config::load(
        path,
        std::env::vars().filter(|(k, _)| k.starts_with(ENV_PREFIX)),
    )
}

/// Registers `unit`: issues its certificate and bundle, adds it to the gateway configuration
/// (validated first; nothing changes if it would be invalid). A unit already registered is
/// refused unless its certificate was revoked, in which case it gets a new one.
pub fn add(dir: &Path, unit: &NewUnit) -> Result<Registered, UnitError> {
    let pki = DevPki::layout(dir);
    let mut config = GatewayConfig::open(dir)?;
    let code = unit.code.as_str();
    let existing = config
        .units()
        .iter()
        .any(|t| t.get("code").and_then(Item::as_str) == Some(code));
    let current = certificate_of(&pki, code);
    if existing {
        let revoked = match &current {
            Some(files) => config.revoked().contains(&fingerprint(&files.cert)?),
            None => true,
        };
        if !revoked {
            return Err(UnitError::Refused(format!(
                "unit {code} is already registered (see `lienthong-dev unit list`); to give it a new certificate, `lienthong-dev unit revoke --code {code}` first, then add it again"
            )));
        }
        if sample::UNITS.iter().any(|u| u.code == code) {
            return Err(UnitError::Refused(format!(
                "unit {code} is a sample unit; register your own unit under its own code"
            )));
        }
    } else {
        config
            .doc
            .entry("units")
            .or_insert(Item::ArrayOfTables(Default::default()))
            .as_array_of_tables_mut()
            .ok_or_else(|| {
                UnitError::Refused("`units` in gateway.toml is not an array of tables".into())
            })?
            .push(unit_table(unit));
    }
    // The configuration is checked with the new entry before any file is made: the certificate
    // is issued only for a unit the gateway accepts.
    let staged = config.stage()?;
    let ca = DevCa::open(pki.ca.parent().unwrap_or(dir))?;
    let stem = format!("units/{code}");
    let certificate = ca.unit_client(&stem, code, &unit.name, Validity::Days(825))?;
    let bundle_password = password();
    let bundle = certificate.cert.with_extension("p12");
    crate::pki::write_secret_bytes(
        &bundle,
        &pkcs12(&certificate, &pki.ca, code, &bundle_password)?,
    )?;
    staged.commit()?;
    Ok(Registered {
        fingerprint: fingerprint(&certificate.cert)?,
        certificate,
        bundle,
        bundle_password,
    })
}

fn unit_table(unit: &NewUnit) -> Table {
    let mut t = Table::new();
    t["code"] = value(unit.code.as_str());
    t["name"] = value(unit.name.as_str());
    t["environment"] = value(unit.environment.as_str());
    t["approval"] = value("approved");
    let mut procedures = Array::new();
    for p in &unit.procedures {
        procedures.push(p.as_str());
    }
    t["procedures"] = value(procedures);
    let rate = |per_second: i64, burst: i64| {
        let mut r = InlineTable::new();
        r.insert("per_second", per_second.into());
        r.insert("burst", burst.into());
        value(r)
    };
    t["rate"] = rate(20, 40);
    t["officer_rate"] = rate(5, 10);
    t["batch_max_items"] = value(1000);
    t.decor_mut()
        .set_prefix("\n# Registered with `lienthong-dev unit add`.\n");
    t
}

/// The units the gateway configuration holds, with their certificates.
pub fn list(dir: &Path) -> Result<Vec<Listed>, UnitError> {
    let pki = DevPki::layout(dir);
    let config = GatewayConfig::open(dir)?;
    let revoked = config.revoked();
    let loaded = gateway_config(dir)?;
    let mut out = Vec::new();
    for (code, u) in &loaded.units {
        let certificate = certificate_of(&pki, code.as_str());
        let revoked = match &certificate {
            Some(files) => revoked.contains(&fingerprint(&files.cert)?),
            None => false,
        };
        out.push(Listed {
            code: code.to_string(),
            name: u.name.clone(),
            environment: u.environment.as_str(),
            approval: u.approval.as_str(),
            procedures: u.procedures.iter().map(ToString::to_string).collect(),
            certificate: certificate.map(|c| c.cert),
            revoked,
        });
    }
    Ok(out)
}

/// Revokes the unit's certificate: its fingerprint goes into `revoked_certificates`. Returns
/// the fingerprint.
pub fn revoke(dir: &Path, code: &UnitCode) -> Result<String, UnitError> {
    let pki = DevPki::layout(dir);
    let mut config = GatewayConfig::open(dir)?;
    let files = certificate_of(&pki, code.as_str()).ok_or_else(|| {
        UnitError::Refused(format!(
            "no certificate of unit {code} in this environment (see `lienthong-dev unit list`)"
        ))
    })?;
    let fingerprint = fingerprint(&files.cert)?;
    if config.revoked().contains(&fingerprint) {
        return Err(UnitError::Refused(format!(
            "the certificate of unit {code} is already revoked"
        )));
    }
    config
        .doc
        .entry("revoked_certificates")
        .or_insert(value(Array::new()))
        .as_array_mut()
        .ok_or_else(|| {
            UnitError::Refused("`revoked_certificates` in gateway.toml is not an array".into())
        })?
        .push(fingerprint.as_str());
    config.stage()?.commit()?;
    Ok(fingerprint)
}

/// A PKCS#12 bundle of the unit's key, its certificate and the CA (AES-256-CBC with PBKDF2,
/// HMAC-SHA-256: Java 17's keytool and OpenSSL read it in the tests).
fn pkcs12(files: &CertFiles, ca: &Path, alias: &str, password: &str) -> Result<Vec<u8>, UnitError> {
    let read_cert = |path: &Path| -> Result<p12_keystore::Certificate, UnitError> {
        let der = CertificateDer::from_pem_file(path).map_err(|e| UnitError::Read {
            path: path.to_owned(),
            source: std::io::Error::other(e.to_string()),
        })?;
        p12_keystore::Certificate::from_der(der.as_ref())
            .map_err(|e| UnitError::Refused(format!("{}: {e}", path.display())))
    };
    let leaf = read_cert(&files.cert)?;
    let root = read_cert(ca)?;
    let key = PrivatePkcs8KeyDer::from_pem_file(&files.key).map_err(|e| UnitError::Read {
        path: files.key.clone(),
        source: std::io::Error::other(e.to_string()),
    })?;
    let key = p12_keystore::PrivateKey::from_der(key.secret_pkcs8_der())
        .map_err(|e| UnitError::Refused(format!("{}: {e}", files.key.display())))?;
    let local_key_id = Sha256::digest(leaf.as_der())[..20].to_vec();
    let chain = p12_keystore::PrivateKeyChain::new(local_key_id, key, [leaf, root]);
    let mut store = p12_keystore::KeyStore::new();
    store.add_entry(alias, p12_keystore::KeyStoreEntry::PrivateKeyChain(chain));
    store
        .writer(password)
        .write()
        .map_err(|e| UnitError::Refused(format!("cannot build the PKCS#12 bundle: {e}")))
}

/// A bundle password: 20 characters from an alphabet without look-alikes.
fn password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    (0..20)
        .map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// What telling the running gateway to reload gave.
#[derive(Debug)]
pub enum Reloaded {
    /// The gateway applied the configuration; its answer.
    Applied(String),
    /// No environment is running: the change applies at the next `up`.
    NotRunning,
}

/// Tells the environment's running gateway to read its configuration again (`POST /reload`
/// on its admin listener).
pub async fn reload_running(dir: &Path) -> Result<Reloaded, UnitError> {
    let Some(admin) = Running::find(dir).and_then(|r| r.admin) else {
        return Ok(Reloaded::NotRunning);
    };
    let failed = |e: std::io::Error| {
        UnitError::Refused(format!(
            "the configuration was saved, but the running gateway's admin listener at {admin} did not answer ({e}); restart `lienthong-dev up`"
        ))
    };
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(admin)
        .await
        .map_err(failed)?;
    s.write_all(
        b"POST /reload HTTP/1.1\r\nHost: gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    )
    .await
    .map_err(failed)?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).await.map_err(failed)?;
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    if head.split(' ').nth(1) == Some("200") {
        Ok(Reloaded::Applied(body.trim().to_owned()))
    } else {
        Err(UnitError::Refused(format!(
            "the running gateway refused the new configuration: {}",
            body.trim()
        )))
    }
}

/// An officer acting for a unit of this environment, with the unit's certificate.
#[derive(Debug, Clone)]
pub struct Acting {
    pub officer: String,
    pub unit: String,
    pub roles: Vec<String>,
    pub certificate: CertFiles,
}

/// The officer `officer` of `unit` with `roles`. A sample officer needs neither (their own
/// unit and roles are the default; `roles` overrides them); any other officer names a unit the
/// gateway configuration holds and this environment has a certificate for, and their roles.
pub fn acting(
    dir: &Path,
    officer: &str,
    unit: Option<&str>,
    roles: &[String],
) -> Result<Acting, UnitError> {
    lienthong_domain::OfficerCode::parse(officer)
        .map_err(|e| UnitError::Refused(format!("--officer {officer:?}: {e}")))?;
    let sample = sample::officer(officer);
    let unit = match (unit, sample) {
        (Some(unit), _) => unit.to_owned(),
        (None, Some(o)) => sample::unit(o.unit)
            .map(|u| u.code.to_owned())
            .ok_or_else(|| UnitError::Refused("sample table inconsistent".into()))?,
        (None, None) => {
            let known: Vec<&str> = sample::OFFICERS.iter().map(|o| o.code).collect();
            return Err(UnitError::Refused(format!(
                "{officer} is not a sample officer ({}): give their unit with --unit CODE and their roles with --roles",
                known.join(", ")
            )));
        }
    };
    let roles: Vec<String> = match (roles.is_empty(), sample) {
        (false, _) => roles.to_vec(),
        (true, Some(o)) if sample::unit(o.unit).is_some_and(|u| u.code == unit) => {
            o.roles.iter().map(|r| (*r).to_owned()).collect()
        }
        (true, _) => {
            return Err(UnitError::Refused(format!(
                "give the roles of {officer} with --roles (any of receiver, processor, approver, auditor, admin)"
            )));
        }
    };
    for role in &roles {
        if lienthong_gateway::catalog::Role::parse(role).is_none() {
            return Err(UnitError::Refused(format!(
                "--roles: {role:?} is not a role the gateway knows (receiver, processor, approver, auditor, admin)"
            )));
        }
    }
    Ok(Acting {
        officer: officer.to_owned(),
        certificate: unit_certificate(dir, &unit)?,
        unit,
        roles,
    })
}

/// A citizen, as an identity provider vouches for them to a unit's portal: the subject is
/// their personal ID, the only role `citizen`, and the token is bound to the portal unit's
/// certificate (Hà Tĩnh's by default).
pub fn citizen(dir: &Path, personal_id: &str, unit: Option<&str>) -> Result<Acting, UnitError> {
    let id = lienthong_domain::PersonalId::parse(personal_id)
        .map_err(|e| UnitError::Refused(format!("--citizen: {e}")))?;
    let unit = unit.unwrap_or("000.00.00.H42").to_owned();
    Ok(Acting {
        officer: id.as_str().to_owned(),
        certificate: unit_certificate(dir, &unit)?,
        unit,
        roles: vec!["citizen".into()],
    })
}

/// The certificate of a unit the environment's gateway knows.
fn unit_certificate(dir: &Path, unit: &str) -> Result<CertFiles, UnitError> {
    let pki = DevPki::layout(dir);
    let config = gateway_config(dir)?;
    if !config.units.keys().any(|u| u.as_str() == unit) {
        return Err(UnitError::Refused(format!(
            "unit {unit} is not in the gateway configuration; register it with `lienthong-dev unit add --code {unit} …` (see `lienthong-dev unit list`)"
        )));
    }
    certificate_of(&pki, unit).ok_or_else(|| {
        UnitError::Refused(format!(
            "this environment holds no certificate of unit {unit}; register it with `lienthong-dev unit add`"
        ))
    })
}

/// A token for `acting`, bound to its unit's certificate, valid for `minutes` (at most the
/// development issuer's `max_lifetime_seconds`); for a citizen, with the procedure they consent
/// to an auto-fill for.
pub fn token(
    dir: &Path,
    acting: &Acting,
    consent: Option<&str>,
    minutes: u64,
) -> Result<String, UnitError> {
    let config = gateway_config(dir)?;
    let max = config
        .auth
        .issuers
        .iter()
        .find(|i| i.issuer == crate::tokens::DEV_ISSUER)
        .map(|i| i.max_lifetime)
        .ok_or_else(|| {
            UnitError::Refused(format!(
                "the gateway configuration does not trust the development issuer {}",
                crate::tokens::DEV_ISSUER
            ))
        })?;
    if minutes == 0 || minutes * 60 > max.as_secs() {
        return Err(UnitError::Refused(format!(
            "--minutes {minutes}: a token of the development issuer lives 1 to {} minutes (auth.issuers max_lifetime_seconds = {})",
            max.as_secs() / 60,
            max.as_secs()
        )));
    }
    let roles: Vec<&str> = acting.roles.iter().map(String::as_str).collect();
    let spec = crate::tokens::TokenSpec {
        ttl: std::time::Duration::from_secs(minutes * 60),
        procedure: consent.map(str::to_owned),
        ..crate::tokens::TokenSpec::new(&acting.officer, &acting.unit, &roles)
            .bound_to_file(&acting.certificate.cert)
            .map_err(|e| UnitError::Refused(e.to_string()))?
    };
    let pki = DevPki::layout(dir);
    crate::tokens::mint(&pki.issuer.key, &spec).map_err(|e| UnitError::Refused(e.to_string()))
}

/// The environment's gateway configuration, as the gateway loads it.
pub fn gateway_config(dir: &Path) -> Result<Config, UnitError> {
    let path = dir.join("gateway.toml");
    if !path.exists() {
        return Err(UnitError::NoEnvironment(dir.to_owned()));
    }
    load(&path).map_err(UnitError::Config)
}
