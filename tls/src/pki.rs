//! The region PKI: one CA per region (ECDSA P-256, 10 years) issuing every component's
//! certificate, each tagged with its [`PeerIdentity`] as a URI SAN (see [`crate::identity`]).
//!
//! On disk (`edgeplane pki init|issue`), a PKI directory holds
//! - `ca.pem`, `ca.key`: the region CA's certificate and key (key mode 0600);
//! - `<role>-<name>.pem`, `<role>-<name>.key`: a component's chain (leaf then CA) and key
//!   (mode 0600).
//!
//! Files are written to a temporary name and renamed into place, so a watcher
//! ([`crate::ServerCert`], [`crate::ClientCert`], [`crate::RegionTrust`]) never reads half a
//! file. Everything also works in memory ([`RegionCa::generate`], [`RegionCa::issue`]).

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PublicKeyData, SanType, SerialNumber,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::identity::{self, IdentityError, PeerIdentity, Role};

/// The CA certificate's file name in a PKI directory.
pub const CA_CERT_FILE: &str = "ca.pem";
/// The CA key's file name in a PKI directory.
pub const CA_KEY_FILE: &str = "ca.key";
/// How long a region CA is valid.
pub const CA_VALIDITY_DAYS: u32 = 3650;
/// How long a component certificate is valid unless asked otherwise.
pub const DEFAULT_LEAF_DAYS: u32 = 365;
/// Certificates start being valid this long before they are made (clocks differ).
const BACKDATE: Duration = Duration::from_secs(300);

/// Why the PKI could not do something. Each variant names the file or the value.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// A CA is already there and overwriting it was not asked for.
    #[error(
        "{} already exists: a region CA is there (replacing it invalidates every certificate it \
         issued; use --force to replace it anyway)",
        .0.display()
    )]
    CaExists(PathBuf),
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The CA files are there but unusable (not PEM, not a region CA, key not the CA's).
    #[error("region CA {}: {reason}", path.display())]
    BadCa { path: PathBuf, reason: String },
    /// A region, name, DNS name or IP not allowed in a certificate.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// rcgen refused to generate or sign.
    #[error("generating a certificate: {0}")]
    Generate(String),
}

fn generate_err(e: &rcgen::Error) -> PkiError {
    PkiError::Generate(e.to_string())
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> PkiError + '_ {
    move |source| PkiError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn ia5(s: &str) -> Result<rcgen::string::Ia5String, PkiError> {
    rcgen::string::Ia5String::try_from(s.to_owned()).map_err(|e| generate_err(&e))
}

/// A point in time as x509-parser's type, whose `to_datetime()` is the `time` type rcgen takes
/// (the same crate: rcgen parses CA certificates with x509-parser).
fn time_at(when: SystemTime) -> Result<x509_parser::time::ASN1Time, PkiError> {
    let secs = when
        .duration_since(UNIX_EPOCH)
        .map_err(|e| PkiError::Generate(format!("clock before 1970: {e}")))?
        .as_secs();
    let t = x509_parser::time::ASN1Time::from_timestamp(secs as i64)
        .map_err(|e| PkiError::Generate(format!("date out of range: {e}")))?;
    Ok(t)
}

/// Sets the validity to [now - 5 min, now + days].
fn set_validity(params: &mut CertificateParams, days: u32) -> Result<(), PkiError> {
    let now = SystemTime::now();
    params.not_before = time_at(now - BACKDATE)?.to_datetime();
    params.not_after = time_at(now + Duration::from_secs(u64::from(days) * 86_400))?.to_datetime();
    Ok(())
}

fn serial_bytes() -> Result<[u8; 16], PkiError> {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| PkiError::Generate("no randomness for a serial number".into()))?;
    Ok(bytes)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A random positive 16-byte serial number.
fn serial() -> Result<SerialNumber, PkiError> {
    let mut bytes = serial_bytes()?;
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01;
    Ok(SerialNumber::from_slice(&bytes))
}

/// A region's certificate authority: its certificate and signing key.
pub struct RegionCa {
    region: String,
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
    cert_der: CertificateDer<'static>,
}

impl std::fmt::Debug for RegionCa {
    // The key is left out: debug output ends up in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegionCa")
            .field("region", &self.region)
            .field("fingerprint", &self.fingerprint())
            .finish_non_exhaustive()
    }
}

impl RegionCa {
    /// A new CA for `region`: ECDSA P-256, CA basic constraints (leaves only below it), key
    /// usage certSign + cRLSign, common name "Edgeplane region REGION CA" (and a random
    /// organisational unit "CA <hex>", so two CAs never share a subject), URI SAN
    /// `edgeplane://REGION`, valid [`CA_VALIDITY_DAYS`] days.
    pub fn generate(region: &str) -> Result<RegionCa, PkiError> {
        identity::check_label("region", region)?;
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::CommonName, format!("Edgeplane region {region} CA"));
        params
            .distinguished_name
            .push(DnType::OrganizationName, "Edgeplane");
        // Distinct subjects for two CAs of one region name: a peer's issuer is looked up by
        // name, so a certificate of the other CA is then "unknown issuer", not a bad signature.
        params.distinguished_name.push(
            DnType::OrganizationalUnitName,
            format!("CA {}", hex(&serial_bytes()?[..6])),
        );
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.subject_alt_names =
            vec![SanType::URI(ia5(&format!("{}{region}", identity::SCHEME))?)];
        params.serial_number = Some(serial()?);
        set_validity(&mut params, CA_VALIDITY_DAYS)?;
        let key = KeyPair::generate().map_err(|e| generate_err(&e))?;
        let cert = params.self_signed(&key).map_err(|e| generate_err(&e))?;
        Ok(RegionCa {
            region: region.to_owned(),
            cert_pem: cert.pem(),
            cert_der: cert.der().clone(),
            issuer: Issuer::new(params, key),
        })
    }

    /// A CA from its certificate and key in PEM (as written by [`save`](Self::save)); `path`
    /// names where they came from in errors.
    pub fn from_pem(cert_pem: &str, key_pem: &str, path: &Path) -> Result<RegionCa, PkiError> {
        let bad = |reason: String| PkiError::BadCa {
            path: path.to_path_buf(),
            reason,
        };
        let cert_der = CertificateDer::from_pem_slice(cert_pem.as_bytes())
            .map_err(|e| bad(format!("certificate: {e}")))?;
        let region = identity::ca_region(&cert_der)
            .map_err(|e| bad(format!("not an Edgeplane region CA: {e}")))?;
        let key = KeyPair::from_pem(key_pem).map_err(|e| bad(format!("key: {e}")))?;
        let (_, x509) = x509_parser::parse_x509_certificate(&cert_der)
            .map_err(|e| bad(format!("certificate: {e}")))?;
        if x509.public_key().raw != key.subject_public_key_info().as_slice() {
            return Err(bad(format!(
                "{CA_KEY_FILE} is not the key of {CA_CERT_FILE}"
            )));
        }
        let issuer = Issuer::from_ca_cert_der(&cert_der, key)
            .map_err(|e| bad(format!("certificate: {e}")))?;
        Ok(RegionCa {
            region,
            issuer,
            cert_pem: cert_pem.to_owned(),
            cert_der,
        })
    }

    /// The CA of a PKI directory (`DIR/ca.pem`, `DIR/ca.key`).
    pub fn load(dir: &Path) -> Result<RegionCa, PkiError> {
        let (cert, key) = (dir.join(CA_CERT_FILE), dir.join(CA_KEY_FILE));
        let cert_pem = std::fs::read_to_string(&cert).map_err(io_err(&cert))?;
        let key_pem = std::fs::read_to_string(&key).map_err(io_err(&key))?;
        RegionCa::from_pem(&cert_pem, &key_pem, dir)
    }

    /// Writes `DIR/ca.pem` and `DIR/ca.key` (mode 0600), creating `DIR` if needed; refuses
    /// when either exists unless `force`. Returns the two paths.
    pub fn save(&self, dir: &Path, force: bool) -> Result<(PathBuf, PathBuf), PkiError> {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        let (cert, key) = (dir.join(CA_CERT_FILE), dir.join(CA_KEY_FILE));
        if !force {
            for path in [&cert, &key] {
                if path.exists() {
                    return Err(PkiError::CaExists(path.clone()));
                }
            }
        }
        write_file(&key, &self.issuer.key().serialize_pem(), 0o600)?;
        write_file(&cert, &self.cert_pem, 0o644)?;
        Ok((cert, key))
    }

    /// The region this CA certifies.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// The CA certificate in PEM: what every component trusts.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA certificate in DER.
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    /// SHA-256 fingerprint of the CA certificate.
    pub fn fingerprint(&self) -> String {
        crate::fingerprint(&self.cert_der)
    }

    /// A certificate for one component of this region: ECDSA P-256, usable for server and
    /// client auth, SANs `localhost`, `127.0.0.1`, the request's DNS names and IPs, and the
    /// URI `edgeplane://<region>/<role>/<name>`; common name the name, organisational unit the
    /// role.
    pub fn issue(&self, request: &LeafRequest) -> Result<IssuedCert, PkiError> {
        let identity = PeerIdentity::new(&self.region, request.role, &request.name)?;
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::CommonName, request.name.clone());
        params
            .distinguished_name
            .push(DnType::OrganizationalUnitName, request.role.as_str());
        params.distinguished_name.push(
            DnType::OrganizationName,
            format!("Edgeplane region {}", self.region),
        );
        let mut dns = vec!["localhost".to_owned()];
        for d in &request.dns {
            if !dns.contains(d) {
                dns.push(d.clone());
            }
        }
        let mut ips = vec![IpAddr::V4(Ipv4Addr::LOCALHOST)];
        for ip in &request.ips {
            if !ips.contains(ip) {
                ips.push(*ip);
            }
        }
        let mut sans = Vec::new();
        for d in &dns {
            sans.push(SanType::DnsName(ia5(d).map_err(|_| {
                IdentityError::Invalid {
                    what: "DNS name",
                    value: d.clone(),
                    reason: "not ASCII",
                }
            })?));
        }
        sans.extend(ips.iter().map(|ip| SanType::IpAddress(*ip)));
        sans.push(SanType::URI(ia5(&identity.uri())?));
        params.subject_alt_names = sans;
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.serial_number = Some(serial()?);
        set_validity(&mut params, request.days.max(1))?;
        let key = KeyPair::generate().map_err(|e| generate_err(&e))?;
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(|e| generate_err(&e))?;
        Ok(IssuedCert {
            identity,
            fingerprint: crate::fingerprint(cert.der()),
            cert_pem: format!("{}{}", cert.pem(), self.cert_pem),
            key_pem: key.serialize_pem(),
        })
    }
}

/// What to put in a component certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeafRequest {
    pub role: Role,
    /// The component's name (e.g. `dme-1`, or a cloudlet's `org.name`).
    pub name: String,
    /// DNS names besides `localhost`.
    pub dns: Vec<String>,
    /// IP addresses besides `127.0.0.1`.
    pub ips: Vec<IpAddr>,
    /// Validity in days from now.
    pub days: u32,
}

impl LeafRequest {
    /// A request for this role and name, no extra SANs, [`DEFAULT_LEAF_DAYS`].
    pub fn new(role: Role, name: &str) -> LeafRequest {
        LeafRequest {
            role,
            name: name.to_owned(),
            dns: Vec::new(),
            ips: Vec::new(),
            days: DEFAULT_LEAF_DAYS,
        }
    }
}

/// A component certificate issued by a [`RegionCa`].
#[derive(Clone)]
pub struct IssuedCert {
    pub identity: PeerIdentity,
    /// The leaf then the CA certificate, PEM.
    pub cert_pem: String,
    pub key_pem: String,
    /// SHA-256 fingerprint of the leaf.
    pub fingerprint: String,
}

impl std::fmt::Debug for IssuedCert {
    // The key is left out: debug output ends up in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedCert")
            .field("identity", &self.identity)
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

impl IssuedCert {
    /// The chain and key in DER, as rustls takes them.
    pub fn pair(&self) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), PkiError> {
        let bad = |e: rustls_pki_types::pem::Error| PkiError::Generate(e.to_string());
        let certs = CertificateDer::pem_slice_iter(self.cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(bad)?;
        let key = PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes()).map_err(bad)?;
        Ok((certs, key))
    }

    /// Writes `DIR/<role>-<name>.pem` and `.key` (mode 0600), replacing earlier ones (the key
    /// first, each renamed into place). Returns the two paths.
    pub fn save(&self, dir: &Path) -> Result<(PathBuf, PathBuf), PkiError> {
        let (cert, key) = leaf_paths(dir, self.identity.role, &self.identity.name);
        write_file(&key, &self.key_pem, 0o600)?;
        write_file(&cert, &self.cert_pem, 0o644)?;
        Ok((cert, key))
    }
}

/// Where [`IssuedCert::save`] puts a component's files: `DIR/<role>-<name>.pem`, `.key`.
pub fn leaf_paths(dir: &Path, role: Role, name: &str) -> (PathBuf, PathBuf) {
    let stem = format!("{role}-{name}");
    (
        dir.join(format!("{stem}.pem")),
        dir.join(format!("{stem}.key")),
    )
}

/// `edgeplane pki init`: a new CA for `region`, saved in `dir`.
pub fn init(dir: &Path, region: &str, force: bool) -> Result<RegionCa, PkiError> {
    // Checked before generating: a refusal costs nothing.
    if !force {
        for name in [CA_CERT_FILE, CA_KEY_FILE] {
            let path = dir.join(name);
            if path.exists() {
                return Err(PkiError::CaExists(path));
            }
        }
    }
    let ca = RegionCa::generate(region)?;
    ca.save(dir, force)?;
    Ok(ca)
}

/// A region's PKI in `dir` as a single-host region (`edgeplane up`) needs it: the CA made
/// if missing (an existing one must be `region`'s), and each request's certificate issued if
/// its files are missing. Existing certificates are kept, so restarts change nothing.
pub fn ensure(dir: &Path, region: &str, requests: &[LeafRequest]) -> Result<RegionCa, PkiError> {
    let ca = if dir.join(CA_CERT_FILE).exists() {
        let ca = RegionCa::load(dir)?;
        if ca.region() != region {
            return Err(PkiError::BadCa {
                path: dir.join(CA_CERT_FILE),
                reason: format!(
                    "it is the CA of region {:?}, not {region:?} (move the directory away to \
                     start a new PKI)",
                    ca.region()
                ),
            });
        }
        ca
    } else {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        init(dir, region, false)?
    };
    for request in requests {
        let (cert, key) = leaf_paths(dir, request.role, &request.name);
        if !(cert.exists() && key.exists()) {
            ca.issue(request)?.save(dir)?;
        }
    }
    Ok(ca)
}

/// `edgeplane pki issue`: a component certificate from the CA in `dir`, saved beside it.
/// Returns it with its certificate and key paths.
pub fn issue(
    dir: &Path,
    request: &LeafRequest,
) -> Result<(IssuedCert, PathBuf, PathBuf), PkiError> {
    let ca = RegionCa::load(dir)?;
    let issued = ca.issue(request)?;
    let (cert, key) = issued.save(dir)?;
    Ok((issued, cert, key))
}

/// Writes `contents` to a new file beside `path` with this mode, then renames it over `path`.
fn write_file(path: &Path, contents: &str, mode: u32) -> Result<(), PkiError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
        let mut file = options.open(&tmp)?;
        // The mode given at creation is masked by the umask, and an old temporary file keeps
        // its own: set it explicitly.
        #[cfg(unix)]
        file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(mode))?;
        file.write_all(contents.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(io_err(path))
}
