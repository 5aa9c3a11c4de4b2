//! PostgreSQL's types for integer literals: `1` is an `int4` when it fits, as in
//! PostgreSQL, where DataFusion plans every integer literal as `Int64`. Clients decode
//! by the announced type (node-postgres turns int4 into a number, int8 into a string),
//! so `SELECT 1` must be int4.
//!
//! An analyzer rule that runs before type coercion, on the query's output columns
//! only: a column that is integer constant arithmetic (`1`, `-1`, `2 + 3 AS five`)
//! whose every step fits in 32 bits becomes `Int32`, as PostgreSQL types it; so do the
//! results of a CASE, an ARRAY or `coalesce` / `nullif` / `greatest` / `least` of such
//! constants (and NULL), `pg_typeof`'s argument, a `VALUES` column of such constants,
//! and each branch of a UNION, where the output uses them as they are (through subquery
//! aliases, projections that output, compare or choose between them, ORDER BY, LIMIT,
//! DISTINCT). Elsewhere literals keep DataFusion's `Int64`: coercion inside expressions
//! depends on it, and an `Int32` computed further (`x * x`, a CASE condition's `x * 3`)
//! could overflow where the `Int64` does not (DataFusion's integer arithmetic wraps).

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::DFSchema;
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::{
    BinaryExpr, Expr, ExprSchemable, LogicalPlan, Operator, Union, Values,
};
use datafusion::optimizer::analyzer::AnalyzerRule;

/// Types the output columns that are small integer constants as `Int32`.
#[derive(Debug, Default)]
pub(crate) struct IntegerLiterals;

/// The value of integer constant arithmetic, if it and every step of it fit in an
/// `int4` (so the Int32 evaluation cannot overflow where PostgreSQL would not).
fn int4_constant(expr: &Expr) -> Option<i32> {
    match expr {
        Expr::Literal(ScalarValue::Int64(Some(v)), _) => i32::try_from(*v).ok(),
        Expr::Alias(a) => int4_constant(&a.expr),
        Expr::Negative(e) => int4_constant(e)?.checked_neg(),
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
            let (l, r) = (int4_constant(left)?, int4_constant(right)?);
            match op {
                Operator::Plus => l.checked_add(r),
                Operator::Minus => l.checked_sub(r),
                Operator::Multiply => l.checked_mul(r),
                Operator::Divide => l.checked_div(r),
                Operator::Modulo => l.checked_rem(r),
                _ => None,
            }
        }
        _ => None,
    }
}

/// Whether `expr` is a value PostgreSQL types `int4` from its constants: integer
/// constant arithmetic that fits, or a CASE or type-following function (`coalesce`,
/// `nullif`, `greatest`, `least`, an ARRAY) whose results are such constants or NULL,
/// one at least a constant.
fn int4_valued(expr: &Expr) -> bool {
    fn branch(expr: &Expr, constant: &mut bool) -> bool {
        match expr {
            // NULL, also as the planner types it in a VALUES column of integers.
            Expr::Literal(ScalarValue::Null | ScalarValue::Int64(None), _) => true,
            Expr::Case(case) => {
                case.when_then_expr
                    .iter()
                    .all(|(_, then)| branch(then, constant))
                    && case
                        .else_expr
                        .as_deref()
                        .is_none_or(|e| branch(e, constant))
            }
            Expr::ScalarFunction(f)
                if matches!(
                    f.name(),
                    "coalesce" | "nullif" | "greatest" | "least" | "make_array"
                ) =>
            {
                !f.args.is_empty() && f.args.iter().all(|a| branch(a, constant))
            }
            Expr::Alias(a) => branch(&a.expr, constant),
            other => {
                let fits = int4_constant(other).is_some();
                *constant |= fits;
                fits
            }
        }
    }
    let mut constant = false;
    branch(expr, &mut constant) && constant
}

fn narrowed(expr: Expr) -> Result<Transformed<Expr>> {
    if !int4_valued(&expr) {
        // pg_typeof(1) is `integer`, wherever it is: its argument is only reported on.
        return expr.transform_up(|e| match e {
            Expr::ScalarFunction(f)
                if f.name() == "pg_typeof" && f.args.first().is_some_and(int4_valued) =>
            {
                Expr::ScalarFunction(f).map_children(narrow_results)
            }
            other => Ok(Transformed::no(other)),
        });
    }
    narrow_results(expr)
}

/// The constants `expr` (an [`int4_valued`] one) takes its value from as `Int32`: a
/// CASE's results, not its conditions (`WHEN x * 3 > 5` keeps computing in `Int64`).
fn narrow_results(expr: Expr) -> Result<Transformed<Expr>> {
    match expr {
        Expr::Case(mut case) => {
            case.when_then_expr = case
                .when_then_expr
                .into_iter()
                .map(|(when, then)| Ok((when, Box::new(narrow_results(*then)?.data))))
                .collect::<Result<_>>()?;
            if let Some(e) = case.else_expr.take() {
                case.else_expr = Some(Box::new(narrow_results(*e)?.data));
            }
            Ok(Transformed::yes(Expr::Case(case)))
        }
        Expr::ScalarFunction(_) | Expr::Alias(_) => expr.map_children(narrow_results),
        other => narrow_literals(other),
    }
}

/// Every `Int64` literal of `expr` as `Int32` (callers checked that they fit).
fn narrow_literals(expr: Expr) -> Result<Transformed<Expr>> {
    expr.transform_up(|e| match e {
        Expr::Literal(ScalarValue::Int64(None), metadata) => Ok(Transformed::yes(Expr::Literal(
            ScalarValue::Int32(None),
            metadata,
        ))),
        Expr::Literal(ScalarValue::Int64(Some(v)), metadata) => {
            // Literals that do not fit stay Int64 (a CASE condition's `x > 5000000000`).
            let Ok(v) = i32::try_from(v) else {
                return Ok(Transformed::no(Expr::Literal(
                    ScalarValue::Int64(Some(v)),
                    metadata,
                )));
            };
            Ok(Transformed::yes(Expr::Literal(
                ScalarValue::Int32(Some(v)),
                metadata,
            )))
        }
        other => Ok(Transformed::no(other)),
    })
}

/// Rewrites the projection that produces the query's rows (under any ORDER BY,
/// LIMIT or DISTINCT); `plan` as it is when it has none (DML, EXPLAIN, UNION, ...).
fn output_projection(plan: LogicalPlan) -> Result<Transformed<LogicalPlan>> {
    match plan {
        LogicalPlan::Projection(_) => {
            let names = NamePreserver::new(&plan);
            plan.map_expressions(|e| {
                let name = names.save(&e);
                narrowed(e).map(|t| t.update_data(|e| name.restore(e)))
            })?
            .transform_data(|p| {
                // The rows it uses as they are: `SELECT x FROM (VALUES (1)) v(x)`.
                if uses_values_as_they_are(&p) {
                    p.map_children(output_projection)
                } else {
                    Ok(Transformed::no(p))
                }
            })?
            .map_data(|p| p.recompute_schema())
        }
        LogicalPlan::Sort(_)
        | LogicalPlan::Limit(_)
        | LogicalPlan::Distinct(_)
        | LogicalPlan::SubqueryAlias(_) => plan
            .map_children(output_projection)?
            .map_data(|p| p.recompute_schema()),
        // Each branch typed on its own; type coercion (after this rule) then finds the
        // common type, as PostgreSQL resolves a UNION's (`1` with a bigint is bigint).
        LogicalPlan::Union(_) => plan.map_children(output_projection)?.map_data(|p| match p {
            LogicalPlan::Union(u) => {
                Union::try_new_with_loose_types(u.inputs).map(LogicalPlan::Union)
            }
            other => Ok(other),
        }),
        LogicalPlan::Values(values) => {
            let columns = values.values.first().map_or(0, Vec::len);
            let narrow: Vec<bool> = (0..columns)
                .map(|c| {
                    let column = || values.values.iter().map(|row| &row[c]);
                    column().all(|e| {
                        int4_valued(e)
                            || matches!(
                                e,
                                Expr::Literal(ScalarValue::Null | ScalarValue::Int64(None), _)
                            )
                    }) && column().any(int4_valued)
                })
                .collect();
            if !narrow.contains(&true) {
                return Ok(Transformed::no(LogicalPlan::Values(values)));
            }
            let rows = values
                .values
                .into_iter()
                .map(|row| {
                    row.into_iter()
                        .zip(&narrow)
                        .map(|(e, n)| {
                            if *n {
                                narrow_results(e).map(|t| t.data)
                            } else {
                                Ok(e)
                            }
                        })
                        .collect::<Result<Vec<_>>>()
                })
                .collect::<Result<Vec<_>>>()?;
            // The planner's schema with the narrowed types (`Int32`, `List(Int32)`): its
            // nullability stays (a table created from VALUES takes NULLs later).
            let empty = DFSchema::empty();
            let mut fields = Vec::with_capacity(columns);
            for (c, f) in values.schema.fields().iter().enumerate() {
                let mut field = f.as_ref().clone();
                if narrow[c] {
                    for row in &rows {
                        let dt = row[c].get_type(&empty)?;
                        if dt != DataType::Null {
                            field = field.with_data_type(dt);
                            break;
                        }
                    }
                }
                fields.push(field);
            }
            let schema = DFSchema::try_from(Schema::new_with_metadata(
                fields,
                values.schema.metadata().clone(),
            ))?;
            Ok(Transformed::yes(LogicalPlan::Values(Values {
                schema: Arc::new(schema),
                values: rows,
            })))
        }
        other => Ok(Transformed::no(other)),
    }
}

/// Whether projection `plan` uses its input's values only as they are: output as is,
/// compared, tested, chosen between (CASE, `coalesce`), reported on (`pg_typeof`),
/// never computed with (`x * x` on an `Int32` could overflow where the `Int64` did not).
fn uses_values_as_they_are(plan: &LogicalPlan) -> bool {
    fn has_column(expr: &Expr) -> bool {
        let mut found = false;
        let _ = expr.apply(|e| {
            found |= matches!(e, Expr::Column(_));
            Ok(if found {
                TreeNodeRecursion::Stop
            } else {
                TreeNodeRecursion::Continue
            })
        });
        found
    }
    let LogicalPlan::Projection(p) = plan else {
        return false;
    };
    let mut safe = true;
    for expr in &p.expr {
        let _ = expr.apply(|e| {
            let computes = match e {
                Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
                    !matches!(
                        op,
                        Operator::Eq
                            | Operator::NotEq
                            | Operator::Lt
                            | Operator::LtEq
                            | Operator::Gt
                            | Operator::GtEq
                            | Operator::IsDistinctFrom
                            | Operator::IsNotDistinctFrom
                            | Operator::And
                            | Operator::Or
                    ) && (has_column(left) || has_column(right))
                }
                Expr::Negative(inner) => has_column(inner),
                Expr::ScalarFunction(f) => {
                    !matches!(
                        f.name(),
                        "pg_typeof" | "coalesce" | "nullif" | "greatest" | "least"
                    ) && f.args.iter().any(has_column)
                }
                _ => false,
            };
            safe &= !computes;
            Ok(if safe {
                TreeNodeRecursion::Continue
            } else {
                TreeNodeRecursion::Stop
            })
        });
    }
    safe
}

/// `plan` with its output columns typed as PostgreSQL types them: what the rule does
/// for a query, for a plan the engine fills a table from (CREATE TABLE AS), which the
/// analyzer sees only under the INSERT.
pub(crate) fn postgres_output_types(plan: LogicalPlan) -> Result<LogicalPlan> {
    output_projection(plan).map(|t| t.data)
}

impl AnalyzerRule for IntegerLiterals {
    fn analyze(&self, plan: LogicalPlan, _: &ConfigOptions) -> Result<LogicalPlan> {
        postgres_output_types(plan)
    }

    fn name(&self) -> &str {
        "pg_integer_literals"
    }
}
