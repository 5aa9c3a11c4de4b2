//! A session's uncommitted table changes: what its open transaction block has written,
//! seen by its own statements only, committed at once at COMMIT and forgotten at
//! ROLLBACK. Savepoints keep the changes as they were, and ROLLBACK TO goes back to
//! them.

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::error::{Error, Result};
use crate::store::keys::KeyDelta;
use crate::store::table::{TableChange, TableStore};

/// One session's transaction state as the tables see it.
#[derive(Debug, Default)]
pub(crate) struct Transaction {
    inner: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// In a transaction block: statements' changes wait for COMMIT.
    in_block: bool,
    /// Counts the blocks begun and ended (and ROLLBACK TOs): a statement's change
    /// goes to the block it was planned in, or nowhere.
    generation: u64,
    changes: Changes,
    /// Savepoints, oldest first, with the changes as they were when each was set.
    savepoints: Vec<(String, Changes)>,
}

/// Changes by table.
type Changes = BTreeMap<u64, TableChange>;

/// A session's transaction as one statement planned it. A statement canceled while
/// its writer runs on (a cancel ends the statement at once) must not add its change
/// to the block after a ROLLBACK, nor to the next block: it adds to the block it was
/// planned in, or fails.
#[derive(Debug, Clone)]
pub(crate) struct StatementTransaction {
    transaction: Arc<Transaction>,
    generation: u64,
}

impl StatementTransaction {
    /// Whether the statement runs in a transaction block that is still going on.
    pub(crate) fn in_block(&self) -> bool {
        let state = self.transaction.inner.lock();
        state.in_block && state.generation == self.generation
    }

    /// Adds the statement's change to its block; 57014 if that block has ended.
    pub(crate) fn add(&self, change: TableChange) -> Result<()> {
        let mut state = self.transaction.inner.lock();
        if !(state.in_block && state.generation == self.generation) {
            return Err(Error::QueryCanceled(
                crate::error::CancelReason::UserRequest,
            ));
        }
        match state.changes.get_mut(&change.table.id) {
            Some(had) => had.absorb(change),
            None => {
                state.changes.insert(change.table.id, change);
            }
        }
        Ok(())
    }

    /// [`Transaction::change_of`].
    pub(crate) fn change_of(&self, id: u64) -> Option<TableChange> {
        self.transaction.change_of(id)
    }

    /// [`Transaction::with_keys_of`].
    pub(crate) fn with_keys_of<R>(&self, id: u64, f: impl FnOnce(Option<&[KeyDelta]>) -> R) -> R {
        self.transaction.with_keys_of(id, f)
    }
}

/// The session's [`Transaction`], as a session config extension: table providers find
/// it in the state they plan with.
#[derive(Debug)]
pub(crate) struct TransactionOfSession(pub(crate) Arc<Transaction>);

impl Transaction {
    /// Whether statements' changes wait for COMMIT.
    pub(crate) fn in_block(&self) -> bool {
        self.inner.lock().in_block
    }

    /// A transaction block starts.
    pub(crate) fn begin(&self) {
        let mut state = self.inner.lock();
        state.in_block = true;
        state.generation += 1;
        // A change can only be left here by a statement of an ended block.
        state.changes.clear();
    }

    /// The transaction as a statement planned now sees it.
    pub(crate) fn for_statement(self: &Arc<Self>) -> StatementTransaction {
        StatementTransaction {
            generation: self.inner.lock().generation,
            transaction: self.clone(),
        }
    }

    /// `f` of this transaction's key changes of table `id` (`None` without a change
    /// of it), read in place: they grow with the transaction.
    pub(crate) fn with_keys_of<R>(&self, id: u64, f: impl FnOnce(Option<&[KeyDelta]>) -> R) -> R {
        let state = self.inner.lock();
        f(state.changes.get(&id).map(|c| c.keys.as_slice()))
    }

    /// This transaction's change of table `id`, if it has one.
    pub(crate) fn change_of(&self, id: u64) -> Option<TableChange> {
        self.inner.lock().changes.get(&id).cloned()
    }

    /// Ends the block, committing its changes through `store` (all or none). On error
    /// (40001) nothing was committed, and the block is over all the same.
    pub(crate) async fn commit(&self, store: &TableStore) -> Result<()> {
        let changes = self.end();
        let changes: Vec<TableChange> = changes.into_values().collect();
        store.commit_and_compact(&changes).await
    }

    /// Ends the block, forgetting its changes (their files are deleted when no query
    /// reads them any more).
    pub(crate) fn rollback(&self) {
        drop(self.end());
    }

    fn end(&self) -> Changes {
        let mut state = self.inner.lock();
        state.in_block = false;
        state.generation += 1;
        state.savepoints.clear();
        std::mem::take(&mut state.changes)
    }

    /// `SAVEPOINT name`.
    pub(crate) fn savepoint(&self, name: &str) {
        let mut state = self.inner.lock();
        let now = state.changes.clone();
        state.savepoints.push((name.to_string(), now));
    }

    /// `RELEASE [SAVEPOINT] name`: it and the savepoints after it are gone; the changes stay.
    pub(crate) fn release(&self, name: &str) -> Result<()> {
        let mut state = self.inner.lock();
        let at = find(&state.savepoints, name)?;
        state.savepoints.truncate(at);
        Ok(())
    }

    /// `ROLLBACK TO [SAVEPOINT] name`: the changes as they were at it; it stays, the
    /// savepoints after it are gone.
    pub(crate) fn rollback_to(&self, name: &str) -> Result<()> {
        let mut state = self.inner.lock();
        let at = find(&state.savepoints, name)?;
        state.savepoints.truncate(at + 1);
        state.changes = state.savepoints[at].1.clone();
        state.generation += 1;
        Ok(())
    }
}

/// The newest savepoint named `name` (PostgreSQL lets a name repeat).
fn find(savepoints: &[(String, Changes)], name: &str) -> Result<usize> {
    savepoints
        .iter()
        .rposition(|(n, _)| n == name)
        .ok_or_else(|| {
            Error::UndefinedSavepoint(format!(
                "savepoint \"{}\" does not exist",
                crate::error::guest_text(name)
            ))
        })
}
