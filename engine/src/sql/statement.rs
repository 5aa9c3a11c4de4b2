//! The typed statement layer: a statement is parsed once, then sorted once into the
//! [`Family`] that handles it, and both Describe and Execute go by that family, so
//! they cannot disagree on what a statement takes and returns.

use std::collections::VecDeque;

use datafusion::error::Result as DfResult;
use datafusion::sql::parser::{DFParser, ResetStatement, Statement as DfStatement};
use datafusion::sql::sqlparser::ast::{
    CreateFunction, DropFunction, ObjectType, Statement as SqlStatement,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;

use crate::error::{Error, Result};
use crate::introspection::pg_catalog;
use crate::pg::column_names;
use crate::pg::copy::{self, CopyRequest};
use crate::sql::ddl;
use crate::sql::timeout::{self, TimeoutStatement};

/// One parsed statement, ready to [`crate::Session::run`].
#[derive(Debug, Clone)]
pub struct Statement {
    pub(crate) sql: DfStatement,
    /// Written `DROP AGGREGATE` (parsed as `DROP FUNCTION`, which sqlparser knows).
    pub(crate) drop_aggregate: bool,
    /// The result's column names as PostgreSQL gives them, when the text tells them.
    pub(crate) column_names: Option<Vec<String>>,
}

impl Statement {
    fn new(sql: DfStatement) -> Self {
        Statement {
            column_names: column_names::pg_column_names(&sql),
            sql,
            drop_aggregate: false,
        }
    }
}

impl std::fmt::Display for Statement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.sql.fmt(f)
    }
}

/// `statements` with the tools' catalog queries (those that read `pg_catalog`) put
/// through the PostgreSQL compatibility rewriter; every other statement as parsed.
fn catalog_queries_rewritten(sql: &str, statements: VecDeque<DfStatement>) -> Vec<DfStatement> {
    let reads_catalog =
        |s: &DfStatement| matches!(s, DfStatement::Statement(s) if pg_catalog::reads_catalog(s));
    if !statements.iter().any(reads_catalog) {
        return statements.into();
    }
    // The whole text first: some known client queries are swapped as token runs.
    if statements
        .iter()
        .all(|s| matches!(s, DfStatement::Statement(_)))
    {
        if let Some(rewritten) = pg_catalog::parse_catalog_query(sql) {
            if rewritten.len() == statements.len() {
                // Only the catalog statements take the rewritten form: the crate's rules
                // (a correlated subquery in a projection becomes NULL, ...) are for tools'
                // queries, never for the user's own statements beside them.
                return statements
                    .into_iter()
                    .zip(rewritten)
                    .map(|(original, rewritten)| {
                        if reads_catalog(&original) {
                            DfStatement::Statement(Box::new(rewritten))
                        } else {
                            original
                        }
                    })
                    .collect();
            }
        }
    }
    statements
        .into_iter()
        .map(|s| match s {
            DfStatement::Statement(s) if pg_catalog::reads_catalog(&s) => {
                DfStatement::Statement(Box::new(pg_catalog::rewrite_catalog_statement(*s)))
            }
            other => other,
        })
        .collect()
}

/// Splits `sql` into statements (PostgreSQL dialect), with the catalog queries of
/// tools rewritten for DataFusion and `DROP AGGREGATE` recognized.
pub(crate) fn parse(sql: &str) -> DfResult<Vec<Statement>> {
    let (sql, drop_aggregates) = ddl::rewrite_drop_aggregate(sql);
    let mut statements = parse_rewritten(&sql)?;
    for i in drop_aggregates {
        if let Some(s) = statements.get_mut(i) {
            s.drop_aggregate = true;
        }
    }
    Ok(statements)
}

fn parse_rewritten(sql: &str) -> DfResult<Vec<Statement>> {
    match DFParser::parse_sql_with_dialect(sql, &PostgreSqlDialect {}) {
        Ok(statements) => Ok(catalog_queries_rewritten(sql, statements)
            .into_iter()
            .map(Statement::new)
            .collect()),
        // DataFusion's parser reads only its own `COPY ... TO 'file'`; PostgreSQL's
        // `COPY t FROM STDIN` / `COPY ... TO STDOUT` come from sqlparser's.
        Err(e) => match Parser::parse_sql(&PostgreSqlDialect {}, sql) {
            Ok(statements)
                if statements
                    .iter()
                    .any(|s| matches!(s, SqlStatement::Copy { .. })) =>
            {
                Ok(statements
                    .into_iter()
                    .map(|s| Statement::new(DfStatement::Statement(Box::new(s))))
                    .collect())
            }
            _ => Err(e),
        },
    }
}

/// Who handles a statement, and so what it takes and returns.
pub(crate) enum Family {
    /// `SET` / `RESET` / `SHOW statement_timeout`, which DataFusion does not know.
    StatementTimeout(TimeoutStatement),
    /// `SHOW wasm.<limit>`: one column named after the setting, as PostgreSQL shows.
    ShowWasmSetting(String),
    /// Planned and run by DataFusion (queries, DML, EXPLAIN, DataFusion's own SHOW):
    /// the only family that takes parameters and may return rows.
    Query(DfStatement),
    /// Handled by the engine itself: returns a command tag (or starts a COPY).
    Command(Box<Command>),
}

/// The statements the engine runs itself, each with what its handler needs.
pub(crate) enum Command {
    /// `CREATE EXTERNAL TABLE` (reads server files: administrators only).
    CreateExternalTable(DfStatement),
    /// `RESET wasm.<limit>`, which DataFusion's RESET does not know.
    ResetWasmSetting(String),
    /// `RESET` of a DataFusion setting.
    Reset(DfStatement),
    /// `SET` of a DataFusion or `wasm.*` setting.
    Set(DfStatement),
    /// `CREATE [OR REPLACE] FUNCTION ... LANGUAGE wasm`.
    CreateFunction(Box<CreateFunction>),
    /// `DROP FUNCTION`, or `DROP AGGREGATE` (`aggregate`), which refuses scalars.
    DropFunction {
        /// The statement as sqlparser read it.
        statement: DropFunction,
        /// Written `DROP AGGREGATE`.
        aggregate: bool,
    },
    /// `CREATE TABLE`, with or without AS.
    CreateTable(DfStatement),
    /// `CREATE VIEW`.
    CreateView(DfStatement),
    /// `CREATE SCHEMA`.
    CreateSchema(DfStatement),
    /// `DROP TABLE` / `DROP VIEW`.
    DropRelations(SqlStatement),
    /// `DROP SCHEMA`.
    DropSchemas(SqlStatement),
    /// `COPY ... FROM STDIN` / `TO STDOUT`.
    Copy(CopyRequest),
    /// `BEGIN` / `START TRANSACTION`.
    Begin,
    /// `COMMIT`.
    Commit,
    /// `ROLLBACK`.
    Rollback,
}

pub(crate) const COPY_TO_FILE: &str =
    "COPY to a server file is not allowed; use COPY ... TO STDOUT from a client";

impl Family {
    /// The family of `statement`; a statement the engine refuses outright (COPY to a
    /// server file, CREATE DATABASE) is an error here, for Describe and Execute alike.
    pub(crate) fn of(statement: &Statement) -> Result<Family> {
        if let Some(setting) = timeout::recognize(&statement.sql) {
            return Ok(Family::StatementTimeout(setting?));
        }
        if let Some(name) = timeout::shown_wasm_setting(&statement.sql) {
            return Ok(Family::ShowWasmSetting(name));
        }
        let command = match &statement.sql {
            DfStatement::Explain(_) => return Ok(Family::Query(statement.sql.clone())),
            DfStatement::CreateExternalTable(_) => {
                Command::CreateExternalTable(statement.sql.clone())
            }
            DfStatement::Reset(ResetStatement::Variable(name))
                if name.to_string().to_lowercase().starts_with("wasm.") =>
            {
                Command::ResetWasmSetting(name.to_string().to_lowercase())
            }
            DfStatement::Reset(_) => Command::Reset(statement.sql.clone()),
            DfStatement::CopyTo(_) => {
                return Err(Error::InsufficientPrivilege(COPY_TO_FILE.into()))
            }
            DfStatement::Statement(sql) => match sql.as_ref() {
                SqlStatement::CreateFunction(cf) => Command::CreateFunction(Box::new(cf.clone())),
                SqlStatement::DropFunction(df) => Command::DropFunction {
                    statement: df.clone(),
                    aggregate: statement.drop_aggregate,
                },
                SqlStatement::CreateTable(_) => Command::CreateTable(statement.sql.clone()),
                SqlStatement::CreateView(_) => Command::CreateView(statement.sql.clone()),
                SqlStatement::CreateSchema { .. } => Command::CreateSchema(statement.sql.clone()),
                SqlStatement::Drop {
                    object_type: ObjectType::Table | ObjectType::View,
                    ..
                } => Command::DropRelations(sql.as_ref().clone()),
                SqlStatement::Drop {
                    object_type: ObjectType::Schema,
                    ..
                } => Command::DropSchemas(sql.as_ref().clone()),
                SqlStatement::Copy {
                    source,
                    to,
                    target,
                    options,
                    legacy_options,
                    ..
                } => Command::Copy(copy::request(source, *to, target, options, legacy_options)?),
                SqlStatement::Set(_) => Command::Set(statement.sql.clone()),
                SqlStatement::StartTransaction { .. } => Command::Begin,
                SqlStatement::Commit { .. } => Command::Commit,
                SqlStatement::Rollback { .. } => Command::Rollback,
                SqlStatement::CreateDatabase { .. } => {
                    return Err(Error::NotSupported(
                        "CREATE DATABASE is not supported: a wasmudf server has one database; use CREATE SCHEMA".into(),
                    ))
                }
                _ => return Ok(Family::Query(statement.sql.clone())),
            },
        };
        Ok(Family::Command(Box::new(command)))
    }
}
