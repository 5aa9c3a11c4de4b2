//! `wasm.function_stats` (one row per Wasm function overload, like PostgreSQL's
//! `pg_stat_user_functions`) and `wasm_stats_reset()`.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use datafusion::arrow::array::{
    ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use crate::error::Error;
use crate::introspection::{caller, records_in_order, upgrade, DatabaseHandle, DatabaseView};
use crate::store::catalog::{kind_word, FunctionRecord};
use crate::udf::stats::StatsSnapshot;

/// The type of the views' timestamps: `timestamptz`.
pub(crate) fn timestamptz() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into()))
}

/// Microseconds since the epoch, for a `timestamptz` column.
pub(crate) fn micros(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_micros()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_micros()).unwrap_or(i64::MAX),
    }
}

/// Milliseconds, as PostgreSQL's statistics views give times.
pub(crate) fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub(crate) fn function_stats_schema() -> SchemaRef {
    let text = |n: &str, null| Field::new(n, DataType::Utf8, null);
    let int = |n: &str| Field::new(n, DataType::Int64, false);
    let ms = |n: &str| Field::new(n, DataType::Float64, false);
    Arc::new(Schema::new(vec![
        text("schema", false),
        text("name", false),
        text("arguments", false),
        text("kind", false),
        int("calls"),
        int("rows"),
        ms("total_time"),
        ms("mean_time"),
        ms("max_time"),
        int("fuel"),
        int("instances_created"),
        int("instances_reused"),
        int("peak_memory"),
        int("errors"),
        text("errors_by_sqlstate", true),
        text("last_error_sqlstate", true),
        text("last_error", true),
        Field::new("last_error_at", timestamptz(), true),
    ]))
}

pub(crate) fn function_stats_batch(db: &dyn DatabaseView, _caller: &str) -> DfResult<RecordBatch> {
    let mut figures = db.function_stats();
    let rows: Vec<(FunctionRecord, StatsSnapshot)> = records_in_order(db)
        .into_iter()
        .map(|r| {
            let f = figures.remove(&r.key()).unwrap_or_default();
            (r, f)
        })
        .collect();
    let text = |f: &dyn Fn(&FunctionRecord, &StatsSnapshot) -> Option<String>| -> ArrayRef {
        Arc::new(StringArray::from_iter(rows.iter().map(|(r, s)| f(r, s))))
    };
    let int = |f: &dyn Fn(&StatsSnapshot) -> u64| -> ArrayRef {
        Arc::new(Int64Array::from_iter_values(
            rows.iter()
                .map(|(_, s)| i64::try_from(f(s)).unwrap_or(i64::MAX)),
        ))
    };
    let ms = |f: &dyn Fn(&StatsSnapshot) -> f64| -> ArrayRef {
        Arc::new(Float64Array::from_iter_values(
            rows.iter().map(|(_, s)| f(s)),
        ))
    };
    let columns: Vec<ArrayRef> = vec![
        text(&|r, _| Some(r.schema.clone())),
        text(&|r, _| Some(r.name.clone())),
        text(&|r, _| Some(r.arg_types.join(", "))),
        text(&|r, _| Some(kind_word(r.kind).into())),
        int(&|s| s.calls),
        int(&|s| s.rows),
        ms(&|s| millis(s.guest)),
        ms(&|s| match s.calls {
            0 => 0.0,
            n => millis(s.guest) / n as f64,
        }),
        ms(&|s| millis(s.max)),
        int(&|s| s.fuel),
        int(&|s| s.instances_created),
        int(&|s| s.instances_reused),
        int(&|s| s.peak_memory),
        int(&|s| s.errors.values().sum()),
        text(&|_, s| {
            (!s.errors.is_empty()).then(|| {
                let parts: Vec<String> =
                    s.errors.iter().map(|(k, n)| format!("{k}: {n}")).collect();
                parts.join(", ")
            })
        }),
        text(&|_, s| s.last_error.as_ref().map(|e| e.sqlstate.to_string())),
        text(&|_, s| s.last_error.as_ref().map(|e| e.message.clone())),
        Arc::new(
            TimestampMicrosecondArray::from_iter(
                rows.iter()
                    .map(|(_, s)| s.last_error.as_ref().map(|e| micros(e.at))),
            )
            .with_timezone("+00:00"),
        ),
    ];
    Ok(RecordBatch::try_new(function_stats_schema(), columns)?)
}

/// `wasm_stats_reset()`: every function's figures back to zero (administrators only,
/// as `pg_stat_reset`).
#[derive(Debug)]
pub(crate) struct StatsReset {
    db: DatabaseHandle,
    signature: Signature,
}

impl StatsReset {
    pub(crate) fn new(db: DatabaseHandle) -> Self {
        StatsReset {
            db,
            signature: Signature::nullary(Volatility::Volatile),
        }
    }
}

impl PartialEq for StatsReset {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for StatsReset {}

impl std::hash::Hash for StatsReset {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        "wasm_stats_reset".hash(state);
    }
}

impl ScalarUDFImpl for StatsReset {
    fn name(&self) -> &str {
        "wasm_stats_reset"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        // void, which PostgreSQL prints as an empty string.
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let db = upgrade(&self.db)?;
        let user = caller(&args.config_options);
        if !db.is_admin(&user) {
            return Err(Error::InsufficientPrivilege(format!(
                "permission denied: role \"{user}\" may not reset function statistics"
            ))
            .into());
        }
        db.reset_function_stats();
        Ok(ColumnarValue::Array(Arc::new(StringArray::from(vec![
            "";
            args.number_rows
        ]))))
    }
}
