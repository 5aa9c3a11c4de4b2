//! Hostile: recurses without bound on the Wasm stack (locals only, so it is the
//! engine's stack limit that stops it, not the guest's shadow stack in linear memory).
//! `recurse_to` recurses a given depth: a probe of how much stack a function has.

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

#[inline(never)]
fn descend(depth: i64) -> i64 {
    if depth <= 0 {
        return 0;
    }
    let r = descend(depth - 1);
    r.wrapping_sub(depth) / 3
}

#[scalar]
fn recurse(x: i64) -> i64 {
    deeper(x)
}

/// Recurses `depth` levels, then returns.
#[scalar]
fn recurse_to(depth: i64) -> i64 {
    descend(depth)
}

wasmudf::export!(recurse, recurse_to);
