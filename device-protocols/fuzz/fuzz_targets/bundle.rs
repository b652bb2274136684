//! Fuzz bundle verification and the payload decoder behind it (reached here without a signature, so the fuzzer can
//! explore it), and applying whatever decodes to a small installed watchlist.
#![no_main]

use hotspot_device_protocols::bundle::{
    Body, MAX_BUNDLE_BYTES, Payload, TrustedKeys, WatchlistContent, WatchlistEntry, content_hash,
    decode_unverified, verify,
};
use hotspot_device_protocols::uplink::decode_body;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // A fixed, well-formed key: the fuzzer cannot forge signatures, but every check before the signature runs.
    if let Ok(keys) = TrustedKeys::parse(&["ed25519:O2onvM62pC1io6jQKm8Nc2UyFXcd4kOmOsBIoYtZ2ik="]) {
        let _ = verify(data, &keys, MAX_BUNDLE_BYTES);
    }
    let _ = decode_unverified(data, MAX_BUNDLE_BYTES);
    if let Ok(payload) = decode_body::<Payload>(data) {
        let entries = vec![WatchlistEntry {
            subject_id: "a".into(),
            fingers: vec![(1, vec![1, 2, 3])],
            face: None,
            expires_at_ms: None,
        }];
        let base = Payload {
            version: 1,
            created_at_ms: 0,
            content_hash: content_hash(&entries),
            body: Body::WatchlistSnapshot { entries },
        };
        if let Ok(installed) = WatchlistContent::default().apply(&base) {
            let _ = installed.apply(&payload);
        }
    }
});
