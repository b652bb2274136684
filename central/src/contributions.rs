//! Contributions: enrolments delivered by gateways, kept pending until central ops accept or reject them.
//!
//! One file per contribution, `DATA_DIR/contributions/<id>.json`, written atomically: the submission's
//! metadata, the officer's declarations, the templates extracted from the capture (matcher encoding, base64) and
//! the status. `serve` writes pending ones (idempotently: the id derives from the capture id); the
//! `contributions accept|reject` commands change the status, and `accept` adds the subject to the gallery under
//! the list `contributed` (not the watchlist), which `serve` reloads, so the person becomes searchable at
//! central. Images are not kept: only the extracted templates. Run one ops command at a time.
//!
//! An accepted contribution can be passed on to an INTERPOL-style database as an INT-I ATP (add to print
//! collection) transaction, [`atp`]: the declared biographics in the Type-2 record and each finger's template as a
//! Type-9 INCITS 378 minutiae record (the images were never kept, so there are no Type-14 or Type-10 records).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use hotspot_device_protocols::enrolment::Enrolment;
use hotspot_device_protocols::int_i::{
    Agency, Biographics, SearchKind, SearchRequest, Sex, build_search_request,
};
use hotspot_device_protocols::station::{Decision, Finger, FingerFormat};
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
    /// The contribution cannot become an ATP transaction.
    #[error("contribution {id} cannot be exported: {why}")]
    Export {
        /// Id.
        id: String,
        /// Why.
        why: String,
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

/// Central's review counts of `gateway`'s contributions for the last `days` days that have any, oldest first
/// (what the gateway shows as its `accepted` / `rejected_review` counters).
pub fn reviewed(
    data_dir: &Path,
    gateway: &str,
    days: usize,
) -> Result<Vec<hotspot_device_protocols::uplink::ReviewedDay>, ContributionError> {
    let all = list(data_dir)?;
    let mut out: Vec<_> = stats(&all)
        .into_iter()
        .filter(|((g, _), _)| g == gateway)
        .map(|((_, day), [_, _, accepted, rejected])| {
            hotspot_device_protocols::uplink::ReviewedDay {
                day,
                accepted,
                rejected,
            }
        })
        .collect();
    let skip = out.len().saturating_sub(days);
    out.drain(..skip);
    Ok(out)
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

/// Builds the INT-I ATP (add to print collection) transaction of an accepted contribution: 1.009 TCN is the
/// contribution id, Type-2 carries the officer's declared names, date of birth, sex (`X` is written `U`) and
/// nationality, and each finger becomes a Type-9 minutiae record (ISO 19794-2 at 500 ppi converted to the INCITS
/// 378 block). Pending and rejected contributions are refused: only reviewed records are passed on.
pub fn atp(
    c: &Contribution,
    originator: Agency,
    destination: Agency,
    created: time::OffsetDateTime,
) -> Result<String, ContributionError> {
    let fail = |why: String| ContributionError::Export {
        id: c.id.clone(),
        why,
    };
    if !matches!(c.status, Status::Accepted { .. }) {
        return Err(fail("only accepted contributions are exported".into()));
    }
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut fingers = Vec::with_capacity(c.fingers.len());
    for (position, encoded) in &c.fingers {
        let bytes = b64
            .decode(encoded)
            .map_err(|e| fail(format!("finger {position}: {e}")))?;
        let template = hotspot_matcher::Template::decode(&bytes)
            .map_err(|e| fail(format!("finger {position}: {e}")))?;
        // The image size is not kept; the smallest frame holding every minutia (plus a margin) stands in for it.
        let extent = |v: f32| (v.max(0.0).ceil() as u32 + 16).min(u32::from(u16::MAX)) as u16;
        let width = template
            .minutiae
            .iter()
            .map(|m| extent(m.x))
            .max()
            .unwrap_or(16);
        let height = template
            .minutiae
            .iter()
            .map(|m| extent(m.y))
            .max()
            .unwrap_or(16);
        let data = template
            .to_iso19794_2(*position, width, height)
            .map_err(|e| fail(format!("finger {position}: {e}")))?;
        fingers.push(Finger {
            position: *position,
            format: FingerFormat::Iso19794_2,
            data,
        });
    }
    let e = &c.enrolment;
    let birth_date = time::Date::parse(
        &e.date_of_birth,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .map_err(|err| fail(format!("date of birth {:?}: {err}", e.date_of_birth)))?;
    let sex = match e.sex.as_str() {
        "F" => Sex::Female,
        "M" => Sex::Male,
        _ => Sex::Unknown,
    };
    let request = SearchRequest {
        kind: SearchKind::Atp,
        control_number: c.id.clone(),
        originator,
        destination,
        created,
        priority: 5,
        subject: Biographics {
            given_name: Some(e.given_names.clone()),
            surname: Some(e.family_name.clone()),
            birth_date: Some(birth_date),
            sex: Some(sex),
            citizenship: Some(e.nationality.clone()),
        },
        fingers: &fingers,
        face: None,
    };
    build_search_request(&request).map_err(|err| fail(err.to_string()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use hotspot_device_protocols::enrolment::{Encounter, EncounterReason};
    use hotspot_device_protocols::int_i::parse_package;
    use hotspot_matcher::{Minutia, MinutiaKind, Template};

    fn agency(id: &str, country: &str) -> Agency {
        Agency {
            id: id.into(),
            name: format!("{id} agency"),
            country: country.into(),
        }
    }

    fn contribution(status: Status) -> Contribution {
        let b64 = base64::engine::general_purpose::STANDARD;
        let template = |n: usize| Template {
            minutiae: (0..n)
                .map(|i| Minutia {
                    x: 40.0 + 9.0 * i as f32,
                    y: 300.0 - 7.0 * i as f32,
                    angle: 0.1 * i as f32,
                    kind: MinutiaKind::RidgeEnding,
                    quality: 60,
                })
                .collect(),
        };
        Contribution {
            id: "C-0123".into(),
            capture_id: uuid::Uuid::nil().to_string(),
            gateway: "gw-1".into(),
            station_id: "desk-1".into(),
            received_at: "2026-11-29T10:00:00Z".into(),
            enrolment: Enrolment {
                family_name: "DOE".into(),
                given_names: "JANE MARIE".into(),
                date_of_birth: "1990-04-17".into(),
                sex: "X".into(),
                nationality: "KEN".into(),
                document: None,
                encounter: Encounter {
                    place: "Namanga".into(),
                    reason: EncounterReason::BorderCheck,
                },
                legal_basis: "Immigration Act s.12(3)".into(),
            },
            fingers: vec![
                (2, b64.encode(template(30).encode())),
                (7, b64.encode(template(25).encode())),
            ],
            has_face: false,
            face: None,
            screening: Decision::NoHit,
            status,
        }
    }

    #[test]
    fn accepted_contribution_becomes_an_atp_with_its_fingers_and_declarations() {
        let c = contribution(Status::Accepted {
            at: "2026-11-29T11:00:00Z".into(),
            subject_id: "C-0123".into(),
        });
        let created = time::macros::datetime!(2026-11-29 12:00:00 UTC);
        let xml = atp(&c, agency("HSE", "KEN"), agency("INT", "XPO"), created).unwrap();
        let package = parse_package(xml.as_bytes()).unwrap();
        assert_eq!(package.info.category, "ATP");
        assert_eq!(package.info.control_number.as_deref(), Some("C-0123"));
        assert_eq!(package.info.originator.as_deref(), Some("HSE"));
        assert_eq!(package.records, [2, 9, 9]);
        for needle in [
            "<nc:PersonSurName>DOE</nc:PersonSurName>",
            "<nc:PersonGivenName>JANE MARIE</nc:PersonGivenName>",
            "<nc:Date>1990-04-17</nc:Date>",
            "<int-i:PersonSexCode>U</int-i:PersonSexCode>",
            ">KEN</nc:PersonCitizenshipISO3166Alpha3Code>",
        ] {
            assert!(xml.contains(needle), "{needle} missing");
        }
        assert_eq!(xml.matches("<biom:FingerPositionCode>2<").count(), 1);
        assert_eq!(xml.matches("<biom:FingerPositionCode>7<").count(), 1);
        assert_eq!(xml.matches("<biom:MinutiaeQuantity>30<").count(), 1);
        assert_eq!(xml.matches("<biom:MinutiaeQuantity>25<").count(), 1);
    }

    #[test]
    fn pending_rejected_and_damaged_contributions_are_not_exported() {
        let created = time::OffsetDateTime::UNIX_EPOCH;
        let pending = contribution(Status::Pending);
        let err = atp(
            &pending,
            agency("HSE", "KEN"),
            agency("INT", "XPO"),
            created,
        )
        .unwrap_err();
        assert!(err.to_string().contains("only accepted"), "{err}");
        let rejected = contribution(Status::Rejected {
            at: "2026-11-29T11:00:00Z".into(),
            reason: "duplicate".into(),
        });
        assert!(
            atp(
                &rejected,
                agency("HSE", "KEN"),
                agency("INT", "XPO"),
                created
            )
            .is_err()
        );
        let mut damaged = contribution(Status::Accepted {
            at: "2026-11-29T11:00:00Z".into(),
            subject_id: "C-0123".into(),
        });
        damaged.fingers[1].1 = "not base64!".into();
        let err = atp(
            &damaged,
            agency("HSE", "KEN"),
            agency("INT", "XPO"),
            created,
        )
        .unwrap_err();
        assert!(err.to_string().contains("finger 7"), "{err}");
    }
}
