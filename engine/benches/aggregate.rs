//! Grouped aggregate benchmark: `SELECT g, f(x) FROM t GROUP BY g` over 10M rows with
//! 10, 10k and 1M groups, 2 partitions (partial + final aggregation), for
//!
//! - DataFusion's built-in `sum`;
//! - a native Rust `GroupsAccumulator` with the same semantics as the Wasm sums;
//! - `wasm_sum` (SDK per-group API) and `wasm_sum_batch` (SDK batch API);
//! - a per-row-call Wasm accumulator: the same guest, called once per row, the way
//!   systems without vectorized aggregates call theirs (on a tenth of the rows, scaled).
//!
//! `cargo bench -p wasmudf-engine --bench aggregate` (set `ROWS=1000000` for a quicker run).

// A test or bench harness: an unwrap that fails is a failed run, not a crashed server.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::arrow::array::{Array, ArrayRef, BooleanArray, Int64Array, UInt64Array};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::Result as DfResult;
use datafusion::datasource::MemTable;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, EmitTo, GroupsAccumulator, Signature, Volatility,
};
use datafusion::prelude::{SessionConfig, SessionContext};
use wasmudf_engine::{Engine, EngineConfig, UdfOptions};

const BATCH: usize = 8192;

/// Native Rust sum with per-group counts (NULL for a group with no rows): what the
/// Wasm sums compute, written directly against DataFusion.
#[derive(Debug, PartialEq, Eq, Hash)]
struct NativeSum {
    signature: Signature,
}

impl AggregateUDFImpl for NativeSum {
    fn name(&self) -> &str {
        "native_sum"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Int64)
    }
    fn state_fields(&self, _: StateFieldsArgs) -> DfResult<Vec<FieldRef>> {
        Ok(vec![
            Arc::new(Field::new("sum", DataType::Int64, true)),
            Arc::new(Field::new("n", DataType::UInt64, true)),
        ])
    }
    fn accumulator(&self, _: AccumulatorArgs) -> DfResult<Box<dyn Accumulator>> {
        unimplemented!("only the grouped form is benchmarked")
    }
    fn groups_accumulator_supported(&self, _: AccumulatorArgs) -> bool {
        true
    }
    fn create_groups_accumulator(
        &self,
        _: AccumulatorArgs,
    ) -> DfResult<Box<dyn GroupsAccumulator>> {
        Ok(Box::new(NativeSumGroups::default()))
    }
}

#[derive(Default)]
struct NativeSumGroups {
    sums: Vec<i64>,
    counts: Vec<u64>,
}

impl GroupsAccumulator for NativeSumGroups {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        groups: &[usize],
        _filter: Option<&BooleanArray>,
        total: usize,
    ) -> DfResult<()> {
        self.sums.resize(total, 0);
        self.counts.resize(total, 0);
        let x = values[0].as_any().downcast_ref::<Int64Array>().unwrap();
        for (&g, &v) in groups.iter().zip(x.values()) {
            self.sums[g] = self.sums[g].wrapping_add(v);
            self.counts[g] += 1;
        }
        Ok(())
    }
    fn merge_batch(&mut self, values: &[ArrayRef], groups: &[usize], total: usize) -> DfResult<()> {
        self.sums.resize(total, 0);
        self.counts.resize(total, 0);
        let s = values[0].as_any().downcast_ref::<Int64Array>().unwrap();
        let n = values[1].as_any().downcast_ref::<UInt64Array>().unwrap();
        for ((&g, &s), &n) in groups.iter().zip(s.values()).zip(n.values()) {
            self.sums[g] = self.sums[g].wrapping_add(s);
            self.counts[g] += n;
        }
        Ok(())
    }
    fn evaluate(&mut self, emit: EmitTo) -> DfResult<ArrayRef> {
        let sums = emit.take_needed(&mut self.sums);
        let counts = emit.take_needed(&mut self.counts);
        Ok(Arc::new(Int64Array::from_iter(
            sums.into_iter()
                .zip(counts)
                .map(|(s, n)| (n > 0).then_some(s)),
        )))
    }
    fn state(&mut self, emit: EmitTo) -> DfResult<Vec<ArrayRef>> {
        let sums = emit.take_needed(&mut self.sums);
        let counts = emit.take_needed(&mut self.counts);
        Ok(vec![
            Arc::new(Int64Array::from(sums)),
            Arc::new(UInt64Array::from(counts)),
        ])
    }
    fn size(&self) -> usize {
        self.sums.capacity() * 8 + self.counts.capacity() * 8
    }
    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        filter: Option<&BooleanArray>,
    ) -> DfResult<Vec<ArrayRef>> {
        let x = values[0].as_any().downcast_ref::<Int64Array>().unwrap();
        let kept = |i: usize| filter.is_none_or(|f| f.is_valid(i) && f.value(i));
        let sums =
            Int64Array::from_iter_values(
                (0..x.len()).map(|i| if kept(i) { x.value(i) } else { 0 }),
            );
        let counts = UInt64Array::from_iter_values((0..x.len()).map(|i| kept(i) as u64));
        Ok(vec![Arc::new(sums), Arc::new(counts)])
    }
}

/// The Wasm `wasm_sum`, but fed one row per guest call.
#[derive(Debug)]
struct PerRow {
    inner: AggregateUDF,
}

impl PartialEq for PerRow {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl Eq for PerRow {}
impl std::hash::Hash for PerRow {
    fn hash<H: std::hash::Hasher>(&self, _: &mut H) {}
}

impl AggregateUDFImpl for PerRow {
    fn name(&self) -> &str {
        "per_row_sum"
    }
    fn signature(&self) -> &Signature {
        self.inner.signature()
    }
    fn return_type(&self, t: &[DataType]) -> DfResult<DataType> {
        self.inner.return_type(t)
    }
    fn coerce_types(&self, t: &[DataType]) -> DfResult<Vec<DataType>> {
        self.inner.inner().coerce_types(t)
    }
    fn state_fields(&self, args: StateFieldsArgs) -> DfResult<Vec<FieldRef>> {
        self.inner.state_fields(args)
    }
    fn accumulator(&self, args: AccumulatorArgs) -> DfResult<Box<dyn Accumulator>> {
        self.inner.accumulator(args)
    }
    fn groups_accumulator_supported(&self, _: AccumulatorArgs) -> bool {
        true
    }
    fn create_groups_accumulator(
        &self,
        args: AccumulatorArgs,
    ) -> DfResult<Box<dyn GroupsAccumulator>> {
        Ok(Box::new(PerRowGroups(
            self.inner.create_groups_accumulator(args)?,
        )))
    }
}

struct PerRowGroups(Box<dyn GroupsAccumulator>);

impl GroupsAccumulator for PerRowGroups {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        groups: &[usize],
        filter: Option<&BooleanArray>,
        total: usize,
    ) -> DfResult<()> {
        for i in 0..groups.len() {
            let row: Vec<ArrayRef> = values.iter().map(|v| v.slice(i, 1)).collect();
            self.0
                .update_batch(&row, &groups[i..i + 1], filter, total)?;
        }
        Ok(())
    }
    fn merge_batch(&mut self, values: &[ArrayRef], groups: &[usize], total: usize) -> DfResult<()> {
        self.0.merge_batch(values, groups, total)
    }
    fn evaluate(&mut self, emit: EmitTo) -> DfResult<ArrayRef> {
        self.0.evaluate(emit)
    }
    fn state(&mut self, emit: EmitTo) -> DfResult<Vec<ArrayRef>> {
        self.0.state(emit)
    }
    fn size(&self) -> usize {
        self.0.size()
    }
    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        filter: Option<&BooleanArray>,
    ) -> DfResult<Vec<ArrayRef>> {
        self.0.convert_to_state(values, filter)
    }
}

fn table(rows: usize, groups: usize) -> Arc<MemTable> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("g", DataType::Int64, false),
        Field::new("x", DataType::Int64, false),
    ]));
    let mut partitions = vec![Vec::new(), Vec::new()];
    let mut start = 0;
    while start < rows {
        let n = BATCH.min(rows - start);
        // A multiplicative hash spreads the groups over the batches as real keys do.
        let g = Int64Array::from_iter_values(
            (start..start + n)
                .map(|i| ((i as u64).wrapping_mul(0x9e37_79b9) % groups as u64) as i64),
        );
        let x = Int64Array::from_iter_values((start..start + n).map(|i| (i % 1000) as i64));
        let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(g), Arc::new(x)]).unwrap();
        partitions[(start / BATCH) % 2].push(batch);
        start += n;
    }
    Arc::new(MemTable::try_new(schema, partitions).unwrap())
}

async fn run(engine: &Engine, ctx: &SessionContext, sql: &str) -> Duration {
    let t = Instant::now();
    let batches = engine
        .query(ctx)
        .sql(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .collect()
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    std::hint::black_box(batches);
    t.elapsed()
}

async fn median_of(n: usize, engine: &Engine, ctx: &SessionContext, sql: &str) -> Duration {
    run(engine, ctx, sql).await; // warm-up
    let mut samples = Vec::new();
    for _ in 0..n {
        samples.push(run(engine, ctx, sql).await);
    }
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn ratio(a: Duration, b: Duration) -> String {
    format!("{:.2}×", a.as_secs_f64() / b.as_secs_f64())
}

#[tokio::main]
async fn main() {
    let rows: usize = std::env::var("ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000);
    let engine = Engine::new(EngineConfig::default()).unwrap();
    let stats = engine
        .load_component(&std::fs::read(wasmudf_udfs::STATS).unwrap())
        .unwrap();
    let ctx = SessionContext::new_with_config(
        SessionConfig::new()
            .with_target_partitions(2)
            .with_batch_size(BATCH),
    );
    ctx.register_udaf(AggregateUDF::new_from_impl(NativeSum {
        signature: Signature::exact(vec![DataType::Int64], Volatility::Immutable),
    }));
    for f in ["wasm_sum", "wasm_sum_batch"] {
        ctx.register_udaf(stats.aggregate_udf(f, &UdfOptions::default()).unwrap());
    }
    ctx.register_udaf(AggregateUDF::new_from_impl(PerRow {
        inner: stats
            .aggregate_udf("wasm_sum", &UdfOptions::default())
            .unwrap(),
    }));

    println!(
        "## `SELECT g, f(x) FROM t GROUP BY g`, {rows} rows, {BATCH}-row batches, 2 partitions (median of 5)\n"
    );
    println!("| groups | built-in sum | native GroupsAccumulator | wasm_sum (per-group SDK) | wasm_sum_batch (batch SDK) | per-row-call Wasm | wasm_sum/built-in | wasm_sum_batch/built-in | wasm_sum/native | per-row/built-in |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for groups in [10, 10_000, 1_000_000] {
        ctx.deregister_table("t").unwrap();
        ctx.register_table("t", table(rows, groups)).unwrap();
        let q = |f: &str| format!("SELECT g, {f}(x) FROM t GROUP BY g");
        let builtin = median_of(5, &engine, &ctx, &q("sum")).await;
        let native = median_of(5, &engine, &ctx, &q("native_sum")).await;
        let wasm = median_of(5, &engine, &ctx, &q("wasm_sum")).await;
        let batch = median_of(5, &engine, &ctx, &q("wasm_sum_batch")).await;
        // Per-row calls on a tenth of the rows, scaled to the whole table.
        let tenth = format!(
            "SELECT g, per_row_sum(x) FROM (SELECT * FROM t LIMIT {}) GROUP BY g",
            rows / 10
        );
        let per_row = median_of(1, &engine, &ctx, &tenth).await * 10;
        println!(
            "| {groups} | {} | {} | {} | {} | {} (scaled) | {} | {} | {} | {} |",
            ms(builtin),
            ms(native),
            ms(wasm),
            ms(batch),
            ms(per_row),
            ratio(wasm, builtin),
            ratio(batch, builtin),
            ratio(wasm, native),
            ratio(per_row, builtin),
        );
    }
}
