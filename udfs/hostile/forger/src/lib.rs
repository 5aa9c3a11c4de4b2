//! Hostile: error messages that try to forge what the client and the server log see.
//!
//! `forge(1)` hides ErrorResponse fields behind NUL bytes (a SQLSTATE of success, a
//! message and a hint of its choosing); `forge(2)` writes a log line of its own after a
//! newline; `forge(3)` returns a 4 MB message, to flood both.

use wasmudf::scalar;

#[scalar]
fn forge(kind: i64) -> Result<i64, String> {
    Err(match kind {
        1 => "boom\0C00000\0Meverything is fine\0Hspoofed".to_string(),
        2 => "boom\n2026-12-01T00:00:00.000000Z  INFO wasmudf::pg: logged in user=\"FORGED\""
            .to_string(),
        3 => "flood ".repeat(700_000),
        _ => return Ok(kind),
    })
}

wasmudf::export!(forge);
