//! How the session's own functions (`current_setting`, the advisory locks,
//! `pg_cancel_backend`) take their arguments: a batch at a time, each argument cast
//! once to the type it is read as, and a call on constants run once.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int64Array, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::common::ScalarValue;
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs};

/// The arguments of one call.
pub(crate) struct CallArgs {
    /// Rows to compute: one when every argument is a constant.
    pub(crate) rows: usize,
    constant: bool,
    columns: Vec<ArrayRef>,
}

impl CallArgs {
    pub(crate) fn new(args: &ScalarFunctionArgs) -> DfResult<Self> {
        let constant = args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let rows = if constant { 1 } else { args.number_rows };
        let columns = args
            .args
            .iter()
            .map(|a| a.to_array(rows))
            .collect::<DfResult<_>>()?;
        Ok(CallArgs {
            rows,
            constant,
            columns,
        })
    }

    /// How many arguments the call has.
    pub(crate) fn len(&self) -> usize {
        self.columns.len()
    }

    /// Argument `i` as it came (`None` past the last argument).
    pub(crate) fn column(&self, i: usize) -> Option<&ArrayRef> {
        self.columns.get(i)
    }

    /// Argument `i` as text (`None` past the last argument).
    pub(crate) fn text(&self, i: usize) -> DfResult<Option<StringArray>> {
        self.columns
            .get(i)
            .map(|c| Ok(cast(c, &DataType::Utf8)?.as_string::<i32>().clone()))
            .transpose()
    }

    /// Argument `i` as bigints.
    pub(crate) fn int64(&self, i: usize) -> DfResult<Option<Int64Array>> {
        self.columns
            .get(i)
            .map(|c| {
                Ok(cast(c, &DataType::Int64)?
                    .as_primitive::<Int64Type>()
                    .clone())
            })
            .transpose()
    }

    /// The call's result: a scalar for a call on constants.
    pub(crate) fn result(&self, array: ArrayRef) -> DfResult<ColumnarValue> {
        Ok(if self.constant {
            ColumnarValue::Scalar(ScalarValue::try_from_array(&array, 0)?)
        } else {
            ColumnarValue::Array(array)
        })
    }
}

/// Row `i` of a text column, `None` for NULL.
pub(crate) fn text_at(column: &StringArray, i: usize) -> Option<&str> {
    column.is_valid(i).then(|| column.value(i))
}

/// Row `i` of a bigint column, `None` for NULL.
pub(crate) fn int64_at(column: &Int64Array, i: usize) -> Option<i64> {
    column.is_valid(i).then(|| column.value(i))
}

/// A void result (PostgreSQL prints one as an empty string), one per row.
pub(crate) fn void(rows: usize) -> ArrayRef {
    Arc::new(StringArray::from(vec![""; rows]))
}
