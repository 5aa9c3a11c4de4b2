//! The DataFusion `ScalarUDFImpl` that runs a component function batch by batch.

use std::collections::VecDeque;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use datafusion::arrow::array::{new_empty_array, new_null_array, Array, ArrayRef};
use datafusion::arrow::buffer::NullBuffer;
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{plan_err, Result as DfResult, ScalarValue};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature};
use parking_lot::Mutex;

use crate::convert::{output_array, ArgColumn};
use crate::error::Error;
use crate::instance::GuestInstance;
use crate::limits::Limits;
use crate::query::QueryScope;
use crate::runtime::{ModuleInner, UdfOptions};
use crate::signature::{sql_type_name, FunctionSignature, NullHandling};

static NEXT_UDF: AtomicU64 = AtomicU64::new(1);

/// A component function as a DataFusion scalar UDF.
#[derive(Debug)]
pub(crate) struct WasmScalarUdf {
    /// Identity for `Eq`/`Hash`: two registrations are the same function only if they
    /// are the same registration.
    id: u64,
    name: String,
    index: u32,
    params: Vec<DataType>,
    returns: DataType,
    null_handling: NullHandling,
    signature: Signature,
    limits: Limits,
    display: String,
    module: ModuleRef,
    pool: InstancePool,
}

/// `ModuleInner` holds wasmtime types without `Debug`.
struct ModuleRef(Arc<ModuleInner>);

impl std::fmt::Debug for ModuleRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Module")
    }
}

impl PartialEq for WasmScalarUdf {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl Eq for WasmScalarUdf {}

impl Hash for WasmScalarUdf {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.id.hash(state);
    }
}

impl WasmScalarUdf {
    pub(crate) fn new(
        module: Arc<ModuleInner>,
        index: usize,
        options: &UdfOptions,
        limits: Limits,
    ) -> Self {
        let sig: &FunctionSignature = &module.functions[index];
        let volatility = options.volatility.unwrap_or(sig.volatility);
        let idle = module.engine.inner.config.idle_instances_per_function;
        WasmScalarUdf {
            id: NEXT_UDF.fetch_add(1, Ordering::Relaxed),
            name: options.name.clone().unwrap_or_else(|| sig.name.clone()),
            index: index as u32,
            params: sig.params.clone(),
            returns: sig.returns.clone(),
            null_handling: options.null_handling.unwrap_or(sig.null_handling),
            signature: Signature::user_defined(volatility),
            limits,
            display: sig.to_string(),
            pool: InstancePool::new(idle),
            module: ModuleRef(module),
        }
    }

    /// Runs the guest over `arrays` (each of length `rows`, or 1 for a literal).
    fn run(
        &self,
        arrays: &[ArrayRef],
        rows: usize,
        host_nulls: Option<&NullBuffer>,
        scope: Option<&QueryScope>,
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
        let query = scope.map(|s| s.id);
        let mut instance = match self.pool.take(query) {
            Some(i) => i,
            None => self.module.0.instantiate(&self.limits, &self.name)?,
        };
        // A trap or limit poisons the instance: it is dropped here, never returned.
        let result = instance.call(
            self.index,
            wire_rows,
            &wire,
            &self.limits,
            cancel,
            &self.name,
        )?;
        self.pool.put(query, instance);
        let out = result.map_err(|e| Error::Guest {
            function: self.name.clone(),
            message: e.message,
            row: e.row,
        })?;
        output_array(out, rows, &self.returns, host_nulls).map_err(|reason| Error::InvalidOutput {
            function: self.name.clone(),
            reason,
        })
    }
}

impl ScalarUDFImpl for WasmScalarUdf {
    fn name(&self) -> &str {
        &self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(self.returns.clone())
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> DfResult<Vec<DataType>> {
        if arg_types.len() != self.params.len() {
            return plan_err!(
                "function {} takes {} argument(s) ({}), got {}",
                self.name,
                self.params.len(),
                self.display,
                arg_types.len()
            );
        }
        for (i, (from, to)) in arg_types.iter().zip(&self.params).enumerate() {
            if !coercible(from, to) {
                return plan_err!(
                    "function {}: argument {} is {}, which does not convert to {} ({})",
                    self.name,
                    i + 1,
                    sql_type_name(from),
                    sql_type_name(to),
                    self.display
                );
            }
        }
        Ok(self.params.clone())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let scope = args.config_options.extensions.get::<QueryScope>();
        let all_scalar = !args.args.is_empty()
            && args
                .args
                .iter()
                .all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let rows = if all_scalar { 1 } else { args.number_rows };
        let strict = self.null_handling == NullHandling::Strict;

        let mut arrays = Vec::with_capacity(args.args.len());
        for (value, declared) in args.args.into_iter().zip(&self.params) {
            let array = match value {
                ColumnarValue::Scalar(s) => {
                    if strict && s.is_null() {
                        // A null literal makes every row null: no guest call at all.
                        return null_result(&self.returns, all_scalar, args.number_rows);
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
                return null_result(&self.returns, all_scalar, args.number_rows);
            }
            nulls
        } else {
            None
        };

        if rows == 0 {
            return Ok(ColumnarValue::Array(new_empty_array(&self.returns)));
        }
        let out = self.run(&arrays, rows, host_nulls.as_ref(), scope)?;
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
struct InstancePool {
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
