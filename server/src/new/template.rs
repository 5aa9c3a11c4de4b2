//! SQL functions: `add_one(bigint)` and the aggregate `my_sum(bigint)`.

use wasmudf::{aggregate, scalar, Aggregate};

/// `x + 1`; overflow is an error (SQLSTATE 38000 with this message).
#[scalar]
fn add_one(x: i64) -> Result<i64, &'static str> {
    x.checked_add(1).ok_or("bigint out of range")
}

/// A bigint sum, NULL for no rows.
#[aggregate]
#[derive(Default)]
struct MySum {
    sum: i64,
    n: u64,
}

impl Aggregate for MySum {
    type Args<'a> = (i64,);
    type Output = Option<i64>;

    fn update(&mut self, (x,): (i64,)) {
        self.sum = self.sum.wrapping_add(x);
        self.n += 1;
    }

    fn merge(&mut self, other: Self) {
        self.sum = self.sum.wrapping_add(other.sum);
        self.n += other.n;
    }

    fn finish(&self) -> Option<i64> {
        (self.n > 0).then_some(self.sum)
    }
}

wasmudf::export!(add_one, my_sum);
