//! Type-9 records of a search request: a station's minutiae template as an INCITS 378 block, in the element
//! structure of INTERPOL's MPS sample (CBEFF owner 27 / type 513, image size and ppcm resolution, finger position
//! and view, quality, then per minutia its id, x, y, angle in 2-degree units, type and quality).

use crate::station::Finger;
use crate::template::{MinutiaKind, MinutiaeRecord, parse_minutiae_record};

use super::dom::Element;
use super::request::{geometry, id_element, record_head, vertical};
use super::{IntIError, NS_BIOM};

/// One single-view record per finger view of a template.
pub(super) fn minutiae_records(finger: &Finger) -> Result<Vec<MinutiaeRecord>, IntIError> {
    let record = parse_minutiae_record(&finger.data)
        .map_err(|e| IntIError::Request(format!("finger {}: {e}", finger.position)))?;
    Ok(record
        .views
        .iter()
        .map(|view| {
            let mut view = view.clone();
            if view.position == 0 {
                view.position = finger.position;
            }
            MinutiaeRecord {
                views: vec![view],
                ..record.clone()
            }
        })
        .collect())
}

pub(super) fn type9(idc: usize, record: &MinutiaeRecord) -> Result<Element, IntIError> {
    let view = record
        .views
        .first()
        .ok_or_else(|| IntIError::Request("a template has no finger view".into()))?;
    let ppcm = |v: u16| if v == 0 { 197 } else { u32::from(v) };
    let mut r = record_head("PackageMinutiaeRecord", "9", idc);
    r.leaf(
        NS_BIOM,
        "MinutiaeImpressionCaptureCategoryCode",
        view.impression_type.to_string(),
    );
    r.leaf(NS_BIOM, "MinutiaeFormatNISTStandardIndicator", "false");
    let m = r.child(NS_BIOM, "INCITSMinutiae");
    id_element(m, NS_BIOM, "CBEFFFormatOwnerIdentification", "27");
    id_element(m, NS_BIOM, "CBEFFFormatCategoryIdentification", "513");
    id_element(m, NS_BIOM, "CBEFFProductIdentification", "0");
    let capture = m.child(NS_BIOM, "ImageCaptureDetail");
    id_element(capture, NS_BIOM, "CaptureDeviceIdentification", "0");
    capture.leaf(NS_BIOM, "CaptureDeviceCertificationCode", "NONE");
    let image = m.child(NS_BIOM, "FingerImpressionImage");
    let size = (u32::from(record.width), u32::from(record.height));
    geometry(image, size.0, "2", ppcm(record.x_resolution_ppcm));
    vertical(image, size.1, ppcm(record.y_resolution_ppcm));
    image.leaf(NS_BIOM, "FingerPositionCode", view.position.to_string());
    m.leaf(NS_BIOM, "FingerViewNumeric", view.view_number.to_string());
    let quality = m.child(NS_BIOM, "MinutiaeQuality");
    id_element(
        quality,
        NS_BIOM,
        "QualityAlgorithmProductIdentification",
        "0",
    );
    quality.leaf(NS_BIOM, "QualityValue", view.quality.to_string());
    id_element(
        quality,
        NS_BIOM,
        "QualityAlgorithmVendorIdentification",
        "0",
    );
    m.leaf(NS_BIOM, "MinutiaeQuantity", view.minutiae.len().to_string());
    for (i, minutia) in view.minutiae.iter().enumerate() {
        let e = m.child(NS_BIOM, "INCITSMinutia");
        id_element(e, NS_BIOM, "MinutiaIdentification", (i + 1).to_string());
        let two_degrees = (u32::from(minutia.angle) * 180 + 128) / 256 % 180;
        e.child(NS_BIOM, "INCITSMinutiaLocation")
            .leaf(
                NS_BIOM,
                "PositionHorizontalCoordinateValue",
                minutia.x.to_string(),
            )
            .leaf(
                NS_BIOM,
                "PositionVerticalCoordinateValue",
                minutia.y.to_string(),
            )
            .leaf(
                NS_BIOM,
                "ImageLocationThetaAngleMeasure",
                two_degrees.to_string(),
            );
        let kind = match minutia.kind {
            MinutiaKind::Other => "0",
            MinutiaKind::RidgeEnding => "1",
            MinutiaKind::Bifurcation => "2",
        };
        e.leaf(NS_BIOM, "INCITSMinutiaCategoryCode", kind);
        e.leaf(NS_BIOM, "MinutiaQualityValue", minutia.quality.to_string());
    }
    Ok(r)
}
