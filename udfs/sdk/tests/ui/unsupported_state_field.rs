// An aggregate whose state holds a type that cannot cross the contract as a column.
#[wasmudf::aggregate]
#[derive(Default)]
struct Histogram {
    buckets: std::collections::BTreeMap<i64, u64>,
}

impl wasmudf::Aggregate for Histogram {
    type Args<'a> = (i64,);
    type Output = Option<i64>;

    fn update(&mut self, (x,): (i64,)) {
        *self.buckets.entry(x).or_default() += 1;
    }

    fn merge(&mut self, other: Self) {
        for (k, v) in other.buckets {
            *self.buckets.entry(k).or_default() += v;
        }
    }

    fn finish(&self) -> Option<i64> {
        self.buckets.keys().next().copied()
    }
}

wasmudf::export!(histogram);

fn main() {}
