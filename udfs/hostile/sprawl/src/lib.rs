//! Hostile: a 55-kilobyte component that describes 20,000 functions, all
//! `(bigint) -> bigint`. Only `f0` has code (it returns its argument); the rest exist
//! to make the host's load, install and restart work scale with the count. The host
//! must refuse it with 54000 under its default ceiling, and handle it in linear time
//! when the ceiling allows it.

use wasmudf::{scalar, FunctionSignature};

/// How many functions the component describes.
const FUNCTIONS: usize = 20_000;

#[scalar]
fn f0(x: i64) -> i64 {
    x
}

fn sprawl(honest: Vec<FunctionSignature>) -> Vec<FunctionSignature> {
    let first = &honest[0];
    (0..FUNCTIONS)
        .map(|i| FunctionSignature {
            name: format!("f{i}"),
            ..first.clone()
        })
        .collect()
}

wasmudf::export!(describe = sprawl; f0);
