//! Reading INT-I packages: the Type-1 transaction information of any package, and SRE / ERR responses.
//!
//! SRE: `int-i:TransactionResponseData/int-i:RespondentsList` (2.064 RLS) holds `int-i:TransactionCandidate`s
//! (sequence id, manual verification indicator), the total number of candidates, the searched transaction's
//! category and the result code `I` (identification: hit) or `N` (no hit). ERR: `int-i:ErrorMessage`s (2.074 ERM)
//! with `int-i:ErrorCode`, `int-i:ErrorFieldMnemonicCode` and `int-i:ErrorMessageText`.

use super::dom::{self, Element};
use super::{IntIError, NS_BIOM, NS_INT_I, NS_ITL, NS_NC};

/// Type-1 information common to every package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionInfo {
    /// 1.004 TOT (`CPS`, `NPS`, `MPS`, `SRE`, `ERR` ...).
    pub category: String,
    /// 1.005 date.
    pub date: Option<String>,
    /// 1.007 DAI: destination agency id.
    pub destination: Option<String>,
    /// 1.008 ORI: originating agency id.
    pub originator: Option<String>,
    /// 1.009 TCN.
    pub control_number: Option<String>,
    /// 1.010 TCR: the TCN of the request this answers.
    pub control_reference: Option<String>,
    /// 1.013 domain version (`06.00`).
    pub domain_version: Option<String>,
    /// 1.003 CNT: (record category, IDC) of each record after Type-1.
    pub content: Vec<(u8, u32)>,
}

/// Any INT-I package: its transaction information and the categories of its records after Type-1, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    /// Type-1 information.
    pub info: TransactionInfo,
    /// Record categories (2, 9, 10, 13, 14, 20 ...) in document order.
    pub records: Vec<u8>,
}

/// A response to a search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// SRE.
    SearchResult(SearchResult),
    /// ERR.
    Error(ErrorResponse),
}

/// An SRE transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchResult {
    /// Type-1 information (its control reference is the request's TCN).
    pub info: TransactionInfo,
    /// The searched transaction's category (`CPS`, `MPS` ...).
    pub search_category: Option<String>,
    /// Result code `I`: identified.
    pub hit: bool,
    /// Total number of candidates.
    pub total_candidates: u32,
    /// Candidates listed.
    pub candidates: Vec<Candidate>,
    /// The identified subject's biographics, if sent.
    pub subject: Option<Subject>,
}

/// One listed candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    /// Candidate sequence id.
    pub sequence: u32,
    /// Whether an examiner verified it.
    pub manual_verification: bool,
}

/// Biographics of a record subject.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Subject {
    /// Given name.
    pub given_name: Option<String>,
    /// Surname.
    pub surname: Option<String>,
    /// Birth date (`YYYY-MM-DD`).
    pub birth_date: Option<String>,
    /// Sex code (`M`, `F`, `U`, `X`).
    pub sex: Option<String>,
    /// Citizenship (ISO 3166 alpha-3).
    pub citizenship: Option<String>,
}

/// An ERR transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorResponse {
    /// Type-1 information.
    pub info: TransactionInfo,
    /// The errors reported.
    pub errors: Vec<ErrorMessage>,
}

/// One reported error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorMessage {
    /// Error code (see [`super::error_description`]).
    pub code: u16,
    /// Mnemonic of the offending field (e.g. `DOB`).
    pub field: Option<String>,
    /// The message text.
    pub text: Option<String>,
}

const RESPONSE_DATA: &[(&str, &str)] = &[
    (NS_ITL, "UserDefinedDescriptiveDetail"),
    (NS_INT_I, "DomainDefinedDescriptiveDetail"),
    (NS_INT_I, "TransactionResponseData"),
];

/// Reads any INT-I package's transaction information and record list.
pub fn parse_package(xml: &[u8]) -> Result<Package, IntIError> {
    let root = dom::parse(xml)?;
    package(&root)
}

/// Reads an SRE or ERR response.
pub fn parse_response(xml: &[u8]) -> Result<Response, IntIError> {
    let root = dom::parse(xml)?;
    let package = package(&root)?;
    let info = package.info;
    if !matches!(info.category.as_str(), "SRE" | "ERR") {
        return Err(IntIError::UnexpectedTransaction {
            found: info.category,
            expected: "SRE, ERR",
        });
    }
    let data = root
        .find(NS_ITL, "PackageDescriptiveTextRecord")
        .and_then(|r| r.path(RESPONSE_DATA))
        .ok_or_else(|| {
            missing("itl:PackageDescriptiveTextRecord/.../int-i:TransactionResponseData")
        })?;
    if info.category == "SRE" {
        search_result(info, &root, data).map(Response::SearchResult)
    } else {
        error_response(info, data).map(Response::Error)
    }
}

fn missing(path: &str) -> IntIError {
    IntIError::Missing {
        path: path.to_owned(),
    }
}

fn bad(path: &str, value: &str, reason: &str) -> IntIError {
    IntIError::BadValue {
        path: path.to_owned(),
        value: value.to_owned(),
        reason: reason.to_owned(),
    }
}

fn number<T: std::str::FromStr>(path: &str, text: &str) -> Result<T, IntIError> {
    text.trim()
        .parse()
        .map_err(|_| bad(path, text, "is not a number in range"))
}

fn id(e: &Element, ns: &str, name: &str) -> Option<String> {
    e.text_at(&[(ns, name), (NS_NC, "IdentificationID")])
}

fn package(root: &Element) -> Result<Package, IntIError> {
    if root.ns != NS_ITL || root.name != "NISTBiometricInformationExchangePackage" {
        return Err(bad(
            "/",
            &root.name,
            "is not an itl:NISTBiometricInformationExchangePackage",
        ));
    }
    let transaction = root
        .path(&[
            (NS_ITL, "PackageInformationRecord"),
            (NS_BIOM, "Transaction"),
        ])
        .ok_or_else(|| missing("itl:PackageInformationRecord/biom:Transaction"))?;
    let info = transaction_info(transaction)?;
    let records = root
        .children
        .iter()
        .skip(1)
        .map(|record| {
            let code = record
                .find(NS_BIOM, "RecordCategoryCode")
                .ok_or_else(|| missing(&format!("itl:{}/biom:RecordCategoryCode", record.name)))?;
            number(
                &format!("itl:{}/biom:RecordCategoryCode", record.name),
                &code.text,
            )
        })
        .collect::<Result<Vec<u8>, _>>()?;
    Ok(Package { info, records })
}

fn transaction_info(t: &Element) -> Result<TransactionInfo, IntIError> {
    let category = t
        .text_at(&[(NS_INT_I, "TransactionCategoryCode")])
        .ok_or_else(|| missing("biom:Transaction/int-i:TransactionCategoryCode"))?;
    let content = match t.find(NS_BIOM, "TransactionContentSummary") {
        Some(summary) => summary
            .find_all(NS_BIOM, "ContentRecordSummary")
            .map(|s| {
                let path = "biom:ContentRecordSummary";
                let category = s
                    .text_at(&[(NS_BIOM, "RecordCategoryCode")])
                    .unwrap_or_default();
                let idc = id(s, NS_BIOM, "ImageReferenceIdentification").unwrap_or_default();
                Ok((number(path, &category)?, number(path, &idc)?))
            })
            .collect::<Result<Vec<_>, IntIError>>()?,
        None => Vec::new(),
    };
    let agency = |name| {
        t.text_at(&[
            (NS_INT_I, name),
            (NS_NC, "OrganizationIdentification"),
            (NS_NC, "IdentificationID"),
        ])
    };
    Ok(TransactionInfo {
        category,
        date: t.text_at(&[(NS_BIOM, "TransactionDate"), (NS_NC, "Date")]),
        destination: agency("TransactionDestinationOrganization"),
        originator: agency("TransactionOriginatingOrganization"),
        control_number: id(t, NS_BIOM, "TransactionControlIdentification"),
        control_reference: id(t, NS_BIOM, "TransactionControlReferenceIdentification"),
        domain_version: t.text_at(&[
            (NS_BIOM, "TransactionDomain"),
            (NS_BIOM, "DomainVersionNumberIdentification"),
            (NS_NC, "IdentificationID"),
        ]),
        content,
    })
}

fn search_result(
    info: TransactionInfo,
    root: &Element,
    data: &Element,
) -> Result<SearchResult, IntIError> {
    const RLS: &str = "int-i:TransactionResponseData/int-i:RespondentsList";
    let list = data
        .find(NS_INT_I, "RespondentsList")
        .ok_or_else(|| missing(RLS))?;
    let code = list
        .text_at(&[(NS_INT_I, "TransactionSearchResultsCode")])
        .ok_or_else(|| missing(&format!("{RLS}/int-i:TransactionSearchResultsCode")))?;
    let hit = match code.as_str() {
        "I" => true,
        "N" => false,
        other => {
            return Err(bad(
                &format!("{RLS}/int-i:TransactionSearchResultsCode"),
                other,
                "is not I or N",
            ));
        }
    };
    let total = list
        .text_at(&[(NS_INT_I, "TransactionCandidatesTotalQuantity")])
        .ok_or_else(|| missing(&format!("{RLS}/int-i:TransactionCandidatesTotalQuantity")))?;
    let candidates = list
        .find_all(NS_INT_I, "TransactionCandidate")
        .map(candidate)
        .collect::<Result<Vec<_>, _>>()?;
    let subject = root
        .find(NS_ITL, "PackageDescriptiveTextRecord")
        .and_then(|r| r.path(&RESPONSE_DATA[..2]))
        .and_then(|d| d.find(NS_INT_I, "RecordSubject"))
        .map(subject);
    Ok(SearchResult {
        info,
        search_category: list.text_at(&[(NS_INT_I, "TransactionCategoryCode")]),
        hit,
        total_candidates: number(
            &format!("{RLS}/int-i:TransactionCandidatesTotalQuantity"),
            &total,
        )?,
        candidates,
        subject,
    })
}

fn candidate(c: &Element) -> Result<Candidate, IntIError> {
    const PATH: &str = "int-i:TransactionCandidate";
    let sequence = id(c, NS_INT_I, "CandidateSequenceID")
        .ok_or_else(|| missing(&format!("{PATH}/int-i:CandidateSequenceID")))?;
    let mvi_path = format!("{PATH}/int-i:TransactionCandidateManualVerificationIndicator");
    let manual_verification = match c
        .text_at(&[(NS_INT_I, "TransactionCandidateManualVerificationIndicator")])
        .as_deref()
    {
        Some("true" | "1") => true,
        Some("false" | "0") | None => false,
        Some(other) => return Err(bad(&mvi_path, other, "is not a boolean")),
    };
    Ok(Candidate {
        sequence: number(&format!("{PATH}/int-i:CandidateSequenceID"), &sequence)?,
        manual_verification,
    })
}

fn subject(s: &Element) -> Subject {
    Subject {
        given_name: s.text_at(&[(NS_INT_I, "PersonName"), (NS_NC, "PersonGivenName")]),
        surname: s.text_at(&[(NS_INT_I, "PersonName"), (NS_NC, "PersonSurName")]),
        birth_date: s.text_at(&[(NS_NC, "PersonBirthDate"), (NS_NC, "Date")]),
        sex: s.text_at(&[(NS_INT_I, "PersonSexCode")]),
        citizenship: s.text_at(&[(NS_NC, "PersonCitizenshipISO3166Alpha3Code")]),
    }
}

fn error_response(info: TransactionInfo, data: &Element) -> Result<ErrorResponse, IntIError> {
    const PATH: &str = "int-i:TransactionResponseData/int-i:ErrorMessage";
    let errors = data
        .find_all(NS_INT_I, "ErrorMessage")
        .map(|m| {
            let code = m
                .text_at(&[(NS_INT_I, "ErrorCode")])
                .ok_or_else(|| missing(&format!("{PATH}/int-i:ErrorCode")))?;
            Ok(ErrorMessage {
                code: number(&format!("{PATH}/int-i:ErrorCode"), &code)?,
                field: m.text_at(&[(NS_INT_I, "ErrorFieldMnemonicCode")]),
                text: m.text_at(&[(NS_INT_I, "ErrorMessageText")]),
            })
        })
        .collect::<Result<Vec<_>, IntIError>>()?;
    if errors.is_empty() {
        return Err(missing(PATH));
    }
    Ok(ErrorResponse { info, errors })
}
