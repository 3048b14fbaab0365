//! A development PKI (rcgen): a CA, server certificates for the gateway and the mock database,
//! and client certificates that name a connected unit. For sandboxes and tests only; production
//! units get their certificates from the real issuing authority.

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use std::path::{Path, PathBuf};
use time::{Duration, OffsetDateTime};

/// Why a certificate could not be made or written.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("certificate generation failed: {0}")]
    Rcgen(#[from] rcgen::Error),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {detail}; correct or delete the file")]
    Saved { path: PathBuf, detail: String },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A name a server is reached by, as its certificate names it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Host {
    /// A DNS name (ASCII; an internationalised name in its `xn--` form).
    Dns(String),
    Ip(std::net::IpAddr),
}

impl std::fmt::Display for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Host::Dns(name) => f.write_str(name),
            Host::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

/// Why a host name was refused.
#[derive(Debug, thiserror::Error)]
#[error(
    "{value:?} is not a host name or IP address a server certificate can name: {why}. Give a DNS name such as lienthong.sandbox.tinh.gov.vn (internationalised names in their xn-- form) or an address such as 10.0.0.5"
)]
pub struct BadHost {
    value: String,
    why: &'static str,
}

impl std::str::FromStr for Host {
    type Err = BadHost;

    fn from_str(value: &str) -> Result<Self, BadHost> {
        let bad = |why| BadHost {
            value: value.chars().take(80).collect(),
            why,
        };
        let trimmed = value.trim();
        if let Ok(ip) = trimmed.trim_matches(['[', ']']).parse() {
            return Ok(Host::Ip(ip));
        }
        let name = trimmed.trim_end_matches('.').to_ascii_lowercase();
        if name.is_empty() {
            return Err(bad("it is empty"));
        }
        if name.len() > 253 {
            return Err(bad("it is longer than 253 characters"));
        }
        if name.contains('*') {
            return Err(bad("wildcards are not issued; name each host"));
        }
        if name.contains(':') || name.contains('/') {
            return Err(bad("give the host alone, without a scheme, port or path"));
        }
        for label in name.split('.') {
            if label.is_empty() || label.len() > 63 {
                return Err(bad("each dot-separated label must be 1 to 63 characters"));
            }
            if !label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            {
                return Err(bad("a label may hold only letters a-z, digits and '-'"));
            }
            if label.starts_with('-') || label.ends_with('-') {
                return Err(bad("a label may not start or end with '-'"));
            }
        }
        if name
            .rsplit('.')
            .next()
            .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(bad("it looks like an IP address but is not a valid one"));
        }
        Ok(Host::Dns(name))
    }
}

/// The names the development server certificates carry: always `localhost` and 127.0.0.1, and
/// the hosts a team reaches its sandbox by.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerHosts {
    extra: Vec<Host>,
}

impl ServerHosts {
    /// The file under the PKI directory that remembers the extra hosts, one per line.
    pub const FILE: &'static str = "server-hosts";

    /// `localhost` and 127.0.0.1 with `extra` (duplicates dropped, order kept).
    pub fn new(extra: impl IntoIterator<Item = Host>) -> Self {
        let mut hosts = Self::default();
        for host in extra {
            if !hosts.all().contains(&host) {
                hosts.extra.push(host);
            }
        }
        hosts
    }

    /// Every name, the two local ones first.
    pub fn all(&self) -> Vec<Host> {
        let mut all = vec![
            Host::Dns("localhost".to_owned()),
            Host::Ip([127, 0, 0, 1].into()),
        ];
        all.extend(self.extra.iter().cloned());
        all
    }

    /// The hosts beyond the local ones.
    pub fn extra(&self) -> &[Host] {
        &self.extra
    }

    /// Reads the hosts saved in `pki_dir` (none when the file is absent).
    pub fn load(pki_dir: &Path) -> Result<Self, PkiError> {
        let path = pki_dir.join(Self::FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(source) => return Err(PkiError::Read { path, source }),
        };
        let hosts = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| {
                l.parse().map_err(|e: BadHost| PkiError::Saved {
                    path: path.clone(),
                    detail: e.to_string(),
                })
            })
            .collect::<Result<Vec<Host>, _>>()?;
        Ok(Self::new(hosts))
    }

    /// Saves the extra hosts in `pki_dir`.
    pub fn save(&self, pki_dir: &Path) -> Result<(), PkiError> {
        let mut text = String::from(
            "# Hosts the development server certificates name besides localhost and 127.0.0.1.\n# Change them with `lienthong-dev pki --host …`; the server certificates are reissued.\n",
        );
        for host in &self.extra {
            text.push_str(&host.to_string());
            text.push('\n');
        }
        write(&pki_dir.join(Self::FILE), &text)
    }
}

impl std::fmt::Display for ServerHosts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<String> = self.all().iter().map(Host::to_string).collect();
        f.write_str(&names.join(", "))
    }
}

/// A certificate and its key, as PEM files on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// When a certificate is valid.
#[derive(Debug, Clone, Copy)]
pub enum Validity {
    /// From an hour ago for the given number of days.
    Days(i64),
    /// Expired yesterday (for testing refusals).
    Expired,
}

impl Validity {
    fn apply(self, params: &mut CertificateParams) {
        let now = OffsetDateTime::now_utc();
        match self {
            Validity::Days(d) => {
                params.not_before = now - Duration::hours(1);
                params.not_after = now + Duration::days(d);
            }
            Validity::Expired => {
                params.not_before = now - Duration::days(30);
                params.not_after = now - Duration::days(1);
            }
        }
    }
}

/// The URI SAN that names a connected unit in its client certificate.
pub fn unit_uri(unit_code: &str) -> String {
    format!("urn:lienthong:unit:{unit_code}")
}

/// A development certificate authority that writes what it issues into one directory.
pub struct DevCa {
    dir: PathBuf,
    issuer: Issuer<'static, KeyPair>,
    /// The CA certificate file.
    pub ca_cert: PathBuf,
}

/// Writes a file of the PKI: directories it creates are 0700, private keys (`*.key`) and key
/// bundles (`*.p12`) 0600.
fn write(path: &Path, contents: impl AsRef<[u8]>) -> Result<(), PkiError> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
    let failed = |path: &Path| {
        let path = path.to_owned();
        move |source| PkiError::Write { path, source }
    };
    if let Some(parent) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .map_err(failed(parent))?;
    }
    let secret = path.extension().is_some_and(|e| e == "key" || e == "p12");
    let mode = if secret { 0o600 } else { 0o644 };
    use std::io::Write;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .and_then(|mut f| f.write_all(contents.as_ref()))
        .map_err(failed(path))?;
    // An existing file keeps its mode on open: set it.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(failed(path))
}

/// Writes a secret (mode 0600, parent directories 0700).
pub fn write_secret(path: &Path, contents: &str) -> Result<(), PkiError> {
    if path.extension().is_some_and(|e| e == "key") {
        write(path, contents)
    } else {
        Err(PkiError::Write {
            path: path.to_owned(),
            source: std::io::Error::other("a secret's file name must end in .key"),
        })
    }
}

/// Writes a key bundle (`*.p12`, mode 0600, parent directories 0700).
pub fn write_secret_bytes(path: &Path, contents: &[u8]) -> Result<(), PkiError> {
    if path.extension().is_some_and(|e| e == "p12") {
        write(path, contents)
    } else {
        Err(PkiError::Write {
            path: path.to_owned(),
            source: std::io::Error::other("a key bundle's file name must end in .p12"),
        })
    }
}

/// Makes an existing PKI directory private: the directories 0700, every `*.key` 0600.
pub fn tighten(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            tighten(&path)?;
        } else if path.extension().is_some_and(|e| e == "key") {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        }
    }
    Ok(())
}

impl DevCa {
    /// Creates a new CA named `name` and writes `ca.pem` (and `ca.key`) into `dir`.
    pub fn create(dir: &Path, name: &str) -> Result<Self, PkiError> {
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "Liên Thông development PKI");
        dn.push(DnType::CommonName, name);
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        Validity::Days(3650).apply(&mut params);
        let key = KeyPair::generate()?;
        let key_pem = key.serialize_pem();
        let certified = CertifiedIssuer::self_signed(params, key)?;
        let issuer = Issuer::from_ca_cert_pem(&certified.pem(), KeyPair::from_pem(&key_pem)?)?;
        let ca_cert = dir.join("ca.pem");
        write(&ca_cert, certified.pem())?;
        write(&dir.join("ca.key"), &key_pem)?;
        Ok(Self {
            dir: dir.to_owned(),
            issuer,
            ca_cert,
        })
    }

    /// Opens a CA created earlier in `dir` (its `ca.pem` and `ca.key`), to issue more.
    pub fn open(dir: &Path) -> Result<Self, PkiError> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read_to_string(&path).map_err(|source| PkiError::Read { path, source })
        };
        let ca_cert = dir.join("ca.pem");
        let issuer =
            Issuer::from_ca_cert_pem(&read("ca.pem")?, KeyPair::from_pem(&read("ca.key")?)?)?;
        Ok(Self {
            dir: dir.to_owned(),
            issuer,
            ca_cert,
        })
    }

    fn issue(
        &self,
        file_stem: &str,
        mut params: CertificateParams,
        validity: Validity,
    ) -> Result<CertFiles, PkiError> {
        validity.apply(&mut params);
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        let files = CertFiles {
            cert: self.dir.join(format!("{file_stem}.pem")),
            key: self.dir.join(format!("{file_stem}.key")),
        };
        write(&files.cert, cert.pem())?;
        write(&files.key, key.serialize_pem())?;
        Ok(files)
    }

    /// A server certificate for `localhost`, 127.0.0.1 and the other hosts given.
    pub fn server(
        &self,
        file_stem: &str,
        common_name: &str,
        hosts: &ServerHosts,
    ) -> Result<CertFiles, PkiError> {
        let mut params = CertificateParams::default();
        for host in hosts.all() {
            params.subject_alt_names.push(match host {
                Host::Dns(name) => SanType::DnsName(name.try_into()?),
                Host::Ip(ip) => SanType::IpAddress(ip),
            });
        }
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.issue(file_stem, params, Validity::Days(825))
    }

    /// A client certificate naming a connected unit: CN = unit code, O = unit name, and the URI
    /// SAN `urn:lienthong:unit:<code>`. The stem may name a subdirectory ("units/ha-tinh").
    pub fn unit_client(
        &self,
        file_stem: &str,
        unit_code: &str,
        unit_name: &str,
        validity: Validity,
    ) -> Result<CertFiles, PkiError> {
        self.issue(file_stem, unit_params(unit_code, unit_name)?, validity)
    }
}

fn unit_params(unit_code: &str, unit_name: &str) -> Result<CertificateParams, PkiError> {
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::CommonName, unit_code);
    params
        .distinguished_name
        .push(DnType::OrganizationName, unit_name);
    params
        .subject_alt_names
        .push(SanType::URI(unit_uri(unit_code).try_into()?));
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    Ok(params)
}

/// A token issuer's Ed25519 key pair, as PEM files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerFiles {
    /// PKCS#8 private key, for minting development tokens.
    pub key: PathBuf,
    /// SubjectPublicKeyInfo public key, for the gateway's configuration.
    pub public_key: PathBuf,
}

/// Creates an Ed25519 key pair for a development token issuer in `dir`.
pub fn issuer_keys(dir: &Path, file_stem: &str) -> Result<IssuerFiles, PkiError> {
    let key = KeyPair::generate_for(&rcgen::PKCS_ED25519)?;
    let files = IssuerFiles {
        key: dir.join(format!("{file_stem}.key")),
        public_key: dir.join(format!("{file_stem}.pub.pem")),
    };
    write(&files.key, key.serialize_pem())?;
    write(&files.public_key, key.public_key_pem())?;
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_names_or_addresses_a_certificate_can_carry() {
        let host = |s: &str| s.parse::<Host>();
        assert_eq!(
            host("LienThong.Sandbox.tinh.gov.vn.").unwrap(),
            Host::Dns("lienthong.sandbox.tinh.gov.vn".into())
        );
        assert_eq!(host("10.0.0.5").unwrap(), Host::Ip([10, 0, 0, 5].into()));
        assert!(matches!(host("[fd00::5]").unwrap(), Host::Ip(ip) if ip.is_ipv6()));
        assert_eq!(
            host("xn--h-tnh-9wa.vn").unwrap().to_string(),
            "xn--h-tnh-9wa.vn"
        );
        for bad in [
            "",
            "hà-tĩnh.vn",
            "*.tinh.gov.vn",
            "https://sandbox.vn",
            "sandbox.vn:50051",
            "-sandbox.vn",
            "a..b",
            "10.0.0.300",
            &"a".repeat(64),
        ] {
            let e = host(bad).unwrap_err().to_string();
            assert!(e.contains("is not a host name"), "{bad}: {e}");
        }
        let hosts = ServerHosts::new([host("localhost").unwrap(), host("10.0.0.5").unwrap()]);
        assert_eq!(hosts.to_string(), "localhost, 127.0.0.1, 10.0.0.5");
    }

    #[test]
    fn saved_hosts_come_back_as_they_were_given() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            ServerHosts::load(dir.path()).unwrap(),
            ServerHosts::default()
        );
        let hosts = ServerHosts::new(["sandbox.vn".parse().unwrap(), "10.0.0.5".parse().unwrap()]);
        hosts.save(dir.path()).unwrap();
        assert_eq!(ServerHosts::load(dir.path()).unwrap(), hosts);
        std::fs::write(dir.path().join(ServerHosts::FILE), "not a host\n").unwrap();
        let e = ServerHosts::load(dir.path()).unwrap_err().to_string();
        assert!(e.contains("correct or delete the file"), "{e}");
    }
}
