//! The console's TLS: the configured certificate, or a self-signed one made at first start, and the accept loop
//! (tokio-rustls + hyper) that serves the console's router over it.
//!
//! Without `console.cert`/`console.key` the gateway makes `storage.dir/console-cert.pem` and
//! `storage.dir/console-key.pem` (ECDSA P-256, mode 0600 for the key, valid 5 years; names: `localhost`, the
//! loopback addresses, the host name and the listen address) and reuses them. Its SHA-256 fingerprint is logged
//! at every start and shown on the settings page, for the admin to compare with what the browser shows on first
//! connection. Delete both files to make a new one.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tracing::{debug, info, warn};

use crate::config::Config;

/// Default certificate file in `storage.dir`.
pub const CERT_FILE: &str = "console-cert.pem";
/// Default key file in `storage.dir`.
pub const KEY_FILE: &str = "console-key.pem";
/// Validity of a generated certificate.
const VALIDITY_DAYS: i64 = 5 * 365;
/// Time a client has for the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Time a client has to send a request's headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// Connections served at once.
const MAX_CONNECTIONS: usize = 256;

/// The certificate cannot be made or used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A file cannot be read or written.
    #[error("{path}: {what}")]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        what: String,
    },
    /// Generation failed.
    #[error("cannot make the console certificate: {0}")]
    Generate(String),
    /// rustls refuses the certificate or key.
    #[error("console certificate refused: {0}")]
    Rustls(String),
}

/// The console's certificate, ready to serve.
#[derive(Debug, Clone)]
pub struct TlsMaterial {
    /// rustls server configuration (ring provider, HTTP/1.1).
    pub config: Arc<rustls::ServerConfig>,
    /// SHA-256 of the leaf certificate, `AB:CD:...`.
    pub fingerprint: String,
    /// Certificate file in use.
    pub cert_path: PathBuf,
    /// Made now (first start).
    pub generated: bool,
}

fn file_err(path: &Path) -> impl FnOnce(String) -> TlsError + '_ {
    move |what| TlsError::File {
        path: path.to_owned(),
        what,
    }
}

fn host_name() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty() && rustls::pki_types::ServerName::try_from(h.as_str()).is_ok())
}

fn generate(cfg: &Config, cert: &Path, key: &Path) -> Result<(), TlsError> {
    let mut names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    names.extend(host_name());
    if let Ok(a) = cfg.console.listen.parse::<SocketAddr>()
        && !a.ip().is_unspecified()
        && !a.ip().is_loopback()
    {
        names.push(a.ip().to_string());
    }
    let mut p =
        rcgen::CertificateParams::new(names).map_err(|e| TlsError::Generate(e.to_string()))?;
    p.distinguished_name.push(
        rcgen::DnType::CommonName,
        format!("Hotspot Edge console {}", cfg.site.id),
    );
    let now = time::OffsetDateTime::now_utc();
    p.not_before = now - time::Duration::days(1);
    p.not_after = now + time::Duration::days(VALIDITY_DAYS);
    p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let kp = rcgen::KeyPair::generate().map_err(|e| TlsError::Generate(e.to_string()))?;
    let c = p
        .self_signed(&kp)
        .map_err(|e| TlsError::Generate(e.to_string()))?;
    // A leftover of an interrupted first start is replaced.
    let _ = std::fs::remove_file(key);
    hotspot_central::fsutil::write_new_private(key, kp.serialize_pem().as_bytes())
        .map_err(|e| file_err(key)(e.to_string()))?;
    hotspot_central::fsutil::write_atomic(cert, c.pem().as_bytes())
        .map_err(|e| file_err(cert)(e.to_string()))?;
    Ok(())
}

fn fingerprint(der: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, der)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Loads the configured certificate, or the generated one (made now if absent).
pub fn load_or_create(cfg: &Config) -> Result<TlsMaterial, TlsError> {
    let (cert, key, own) = match (&cfg.console.cert, &cfg.console.key) {
        (Some(c), Some(k)) => (c.clone(), k.clone(), false),
        _ => (
            cfg.storage.dir.join(CERT_FILE),
            cfg.storage.dir.join(KEY_FILE),
            true,
        ),
    };
    let mut generated = false;
    if own && !(cert.is_file() && key.is_file()) {
        std::fs::create_dir_all(&cfg.storage.dir)
            .map_err(|e| file_err(&cfg.storage.dir)(e.to_string()))?;
        generate(cfg, &cert, &key)?;
        generated = true;
    }
    if let Ok(m) = std::fs::metadata(&key)
        && m.permissions().mode() & 0o004 != 0
    {
        return Err(file_err(&key)(
            "the console's private key is readable by every local user; chmod o-r it".into(),
        ));
    }
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert)
        .map_err(|e| file_err(&cert)(e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| file_err(&cert)(e.to_string()))?;
    let Some(leaf) = chain.first() else {
        return Err(file_err(&cert)("no certificate in the file".into()));
    };
    let fp = fingerprint(leaf.as_ref());
    let private = PrivateKeyDer::from_pem_file(&key).map_err(|e| file_err(&key)(e.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Rustls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(|e| TlsError::Rustls(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsMaterial {
        config: Arc::new(config),
        fingerprint: fp,
        cert_path: cert,
        generated,
    })
}

/// Serves `app` over TLS on `listener` until the task is aborted. Each connection gets the peer address as a
/// [`ConnectInfo`] extension (login rate limiting, audit).
pub async fn serve(
    listener: tokio::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    app: axum::Router,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let (tcp, remote) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                warn!(error = %e, "console: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let app = app.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    debug!(%remote, error = %e, "console: TLS handshake failed");
                    return;
                }
                Err(_) => {
                    debug!(%remote, "console: TLS handshake timed out");
                    return;
                }
            };
            let svc = hyper::service::service_fn(
                move |mut req: hyper::Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(ConnectInfo(remote));
                    let app = app.clone();
                    async move { tower::ServiceExt::oneshot(app, req.map(axum::body::Body::new)).await }
                },
            );
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(hyper_util::rt::TokioIo::new(stream), svc);
            if let Err(e) = conn.await {
                debug!(%remote, error = %e, "console: connection ended with an error");
            }
        });
    }
}

/// Logs where the console is and which certificate it presents.
pub fn log_ready(addr: SocketAddr, m: &TlsMaterial) {
    info!(
        console = %format!("https://{addr}/"),
        certificate = %m.cert_path.display(),
        sha256 = %m.fingerprint,
        generated = m.generated,
        "console listening (HTTPS)"
    );
}
