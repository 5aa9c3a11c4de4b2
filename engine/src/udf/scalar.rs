//! The DataFusion `ScalarUDFImpl` that runs a component function batch by batch.

use std::collections::VecDeque;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use datafusion::arrow::array::{new_empty_array, new_null_array, Array, ArrayRef};
use datafusion::arrow::buffer::NullBuffer;
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result as DfResult, ScalarValue};
use datafusion::error::DataFusionError;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};
use parking_lot::Mutex;

use crate::error::{guest_text, Error};
use crate::udf::build::UdfOptions;
use crate::udf::scope::QueryScope;
use crate::udf::settings::WasmSettings;
use crate::udf::stats::{FunctionStats, Meter};
use crate::wasm::abi::{ColumnOut, GuestError};
use crate::wasm::convert::{output_array, ArgColumn};
use crate::wasm::engine::ModuleInner;
use crate::wasm::instance::{CallBudget, GuestInstance};
use crate::wasm::limits::{LimitOverrides, Limits};
use crate::wasm::signature::{sql_type_name, FunctionSignature, NullHandling};

static NEXT_UDF: AtomicU64 = AtomicU64::new(1);

/// One SQL function name as a DataFusion scalar UDF: one or more overloads, each a
/// function of some component, chosen by argument types at planning time.
#[derive(Debug)]
pub(crate) struct WasmScalarUdf {
    /// Identity for `Eq`/`Hash`: two registrations are the same function only if they
    /// are the same registration.
    id: u64,
    signature: Signature,
    overloads: Arc<OverloadSet>,
    /// The query this copy is bound to when it was planned without a scope in the
    /// configuration (a plain `SessionContext::sql`); see [`crate::udf::bind`].
    scope: Option<QueryScope>,
}

/// The overloads of one SQL function name (scalar or aggregate), and how a call's
/// argument types choose one.
#[derive(Debug)]
pub(crate) struct OverloadSet {
    pub(crate) name: String,
    pub(crate) overloads: Vec<Arc<Overload>>,
}

/// A fresh registration identity.
pub(crate) fn next_udf_id() -> u64 {
    NEXT_UDF.fetch_add(1, Ordering::Relaxed)
}

/// One overload: a component function with its SQL-level options.
#[derive(Debug)]
pub(crate) struct Overload {
    pub(crate) name: String,
    pub(crate) index: u32,
    pub(crate) params: Vec<DataType>,
    pub(crate) returns: DataType,
    pub(crate) null_handling: NullHandling,
    pub(crate) overrides: LimitOverrides,
    display: String,
    pub(crate) module: ModuleRef,
    pool: Arc<InstancePool>,
    /// What this overload's calls cost (replaced by the database's own, which outlives
    /// re-registrations).
    pub(crate) stats: Arc<FunctionStats>,
}

/// `ModuleInner` holds wasmtime types without `Debug`.
pub(crate) struct ModuleRef(pub(crate) Arc<ModuleInner>);

impl std::fmt::Debug for ModuleRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Module")
    }
}

impl PartialEq for WasmScalarUdf {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id && self.query_id() == other.query_id()
    }
}

impl Eq for WasmScalarUdf {}

impl Hash for WasmScalarUdf {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.id.hash(state);
        self.query_id().hash(state);
    }
}

impl Overload {
    /// Function `index` of `module`, exposed as `name` with `options` (already checked).
    pub(crate) fn new(
        module: Arc<ModuleInner>,
        index: usize,
        name: &str,
        options: &UdfOptions,
    ) -> Self {
        let sig: &FunctionSignature = &module.functions[index];
        let idle = module.engine.inner.config.idle_instances_per_function;
        let params: Vec<String> = sig.params.iter().map(sql_type_name).collect();
        let display = format!("{name}({})", params.join(", "));
        Overload {
            stats: FunctionStats::new(&display, module.engine.inner.config.track_functions),
            name: name.to_string(),
            index: index as u32,
            params: sig.params.clone(),
            returns: sig.returns.clone(),
            null_handling: options.null_handling.unwrap_or(sig.null_handling),
            overrides: options.limits,
            display,
            pool: Arc::new(InstancePool::new(idle)),
            module: ModuleRef(module),
        }
    }

    /// The limits of one call: the function's own overrides over the session's
    /// settings over the server defaults, never above the ceilings.
    pub(crate) fn limits(&self, session: Option<&WasmSettings>) -> Result<Limits, Error> {
        let config = &self.module.0.engine.inner.config;
        let base = session.map_or(config.defaults, WasmSettings::effective);
        base.with_overrides(&self.overrides, &config.ceilings)
            .map_err(|e| match e {
                Error::InvalidLimit(m) => {
                    Error::InvalidLimit(format!("function {}: {m}", self.name))
                }
                other => other,
            })
    }

    /// Runs the guest over `arrays` (each of length `rows`, or 1 for a literal).
    fn run(
        &self,
        arrays: &[ArrayRef],
        rows: usize,
        host_nulls: Option<&NullBuffer>,
        scope: Option<&QueryScope>,
        limits: &Limits,
    ) -> Result<ArrayRef, Error> {
        let cancel = scope.and_then(|s| s.cancel.as_ref());
        if cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
            return Err(Error::Canceled {
                function: self.name.clone(),
            });
        }
        let columns = arrays
            .iter()
            .map(|a| ArgColumn::new(a.as_ref()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|reason| Error::Runtime(format!("function {}: {reason}", self.name)))?;
        let wire: Vec<_> = columns.iter().map(ArgColumn::as_wire).collect();
        let wire_rows = u32::try_from(rows)
            .map_err(|_| Error::Runtime(format!("batch of {rows} rows is too large")))?;
        // Instances are pooled per query, and a query runs under one set of session
        // settings, so a pooled instance always has this call's memory limit.
        let query = scope.map(QueryScope::id);
        // A stack size is fixed at instantiation: a `SET wasm.stack` within the query
        // scope retires the pooled instance.
        let (mut instance, reused) = match self.pool.take(query) {
            Some(i) if i.stack() == limits.stack => (i, true),
            _ => match self.module.0.instantiate(limits, &self.name) {
                Ok(i) => (i, false),
                Err(e) => {
                    self.stats.record_error(&e);
                    return Err(e);
                }
            },
        };
        let meter = Meter::start(&self.stats, scope.map(|s| s.activity.as_ref()));
        let budget = CallBudget {
            limits,
            cancel,
            started: meter.started(),
        };
        let outcome = instance.call(self.index, wire_rows, &wire, budget, &self.name);
        meter.stop(rows as u64, instance.fuel_consumed(limits));
        self.stats.record_instance(reused, instance.memory_used());
        self.checked(outcome, rows, host_nulls).inspect(|_| {
            // A trap or limit poisons the instance: only one that returned goes back.
            self.pool.put(query, instance);
            if let Some(scope) = scope {
                scope.end.register(&self.pool);
            }
        })
    }

    /// The output of a call that returned `outcome`, validated, with any failure
    /// recorded.
    fn checked(
        &self,
        outcome: Result<Result<ColumnOut, GuestError>, Error>,
        rows: usize,
        host_nulls: Option<&NullBuffer>,
    ) -> Result<ArrayRef, Error> {
        let result = outcome.and_then(|result| {
            let out = result.map_err(|e| Error::Guest {
                function: self.name.clone(),
                message: guest_text(&e.message),
                row: e.row,
            })?;
            output_array(out, rows, &self.returns, host_nulls).map_err(|reason| {
                Error::InvalidOutput {
                    function: self.name.clone(),
                    reason,
                }
            })
        });
        if let Err(e) = &result {
            self.stats.record_error(e);
        }
        result
    }

    /// The total cost of converting `arg_types` to this overload's parameters, or
    /// `None` if some argument cannot be converted at all.
    fn conversion_cost(&self, arg_types: &[DataType]) -> Option<u32> {
        if arg_types.len() != self.params.len() {
            return None;
        }
        arg_types
            .iter()
            .zip(&self.params)
            .map(|(from, to)| cost(from, to))
            .sum()
    }
}

/// What converting one argument costs, PostgreSQL-style: nothing within a type,
/// little within a family (integer to wider integer), more across families (integer
/// to float), most from text (an untyped literal) to a date or time.
fn cost(from: &DataType, to: &DataType) -> Option<u32> {
    use DataType::*;
    if !coercible(from, to) {
        return None;
    }
    let text = |t: &DataType| matches!(t, Utf8 | LargeUtf8 | Utf8View);
    let int = |t: &DataType| t.is_integer();
    let float = |t: &DataType| t.is_floating();
    Some(match (from, to) {
        (a, b) if a == b || (text(a) && text(b)) => 0,
        (Dictionary(_, v), _) => return cost(v, to),
        (Null, _) => 1,
        (a, b) if (int(a) && int(b)) || (float(a) && float(b)) => 1,
        (Timestamp(..) | Date32 | Date64, Timestamp(..) | Date32) => 1,
        (a, b) if int(a) && (float(b) || matches!(b, Decimal128(..))) => 2,
        (Decimal128(..), b) if float(b) => 2,
        _ => 3,
    })
}

impl WasmScalarUdf {
    /// A SQL function over `overloads` (at least one, all named `name`).
    pub(crate) fn new(name: &str, overloads: Vec<Arc<Overload>>) -> Self {
        // VOLATILE to DataFusion's planner, whatever the SQL declaration (which the
        // catalog, information_schema and overload checks keep): the optimizer folds
        // immutable *and* stable calls with literal arguments at plan time, outside the
        // executor and before cancellation is possible, and retries a failing fold in
        // every pass, so a runaway `f(1)` would block planning for several timeouts.
        // Guest code runs only when the plan executes. The cost: no constant folding and
        // no common-subexpression elimination of Wasm calls.
        WasmScalarUdf {
            id: next_udf_id(),
            signature: Signature::user_defined(Volatility::Volatile),
            overloads: Arc::new(OverloadSet {
                name: name.to_string(),
                overloads,
            }),
            scope: None,
        }
    }

    /// The same function, running for the query of `scope`.
    pub(crate) fn bind(&self, scope: QueryScope) -> Self {
        WasmScalarUdf {
            id: self.id,
            signature: self.signature.clone(),
            overloads: self.overloads.clone(),
            scope: Some(scope),
        }
    }

    fn query_id(&self) -> Option<u64> {
        self.scope.as_ref().map(QueryScope::id)
    }
}

impl OverloadSet {
    fn candidates(&self) -> String {
        let all: Vec<&str> = self.overloads.iter().map(|o| o.display.as_str()).collect();
        all.join(", ")
    }

    /// Chooses the overload for `arg_types`: the one with the cheapest conversions
    /// (an exact match costs nothing); a tie is ambiguous.
    pub(crate) fn resolve(&self, arg_types: &[DataType]) -> DfResult<&Arc<Overload>> {
        let mut best: Option<(u32, &Arc<Overload>)> = None;
        let mut tie = false;
        for o in &self.overloads {
            let Some(n) = o.conversion_cost(arg_types) else {
                continue;
            };
            match best {
                Some((b, _)) if n > b => {}
                Some((b, _)) if n == b => tie = true,
                _ => {
                    best = Some((n, o));
                    tie = false;
                }
            }
        }
        let shown: Vec<String> = arg_types.iter().map(sql_type_name).collect();
        match best {
            Some((_, o)) if !tie => Ok(o),
            Some(_) => Err(DataFusionError::External(Box::new(
                Error::AmbiguousFunction(format!(
                    "function {}({}) is not unique: candidates are {}; add explicit casts",
                    self.name,
                    shown.join(", "),
                    self.candidates()
                )),
            ))),
            None => Err(DataFusionError::External(Box::new(
                Error::UndefinedFunction(format!(
                    "function {}({}) does not exist; {} {}",
                    self.name,
                    shown.join(", "),
                    if self.overloads.len() == 1 {
                        "it is"
                    } else {
                        "candidates are"
                    },
                    self.candidates()
                )),
            ))),
        }
    }

    /// The overload planned for these (already coerced) argument types.
    pub(crate) fn planned(&self, arg_types: &[DataType]) -> DfResult<&Arc<Overload>> {
        match self.overloads.iter().find(|o| o.params == arg_types) {
            Some(o) => Ok(o),
            None => self.resolve(arg_types),
        }
    }
}

/// The type a placeholder in argument `position` of a call to `udf` with `arity`
/// arguments must have, when the function determines it: a Wasm function whose
/// overloads of that arity all agree there. DataFusion infers placeholder types from
/// comparisons but not from function arguments; clients preparing `SELECT f($1)`
/// need the type to encode the value.
pub(crate) fn placeholder_hint(
    udf: &datafusion::logical_expr::ScalarUDF,
    arity: usize,
    position: usize,
) -> Option<DataType> {
    let wasm = udf.inner().downcast_ref::<WasmScalarUdf>()?;
    let mut types = wasm
        .overloads
        .overloads
        .iter()
        .filter(|o| o.params.len() == arity)
        .map(|o| &o.params[position]);
    let first = types.next()?;
    types.all(|t| t == first).then(|| first.clone())
}

impl ScalarUDFImpl for WasmScalarUdf {
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

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let arg_types: Vec<DataType> = args
            .arg_fields
            .iter()
            .map(|f| f.data_type().clone())
            .collect();
        let overload = self.overloads.planned(&arg_types)?;
        let scope = args
            .config_options
            .extensions
            .get::<QueryScope>()
            .or(self.scope.as_ref());
        let limits = overload.limits(args.config_options.extensions.get::<WasmSettings>())?;
        let all_scalar = !args.args.is_empty()
            && args
                .args
                .iter()
                .all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let rows = if all_scalar { 1 } else { args.number_rows };
        let strict = overload.null_handling == NullHandling::Strict;

        let mut arrays = Vec::with_capacity(args.args.len());
        for (value, declared) in args.args.into_iter().zip(&overload.params) {
            let array = match value {
                ColumnarValue::Scalar(s) => {
                    if strict && s.is_null() {
                        // A null literal makes every row null: no guest call at all.
                        return null_result(&overload.returns, all_scalar, args.number_rows);
                    }
                    s.to_array_of_size(1)?
                }
                ColumnarValue::Array(a) => a,
            };
            let array = if array.data_type() == declared {
                array
            } else {
                cast(&array, declared)?
            };
            arrays.push(array);
        }

        let host_nulls = if strict {
            let nulls = arrays.iter().filter(|a| a.len() == rows).fold(
                None,
                |acc: Option<NullBuffer>, a| {
                    NullBuffer::union(acc.as_ref(), a.logical_nulls().as_ref())
                },
            );
            if nulls.as_ref().is_some_and(|n| n.null_count() == rows) && rows > 0 {
                return null_result(&overload.returns, all_scalar, args.number_rows);
            }
            nulls
        } else {
            None
        };

        if rows == 0 {
            return Ok(ColumnarValue::Array(new_empty_array(&overload.returns)));
        }
        let out = overload.run(&arrays, rows, host_nulls.as_ref(), scope, &limits)?;
        if all_scalar {
            Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?))
        } else {
            Ok(ColumnarValue::Array(out))
        }
    }
}

fn null_result(dt: &DataType, scalar: bool, rows: usize) -> DfResult<ColumnarValue> {
    Ok(if scalar {
        ColumnarValue::Scalar(ScalarValue::try_from(dt)?)
    } else {
        ColumnarValue::Array(new_null_array(dt, rows))
    })
}

/// Whether an argument of type `from` may be implicitly converted to parameter type
/// `to`, following PostgreSQL's spirit: within a type family, never text to number.
fn coercible(from: &DataType, to: &DataType) -> bool {
    use DataType::*;
    if from == to || *from == Null {
        return true;
    }
    if let Dictionary(_, value) = from {
        return coercible(value, to);
    }
    let numeric = |t: &DataType| t.is_numeric();
    let text = |t: &DataType| matches!(t, Utf8 | LargeUtf8 | Utf8View);
    let binary = |t: &DataType| matches!(t, Binary | LargeBinary | BinaryView | FixedSizeBinary(_));
    match to {
        t if numeric(t) => numeric(from),
        Utf8 => text(from),
        Binary => binary(from),
        // Untyped literals ('2024-01-31') arrive as text, as in PostgreSQL.
        Date32 => matches!(from, Date64 | Timestamp(_, _)) || text(from),
        Timestamp(_, _) => matches!(from, Timestamp(_, _) | Date32 | Date64) || text(from),
        _ => false,
    }
}

/// Idle instances of one function, tagged with the query that used them.
///
/// An instance is handed out again only to the same query, so guest state (globals,
/// heap) never carries from one query to another; calls without a query scope always
/// get a fresh instance. Parallel partitions each take their own instance.
#[derive(Debug)]
pub(crate) struct InstancePool {
    idle: Mutex<VecDeque<(u64, GuestInstance)>>,
    capacity: usize,
}

impl std::fmt::Debug for GuestInstance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GuestInstance")
    }
}

impl InstancePool {
    fn new(capacity: usize) -> Self {
        InstancePool {
            idle: Mutex::new(VecDeque::new()),
            capacity,
        }
    }

    fn take(&self, query: Option<u64>) -> Option<GuestInstance> {
        let query = query?;
        let mut idle = self.idle.lock();
        let pos = idle.iter().rposition(|(q, _)| *q == query)?;
        idle.remove(pos).map(|(_, i)| i)
    }

    /// Drops the idle instances of `query`, which has ended.
    pub(crate) fn purge(&self, query: u64) {
        let ended: VecDeque<_> = {
            let mut idle = self.idle.lock();
            let (ended, kept) = idle.drain(..).partition(|(q, _)| *q == query);
            *idle = kept;
            ended
        };
        // Dropped (freeing their slots) outside the lock.
        drop(ended);
    }

    fn put(&self, query: Option<u64>, instance: GuestInstance) {
        let Some(query) = query else { return };
        let evicted = {
            let mut idle = self.idle.lock();
            idle.push_back((query, instance));
            if idle.len() > self.capacity {
                idle.pop_front()
            } else {
                None
            }
        };
        // Drop (and free the pool slot of) an evicted instance outside the lock.
        drop(evicted);
    }
}

#[cfg(test)]
mod tests {
    use super::coercible;
    use datafusion::arrow::datatypes::{DataType::*, TimeUnit};

    #[test]
    fn coercion_stays_within_type_families() {
        assert!(coercible(&Int32, &Int64));
        assert!(coercible(&Int64, &Float64));
        assert!(coercible(&Utf8View, &Utf8));
        assert!(coercible(&Null, &Utf8));
        assert!(coercible(&Utf8, &Date32));
        assert!(coercible(
            &Timestamp(TimeUnit::Nanosecond, None),
            &Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
        ));
        assert!(!coercible(&Utf8, &Int64));
        assert!(!coercible(&Int64, &Utf8));
        assert!(!coercible(&Boolean, &Int64));
        assert!(!coercible(&Binary, &Utf8));
    }
}
