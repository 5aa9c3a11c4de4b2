// A type with no SQL counterpart as an argument: the error lists the supported ones.
#[wasmudf::scalar]
fn elapsed(d: std::time::Duration) -> i64 {
    d.as_secs() as i64
}

wasmudf::export!(elapsed);

fn main() {}
