//! Text functions: `initials(text)`, `upper_ascii(text)`, `reverse_text(text)`, `byte_len(bytea)`.

use wasmudf::{batch, scalar, Column, Output, UdfError};

/// "Ada Lovelace" -> "AL". Null in, null out; called on null so it can say so itself.
#[scalar]
fn initials(name: Option<&str>) -> Option<String> {
    let name = name?;
    let s: String = name
        .split_whitespace()
        .filter_map(|w| w.chars().next())
        .flat_map(char::to_uppercase)
        .collect();
    Some(s)
}

/// ASCII upper-casing over the whole batch, without a `String` per row.
#[batch(params(&str), returns = String)]
fn upper_ascii(rows: usize, args: &[Column]) -> Result<Column, UdfError> {
    let s = args[0].reader::<&str>(rows)?;
    let mut out = Output::<String>::with_capacity(rows);
    for i in 0..rows {
        let v = s.value(i);
        out.push_with(|buf| {
            let start = buf.len();
            buf.push_str(v);
            buf[start..].make_ascii_uppercase();
        });
    }
    out.finish()
}

/// Reverses the characters of a string.
#[scalar]
fn reverse_text(s: &str) -> String {
    s.chars().rev().collect()
}

/// Length of a byte string.
#[scalar]
fn byte_len(b: &[u8]) -> i32 {
    b.len() as i32
}

wasmudf::export!(initials, upper_ascii, reverse_text, byte_len);
