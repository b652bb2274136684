//! Checks run after reading that turn tolerated disagreements into [`Warning`]s.

use super::{FaceImage, FingerImage, Header, Transaction, Warning};

/// Compares each image record's HLL/VLL with the size inside its WSQ, JPEG or PNG data.
pub(crate) fn check_image_sizes(tx: &Transaction, warnings: &mut Vec<Warning>) {
    let Ok(header) = Header::from_transaction(tx) else {
        return;
    };
    for (index, record) in tx.records.iter().enumerate().skip(1) {
        let declared_and_data = match record.record_type() {
            4 | 13..=15 => FingerImage::from_record(&header, index, record)
                .ok()
                .map(|i| ((i.width, i.height), i.data)),
            10 => FaceImage::from_record(&header, index, record)
                .ok()
                .map(|i| ((i.width, i.height), i.data)),
            _ => None,
        };
        let Some((declared, data)) = declared_and_data else {
            continue;
        };
        if let Some(actual) = crate::image::encoded_dimensions(&data)
            && actual != declared
        {
            warnings.push(Warning::ImageSizeMismatch {
                record: index,
                record_type: record.record_type(),
                declared,
                actual,
            });
        }
    }
}
