//! Checksummed record framing: every value the store writes is `[format: u8 = 1][crc32: u32 BE][postcard body]`.
//!
//! sled checksums its own log, but a value can still be damaged by a bug, a bad disk or a torn write below sled;
//! the store checks every value it reads and quarantines one that fails instead of crashing on it (the crash loop
//! that disk buffers are known for).

use serde::{Serialize, de::DeserializeOwned};

const FORMAT: u8 = 1;
const HEADER: usize = 5;

/// A value failed its check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// Shorter than the header.
    #[error("record of {0} bytes is shorter than its header")]
    Short(usize),
    /// Unknown format byte.
    #[error("record format {0} is unknown")]
    Format(u8),
    /// Checksum mismatch.
    #[error("record checksum mismatch (stored {stored:08x}, computed {computed:08x})")]
    Checksum {
        /// In the record.
        stored: u32,
        /// Over the body.
        computed: u32,
    },
    /// The body does not decode.
    #[error("record body does not decode: {0}")]
    Body(String),
    /// The value cannot be encoded.
    #[error("record cannot be encoded: {0}")]
    Encode(String),
}

/// Frames a value.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, RecordError> {
    let body = postcard::to_stdvec(value).map_err(|e| RecordError::Encode(e.to_string()))?;
    let mut out = Vec::with_capacity(HEADER + body.len());
    out.push(FORMAT);
    out.extend_from_slice(&crc32fast::hash(&body).to_be_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

/// Checks and decodes a framed value.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, RecordError> {
    if bytes.len() < HEADER {
        return Err(RecordError::Short(bytes.len()));
    }
    if bytes[0] != FORMAT {
        return Err(RecordError::Format(bytes[0]));
    }
    let stored = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]);
    let body = &bytes[HEADER..];
    let computed = crc32fast::hash(body);
    if stored != computed {
        return Err(RecordError::Checksum { stored, computed });
    }
    postcard::from_bytes(body).map_err(|e| RecordError::Body(e.to_string()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_every_single_bit_flip_is_caught() {
        let v = (42u64, "station-1".to_owned(), vec![1u8, 2, 3]);
        let bytes = encode(&v).unwrap();
        assert_eq!(decode::<(u64, String, Vec<u8>)>(&bytes).unwrap(), v);
        for i in 0..bytes.len() * 8 {
            let mut b = bytes.clone();
            b[i / 8] ^= 1 << (i % 8);
            assert!(
                decode::<(u64, String, Vec<u8>)>(&b).is_err(),
                "bit {i} not caught"
            );
        }
        assert_eq!(decode::<u8>(&bytes[..3]), Err(RecordError::Short(3)));
    }
}
