//! EXPLAIN ANALYZE figures of Wasm calls, on the plan node that makes them.
//!
//! A UDF is not told which plan node calls it. Under EXPLAIN ANALYZE each node whose
//! own expressions call a Wasm function is wrapped in a [`WasmCallsExec`]; while it
//! polls the node, the wrapper makes its figures the thread's sink, and every guest
//! call the node makes during that poll (synchronously, on the polling thread) adds to
//! them. A wrapped node further down has its own wrapper, which sets and then restores
//! the sink around its own polls, so each call counts on the node that made it. Plans
//! outside EXPLAIN ANALYZE are not wrapped: they pay nothing.

use std::cell::RefCell;
use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::error::Result as DfResult;
use datafusion::execution::{RecordBatchStream, SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{PhysicalExpr, ScalarFunctionExpr};
use datafusion::physical_plan::aggregates::AggregateExec;
use datafusion::physical_plan::analyze::AnalyzeExec;
use datafusion::physical_plan::metrics::{
    Count, Metric, MetricType, MetricValue, MetricsSet, Time,
};
use datafusion::physical_plan::windows::{BoundedWindowAggExec, WindowAggExec};
use datafusion::physical_plan::{
    ChildrenPropertiesMode, DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties,
    ReplaceChildrenOptions,
};
use futures::Stream;
use parking_lot::Mutex;

use crate::udf::aggregate::WasmAggregateUdf;
use crate::udf::scalar::WasmScalarUdf;
use crate::udf::stats::{CallFigures, PerFunction};

thread_local! {
    static SINK: RefCell<Option<Arc<NodeCalls>>> = const { RefCell::new(None) };
}

/// Adds one call of `function` to the plan node being polled on this thread, if it is
/// wrapped (only under EXPLAIN ANALYZE).
pub(crate) fn note(function: &Arc<str>, call: &CallFigures) {
    SINK.with(|sink| {
        if let Some(node) = &*sink.borrow() {
            node.lock().add(function, call);
        }
    });
}

/// The calls one wrapped node made, per function.
type NodeCalls = Mutex<PerFunction>;

/// Under EXPLAIN ANALYZE (`plan` is an [`AnalyzeExec`]), wraps every node that calls a
/// Wasm function in a [`WasmCallsExec`]; any other plan is returned as it is.
pub(crate) fn show_wasm_calls(plan: Arc<dyn ExecutionPlan>) -> DfResult<Arc<dyn ExecutionPlan>> {
    if plan.downcast_ref::<AnalyzeExec>().is_none() {
        return Ok(plan);
    }
    plan.transform_up(|node| {
        let functions = wasm_functions_of(node.as_ref())?;
        if functions.is_empty() {
            return Ok(Transformed::no(node));
        }
        Ok(Transformed::yes(Arc::new(WasmCallsExec {
            properties: node.properties().clone(),
            input: node,
            functions,
            calls: Arc::new(NodeCalls::default()),
        }) as Arc<dyn ExecutionPlan>))
    })
    .map(|t| t.data)
}

/// The Wasm functions `node`'s own expressions call (not its children's).
fn wasm_functions_of(node: &dyn ExecutionPlan) -> DfResult<Vec<String>> {
    let mut names = Vec::new();
    let mut add = |name: &str| {
        if !names.iter().any(|n| n == name) {
            names.push(name.to_string());
        }
    };
    node.apply_expressions(&mut |root| {
        root.apply(|e: &Arc<dyn PhysicalExpr>| {
            if let Some(call) = e.downcast_ref::<ScalarFunctionExpr>() {
                if call.fun().inner().downcast_ref::<WasmScalarUdf>().is_some() {
                    add(call.name());
                }
            }
            Ok(TreeNodeRecursion::Continue)
        })
    })?;
    let is_wasm = |udf: &datafusion::logical_expr::AggregateUDF| {
        udf.inner().downcast_ref::<WasmAggregateUdf>().is_some()
    };
    if let Some(agg) = node.downcast_ref::<AggregateExec>() {
        for a in agg.aggr_expr() {
            if is_wasm(a.fun()) {
                add(a.fun().name());
            }
        }
    }
    let windows = match (
        node.downcast_ref::<BoundedWindowAggExec>(),
        node.downcast_ref::<WindowAggExec>(),
    ) {
        (Some(w), _) => w.window_expr(),
        (_, Some(w)) => w.window_expr(),
        _ => &[],
    };
    for w in windows {
        use datafusion::physical_expr::window::{
            PlainAggregateWindowExpr, SlidingAggregateWindowExpr,
        };
        let any = w.as_any();
        let agg = any
            .downcast_ref::<PlainAggregateWindowExpr>()
            .map(|p| p.get_aggregate_expr())
            .or_else(|| {
                any.downcast_ref::<SlidingAggregateWindowExpr>()
                    .map(|s| s.get_aggregate_expr())
            });
        if let Some(agg) = agg.filter(|a| is_wasm(a.fun())) {
            add(agg.fun().name());
        }
    }
    Ok(names)
}

/// A transparent node above one that calls Wasm functions: it passes batches through
/// and reports the guest calls its input made, per function, as metrics.
#[derive(Debug)]
pub(crate) struct WasmCallsExec {
    input: Arc<dyn ExecutionPlan>,
    properties: Arc<PlanProperties>,
    /// The functions the input calls, as planned.
    functions: Vec<String>,
    calls: Arc<NodeCalls>,
}

impl DisplayAs for WasmCallsExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "WasmCallsExec: functions=[{}]",
            self.functions.join(", ")
        )
    }
}

impl ExecutionPlan for WasmCallsExec {
    fn name(&self) -> &'static str {
        "WasmCallsExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn replace_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
        _: ReplaceChildrenOptions,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let input = children.swap_remove(0);
        Ok(Arc::new(WasmCallsExec {
            properties: input.properties().clone(),
            input,
            functions: self.functions.clone(),
            calls: self.calls.clone(),
        }))
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        self.replace_children(
            children,
            ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
        )
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> DfResult<SendableRecordBatchStream> {
        let calls = self.calls.clone();
        // The input may call guest code as it starts (a scan's setup does not, but an
        // aggregate's first accumulators may): that counts here too.
        let input = within(&calls, || self.input.execute(partition, context))?;
        Ok(Box::pin(CountingStream { input, calls }))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        let mut set = MetricsSet::new();
        let by_function = self.calls.lock().clone();
        for (function, t) in by_function.0 {
            let count = |what: &str, n: u64| {
                let count = Count::new();
                count.add(usize::try_from(n).unwrap_or(usize::MAX));
                MetricValue::Count {
                    name: format!("wasm_{what}[{function}]").into(),
                    count,
                }
            };
            let time = Time::new();
            time.add_duration(t.guest);
            for value in [
                count("calls", t.calls),
                count("rows", t.rows),
                MetricValue::Time {
                    name: format!("wasm_guest_time[{function}]").into(),
                    time,
                },
                count("fuel", t.fuel),
            ] {
                set.push(Arc::new(
                    Metric::new(value, None).with_type(MetricType::Summary),
                ));
            }
        }
        Some(set)
    }
}

/// Runs `f` with `calls` as this thread's sink, restoring the sink it had (also if
/// `f` panics: the thread goes on polling other plans).
fn within<R>(calls: &Arc<NodeCalls>, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<Arc<NodeCalls>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let outer = self.0.take();
            SINK.with(|s| *s.borrow_mut() = outer);
        }
    }
    let _restore = Restore(SINK.with(|s| s.replace(Some(calls.clone()))));
    f()
}

/// The input's batches, polled with the node's sink in place.
struct CountingStream {
    input: SendableRecordBatchStream,
    calls: Arc<NodeCalls>,
}

impl Stream for CountingStream {
    type Item = DfResult<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        within(&this.calls, || this.input.as_mut().poll_next(cx))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.input.size_hint()
    }
}

impl RecordBatchStream for CountingStream {
    fn schema(&self) -> SchemaRef {
        self.input.schema()
    }
}
