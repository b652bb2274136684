//! INTERPOL INT-I v6 (the INT-I profile of ANSI/NIST-ITL 1-2011 Update 2015, XML encoding): search requests
//! built from a station capture, and search results and error messages read into typed values.
//!
//! # What it is for
//! A gateway that forwards captures to INTERPOL's AFIS sends a CPS (criminal print-to-print search) or NPS
//! (non-criminal search) transaction ([`build_search_request`]) and gets back an SRE (search results: hit with a
//! respondents list, or no hit) or an ERR (error codes) transaction ([`parse_response`]).
//!
//! # Format
//! One `itl:NISTBiometricInformationExchangePackage` holding, in order, the Type-1 `itl:PackageInformationRecord`
//! (transaction date, destination and originating agencies, TCN, domain `INT-I` 06.00, version 0502, TOT, the
//! content summary), the Type-2 `itl:PackageDescriptiveTextRecord` (INT-I's `int-i:DomainDefinedDescriptiveDetail`:
//! the subject's biographics, or in a response the `int-i:TransactionResponseData`), then Type-9 minutiae
//! (`itl:PackageMinutiaeRecord`, INCITS 378 block), Type-10 face (`itl:PackageFacialAndSMTImageRecord`) and
//! Type-14 finger (`itl:PackageFingerprintImageRecord`) records with base64 image data. Namespaces: `itl`
//! (NIST 2011), `biom` (NIEM biometrics 1.0), `nc` (NIEM core 2.0), `int-i` (INTERPOL 1.0). Element order
//! follows INTERPOL's samples (Sample-NPS.xml, Sample-MPS.xml), which their XSD validates.
//!
//! # Limits
//! Documents above [`MAX_XML_BYTES`], deeper than [`MAX_DEPTH`] or with more than [`MAX_ELEMENTS`] elements are
//! refused; so are DOCTYPE declarations and entities other than XML's five and character references (no entity
//! expansion attacks). Errors name the byte offset or the element path.
//!
//! # Known quirks
//! - INTERPOL's sample named `Sample-NPS.xml` holds a CPS transaction; requests are built from its structure.
//! - The field definitions put Type-14 images under `biom:FingerImpressionImage`, the samples (and INTERPOL's
//!   XSD) under `itl:FingerprintImage`; the latter is written.
//! - An SRE's respondents list may list fewer candidates than its total quantity (the hit sample lists 1 of 3).

mod codes;
mod dom;
mod request;
mod request_minutiae;
mod response;

#[cfg(test)]
mod tests;

pub use codes::error_description;
pub use request::{Agency, Biographics, SearchKind, SearchRequest, Sex, build_search_request};
pub use response::{
    Candidate, ErrorMessage, ErrorResponse, Package, Response, SearchResult, Subject,
    TransactionInfo, parse_package, parse_response,
};

/// Largest document accepted (a ten-print request with base64 images fits).
pub const MAX_XML_BYTES: usize = 64 * 1024 * 1024;
/// Deepest element nesting accepted.
pub const MAX_DEPTH: usize = 64;
/// Most elements accepted in one document.
pub const MAX_ELEMENTS: usize = 200_000;

/// INTERPOL INT-I 1.0 namespace.
pub const NS_INT_I: &str = "http://interpol.gov/int-i/1.0";
/// ANSI/NIST-ITL 2011 namespace.
pub const NS_ITL: &str = "http://biometrics.nist.gov/standard/2011";
/// NIEM biometrics 1.0 namespace.
pub const NS_BIOM: &str = "http://niem.gov/niem/biometrics/1.0";
/// NIEM core 2.0 namespace.
pub const NS_NC: &str = "http://niem.gov/niem/niem-core/2.0";

/// Prefixes written, as in INTERPOL's samples.
pub(crate) const NAMESPACES: &[(&str, &str)] = &[
    ("int-i", NS_INT_I),
    ("itl", NS_ITL),
    ("biom", NS_BIOM),
    ("nc", NS_NC),
];

/// An INT-I document could not be read or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IntIError {
    /// Above [`MAX_XML_BYTES`]; refused before parsing.
    #[error("document is {len} bytes, above the limit of {max}")]
    TooLarge {
        /// Bytes given.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Not well-formed XML (or a construct refused here).
    #[error("XML error at byte {offset}: {reason}")]
    Xml {
        /// Byte offset.
        offset: usize,
        /// What is wrong.
        reason: String,
    },
    /// Nested deeper than [`MAX_DEPTH`].
    #[error("element at byte {offset} is nested deeper than {max}")]
    TooDeep {
        /// Byte offset.
        offset: usize,
        /// The limit.
        max: usize,
    },
    /// More than [`MAX_ELEMENTS`] elements.
    #[error("document has more than {max} elements")]
    TooManyElements {
        /// The limit.
        max: usize,
    },
    /// A required element is absent.
    #[error("missing element {path}")]
    Missing {
        /// Its path.
        path: String,
    },
    /// An element's text cannot be interpreted.
    #[error("element {path}: {value:?} {reason}")]
    BadValue {
        /// Its path.
        path: String,
        /// Its text.
        value: String,
        /// What is wrong.
        reason: String,
    },
    /// The transaction is not of a type this function reads.
    #[error("transaction type {found:?} is not one of {expected}")]
    UnexpectedTransaction {
        /// TOT found.
        found: String,
        /// TOTs accepted.
        expected: &'static str,
    },
    /// A request cannot be built from the capture given.
    #[error("cannot build the request: {0}")]
    Request(String),
    /// Serialisation failed.
    #[error("cannot write XML: {0}")]
    Write(String),
}
