//! Reading argument columns and building result columns, in Arrow layout.

use crate::types::{ArgType, ReturnType};
use crate::{error, Buffer, Column, UdfError};

/// Whether row `i` is set in an Arrow bitmap.
#[inline(always)]
pub(crate) fn bit(bits: &[u8], i: usize) -> bool {
    (bits[i >> 3] >> (i & 7)) & 1 == 1
}

/// Typed access to one argument column of a batch.
///
/// A literal argument arrives as a one-row column and reads the same at every row.
pub struct Reader<'a, T: ArgType<'a>> {
    validity: Option<&'a [u8]>,
    /// `usize::MAX` for a full column, 0 for a broadcast literal: `i & mask` is the slot.
    mask: usize,
    rows: usize,
    values: T::Values,
}

impl<'a, T: ArgType<'a>> Reader<'a, T> {
    pub(crate) fn new(col: &'a Column, rows: usize) -> Result<Self, UdfError> {
        let len = col.len as usize;
        let mask = if len == rows {
            usize::MAX
        } else if len == 1 {
            0
        } else {
            return Err(error(format!(
                "argument column has {len} rows, the batch has {rows}"
            )));
        };
        let validity = match &col.validity {
            Some(bits) if bits.len() * 8 < len => {
                return Err(error("validity bitmap shorter than the column"))
            }
            Some(bits) => Some(bits.as_slice()),
            None => None,
        };
        Ok(Reader {
            validity,
            mask,
            rows,
            values: T::values(col, len)?,
        })
    }

    /// Rows in the batch.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Whether any row may be null.
    #[inline]
    pub fn has_nulls(&self) -> bool {
        self.validity.is_some()
    }

    /// Whether row `i` is non-null.
    #[inline(always)]
    pub fn is_valid(&self, i: usize) -> bool {
        match self.validity {
            None => true,
            Some(bits) => bit(bits, i & self.mask),
        }
    }

    /// The value at row `i`, ignoring validity (a null row reads as whatever its slot holds).
    #[inline(always)]
    pub fn value(&self, i: usize) -> T::Item {
        T::get(&self.values, i & self.mask)
    }

    /// Whether this is a full column (not a literal broadcast to every row).
    #[inline]
    pub fn is_full(&self) -> bool {
        self.mask == usize::MAX
    }

    /// Every row's value in order, ignoring validity: the fast way through a full
    /// column. Panics for a broadcast literal (see [`Reader::is_full`]).
    #[inline]
    pub fn iter(&self) -> impl Iterator<Item = T::Item> + '_ {
        assert!(self.is_full(), "iter() over a broadcast literal");
        T::iter(&self.values, self.rows)
    }

    /// The value at row `i`, or `None` if it is null.
    #[inline(always)]
    pub fn get(&self, i: usize) -> Option<T::Item> {
        if self.is_valid(i) {
            Some(self.value(i))
        } else {
            None
        }
    }
}

impl Column {
    /// Reads this argument as `T`, for a batch of `rows` rows.
    pub fn reader<'a, T: ArgType<'a>>(&'a self, rows: usize) -> Result<Reader<'a, T>, UdfError> {
        Reader::new(self, rows)
    }
}

/// Builds the value buffers of a result column of one type.
pub trait OutputBuilder<T>: Sized {
    /// An empty builder for `rows` values.
    fn with_capacity(rows: usize) -> Self;
    /// Appends one value.
    fn push(&mut self, value: T);
    /// Appends a placeholder for a null row (validity is tracked by [`Output`]).
    fn push_placeholder(&mut self);
    /// A builder holding every value of `values`.
    fn from_iter(values: impl Iterator<Item = T>) -> Self {
        let mut b = Self::with_capacity(values.size_hint().0);
        values.for_each(|v| b.push(v));
        b
    }
    /// The finished buffers: (offsets, values).
    fn finish(self) -> Result<(Vec<i32>, Buffer), UdfError>;
}

/// A result column under construction.
pub struct Output<T: ReturnType> {
    builder: T::Builder,
    len: usize,
    /// Allocated at the first null; until then every row is valid.
    validity: Option<Vec<u8>>,
}

impl<T: ReturnType> Output<T> {
    /// An empty result column for a batch of `rows` rows.
    pub fn with_capacity(rows: usize) -> Self {
        Output {
            builder: T::Builder::with_capacity(rows),
            len: 0,
            validity: None,
        }
    }

    /// A column of exactly `values`, none null (`rows` is their number). For fixed-width
    /// types this is a single `collect`, which the compiler can vectorize.
    #[inline]
    pub fn from_values(rows: usize, values: impl Iterator<Item = T>) -> Self {
        Output {
            builder: T::Builder::from_iter(values),
            len: rows,
            validity: None,
        }
    }

    /// Appends a value.
    #[inline(always)]
    pub fn push(&mut self, value: T) {
        self.builder.push(value);
        self.mark_valid();
    }

    #[inline(always)]
    fn mark_valid(&mut self) {
        if let Some(bits) = &mut self.validity {
            set_bit(bits, self.len, true);
        }
        self.len += 1;
    }

    /// Appends a null.
    #[inline]
    pub fn push_null(&mut self) {
        self.builder.push_placeholder();
        let len = self.len;
        let bits = self.validity.get_or_insert_with(|| {
            let mut bits = vec![0u8; len.div_ceil(8).max(1)];
            for i in 0..len {
                bits[i >> 3] |= 1 << (i & 7);
            }
            bits
        });
        set_bit(bits, len, false);
        self.len += 1;
    }

    /// Appends a value or a null.
    #[inline(always)]
    pub fn push_option(&mut self, value: Option<T>) {
        match value {
            Some(v) => self.push(v),
            None => self.push_null(),
        }
    }

    /// The finished column.
    pub fn finish(self) -> Result<Column, UdfError> {
        let len = u32::try_from(self.len).map_err(|_| error("result column too long"))?;
        let (offsets, values) = self.builder.finish()?;
        Ok(Column {
            len,
            validity: self.validity,
            offsets,
            values,
        })
    }
}

impl Output<String> {
    /// Appends a borrowed string without allocating a `String`.
    #[inline(always)]
    pub fn push_str(&mut self, value: &str) {
        self.push_with(|buf| buf.push_str(value));
    }

    /// Appends one value written by `write` straight into the column's text buffer:
    /// no per-row allocation and no UTF-8 check. `write` must only append (what it
    /// changes before the end would corrupt earlier rows, which the host then rejects).
    ///
    /// ```ignore
    /// out.push_with(|buf| {
    ///     let start = buf.len();
    ///     buf.push_str(name);
    ///     buf[start..].make_ascii_uppercase();
    /// });
    /// ```
    #[inline(always)]
    pub fn push_with(&mut self, write: impl FnOnce(&mut String)) {
        write(&mut self.builder.data);
        self.builder.end_value();
        self.mark_valid();
    }
}

impl Output<Vec<u8>> {
    /// Appends borrowed bytes without allocating a `Vec`.
    #[inline(always)]
    pub fn push_slice(&mut self, value: &[u8]) {
        self.builder.data.extend_from_slice(value);
        self.builder.end_value();
        self.mark_valid();
    }
}

#[inline(always)]
fn set_bit(bits: &mut Vec<u8>, i: usize, valid: bool) {
    let byte = i >> 3;
    if byte >= bits.len() {
        bits.resize(byte + 1, 0);
    }
    if valid {
        bits[byte] |= 1 << (i & 7);
    } else {
        bits[byte] &= !(1 << (i & 7));
    }
}

/// Builds a bit-packed boolean buffer.
pub struct BoolBuilder {
    bits: Vec<u8>,
    len: usize,
}

impl OutputBuilder<bool> for BoolBuilder {
    fn with_capacity(rows: usize) -> Self {
        BoolBuilder {
            bits: Vec::with_capacity(rows.div_ceil(8)),
            len: 0,
        }
    }

    #[inline(always)]
    fn push(&mut self, value: bool) {
        set_bit(&mut self.bits, self.len, value);
        self.len += 1;
    }

    fn push_placeholder(&mut self) {
        self.push(false);
    }

    fn finish(mut self) -> Result<(Vec<i32>, Buffer), UdfError> {
        self.bits.resize(self.len.div_ceil(8), 0);
        Ok((Vec::new(), Buffer::Bytes(self.bits)))
    }
}

/// Storage of a variable-length result column: `String` for text (so writers append
/// text without re-validating it), `Vec<u8>` for bytes.
#[doc(hidden)]
pub trait VarData {
    fn with_capacity(bytes: usize) -> Self;
    fn byte_len(&self) -> usize;
    fn into_bytes(self) -> Vec<u8>;
}

impl VarData for String {
    fn with_capacity(bytes: usize) -> Self {
        String::with_capacity(bytes)
    }
    fn byte_len(&self) -> usize {
        self.len()
    }
    fn into_bytes(self) -> Vec<u8> {
        String::into_bytes(self)
    }
}

impl VarData for Vec<u8> {
    fn with_capacity(bytes: usize) -> Self {
        Vec::with_capacity(bytes)
    }
    fn byte_len(&self) -> usize {
        self.len()
    }
    fn into_bytes(self) -> Vec<u8> {
        self
    }
}

/// Builds variable-length values (text or bytes): i32 offsets + data.
pub struct VarBuilder<D> {
    offsets: Vec<i32>,
    data: D,
}

impl<D: VarData> VarBuilder<D> {
    fn new(rows: usize) -> Self {
        let mut offsets = Vec::with_capacity(rows + 1);
        offsets.push(0);
        VarBuilder {
            offsets,
            data: D::with_capacity(rows * 16),
        }
    }

    /// Closes the current value at the end of the data written so far.
    #[inline(always)]
    fn end_value(&mut self) {
        // Overflow is caught in `finish`; a wrapped offset is never sent.
        self.offsets.push(self.data.byte_len() as i32);
    }

    fn finish_buffers(self) -> Result<(Vec<i32>, Buffer), UdfError> {
        if self.data.byte_len() > i32::MAX as usize {
            return Err(error("result column exceeds 2 GiB of data"));
        }
        Ok((self.offsets, Buffer::Bytes(self.data.into_bytes())))
    }
}

impl OutputBuilder<String> for VarBuilder<String> {
    fn with_capacity(rows: usize) -> Self {
        VarBuilder::new(rows)
    }
    #[inline(always)]
    fn push(&mut self, value: String) {
        self.data.push_str(&value);
        self.end_value();
    }
    fn push_placeholder(&mut self) {
        self.end_value();
    }
    fn finish(self) -> Result<(Vec<i32>, Buffer), UdfError> {
        self.finish_buffers()
    }
}

impl OutputBuilder<Vec<u8>> for VarBuilder<Vec<u8>> {
    fn with_capacity(rows: usize) -> Self {
        VarBuilder::new(rows)
    }
    #[inline(always)]
    fn push(&mut self, value: Vec<u8>) {
        self.data.extend_from_slice(&value);
        self.end_value();
    }
    fn push_placeholder(&mut self) {
        self.end_value();
    }
    fn finish(self) -> Result<(Vec<i32>, Buffer), UdfError> {
        self.finish_buffers()
    }
}

/// Builds a fixed-width value buffer of wire words `W`.
pub struct WordBuilder<W> {
    values: Vec<W>,
}

impl<W: Copy + Default> WordBuilder<W> {
    pub(crate) fn with_capacity(rows: usize) -> Self {
        WordBuilder {
            values: Vec::with_capacity(rows),
        }
    }

    pub(crate) fn from_words(values: Vec<W>) -> Self {
        WordBuilder { values }
    }

    #[inline(always)]
    pub(crate) fn push_word(&mut self, w: W) {
        self.values.push(w);
    }

    pub(crate) fn into_words(self) -> Vec<W> {
        self.values
    }
}
