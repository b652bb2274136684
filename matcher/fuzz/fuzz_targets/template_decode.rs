//! Fuzzes the matcher's template codec: any input must decode to a template or give a typed error, never a panic;
//! a template that decodes must encode back to the same bytes, and must compare with itself without trouble.
//!
//! Run: `cd matcher/fuzz && cargo +nightly fuzz run template_decode`.
#![no_main]

use hotspot_matcher::{PreparedTemplate, Template, compare};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(template) = Template::decode(data) {
        assert_eq!(template.encode(), data);
        let prepared = PreparedTemplate::new(&template);
        let score = compare(&prepared, &prepared);
        assert!(score.is_finite() && score >= 0.0);
    }
});
