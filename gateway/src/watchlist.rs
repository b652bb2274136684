//! The installed watchlist: an immutable index swapped whole, so a match never sees half an update.
//!
//! A snapshot from central is decoded and indexed off to the side (on a blocking thread), persisted in the `meta`
//! tree, and only then swapped in with one atomic pointer store. A snapshot with a template that does not decode,
//! or with a version older than the installed one, is refused and the installed watchlist stays.

use std::sync::Arc;

use arc_swap::ArcSwap;
use hotspot_device_protocols::uplink::WatchlistSnapshot;
use hotspot_matcher::face::{Embedding, FaceIndex};
use hotspot_matcher::probe::Gallery;
use hotspot_matcher::{FingerprintIndex, Subject, Template};

/// One installed watchlist version.
#[derive(Debug)]
pub struct Installed {
    /// Version (0: none).
    pub version: u64,
    /// Subjects.
    pub subjects: usize,
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
}

/// Why a snapshot was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WatchlistError {
    /// A template in the snapshot does not decode.
    #[error("subject {subject}: template for finger {position} does not decode: {what}")]
    BadTemplate {
        /// Subject id.
        subject: String,
        /// Finger position.
        position: u8,
        /// Decoder error.
        what: String,
    },
    /// A face embedding in the snapshot does not decode (or is from another face model).
    #[error("subject {subject}: face embedding does not decode: {what}")]
    BadFace {
        /// Subject id.
        subject: String,
        /// Decoder error.
        what: String,
    },
    /// The snapshot is older than what is installed.
    #[error("snapshot version {offered} is older than the installed version {installed}")]
    Rollback {
        /// Offered.
        offered: u64,
        /// Installed.
        installed: u64,
    },
}

/// The holder the matcher reads from.
#[derive(Debug)]
pub struct Watchlist {
    current: ArcSwap<Installed>,
}

impl Default for Watchlist {
    fn default() -> Self {
        Self {
            current: ArcSwap::from_pointee(Installed {
                version: 0,
                subjects: 0,
                index: FingerprintIndex::build(Vec::new()),
                faces: FaceIndex::build(Vec::new()),
            }),
        }
    }
}

impl Watchlist {
    /// The installed version, for a whole match.
    pub fn current(&self) -> Arc<Installed> {
        self.current.load_full()
    }

    /// Builds an index from a snapshot (CPU-heavy: call on a blocking thread).
    pub fn build(&self, snapshot: &WatchlistSnapshot) -> Result<Installed, WatchlistError> {
        let installed = self.current.load().version;
        if snapshot.version < installed {
            return Err(WatchlistError::Rollback {
                offered: snapshot.version,
                installed,
            });
        }
        let mut subjects = Vec::with_capacity(snapshot.subjects.len());
        let mut faces = Vec::new();
        for s in &snapshot.subjects {
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
            version: snapshot.version,
            subjects: subjects.len(),
            index: FingerprintIndex::build(subjects),
            faces: FaceIndex::build(faces),
        })
    }

    /// Swaps in a built index.
    pub fn install(&self, installed: Installed) {
        self.current.store(Arc::new(installed));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use hotspot_device_protocols::uplink::WatchlistSubject;

    fn snapshot(version: u64, template: Vec<u8>) -> WatchlistSnapshot {
        WatchlistSnapshot {
            version,
            subjects: vec![WatchlistSubject {
                subject_id: "s1".into(),
                fingers: vec![(1, template)],
                face: None,
            }],
        }
    }

    #[test]
    fn refuses_rollback_and_bad_templates_keeping_the_old_one() {
        let w = Watchlist::default();
        let t = Template { minutiae: vec![] }.encode();
        w.install(w.build(&snapshot(3, t.clone())).unwrap());
        assert_eq!(w.current().version, 3);
        assert!(matches!(
            w.build(&snapshot(2, t)),
            Err(WatchlistError::Rollback { .. })
        ));
        assert!(matches!(
            w.build(&snapshot(4, vec![1, 2, 3])),
            Err(WatchlistError::BadTemplate { .. })
        ));
        let mut bad_face = snapshot(5, Template { minutiae: vec![] }.encode());
        bad_face.subjects[0].face = Some(vec![1; 134]);
        assert!(matches!(
            w.build(&bad_face),
            Err(WatchlistError::BadFace { .. })
        ));
        assert_eq!(w.current().version, 3);
        assert_eq!(w.current().subjects, 1);
    }

    #[test]
    fn faces_are_indexed_beside_fingers() {
        let w = Watchlist::default();
        let mut values = [0.0f32; hotspot_matcher::face::EMBEDDING_DIM];
        values[0] = 1.0;
        let e = Embedding::from_raw(&values).unwrap();
        let mut s = snapshot(1, Template { minutiae: vec![] }.encode());
        s.subjects[0].face = Some(e.encode());
        w.install(w.build(&s).unwrap());
        let installed = w.current();
        assert_eq!(installed.faces.subjects(), 1);
        let best = installed.faces.search(&e, 1);
        assert_eq!(best[0].0, "s1");
        assert!(best[0].1 > 0.99);
    }
}
