//! `wasmudf_engine::fuzzing::description`: see its documentation for what must hold.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wasmudf_engine::fuzzing::description(data));
