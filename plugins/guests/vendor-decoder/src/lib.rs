//! Example decoder plugin: the made-up "Acme FS-200" JSON format (`acme-fs200/1`, described in `docs/plugins.md`)
//! to a station-protocol capture.
//!
//! ```json
//! {"fmt": "acme-fs200/1", "txn": "6f1c2f0e-8a53-4a57-9a36-0b7f3f1d9c11", "ts": 1795946400, "user": "officer-7",
//!  "mode": "S", "prints": [{"f": "R2", "t": "ISO", "hex": "464d5200..."}], "photo": {"t": "JPG", "hex": "ffd8..."}}
//! ```
//!
//! Every refusal names the field. The host validates the result again with the station protocol's rules.

use serde::Deserialize;

wit_bindgen::generate!({
    world: "decoder-plugin",
    path: "../../wit",
});

use exports::hotspot::plugin::decoder::{DecodeContext, Guest};
use hotspot::plugin::types::{
    Capture, Datetime, Document, Encounter, EncounterReason, Enrolment, Face, FaceFormat, Finger,
    FingerFormat, Purpose,
};

/// The vendor's format tag this decoder understands.
const FORMAT: &str = "acme-fs200/1";

#[derive(Deserialize)]
struct Payload {
    fmt: String,
    txn: String,
    /// Capture time, Unix seconds (UTC); the gateway's reception time when absent.
    ts: Option<i64>,
    user: String,
    mode: String,
    #[serde(default)]
    prints: Vec<Print>,
    photo: Option<Photo>,
    person: Option<Person>,
}

#[derive(Deserialize)]
struct Print {
    f: String,
    t: String,
    hex: String,
}

#[derive(Deserialize)]
struct Photo {
    t: String,
    hex: String,
}

#[derive(Deserialize)]
struct Person {
    surname: String,
    given: String,
    dob: String,
    sex: String,
    nat: String,
    doc: Option<Doc>,
    place: String,
    why: String,
    law: String,
}

#[derive(Deserialize)]
struct Doc {
    #[serde(rename = "type")]
    kind: String,
    no: String,
    by: String,
}

struct Plugin;

impl Guest for Plugin {
    fn decode(payload: Vec<u8>, context: DecodeContext) -> Result<Capture, String> {
        let p: Payload =
            serde_json::from_slice(&payload).map_err(|e| format!("not an {FORMAT} record: {e}"))?;
        if p.fmt != FORMAT {
            return Err(format!(
                "field `fmt` is {:?}, this decoder reads {FORMAT:?}",
                p.fmt
            ));
        }
        #[cfg(feature = "flaky")]
        if p.prints.len() > 1 {
            // The deliberate regression of the test build: trap on anything but the simplest record.
            panic!("vendor-decoder (flaky build): more than one print");
        }
        let purpose = match p.mode.as_str() {
            "S" => Purpose::Screen,
            "E" => Purpose::Enrol,
            other => {
                return Err(format!(
                    "field `mode` is {other:?}, expected \"S\" or \"E\""
                ));
            }
        };
        let captured_at = match p.ts {
            Some(seconds) => Datetime {
                seconds,
                nanoseconds: 0,
            },
            None => context.received_at,
        };
        let fingers = p
            .prints
            .iter()
            .enumerate()
            .map(|(i, print)| finger(i, print))
            .collect::<Result<Vec<_>, _>>()?;
        let face = p.photo.as_ref().map(face).transpose()?;
        let enrolment = p.person.as_ref().map(enrolment).transpose()?;
        Ok(Capture {
            capture_id: p.txn,
            captured_at,
            operator: p.user,
            purpose,
            fingers,
            face,
            enrolment,
        })
    }
}

fn finger(i: usize, print: &Print) -> Result<Finger, String> {
    let position = finger_position(&print.f).ok_or_else(|| {
        format!(
            "field `prints[{i}].f` is {:?}, expected R1..R5 or L1..L5",
            print.f
        )
    })?;
    let format = match print.t.as_str() {
        "ISO" => FingerFormat::Iso19794,
        "ANSI" => FingerFormat::Ansi378,
        "WSQ" => FingerFormat::Wsq,
        "PNG" => FingerFormat::Png,
        "TIF" => FingerFormat::Tiff,
        other => {
            return Err(format!(
                "field `prints[{i}].t` is {other:?}, expected ISO, ANSI, WSQ, PNG or TIF"
            ));
        }
    };
    let data = hex(&print.hex).map_err(|e| format!("field `prints[{i}].hex`: {e}"))?;
    Ok(Finger {
        position,
        format,
        data,
    })
}

/// `R1` (right thumb) ..= `R5` (right little) are positions 1..=5, `L1` ..= `L5` are 6..=10.
fn finger_position(code: &str) -> Option<u8> {
    let (hand, digit) = code.split_at_checked(1)?;
    let digit: u8 = digit.parse().ok().filter(|d| (1..=5).contains(d))?;
    match hand {
        "R" => Some(digit),
        "L" => Some(digit + 5),
        _ => None,
    }
}

fn face(photo: &Photo) -> Result<Face, String> {
    let format = match photo.t.as_str() {
        "JPG" => FaceFormat::Jpeg,
        "PNG" => FaceFormat::Png,
        other => return Err(format!("field `photo.t` is {other:?}, expected JPG or PNG")),
    };
    let data = hex(&photo.hex).map_err(|e| format!("field `photo.hex`: {e}"))?;
    Ok(Face { format, data })
}

fn enrolment(p: &Person) -> Result<Enrolment, String> {
    let reason = match p.why.as_str() {
        "BC" => EncounterReason::BorderCheck,
        "ER" => EncounterReason::EntryRefused,
        "IC" => EncounterReason::IrregularCrossing,
        "AR" => EncounterReason::AsylumRequest,
        "DF" => EncounterReason::DocumentFraud,
        "OT" => EncounterReason::Other,
        other => {
            return Err(format!(
                "field `person.why` is {other:?}, expected BC, ER, IC, AR, DF or OT"
            ));
        }
    };
    Ok(Enrolment {
        family_name: p.surname.clone(),
        given_names: p.given.clone(),
        date_of_birth: p.dob.clone(),
        sex: p.sex.clone(),
        nationality: p.nat.clone(),
        document: p.doc.as_ref().map(|d| Document {
            kind: d.kind.clone(),
            number: d.no.clone(),
            issuer: d.by.clone(),
        }),
        encounter: Encounter {
            place: p.place.clone(),
            reason,
        },
        legal_basis: p.law.clone(),
    })
}

fn hex(text: &str) -> Result<Vec<u8>, String> {
    if !text.len().is_multiple_of(2) {
        return Err(format!("odd number of hex digits ({})", text.len()));
    }
    text.as_bytes()
        .chunks_exact(2)
        .enumerate()
        .map(|(i, pair)| {
            let digit = |c: u8| (c as char).to_digit(16);
            match (digit(pair[0]), digit(pair[1])) {
                (Some(h), Some(l)) => Ok((h * 16 + l) as u8),
                _ => Err(format!("not a hex digit at offset {}", 2 * i)),
            }
        })
        .collect()
}

export!(Plugin);
