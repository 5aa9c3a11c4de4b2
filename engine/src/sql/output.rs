//! What a statement returns: rows, a command tag, or a COPY in either direction; and
//! what Describe says it will return.

use datafusion::arrow::array::AsArray;
use datafusion::arrow::datatypes::{DataType, SchemaRef, UInt64Type};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::error::Result as DfResult;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use futures::StreamExt;

use crate::pg::column_names;
use crate::pg::copy::{CopyFormat, CopyIn};

/// The completion tag of a command, as PostgreSQL sends it in CommandComplete
/// ([`std::fmt::Display`] spells it: `CREATE FUNCTION`, `INSERT 0 3`, `SELECT 5`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CommandTag {
    /// `BEGIN`: a transaction block starts.
    Begin,
    /// `COMMIT`: the transaction block ends.
    Commit,
    /// `ROLLBACK`: the transaction block ends.
    Rollback,
    /// `SET` of a setting.
    Set,
    /// `RESET` of a setting.
    Reset,
    /// `CREATE [OR REPLACE] FUNCTION`.
    CreateFunction,
    /// `DROP FUNCTION`.
    DropFunction,
    /// `DROP AGGREGATE`.
    DropAggregate,
    /// `CREATE TABLE` (and `CREATE EXTERNAL TABLE`).
    CreateTable,
    /// `CREATE VIEW`.
    CreateView,
    /// `CREATE SCHEMA`.
    CreateSchema,
    /// `DROP TABLE`.
    DropTable,
    /// `DROP VIEW`.
    DropView,
    /// `DROP SCHEMA`.
    DropSchema,
    /// `INSERT`, with the rows it inserted.
    Insert(u64),
    /// `UPDATE`, with the rows it changed.
    Update(u64),
    /// `DELETE`, with the rows it removed.
    Delete(u64),
    /// `TRUNCATE`.
    Truncate,
    /// `SELECT`, with its rows: what PostgreSQL reports for `CREATE TABLE ... AS`.
    Select(u64),
    /// `COPY ... FROM STDIN`, with the rows it added.
    Copy(u64),
    /// `ROLLBACK TO SAVEPOINT`: the transaction block goes on (spelled `ROLLBACK`).
    RollbackTo,
    /// `SAVEPOINT`.
    Savepoint,
    /// `RELEASE [SAVEPOINT]`.
    Release,
    /// `DISCARD ALL`: the client's prepared statements go too.
    DiscardAll,
    /// `DISCARD PLANS | SEQUENCES | TEMP`.
    Discard,
    /// `DEALLOCATE name`.
    Deallocate,
    /// `DEALLOCATE ALL`: every prepared statement of the connection goes.
    DeallocateAll,
    /// `PREPARE`.
    Prepare,
    /// `DECLARE ... CURSOR`.
    DeclareCursor,
    /// `CLOSE name`.
    CloseCursor,
    /// `CLOSE ALL`.
    CloseCursorAll,
    /// `MOVE`, with the rows it skipped.
    Move(u64),
    /// `LISTEN`.
    Listen,
    /// `UNLISTEN`.
    Unlisten,
}

impl CommandTag {
    /// The tag's words without the row count: `INSERT`, `CREATE FUNCTION`.
    pub fn command(&self) -> &'static str {
        match self {
            CommandTag::Begin => "BEGIN",
            CommandTag::Commit => "COMMIT",
            CommandTag::Rollback => "ROLLBACK",
            CommandTag::Set => "SET",
            CommandTag::Reset => "RESET",
            CommandTag::CreateFunction => "CREATE FUNCTION",
            CommandTag::DropFunction => "DROP FUNCTION",
            CommandTag::DropAggregate => "DROP AGGREGATE",
            CommandTag::CreateTable => "CREATE TABLE",
            CommandTag::CreateView => "CREATE VIEW",
            CommandTag::CreateSchema => "CREATE SCHEMA",
            CommandTag::DropTable => "DROP TABLE",
            CommandTag::DropView => "DROP VIEW",
            CommandTag::DropSchema => "DROP SCHEMA",
            CommandTag::Insert(_) => "INSERT",
            CommandTag::Update(_) => "UPDATE",
            CommandTag::Delete(_) => "DELETE",
            CommandTag::Truncate => "TRUNCATE TABLE",
            CommandTag::Select(_) => "SELECT",
            CommandTag::Copy(_) => "COPY",
            CommandTag::Savepoint => "SAVEPOINT",
            CommandTag::Release => "RELEASE",
            CommandTag::RollbackTo => "ROLLBACK",
            CommandTag::DiscardAll => "DISCARD ALL",
            CommandTag::Discard => "DISCARD",
            CommandTag::Deallocate => "DEALLOCATE",
            CommandTag::DeallocateAll => "DEALLOCATE ALL",
            CommandTag::Prepare => "PREPARE",
            CommandTag::DeclareCursor => "DECLARE CURSOR",
            CommandTag::CloseCursor => "CLOSE CURSOR",
            CommandTag::CloseCursorAll => "CLOSE CURSOR ALL",
            CommandTag::Move(_) => "MOVE",
            CommandTag::Listen => "LISTEN",
            CommandTag::Unlisten => "UNLISTEN",
        }
    }

    /// The tag's text before its row count: `INSERT 0`, `UPDATE`.
    pub fn prefix(&self) -> &'static str {
        match self {
            CommandTag::Insert(_) => "INSERT 0",
            other => other.command(),
        }
    }

    /// The rows the command affected, for the tags that report them.
    pub fn rows(&self) -> Option<u64> {
        match self {
            CommandTag::Insert(n)
            | CommandTag::Update(n)
            | CommandTag::Delete(n)
            | CommandTag::Select(n)
            | CommandTag::Copy(n)
            | CommandTag::Move(n) => Some(*n),
            _ => None,
        }
    }
}

impl std::fmt::Display for CommandTag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // PostgreSQL keeps the (always 0) OID field of INSERT's tag.
            CommandTag::Insert(n) => write!(f, "INSERT 0 {n}"),
            other => match other.rows() {
                Some(n) => write!(f, "{} {n}", other.command()),
                None => f.write_str(other.command()),
            },
        }
    }
}

/// What a statement produced.
#[non_exhaustive]
pub enum Output {
    /// A result set (SELECT, SHOW, EXPLAIN, ...), streamed batch by batch.
    Rows(SendableRecordBatchStream),
    /// A command that returns no rows, with its completion tag.
    Command(CommandTag),
    /// Rows of a cursor (`FETCH`: tag `FETCH n`).
    Fetch(SendableRecordBatchStream),
    /// The rows of an INSERT, UPDATE or DELETE with RETURNING: its tag's count is the
    /// number of rows (`INSERT 0 n`, `UPDATE n`); see [`CommandTag::prefix`].
    Written {
        /// The statement's tag (its count is that of `rows`).
        tag: CommandTag,
        /// The rows RETURNING computed.
        rows: SendableRecordBatchStream,
    },
    /// `DEALLOCATE name`: the wire layer holds the client's prepared statements, so
    /// it deallocates `name` (or reports 26000) and sends the tag.
    Deallocate(String),
    /// `COPY ... FROM STDIN`: the client now sends the data, which goes to
    /// [`crate::Session::copy_in`].
    CopyIn(CopyIn),
    /// `COPY ... TO STDOUT`: rows for the client, rendered by [`crate::copy_lines`].
    CopyOut {
        /// The data format the statement asked for.
        format: CopyFormat,
        /// The rows.
        rows: SendableRecordBatchStream,
    },
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Output::Rows(s) => write!(f, "Rows({:?})", s.schema()),
            Output::Command(t) => write!(f, "Command({t})"),
            Output::Fetch(s) => write!(f, "Fetch({:?})", s.schema()),
            Output::Written { tag, rows } => {
                write!(f, "Written({}, {:?})", tag.command(), rows.schema())
            }
            Output::Deallocate(name) => write!(f, "Deallocate({name})"),
            Output::CopyIn(c) => write!(f, "CopyIn({})", c.table),
            Output::CopyOut { format, .. } => write!(f, "CopyOut({format:?})"),
        }
    }
}

/// Collects a result stream into batches.
pub async fn collect(stream: SendableRecordBatchStream) -> DfResult<Vec<RecordBatch>> {
    datafusion::physical_plan::common::collect(stream).await
}

/// `out` with its columns named as PostgreSQL names them (see [`column_names`]).
pub(crate) fn with_pg_names(out: Output, names: Option<&[String]>) -> Output {
    let Output::Rows(stream) = out else {
        return out;
    };
    let Some(schema) = names.and_then(|n| column_names::renamed(&stream.schema(), n)) else {
        return Output::Rows(stream);
    };
    // Each batch keeps its own fields (nullability included) under the new names, so
    // renaming can never reject a batch DataFusion produced.
    let names = names.map(<[String]>::to_vec).unwrap_or_default();
    let batches = stream.map(move |batch| {
        batch.and_then(|b| match column_names::renamed(&b.schema(), &names) {
            Some(renamed) => Ok(RecordBatch::try_new(renamed, b.columns().to_vec())?),
            None => Ok(b),
        })
    });
    Output::Rows(Box::pin(RecordBatchStreamAdapter::new(schema, batches)))
}

/// What a statement takes and returns: [`crate::Session::describe`].
#[derive(Debug, Clone)]
pub struct Description {
    /// The type of each placeholder `$1 .. $n`; `None` where the statement does not
    /// determine it (`SELECT $1`), which a client then chooses.
    pub parameters: Vec<Option<DataType>>,
    /// The columns of the rows it returns; `None` for a statement that returns a
    /// command tag (DDL, DML, SET).
    pub columns: Option<SchemaRef>,
}

/// The row count DataFusion reports for DML (`count` column), summed.
pub(crate) fn count_rows(batches: &[RecordBatch]) -> u64 {
    batches
        .iter()
        .filter_map(|b| b.columns().first())
        .filter_map(|c| c.as_primitive_opt::<UInt64Type>())
        .map(|c| c.iter().flatten().sum::<u64>())
        .sum()
}

pub(crate) fn command(tag: CommandTag) -> Output {
    Output::Command(tag)
}
