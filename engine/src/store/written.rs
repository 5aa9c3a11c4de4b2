//! The rows a statement wrote, kept for its RETURNING clause.

use std::sync::Arc;

use datafusion::arrow::record_batch::RecordBatch;
use parking_lot::Mutex;

/// Set in a statement's configuration when it has a RETURNING clause: its table's
/// writer adds the rows it inserts, the new versions of the rows it updates, and the
/// rows it deletes.
#[derive(Default, Clone)]
pub(crate) struct WrittenRows(Arc<Mutex<Vec<RecordBatch>>>);

impl WrittenRows {
    pub(crate) fn add(&self, batch: RecordBatch) {
        if batch.num_rows() > 0 {
            self.0.lock().push(batch);
        }
    }

    /// The rows written so far, taken.
    pub(crate) fn take(&self) -> Vec<RecordBatch> {
        std::mem::take(&mut *self.0.lock())
    }
}

impl std::fmt::Debug for WrittenRows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WrittenRows")
    }
}

crate::store::internal_extension!(WrittenRows, "wasmudf_written");
