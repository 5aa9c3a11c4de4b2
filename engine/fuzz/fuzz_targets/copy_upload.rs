//! `wasmudf_engine::fuzzing::copy_upload`: see its documentation for what must hold.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wasmudf_engine::fuzzing::copy_upload(data));
