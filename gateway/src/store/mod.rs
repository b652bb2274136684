//! The gateway's durable state: captures, results and the outbox, on an embedded engine ([`engine`], sled).
//!
//! # On-disk layout (`storage.dir/db`, one tree per concern)
//! | tree | key | value (every value framed by [`record`]: format byte, CRC-32, postcard body) |
//! |---|---|---|
//! | `captures` | capture id (16 bytes) | [`StoredCapture`]: station, receive time, purpose, central confirmation time, and where the capture sealed with the payload key is ([`PayloadAt`]: a file in `storage.dir/payloads` ([`payloads`]), purged, or inline in records written before payload files) |
//! | `local` | capture id | [`StoredResult`]: the local result and whether it was handed to MQTT |
//! | `central` | capture id | [`StoredResult`]: central's result, same |
//! | `outbox` | `[priority: u8][sequence: u64 BE]` | capture id: captures still to deliver, drained in key order |
//! | `meta` | name | small state, e.g. `watchlist_confirmed_ms` (watchlist freshness) and the daily contribution counters; the watchlist itself is in `storage.dir/watchlist.sealed` ([`crate::watchlist`]) |
//! | `quarantine` | `[tree: u8][original key]` | the raw bytes of a value that failed its checksum (a quarantined capture's payload file, if any, is kept in `storage.dir/payloads/quarantine`, [`payloads`]) |
//!
//! Priorities: 0 local hit, 1 screening, 2 enrolment; sequences are the engine's monotonic ids, so each class drains
//! first in, first out.
//!
//! # Invariants and what a crash at each step leaves behind
//! 1. A capture is in `captures` (its payload in its file, [`payloads`]) and flushed before its MQTT PUBLISH is
//!    acknowledged. A crash before the flush leaves the PUBLISH unacknowledged: the broker redelivers it
//!    (persistent session) or the station re-sends it.
//!    Captures are inserted by the single ingest task only, so "insert if absent" needs no compare-and-swap.
//! 2. The local result and the outbox entry are one atomic batch. A crash between (1) and (2) leaves a capture
//!    without a local result; [`Store::pending_local`] finds it at start-up and it is matched again.
//! 3. Central's result, the outbox removal and (with zero payload retention) the payload purge are one atomic batch:
//!    a capture is never both answered and still queued. A crash before it leaves the outbox entry, so the capture
//!    is submitted again and central, idempotent on the capture id, returns its stored answer. A purged payload's
//!    file is deleted by the next flush after that batch (a flush runs at least once a second while deletions
//!    wait), never before the batch is durable: deleted earlier, a crash could bring back a record that refers to
//!    the file and an outbox entry for a capture that could then never be read. A crash in between leaves a file
//!    no record refers to, deleted at the next open.
//! 4. A result is marked published only some seconds after it was handed to MQTT with the broker connection up
//!    throughout (`Pipeline::confirm_published`: the MQTT client only queues in memory); unpublished results are
//!    re-sent at start-up, so a station may see a result twice after a crash (stations de-duplicate on
//!    `capture_id` + `source`), but a result lost in the client's queue by a crash is sent again.
//! 5. A value that fails its checksum is moved to `quarantine`, reported (log at error level and the
//!    `quarantined` counter), and treated as absent; it never stops the gateway. A quarantined capture's payload
//!    file is moved to the payloads' quarantine folder first, and kept there for the audit period: it may be the
//!    only copy of an accepted capture, so it is neither deleted as an orphan at the next open nor overwritten by a
//!    re-send of the same capture. A database the engine cannot open
//!    because it is corrupt is moved aside whole (`db.corrupt-<unix ms>`, kept for recovery) and a fresh one is
//!    started, with an alarm, rather than failing every start (a crash loop would leave officers with no answers).
//! 6. Metadata (capture records and results, no biometric data once purged) is deleted only after central has
//!    confirmed the capture and the audit period has passed; an unconfirmed capture is never deleted.

pub mod engine;
pub mod payloads;
pub mod record;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use hotspot_device_protocols::station::{Capture, CaptureResult, Purpose};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use tracing::error;
use uuid::Uuid;

use crate::crypto::{CryptoError, PayloadKey};
use engine::{Engine, EngineError, Op, SledEngine, Tree};
use payloads::{PayloadFileError, PayloadFiles};

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The engine failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// A value could not be encoded.
    #[error(transparent)]
    Record(#[from] record::RecordError),
    /// Payload sealing failed.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// A payload file could not be read, written or deleted.
    #[error(transparent)]
    Payload(#[from] PayloadFileError),
    /// The database could not be opened.
    #[error("cannot open the database in {path}: {what}")]
    Open {
        /// Folder.
        path: PathBuf,
        /// Why.
        what: String,
    },
}

/// Delivery priority in the outbox (lower drains first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Priority {
    /// A local hit.
    Hit = 0,
    /// A screening capture.
    Screen = 1,
    /// An enrolment contribution.
    Enrol = 2,
}

/// A capture as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredCapture {
    /// Station that sent it.
    pub station_id: String,
    /// When the gateway received it, Unix ms.
    pub received_at_ms: i64,
    /// Screening or enrolment.
    pub purpose: Purpose,
    /// When central's answer was recorded, Unix ms.
    pub confirmed_at_ms: Option<i64>,
    /// Where the postcard-encoded capture, sealed, is.
    pub payload: PayloadAt,
}

/// Where a stored capture's sealed payload is. Encoded as records written before payload files encoded their
/// `sealed: Option<Vec<u8>>` (postcard: `None` is `Purged`, `Some(bytes)` is `Inline(bytes)`), so those records read
/// unchanged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PayloadAt {
    /// Purged (retention).
    Purged,
    /// In the record: databases written before payload files. Read and purged as the others are.
    Inline(Vec<u8>),
    /// In its file in `storage.dir/payloads` ([`payloads`]).
    File,
}

impl StoredCapture {
    /// Whether the biometric payload is still kept.
    pub fn has_payload(&self) -> bool {
        !matches!(self.payload, PayloadAt::Purged)
    }
}

/// A result as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredResult {
    /// The result.
    pub result: CaptureResult,
    /// Handed to MQTT.
    pub published: bool,
}

/// Whether an inserted capture was new.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inserted {
    /// First time this capture id was seen.
    New,
    /// Already stored (a re-send); the stored copy is kept.
    Existing,
}

/// How long things are kept (see `[retention]` in the configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Biometric payload after central confirmed, ms (0: purged in the same batch as the confirmation).
    pub payload_ms: i64,
    /// Metadata after central confirmed, ms.
    pub metadata_ms: i64,
}

/// What a purge pass removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Purged {
    /// Payloads purged.
    pub payloads: u64,
    /// Capture records (with their results) deleted.
    pub records: u64,
    /// Payload files of quarantined captures deleted (the audit period passed since their quarantine).
    pub quarantined_payloads: u64,
}

/// Handle to the gateway's database.
#[derive(Debug, Clone)]
pub struct Store {
    engine: Arc<dyn Engine>,
    payloads: Arc<PayloadFiles>,
    key: Arc<PayloadKey>,
    quarantined: Arc<AtomicU64>,
    /// Captures whose payload purge is written to the engine but perhaps not yet durable: their files are deleted by
    /// the next [`Store::flush`], after the database's (invariant 3).
    purged_files: Arc<std::sync::Mutex<Vec<Uuid>>>,
    /// Set when a corrupt database was moved aside at open.
    pub moved_aside: Option<PathBuf>,
}

const SCAN_CHUNK: usize = 512;

/// sled's page cache, bytes (its default is 1 GiB). Measured with sled 0.34, it does not bound the memory that live
/// values take (sled keeps them all), which is why payloads are files ([`payloads`]); it bounds the rest.
const CACHE_BYTES: u64 = 64 * 1024 * 1024;

fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

impl Store {
    /// Opens (or creates) the database in `dir/db` and the payload files in `dir/payloads`, deleting payload files
    /// no record refers to; moves a corrupt database aside (invariant 5), with its payload files.
    pub fn open(dir: &Path, key: PayloadKey) -> Result<Self, StoreError> {
        let path = dir.join("db");
        let payloads = dir.join("payloads");
        let (engine, moved_aside) = match SledEngine::open(&path, CACHE_BYTES) {
            Ok(e) => (e, None),
            Err(e) if path.exists() && is_corruption(&e) => {
                let stamp = now_ms();
                let aside = dir.join(format!("db.corrupt-{stamp}"));
                error!(db = %path.display(), moved_to = %aside.display(),
                       "database is corrupt; moving it aside and starting a fresh one");
                std::fs::rename(&path, &aside).map_err(|e| StoreError::Open {
                    path: path.clone(),
                    what: format!("corrupt, and cannot be moved aside: {e}"),
                })?;
                // Its payload files go with it: the fresh database refers to none of them.
                if payloads.exists() {
                    let files_aside = dir.join(format!("payloads.corrupt-{stamp}"));
                    std::fs::rename(&payloads, &files_aside).map_err(|e| StoreError::Open {
                        path: payloads.clone(),
                        what: format!("cannot be moved aside with the corrupt database: {e}"),
                    })?;
                }
                let fresh = SledEngine::open(&path, CACHE_BYTES).map_err(|e| StoreError::Open {
                    path: path.clone(),
                    what: e.to_string(),
                })?;
                (fresh, Some(aside))
            }
            Err(e) => {
                return Err(StoreError::Open {
                    path,
                    what: e.to_string(),
                });
            }
        };
        let store = Self::with_engine(
            Arc::new(engine),
            PayloadFiles::open(&payloads)?,
            key,
            moved_aside,
        );
        store.remove_orphan_payloads()?;
        Ok(store)
    }

    /// A store on any engine (tests, other engines), with its payload files.
    pub fn with_engine(
        engine: Arc<dyn Engine>,
        payloads: PayloadFiles,
        key: PayloadKey,
        moved_aside: Option<PathBuf>,
    ) -> Self {
        Self {
            engine,
            payloads: Arc::new(payloads),
            key: Arc::new(key),
            quarantined: Arc::new(AtomicU64::new(0)),
            purged_files: Arc::new(std::sync::Mutex::new(Vec::new())),
            moved_aside,
        }
    }

    /// Deletes the payload files no capture record refers to (a crash between a file and its record, or between a
    /// purge and the file's deletion).
    fn remove_orphan_payloads(&self) -> Result<(), StoreError> {
        for id in self.payloads.ids()? {
            let referred = matches!(
                self.engine
                    .get(Tree::Captures, id.as_bytes())?
                    .map(|bytes| record::decode::<StoredCapture>(&bytes)),
                Some(Ok(StoredCapture {
                    payload: PayloadAt::File,
                    ..
                }))
            );
            if !referred {
                self.payloads.remove(id)?;
            }
        }
        Ok(())
    }

    /// Deletes `id`'s payload file once the record that stopped referring to it is durable: at the next
    /// [`Store::flush`]. Deleting it at once could lose an accepted capture: a crash (kill -9 is enough) before the
    /// database writes its buffers back leaves the record referring to the file and the capture queued again for
    /// central, with its file gone, so it could never be delivered.
    fn drop_payload_file(&self, id: Uuid) {
        self.purged_files().push(id);
    }

    /// Payload files waiting for the next flush to be deleted.
    pub fn purges_pending(&self) -> usize {
        self.purged_files().len()
    }

    /// The list of payload files waiting for the next flush (a poisoned lock still holds a valid list).
    fn purged_files(&self) -> std::sync::MutexGuard<'_, Vec<Uuid>> {
        self.purged_files.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reads and checks a value; a value failing its check is quarantined and reads as absent.
    fn read<T: DeserializeOwned>(&self, tree: Tree, key: &[u8]) -> Result<Option<T>, StoreError> {
        let Some(bytes) = self.engine.get(tree, key)? else {
            return Ok(None);
        };
        match record::decode(&bytes) {
            Ok(v) => Ok(Some(v)),
            Err(e) => {
                self.quarantine(tree, key, bytes, &e.to_string())?;
                Ok(None)
            }
        }
    }

    fn quarantine(
        &self,
        tree: Tree,
        key: &[u8],
        bytes: Vec<u8>,
        why: &str,
    ) -> Result<(), StoreError> {
        error!(tree = tree.name(), key = %hex(key), reason = why, "corrupt record quarantined");
        // A capture's payload file goes to quarantine first (payloads.rs): once the record has left `captures`, the
        // file would be taken for a crash's leftover and deleted at the next open, and it may be the only copy of an
        // accepted capture. A crash after the move leaves the record without its file, which quarantines it again.
        if tree == Tree::Captures
            && let Ok(id) = Uuid::from_slice(key)
            && self.payloads.quarantine(id, std::time::SystemTime::now())?
        {
            error!(capture_id = %id, "payload file of a quarantined capture kept in payloads/quarantine");
        }
        let mut qkey = vec![tree as u8];
        qkey.extend_from_slice(key);
        self.engine.apply(vec![
            Op::Put(Tree::Quarantine, qkey, bytes),
            Op::Delete(tree, key.to_vec()),
        ])?;
        self.quarantined.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Records quarantined since start.
    pub fn quarantined(&self) -> u64 {
        self.quarantined.load(Ordering::Relaxed)
    }

    /// Records in quarantine (all time).
    pub fn quarantine_len(&self) -> u64 {
        self.engine.len(Tree::Quarantine)
    }

    /// Stores a new capture: its payload sealed in its file (written and synced before the record, so that no record
    /// sled writes back on its own ever refers to a file a crash could leave incomplete), then its record. Does not
    /// flush: call [`flush`](Self::flush) before acknowledging. Blocking (file I/O): async callers use
    /// [`Store::insert_capture_async`].
    pub fn insert_capture(
        &self,
        station_id: &str,
        received_at_ms: i64,
        capture: &Capture,
    ) -> Result<Inserted, StoreError> {
        let id = capture.capture_id;
        if self.engine.get(Tree::Captures, id.as_bytes())?.is_some() {
            return Ok(Inserted::Existing);
        }
        let plain =
            postcard::to_stdvec(capture).map_err(|e| record::RecordError::Encode(e.to_string()))?;
        let rec = StoredCapture {
            station_id: station_id.to_owned(),
            received_at_ms,
            purpose: capture.purpose,
            confirmed_at_ms: None,
            payload: PayloadAt::File,
        };
        self.payloads
            .write(id, &self.key.seal(id.as_bytes(), &plain)?)?;
        self.engine.apply(vec![Op::Put(
            Tree::Captures,
            id.as_bytes().to_vec(),
            record::encode(&rec)?,
        )])?;
        Ok(Inserted::New)
    }

    /// [`Store::insert_capture`] off the async threads (it writes and syncs the payload file).
    pub async fn insert_capture_async(
        &self,
        station_id: String,
        received_at_ms: i64,
        capture: Arc<Capture>,
    ) -> Result<Inserted, StoreError> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || {
            store.insert_capture(&station_id, received_at_ms, &capture)
        })
        .await
        .map_err(|e| EngineError(e.to_string()))?
    }

    /// [`Store::capture`] off the async threads (it reads the payload file).
    pub async fn capture_async(
        &self,
        id: Uuid,
    ) -> Result<Option<(StoredCapture, Capture)>, StoreError> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.capture(id))
            .await
            .map_err(|e| EngineError(e.to_string()))?
    }

    /// Makes everything written so far durable (fsync: the payload files' folder, then the database), off the
    /// async threads; then deletes the payload files whose purge is now durable.
    pub async fn flush(&self) -> Result<(), StoreError> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.flush_blocking())
            .await
            .map_err(|e| EngineError(e.to_string()))??;
        Ok(())
    }

    /// [`Store::flush`] on the calling thread.
    pub fn flush_blocking(&self) -> Result<(), StoreError> {
        // Taken before the database's flush: every purge in the list was written to the engine before it was
        // listed, so this flush makes it durable.
        let purged = std::mem::take(&mut *self.purged_files());
        let synced = self
            .payloads
            .sync()
            .map_err(StoreError::from)
            .and_then(|()| self.engine.flush().map_err(StoreError::from));
        if let Err(e) = synced {
            self.purged_files().extend(purged);
            return Err(e);
        }
        for id in purged {
            if let Err(e) = self.payloads.remove(id) {
                error!(capture_id = %id, error = %e, "cannot delete a purged payload file; it is deleted at the next start");
            }
        }
        Ok(())
    }

    /// The stored capture record.
    pub fn capture_record(&self, id: Uuid) -> Result<Option<StoredCapture>, StoreError> {
        self.read(Tree::Captures, id.as_bytes())
    }

    /// The capture itself, decrypted, if its payload was not purged. A payload that fails to open is quarantined.
    pub fn capture(&self, id: Uuid) -> Result<Option<(StoredCapture, Capture)>, StoreError> {
        let Some(rec) = self.capture_record(id)? else {
            return Ok(None);
        };
        let sealed = match &rec.payload {
            PayloadAt::Purged => return Ok(None),
            PayloadAt::Inline(sealed) => Ok(sealed.clone()),
            PayloadAt::File => match self.payloads.read(id) {
                Ok(Some(sealed)) => Ok(sealed),
                Ok(None) => Err("its payload file is missing".to_owned()),
                Err(e @ PayloadFileError::TooLarge { .. }) => Err(e.to_string()),
                Err(e) => return Err(e.into()),
            },
        };
        let opened = sealed.and_then(|sealed| {
            self.key
                .open(id.as_bytes(), &sealed)
                .map_err(|e| e.to_string())
                .and_then(|plain| {
                    postcard::from_bytes::<Capture>(&plain).map_err(|e| e.to_string())
                })
        });
        match opened {
            Ok(capture) => Ok(Some((rec, capture))),
            Err(why) => {
                let raw = self
                    .engine
                    .get(Tree::Captures, id.as_bytes())?
                    .unwrap_or_default();
                self.quarantine(Tree::Captures, id.as_bytes(), raw, &why)?;
                Ok(None)
            }
        }
    }

    /// Records the local result and queues the capture for central, atomically. Returns the outbox key, or
    /// `None` if a local result was already recorded.
    pub fn record_local(
        &self,
        id: Uuid,
        result: &CaptureResult,
        priority: Priority,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        if self.engine.get(Tree::Local, id.as_bytes())?.is_some() {
            return Ok(None);
        }
        let value = record::encode(&StoredResult {
            result: result.clone(),
            published: false,
        })?;
        let mut okey = vec![priority as u8];
        okey.extend_from_slice(&self.engine.next_id()?.to_be_bytes());
        self.engine.apply(vec![
            Op::Put(Tree::Local, id.as_bytes().to_vec(), value),
            Op::Put(Tree::Outbox, okey.clone(), id.as_bytes().to_vec()),
        ])?;
        Ok(Some(okey))
    }

    /// Records central's answer and removes the capture from the outbox, atomically; with zero payload retention
    /// the payload is purged in the same batch. Returns `false` (and changes nothing) when the outbox entry is
    /// already gone: a duplicate answer. Callers serialise submissions per outbox key.
    pub fn record_central(
        &self,
        outbox_key: &[u8],
        id: Uuid,
        result: &CaptureResult,
        retention: Retention,
    ) -> Result<bool, StoreError> {
        if self.engine.get(Tree::Outbox, outbox_key)?.is_none() {
            return Ok(false);
        }
        let value = record::encode(&StoredResult {
            result: result.clone(),
            published: false,
        })?;
        let mut ops = vec![
            Op::Put(Tree::Central, id.as_bytes().to_vec(), value),
            Op::Delete(Tree::Outbox, outbox_key.to_vec()),
        ];
        let mut drop_file = false;
        if let Some(mut rec) = self.capture_record(id)? {
            rec.confirmed_at_ms = Some(now_ms());
            if retention.payload_ms <= 0 {
                drop_file = rec.payload == PayloadAt::File;
                rec.payload = PayloadAt::Purged;
            }
            ops.push(Op::Put(
                Tree::Captures,
                id.as_bytes().to_vec(),
                record::encode(&rec)?,
            ));
        }
        self.engine.apply(ops)?;
        if drop_file {
            self.drop_payload_file(id);
        }
        Ok(true)
    }

    /// Whether an outbox entry is still queued.
    pub fn in_outbox(&self, outbox_key: &[u8]) -> Result<bool, StoreError> {
        Ok(self.engine.get(Tree::Outbox, outbox_key)?.is_some())
    }

    /// Removes an outbox entry that can never be delivered (its capture is corrupt or missing).
    pub fn quarantine_outbox(&self, outbox_key: &[u8]) -> Result<(), StoreError> {
        let raw = self
            .engine
            .get(Tree::Outbox, outbox_key)?
            .unwrap_or_default();
        self.quarantine(
            Tree::Outbox,
            outbox_key,
            raw,
            "outbox entry without a readable capture",
        )
    }

    fn result_tree(central: bool) -> Tree {
        if central { Tree::Central } else { Tree::Local }
    }

    /// A stored result (`central == false`: local).
    pub fn result(&self, id: Uuid, central: bool) -> Result<Option<StoredResult>, StoreError> {
        self.read(Self::result_tree(central), id.as_bytes())
    }

    /// Marks a result as handed to MQTT.
    pub fn mark_published(&self, id: Uuid, central: bool) -> Result<(), StoreError> {
        let tree = Self::result_tree(central);
        if let Some(mut r) = self.read::<StoredResult>(tree, id.as_bytes())? {
            r.published = true;
            self.engine.apply(vec![Op::Put(
                tree,
                id.as_bytes().to_vec(),
                record::encode(&r)?,
            )])?;
        }
        Ok(())
    }

    /// Up to `limit` outbox entries after `after` (exclusive), in priority order. Malformed entries are quarantined
    /// and skipped.
    pub fn outbox_after(
        &self,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Uuid)>, StoreError> {
        let mut out = Vec::new();
        let mut cursor = after.map(<[u8]>::to_vec);
        loop {
            let chunk = self
                .engine
                .scan(Tree::Outbox, cursor.as_deref(), limit - out.len())?;
            let exhausted = chunk.len() < limit - out.len();
            for (k, v) in chunk {
                cursor = Some(k.clone());
                match Uuid::from_slice(&v) {
                    Ok(id) if k.len() == 9 => out.push((k, id)),
                    _ => self.quarantine(Tree::Outbox, &k, v, "outbox entry is malformed")?,
                }
            }
            if exhausted || out.len() >= limit {
                return Ok(out);
            }
        }
    }

    /// The first outbox entry after `after` (exclusive).
    pub fn next_outbox(&self, after: Option<&[u8]>) -> Result<Option<(Vec<u8>, Uuid)>, StoreError> {
        Ok(self.outbox_after(after, 1)?.into_iter().next())
    }

    /// Captures waiting for central.
    pub fn backlog(&self) -> u64 {
        self.engine.len(Tree::Outbox)
    }

    /// Receive time (Unix ms) of the oldest capture waiting: the first entry of each priority class.
    pub fn oldest_backlog_ms(&self) -> Option<i64> {
        (0u8..=2)
            .filter_map(|p| {
                // The largest key of the class before `p`: the scan starts at class `p`'s first entry.
                let after = p.checked_sub(1).map(|q| {
                    let mut k = vec![q];
                    k.extend([0xff; 8]);
                    k
                });
                self.outbox_after(after.as_deref(), 1)
                    .ok()?
                    .into_iter()
                    .next()
            })
            .filter_map(|(_, id)| self.capture_record(id).ok().flatten())
            .map(|r| r.received_at_ms)
            .min()
    }

    /// Visits every key of a tree in chunks.
    fn for_each_key(
        &self,
        tree: Tree,
        mut f: impl FnMut(Vec<u8>, Vec<u8>),
    ) -> Result<(), StoreError> {
        let mut after: Option<Vec<u8>> = None;
        loop {
            let chunk = self.engine.scan(tree, after.as_deref(), SCAN_CHUNK)?;
            let Some((last, _)) = chunk.last() else {
                return Ok(());
            };
            after = Some(last.clone());
            let done = chunk.len() < SCAN_CHUNK;
            for (k, v) in chunk {
                f(k, v);
            }
            if done {
                return Ok(());
            }
        }
    }

    /// Captures stored but not yet answered locally (a crash between store and match).
    pub fn pending_local(&self) -> Result<Vec<Uuid>, StoreError> {
        let mut ids = Vec::new();
        self.for_each_key(Tree::Captures, |k, _| ids.extend(Uuid::from_slice(&k).ok()))?;
        let mut out = Vec::new();
        for id in ids {
            if self.engine.get(Tree::Local, id.as_bytes())?.is_none() {
                out.push(id);
            }
        }
        Ok(out)
    }

    /// Results not yet handed to MQTT: `(capture id, station, result)`.
    pub fn unpublished(&self) -> Result<Vec<(Uuid, String, CaptureResult)>, StoreError> {
        let mut out = Vec::new();
        for tree in [Tree::Local, Tree::Central] {
            let mut ids = Vec::new();
            self.for_each_key(tree, |k, _| ids.extend(Uuid::from_slice(&k).ok()))?;
            for id in ids {
                let Some(r) = self.read::<StoredResult>(tree, id.as_bytes())? else {
                    continue;
                };
                if r.published {
                    continue;
                }
                if let Some(rec) = self.capture_record(id)? {
                    out.push((id, rec.station_id, r.result));
                }
            }
        }
        Ok(out)
    }

    /// Applies the retention policy as of `now_ms`: purges confirmed payloads older than `payload_ms`, deletes
    /// confirmed records older than `metadata_ms` (invariant 6), and deletes the payload files of captures
    /// quarantined more than `metadata_ms` ago (`payloads.rs`, "Quarantine").
    pub fn purge_expired(&self, now_ms: i64, retention: Retention) -> Result<Purged, StoreError> {
        let mut ids = Vec::new();
        self.for_each_key(Tree::Captures, |k, _| ids.extend(Uuid::from_slice(&k).ok()))?;
        let cutoff_ms = now_ms.saturating_sub(retention.metadata_ms);
        let cutoff = std::time::UNIX_EPOCH
            + std::time::Duration::from_millis(u64::try_from(cutoff_ms).unwrap_or(0));
        let mut purged = Purged {
            quarantined_payloads: self.payloads.remove_quarantined_before(cutoff)?,
            ..Purged::default()
        };
        for id in ids {
            let Some(mut rec) = self.capture_record(id)? else {
                continue;
            };
            let Some(confirmed) = rec.confirmed_at_ms else {
                continue;
            };
            let key = id.as_bytes().to_vec();
            let had_file = rec.payload == PayloadAt::File;
            if now_ms - confirmed >= retention.metadata_ms {
                self.engine.apply(vec![
                    Op::Delete(Tree::Captures, key.clone()),
                    Op::Delete(Tree::Local, key.clone()),
                    Op::Delete(Tree::Central, key),
                ])?;
                purged.records += 1;
            } else if rec.has_payload() && now_ms - confirmed >= retention.payload_ms {
                rec.payload = PayloadAt::Purged;
                self.engine
                    .apply(vec![Op::Put(Tree::Captures, key, record::encode(&rec)?)])?;
                purged.payloads += 1;
            } else {
                continue;
            }
            if had_file {
                self.drop_payload_file(id);
            }
        }
        Ok(purged)
    }

    /// Reads a value from the `meta` tree.
    pub fn meta_get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, StoreError> {
        self.read(Tree::Meta, key.as_bytes())
    }

    /// Writes a value to the `meta` tree (durable with the next flush).
    pub fn meta_set<T: Serialize>(&self, key: &str, value: &T) -> Result<(), StoreError> {
        self.engine.apply(vec![Op::Put(
            Tree::Meta,
            key.as_bytes().to_vec(),
            record::encode(value)?,
        )])?;
        Ok(())
    }

    /// Outbox entries of one priority class.
    pub fn outbox_count(&self, priority: Priority) -> u64 {
        let class = priority as u8;
        let mut after = class.checked_sub(1).map(|q| {
            let mut k = vec![q];
            k.extend([0xff; 8]);
            k
        });
        let mut n = 0;
        while let Ok(chunk) = self.engine.scan(Tree::Outbox, after.as_deref(), SCAN_CHUNK) {
            let Some((last, _)) = chunk.last() else { break };
            after = Some(last.clone());
            let in_class = chunk
                .iter()
                .filter(|(k, _)| k.first() == Some(&class))
                .count();
            n += in_class as u64;
            if in_class < chunk.len() || chunk.len() < SCAN_CHUNK {
                break;
            }
        }
        n
    }

    /// The payload key (the watchlist file is sealed with it too).
    pub fn payload_key(&self) -> Arc<PayloadKey> {
        self.key.clone()
    }

    /// Bytes the database and the payload files occupy on disk.
    pub fn size_on_disk(&self) -> u64 {
        self.engine.size_on_disk() + self.payloads.bytes()
    }

    /// Writes raw bytes under a key, bypassing the framing (tests of corruption handling only).
    #[doc(hidden)]
    pub fn corrupt_for_tests(
        &self,
        tree: Tree,
        key: &[u8],
        bytes: Vec<u8>,
    ) -> Result<(), StoreError> {
        self.engine
            .apply(vec![Op::Put(tree, key.to_vec(), bytes)])?;
        Ok(())
    }
}

/// Errors that mean the files are damaged, as opposed to the disk or permissions failing (which moving the
/// database aside would not fix).
fn is_corruption(e: &sled::Error) -> bool {
    match e {
        sled::Error::Corruption { .. }
        | sled::Error::ReportableBug(_)
        | sled::Error::Unsupported(_) => true,
        sled::Error::Io(io) => matches!(
            io.kind(),
            std::io::ErrorKind::InvalidData | std::io::ErrorKind::UnexpectedEof
        ),
        _ => false,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests;
