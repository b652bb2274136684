//! A raw ANSI/NIST-ITL transaction published on a station's captures topic (payload starting with `1.001:`),
//! turned into a station-protocol [`Capture`].
//!
//! - `capture_id`: a name-based UUID (v5) of the station id and the transaction control number (1.009 TCN), so a
//!   station re-sending the same transaction is recognised as a re-send; without a TCN, of the payload's bytes.
//! - `captured_at`: the transaction date (1.005 DAT, `YYYYMMDD`, midnight UTC) when present, else `now`.
//! - `operator`: the originating agency (1.008 ORI), else `ansi-nist`.
//! - `purpose`: always `screen`; enrolments use the JSON form, which carries the officer's declarations.
//! - fingers, minutiae and face as [`capture_parts`](super::capture_parts) takes them.

use time::OffsetDateTime;
use uuid::Uuid;

use super::{Header, capture_parts, parse};
use crate::station::{Capture, CaptureRejection, MAX_CAPTURE_BYTES, MAX_ID_LEN, Purpose};

/// Namespace of capture ids derived from ANSI/NIST-ITL transactions.
pub const CAPTURE_ID_NAMESPACE: Uuid = Uuid::from_u128(0x6a0f_5d0e_7c3b_4f1a_9b8e_2d4c_1e6f_a001);

/// Whether a captures-topic payload is a raw transaction rather than JSON.
pub fn is_transaction(payload: &[u8]) -> bool {
    payload.starts_with(b"1.001:")
}

/// Builds a capture from a raw transaction; the warnings say what was not carried over.
pub fn capture_from_transaction(
    station_id: &str,
    payload: &[u8],
    now: OffsetDateTime,
) -> Result<(Capture, Vec<String>), CaptureRejection> {
    let reject = |reason: String| CaptureRejection {
        capture_id: None,
        reason,
    };
    if payload.len() > MAX_CAPTURE_BYTES {
        return Err(reject(format!(
            "ANSI/NIST-ITL transaction is {} bytes, more than the limit of {MAX_CAPTURE_BYTES}",
            payload.len()
        )));
    }
    let (tx, parse_warnings) =
        parse(payload).map_err(|e| reject(format!("ANSI/NIST-ITL transaction: {e}")))?;
    let header =
        Header::from_transaction(&tx).map_err(|e| reject(format!("ANSI/NIST-ITL Type-1: {e}")))?;
    let tcn = header
        .control_number
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let capture_id = match tcn {
        Some(t) => Uuid::new_v5(
            &CAPTURE_ID_NAMESPACE,
            format!("{station_id}\u{1f}{t}").as_bytes(),
        ),
        None => Uuid::new_v5(&CAPTURE_ID_NAMESPACE, payload),
    };
    let with_id = |reason: String| CaptureRejection {
        capture_id: Some(capture_id),
        reason,
    };
    let parts =
        capture_parts(&tx).map_err(|e| with_id(format!("ANSI/NIST-ITL transaction: {e}")))?;
    if parts.fingers.is_empty() && parts.face.is_none() {
        return Err(with_id(format!(
            "ANSI/NIST-ITL transaction holds no usable finger, minutiae or face ({})",
            parts.warnings.join("; ")
        )));
    }
    let operator = header
        .originator
        .as_deref()
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .map(|o| {
            o.chars()
                .filter(|c| c.is_ascii_graphic())
                .take(MAX_ID_LEN)
                .collect::<String>()
        })
        .filter(|o| !o.is_empty())
        .unwrap_or_else(|| "ansi-nist".to_owned());
    let capture = Capture {
        capture_id,
        captured_at: header.date.as_deref().and_then(parse_dat).unwrap_or(now),
        operator,
        purpose: Purpose::Screen,
        fingers: parts.fingers,
        face: parts.face,
        enrolment: None,
    };
    let mut warnings: Vec<String> = parse_warnings.iter().map(ToString::to_string).collect();
    warnings.extend(parts.warnings);
    Ok((capture, warnings))
}

/// `YYYYMMDD` at midnight UTC.
fn parse_dat(dat: &str) -> Option<OffsetDateTime> {
    let d = dat.trim();
    if d.len() != 8 || !d.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let year: i32 = d[..4].parse().ok()?;
    let month: u8 = d[4..6].parse().ok()?;
    let day: u8 = d[6..].parse().ok()?;
    let date =
        time::Date::from_calendar_date(year, time::Month::try_from(month).ok()?, day).ok()?;
    Some(date.midnight().assume_utc())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn data(rel: &str) -> Option<Vec<u8>> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/data")
            .join(rel);
        match std::fs::read(&path) {
            Ok(b) => Some(b),
            Err(_) => {
                eprintln!("skipping: ../shared/data not found ({})", path.display());
                None
            }
        }
    }

    #[test]
    fn a_tenprint_card_becomes_a_capture_with_a_stable_id() {
        let Some(bytes) = data("ansi-nist/jnbis/type-4-tpcard.an2") else {
            return;
        };
        assert!(is_transaction(&bytes));
        let now = OffsetDateTime::now_utc();
        let (c, _warnings) = capture_from_transaction("desk-1", &bytes, now).unwrap();
        let positions: Vec<u8> = c.fingers.iter().map(|f| f.position).collect();
        assert_eq!(positions, (1..=10).collect::<Vec<u8>>());
        let (again, _) = capture_from_transaction("desk-1", &bytes, now).unwrap();
        assert_eq!(again.capture_id, c.capture_id, "a re-send keeps its id");
        let (other, _) = capture_from_transaction("desk-2", &bytes, now).unwrap();
        assert_ne!(other.capture_id, c.capture_id, "ids are per station");
        // The JSON form of the result passes the ordinary decoder's checks too.
        let json = serde_json::to_vec(&c).unwrap();
        assert_eq!(crate::station::decode_capture(&json).unwrap(), c);
    }

    #[test]
    fn a_face_transaction_carries_the_face() {
        let Some(bytes) = data("ansi-nist/nbis/face_jpb_DOM_GMT_DCS.an2") else {
            return;
        };
        let (c, _) = capture_from_transaction("desk-1", &bytes, OffsetDateTime::now_utc()).unwrap();
        assert!(c.face.is_some());
    }

    #[test]
    fn garbage_after_the_magic_is_a_clear_rejection() {
        let e = capture_from_transaction(
            "d",
            b"1.001:zz\x1d1.002:0400\x1c",
            OffsetDateTime::now_utc(),
        )
        .unwrap_err();
        assert!(e.reason.starts_with("ANSI/NIST-ITL"), "{}", e.reason);
        assert_eq!(parse_dat("20261129").map(|d| d.date().day()), Some(29));
        assert_eq!(parse_dat("2026-11-29"), None);
    }
}
