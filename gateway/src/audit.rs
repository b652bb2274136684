//! The audit log: who did what, append-only and hash-chained, so that a removed or altered entry is detectable.
//!
//! # Format
//! `storage.dir/audit.log`, one JSON object per line, fields in this order:
//! `{"seq": 7, "at": "2026-11-29T10:00:00.123Z", "actor": "station:desk-1", "action": "capture.accepted",
//!   "subject": "<capture id>", "detail": {...}, "prev": "<hex>", "hash": "<hex>"}`
//! where `hash = SHA-256(prev || line-without-hash)`: `line-without-hash` is the entry serialised with the same
//! field order and no `hash` field, and `prev` is the previous entry's hash (64 zeros for the first). Entries never
//! hold biometric data: ids, stations, decisions, versions, reasons.
//!
//! # Durability and crashes
//! A single writer task appends entries and fsyncs at most every [`SYNC_INTERVAL`]. A crash can leave a torn last
//! line: at open it is cut off (with a warning) and the chain continues from the last whole entry. `hotspot-gateway
//! audit verify` checks every link and reports the first broken one.
//!
//! # Other writers
//! Commands run beside the gateway (`hotspot-gateway user ...`) append with [`append_locked`]. Every append, the
//! gateway's batches included, holds an exclusive `flock` on the file and continues the chain from the entry that
//! is last in the file at that moment, so the two never interleave or fork the chain.
//!
//! # Actions
//! `gateway.started`, `gateway.stopped`, `capture.accepted`, `capture.rejected`, `capture.refused_storage_full`,
//! `result.local`, `result.central`, `watchlist.installed`, `watchlist.refused`, `storage.quarantined`,
//! `storage.moved_aside`; the console's `console.*` and `user.*` actions are listed in `docs/console.md`.

use std::io::{BufRead as _, BufReader, Seek as _, SeekFrom, Write as _};
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tracing::{error, warn};

/// Longest time an entry waits in memory before it is fsynced.
pub const SYNC_INTERVAL: Duration = Duration::from_millis(200);
const ZERO_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One entry as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// Position in the chain, from 1.
    pub seq: u64,
    /// When (RFC 3339, UTC).
    pub at: String,
    /// Who: `station:ID`, `central`, `system`, later `user:NAME`.
    pub actor: String,
    /// What.
    pub action: String,
    /// On what (a capture id, a watchlist version, ...).
    pub subject: String,
    /// Details (never biometric data).
    pub detail: serde_json::Value,
    /// Previous entry's hash.
    pub prev: String,
    /// This entry's hash (empty while it is computed).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hash: String,
}

/// Errors of the audit log.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// The file cannot be read or written.
    #[error("audit log {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// OS error.
        source: std::io::Error,
    },
    /// The chain is broken at this entry.
    #[error("audit log broken at line {line}: {what}")]
    Broken {
        /// 1-based line number.
        line: u64,
        /// What is wrong.
        what: String,
    },
}

fn hash_of(prev: &str, e: &Entry) -> String {
    let mut unhashed = e.clone();
    unhashed.hash.clear();
    let body = serde_json::to_vec(&unhashed).unwrap_or_default();
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(prev.as_bytes());
    ctx.update(&body);
    ctx.finish()
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Checks every link of the chain in `path`; returns the number of entries.
pub fn verify(path: &Path) -> Result<u64, AuditError> {
    let io = |source| AuditError::Io {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let mut prev = ZERO_HASH.to_owned();
    let mut n = 0u64;
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(io)?;
        let lineno = i as u64 + 1;
        let broken = |what: String| AuditError::Broken { line: lineno, what };
        let e: Entry =
            serde_json::from_str(&line).map_err(|err| broken(format!("not an entry: {err}")))?;
        if e.seq != n + 1 {
            return Err(broken(format!(
                "sequence {} where {} was expected",
                e.seq,
                n + 1
            )));
        }
        if e.prev != prev {
            return Err(broken("does not link to the previous entry".into()));
        }
        if hash_of(&prev, &e) != e.hash {
            return Err(broken("hash does not match the content (altered)".into()));
        }
        prev = e.hash;
        n += 1;
    }
    Ok(n)
}

/// Opens the log for appending: cuts a torn last line and returns the file, the last seq and hash.
fn open_for_append(path: &Path) -> Result<(std::fs::File, u64, String), AuditError> {
    let io = |source| AuditError::Io {
        path: path.to_owned(),
        source,
    };
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .open(path)
        .map_err(io)?;
    let (mut seq, mut hash, mut good_len) = (0, ZERO_HASH.to_owned(), 0u64);
    let mut offset = 0u64;
    let reader = BufReader::new(&file);
    for chunk in reader.split(b'\n') {
        let chunk = chunk.map_err(io)?;
        offset += chunk.len() as u64 + 1;
        if let Ok(e) = serde_json::from_slice::<Entry>(&chunk) {
            (seq, hash, good_len) = (e.seq, e.hash, offset);
        }
    }
    let len = file.metadata().map_err(io)?.len();
    if good_len < len {
        warn!(path = %path.display(), cut_bytes = len - good_len, "audit log ends in a torn entry; cutting it");
        file.set_len(good_len).map_err(io)?;
        file.seek(SeekFrom::End(0)).map_err(io)?;
    }
    Ok((file, seq, hash))
}

/// Holds an exclusive `flock` on the log until dropped.
struct FileLock<'a>(&'a std::fs::File);

impl<'a> FileLock<'a> {
    fn take(file: &'a std::fs::File) -> std::io::Result<Self> {
        rustix::fs::flock(file, rustix::fs::FlockOperation::LockExclusive)?;
        Ok(Self(file))
    }
}

impl Drop for FileLock<'_> {
    fn drop(&mut self) {
        let _ = rustix::fs::flock(self.0, rustix::fs::FlockOperation::Unlock);
    }
}

/// The last entry's `(seq, hash)` as the file is now (`(0, zeros)` when empty), read from its end. A torn last line
/// (a writer that crashed mid-append) is cut off first. Call with the lock held.
fn chain_tail(path: &Path, file: &std::fs::File) -> std::io::Result<(u64, String)> {
    let mut len = file.metadata()?.len();
    let mut window = 64 * 1024u64;
    loop {
        if len == 0 {
            return Ok((0, ZERO_HASH.to_owned()));
        }
        let start = len.saturating_sub(window);
        let mut buf = vec![0u8; usize::try_from(len - start).unwrap_or(0)];
        file.read_exact_at(&mut buf, start)?;
        if buf.last() != Some(&b'\n') {
            match buf.iter().rposition(|b| *b == b'\n') {
                Some(i) => {
                    let good = start + i as u64 + 1;
                    warn!(path = %path.display(), cut_bytes = len - good, "audit log ends in a torn entry; cutting it");
                    file.set_len(good)?;
                    len = good;
                    continue;
                }
                None if start == 0 => {
                    warn!(path = %path.display(), cut_bytes = len, "audit log holds only a torn entry; cutting it");
                    file.set_len(0)?;
                    len = 0;
                    continue;
                }
                None => {
                    window *= 4;
                    continue;
                }
            }
        }
        let body = &buf[..buf.len() - 1];
        let line = match body.iter().rposition(|b| *b == b'\n') {
            Some(i) => &body[i + 1..],
            None if start == 0 => body,
            None => {
                window *= 4;
                continue;
            }
        };
        let e: Entry = serde_json::from_slice(line).map_err(|err| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("last entry unreadable: {err}"),
            )
        })?;
        return Ok((e.seq, e.hash));
    }
}

/// Appends one entry from outside the gateway's writer (a command run beside it): takes the file's lock,
/// continues the chain from its last entry, writes and fsyncs. Returns the entry written.
pub fn append_locked(
    path: &Path,
    actor: &str,
    action: &str,
    subject: &str,
    detail: serde_json::Value,
) -> Result<Entry, AuditError> {
    let io = |source| AuditError::Io {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .open(path)
        .map_err(io)?;
    let lock = FileLock::take(&file).map_err(io)?;
    let (seq, prev) = chain_tail(path, &file).map_err(io)?;
    let mut e = Entry {
        seq: seq + 1,
        at: time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        actor: actor.to_owned(),
        action: action.to_owned(),
        subject: subject.to_owned(),
        detail,
        prev: prev.clone(),
        hash: String::new(),
    };
    e.hash = hash_of(&prev, &e);
    let mut line = serde_json::to_vec(&e).map_err(|err| io(std::io::Error::other(err)))?;
    line.push(b'\n');
    (&file).write_all(&line).map_err(io)?;
    file.sync_data().map_err(io)?;
    drop(lock);
    Ok(e)
}

/// Handle used by the gateway's tasks to record events (cheap to clone).
#[derive(Debug, Clone)]
pub struct Audit {
    tx: mpsc::UnboundedSender<(String, String, String, serde_json::Value)>,
}

impl Audit {
    /// Opens `path` and starts the writer task.
    pub fn start(path: &Path) -> Result<Self, AuditError> {
        let (file, seq, prev) = open_for_append(path)?;
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(writer(path.to_owned(), file, seq, prev, rx));
        Ok(Self { tx })
    }

    /// Records an event.
    pub fn record(
        &self,
        actor: impl Into<String>,
        action: &str,
        subject: impl Into<String>,
        detail: serde_json::Value,
    ) {
        let _ = self
            .tx
            .send((actor.into(), action.to_owned(), subject.into(), detail));
    }
}

async fn writer(
    path: PathBuf,
    file: std::fs::File,
    mut seq: u64,
    mut prev: String,
    mut rx: mpsc::UnboundedReceiver<(String, String, String, serde_json::Value)>,
) {
    let fmt = time::format_description::well_known::Rfc3339;
    let mut expected_len = file.metadata().map(|m| m.len()).unwrap_or(0);
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        tokio::time::sleep(SYNC_INTERVAL).await;
        while let Ok(more) = rx.try_recv() {
            batch.push(more);
        }
        let lock = match FileLock::take(&file) {
            Ok(l) => Some(l),
            Err(e) => {
                error!(path = %path.display(), error = %e, "cannot lock the audit log; appending without the lock");
                None
            }
        };
        // Another process (e.g. `hotspot-gateway user add`) appended since our last batch: continue after it.
        if file.metadata().map(|m| m.len()).unwrap_or(expected_len) != expected_len {
            match chain_tail(&path, &file) {
                Ok((s, h)) => (seq, prev) = (s, h),
                Err(e) => {
                    error!(path = %path.display(), error = %e, "cannot read the audit log's last entry")
                }
            }
        }
        let mut out = Vec::new();
        for (actor, action, subject, detail) in batch {
            seq += 1;
            let at = time::OffsetDateTime::now_utc()
                .format(&fmt)
                .unwrap_or_default();
            let mut e = Entry {
                seq,
                at,
                actor,
                action,
                subject,
                detail,
                prev: prev.clone(),
                hash: String::new(),
            };
            e.hash = hash_of(&prev, &e);
            prev = e.hash.clone();
            if let Ok(line) = serde_json::to_vec(&e) {
                out.extend_from_slice(&line);
                out.push(b'\n');
            }
        }
        let written = (&file).write_all(&out).and_then(|()| file.sync_data());
        if let Err(e) = written {
            error!(path = %path.display(), error = %e, "cannot write the audit log");
        }
        expected_len = file.metadata().map(|m| m.len()).unwrap_or(0);
        drop(lock);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    async fn write_some(path: &Path, n: usize) {
        let a = Audit::start(path).unwrap();
        for i in 0..n {
            a.record(
                "station:d1",
                "capture.accepted",
                format!("c{i}"),
                serde_json::json!({"i": i}),
            );
        }
        tokio::time::sleep(SYNC_INTERVAL * 3).await;
    }

    #[tokio::test]
    async fn chain_verifies_survives_reopen_and_detects_tampering() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("audit.log");
        write_some(&path, 5).await;
        write_some(&path, 3).await;
        assert_eq!(verify(&path).unwrap(), 8);

        let text = std::fs::read_to_string(&path).unwrap();
        let altered = text.replacen("\"c3\"", "\"c9\"", 1);
        std::fs::write(&path, &altered).unwrap();
        assert!(matches!(
            verify(&path),
            Err(AuditError::Broken { line: 4, .. })
        ));

        let mut lines: Vec<&str> = text.lines().collect();
        lines.remove(2);
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        assert!(matches!(
            verify(&path),
            Err(AuditError::Broken { line: 3, .. })
        ));
    }

    #[tokio::test]
    async fn another_process_appending_beside_the_writer_keeps_one_chain() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("audit.log");
        let a = Audit::start(&path).unwrap();
        a.record("system", "gateway.started", "", serde_json::json!({}));
        tokio::time::sleep(SYNC_INTERVAL * 3).await;
        let e = append_locked(&path, "cli", "user.added", "alice", serde_json::json!({})).unwrap();
        assert_eq!(e.seq, 2);
        a.record("system", "gateway.stopped", "", serde_json::json!({}));
        tokio::time::sleep(SYNC_INTERVAL * 3).await;
        append_locked(&path, "cli", "user.removed", "alice", serde_json::json!({})).unwrap();
        assert_eq!(verify(&path).unwrap(), 4);
        // A torn line left by a crashed appender is cut by the next one.
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(b"{\"seq\":5,\"at").unwrap();
        drop(f);
        append_locked(&path, "cli", "user.added", "bob", serde_json::json!({})).unwrap();
        assert_eq!(verify(&path).unwrap(), 5);
    }

    #[tokio::test]
    async fn a_torn_last_line_is_cut_and_the_chain_continues() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("audit.log");
        write_some(&path, 2).await;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(b"{\"seq\":3,\"at\":\"2026-").unwrap();
        drop(f);
        write_some(&path, 2).await;
        assert_eq!(verify(&path).unwrap(), 4);
    }
}
