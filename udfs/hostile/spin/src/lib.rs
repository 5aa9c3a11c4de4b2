//! Hostile: never returns. Stopped by fuel, or by the deadline when fuel is off.

use wasmudf::scalar;

#[scalar]
fn spin(x: i64) -> i64 {
    let mut v = x;
    loop {
        v = std::hint::black_box(v.wrapping_mul(31).wrapping_add(7));
        if std::hint::black_box(false) {
            return v;
        }
    }
}

wasmudf::export!(spin);
