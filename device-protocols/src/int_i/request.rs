//! Building CPS / NPS search requests and ATP (add to print collection) transactions from a station capture.
//!
//! Fingers: WSQ and PNG images go into Type-14 records as they are (`WSQ20`, `PNG`; 500 ppi, the station
//! protocol's resolution), TIFF is converted to PNG; ISO 19794-2 / ANSI 378 templates become Type-9 records with an
//! INCITS 378 block (one per finger view; angles in 2-degree units). The face goes into a Type-10 record (`JPEGB`
//! or `PNG`). Image sizes are read from the images' own headers.

use base64::Engine as _;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::image::{self, ImageKind};
use crate::station::{Face, FaceFormat, Finger, FingerFormat};

use super::dom::{self, Element};
use super::request_minutiae as minutiae;
use super::{IntIError, NS_BIOM, NS_INT_I, NS_ITL, NS_NC};

/// Resolution assumed for station finger images (the station protocol's 500 ppi).
const STATION_PPI: u32 = 500;

/// Which transaction to build (1.004 TOT). The three share one package layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchKind {
    /// Criminal print-to-print search.
    Cps,
    /// Non-criminal print-to-print search.
    Nps,
    /// Add to print collection: a new record for the receiving database (stored, and searched or not as the
    /// target system decides). What a gateway's accepted enrolment contribution becomes.
    Atp,
}

impl SearchKind {
    /// The 1.004 TOT code.
    pub fn code(self) -> &'static str {
        match self {
            Self::Cps => "CPS",
            Self::Nps => "NPS",
            Self::Atp => "ATP",
        }
    }
}

/// Sex code (INT-I table SEX).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sex {
    /// `M`.
    Male,
    /// `F`.
    Female,
    /// `U`.
    Unknown,
}

/// An agency (1.007 DAI / 1.008 ORI).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agency {
    /// Identifier, e.g. `INT`.
    pub id: String,
    /// Name.
    pub name: String,
    /// ISO 3166 alpha-3 country (`XPO` for INTERPOL).
    pub country: String,
}

/// What is known of the traveller; everything optional.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Biographics {
    /// Given name.
    pub given_name: Option<String>,
    /// Surname.
    pub surname: Option<String>,
    /// Birth date.
    pub birth_date: Option<time::Date>,
    /// Sex.
    pub sex: Option<Sex>,
    /// Citizenship, ISO 3166 alpha-3.
    pub citizenship: Option<String>,
}

/// A search request to build.
#[derive(Debug, Clone)]
pub struct SearchRequest<'a> {
    /// CPS or NPS.
    pub kind: SearchKind,
    /// 1.009 TCN (e.g. the capture id).
    pub control_number: String,
    /// 1.008 ORI, also written as capture organisation.
    pub originator: Agency,
    /// 1.007 DAI.
    pub destination: Agency,
    /// When the request is made (1.005, 1.014).
    pub created: OffsetDateTime,
    /// 1.006 priority, 1 (highest) ..= 9.
    pub priority: u8,
    /// The subject.
    pub subject: Biographics,
    /// Fingers (station protocol).
    pub fingers: &'a [Finger],
    /// Face (station protocol).
    pub face: Option<&'a Face>,
}

/// Builds the INT-I XML of a CPS or NPS request.
pub fn build_search_request(req: &SearchRequest<'_>) -> Result<String, IntIError> {
    validate(req)?;
    let mut records: Vec<Element> = Vec::new();
    let mut templates = Vec::new();
    let mut images = Vec::new();
    for finger in req.fingers {
        if finger.format.is_template() {
            templates.extend(minutiae::minutiae_records(finger)?);
        } else {
            images.push(finger);
        }
    }
    for (idc, record) in templates.iter().enumerate() {
        records.push(minutiae::type9(idc, record)?);
    }
    if let Some(face) = req.face {
        records.push(type10(req, face)?);
    }
    for (idc, finger) in images.iter().enumerate() {
        records.push(type14(req, idc, finger)?);
    }
    let utc = req
        .created
        .to_offset(time::UtcOffset::UTC)
        .format(&Rfc3339)
        .map_err(|e| IntIError::Request(format!("creation time: {e}")))?;
    records.insert(0, type2(req, &utc));
    let mut root = Element::new(NS_ITL, "NISTBiometricInformationExchangePackage");
    root.children.push(type1(req, &utc, &records));
    root.children.extend(records);
    dom::write(&root)
}

fn validate(req: &SearchRequest<'_>) -> Result<(), IntIError> {
    let fail = |m: String| Err(IntIError::Request(m));
    if req.fingers.is_empty() && req.face.is_none() {
        return fail(format!(
            "a {} transaction needs at least one finger or a face",
            req.kind.code()
        ));
    }
    if req.control_number.trim().is_empty() {
        return fail("the transaction control number is empty".into());
    }
    if !(1..=9).contains(&req.priority) {
        return fail(format!("priority {} is not 1..=9", req.priority));
    }
    for agency in [&req.originator, &req.destination] {
        if agency.country.len() != 3 || !agency.country.bytes().all(|b| b.is_ascii_uppercase()) {
            return fail(format!(
                "country {:?} is not ISO 3166 alpha-3",
                agency.country
            ));
        }
    }
    if let Some(f) = req.fingers.iter().find(|f| !(1..=10).contains(&f.position)) {
        return fail(format!("finger position {} is not 1..=10", f.position));
    }
    Ok(())
}

pub(super) fn id_element(parent: &mut Element, ns: &str, name: &str, value: impl Into<String>) {
    parent
        .child(ns, name)
        .leaf(NS_NC, "IdentificationID", value);
}

fn date(d: time::Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

fn agency(parent: &mut Element, name: &str, a: &Agency) {
    let org = parent.child(NS_INT_I, name);
    id_element(org, NS_NC, "OrganizationIdentification", a.id.clone());
    org.leaf(NS_NC, "OrganizationName", a.name.clone());
    org.leaf(
        NS_INT_I,
        "LocationCountryISO3166Alpha3Code",
        a.country.clone(),
    );
}

fn record_code(record: &Element) -> (String, String) {
    let code = record
        .text_at(&[(NS_BIOM, "RecordCategoryCode")])
        .unwrap_or_default();
    let idc = record
        .text_at(&[
            (NS_BIOM, "ImageReferenceIdentification"),
            (NS_NC, "IdentificationID"),
        ])
        .unwrap_or_default();
    (code.trim_start_matches('0').to_owned(), idc)
}

fn type1(req: &SearchRequest<'_>, utc: &str, records: &[Element]) -> Element {
    let mut r = Element::new(NS_ITL, "PackageInformationRecord");
    r.leaf(NS_BIOM, "RecordCategoryCode", "1");
    let t = r.child(NS_BIOM, "Transaction");
    t.child(NS_BIOM, "TransactionDate")
        .leaf(NS_NC, "Date", date(req.created.date()));
    agency(t, "TransactionDestinationOrganization", &req.destination);
    agency(t, "TransactionOriginatingOrganization", &req.originator);
    t.child(NS_BIOM, "TransactionUTCDate")
        .leaf(NS_NC, "DateTime", utc);
    id_element(
        t,
        NS_BIOM,
        "TransactionControlIdentification",
        req.control_number.clone(),
    );
    let domain = t.child(NS_BIOM, "TransactionDomain");
    id_element(
        domain,
        NS_BIOM,
        "DomainVersionNumberIdentification",
        "06.00",
    );
    domain.leaf(NS_BIOM, "TransactionDomainName", "INT-I");
    t.child(NS_BIOM, "TransactionImageResolutionDetails")
        .leaf(NS_BIOM, "NativeScanningResolutionValue", "00.00")
        .leaf(NS_BIOM, "NominalTransmittingResolutionValue", "00.00");
    t.leaf(NS_BIOM, "TransactionMajorVersionValue", "05");
    t.leaf(NS_BIOM, "TransactionMinorVersionValue", "02");
    t.leaf(
        NS_BIOM,
        "TransactionPriorityValue",
        req.priority.to_string(),
    );
    t.leaf(NS_INT_I, "TransactionCategoryCode", req.kind.code());
    let summary = t.child(NS_BIOM, "TransactionContentSummary");
    summary.leaf(NS_BIOM, "ContentFirstRecordCategoryCode", "1");
    summary.leaf(NS_BIOM, "ContentRecordQuantity", records.len().to_string());
    for record in records {
        let (code, idc) = record_code(record);
        let s = summary.child(NS_BIOM, "ContentRecordSummary");
        id_element(s, NS_BIOM, "ImageReferenceIdentification", idc);
        s.leaf(NS_BIOM, "RecordCategoryCode", code);
    }
    let charset = t.child(NS_BIOM, "TransactionCharacterSetDirectory");
    charset.leaf(NS_BIOM, "CharacterSetCommonNameCode", "UTF-8");
    charset.leaf(NS_BIOM, "CharacterSetIndexCode", "0");
    id_element(charset, NS_BIOM, "CharacterSetVersionIdentification", "000");
    r
}

pub(super) fn record_head(name: &str, code: &str, idc: usize) -> Element {
    let mut r = Element::new(NS_ITL, name);
    r.leaf(NS_BIOM, "RecordCategoryCode", code);
    id_element(
        &mut r,
        NS_BIOM,
        "ImageReferenceIdentification",
        idc.to_string(),
    );
    r
}

fn type2(req: &SearchRequest<'_>, utc: &str) -> Element {
    let mut r = record_head("PackageDescriptiveTextRecord", "02", 0);
    let detail = r
        .child(NS_ITL, "UserDefinedDescriptiveDetail")
        .child(NS_INT_I, "DomainDefinedDescriptiveDetail");
    let activity = detail.child(NS_INT_I, "RecordActivity");
    activity
        .child(NS_BIOM, "RecordCreationDate")
        .leaf(NS_NC, "DateTime", utc);
    let org = activity.child(NS_INT_I, "CaptureOrganization");
    id_element(
        org,
        NS_NC,
        "OrganizationIdentification",
        req.originator.id.clone(),
    );
    org.leaf(NS_NC, "OrganizationName", req.originator.name.clone());
    let s = &req.subject;
    let subject = detail.child(NS_INT_I, "RecordSubject");
    if let Some(d) = s.birth_date {
        subject
            .child(NS_NC, "PersonBirthDate")
            .leaf(NS_NC, "Date", date(d));
    }
    if let Some(c) = &s.citizenship {
        subject.leaf(NS_NC, "PersonCitizenshipISO3166Alpha3Code", c.clone());
    }
    if s.given_name.is_some() || s.surname.is_some() {
        let name = subject.child(NS_INT_I, "PersonName");
        if let Some(g) = &s.given_name {
            name.leaf(NS_NC, "PersonGivenName", g.clone());
        }
        if let Some(n) = &s.surname {
            name.leaf(NS_NC, "PersonSurName", n.clone());
        }
    }
    if let Some(sex) = s.sex {
        let code = match sex {
            Sex::Male => "M",
            Sex::Female => "F",
            Sex::Unknown => "U",
        };
        subject.leaf(NS_INT_I, "PersonSexCode", code);
    }
    r
}

fn capture_detail(parent: &mut Element, req: &SearchRequest<'_>) {
    let detail = parent.child(NS_BIOM, "ImageCaptureDetail");
    detail
        .child(NS_BIOM, "CaptureDate")
        .leaf(NS_NC, "Date", date(req.created.date()));
    let org = detail.child(NS_BIOM, "CaptureOrganization");
    id_element(
        org,
        NS_NC,
        "OrganizationIdentification",
        req.originator.id.clone(),
    );
}

pub(super) fn geometry(image: &mut Element, width: u32, units: &str, density: u32) {
    image.leaf(
        NS_BIOM,
        "ImageHorizontalLineLengthPixelQuantity",
        width.to_string(),
    );
    image.leaf(
        NS_BIOM,
        "ImageHorizontalPixelDensityValue",
        density.to_string(),
    );
    image.leaf(NS_BIOM, "ImageScaleUnitsCode", units);
}

pub(super) fn vertical(image: &mut Element, height: u32, density: u32) {
    image.leaf(
        NS_BIOM,
        "ImageVerticalLineLengthPixelQuantity",
        height.to_string(),
    );
    image.leaf(
        NS_BIOM,
        "ImageVerticalPixelDensityValue",
        density.to_string(),
    );
}

fn dimensions(what: &str, data: &[u8]) -> Result<(u32, u32), IntIError> {
    image::encoded_dimensions(data)
        .ok_or_else(|| IntIError::Request(format!("{what}: image header unreadable")))
}

fn type10(req: &SearchRequest<'_>, face: &Face) -> Result<Element, IntIError> {
    let (cga, kind) = match face.format {
        FaceFormat::Jpeg => ("JPEGB", ImageKind::Jpeg),
        FaceFormat::Png => ("PNG", ImageKind::Png),
    };
    if ImageKind::sniff(&face.data) != Some(kind) {
        return Err(IntIError::Request(format!(
            "face: data is not {}",
            kind.as_str()
        )));
    }
    let size = dimensions("face", &face.data)?;
    let mut r = record_head("PackageFacialAndSMTImageRecord", "10", 0);
    let image = r.child(NS_BIOM, "FaceImage");
    image.leaf(
        NS_NC,
        "BinaryBase64Object",
        base64::engine::general_purpose::STANDARD.encode(&face.data),
    );
    capture_detail(image, req);
    image.leaf(NS_BIOM, "ImageColorSpaceCode", colour_space(&face.data));
    image.leaf(NS_BIOM, "ImageCompressionAlgorithmText", cga);
    // Scale units 0: the densities give the pixel aspect ratio only.
    geometry(image, size.0, "0", 1);
    image.leaf(NS_BIOM, "ImageCategoryCode", "FACE");
    vertical(image, size.1, 1);
    image.leaf(NS_BIOM, "FaceImageAcquisitionProfileCode", "1");
    Ok(r)
}

fn colour_space(data: &[u8]) -> &'static str {
    if is_grey(data) { "GRAY" } else { "SRGB" }
}

/// Whether a JPEG/PNG declares a single (grey) channel, read from its header.
fn is_grey(data: &[u8]) -> bool {
    match ImageKind::sniff(data) {
        // PNG IHDR colour type at byte 25: 0 grey, 4 grey + alpha.
        Some(ImageKind::Png) => matches!(data.get(25), Some(0 | 4)),
        // JPEG: the first SOF segment's component count.
        Some(ImageKind::Jpeg) => jpeg_components(data) == Some(1),
        _ => false,
    }
}

fn jpeg_components(data: &[u8]) -> Option<u8> {
    let mut at = 2;
    while at + 4 <= data.len() {
        if data[at] != 0xff {
            return None;
        }
        let marker = data[at + 1];
        let len = usize::from(u16::from_be_bytes([data[at + 2], data[at + 3]]));
        if matches!(marker, 0xc0..=0xc3 | 0xc5..=0xc7 | 0xc9..=0xcb | 0xcd..=0xcf) {
            return data.get(at + 9).copied();
        }
        at += 2 + len;
    }
    None
}

fn type14(req: &SearchRequest<'_>, idc: usize, finger: &Finger) -> Result<Element, IntIError> {
    let what = format!("finger {}", finger.position);
    let (cga, data) = match finger.format {
        FingerFormat::Wsq => ("WSQ20", finger.data.clone()),
        FingerFormat::Png => ("PNG", finger.data.clone()),
        FingerFormat::Tiff => {
            let gray = image::decode_finger_image(FingerFormat::Tiff, &finger.data)
                .map_err(|e| IntIError::Request(format!("{what}: {e}")))?;
            (
                "PNG",
                image::encode_png(&gray).map_err(|e| IntIError::Request(format!("{what}: {e}")))?,
            )
        }
        FingerFormat::Iso19794_2 | FingerFormat::Ansi378 => {
            return Err(IntIError::Request(format!(
                "{what}: a template is not an image"
            )));
        }
    };
    let size = dimensions(&what, &data)?;
    let mut r = record_head("PackageFingerprintImageRecord", "14", idc);
    let image = r.child(NS_ITL, "FingerprintImage");
    image.leaf(
        NS_NC,
        "BinaryBase64Object",
        base64::engine::general_purpose::STANDARD.encode(&data),
    );
    image.leaf(NS_BIOM, "ImageBitsPerPixelQuantity", "8");
    capture_detail(image, req);
    image.leaf(NS_BIOM, "ImageCompressionAlgorithmText", cga);
    geometry(image, size.0, "1", STATION_PPI);
    vertical(image, size.1, STATION_PPI);
    image.leaf(
        NS_BIOM,
        "FingerprintImageImpressionCaptureCategoryCode",
        "0",
    );
    image.leaf(NS_BIOM, "FingerPositionCode", finger.position.to_string());
    Ok(r)
}
