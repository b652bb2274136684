//! Fuzzes the minutiae record readers (ISO 19794-2 2005 / 2011, ANSI 378 2004 / 2009): any input must give a record
//! or a typed error, never a panic; a record that reads must write back, in the format it was read from, to bytes
//! that read as the same record; and it must be writable in every other format without a panic.
//!
//! Run: `cd device-protocols/fuzz && cargo +nightly fuzz run template`. Seed corpus worth adding: the
//! `../shared/data/templates/*.dat` and `fmr.*` samples (ISO 2011 and ANSI 2009 among them).
#![no_main]

use hotspot_device_protocols::template::{
    TemplateFormat, detect_format, encode_minutiae_record, parse_ansi378, parse_iso19794_2,
    parse_minutiae_record,
};
use libfuzzer_sys::fuzz_target;

const FORMATS: [TemplateFormat; 4] = [
    TemplateFormat::Iso19794_2_2005,
    TemplateFormat::Iso19794_2_2011,
    TemplateFormat::Ansi378_2004,
    TemplateFormat::Ansi378_2009,
];

fuzz_target!(|data: &[u8]| {
    let _ = detect_format(data);
    for record in [
        parse_iso19794_2(data),
        parse_ansi378(data),
        parse_minutiae_record(data),
    ]
    .into_iter()
    .flatten()
    {
        if let Ok(bytes) = encode_minutiae_record(&record, record.format) {
            assert_eq!(parse_minutiae_record(&bytes).ok(), Some(record.clone()));
        }
        for format in FORMATS {
            let _ = encode_minutiae_record(&record, format);
        }
    }
});
