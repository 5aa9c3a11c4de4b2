//! Whether the session's transaction block has failed. After an error inside a block,
//! PostgreSQL refuses every statement but those that end it (`25P02`) until `ROLLBACK`,
//! `COMMIT` (which then rolls back) or `ROLLBACK TO SAVEPOINT`; drivers rely on it, and
//! on ReadyForQuery saying so.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::SendableRecordBatchStream;
use futures::StreamExt;

/// The transaction state ReadyForQuery reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransactionState {
    /// No transaction block (`I`).
    Idle,
    /// In a transaction block (`T`).
    InBlock,
    /// In a failed transaction block (`E`): statements are refused until it ends.
    Failed,
}

/// The failed mark of a session's block, shared with its result streams: a query can
/// fail while its rows are read, after the statement itself returned.
#[derive(Clone, Default)]
pub(crate) struct FailedMark(Arc<AtomicBool>);

impl FailedMark {
    pub(crate) fn set(&self) {
        self.0.store(true, Ordering::Release);
    }

    pub(crate) fn clear(&self) {
        self.0.store(false, Ordering::Release);
    }

    pub(crate) fn is_set(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    /// `stream`, setting the mark if it yields an error.
    pub(crate) fn watch(&self, stream: SendableRecordBatchStream) -> SendableRecordBatchStream {
        let mark = self.clone();
        let schema = stream.schema();
        Box::pin(RecordBatchStreamAdapter::new(
            schema,
            stream.inspect(move |item| {
                if item.is_err() {
                    mark.set();
                }
            }),
        ))
    }
}
