//! Where queries execute: a dedicated multi-threaded runtime, apart from the caller's.
//!
//! A Wasm call runs synchronously inside DataFusion's stream polling and may take up to
//! its `wasm.timeout`. On the caller's runtime (the server's) that would block a worker
//! thread and everything queued behind it: accepting connections, CancelRequests,
//! `statement_timeout` timers. Executing plans here keeps the caller's runtime free
//! (DataFusion's recommended pattern for CPU-bound work inside an I/O service).

use std::sync::Arc;

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::TaskContext;
use datafusion::physical_plan::{execute_stream, ExecutionPlan};
use futures::StreamExt;
use tokio::runtime::Runtime;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tracing::Instrument;

/// Batches in flight between the executor and the consumer, per query.
const BUFFERED_BATCHES: usize = 2;

/// The query execution runtime of a database.
pub(crate) struct Executor {
    runtime: Option<Runtime>,
}

impl Executor {
    /// A runtime with `threads` workers of `stack` bytes of stack each.
    pub(crate) fn new(threads: usize, stack: usize) -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_stack_size(stack)
            .thread_name("wasmudf-exec")
            .enable_all()
            .build()?;
        Ok(Executor {
            runtime: Some(runtime),
        })
    }

    /// Starts `plan` on the executor; its batches arrive on the returned channel
    /// (closed after the last batch or the first error). Dropping the receiver stops
    /// the execution at its next batch; the abort handle stops it at its next await.
    pub(crate) fn execute(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        ctx: Arc<TaskContext>,
    ) -> DfResult<(mpsc::Receiver<DfResult<RecordBatch>>, AbortHandle)> {
        let runtime = self
            .runtime
            .as_ref()
            .ok_or_else(|| DataFusionError::Internal("executor shut down".into()))?;
        let (tx, rx) = mpsc::channel(BUFFERED_BATCHES);
        // The statement's span follows the plan, so guest-call spans nest under it.
        let span = tracing::Span::current();
        let task = runtime.spawn(
            async move {
                let mut stream = match execute_stream(plan, ctx) {
                    Ok(s) => s,
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                };
                while let Some(item) = stream.next().await {
                    let failed = item.is_err();
                    if tx.send(item).await.is_err() || failed {
                        break;
                    }
                }
            }
            .instrument(span),
        );
        Ok((rx, task.abort_handle()))
    }
}

impl Executor {
    /// Runs blocking work (a component's compile and load-time code, a catalog commit)
    /// on this runtime's blocking threads: never on the caller's network threads,
    /// and never on the workers that run query plans.
    pub(crate) fn spawn_blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> DfResult<tokio::task::JoinHandle<T>> {
        let runtime = self
            .runtime
            .as_ref()
            .ok_or_else(|| DataFusionError::Internal("executor shut down".into()))?;
        Ok(runtime.spawn_blocking(work))
    }
}

impl Drop for Executor {
    fn drop(&mut self) {
        // Dropping a runtime from async code panics; queries still running were
        // canceled with their sessions and stop at their next epoch tick.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
