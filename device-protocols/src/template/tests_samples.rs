//! Tests against the shared sample files (`../shared/data`): fingerprintio's ISO 2005 / 2011 and ANSI 2004 / 2009
//! samples with their expected decodes, libbiomeval's quirky `fmr.*` records and the 320 FVC2002 ISO templates.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::*;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data");

/// The shared data folder, or `None` (with a note on stderr) when it is absent.
fn data_dir() -> Option<PathBuf> {
    let dir = Path::new(DATA);
    if dir.is_dir() {
        Some(dir.to_path_buf())
    } else {
        eprintln!("skipping: ../shared/data not found");
        None
    }
}

fn read(dir: &Path, rel: &str) -> Vec<u8> {
    std::fs::read(dir.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn position_code(name: &str) -> u8 {
    const NAMES: [&str; 11] = [
        "UNKNOWN",
        "RIGHT_THUMB",
        "RIGHT_INDEX",
        "RIGHT_MIDDLE",
        "RIGHT_RING",
        "RIGHT_LITTLE",
        "LEFT_THUMB",
        "LEFT_INDEX",
        "LEFT_MIDDLE",
        "LEFT_RING",
        "LEFT_LITTLE",
    ];
    let index = NAMES
        .iter()
        .position(|n| *n == name)
        .unwrap_or_else(|| panic!("position {name}"));
    u8::try_from(index).unwrap()
}

fn impression_code(name: &str) -> u8 {
    match name {
        "LIVE_PLAIN" => 0,
        "LIVE_ROLLED" => 1,
        "NONLIVE_PLAIN" => 2,
        "NONLIVE_ROLLED" => 3,
        "SWIPE" => 8,
        other => panic!("scan type {other}"),
    }
}

fn kind(name: &str) -> MinutiaKind {
    match name {
        "ENDING" => MinutiaKind::RidgeEnding,
        "BIFURCATION" => MinutiaKind::Bifurcation,
        // "EITHER" is fingerprintio's name for type 0 in ANSI 378-2009.
        "OTHER" | "EITHER" => MinutiaKind::Other,
        other => panic!("minutia type {other}"),
    }
}

fn int<T: TryFrom<u64>>(v: &Value, key: &str) -> T {
    let n = v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} missing in {v}"));
    T::try_from(n).unwrap_or_else(|_| panic!("{key} = {n} out of range"))
}

/// Builds the record that fingerprintio's JSON dump describes (angles as stored in the file).
fn expected_from_json(json: &Value, format: TemplateFormat) -> MinutiaeRecord {
    let views = json["fingerprints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|fp| FingerView {
            position: position_code(fp["position"].as_str().unwrap()),
            view_number: int(fp, "view"),
            impression_type: impression_code(fp["scanType"].as_str().unwrap()),
            quality: int(fp, "quality"),
            minutiae: fp["minutiae"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| Minutia {
                    kind: kind(m["type"].as_str().unwrap()),
                    x: int(m, "positionX"),
                    y: int(m, "positionY"),
                    angle: int(m, "angle"),
                    quality: int(m, "quality"),
                })
                .collect(),
        })
        .collect();
    MinutiaeRecord {
        format,
        width: int(json, "width"),
        height: int(json, "height"),
        x_resolution_ppcm: int(json, "resolutionX"),
        y_resolution_ppcm: int(json, "resolutionY"),
        views,
    }
}

#[test]
fn iso2005_sample_matches_its_json() {
    let Some(dir) = data_dir() else { return };
    let stem = "templates/iso19794p2v2005__iso19794p2v2005-sample";
    let bytes = read(&dir, &format!("{stem}.dat"));
    let json: Value = serde_json::from_slice(&read(&dir, &format!("{stem}.json"))).unwrap();
    let record = parse_iso19794_2(&bytes).unwrap();
    assert_eq!(
        record,
        expected_from_json(&json, TemplateFormat::Iso19794_2_2005)
    );
    assert_eq!(record.views.len(), 2);
    assert_eq!(detect_format(&bytes), Some(TemplateFormat::Iso19794_2_2005));
    assert_eq!(parse_minutiae_record(&bytes).unwrap(), record);
}

/// The ANSI 2004 sample is bogus three times over: version `"020\0"`, a record length 2 bytes short of the
/// content, and angles up to 249 (the ISO values under an ANSI header). The reader refuses it at the first fault
/// with a typed error; repairing each fault in turn exposes the next one.
#[test]
fn ansi2004_sample_is_refused_with_a_clear_error() {
    let Some(dir) = data_dir() else { return };
    let mut bytes = read(&dir, "templates/ansi378v2004__ansi378v2004-sample.dat");
    assert_eq!(
        parse_ansi378(&bytes).unwrap_err(),
        TemplateError::UnsupportedVersion { found: *b"020\0" }
    );
    bytes[4..8].copy_from_slice(b" 20\0");
    assert_eq!(
        parse_ansi378(&bytes).unwrap_err(),
        TemplateError::RecordLength {
            offset: 8,
            declared: 340,
            actual: 342,
            header: ANSI_HEADER_BYTES
        }
    );
    bytes[8..10].copy_from_slice(&342u16.to_be_bytes());
    let err = parse_ansi378(&bytes).unwrap_err();
    assert_eq!(
        err,
        TemplateError::AngleOutOfRange {
            view: 1,
            minutia: 20,
            offset: 322,
            value: 213
        }
    );
    // The JSON agrees that the angle bytes exceed the ANSI range of 0..=179.
    let json: Value = serde_json::from_slice(&read(
        &dir,
        "templates/ansi378v2004__ansi378v2004-sample.json",
    ))
    .unwrap();
    assert_eq!(json["fingerprints"][1]["minutiae"][20]["angle"], 213);
}

#[test]
fn libbiomeval_iso2005_with_truncated_core_delta_area_decodes() {
    let Some(dir) = data_dir() else { return };
    let record = parse_iso19794_2(&read(&dir, "templates/fmr.iso2005")).unwrap();
    let counts: Vec<_> = record
        .views
        .iter()
        .map(|v| (v.position, v.minutiae.len()))
        .collect();
    assert_eq!(counts, [(7, 27), (2, 22)]);
    assert_eq!(
        (record.width, record.height, record.x_resolution_ppcm),
        (512, 512, 197)
    );
    let first = &record.views[0].minutiae[0];
    assert_eq!(
        (first.kind, first.x, first.y, first.angle, first.quality),
        (MinutiaKind::RidgeEnding, 100, 14, 80, 90)
    );
}

#[test]
fn libbiomeval_ansi2004_with_trailing_bytes_decodes_and_agrees_with_iso() {
    let Some(dir) = data_dir() else { return };
    let bytes = read(&dir, "templates/fmr.ansi2004");
    assert_eq!(detect_format(&bytes), Some(TemplateFormat::Ansi378_2004));
    let ansi = parse_ansi378(&bytes).unwrap();
    assert_eq!(ansi.format, TemplateFormat::Ansi378_2004);
    let counts: Vec<_> = ansi
        .views
        .iter()
        .map(|v| (v.position, v.impression_type, v.minutiae.len()))
        .collect();
    assert_eq!(counts, [(7, 0, 27), (2, 0, 22), (3, 1, 28)]);
    // Its first view holds the same minutiae as fmr.iso2005's, in 2-degree angle units: after conversion the
    // angles agree within the ANSI quantisation (1 degree = 0.71 ISO units, plus rounding).
    let iso = parse_iso19794_2(&read(&dir, "templates/fmr.iso2005")).unwrap();
    for (a, i) in ansi.views[0].minutiae.iter().zip(&iso.views[0].minutiae) {
        assert_eq!((a.kind, a.x, a.y, a.quality), (i.kind, i.x, i.y, i.quality));
        let diff = a
            .angle
            .wrapping_sub(i.angle)
            .min(i.angle.wrapping_sub(a.angle));
        assert!(diff <= 2, "ansi {} vs iso {}", a.angle, i.angle);
    }
}

#[test]
fn all_fvc2002_iso_templates_parse_with_minutiae() {
    let Some(dir) = data_dir() else { return };
    let mut parsed = 0;
    for db in 1..=4 {
        for finger in 101..=110 {
            for impression in 1..=8 {
                let rel = format!("fingerprints/fvc2002/DB{db}_B/{finger}_{impression}.iso");
                let bytes = read(&dir, &rel);
                assert_eq!(
                    detect_format(&bytes),
                    Some(TemplateFormat::Iso19794_2_2005),
                    "{rel}"
                );
                let record = parse_iso19794_2(&bytes).unwrap_or_else(|e| panic!("{rel}: {e}"));
                assert_eq!(record.views.len(), 1, "{rel}");
                assert!(!record.views[0].minutiae.is_empty(), "{rel}");
                let (w, h) = (record.width, record.height);
                assert!(
                    record.views[0]
                        .minutiae
                        .iter()
                        .all(|m| m.x <= w && m.y <= h),
                    "{rel}"
                );
                // Re-encoding gives back the same bytes (no extended data in these files).
                assert_eq!(encode_iso19794_2(&record).unwrap(), bytes, "{rel}");
                parsed += 1;
            }
        }
    }
    assert_eq!(parsed, 320);
}

/// Builds the record a 2011 / 2009 JSON dump describes: geometry and quality per fingerprint (the record takes the
/// first's), ANSI angles converted to ISO units when `ansi_angles`.
fn expected_from_json_per_view(
    json: &Value,
    format: TemplateFormat,
    ansi_angles: bool,
) -> MinutiaeRecord {
    let fingerprints = json["fingerprints"].as_array().unwrap();
    let views = fingerprints
        .iter()
        .map(|fp| {
            let quality = if fp.get("qrecords").is_some() {
                fp["qrecords"][0]["quality"]
                    .as_u64()
                    .map_or(0, |q| u8::try_from(q).unwrap())
            } else {
                int(fp, "quality")
            };
            FingerView {
                position: position_code(fp["position"].as_str().unwrap()),
                view_number: int(fp, "view"),
                impression_type: impression_code(fp["scanType"].as_str().unwrap()),
                quality,
                minutiae: fp["minutiae"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|m| {
                        let raw: u8 = int(m, "angle");
                        Minutia {
                            kind: kind(m["type"].as_str().unwrap()),
                            x: int(m, "positionX"),
                            y: int(m, "positionY"),
                            angle: if ansi_angles {
                                super::body::two_degrees_to_iso(raw).unwrap()
                            } else {
                                raw
                            },
                            quality: int(m, "quality"),
                        }
                    })
                    .collect(),
            }
        })
        .collect();
    let first = &fingerprints[0];
    MinutiaeRecord {
        format,
        width: int(first, "width"),
        height: int(first, "height"),
        x_resolution_ppcm: int(first, "resolutionX"),
        y_resolution_ppcm: int(first, "resolutionY"),
        views,
    }
}

fn sample(dir: &Path, stem: &str) -> (Vec<u8>, Value) {
    let bytes = read(dir, &format!("templates/{stem}.dat"));
    let json = serde_json::from_slice(&read(dir, &format!("templates/{stem}.json"))).unwrap();
    (bytes, json)
}

/// The ISO 2011 sample: two representations with a capture date, one quality block each, and (second one) a vendor
/// extended data block of type 0x0221 whose length counts its header.
#[test]
fn iso2011_sample_matches_its_json_and_round_trips() {
    let Some(dir) = data_dir() else { return };
    let (bytes, json) = sample(&dir, "iso19794p2v2011__iso19794p2v2011-sample");
    assert_eq!(detect_format(&bytes), Some(TemplateFormat::Iso19794_2_2011));
    let record = parse_iso19794_2(&bytes).unwrap();
    assert_eq!(
        record,
        expected_from_json_per_view(&json, TemplateFormat::Iso19794_2_2011, false)
    );
    assert_eq!(record.views.len(), 2);
    assert_eq!(parse_minutiae_record(&bytes).unwrap(), record);
    // Not an ANSI 2009 record: the ANSI reader refuses it with a typed error.
    assert!(parse_ansi378(&bytes).is_err());
    // Written back as 2011 (without the date, device and extended data), it reads as the same record.
    let written = encode_minutiae_record(&record, record.format).unwrap();
    assert_eq!(
        detect_format(&written),
        Some(TemplateFormat::Iso19794_2_2011)
    );
    assert_eq!(parse_iso19794_2(&written).unwrap(), record);
    // Its minutiae are the ISO 2005 sample's.
    let (iso2005, _) = sample(&dir, "iso19794p2v2005__iso19794p2v2005-sample");
    let old = parse_iso19794_2(&iso2005).unwrap();
    for (new, old) in record.views.iter().zip(&old.views) {
        assert_eq!(new.minutiae, old.minutiae);
        assert_eq!((new.position, new.quality), (old.position, old.quality));
    }
}

/// The ANSI 378-2009 sample (the standard's own, as fingerprintio notes) declares a record length one byte short
/// of its content: refused with a typed error; with the length repaired it decodes as its JSON says.
#[test]
fn ansi2009_sample_has_a_bad_length_and_decodes_once_repaired() {
    let Some(dir) = data_dir() else { return };
    let (mut bytes, json) = sample(&dir, "ansi378v2009__ansi378v2009-sample");
    assert_eq!(detect_format(&bytes), Some(TemplateFormat::Ansi378_2009));
    assert_eq!(
        parse_ansi378(&bytes).unwrap_err(),
        TemplateError::RecordLength {
            offset: 8,
            declared: 363,
            actual: 364,
            header: ANSI_2009_HEADER_BYTES
        }
    );
    bytes[8..12].copy_from_slice(&364u32.to_be_bytes());
    let record = parse_ansi378(&bytes).unwrap();
    assert_eq!(
        record,
        expected_from_json_per_view(&json, TemplateFormat::Ansi378_2009, true)
    );
    assert_eq!(parse_minutiae_record(&bytes).unwrap(), record);
    // ANSI angles survive a write and a read exactly.
    let written = encode_ansi378_as(&record, AnsiVersion::V2009).unwrap();
    assert_eq!(detect_format(&written), Some(TemplateFormat::Ansi378_2009));
    assert_eq!(parse_ansi378(&written).unwrap(), record);
    // The 2009 sample's minutia angles bytes are what the writer puts back.
    assert_eq!(written[38..38 + 6], bytes[38..38 + 6]);
}

#[test]
fn ansi2009_am1_sample_matches_its_json() {
    let Some(dir) = data_dir() else { return };
    let (bytes, json) = sample(&dir, "ansi378v2009am1__ansi378v2009am1-sample");
    assert_eq!(&bytes[4..8], b"035\0");
    assert_eq!(detect_format(&bytes), Some(TemplateFormat::Ansi378_2009));
    let record = parse_minutiae_record(&bytes).unwrap();
    assert_eq!(
        record,
        expected_from_json_per_view(&json, TemplateFormat::Ansi378_2009, true)
    );
    // The ISO reader refuses the ANSI-only version.
    assert_eq!(
        parse_iso19794_2(&bytes).unwrap_err(),
        TemplateError::UnsupportedVersion { found: *b"035\0" }
    );
}

/// libbiomeval's `fmr.ansi2007` uses the 20-byte header of the draft before 378-2009 (one `u16` of compliance and
/// equipment id); its views are byte for byte the 2009 sample's, so both decode to the same record.
#[test]
fn libbiomeval_ansi2007_draft_header_decodes_like_the_2009_sample() {
    let Some(dir) = data_dir() else { return };
    let draft = read(&dir, "templates/fmr.ansi2007");
    assert_eq!(detect_format(&draft), Some(TemplateFormat::Ansi378_2009));
    let record = parse_ansi378(&draft).unwrap();
    let (mut standard, _) = sample(&dir, "ansi378v2009__ansi378v2009-sample");
    standard[8..12].copy_from_slice(&364u32.to_be_bytes());
    assert_eq!(record, parse_ansi378(&standard).unwrap());
    assert_eq!(
        record
            .views
            .iter()
            .map(|v| (v.position, v.minutiae.len()))
            .collect::<Vec<_>>(),
        [(7, 27), (2, 22)]
    );
}

/// The older samples written in every edition read back as the same record (ANSI via angles that came from ANSI).
#[test]
fn samples_rewritten_in_every_edition_read_back_the_same() {
    let Some(dir) = data_dir() else { return };
    let iso = parse_iso19794_2(&read(&dir, "templates/fmr.iso2005")).unwrap();
    for version in [IsoVersion::V2005, IsoVersion::V2011] {
        let mut want = iso.clone();
        want.format = version.into();
        let bytes = encode_iso19794_2_as(&iso, version).unwrap();
        assert_eq!(parse_minutiae_record(&bytes).unwrap(), want, "{version:?}");
    }
    let ansi = parse_ansi378(&read(&dir, "templates/fmr.ansi2004")).unwrap();
    for version in [AnsiVersion::V2004, AnsiVersion::V2009] {
        let mut want = ansi.clone();
        want.format = version.into();
        let bytes = encode_ansi378_as(&ansi, version).unwrap();
        assert_eq!(parse_minutiae_record(&bytes).unwrap(), want, "{version:?}");
    }
    assert_eq!(
        encode_ansi378(&ansi).unwrap(),
        encode_ansi378_as(&ansi, AnsiVersion::default()).unwrap()
    );
}
