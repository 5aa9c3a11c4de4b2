//! PostgreSQL's binary array format (`array_send`), as the server sends list columns:
//! decoded here so both conventions can print an array (psql's `{1,2}`, DataFusion's
//! `[1, 2]`).

use tokio_postgres::types::Type;

type DecodeError = Box<dyn std::error::Error + Sync + Send>;

/// One array value: its element type, its dimensions (outermost first; none when
/// empty) and its elements in row-major order (`None` for NULL).
pub(crate) struct BinaryArray<'a> {
    pub(crate) element: Type,
    pub(crate) dims: Vec<usize>,
    pub(crate) items: Vec<Option<&'a [u8]>>,
}

fn int(input: &mut &[u8]) -> Result<i32, DecodeError> {
    let (head, rest) = input
        .split_first_chunk::<4>()
        .ok_or("binary array ends early")?;
    *input = rest;
    Ok(i32::from_be_bytes(*head))
}

/// Decodes one binary array value.
pub(crate) fn decode(raw: &[u8]) -> Result<BinaryArray<'_>, DecodeError> {
    let mut input = raw;
    let ndim = usize::try_from(int(&mut input)?)?;
    let _has_nulls = int(&mut input)?;
    let oid = int(&mut input)? as u32;
    let element = Type::from_oid(oid).ok_or_else(|| format!("unknown element type {oid}"))?;
    let mut dims = Vec::with_capacity(ndim);
    for _ in 0..ndim {
        dims.push(usize::try_from(int(&mut input)?)?);
        let _lower_bound = int(&mut input)?;
    }
    let count: usize = if dims.is_empty() {
        0
    } else {
        dims.iter().product()
    };
    let mut items = Vec::with_capacity(count);
    for _ in 0..count {
        let size = int(&mut input)?;
        if size < 0 {
            items.push(None);
        } else {
            let size = size as usize;
            if input.len() < size {
                return Err("binary array ends inside an element".into());
            }
            let (item, rest) = input.split_at(size);
            items.push(Some(item));
            input = rest;
        }
    }
    if !input.is_empty() {
        return Err("bytes after the last element of a binary array".into());
    }
    Ok(BinaryArray {
        element,
        dims,
        items,
    })
}

/// `items` (already printed) nested by `dims` with DataFusion's list syntax:
/// `[[1, 2], [3, 4]]`, `[]` when empty.
pub(crate) fn datafusion_list(dims: &[usize], items: &[String]) -> String {
    match dims {
        [] | [_] => format!("[{}]", items.join(", ")),
        [outer, inner @ ..] => {
            let size = (items.len() / (*outer).max(1)).max(1);
            let parts: Vec<String> = items
                .chunks(size)
                .map(|chunk| datafusion_list(inner, chunk))
                .collect();
            format!("[{}]", parts.join(", "))
        }
    }
}
