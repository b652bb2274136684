//! Typed image records: finger images (binary Type-4; tagged Type-13 latent, Type-14 variable-resolution
//! finger, Type-15 palm) and Type-10 face images.
//!
//! Type-4 header (18 bytes): LEN `u32` | IDC | IMP | FGP 6 bytes (255 = unused) | ISR (0: the 1.011 resolution,
//! 1: the 1.012 one) | HLL `u16` | VLL `u16` | GCA (0 none, 1 WSQ, 2 JPEGB, 3 JPEGL, 4 JP2, 5 JP2L, 6 PNG).
//! Tagged image records share field numbers: .002 IDC, .003 IMP (Type-10: IMT), .004 SRC, .005 date, .006 HLL,
//! .007 VLL, .008 SLC (0 aspect only, 1 ppi, 2 ppcm), .009 THPS, .010 TVPS, .011 CGA, .012 BPX (Type-10: CSP),
//! .013 FGP (Type-10: SAP), .999 image.

use std::borrow::Cow;

use super::{AnsiNistError, BinaryRecord, Header, RS, Record, TaggedRecord, TextEncoding};

/// Image compression as named in the record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Compression {
    /// Uncompressed (`NONE`, GCA 0).
    None,
    /// WSQ (`WSQ20`, older `WSQ`, GCA 1).
    Wsq,
    /// Baseline JPEG (`JPEGB`, older `JPEG`, GCA 2).
    JpegBaseline,
    /// Lossless JPEG (`JPEGL`, GCA 3).
    JpegLossless,
    /// JPEG 2000 lossy (`JP2`, GCA 4).
    Jpeg2000,
    /// JPEG 2000 lossless (`JP2L`, GCA 5).
    Jpeg2000Lossless,
    /// PNG (`PNG`, GCA 6).
    Png,
    /// Anything else, as written.
    Other(String),
}

impl Compression {
    /// From a tagged record's CGA text (case-insensitive; a number is read as a binary GCA code).
    pub fn from_code(text: &str) -> Self {
        let t = text.trim();
        if let Ok(code) = t.parse::<u8>() {
            return Self::from_binary_code(code);
        }
        match t.to_ascii_uppercase().as_str() {
            "NONE" => Self::None,
            "WSQ" | "WSQ20" => Self::Wsq,
            "JPEGB" | "JPEG" => Self::JpegBaseline,
            "JPEGL" => Self::JpegLossless,
            "JP2" => Self::Jpeg2000,
            "JP2L" => Self::Jpeg2000Lossless,
            "PNG" => Self::Png,
            _ => Self::Other(t.to_owned()),
        }
    }

    /// From a Type-4 GCA byte.
    pub fn from_binary_code(code: u8) -> Self {
        match code {
            0 => Self::None,
            1 => Self::Wsq,
            2 => Self::JpegBaseline,
            3 => Self::JpegLossless,
            4 => Self::Jpeg2000,
            5 => Self::Jpeg2000Lossless,
            6 => Self::Png,
            n => Self::Other(n.to_string()),
        }
    }

    /// The CGA text written for it (1-2011 codes).
    pub fn code(&self) -> Cow<'_, str> {
        Cow::Borrowed(match self {
            Self::None => "NONE",
            Self::Wsq => "WSQ20",
            Self::JpegBaseline => "JPEGB",
            Self::JpegLossless => "JPEGL",
            Self::Jpeg2000 => "JP2",
            Self::Jpeg2000Lossless => "JP2L",
            Self::Png => "PNG",
            Self::Other(s) => return Cow::Owned(s.clone()),
        })
    }

    /// The Type-4 GCA byte, if it has one.
    pub fn binary_code(&self) -> Option<u8> {
        match self {
            Self::None => Some(0),
            Self::Wsq => Some(1),
            Self::JpegBaseline => Some(2),
            Self::JpegLossless => Some(3),
            Self::Jpeg2000 => Some(4),
            Self::Jpeg2000Lossless => Some(5),
            Self::Png => Some(6),
            Self::Other(s) => s.parse().ok().filter(|&n| n > 6),
        }
    }
}

/// Pixel scale: SLC (0 = aspect ratio only, 1 = pixels per inch, 2 = pixels per cm), THPS, TVPS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Scale {
    /// SLC.
    pub units: u8,
    /// THPS.
    pub horizontal: u32,
    /// TVPS.
    pub vertical: u32,
}

impl Scale {
    /// Pixels per inch, for units 1 and 2 with a non-zero horizontal scale.
    pub fn ppi(&self) -> Option<u32> {
        match (self.units, self.horizontal) {
            (_, 0) => None,
            (1, h) => Some(h),
            (2, h) => Some(((f64::from(h) * 2.54).round()) as u32),
            _ => None,
        }
    }

    fn from_ppi(ppi: Option<u32>) -> Self {
        ppi.map_or_else(Self::default, |p| Self {
            units: 1,
            horizontal: p,
            vertical: p,
        })
    }
}

/// A finger, latent or palm image record (Type-4, 13, 14 or 15).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FingerImage {
    /// 4, 13, 14 or 15.
    pub record_type: u8,
    /// IDC.
    pub idc: u8,
    /// IMP impression type (0 live-scan plain, 1 live-scan rolled, 2/3 non-live plain/rolled, 4 latent ...).
    pub impression: u8,
    /// FGP codes (1..=10 fingers, 11..=15 plain thumbs/slaps, 19 EJI, 20.. palms); Type-4's unused 255s dropped.
    pub positions: Vec<u8>,
    /// .004 SRC (tagged records only).
    pub source_agency: Option<String>,
    /// .005 capture date (tagged records only).
    pub capture_date: Option<String>,
    /// HLL.
    pub width: u32,
    /// VLL.
    pub height: u32,
    /// Pixel scale (Type-4: from 1.011/1.012 as its ISR says).
    pub scale: Scale,
    /// CGA / GCA.
    pub compression: Compression,
    /// BPX (Type-4: 8).
    pub bits_per_pixel: u8,
    /// The image bytes.
    pub data: Vec<u8>,
}

impl FingerImage {
    /// Reads record `index` of a transaction whose header is `header`.
    pub fn from_record(
        header: &Header,
        index: usize,
        record: &Record,
    ) -> Result<Self, AnsiNistError> {
        match record {
            Record::Binary(r) if r.record_type == 4 => from_type4(header, index, r),
            Record::Tagged(r) if matches!(r.record_type, 13..=15) => from_tagged(header, index, r),
            other => Err(AnsiNistError::WrongRecordType {
                record: index,
                record_type: other.record_type(),
                expected: "Type-4, 13, 14 or 15",
            }),
        }
    }

    /// Resolution in pixels per inch, if the record gives one.
    pub fn ppi(&self) -> Option<u32> {
        self.scale.ppi()
    }

    /// Writes the record (Type-4 binary, or tagged). Type-4 writes ISR 0: its resolution is the header's 1.011.
    pub fn to_record(&self) -> Result<Record, AnsiNistError> {
        match self.record_type {
            4 => self.to_type4().map(Record::Binary),
            13..=15 => Ok(Record::Tagged(self.to_tagged())),
            other => Err(AnsiNistError::WrongRecordType {
                record: 0,
                record_type: other,
                expected: "Type-4, 13, 14 or 15",
            }),
        }
    }

    fn to_type4(&self) -> Result<BinaryRecord, AnsiNistError> {
        let unwritable = |reason: String| AnsiNistError::Unwritable { record: 0, reason };
        if self.positions.len() > 6 {
            return Err(unwritable(format!(
                "Type-4 holds 6 finger positions, not {}",
                self.positions.len()
            )));
        }
        let dim = |v: u32, name| {
            u16::try_from(v).map_err(|_| unwritable(format!("Type-4 {name} {v} exceeds 65535")))
        };
        let (hll, vll) = (dim(self.width, "HLL")?, dim(self.height, "VLL")?);
        let gca = self
            .compression
            .binary_code()
            .ok_or_else(|| unwritable(format!("no Type-4 GCA code for {:?}", self.compression)))?;
        let len = u32::try_from(18 + self.data.len())
            .map_err(|_| unwritable("image too large".into()))?;
        let mut bytes = Vec::with_capacity(18 + self.data.len());
        bytes.extend_from_slice(&len.to_be_bytes());
        bytes.extend_from_slice(&[self.idc, self.impression]);
        let mut fgp = [255u8; 6];
        fgp[..self.positions.len()].copy_from_slice(&self.positions);
        bytes.extend_from_slice(&fgp);
        bytes.push(0);
        bytes.extend_from_slice(&hll.to_be_bytes());
        bytes.extend_from_slice(&vll.to_be_bytes());
        bytes.push(gca);
        bytes.extend_from_slice(&self.data);
        Ok(BinaryRecord {
            record_type: 4,
            bytes,
        })
    }

    fn to_tagged(&self) -> TaggedRecord {
        let mut r = TaggedRecord::new(self.record_type);
        r.push(2, format!("{:02}", self.idc));
        r.push(3, self.impression.to_string());
        push_opt(&mut r, 4, &self.source_agency);
        push_opt(&mut r, 5, &self.capture_date);
        push_geometry(
            &mut r,
            self.width,
            self.height,
            self.scale,
            &self.compression,
        );
        r.push(12, self.bits_per_pixel.to_string());
        if !self.positions.is_empty() {
            let fgp: Vec<String> = self.positions.iter().map(u8::to_string).collect();
            r.push(13, fgp.join(&char::from(RS).to_string()));
        }
        r.push(999, self.data.clone());
        r
    }
}

fn from_type4(
    header: &Header,
    index: usize,
    r: &BinaryRecord,
) -> Result<FingerImage, AnsiNistError> {
    let b = &r.bytes;
    if b.len() < 18 {
        return Err(AnsiNistError::Truncated {
            record: index,
            record_type: 4,
            offset: 0,
            what: "Type-4 header",
            needed: 18,
            available: b.len(),
        });
    }
    let ppi = match b[12] {
        1 => header.nominal_ppi(),
        // ISR 0: the minimum scanning resolution, 19.69 ppmm, unless 1.011 says otherwise.
        _ => header.native_ppi().or(Some(500)),
    };
    Ok(FingerImage {
        record_type: 4,
        idc: b[4],
        impression: b[5],
        positions: b[6..12].iter().copied().filter(|&p| p != 255).collect(),
        source_agency: None,
        capture_date: None,
        width: u32::from(u16::from_be_bytes([b[13], b[14]])),
        height: u32::from(u16::from_be_bytes([b[15], b[16]])),
        scale: Scale::from_ppi(ppi),
        compression: Compression::from_binary_code(b[17]),
        bits_per_pixel: 8,
        data: b[18..].to_vec(),
    })
}

fn from_tagged(
    header: &Header,
    index: usize,
    r: &TaggedRecord,
) -> Result<FingerImage, AnsiNistError> {
    let f = Fields::new(r, index, header.text_encoding);
    let positions = match r.field(13) {
        Some(field) => field
            .subfields()
            .iter()
            .filter_map(|items| items.first())
            .map(|code| {
                super::record::parse_number(code)
                    .and_then(|n| u8::try_from(n).ok())
                    .ok_or_else(|| field.bad_value(index, "FGP is not a number 0..=255"))
            })
            .collect::<Result<Vec<_>, _>>()?,
        None => Vec::new(),
    };
    Ok(FingerImage {
        record_type: r.record_type,
        idc: f.required(2, "IDC")?,
        impression: f.required(3, "IMP")?,
        positions,
        source_agency: f.text(4),
        capture_date: f.text(5),
        width: f.required(6, "HLL")?,
        height: f.required(7, "VLL")?,
        scale: f.scale()?,
        compression: Compression::from_code(&f.text(11).ok_or_else(|| f.missing(11, "CGA"))?),
        bits_per_pixel: f.optional(12)?.unwrap_or(8),
        data: f.image()?,
    })
}

/// A Type-10 facial (or scar/mark/tattoo) image record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaceImage {
    /// IDC.
    pub idc: u8,
    /// 10.003 IMT (`FACE`, `SCAR`, `MARK`, `TATTOO` ...).
    pub image_type: Option<String>,
    /// 10.004 SRC.
    pub source_agency: Option<String>,
    /// 10.005 PHD, photo date.
    pub capture_date: Option<String>,
    /// HLL.
    pub width: u32,
    /// VLL.
    pub height: u32,
    /// Pixel scale.
    pub scale: Scale,
    /// CGA.
    pub compression: Compression,
    /// 10.012 CSP colour space (`SRGB`, `GRAY` ...).
    pub colour_space: Option<String>,
    /// The image bytes.
    pub data: Vec<u8>,
}

impl FaceImage {
    /// Reads Type-10 record `index` of a transaction whose header is `header`.
    pub fn from_record(
        header: &Header,
        index: usize,
        record: &Record,
    ) -> Result<Self, AnsiNistError> {
        let r = match record {
            Record::Tagged(r) if r.record_type == 10 => r,
            other => {
                return Err(AnsiNistError::WrongRecordType {
                    record: index,
                    record_type: other.record_type(),
                    expected: "Type-10",
                });
            }
        };
        let f = Fields::new(r, index, header.text_encoding);
        Ok(Self {
            idc: f.required(2, "IDC")?,
            image_type: f.text(3),
            source_agency: f.text(4),
            capture_date: f.text(5),
            width: f.required(6, "HLL")?,
            height: f.required(7, "VLL")?,
            scale: f.scale()?,
            compression: Compression::from_code(&f.text(11).ok_or_else(|| f.missing(11, "CGA"))?),
            colour_space: f.text(12),
            data: f.image()?,
        })
    }

    /// Whether this is a face (IMT `FACE`, or no IMT as in versions before 0300).
    pub fn is_face(&self) -> bool {
        self.image_type
            .as_deref()
            .is_none_or(|t| t.trim().eq_ignore_ascii_case("FACE"))
    }

    /// Writes the Type-10 record.
    pub fn to_record(&self) -> Record {
        let mut r = TaggedRecord::new(10);
        r.push(2, format!("{:02}", self.idc));
        push_opt(&mut r, 3, &self.image_type);
        push_opt(&mut r, 4, &self.source_agency);
        push_opt(&mut r, 5, &self.capture_date);
        push_geometry(
            &mut r,
            self.width,
            self.height,
            self.scale,
            &self.compression,
        );
        push_opt(&mut r, 12, &self.colour_space);
        r.push(999, self.data.clone());
        Record::Tagged(r)
    }
}

fn push_opt(r: &mut TaggedRecord, number: u16, value: &Option<String>) {
    if let Some(v) = value {
        r.push(number, v.as_bytes());
    }
}

fn push_geometry(
    r: &mut TaggedRecord,
    width: u32,
    height: u32,
    scale: Scale,
    compression: &Compression,
) {
    r.push(6, width.to_string());
    r.push(7, height.to_string());
    r.push(8, scale.units.to_string());
    r.push(9, scale.horizontal.to_string());
    r.push(10, scale.vertical.to_string());
    r.push(11, compression.code().as_bytes());
}

/// Field access for one tagged record with errors naming the record and tag.
pub(crate) struct Fields<'a> {
    record: &'a TaggedRecord,
    index: usize,
    encoding: TextEncoding,
}

impl<'a> Fields<'a> {
    pub(crate) fn new(record: &'a TaggedRecord, index: usize, encoding: TextEncoding) -> Self {
        Self {
            record,
            index,
            encoding,
        }
    }

    pub(crate) fn missing(&self, number: u16, mnemonic: &str) -> AnsiNistError {
        AnsiNistError::MissingField {
            record: self.index,
            record_type: self.record.record_type,
            field: format!("{}.{number:03} {mnemonic}", self.record.record_type),
        }
    }

    pub(crate) fn text(&self, number: u16) -> Option<String> {
        self.record
            .field(number)
            .map(|f| f.text(self.encoding).into_owned())
    }

    pub(crate) fn optional<T: TryFrom<u64>>(
        &self,
        number: u16,
    ) -> Result<Option<T>, AnsiNistError> {
        let Some(field) = self.record.field(number) else {
            return Ok(None);
        };
        field
            .number()
            .and_then(|n| T::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| field.bad_value(self.index, "not a number in range"))
    }

    pub(crate) fn required<T: TryFrom<u64>>(
        &self,
        number: u16,
        mnemonic: &str,
    ) -> Result<T, AnsiNistError> {
        self.optional(number)?
            .ok_or_else(|| self.missing(number, mnemonic))
    }

    fn scale(&self) -> Result<Scale, AnsiNistError> {
        Ok(Scale {
            units: self.optional(8)?.unwrap_or(0),
            horizontal: self.optional(9)?.unwrap_or(0),
            vertical: self.optional(10)?.unwrap_or(0),
        })
    }

    fn image(&self) -> Result<Vec<u8>, AnsiNistError> {
        self.record
            .image_field()
            .map(|f| f.value.clone())
            .ok_or_else(|| self.missing(999, "DATA"))
    }
}
