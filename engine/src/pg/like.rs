//! PostgreSQL's `LIKE ... ESCAPE 'c'` in the form DataFusion runs: DataFusion (arrow's
//! `like` kernel) knows only the backslash as escape character, so a pattern written
//! with another one (SQLAlchemy's `nspname NOT LIKE 'pg/_%' ESCAPE '/'`) is translated
//! to the same pattern escaped with backslashes.

/// `pattern` written with escape character `escape` (`None`: `ESCAPE ''`, no escape
/// character at all) as the equivalent pattern escaped with backslashes. As in
/// PostgreSQL, the escape character before any character makes it literal, and a
/// pattern ending in the escape character is an error (22025).
///
/// ```text
/// 'pg/_%' ESCAPE '/'   ->  'pg\_%'
/// 'a\b'   ESCAPE '/'   ->  'a\\b'      (a literal backslash)
/// '100%'  ESCAPE ''    ->  '100%'      (% stays a wildcard)
/// ```
pub(crate) fn with_backslash_escapes(
    pattern: &str,
    escape: Option<char>,
) -> Result<String, String> {
    let mut out = String::with_capacity(pattern.len() + 4);
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if Some(c) == escape {
            let Some(next) = chars.next() else {
                return Err("LIKE pattern must not end with escape character".into());
            };
            out.push('\\');
            out.push(next);
        } else if c == '\\' {
            out.push_str("\\\\");
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::with_backslash_escapes as translate;

    #[test]
    fn another_escape_character_becomes_a_backslash() {
        assert_eq!(translate("pg/_%", Some('/')).as_deref(), Ok("pg\\_%"));
        assert_eq!(translate("a//b", Some('/')).as_deref(), Ok("a\\/b"));
        assert_eq!(translate("a\\b", Some('/')).as_deref(), Ok("a\\\\b"));
        assert_eq!(translate("100%", None).as_deref(), Ok("100%"));
        assert_eq!(translate("a\\_", None).as_deref(), Ok("a\\\\_"));
        assert_eq!(translate("é!%x", Some('!')).as_deref(), Ok("é\\%x"));
        assert!(translate("abc/", Some('/')).is_err());
    }
}
