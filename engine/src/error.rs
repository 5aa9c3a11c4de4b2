//! The engine's error type and its mapping to PostgreSQL SQLSTATE codes.

use std::time::Duration;

use datafusion::error::DataFusionError;

/// Everything that can go wrong loading or running a Wasm UDF.
///
/// Each variant that concerns one function names it, and each limit error names the
/// limit and its configured value, so the message alone tells a user what to change.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The bytes are not a valid WebAssembly component, or it does not implement the
    /// wasmudf contract.
    #[error("invalid component: {0}")]
    InvalidComponent(String),
    /// The component imports something the host does not grant.
    #[error("component imports what the host does not grant (a component may import only the contract's types, wasmudf:udf/types): {}", imports.join(", "))]
    ForbiddenImports {
        /// The imports the host refuses (a granted import is not listed).
        imports: Vec<String>,
    },
    /// The component's `describe` output is unusable.
    #[error("invalid function description in component: {0}")]
    InvalidDescription(String),
    /// No function of that name in the component.
    #[error("component has no function named \"{0}\"")]
    NoSuchFunction(String),
    /// A limit value is malformed or above the server's ceiling.
    #[error("invalid limit: {0}")]
    InvalidLimit(String),
    /// The call used up its fuel budget.
    #[error("function {function}: fuel exhausted (wasm.fuel = {limit})")]
    FuelExhausted {
        /// SQL name of the function.
        function: String,
        /// The configured fuel per call.
        limit: u64,
    },
    /// The guest tried to grow its memory past the limit.
    #[error("function {function}: memory limit exceeded (wasm.memory = {limit} bytes, guest asked for {requested} bytes)")]
    MemoryLimit {
        /// SQL name of the function.
        function: String,
        /// The configured memory limit in bytes.
        limit: u64,
        /// The memory size the guest asked for.
        requested: u64,
    },
    /// The guest overflowed its stack.
    #[error("function {function}: wasm stack overflow (wasm.stack = {limit} bytes)")]
    StackOverflow {
        /// SQL name of the function.
        function: String,
        /// The configured stack size in bytes.
        limit: usize,
    },
    /// Every guest instance slot of the engine is taken.
    #[error("function {function}: {limit} guest instances are already running (the engine's max_instances); retry when fewer queries run")]
    TooManyInstances {
        /// SQL name of the function.
        function: String,
        /// The engine's instance limit.
        limit: u32,
    },
    /// The call ran past its wall-clock deadline.
    #[error("function {function}: timed out (wasm.timeout = {}ms)", limit.as_millis())]
    Timeout {
        /// SQL name of the function.
        function: String,
        /// The configured deadline.
        limit: Duration,
    },
    /// The query was canceled while the guest ran.
    #[error("canceling statement due to user request (in function {function})")]
    Canceled {
        /// SQL name of the function.
        function: String,
    },
    /// The statement was canceled (CancelRequest or `statement_timeout`).
    #[error("canceling statement due to {0}")]
    QueryCanceled(CancelReason),
    /// The guest trapped (unreachable, out-of-bounds access, panic, ...).
    #[error("function {function}: {trap}")]
    Trap {
        /// SQL name of the function.
        function: String,
        /// What kind of trap (wasmtime's description, e.g. "wasm trap: integer divide by zero").
        trap: String,
    },
    /// The guest refused its input with an error of its own.
    #[error("function {function}: {message}{}", row.map(|r| format!(" (at row {r} of the batch)")).unwrap_or_default())]
    Guest {
        /// SQL name of the function.
        function: String,
        /// The guest's message.
        message: String,
        /// The row within the batch, if the guest named one.
        row: Option<u32>,
    },
    /// The guest returned something that is not a valid column of the declared type.
    #[error("function {function}: invalid output from guest: {reason}")]
    InvalidOutput {
        /// SQL name of the function.
        function: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A host-side failure that is not the guest's fault.
    #[error("wasm runtime error: {0}")]
    Runtime(String),
    /// The persistent catalog could not be read or written.
    #[error("catalog: {0}")]
    Catalog(String),
    /// A file in the data or modules directory could not be read or written.
    #[error("{0}")]
    Io(String),
    /// A function with that name and argument types already exists.
    #[error("{0}")]
    DuplicateFunction(String),
    /// No function with that name (and argument types).
    #[error("{0}")]
    UndefinedFunction(String),
    /// The name matches several overloads and the statement does not say which.
    #[error("{0}")]
    AmbiguousFunction(String),
    /// A `CREATE FUNCTION` that does not match its component, or is malformed.
    #[error("{0}")]
    InvalidDefinition(String),
    /// The statement touches something the user may not touch (built-ins, files
    /// outside the modules directory).
    #[error("{0}")]
    InsufficientPrivilege(String),
    /// The object is of another kind than the statement says (DROP AGGREGATE of a
    /// scalar function).
    #[error("{0}")]
    WrongObjectType(String),
    /// A form of a statement wasmudf does not support.
    #[error("{0}")]
    NotSupported(String),
    /// A table or view of that name already exists.
    #[error("{0}")]
    DuplicateRelation(String),
    /// No table or view of that name.
    #[error("{0}")]
    UndefinedRelation(String),
    /// No schema of that name.
    #[error("{0}")]
    UndefinedSchema(String),
    /// A schema of that name already exists.
    #[error("{0}")]
    DuplicateSchema(String),
    /// The object has dependents (a non-empty schema without CASCADE).
    #[error("{0}")]
    DependentObjects(String),
    /// An error from DataFusion met while running DDL.
    #[error(transparent)]
    DataFusion(Box<DataFusionError>),
    /// Malformed SQL.
    #[error("{0}")]
    Syntax(String),
    /// Input data that does not parse as its column's type (22P02).
    #[error("{0}")]
    InvalidText(String),
    /// A column that the table does not have (42703).
    #[error("{0}")]
    UndefinedColumn(String),
    /// Two columns of one table with the same name (42701).
    #[error("{0}")]
    DuplicateColumn(String),
    /// A client sent parameters or placeholders the statement cannot take (08P01).
    #[error("{0}")]
    Protocol(String),
    /// No configuration parameter (or other named object) of that name (42704).
    #[error("{0}")]
    UndefinedObject(String),
    /// A parameter that cannot be changed, or not now (55P02).
    #[error("{0}")]
    CantChangeParameter(String),
    /// No prepared statement of that name (26000).
    #[error("{0}")]
    UndefinedPreparedStatement(String),
    /// A prepared statement of that name already exists (42P05).
    #[error("{0}")]
    DuplicatePreparedStatement(String),
    /// No cursor of that name (34000).
    #[error("{0}")]
    UndefinedCursor(String),
    /// A cursor of that name already exists (42P03).
    #[error("{0}")]
    DuplicateCursor(String),
    /// A statement that a transaction block does not allow (25001).
    #[error("{0}")]
    ActiveTransaction(String),
    /// A statement in a transaction block that an earlier error aborted (25P02).
    #[error("current transaction is aborted, commands ignored until end of transaction block")]
    InFailedTransaction,
    /// A statement that only a transaction block allows (25P01).
    #[error("{0}")]
    NoActiveTransaction(String),
    /// No savepoint of that name in the transaction (3B001).
    #[error("{0}")]
    UndefinedSavepoint(String),
    /// A date or timestamp outside the range a client can be given (22008).
    #[error("{0}")]
    DatetimeOverflow(String),
    /// A function argument with a value the function does not take (22023).
    #[error("{0}")]
    InvalidParameterValue(String),
    /// A NULL where the function needs a value (22004).
    #[error("{0}")]
    NullValueNotAllowed(String),
    /// A value that no PostgreSQL array can hold: a ragged or NULL-holed list of
    /// lists sent as a multidimensional array (2202E).
    #[error("{0}")]
    InvalidArray(String),
    /// A regular expression that does not compile (2201B).
    #[error("{0}")]
    InvalidRegularExpression(String),
    /// A malformed escape in a pattern (a LIKE pattern ending in its escape
    /// character: 22025).
    #[error("{0}")]
    InvalidEscapeSequence(String),
    /// Input past one of the server's size or count limits (54000), naming the limit.
    #[error("{0}")]
    ProgramLimit(String),
    /// A transaction's change conflicts with one committed since it read (40001):
    /// retrying the transaction can succeed.
    #[error("{0}")]
    SerializationFailure(String),
    /// A NULL in a column declared NOT NULL (23502).
    #[error("{0}")]
    NotNullViolation(String),
    /// A sequence past its maximum or minimum value (2200H).
    #[error("{0}")]
    SequenceLimit(String),
    /// An object not in the state the statement needs: `currval` before any `nextval`
    /// of the sequence in the session (55000).
    #[error("{0}")]
    NotInPrerequisiteState(String),
    /// An ON CONFLICT target that no key matches (42P10).
    #[error("{0}")]
    InvalidColumnReference(String),
    /// A key value a PRIMARY KEY or UNIQUE constraint already holds (23505).
    #[error("{0}")]
    UniqueViolation(String),
    /// A value given for a `GENERATED ALWAYS` column (428C9).
    #[error("{0}")]
    GeneratedAlways(String),
}

impl Error {
    /// The PostgreSQL SQLSTATE a client should see for this error.
    pub fn sqlstate(&self) -> &'static str {
        match self {
            Error::InvalidComponent(_)
            | Error::InvalidDescription(_)
            | Error::NoSuchFunction(_)
            | Error::ForbiddenImports { .. } => "42P13",
            Error::InvalidLimit(_) => "22023",
            Error::FuelExhausted { .. } | Error::StackOverflow { .. } => "54000",
            Error::MemoryLimit { .. } => "53200",
            Error::TooManyInstances { .. } => "53000",
            Error::Timeout { .. } | Error::Canceled { .. } | Error::QueryCanceled(_) => "57014",
            Error::Trap { .. } | Error::Guest { .. } => "38000",
            Error::InvalidOutput { .. } => "39000",
            Error::Runtime(_) => "XX000",
            Error::Catalog(_) | Error::Io(_) => "58030",
            Error::DuplicateFunction(_) => "42723",
            Error::UndefinedFunction(_) => "42883",
            Error::AmbiguousFunction(_) => "42725",
            Error::InvalidDefinition(_) => "42P13",
            Error::InsufficientPrivilege(_) => "42501",
            Error::NotSupported(_) => "0A000",
            Error::WrongObjectType(_) => "42809",
            Error::DuplicateRelation(_) => "42P07",
            Error::UndefinedRelation(_) => "42P01",
            Error::Syntax(_) => "42601",
            Error::Protocol(_) => "08P01",
            Error::InvalidText(_) => "22P02",
            Error::UndefinedColumn(_) => "42703",
            Error::DuplicateColumn(_) => "42701",
            Error::DataFusion(e) => sqlstate(e),
            Error::UndefinedSchema(_) => "3F000",
            Error::DuplicateSchema(_) => "42P06",
            Error::DependentObjects(_) => "2BP01",
            Error::UndefinedObject(_) => "42704",
            Error::CantChangeParameter(_) => "55P02",
            Error::UndefinedPreparedStatement(_) => "26000",
            Error::DuplicatePreparedStatement(_) => "42P05",
            Error::UndefinedCursor(_) => "34000",
            Error::DuplicateCursor(_) => "42P03",
            Error::ActiveTransaction(_) => "25001",
            Error::InFailedTransaction => "25P02",
            Error::NoActiveTransaction(_) => "25P01",
            Error::UndefinedSavepoint(_) => "3B001",
            Error::ProgramLimit(_) => "54000",
            Error::SerializationFailure(_) => "40001",
            Error::NotNullViolation(_) => "23502",
            Error::SequenceLimit(_) => "2200H",
            Error::NotInPrerequisiteState(_) => "55000",
            Error::GeneratedAlways(_) => "428C9",
            Error::UniqueViolation(_) => "23505",
            Error::InvalidColumnReference(_) => "42P10",
            Error::DatetimeOverflow(_) => "22008",
            Error::InvalidEscapeSequence(_) => "22025",
            Error::InvalidParameterValue(_) => "22023",
            Error::NullValueNotAllowed(_) => "22004",
            Error::InvalidRegularExpression(_) => "2201B",
            Error::InvalidArray(_) => "2202E",
        }
    }
}

impl From<Error> for DataFusionError {
    fn from(e: Error) -> Self {
        match e {
            Error::DataFusion(inner) => *inner,
            other => DataFusionError::External(Box::new(other)),
        }
    }
}

impl From<DataFusionError> for Error {
    fn from(e: DataFusionError) -> Self {
        Error::DataFusion(Box::new(e))
    }
}

/// Finds the wasmudf [`Error`] inside a DataFusion error, however deeply DataFusion
/// wrapped it (context, shared, external), so callers can report its SQLSTATE.
pub fn find_udf_error(err: &DataFusionError) -> Option<&Error> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = current {
        if let Some(found) = e.downcast_ref::<Error>() {
            return Some(found);
        }
        if let Some(DataFusionError::Shared(inner)) = e.downcast_ref::<DataFusionError>() {
            current = Some(inner.as_ref());
            continue;
        }
        current = e.source();
    }
    None
}

/// Result alias for the engine.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The SQLSTATE for any error a query can fail with: the wasmudf error's own code if
/// there is one, otherwise a classification of DataFusion's error.
pub fn sqlstate(err: &DataFusionError) -> &'static str {
    if let Some(e) = find_udf_error(err) {
        return e.sqlstate();
    }
    let root = err.find_root();
    let msg = root.to_string();
    match root {
        DataFusionError::SQL(..) => "42601",
        DataFusionError::NotImplemented(_) => "0A000",
        DataFusionError::ResourcesExhausted(_) => "53200",
        DataFusionError::Configuration(_) => "22023",
        DataFusionError::ArrowError(e, _)
            if matches!(**e, datafusion::arrow::error::ArrowError::DivideByZero) =>
        {
            "22012"
        }
        DataFusionError::ArrowError(e, _)
            if matches!(
                **e,
                datafusion::arrow::error::ArrowError::CastError(_)
                    | datafusion::arrow::error::ArrowError::ParseError(_)
            ) =>
        {
            "22P02"
        }
        // A decimal value beyond its column's precision (`numeric(5,2)` given 1000).
        DataFusionError::ArrowError(..) if msg.contains("too large to store in a Decimal") => {
            "22003"
        }
        DataFusionError::ArrowError(..) => "22000",
        DataFusionError::Plan(_) | DataFusionError::SchemaError(..) => {
            if msg.contains("is not unique") {
                "42725"
            } else if msg.contains("Invalid function")
                || msg.contains("No function matches")
                || msg.contains("function") && msg.contains("not found")
            {
                "42883"
            } else if msg.contains("table") && msg.contains("not found") {
                "42P01"
            } else if msg.contains("No field named") || msg.contains("not found") {
                "42703"
            } else if msg.contains("already exists") {
                "42P07"
            } else {
                "42000"
            }
        }
        DataFusionError::Execution(_) if msg.contains("Divide by zero") => "22012",
        DataFusionError::Execution(_) => "22000",
        _ => "XX000",
    }
}

/// Why a query was canceled; each reads as PostgreSQL words it (SQLSTATE 57014).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CancelReason {
    /// A client's CancelRequest (psql's Ctrl-C) or [`crate::CancelHandle::cancel`].
    UserRequest,
    /// The session's `statement_timeout` elapsed.
    StatementTimeout,
}

impl std::fmt::Display for CancelReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CancelReason::UserRequest => "user request",
            CancelReason::StatementTimeout => "statement timeout",
        })
    }
}

/// The most bytes of text a guest chose (its error message, a name it describes) that
/// an error carries to a client; the rest is cut and the original length noted.
pub const GUEST_TEXT_LIMIT: usize = 2048;

/// The most bytes of one logged text (an error message); the rest is cut and the
/// original length noted.
pub const LOG_TEXT_LIMIT: usize = 1024;

/// Guest-chosen text made safe to carry in an error: control characters other than
/// newline and tab are escaped (a NUL would end a field of the wire protocol's
/// ErrorResponse and let the guest write the fields after it, SQLSTATE included), and
/// the text is cut at [`GUEST_TEXT_LIMIT`] bytes.
pub(crate) fn guest_text(raw: &str) -> String {
    escaped(raw, GUEST_TEXT_LIMIT, |c| c == '\n' || c == '\t')
}

/// `text` made fit for one line of the server log: every control character escaped
/// (a newline in a guest's message would otherwise start a forged line of its own), cut
/// at [`LOG_TEXT_LIMIT`] bytes.
pub fn log_text(text: &str) -> String {
    escaped(text, LOG_TEXT_LIMIT, |_| false)
}

/// `raw` with control characters escaped (`\n`, `\u{0}`) unless `keep` says otherwise,
/// cut at a character boundary once it reaches `limit` bytes.
fn escaped(raw: &str, limit: usize, keep: fn(char) -> bool) -> String {
    let mut out = String::with_capacity(raw.len().min(limit) + 32);
    for c in raw.chars() {
        if out.len() >= limit {
            out.push_str(&format!("... (cut: {} bytes in all)", raw.len()));
            break;
        }
        if c.is_control() && !keep(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_text_cannot_end_a_wire_field_or_flood() {
        let forged = "boom\0C00000\0Meverything is fine\0Hspoofed";
        let safe = guest_text(forged);
        assert!(!safe.contains('\0'));
        assert_eq!(
            safe,
            "boom\\u{0}C00000\\u{0}Meverything is fine\\u{0}Hspoofed"
        );
        assert_eq!(guest_text("two\nlines\tand a tab"), "two\nlines\tand a tab");
        let huge = "x".repeat(100 << 20);
        let cut = guest_text(&huge);
        assert!(cut.len() < GUEST_TEXT_LIMIT + 64, "{}", cut.len());
        assert!(cut.ends_with("... (cut: 104857600 bytes in all)"), "{cut}");
        // Multi-byte characters are never split.
        let wide = "é".repeat(GUEST_TEXT_LIMIT);
        assert!(guest_text(&wide).starts_with("éé"));
    }

    #[test]
    fn log_text_is_one_line() {
        let forged = "boom\n2026-12-01T00:00:00Z  INFO wasmudf::pg: logged in user=\"FORGED\"";
        let line = log_text(forged);
        assert!(!line.contains('\n'));
        assert!(line.starts_with("boom\\n2026"), "{line}");
        assert!(log_text(&"y".repeat(5000)).len() < LOG_TEXT_LIMIT + 64);
    }
}
