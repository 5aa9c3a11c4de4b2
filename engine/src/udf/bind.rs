//! Binding the Wasm functions of a plan to the query it is planned for.
//!
//! DataFusion hands accumulators no configuration, and a plain `SessionContext::sql`
//! carries no query identity at all. [`BindWasmFunctions`] is an analyzer rule that
//! gives every Wasm function in a plan its query: the scope [`crate::Engine::query`]
//! put in the configuration, or, for a query planned without one, a fresh scope of
//! its own, so guest instances are still pooled within that query and never reused
//! across queries.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::common::Result as DfResult;
use datafusion::execution::SessionState;
use datafusion::logical_expr::{
    AggregateUDF, Expr, LogicalPlan, ScalarUDF, WindowFunctionDefinition,
};
use datafusion::optimizer::AnalyzerRule;

use crate::udf::aggregate::{Binding, WasmAggregateUdf};
use crate::udf::scalar::WasmScalarUdf;
use crate::udf::scope::QueryScope;
use crate::udf::settings::WasmSettings;

/// Analyzer rule that binds every Wasm function of a plan to the query being planned.
/// It runs wherever the query's state plans, including the stored plans of views the
/// query reads (which carry the functions as they were when the view was defined), so
/// those are bound anew for each query too.
#[derive(Debug)]
pub(crate) struct BindWasmFunctions;

const NAME: &str = "bind_wasm_functions";

/// Adds [`BindWasmFunctions`] to `state` unless it is there already.
pub(crate) fn add_rule(state: &mut SessionState) {
    if !state.analyzer().rules.iter().any(|r| r.name() == NAME) {
        state.add_analyzer_rule(Arc::new(BindWasmFunctions));
    }
}

impl AnalyzerRule for BindWasmFunctions {
    fn analyze(&self, plan: LogicalPlan, config: &ConfigOptions) -> DfResult<LogicalPlan> {
        let settings = config.extensions.get::<WasmSettings>().cloned();
        // Scalars read the scope from the configuration at each call when there is
        // one; without one they carry their own.
        let (scope, bind_scalars) = match config.extensions.get::<QueryScope>() {
            Some(scope) => (scope.clone(), false),
            None => (
                QueryScope::new(
                    Arc::new(AtomicBool::new(false)),
                    Default::default(),
                    Default::default(),
                ),
                true,
            ),
        };
        let binding = Binding {
            scope: Some(scope.clone()),
            settings,
        };
        let aggregate = |f: &Arc<AggregateUDF>| {
            f.inner()
                .downcast_ref::<WasmAggregateUdf>()
                .map(|w| Arc::new(AggregateUDF::new_from_impl(w.bind(binding.clone()))))
        };
        let scalar = |f: &Arc<ScalarUDF>| {
            f.inner()
                .downcast_ref::<WasmScalarUdf>()
                .filter(|_| bind_scalars)
                .map(|w| Arc::new(ScalarUDF::new_from_impl(w.bind(scope.clone()))))
        };
        plan.transform_up_with_subqueries(|node| {
            node.map_expressions(|e| {
                e.transform_up(|e| {
                    Ok(match e {
                        Expr::ScalarFunction(mut s) => match scalar(&s.func) {
                            Some(f) => {
                                s.func = f;
                                Transformed::yes(Expr::ScalarFunction(s))
                            }
                            None => Transformed::no(Expr::ScalarFunction(s)),
                        },
                        Expr::AggregateFunction(mut a) => match aggregate(&a.func) {
                            Some(f) => {
                                a.func = f;
                                Transformed::yes(Expr::AggregateFunction(a))
                            }
                            None => Transformed::no(Expr::AggregateFunction(a)),
                        },
                        Expr::WindowFunction(mut w) => match &w.fun {
                            WindowFunctionDefinition::AggregateUDF(f) => match aggregate(f) {
                                Some(f) => {
                                    w.fun = WindowFunctionDefinition::AggregateUDF(f);
                                    Transformed::yes(Expr::WindowFunction(w))
                                }
                                None => Transformed::no(Expr::WindowFunction(w)),
                            },
                            _ => Transformed::no(Expr::WindowFunction(w)),
                        },
                        other => Transformed::no(other),
                    })
                })
            })
        })
        .data()
    }

    fn name(&self) -> &str {
        NAME
    }
}
