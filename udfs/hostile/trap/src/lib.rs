//! Hostile: traps (a Rust panic, which is `unreachable` in Wasm) on negative input.

use wasmudf::scalar;

#[scalar]
fn trap_negative(x: i64) -> i64 {
    if x < 0 {
        panic!("negative input");
    }
    x
}

wasmudf::export!(trap_negative);
