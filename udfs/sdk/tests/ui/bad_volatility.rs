// A volatility PostgreSQL does not have.
#[wasmudf::scalar(volatility = "sometimes")]
fn add_one(x: i64) -> i64 {
    x + 1
}

wasmudf::export!(add_one);

fn main() {}
