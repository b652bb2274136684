//! Encryption at rest of biometric payloads: ChaCha20-Poly1305 (ring) with a 256-bit key from a file that only the
//! service can read.
//!
//! Sealed layout: `[nonce: 12 random bytes][ciphertext + 16-byte tag]`; the capture id is the associated data, so a
//! sealed payload moved under another capture's key fails to open.

use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom as _, SystemRandom};

/// Key length in bytes.
pub const KEY_LEN: usize = 32;

/// Errors with the key or a sealed payload.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// The key file cannot be read or made.
    #[error("payload key {path}: {what}")]
    KeyFile {
        /// The key file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// The system random source failed.
    #[error("system random source failed")]
    Random,
    /// A sealed payload is truncated or was tampered with.
    #[error("sealed payload does not authenticate (corrupt, or sealed with another key)")]
    Open,
}

/// The payload sealing key.
pub struct PayloadKey {
    key: LessSafeKey,
    rng: SystemRandom,
}

impl std::fmt::Debug for PayloadKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PayloadKey(..)")
    }
}

impl PayloadKey {
    /// Loads the key, or makes a new random one (mode 0600) when the file does not exist.
    pub fn load_or_create(path: &Path) -> Result<Self, CryptoError> {
        let fail = |what: String| CryptoError::KeyFile {
            path: path.to_owned(),
            what,
        };
        let rng = SystemRandom::new();
        let bytes = match std::fs::read(path) {
            Ok(b) => {
                let mode = std::fs::metadata(path)
                    .map_err(|e| fail(e.to_string()))?
                    .permissions()
                    .mode();
                if mode & 0o077 != 0 {
                    return Err(fail(format!(
                        "mode {:o} lets others read it; chmod 600 it",
                        mode & 0o777
                    )));
                }
                b
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                create_key(path, &rng).map_err(fail)?
            }
            Err(e) => return Err(fail(e.to_string())),
        };
        let key = UnboundKey::new(&CHACHA20_POLY1305, &bytes).map_err(|_| {
            fail(format!(
                "must hold exactly {KEY_LEN} bytes, found {}",
                bytes.len()
            ))
        })?;
        Ok(Self {
            key: LessSafeKey::new(key),
            rng,
        })
    }

    /// Encrypts `plain`, binding it to `aad`.
    pub fn seal(&self, aad: &[u8], plain: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).map_err(|_| CryptoError::Random)?;
        let mut out = Vec::with_capacity(NONCE_LEN + plain.len() + 16);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plain);
        let tag = self
            .key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut out[NONCE_LEN..],
            )
            .map_err(|_| CryptoError::Random)?;
        out.extend_from_slice(tag.as_ref());
        Ok(out)
    }

    /// Decrypts what [`seal`](Self::seal) made with the same `aad`.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if sealed.len() < NONCE_LEN + 16 {
            return Err(CryptoError::Open);
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| CryptoError::Open)?;
        let mut buf = body.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(aad), &mut buf)
            .map_err(|_| CryptoError::Open)?;
        Ok(plain.to_vec())
    }
}

fn create_key(path: &Path, rng: &SystemRandom) -> Result<Vec<u8>, String> {
    let mut key = vec![0u8; KEY_LEN];
    rng.fill(&mut key)
        .map_err(|_| "system random source failed".to_owned())?;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| e.to_string())?;
    f.write_all(&key).map_err(|e| e.to_string())?;
    f.sync_all().map_err(|e| e.to_string())?;
    Ok(key)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_tamper_detection() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("k");
        let k = PayloadKey::load_or_create(&path).unwrap();
        let sealed = k.seal(b"id-1", b"fingerprint bytes").unwrap();
        assert!(!sealed.windows(11).any(|w| w == b"fingerprint"));
        assert_eq!(k.open(b"id-1", &sealed).unwrap(), b"fingerprint bytes");
        assert!(k.open(b"id-2", &sealed).is_err());
        let mut bad = sealed.clone();
        bad[20] ^= 1;
        assert!(k.open(b"id-1", &bad).is_err());
        assert!(k.open(b"id-1", &sealed[..10]).is_err());
        // Same key after reload.
        let k2 = PayloadKey::load_or_create(&path).unwrap();
        assert_eq!(k2.open(b"id-1", &sealed).unwrap(), b"fingerprint bytes");
    }

    #[test]
    fn readable_or_short_key_files_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("k");
        std::fs::write(&path, [0u8; 32]).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(
            PayloadKey::load_or_create(&path)
                .unwrap_err()
                .to_string()
                .contains("chmod 600")
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(&path, [0u8; 5]).unwrap();
        assert!(
            PayloadKey::load_or_create(&path)
                .unwrap_err()
                .to_string()
                .contains("32 bytes")
        );
    }
}
