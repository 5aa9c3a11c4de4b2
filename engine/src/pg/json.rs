//! PostgreSQL's `json` and `jsonb` text: `json` keeps its input as written (checked to
//! be JSON), `jsonb` is the value in its normal form, as PostgreSQL prints it: object
//! keys ordered by length then bytes, the last of duplicate keys kept, `", "` and
//! `": "` between items, numbers as written, strings re-escaped.
//!
//! Written by hand rather than with `serde_json::Value`: that would print `1.50` as
//! `1.5` and `1e2` as `100.0` (PostgreSQL keeps the number as written), and its
//! `arbitrary_precision` feature would change every `serde_json` user in the build.

/// `text` if it is JSON; PostgreSQL's error detail otherwise.
pub fn json_checked(text: &str) -> Result<&str, String> {
    let mut p = Parser::new(text);
    p.value()?;
    p.end()?;
    Ok(text)
}

/// `text` as PostgreSQL's `jsonb` prints it; an error detail if it is not JSON.
pub fn jsonb_text(text: &str) -> Result<String, String> {
    let mut p = Parser::new(text);
    let value = p.value()?;
    p.end()?;
    let mut out = String::with_capacity(text.len() + 8);
    write(&value, &mut out);
    Ok(out)
}

/// A parsed JSON value, numbers and strings kept as their text.
enum Value<'a> {
    Null,
    Bool(bool),
    /// The number as written.
    Number(&'a str),
    String(String),
    Array(Vec<Value<'a>>),
    /// Keys in jsonb order, without duplicates.
    Object(Vec<(String, Value<'a>)>),
}

/// Nesting deeper than this is refused (PostgreSQL stops at its stack depth limit; a
/// recursive parser must stop somewhere).
const MAX_DEPTH: usize = 1000;

struct Parser<'a> {
    text: &'a str,
    at: usize,
    depth: usize,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str) -> Self {
        Parser {
            text,
            at: 0,
            depth: 0,
        }
    }

    fn error<T>(&self, what: &str) -> Result<T, String> {
        let rest: String = self.text[self.at..].chars().take(20).collect();
        if rest.is_empty() {
            Err(format!("{what} at the end of the input"))
        } else {
            Err(format!("{what} at \"{rest}\""))
        }
    }

    fn skip_space(&mut self) {
        let rest = &self.text[self.at..];
        self.at += rest.len() - rest.trim_start_matches([' ', '\t', '\n', '\r']).len();
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_space();
        self.text.as_bytes().get(self.at).copied()
    }

    fn eat(&mut self, word: &str) -> bool {
        if self.text[self.at..].starts_with(word) {
            self.at += word.len();
            true
        } else {
            false
        }
    }

    fn end(&mut self) -> Result<(), String> {
        match self.peek() {
            None => Ok(()),
            Some(_) => self.error("unexpected text after the value"),
        }
    }

    fn value(&mut self) -> Result<Value<'a>, String> {
        match self.peek() {
            Some(b'{') => self.nested(Self::object),
            Some(b'[') => self.nested(Self::array),
            Some(b'"') => self.string().map(Value::String),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) if self.eat("true") => Ok(Value::Bool(true)),
            Some(_) if self.eat("false") => Ok(Value::Bool(false)),
            Some(_) if self.eat("null") => Ok(Value::Null),
            _ => self.error("expected a JSON value"),
        }
    }

    fn nested(
        &mut self,
        f: fn(&mut Self) -> Result<Value<'a>, String>,
    ) -> Result<Value<'a>, String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return self.error(&format!("nesting deeper than {MAX_DEPTH} levels"));
        }
        let value = f(self);
        self.depth -= 1;
        value
    }

    fn array(&mut self) -> Result<Value<'a>, String> {
        self.at += 1;
        let mut items = Vec::new();
        if self.peek() == Some(b']') {
            self.at += 1;
            return Ok(Value::Array(items));
        }
        loop {
            items.push(self.value()?);
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b']') => {
                    self.at += 1;
                    return Ok(Value::Array(items));
                }
                _ => return self.error("expected \",\" or \"]\""),
            }
        }
    }

    fn object(&mut self) -> Result<Value<'a>, String> {
        self.at += 1;
        let mut members: Vec<(String, Value<'a>)> = Vec::new();
        if self.peek() == Some(b'}') {
            self.at += 1;
            return Ok(Value::Object(members));
        }
        loop {
            if self.peek() != Some(b'"') {
                return self.error("expected a string key");
            }
            let key = self.string()?;
            if self.peek() != Some(b':') {
                return self.error("expected \":\"");
            }
            self.at += 1;
            let value = self.value()?;
            // The last of duplicate keys wins, as in jsonb.
            members.retain(|(k, _)| *k != key);
            members.push((key, value));
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b'}') => {
                    self.at += 1;
                    members.sort_by(|(a, _), (b, _)| {
                        a.len()
                            .cmp(&b.len())
                            .then_with(|| a.as_bytes().cmp(b.as_bytes()))
                    });
                    return Ok(Value::Object(members));
                }
                _ => return self.error("expected \",\" or \"}\""),
            }
        }
    }

    fn string(&mut self) -> Result<String, String> {
        self.at += 1;
        let mut out = String::new();
        let bytes = self.text.as_bytes();
        loop {
            let start = self.at;
            while self.at < bytes.len() && !matches!(bytes[self.at], b'"' | b'\\' | 0..=0x1f) {
                self.at += 1;
            }
            out.push_str(&self.text[start..self.at]);
            match bytes.get(self.at) {
                Some(b'"') => {
                    self.at += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.at += 1;
                    let Some(&c) = bytes.get(self.at) else {
                        return self.error("unterminated escape");
                    };
                    self.at += 1;
                    match c {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let unit = self.hex4()?;
                            let c = if (0xD800..0xDC00).contains(&unit) {
                                // A surrogate pair: the high half, then `\u` and the low.
                                if !self.eat("\\u") {
                                    return self.error("a lone high surrogate");
                                }
                                let low = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&low) {
                                    return self.error("an invalid low surrogate");
                                }
                                char::from_u32(0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00))
                            } else {
                                char::from_u32(unit)
                            };
                            match c {
                                // PostgreSQL's text cannot hold NUL.
                                Some('\0') | None => {
                                    return self.error("\\u0000 or an invalid code point")
                                }
                                Some(c) => out.push(c),
                            }
                        }
                        _ => return self.error("an invalid escape"),
                    }
                }
                Some(_) => return self.error("a control character in a string"),
                None => return self.error("an unterminated string"),
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let digits = self.text.get(self.at..self.at + 4).unwrap_or("");
        match u32::from_str_radix(digits, 16) {
            Ok(v) if digits.len() == 4 && digits.bytes().all(|b| b.is_ascii_hexdigit()) => {
                self.at += 4;
                Ok(v)
            }
            _ => self.error("\\u needs four hex digits"),
        }
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`, kept as written.
    fn number(&mut self) -> Result<Value<'a>, String> {
        let bytes = self.text.as_bytes();
        let start = self.at;
        let digits = |at: &mut usize| {
            let from = *at;
            while *at < bytes.len() && bytes[*at].is_ascii_digit() {
                *at += 1;
            }
            *at > from
        };
        let mut at = self.at;
        if bytes.get(at) == Some(&b'-') {
            at += 1;
        }
        let int_start = at;
        if !digits(&mut at) || (bytes[int_start] == b'0' && at - int_start > 1) {
            return self.error("an invalid number");
        }
        if bytes.get(at) == Some(&b'.') {
            at += 1;
            if !digits(&mut at) {
                return self.error("an invalid number");
            }
        }
        if matches!(bytes.get(at), Some(b'e' | b'E')) {
            at += 1;
            if matches!(bytes.get(at), Some(b'+' | b'-')) {
                at += 1;
            }
            if !digits(&mut at) {
                return self.error("an invalid number");
            }
        }
        self.at = at;
        Ok(Value::Number(&self.text[start..at]))
    }
}

fn write(value: &Value<'_>, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(n),
        Value::String(s) => quote(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write(item, out);
            }
            out.push(']');
        }
        Value::Object(members) => {
            out.push('{');
            for (i, (key, item)) in members.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                quote(key, out);
                out.push_str(": ");
                write(item, out);
            }
            out.push('}');
        }
    }
}

/// `text` as a JSON string literal, escaped as PostgreSQL's `escape_json` does.
pub(crate) fn quote(text: &str, out: &mut String) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonb_is_printed_as_postgresql_prints_it() {
        let cases = [
            (
                r#"{"b":1,"a":2,"aa":[1,2.50,-0.1e3],"a":3}"#,
                r#"{"a": 3, "b": 1, "aa": [1, 2.50, -0.1e3]}"#,
            ),
            (" [ ] ", "[]"),
            (
                r#"{"x": {"é": "\u00e9\n\"", "": null, "t": true}}"#,
                r#"{"x": {"": null, "t": true, "é": "é\n\""}}"#,
            ),
            (r#""\ud83d\ude00""#, "\"😀\""),
            ("-0", "-0"),
        ];
        for (input, printed) in cases {
            assert_eq!(jsonb_text(input).as_deref(), Ok(printed), "{input}");
            assert!(json_checked(input).is_ok(), "{input}");
        }
    }

    #[test]
    fn what_is_not_json_says_where() {
        for bad in [
            "",
            "{",
            "[1,]",
            "{\"a\" 1}",
            "01",
            "1.",
            "tru",
            "\"\\u0000\"",
            "\"\\x\"",
            "[1] 2",
            "\"\u{1}\"",
            "{1: 2}",
            "\"\\ud800\"",
        ] {
            assert!(jsonb_text(bad).is_err(), "{bad:?}");
            assert!(json_checked(bad).is_err(), "{bad:?}");
        }
        assert!(jsonb_text(&"[".repeat(2000))
            .unwrap_err()
            .contains("nesting"));
    }
}
