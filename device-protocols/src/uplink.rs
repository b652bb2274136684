//! Gateway <-> central frames, carried on QUIC streams (ALPN [`ALPN`]).
//!
//! # Framing
//! Every message is one frame: `[version: u8 = 4][length: u32 big-endian][body: postcard]`. Version 2 added the
//! face embedding to the watchlist; version 3 replaced the plain watchlist snapshot with signed bundles
//! ([`crate::bundle`], [`Response::Bundles`]), added refusal reports ([`Request::Report`]), plugin fetches and the
//! freshness and plugin fields of [`Hello`]; version 4 added central's review counts of the gateway's
//! contributions to [`Response::Welcome`]. A peer speaking another version is refused with [`FrameError`] naming
//! both versions. A request and its response each travel on one bidirectional stream opened by the gateway; central
//! announces news (a new watchlist version, new plugins) on unidirectional streams it opens, one [`Announcement`]
//! frame each.
//!
//! Decoding is bounded: [`decode_header`] refuses an unknown version or a length above the caller's limit before a
//! single body byte is read, and postcard refuses bodies that claim more bytes than they have.

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use uuid::Uuid;

use crate::station::{Capture, CaptureResult, Decision, ResultCandidate};

/// QUIC ALPN of protocol v1.
pub const ALPN: &[u8] = b"hotspot/1";
/// Frame format version written by this code.
pub const FRAME_VERSION: u8 = 4;
/// Bytes in a frame header.
pub const HEADER_LEN: usize = 5;
/// Limit for requests and ordinary responses.
pub const MAX_FRAME_BYTES: usize = 32 * 1024 * 1024;
/// Limit for a watchlist snapshot response.
pub const MAX_WATCHLIST_FRAME_BYTES: usize = 512 * 1024 * 1024;

/// Central's review of one gateway's contributions received on one day.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewedDay {
    /// `YYYY-MM-DD` (UTC) of receipt at central.
    pub day: String,
    /// Accepted into the central database.
    pub accepted: u64,
    /// Rejected at review.
    pub rejected: u64,
}

/// Errors in framing or frame bodies.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The header names a version this code does not speak.
    #[error("frame version {found} is not supported (this side speaks {FRAME_VERSION})")]
    Version {
        /// Version byte found at offset 0.
        found: u8,
    },
    /// The header declares more bytes than allowed.
    #[error("frame length {length} exceeds the limit of {limit} bytes")]
    TooLarge {
        /// Declared length (offset 1..5).
        length: usize,
        /// The limit in force.
        limit: usize,
    },
    /// The bytes at hand do not match the declared length.
    #[error("frame declares {declared} bytes but {actual} are present")]
    Length {
        /// Declared length.
        declared: usize,
        /// Bytes present.
        actual: usize,
    },
    /// The body does not decode as the expected message.
    #[error("frame body is not a valid {what}: {source}")]
    Body {
        /// Message type expected.
        what: &'static str,
        /// Decoder error.
        source: postcard::Error,
    },
    /// The message could not be encoded.
    #[error("cannot encode {what}: {source}")]
    Encode {
        /// Message type.
        what: &'static str,
        /// Encoder error.
        source: postcard::Error,
    },
}

/// Encodes a message as one frame.
pub fn encode_frame<T: Serialize>(msg: &T) -> Result<Vec<u8>, FrameError> {
    let what = std::any::type_name::<T>();
    let body = postcard::to_stdvec(msg).map_err(|source| FrameError::Encode { what, source })?;
    let len = u32::try_from(body.len()).map_err(|_| FrameError::TooLarge {
        length: body.len(),
        limit: u32::MAX as usize,
    })?;
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    out.push(FRAME_VERSION);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

/// Checks a frame header and returns the body length.
pub fn decode_header(header: [u8; HEADER_LEN], limit: usize) -> Result<usize, FrameError> {
    if header[0] != FRAME_VERSION {
        return Err(FrameError::Version { found: header[0] });
    }
    let length = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
    if length > limit {
        return Err(FrameError::TooLarge { length, limit });
    }
    Ok(length)
}

/// Decodes a frame body.
pub fn decode_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, FrameError> {
    postcard::from_bytes(body).map_err(|source| FrameError::Body {
        what: std::any::type_name::<T>(),
        source,
    })
}

/// Decodes a whole frame held in memory (header + body, nothing after).
pub fn decode_frame<T: DeserializeOwned>(frame: &[u8], limit: usize) -> Result<T, FrameError> {
    let header: [u8; HEADER_LEN] = frame
        .get(..HEADER_LEN)
        .and_then(|h| h.try_into().ok())
        .ok_or(FrameError::Length {
            declared: HEADER_LEN,
            actual: frame.len(),
        })?;
    let length = decode_header(header, limit)?;
    let body = &frame[HEADER_LEN..];
    if body.len() != length {
        return Err(FrameError::Length {
            declared: length,
            actual: body.len(),
        });
    }
    decode_body(body)
}

/// Gateway -> central.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Request {
    /// First request on a connection.
    Hello(Hello),
    /// Deliver one capture (idempotent on `capture_id`).
    Submit(Box<Submission>),
    /// Ask for the watchlist bundles that lead from `have_version` to central's latest.
    FetchWatchlist {
        /// Version the gateway has (0: none).
        have_version: u64,
    },
    /// Ask for the plugin bundles newer than what the gateway has.
    FetchPlugins {
        /// Installed plugins.
        have: Vec<PluginVersion>,
    },
    /// Something central ops must know (e.g. a refused bundle); answered with [`Response::Noted`].
    Report(GatewayEvent),
}

/// A plugin installed on a gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginVersion {
    /// Plugin name.
    pub name: String,
    /// Bundle version.
    pub version: u64,
}

/// Events a gateway reports to central.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum GatewayEvent {
    /// A bundle was refused; the installed watchlist or plugin stays.
    BundleRefused {
        /// `watchlist-snapshot`, `watchlist-delta`, `plugin`, or `unknown` when it did not verify.
        kind: String,
        /// The version it claimed (0 when it did not verify).
        version: u64,
        /// Why.
        reason: String,
    },
    /// A policy plugin routed an alert to central.
    Alert {
        /// Station of the capture.
        station_id: String,
        /// The capture.
        capture_id: Uuid,
        /// `info`, `warning` or `critical`.
        severity: String,
        /// The alert's text.
        message: String,
        /// The policy plugin that raised it.
        plugin: String,
    },
    /// A plugin was rolled back to its previous version.
    PluginRolledBack {
        /// Plugin name.
        name: String,
        /// The version taken out.
        from_version: u64,
        /// The version back in service (0: none).
        to_version: u64,
        /// Why.
        reason: String,
    },
}

/// Identification the gateway sends at connect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// The gateway's site id.
    pub site_id: String,
    /// Gateway software version.
    pub software_version: String,
    /// Installed watchlist version.
    pub watchlist_version: u64,
    /// Captures waiting in the outbox.
    pub backlog: u64,
    /// Oldest queued capture's age in seconds, if any.
    pub oldest_backlog_s: Option<u64>,
    /// When central made the installed watchlist (Unix ms; 0: none).
    pub watchlist_created_at_ms: i64,
    /// Seconds since the gateway last confirmed with central that its watchlist is current (`None`: never).
    pub watchlist_age_s: Option<u64>,
    /// Installed plugins.
    pub plugins: Vec<PluginVersion>,
    /// Active alarms (e.g. `watchlist_stale`, `disk_quota`), as on the status topic.
    pub alarms: Vec<String>,
}

/// One capture delivered to central.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Submission {
    /// Station that captured it.
    pub station_id: String,
    /// When the gateway received it (Unix milliseconds).
    pub received_at_ms: i64,
    /// The capture as the station sent it.
    pub capture: Capture,
    /// The gateway's local decision, for central's records.
    pub local_decision: Decision,
}

/// Central -> gateway.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Response {
    /// Answer to [`Request::Hello`].
    Welcome {
        /// Central's name.
        central_id: String,
        /// Current watchlist version.
        watchlist_version: u64,
        /// Central's review of this gateway's contributions, per day of receipt at central (the last 7 days
        /// with any, oldest first).
        reviewed: Vec<ReviewedDay>,
    },
    /// Answer to [`Request::Submit`].
    Answer(CentralAnswer),
    /// Answer to [`Request::FetchWatchlist`] / [`Request::FetchPlugins`]: signed bundles ([`crate::bundle`]) to
    /// verify and apply in order (watchlist: one snapshot, or the deltas from the gateway's version).
    Bundles(Vec<Vec<u8>>),
    /// Answer to [`Request::FetchWatchlist`] when the gateway is current.
    WatchlistUnchanged {
        /// The current version.
        version: u64,
    },
    /// Answer to [`Request::Report`].
    Noted,
    /// The request could not be served; retry later unless `permanent`.
    Error {
        /// Whether retrying the same request can succeed.
        permanent: bool,
        /// What went wrong.
        message: String,
    },
}

/// Central's answer to a submission.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CentralAnswer {
    /// The capture answered.
    pub capture_id: Uuid,
    /// Central's decision.
    pub decision: Decision,
    /// Ranked candidates from the full gallery.
    pub candidates: Vec<ResultCandidate>,
    /// Why, where useful.
    pub reason: Option<String>,
    /// Gallery version searched.
    pub gallery_version: u64,
    /// True when central had already answered this capture id (a re-submission).
    pub duplicate: bool,
    /// For an enrolment: central's record id of the contribution (the gateway's receipt).
    pub contribution_id: Option<String>,
}

impl CentralAnswer {
    /// The result to publish to the station.
    pub fn to_result(&self, latency_ms: u64) -> CaptureResult {
        CaptureResult {
            capture_id: Some(self.capture_id),
            source: crate::station::Source::Central,
            decision: self.decision,
            candidates: self.candidates.clone(),
            reason: match (&self.reason, &self.contribution_id) {
                (r, None) => r.clone(),
                (None, Some(c)) => Some(format!(
                    "contribution {c} received by central, pending review"
                )),
                (Some(r), Some(c)) => {
                    Some(format!("{r}; contribution {c} received, pending review"))
                }
            },
            watchlist_version: self.gallery_version,
            latency_ms,
        }
    }
}

/// Central -> gateway, unsolicited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Announcement {
    /// A new watchlist version is available.
    WatchlistVersion {
        /// The version.
        version: u64,
    },
    /// New plugin bundles are available (fetch with [`Request::FetchPlugins`]).
    PluginsChanged,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn frame_round_trip() {
        let req = Request::FetchWatchlist { have_version: 7 };
        let f = encode_frame(&req).unwrap();
        assert_eq!(f[0], FRAME_VERSION);
        let back: Request = decode_frame(&f, MAX_FRAME_BYTES).unwrap();
        assert_eq!(back, req);
    }

    #[test]
    fn header_limits() {
        // Versions 1 and 2 (before signed bundles) and unknown later versions are refused.
        for old_or_new in [1, 2, FRAME_VERSION + 1] {
            assert!(matches!(
                decode_header([old_or_new, 0, 0, 0, 1], 10),
                Err(FrameError::Version { found }) if found == old_or_new
            ));
        }
        assert!(matches!(
            decode_header([FRAME_VERSION, 0, 0, 1, 0], 10),
            Err(FrameError::TooLarge {
                length: 256,
                limit: 10
            })
        ));
        assert_eq!(decode_header([FRAME_VERSION, 0, 0, 0, 10], 10).unwrap(), 10);
    }

    #[test]
    fn truncated_body_is_an_error() {
        let snap = Response::Bundles(vec![vec![1, 2, 3], vec![4; 40]]);
        let f = encode_frame(&snap).unwrap();
        let body = &f[HEADER_LEN..f.len() - 2];
        assert!(decode_body::<Response>(body).is_err());
        assert!(decode_frame::<Response>(&f[..f.len() - 1], MAX_FRAME_BYTES).is_err());
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_frames_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
            let _ = decode_frame::<Request>(&bytes, MAX_FRAME_BYTES);
            let _ = decode_frame::<Response>(&bytes, MAX_FRAME_BYTES);
            let _ = decode_body::<Announcement>(&bytes);
        }
    }
}
