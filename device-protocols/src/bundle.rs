//! Signed bundles: how central ops ship watchlist updates and plugins to gateways.
//!
//! A bundle is a payload (postcard) signed with Ed25519 by a key made with `hotspot-central keys init`. Gateways
//! are configured with the public keys they trust ([`TrustedKeys`]) and install nothing else.
//!
//! # Layout (format 1)
//! | offset | bytes | field |
//! |---|---|---|
//! | 0 | 8 | magic `HSBUNDLE` |
//! | 8 | 1 | format, 1 |
//! | 9 | 8 | key id: the first 8 bytes of SHA-256 of the signer's 32-byte public key |
//! | 17 | 64 | Ed25519 signature over [`SIGNING_CONTEXT`] followed by the payload bytes |
//! | 81 | 4 | payload length, big-endian |
//! | 85 | n | payload: postcard [`Payload`] |
//!
//! # Verification order
//! [`verify`] checks size, magic, format, that the key id is trusted and that the signature is valid **before** a
//! single payload byte is decoded, so the payload decoder only ever sees bytes a trusted key signed. A bundle whose
//! key id and signature are all zero is "unsigned" and refused as such.
//!
//! # What is checked where
//! This module proves *who* made a bundle and that it is intact. Whether it is *acceptable* (newer than what is
//! installed, applies to the installed version) is the installer's decision: [`WatchlistContent::apply`] checks a
//! delta's base version and hash, refuses operations that do not fit (adding a subject that exists, removing one
//! that does not) and checks the resulting content hash against the signed one.

use std::collections::BTreeMap;

use ring::signature::{self, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use serde::{Deserialize, Serialize};

/// Magic bytes at offset 0.
pub const MAGIC: &[u8; 8] = b"HSBUNDLE";
/// Bundle format written by this code.
pub const FORMAT: u8 = 1;
/// Bytes before the payload.
pub const HEADER_LEN: usize = 85;
/// Prefix of the signed message (domain separation: a bundle signature is never valid for anything else).
pub const SIGNING_CONTEXT: &[u8] = b"hotspot-edge bundle v1\0";
/// Prefix of a public key in text form (configuration files, `keys init` output).
pub const PUBLIC_KEY_PREFIX: &str = "ed25519:";
/// Largest bundle accepted by default. Watchlist snapshots reach gateways in one uplink frame, which is smaller
/// (`uplink::MAX_WATCHLIST_FRAME_BYTES`); central does not publish one beyond it.
pub const MAX_BUNDLE_BYTES: usize = 1024 * 1024 * 1024;

/// A SHA-256 digest.
pub type Hash = [u8; 32];
/// Identifies a signing key: the first 8 bytes of SHA-256 of its public key.
pub type KeyId = [u8; 8];

/// Why a bundle is refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BundleError {
    /// More bytes than allowed.
    #[error("bundle of {len} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// Bytes offered.
        len: usize,
        /// Limit in force.
        limit: usize,
    },
    /// Shorter than its header or its declared payload.
    #[error("bundle truncated: {needed} bytes needed, {len} present")]
    Truncated {
        /// Bytes needed.
        needed: usize,
        /// Bytes present.
        len: usize,
    },
    /// Not a bundle at all.
    #[error("not a bundle: magic bytes at offset 0 are wrong")]
    Magic,
    /// A bundle format this code does not read.
    #[error("bundle format {found} at offset 8 is not supported (this side reads {FORMAT})")]
    Format {
        /// Format byte found.
        found: u8,
    },
    /// Key id and signature are all zero.
    #[error("bundle is unsigned")]
    Unsigned,
    /// Signed by a key the gateway does not trust.
    #[error("bundle signed by unknown key {key_id}")]
    UnknownKey {
        /// Hex key id.
        key_id: String,
    },
    /// The signature does not match the payload (tampered, or signed by another key with the same id).
    #[error("bundle signature by key {key_id} is invalid: the bundle was altered or forged")]
    BadSignature {
        /// Hex key id.
        key_id: String,
    },
    /// The signed payload does not decode (a signer bug: it was signed like this).
    #[error("bundle payload does not decode: {0}")]
    Payload(String),
    /// A payload could not be encoded for signing.
    #[error("cannot encode bundle payload: {0}")]
    Encode(String),
}

/// Errors with keys.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// A public key in text form is malformed.
    #[error(
        "public key {text:?}: {what} (expected \"{PUBLIC_KEY_PREFIX}\" and 32 bytes in base64)"
    )]
    PublicKey {
        /// The text.
        text: String,
        /// What is wrong.
        what: String,
    },
    /// A private key is not an Ed25519 PKCS#8 document.
    #[error("signing key is not an Ed25519 PKCS#8 key: {0}")]
    PrivateKey(String),
}

/// A watchlist subject as shipped: pre-extracted templates and the face embedding, never images.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchlistEntry {
    /// Subject id.
    pub subject_id: String,
    /// `(position, template in the matcher's compact encoding)`.
    pub fingers: Vec<(u8, Vec<u8>)>,
    /// Face embedding in the matcher's encoding, if any.
    pub face: Option<Vec<u8>>,
    /// Unix ms after which the entry must stop matching (`None`: no expiry).
    pub expires_at_ms: Option<i64>,
}

/// One change in a delta.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeltaOp {
    /// A subject that is not on the list yet.
    Add(WatchlistEntry),
    /// A subject already on the list, replaced whole.
    Replace(WatchlistEntry),
    /// A subject taken off the list.
    Remove {
        /// Subject id.
        subject_id: String,
    },
}

/// A self-test shipped with a plugin: input bytes and the expected output, both in the plugin world's encoding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginSelfTest {
    /// Input given to the plugin.
    pub input: Vec<u8>,
    /// Expected output (world-specific; JSON for the worlds of `plugins/wit`).
    pub expected: Vec<u8>,
}

/// A plugin as shipped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginBody {
    /// Plugin name (one slot per name on a gateway).
    pub name: String,
    /// The world it implements (`decoder`, `quality`, `policy`).
    pub world: String,
    /// WIT package version it was built against (e.g. `1.0.0`).
    pub wit_version: String,
    /// The component (`.wasm`).
    pub wasm: Vec<u8>,
    /// Run at install; a plugin that fails it is not installed.
    pub self_test: Vec<PluginSelfTest>,
}

/// What a bundle carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Body {
    /// The whole watchlist; entries sorted by subject id, no duplicates.
    WatchlistSnapshot {
        /// Entries.
        entries: Vec<WatchlistEntry>,
    },
    /// Changes to one exact earlier version.
    WatchlistDelta {
        /// The version this applies to.
        base_version: u64,
        /// [`content_hash`] of that version.
        base_hash: Hash,
        /// Changes, applied in order.
        ops: Vec<DeltaOp>,
    },
    /// A WebAssembly plugin.
    Plugin(PluginBody),
}

/// The signed part of a bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payload {
    /// Monotonic version: of the watchlist for watchlist bundles, of the plugin slot for plugins.
    pub version: u64,
    /// When central made it (Unix ms).
    pub created_at_ms: i64,
    /// For watchlist bundles, [`content_hash`] of the watchlist after applying this bundle; for plugins, SHA-256 of
    /// the `.wasm`.
    pub content_hash: Hash,
    /// What it carries.
    pub body: Body,
}

impl Payload {
    /// A short name of the body kind, for logs and refusal reports.
    pub fn kind(&self) -> &'static str {
        match self.body {
            Body::WatchlistSnapshot { .. } => "watchlist-snapshot",
            Body::WatchlistDelta { .. } => "watchlist-delta",
            Body::Plugin(_) => "plugin",
        }
    }
}

/// SHA-256.
pub fn sha256(bytes: &[u8]) -> Hash {
    let d = ring::digest::digest(&ring::digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The key id of a public key.
pub fn key_id(public_key: &[u8; 32]) -> KeyId {
    let h = sha256(public_key);
    let mut id = [0u8; 8];
    id.copy_from_slice(&h[..8]);
    id
}

/// A private signing key (central side).
pub struct SigningKey {
    pair: Ed25519KeyPair,
    public: [u8; 32],
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("key_id", &hex(&key_id(&self.public)))
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Reads an Ed25519 PKCS#8 v2 document (what `keys init` writes, made by [`ring`]).
    pub fn from_pkcs8(der: &[u8]) -> Result<Self, KeyError> {
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
            .map_err(|e| KeyError::PrivateKey(e.to_string()))?;
        let mut public = [0u8; 32];
        public.copy_from_slice(pair.public_key().as_ref());
        Ok(Self { pair, public })
    }

    /// The public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.public
    }

    /// The public key in text form (`ed25519:<base64>`), as gateways are configured with it.
    pub fn public_key_text(&self) -> String {
        public_key_text(&self.public)
    }

    /// The key id.
    pub fn key_id(&self) -> KeyId {
        key_id(&self.public)
    }
}

/// A public key in text form.
pub fn public_key_text(public: &[u8; 32]) -> String {
    use base64::Engine as _;
    format!(
        "{PUBLIC_KEY_PREFIX}{}",
        base64::engine::general_purpose::STANDARD.encode(public)
    )
}

/// The public keys a gateway trusts.
#[derive(Debug, Clone, Default)]
pub struct TrustedKeys {
    keys: Vec<(KeyId, [u8; 32])>,
}

impl TrustedKeys {
    /// Parses keys in text form (`ed25519:<base64 of 32 bytes>`); every malformed key is reported.
    pub fn parse<S: AsRef<str>>(texts: &[S]) -> Result<Self, Vec<KeyError>> {
        use base64::Engine as _;
        let mut keys = Vec::new();
        let mut errors = Vec::new();
        for t in texts {
            let text = t.as_ref();
            let err = |what: &str| KeyError::PublicKey {
                text: text.to_owned(),
                what: what.to_owned(),
            };
            let Some(b64) = text.strip_prefix(PUBLIC_KEY_PREFIX) else {
                errors.push(err("missing prefix"));
                continue;
            };
            match base64::engine::general_purpose::STANDARD.decode(b64.trim()) {
                Ok(bytes) => match <[u8; 32]>::try_from(bytes.as_slice()) {
                    Ok(pk) => keys.push((key_id(&pk), pk)),
                    Err(_) => errors.push(err(&format!("{} bytes, not 32", bytes.len()))),
                },
                Err(e) => errors.push(err(&format!("not base64: {e}"))),
            }
        }
        if errors.is_empty() {
            Ok(Self { keys })
        } else {
            Err(errors)
        }
    }

    /// No key trusted.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Hex ids of the trusted keys.
    pub fn ids(&self) -> Vec<String> {
        self.keys.iter().map(|(id, _)| hex(id)).collect()
    }
}

/// Signs a payload into a bundle.
pub fn sign(payload: &Payload, key: &SigningKey) -> Result<Vec<u8>, BundleError> {
    let body = postcard::to_stdvec(payload).map_err(|e| BundleError::Encode(e.to_string()))?;
    let len = u32::try_from(body.len()).map_err(|_| BundleError::TooLarge {
        len: body.len(),
        limit: u32::MAX as usize,
    })?;
    let mut msg = Vec::with_capacity(SIGNING_CONTEXT.len() + body.len());
    msg.extend_from_slice(SIGNING_CONTEXT);
    msg.extend_from_slice(&body);
    let sig = key.pair.sign(&msg);
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    out.extend_from_slice(MAGIC);
    out.push(FORMAT);
    out.extend_from_slice(&key.key_id());
    out.extend_from_slice(sig.as_ref());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

/// A bundle whose signature was checked.
#[derive(Debug, Clone)]
pub struct Verified {
    /// Who signed it (hex key id).
    pub key_id: String,
    /// What it carries.
    pub payload: Payload,
}

/// Checks size, magic, format and declared length; returns the header and the payload bytes.
fn split(bytes: &[u8], limit: usize) -> Result<(&[u8], &[u8]), BundleError> {
    if bytes.len() > limit {
        return Err(BundleError::TooLarge {
            len: bytes.len(),
            limit,
        });
    }
    let (header, payload) = bytes
        .split_at_checked(HEADER_LEN)
        .ok_or(BundleError::Truncated {
            needed: HEADER_LEN,
            len: bytes.len(),
        })?;
    if &header[..8] != MAGIC {
        return Err(BundleError::Magic);
    }
    if header[8] != FORMAT {
        return Err(BundleError::Format { found: header[8] });
    }
    let declared = u32::from_be_bytes([header[81], header[82], header[83], header[84]]) as usize;
    if payload.len() != declared {
        return Err(BundleError::Truncated {
            needed: HEADER_LEN.saturating_add(declared),
            len: bytes.len(),
        });
    }
    Ok((header, payload))
}

fn decode_payload(payload: &[u8]) -> Result<Payload, BundleError> {
    postcard::from_bytes(payload).map_err(|e| BundleError::Payload(e.to_string()))
}

/// Checks a bundle's signature against `trusted`, then decodes its payload. See the module doc for the order.
pub fn verify(bytes: &[u8], trusted: &TrustedKeys, limit: usize) -> Result<Verified, BundleError> {
    let (header, payload) = split(bytes, limit)?;
    let id = &header[9..17];
    let sig = &header[17..81];
    if id.iter().all(|b| *b == 0) && sig.iter().all(|b| *b == 0) {
        return Err(BundleError::Unsigned);
    }
    let key_id = hex(id);
    let Some((_, pk)) = trusted.keys.iter().find(|(k, _)| k.as_slice() == id) else {
        return Err(BundleError::UnknownKey { key_id });
    };
    let mut msg = Vec::with_capacity(SIGNING_CONTEXT.len() + payload.len());
    msg.extend_from_slice(SIGNING_CONTEXT);
    msg.extend_from_slice(payload);
    UnparsedPublicKey::new(&signature::ED25519, pk)
        .verify(&msg, sig)
        .map_err(|_| BundleError::BadSignature {
            key_id: key_id.clone(),
        })?;
    Ok(Verified {
        key_id,
        payload: decode_payload(payload)?,
    })
}

/// Decodes a bundle's payload **without** checking its signature: only for a signer reading its own output (e.g.
/// central computing the next delta from its last published snapshot). Never use it on received bundles.
pub fn decode_unverified(bytes: &[u8], limit: usize) -> Result<Payload, BundleError> {
    let (_, payload) = split(bytes, limit)?;
    decode_payload(payload)
}

/// Why a watchlist bundle does not apply to the installed content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApplyError {
    /// Older than or equal to what is installed (rollback or replay).
    #[error(
        "version {offered} is not newer than the installed version {installed} (rollback or replay)"
    )]
    NotNewer {
        /// Offered.
        offered: u64,
        /// Installed.
        installed: u64,
    },
    /// A delta for another base version.
    #[error("delta applies to version {base}, but version {installed} is installed")]
    WrongBase {
        /// The delta's base.
        base: u64,
        /// Installed.
        installed: u64,
    },
    /// A delta whose base hash differs from the installed content's hash.
    #[error("delta base hash {expected} differs from the installed content's hash {actual}")]
    BaseHash {
        /// Hex hash the delta names.
        expected: String,
        /// Hex hash of the installed content.
        actual: String,
    },
    /// An operation that does not fit.
    #[error("delta operation {index}: {what}")]
    Op {
        /// Index in the delta.
        index: usize,
        /// What does not fit.
        what: String,
    },
    /// Snapshot entries not sorted by subject id or with duplicates.
    #[error("snapshot entries are not sorted and unique at entry {index} ({subject_id})")]
    Unsorted {
        /// Index.
        index: usize,
        /// The subject id there.
        subject_id: String,
    },
    /// The result's hash is not the signed one.
    #[error("content hash after applying is {actual}, but the bundle says {expected}")]
    ContentHash {
        /// Hex hash the bundle names.
        expected: String,
        /// Hex hash computed.
        actual: String,
    },
    /// Not a watchlist bundle.
    #[error("a {0} bundle is not a watchlist bundle")]
    NotWatchlist(&'static str),
}

/// A watchlist's content, keyed by subject id (so its order, and its hash, are canonical).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchlistContent {
    /// Version (0: nothing installed).
    pub version: u64,
    /// When central made the bundle that produced it (Unix ms; 0: none).
    pub created_at_ms: i64,
    /// Entries.
    pub entries: BTreeMap<String, WatchlistEntry>,
}

impl WatchlistContent {
    /// [`content_hash`] of the entries.
    pub fn hash(&self) -> Hash {
        content_hash(self.entries.values())
    }

    /// Applies a verified watchlist bundle, returning the new content; `self` is unchanged on error.
    pub fn apply(&self, payload: &Payload) -> Result<Self, ApplyError> {
        if payload.version <= self.version {
            return Err(ApplyError::NotNewer {
                offered: payload.version,
                installed: self.version,
            });
        }
        let entries = match &payload.body {
            Body::WatchlistSnapshot { entries } => {
                let mut map = BTreeMap::new();
                let mut last: Option<&str> = None;
                for (index, e) in entries.iter().enumerate() {
                    if last.is_some_and(|l| l >= e.subject_id.as_str()) {
                        return Err(ApplyError::Unsorted {
                            index,
                            subject_id: e.subject_id.clone(),
                        });
                    }
                    last = Some(&e.subject_id);
                    map.insert(e.subject_id.clone(), e.clone());
                }
                map
            }
            Body::WatchlistDelta {
                base_version,
                base_hash,
                ops,
            } => {
                if *base_version != self.version {
                    return Err(ApplyError::WrongBase {
                        base: *base_version,
                        installed: self.version,
                    });
                }
                let actual = self.hash();
                if actual != *base_hash {
                    return Err(ApplyError::BaseHash {
                        expected: hex(base_hash),
                        actual: hex(&actual),
                    });
                }
                let mut map = self.entries.clone();
                for (index, op) in ops.iter().enumerate() {
                    let what = match op {
                        DeltaOp::Add(e) if map.contains_key(&e.subject_id) => {
                            Some(format!("add {}: already on the list", e.subject_id))
                        }
                        DeltaOp::Add(e) => map.insert(e.subject_id.clone(), e.clone()).and(None),
                        DeltaOp::Replace(e) => match map.get_mut(&e.subject_id) {
                            Some(old) => {
                                *old = e.clone();
                                None
                            }
                            None => Some(format!("replace {}: not on the list", e.subject_id)),
                        },
                        DeltaOp::Remove { subject_id } => match map.remove(subject_id) {
                            Some(_) => None,
                            None => Some(format!("remove {subject_id}: not on the list")),
                        },
                    };
                    if let Some(what) = what {
                        return Err(ApplyError::Op { index, what });
                    }
                }
                map
            }
            Body::Plugin(_) => return Err(ApplyError::NotWatchlist(payload.kind())),
        };
        let next = Self {
            version: payload.version,
            created_at_ms: payload.created_at_ms,
            entries,
        };
        let actual = next.hash();
        if actual != payload.content_hash {
            return Err(ApplyError::ContentHash {
                expected: hex(&payload.content_hash),
                actual: hex(&actual),
            });
        }
        Ok(next)
    }

    /// The operations that turn `self` into `next` (for a delta).
    pub fn diff(&self, next: &BTreeMap<String, WatchlistEntry>) -> Vec<DeltaOp> {
        let mut ops = Vec::new();
        for (id, e) in next {
            match self.entries.get(id) {
                None => ops.push(DeltaOp::Add(e.clone())),
                Some(old) if old != e => ops.push(DeltaOp::Replace(e.clone())),
                Some(_) => {}
            }
        }
        for id in self.entries.keys() {
            if !next.contains_key(id) {
                ops.push(DeltaOp::Remove {
                    subject_id: id.clone(),
                });
            }
        }
        ops
    }
}

/// SHA-256 of the entries in subject-id order, each as its postcard encoding prefixed by its length (8 bytes BE).
pub fn content_hash<'a>(entries: impl IntoIterator<Item = &'a WatchlistEntry>) -> Hash {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for e in entries {
        // Encoding an in-memory entry cannot fail (no maps with non-string keys, no unsupported types); should it
        // ever, the entry still contributes its id, and the hash comparison fails loudly rather than silently.
        let bytes = postcard::to_stdvec(e).unwrap_or_else(|_| e.subject_id.as_bytes().to_vec());
        ctx.update(&(bytes.len() as u64).to_be_bytes());
        ctx.update(&bytes);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// A fixed Ed25519 PKCS#8 key for tests (made with ring from a fixed seed).
    fn key(seed: u8) -> SigningKey {
        let pair = Ed25519KeyPair::from_seed_unchecked(&[seed; 32]).unwrap();
        let mut public = [0u8; 32];
        public.copy_from_slice(pair.public_key().as_ref());
        SigningKey { pair, public }
    }

    fn entry(id: &str, b: u8) -> WatchlistEntry {
        WatchlistEntry {
            subject_id: id.into(),
            fingers: vec![(2, vec![b; 10])],
            face: None,
            expires_at_ms: None,
        }
    }

    fn snapshot(version: u64, entries: Vec<WatchlistEntry>) -> Payload {
        Payload {
            version,
            created_at_ms: 1_000,
            content_hash: content_hash(&entries),
            body: Body::WatchlistSnapshot { entries },
        }
    }

    fn trusted(k: &SigningKey) -> TrustedKeys {
        TrustedKeys::parse(&[k.public_key_text()]).unwrap()
    }

    #[test]
    fn sign_verify_round_trip() {
        let k = key(1);
        let p = snapshot(3, vec![entry("a", 1), entry("b", 2)]);
        let b = sign(&p, &k).unwrap();
        let v = verify(&b, &trusted(&k), MAX_BUNDLE_BYTES).unwrap();
        assert_eq!(v.payload, p);
        assert_eq!(v.key_id, hex(&k.key_id()));
    }

    #[test]
    fn refusals_name_the_reason() {
        let k = key(1);
        let other = key(2);
        let p = snapshot(3, vec![entry("a", 1)]);
        let b = sign(&p, &k).unwrap();
        // Unknown key.
        assert!(matches!(
            verify(&b, &trusted(&other), MAX_BUNDLE_BYTES),
            Err(BundleError::UnknownKey { .. })
        ));
        // Tampered payload (every byte after the header).
        for i in HEADER_LEN..b.len() {
            let mut t = b.clone();
            t[i] ^= 0x01;
            assert!(
                matches!(
                    verify(&t, &trusted(&k), MAX_BUNDLE_BYTES),
                    Err(BundleError::BadSignature { .. })
                ),
                "byte {i}"
            );
        }
        // Tampered signature.
        let mut t = b.clone();
        t[40] ^= 0x80;
        assert!(matches!(
            verify(&t, &trusted(&k), MAX_BUNDLE_BYTES),
            Err(BundleError::BadSignature { .. })
        ));
        // Unsigned.
        let mut u = b.clone();
        u[9..81].fill(0);
        assert!(matches!(
            verify(&u, &trusted(&k), MAX_BUNDLE_BYTES),
            Err(BundleError::Unsigned)
        ));
        // Truncated, too large, not a bundle, other format.
        assert!(matches!(
            verify(&b[..b.len() - 1], &trusted(&k), MAX_BUNDLE_BYTES),
            Err(BundleError::Truncated { .. })
        ));
        assert!(matches!(
            verify(&b[..10], &trusted(&k), MAX_BUNDLE_BYTES),
            Err(BundleError::Truncated { .. })
        ));
        assert!(matches!(
            verify(&b, &trusted(&k), 100),
            Err(BundleError::TooLarge { .. })
        ));
        let mut m = b.clone();
        m[0] = b'X';
        assert!(matches!(
            verify(&m, &trusted(&k), MAX_BUNDLE_BYTES),
            Err(BundleError::Magic)
        ));
        let mut f = b.clone();
        f[8] = 2;
        assert!(matches!(
            verify(&f, &trusted(&k), MAX_BUNDLE_BYTES),
            Err(BundleError::Format { found: 2 })
        ));
    }

    #[test]
    fn trusted_keys_report_every_bad_key() {
        let errs = TrustedKeys::parse(&["nope", "ed25519:!!!", "ed25519:AAAA"]).unwrap_err();
        assert_eq!(errs.len(), 3);
        assert!(errs[2].to_string().contains("3 bytes"), "{}", errs[2]);
    }

    #[test]
    fn deltas_apply_to_their_base_only() {
        let v1 = WatchlistContent::default()
            .apply(&snapshot(1, vec![entry("a", 1), entry("b", 2)]))
            .unwrap();
        let next: BTreeMap<_, _> = [("b", entry("b", 9)), ("c", entry("c", 3))]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        let ops = v1.diff(&next);
        assert_eq!(ops.len(), 3);
        let delta = Payload {
            version: 2,
            created_at_ms: 2_000,
            content_hash: content_hash(next.values()),
            body: Body::WatchlistDelta {
                base_version: 1,
                base_hash: v1.hash(),
                ops: ops.clone(),
            },
        };
        let v2 = v1.apply(&delta).unwrap();
        assert_eq!(v2.entries, next);
        // Replay and rollback.
        assert!(matches!(v2.apply(&delta), Err(ApplyError::NotNewer { .. })));
        assert!(matches!(
            v2.apply(&snapshot(1, vec![])),
            Err(ApplyError::NotNewer { .. })
        ));
        // A delta for another base.
        let mut skip = delta.clone();
        skip.version = 4;
        if let Body::WatchlistDelta { base_version, .. } = &mut skip.body {
            *base_version = 3;
        }
        assert!(matches!(
            v2.apply(&skip),
            Err(ApplyError::WrongBase { base: 3, .. })
        ));
        // Same base version, different content.
        let other = WatchlistContent::default()
            .apply(&snapshot(1, vec![entry("a", 7)]))
            .unwrap();
        assert!(matches!(
            other.apply(&delta),
            Err(ApplyError::BaseHash { .. })
        ));
        // An operation that does not fit.
        let mut bad = delta.clone();
        if let Body::WatchlistDelta { ops, .. } = &mut bad.body {
            ops.push(DeltaOp::Remove {
                subject_id: "zz".into(),
            });
        }
        assert!(matches!(
            v1.apply(&bad),
            Err(ApplyError::Op { index: 3, .. })
        ));
        // A wrong result hash.
        let mut wrong = delta;
        wrong.content_hash = [0; 32];
        assert!(matches!(
            v1.apply(&wrong),
            Err(ApplyError::ContentHash { .. })
        ));
    }

    #[test]
    fn snapshots_must_be_sorted_and_unique() {
        let mut p = snapshot(1, vec![entry("b", 1), entry("a", 2)]);
        assert!(matches!(
            WatchlistContent::default().apply(&p),
            Err(ApplyError::Unsorted { index: 1, .. })
        ));
        p = snapshot(1, vec![entry("a", 1), entry("a", 2)]);
        assert!(matches!(
            WatchlistContent::default().apply(&p),
            Err(ApplyError::Unsorted { index: 1, .. })
        ));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let k = key(1);
        let t = trusted(&k);
        let mut b = sign(&snapshot(1, vec![entry("a", 1)]), &k).unwrap();
        for i in 0..b.len() {
            b[i] = b[i].wrapping_add(31);
            let _ = verify(&b, &t, MAX_BUNDLE_BYTES);
            let _ = decode_unverified(&b, MAX_BUNDLE_BYTES);
        }
    }
}
