//! Typed Type-9 minutiae records: the NIST standard minutiae fields (9.010-9.012) and the INCITS 378 ("M1")
//! block (9.126-9.140), and their conversion to an ISO/IEC 19794-2:2005 [`MinutiaeRecord`].
//!
//! - 9.012 MRC: per minutia `index US XXXXYYYYTTT (or XXXXXYYYYYTTT) US quality US type [US ridge counts]`: x and y in 0.01 mm from
//!   the image's *lower-left* corner, theta in degrees, type `A` ridge ending, `B` bifurcation, `C` compound, `D`
//!   undetermined. The NIST direction points the opposite way to INCITS/ISO's (the jnbis samples encode the same
//!   finger both ways: M1 angle = standard theta + 180 degrees), so the conversion adds 180 degrees.
//! - 9.128 HLL, 9.129 VLL, 9.130 SLC (1 ppi, 2 ppcm), 9.131 THPS, 9.132 TVPS, 9.133 FVW, 9.134 FGP, 9.135 FQD
//!   (quality first), 9.136 NOM, 9.137 FMD: per minutia `index US x US y US angle (2-degree units 0..=179) US type
//!   (0 other, 1 ridge ending, 2 bifurcation) US quality`, pixels from the upper-left corner as in INCITS 378.
//!
//! Ridge counts, cores and deltas are not read.

use crate::template::{FingerView, Minutia, MinutiaKind, MinutiaeRecord, TemplateFormat};

use super::images::Fields;
use super::record::parse_number;
use super::{AnsiNistError, Field, Header, Record};

/// A Type-9 minutiae record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Minutiae {
    /// IDC.
    pub idc: u8,
    /// 9.003 IMP.
    pub impression: u8,
    /// 9.004 FMT: `S` standard, `U` user-defined.
    pub format: Option<String>,
    /// The standard minutiae fields, if 9.012 is present.
    pub standard: Option<StandardMinutiae>,
    /// The INCITS 378 block, if 9.137 is present.
    pub incits: Option<IncitsMinutiae>,
}

/// NIST standard minutiae (9.006, 9.010-9.012).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StandardMinutiae {
    /// 9.006 FGP.
    pub positions: Vec<u8>,
    /// 9.012 minutiae.
    pub minutiae: Vec<StandardMinutia>,
}

/// One standard minutia.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StandardMinutia {
    /// X in 0.01 mm from the left edge.
    pub x: u32,
    /// Y in 0.01 mm from the *bottom* edge.
    pub y: u32,
    /// Direction in degrees (NIST convention).
    pub theta: u16,
    /// Quality (0 manual, 1 none reported, 2-63).
    pub quality: u8,
    /// Type letter: `A`, `B`, `C` or `D`.
    pub kind: u8,
}

/// The INCITS 378 block of a Type-9 record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncitsMinutiae {
    /// 9.128 HLL.
    pub width: u16,
    /// 9.129 VLL.
    pub height: u16,
    /// 9.130 SLC: 1 ppi, 2 ppcm.
    pub scale_units: u8,
    /// 9.131 THPS.
    pub horizontal_resolution: u16,
    /// 9.132 TVPS.
    pub vertical_resolution: u16,
    /// 9.133 FVW.
    pub view: u8,
    /// 9.134 FGP.
    pub position: u8,
    /// 9.135 FQD quality value.
    pub quality: u8,
    /// 9.137 FMD.
    pub minutiae: Vec<IncitsMinutia>,
}

/// One INCITS 378 minutia.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IncitsMinutia {
    /// Column in pixels.
    pub x: u16,
    /// Row in pixels.
    pub y: u16,
    /// Angle in 2-degree units, 0..=179.
    pub angle: u8,
    /// 0 other, 1 ridge ending, 2 bifurcation.
    pub kind: u8,
    /// Quality 0..=100.
    pub quality: u8,
}

impl Minutiae {
    /// Reads Type-9 record `index` of a transaction whose header is `header`.
    pub fn from_record(
        header: &Header,
        index: usize,
        record: &Record,
    ) -> Result<Self, AnsiNistError> {
        let r = match record {
            Record::Tagged(r) if r.record_type == 9 => r,
            other => {
                return Err(AnsiNistError::WrongRecordType {
                    record: index,
                    record_type: other.record_type(),
                    expected: "Type-9",
                });
            }
        };
        let f = Fields::new(r, index, header.text_encoding);
        let standard = match r.field(12) {
            Some(mrc) => Some(StandardMinutiae {
                positions: numbers(r.field(6), index)?,
                minutiae: read_standard(mrc, index)?,
            }),
            None => None,
        };
        let incits = match r.field(137) {
            Some(fmd) => Some(IncitsMinutiae {
                width: f.required(128, "HLL")?,
                height: f.required(129, "VLL")?,
                scale_units: f.required(130, "SLC")?,
                horizontal_resolution: f.required(131, "THPS")?,
                vertical_resolution: f.required(132, "TVPS")?,
                view: f.optional(133)?.unwrap_or(0),
                position: first_number(r.field(134), index)?.unwrap_or(0),
                quality: first_number(r.field(135), index)?.unwrap_or(0),
                minutiae: read_incits(fmd, index)?,
            }),
            None => None,
        };
        Ok(Self {
            idc: f.required(2, "IDC")?,
            impression: f.optional(3)?.unwrap_or(0),
            format: f.text(4),
            standard,
            incits,
        })
    }
}

impl IncitsMinutiae {
    /// As an ISO/IEC 19794-2:2005 record (one view). `impression` is the record's 9.003 IMP.
    pub fn to_iso(&self, impression: u8) -> Result<MinutiaeRecord, AnsiNistError> {
        let to_ppcm = |v: u16| match self.scale_units {
            1 => (f64::from(v) / 2.54).round() as u16,
            2 => v,
            _ => 0,
        };
        let minutiae = self
            .minutiae
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let bad = |what: String| AnsiNistError::BadValue {
                    record: 0,
                    tag: "9.137".into(),
                    reason: format!("minutia {i}: {what}"),
                };
                if m.angle > 179 {
                    return Err(bad(format!("angle {} exceeds 179", m.angle)));
                }
                let kind = match m.kind {
                    0 => MinutiaKind::Other,
                    1 => MinutiaKind::RidgeEnding,
                    2 => MinutiaKind::Bifurcation,
                    k => return Err(bad(format!("type {k} is not 0, 1 or 2"))),
                };
                Ok(Minutia {
                    kind,
                    x: m.x,
                    y: m.y,
                    angle: degrees_to_iso(u32::from(m.angle) * 2),
                    quality: m.quality.min(100),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(MinutiaeRecord {
            format: TemplateFormat::Iso19794_2_2005,
            width: self.width,
            height: self.height,
            x_resolution_ppcm: to_ppcm(self.horizontal_resolution),
            y_resolution_ppcm: to_ppcm(self.vertical_resolution),
            views: vec![FingerView {
                position: self.position,
                view_number: self.view.min(15),
                impression_type: iso_impression(impression),
                quality: self.quality.min(100),
                minutiae,
            }],
        })
    }
}

impl StandardMinutiae {
    /// As an ISO/IEC 19794-2:2005 record, for an image of `width` x `height` pixels at `ppi` (the standard fields
    /// are in millimetres from the lower-left corner, so the image's size and resolution are needed).
    pub fn to_iso(&self, width: u16, height: u16, ppi: u32, impression: u8) -> MinutiaeRecord {
        let px_per_hundredth_mm = f64::from(ppi) / 2540.0;
        let to_px = |v: u32| {
            (f64::from(v) * px_per_hundredth_mm)
                .round()
                .clamp(0.0, 16383.0) as u16
        };
        let minutiae = self
            .minutiae
            .iter()
            .map(|m| Minutia {
                kind: match m.kind {
                    b'A' => MinutiaKind::RidgeEnding,
                    b'B' => MinutiaKind::Bifurcation,
                    _ => MinutiaKind::Other,
                },
                x: to_px(m.x),
                y: height.saturating_sub(to_px(m.y)),
                angle: degrees_to_iso(u32::from(m.theta) + 180),
                quality: 0,
            })
            .collect();
        let ppcm = (f64::from(ppi) / 2.54).round().min(65535.0) as u16;
        MinutiaeRecord {
            format: TemplateFormat::Iso19794_2_2005,
            width,
            height,
            x_resolution_ppcm: ppcm,
            y_resolution_ppcm: ppcm,
            views: vec![FingerView {
                position: self.positions.first().copied().unwrap_or(0),
                view_number: 0,
                impression_type: iso_impression(impression),
                quality: 0,
                minutiae,
            }],
        }
    }
}

/// Degrees (any non-negative value) to ISO 2005 units of 360/256 degrees, rounded.
fn degrees_to_iso(degrees: u32) -> u8 {
    (((degrees % 360) * 256 + 180) / 360 % 256) as u8
}

/// ANSI/NIST IMP codes 0-3 and 8 mean what ISO's do; others (latents, palms, newer codes) become 0.
fn iso_impression(imp: u8) -> u8 {
    if matches!(imp, 0..=3 | 8) { imp } else { 0 }
}

fn numbers(field: Option<&Field>, index: usize) -> Result<Vec<u8>, AnsiNistError> {
    let Some(field) = field else {
        return Ok(Vec::new());
    };
    field
        .value
        .split(|&b| b == super::RS || b == super::US)
        .filter(|s| !s.is_empty())
        .map(|s| small(field, index, s))
        .collect()
}

/// The first information item of the first subfield, as a number (9.134 FGP, 9.135 FQD quality).
fn first_number(field: Option<&Field>, index: usize) -> Result<Option<u8>, AnsiNistError> {
    let Some(field) = field else { return Ok(None) };
    let subfields = field.subfields();
    match subfields.first().and_then(|items| items.first()) {
        Some(item) if !item.is_empty() => small(field, index, item).map(Some),
        _ => Ok(None),
    }
}

fn small<T: TryFrom<u64>>(field: &Field, index: usize, s: &[u8]) -> Result<T, AnsiNistError> {
    parse_number(s)
        .and_then(|n| T::try_from(n).ok())
        .ok_or_else(|| {
            field.bad_value(
                index,
                format!("{:?} is not a number in range", String::from_utf8_lossy(s)),
            )
        })
}

fn read_standard(field: &Field, index: usize) -> Result<Vec<StandardMinutia>, AnsiNistError> {
    field
        .subfields()
        .iter()
        .filter(|items| items.iter().any(|i| !i.is_empty()))
        .map(|items| {
            let xyt = items.get(1).copied().unwrap_or_default();
            let digits = match xyt.len() {
                11 => 4,
                13 => 5,
                _ => 0,
            };
            if digits == 0 || !xyt.iter().all(u8::is_ascii_digit) {
                return Err(field.bad_value(
                    index,
                    "minutia location is not XXXXYYYYTTT (or XXXXXYYYYYTTT)",
                ));
            }
            Ok(StandardMinutia {
                x: small(field, index, &xyt[..digits])?,
                y: small(field, index, &xyt[digits..2 * digits])?,
                theta: small(field, index, &xyt[2 * digits..])?,
                quality: items.get(2).map_or(Ok(0), |q| small(field, index, q))?,
                kind: items
                    .get(3)
                    .and_then(|t| t.first())
                    .copied()
                    .unwrap_or(b'D'),
            })
        })
        .collect()
}

fn read_incits(field: &Field, index: usize) -> Result<Vec<IncitsMinutia>, AnsiNistError> {
    field
        .subfields()
        .iter()
        .filter(|items| items.iter().any(|i| !i.is_empty()))
        .map(|items| match items.as_slice() {
            [_, x, y, angle, kind, quality, ..] => Ok(IncitsMinutia {
                x: small(field, index, x)?,
                y: small(field, index, y)?,
                angle: small(field, index, angle)?,
                kind: small(field, index, kind)?,
                quality: small(field, index, quality)?,
            }),
            _ => Err(field.bad_value(index, "minutia needs index, x, y, angle, type and quality")),
        })
        .collect()
}
