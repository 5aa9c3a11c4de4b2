//! Aggregate functions:
//!
//! - `geo_mean(double precision)`: geometric mean;
//! - `median_wasm(double precision)`: exact median (state: every value, as bytes);
//! - `hll_distinct(bigint)`: HyperLogLog distinct count (state: the sketch);
//! - `weighted_avg(double precision, double precision)`: `sum(x * w) / sum(w)`;
//! - `str_join(text, text)`: the strings joined with a separator;
//! - `arg_max(text, double precision)`: the text of the row with the largest value;
//! - `moving_sum(bigint)`: a sum that can retract rows (sliding window frames);
//! - `wasm_sum(bigint)`: a plain sum, per-group API;
//! - `wasm_sum_batch(bigint)`: the same sum written against the batch-level API.

use wasmudf::{
    aggregate, error, Aggregate, AggregateFunction, Column, Emit, Function, GroupsAggregate,
    Output, SqlType, UdfError, Volatility,
};

/// Geometric mean; NULL for no rows, an error for a value that is not positive.
#[aggregate]
#[derive(Default)]
struct GeoMean {
    log_sum: f64,
    n: u64,
    not_positive: u64,
}

impl Aggregate for GeoMean {
    type Args<'a> = (f64,);
    type Output = Result<Option<f64>, &'static str>;

    fn update(&mut self, (x,): (f64,)) {
        if x > 0.0 {
            self.log_sum += x.ln();
            self.n += 1;
        } else {
            self.not_positive += 1;
        }
    }

    fn merge(&mut self, other: Self) {
        self.log_sum += other.log_sum;
        self.n += other.n;
        self.not_positive += other.not_positive;
    }

    fn finish(&self) -> Self::Output {
        if self.not_positive > 0 {
            return Err("geo_mean is defined for positive values only");
        }
        Ok((self.n > 0).then(|| (self.log_sum / self.n as f64).exp()))
    }
}

/// Exact median (the mean of the two middle values for an even count).
#[aggregate(name = "median_wasm")]
#[derive(Default)]
struct Median {
    /// Every value seen, as little-endian f64s.
    values: Vec<u8>,
}

impl Aggregate for Median {
    type Args<'a> = (f64,);
    type Output = Option<f64>;

    fn update(&mut self, (x,): (f64,)) {
        self.values.extend_from_slice(&x.to_le_bytes());
    }

    fn merge(&mut self, other: Self) {
        self.values.extend_from_slice(&other.values);
    }

    fn finish(&self) -> Option<f64> {
        let mut v: Vec<f64> = self
            .values
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
            .collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let mid = v.len() / 2;
        Some(if v.len() % 2 == 1 {
            v[mid]
        } else {
            (v[mid - 1] + v[mid]) / 2.0
        })
    }
}

/// HyperLogLog with 2^10 registers (standard error about 3.3%).
const HLL_BITS: u32 = 10;
const HLL_REGISTERS: usize = 1 << HLL_BITS;

#[aggregate]
#[derive(Default)]
struct HllDistinct {
    /// One byte per register; empty until the first value.
    registers: Vec<u8>,
}

fn mix(x: u64) -> u64 {
    // splitmix64's finalizer: every input bit affects every output bit.
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Aggregate for HllDistinct {
    type Args<'a> = (i64,);
    type Output = i64;

    fn update(&mut self, (x,): (i64,)) {
        if self.registers.is_empty() {
            self.registers = vec![0; HLL_REGISTERS];
        }
        let h = mix(x as u64);
        let index = (h >> (64 - HLL_BITS)) as usize;
        let rank = ((h << HLL_BITS) | (1 << (HLL_BITS - 1))).leading_zeros() as u8 + 1;
        let r = &mut self.registers[index];
        *r = (*r).max(rank);
    }

    fn merge(&mut self, other: Self) {
        if other.registers.len() != HLL_REGISTERS {
            return;
        }
        if self.registers.len() != HLL_REGISTERS {
            self.registers = other.registers;
            return;
        }
        for (a, b) in self.registers.iter_mut().zip(&other.registers) {
            *a = (*a).max(*b);
        }
    }

    fn finish(&self) -> i64 {
        if self.registers.is_empty() {
            return 0;
        }
        let m = HLL_REGISTERS as f64;
        let sum: f64 = self
            .registers
            .iter()
            .map(|&r| 2f64.powi(-i32::from(r)))
            .sum();
        let alpha = 0.7213 / (1.0 + 1.079 / m);
        let estimate = alpha * m * m / sum;
        let zeros = self.registers.iter().filter(|&&r| r == 0).count();
        let estimate = if estimate <= 2.5 * m && zeros > 0 {
            // Small cardinalities: linear counting is more accurate.
            m * (m / zeros as f64).ln()
        } else {
            estimate
        };
        estimate.round() as i64
    }
}

/// `sum(x * w) / sum(w)`, NULL when the weights sum to zero.
#[aggregate]
#[derive(Default)]
struct WeightedAvg {
    weighted: f64,
    weights: f64,
}

impl Aggregate for WeightedAvg {
    type Args<'a> = (f64, f64);
    type Output = Option<f64>;

    fn update(&mut self, (x, w): (f64, f64)) {
        self.weighted += x * w;
        self.weights += w;
    }

    fn merge(&mut self, other: Self) {
        self.weighted += other.weighted;
        self.weights += other.weights;
    }

    fn finish(&self) -> Option<f64> {
        (self.weights != 0.0).then(|| self.weighted / self.weights)
    }
}

/// The strings joined by the separator (the first row's); row order is unspecified,
/// as for any aggregate without ORDER BY.
#[aggregate]
#[derive(Default)]
struct StrJoin {
    joined: String,
    separator: String,
    n: u64,
}

impl Aggregate for StrJoin {
    type Args<'a> = (&'a str, &'a str);
    type Output = Option<String>;

    fn update(&mut self, (s, sep): (&str, &str)) {
        if self.n == 0 {
            self.separator = sep.to_string();
        } else {
            self.joined.push_str(sep);
        }
        self.joined.push_str(s);
        self.n += 1;
    }

    fn merge(&mut self, other: Self) {
        if other.n == 0 {
            return;
        }
        if self.n == 0 {
            *self = other;
            return;
        }
        self.joined.push_str(&self.separator);
        self.joined.push_str(&other.joined);
        self.n += other.n;
    }

    fn finish(&self) -> Option<String> {
        (self.n > 0).then(|| self.joined.clone())
    }
}

/// The text of the row with the largest value (ties: the smallest text).
#[aggregate]
#[derive(Default)]
struct ArgMax {
    best: String,
    value: f64,
    seen: bool,
}

impl ArgMax {
    fn offer(&mut self, text: &str, value: f64) {
        if !self.seen || value > self.value || (value == self.value && text < self.best.as_str()) {
            self.best = text.to_string();
            self.value = value;
            self.seen = true;
        }
    }
}

impl Aggregate for ArgMax {
    type Args<'a> = (&'a str, f64);
    type Output = Option<String>;

    fn update(&mut self, (text, value): (&str, f64)) {
        self.offer(text, value);
    }

    fn merge(&mut self, other: Self) {
        if other.seen {
            self.offer(&other.best, other.value);
        }
    }

    fn finish(&self) -> Option<String> {
        self.seen.then(|| self.best.clone())
    }
}

/// A bigint sum that can take rows back out: sliding window frames
/// (`ROWS BETWEEN 6 PRECEDING AND CURRENT ROW`) run on it.
#[aggregate]
#[derive(Default)]
struct MovingSum {
    sum: i64,
    n: u64,
}

impl Aggregate for MovingSum {
    type Args<'a> = (i64,);
    type Output = Option<i64>;
    const RETRACT: bool = true;

    fn update(&mut self, (x,): (i64,)) {
        self.sum = self.sum.wrapping_add(x);
        self.n += 1;
    }

    fn retract(&mut self, (x,): (i64,)) {
        self.sum = self.sum.wrapping_sub(x);
        self.n -= 1;
    }

    fn merge(&mut self, other: Self) {
        self.sum = self.sum.wrapping_add(other.sum);
        self.n += other.n;
    }

    fn finish(&self) -> Option<i64> {
        (self.n > 0).then_some(self.sum)
    }
}

/// A plain bigint sum (wrapping on overflow), NULL for no rows.
#[aggregate]
#[derive(Default)]
struct WasmSum {
    sum: i64,
    n: u64,
}

impl Aggregate for WasmSum {
    type Args<'a> = (i64,);
    type Output = Option<i64>;

    #[inline(always)]
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

/// The same sum against the batch-level API: the whole batch in one loop over
/// flat vectors of sums and counts.
#[derive(Default)]
struct SumBatch {
    sums: Vec<i64>,
    counts: Vec<u64>,
}

impl SumBatch {
    fn grow(&mut self, total: usize) {
        self.sums.resize(total.max(self.sums.len()), 0);
        self.counts.resize(total.max(self.counts.len()), 0);
    }

    fn emitted(&mut self, emit: Emit) -> (Vec<i64>, Vec<u64>) {
        (
            emit.take(&mut self.sums).to_vec(),
            emit.take(&mut self.counts).to_vec(),
        )
    }
}

impl GroupsAggregate for SumBatch {
    fn update(&mut self, args: &[Column], groups: &[u32], total: usize) -> Result<(), UdfError> {
        self.grow(total);
        let x = args
            .first()
            .ok_or_else(|| error("one argument expected"))?
            .reader::<i64>(groups.len())?;
        for (i, &g) in groups.iter().enumerate() {
            let g = g as usize;
            if g >= total {
                return Err(error("group index out of range"));
            }
            self.sums[g] = self.sums[g].wrapping_add(x.value(i));
            self.counts[g] += 1;
        }
        Ok(())
    }

    fn merge(&mut self, states: &[Column], groups: &[u32], total: usize) -> Result<(), UdfError> {
        self.grow(total);
        let [sums, counts] = states else {
            return Err(error("two state columns expected"));
        };
        let sums = sums.reader::<i64>(groups.len())?;
        let counts = counts.reader::<u64>(groups.len())?;
        for (i, &g) in groups.iter().enumerate() {
            let g = g as usize;
            if g >= total {
                return Err(error("group index out of range"));
            }
            self.sums[g] = self.sums[g].wrapping_add(sums.value(i));
            self.counts[g] += counts.value(i);
        }
        Ok(())
    }

    fn state(&mut self, emit: Emit) -> Result<Vec<Column>, UdfError> {
        let (sums, counts) = self.emitted(emit);
        Ok(vec![
            Output::from_values(sums.len(), sums.into_iter()).finish()?,
            Output::from_values(counts.len(), counts.into_iter()).finish()?,
        ])
    }

    fn evaluate(&mut self, emit: Emit) -> Result<Column, UdfError> {
        let (sums, counts) = self.emitted(emit);
        let mut out = Output::<i64>::with_capacity(sums.len());
        for (s, n) in sums.into_iter().zip(counts) {
            out.push_option((n > 0).then_some(s));
        }
        out.finish()
    }
}

mod wasm_sum_batch {
    use super::*;

    pub const FUNCTION: Function = Function::Aggregate(AggregateFunction {
        name: "wasm_sum_batch",
        params: || vec![i64::data_type()],
        returns: i64::data_type,
        state: || vec![i64::data_type(), u64::data_type()],
        strict: || true,
        retract: false,
        volatility: Volatility::Immutable,
        new: || Box::new(SumBatch::default()),
    });
}

wasmudf::export!(
    geo_mean,
    median,
    hll_distinct,
    weighted_avg,
    str_join,
    arg_max,
    moving_sum,
    wasm_sum,
    wasm_sum_batch
);
