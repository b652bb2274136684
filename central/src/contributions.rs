//! Contributions: enrolments delivered by gateways, kept pending until central ops accept or reject them.
//!
//! One file per contribution, `DATA_DIR/contributions/<id>.json`, written atomically: the submission's
//! metadata, the officer's declarations, the templates extracted from the capture (matcher encoding, base64) and
//! the status. `serve` writes pending ones (idempotently: the id derives from the capture id); the
//! `contributions accept|reject` commands change the status, and `accept` adds the subject to the gallery under
//! the list `contributed` (not the watchlist), which `serve` reloads, so the person becomes searchable at
//! central. Images are not kept: only the extracted templates. Run one ops command at a time.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use hotspot_device_protocols::enrolment::Enrolment;
use hotspot_device_protocols::station::Decision;
use serde::{Deserialize, Serialize};

use crate::fsutil::{self, FsError};
use crate::gallery::{GalleryError, GalleryFile, GallerySubject};

/// The gallery list accepted contributions join.
pub const CONTRIBUTED: &str = "contributed";
const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// Where a contribution stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Status {
    /// Waiting for review.
    Pending,
    /// In the gallery as `subject_id`.
    Accepted {
        /// RFC 3339.
        at: String,
        /// Gallery subject id.
        subject_id: String,
    },
    /// Refused.
    Rejected {
        /// RFC 3339.
        at: String,
        /// Why.
        reason: String,
    },
}

/// One contribution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contribution {
    /// Central's record id.
    pub id: String,
    /// The capture it came from.
    pub capture_id: String,
    /// Gateway (certificate name) that delivered it.
    pub gateway: String,
    /// Station.
    pub station_id: String,
    /// When central received it (RFC 3339).
    pub received_at: String,
    /// The officer's declarations.
    pub enrolment: Enrolment,
    /// `(position, base64 of the matcher template)`.
    pub fingers: Vec<(u8, String)>,
    /// Whether a face came with it (the photo is not kept).
    pub has_face: bool,
    /// Base64 of the face embedding (matcher encoding), when the face could be analysed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub face: Option<String>,
    /// Central's screening decision for the capture.
    pub screening: Decision,
    /// Review status.
    #[serde(flatten)]
    pub status: Status,
}

/// Errors of contribution handling.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ContributionError {
    /// File trouble.
    #[error(transparent)]
    Fs(#[from] FsError),
    /// Gallery trouble.
    #[error(transparent)]
    Gallery(#[from] GalleryError),
    /// No such contribution.
    #[error("no contribution {0}")]
    Unknown(String),
    /// Already decided.
    #[error("contribution {id} is already {status}")]
    Decided {
        /// Id.
        id: String,
        /// Its status.
        status: String,
    },
    /// A file does not decode.
    #[error("{path}: {what}")]
    Corrupt {
        /// File.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
}

fn dir(data_dir: &Path) -> PathBuf {
    data_dir.join("contributions")
}

/// The id of the contribution made from `capture_id` (stable, so re-deliveries land on the same record).
pub fn id_for(capture_id: uuid::Uuid) -> String {
    format!("C-{}", capture_id.simple())
}

fn path_of(data_dir: &Path, id: &str) -> Result<PathBuf, ContributionError> {
    let ok = id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if !ok {
        return Err(ContributionError::Unknown(id.to_owned()));
    }
    Ok(dir(data_dir).join(format!("{id}.json")))
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn write(data_dir: &Path, c: &Contribution) -> Result<(), ContributionError> {
    fsutil::create_dir_private(&dir(data_dir))?;
    let path = path_of(data_dir, &c.id)?;
    let bytes = serde_json::to_vec_pretty(c).map_err(|e| ContributionError::Corrupt {
        path: path.clone(),
        what: e.to_string(),
    })?;
    fsutil::write_atomic(&path, &bytes)?;
    Ok(())
}

/// Reads one contribution.
pub fn load(data_dir: &Path, id: &str) -> Result<Contribution, ContributionError> {
    let path = path_of(data_dir, id)?;
    if !path.exists() {
        return Err(ContributionError::Unknown(id.to_owned()));
    }
    let bytes = fsutil::read(&path, MAX_FILE_BYTES)?;
    serde_json::from_slice(&bytes).map_err(|e| ContributionError::Corrupt {
        path,
        what: e.to_string(),
    })
}

/// What `serve` knows about a delivered enrolment.
#[derive(Debug, Clone)]
pub struct Delivered<'a> {
    /// Capture id.
    pub capture_id: uuid::Uuid,
    /// Gateway name.
    pub gateway: &'a str,
    /// Station.
    pub station_id: &'a str,
    /// Declarations.
    pub enrolment: &'a Enrolment,
    /// `(position, template bytes)`.
    pub fingers: Vec<(u8, Vec<u8>)>,
    /// Face supplied.
    pub has_face: bool,
    /// The face's embedding, when it could be analysed.
    pub face: Option<Vec<u8>>,
    /// Central's screening decision.
    pub screening: Decision,
}

/// Records a pending contribution (no-op if this capture's contribution exists). Returns its id.
pub fn record(data_dir: &Path, d: Delivered<'_>) -> Result<String, ContributionError> {
    let id = id_for(d.capture_id);
    if path_of(data_dir, &id)?.exists() {
        return Ok(id);
    }
    let b64 = base64::engine::general_purpose::STANDARD;
    let c = Contribution {
        id: id.clone(),
        capture_id: d.capture_id.to_string(),
        gateway: d.gateway.to_owned(),
        station_id: d.station_id.to_owned(),
        received_at: now_rfc3339(),
        enrolment: d.enrolment.clone(),
        fingers: d.fingers.iter().map(|(p, t)| (*p, b64.encode(t))).collect(),
        has_face: d.has_face,
        face: d.face.as_ref().map(|e| b64.encode(e)),
        screening: d.screening,
        status: Status::Pending,
    };
    write(data_dir, &c)?;
    Ok(id)
}

/// Every contribution, oldest first.
pub fn list(data_dir: &Path) -> Result<Vec<Contribution>, ContributionError> {
    let Ok(entries) = std::fs::read_dir(dir(data_dir)) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(id) = name.strip_suffix(".json") {
            out.push(load(data_dir, id)?);
        }
    }
    out.sort_by(|a, b| (&a.received_at, &a.id).cmp(&(&b.received_at, &b.id)));
    Ok(out)
}

fn pending(data_dir: &Path, id: &str) -> Result<Contribution, ContributionError> {
    let c = load(data_dir, id)?;
    match &c.status {
        Status::Pending => Ok(c),
        Status::Accepted { .. } => Err(ContributionError::Decided {
            id: id.to_owned(),
            status: "accepted".into(),
        }),
        Status::Rejected { .. } => Err(ContributionError::Decided {
            id: id.to_owned(),
            status: "rejected".into(),
        }),
    }
}

/// Accepts a pending contribution: adds the subject to the gallery (list `contributed`). Returns (subject id,
/// new gallery version).
pub fn accept(data_dir: &Path, id: &str) -> Result<(String, u64), ContributionError> {
    let mut c = pending(data_dir, id)?;
    let b64 = base64::engine::general_purpose::STANDARD;
    let fingers = c
        .fingers
        .iter()
        .map(|(p, t)| b64.decode(t).map(|bytes| (*p, bytes)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ContributionError::Corrupt {
            path: path_of(data_dir, id).unwrap_or_default(),
            what: e.to_string(),
        })?;
    let face = c
        .face
        .as_ref()
        .map(|e| b64.decode(e))
        .transpose()
        .map_err(|e| ContributionError::Corrupt {
            path: path_of(data_dir, id).unwrap_or_default(),
            what: e.to_string(),
        })?;
    let subject_id = c.id.clone();
    let mut g = GalleryFile::load(data_dir)?;
    g.merge(vec![GallerySubject {
        subject_id: subject_id.clone(),
        lists: vec![CONTRIBUTED.to_owned()],
        fingers,
        face,
        watchlist_expires_at_ms: None,
    }]);
    g.save(data_dir)?;
    c.status = Status::Accepted {
        at: now_rfc3339(),
        subject_id: subject_id.clone(),
    };
    write(data_dir, &c)?;
    Ok((subject_id, g.version))
}

/// Rejects a pending contribution with a reason.
pub fn reject(data_dir: &Path, id: &str, reason: &str) -> Result<(), ContributionError> {
    let mut c = pending(data_dir, id)?;
    c.status = Status::Rejected {
        at: now_rfc3339(),
        reason: reason.to_owned(),
    };
    write(data_dir, &c)
}

/// Counts per gateway and day (`YYYY-MM-DD` of receipt): `[received, pending, accepted, rejected]`.
pub fn stats(list: &[Contribution]) -> BTreeMap<(String, String), [u64; 4]> {
    let mut m: BTreeMap<(String, String), [u64; 4]> = BTreeMap::new();
    for c in list {
        let day = c.received_at.get(..10).unwrap_or("").to_owned();
        let e = m.entry((c.gateway.clone(), day)).or_default();
        e[0] += 1;
        match c.status {
            Status::Pending => e[1] += 1,
            Status::Accepted { .. } => e[2] += 1,
            Status::Rejected { .. } => e[3] += 1,
        }
    }
    m
}
