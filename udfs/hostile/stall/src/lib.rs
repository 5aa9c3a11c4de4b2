//! Hostile: a component whose `describe` never returns. Only the host's limits on
//! load-time code (fuel, `wasm.timeout`, a canceled statement) stop it; meanwhile
//! other sessions must go on as if nothing happened.

use wasmudf::{scalar, FunctionSignature};

#[scalar]
fn stalled(x: i64) -> i64 {
    x
}

fn stall(honest: Vec<FunctionSignature>) -> Vec<FunctionSignature> {
    let mut spins: u64 = 0;
    while std::hint::black_box(spins) != u64::MAX {
        spins = spins.wrapping_add(1);
    }
    honest
}

wasmudf::export!(describe = stall; stalled);
