//! `x::text` of a timestamp, date, time or interval as PostgreSQL prints the value
//! (`2024-01-02 03:04:05.5+00` in the session's zone, `1 day 02:00:00`), the same text
//! the wire sends for it, where Arrow's cast writes ISO 8601 with nanoseconds
//! (`2024-01-02T03:04:05.500000000Z`) and its own interval words.
//!
//! An analyzer rule, before type coercion: an explicit cast to a text type of such a
//! value becomes `pg_text_of(x)`, which renders with [`crate::pg::text`].

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, StringArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::{
    Cast, ColumnarValue, Expr, ExprSchemable, LogicalPlan, ScalarFunctionArgs, ScalarUDF,
    ScalarUDFImpl, Signature, Volatility,
};
use datafusion::optimizer::analyzer::AnalyzerRule;

use crate::pg::text::{pg_text_in, TextFormat};

/// Whether values of `dt` print differently in PostgreSQL than Arrow casts them to text.
fn printed_by_postgres(dt: &DataType) -> bool {
    matches!(
        dt,
        DataType::Timestamp(_, _)
            | DataType::Date64
            | DataType::Time32(_)
            | DataType::Time64(_)
            | DataType::Interval(_)
            | DataType::Duration(_)
    )
}

fn is_text(dt: &DataType) -> bool {
    matches!(
        dt,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
    )
}

/// Rewrites `CAST(x AS text)` of date/time values into `pg_text_of(x)`.
#[derive(Debug, Default)]
pub(crate) struct TemporalTextCasts;

impl AnalyzerRule for TemporalTextCasts {
    fn analyze(&self, plan: LogicalPlan, _: &ConfigOptions) -> DfResult<LogicalPlan> {
        let udf = Arc::new(ScalarUDF::new_from_impl(PgTextOf::new()));
        plan.transform_up_with_subqueries(|plan| {
            let mut schema = DFSchema::empty();
            for input in plan.inputs() {
                schema.merge(input.schema());
            }
            let names = NamePreserver::new(&plan);
            plan.map_expressions(|e| {
                let name = names.save(&e);
                e.transform_up(|e| match e {
                    Expr::Cast(Cast { expr, field })
                        if is_text(field.data_type())
                            && expr
                                .get_type(&schema)
                                .is_ok_and(|t| printed_by_postgres(&t)) =>
                    {
                        let text = udf.call(vec![*expr]);
                        Ok(Transformed::yes(if field.data_type() == &DataType::Utf8 {
                            text
                        } else {
                            Expr::Cast(Cast::new_from_field(Box::new(text), field))
                        }))
                    }
                    other => Ok(Transformed::no(other)),
                })
                .map(|t| t.update_data(|e| name.restore(e)))
            })
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "pg_temporal_text_casts"
    }
}

/// `pg_text_of(x)`: `x` as PostgreSQL prints it, a zoned timestamp in the session's zone.
#[derive(Debug, PartialEq, Eq, Hash)]
struct PgTextOf {
    signature: Signature,
}

impl PgTextOf {
    fn new() -> Self {
        PgTextOf {
            signature: Signature::any(1, Volatility::Stable),
        }
    }
}

impl ScalarUDFImpl for PgTextOf {
    fn name(&self) -> &str {
        "pg_text_of"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let [value] = args.args.as_slice() else {
            return Err(DataFusionError::Internal(
                "pg_text_of takes one argument".into(),
            ));
        };
        let format = TextFormat {
            time_zone: args
                .config_options
                .execution
                .time_zone
                .clone()
                .unwrap_or_else(|| "UTC".into()),
            ..TextFormat::default()
        };
        let render = |array: ArrayRef| -> DfResult<ArrayRef> {
            Ok(Arc::new(StringArray::from(pg_text_in(
                array.as_ref(),
                &format,
            )?)))
        };
        Ok(match value {
            // A constant (`now()::text`) is rendered once, not once per row.
            ColumnarValue::Scalar(v) => {
                ColumnarValue::Scalar(ScalarValue::try_from_array(&render(v.to_array()?)?, 0)?)
            }
            ColumnarValue::Array(a) => ColumnarValue::Array(render(a.clone())?),
        })
    }
}
