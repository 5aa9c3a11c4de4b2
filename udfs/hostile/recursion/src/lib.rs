//! Hostile: recurses without bound on the Wasm stack (locals only, so it is the
//! engine's stack limit that stops it, not the guest's shadow stack in linear memory).

use wasmudf::scalar;

#[inline(never)]
fn deeper(n: i64) -> i64 {
    if n == i64::MIN {
        return 0;
    }
    // Not a tail call, and not an accumulator LLVM could turn into a loop.
    let r = deeper(n.wrapping_add(1));
    r.wrapping_sub(n) / 3
}

#[scalar]
fn recurse(x: i64) -> i64 {
    deeper(x)
}

wasmudf::export!(recurse);
