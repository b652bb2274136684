//! Fuzzes the face inputs that come from outside: photo bytes from stations (`decode_photo`: JPEG/PNG only,
//! bounded, truncation refused) and watchlist embeddings from central (`Embedding::decode`). Any input must give a
//! value or a typed error, never a panic; an embedding that decodes must be unit length and its re-encoding must decode to
//! (almost) the same vector.
//!
//! Run: `cd matcher/fuzz && cargo +nightly fuzz run face_input`.
#![no_main]

use hotspot_matcher::face::Embedding;
use hotspot_matcher::face::decode::decode_photo;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(photo) = decode_photo(data) {
        assert!(photo.width() >= 32 && photo.height() >= 32);
    }
    if let Ok(e) = Embedding::decode(data) {
        let norm: f32 = e.as_slice().iter().map(|v| v * v).sum();
        assert!((norm - 1.0).abs() < 1e-3, "{norm}");
        let again = Embedding::decode(&e.encode()).expect("a decoded embedding re-encodes");
        assert!(again.cosine(&e) > 0.999);
    }
});
