//! Integer arithmetic: `add_one(bigint)`, `gcd(bigint, bigint)`, `safe_div(bigint, bigint)`,
//! and a whole-batch `add_one_batch(bigint)` showing the batch API.

use wasmudf::{batch, scalar, Column, Output, UdfError};

/// `x + 1`; overflow is an error, as for SQL's `bigint + 1`.
#[scalar]
fn add_one(x: i64) -> Result<i64, &'static str> {
    x.checked_add(1).ok_or("bigint out of range")
}

/// Greatest common divisor (Euclid), always non-negative.
#[scalar]
fn gcd(a: i64, b: i64) -> i64 {
    let (mut a, mut b) = (a.unsigned_abs(), b.unsigned_abs());
    while b != 0 {
        // Cranelift keeps a 64-bit division 64-bit; LLVM narrows it on x86-64 when both
        // operands fit in 32 bits. Doing that here gives Wasm the same cheaper division.
        if (a | b) >> 32 == 0 {
            let (mut x, mut y) = (a as u32, b as u32);
            while y != 0 {
                (x, y) = (y, x % y);
            }
            return i64::from(x);
        }
        (a, b) = (b, a % b);
    }
    a as i64
}

/// Integer division that rejects a zero divisor with an error naming the row.
#[scalar]
fn safe_div(a: i64, b: i64) -> Result<i64, &'static str> {
    if b == 0 {
        return Err("division by zero");
    }
    a.checked_div(b).ok_or("bigint out of range")
}

/// Batch API: works on the whole column at once. `x + 1`, wrapping on overflow.
///
/// Strict (the default for batch functions): the host nulls every row whose input is
/// null, so the values of such rows can be computed like any other.
#[batch(params(i64), returns = i64)]
fn add_one_batch(rows: usize, args: &[Column]) -> Result<Column, UdfError> {
    let x = args[0].reader::<i64>(rows)?;
    if x.is_full() {
        // One map-collect over the column: vectorized by the compiler.
        return Output::from_values(rows, x.iter().map(|v| v.wrapping_add(1))).finish();
    }
    // A literal argument: one value for every row.
    Output::from_values(rows, (0..rows).map(|i| x.value(i).wrapping_add(1))).finish()
}

wasmudf::export!(add_one, gcd, safe_div, add_one_batch);
