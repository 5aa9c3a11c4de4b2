//! PostgreSQL's types for integer literals: `1` is an `int4` when it fits, as in
//! PostgreSQL, where DataFusion plans every integer literal as `Int64`. Clients decode
//! by the announced type (node-postgres turns int4 into a number, int8 into a string),
//! so `SELECT 1` must be int4.
//!
//! An analyzer rule that runs before type coercion, on the query's output columns
//! only: a column that is integer constant arithmetic (`1`, `-1`, `2 + 3 AS five`)
//! whose every step fits in 32 bits becomes `Int32`, as PostgreSQL types it.
//! Elsewhere literals keep DataFusion's `Int64`: coercion inside expressions and
//! subqueries depends on it, and the type of a value inside an expression is not
//! something a client sees.

use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::{BinaryExpr, Expr, LogicalPlan, Operator};
use datafusion::optimizer::analyzer::{Analyzer, AnalyzerRule};

/// Types the output columns that are small integer constants as `Int32`.
#[derive(Debug, Default)]
pub(crate) struct IntegerLiterals;

impl IntegerLiterals {
    /// DataFusion's analyzer rules with this one first (before type coercion).
    pub(crate) fn with_default_rules() -> Vec<Arc<dyn AnalyzerRule + Send + Sync>> {
        let mut rules: Vec<Arc<dyn AnalyzerRule + Send + Sync>> = vec![Arc::new(IntegerLiterals)];
        rules.extend(Analyzer::new().rules);
        rules
    }
}

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

fn narrowed(expr: Expr) -> Result<Transformed<Expr>> {
    if int4_constant(&expr).is_none() {
        return Ok(Transformed::no(expr));
    }
    expr.transform_up(|e| match e {
        Expr::Literal(ScalarValue::Int64(Some(v)), metadata) => {
            let v = i32::try_from(v).unwrap_or_else(|_| unreachable!("checked by int4_constant"));
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
            .map_data(|p| p.recompute_schema())
        }
        LogicalPlan::Sort(_) | LogicalPlan::Limit(_) | LogicalPlan::Distinct(_) => plan
            .map_children(output_projection)?
            .map_data(|p| p.recompute_schema()),
        other => Ok(Transformed::no(other)),
    }
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
