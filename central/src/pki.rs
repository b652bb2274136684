//! A small PKI for the uplink: one CA, a server certificate for central, client certificates for gateways.
//!
//! Files in the PKI folder `D`: `ca.pem`/`ca.key` (the CA), `central.pem`/`central.key` (server, name `central`),
//! `NAME.pem`/`NAME.key` per gateway. Private keys are written with mode 0600 and never overwritten.
//! The CA's distinguished name is fixed ([`CA_COMMON_NAME`]), so a later `issue-gateway` can rebuild the issuer from
//! `ca.key` alone.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};

use crate::fsutil::{self, FsError};

/// Common name of the uplink CA.
pub const CA_COMMON_NAME: &str = "Hotspot Edge uplink CA";
/// DNS name in central's server certificate; gateways use it as `server_name`.
pub const CENTRAL_NAME: &str = "central";
/// Validity of issued certificates, in days.
const VALIDITY_DAYS: i64 = 825;

/// Errors while making or reading PKI material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PkiError {
    /// A file could not be read or written.
    #[error(transparent)]
    Fs(#[from] FsError),
    /// Certificate generation failed.
    #[error("certificate generation failed for {what}: {source}")]
    Generate {
        /// What was being made.
        what: String,
        /// rcgen's error.
        source: rcgen::Error,
    },
    /// A PEM file holds no usable certificate or key.
    #[error("{path}: {what}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// The gateway name is not a valid identifier.
    #[error("gateway name {0:?} must be 1..=64 characters of A-Z a-z 0-9 - _ .")]
    BadName(String),
    /// Refusing to overwrite existing material.
    #[error("{0} already exists; refusing to overwrite it")]
    Exists(PathBuf),
}

fn gen_err(what: &str) -> impl FnOnce(rcgen::Error) -> PkiError + '_ {
    move |source| PkiError::Generate {
        what: what.to_owned(),
        source,
    }
}

fn ca_params() -> Result<CertificateParams, PkiError> {
    let mut p = CertificateParams::new(Vec::<String>::new()).map_err(gen_err("CA"))?;
    p.distinguished_name
        .push(DnType::CommonName, CA_COMMON_NAME);
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    set_validity(&mut p, VALIDITY_DAYS * 4);
    Ok(p)
}

fn set_validity(p: &mut CertificateParams, days: i64) {
    let now = time::OffsetDateTime::now_utc();
    p.not_before = now - time::Duration::days(1);
    p.not_after = now + time::Duration::days(days);
}

fn leaf_params(name: &str, server: bool) -> Result<CertificateParams, PkiError> {
    let mut p = CertificateParams::new(vec![name.to_owned()]).map_err(gen_err(name))?;
    p.distinguished_name.push(DnType::CommonName, name);
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![if server {
        ExtendedKeyUsagePurpose::ServerAuth
    } else {
        ExtendedKeyUsagePurpose::ClientAuth
    }];
    set_validity(&mut p, VALIDITY_DAYS);
    Ok(p)
}

fn load_issuer(dir: &Path) -> Result<Issuer<'static, KeyPair>, PkiError> {
    let key_path = dir.join("ca.key");
    let pem = fsutil::read_to_string(&key_path, 64 * 1024)?;
    let key = KeyPair::from_pem(&pem).map_err(|e| PkiError::Pem {
        path: key_path,
        what: format!("not a usable private key: {e}"),
    })?;
    Ok(Issuer::new(ca_params()?, key))
}

fn write_leaf(
    dir: &Path,
    name: &str,
    server: bool,
    issuer: &Issuer<'_, KeyPair>,
) -> Result<(), PkiError> {
    let key = KeyPair::generate().map_err(gen_err(name))?;
    let cert = leaf_params(name, server)?
        .signed_by(&key, issuer)
        .map_err(gen_err(name))?;
    fsutil::write_new_private(
        &dir.join(format!("{name}.key")),
        key.serialize_pem().as_bytes(),
    )?;
    fsutil::write_atomic(&dir.join(format!("{name}.pem")), cert.pem().as_bytes())?;
    Ok(())
}

/// `pki init`: makes the CA and central's server certificate in `dir`.
pub fn init(dir: &Path) -> Result<(), PkiError> {
    fsutil::create_dir_private(dir)?;
    for f in ["ca.key", "central.key"] {
        if dir.join(f).exists() {
            return Err(PkiError::Exists(dir.join(f)));
        }
    }
    let key = KeyPair::generate().map_err(gen_err("CA"))?;
    let cert = ca_params()?.self_signed(&key).map_err(gen_err("CA"))?;
    fsutil::write_new_private(&dir.join("ca.key"), key.serialize_pem().as_bytes())?;
    fsutil::write_atomic(&dir.join("ca.pem"), cert.pem().as_bytes())?;
    let issuer = Issuer::new(ca_params()?, key);
    write_leaf(dir, CENTRAL_NAME, true, &issuer)
}

/// `pki issue-gateway`: issues a client certificate for gateway `name`.
pub fn issue_gateway(dir: &Path, name: &str) -> Result<(), PkiError> {
    if hotspot_device_protocols::station::validate_id(name).is_err()
        || name == CENTRAL_NAME
        || name == "ca"
    {
        return Err(PkiError::BadName(name.to_owned()));
    }
    if dir.join(format!("{name}.key")).exists() {
        return Err(PkiError::Exists(dir.join(format!("{name}.key"))));
    }
    let issuer = load_issuer(dir)?;
    write_leaf(dir, name, false, &issuer)
}

/// Reads every certificate in a PEM file.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, PkiError> {
    let bytes = fsutil::read(path, 1024 * 1024)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| PkiError::Pem {
            path: path.to_owned(),
            what: format!("bad PEM: {e}"),
        })?;
    if certs.is_empty() {
        return Err(PkiError::Pem {
            path: path.to_owned(),
            what: "no certificate found".into(),
        });
    }
    Ok(certs)
}

/// Reads the private key in a PEM file.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, PkiError> {
    let bytes = fsutil::read(path, 64 * 1024)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| PkiError::Pem {
        path: path.to_owned(),
        what: format!("no usable private key: {e}"),
    })
}

/// SHA-256 of a certificate's DER, lower-case hex: how central recognises an issued gateway certificate.
pub fn fingerprint(cert: &CertificateDer<'_>) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, cert.as_ref());
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Maps certificate fingerprints to gateway names for every `NAME.pem` in `dir` (CA and central excluded).
pub fn gateway_names(dir: &Path) -> Vec<(String, String)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in entries.flatten() {
        let path = e.path();
        let Some(stem) = path.file_stem().and_then(|s| s.to_str()).map(str::to_owned) else {
            continue;
        };
        if path.extension().is_none_or(|x| x != "pem") || stem == "ca" || stem == CENTRAL_NAME {
            continue;
        }
        if let Ok(certs) = load_certs(&path) {
            out.extend(certs.first().map(|c| (fingerprint(c), stem.clone())));
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn init_then_issue_makes_private_keys_and_chains() {
        let d = tempfile::tempdir().unwrap();
        init(d.path()).unwrap();
        issue_gateway(d.path(), "gw-1").unwrap();
        for f in ["ca.key", "central.key", "gw-1.key"] {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(d.path().join(f))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{f}");
        }
        assert!(matches!(init(d.path()), Err(PkiError::Exists(_))));
        assert!(matches!(
            issue_gateway(d.path(), "gw-1"),
            Err(PkiError::Exists(_))
        ));
        assert!(matches!(
            issue_gateway(d.path(), "../x"),
            Err(PkiError::BadName(_))
        ));
        let names = gateway_names(d.path());
        assert_eq!(names.len(), 1);
        assert_eq!(names[0].1, "gw-1");
        load_key(&d.path().join("gw-1.key")).unwrap();
        assert_eq!(load_certs(&d.path().join("ca.pem")).unwrap().len(), 1);
    }
}
