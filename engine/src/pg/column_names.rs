//! Result column names as PostgreSQL gives them, so psql headers and drivers' column
//! lookups match what PostgreSQL users expect: `SELECT gcd(a, b)` is column `gcd`, not
//! DataFusion's `gcd(t.a,t.b)`; `SELECT 1 + 1` is `?column?`; `CAST(x AS int)` is `x`
//! and `CAST('1' AS int)` is `int4`; an alias is kept as written.
//!
//! The names are computed from the statement's SQL and applied to its result schema
//! after planning (DataFusion itself needs unique names; PostgreSQL allows repeats).

use std::sync::Arc;

use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{
    DataType, Expr, Ident, Query, SelectItem, SetExpr, Statement as SqlStatement, Value,
};

/// The PostgreSQL names of a query's result columns, when they can be told from its
/// text: every item of the (first) SELECT list, without a wildcard.
pub(crate) fn pg_column_names(statement: &DfStatement) -> Option<Vec<String>> {
    let DfStatement::Statement(s) = statement else {
        return None;
    };
    let SqlStatement::Query(query) = s.as_ref() else {
        return None;
    };
    select_names(query)
}

fn select_names(query: &Query) -> Option<Vec<String>> {
    let mut body = query.body.as_ref();
    loop {
        match body {
            // A set operation takes its names from its first SELECT.
            SetExpr::SetOperation { left, .. } => body = left.as_ref(),
            SetExpr::Query(q) => return select_names(q),
            SetExpr::Select(select) => {
                return select
                    .projection
                    .iter()
                    .map(|item| match item {
                        SelectItem::UnnamedExpr(e) => Some(expr_name(e)),
                        SelectItem::ExprWithAlias { alias, .. } => Some(ident(alias)),
                        _ => None,
                    })
                    .collect()
            }
            _ => return None,
        }
    }
}

/// An identifier as PostgreSQL folds it: unquoted to lower case.
fn ident(i: &Ident) -> String {
    if i.quote_style.is_some() {
        i.value.clone()
    } else {
        i.value.to_lowercase()
    }
}

/// PostgreSQL's name for an unaliased expression (its `FigureColname`).
fn expr_name(expr: &Expr) -> String {
    const UNKNOWN: &str = "?column?";
    match expr {
        Expr::Identifier(i) => ident(i),
        Expr::CompoundIdentifier(parts) => parts.last().map_or(UNKNOWN.into(), ident),
        Expr::Function(f) => f
            .name
            .0
            .last()
            .and_then(|p| p.as_ident())
            .map_or(UNKNOWN.into(), ident),
        Expr::Cast {
            expr, data_type, ..
        } => match expr_name(expr) {
            name if name == UNKNOWN => type_name(data_type),
            name => name,
        },
        Expr::Nested(e) => expr_name(e),
        Expr::Case { .. } => "case".into(),
        Expr::Exists { .. } => "exists".into(),
        Expr::Array(_) => "array".into(),
        Expr::Extract { .. } => "extract".into(),
        Expr::Substring { .. } => "substring".into(),
        Expr::Trim { .. } => "btrim".into(),
        Expr::Position { .. } => "position".into(),
        Expr::Ceil { .. } => "ceil".into(),
        Expr::Floor { .. } => "floor".into(),
        Expr::Overlay { .. } => "overlay".into(),
        Expr::Value(v) if matches!(v.value, Value::Boolean(_)) => "bool".into(),
        _ => UNKNOWN.into(),
    }
}

/// The name PostgreSQL gives a cast of a literal: the type's internal name.
fn type_name(data_type: &DataType) -> String {
    let written = data_type.to_string().to_lowercase();
    let base = written.split('(').next().unwrap_or("").trim();
    match base {
        "int" | "integer" | "int4" => "int4",
        "bigint" | "int8" => "int8",
        "smallint" | "int2" => "int2",
        "real" | "float4" => "float4",
        "double" | "double precision" | "float8" | "float" => "float8",
        "boolean" | "bool" => "bool",
        "numeric" | "decimal" => "numeric",
        "varchar" | "character varying" => "varchar",
        "char" | "character" | "bpchar" => "bpchar",
        "timestamp with time zone" | "timestamptz" => "timestamptz",
        "timestamp" | "timestamp without time zone" => "timestamp",
        other => return other.to_string(),
    }
    .to_string()
}

/// Every SELECT list in `statement` with its repeated unaliased items (`SELECT 1, 1`,
/// `count(*), count(*)`, `a, a`) given distinct hidden aliases: PostgreSQL allows the
/// repeats, DataFusion needs unique names to plan. Run after [`pg_column_names`], whose
/// names the result keeps, so a client still sees PostgreSQL's (repeated) names.
pub(crate) fn repeated_items_aliased(statement: &mut DfStatement) {
    use datafusion::sql::sqlparser::ast::{VisitMut, VisitorMut};
    use std::ops::ControlFlow;
    fn selects(body: &mut SetExpr) {
        match body {
            SetExpr::SetOperation { left, right, .. } => {
                selects(left);
                selects(right);
            }
            SetExpr::Select(select) => {
                let mut seen: Vec<String> = Vec::new();
                // Over one relation, `id`, `p.id` and `t.id` are one column (one name
                // to DataFusion).
                let single = single_relation(select);
                for (position, item) in select.projection.iter_mut().enumerate() {
                    // DataFusion names an item after its text, an alias after itself;
                    // qualified columns of different tables (`x.a, y.a`) it tells apart.
                    let key = match &*item {
                        SelectItem::UnnamedExpr(Expr::CompoundIdentifier(parts))
                            if single.as_ref().is_some_and(|names| {
                                parts.len() >= 2 && names.contains(&ident(&parts[parts.len() - 2]))
                            }) =>
                        {
                            ident(&parts[parts.len() - 1])
                        }
                        SelectItem::UnnamedExpr(Expr::Identifier(i)) => ident(i),
                        SelectItem::UnnamedExpr(e) => e.to_string(),
                        SelectItem::ExprWithAlias { alias, .. } => {
                            seen.push(ident(alias));
                            continue;
                        }
                        _ => continue,
                    };
                    let repeated = seen.contains(&key);
                    seen.push(key);
                    if let (true, SelectItem::UnnamedExpr(expr)) = (repeated, &*item) {
                        *item = SelectItem::ExprWithAlias {
                            expr: expr.clone(),
                            alias: Ident::with_quote('"', format!("?column?{}", position + 1)),
                        };
                    }
                }
            }
            _ => {}
        }
    }
    struct Visitor;
    impl VisitorMut for Visitor {
        type Break = ();
        fn post_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
            selects(query.body.as_mut());
            ControlFlow::Continue(())
        }
    }
    match statement {
        // A table's or view's columns take the names: PostgreSQL refuses a repeat there
        // (42701), and so does the planner without the aliases.
        DfStatement::Statement(s)
            if !matches!(
                s.as_ref(),
                SqlStatement::CreateTable(_) | SqlStatement::CreateView { .. }
            ) =>
        {
            let _ = s.visit(&mut Visitor);
        }
        _ => {}
    }
}

/// The names a column of the SELECT's only relation can be qualified with (its alias,
/// or its name and its last part), `None` if it reads from more or less than one.
fn single_relation(select: &datafusion::sql::sqlparser::ast::Select) -> Option<Vec<String>> {
    use datafusion::sql::sqlparser::ast::TableFactor;
    let [from] = select.from.as_slice() else {
        return None;
    };
    if !from.joins.is_empty() {
        return None;
    }
    match &from.relation {
        TableFactor::Table {
            alias: Some(alias), ..
        }
        | TableFactor::Derived {
            alias: Some(alias), ..
        } => Some(vec![ident(&alias.name)]),
        TableFactor::Table {
            name, alias: None, ..
        } => {
            let parts: Vec<String> = name
                .0
                .iter()
                .filter_map(|p| p.as_ident().map(ident))
                .collect();
            Some(parts.last().cloned().into_iter().collect())
        }
        _ => None,
    }
}

/// `schema` with the PostgreSQL names, when there is one name per column.
pub(crate) fn renamed(schema: &SchemaRef, names: &[String]) -> Option<SchemaRef> {
    if names.len() != schema.fields().len()
        || schema
            .fields()
            .iter()
            .zip(names)
            .all(|(f, n)| f.name() == n)
    {
        return None;
    }
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .zip(names)
        .map(|(f, n)| f.as_ref().clone().with_name(n))
        .collect();
    Some(Arc::new(Schema::new_with_metadata(
        fields,
        schema.metadata().clone(),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::parser::DFParser;
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;

    fn names(sql: &str) -> Option<Vec<String>> {
        let mut statements =
            DFParser::parse_sql_with_dialect(sql, &PostgreSqlDialect {}).expect("parses");
        pg_column_names(&statements.pop_front().expect("one statement"))
    }

    fn list(names: &[&str]) -> Option<Vec<String>> {
        Some(names.iter().map(|n| n.to_string()).collect())
    }

    #[test]
    fn repeated_items_get_hidden_aliases_and_keep_their_names() {
        let mut statements = DFParser::parse_sql_with_dialect(
            "SELECT 1, 1, a, a, x.b, y.b, count(*) AS n, count(*) FROM t \
             UNION SELECT 2, 2, 3, 4, 5, 6, 7, 8",
            &PostgreSqlDialect {},
        )
        .expect("parses");
        let mut statement = statements.pop_front().expect("one statement");
        let before = pg_column_names(&statement);
        repeated_items_aliased(&mut statement);
        assert_eq!(
            statement.to_string(),
            "SELECT 1, 1 AS \"?column?2\", a, a AS \"?column?4\", x.b, y.b, count(*) AS n, \
             count(*) FROM t UNION SELECT 2, 2 AS \"?column?2\", 3, 4, 5, 6, 7, 8"
        );
        assert_eq!(
            before,
            list(&["?column?", "?column?", "a", "a", "b", "b", "n", "count"])
        );
    }

    #[test]
    fn one_column_named_twice_over_one_relation_is_a_repeat() {
        for (sql, aliased) in [
            (
                "SELECT id, p.id FROM t p",
                "SELECT id, p.id AS \"?column?2\" FROM t p",
            ),
            (
                "SELECT t.id, id FROM s.t",
                "SELECT t.id, id AS \"?column?2\" FROM s.t",
            ),
            // Two relations: DataFusion tells `a.id` and `b.id` apart itself.
            ("SELECT a.id, b.id FROM a, b", "SELECT a.id, b.id FROM a, b"),
        ] {
            let mut statements =
                DFParser::parse_sql_with_dialect(sql, &PostgreSqlDialect {}).expect("parses");
            let mut statement = statements.pop_front().expect("one statement");
            repeated_items_aliased(&mut statement);
            assert_eq!(statement.to_string(), aliased);
        }
    }

    #[test]
    fn names_follow_postgresql() {
        assert_eq!(
            names("SELECT gcd(a, b), t.x, \"Mixed\", y AS \"Y\", z AS w FROM t"),
            list(&["gcd", "x", "Mixed", "Y", "w"])
        );
        assert_eq!(
            names("SELECT 1 + 1, CAST(a AS text), CAST('1' AS INT), 'x'::bigint, count(*), true"),
            list(&["?column?", "a", "int4", "int8", "count", "bool"])
        );
        assert_eq!(
            names("SELECT CASE WHEN a THEN 1 END, EXISTS (SELECT 1), (b) FROM t"),
            list(&["case", "exists", "b"])
        );
        assert_eq!(
            names("SELECT pg_catalog.version() UNION ALL SELECT 'x' AS other"),
            list(&["version"])
        );
        // A wildcard's columns cannot be told from the text: DataFusion's names stay.
        assert_eq!(names("SELECT *, gcd(a, b) FROM t"), None);
        assert_eq!(names("VALUES (1)"), None);
        assert_eq!(names("CREATE TABLE t (a INT)"), None);
    }
}
