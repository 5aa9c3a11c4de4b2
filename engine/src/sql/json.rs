//! `json` and `jsonb`: values are their text (`Utf8`), marked with the PostgreSQL type
//! in the field's metadata ([`JsonKind`]) so clients get OID 114 / 3802. A cast or a
//! column of either type goes through `pg_json` / `pg_jsonb`, which check the text (and
//! put `jsonb` in its normal form); the operators `->`, `->>`, `#>`, `#>>` and `?` are
//! planned onto `datafusion-functions-json`'s accessors.

use std::sync::Arc;

use datafusion::arrow::array::StringBuilder;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::planner::{ExprPlanner, PlannerResult, RawBinaryExpr};
use datafusion::logical_expr::sqlparser::ast::{BinaryOperator, DataType as SqlDataType};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ExprSchemable, LogicalPlan, Projection, ReturnFieldArgs,
    ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility, WriteOp,
};
use datafusion::optimizer::analyzer::AnalyzerRule;

use crate::error::Error;
use crate::pg::json::{json_checked, jsonb_text};
use crate::pg::types::JsonKind;
use crate::sql::call::{text_at, CallArgs};

/// The JSON functions every session has: the type input functions and the accessors
/// the operators use (also callable by name: `json_get_str(doc, 'a')`, ...).
pub(crate) fn functions() -> Vec<ScalarUDF> {
    use datafusion_functions_json::udfs;
    let mut all = vec![
        ScalarUDF::new_from_impl(JsonInput::new(JsonKind::Json)),
        ScalarUDF::new_from_impl(JsonInput::new(JsonKind::Jsonb)),
    ];
    all.extend(
        [
            udfs::json_get_json_udf(),
            udfs::json_as_text_udf(),
            udfs::json_contains_udf(),
            udfs::json_get_str_udf(),
            udfs::json_get_int_udf(),
            udfs::json_get_float_udf(),
            udfs::json_get_bool_udf(),
            udfs::json_length_udf(),
            udfs::json_object_keys_udf(),
        ]
        .into_iter()
        .map(|f| f.as_ref().clone()),
    );
    all
}

/// The function that makes a text a value of `kind`.
pub(crate) fn input_function(kind: JsonKind) -> &'static str {
    match kind {
        JsonKind::Json => "pg_json",
        JsonKind::Jsonb => "pg_jsonb",
    }
}

/// The kind of SQL type `data_type`, if it is `json` or `jsonb`.
pub(crate) fn json_kind_of(data_type: &SqlDataType) -> Option<JsonKind> {
    match data_type {
        SqlDataType::JSON => Some(JsonKind::Json),
        SqlDataType::JSONB => Some(JsonKind::Jsonb),
        _ => None,
    }
}

/// `pg_json(text)` / `pg_jsonb(text)`: the text as a `json` (checked, kept as written)
/// or `jsonb` (checked, in its normal form) value; `22P02` for text that is not JSON.
#[derive(Debug, PartialEq, Eq, Hash)]
struct JsonInput {
    kind: JsonKind,
    signature: Signature,
}

impl JsonInput {
    fn new(kind: JsonKind) -> Self {
        JsonInput {
            kind,
            signature: Signature::string(1, Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for JsonInput {
    fn name(&self) -> &str {
        input_function(self.kind)
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }

    fn return_field_from_args(&self, _: ReturnFieldArgs) -> DfResult<FieldRef> {
        Ok(Arc::new(
            Field::new(self.name(), DataType::Utf8, true).with_metadata(self.kind.metadata()),
        ))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let call = CallArgs::new(&args)?;
        let Some(texts) = call.text(0)? else {
            return Ok(ColumnarValue::Scalar(ScalarValue::Utf8(None)));
        };
        let mut out = StringBuilder::with_capacity(call.rows, call.rows * 16);
        for row in 0..call.rows {
            let Some(text) = text_at(&texts, row) else {
                out.append_null();
                continue;
            };
            let invalid = |detail: String| {
                Error::InvalidText(format!(
                    "invalid input syntax for type {}: {detail}",
                    self.kind.name()
                ))
            };
            match self.kind {
                JsonKind::Json => out.append_value(json_checked(text).map_err(invalid)?),
                JsonKind::Jsonb => out.append_value(jsonb_text(text).map_err(invalid)?),
            }
        }
        call.result(Arc::new(out.finish()))
    }
}

/// PostgreSQL's JSON operators, planned onto the accessors: `->` (a member or element
/// as `json`/`jsonb`, of the left side's type), `->>` (as text), `#>` / `#>>` (the same
/// along a path, `'{a,0}'`: an integer step indexes an array), `?` (whether a key exists).
#[derive(Debug, Default)]
pub(crate) struct JsonOperators;

impl ExprPlanner for JsonOperators {
    fn plan_binary_op(
        &self,
        expr: RawBinaryExpr,
        schema: &DFSchema,
    ) -> DfResult<PlannerResult<RawBinaryExpr>> {
        use datafusion_functions_json::udfs;
        let (accessor, as_json): (fn() -> Arc<ScalarUDF>, bool) = match expr.op {
            BinaryOperator::Arrow | BinaryOperator::HashArrow => (udfs::json_get_json_udf, true),
            BinaryOperator::LongArrow | BinaryOperator::HashLongArrow => {
                (udfs::json_as_text_udf, false)
            }
            BinaryOperator::Question => (udfs::json_contains_udf, false),
            _ => return Ok(PlannerResult::Original(expr)),
        };
        let kind = JsonKind::of(expr.left.to_field(schema)?.1.as_ref()).unwrap_or(JsonKind::Json);
        let mut args = vec![expr.left];
        match (&expr.op, expr.right) {
            // A path in PostgreSQL's array text form.
            (
                BinaryOperator::HashArrow | BinaryOperator::HashLongArrow,
                Expr::Literal(ScalarValue::Utf8(Some(path)), _),
            ) => {
                let steps = crate::pg::text::array_from_text(&path).map_err(Error::InvalidText)?;
                for step in steps {
                    let step = step.ok_or_else(|| {
                        Error::NullValueNotAllowed("a JSON path step is NULL".into())
                    })?;
                    args.push(Expr::Literal(
                        match step.parse::<i64>() {
                            Ok(index) => ScalarValue::Int64(Some(index)),
                            Err(_) => ScalarValue::Utf8(Some(step)),
                        },
                        None,
                    ));
                }
            }
            (_, right) => args.push(right),
        }
        let mut planned = accessor().call(args);
        if as_json {
            planned = ScalarUDF::new_from_impl(JsonInput::new(kind)).call(vec![planned]);
        }
        Ok(PlannerResult::Planned(planned))
    }
}

/// Rows written into `json` / `jsonb` columns go through the type's input function
/// (`INSERT INTO t VALUES ('not json')` is `22P02`; a `jsonb` value is stored in its
/// normal form), as PostgreSQL converts text assigned to such a column.
#[derive(Debug, Default)]
pub(crate) struct JsonColumns;

impl AnalyzerRule for JsonColumns {
    fn analyze(&self, plan: LogicalPlan, _: &ConfigOptions) -> DfResult<LogicalPlan> {
        plan.transform_up(|plan| {
            let LogicalPlan::Dml(mut dml) = plan else {
                return Ok(Transformed::no(plan));
            };
            let kinds: Vec<Option<JsonKind>> = dml
                .target
                .schema()
                .fields()
                .iter()
                .map(|f| JsonKind::of(f))
                .collect();
            if !matches!(dml.op, WriteOp::Insert(_))
                || kinds.iter().all(Option::is_none)
                || dml.input.schema().fields().len() != kinds.len()
            {
                return Ok(Transformed::no(LogicalPlan::Dml(dml)));
            }
            let exprs = dml
                .input
                .schema()
                .columns()
                .into_iter()
                .zip(&kinds)
                .map(|(column, kind)| {
                    let name = column.name.clone();
                    let value = Expr::Column(column);
                    match kind {
                        Some(kind) => ScalarUDF::new_from_impl(JsonInput::new(*kind))
                            .call(vec![value])
                            .alias(name),
                        None => value,
                    }
                })
                .collect::<Vec<_>>();
            dml.input = Arc::new(LogicalPlan::Projection(Projection::try_new(
                exprs, dml.input,
            )?));
            Ok(Transformed::yes(LogicalPlan::Dml(dml)))
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "pg_json_columns"
    }
}
