//! Station credentials: a station CA kept by the gateway, one client certificate per station, a revocation list,
//! and the TLS material of the broker connections (`hotspot-gateway station ...`, `docs/configuration.md`).
//!
//! # Files (`storage.dir/stations/`, folder mode 0700)
//! - `ca.pem`, `ca.key` (0600): the station CA (ECDSA P-256, fixed name [`CA_COMMON_NAME`], valid 10 years), made
//!   on the first `station add` or at the first start of a gateway with station authentication.
//! - `stations.json` (0600): every certificate issued: station id, serial, SHA-256 fingerprint of the certificate,
//!   dates, revocation time. The embedded broker accepts a certificate only if it is listed here and not revoked.
//! - `crl.pem`: the X.509 revocation list signed by the CA (mosquitto's `crlfile`); rewritten on every revocation.
//! - `broker.pem`, `broker.key` (0600): mosquitto's server certificate (`station broker-cert`).
//! - `stations.lock`: held while any of the files above changes, so the CLI and the running gateway never
//!   interleave their updates.
//!
//! # Identities
//! A station's certificate carries its station id as common name (CN) and nothing else that matters: ids are the
//! protocol's 1..=64 characters of `A-Z a-z 0-9 - _ .`, used unchanged as CN, as mosquitto user name (`%u` in the
//! ACL) and in topics; no mapping is needed because the embedded broker does not use rumqttd's tenants (see
//! [`crate::station_listener`]). The gateway's own certificate for an external broker has CN [`GATEWAY_IDENTITY`],
//! which contains `@` and so can never be a station id; it is minted in memory at each start, as is the embedded
//! broker's server certificate.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use hotspot_central::fsutil::{self, FsError};
use hotspot_central::pki;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose,
    RevokedCertParams, SerialNumber,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use tokio::sync::watch;
use tracing::{error, info};

use crate::config::Config;

/// Common name of the station CA.
pub const CA_COMMON_NAME: &str = "Hotspot Edge station CA";
/// Common name (so mosquitto user name) of the gateway's own broker certificate.
pub const GATEWAY_IDENTITY: &str = "gateway@hotspot-edge";
/// Validity of a station certificate, days.
pub const STATION_VALIDITY_DAYS: i64 = 825;
/// Validity of the CA, days.
const CA_VALIDITY_DAYS: i64 = 3650;
/// A revocation list says when the next one is due; OpenSSL (mosquitto) refuses every client once that date has
/// passed, so it is set to the CA's lifetime: a new list is written on every revocation anyway.
const CRL_VALIDITY_DAYS: i64 = 3650;
/// Largest registry file read.
const REGISTRY_LIMIT: u64 = 16 * 1024 * 1024;

/// Errors of the station credentials.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StationError {
    /// A file operation failed.
    #[error(transparent)]
    Fs(#[from] FsError),
    /// A certificate or key file is unusable.
    #[error(transparent)]
    Pki(#[from] pki::PkiError),
    /// The lock or another file cannot be used.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// OS error.
        source: std::io::Error,
    },
    /// Certificate generation failed.
    #[error("certificate generation failed for {what}: {source}")]
    Generate {
        /// What was being made.
        what: String,
        /// rcgen's error.
        source: rcgen::Error,
    },
    /// Not a valid station id.
    #[error("station id {0:?} must be 1..=64 characters of A-Z a-z 0-9 - _ .")]
    BadId(String),
    /// The station already has a certificate in force.
    #[error(
        "station {0} already has an active certificate; revoke it first (hotspot-gateway station revoke --id {0})"
    )]
    Active(String),
    /// Nothing to revoke.
    #[error("station {0} has no active certificate")]
    NotFound(String),
    /// A server name is not a DNS name or an IP address.
    #[error("{0:?} is neither a DNS name nor an IP address")]
    BadName(String),
    /// The registry file does not parse.
    #[error("{path}: not a station registry: {what}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Why.
        what: String,
    },
    /// A station file would be overwritten.
    #[error("{0} already exists; refusing to overwrite it")]
    Exists(PathBuf),
    /// TLS configuration.
    #[error("TLS: {0}")]
    Tls(String),
    /// The station listener cannot bind its address.
    #[error("station TLS listener cannot listen on {addr}: {source}")]
    Listen {
        /// Address.
        addr: std::net::SocketAddr,
        /// OS error.
        source: std::io::Error,
    },
}

fn gen_err(what: &str) -> impl FnOnce(rcgen::Error) -> StationError + '_ {
    move |source| StationError::Generate {
        what: what.to_owned(),
        source,
    }
}

/// One certificate issued to a station.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuedCert {
    /// The station id (the certificate's CN).
    pub station_id: String,
    /// Serial number, lower-case hex.
    pub serial: String,
    /// SHA-256 of the certificate (DER), lower-case hex.
    pub fingerprint: String,
    /// When it was issued (RFC 3339).
    pub issued_at: String,
    /// When it expires (RFC 3339).
    pub not_after: String,
    /// When it was revoked (RFC 3339), if it was.
    pub revoked_at: Option<String>,
}

impl IssuedCert {
    /// Not revoked and not expired at `now`.
    pub fn is_active(&self, now: time::OffsetDateTime) -> bool {
        self.revoked_at.is_none()
            && time::OffsetDateTime::parse(&self.not_after, &Rfc3339).is_ok_and(|t| t > now)
    }

    /// `active`, `revoked` or `expired`.
    pub fn status(&self, now: time::OffsetDateTime) -> &'static str {
        if self.revoked_at.is_some() {
            "revoked"
        } else if self.is_active(now) {
            "active"
        } else {
            "expired"
        }
    }
}

/// `stations.json`: every certificate ever issued.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registry {
    /// Number of the last revocation list written.
    pub crl_number: u64,
    /// Certificates, in issue order.
    pub certificates: Vec<IssuedCert>,
}

impl Registry {
    /// The certificate with this fingerprint.
    pub fn lookup(&self, fingerprint: &str) -> Option<&IssuedCert> {
        self.certificates
            .iter()
            .find(|c| c.fingerprint == fingerprint)
    }

    /// The station id of an active certificate with this fingerprint.
    pub fn active_station(&self, fingerprint: &str) -> Option<&str> {
        self.lookup(fingerprint)
            .filter(|c| c.is_active(time::OffsetDateTime::now_utc()))
            .map(|c| c.station_id.as_str())
    }
}

/// A freshly issued station credential (the private key exists only here and in the files written from it).
#[derive(Debug)]
pub struct Issued {
    /// The station's certificate (PEM).
    pub cert_pem: String,
    /// Its private key (PEM, PKCS#8).
    pub key_pem: String,
    /// The station CA (PEM), for the station to verify the broker.
    pub ca_pem: String,
    /// What the registry recorded.
    pub record: IssuedCert,
}

/// A certificate chain and private key held in memory.
#[derive(Debug)]
pub struct Identity {
    /// End-entity certificate first.
    pub chain: Vec<CertificateDer<'static>>,
    /// Its key.
    pub key: PrivateKeyDer<'static>,
}

fn now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

fn random_serial() -> Result<SerialNumber, StationError> {
    let mut bytes = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .map_err(|_| StationError::Tls("no system randomness".into()))?;
    // Positive and without a leading zero byte, so the DER integer is exactly these 16 bytes.
    bytes[0] = (bytes[0] & 0x7f) | 0x10;
    Ok(SerialNumber::from_slice(&bytes))
}

fn ca_params() -> Result<CertificateParams, StationError> {
    let mut p = CertificateParams::new(Vec::<String>::new()).map_err(gen_err("station CA"))?;
    p.distinguished_name
        .push(DnType::CommonName, CA_COMMON_NAME);
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let t = now();
    p.not_before = t - time::Duration::days(1);
    p.not_after = t + time::Duration::days(CA_VALIDITY_DAYS);
    Ok(p)
}

fn leaf_params(
    cn: &str,
    names: &[String],
    server: bool,
    days: i64,
) -> Result<CertificateParams, StationError> {
    let mut p = CertificateParams::new(names.to_vec()).map_err(gen_err(cn))?;
    p.distinguished_name.push(DnType::CommonName, cn);
    p.distinguished_name
        .push(DnType::OrganizationName, "Hotspot Edge");
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![if server {
        ExtendedKeyUsagePurpose::ServerAuth
    } else {
        ExtendedKeyUsagePurpose::ClientAuth
    }];
    p.serial_number = Some(random_serial()?);
    let t = now();
    p.not_before = t - time::Duration::days(1);
    p.not_after = t + time::Duration::days(days);
    Ok(p)
}

/// Checks that every server name is a DNS name or an IP address.
pub fn check_server_names(names: &[String]) -> Result<(), StationError> {
    for n in names {
        if rustls::pki_types::ServerName::try_from(n.as_str()).is_err() || n.contains('*') {
            return Err(StationError::BadName(n.clone()));
        }
    }
    Ok(())
}

/// Replaces `path` atomically with a 0600 file.
fn write_private_atomic(path: &Path, bytes: &[u8]) -> Result<(), StationError> {
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    fsutil::write_new_private(&tmp, bytes)?;
    std::fs::rename(&tmp, path).map_err(|source| StationError::Io {
        path: path.to_owned(),
        source,
    })
}

/// An exclusive lock on the stations folder, released on drop.
struct FolderLock(std::fs::File);

impl Drop for FolderLock {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

fn lock_folder(dir: &Path) -> Result<FolderLock, StationError> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let path = dir.join("stations.lock");
    let io = |source| StationError::Io {
        path: path.clone(),
        source,
    };
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&path)
        .map_err(io)?;
    f.lock().map_err(io)?;
    Ok(FolderLock(f))
}

/// Reads a registry file (absent: empty).
pub fn read_registry(path: &Path) -> Result<Registry, StationError> {
    if !path.exists() {
        return Ok(Registry::default());
    }
    let text = fsutil::read_to_string(path, REGISTRY_LIMIT)?;
    serde_json::from_str(&text).map_err(|e| StationError::Corrupt {
        path: path.to_owned(),
        what: e.to_string(),
    })
}

/// The station CA of one gateway.
pub struct StationCa {
    dir: PathBuf,
    issuer: Issuer<'static, KeyPair>,
    ca_pem: String,
}

impl std::fmt::Debug for StationCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StationCa")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl StationCa {
    /// The stations folder of a gateway whose state is in `storage_dir`.
    pub fn dir_for(storage_dir: &Path) -> PathBuf {
        storage_dir.join("stations")
    }

    /// Opens the CA in `dir`, making it (with an empty registry and revocation list) if there is none.
    pub fn open_or_create(dir: &Path) -> Result<Self, StationError> {
        fsutil::create_dir_private(dir)?;
        let _lock = lock_folder(dir)?;
        let key_path = dir.join("ca.key");
        if !key_path.exists() {
            let key = KeyPair::generate().map_err(gen_err("station CA"))?;
            let cert = ca_params()?
                .self_signed(&key)
                .map_err(gen_err("station CA"))?;
            fsutil::write_new_private(&key_path, key.serialize_pem().as_bytes())?;
            fsutil::write_atomic(&dir.join("ca.pem"), cert.pem().as_bytes())?;
            info!(dir = %dir.display(), "station CA created");
        }
        let ca = Self::load(dir)?;
        let crl = dir.join("crl.pem");
        if !crl.exists() {
            let reg = read_registry(&ca.registry_path())?;
            ca.write_crl(&reg)?;
            ca.save_registry(&reg)?;
        }
        Ok(ca)
    }

    fn load(dir: &Path) -> Result<Self, StationError> {
        let key_path = dir.join("ca.key");
        let pem = fsutil::read_to_string(&key_path, 64 * 1024)?;
        let key = KeyPair::from_pem(&pem).map_err(|e| StationError::Corrupt {
            path: key_path.clone(),
            what: format!("not a usable private key: {e}"),
        })?;
        let ca_pem = fsutil::read_to_string(&dir.join("ca.pem"), 64 * 1024)?;
        Ok(Self {
            dir: dir.to_owned(),
            issuer: Issuer::new(ca_params()?, key),
            ca_pem,
        })
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `ca.pem`.
    pub fn ca_path(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// `crl.pem`.
    pub fn crl_path(&self) -> PathBuf {
        self.dir.join("crl.pem")
    }

    /// `stations.json`.
    pub fn registry_path(&self) -> PathBuf {
        self.dir.join("stations.json")
    }

    /// The CA certificate (PEM).
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The CA certificate (DER).
    pub fn ca_der(&self) -> Result<CertificateDer<'static>, StationError> {
        let certs = pki::load_certs(&self.ca_path())?;
        certs
            .into_iter()
            .next()
            .ok_or_else(|| StationError::Tls("ca.pem holds no certificate".into()))
    }

    fn save_registry(&self, reg: &Registry) -> Result<(), StationError> {
        let text = serde_json::to_vec_pretty(reg).map_err(|e| StationError::Corrupt {
            path: self.registry_path(),
            what: e.to_string(),
        })?;
        write_private_atomic(&self.registry_path(), &text)
    }

    fn write_crl(&self, reg: &Registry) -> Result<(), StationError> {
        let t = now();
        let revoked_certs = reg
            .certificates
            .iter()
            .filter_map(|c| {
                let at = c.revoked_at.as_deref()?;
                Some(RevokedCertParams {
                    serial_number: SerialNumber::from_slice(&unhex(&c.serial)?),
                    revocation_time: time::OffsetDateTime::parse(at, &Rfc3339).unwrap_or(t),
                    reason_code: None,
                    invalidity_date: None,
                })
            })
            .collect();
        let params = CertificateRevocationListParams {
            this_update: t - time::Duration::minutes(5),
            next_update: t + time::Duration::days(CRL_VALIDITY_DAYS),
            crl_number: SerialNumber::from(reg.crl_number.max(1)),
            issuing_distribution_point: None,
            revoked_certs,
            key_identifier_method: KeyIdMethod::Sha256,
        };
        let crl = params
            .signed_by(&self.issuer)
            .map_err(gen_err("revocation list"))?;
        let pem = crl.pem().map_err(gen_err("revocation list"))?;
        fsutil::write_atomic(&self.crl_path(), pem.as_bytes())?;
        Ok(())
    }

    /// Every certificate issued.
    pub fn list(&self) -> Result<Vec<IssuedCert>, StationError> {
        Ok(read_registry(&self.registry_path())?.certificates)
    }

    /// Issues a client certificate for station `id` and records it. Refused while `id` has an active one.
    pub fn issue(&self, id: &str) -> Result<Issued, StationError> {
        if hotspot_device_protocols::station::validate_id(id).is_err() {
            return Err(StationError::BadId(id.to_owned()));
        }
        let _lock = lock_folder(&self.dir)?;
        let mut reg = read_registry(&self.registry_path())?;
        if reg
            .certificates
            .iter()
            .any(|c| c.station_id == id && c.is_active(now()))
        {
            return Err(StationError::Active(id.to_owned()));
        }
        let key = KeyPair::generate().map_err(gen_err(id))?;
        let params = leaf_params(id, &[], false, STATION_VALIDITY_DAYS)?;
        let serial = params
            .serial_number
            .as_ref()
            .map(|s| hex(&s.to_bytes()))
            .unwrap_or_default();
        let not_after = params.not_after;
        let cert = params.signed_by(&key, &self.issuer).map_err(gen_err(id))?;
        let record = IssuedCert {
            station_id: id.to_owned(),
            serial,
            fingerprint: pki::fingerprint(cert.der()),
            issued_at: rfc3339(now()),
            not_after: rfc3339(not_after),
            revoked_at: None,
        };
        reg.certificates.push(record.clone());
        self.save_registry(&reg)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            ca_pem: self.ca_pem.clone(),
            record,
        })
    }

    /// Revokes every active certificate of station `id`: the revocation list first (mosquitto), then the registry
    /// (the embedded broker), so a failure half-way leaves the station refused by mosquitto and a second run completes.
    pub fn revoke(&self, id: &str) -> Result<Vec<IssuedCert>, StationError> {
        let _lock = lock_folder(&self.dir)?;
        let mut reg = read_registry(&self.registry_path())?;
        let at = rfc3339(now());
        let mut revoked = Vec::new();
        for c in &mut reg.certificates {
            if c.station_id == id && c.revoked_at.is_none() {
                c.revoked_at = Some(at.clone());
                revoked.push(c.clone());
            }
        }
        if revoked.is_empty() {
            return Err(StationError::NotFound(id.to_owned()));
        }
        reg.crl_number += 1;
        self.write_crl(&reg)?;
        self.save_registry(&reg)?;
        Ok(revoked)
    }

    fn mint(
        &self,
        cn: &str,
        names: &[String],
        server: bool,
        days: i64,
    ) -> Result<(rcgen::Certificate, KeyPair), StationError> {
        check_server_names(names)?;
        let key = KeyPair::generate().map_err(gen_err(cn))?;
        let cert = leaf_params(cn, names, server, days)?
            .signed_by(&key, &self.issuer)
            .map_err(gen_err(cn))?;
        Ok((cert, key))
    }

    fn identity(cert: &rcgen::Certificate, key: &KeyPair) -> Identity {
        Identity {
            chain: vec![cert.der().clone()],
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        }
    }

    /// A server certificate for the embedded broker's station listener, valid for `names`; never written to disk.
    pub fn server_identity(&self, names: &[String]) -> Result<Identity, StationError> {
        let (cert, key) = self.mint("Hotspot Edge broker", names, true, 825)?;
        Ok(Self::identity(&cert, &key))
    }

    /// The gateway's own client certificate for an external broker (CN [`GATEWAY_IDENTITY`]); never written to disk.
    pub fn gateway_identity(&self) -> Result<Identity, StationError> {
        let (cert, key) = self.mint(GATEWAY_IDENTITY, &[], false, 825)?;
        Ok(Self::identity(&cert, &key))
    }

    /// Writes `broker.pem`/`broker.key` (0600) into the stations folder: mosquitto's server certificate for `names`.
    pub fn write_broker_cert(&self, names: &[String]) -> Result<(PathBuf, PathBuf), StationError> {
        let (cert, key) = self.mint("Hotspot Edge broker", names, true, 825)?;
        let _lock = lock_folder(&self.dir)?;
        let (c, k) = (self.dir.join("broker.pem"), self.dir.join("broker.key"));
        write_private_atomic(&k, key.serialize_pem().as_bytes())?;
        write_private_atomic(&c, cert.pem().as_bytes())?;
        Ok((c, k))
    }
}

/// The files [`write_station_files`] makes for station `id` in `out`: certificate, key, CA.
pub fn station_files(out: &Path, id: &str) -> (PathBuf, PathBuf, PathBuf) {
    (
        out.join(format!("{id}.pem")),
        out.join(format!("{id}.key")),
        out.join("ca.pem"),
    )
}

/// Refuses if the station's certificate or key file already exists in `out` (checked before issuing).
pub fn check_out_dir(out: &Path, id: &str) -> Result<(), StationError> {
    let (cert, key, _) = station_files(out, id);
    for p in [cert, key] {
        if p.exists() {
            return Err(StationError::Exists(p));
        }
    }
    Ok(())
}

/// Writes `ID.pem`, `ID.key` and `ca.pem` into `out` (made 0700 if absent), every file mode 0600.
pub fn write_station_files(out: &Path, issued: &Issued) -> Result<(), StationError> {
    if !out.is_dir() {
        fsutil::create_dir_private(out)?;
    }
    let (cert, key, ca) = station_files(out, &issued.record.station_id);
    fsutil::write_new_private(&key, issued.key_pem.as_bytes())?;
    fsutil::write_new_private(&cert, issued.cert_pem.as_bytes())?;
    write_private_atomic(&ca, issued.ca_pem.as_bytes())?;
    Ok(())
}

fn ring_provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn roots(ca: Vec<CertificateDer<'static>>) -> Result<rustls::RootCertStore, StationError> {
    let mut roots = rustls::RootCertStore::empty();
    for c in ca {
        roots
            .add(c)
            .map_err(|e| StationError::Tls(format!("station CA: {e}")))?;
    }
    Ok(roots)
}

/// A TLS client configuration trusting `ca` and presenting `identity` (ring provider).
pub fn client_config(
    ca: Vec<CertificateDer<'static>>,
    identity: Option<Identity>,
) -> Result<Arc<rustls::ClientConfig>, StationError> {
    let builder = rustls::ClientConfig::builder_with_provider(ring_provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| StationError::Tls(e.to_string()))?
        .with_root_certificates(roots(ca)?);
    let config = match identity {
        Some(id) => builder
            .with_client_auth_cert(id.chain, id.key)
            .map_err(|e| StationError::Tls(e.to_string()))?,
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// A station's TLS client configuration from the files `station add` wrote into `dir` (`ID.pem`, `ID.key`, `ca.pem`).
pub fn station_client_config(
    dir: &Path,
    id: &str,
) -> Result<Arc<rustls::ClientConfig>, StationError> {
    let (cert, key, ca) = station_files(dir, id);
    client_config(
        pki::load_certs(&ca)?,
        Some(Identity {
            chain: pki::load_certs(&cert)?,
            key: pki::load_key(&key)?,
        }),
    )
}

/// Modification time, length and inode of a file: any `station` command changes at least one of them.
type FileStamp = (std::time::SystemTime, u64, u64);

/// `stations.json` as the running gateway sees it: re-read whenever the file changes (a `station add` or `station
/// revoke` from the command line takes effect at once), with a generation counter that changes when it does.
#[derive(Debug)]
pub struct RegistryWatch {
    path: PathBuf,
    state: Mutex<(Option<FileStamp>, Arc<Registry>)>,
    generation: watch::Sender<u64>,
}

impl RegistryWatch {
    /// Watches `path`.
    pub fn new(path: PathBuf) -> Self {
        let w = Self {
            path,
            state: Mutex::new((None, Arc::new(Registry::default()))),
            generation: watch::Sender::new(0),
        };
        w.current();
        w
    }

    fn stamp(&self) -> Option<FileStamp> {
        use std::os::unix::fs::MetadataExt as _;
        let m = std::fs::metadata(&self.path).ok()?;
        Some((m.modified().ok()?, m.len(), m.ino()))
    }

    /// The registry now (re-read if the file changed; on a read error the last good one stays, loudly).
    pub fn current(&self) -> Arc<Registry> {
        let stamp = self.stamp();
        let mut state = match self.state.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        if stamp.is_some() && stamp != state.0 {
            match read_registry(&self.path) {
                Ok(r) => {
                    *state = (stamp, Arc::new(r));
                    self.generation.send_modify(|g| *g += 1);
                }
                Err(e) => {
                    error!(error = %e, "station registry unreadable; keeping the last good one")
                }
            }
        }
        state.1.clone()
    }

    /// Changes whenever the registry does (call [`RegistryWatch::current`] periodically to notice).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }
}

/// `hotspot-gateway station ...`
#[derive(Debug, clap::Subcommand)]
pub enum StationCommand {
    /// Issue a client certificate for a station: writes ID.pem, ID.key and ca.pem (mode 0600) into --out.
    Add {
        /// Configuration file (the CA is in storage.dir/stations).
        #[arg(long)]
        config: PathBuf,
        /// Station id (1..=64 of A-Z a-z 0-9 - _ .), as in its topics.
        #[arg(long)]
        id: String,
        /// Folder for the station's files (made 0700 if absent).
        #[arg(long)]
        out: PathBuf,
    },
    /// List every certificate issued, one JSON object per line.
    List {
        /// Configuration file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Revoke every active certificate of a station (the embedded broker drops it at once; reload mosquitto).
    Revoke {
        /// Configuration file.
        #[arg(long)]
        config: PathBuf,
        /// Station id.
        #[arg(long)]
        id: String,
    },
    /// Issue mosquitto's server certificate (storage.dir/stations/broker.pem and broker.key) for these names.
    BrokerCert {
        /// Configuration file.
        #[arg(long)]
        config: PathBuf,
        /// DNS name or IP address stations and the gateway use to reach mosquitto (repeat; localhost and 127.0.0.1
        /// are always included).
        #[arg(long = "name")]
        names: Vec<String>,
    },
}

fn cli_actor() -> String {
    let who = std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_else(|_| "unknown".into());
    format!("cli:{who}")
}

fn audit(cfg: &Config, action: &str, subject: &str, detail: serde_json::Value) {
    if let Err(e) =
        crate::audit::append_locked(&cfg.audit_file(), &cli_actor(), action, subject, detail)
    {
        eprintln!("warning: cannot write the audit log: {e}");
    }
}

/// Runs a `station` command.
pub fn run_command(command: StationCommand) -> anyhow::Result<ExitCode> {
    let config = match &command {
        StationCommand::Add { config, .. }
        | StationCommand::List { config }
        | StationCommand::Revoke { config, .. }
        | StationCommand::BrokerCert { config, .. } => config.clone(),
    };
    let cfg = Config::load(&config)?;
    let ca = StationCa::open_or_create(&StationCa::dir_for(&cfg.storage.dir))?;
    match command {
        StationCommand::Add { id, out, .. } => {
            if hotspot_device_protocols::station::validate_id(&id).is_err() {
                return Err(StationError::BadId(id).into());
            }
            check_out_dir(&out, &id)?;
            let issued = ca.issue(&id)?;
            let r = &issued.record;
            audit(
                &cfg,
                "station.issued",
                &id,
                serde_json::json!({"serial": r.serial, "fingerprint": r.fingerprint, "not_after": r.not_after}),
            );
            if let Err(e) = write_station_files(&out, &issued) {
                anyhow::bail!(
                    "{e}\nthe certificate (serial {}) is recorded but its files were not written: revoke it \
                     (hotspot-gateway station revoke --id {id}) and issue again",
                    r.serial
                );
            }
            let (c, k, a) = station_files(&out, &id);
            println!(
                "station {id}: certificate {} (serial {}), key {}, CA {}",
                c.display(),
                r.serial,
                k.display(),
                a.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        StationCommand::List { .. } => {
            let t = now();
            for c in ca.list()? {
                let mut v = serde_json::to_value(&c)?;
                v["status"] = c.status(t).into();
                println!("{v}");
            }
            Ok(ExitCode::SUCCESS)
        }
        StationCommand::Revoke { id, .. } => {
            let revoked = ca.revoke(&id)?;
            for r in &revoked {
                audit(
                    &cfg,
                    "station.revoked",
                    &id,
                    serde_json::json!({"serial": r.serial, "fingerprint": r.fingerprint}),
                );
                println!("station {id}: certificate serial {} revoked", r.serial);
            }
            println!(
                "the embedded broker refuses it from now on and drops its connections; for mosquitto, restart \
                 hotspot-mosquitto so that it reads the new revocation list {}",
                ca.crl_path().display()
            );
            Ok(ExitCode::SUCCESS)
        }
        StationCommand::BrokerCert { mut names, .. } => {
            for n in ["localhost", "127.0.0.1"] {
                if !names.iter().any(|x| x == n) {
                    names.push(n.to_owned());
                }
            }
            let (c, k) = ca.write_broker_cert(&names)?;
            audit(
                &cfg,
                "broker.certificate_issued",
                "",
                serde_json::json!({"names": names}),
            );
            println!(
                "broker certificate {} and key {} for {}",
                c.display(),
                k.display(),
                names.join(", ")
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn issue_writes_private_files_and_records_the_certificate() {
        let d = tempfile::tempdir().unwrap();
        let ca = StationCa::open_or_create(&d.path().join("stations")).unwrap();
        assert_eq!(mode(&d.path().join("stations")), 0o700);
        assert_eq!(mode(&d.path().join("stations/ca.key")), 0o600);
        let issued = ca.issue("desk-1").unwrap();
        let out = d.path().join("out");
        check_out_dir(&out, "desk-1").unwrap();
        write_station_files(&out, &issued).unwrap();
        for f in ["desk-1.pem", "desk-1.key", "ca.pem"] {
            assert_eq!(mode(&out.join(f)), 0o600, "{f}");
        }
        assert!(matches!(
            check_out_dir(&out, "desk-1"),
            Err(StationError::Exists(_))
        ));
        let cert = pki::load_certs(&out.join("desk-1.pem")).unwrap();
        let list = ca.list().unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].fingerprint, pki::fingerprint(&cert[0]));
        assert_eq!(list[0].station_id, "desk-1");
        assert_eq!(list[0].status(now()), "active");
        let reg = read_registry(&ca.registry_path()).unwrap();
        assert_eq!(reg.active_station(&list[0].fingerprint), Some("desk-1"));
        assert_eq!(mode(&ca.registry_path()), 0o600);
        // The station's files make a working TLS client configuration.
        station_client_config(&out, "desk-1").unwrap();
        // A second certificate only after a revocation; reopening keeps the same CA.
        assert!(matches!(ca.issue("desk-1"), Err(StationError::Active(_))));
        let again = StationCa::open_or_create(&d.path().join("stations")).unwrap();
        assert_eq!(again.ca_pem(), ca.ca_pem());
    }

    #[test]
    fn ids_outside_the_protocol_charset_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let ca = StationCa::open_or_create(d.path()).unwrap();
        for bad in ["", "a/b", "desk+1", "#", "x@y", "ü", &"a".repeat(65)] {
            assert!(
                matches!(ca.issue(bad), Err(StationError::BadId(_))),
                "{bad:?}"
            );
        }
        assert!(ca.list().unwrap().is_empty());
        // GATEWAY_IDENTITY can never be issued to a station.
        assert!(matches!(
            ca.issue(GATEWAY_IDENTITY),
            Err(StationError::BadId(_))
        ));
    }

    use rustls::client::danger::ServerCertVerifier as _;

    fn verify_with_crl(
        ca: &StationCa,
        cert: &CertificateDer<'static>,
    ) -> Result<(), rustls::Error> {
        use rustls::pki_types::pem::PemObject as _;
        let crl_pem = std::fs::read(ca.crl_path()).unwrap();
        let crls = rustls::pki_types::CertificateRevocationListDer::pem_slice_iter(&crl_pem)
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        assert_eq!(crls.len(), 1);
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.ca_der().unwrap()).unwrap();
        let v = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            ring_provider(),
        )
        .with_crls(crls)
        .build()
        .unwrap();
        v.verify_client_cert(cert, &[], rustls::pki_types::UnixTime::now())
            .map(|_| ())
    }

    #[test]
    fn revocation_updates_the_registry_and_the_signed_crl() {
        let d = tempfile::tempdir().unwrap();
        let ca = StationCa::open_or_create(d.path()).unwrap();
        let a = ca.issue("desk-a").unwrap();
        let b = ca.issue("desk-b").unwrap();
        let der = |i: &Issued| {
            use rustls::pki_types::pem::PemObject as _;
            CertificateDer::from_pem_slice(i.cert_pem.as_bytes()).unwrap()
        };
        let (a_der, b_der) = (der(&a), der(&b));
        verify_with_crl(&ca, &a_der).unwrap();
        verify_with_crl(&ca, &b_der).unwrap();

        let revoked = ca.revoke("desk-a").unwrap();
        assert_eq!(revoked.len(), 1);
        assert_eq!(revoked[0].serial, a.record.serial);
        assert!(matches!(
            verify_with_crl(&ca, &a_der),
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::Revoked
            ))
        ));
        verify_with_crl(&ca, &b_der).unwrap();
        let reg = read_registry(&ca.registry_path()).unwrap();
        assert_eq!(reg.crl_number, 1);
        assert_eq!(reg.active_station(&a.record.fingerprint), None);
        assert_eq!(reg.active_station(&b.record.fingerprint), Some("desk-b"));
        assert!(matches!(
            ca.revoke("desk-a"),
            Err(StationError::NotFound(_))
        ));
        assert!(matches!(
            ca.revoke("nobody"),
            Err(StationError::NotFound(_))
        ));
        // Re-keying: a new certificate for the revoked station, the old one stays revoked.
        let a2 = ca.issue("desk-a").unwrap();
        verify_with_crl(&ca, &der(&a2)).unwrap();
        let list = ca.list().unwrap();
        assert_eq!(
            list.iter().map(|c| c.status(now())).collect::<Vec<_>>(),
            ["revoked", "active", "active"]
        );
    }

    #[test]
    fn the_registry_watch_sees_changes_made_by_another_process() {
        let d = tempfile::tempdir().unwrap();
        let ca = StationCa::open_or_create(d.path()).unwrap();
        let w = RegistryWatch::new(ca.registry_path());
        let rx = w.subscribe();
        let a = ca.issue("desk-a").unwrap();
        assert_eq!(
            w.current().active_station(&a.record.fingerprint),
            Some("desk-a")
        );
        let g = *rx.borrow();
        ca.revoke("desk-a").unwrap();
        assert_eq!(w.current().active_station(&a.record.fingerprint), None);
        assert!(*rx.borrow() > g);
    }

    #[test]
    fn minted_identities_chain_to_the_ca_and_names_are_checked() {
        let d = tempfile::tempdir().unwrap();
        let ca = StationCa::open_or_create(d.path()).unwrap();
        let names = vec!["gateway.post-1.example".to_owned(), "10.0.0.5".to_owned()];
        let id = ca.server_identity(&names).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.ca_der().unwrap()).unwrap();
        let v = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            ring_provider(),
        )
        .build()
        .unwrap();
        for n in ["gateway.post-1.example", "10.0.0.5"] {
            let name = rustls::pki_types::ServerName::try_from(n).unwrap();
            v.verify_server_cert(
                &id.chain[0],
                &[],
                &name,
                &[],
                rustls::pki_types::UnixTime::now(),
            )
            .unwrap();
        }
        let other = rustls::pki_types::ServerName::try_from("elsewhere.example").unwrap();
        assert!(
            v.verify_server_cert(
                &id.chain[0],
                &[],
                &other,
                &[],
                rustls::pki_types::UnixTime::now()
            )
            .is_err()
        );
        assert!(matches!(
            ca.server_identity(&["*.example".to_owned()]),
            Err(StationError::BadName(_))
        ));
        assert!(matches!(
            ca.server_identity(&["not a name".to_owned()]),
            Err(StationError::BadName(_))
        ));
        let (c, k) = ca.write_broker_cert(&["127.0.0.1".to_owned()]).unwrap();
        assert_eq!(mode(&k), 0o600);
        assert_eq!(mode(&c), 0o600);
        ca.gateway_identity().unwrap();
    }
}
