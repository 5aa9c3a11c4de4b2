//! What a UDF author sees when a function cannot be exported: each case in `ui/` must
//! fail to compile with the message in its `.stderr` (regenerate with
//! `TRYBUILD=overwrite` after a deliberate change, and read the diff).

#[test]
fn unsupported_signatures_and_options_fail_with_a_clear_message() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
}
