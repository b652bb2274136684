//! The installed watchlist: signed bundles verified, applied, persisted sealed, indexed aside and swapped whole, so
//! a match never sees half an update.
//!
//! # Update path ([`Watchlist::apply_bundles`], on a blocking thread)
//! 1. Every bundle is verified against `[watchlist] trusted_keys` ([`bundle::verify`]): unsigned, unknown key,
//!    altered or truncated bundles stop here.
//! 2. Each is applied in order to the persisted content ([`WatchlistContent::apply`]): a version not newer than the
//!    installed one (rollback, replay), a delta for another base version or base hash, an operation that does not
//!    fit, or a result whose hash is not the signed one stop here.
//! 3. The new fingerprint and face indexes are built aside from the result; an undecodable template or embedding
//!    stops here.
//! 4. The content is written sealed (ChaCha20-Poly1305 with the payload key) to `storage.dir/watchlist.sealed`
//!    (temporary file, fsync, rename, fsync of the folder), then the index is swapped in with one pointer store.
//!
//! A failure at any step leaves the installed watchlist and the file as they were; the whole fetch is refused
//! (a later bundle of the same fetch is not applied on top of a refused one). A crash between 4's rename and the
//! swap is harmless: the next start installs the file.
//!
//! # Expiry
//! Entries may carry an expiry. The index holds only entries not expired at the time it was built for, and the
//! expiry task ([`Watchlist::run_expiry`]) builds the next index ahead of the next expiry and swaps it in at that
//! instant, so an expired entry stops matching on time rather than after a rebuild.
//!
//! # Freshness
//! The age of the watchlist is the time since central last confirmed that the installed version is its newest
//! (a fetch that installs or finds nothing new); past `[watchlist] max_age_hours` the `watchlist_stale` alarm is
//! raised. The confirmation time is persisted in the `meta` tree so a restart does not reset the age.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use hotspot_device_protocols::bundle::{
    self, ApplyError, BundleError, Hash, MAX_BUNDLE_BYTES, TrustedKeys, WatchlistContent,
};
use hotspot_matcher::face::{Embedding, FaceIndex};
use hotspot_matcher::probe::Gallery;
use hotspot_matcher::{FingerprintIndex, Subject, Template};
use tokio::sync::watch;
use tracing::{info, warn};

use hotspot_central::fsutil;

use crate::crypto::PayloadKey;

/// `meta` key of the last confirmation time (Unix ms).
pub const CONFIRMED_META_KEY: &str = "watchlist_confirmed_ms";
/// File name of the sealed content inside `storage.dir`.
pub const CONTENT_FILE: &str = "watchlist.sealed";
/// Associated data binding the sealed file to its purpose.
const CONTENT_AAD: &[u8] = b"hotspot watchlist content v1";
/// Largest sealed content file read.
const MAX_CONTENT_BYTES: u64 = 2 * MAX_BUNDLE_BYTES as u64;

/// One installed watchlist version.
#[derive(Debug)]
pub struct Installed {
    /// Version (0: none).
    pub version: u64,
    /// Hash of the content (as signed by central).
    pub content_hash: Hash,
    /// When central made it (Unix ms; 0: none).
    pub created_at_ms: i64,
    /// Subjects matched against (not expired).
    pub subjects: usize,
    /// Entries left out because they had expired when this index was built.
    pub expired: usize,
    /// The earliest expiry among the entries matched against.
    pub next_expiry_ms: Option<i64>,
    /// The fingerprint 1:N index.
    pub index: FingerprintIndex,
    /// The face 1:N index (embeddings only).
    pub faces: FaceIndex,
}

impl Installed {
    /// What a capture is searched against.
    pub fn gallery(&self) -> Gallery<'_> {
        Gallery {
            fingers: &self.index,
            faces: &self.faces,
        }
    }

    fn empty() -> Self {
        Self {
            version: 0,
            content_hash: WatchlistContent::default().hash(),
            created_at_ms: 0,
            subjects: 0,
            expired: 0,
            next_expiry_ms: None,
            index: FingerprintIndex::build(Vec::new()),
            faces: FaceIndex::build(Vec::new()),
        }
    }
}

/// Why an update was refused or the content cannot be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WatchlistError {
    /// A template does not decode.
    #[error("subject {subject}: template for finger {position} does not decode: {what}")]
    BadTemplate {
        /// Subject id.
        subject: String,
        /// Finger position.
        position: u8,
        /// Decoder error.
        what: String,
    },
    /// A face embedding does not decode (or is from another face model).
    #[error("subject {subject}: face embedding does not decode: {what}")]
    BadFace {
        /// Subject id.
        subject: String,
        /// Decoder error.
        what: String,
    },
    /// The bundle does not verify.
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// The bundle does not apply.
    #[error(transparent)]
    Apply(#[from] ApplyError),
    /// The sealed content file cannot be read or written.
    #[error("{path}: {what}")]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        what: String,
    },
}

/// A refused update, as audited and reported to central.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Bundle kind (`unknown` when it did not verify).
    pub kind: String,
    /// Version it claimed (0 when it did not verify).
    pub version: u64,
    /// Why.
    pub reason: String,
}

impl From<Refusal> for hotspot_device_protocols::uplink::GatewayEvent {
    fn from(r: Refusal) -> Self {
        Self::BundleRefused {
            kind: r.kind,
            version: r.version,
            reason: r.reason,
        }
    }
}

/// What an accepted update installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// Version before.
    pub from_version: u64,
    /// Version now.
    pub version: u64,
    /// Kinds of the bundles applied, in order.
    pub kinds: Vec<&'static str>,
    /// Key ids that signed them.
    pub key_ids: Vec<String>,
    /// Subjects matched against now.
    pub subjects: usize,
    /// Entries left out as expired.
    pub expired: usize,
    /// Time to verify, apply, build and persist, ms.
    pub took_ms: u64,
}

/// The holder the matcher reads from, and the only writer of the watchlist.
#[derive(Debug)]
pub struct Watchlist {
    current: ArcSwap<Installed>,
    trusted: TrustedKeys,
    file: PathBuf,
    key: Arc<PayloadKey>,
    max_age_ms: i64,
    /// Unix ms when central last confirmed the installed version current (0: never).
    confirmed_at_ms: AtomicI64,
    /// Serialises writers (updates and expiry swaps).
    write: std::sync::Mutex<()>,
    /// Bumped on every swap (wakes the expiry task).
    generation: watch::Sender<u64>,
    /// Last index build time, ms (the expiry task starts that much ahead, twice over).
    last_build_ms: AtomicI64,
}

impl Watchlist {
    /// An empty watchlist that installs bundles signed by `trusted`, persisting to `storage_dir/watchlist.sealed`.
    pub fn new(
        trusted: TrustedKeys,
        storage_dir: &std::path::Path,
        key: Arc<PayloadKey>,
        max_age_ms: i64,
    ) -> Self {
        Self {
            current: ArcSwap::from_pointee(Installed::empty()),
            trusted,
            file: storage_dir.join(CONTENT_FILE),
            key,
            max_age_ms,
            confirmed_at_ms: AtomicI64::new(0),
            write: std::sync::Mutex::new(()),
            generation: watch::channel(0).0,
            last_build_ms: AtomicI64::new(0),
        }
    }

    /// The installed version, for a whole match.
    pub fn current(&self) -> Arc<Installed> {
        self.current.load_full()
    }

    /// Builds the indexes of `content` as of `as_of_ms` (entries expired by then are left out). CPU-heavy.
    pub fn build(content: &WatchlistContent, as_of_ms: i64) -> Result<Installed, WatchlistError> {
        let mut subjects = Vec::with_capacity(content.entries.len());
        let mut faces = Vec::new();
        let (mut expired, mut next_expiry_ms) = (0, None::<i64>);
        for s in content.entries.values() {
            if let Some(at) = s.expires_at_ms {
                if at <= as_of_ms {
                    expired += 1;
                    continue;
                }
                next_expiry_ms = Some(next_expiry_ms.map_or(at, |n| n.min(at)));
            }
            if let Some(bytes) = &s.face {
                let e = Embedding::decode(bytes).map_err(|e| WatchlistError::BadFace {
                    subject: s.subject_id.clone(),
                    what: e.to_string(),
                })?;
                faces.push((s.subject_id.clone(), e));
            }
            let mut fingers = Vec::with_capacity(s.fingers.len());
            for (position, bytes) in &s.fingers {
                let t = Template::decode(bytes).map_err(|e| WatchlistError::BadTemplate {
                    subject: s.subject_id.clone(),
                    position: *position,
                    what: e.to_string(),
                })?;
                fingers.push((*position, t));
            }
            subjects.push(Subject {
                subject_id: s.subject_id.clone(),
                fingers,
            });
        }
        Ok(Installed {
            version: content.version,
            content_hash: content.hash(),
            created_at_ms: content.created_at_ms,
            subjects: subjects.len(),
            expired,
            next_expiry_ms,
            index: FingerprintIndex::build(subjects),
            faces: FaceIndex::build(faces),
        })
    }

    /// [`Self::build`] on a dedicated one-thread pool: the index build's parallel loops would otherwise queue in
    /// the global rayon pool ahead of the 1:N searches of live captures, and an officer would wait for the whole
    /// build (measured: a 60 s stall during a 100k-subject swap before this). Slower to build, but matching keeps
    /// every core it had.
    pub fn build_aside(
        content: &WatchlistContent,
        as_of_ms: i64,
    ) -> Result<Installed, WatchlistError> {
        match rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .thread_name(|_| "watchlist-build".into())
            .build()
        {
            Ok(pool) => pool.install(|| Self::build(content, as_of_ms)),
            Err(e) => {
                warn!(error = %e, "no separate pool for the watchlist build; building in the shared one");
                Self::build(content, as_of_ms)
            }
        }
    }

    fn file_err(&self, what: impl std::fmt::Display) -> WatchlistError {
        WatchlistError::File {
            path: self.file.clone(),
            what: what.to_string(),
        }
    }

    /// The persisted content (empty when there is none yet).
    pub fn load_content(&self) -> Result<WatchlistContent, WatchlistError> {
        let sealed = match fsutil::read(&self.file, MAX_CONTENT_BYTES) {
            Ok(b) => b,
            Err(e) if e.source.kind() == std::io::ErrorKind::NotFound => {
                return Ok(WatchlistContent::default());
            }
            Err(e) => return Err(self.fs_err(e)),
        };
        let plain = self
            .key
            .open(CONTENT_AAD, &sealed)
            .map_err(|e| self.file_err(format!("cannot be decrypted: {e}")))?;
        postcard::from_bytes(&plain).map_err(|e| self.file_err(format!("does not decode: {e}")))
    }

    fn save_content(&self, content: &WatchlistContent) -> Result<(), WatchlistError> {
        let plain = postcard::to_stdvec(content).map_err(|e| self.file_err(e))?;
        let sealed = self
            .key
            .seal(CONTENT_AAD, &plain)
            .map_err(|e| self.file_err(e))?;
        fsutil::write_atomic(&self.file, &sealed).map_err(|e| self.fs_err(e))
    }

    fn fs_err(&self, e: fsutil::FsError) -> WatchlistError {
        self.file_err(format!("{}: {}", e.what, e.source))
    }

    fn swap(&self, installed: Installed) {
        let old = self.current.swap(Arc::new(installed));
        self.generation.send_modify(|g| *g += 1);
        // The old index is freed here unless a search still holds it (then with that search).
        drop(old);
        // Off the async threads (an expiry swap runs on one): after a large build the allocator's free lists take a
        // while to walk.
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn_blocking(crate::memory::release_freed_memory);
            }
            Err(_) => crate::memory::release_freed_memory(),
        }
    }

    /// Installs the persisted content (at start-up). Blocking.
    pub fn restore(&self, now_ms: i64) -> Result<u64, WatchlistError> {
        let _w = self.write.lock().unwrap_or_else(|p| p.into_inner());
        let content = self.load_content()?;
        let built = Self::build_aside(&content, now_ms)?;
        // Freed before the swap, so that the allocator gives its pages back with the build's.
        drop(content);
        let v = built.version;
        self.swap(built);
        Ok(v)
    }

    /// Verifies and applies `bundles` in order, builds the new index aside, persists, then swaps. Blocking.
    /// On refusal nothing changes.
    pub fn apply_bundles(&self, bundles: &[Vec<u8>], now_ms: i64) -> Result<Applied, Refusal> {
        let started = std::time::Instant::now();
        let _w = self.write.lock().unwrap_or_else(|p| p.into_inner());
        let refuse = |kind: &str, version: u64, e: &dyn std::fmt::Display| Refusal {
            kind: kind.to_owned(),
            version,
            reason: e.to_string(),
        };
        let mut content = self
            .load_content()
            .map_err(|e| refuse("unknown", 0, &format!("installed content unreadable: {e}")))?;
        let from_version = content.version;
        if content.version != self.current().version {
            // The file and the index disagree (a crash between persisting and swapping): trust the file.
            warn!(
                file = content.version,
                installed = self.current().version,
                "watchlist file is ahead of the index"
            );
        }
        let (mut kinds, mut key_ids) = (Vec::new(), Vec::new());
        let mut last = ("unknown", 0);
        for b in bundles {
            let v = bundle::verify(b, &self.trusted, MAX_BUNDLE_BYTES)
                .map_err(|e| refuse("unknown", 0, &e))?;
            let kind = v.payload.kind();
            last = (kind, v.payload.version);
            content = content
                .apply(&v.payload)
                .map_err(|e| refuse(kind, v.payload.version, &e))?;
            kinds.push(kind);
            key_ids.push(v.key_id);
        }
        let built = Self::build_aside(&content, now_ms).map_err(|e| refuse(last.0, last.1, &e))?;
        let build_ms = started.elapsed().as_millis() as i64;
        self.save_content(&content)
            .map_err(|e| refuse(last.0, last.1, &format!("cannot persist: {e}")))?;
        let applied = Applied {
            from_version,
            version: built.version,
            kinds,
            key_ids,
            subjects: built.subjects,
            expired: built.expired,
            took_ms: started.elapsed().as_millis() as u64,
        };
        self.last_build_ms.store(build_ms, Ordering::Relaxed);
        // Freed before the swap, so that the allocator gives its pages back with the build's.
        drop(content);
        self.swap(built);
        self.confirm(now_ms);
        Ok(applied)
    }

    /// Central confirmed that the installed version is its newest.
    pub fn confirm(&self, now_ms: i64) {
        self.confirmed_at_ms.store(now_ms, Ordering::Relaxed);
    }

    /// Sets the confirmation time read back at start-up.
    pub fn set_confirmed_at(&self, ms: i64) {
        self.confirmed_at_ms.store(ms, Ordering::Relaxed);
    }

    /// Unix ms of the last confirmation (0: never).
    pub fn confirmed_at_ms(&self) -> i64 {
        self.confirmed_at_ms.load(Ordering::Relaxed)
    }

    /// Milliseconds since the last confirmation (`None`: never confirmed).
    pub fn age_ms(&self, now_ms: i64) -> Option<i64> {
        match self.confirmed_at_ms() {
            0 => None,
            t => Some(now_ms.saturating_sub(t).max(0)),
        }
    }

    /// The configured freshness limit, ms.
    pub fn max_age_ms(&self) -> i64 {
        self.max_age_ms
    }

    /// Older than the limit, or never confirmed.
    pub fn stale(&self, now_ms: i64) -> bool {
        self.age_ms(now_ms).is_none_or(|a| a > self.max_age_ms)
    }

    /// Swaps in the index for `as_of_ms` if `version` is still installed; returns entries newly left out.
    fn expire(&self, version: u64, built: Installed) -> Option<usize> {
        let _w = self.write.lock().unwrap_or_else(|p| p.into_inner());
        let cur = self.current();
        if cur.version != version || built.version != version {
            return None;
        }
        let newly = built.expired.saturating_sub(cur.expired);
        self.swap(built);
        Some(newly)
    }

    /// Keeps expiries on time, forever: builds the next index ahead of the earliest expiry and swaps it in at that
    /// instant. `now_ms` is the wall clock; `on_expired` hears of each swap.
    pub async fn run_expiry(
        self: Arc<Self>,
        now_ms: impl Fn() -> i64 + Send + 'static,
        on_expired: impl Fn(u64, usize) + Send + 'static,
    ) {
        let mut gen_rx = self.generation.subscribe();
        loop {
            let cur = self.current();
            let Some(at) = cur.next_expiry_ms else {
                if gen_rx.changed().await.is_err() {
                    return;
                }
                continue;
            };
            let lead = (2 * self.last_build_ms.load(Ordering::Relaxed)).max(1000);
            let sleep = |until: i64| {
                tokio::time::sleep(Duration::from_millis(
                    u64::try_from(until.saturating_sub(now_ms())).unwrap_or(0),
                ))
            };
            tokio::select! {
                () = sleep(at - lead) => {}
                r = gen_rx.changed() => { if r.is_err() { return; } continue; }
            }
            let this = self.clone();
            let built = tokio::task::spawn_blocking(move || {
                let content = this.load_content()?;
                Self::build_aside(&content, at)
            })
            .await;
            let built = match built {
                Ok(Ok(b)) => b,
                Ok(Err(e)) => {
                    warn!(error = %e, "cannot rebuild the watchlist for an expiry; retrying in 10 s");
                    tokio::time::sleep(Duration::from_secs(10)).await;
                    continue;
                }
                Err(e) => {
                    warn!(error = %e, "expiry rebuild task failed");
                    tokio::time::sleep(Duration::from_secs(10)).await;
                    continue;
                }
            };
            tokio::select! {
                () = sleep(at) => {}
                r = gen_rx.changed() => { if r.is_err() { return; } continue; }
            }
            if let Some(newly) = self.expire(cur.version, built) {
                info!(
                    version = cur.version,
                    expired = newly,
                    "watchlist entries expired"
                );
                on_expired(cur.version, newly);
            }
            // The swap above bumped the generation; mark it seen.
            gen_rx.borrow_and_update();
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use hotspot_device_protocols::bundle::{
        Body, DeltaOp, Payload, SigningKey, WatchlistEntry, content_hash, sign,
    };

    struct Fixture {
        _dir: tempfile::TempDir,
        key: SigningKey,
        w: Arc<Watchlist>,
    }

    /// A fresh random key (the seed only keeps call sites readable: different seeds, different keys).
    fn signing_key(_seed: u8) -> SigningKey {
        let rng = ring::rand::SystemRandom::new();
        let doc = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        SigningKey::from_pkcs8(doc.as_ref()).unwrap()
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let key = signing_key(1);
        let trusted = TrustedKeys::parse(&[key.public_key_text()]).unwrap();
        let pk = Arc::new(PayloadKey::load_or_create(&dir.path().join("k")).unwrap());
        let w = Arc::new(Watchlist::new(trusted, dir.path(), pk, 3_600_000));
        Fixture { _dir: dir, key, w }
    }

    fn entry(id: &str, expires_at_ms: Option<i64>) -> WatchlistEntry {
        WatchlistEntry {
            subject_id: id.into(),
            fingers: vec![(1, Template { minutiae: vec![] }.encode())],
            face: None,
            expires_at_ms,
        }
    }

    fn snapshot(version: u64, entries: Vec<WatchlistEntry>) -> Payload {
        Payload {
            version,
            created_at_ms: 77,
            content_hash: content_hash(&entries),
            body: Body::WatchlistSnapshot { entries },
        }
    }

    #[test]
    fn every_refusal_keeps_the_installed_watchlist() {
        let f = fixture();
        let v1 = sign(
            &snapshot(1, vec![entry("a", None), entry("b", None)]),
            &f.key,
        )
        .unwrap();
        let applied = f.w.apply_bundles(std::slice::from_ref(&v1), 1_000).unwrap();
        assert_eq!((applied.version, applied.subjects), (1, 2));
        assert_eq!(f.w.current().created_at_ms, 77);

        let base = f.w.load_content().unwrap();
        let delta = |version: u64, ops: Vec<DeltaOp>, result: Vec<WatchlistEntry>| Payload {
            version,
            created_at_ms: 88,
            content_hash: content_hash(&result),
            body: Body::WatchlistDelta {
                base_version: 1,
                base_hash: base.hash(),
                ops,
            },
        };
        let good = delta(
            2,
            vec![DeltaOp::Add(entry("c", None))],
            vec![entry("a", None), entry("b", None), entry("c", None)],
        );
        let mut unsigned = sign(&good, &f.key).unwrap();
        unsigned[9..81].fill(0);
        let mut tampered = sign(&good, &f.key).unwrap();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            ("unsigned", unsigned, "unsigned"),
            (
                "unknown key",
                sign(&good, &signing_key(9)).unwrap(),
                "unknown key",
            ),
            ("tampered", tampered, "altered or forged"),
            ("replay", v1.clone(), "rollback or replay"),
            (
                "rollback",
                sign(&snapshot(0, vec![]), &f.key).unwrap(),
                "rollback or replay",
            ),
            (
                "does not apply",
                sign(
                    &delta(
                        2,
                        vec![DeltaOp::Remove {
                            subject_id: "zz".into(),
                        }],
                        vec![],
                    ),
                    &f.key,
                )
                .unwrap(),
                "not on the list",
            ),
            (
                "bad template",
                sign(
                    &snapshot(
                        5,
                        vec![WatchlistEntry {
                            fingers: vec![(1, vec![1, 2, 3])],
                            ..entry("x", None)
                        }],
                    ),
                    &f.key,
                )
                .unwrap(),
                "does not decode",
            ),
        ];
        for (name, b, why) in cases {
            let r = f.w.apply_bundles(&[b], 2_000).unwrap_err();
            assert!(r.reason.contains(why), "{name}: {}", r.reason);
            assert_eq!(f.w.current().version, 1, "{name}");
            assert_eq!(f.w.current().subjects, 2, "{name}");
            assert_eq!(f.w.load_content().unwrap().version, 1, "{name}");
        }
        // A good delta after all that still applies, and a fetch with a bad second bundle changes nothing.
        let applied =
            f.w.apply_bundles(&[sign(&good, &f.key).unwrap()], 3_000)
                .unwrap();
        assert_eq!(
            (applied.version, applied.subjects, applied.kinds[0]),
            (2, 3, "watchlist-delta")
        );
        let v3 = sign(&snapshot(3, vec![entry("a", None)]), &f.key).unwrap();
        let bad = sign(&snapshot(3, vec![]), &signing_key(9)).unwrap();
        assert!(f.w.apply_bundles(&[v3, bad], 4_000).is_err());
        assert_eq!(f.w.current().version, 2);
    }

    #[test]
    fn persisted_content_is_sealed_and_restored() {
        let f = fixture();
        let b = sign(&snapshot(4, vec![entry("secret-subject", None)]), &f.key).unwrap();
        f.w.apply_bundles(&[b], 1_000).unwrap();
        let raw = std::fs::read(&f.w.file).unwrap();
        assert!(!raw.windows(14).any(|w| w == b"secret-subject"));
        let again = Watchlist::new(
            f.w.trusted.clone(),
            f.w.file.parent().unwrap(),
            f.w.key.clone(),
            1,
        );
        assert_eq!(again.restore(2_000).unwrap(), 4);
        assert_eq!(again.current().subjects, 1);
        // A damaged file is an error, not a panic, and nothing is installed from it.
        std::fs::write(&f.w.file, b"garbage").unwrap();
        let third = Watchlist::new(
            f.w.trusted.clone(),
            f.w.file.parent().unwrap(),
            f.w.key.clone(),
            1,
        );
        assert!(third.restore(2_000).is_err());
        assert_eq!(third.current().version, 0);
    }

    #[test]
    fn expired_entries_are_left_out_of_the_index() {
        let f = fixture();
        let b = sign(
            &snapshot(
                1,
                vec![
                    entry("a", Some(5_000)),
                    entry("b", None),
                    entry("c", Some(9_000)),
                ],
            ),
            &f.key,
        )
        .unwrap();
        let applied = f.w.apply_bundles(&[b], 6_000).unwrap();
        assert_eq!((applied.subjects, applied.expired), (2, 1));
        assert_eq!(f.w.current().next_expiry_ms, Some(9_000));
        let later = Watchlist::build(&f.w.load_content().unwrap(), 9_000).unwrap();
        assert_eq!(
            (later.subjects, later.expired, later.next_expiry_ms),
            (1, 2, None)
        );
    }

    #[tokio::test]
    async fn the_expiry_task_swaps_on_time() {
        let f = fixture();
        let now = || crate::pipeline::now_ms();
        let at = now() + 1_500;
        let b = sign(
            &snapshot(1, vec![entry("a", Some(at)), entry("b", None)]),
            &f.key,
        )
        .unwrap();
        f.w.apply_bundles(&[b], now()).unwrap();
        assert_eq!(f.w.current().subjects, 2);
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let task = tokio::spawn(f.w.clone().run_expiry(now, move |v, n| {
            let _ = tx.send((v, n, crate::pipeline::now_ms()));
        }));
        let (v, n, swapped_at) = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .unwrap()
            .unwrap();
        task.abort();
        assert_eq!((v, n), (1, 1));
        assert!(swapped_at >= at, "swapped {} ms early", at - swapped_at);
        assert_eq!(f.w.current().subjects, 1);
    }

    #[test]
    fn freshness_follows_confirmations() {
        let f = fixture();
        assert!(f.w.stale(10));
        f.w.confirm(1_000);
        assert_eq!(f.w.age_ms(61_000), Some(60_000));
        assert!(!f.w.stale(1_000 + 3_600_000));
        assert!(f.w.stale(1_001 + 3_600_000));
    }

    #[test]
    fn faces_are_indexed_beside_fingers() {
        let f = fixture();
        let mut values = [0.0f32; hotspot_matcher::face::EMBEDDING_DIM];
        values[0] = 1.0;
        let e = Embedding::from_raw(&values).unwrap();
        let mut s = entry("s1", None);
        s.face = Some(e.encode());
        f.w.apply_bundles(&[sign(&snapshot(1, vec![s]), &f.key).unwrap()], 0)
            .unwrap();
        let installed = f.w.current();
        assert_eq!(installed.faces.subjects(), 1);
        let best = installed.faces.search(&e, 1);
        assert_eq!(best[0].0, "s1");
        assert!(best[0].1 > 0.99);
    }
}
