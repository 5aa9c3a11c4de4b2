//! Hostile: allocates without bound.

use wasmudf::scalar;

#[scalar]
fn membomb(x: i64) -> i64 {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        hoard.push(vec![1u8; 1 << 20]);
        if std::hint::black_box(hoard.len()) == usize::MAX {
            return x;
        }
    }
}

wasmudf::export!(membomb);
