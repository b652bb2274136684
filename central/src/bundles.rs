//! Signing keys and published bundles (`keys init`, `watchlist publish`, `plugin publish`), and what `serve` sends.
//!
//! # On disk
//! - `KEYS_DIR/signing.key`: the Ed25519 private key (PKCS#8 DER, mode 0600); keep it off the serving host if you
//!   can (publish on an ops machine, copy `DATA_DIR/bundles` over). `KEYS_DIR/signing.pub`: its public key in
//!   text form, what gateways list in `[watchlist] trusted_keys`.
//! - `DATA_DIR/bundles/watchlist/<version>.snapshot` and `<version>.delta` (version as 20 digits): every published
//!   version has a snapshot (the whole watchlist) and, from version 2, a delta from the version before. Only the
//!   newest [`KEEP_SNAPSHOTS`] snapshots are kept; deltas are small and kept. The snapshot is written last, so a
//!   version is visible to `serve` only once both files are in place.
//! - `DATA_DIR/bundles/plugins/<name>/<version>.plugin`: plugin bundles; the newest version of each name is served.
//!
//! Published bundles are immutable: a new version is a new file, and versions only grow.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use hotspot_device_protocols::bundle::{
    self, Body, BundleError, MAX_BUNDLE_BYTES, Payload, PluginBody, PluginSelfTest, SigningKey,
    WatchlistContent,
};
use hotspot_device_protocols::uplink::{MAX_WATCHLIST_FRAME_BYTES, PluginVersion};

use crate::fsutil::{self, FsError};
use crate::gallery::{GalleryError, GalleryFile};

/// Largest watchlist snapshot `publish` signs: a gateway fetches the snapshot in one watchlist frame
/// ([`MAX_WATCHLIST_FRAME_BYTES`]), with room left for the response's own framing. A bigger one would be published
/// and never reach a gateway (about 140k subjects of 10 fingers and a face fit).
pub const MAX_SNAPSHOT_BYTES: usize = MAX_WATCHLIST_FRAME_BYTES - 1024 * 1024;

/// Snapshots kept on disk (older ones are deleted at publish; deltas stay).
pub const KEEP_SNAPSHOTS: usize = 3;
/// File name of the private key in a keys folder.
pub const PRIVATE_KEY_FILE: &str = "signing.key";
/// File name of the public key in a keys folder.
pub const PUBLIC_KEY_FILE: &str = "signing.pub";
/// Largest plugin accepted for publishing.
pub const MAX_PLUGIN_BYTES: u64 = 64 * 1024 * 1024;

/// Errors with keys and bundles.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BundlesError {
    /// File trouble.
    #[error(transparent)]
    Fs(#[from] FsError),
    /// The gallery cannot be read.
    #[error(transparent)]
    Gallery(#[from] GalleryError),
    /// A key is bad.
    #[error(transparent)]
    Key(#[from] bundle::KeyError),
    /// Signing or reading a bundle failed.
    #[error("{path}: {source}")]
    Bundle {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        source: BundleError,
    },
    /// The published bundles contradict each other (e.g. a snapshot whose content does not decode).
    #[error("published bundles in {dir} are inconsistent: {what}")]
    Inconsistent {
        /// The folder.
        dir: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// Key generation failed.
    #[error("cannot generate a key: {0}")]
    KeyGen(String),
    /// A plugin argument is wrong.
    #[error("plugin: {0}")]
    Plugin(String),
    /// The watchlist's snapshot would not reach the gateways in one frame; nothing was published.
    #[error(
        "the watchlist snapshot of version {version} is {bytes} bytes, more than the {limit} a gateway can fetch in \
         one frame; nothing was published (remove subjects, or raise the uplink's watchlist frame limit in a new \
         protocol version)"
    )]
    TooLarge {
        /// The version it would have been.
        version: u64,
        /// Its size.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// The keys folder already has a key.
    #[error("{0} already exists; refusing to overwrite a signing key")]
    KeyExists(PathBuf),
}

/// Makes a new signing key in `dir`; returns it. Refuses to overwrite an existing key.
pub fn init_keys(dir: &Path) -> Result<SigningKey, BundlesError> {
    let private = dir.join(PRIVATE_KEY_FILE);
    if private.exists() {
        return Err(BundlesError::KeyExists(private));
    }
    fsutil::create_dir_private(dir)?;
    let rng = ring::rand::SystemRandom::new();
    let doc = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng)
        .map_err(|e| BundlesError::KeyGen(e.to_string()))?;
    let key = SigningKey::from_pkcs8(doc.as_ref())?;
    fsutil::write_new_private(&private, doc.as_ref())?;
    fsutil::write_atomic(
        &dir.join(PUBLIC_KEY_FILE),
        format!("{}\n", key.public_key_text()).as_bytes(),
    )?;
    Ok(key)
}

/// Reads a private key file written by [`init_keys`] (the file, or a keys folder holding it).
pub fn load_signing_key(path: &Path) -> Result<SigningKey, BundlesError> {
    let file = if path.is_dir() {
        path.join(PRIVATE_KEY_FILE)
    } else {
        path.to_owned()
    };
    let der = fsutil::read(&file, 64 * 1024)?;
    Ok(SigningKey::from_pkcs8(&der)?)
}

fn watchlist_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("bundles").join("watchlist")
}

fn plugin_dir(data_dir: &Path, name: &str) -> PathBuf {
    data_dir.join("bundles").join("plugins").join(name)
}

fn file_name(version: u64, ext: &str) -> String {
    format!("{version:020}.{ext}")
}

/// Versions present in `dir` with extension `ext`, ascending.
fn versions(dir: &Path, ext: &str) -> Vec<u64> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<u64> = rd
        .filter_map(|e| {
            let name = e.ok()?.file_name();
            let name = name.to_str()?;
            let (stem, e) = name.split_once('.')?;
            if e != ext || stem.len() != 20 {
                return None;
            }
            stem.parse().ok()
        })
        .collect();
    v.sort_unstable();
    v
}

/// The newest published watchlist version (0: none).
pub fn latest_watchlist(data_dir: &Path) -> u64 {
    versions(&watchlist_dir(data_dir), "snapshot")
        .last()
        .copied()
        .unwrap_or(0)
}

fn read_bundle(path: &Path) -> Result<Vec<u8>, BundlesError> {
    Ok(fsutil::read(path, MAX_BUNDLE_BYTES as u64)?)
}

/// The content of the newest published snapshot (empty when none).
pub fn latest_content(data_dir: &Path) -> Result<WatchlistContent, BundlesError> {
    let dir = watchlist_dir(data_dir);
    let Some(v) = versions(&dir, "snapshot").last().copied() else {
        return Ok(WatchlistContent::default());
    };
    let path = dir.join(file_name(v, "snapshot"));
    let bytes = read_bundle(&path)?;
    let payload = bundle::decode_unverified(&bytes, MAX_BUNDLE_BYTES)
        .map_err(|source| BundlesError::Bundle { path, source })?;
    WatchlistContent::default()
        .apply(&payload)
        .map_err(|e| BundlesError::Inconsistent {
            dir,
            what: format!("snapshot {v}: {e}"),
        })
}

/// What [`publish_watchlist`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// The new version.
    pub version: u64,
    /// Subjects in it.
    pub subjects: usize,
    /// Changes since the version before (None for the first).
    pub delta_ops: Option<usize>,
}

/// Signs the gallery's current watchlist as a new version, unless it equals the newest published one. Refuses,
/// writing nothing, a snapshot larger than [`MAX_SNAPSHOT_BYTES`].
pub fn publish_watchlist(
    data_dir: &Path,
    key: &SigningKey,
    now_ms: i64,
) -> Result<Option<Published>, BundlesError> {
    publish_watchlist_within(data_dir, key, now_ms, MAX_SNAPSHOT_BYTES)
}

fn publish_watchlist_within(
    data_dir: &Path,
    key: &SigningKey,
    now_ms: i64,
    max_snapshot_bytes: usize,
) -> Result<Option<Published>, BundlesError> {
    let gallery = GalleryFile::load(data_dir)?;
    let next = gallery.watchlist();
    let prev = latest_content(data_dir)?;
    if prev.version > 0 && prev.entries == next {
        return Ok(None);
    }
    let version = prev.version + 1;
    let dir = watchlist_dir(data_dir);
    fsutil::create_dir_private(&dir)?;
    let content_hash = bundle::content_hash(next.values());
    let subjects = next.len();
    let delta = (prev.version > 0).then(|| prev.diff(&next));
    // The snapshot is signed, and its size checked, before anything is written.
    let snapshot_path = dir.join(file_name(version, "snapshot"));
    let snapshot = sign(
        &Payload {
            version,
            created_at_ms: now_ms,
            content_hash,
            body: Body::WatchlistSnapshot {
                entries: next.into_values().collect(),
            },
        },
        key,
        &snapshot_path,
    )?;
    if snapshot.len() > max_snapshot_bytes {
        return Err(BundlesError::TooLarge {
            version,
            bytes: snapshot.len(),
            limit: max_snapshot_bytes,
        });
    }
    let delta_ops = delta.as_ref().map(Vec::len);
    if let Some(ops) = delta {
        let payload = Payload {
            version,
            created_at_ms: now_ms,
            content_hash,
            body: Body::WatchlistDelta {
                base_version: prev.version,
                base_hash: prev.hash(),
                ops,
            },
        };
        write_signed(&payload, key, &dir.join(file_name(version, "delta")))?;
    }
    fsutil::write_atomic(&snapshot_path, &snapshot)?;
    let snaps = versions(&dir, "snapshot");
    for old in snaps
        .iter()
        .take(snaps.len().saturating_sub(KEEP_SNAPSHOTS))
    {
        // A leftover old snapshot is harmless (it is never served while a newer one exists).
        let _ = std::fs::remove_file(dir.join(file_name(*old, "snapshot")));
    }
    Ok(Some(Published {
        version,
        subjects,
        delta_ops,
    }))
}

/// The bundles that take a gateway from `have` to the newest version: the deltas when they are all on disk and
/// smaller than the snapshot, otherwise the newest snapshot. Empty when `have` is the newest.
pub fn watchlist_bundles_for(data_dir: &Path, have: u64) -> Result<Vec<Vec<u8>>, BundlesError> {
    let dir = watchlist_dir(data_dir);
    let latest = latest_watchlist(data_dir);
    if latest == 0 || have == latest {
        return Ok(Vec::new());
    }
    let snapshot = dir.join(file_name(latest, "snapshot"));
    if have > 0 && have < latest {
        let paths: Vec<PathBuf> = (have + 1..=latest)
            .map(|v| dir.join(file_name(v, "delta")))
            .collect();
        let delta_bytes: Option<u64> = paths
            .iter()
            .map(|p| std::fs::metadata(p).ok().map(|m| m.len()))
            .sum();
        let snapshot_bytes = std::fs::metadata(&snapshot).map(|m| m.len()).unwrap_or(0);
        if delta_bytes.is_some_and(|d| d < snapshot_bytes) {
            return paths.iter().map(|p| read_bundle(p)).collect();
        }
    }
    // A gateway ahead of central (central's bundles were lost or rolled back) gets the newest snapshot too: it
    // refuses it as a rollback and reports that, which is the alarm ops need.
    Ok(vec![read_bundle(&snapshot)?])
}

/// What `plugin publish` needs.
#[derive(Debug, Clone)]
pub struct PluginSpec {
    /// Plugin name (`[a-z0-9-]`, 1..=64).
    pub name: String,
    /// World: `decoder`, `quality` or `policy`.
    pub world: String,
    /// WIT package version it was built against.
    pub wit_version: String,
    /// The component.
    pub wasm: Vec<u8>,
    /// Self-tests run at install.
    pub self_test: Vec<PluginSelfTest>,
}

/// Signs a plugin as the next version of its name; returns the version.
pub fn publish_plugin(
    data_dir: &Path,
    key: &SigningKey,
    spec: PluginSpec,
    now_ms: i64,
) -> Result<u64, BundlesError> {
    let name_ok = !spec.name.is_empty()
        && spec.name.len() <= 64
        && spec
            .name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !name_ok {
        return Err(BundlesError::Plugin(format!(
            "name {:?} must be 1 to 64 of a-z, 0-9 and -",
            spec.name
        )));
    }
    if !spec.wasm.starts_with(b"\0asm") {
        return Err(BundlesError::Plugin(
            "the file is not WebAssembly (no \\0asm header)".into(),
        ));
    }
    let dir = plugin_dir(data_dir, &spec.name);
    fsutil::create_dir_private(&dir)?;
    let version = versions(&dir, "plugin").last().copied().unwrap_or(0) + 1;
    let path = dir.join(file_name(version, "plugin"));
    let payload = Payload {
        version,
        created_at_ms: now_ms,
        content_hash: bundle::sha256(&spec.wasm),
        body: Body::Plugin(PluginBody {
            name: spec.name,
            world: spec.world,
            wit_version: spec.wit_version,
            wasm: spec.wasm,
            self_test: spec.self_test,
        }),
    };
    write_signed(&payload, key, &path)?;
    Ok(version)
}

/// The signed bundle of `payload`, to be written to `path` (named in errors).
fn sign(payload: &Payload, key: &SigningKey, path: &Path) -> Result<Vec<u8>, BundlesError> {
    bundle::sign(payload, key).map_err(|source| BundlesError::Bundle {
        path: path.to_owned(),
        source,
    })
}

/// Signs `payload` and writes the bundle to `path` atomically.
fn write_signed(payload: &Payload, key: &SigningKey, path: &Path) -> Result<(), BundlesError> {
    fsutil::write_atomic(path, &sign(payload, key, path)?)?;
    Ok(())
}

/// The newest published version of every plugin.
pub fn latest_plugins(data_dir: &Path) -> BTreeMap<String, u64> {
    let root = data_dir.join("bundles").join("plugins");
    let Ok(rd) = std::fs::read_dir(&root) else {
        return BTreeMap::new();
    };
    rd.filter_map(|e| {
        let e = e.ok()?;
        let name = e.file_name().to_str()?.to_owned();
        let v = versions(&e.path(), "plugin").last().copied()?;
        Some((name, v))
    })
    .collect()
}

/// The newest bundle of every plugin newer than what the gateway has.
pub fn plugin_bundles_for(
    data_dir: &Path,
    have: &[PluginVersion],
) -> Result<Vec<Vec<u8>>, BundlesError> {
    let mut out = Vec::new();
    for (name, v) in latest_plugins(data_dir) {
        let installed = have
            .iter()
            .find(|p| p.name == name)
            .map_or(0, |p| p.version);
        if v > installed {
            out.push(read_bundle(
                &plugin_dir(data_dir, &name).join(file_name(v, "plugin")),
            )?);
        }
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::gallery::GallerySubject;
    use hotspot_device_protocols::bundle::{TrustedKeys, verify};

    fn subject(id: &str, b: u8) -> GallerySubject {
        GallerySubject {
            subject_id: id.into(),
            lists: vec!["watchlist".into()],
            fingers: vec![(2, vec![b; 8])],
            face: None,
            watchlist_expires_at_ms: None,
        }
    }

    #[test]
    fn publish_writes_snapshots_and_deltas_that_gateways_can_follow() {
        let d = tempfile::tempdir().unwrap();
        let key = init_keys(&d.path().join("keys")).unwrap();
        assert!(matches!(
            init_keys(&d.path().join("keys")),
            Err(BundlesError::KeyExists(_))
        ));
        let key2 = load_signing_key(&d.path().join("keys")).unwrap();
        assert_eq!(key2.public_key(), key.public_key());
        let trusted = TrustedKeys::parse(&[key.public_key_text()]).unwrap();
        let data = d.path().join("data");
        let mut g = GalleryFile::load(&data).unwrap();
        g.merge(vec![subject("a", 1), subject("b", 2)]);
        g.merge((0..20).map(|i| subject(&format!("z{i:02}"), i)).collect());
        g.save(&data).unwrap();
        let p1 = publish_watchlist(&data, &key, 10).unwrap().unwrap();
        assert_eq!((p1.version, p1.subjects, p1.delta_ops), (1, 22, None));
        // Nothing changed: nothing published.
        assert_eq!(publish_watchlist(&data, &key, 11).unwrap(), None);
        g.merge(vec![subject("b", 3), subject("c", 4)]);
        g.save(&data).unwrap();
        let p2 = publish_watchlist(&data, &key, 12).unwrap().unwrap();
        assert_eq!((p2.version, p2.delta_ops), (2, Some(2)));

        // A gateway at 0 gets the snapshot; at 1, the delta; at 2, nothing.
        let apply = |mut have: WatchlistContent, bundles: Vec<Vec<u8>>| {
            for b in bundles {
                have = have
                    .apply(&verify(&b, &trusted, MAX_BUNDLE_BYTES).unwrap().payload)
                    .unwrap();
            }
            have
        };
        let from0 = apply(
            WatchlistContent::default(),
            watchlist_bundles_for(&data, 0).unwrap(),
        );
        assert_eq!(from0.version, 2);
        assert_eq!(from0.entries, g.watchlist());
        let v1 = apply(
            WatchlistContent::default(),
            vec![read_bundle(&watchlist_dir(&data).join(file_name(1, "snapshot"))).unwrap()],
        );
        let b = watchlist_bundles_for(&data, 1).unwrap();
        assert!(matches!(
            bundle::decode_unverified(&b[0], MAX_BUNDLE_BYTES)
                .unwrap()
                .body,
            Body::WatchlistDelta { .. }
        ));
        assert_eq!(apply(v1, b), from0);
        assert!(watchlist_bundles_for(&data, 2).unwrap().is_empty());

        // A snapshot too big to reach a gateway in one frame is refused, and nothing of it is written.
        g.merge(vec![subject("d", 5)]);
        g.save(&data).unwrap();
        let before: Vec<_> = std::fs::read_dir(watchlist_dir(&data))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        let refused = publish_watchlist_within(&data, &key, 13, 100).unwrap_err();
        assert!(
            matches!(
                refused,
                BundlesError::TooLarge {
                    version: 3,
                    limit: 100,
                    ..
                }
            ),
            "{refused}"
        );
        assert!(refused.to_string().contains("nothing was published"));
        let after: Vec<_> = std::fs::read_dir(watchlist_dir(&data))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(before.len(), after.len());
        assert_eq!(latest_watchlist(&data), 2);
        assert_eq!(
            publish_watchlist(&data, &key, 14).unwrap().unwrap().version,
            3
        );
    }

    #[test]
    fn plugins_are_versioned_per_name() {
        let d = tempfile::tempdir().unwrap();
        let key = init_keys(&d.path().join("keys")).unwrap();
        let spec = |name: &str| PluginSpec {
            name: name.into(),
            world: "decoder".into(),
            wit_version: "1.0.0".into(),
            wasm: b"\0asm\x0d\0\x01\0".to_vec(),
            self_test: vec![],
        };
        assert_eq!(publish_plugin(d.path(), &key, spec("dec"), 1).unwrap(), 1);
        assert_eq!(publish_plugin(d.path(), &key, spec("dec"), 2).unwrap(), 2);
        assert_eq!(publish_plugin(d.path(), &key, spec("q"), 3).unwrap(), 1);
        assert!(publish_plugin(d.path(), &key, spec("Bad Name"), 3).is_err());
        let have = [PluginVersion {
            name: "dec".into(),
            version: 2,
        }];
        assert_eq!(plugin_bundles_for(d.path(), &have).unwrap().len(), 1);
        assert_eq!(plugin_bundles_for(d.path(), &[]).unwrap().len(), 2);
    }
}
