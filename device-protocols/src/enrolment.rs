//! Station protocol v1 extension: the declarations an officer records with an enrolment (`purpose: "enrol"`).
//!
//! ```json
//! "enrolment": {
//!   "family_name": "DOE", "given_names": "JANE MARIE", "date_of_birth": "1990-04-17", "sex": "F",
//!   "nationality": "KEN",
//!   "document": {"type": "P", "number": "A1234567", "issuer": "KEN"},
//!   "encounter": {"place": "Namanga border post", "reason": "entry_refused"},
//!   "legal_basis": "Immigration Act s.12(3)"
//! }
//! ```
//! Required when `purpose` is `enrol`, refused otherwise. Every field is checked and a refusal names it.
//! Country codes are ISO 3166-1 alpha-3 (upper case; `XXA`/`XXB`/`XXC`/`XXX` for stateless/refugee/unspecified as
//! in ICAO 9303). Document types are ICAO 9303 codes (`P`, `ID`, `V`, ... 1-2 upper-case letters). Dates are
//! `YYYY-MM-DD`, not in the future relative to the capture, not before 1900. Names are 1..=100 characters of
//! letters, spaces, `-`, `'` and `.` (any script).

use serde::{Deserialize, Serialize};

/// Why the person was encountered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EncounterReason {
    /// Routine border check.
    BorderCheck,
    /// Entry refused.
    EntryRefused,
    /// Irregular crossing.
    IrregularCrossing,
    /// Asylum or protection request.
    AsylumRequest,
    /// Document fraud suspected.
    DocumentFraud,
    /// Other (the legal basis says more).
    Other,
}

/// A travel document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Document {
    /// ICAO 9303 document type code.
    #[serde(rename = "type")]
    pub kind: String,
    /// Document number.
    pub number: String,
    /// Issuing state, ISO 3166-1 alpha-3.
    pub issuer: String,
}

/// Where and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Encounter {
    /// Place of encounter.
    pub place: String,
    /// Reason.
    pub reason: EncounterReason,
}

/// The declarations of an enrolment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Enrolment {
    /// Family name(s), as declared.
    pub family_name: String,
    /// Given name(s), as declared.
    pub given_names: String,
    /// `YYYY-MM-DD`.
    pub date_of_birth: String,
    /// `F`, `M` or `X`.
    pub sex: String,
    /// ISO 3166-1 alpha-3.
    pub nationality: String,
    /// Travel document, if any was presented.
    #[serde(default)]
    pub document: Option<Document>,
    /// Place and reason of the encounter.
    pub encounter: Encounter,
    /// Legal basis recorded by the officer.
    pub legal_basis: String,
}

fn check_name(field: &str, v: &str) -> Result<(), String> {
    let ok = (1..=100).contains(&v.chars().count())
        && v.chars().any(char::is_alphabetic)
        && v.chars()
            .all(|c| c.is_alphabetic() || matches!(c, ' ' | '-' | '\'' | '.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "field `enrolment.{field}` must be 1..=100 letters, spaces, - ' . (got {v:?})"
        ))
    }
}

fn check_country(field: &str, v: &str) -> Result<(), String> {
    if v.len() == 3 && v.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(())
    } else {
        Err(format!(
            "field `enrolment.{field}` must be an ISO 3166-1 alpha-3 code such as KEN (got {v:?})"
        ))
    }
}

fn check_text(field: &str, v: &str, max: usize) -> Result<(), String> {
    if v.trim().is_empty() || v.chars().count() > max || v.chars().any(char::is_control) {
        Err(format!(
            "field `enrolment.{field}` must be 1..={max} printable characters"
        ))
    } else {
        Ok(())
    }
}

fn check_date(v: &str, captured: time::Date) -> Result<(), String> {
    let bad = || {
        format!(
            "field `enrolment.date_of_birth` must be a date YYYY-MM-DD between 1900 and the capture (got {v:?})"
        )
    };
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    let d = time::Date::parse(v, &fmt).map_err(|_| bad())?;
    if d.year() < 1900 || d > captured {
        return Err(bad());
    }
    Ok(())
}

impl Enrolment {
    /// Checks every field; `captured` is the capture's date (birth dates after it are refused).
    pub fn validate(&self, captured: time::Date) -> Result<(), String> {
        check_name("family_name", &self.family_name)?;
        check_name("given_names", &self.given_names)?;
        check_date(&self.date_of_birth, captured)?;
        if !matches!(self.sex.as_str(), "F" | "M" | "X") {
            return Err(format!(
                "field `enrolment.sex` must be F, M or X (got {:?})",
                self.sex
            ));
        }
        check_country("nationality", &self.nationality)?;
        if let Some(d) = &self.document {
            if !(1..=2).contains(&d.kind.len()) || !d.kind.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(format!(
                    "field `enrolment.document.type` must be an ICAO 9303 code such as P or ID (got {:?})",
                    d.kind
                ));
            }
            let number_ok = (1..=20).contains(&d.number.len())
                && d.number
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
            if !number_ok {
                return Err(format!(
                    "field `enrolment.document.number` must be 1..=20 of A-Z 0-9 (got {:?})",
                    d.number
                ));
            }
            check_country("document.issuer", &d.issuer)?;
        }
        check_text("encounter.place", &self.encounter.place, 200)?;
        check_text("legal_basis", &self.legal_basis, 500)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> Enrolment {
        serde_json::from_value(serde_json::json!({
            "family_name": "DOE", "given_names": "JANE MARIE", "date_of_birth": "1990-04-17", "sex": "F",
            "nationality": "KEN", "document": {"type": "P", "number": "A1234567", "issuer": "KEN"},
            "encounter": {"place": "Namanga border post", "reason": "entry_refused"},
            "legal_basis": "Immigration Act s.12(3)"
        }))
        .unwrap()
    }

    #[test]
    fn valid_declarations_pass_and_each_bad_field_is_named() {
        let today = time::macros::date!(2026 - 11 - 29);
        sample().validate(today).unwrap();
        type Case = (fn(&mut Enrolment), &'static str);
        let cases: Vec<Case> = vec![
            (|e| e.family_name = "D0E".into(), "family_name"),
            (|e| e.given_names = String::new(), "given_names"),
            (|e| e.date_of_birth = "2030-01-01".into(), "date_of_birth"),
            (|e| e.date_of_birth = "17/04/1990".into(), "date_of_birth"),
            (|e| e.sex = "female".into(), "sex"),
            (|e| e.nationality = "KE".into(), "nationality"),
            (
                |e| e.document.as_mut().unwrap().kind = "passport".into(),
                "document.type",
            ),
            (
                |e| e.document.as_mut().unwrap().number = "a-1".into(),
                "document.number",
            ),
            (
                |e| e.document.as_mut().unwrap().issuer = "ken".into(),
                "document.issuer",
            ),
            (|e| e.encounter.place = " ".into(), "encounter.place"),
            (|e| e.legal_basis = "x".repeat(501), "legal_basis"),
        ];
        for (break_it, field) in cases {
            let mut e = sample();
            break_it(&mut e);
            let err = e.validate(today).unwrap_err();
            assert!(
                err.contains(&format!("`enrolment.{field}`")),
                "{field}: {err}"
            );
        }
        // Non-Latin scripts are names too.
        let mut e = sample();
        e.family_name = "Ж\u{43e}ва".into();
        e.validate(today).unwrap();
    }
}
