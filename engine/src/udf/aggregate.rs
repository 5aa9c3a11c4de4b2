//! Wasm aggregate functions as DataFusion aggregate UDFs.
//!
//! Every accumulator owns one guest instance holding one `groups` resource: the
//! states of all its groups live in guest memory (so they count against the memory
//! limit), and each batch is one guest call for every group at once, the shape of
//! DataFusion's `GroupsAccumulator`. The same resource with a single group serves the
//! plain (`Accumulator`) forms: aggregates without GROUP BY and window frames.
//! DISTINCT is done by the host: it collects the distinct values (merged across
//! partitions as a list) and feeds them to the guest once, at the end.

use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use datafusion::arrow::array::{new_empty_array, Array, ArrayRef, AsArray, BooleanArray};
use datafusion::arrow::buffer::BooleanBuffer;
use datafusion::arrow::compute::{cast, filter};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{Result as DfResult, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::{format_state_name, AggregateOrderSensitivity};
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, EmitTo as DfEmitTo, GroupsAccumulator, Signature, Volatility,
};
use parking_lot::Mutex;
use wasmtime::component::{ComponentExportIndex, ResourceAny};

use crate::error::{guest_text, Error};
use crate::udf::scalar::{next_udf_id, Overload, OverloadSet};
use crate::udf::scope::{GuestActivity, QueryScope};
use crate::udf::settings::WasmSettings;
use crate::udf::stats::Meter;
use crate::wasm::abi::{ColumnRef, EmitTo, GuestError};
use crate::wasm::aggregate_exports::{
    AggregateExports, EvaluateResult, RowsCall, StateResult, UnitResult,
};
use crate::wasm::convert::{output_array, ArgColumn};
use crate::wasm::instance::{CallBudget, GuestInstance};
use crate::wasm::limits::Limits;
use crate::wasm::signature::{AggregateShape, NullHandling};

/// The query an aggregate runs for: DataFusion hands accumulators no configuration,
/// so [`BindWasmFunctions`](crate::udf::bind::BindWasmFunctions) binds each Wasm aggregate of a plan to the query's scope
/// (for cancellation) and the session's `wasm.*` settings (for limits).
#[derive(Clone, Debug, Default)]
pub(crate) struct Binding {
    pub(crate) scope: Option<QueryScope>,
    pub(crate) settings: Option<WasmSettings>,
}

impl Binding {
    fn cancel(&self) -> Option<&Arc<AtomicBool>> {
        self.scope.as_ref().and_then(|s| s.cancel.as_ref())
    }
}

/// One SQL aggregate name: its overloads, bound to a query or not.
#[derive(Debug)]
pub(crate) struct WasmAggregateUdf {
    id: u64,
    signature: Signature,
    overloads: Arc<OverloadSet>,
    binding: Binding,
}

impl PartialEq for WasmAggregateUdf {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id && self.query_id() == other.query_id()
    }
}

impl Eq for WasmAggregateUdf {}

impl Hash for WasmAggregateUdf {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.id.hash(state);
        self.query_id().hash(state);
    }
}

impl WasmAggregateUdf {
    /// An aggregate over `overloads` (at least one, all named `name`).
    pub(crate) fn new(name: &str, overloads: Vec<Arc<Overload>>) -> Self {
        WasmAggregateUdf {
            id: next_udf_id(),
            // An aggregate is never folded at planning time, so the declared volatility
            // cannot run guest code outside the executor (unlike a scalar call).
            signature: Signature::user_defined(Volatility::Immutable),
            overloads: Arc::new(OverloadSet {
                name: name.to_string(),
                overloads,
            }),
            binding: Binding::default(),
        }
    }

    /// The same aggregate, running for the query `binding` describes.
    pub(crate) fn bind(&self, binding: Binding) -> Self {
        WasmAggregateUdf {
            id: self.id,
            signature: self.signature.clone(),
            overloads: self.overloads.clone(),
            binding,
        }
    }

    fn query_id(&self) -> Option<u64> {
        self.binding.scope.as_ref().map(QueryScope::id)
    }

    /// The overload an accumulator runs, refusing what the host cannot honour.
    fn overload_for(&self, args: &AccumulatorArgs) -> DfResult<&Arc<Overload>> {
        let overload = self.overload_of(args.expr_fields)?;
        if !args.order_bys.is_empty() {
            // Partial states merge in any order, so an order inside the call could not
            // be kept; silently ignoring it would give wrong results.
            return Err(Error::NotSupported(format!(
                "ORDER BY inside a call of the Wasm aggregate {} is not supported",
                overload.name
            ))
            .into());
        }
        Ok(overload)
    }

    fn overload_of(&self, fields: &[FieldRef]) -> DfResult<&Arc<Overload>> {
        let types: Vec<DataType> = fields.iter().map(|f| f.data_type().clone()).collect();
        self.overloads.planned(&types)
    }

    fn groups(&self, overload: &Arc<Overload>) -> Result<GuestGroups, Error> {
        GuestGroups::new(overload.clone(), &self.binding)
    }

    fn shape(overload: &Overload) -> Result<&AggregateShape, Error> {
        overload.module.0.functions[overload.index as usize]
            .aggregate
            .as_ref()
            .ok_or_else(|| Error::Runtime(format!("{} is not an aggregate", overload.name)))
    }
}

impl AggregateUDFImpl for WasmAggregateUdf {
    fn name(&self) -> &str {
        &self.overloads.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(self.overloads.planned(arg_types)?.returns.clone())
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> DfResult<Vec<DataType>> {
        Ok(self.overloads.resolve(arg_types)?.params.clone())
    }

    fn is_nullable(&self) -> bool {
        true
    }

    fn order_sensitivity(&self) -> AggregateOrderSensitivity {
        // Rows reach an aggregate in no particular order (as in PostgreSQL without an
        // ORDER BY inside the call), and partial states merge in any order.
        AggregateOrderSensitivity::Insensitive
    }

    fn state_fields(&self, args: StateFieldsArgs) -> DfResult<Vec<FieldRef>> {
        let overload = self.overload_of(args.input_fields)?;
        if args.is_distinct {
            let item = Field::new_list_field(overload.params[0].clone(), true);
            return Ok(vec![Arc::new(Field::new_list(
                format_state_name(args.name, "distinct"),
                item,
                true,
            ))]);
        }
        let shape = Self::shape(overload)?;
        Ok(shape
            .state
            .iter()
            .enumerate()
            .map(|(i, dt)| {
                Arc::new(Field::new(
                    format_state_name(args.name, &format!("state{i}")),
                    dt.clone(),
                    true,
                ))
            })
            .collect())
    }

    fn accumulator(&self, args: AccumulatorArgs) -> DfResult<Box<dyn Accumulator>> {
        let overload = self.overload_for(&args)?;
        if args.is_distinct {
            if overload.params.len() != 1 {
                return Err(Error::NotSupported(format!(
                    "{}(DISTINCT ...) is supported for one argument only",
                    overload.name
                ))
                .into());
            }
            return Ok(Box::new(DistinctAccumulator {
                overload: overload.clone(),
                binding: self.binding.clone(),
                values: HashSet::new(),
            }));
        }
        Ok(Box::new(SingleGroup(RowFeeder::new(
            self.groups(overload)?,
        ))))
    }

    fn groups_accumulator_supported(&self, args: AccumulatorArgs) -> bool {
        // DISTINCT, and ORDER BY (refused), take the `accumulator` path.
        !args.is_distinct && args.order_bys.is_empty()
    }

    fn create_groups_accumulator(
        &self,
        args: AccumulatorArgs,
    ) -> DfResult<Box<dyn GroupsAccumulator>> {
        let overload = self.overload_for(&args)?;
        Ok(Box::new(Grouped {
            feeder: RowFeeder::new(self.groups(overload)?),
            converter: Mutex::new(None),
        }))
    }

    fn create_sliding_accumulator(&self, args: AccumulatorArgs) -> DfResult<Box<dyn Accumulator>> {
        let overload = self.overload_for(&args)?;
        if args.is_distinct || !Self::shape(overload)?.retract {
            return Err(Error::NotSupported(format!(
                "aggregate {} cannot run over a sliding window frame: {}; use a frame that starts at UNBOUNDED PRECEDING",
                overload.name,
                if args.is_distinct {
                    "DISTINCT cannot retract rows"
                } else {
                    "its component does not implement retract"
                }
            ))
            .into());
        }
        self.accumulator(args)
    }
}

/// Which of the row-taking calls.
#[derive(Clone, Copy)]
enum RowsOp {
    Update,
    Retract,
    Merge,
}

/// One guest instance and the `groups` resource it holds.
struct GuestGroups {
    overload: Arc<Overload>,
    exports: AggregateExports,
    /// `None` once a trap or limit poisoned the instance.
    instance: Option<GuestInstance>,
    handle: ResourceAny,
    limits: Limits,
    cancel: Option<Arc<AtomicBool>>,
    /// The query's current guest call, for `pg_stat_activity`.
    activity: Option<Arc<GuestActivity>>,
    /// Groups the guest holds.
    groups: usize,
}

impl std::fmt::Debug for GuestGroups {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "GuestGroups({}, {} groups)",
            self.overload.name, self.groups
        )
    }
}

impl GuestGroups {
    fn new(overload: Arc<Overload>, binding: &Binding) -> Result<Self, Error> {
        let limits = overload.limits(binding.settings.as_ref())?;
        let cancel = binding.cancel().cloned();
        let activity = binding.scope.as_ref().map(|s| s.activity.clone());
        Self::with_limits(overload, limits, cancel, activity)
    }

    /// Another, empty set of groups of the same aggregate, in its own instance.
    fn sibling(&self) -> Result<Self, Error> {
        Self::with_limits(
            self.overload.clone(),
            self.limits,
            self.cancel.clone(),
            self.activity.clone(),
        )
    }

    fn with_limits(
        overload: Arc<Overload>,
        limits: Limits,
        cancel: Option<Arc<AtomicBool>>,
        activity: Option<Arc<GuestActivity>>,
    ) -> Result<Self, Error> {
        let made = Self::instantiate(&overload, &limits, cancel.as_ref());
        if let Err(e) = &made {
            overload.stats.record_error(e);
        }
        let (instance, exports, handle) = made?;
        overload
            .stats
            .record_instance(false, instance.memory_used());
        Ok(GuestGroups {
            overload,
            exports,
            instance: Some(instance),
            handle,
            limits,
            cancel,
            activity,
            groups: 0,
        })
    }

    /// A new instance of the aggregate's component holding an empty `groups` resource.
    fn instantiate(
        overload: &Overload,
        limits: &Limits,
        cancel: Option<&Arc<AtomicBool>>,
    ) -> Result<(GuestInstance, AggregateExports, ResourceAny), Error> {
        check_canceled(cancel, &overload.name)?;
        let mut instance = overload.module.0.instantiate(limits, &overload.name)?;
        let exports = instance.exports().aggregate.ok_or_else(|| {
            Error::Runtime(format!(
                "{}: the component has no aggregate interface",
                overload.name
            ))
        })?;
        let budget = CallBudget {
            limits,
            cancel,
            started: Instant::now(),
        };
        let (handle,) = instance.invoke::<(u32,), (ResourceAny,)>(
            exports.new,
            (overload.index,),
            budget,
            &overload.name,
        )?;
        Ok((instance, exports, handle))
    }

    fn name(&self) -> &str {
        &self.overload.name
    }

    /// Runs one guest call over `rows` rows; a trap or limit drops the (now poisoned)
    /// instance.
    fn invoke<P, R>(
        &mut self,
        export: ComponentExportIndex,
        params: P,
        rows: usize,
    ) -> Result<R, Error>
    where
        P: wasmtime::component::ComponentNamedList + wasmtime::component::Lower,
        R: wasmtime::component::ComponentNamedList + wasmtime::component::Lift,
    {
        check_canceled(self.cancel.as_ref(), &self.overload.name)?;
        let instance = self.instance.as_mut().ok_or_else(|| {
            Error::Runtime(format!(
                "{}: the aggregate's instance was lost to an earlier error",
                self.overload.name
            ))
        })?;
        let stats = &self.overload.stats;
        let meter = Meter::start(stats, self.activity.as_deref());
        let budget = CallBudget {
            limits: &self.limits,
            cancel: self.cancel.as_ref(),
            started: meter.started(),
        };
        let result = instance.invoke(export, params, budget, &self.overload.name);
        meter.stop(rows as u64, instance.fuel_consumed(&self.limits));
        stats.record_memory(instance.memory_used());
        if let Err(e) = &result {
            stats.record_error(e);
            self.instance = None;
        }
        result
    }

    /// The guest refusing its input, recorded in the function's figures.
    fn guest_error(&self, e: GuestError) -> Error {
        let error = Error::Guest {
            function: self.name().to_string(),
            message: guest_text(&e.message),
            row: e.row,
        };
        self.overload.stats.record_error(&error);
        error
    }

    /// Output the host refuses, recorded in the function's figures.
    fn invalid_output(&self, reason: String) -> Error {
        let error = Error::InvalidOutput {
            function: self.name().to_string(),
            reason,
        };
        self.overload.stats.record_error(&error);
        error
    }

    /// Sends `columns` (already filtered) with their group indices.
    fn rows(
        &mut self,
        op: RowsOp,
        columns: &[ArrayRef],
        groups: &[u32],
        total: usize,
    ) -> Result<(), Error> {
        let prepared = columns
            .iter()
            .map(|a| ArgColumn::new(a.as_ref()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|reason| Error::Runtime(format!("function {}: {reason}", self.name())))?;
        let wire: Vec<ColumnRef<'_>> = prepared.iter().map(ArgColumn::as_wire).collect();
        let total32 = u32::try_from(total)
            .map_err(|_| Error::Runtime(format!("{}: too many groups", self.name())))?;
        let export = match op {
            RowsOp::Update => self.exports.update,
            RowsOp::Retract => self.exports.retract,
            RowsOp::Merge => self.exports.merge,
        };
        let handle = self.handle;
        let (result,) = self.invoke::<RowsCall<'_>, UnitResult>(
            export,
            (handle, wire.as_slice(), groups, total32),
            groups.len(),
        )?;
        result.map_err(|e| self.guest_error(e))?;
        self.groups = self.groups.max(total);
        Ok(())
    }

    /// Makes sure the guest holds at least `total` groups (an aggregate over no rows
    /// still has its one group, whose value is the aggregate of nothing).
    fn ensure_groups(&mut self, total: usize) -> Result<(), Error> {
        if self.groups >= total {
            return Ok(());
        }
        let empty: Vec<ArrayRef> = self.overload.params.iter().map(new_empty_array).collect();
        self.rows(RowsOp::Update, &empty, &[], total)
    }

    /// The wire form of `emit` and how many groups it covers.
    fn emit(&self, emit: DfEmitTo, keep: bool) -> Result<(EmitTo, usize), Error> {
        match emit {
            _ if keep => Ok((EmitTo::PeekAll, self.groups)),
            DfEmitTo::All => Ok((EmitTo::All, self.groups)),
            DfEmitTo::First(n) if n <= self.groups => {
                let n32 = u32::try_from(n)
                    .map_err(|_| Error::Runtime(format!("{}: too many groups", self.name())))?;
                Ok((EmitTo::First(n32), n))
            }
            DfEmitTo::First(n) => Err(Error::Runtime(format!(
                "{}: asked for {n} groups of {}",
                self.name(),
                self.groups
            ))),
        }
    }

    /// Final values of the groups `emit` selects (kept in place if `keep`).
    fn evaluate(&mut self, emit: DfEmitTo, keep: bool) -> Result<ArrayRef, Error> {
        let (wire, n) = self.emit(emit, keep)?;
        let handle = self.handle;
        let (result,) = self.invoke::<(ResourceAny, EmitTo), EvaluateResult>(
            self.exports.evaluate,
            (handle, wire),
            0,
        )?;
        let out = result.map_err(|e| self.guest_error(e))?;
        let array = output_array(out, n, &self.overload.returns, None)
            .map_err(|reason| self.invalid_output(reason))?;
        if !keep {
            self.groups -= n;
        }
        Ok(array)
    }

    /// Intermediate states of the groups `emit` selects (kept in place if `keep`).
    fn state(&mut self, emit: DfEmitTo, keep: bool) -> Result<Vec<ArrayRef>, Error> {
        let (wire, n) = self.emit(emit, keep)?;
        let handle = self.handle;
        let (result,) = self.invoke::<(ResourceAny, EmitTo), StateResult>(
            self.exports.state,
            (handle, wire),
            0,
        )?;
        let columns = result.map_err(|e| self.guest_error(e))?;
        let declared = &WasmAggregateUdf::shape(&self.overload)?.state;
        if columns.len() != declared.len() {
            return Err(self.invalid_output(format!(
                "returned {} state columns, {} declared",
                columns.len(),
                declared.len()
            )));
        }
        let arrays = columns
            .into_iter()
            .zip(declared)
            .map(|(c, dt)| output_array(c, n, dt, None))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|reason| self.invalid_output(format!("state: {reason}")))?;
        if !keep {
            self.groups -= n;
        }
        Ok(arrays)
    }

    fn size(&self) -> usize {
        self.instance
            .as_ref()
            .map_or(0, |i| i.memory_used() as usize)
            + size_of::<Self>()
    }
}

fn check_canceled(cancel: Option<&Arc<AtomicBool>>, function: &str) -> Result<(), Error> {
    if cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
        return Err(Error::Canceled {
            function: function.to_string(),
        });
    }
    Ok(())
}

/// Feeds batches of rows to a [`GuestGroups`], applying FILTER and strictness.
#[derive(Debug)]
struct RowFeeder {
    groups: GuestGroups,
    strict: bool,
}

impl RowFeeder {
    fn new(groups: GuestGroups) -> Self {
        let strict = groups.overload.null_handling == NullHandling::Strict;
        RowFeeder { groups, strict }
    }

    /// Sends the rows of `values` that FILTER keeps (and, for input rows of a strict
    /// aggregate, that have no null argument) to their groups.
    fn feed(
        &mut self,
        op: RowsOp,
        values: &[ArrayRef],
        rows: usize,
        group_of: impl Fn(usize) -> usize,
        opt_filter: Option<&BooleanArray>,
        total: usize,
    ) -> DfResult<()> {
        let skip_nulls = self.strict && !matches!(op, RowsOp::Merge);
        let declared: &[DataType] = match op {
            RowsOp::Merge => &WasmAggregateUdf::shape(&self.groups.overload)?.state,
            _ => &self.groups.overload.params,
        };
        let mut columns = Vec::with_capacity(values.len());
        for (v, dt) in values.iter().zip(declared) {
            columns.push(if v.data_type() == dt {
                v.clone()
            } else {
                cast(v, dt)?
            });
        }
        let keep = kept_rows(&columns, opt_filter, skip_nulls);
        let groups: Vec<u32> = match &keep {
            None => (0..rows).map(|i| group_of(i) as u32).collect(),
            Some(mask) => mask.set_indices().map(|i| group_of(i) as u32).collect(),
        };
        if let Some(mask) = keep {
            let mask = BooleanArray::new(mask, None);
            columns = columns
                .iter()
                .map(|c| filter(c, &mask))
                .collect::<Result<_, _>>()?;
        }
        Ok(self.groups.rows(op, &columns, &groups, total)?)
    }
}

/// The rows to pass on, or `None` for all of them.
fn kept_rows(
    columns: &[ArrayRef],
    opt_filter: Option<&BooleanArray>,
    skip_nulls: bool,
) -> Option<BooleanBuffer> {
    let mut keep: Option<BooleanBuffer> = opt_filter.map(|f| match f.nulls() {
        Some(n) => f.values() & n.inner(),
        None => f.values().clone(),
    });
    if skip_nulls {
        for c in columns {
            if let Some(n) = c.logical_nulls() {
                keep = Some(match keep {
                    Some(k) => &k & n.inner(),
                    None => n.inner().clone(),
                });
            }
        }
    }
    keep.filter(|k| k.count_set_bits() != k.len())
}

/// GROUP BY: every group of a partition in one guest resource.
#[derive(Debug)]
struct Grouped {
    feeder: RowFeeder,
    /// Turns rows straight into states when DataFusion skips partial aggregation
    /// (high-cardinality keys); its own instance, made at the first such batch.
    converter: Mutex<Option<RowFeeder>>,
}

impl GroupsAccumulator for Grouped {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> DfResult<()> {
        self.feeder.feed(
            RowsOp::Update,
            values,
            group_indices.len(),
            |i| group_indices[i],
            opt_filter,
            total_num_groups,
        )
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> DfResult<()> {
        self.feeder.feed(
            RowsOp::Merge,
            values,
            group_indices.len(),
            |i| group_indices[i],
            None,
            total_num_groups,
        )
    }

    /// Each row becomes the state of a group of its own (a group whose row FILTER or
    /// strictness drops stays empty): one update and one state call per batch.
    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> DfResult<Vec<ArrayRef>> {
        let mut converter = self.converter.lock();
        let converter = match &mut *converter {
            Some(c) => c,
            empty => empty.insert(RowFeeder::new(self.feeder.groups.sibling()?)),
        };
        let rows = values.first().map_or(0, |v| v.len());
        // `total = rows`: every row has its group even if FILTER drops the row.
        converter.feed(RowsOp::Update, values, rows, |i| i, opt_filter, rows)?;
        Ok(converter.groups.state(DfEmitTo::All, false)?)
    }

    fn evaluate(&mut self, emit_to: DfEmitTo) -> DfResult<ArrayRef> {
        Ok(self.feeder.groups.evaluate(emit_to, false)?)
    }

    fn state(&mut self, emit_to: DfEmitTo) -> DfResult<Vec<ArrayRef>> {
        Ok(self.feeder.groups.state(emit_to, false)?)
    }

    fn size(&self) -> usize {
        self.feeder.groups.size()
            + self
                .converter
                .lock()
                .as_ref()
                .map_or(0, |c| c.groups.size())
    }
}

/// No GROUP BY, and window frames: one group, evaluated in place (a window evaluates
/// its frame again after every move).
#[derive(Debug)]
struct SingleGroup(RowFeeder);

impl SingleGroup {
    fn feed(&mut self, op: RowsOp, values: &[ArrayRef]) -> DfResult<()> {
        let rows = values.first().map_or(0, |v| v.len());
        self.0.feed(op, values, rows, |_| 0, None, 1)
    }
}

impl Accumulator for SingleGroup {
    fn update_batch(&mut self, values: &[ArrayRef]) -> DfResult<()> {
        self.feed(RowsOp::Update, values)
    }

    fn retract_batch(&mut self, values: &[ArrayRef]) -> DfResult<()> {
        self.feed(RowsOp::Retract, values)
    }

    fn supports_retract_batch(&self) -> bool {
        WasmAggregateUdf::shape(&self.0.groups.overload).is_ok_and(|s| s.retract)
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> DfResult<()> {
        self.feed(RowsOp::Merge, states)
    }

    fn evaluate(&mut self) -> DfResult<ScalarValue> {
        let groups = &mut self.0.groups;
        groups.ensure_groups(1)?;
        let out = groups.evaluate(DfEmitTo::All, true)?;
        ScalarValue::try_from_array(&out, 0)
    }

    fn state(&mut self) -> DfResult<Vec<ScalarValue>> {
        let groups = &mut self.0.groups;
        groups.ensure_groups(1)?;
        groups
            .state(DfEmitTo::All, true)?
            .iter()
            .map(|a| ScalarValue::try_from_array(a, 0))
            .collect()
    }

    fn size(&self) -> usize {
        self.0.groups.size()
    }
}

/// `f(DISTINCT x)`: the host keeps the distinct values (the partial state is their
/// list) and runs the guest over them once, at evaluation.
#[derive(Debug)]
struct DistinctAccumulator {
    overload: Arc<Overload>,
    binding: Binding,
    values: HashSet<ScalarValue>,
}

impl DistinctAccumulator {
    fn insert_all(&mut self, array: &ArrayRef, skip_nulls: bool) -> DfResult<()> {
        for i in 0..array.len() {
            if skip_nulls && array.is_null(i) {
                continue;
            }
            self.values.insert(ScalarValue::try_from_array(array, i)?);
        }
        Ok(())
    }
}

impl Accumulator for DistinctAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> DfResult<()> {
        let declared = &self.overload.params[0];
        let column = match values.first() {
            Some(v) if v.data_type() == declared => v.clone(),
            Some(v) => cast(v, declared)?,
            None => return Ok(()),
        };
        let strict = self.overload.null_handling == NullHandling::Strict;
        self.insert_all(&column, strict)
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> DfResult<()> {
        let Some(lists) = states.first() else {
            return Ok(());
        };
        let lists = lists.as_list::<i32>();
        for i in 0..lists.len() {
            if lists.is_valid(i) {
                self.insert_all(&lists.value(i), false)?;
            }
        }
        Ok(())
    }

    fn state(&mut self) -> DfResult<Vec<ScalarValue>> {
        let values: Vec<ScalarValue> = self.values.iter().cloned().collect();
        Ok(vec![ScalarValue::List(ScalarValue::new_list_nullable(
            &values,
            &self.overload.params[0],
        ))])
    }

    fn evaluate(&mut self) -> DfResult<ScalarValue> {
        let column = if self.values.is_empty() {
            new_empty_array(&self.overload.params[0])
        } else {
            ScalarValue::iter_to_array(self.values.iter().cloned())?
        };
        let mut groups = GuestGroups::new(self.overload.clone(), &self.binding)?;
        let rows = column.len();
        groups.rows(RowsOp::Update, &[column], &vec![0; rows], 1)?;
        groups.ensure_groups(1)?;
        let out = groups.evaluate(DfEmitTo::All, true)?;
        ScalarValue::try_from_array(&out, 0)
    }

    fn size(&self) -> usize {
        size_of::<Self>() + self.values.iter().map(ScalarValue::size).sum::<usize>()
    }
}
