//! The typed statement layer: a statement is parsed once, then sorted once into the
//! [`Family`] that handles it, and both Describe and Execute go by that family, so
//! they cannot disagree on what a statement takes and returns.

use std::collections::VecDeque;

use datafusion::error::Result as DfResult;
use datafusion::sql::parser::{DFParser, ResetStatement, Statement as DfStatement};
use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    visit_expressions_mut, CloseCursor, ContextModifier, CreateFunction, DataType as SqlDataType,
    DeclareType, DiscardObject, DropFunction, Expr as SqlExpr, FetchDirection, ObjectType, Set,
    SetExpr, Statement as SqlStatement, TransactionAccessMode, TransactionMode, UnaryOperator,
    Value,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;

use crate::error::{Error, Result};
use crate::introspection::pg_catalog;
use crate::pg::column_names;
use crate::pg::copy::{self, CopyRequest};
use crate::pg::like;
use crate::sql::numeric;

/// One parsed statement, ready to [`crate::Session::run`].
#[derive(Debug, Clone)]
pub struct Statement {
    pub(crate) sql: DfStatement,
    /// Written `DROP AGGREGATE` (parsed as `DROP FUNCTION`, which sqlparser knows).
    pub(crate) drop_aggregate: bool,
    /// Written `MOVE` (parsed as `FETCH`).
    pub(crate) moves: bool,
    /// The result's column names as PostgreSQL gives them, when the text tells them.
    pub(crate) column_names: Option<Vec<String>>,
    /// The text it was parsed from, as the client sent it (with the other statements
    /// of the same query string, as PostgreSQL shows it in `pg_stat_activity`).
    pub(crate) source: Option<std::sync::Arc<str>>,
}

impl Statement {
    pub(crate) fn new(sql: DfStatement) -> Self {
        let column_names = column_names::pg_column_names(&sql);
        Self::named(sql, column_names)
    }

    /// A statement whose result columns PostgreSQL names `column_names`: names told
    /// from the text as written, before the rewrites that make it plannable
    /// (`'{}'::json` is column `json`, not its input function's name).
    fn named(mut sql: DfStatement, column_names: Option<Vec<String>>) -> Self {
        column_names::repeated_items_aliased(&mut sql);
        Statement {
            column_names,
            sql,
            drop_aggregate: false,
            moves: false,
            source: None,
        }
    }
}

impl Statement {
    /// What the client wrote, or the statement's normal form when it was made otherwise.
    pub(crate) fn text(&self) -> &dyn std::fmt::Display {
        match &self.source {
            Some(text) => text,
            None => self,
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

/// A statement written in a form sqlparser does not parse, read as another.
#[derive(Clone, Copy)]
enum Written {
    /// `DROP AGGREGATE`, read as `DROP FUNCTION`.
    DropAggregate,
    /// `MOVE`, read as `FETCH`.
    Move,
}

/// Splits `sql` into statements (PostgreSQL dialect), with the catalog queries of
/// tools rewritten for DataFusion and `DROP AGGREGATE` and `MOVE` recognized.
pub(crate) fn parse(sql: &str) -> DfResult<Vec<Statement>> {
    let source: std::sync::Arc<str> = sql.into();
    let (sql, rewritten) = rewrite_unparsed_forms(sql);
    let mut statements = parse_rewritten(&sql)?;
    for s in &mut statements {
        s.source = Some(source.clone());
    }
    for (i, written) in rewritten {
        if let Some(s) = statements.get_mut(i) {
            match written {
                Written::DropAggregate => s.drop_aggregate = true,
                Written::Move => s.moves = true,
            }
        }
    }
    Ok(statements)
}

/// Rewrites the statements sqlparser cannot parse into forms it can: each `DROP
/// AGGREGATE` to `DROP FUNCTION`, each `MOVE` to `FETCH`. Returns the SQL to parse and,
/// for each statement rewritten, its index and the form it was written in. Text
/// without them is returned as it is.
fn rewrite_unparsed_forms(sql: &str) -> (std::borrow::Cow<'_, str>, Vec<(usize, Written)>) {
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::keywords::Keyword;
    use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};

    let Ok(mut tokens) = Tokenizer::new(&PostgreSqlDialect {}, sql).tokenize() else {
        // The parser will report the error.
        return (sql.into(), Vec::new());
    };
    let keyword = |t: &Token, k: Keyword| matches!(t, Token::Word(w) if w.keyword == k && w.quote_style.is_none());
    let mut statement = 0;
    let mut rewritten = Vec::new();
    // Index of the previous significant token, and whether it began a statement.
    let mut previous: Option<(usize, bool)> = None;
    let mut at_start = true;
    for i in 0..tokens.len() {
        match &tokens[i] {
            Token::Whitespace(_) => continue,
            Token::SemiColon => {
                // Empty statements (`;;`) produce nothing.
                if !at_start {
                    statement += 1;
                }
                at_start = true;
                previous = None;
                continue;
            }
            _ => {}
        }
        if let Some((p, true)) = previous {
            if keyword(&tokens[p], Keyword::DROP) && keyword(&tokens[i], Keyword::AGGREGATE) {
                tokens[i] = Token::make_keyword("FUNCTION");
                rewritten.push((statement, Written::DropAggregate));
            }
        }
        if at_start
            && matches!(&tokens[i], Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case("move"))
        {
            tokens[i] = Token::make_keyword("FETCH");
            rewritten.push((statement, Written::Move));
        }
        previous = Some((i, at_start));
        at_start = false;
    }
    if rewritten.is_empty() {
        return (sql.into(), rewritten);
    }
    let text: String = tokens.iter().map(ToString::to_string).collect();
    (text.into(), rewritten)
}

/// `'\x00ff'::bytea` (and `CAST(... AS bytea)`) as the bytes the hex says, as
/// PostgreSQL reads it; DataFusion's cast would keep the text's own bytes.
/// Text that is not valid bytea input is 22P02, as in PostgreSQL.
fn bytea_literals(statement: &mut DfStatement) -> Result<()> {
    let DfStatement::Statement(sql) = statement else {
        return Ok(());
    };
    let outcome = visit_expressions_mut(sql.as_mut(), |expr| {
        if let SqlExpr::Cast {
            expr: inner,
            data_type: SqlDataType::Bytea,
            ..
        } = expr
        {
            if let SqlExpr::Value(v) = inner.as_ref() {
                if let Value::SingleQuotedString(text) = &v.value {
                    match crate::pg::text::bytea_from_text(text) {
                        Ok(bytes) => {
                            let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
                            *expr = SqlExpr::Value(Value::HexStringLiteral(hex).into());
                        }
                        Err(e) => return ControlFlow::Break(e),
                    }
                }
            }
        }
        ControlFlow::Continue(())
    });
    match outcome {
        ControlFlow::Break(e) => Err(Error::InvalidText(format!(
            "invalid input syntax for type bytea: {e}"
        ))),
        ControlFlow::Continue(()) => Ok(()),
    }
}

/// `'2024-02-29 +00'::date`, `TIMESTAMP '2024-02-29 10:00+05'`, `'1 day 02:00:00'::interval`
/// and the other forms PostgreSQL reads and Arrow's cast does not, as the canonical
/// text Arrow reads (see [`crate::pg::datetime_input`], [`crate::pg::interval`]).
fn datetime_literals(statement: &mut DfStatement) {
    use crate::pg::datetime_input::{canonical_datetime, DatetimeKind};
    use datafusion::sql::sqlparser::ast::TimezoneInfo;
    fn kind(dt: &SqlDataType) -> Option<DatetimeKind> {
        match dt {
            SqlDataType::Date => Some(DatetimeKind::Date),
            SqlDataType::Timestamp(_, TimezoneInfo::None | TimezoneInfo::WithoutTimeZone) => {
                Some(DatetimeKind::Timestamp)
            }
            SqlDataType::Timestamp(_, TimezoneInfo::WithTimeZone | TimezoneInfo::Tz) => {
                Some(DatetimeKind::Timestamptz)
            }
            SqlDataType::Interval { .. } => Some(DatetimeKind::Interval),
            _ => None,
        }
    }
    let DfStatement::Statement(sql) = statement else {
        return;
    };
    let _ = visit_expressions_mut(sql.as_mut(), |expr| {
        let (value, kind) = match expr {
            SqlExpr::Cast {
                expr: inner,
                data_type,
                ..
            } => match (inner.as_mut(), kind(data_type)) {
                (SqlExpr::Value(v), Some(k)) => (&mut v.value, k),
                _ => return ControlFlow::<()>::Continue(()),
            },
            SqlExpr::TypedString(typed) => match kind(&typed.data_type) {
                Some(k) => (&mut typed.value.value, k),
                None => return ControlFlow::Continue(()),
            },
            // `INTERVAL '1 day 02:00:00'` (not `INTERVAL '1' DAY`, whose field says
            // what the number is).
            SqlExpr::Interval(interval)
                if interval.leading_field.is_none() && interval.last_field.is_none() =>
            {
                match interval.value.as_mut() {
                    SqlExpr::Value(v) => (&mut v.value, DatetimeKind::Interval),
                    _ => return ControlFlow::Continue(()),
                }
            }
            _ => return ControlFlow::Continue(()),
        };
        if let Value::SingleQuotedString(text) = value {
            if let Some(canonical) = canonical_datetime(text, kind) {
                *text = canonical;
            }
        }
        ControlFlow::Continue(())
    });
}

/// `'name'::regproc::oid` and `'name(type, ...)'::regprocedure::oid` (psql's `\sf`) as
/// `regproc_oid('name')` / `regprocedure_oid(...)`: the Wasm function's OID, or the
/// error PostgreSQL gives for a name that is not one function.
fn regproc_oids(statement: &mut DfStatement) {
    let DfStatement::Statement(sql) = statement else {
        return;
    };
    let type_name = |dt: &SqlDataType| {
        let name = dt.to_string().to_lowercase();
        name.strip_prefix("pg_catalog.")
            .unwrap_or(&name)
            .to_string()
    };
    let _ = visit_expressions_mut(sql.as_mut(), |expr| {
        let SqlExpr::Cast {
            expr: inner,
            data_type: outer,
            ..
        } = expr
        else {
            return ControlFlow::<()>::Continue(());
        };
        if !matches!(
            type_name(outer).as_str(),
            "oid" | "int" | "integer" | "int4" | "bigint" | "int8"
        ) {
            return ControlFlow::Continue(());
        }
        let SqlExpr::Cast {
            expr: name,
            data_type: reg,
            ..
        } = inner.as_ref()
        else {
            return ControlFlow::Continue(());
        };
        let function = match type_name(reg).as_str() {
            "regproc" => "regproc_oid",
            "regprocedure" => "regprocedure_oid",
            _ => return ControlFlow::Continue(()),
        };
        if !matches!(name.as_ref(), SqlExpr::Value(v) if matches!(v.value, Value::SingleQuotedString(_)))
        {
            return ControlFlow::Continue(());
        }
        if let Ok(call) = Parser::new(&PostgreSqlDialect {})
            .try_with_sql(&format!("{function}({name})"))
            .and_then(|mut p| p.parse_expr())
        {
            *expr = call;
        }
        ControlFlow::Continue(())
    });
}

/// `x::json` / `CAST(x AS jsonb)` / `JSON '...'` as `pg_json(x)` / `pg_jsonb(x)`, the
/// types' input functions (DataFusion has no JSON type; see [`crate::sql::json`]).
fn json_casts(statement: &mut DfStatement) {
    let DfStatement::Statement(sql) = statement else {
        return;
    };
    let _ = visit_expressions_mut(sql.as_mut(), |expr| {
        use crate::sql::json::{input_function, json_kind_of};
        let (kind, inner) = match expr {
            SqlExpr::Cast {
                expr: inner,
                data_type,
                ..
            } => (json_kind_of(data_type), inner.to_string()),
            SqlExpr::TypedString(typed) => {
                (json_kind_of(&typed.data_type), typed.value.to_string())
            }
            _ => return ControlFlow::<()>::Continue(()),
        };
        let Some(kind) = kind else {
            return ControlFlow::Continue(());
        };
        let function = input_function(kind);
        if let Ok(call) = Parser::new(&PostgreSqlDialect {})
            .try_with_sql(&format!("{function}(({inner}))"))
            .and_then(|mut p| p.parse_expr())
        {
            *expr = call;
        }
        ControlFlow::Continue(())
    });
}

/// `LIKE` / `ILIKE` with a literal pattern and an `ESCAPE` other than the backslash
/// (SQLAlchemy's schema filter `LIKE 'pg/_%' ESCAPE '/'`), which DataFusion refuses, as
/// the same pattern escaped with backslashes; any other pattern through `like_escape`.
fn like_escapes(statement: &mut DfStatement) -> Result<()> {
    let DfStatement::Statement(sql) = statement else {
        return Ok(());
    };
    let outcome = visit_expressions_mut(sql.as_mut(), |expr| {
        let (SqlExpr::Like {
            pattern,
            escape_char,
            ..
        }
        | SqlExpr::ILike {
            pattern,
            escape_char,
            ..
        }) = expr
        else {
            return ControlFlow::Continue(());
        };
        let escape = match escape_char.as_ref().map(|v| &v.value) {
            Some(Value::SingleQuotedString(c)) if c.chars().count() <= 1 => c.chars().next(),
            _ => return ControlFlow::Continue(()),
        };
        if escape == Some('\\') {
            return ControlFlow::Continue(());
        }
        let literal = match pattern.as_mut() {
            SqlExpr::Value(v) if matches!(v.value, Value::SingleQuotedString(_)) => Some(v),
            _ => None,
        };
        let Some(v) = literal else {
            // A computed pattern (SQLAlchemy's `$1::VARCHAR || '%'`) is translated when
            // it is evaluated, by PostgreSQL's own `like_escape(pattern, escape)`.
            let escape_text = escape.map(String::from).unwrap_or_default();
            let call = format!(
                "like_escape(({pattern}), '{}')",
                escape_text.replace('\'', "''")
            );
            if let Ok(translated) = Parser::new(&PostgreSqlDialect {})
                .try_with_sql(&call)
                .and_then(|mut p| p.parse_expr())
            {
                **pattern = translated;
                *escape_char = None;
            }
            return ControlFlow::Continue(());
        };
        let Value::SingleQuotedString(text) = &v.value else {
            return ControlFlow::Continue(());
        };
        match like::with_backslash_escapes(text, escape) {
            Ok(translated) => {
                v.value = Value::SingleQuotedString(translated);
                *escape_char = None;
                ControlFlow::Continue(())
            }
            Err(e) => ControlFlow::Break(e),
        }
    });
    match outcome {
        ControlFlow::Break(e) => Err(Error::InvalidEscapeSequence(e)),
        ControlFlow::Continue(()) => Ok(()),
    }
}

/// `regexp_split_to_table(...)` in an expression (pgcli's completion calls it in a
/// select list) as `unnest(regexp_split_to_array(...))`: DataFusion has no
/// set-returning scalar functions, and unnest in a select list yields the same rows.
fn set_returning_functions(statement: &mut DfStatement) {
    use datafusion::sql::sqlparser::ast::{
        Function, FunctionArg, FunctionArgExpr, FunctionArgumentList, FunctionArguments, Ident,
        ObjectName,
    };
    let DfStatement::Statement(sql) = statement else {
        return;
    };
    let _ = visit_expressions_mut(sql.as_mut(), |expr| {
        let SqlExpr::Function(f) = expr else {
            return ControlFlow::<()>::Continue(());
        };
        let named = match f.name.0.as_slice() {
            [name] => Some(name),
            [schema, name]
                if schema
                    .as_ident()
                    .is_some_and(|i| i.value.eq_ignore_ascii_case("pg_catalog")) =>
            {
                Some(name)
            }
            _ => None,
        };
        let is_split = named
            .and_then(|n| n.as_ident())
            .is_some_and(|i| i.value.eq_ignore_ascii_case("regexp_split_to_table"));
        if is_split && matches!(f.args, FunctionArguments::List(_)) {
            let mut inner = f.clone();
            inner.name = ObjectName::from(vec![Ident::new("regexp_split_to_array")]);
            let mut outer: Function = f.clone();
            outer.name = ObjectName::from(vec![Ident::new("unnest")]);
            outer.args = FunctionArguments::List(FunctionArgumentList {
                duplicate_treatment: None,
                args: vec![FunctionArg::Unnamed(FunctionArgExpr::Expr(
                    SqlExpr::Function(inner),
                ))],
                clauses: Vec::new(),
            });
            *expr = SqlExpr::Function(outer);
        }
        ControlFlow::Continue(())
    });
}

/// Array literals in PostgreSQL's text form as the arrays they are: `'{a,b}'::text[]`
/// (and `CAST('{1,2}' AS int[])`) as `CAST(ARRAY['a','b'] AS text[])`, and a bare
/// `x = ANY('{r,v}')` (psycopg's client-side binding of a list) as `x = ANY(ARRAY['r',
/// 'v'])`: DataFusion does not cast text to a list. A malformed literal is 22P02.
fn array_literals(statement: &mut DfStatement) -> Result<()> {
    use datafusion::sql::sqlparser::ast::{Array, ArrayElemTypeDef};
    fn as_array(text: &str) -> std::result::Result<SqlExpr, String> {
        let elements = crate::pg::text::array_from_text(text)?;
        Ok(SqlExpr::Array(Array {
            elem: elements
                .into_iter()
                .map(|e| {
                    SqlExpr::Value(
                        match e {
                            Some(text) => Value::SingleQuotedString(text),
                            None => Value::Null,
                        }
                        .into(),
                    )
                })
                .collect(),
            named: true,
        }))
    }
    let DfStatement::Statement(sql) = statement else {
        return Ok(());
    };
    let outcome = visit_expressions_mut(sql.as_mut(), |expr| {
        let literal = match expr {
            SqlExpr::Cast {
                expr: inner,
                data_type: SqlDataType::Array(ArrayElemTypeDef::SquareBracket(_, _)),
                ..
            } => inner,
            SqlExpr::AnyOp { right, .. } | SqlExpr::AllOp { right, .. } => right,
            _ => return ControlFlow::Continue(()),
        };
        let SqlExpr::Value(v) = literal.as_ref() else {
            return ControlFlow::Continue(());
        };
        let Value::SingleQuotedString(text) = &v.value else {
            return ControlFlow::Continue(());
        };
        match as_array(text) {
            Ok(array) => {
                **literal = array;
                ControlFlow::Continue(())
            }
            Err(e) => ControlFlow::Break(e),
        }
    });
    match outcome {
        ControlFlow::Break(e) => Err(Error::InvalidText(e)),
        ControlFlow::Continue(()) => Ok(()),
    }
}

/// `SELECT ... INTO t FROM ...` (PostgreSQL's older spelling of CREATE TABLE AS) as
/// `CREATE TABLE t AS SELECT ... FROM ...`, which DataFusion plans.
fn select_into_as_create_table(statement: &mut DfStatement) -> DfResult<()> {
    let DfStatement::Statement(inner) = statement else {
        return Ok(());
    };
    let SqlStatement::Query(query) = inner.as_mut() else {
        return Ok(());
    };
    let SetExpr::Select(select) = query.body.as_mut() else {
        return Ok(());
    };
    let Some(into) = select.into.take() else {
        return Ok(());
    };
    let text = format!(
        "CREATE {}{}TABLE {} AS {query}",
        if into.temporary { "TEMPORARY " } else { "" },
        if into.unlogged { "UNLOGGED " } else { "" },
        into.name
    );
    let mut parsed = DFParser::parse_sql_with_dialect(&text, &PostgreSqlDialect {})?;
    match (parsed.pop_front(), parsed.is_empty()) {
        (Some(create), true) => {
            *statement = create;
            Ok(())
        }
        _ => Err(Error::Syntax(format!(
            "SELECT INTO {}: cannot be read as CREATE TABLE AS",
            into.name
        ))
        .into()),
    }
}

fn parse_rewritten(sql: &str) -> DfResult<Vec<Statement>> {
    match DFParser::parse_sql_with_dialect(sql, &PostgreSqlDialect {}) {
        Ok(statements) => catalog_queries_rewritten(sql, statements)
            .into_iter()
            .map(|mut s| {
                select_into_as_create_table(&mut s)?;
                let names = column_names::pg_column_names(&s);
                bytea_literals(&mut s)?;
                datetime_literals(&mut s);
                regproc_oids(&mut s);
                json_casts(&mut s);
                like_escapes(&mut s)?;
                array_literals(&mut s)?;
                set_returning_functions(&mut s);
                numeric::unconstrained_numeric_casts(&mut s);
                numeric::out_of_range_numbers(&mut s);
                Ok(Statement::named(s, names))
            })
            .collect(),
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
    /// SHOW / SET / RESET of a PostgreSQL parameter or a `wasm.*` setting.
    Parameter(ParameterStatement),
    /// Planned and run by DataFusion (queries, DML, EXPLAIN, DataFusion's own SHOW):
    /// the only family that takes parameters and may return rows.
    Query(DfStatement),
    /// `FETCH` from a cursor: the rows of the cursor's query.
    Fetch {
        /// The cursor.
        cursor: String,
        /// How many rows (`None`: all that are left).
        count: Option<u64>,
        /// Written `MOVE`: the rows are skipped, not returned.
        skip: bool,
    },
    /// `EXECUTE name (arguments)`: a statement prepared with SQL PREPARE.
    Execute {
        /// The prepared statement.
        name: String,
        /// Its arguments (constant expressions).
        arguments: Vec<SqlExpr>,
    },
    /// Handled by the engine itself: returns a command tag (or starts a COPY).
    Command(Box<Command>),
}

/// A statement about a setting.
pub(crate) enum ParameterStatement {
    /// `SHOW name`.
    Show(String),
    /// `SHOW ALL`.
    ShowAll,
    /// `SHOW wasm.<limit>`.
    ShowWasm(String),
    /// `SET [LOCAL] name = value` (`None`: DEFAULT), `SET TIME ZONE`, `SET NAMES`,
    /// `SET [SESSION CHARACTERISTICS AS] TRANSACTION`.
    Set {
        /// The parameter.
        name: String,
        /// Its new value; `None` for DEFAULT.
        value: Option<String>,
        /// `SET LOCAL`: until the transaction ends.
        local: bool,
    },
    /// `RESET name`.
    Reset(String),
    /// `RESET ALL`.
    ResetAll,
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
    /// `BEGIN` / `START TRANSACTION`, with the modes it asks for.
    Begin(Vec<TransactionMode>),
    /// `COMMIT`.
    Commit,
    /// `ROLLBACK`.
    Rollback,
    /// `SAVEPOINT name`.
    Savepoint(String),
    /// `RELEASE [SAVEPOINT] name`.
    Release(String),
    /// `ROLLBACK TO [SAVEPOINT] name`.
    RollbackTo(String),
    /// `DISCARD ALL` (and the narrower `DISCARD PLANS | SEQUENCES | TEMP`: `all` false).
    Discard {
        /// `DISCARD ALL`.
        all: bool,
    },
    /// `DEALLOCATE [PREPARE] name | ALL` (`None`: ALL).
    Deallocate(Option<String>),
    /// `PREPARE name [(types)] AS statement`.
    Prepare {
        /// The statement's name.
        name: String,
        /// The declared parameter types (the rest are inferred).
        types: Vec<SqlDataType>,
        /// The statement.
        statement: Box<SqlStatement>,
    },
    /// `DECLARE name CURSOR [WITH HOLD] FOR query`.
    DeclareCursor {
        /// The cursor's name.
        name: String,
        /// The query.
        query: DfStatement,
        /// `WITH HOLD`: the cursor outlives its transaction.
        hold: bool,
    },
    /// `CLOSE name | ALL` (`None`: ALL).
    CloseCursor(Option<String>),
    /// `LISTEN channel`.
    Listen,
    /// `UNLISTEN channel | *`.
    Unlisten,
}

pub(crate) const COPY_TO_FILE: &str =
    "COPY to a server file is not allowed; use COPY ... TO STDOUT from a client";

impl Family {
    /// The family of `statement`; a statement the engine refuses outright (COPY to a
    /// server file, CREATE DATABASE) is an error here, for Describe and Execute alike.
    pub(crate) fn of(statement: &Statement) -> Result<Family> {
        if let Some(parameter) = parameter_statement(&statement.sql)? {
            return Ok(Family::Parameter(parameter));
        }
        if let DfStatement::Statement(sql) = &statement.sql {
            if let Some(command) = session_command(sql, statement.moves)? {
                return Ok(command);
            }
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
                SqlStatement::StartTransaction { modes, .. } => Command::Begin(modes.clone()),
                SqlStatement::Commit { .. } => Command::Commit,
                SqlStatement::Rollback {
                    savepoint: Some(name),
                    ..
                } => Command::RollbackTo(name.value.clone()),
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

/// Whether `name` is one of the engine's own settings (DataFusion's or the limits),
/// which DataFusion's SET / SHOW / RESET handle.
fn engine_setting(name: &str) -> bool {
    let lower = name.to_lowercase();
    lower.starts_with("datafusion.") || lower.starts_with("wasm.")
}

/// The text of a SET value: `'x'`, `x`, `3`, `-7`, `a, b` (a list); `None` for DEFAULT.
fn set_value(values: &[SqlExpr]) -> Result<Option<String>> {
    let one = |e: &SqlExpr| -> Result<Option<String>> {
        Ok(Some(match e {
            SqlExpr::Value(v) => match &v.value {
                Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => s.clone(),
                Value::Number(n, _) => n.to_string(),
                Value::Boolean(b) => b.to_string(),
                other => other.to_string(),
            },
            SqlExpr::Identifier(id)
                if id.quote_style.is_none() && id.value.eq_ignore_ascii_case("default") =>
            {
                return Ok(None)
            }
            SqlExpr::Identifier(id) => id.value.clone(),
            SqlExpr::CompoundIdentifier(ids) => ids
                .iter()
                .map(|i| i.value.as_str())
                .collect::<Vec<_>>()
                .join("."),
            SqlExpr::UnaryOp {
                op: UnaryOperator::Minus,
                expr,
            } => match expr.as_ref() {
                SqlExpr::Value(v) => format!("-{}", v.value),
                _ => return Err(Error::Syntax(format!("unsupported SET value: {e}"))),
            },
            other => return Err(Error::Syntax(format!("unsupported SET value: {other}"))),
        }))
    };
    match values {
        [single] => one(single),
        many => {
            let mut parts = Vec::new();
            for v in many {
                match one(v)? {
                    Some(p) => parts.push(p),
                    None => return Ok(None),
                }
            }
            Ok(Some(parts.join(", ")))
        }
    }
}

/// The parameter a `SET TRANSACTION` mode sets, and its value.
pub(crate) fn transaction_mode(mode: &TransactionMode) -> (&'static str, String) {
    match mode {
        TransactionMode::IsolationLevel(level) => ("transaction_isolation", level.to_string()),
        TransactionMode::AccessMode(TransactionAccessMode::ReadOnly) => {
            ("transaction_read_only", "on".into())
        }
        TransactionMode::AccessMode(TransactionAccessMode::ReadWrite) => {
            ("transaction_read_only", "off".into())
        }
    }
}

/// Recognizes SHOW / SET / RESET of a PostgreSQL parameter (and SHOW of a `wasm.*`
/// setting); `None` for DataFusion's own settings and every other statement.
fn parameter_statement(statement: &DfStatement) -> Result<Option<ParameterStatement>> {
    let sql = match statement {
        DfStatement::Reset(ResetStatement::Variable(name)) => {
            let name = name.to_string();
            return Ok(if name.eq_ignore_ascii_case("all") {
                Some(ParameterStatement::ResetAll)
            } else if engine_setting(&name) {
                None
            } else {
                Some(ParameterStatement::Reset(name))
            });
        }
        DfStatement::Statement(sql) => sql.as_ref(),
        _ => return Ok(None),
    };
    Ok(Some(match sql {
        SqlStatement::ShowVariable { variable } => {
            let words: Vec<String> = variable.iter().map(|i| i.value.to_lowercase()).collect();
            match words
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>()
                .as_slice()
            {
                ["all"] => ParameterStatement::ShowAll,
                ["time", "zone"] => ParameterStatement::Show("TimeZone".into()),
                ["transaction", "isolation", "level"] => {
                    ParameterStatement::Show("transaction_isolation".into())
                }
                ["session", "authorization"] => {
                    ParameterStatement::Show("session_authorization".into())
                }
                _ => {
                    let name = words.join(".");
                    if name.starts_with("wasm.") {
                        ParameterStatement::ShowWasm(name)
                    } else if name.starts_with("datafusion.") {
                        return Ok(None);
                    } else {
                        ParameterStatement::Show(name)
                    }
                }
            }
        }
        SqlStatement::Set(Set::SingleAssignment {
            scope,
            variable,
            values,
            ..
        }) => {
            let name = variable.to_string();
            if engine_setting(&name) {
                return Ok(None);
            }
            ParameterStatement::Set {
                name,
                value: set_value(values)?,
                local: matches!(scope, Some(ContextModifier::Local)),
            }
        }
        SqlStatement::Set(Set::SetTimeZone { local, value }) => ParameterStatement::Set {
            name: "TimeZone".into(),
            value: match value {
                SqlExpr::Identifier(id)
                    if id.quote_style.is_none()
                        && (id.value.eq_ignore_ascii_case("local")
                            || id.value.eq_ignore_ascii_case("default")) =>
                {
                    None
                }
                other => set_value(std::slice::from_ref(other))?,
            },
            local: *local,
        },
        SqlStatement::Set(Set::SetNames { charset_name, .. }) => ParameterStatement::Set {
            name: "client_encoding".into(),
            value: Some(charset_name.value.clone()),
            local: false,
        },
        SqlStatement::Set(Set::SetTransaction { modes, session, .. }) => {
            // One statement may carry several modes; each is checked when set, and the
            // session applies them in order (see `Session::run_parameter`).
            let Some(mode) = modes.first() else {
                return Ok(None);
            };
            if modes.len() > 1 {
                return Err(Error::NotSupported(
                    "SET TRANSACTION with more than one mode is not supported; set them one at a time".into(),
                ));
            }
            let (name, value) = transaction_mode(mode);
            let name = if *session {
                name.replacen("transaction_", "default_transaction_", 1)
            } else {
                name.to_string()
            };
            ParameterStatement::Set {
                name,
                value: Some(value),
                local: !*session,
            }
        }
        _ => return Ok(None),
    }))
}

/// The session-state statements: transactions' savepoints, prepared statements,
/// cursors, notifications, DISCARD.
fn session_command(sql: &SqlStatement, moves: bool) -> Result<Option<Family>> {
    let command = match sql {
        SqlStatement::Savepoint { name } => Command::Savepoint(name.value.clone()),
        SqlStatement::ReleaseSavepoint { name } => Command::Release(name.value.clone()),
        SqlStatement::Discard { object_type } => Command::Discard {
            all: matches!(object_type, DiscardObject::ALL),
        },
        SqlStatement::Deallocate { name, .. } => Command::Deallocate(
            (!(name.quote_style.is_none() && name.value.eq_ignore_ascii_case("all")))
                .then(|| name.value.clone()),
        ),
        SqlStatement::Declare { stmts } => {
            let [declare] = stmts.as_slice() else {
                return Err(Error::NotSupported("DECLARE one cursor at a time".into()));
            };
            let (Some(DeclareType::Cursor), [name], Some(query)) = (
                &declare.declare_type,
                declare.names.as_slice(),
                &declare.for_query,
            ) else {
                return Err(Error::NotSupported(
                    "only DECLARE name CURSOR FOR query is supported".into(),
                ));
            };
            if declare.scroll == Some(true) {
                return Err(Error::NotSupported(
                    "SCROLL cursors are not supported; cursors are NO SCROLL".into(),
                ));
            }
            if declare.binary == Some(true) {
                return Err(Error::NotSupported(
                    "BINARY cursors are not supported; fetch in binary with the extended protocol"
                        .into(),
                ));
            }
            Command::DeclareCursor {
                name: name.value.clone(),
                query: DfStatement::Statement(Box::new(SqlStatement::Query(query.clone()))),
                hold: declare.hold == Some(true),
            }
        }
        SqlStatement::Fetch {
            name, direction, ..
        } => {
            let count = |v: &datafusion::sql::sqlparser::ast::ValueWithSpan| -> Result<u64> {
                match &v.value {
                    Value::Number(n, _) => n.parse::<u64>().map_err(|_| {
                        Error::NotSupported(
                            "FETCH takes a forward row count (cursors are NO SCROLL)".into(),
                        )
                    }),
                    other => Err(Error::Syntax(format!("invalid FETCH count {other}"))),
                }
            };
            let count = match direction {
                FetchDirection::Next => Some(1),
                FetchDirection::All | FetchDirection::ForwardAll => None,
                FetchDirection::Count { limit } => Some(count(limit)?),
                FetchDirection::Forward { limit } => match limit {
                    Some(limit) => Some(count(limit)?),
                    None => Some(1),
                },
                other => {
                    return Err(Error::NotSupported(format!(
                        "FETCH {other} is not supported: cursors are NO SCROLL (forward only)"
                    )))
                }
            };
            return Ok(Some(Family::Fetch {
                cursor: name.value.clone(),
                count,
                skip: moves,
            }));
        }
        SqlStatement::Close { cursor } => Command::CloseCursor(match cursor {
            CloseCursor::All => None,
            CloseCursor::Specific { name } => Some(name.value.clone()),
        }),
        SqlStatement::LISTEN { .. } => Command::Listen,
        SqlStatement::UNLISTEN { .. } => Command::Unlisten,
        SqlStatement::NOTIFY { .. } => {
            return Err(Error::NotSupported(
                "NOTIFY is not supported yet: notifications are not delivered".into(),
            ))
        }
        SqlStatement::Prepare {
            name,
            data_types,
            statement,
        } => Command::Prepare {
            name: name.value.clone(),
            types: data_types.clone(),
            statement: statement.clone(),
        },
        SqlStatement::Execute {
            name: Some(name),
            parameters,
            using,
            into,
            immediate: false,
            ..
        } if using.is_empty() && into.is_empty() => {
            return Ok(Some(Family::Execute {
                name: name.to_string(),
                arguments: parameters.clone(),
            }))
        }
        SqlStatement::Execute { .. } => {
            return Err(Error::NotSupported(
                "only EXECUTE name [(arguments)] is supported".into(),
            ))
        }
        _ => return Ok(None),
    };
    Ok(Some(Family::Command(Box::new(command))))
}

#[cfg(test)]
mod property_tests {
    use proptest::prelude::*;

    use super::*;

    /// Pieces of the statements the engine reads from the AST itself (CREATE/DROP
    /// FUNCTION and AGGREGATE, MOVE, SET), and of the text around them.
    const PIECES: &[&str] = &[
        "CREATE",
        "OR REPLACE",
        "FUNCTION",
        "AGGREGATE",
        "DROP",
        "MOVE",
        "FETCH",
        "SET",
        "f",
        "\"F\"",
        "(",
        ")",
        "bigint",
        "text",
        "timestamptz",
        "RETURNS",
        "LANGUAGE",
        "wasm",
        "AS",
        "'m.wasm'",
        ",",
        "'x'",
        "wasm.fuel",
        "=",
        "TO",
        "'1'",
        "STRICT",
        "IMMUTABLE",
        ";",
        "$$",
        "$1",
        "'",
        "\"",
        "--",
        "/*",
        "*/",
        "\n",
        "IF EXISTS",
        "SELECT",
        "1",
        "FROM",
        "ALL",
        "NEXT",
        "CURSOR",
        "DECLARE",
        "é",
    ];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        /// Any text, DDL-shaped or not: statements the engine can classify, or an
        /// error; never a panic.
        #[test]
        fn any_statement_text_parses_or_is_refused(
            pieces in proptest::collection::vec(proptest::sample::select(PIECES), 0..24),
            noise in "(?s).{0,16}",
        ) {
            let sql = format!("{} {noise}", pieces.join(" "));
            if let Ok(statements) = parse(&sql) {
                for s in &statements {
                    let _ = Family::of(s);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_names_are_told_from_the_text_as_written() {
        // Each of these is rewritten before planning (an input function, pg_numeric,
        // unnest): the names are PostgreSQL's for the text the client wrote.
        let statements = parse(
            "SELECT '{}'::json, 2.5::numeric, x::numeric, regexp_split_to_table('a b', ' ') \
             FROM t",
        )
        .unwrap();
        assert_eq!(
            statements[0].column_names.as_deref(),
            Some(
                &[
                    "json".to_string(),
                    "numeric".to_string(),
                    "x".to_string(),
                    "regexp_split_to_table".to_string()
                ][..]
            )
        );
    }
}
