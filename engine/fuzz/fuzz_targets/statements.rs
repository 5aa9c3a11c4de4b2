//! `wasmudf_engine::fuzzing::statements`: see its documentation for what must hold.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wasmudf_engine::fuzzing::statements(data));
