//! Sealed capture payloads as files beside the database, one per capture: `storage.dir/payloads/<capture id>`
//! (32 hex digits), mode 0600 in a 0700 folder, holding exactly the bytes sealed with the payload key (the capture id
//! is the seal's associated data, so a file renamed to another capture's name does not open).
//!
//! # Why not in the database
//! sled 0.34 keeps every live value in memory, whatever its `cache_capacity`, and reads them all back in when it
//! opens (`benches/backlog_memory.rs`: 3000 values of 200 KiB made the process 590 MiB larger, and again right
//! after reopening). A capture with a face photo is a few hundred KiB, so a long uplink outage would have grown the
//! gateway by the whole backlog, and every restart would have loaded it again. Only the small capture records stay
//! in the database.
//!
//! # Crash safety
//! A file is written to `<id>.tmp`, synced, and renamed to `<id>` before the capture's record is written; the
//! folder is synced by [`PayloadFiles::sync`], which [`crate::store::Store::flush`] calls before flushing the
//! database, so both are durable before a capture is acknowledged. A payload is deleted only after the record that
//! stops referring to it is written. A crash in between leaves a file no record refers to (or a `.tmp`), which
//! [`crate::store::Store::open`] deletes.
//!
//! # Quarantine
//! When a capture's record is quarantined (it failed its checksum, or its payload would not open), its payload file
//! is moved to `storage.dir/payloads/quarantine/<capture id>` ([`PayloadFiles::quarantine`]) before the record
//! leaves the `captures` tree. It is the only copy of an accepted capture, so it is kept as evidence for recovery
//! instead of being taken for a crash's leftover, and a re-sent capture with the same id cannot overwrite it. Its
//! modification time is set to the time of the quarantine, and the retention sweep deletes it once the audit
//! period (`retention.metadata_days`) has passed since then ([`PayloadFiles::remove_quarantined_before`]). The
//! files stay sealed and count against the storage quota.

use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use hotspot_device_protocols::station::MAX_CAPTURE_BYTES;
use uuid::Uuid;

/// A payload file larger than this is damage, not a capture (a capture is at most [`MAX_CAPTURE_BYTES`] as sent,
/// and smaller once decoded and sealed).
pub const MAX_PAYLOAD_FILE_BYTES: u64 = 2 * MAX_CAPTURE_BYTES as u64;

/// The quarantine subfolder of the payloads folder (see the [module docs](self)).
pub const QUARANTINE_DIR: &str = "quarantine";

/// The payloads folder.
#[derive(Debug)]
pub struct PayloadFiles {
    dir: PathBuf,
    /// `dir/quarantine`: payloads of quarantined capture records.
    quarantine: PathBuf,
    /// Bytes in the folder's payload files.
    bytes: AtomicU64,
}

/// A payload file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PayloadFileError {
    /// Reading, writing or listing failed.
    #[error("payload file {path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is larger than any payload.
    #[error("payload file {path} is {len} bytes, more than the limit of {MAX_PAYLOAD_FILE_BYTES}")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        len: u64,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PayloadFileError + '_ {
    move |source| PayloadFileError::Io {
        path: path.to_owned(),
        source,
    }
}

impl PayloadFiles {
    /// Opens (creating it and its quarantine subfolder, 0700) the folder, deleting temporary files a crash left.
    pub fn open(dir: &Path) -> Result<Self, PayloadFileError> {
        let quarantine = dir.join(QUARANTINE_DIR);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&quarantine)
            .map_err(io(&quarantine))?;
        let files = Self {
            dir: dir.to_owned(),
            quarantine,
            bytes: AtomicU64::new(0),
        };
        let mut total = 0;
        for folder in [&files.dir, &files.quarantine] {
            for entry in std::fs::read_dir(folder).map_err(io(folder))? {
                let entry = entry.map_err(io(folder))?;
                let path = entry.path();
                let Ok(meta) = entry.metadata() else { continue };
                if !meta.is_file() {
                    continue;
                }
                if path.extension().is_some_and(|e| e == "tmp") {
                    std::fs::remove_file(&path).map_err(io(&path))?;
                } else {
                    total += meta.len();
                }
            }
        }
        files.bytes.store(total, Ordering::Relaxed);
        Ok(files)
    }

    fn path(&self, id: Uuid) -> PathBuf {
        self.dir.join(id.simple().to_string())
    }

    /// Writes `id`'s payload (replacing one left by a crash): temporary file, synced, renamed. Durable once
    /// [`PayloadFiles::sync`] has run.
    pub fn write(&self, id: Uuid, sealed: &[u8]) -> Result<(), PayloadFileError> {
        let path = self.path(id);
        let tmp = path.with_extension("tmp");
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io(&tmp))?;
        file.write_all(sealed).map_err(io(&tmp))?;
        file.sync_all().map_err(io(&tmp))?;
        let replaced = std::fs::metadata(&path).map_or(0, |m| m.len());
        std::fs::rename(&tmp, &path).map_err(io(&path))?;
        self.bytes.fetch_add(sealed.len() as u64, Ordering::Relaxed);
        self.less(replaced);
        Ok(())
    }

    /// Makes the files written and renamed so far durable (syncs the folder). Blocking.
    pub fn sync(&self) -> Result<(), PayloadFileError> {
        sync_folder(&self.dir)
    }

    /// `id`'s payload, `None` if there is no file.
    pub fn read(&self, id: Uuid) -> Result<Option<Vec<u8>>, PayloadFileError> {
        let path = self.path(id);
        let len = match std::fs::metadata(&path) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(&path)(e)),
        };
        if len > MAX_PAYLOAD_FILE_BYTES {
            return Err(PayloadFileError::TooLarge { path, len });
        }
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(&path)(e)),
        }
    }

    /// Deletes `id`'s payload (nothing if there is none).
    pub fn remove(&self, id: Uuid) -> Result<(), PayloadFileError> {
        let path = self.path(id);
        let len = match std::fs::metadata(&path) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io(&path)(e)),
        };
        match std::fs::remove_file(&path) {
            Ok(()) => {
                self.less(len);
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io(&path)(e)),
        }
    }

    /// Moves `id`'s payload file (if there is one) into the quarantine subfolder, replacing an earlier quarantined
    /// copy, and stamps it with `now` as its modification time (the retention sweep counts from it). Returns
    /// whether there was a file. Blocking.
    pub fn quarantine(&self, id: Uuid, now: SystemTime) -> Result<bool, PayloadFileError> {
        let from = self.path(id);
        let to = self.quarantine.join(id.simple().to_string());
        let replaced = std::fs::metadata(&to).map_or(0, |m| m.len());
        match std::fs::rename(&from, &to) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(io(&from)(e)),
        }
        self.less(replaced);
        std::fs::File::options()
            .write(true)
            .open(&to)
            .and_then(|f| f.set_modified(now))
            .map_err(io(&to))?;
        sync_folder(&self.dir)?;
        sync_folder(&self.quarantine)?;
        Ok(true)
    }

    /// The quarantined payload files, as `(capture id, time of the quarantine)`.
    pub fn quarantined(&self) -> Result<Vec<(Uuid, SystemTime)>, PayloadFileError> {
        Ok(self
            .quarantined_files()?
            .into_iter()
            .map(|(id, _, at, _)| (id, at))
            .collect())
    }

    /// The quarantined payload files: capture id, path, time of the quarantine and size.
    fn quarantined_files(&self) -> Result<Vec<(Uuid, PathBuf, SystemTime, u64)>, PayloadFileError> {
        let mut out = Vec::new();
        for (id, path) in ids_in(&self.quarantine)? {
            let meta = std::fs::metadata(&path).map_err(io(&path))?;
            let modified = meta.modified().map_err(io(&path))?;
            out.push((id, path, modified, meta.len()));
        }
        Ok(out)
    }

    /// Deletes the quarantined payload files quarantined before `cutoff`; returns how many. Blocking.
    pub fn remove_quarantined_before(&self, cutoff: SystemTime) -> Result<u64, PayloadFileError> {
        let mut removed = 0;
        for (_, path, at, len) in self.quarantined_files()? {
            if at >= cutoff {
                continue;
            }
            match std::fs::remove_file(&path) {
                Ok(()) => {
                    self.less(len);
                    removed += 1;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(&path)(e)),
            }
        }
        Ok(removed)
    }

    /// The captures that have a payload file (files with other names are left alone).
    pub fn ids(&self) -> Result<Vec<Uuid>, PayloadFileError> {
        Ok(ids_in(&self.dir)?.into_iter().map(|(id, _)| id).collect())
    }

    fn less(&self, n: u64) {
        // Never below 0, even if a file changed size behind the gateway's back.
        let _ = self
            .bytes
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                Some(b.saturating_sub(n))
            });
    }

    /// Bytes in payload files, quarantined ones included.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
}

/// Syncs `folder`, making the renames and deletions in it durable. Blocking.
fn sync_folder(folder: &Path) -> Result<(), PayloadFileError> {
    std::fs::File::open(folder)
        .and_then(|d| d.sync_all())
        .map_err(io(folder))
}

/// The files in `folder` named as a capture id (32 hex digits), with their paths.
fn ids_in(folder: &Path) -> Result<Vec<(Uuid, PathBuf)>, PayloadFileError> {
    let mut ids = Vec::new();
    for entry in std::fs::read_dir(folder).map_err(io(folder))? {
        let entry = entry.map_err(io(folder))?;
        let name = entry.file_name();
        if let Some(id) = name
            .to_str()
            .filter(|n| n.len() == 32)
            .and_then(|n| Uuid::try_parse(n).ok())
        {
            ids.push((id, entry.path()));
        }
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn files_are_written_read_replaced_and_removed() {
        let d = tempfile::tempdir().unwrap();
        let files = PayloadFiles::open(&d.path().join("payloads")).unwrap();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        assert_eq!(files.read(a).unwrap(), None);
        files.write(a, b"sealed a").unwrap();
        files.write(b, b"b").unwrap();
        files.sync().unwrap();
        assert_eq!(files.read(a).unwrap().unwrap(), b"sealed a");
        assert_eq!(files.bytes(), 9);
        files.write(a, b"again").unwrap();
        assert_eq!(files.bytes(), 6);
        let mut ids = files.ids().unwrap();
        ids.sort();
        let mut want = vec![a, b];
        want.sort();
        assert_eq!(ids, want);
        files.remove(a).unwrap();
        files.remove(a).unwrap();
        assert_eq!(files.read(a).unwrap(), None);
        assert_eq!(files.bytes(), 1);
        let mode = std::fs::metadata(d.path().join("payloads")).unwrap();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
            0o700
        );
    }

    #[test]
    fn reopening_counts_the_files_and_drops_what_a_crash_left_half_written() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("payloads");
        let id = Uuid::new_v4();
        PayloadFiles::open(&dir)
            .unwrap()
            .write(id, &[1; 100])
            .unwrap();
        std::fs::write(
            dir.join(format!("{}.tmp", Uuid::new_v4().simple())),
            [0; 50],
        )
        .unwrap();
        std::fs::write(dir.join("README"), "not a payload").unwrap();
        let files = PayloadFiles::open(&dir).unwrap();
        assert_eq!(files.ids().unwrap(), vec![id]);
        assert_eq!(files.bytes(), 100 + "not a payload".len() as u64);
    }

    #[test]
    fn a_quarantined_file_is_moved_stamped_counted_and_removed_after_its_cutoff() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("payloads");
        let files = PayloadFiles::open(&dir).unwrap();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        files.write(a, &[1; 10]).unwrap();
        files.write(b, &[2; 20]).unwrap();
        let t0 = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
        let t1 = t0 + std::time::Duration::from_secs(60);
        assert!(files.quarantine(a, t0).unwrap());
        assert!(files.quarantine(b, t1).unwrap());
        assert!(!files.quarantine(Uuid::new_v4(), t1).unwrap(), "no file");
        assert!(files.ids().unwrap().is_empty());
        let mut q = files.quarantined().unwrap();
        q.sort_by_key(|&(_, at)| at);
        assert_eq!(q, vec![(a, t0), (b, t1)]);
        assert_eq!(files.bytes(), 30);
        // A second quarantine of the same id replaces the first copy.
        files.write(a, &[3; 5]).unwrap();
        assert!(files.quarantine(a, t0).unwrap());
        assert_eq!(files.bytes(), 25);
        // Counted again at open (the subfolder's files, not the subfolder itself).
        let files = PayloadFiles::open(&dir).unwrap();
        assert_eq!(files.bytes(), 25);
        assert_eq!(files.remove_quarantined_before(t0).unwrap(), 0);
        assert_eq!(files.remove_quarantined_before(t1).unwrap(), 1);
        assert_eq!(files.quarantined().unwrap(), vec![(b, t1)]);
        assert_eq!(files.bytes(), 20);
        let mode = std::fs::metadata(dir.join(QUARANTINE_DIR)).unwrap();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
            0o700
        );
    }

    #[test]
    fn an_oversized_file_is_refused_not_read() {
        let d = tempfile::tempdir().unwrap();
        let files = PayloadFiles::open(d.path()).unwrap();
        let id = Uuid::new_v4();
        let f = std::fs::File::create(d.path().join(id.simple().to_string())).unwrap();
        f.set_len(MAX_PAYLOAD_FILE_BYTES + 1).unwrap();
        assert!(matches!(
            files.read(id),
            Err(PayloadFileError::TooLarge { .. })
        ));
    }
}
