//! PostgreSQL's `pg_catalog`, so psql's `\d` family and drivers' introspection work.
//!
//! The tables and most functions come from `datafusion-pg-catalog` (`pg_class`,
//! `pg_attribute`, `pg_namespace`, `pg_database` follow the live catalog; the others are
//! a static export of PostgreSQL's). Its `pg_proc` lists only PostgreSQL's built-ins, so
//! the one registered here adds every Wasm function live, with a `wasm` row in
//! `pg_language`, and the functions psql's `\df` calls (`pg_get_function_result`, ...)
//! answer for them. Catalog queries are rewritten into SQL DataFusion runs
//! (`OPERATOR(pg_catalog.~)`, `COLLATE`, `'t'::regclass`, ...) by the crate's rewriter,
//! applied only to statements that read `pg_catalog`: user queries are never changed.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, LazyLock, OnceLock, Weak};

use async_trait::async_trait;
use datafusion::arrow::array::{
    new_null_array, Array, ArrayRef, AsArray, BooleanArray, Int32Array, Int64Array, RecordBatch,
    StringArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Int32Type, Int64Type, Schema, SchemaRef};
use datafusion::catalog::{
    CatalogProviderList, MemTable, SchemaProvider, Session as DfSession, TableProvider,
};
use datafusion::common::ScalarValue;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TableType,
    TypeSignature, Volatility,
};
use datafusion::physical_plan::{collect, ExecutionPlan};
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::{
    visit_expressions, visit_expressions_mut, visit_relations, visit_relations_mut,
    Expr as SqlExpr, FunctionArguments, GroupByExpr, Ident, ObjectName, Query, SelectItem, SetExpr,
    Statement as SqlStatement, TableFactor, Value,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion_pg_catalog::pg_catalog::context::{PgCatalogContextProvider, Role};
use datafusion_pg_catalog::pg_catalog::{
    setup_pg_catalog, PgCatalogSchemaProvider, PgCatalogStaticTables, PG_CATALOG_TABLES,
};
use datafusion_pg_catalog::sql::PostgresCompatibilityParser;
use std::ops::ControlFlow;

use crate::error::Error;
use crate::introspection::activity::{activity_batch, activity_schema};
use crate::introspection::settings::PgSettings;
use crate::introspection::system::SystemTable;
use crate::introspection::typed_columns::{column_extras, typed_columns, ColumnExtras};
use crate::introspection::{records_in_order, DatabaseHandle, DatabaseView};
use crate::pg::types::PG_TYPE_KEY;
use crate::store::catalog::FunctionRecord;
use crate::store::{CATALOG_NAME, DEFAULT_SCHEMA};
use crate::wasm::signature::FunctionKind;

/// The OID of the `wasm` row in `pg_language` (above PostgreSQL's fixed OIDs, below the
/// range the catalog hands out to tables).
const WASM_LANGUAGE_OID: i32 = 13_000;
/// Wasm functions get OIDs from here on (their creation sequence number added), far above
/// the OIDs tables and schemas get, so the two never meet.
const WASM_FUNCTION_OID_BASE: i32 = 1_000_000_000;
/// `pg_authid.oid` of the bootstrap superuser, which owns everything.
const OWNER_OID: i32 = 10;

/// The database a catalog function or table reads, set once it exists (the functions
/// are registered before it is built, so they count as built-ins).
pub(crate) type DbHandle = Arc<OnceLock<DatabaseHandle>>;

fn database(handle: &DbHandle) -> DfResult<Arc<dyn DatabaseView>> {
    handle
        .get()
        .and_then(Weak::upgrade)
        .ok_or_else(|| DataFusionError::Execution("the database is closed".into()))
}

/// Installs `pg_catalog` and its functions in the template every session is cloned from.
pub(crate) fn setup(template: &SessionContext, admins: &[String]) -> crate::Result<DbHandle> {
    let roles = Roles {
        names: admins.to_vec(),
    };
    setup_pg_catalog(template, CATALOG_NAME, roles.clone())
        .map_err(|e| Error::Io(e.to_string()))?;
    let handle: DbHandle = Arc::new(OnceLock::new());
    let statics = Arc::new(PgCatalogStaticTables::try_new()?);
    let inner = Arc::new(PgCatalogSchemaProvider::try_new(
        template.state().catalog_list().clone(),
        statics.clone(),
        roles,
    )?);
    let schema = LiveCatalog {
        inner,
        statics,
        catalogs: template.state().catalog_list().clone(),
        db: handle.clone(),
    };
    template
        .catalog(CATALOG_NAME)
        .ok_or_else(|| Error::Io(format!("catalog {CATALOG_NAME} is missing")))?
        .register_schema("pg_catalog", Arc::new(schema))?;

    let owner = admins.first().cloned().unwrap_or_else(|| "wasmudf".into());
    let one = || Signature::any(1, Volatility::Stable);
    let functions = [
        ("pg_get_userbyid", Answer::Owner(owner), one()),
        ("pg_get_function_result", Answer::FunctionResult, one()),
        (
            "pg_get_function_arguments",
            Answer::FunctionArguments,
            one(),
        ),
        (
            "pg_get_function_identity_arguments",
            Answer::FunctionArguments,
            one(),
        ),
        ("pg_size_pretty", Answer::SizePretty, one()),
        ("to_regtype", Answer::ToRegtype, one()),
        ("regproc_oid", Answer::RegprocOid, one()),
        ("regprocedure_oid", Answer::RegprocedureOid, one()),
        ("pg_get_functiondef", Answer::FunctionDef, one()),
        (
            "pg_database_size",
            Answer::DatabaseSize,
            Signature::any(1, Volatility::Volatile),
        ),
        ("pg_table_size", Answer::NullBigint, one()),
        ("pg_indexes_size", Answer::NullBigint, one()),
        ("pg_operator_is_visible", Answer::True, one()),
        ("pg_function_is_visible", Answer::True, one()),
        ("pg_type_is_visible", Answer::True, one()),
        ("pg_get_function_sqlbody", Answer::NullText, one()),
        // obj_description(oid) and obj_description(oid, catalog): one name, both arities.
        (
            "obj_description",
            Answer::NullText,
            Signature::one_of(
                vec![TypeSignature::Any(1), TypeSignature::Any(2)],
                Volatility::Stable,
            ),
        ),
        (
            "col_description",
            Answer::NullText,
            Signature::any(2, Volatility::Stable),
        ),
        (
            "shobj_description",
            Answer::NullText,
            Signature::any(2, Volatility::Stable),
        ),
        // No column owns a sequence (there are no serial or identity columns).
        (
            "pg_get_serial_sequence",
            Answer::NullText,
            Signature::any(2, Volatility::Stable),
        ),
        ("pg_collation_is_visible", Answer::True, one()),
        (
            "pg_get_expr",
            Answer::Expression,
            Signature::one_of(
                vec![TypeSignature::Any(2), TypeSignature::Any(3)],
                Volatility::Stable,
            ),
        ),
        // No table has an index (the static rows are PostgreSQL's own catalogs').
        (
            "pg_get_indexdef",
            Answer::NullText,
            Signature::one_of(
                vec![TypeSignature::Any(1), TypeSignature::Any(3)],
                Volatility::Stable,
            ),
        ),
    ];
    for (name, answer, signature) in functions {
        template.register_udf(ScalarUDF::new_from_impl(CatalogFunction {
            name,
            answer,
            signature,
            db: handle.clone(),
        }));
    }
    Ok(handle)
}

/// Whether `statement` reads the catalog (a `pg_catalog` table or function), and so is
/// a tool's introspection query that the compatibility rewriter should see.
pub(crate) fn reads_catalog(statement: &SqlStatement) -> bool {
    let catalog_name = |name: &ObjectName| {
        let parts: Vec<String> = name
            .0
            .iter()
            .filter_map(|p| p.as_ident().map(|i| i.value.to_ascii_lowercase()))
            .collect();
        match parts.as_slice() {
            [schema, _] => schema == "pg_catalog",
            [table] => {
                PG_CATALOG_TABLES.contains(&table.as_str()) || LIVE_VIEWS.contains(&table.as_str())
            }
            _ => false,
        }
    };
    let tables = visit_relations(statement, |name| {
        if catalog_name(name) {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    });
    let functions = visit_expressions(statement, |expr| match expr {
        SqlExpr::Function(f)
            if f.name.0.len() == 2
                && f.name.0[0]
                    .as_ident()
                    .is_some_and(|i| i.value.eq_ignore_ascii_case("pg_catalog")) =>
        {
            ControlFlow::Break(())
        }
        _ => ControlFlow::Continue(()),
    });
    tables.is_break() || functions.is_break()
}

static COMPATIBILITY: LazyLock<PostgresCompatibilityParser> =
    LazyLock::new(PostgresCompatibilityParser::new);

/// Parses a tool's catalog query with the compatibility rewriter (which also swaps a few
/// known psql/pgcli queries DataFusion cannot plan for equivalents); `None` if it
/// cannot.
pub(crate) fn parse_catalog_query(sql: &str) -> Option<Vec<SqlStatement>> {
    let statements = COMPATIBILITY.parse(sql).ok()?;
    Some(statements.into_iter().map(catalog_rewrites).collect())
}

/// Rewrites one catalog statement (when the whole text could not go through
/// [`parse_catalog_query`]).
pub(crate) fn rewrite_catalog_statement(statement: SqlStatement) -> SqlStatement {
    catalog_rewrites(COMPATIBILITY.rewrite(statement))
}

/// The views of `pg_catalog` that are ours, not the crate's, named without their schema
/// as PostgreSQL's search path allows.
const LIVE_VIEWS: &[&str] = &["pg_stat_activity"];

/// `pg_stat_activity` as `pg_catalog.pg_stat_activity` (DataFusion resolves a bare
/// name in `public`).
fn live_views_qualified(mut statement: SqlStatement) -> SqlStatement {
    let _ = visit_relations_mut(&mut statement, |name: &mut ObjectName| {
        let bare = match name.0.as_slice() {
            [part] => part.as_ident().map(|i| i.value.to_ascii_lowercase()),
            _ => None,
        };
        if let Some(bare) = bare.filter(|b| LIVE_VIEWS.contains(&b.as_str())) {
            *name = ObjectName::from(vec![Ident::new("pg_catalog"), Ident::new(bare)]);
        }
        ControlFlow::<()>::Continue(())
    });
    statement
}

/// Our rewrites of a catalog statement, after the crate's.
fn catalog_rewrites(statement: SqlStatement) -> SqlStatement {
    let statement = live_views_qualified(statement);
    let statement = regproc_names(statement);
    let statement = array_subqueries_aggregated(statement);
    let statement = scalar_subqueries_aggregated(subqueries_under_case_nulled(statement));
    function_columns_named(catalog_functions_rewritten(statement))
}

/// `'array_in'::regproc` as the function's name, not its OID: the columns of type
/// `regproc` (`pg_type.typinput`, ...) hold names here, so pgjdbc's type cache
/// (`typinput = 'array_in'::regproc`) compares names with names. The crate's rewriter
/// has made the cast a lookup, `(SELECT oid FROM pg_catalog.pg_proc WHERE proname =
/// 'array_in')`, which is turned back into the name.
fn regproc_names(mut statement: SqlStatement) -> SqlStatement {
    // `'name'::regproc::oid` (psql's `\sf`) wants the OID: the Wasm function's.
    let _ = visit_expressions_mut(&mut statement, |expr| {
        if let SqlExpr::Cast {
            expr: inner,
            data_type,
            ..
        } = expr
        {
            let to_oid = data_type.to_string().to_lowercase().ends_with("oid");
            if let (true, SqlExpr::Subquery(query)) = (to_oid, inner.as_ref()) {
                if let Some(name) = pg_proc_lookup(query) {
                    let literal = Value::SingleQuotedString(name);
                    if let Ok(call) = Parser::new(&PostgreSqlDialect {})
                        .try_with_sql(&format!("regproc_oid({literal})"))
                        .and_then(|mut p| p.parse_expr())
                    {
                        *expr = call;
                    }
                }
            }
        }
        ControlFlow::<()>::Continue(())
    });
    let _ = visit_expressions_mut(&mut statement, |expr| {
        if let SqlExpr::Subquery(query) = expr {
            if let Some(name) = pg_proc_lookup(query) {
                let bare = name
                    .strip_prefix("pg_catalog.")
                    .unwrap_or(&name)
                    .to_string();
                *expr = SqlExpr::Value(Value::SingleQuotedString(bare).with_empty_span());
            }
        }
        ControlFlow::<()>::Continue(())
    });
    statement
}

/// The name in the crate's rewrite of `'name'::regproc`: `SELECT oid FROM
/// pg_catalog.pg_proc WHERE proname = 'name'`.
fn pg_proc_lookup(query: &Query) -> Option<String> {
    let SetExpr::Select(select) = query.body.as_ref() else {
        return None;
    };
    let from_pg_proc = matches!(select.from.as_slice(), [from]
        if from.joins.is_empty()
            && matches!(&from.relation, TableFactor::Table { name, alias: None, .. }
                if name.to_string().eq_ignore_ascii_case("pg_catalog.pg_proc")));
    let oid_only = matches!(select.projection.as_slice(),
        [SelectItem::UnnamedExpr(SqlExpr::Identifier(i))] if i.value == "oid");
    if !from_pg_proc || !oid_only {
        return None;
    }
    match &select.selection {
        Some(SqlExpr::BinaryOp { left, op, right })
            if op.to_string() == "="
                && matches!(left.as_ref(), SqlExpr::Identifier(i) if i.value == "proname") =>
        {
            match right.as_ref() {
                SqlExpr::Value(v) => match &v.value {
                    Value::SingleQuotedString(name) => Some(name.clone()),
                    _ => None,
                },
                _ => None,
            }
        }
        _ => None,
    }
}

/// A scalar subquery inside a CASE (SQLAlchemy's column reflection reads a column's
/// default, identity options and collation that way) as NULL: DataFusion cannot plan
/// a subquery evaluated only when a branch is taken. What those subqueries look up
/// does not exist here (no column has a default, an identity or a collation), so NULL
/// is also their answer.
fn subqueries_under_case_nulled(mut statement: SqlStatement) -> SqlStatement {
    fn null_subqueries(expr: &mut SqlExpr) {
        let _ = visit_expressions_mut(expr, |e| {
            if matches!(e, SqlExpr::Subquery(_)) {
                *e = SqlExpr::Value(Value::Null.with_empty_span());
            }
            ControlFlow::<()>::Continue(())
        });
    }
    let _ = visit_expressions_mut(&mut statement, |expr| {
        if let SqlExpr::Case {
            operand,
            conditions,
            else_result,
            ..
        } = expr
        {
            for e in operand.iter_mut().chain(else_result.iter_mut()) {
                null_subqueries(e);
            }
            for when in conditions {
                null_subqueries(&mut when.condition);
                null_subqueries(&mut when.result);
            }
        }
        ControlFlow::<()>::Continue(())
    });
    statement
}

/// Unaliased function calls in a select list named as PostgreSQL names them, after the
/// function (`count(1)` is `count`), where that name is unique in its list: a catalog
/// query may refer to such a column from outside its subquery or CTE (pgcli's casing
/// query orders a CTE by its `count`). The top-level names are set the same way later
/// (`pg::column_names`).
fn function_columns_named(mut statement: SqlStatement) -> SqlStatement {
    use datafusion::sql::sqlparser::ast::{Ident, VisitMut, VisitorMut};
    struct Namer;
    impl VisitorMut for Namer {
        type Break = ();
        fn post_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
            let SetExpr::Select(select) = query.body.as_mut() else {
                return ControlFlow::Continue(());
            };
            let name_of = |item: &SelectItem| match item {
                SelectItem::UnnamedExpr(SqlExpr::Function(f)) => f
                    .name
                    .0
                    .last()
                    .and_then(|p| p.as_ident())
                    .map(|i| i.value.to_ascii_lowercase()),
                SelectItem::UnnamedExpr(SqlExpr::Identifier(i)) => {
                    Some(i.value.to_ascii_lowercase())
                }
                SelectItem::UnnamedExpr(SqlExpr::CompoundIdentifier(parts)) => {
                    parts.last().map(|i| i.value.to_ascii_lowercase())
                }
                SelectItem::ExprWithAlias { alias, .. } => Some(alias.value.to_ascii_lowercase()),
                _ => None,
            };
            let names: Vec<Option<String>> = select.projection.iter().map(name_of).collect();
            for (i, item) in select.projection.iter_mut().enumerate() {
                let SelectItem::UnnamedExpr(expr @ SqlExpr::Function(_)) = item else {
                    continue;
                };
                let Some(name) = names[i].clone() else {
                    continue;
                };
                if names.iter().filter(|n| n.as_deref() == Some(&name)).count() == 1 {
                    *item = SelectItem::ExprWithAlias {
                        expr: expr.clone(),
                        alias: Ident::new(name),
                    };
                }
            }
            ControlFlow::Continue(())
        }
    }
    let _ = statement.visit(&mut Namer);
    statement
}

/// Aggregates DataFusion knows, which a scalar subquery's item may already be.
const AGGREGATES: &[&str] = &[
    "count",
    "min",
    "max",
    "sum",
    "avg",
    "array_agg",
    "string_agg",
    "bool_or",
    "bool_and",
    "first_value",
    "last_value",
];

/// A scalar subquery of one plain item (`(SELECT pg_get_expr(d.adbin, d.adrelid) FROM
/// pg_attrdef d WHERE d.adrelid = a.attrelid AND ...)`, SQLAlchemy's column reflection)
/// with that item under `first_value(...)`: DataFusion plans a correlated scalar
/// subquery only when it is aggregated. Catalog lookups like these find one row at
/// most, where the two agree; PostgreSQL would refuse a second row.
fn scalar_subqueries_aggregated(mut statement: SqlStatement) -> SqlStatement {
    let _ = visit_expressions_mut(&mut statement, |expr| {
        let SqlExpr::Subquery(query) = expr else {
            return ControlFlow::<()>::Continue(());
        };
        if query.limit_clause.is_some() || query.fetch.is_some() {
            return ControlFlow::Continue(());
        }
        let SetExpr::Select(select) = query.body.as_mut() else {
            return ControlFlow::Continue(());
        };
        let plain = select.projection.len() == 1
            && select.distinct.is_none()
            && matches!(&select.group_by, GroupByExpr::Expressions(e, _) if e.is_empty())
            && select.having.is_none()
            && !select.from.is_empty();
        if !plain {
            return ControlFlow::Continue(());
        }
        let item = match &mut select.projection[0] {
            SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => e,
            _ => return ControlFlow::Continue(()),
        };
        let aggregated = matches!(item, SqlExpr::Function(f)
        if f.name.0.last().and_then(|p| p.as_ident()).is_some_and(|i| {
            AGGREGATES.contains(&i.value.to_ascii_lowercase().as_str())
        }));
        if aggregated {
            return ControlFlow::Continue(());
        }
        let call = format!("first_value({item})");
        if let Ok(wrapped) = Parser::new(&PostgreSqlDialect {})
            .try_with_sql(&call)
            .and_then(|mut p| p.parse_expr())
        {
            *item = wrapped;
        }
        ControlFlow::Continue(())
    });
    statement
}

/// Catalog functions whose answer is a query over the catalog, as that query:
/// - `pg_table_is_visible(oid)`: whether the relation's schema is one that unqualified
///   names resolve in (`pg_catalog` and `public`), so the `wasm` and
///   `information_schema` views are not listed as the user's (SQLAlchemy's
///   `get_view_names`, psql's `\dv`);
/// - `generate_subscripts(array, 1)`, a set-returning function DataFusion lacks, as
///   `unnest` of the subscripts' range (SQLAlchemy's index and constraint reflection
///   pairs it with `unnest(indkey)`; the two unnest side by side, as in PostgreSQL).
fn catalog_functions_rewritten(mut statement: SqlStatement) -> SqlStatement {
    let parse = |sql: String| {
        Parser::new(&PostgreSqlDialect {})
            .try_with_sql(&sql)
            .and_then(|mut p| p.parse_expr())
            .ok()
    };
    let _ = visit_expressions_mut(&mut statement, |expr| {
        // `(composite).field` (pgjdbc's `(result.KEYS).x`): DataFusion reads a struct's
        // field as `struct['field']`.
        if let SqlExpr::CompoundFieldAccess { root, access_chain } = expr {
            use datafusion::sql::sqlparser::ast::AccessExpr;
            if let [AccessExpr::Dot(SqlExpr::Identifier(field))] = access_chain.as_slice() {
                let root = match root.as_ref() {
                    SqlExpr::Nested(e) => e.to_string(),
                    e => e.to_string(),
                };
                if let Some(replacement) = parse(format!("({root})['{}']", field.value)) {
                    *expr = replacement;
                }
            }
            return ControlFlow::<()>::Continue(());
        }
        if let Some(oid) = regtype_as_text(expr) {
            if let Some(replacement) = parse(format!("format_type({oid}, NULL)")) {
                *expr = replacement;
            }
            return ControlFlow::<()>::Continue(());
        }
        let SqlExpr::Function(f) = expr else {
            return ControlFlow::<()>::Continue(());
        };
        let name = match f.name.0.as_slice() {
            [name] => name,
            [schema, name]
                if schema.as_ident().is_some_and(|i| {
                    i.value.eq_ignore_ascii_case("pg_catalog")
                        || i.value.eq_ignore_ascii_case("information_schema")
                }) =>
            {
                name
            }
            _ => return ControlFlow::Continue(()),
        };
        let Some(name) = name.as_ident().map(|i| i.value.to_ascii_lowercase()) else {
            return ControlFlow::Continue(());
        };
        let FunctionArguments::List(list) = &f.args else {
            return ControlFlow::Continue(());
        };
        let args: Vec<String> = list.args.iter().map(ToString::to_string).collect();
        let replacement = match (name.as_str(), args.as_slice()) {
            // A scalar subquery, which DataFusion plans in a select list as in WHERE
            // (an IN subquery only in WHERE).
            ("pg_table_is_visible", [oid]) => parse(format!(
                "coalesce((SELECT bool_or(visible_namespace.nspname IN ('pg_catalog', \
                 '{DEFAULT_SCHEMA}')) FROM pg_catalog.pg_class AS visible_class \
                 JOIN pg_catalog.pg_namespace AS visible_namespace \
                 ON visible_namespace.oid = visible_class.relnamespace \
                 WHERE visible_class.oid = ({oid})), false)"
            )),
            // `information_schema._pg_expandarray(a)`, the set of (x: element, n:
            // subscript) pairs pgjdbc's getPrimaryKeys and getIndexInfo read.
            ("_pg_expandarray", [array]) => parse(format!(
                "named_struct('x', unnest({array}), 'n', \
                 unnest(range(1, CAST(cardinality({array}) AS BIGINT) + 1)))"
            )),
            // Every catalog array has one dimension: another one has no subscripts.
            ("generate_subscripts", [array, dimension]) => parse(format!(
                "unnest(range(1, CASE WHEN ({dimension}) = 1 \
                 THEN CAST(cardinality({array}) AS BIGINT) + 1 ELSE 1 END))"
            )),
            _ => None,
        };
        if let Some(replacement) = replacement {
            *expr = replacement;
        }
        ControlFlow::Continue(())
    });
    statement
}

/// `ARRAY(SELECT x FROM ...)`, which DataFusion lacks (psql's `\\du` and `\\d+` use it),
/// as an `array_agg` subquery:
/// - a plain one-column SELECT (possibly correlated, as psql's are) aggregates in place:
///   `(SELECT array_agg(x ORDER BY ...) FROM ...)`;
/// - any other shape (DISTINCT, GROUP BY, LIMIT, UNION, ...) is aggregated over it as a
///   derived table, which keeps its rows but not their order;
/// - a subquery over a set-returning function of an outer column (`unnest(tc.reloptions)`)
///   cannot be planned at all and becomes NULL, which is what it yields here anyway (no
///   table has options).
///
/// Over no rows the result is NULL where PostgreSQL gives an empty array.
fn array_subqueries_aggregated(mut statement: SqlStatement) -> SqlStatement {
    let _ = visit_expressions_mut(&mut statement, |expr| {
        let SqlExpr::Function(f) = expr else {
            return ControlFlow::<()>::Continue(());
        };
        let is_array = f.name.0.len() == 1
            && f.name.0[0]
                .as_ident()
                .is_some_and(|i| i.value.eq_ignore_ascii_case("array"));
        let FunctionArguments::Subquery(query) = &f.args else {
            return ControlFlow::Continue(());
        };
        if !is_array {
            return ControlFlow::Continue(());
        }
        if let Some(replacement) = array_subquery(query) {
            *expr = replacement;
        }
        ControlFlow::Continue(())
    });
    statement
}

/// The replacement of `ARRAY(query)` (see [`array_subqueries_aggregated`]).
fn array_subquery(query: &Query) -> Option<SqlExpr> {
    let parse = |sql: String| {
        Parser::new(&PostgreSqlDialect {})
            .try_with_sql(&sql)
            .and_then(|mut p| p.parse_expr())
            .ok()
    };
    let SetExpr::Select(select) = query.body.as_ref() else {
        return parse(format!(
            "(SELECT array_agg(array_item.c) FROM ({query}) AS array_item(c))"
        ));
    };
    if select.from.iter().any(|t| {
        matches!(t.relation, TableFactor::Table { args: Some(_), .. })
            || matches!(t.relation, TableFactor::Function { .. })
    }) {
        return Some(SqlExpr::Value(Value::Null.with_empty_span()));
    }
    let plain = select.projection.len() == 1
        && select.distinct.is_none()
        && matches!(&select.group_by, GroupByExpr::Expressions(e, _) if e.is_empty())
        && select.having.is_none()
        && query.limit_clause.is_none()
        && query.fetch.is_none();
    let item = match select.projection.first() {
        Some(SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. }) if plain => e,
        _ => {
            return parse(format!(
                "(SELECT array_agg(array_item.c) FROM ({query}) AS array_item(c))"
            ))
        }
    };
    let call = if select.from.is_empty() {
        format!("make_array({item})")
    } else {
        match &query.order_by {
            Some(o) => format!("array_agg({item} {o})"),
            None => format!("array_agg({item})"),
        }
    };
    let mut aggregated = query.clone();
    aggregated.order_by = None;
    if let SetExpr::Select(select) = aggregated.body.as_mut() {
        select.projection = vec![SelectItem::UnnamedExpr(parse(call)?)];
    }
    Some(SqlExpr::Subquery(Box::new(aggregated)))
}

/// The operand of `x::regtype::text`, which PostgreSQL prints as the type's name
/// (`bigint`): here `regtype` is the bare OID, so the name comes from `format_type`
/// (pgcli's column and function completion reads `atttypid::regtype::text`).
fn regtype_as_text(expr: &SqlExpr) -> Option<String> {
    let type_name = |t: &datafusion::sql::sqlparser::ast::DataType| {
        let name = t.to_string().to_ascii_lowercase();
        name.strip_prefix("pg_catalog.")
            .unwrap_or(&name)
            .to_string()
    };
    let SqlExpr::Cast {
        expr: inner,
        data_type,
        ..
    } = expr
    else {
        return None;
    };
    if !matches!(type_name(data_type).as_str(), "text" | "varchar") {
        return None;
    }
    match inner.as_ref() {
        SqlExpr::Cast {
            expr: oid,
            data_type,
            ..
        } if type_name(data_type) == "regtype" => Some(oid.to_string()),
        _ => None,
    }
}

/// Roles for `pg_roles`: the administrators, as superusers.
#[derive(Debug, Clone)]
struct Roles {
    names: Vec<String>,
}

#[async_trait]
impl PgCatalogContextProvider for Roles {
    async fn roles(&self) -> Vec<String> {
        if self.names.is_empty() {
            vec!["wasmudf".into()]
        } else {
            self.names.clone()
        }
    }

    async fn role(&self, name: &str) -> Option<Role> {
        Some(Role {
            name: name.to_string(),
            is_superuser: true,
            can_login: true,
            can_create_db: false,
            can_create_role: false,
            can_create_user: false,
            can_replication: false,
            grants: Vec::new(),
            inherited_roles: Vec::new(),
        })
    }
}

/// The crate's `pg_catalog` with `pg_proc` and `pg_language` made live.
#[derive(Debug)]
struct LiveCatalog {
    inner: Arc<PgCatalogSchemaProvider<Arc<dyn CatalogProviderList>, Roles>>,
    statics: Arc<PgCatalogStaticTables>,
    catalogs: Arc<dyn CatalogProviderList>,
    db: DbHandle,
}

#[async_trait]
impl SchemaProvider for LiveCatalog {
    fn table_names(&self) -> Vec<String> {
        let mut names = self.inner.table_names();
        names.extend(LIVE_VIEWS.iter().map(|v| v.to_string()));
        names
    }

    async fn table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        let name = name.to_ascii_lowercase();
        let table: Arc<dyn TableProvider> = match name.as_str() {
            "pg_proc" => Arc::new(LiveTable::new(
                self.statics.pg_proc.schema(),
                self.statics.pg_proc.data(),
                Extra::Functions {
                    db: self.db.clone(),
                    namespaces: self.inner.clone(),
                },
            )?),
            "pg_settings" => return Ok(Some(Arc::new(PgSettings::new()))),
            "pg_stat_activity" => {
                let db =
                    self.db.get().cloned().ok_or_else(|| {
                        DataFusionError::Execution("the database is closed".into())
                    })?;
                return Ok(Some(Arc::new(SystemTable::new(
                    activity_schema(),
                    db,
                    activity_batch,
                ))));
            }
            "pg_attribute" => match self.inner.table(&name).await? {
                Some(t) => Arc::new(AttributeTypes {
                    inner: t,
                    catalogs: self.catalogs.clone(),
                    relations: self.inner.clone(),
                }),
                None => return Ok(None),
            },
            "pg_attrdef" => match self.inner.table(&name).await? {
                Some(t) => Arc::new(AttributeDefaults {
                    inner: t,
                    attributes: AttributeTypes {
                        inner: Arc::new(MemTable::try_new(
                            Arc::new(Schema::empty()),
                            vec![vec![]],
                        )?),
                        catalogs: self.catalogs.clone(),
                        relations: self.inner.clone(),
                    },
                }),
                None => return Ok(None),
            },
            "pg_language" => Arc::new(LiveTable::new(
                self.statics.pg_language.schema(),
                self.statics.pg_language.data(),
                Extra::WasmLanguage,
            )?),
            _ => match self.inner.table(&name).await? {
                Some(t) => t,
                None => return Ok(None),
            },
        };
        // Columns psql reads that the crate leaves out: `pg_class.reloptions` (`\d+`).
        // pg_index's `int2vector` / `oidvector` columns are arrays (SQLAlchemy unnests
        // them); the static export stores them as text ("1 2").
        let columns = match name.as_str() {
            "pg_class" => vec![
                Field::new("reloptions", text_list(), true),
                Field::new("relacl", text_list(), true),
            ],
            "pg_index" => vec![
                vector("indkey", "int2vector"),
                vector("indcollation", "oidvector"),
                vector("indclass", "oidvector"),
                vector("indoption", "int2vector"),
            ],
            // pgjdbc's key listing subscripts them (`con.confkey[pos.n]`).
            "pg_constraint" => [
                "conkey",
                "confkey",
                "conpfeqop",
                "conppeqop",
                "conffeqop",
                "conexclop",
            ]
            .into_iter()
            .map(|name| Field::new(name, int_vector(), true))
            .collect(),
            // pgcli's completion casts them (`proargtypes::regtype[]`).
            "pg_proc" => vec![
                vector("proargtypes", "oidvector"),
                Field::new("proallargtypes", int_vector(), true),
                Field::new("proargmodes", text_list(), true),
                Field::new("proargnames", text_list(), true),
            ],
            _ => Vec::new(),
        };
        Ok(Some(Arc::new(Adjusted::new(table, columns))))
    }

    fn table_exist(&self, name: &str) -> bool {
        LIVE_VIEWS.contains(&name.to_ascii_lowercase().as_str()) || self.inner.table_exist(name)
    }
}

/// `pg_attribute` with the type a column's values go out as (`json`, `jsonb`), where
/// the crate types each column by its Arrow type (`text`).
#[derive(Debug)]
struct AttributeTypes {
    inner: Arc<dyn TableProvider>,
    catalogs: Arc<dyn CatalogProviderList>,
    /// This schema's tables, for the relations' OIDs (`pg_class`, `pg_namespace`).
    relations: Arc<dyn SchemaProvider>,
}

impl AttributeTypes {
    /// The DEFAULTs and identity of stored columns, by table OID (attrelid) and column
    /// name.
    async fn extras(
        &self,
        state: &dyn DfSession,
    ) -> DfResult<HashMap<i32, HashMap<String, ColumnExtras>>> {
        let extras = column_extras(self.catalogs.as_ref()).await?;
        if extras.is_empty() {
            return Ok(HashMap::new());
        }
        let oids = relation_oids(self.relations.as_ref(), state).await?;
        let mut out: HashMap<i32, HashMap<String, ColumnExtras>> = HashMap::new();
        for ((schema, table, column), extra) in extras {
            if let Some(relid) = oids.get(&(schema, table)) {
                out.entry(*relid).or_default().insert(column, extra);
            }
        }
        Ok(out)
    }

    /// The type OIDs of the typed columns, by table OID (attrelid) and column name.
    async fn retyped(&self, state: &dyn DfSession) -> DfResult<HashMap<i32, HashMap<String, i32>>> {
        let typed = typed_columns(self.catalogs.as_ref()).await?;
        if typed.is_empty() {
            return Ok(HashMap::new());
        }
        let oids = relation_oids(self.relations.as_ref(), state).await?;
        let mut retyped: HashMap<i32, HashMap<String, i32>> = HashMap::new();
        for ((schema, table, column), type_oid) in typed {
            if let (Some(relid), Ok(type_oid)) =
                (oids.get(&(schema, table)), i32::try_from(type_oid))
            {
                retyped.entry(*relid).or_default().insert(column, type_oid);
            }
        }
        Ok(retyped)
    }
}

/// Schemas whose relations are the system's (their OIDs are not looked up here).
const SYSTEM_SCHEMAS: [&str; 3] = ["pg_catalog", "information_schema", "wasm"];

/// The pg_class OIDs of the user's relations by (schema, name), from `pg_catalog`'s
/// `pg_class` and `pg_namespace` as the catalog hands them out.
pub(crate) async fn relation_oids(
    pg_catalog: &dyn SchemaProvider,
    state: &dyn DfSession,
) -> DfResult<HashMap<(String, String), i32>> {
    /// Each row of `table`'s `columns`, as text.
    async fn rows<const N: usize>(
        pg_catalog: &dyn SchemaProvider,
        state: &dyn DfSession,
        table: &str,
        columns: [&str; N],
    ) -> DfResult<Vec<[String; N]>> {
        let Some(provider) = pg_catalog.table(table).await? else {
            return Ok(Vec::new());
        };
        let plan = provider.scan(state, None, &[], None).await?;
        let mut out = Vec::new();
        for batch in collect(plan, state.task_ctx()).await? {
            let mut texts = Vec::with_capacity(N);
            for name in columns {
                let column = batch.column_by_name(name).ok_or_else(|| {
                    DataFusionError::Internal(format!("{table} has no column {name}"))
                })?;
                texts.push(cast(column, &DataType::Utf8)?);
            }
            let texts: Vec<&StringArray> = texts.iter().map(|t| t.as_string::<i32>()).collect();
            for row in 0..batch.num_rows() {
                if texts.iter().all(|t| t.is_valid(row)) {
                    out.push(std::array::from_fn(|i| texts[i].value(row).to_string()));
                }
            }
        }
        Ok(out)
    }
    let namespaces: HashMap<String, String> =
        rows(pg_catalog, state, "pg_namespace", ["oid", "nspname"])
            .await?
            .into_iter()
            .map(|[oid, name]| (oid, name))
            .collect();
    let relations = rows(
        pg_catalog,
        state,
        "pg_class",
        ["oid", "relname", "relnamespace"],
    )
    .await?;
    Ok(relations
        .into_iter()
        .filter_map(|[oid, name, namespace]| {
            let schema = namespaces.get(&namespace)?;
            if SYSTEM_SCHEMAS.contains(&schema.as_str()) {
                return None;
            }
            Some(((schema.clone(), name), oid.parse().ok()?))
        })
        .collect())
}

#[async_trait]
impl TableProvider for AttributeTypes {
    fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }

    fn table_type(&self) -> TableType {
        self.inner.table_type()
    }

    async fn scan(
        &self,
        state: &dyn DfSession,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let retyped = self.retyped(state).await?;
        let extras = self.extras(state).await?;
        if retyped.is_empty() && extras.is_empty() {
            return self.inner.scan(state, projection, filters, limit).await;
        }
        let schema = self.inner.schema();
        let (relid_at, name_at, type_at, hasdef_at, identity_at) = (
            schema.index_of("attrelid")?,
            schema.index_of("attname")?,
            schema.index_of("atttypid")?,
            schema.index_of("atthasdef")?,
            schema.index_of("attidentity")?,
        );
        let plan = self.inner.scan(state, None, &[], None).await?;
        let mut batches = Vec::new();
        for batch in collect(plan, state.task_ctx()).await? {
            let relids = cast(batch.column(relid_at), &DataType::Int32)?;
            let names = cast(batch.column(name_at), &DataType::Utf8)?;
            let types = cast(batch.column(type_at), &DataType::Int32)?;
            let hasdef = cast(batch.column(hasdef_at), &DataType::Boolean)?;
            let identity = cast(batch.column(identity_at), &DataType::Utf8)?;
            let (relids, names, types, hasdef, identity) = (
                relids.as_primitive::<Int32Type>(),
                names.as_string::<i32>(),
                types.as_primitive::<Int32Type>(),
                hasdef.as_boolean(),
                identity.as_string::<i32>(),
            );
            let rows = 0..batch.num_rows();
            let extra = |row: usize| {
                extras
                    .get(&relids.value(row))
                    .and_then(|columns| columns.get(names.value(row)))
            };
            let types: Int32Array = rows
                .clone()
                .map(|row| {
                    let column = retyped
                        .get(&relids.value(row))
                        .and_then(|columns| columns.get(names.value(row)));
                    match column {
                        Some(oid) => Some(*oid),
                        None => types.is_valid(row).then(|| types.value(row)),
                    }
                })
                .collect();
            let hasdef: BooleanArray = rows
                .clone()
                .map(|row| match extra(row) {
                    Some(e) => Some(e.default.is_some()),
                    None => hasdef.is_valid(row).then(|| hasdef.value(row)),
                })
                .collect();
            let identity: StringArray = rows
                .map(|row| match extra(row) {
                    Some(e) => Some(e.identity),
                    None => identity.is_valid(row).then(|| identity.value(row)),
                })
                .collect();
            let mut columns = batch.columns().to_vec();
            columns[type_at] = cast(&types, schema.field(type_at).data_type())?;
            columns[hasdef_at] = cast(&hasdef, schema.field(hasdef_at).data_type())?;
            columns[identity_at] = cast(&identity, schema.field(identity_at).data_type())?;
            batches.push(RecordBatch::try_new(schema.clone(), columns)?);
        }
        MemTable::try_new(schema, vec![batches])?
            .scan(state, projection, filters, limit)
            .await
    }
}

/// `pg_attrdef`: one row per column DEFAULT of a stored table (`adbin` holds its SQL
/// text, which `pg_get_expr` returns as it is).
#[derive(Debug)]
struct AttributeDefaults {
    inner: Arc<dyn TableProvider>,
    attributes: AttributeTypes,
}

impl AttributeDefaults {
    /// The catalog's columns, every one nullable (the rows fill only some of them).
    fn nullable_schema(&self) -> SchemaRef {
        let schema = self.inner.schema();
        Arc::new(Schema::new(
            schema
                .fields()
                .iter()
                .map(|f| f.as_ref().clone().with_nullable(true))
                .collect::<Vec<_>>(),
        ))
    }
}

#[async_trait]
impl TableProvider for AttributeDefaults {
    fn schema(&self) -> SchemaRef {
        self.nullable_schema()
    }

    fn table_type(&self) -> TableType {
        self.inner.table_type()
    }

    async fn scan(
        &self,
        state: &dyn DfSession,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let schema = self.nullable_schema();
        let mut rows: Vec<(i32, i16, String)> = Vec::new();
        for (relid, columns) in self.attributes.extras(state).await? {
            for extra in columns.into_values() {
                if let Some(default) = extra.default {
                    rows.push((relid, extra.attnum, default));
                }
            }
        }
        rows.sort();
        let columns = schema
            .fields()
            .iter()
            .map(|field| {
                let column: ArrayRef = match field.name().as_str() {
                    // Above the OIDs tables get, per default.
                    "oid" => {
                        Arc::new(Int64Array::from_iter_values(rows.iter().map(
                            |(relid, attnum, _)| i64::from(*relid) * 2000 + i64::from(*attnum),
                        )))
                    }
                    "adrelid" => Arc::new(Int32Array::from_iter_values(rows.iter().map(|r| r.0))),
                    "adnum" => Arc::new(Int32Array::from_iter_values(
                        rows.iter().map(|r| i32::from(r.1)),
                    )),
                    "adbin" => Arc::new(StringArray::from_iter_values(rows.iter().map(|r| &r.2))),
                    _ => new_null_array(field.data_type(), rows.len()),
                };
                Ok(cast(&column, field.data_type())?)
            })
            .collect::<DfResult<Vec<_>>>()?;
        let batch = RecordBatch::try_new(schema.clone(), columns)?;
        MemTable::try_new(schema, vec![vec![batch]])?
            .scan(state, projection, filters, limit)
            .await
    }
}

/// What a live table adds to its static rows.
#[derive(Debug)]
enum Extra {
    /// One `pg_proc` row per Wasm function.
    Functions {
        db: DbHandle,
        namespaces: Arc<dyn SchemaProvider>,
    },
    /// The `wasm` row of `pg_language`.
    WasmLanguage,
}

/// A static catalog table plus rows computed at each scan.
#[derive(Debug)]
struct LiveTable {
    schema: SchemaRef,
    statics: Vec<RecordBatch>,
    extra: Extra,
}

impl LiveTable {
    /// `schema` and `statics` with every column nullable, so rows that fill only some
    /// columns fit.
    fn new(schema: SchemaRef, statics: &[RecordBatch], extra: Extra) -> DfResult<LiveTable> {
        let schema = Arc::new(Schema::new(
            schema
                .fields()
                .iter()
                .map(|f| f.as_ref().clone().with_nullable(true))
                .collect::<Vec<Field>>(),
        ));
        let statics = statics
            .iter()
            .map(|b| RecordBatch::try_new(schema.clone(), b.columns().to_vec()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(LiveTable {
            schema,
            statics,
            extra,
        })
    }
}

#[async_trait]
impl TableProvider for LiveTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn scan(
        &self,
        state: &dyn DfSession,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let mut batches = self.statics.clone();
        let columns = match &self.extra {
            Extra::Functions { db, namespaces } => {
                let namespace = namespace_oid(namespaces.as_ref(), state, DEFAULT_SCHEMA).await?;
                function_rows(&*database(db)?, namespace)
            }
            Extra::WasmLanguage => language_row(),
        };
        batches.push(fill(&self.schema, columns)?);
        MemTable::try_new(self.schema.clone(), vec![batches])?
            .scan(state, projection, filters, limit)
            .await
    }
}

/// PostgreSQL's `aclitem[]`, as psql passes it to `array_to_string`.
fn text_list() -> DataType {
    DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true)))
}

/// A column of PostgreSQL's `int2vector` or `oidvector` (`pg_type`): an array of int4
/// that goes out as that type (text `20 20`, which pgjdbc splits on spaces).
fn vector(name: &str, pg_type: &str) -> Field {
    Field::new(name, int_vector(), true)
        .with_metadata([(PG_TYPE_KEY.to_string(), pg_type.to_string())].into())
}

/// PostgreSQL's `int2vector` / `oidvector`, as an array of int4.
fn int_vector() -> DataType {
    DataType::List(Arc::new(Field::new_list_field(DataType::Int32, true)))
}

/// The elements of an array the static export stores as text: `"1 2"` (a vector) or
/// `"[1, 2]"` / `"['i', 'o']"` (a list), unquoted.
fn stored_elements(text: &str) -> impl Iterator<Item = &str> {
    let text = text.trim();
    let text = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    text.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|e| !e.is_empty())
        .map(|e| e.trim_matches('\''))
}

/// An array column the static export stores as text as the array it is (`int4[]`
/// or `text[]`, as `ty` says); an int element that is not a number is NULL.
fn array_from_stored_text(column: &dyn Array, ty: &DataType) -> DfResult<ArrayRef> {
    use datafusion::arrow::array::{Int32Builder, ListBuilder, StringBuilder};
    let text = cast(column, &DataType::Utf8)?;
    let text = text.as_string::<i32>();
    if ty == &int_vector() {
        let mut lists = ListBuilder::new(Int32Builder::new())
            .with_field(Arc::new(Field::new_list_field(DataType::Int32, true)));
        for value in text {
            match value {
                Some(v) => {
                    for element in stored_elements(v) {
                        lists.values().append_option(element.parse::<i32>().ok());
                    }
                    lists.append(true);
                }
                None => lists.append(false),
            }
        }
        return Ok(Arc::new(lists.finish()));
    }
    let mut lists = ListBuilder::new(StringBuilder::new())
        .with_field(Arc::new(Field::new_list_field(DataType::Utf8, true)));
    for value in text {
        match value {
            Some(v) => {
                for element in stored_elements(v) {
                    lists.values().append_value(element);
                }
                lists.append(true);
            }
            None => lists.append(false),
        }
    }
    Ok(Arc::new(lists.finish()))
}

/// Whether `field` is an access-privilege column the static export stores as text.
fn is_text_acl(field: &Field) -> bool {
    field.name().ends_with("acl") && field.data_type() == &DataType::Utf8
}

/// A catalog table as psql reads it: access-privilege columns (`relacl`, `nspacl`,
/// `proacl`, ...) as text lists, which are NULL here (there are no grants), columns
/// the crate leaves out added as NULL, and vector columns it stores as text as arrays.
#[derive(Debug)]
struct Adjusted {
    inner: Arc<dyn TableProvider>,
    schema: SchemaRef,
}

impl Adjusted {
    fn new(inner: Arc<dyn TableProvider>, columns: Vec<Field>) -> Self {
        let inner_schema = inner.schema();
        let mut fields: Vec<Field> = inner_schema
            .fields()
            .iter()
            .map(|f| {
                if let Some(retyped) = columns.iter().find(|m| m.name() == f.name()) {
                    retyped.clone()
                } else if is_text_acl(f) {
                    f.as_ref()
                        .clone()
                        .with_data_type(text_list())
                        .with_nullable(true)
                } else {
                    f.as_ref().clone()
                }
            })
            .collect();
        fields.extend(
            columns
                .into_iter()
                .filter(|f| inner_schema.field_with_name(f.name()).is_err()),
        );
        Adjusted {
            inner,
            schema: Arc::new(Schema::new(fields)),
        }
    }
}

#[async_trait]
impl TableProvider for Adjusted {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        self.inner.table_type()
    }

    async fn scan(
        &self,
        state: &dyn DfSession,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let plan = self.inner.scan(state, None, &[], None).await?;
        let mut batches = Vec::new();
        for batch in collect(plan, state.task_ctx()).await? {
            let rows = batch.num_rows();
            let columns = self
                .schema
                .fields()
                .iter()
                .enumerate()
                .map(|(i, f)| match batch.columns().get(i) {
                    Some(c) if c.data_type() == f.data_type() => Ok(c.clone()),
                    // Access privileges stay NULL (see above); other arrays are parsed.
                    Some(c)
                        if c.data_type() == &DataType::Utf8
                            && !f.name().ends_with("acl")
                            && (f.data_type() == &int_vector()
                                || f.data_type() == &text_list()) =>
                    {
                        array_from_stored_text(c.as_ref(), f.data_type())
                    }
                    _ => Ok(new_null_array(f.data_type(), rows)),
                })
                .collect::<DfResult<_>>()?;
            batches.push(RecordBatch::try_new(self.schema.clone(), columns)?);
        }
        MemTable::try_new(self.schema.clone(), vec![batches])?
            .scan(state, projection, filters, limit)
            .await
    }
}

/// A batch of `schema` from named columns (cast to the column's type); others are null.
fn fill(schema: &SchemaRef, columns: BTreeMap<&'static str, ArrayRef>) -> DfResult<RecordBatch> {
    let rows = columns.values().next().map_or(0, |c| c.len());
    let arrays = schema
        .fields()
        .iter()
        .map(|f| match columns.get(f.name().as_str()) {
            Some(c) => cast(c, f.data_type()).map_err(DataFusionError::from),
            None => Ok(new_null_array(f.data_type(), rows)),
        })
        .collect::<DfResult<Vec<_>>>()?;
    Ok(RecordBatch::try_new(schema.clone(), arrays)?)
}

/// The OID `pg_namespace` gives schema `name`.
async fn namespace_oid(
    namespaces: &dyn SchemaProvider,
    state: &dyn DfSession,
    name: &str,
) -> DfResult<i32> {
    let table = namespaces
        .table("pg_namespace")
        .await?
        .ok_or_else(|| DataFusionError::Internal("pg_namespace is missing".into()))?;
    let plan = table.scan(state, None, &[], None).await?;
    for batch in collect(plan, state.task_ctx()).await? {
        let (Some(oids), Some(names)) =
            (batch.column_by_name("oid"), batch.column_by_name("nspname"))
        else {
            continue;
        };
        let oids = cast(oids, &DataType::Int64)?;
        let names = cast(names, &DataType::Utf8)?;
        let (oids, names) = (oids.as_primitive::<Int64Type>(), names.as_string::<i32>());
        for i in 0..batch.num_rows() {
            if names.value(i) == name {
                return i32::try_from(oids.value(i))
                    .map_err(|_| DataFusionError::Internal("namespace OID out of range".into()));
            }
        }
    }
    Err(DataFusionError::Internal(format!(
        "schema {name} is not in pg_namespace"
    )))
}

/// Every Wasm function overload with its OID: `WASM_FUNCTION_OID_BASE` plus its creation
/// sequence number (stable across restarts), the next free one if two records share it.
fn function_oids(db: &dyn DatabaseView) -> Vec<(i32, FunctionRecord)> {
    let records = records_in_order(db);
    let mut next = WASM_FUNCTION_OID_BASE;
    records
        .into_iter()
        .map(|r| {
            let wanted = i32::try_from(r.seq)
                .ok()
                .and_then(|s| WASM_FUNCTION_OID_BASE.checked_add(s))
                .unwrap_or(next);
            let oid = wanted.max(next);
            next = oid.saturating_add(1);
            (oid, r)
        })
        .collect()
}

fn function_rows(db: &dyn DatabaseView, namespace: i32) -> BTreeMap<&'static str, ArrayRef> {
    let rows = function_oids(db);
    let n = rows.len();
    let text = |f: &dyn Fn(&FunctionRecord) -> String| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|(_, r)| f(r)),
        ))
    };
    let int = |v: i32| -> ArrayRef { Arc::new(Int32Array::from(vec![v; n])) };
    let flag = |v: bool| -> ArrayRef { Arc::new(BooleanArray::from(vec![v; n])) };
    let mut columns: BTreeMap<&'static str, ArrayRef> = BTreeMap::new();
    columns.insert(
        "oid",
        Arc::new(Int32Array::from_iter_values(rows.iter().map(|(o, _)| *o))),
    );
    columns.insert("proname", text(&|r| r.name.clone()));
    columns.insert("pronamespace", int(namespace));
    columns.insert("proowner", int(OWNER_OID));
    columns.insert("prolang", int(WASM_LANGUAGE_OID));
    columns.insert("procost", Arc::new(Int32Array::from(vec![1; n])));
    columns.insert("prorows", Arc::new(Int32Array::from(vec![0; n])));
    columns.insert("provariadic", int(0));
    columns.insert("prosupport", text(&|_| "-".into()));
    columns.insert(
        "prokind",
        text(&|r| match r.kind {
            FunctionKind::Aggregate => "a".into(),
            FunctionKind::Scalar => "f".into(),
        }),
    );
    columns.insert("prosecdef", flag(false));
    columns.insert("proleakproof", flag(false));
    columns.insert("proisstrict", {
        Arc::new(BooleanArray::from_iter(
            rows.iter().map(|(_, r)| Some(r.strict)),
        ))
    });
    columns.insert("proretset", flag(false));
    columns.insert(
        "provolatile",
        text(&|r| {
            match r.volatility {
                Volatility::Immutable => "i",
                Volatility::Stable => "s",
                Volatility::Volatile => "v",
            }
            .into()
        }),
    );
    columns.insert("proparallel", text(&|_| "s".into()));
    columns.insert(
        "pronargs",
        Arc::new(Int32Array::from_iter_values(
            rows.iter().map(|(_, r)| r.arg_types.len() as i32),
        )),
    );
    columns.insert("pronargdefaults", int(0));
    columns.insert(
        "prorettype",
        Arc::new(Int32Array::from_iter(
            rows.iter()
                .map(|(_, r)| type_oid(&r.returns).map(|o| o as i32)),
        )),
    );
    // An oidvector, in the static export's text form ("20 20").
    columns.insert(
        "proargtypes",
        text(&|r| {
            r.arg_types
                .iter()
                .map(|t| type_oid(t).unwrap_or(0).to_string())
                .collect::<Vec<_>>()
                .join(" ")
        }),
    );
    columns.insert("prosrc", text(&|r| r.export.clone()));
    columns.insert("probin", text(&|r| r.module.clone()));
    columns
}

fn language_row() -> BTreeMap<&'static str, ArrayRef> {
    let mut columns: BTreeMap<&'static str, ArrayRef> = BTreeMap::new();
    columns.insert("oid", Arc::new(Int32Array::from(vec![WASM_LANGUAGE_OID])));
    columns.insert("lanname", Arc::new(StringArray::from(vec!["wasm"])));
    columns.insert("lanowner", Arc::new(Int32Array::from(vec![OWNER_OID])));
    columns.insert("lanispl", Arc::new(BooleanArray::from(vec![true])));
    columns.insert("lanpltrusted", Arc::new(BooleanArray::from(vec![false])));
    columns
}

/// The OIDs of a function's argument as 64-bit integers (clients pass `oid`, int4 or
/// int8).
fn oids_of(arg: &ColumnarValue, rows: usize) -> DfResult<Int64Array> {
    let array = arg.to_array(rows)?;
    Ok(cast(&array, &DataType::Int64)?
        .as_primitive::<Int64Type>()
        .clone())
}

/// The OID of the Wasm function `text` names: `name` or `schema.name` (the only
/// overload), or with `procedure`, `name(type, ...)` (that overload).
fn function_named(
    functions: &[(i32, FunctionRecord)],
    text: &str,
    procedure: bool,
) -> DfResult<i32> {
    let text = text.trim();
    let (name, arguments) = match text.split_once('(') {
        Some((name, rest)) if procedure => {
            let rest = rest.trim_end();
            (name.trim(), Some(rest.strip_suffix(')').unwrap_or(rest)))
        }
        _ => (text, None),
    };
    let unquote = |s: &str| {
        let s = s.trim();
        match s.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
            Some(quoted) => quoted.replace("\"\"", "\""),
            None => s.to_lowercase(),
        }
    };
    let (schema, name) = match name.rsplit_once('.') {
        Some((schema, name)) => (Some(unquote(schema)), unquote(name)),
        None => (None, unquote(name)),
    };
    // Argument types compared by OID, so `int8`, `bigint` and `BIGINT` are one.
    let type_key = |t: &str| {
        let t = t.trim().to_lowercase();
        type_oid(&t).map_or(t, |oid| oid.to_string())
    };
    // Split at the commas outside parentheses (`numeric(10,2), bigint`).
    let split = |a: &str| {
        let (mut parts, mut depth, mut start) = (Vec::new(), 0i32, 0);
        for (i, c) in a.char_indices() {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                ',' if depth == 0 => {
                    parts.push(a[start..i].to_string());
                    start = i + 1;
                }
                _ => {}
            }
        }
        parts.push(a[start..].to_string());
        parts
    };
    let wanted: Option<Vec<String>> = arguments.map(|a| {
        split(a)
            .iter()
            .map(|t| t.trim())
            .filter(|t| !t.is_empty())
            .map(type_key)
            .collect()
    });
    let matches: Vec<i32> = functions
        .iter()
        .filter(|(_, r)| {
            r.name == name
                && schema.as_ref().is_none_or(|s| *s == r.schema)
                && wanted.as_ref().is_none_or(|w| {
                    *w == r.arg_types.iter().map(|t| type_key(t)).collect::<Vec<_>>()
                })
        })
        .map(|(oid, _)| *oid)
        .collect();
    let shown = crate::error::guest_text(text);
    match matches.as_slice() {
        [oid] => Ok(*oid),
        [] => Err(Error::UndefinedFunction(format!("function \"{shown}\" does not exist")).into()),
        _ => Err(
            Error::AmbiguousFunction(format!("more than one function named \"{shown}\"")).into(),
        ),
    }
}

/// The statement that defines `r` again, laid out as PostgreSQL's
/// `pg_get_functiondef` lays out a function (psql's `\sf`).
fn function_definition(r: &FunctionRecord) -> String {
    let quote = |name: &str| {
        let plain = name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            && !name.starts_with(|c: char| c.is_ascii_digit());
        if plain {
            name.to_string()
        } else {
            format!("\"{}\"", name.replace('"', "\"\""))
        }
    };
    let mut out = format!(
        "CREATE OR REPLACE FUNCTION {}.{}({})\n RETURNS {}\n LANGUAGE wasm\n",
        quote(&r.schema),
        quote(&r.name),
        r.arg_types.join(", "),
        r.returns
    );
    let volatility = match r.volatility {
        Volatility::Immutable => Some("IMMUTABLE"),
        Volatility::Stable => Some("STABLE"),
        Volatility::Volatile => None,
    };
    let options: Vec<&str> = volatility
        .into_iter()
        .chain(r.strict.then_some("STRICT"))
        .collect();
    if !options.is_empty() {
        out.push_str(&format!(" {}\n", options.join(" ")));
    }
    use crate::wasm::limits::{format_bytes, format_duration};
    let limits = &r.limits;
    let settings = [
        ("wasm.fuel", limits.fuel.map(|f| f.to_string())),
        ("wasm.memory", limits.memory.map(format_bytes)),
        (
            "wasm.timeout",
            limits
                .timeout_ms
                .map(|ms| format_duration(std::time::Duration::from_millis(ms))),
        ),
        ("wasm.stack", limits.stack.map(format_bytes)),
    ];
    for (setting, value) in settings {
        if let Some(value) = value {
            out.push_str(&format!(" SET {setting} TO '{value}'\n"));
        }
    }
    out.push_str(&format!(
        "AS 'sha256:{}', '{}'\n",
        r.module,
        r.export.replace('\'', "''")
    ));
    out
}

/// What a catalog function answers.
#[derive(Debug, PartialEq, Eq, Hash, Clone)]
enum Answer {
    /// `pg_get_userbyid(oid)`: every object here is owned by the administrator role.
    Owner(String),
    /// `pg_get_function_result(oid)`: a Wasm function's result type, NULL for any other
    /// OID (as PostgreSQL answers an unknown one).
    FunctionResult,
    /// `pg_get_function_arguments(oid)`: a Wasm function's argument types.
    FunctionArguments,
    /// `pg_size_pretty(bigint)`: PostgreSQL's rendering of a byte count.
    SizePretty,
    /// `pg_database_size(name)`: the bytes under the data directory (one database).
    DatabaseSize,
    /// Every function and type is visible (there is one schema of them).
    True,
    /// No comments or SQL bodies are stored.
    NullText,
    /// A size not tracked per relation (`pg_table_size`): unknown.
    NullBigint,
    /// `to_regtype(text)`: the OID of a built-in type by any of its names, NULL for a
    /// name no type has (there are no user-defined types).
    ToRegtype,
    /// `'name'::regproc::oid` (psql's `\sf name`): the OID of the one Wasm function of
    /// that name; 42725 if it is overloaded, 42883 if there is none.
    RegprocOid,
    /// `'name(type, ...)'::regprocedure::oid` (psql's `\sf name(type, ...)`): the OID
    /// of that overload; 42883 if there is none.
    RegprocedureOid,
    /// `pg_get_functiondef(oid)`: the CREATE statement that defines a Wasm function
    /// again, NULL for any other OID.
    FunctionDef,
    /// `pg_get_expr(expr, relation [, pretty])`: the expression's SQL text, which is
    /// what the catalog stores (`pg_attrdef.adbin`).
    Expression,
}

/// PostgreSQL's built-in types by their names and aliases (what `to_regtype` and
/// `::regtype` accept), with their OIDs.
const TYPE_OIDS: &[(&[&str], i64)] = &[
    (&["bool", "boolean"], 16),
    (&["bytea"], 17),
    (&["char", "\"char\""], 18),
    (&["name"], 19),
    (&["int8", "bigint"], 20),
    (&["int2", "smallint"], 21),
    (&["int4", "integer", "int"], 23),
    (&["regproc"], 24),
    (&["text"], 25),
    (&["oid"], 26),
    (&["json"], 114),
    (&["xml"], 142),
    (&["float4", "real"], 700),
    (&["float8", "double precision"], 701),
    (&["unknown"], 705),
    (&["bpchar", "character"], 1042),
    (&["varchar", "character varying"], 1043),
    (&["date"], 1082),
    (&["time", "time without time zone"], 1083),
    (&["timestamp", "timestamp without time zone"], 1114),
    (&["timestamptz", "timestamp with time zone"], 1184),
    (&["interval"], 1186),
    (&["timetz", "time with time zone"], 1266),
    (&["numeric", "decimal"], 1700),
    (&["regclass"], 2205),
    (&["regtype"], 2206),
    (&["record"], 2249),
    (&["void"], 2278),
    (&["uuid"], 2950),
    (&["jsonb"], 3802),
    (&["_bool", "bool[]", "boolean[]"], 1000),
    (&["_bytea", "bytea[]"], 1001),
    (&["_int2", "int2[]", "smallint[]"], 1005),
    (&["_int4", "int4[]", "integer[]", "int[]"], 1007),
    (&["_text", "text[]"], 1009),
    (&["_varchar", "varchar[]", "character varying[]"], 1015),
    (&["_int8", "int8[]", "bigint[]"], 1016),
    (&["_float4", "float4[]", "real[]"], 1021),
    (&["_float8", "float8[]", "double precision[]"], 1022),
    (&["_timestamp", "timestamp[]"], 1115),
    (&["_date", "date[]"], 1182),
    (&["_timestamptz", "timestamptz[]"], 1185),
    (&["_numeric", "numeric[]"], 1231),
    (&["_uuid", "uuid[]"], 2951),
    (&["_jsonb", "jsonb[]"], 3807),
];

/// The OID of the built-in type `name` (`integer`, `pg_catalog.int4`, `text[]`).
fn type_oid(name: &str) -> Option<i64> {
    let name = name.trim().to_lowercase();
    let name = name.strip_prefix("pg_catalog.").unwrap_or(&name);
    let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
    // A type modifier does not change the type: `numeric(10,2)`, `varchar(20)`.
    let name = match name.split_once('(') {
        Some((base, rest)) => format!(
            "{}{}",
            base.trim_end(),
            rest.split_once(')').map_or("", |(_, tail)| tail)
        ),
        None => name,
    };
    TYPE_OIDS
        .iter()
        .find(|(names, _)| names.contains(&name.as_str()))
        .map(|(_, oid)| *oid)
}

/// A `pg_catalog` function the crate does not provide (or provides wrongly for here).
#[derive(Debug)]
struct CatalogFunction {
    name: &'static str,
    answer: Answer,
    signature: Signature,
    db: DbHandle,
}

impl PartialEq for CatalogFunction {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.answer == other.answer
    }
}
impl Eq for CatalogFunction {}
impl std::hash::Hash for CatalogFunction {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state);
        self.answer.hash(state);
    }
}

impl ScalarUDFImpl for CatalogFunction {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(match self.answer {
            Answer::True => DataType::Boolean,
            Answer::DatabaseSize | Answer::NullBigint | Answer::ToRegtype => DataType::Int64,
            Answer::RegprocOid | Answer::RegprocedureOid => DataType::Int32,
            _ => DataType::Utf8,
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let rows = args.number_rows;
        let array: ArrayRef = match &self.answer {
            Answer::True => return Ok(ColumnarValue::Scalar(ScalarValue::Boolean(Some(true)))),
            Answer::NullText => return Ok(ColumnarValue::Scalar(ScalarValue::Utf8(None))),
            Answer::NullBigint => return Ok(ColumnarValue::Scalar(ScalarValue::Int64(None))),
            Answer::Expression => cast(&args.args[0].to_array(rows)?, &DataType::Utf8)?,
            Answer::Owner(owner) => {
                let oids = oids_of(&args.args[0], rows)?;
                Arc::new(StringArray::from_iter(
                    oids.iter().map(|o| o.map(|_| owner.as_str())),
                ))
            }
            Answer::ToRegtype => {
                let names = cast(&args.args[0].to_array(rows)?, &DataType::Utf8)?;
                let names = names.as_string::<i32>();
                Arc::new(Int64Array::from_iter((0..names.len()).map(|i| {
                    names
                        .is_valid(i)
                        .then(|| type_oid(names.value(i)))
                        .flatten()
                })))
            }
            Answer::SizePretty => {
                let sizes = oids_of(&args.args[0], rows)?;
                Arc::new(StringArray::from_iter(
                    sizes.iter().map(|s| s.map(size_pretty)),
                ))
            }
            Answer::RegprocOid | Answer::RegprocedureOid => {
                let names = cast(&args.args[0].to_array(rows)?, &DataType::Utf8)?;
                let names = names.as_string::<i32>();
                let functions = function_oids(&*database(&self.db)?);
                let procedure = self.answer == Answer::RegprocedureOid;
                let oids = (0..names.len())
                    .map(|i| {
                        names
                            .is_valid(i)
                            .then(|| function_named(&functions, names.value(i), procedure))
                            .transpose()
                    })
                    .collect::<DfResult<Vec<Option<i32>>>>()?;
                Arc::new(Int32Array::from(oids))
            }
            Answer::FunctionResult | Answer::FunctionArguments | Answer::FunctionDef => {
                let oids = oids_of(&args.args[0], rows)?;
                let known: BTreeMap<i64, FunctionRecord> = function_oids(&*database(&self.db)?)
                    .into_iter()
                    .map(|(o, r)| (i64::from(o), r))
                    .collect();
                Arc::new(StringArray::from_iter(oids.iter().map(|oid| {
                    let r = known.get(&oid?)?;
                    Some(match self.answer {
                        Answer::FunctionResult => r.returns.clone(),
                        Answer::FunctionDef => function_definition(r),
                        _ => r.arg_types.join(", "),
                    })
                })))
            }
            Answer::DatabaseSize => {
                let names = cast(&args.args[0].to_array(rows)?, &DataType::Utf8)?;
                let db = database(&self.db)?;
                // Measured once per batch, and only if asked for this database.
                let mut total = None;
                Arc::new(Int64Array::from_iter(names.as_string::<i32>().iter().map(
                    |name| {
                        (name? == CATALOG_NAME).then(|| {
                            *total.get_or_insert_with(|| {
                                i64::try_from(directory_bytes(db.data_dir())).unwrap_or(i64::MAX)
                            })
                        })
                    },
                )))
            }
        };
        Ok(ColumnarValue::Array(array))
    }
}

/// PostgreSQL's `pg_size_pretty`: `8192 bytes`, `16 kB`, `3 MB`, ... (below 10 units
/// stays in the smaller unit, halves round away from zero).
pub(crate) fn size_pretty(size: i64) -> String {
    const LIMIT: i64 = 10 * 1024;
    const LIMIT2: i64 = LIMIT * 2 - 1;
    let half_rounded = |x: i64| (x + if x < 0 { -1 } else { 1 }) / 2;
    if size.unsigned_abs() < LIMIT as u64 {
        return format!("{size} bytes");
    }
    // One extra bit for rounding.
    let mut size = size >> 9;
    for unit in ["kB", "MB", "GB", "TB"] {
        if size.unsigned_abs() < LIMIT2 as u64 {
            return format!("{} {unit}", half_rounded(size));
        }
        size >>= 10;
    }
    format!("{} PB", half_rounded(size))
}

fn directory_bytes(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => directory_bytes(&e.path()),
            Ok(_) => e.metadata().map_or(0, |m| m.len()),
            Err(_) => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    fn reads(sql: &str) -> bool {
        let statements = Parser::parse_sql(&PostgreSqlDialect {}, sql).expect("parses");
        reads_catalog(&statements[0])
    }

    #[test]
    fn sizes_print_as_postgresql_prints_them() {
        assert_eq!(size_pretty(0), "0 bytes");
        assert_eq!(size_pretty(10239), "10239 bytes");
        assert_eq!(size_pretty(10240), "10 kB");
        assert_eq!(size_pretty(1_000_000), "977 kB");
        assert_eq!(size_pretty(123_456_789), "118 MB");
        assert_eq!(size_pretty(-123_456_789), "-118 MB");
        assert_eq!(size_pretty(50 << 40), "50 TB");
        assert_eq!(size_pretty(50 << 50), "50 PB");
        assert_eq!(size_pretty(i64::MIN), "-8192 PB");
    }

    #[test]
    fn only_catalog_queries_are_rewritten() {
        assert!(reads("SELECT * FROM pg_catalog.pg_class"));
        assert!(reads("SELECT relname FROM pg_class"));
        assert!(reads("SELECT pg_catalog.version()"));
        assert!(reads(
            "SELECT 1 WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_namespace)"
        ));
        assert!(!reads("SELECT * FROM t WHERE a = 1"));
        assert!(!reads("SELECT gcd(a, b) FROM public.pg_things"));
    }
}
