//! What the console knows about recent captures, read from the audit log.
//!
//! The audit log already records every capture (`capture.accepted`, `capture.rejected`,
//! `capture.refused_storage_full`, by `station:ID`) and every result (`result.local`, `result.central`, with the
//! decision and candidate ids), in order, durably and without biometric data. The console follows the file like
//! `tail -f` ([`Feed::follow`]): at start it reads the last few MiB (so recent results survive a restart), then
//! every half second whatever was appended. From it the console keeps the most recent captures with their
//! decisions ([`Recent`]), each station's last capture, and pushes [`Activity`] to the dashboards.
//!
//! [`search`] reads the log backwards for the audit page's filters.

use std::collections::{BTreeMap, VecDeque};
use std::io::{Read as _, Seek as _, SeekFrom};
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::Serialize;
use time::OffsetDateTime;
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::audit::Entry;

/// Recent captures kept.
pub const RECENT_MAX: usize = 500;
/// Bytes read from the end of the log at start.
pub const SEED_BYTES: u64 = 4 * 1024 * 1024;
/// How often the log is checked for new entries.
pub const POLL: Duration = Duration::from_millis(500);

/// A decision and its candidates, as the audit log has them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outcome {
    /// `hit`, `no_hit`, `inconclusive`, `rejected`.
    pub decision: String,
    /// Candidate subject ids, best first.
    pub candidates: Vec<String>,
}

/// One recent capture.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Recent {
    /// Capture id (`None`: a rejected payload without a readable id).
    pub capture_id: Option<Uuid>,
    /// Station (empty when not known, e.g. a result for a capture older than the log's part read at start).
    pub station: String,
    /// When the gateway took (or refused) it, RFC 3339.
    pub at: String,
    /// `screen` or `enrol` (empty when not known).
    pub purpose: String,
    /// Local answer.
    pub local: Option<Outcome>,
    /// Central's answer.
    pub central: Option<Outcome>,
    /// Why it was refused, when it was.
    pub rejected: Option<String>,
}

impl Recent {
    /// Whether either answer is a hit.
    pub fn is_hit(&self) -> bool {
        [&self.local, &self.central]
            .iter()
            .any(|o| o.as_ref().is_some_and(|o| o.decision == "hit"))
    }
}

/// One line of the dashboard's activity list (no subject ids: the dashboard is not a results view).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Activity {
    /// RFC 3339.
    pub at: String,
    /// Station, if known.
    pub station: String,
    /// `capture`, `rejected`, `local` or `central`.
    pub kind: &'static str,
    /// The decision, for results.
    pub decision: Option<String>,
    /// The capture id's first 8 characters.
    pub capture: String,
}

#[derive(Debug, Default)]
struct State {
    recent: VecDeque<Recent>,
    last_capture: BTreeMap<String, String>,
}

/// The console's view of recent activity.
#[derive(Debug)]
pub struct Feed {
    path: PathBuf,
    state: Mutex<State>,
    tx: broadcast::Sender<Activity>,
}

fn outcome(detail: &serde_json::Value) -> Outcome {
    Outcome {
        decision: detail["decision"].as_str().unwrap_or_default().to_owned(),
        candidates: detail["candidates"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|c| c.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
    }
}

fn short(id: &str) -> String {
    id.chars().take(8).collect()
}

impl Feed {
    /// A feed of the log at `path`.
    pub fn new(path: PathBuf) -> Arc<Self> {
        let (tx, _) = broadcast::channel(256);
        Arc::new(Self {
            path,
            state: Mutex::new(State::default()),
            tx,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Live activity.
    pub fn subscribe(&self) -> broadcast::Receiver<Activity> {
        self.tx.subscribe()
    }

    /// Takes one audit entry into account.
    pub fn apply(&self, e: &Entry) {
        let station = e.actor.strip_prefix("station:").unwrap_or_default();
        let id = Uuid::parse_str(&e.subject).ok();
        let mut st = self.lock();
        let activity = match e.action.as_str() {
            "capture.accepted" | "capture.rejected" | "capture.refused_storage_full" => {
                let accepted = e.action == "capture.accepted";
                let rejected = (!accepted).then(|| {
                    e.detail["reason"]
                        .as_str()
                        .map(str::to_owned)
                        .unwrap_or_else(|| "storage full".into())
                });
                if !station.is_empty() {
                    st.last_capture.insert(station.to_owned(), e.at.clone());
                }
                st.recent.push_back(Recent {
                    capture_id: id,
                    station: station.to_owned(),
                    at: e.at.clone(),
                    purpose: e.detail["purpose"].as_str().unwrap_or_default().to_owned(),
                    local: None,
                    central: None,
                    rejected: rejected.clone(),
                });
                while st.recent.len() > RECENT_MAX {
                    st.recent.pop_front();
                }
                Activity {
                    at: e.at.clone(),
                    station: station.to_owned(),
                    kind: if accepted { "capture" } else { "rejected" },
                    decision: rejected.map(|_| "rejected".to_owned()),
                    capture: short(&e.subject),
                }
            }
            "result.local" | "result.central" => {
                let Some(id) = id else { return };
                let o = outcome(&e.detail);
                let central = e.action == "result.central";
                let decision = o.decision.clone();
                let pos = st.recent.iter().rposition(|r| r.capture_id == Some(id));
                let r = match pos {
                    Some(i) => &mut st.recent[i],
                    None => {
                        st.recent.push_back(Recent {
                            capture_id: Some(id),
                            station: String::new(),
                            at: e.at.clone(),
                            purpose: String::new(),
                            local: None,
                            central: None,
                            rejected: None,
                        });
                        while st.recent.len() > RECENT_MAX {
                            st.recent.pop_front();
                        }
                        let last = st.recent.len() - 1;
                        &mut st.recent[last]
                    }
                };
                if central {
                    r.central = Some(o);
                } else {
                    r.local = Some(o);
                }
                Activity {
                    at: e.at.clone(),
                    station: r.station.clone(),
                    kind: if central { "central" } else { "local" },
                    decision: Some(decision),
                    capture: short(&e.subject),
                }
            }
            _ => return,
        };
        drop(st);
        let _ = self.tx.send(activity);
    }

    /// The `n` most recent captures, newest first.
    pub fn recent(&self, n: usize) -> Vec<Recent> {
        self.lock().recent.iter().rev().take(n).cloned().collect()
    }

    /// The recent capture `id`, if it is still among the recent ones.
    pub fn find(&self, id: Uuid) -> Option<Recent> {
        self.lock()
            .recent
            .iter()
            .rev()
            .find(|r| r.capture_id == Some(id))
            .cloned()
    }

    /// Each station's last capture time (RFC 3339).
    pub fn last_captures(&self) -> BTreeMap<String, String> {
        self.lock().last_capture.clone()
    }

    /// Reads the end of the log; returns the offset up to which it was read (a whole line).
    fn seed(&self) -> std::io::Result<u64> {
        let mut f = match std::fs::File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e),
        };
        let len = f.metadata()?.len();
        let start = len.saturating_sub(SEED_BYTES);
        f.seek(SeekFrom::Start(start))?;
        let mut buf = Vec::new();
        f.read_to_end(&mut buf)?;
        // Skip a partial first line; stop at the last whole one.
        let from = if start == 0 {
            0
        } else {
            buf.iter()
                .position(|b| *b == b'\n')
                .map_or(buf.len(), |i| i + 1)
        };
        let to = buf.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        if from < to {
            for line in buf[from..to].split(|b| *b == b'\n') {
                if let Ok(e) = serde_json::from_slice::<Entry>(line) {
                    self.apply(&e);
                }
            }
        }
        Ok(start + to as u64)
    }

    /// Follows the log forever.
    pub async fn follow(self: Arc<Self>) {
        let me = self.clone();
        let mut offset = match tokio::task::spawn_blocking(move || me.seed()).await {
            Ok(Ok(o)) => o,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "console: cannot read the audit log");
                0
            }
            Err(_) => 0,
        };
        loop {
            tokio::time::sleep(POLL).await;
            let me = self.clone();
            match tokio::task::spawn_blocking(move || me.read_from(offset)).await {
                Ok(Ok(o)) => offset = o,
                Ok(Err(e)) => tracing::debug!(error = %e, "console: audit log not readable now"),
                Err(_) => {}
            }
        }
    }

    /// Applies the whole lines appended after `offset`; returns the new offset.
    fn read_from(&self, offset: u64) -> std::io::Result<u64> {
        let f = std::fs::File::open(&self.path)?;
        let len = f.metadata()?.len();
        if len < offset {
            // Cut (a torn line removed): continue from its new end.
            return Ok(len);
        }
        if len == offset {
            return Ok(offset);
        }
        let n = usize::try_from((len - offset).min(SEED_BYTES)).unwrap_or(0);
        let mut buf = vec![0u8; n];
        f.read_exact_at(&mut buf, offset)?;
        let Some(end) = buf.iter().rposition(|b| *b == b'\n') else {
            return Ok(offset);
        };
        for line in buf[..end].split(|b| *b == b'\n') {
            if let Ok(e) = serde_json::from_slice::<Entry>(line) {
                self.apply(&e);
            }
        }
        Ok(offset + end as u64 + 1)
    }
}

/// The audit page's filters (all optional; text filters are case-insensitive substrings).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Who (`user:ana`, `station:desk-1`, `system`, ...).
    pub actor: String,
    /// What (`console.login`, `capture.`, ...).
    pub action: String,
    /// On what (a capture id, a user name, ...).
    pub subject: String,
    /// From this time (inclusive).
    pub from: Option<OffsetDateTime>,
    /// Up to this time (inclusive).
    pub to: Option<OffsetDateTime>,
    /// Only entries with a smaller sequence number (the next page).
    pub before_seq: Option<u64>,
}

impl AuditFilter {
    fn matches(&self, e: &Entry, at: Option<OffsetDateTime>) -> bool {
        let has = |hay: &str, needle: &str| {
            needle.is_empty() || hay.to_lowercase().contains(&needle.to_lowercase())
        };
        has(&e.actor, &self.actor)
            && has(&e.action, &self.action)
            && has(&e.subject, &self.subject)
            && self.to.is_none_or(|to| at.is_some_and(|a| a <= to))
            && self.from.is_none_or(|from| at.is_some_and(|a| a >= from))
            && self.before_seq.is_none_or(|b| e.seq < b)
    }
}

/// What a search found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Found {
    /// Matching entries, newest first.
    pub entries: Vec<Entry>,
    /// More may match before the last one (use its `seq` as `before_seq`).
    pub more: bool,
    /// The scan stopped at [`SEARCH_SCAN_BYTES`] without reaching the start of the log.
    pub truncated: bool,
}

/// Bytes a search reads at most.
pub const SEARCH_SCAN_BYTES: u64 = 256 * 1024 * 1024;
const CHUNK: u64 = 256 * 1024;

/// Parses a time as typed in a filter: RFC 3339, `YYYY-MM-DDTHH:MM[:SS]` (UTC) or `YYYY-MM-DD` (UTC midnight).
pub fn parse_when(s: &str) -> Option<OffsetDateTime> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if let Ok(t) = OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339) {
        return Some(t);
    }
    let minutes = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]");
    let seconds =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    let day = time::macros::format_description!("[year]-[month]-[day]");
    time::PrimitiveDateTime::parse(s, &seconds)
        .or_else(|_| time::PrimitiveDateTime::parse(s, &minutes))
        .map(time::PrimitiveDateTime::assume_utc)
        .ok()
        .or_else(|| {
            time::Date::parse(s, &day)
                .ok()
                .map(|d| d.midnight().assume_utc())
        })
}

/// Searches the log backwards from its end: up to `limit` matching entries, newest first.
pub fn search(path: &Path, f: &AuditFilter, limit: usize) -> std::io::Result<Found> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Found::default()),
        Err(e) => return Err(e),
    };
    let len = file.metadata()?.len();
    let mut pos = len;
    let mut carry: Vec<u8> = Vec::new();
    let mut found = Found::default();
    let fmt = time::format_description::well_known::Rfc3339;
    while pos > 0 {
        if len - pos >= SEARCH_SCAN_BYTES {
            found.truncated = true;
            return Ok(found);
        }
        let start = pos.saturating_sub(CHUNK);
        let mut buf = vec![0u8; usize::try_from(pos - start).unwrap_or(0)];
        file.read_exact_at(&mut buf, start)?;
        buf.extend_from_slice(&carry);
        pos = start;
        // The first piece may be the end of a line that starts in the previous chunk.
        let (head, lines): (Vec<u8>, &[u8]) = if start == 0 {
            (Vec::new(), &buf[..])
        } else {
            match buf.iter().position(|b| *b == b'\n') {
                Some(i) => (buf[..i].to_vec(), &buf[i + 1..]),
                None => {
                    carry = buf;
                    continue;
                }
            }
        };
        for line in lines.rsplit(|b| *b == b'\n') {
            if line.is_empty() {
                continue;
            }
            let Ok(e) = serde_json::from_slice::<Entry>(line) else {
                continue;
            };
            let at = OffsetDateTime::parse(&e.at, &fmt).ok();
            if let (Some(from), Some(at)) = (f.from, at)
                && at < from
            {
                return Ok(found);
            }
            if f.matches(&e, at) {
                if found.entries.len() == limit {
                    found.more = true;
                    return Ok(found);
                }
                found.entries.push(e);
            }
        }
        carry = head;
    }
    Ok(found)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn entry(
        seq: u64,
        at: &str,
        actor: &str,
        action: &str,
        subject: &str,
        detail: serde_json::Value,
    ) -> Entry {
        Entry {
            seq,
            at: at.into(),
            actor: actor.into(),
            action: action.into(),
            subject: subject.into(),
            detail,
            prev: String::new(),
            hash: String::new(),
        }
    }

    #[test]
    fn captures_and_results_are_joined_and_hits_known() {
        let f = Feed::new(PathBuf::from("/nonexistent"));
        let mut rx = f.subscribe();
        let id = Uuid::new_v4();
        f.apply(&entry(
            1,
            "2026-01-01T10:00:00Z",
            "station:desk-1",
            "capture.accepted",
            &id.to_string(),
            serde_json::json!({"purpose": "screen"}),
        ));
        f.apply(&entry(
            2,
            "2026-01-01T10:00:01Z",
            "system",
            "result.local",
            &id.to_string(),
            serde_json::json!({"decision": "hit", "candidates": ["P001"]}),
        ));
        f.apply(&entry(
            3,
            "2026-01-01T10:00:02Z",
            "station:desk-2",
            "capture.rejected",
            "",
            serde_json::json!({"reason": "bad json"}),
        ));
        let r = f.recent(10);
        assert_eq!(r.len(), 2);
        assert_eq!(r[1].capture_id, Some(id));
        assert!(r[1].is_hit());
        assert_eq!(r[1].local.as_ref().unwrap().candidates, ["P001"]);
        assert_eq!(r[0].rejected.as_deref(), Some("bad json"));
        assert_eq!(f.last_captures().len(), 2);
        assert_eq!(rx.try_recv().unwrap().kind, "capture");
        assert_eq!(rx.try_recv().unwrap().decision.as_deref(), Some("hit"));
    }

    #[tokio::test]
    async fn the_feed_follows_the_file_and_search_filters_backwards() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("audit.log");
        let a = crate::audit::Audit::start(&path).unwrap();
        for i in 0..300 {
            a.record(
                format!("station:desk-{}", i % 3),
                "capture.accepted",
                Uuid::new_v4().to_string(),
                serde_json::json!({"purpose": "screen", "pad": "x".repeat(2000)}),
            );
        }
        a.record("user:ana", "console.login", "ana", serde_json::json!({}));
        tokio::time::sleep(crate::audit::SYNC_INTERVAL * 3).await;
        let f = Feed::new(path.clone());
        let end = f.seed().unwrap();
        assert_eq!(end, std::fs::metadata(&path).unwrap().len());
        assert_eq!(f.recent(1000).len(), 300);
        a.record(
            "station:desk-9",
            "capture.accepted",
            Uuid::new_v4().to_string(),
            serde_json::json!({}),
        );
        tokio::time::sleep(crate::audit::SYNC_INTERVAL * 3).await;
        let end2 = f.read_from(end).unwrap();
        assert!(end2 > end);
        assert!(f.last_captures().contains_key("desk-9"));

        let all = search(&path, &AuditFilter::default(), 1000).unwrap();
        assert_eq!(all.entries.len(), 302);
        assert!(!all.more && !all.truncated);
        assert!(all.entries.windows(2).all(|w| w[0].seq > w[1].seq));
        let who = AuditFilter {
            actor: "DESK-1".into(),
            ..Default::default()
        };
        let page = search(&path, &who, 50).unwrap();
        assert_eq!(page.entries.len(), 50);
        assert!(page.more);
        let next = AuditFilter {
            before_seq: Some(page.entries[49].seq),
            ..who.clone()
        };
        let page2 = search(&path, &next, 1000).unwrap();
        assert_eq!(page.entries.len() + page2.entries.len(), 100);
        let logins = AuditFilter {
            action: "console.".into(),
            ..Default::default()
        };
        assert_eq!(search(&path, &logins, 10).unwrap().entries.len(), 1);
        let future = AuditFilter {
            from: parse_when("2999-01-01"),
            ..Default::default()
        };
        assert!(search(&path, &future, 10).unwrap().entries.is_empty());
        assert!(parse_when("2026-11-29T10:00").is_some());
        assert!(parse_when("yesterday").is_none());
    }
}
