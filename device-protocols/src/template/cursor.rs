//! A bounds-checked big-endian byte cursor: every read names its field so a short input becomes a
//! [`TemplateError::Truncated`] that says what was being read and where.

use super::TemplateError;

/// Reads big-endian integers from a slice, tracking the offset from the start of the record.
#[derive(Debug, Clone)]
pub(crate) struct Cursor<'a> {
    bytes: &'a [u8],
    offset: usize,
}

impl<'a> Cursor<'a> {
    /// A cursor at offset 0 of `bytes`.
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, offset: 0 }
    }

    /// Offset of the next byte to read.
    pub(crate) fn offset(&self) -> usize {
        self.offset
    }

    /// Bytes left after the current offset.
    pub(crate) fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.offset)
    }

    /// Takes the next `n` bytes, or fails naming `field`.
    pub(crate) fn take(
        &mut self,
        field: &'static str,
        n: usize,
    ) -> Result<&'a [u8], TemplateError> {
        let available = self.remaining();
        let slice = self
            .offset
            .checked_add(n)
            .and_then(|end| self.bytes.get(self.offset..end))
            .ok_or(TemplateError::Truncated {
                field,
                offset: self.offset,
                needed: n,
                available,
            })?;
        self.offset += n;
        Ok(slice)
    }

    /// Takes the next `N` bytes as an array.
    pub(crate) fn array<const N: usize>(
        &mut self,
        field: &'static str,
    ) -> Result<[u8; N], TemplateError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(field, N)?);
        Ok(out)
    }

    /// Reads one byte.
    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, TemplateError> {
        let [b] = self.array::<1>(field)?;
        Ok(b)
    }

    /// Reads a big-endian `u16`.
    pub(crate) fn u16(&mut self, field: &'static str) -> Result<u16, TemplateError> {
        Ok(u16::from_be_bytes(self.array(field)?))
    }

    /// Reads a big-endian `u32`.
    pub(crate) fn u32(&mut self, field: &'static str) -> Result<u32, TemplateError> {
        Ok(u32::from_be_bytes(self.array(field)?))
    }

    /// Splits off the next `len` bytes as a cursor of their own (offsets stay relative to the record start) and
    /// moves past them; fails naming `field` if fewer remain.
    pub(crate) fn split(
        &mut self,
        field: &'static str,
        len: usize,
    ) -> Result<Cursor<'a>, TemplateError> {
        let start = self.offset;
        self.take(field, len)?;
        let bytes = self.bytes.get(..self.offset).unwrap_or(self.bytes);
        Ok(Cursor {
            bytes,
            offset: start,
        })
    }

    /// Moves to the end of the input (used to drop a tolerated truncated tail).
    pub(crate) fn skip_to_end(&mut self) {
        self.offset = self.bytes.len();
    }
}
