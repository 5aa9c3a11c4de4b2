// A result type with no SQL counterpart: the error says what a function may return.
#[wasmudf::scalar]
fn pairs(n: i64) -> std::collections::HashMap<i64, i64> {
    std::iter::once((n, n)).collect()
}

wasmudf::export!(pairs);

fn main() {}
