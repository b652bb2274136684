//! Fuzzes the image decoders (WSQ through `wsq-codec`, PNG/JPEG/TIFF through `image`): any input gives an image
//! within the size limits or a typed error, never a panic.
//!
//! Run: `cd device-protocols/fuzz && cargo +nightly fuzz run image_wsq`.
#![no_main]

use hotspot_device_protocols::image::{MAX_DIMENSION, decode_gray, decode_wsq, encoded_dimensions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for image in [decode_wsq(data), decode_gray(data)].into_iter().flatten() {
        assert!(image.width <= MAX_DIMENSION && image.height <= MAX_DIMENSION);
        assert_eq!(
            image.pixels.len(),
            image.width as usize * image.height as usize
        );
    }
    let _ = encoded_dimensions(data);
});
