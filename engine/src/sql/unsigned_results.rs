//! Result columns of DataFusion's unsigned types as PostgreSQL's signed ones: window
//! ranks (`row_number()`, `rank()`, `dense_rank()`, `ntile()`) and array sizes
//! (`array_length`, `cardinality`) are `UInt64` in DataFusion, which goes out as
//! `numeric` (the type that keeps every value), so psycopg reads `Decimal('1')` and
//! pgjdbc a BigDecimal where PostgreSQL gives `bigint` (ranks) or `integer` (sizes).
//!
//! An analyzer rule on the query's output only: an output column that is one of those
//! functions is cast to PostgreSQL's type. Other unsigned columns (a Wasm function's
//! `u64` result) keep going out as `numeric`, which holds every value.

use std::collections::HashSet;
use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::common::{Column, Result};
use datafusion::logical_expr::{cast, Expr, LogicalPlan, Projection};
use datafusion::optimizer::analyzer::AnalyzerRule;

/// Casts the query's output columns that are window ranks or array sizes to
/// PostgreSQL's signed types.
#[derive(Debug, Default)]
pub(crate) struct UnsignedResults;

/// Functions PostgreSQL types `integer` whose DataFusion result is `UInt64`.
const INT4_SIZES: &[&str] = &[
    "array_length",
    "cardinality",
    "array_ndims",
    "array_position",
    "list_length",
];

/// Window functions PostgreSQL types `bigint` whose DataFusion result is `UInt64`.
const INT8_RANKS: &[&str] = &["row_number", "rank", "dense_rank", "ntile"];

/// The names of the columns window nodes add for the functions in [`INT8_RANKS`].
pub(crate) fn rank_columns(plan: &LogicalPlan) -> HashSet<String> {
    let mut names = HashSet::new();
    let _ = plan.apply(|node| {
        if let LogicalPlan::Window(window) = node {
            for e in &window.window_expr {
                let mut inner = e;
                while let Expr::Alias(alias) = inner {
                    inner = &alias.expr;
                }
                if let Expr::WindowFunction(f) = inner {
                    if INT8_RANKS.contains(&f.fun.name()) {
                        names.insert(e.schema_name().to_string());
                    }
                }
            }
        }
        Ok(TreeNodeRecursion::Continue)
    });
    names
}

/// PostgreSQL's type for `expr` when it is an array size (`integer`) or a reference to
/// one of the window ranks in `ranks` (`bigint`, see [`rank_columns`]).
pub(crate) fn signed_type(expr: &Expr, ranks: &HashSet<String>) -> Option<DataType> {
    match expr {
        Expr::Alias(alias) => signed_type(&alias.expr, ranks),
        Expr::ScalarFunction(f) if INT4_SIZES.contains(&f.name()) => Some(DataType::Int32),
        Expr::Column(c) if ranks.contains(&c.name) => Some(DataType::Int64),
        _ => None,
    }
}

/// The projection that computes a query's output columns: the root, or the first one
/// under the sorts, limits and filters above it.
fn output_projection(plan: &LogicalPlan) -> Option<&Projection> {
    match plan {
        LogicalPlan::Projection(p) => Some(p),
        LogicalPlan::Sort(s) => output_projection(&s.input),
        LogicalPlan::Limit(l) => output_projection(&l.input),
        LogicalPlan::Filter(f) => output_projection(&f.input),
        _ => None,
    }
}

/// Whether `plan` is a query whose columns go to the client (not DML, DDL or EXPLAIN).
fn is_query(plan: &LogicalPlan) -> bool {
    matches!(
        plan,
        LogicalPlan::Projection(_)
            | LogicalPlan::Sort(_)
            | LogicalPlan::Limit(_)
            | LogicalPlan::Filter(_)
            | LogicalPlan::Distinct(_)
            | LogicalPlan::Aggregate(_)
            | LogicalPlan::Window(_)
            | LogicalPlan::Union(_)
            | LogicalPlan::SubqueryAlias(_)
            | LogicalPlan::TableScan(_)
            | LogicalPlan::Join(_)
            | LogicalPlan::Values(_)
    )
}

impl AnalyzerRule for UnsignedResults {
    fn analyze(&self, plan: LogicalPlan, _: &ConfigOptions) -> Result<LogicalPlan> {
        if !is_query(&plan)
            || !plan
                .schema()
                .fields()
                .iter()
                .any(|f| f.data_type() == &DataType::UInt64)
        {
            return Ok(plan);
        }
        let computed = output_projection(&plan).map(|p| p.expr.clone());
        let ranks = rank_columns(&plan);
        let mut changed = false;
        let exprs = plan
            .schema()
            .iter()
            .enumerate()
            .map(|(i, (qualifier, field))| {
                let column = Expr::Column(Column::new(qualifier.cloned(), field.name()));
                if field.data_type() != &DataType::UInt64 {
                    return column;
                }
                let target = match computed.as_ref().and_then(|c| c.get(i)) {
                    Some(e) => signed_type(e, &ranks),
                    // A rank output directly by its window node.
                    None => ranks.contains(field.name()).then_some(DataType::Int64),
                };
                let Some(target) = target else {
                    return column;
                };
                changed = true;
                cast(column, target).alias_qualified(qualifier.cloned(), field.name())
            })
            .collect();
        if !changed {
            return Ok(plan);
        }
        Ok(LogicalPlan::Projection(Projection::try_new(
            exprs,
            Arc::new(plan),
        )?))
    }

    fn name(&self) -> &str {
        "pg_unsigned_results"
    }
}
