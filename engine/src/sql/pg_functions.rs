//! PostgreSQL built-in functions that DataFusion lacks and that clients' queries call:
//! `json_build_object` (SQLAlchemy's column reflection builds identity and collation
//! options with it), `regexp_split_to_array` (with `regexp_split_to_table`, which
//! the statement layer reads as `unnest(regexp_split_to_array(...))`; pgcli's
//! completion calls it) and `like_escape` (a computed LIKE pattern with an ESCAPE
//! other than the backslash, as SQLAlchemy's schema filter writes it); `pg_typeof`.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, GenericListBuilder, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature,
    Volatility,
};
use regex::Regex;

use crate::error::Error;
use crate::pg::text::pg_text;
use crate::sql::call::{text_at, CallArgs};

/// The functions of this module, for the template every session is cloned from.
pub(crate) fn functions() -> Vec<ScalarUDF> {
    vec![
        ScalarUDF::new_from_impl(JsonBuildObject::new()),
        ScalarUDF::new_from_impl(RegexpSplitToArray::new()),
        ScalarUDF::new_from_impl(LikeEscape::new()),
        ScalarUDF::new_from_impl(PgTypeof::new()),
    ]
}

/// `pg_typeof(x)` answered while planning, from `x`'s logical type (its field's
/// metadata included: `json`, `jsonb`), which is the type a client's RowDescription
/// announces; at execution a scan's physical field may not carry that metadata.
/// Runs after the integer-literal rule (so `pg_typeof(1)` sees `Int32`).
#[derive(Debug, Default)]
pub(crate) struct TypeofAtPlanning;

impl datafusion::optimizer::analyzer::AnalyzerRule for TypeofAtPlanning {
    fn analyze(
        &self,
        plan: datafusion::logical_expr::LogicalPlan,
        _: &datafusion::common::config::ConfigOptions,
    ) -> DfResult<datafusion::logical_expr::LogicalPlan> {
        use datafusion::common::tree_node::{Transformed, TreeNode};
        use datafusion::common::DFSchema;
        use datafusion::logical_expr::expr_rewriter::NamePreserver;
        use datafusion::logical_expr::{Expr, ExprSchemable};
        plan.transform_up_with_subqueries(|plan| {
            let mut schema = DFSchema::empty();
            for input in plan.inputs() {
                schema.merge(input.schema());
            }
            let names = NamePreserver::new(&plan);
            // What the output would send of an array size or a window rank.
            let ranks = crate::sql::unsigned_results::rank_columns(&plan);
            plan.map_expressions(|e| {
                let name = names.save(&e);
                e.transform_up(|e| match e {
                    Expr::ScalarFunction(f) if f.name() == "pg_typeof" && f.args.len() == 1 => {
                        let mut field = f.args[0].to_field(&schema)?.1.as_ref().clone();
                        if let Some(signed) =
                            crate::sql::unsigned_results::signed_type(&f.args[0], &ranks)
                        {
                            field = field.with_data_type(signed);
                        }
                        Ok(Transformed::yes(Expr::Literal(
                            datafusion::common::ScalarValue::Utf8(Some(type_name(&field))),
                            None,
                        )))
                    }
                    other => Ok(Transformed::no(other)),
                })
                .map(|t| t.update_data(|e| name.restore(e)))
            })
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "pg_typeof_at_planning"
    }
}

/// PostgreSQL's name of the type values of `field` go out as; `unknown` for an
/// untyped NULL.
fn type_name(field: &Field) -> String {
    if field.data_type() == &DataType::Null {
        return "unknown".into();
    }
    let oid = crate::pg::types::pg_type_oid(field);
    crate::pg::types::pg_type_name(oid).unwrap_or_else(|| "text".into())
}

/// `pg_typeof(any)`: the name of the PostgreSQL type its argument goes out as
/// (`integer`, `timestamp with time zone`, `text[]`), the same type a client's
/// RowDescription announces for it (see [`crate::pg::types`]).
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct PgTypeof {
    signature: Signature,
}

impl PgTypeof {
    fn new() -> Self {
        PgTypeof {
            signature: Signature::any(1, Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for PgTypeof {
    fn name(&self) -> &str {
        "pg_typeof"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let field = args
            .arg_fields
            .first()
            .ok_or_else(|| DataFusionError::Internal("pg_typeof takes one argument".into()))?;
        let name = type_name(field);
        Ok(ColumnarValue::Scalar(
            datafusion::common::ScalarValue::Utf8(Some(name)),
        ))
    }
}

/// `json_build_object(VARIADIC "any")`: `{"a" : 1, "b" : "x"}`, spaced as PostgreSQL
/// prints a `json` value. Numbers and booleans are JSON numbers and booleans, NULL is
/// `null`, every other value is its PostgreSQL text as a JSON string. A NULL key is
/// 22004 and an odd number of arguments 22023, as in PostgreSQL.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct JsonBuildObject {
    signature: Signature,
}

impl JsonBuildObject {
    fn new() -> Self {
        JsonBuildObject {
            signature: Signature::one_of(
                vec![TypeSignature::Nullary, TypeSignature::VariadicAny],
                Volatility::Stable,
            ),
        }
    }
}

/// How a value of `ty` is written in JSON.
#[derive(Clone, Copy)]
enum Shape {
    /// Its text as is (numbers, booleans); NaN and the infinities are strings.
    Bare,
    /// Its text as a JSON string.
    Quoted,
}

fn shape(ty: &DataType) -> Shape {
    if ty.is_numeric() || ty == &DataType::Boolean {
        Shape::Bare
    } else {
        Shape::Quoted
    }
}

fn value(text: &str, shape: Shape, out: &mut String) {
    let bare = matches!(shape, Shape::Bare) && !matches!(text, "NaN" | "Infinity" | "-Infinity");
    if bare {
        out.push_str(if text == "t" {
            "true"
        } else if text == "f" {
            "false"
        } else {
            text
        });
    } else {
        crate::pg::json::quote(text, out);
    }
}

impl ScalarUDFImpl for JsonBuildObject {
    fn name(&self) -> &str {
        "json_build_object"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        if args.args.len() % 2 == 1 {
            return Err(Error::InvalidParameterValue(
                "argument list must have even number of elements".into(),
            )
            .into());
        }
        // One row for a call on constants, not one per row of the batch.
        let call = CallArgs::new(&args)?;
        let rows = call.rows;
        let columns: Vec<(Vec<Option<String>>, Shape)> = (0..call.len())
            .filter_map(|i| call.column(i))
            .map(|array| Ok((pg_text(array.as_ref())?, shape(array.data_type()))))
            .collect::<DfResult<_>>()?;
        let mut out = StringBuilder::with_capacity(rows, rows * 16);
        let mut object = String::new();
        for row in 0..rows {
            object.clear();
            object.push('{');
            for (pair, kv) in columns.chunks(2).enumerate() {
                let key = kv[0].0[row].as_deref().ok_or_else(|| {
                    DataFusionError::from(Error::NullValueNotAllowed(format!(
                        "argument {} cannot be null",
                        pair * 2 + 1
                    )))
                })?;
                if pair > 0 {
                    object.push_str(", ");
                }
                crate::pg::json::quote(key, &mut object);
                object.push_str(" : ");
                match kv[1].0[row].as_deref() {
                    Some(text) => value(text, kv[1].1, &mut object),
                    None => object.push_str("null"),
                }
            }
            object.push('}');
            out.append_value(&object);
        }
        call.result(Arc::new(out.finish()))
    }
}

/// `regexp_split_to_array(string, pattern [, flags])`: the pieces of `string` between
/// the matches of `pattern`, as PostgreSQL splits it (a zero-length match at either
/// end of the string splits nothing). Flag `i` matches case-insensitively; an unknown
/// flag is 22023 and a pattern that does not compile 2201B, as in PostgreSQL. Patterns
/// are Rust `regex` syntax (as DataFusion's own `regexp_*` functions), which covers the
/// common subset of PostgreSQL's.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct RegexpSplitToArray {
    signature: Signature,
}

impl RegexpSplitToArray {
    fn new() -> Self {
        RegexpSplitToArray {
            signature: Signature::one_of(
                vec![TypeSignature::Any(2), TypeSignature::Any(3)],
                Volatility::Immutable,
            ),
        }
    }
}

/// `pattern` with PostgreSQL's `flags` applied.
fn compile(pattern: &str, flags: Option<&str>) -> Result<Regex, Error> {
    let mut insensitive = false;
    for flag in flags.unwrap_or("").chars() {
        match flag {
            'i' => insensitive = true,
            'c' => insensitive = false,
            other => {
                return Err(Error::InvalidParameterValue(format!(
                    "invalid regular expression option: \"{other}\""
                )))
            }
        }
    }
    regex::RegexBuilder::new(pattern)
        .case_insensitive(insensitive)
        .build()
        .map_err(|e| Error::InvalidRegularExpression(format!("invalid regular expression: {e}")))
}

/// The pieces of `text` between the matches of `re`.
fn split<'t>(re: &Regex, text: &'t str) -> Vec<&'t str> {
    let mut pieces = Vec::new();
    let mut start = 0;
    for m in re.find_iter(text) {
        if m.is_empty() && (m.start() == 0 || m.start() == text.len()) {
            continue;
        }
        pieces.push(&text[start..m.start()]);
        start = m.end();
    }
    pieces.push(&text[start..]);
    pieces
}

impl ScalarUDFImpl for RegexpSplitToArray {
    fn name(&self) -> &str {
        "regexp_split_to_array"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::List(Arc::new(Field::new_list_field(
            DataType::Utf8,
            true,
        ))))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let call = CallArgs::new(&args)?;
        let (Some(texts), Some(patterns)) = (call.text(0)?, call.text(1)?) else {
            return Err(DataFusionError::Internal(
                "regexp_split_to_array takes two or three arguments".into(),
            ));
        };
        let flags = call.text(2)?;
        // One compiled pattern per distinct (pattern, flags) in the batch.
        let mut compiled: HashMap<(String, Option<String>), Regex> = HashMap::new();
        let mut lists = GenericListBuilder::<i32, _>::new(StringBuilder::new());
        for row in 0..call.rows {
            let flag = match &flags {
                Some(f) => match text_at(f, row) {
                    Some(f) => Some(f),
                    None => {
                        lists.append(false);
                        continue;
                    }
                },
                None => None,
            };
            let (Some(text), Some(pattern)) = (text_at(&texts, row), text_at(&patterns, row))
            else {
                lists.append(false);
                continue;
            };
            let key = (pattern.to_string(), flag.map(str::to_string));
            let re = match compiled.get(&key) {
                Some(re) => re,
                None => {
                    let re = compile(pattern, flag)?;
                    compiled.entry(key).or_insert(re)
                }
            };
            for piece in split(re, text) {
                lists.values().append_value(piece);
            }
            lists.append(true);
        }
        call.result(Arc::new(lists.finish()))
    }
}

/// `like_escape(pattern, escape)`: `pattern` written with escape character `escape`
/// (empty: none) as the same pattern with backslash escapes, the form DataFusion's
/// LIKE reads. A pattern ending in its escape character is 22025; an escape of more
/// than one character 22025 too ("invalid escape string"), as in PostgreSQL.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct LikeEscape {
    signature: Signature,
}

impl LikeEscape {
    fn new() -> Self {
        LikeEscape {
            signature: Signature::any(2, Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for LikeEscape {
    fn name(&self) -> &str {
        "like_escape"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let call = CallArgs::new(&args)?;
        let (Some(patterns), Some(escapes)) = (call.text(0)?, call.text(1)?) else {
            return Err(DataFusionError::Internal(
                "like_escape takes two arguments".into(),
            ));
        };
        let mut out = StringBuilder::with_capacity(call.rows, call.rows * 8);
        for row in 0..call.rows {
            let (Some(pattern), Some(escape)) = (text_at(&patterns, row), text_at(&escapes, row))
            else {
                out.append_null();
                continue;
            };
            let mut chars = escape.chars();
            let escape = match (chars.next(), chars.next()) {
                (first, None) => first,
                _ => {
                    return Err(Error::InvalidEscapeSequence(
                        "invalid escape string: escape string must be empty or one character"
                            .into(),
                    )
                    .into())
                }
            };
            let translated = crate::pg::like::with_backslash_escapes(pattern, escape)
                .map_err(Error::InvalidEscapeSequence)?;
            out.append_value(translated);
        }
        call.result(Arc::new(out.finish()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::SessionContext;

    async fn one(sql: &str) -> Result<String, String> {
        let ctx = SessionContext::new();
        for f in functions() {
            ctx.register_udf(f);
        }
        let batches = ctx
            .sql(sql)
            .await
            .map_err(|e| e.to_string())?
            .collect()
            .await
            .map_err(|e| e.to_string())?;
        let text = pg_text(batches[0].column(0).as_ref()).map_err(|e| e.to_string())?;
        Ok(text[0].clone().unwrap_or_default())
    }

    #[tokio::test]
    async fn objects_print_as_postgresql_prints_them() {
        assert_eq!(one("SELECT json_build_object()").await.unwrap(), "{}");
        assert_eq!(
            one("SELECT json_build_object('a', 1, 'b', 'x\"y', 'c', NULL, 'd', true, 'e', 1.5)")
                .await
                .unwrap(),
            r#"{"a" : 1, "b" : "x\"y", "c" : null, "d" : true, "e" : 1.5}"#
        );
        assert_eq!(
            one("SELECT json_build_object('n', 'NaN'::double precision, 'l', 'a\nb')")
                .await
                .unwrap(),
            r#"{"n" : "NaN", "l" : "a\nb"}"#
        );
        let odd = one("SELECT json_build_object('a')").await.unwrap_err();
        assert!(odd.contains("even number of elements"), "{odd}");
        let null_key = one("SELECT json_build_object(NULL, 1)").await.unwrap_err();
        assert!(null_key.contains("argument 1 cannot be null"), "{null_key}");
    }

    #[tokio::test]
    async fn strings_split_as_postgresql_splits_them() {
        let cases = [
            (
                "SELECT regexp_split_to_array('a1b22c', '[0-9]+')",
                "{a,b,c}",
            ),
            ("SELECT regexp_split_to_array('hello', '')", "{h,e,l,l,o}"),
            (
                "SELECT regexp_split_to_array('one  two', '\\s*')",
                "{o,n,e,t,w,o}",
            ),
            ("SELECT regexp_split_to_array(',a,', ',')", "{\"\",a,\"\"}"),
            ("SELECT regexp_split_to_array('aXbxc', 'x', 'i')", "{a,b,c}"),
            ("SELECT regexp_split_to_array('', 'x')", "{\"\"}"),
        ];
        for (sql, expected) in cases {
            assert_eq!(one(sql).await.unwrap(), expected, "{sql}");
        }
        let flag = one("SELECT regexp_split_to_array('a', 'x', 'q')")
            .await
            .unwrap_err();
        assert!(flag.contains("invalid regular expression option"), "{flag}");
        let bad = one("SELECT regexp_split_to_array('a', '(')")
            .await
            .unwrap_err();
        assert!(bad.contains("invalid regular expression"), "{bad}");
    }
}
