// A misspelt option names the ones that exist.
#[wasmudf::scalar(nmae = "plus_one")]
fn add_one(x: i64) -> i64 {
    x + 1
}

wasmudf::export!(add_one);

fn main() {}
