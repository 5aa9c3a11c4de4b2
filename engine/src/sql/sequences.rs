//! `nextval`, `currval`, `lastval` and `setval`: PostgreSQL's sequence functions, over
//! the database's sequences ([`crate::store::sequence`]), with the session's last
//! values for `currval` and `lastval`.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, Int64Builder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature,
    Volatility,
};
use datafusion::sql::sqlparser::ast::ObjectNamePart;
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;
use parking_lot::Mutex;

use crate::error::{log_text, Error, Result};
use crate::sql::ddl::normalize;
use crate::store::catalog::relation_key;
use crate::store::sequence::Sequences;
use crate::store::DEFAULT_SCHEMA;

/// The values this session last had from each sequence, and the very last one.
#[derive(Default)]
struct SessionValues {
    by_sequence: HashMap<String, i64>,
    last: Option<i64>,
}

/// A session's [`SessionValues`], in its configuration: the functions are the
/// database's (a column DEFAULT calls the one its table was created with), the values
/// each session's own.
#[derive(Default, Clone)]
pub(crate) struct SessionSequences(Arc<Mutex<SessionValues>>);

impl std::fmt::Debug for SessionSequences {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionSequences")
    }
}

crate::store::internal_extension!(SessionSequences, "wasmudf_sequences");

/// The catalog key (`schema.name`) of the sequence a function argument names:
/// `'t_id_seq'`, `'public.t_id_seq'`, `'"Odd"'`, as `regclass` input reads it.
pub(crate) fn sequence_key(text: &str) -> Result<String> {
    let invalid = || Error::InvalidText(format!("invalid name syntax: \"{}\"", log_text(text)));
    let mut parser = Parser::new(&PostgreSqlDialect {})
        .try_with_sql(text)
        .map_err(|_| invalid())?;
    let name = parser.parse_object_name(false).map_err(|_| invalid())?;
    if parser.peek_token().token != datafusion::sql::sqlparser::tokenizer::Token::EOF {
        return Err(invalid());
    }
    let parts = name
        .0
        .iter()
        .map(|p| match p {
            ObjectNamePart::Identifier(i) => Ok(normalize(i)),
            _ => Err(invalid()),
        })
        .collect::<Result<Vec<_>>>()?;
    match parts.as_slice() {
        [name] => Ok(relation_key(DEFAULT_SCHEMA, name)),
        [schema, name] => Ok(relation_key(schema, name)),
        [catalog, schema, name] if catalog == crate::store::CATALOG_NAME => {
            Ok(relation_key(schema, name))
        }
        _ => Err(invalid()),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Op {
    Next,
    Current,
    Last,
    Set,
}

struct SequenceFunction {
    name: &'static str,
    op: Op,
    signature: Signature,
    sequences: Arc<Sequences>,
}

impl std::fmt::Debug for SequenceFunction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

impl PartialEq for SequenceFunction {
    fn eq(&self, other: &Self) -> bool {
        self.op == other.op && Arc::ptr_eq(&self.sequences, &other.sequences)
    }
}

impl Eq for SequenceFunction {}

impl std::hash::Hash for SequenceFunction {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.op.hash(state);
    }
}

/// The sequence functions of a database.
pub(crate) fn functions(sequences: &Arc<Sequences>) -> Vec<ScalarUDF> {
    [
        ("nextval", Op::Next, Signature::any(1, Volatility::Volatile)),
        (
            "currval",
            Op::Current,
            Signature::any(1, Volatility::Volatile),
        ),
        (
            "lastval",
            Op::Last,
            Signature::nullary(Volatility::Volatile),
        ),
        (
            "setval",
            Op::Set,
            Signature::one_of(
                vec![TypeSignature::Any(2), TypeSignature::Any(3)],
                Volatility::Volatile,
            ),
        ),
    ]
    .into_iter()
    .map(|(name, op, signature)| {
        ScalarUDF::new_from_impl(SequenceFunction {
            name,
            op,
            signature,
            sequences: sequences.clone(),
        })
    })
    .collect()
}

impl ScalarUDFImpl for SequenceFunction {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Int64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let rows = args.number_rows;
        let session = args
            .config_options
            .extensions
            .get::<SessionSequences>()
            .cloned()
            .unwrap_or_default();
        let mut out = Int64Builder::with_capacity(rows);
        match self.op {
            Op::Last => {
                let last = session.0.lock().last.ok_or_else(|| {
                    Error::NotInPrerequisiteState(
                        "lastval is not yet defined in this session".into(),
                    )
                })?;
                return Ok(ColumnarValue::Scalar(ScalarValue::Int64(Some(last))));
            }
            Op::Next => {
                // The usual call, a column DEFAULT: one name for every row, so one
                // reservation for the batch.
                if rows == 0 {
                    // No row to number: no value used.
                    return Ok(ColumnarValue::Array(Arc::new(out.finish())));
                }
                if let ColumnarValue::Scalar(name) = &args.args[0] {
                    let Some(key) = scalar_name(name)? else {
                        return Ok(ColumnarValue::Scalar(ScalarValue::Int64(None)));
                    };
                    let (first, step) = self.sequences.next_values(&key, rows)?;
                    let mut v = first;
                    for i in 0..rows {
                        if i > 0 {
                            v += step;
                        }
                        out.append_value(v);
                    }
                    session.remember(&key, v);
                    return Ok(ColumnarValue::Array(Arc::new(out.finish())));
                }
            }
            Op::Current | Op::Set => {}
        }
        let names = args.args[0].to_array(rows)?;
        let names = cast(&names, &DataType::Utf8)?;
        let names = names.as_string::<i32>();
        let values = match args.args.get(1) {
            Some(v) => Some(cast(&v.to_array(rows)?, &DataType::Int64)?),
            None => None,
        };
        let called = match args.args.get(2) {
            Some(c) => Some(cast(&c.to_array(rows)?, &DataType::Boolean)?),
            None => None,
        };
        for i in 0..rows {
            if names.is_null(i) {
                out.append_null();
                continue;
            }
            let key = sequence_key(names.value(i))?;
            match self.op {
                Op::Next => {
                    let (v, _) = self.sequences.next_values(&key, 1)?;
                    session.remember(&key, v);
                    out.append_value(v);
                }
                Op::Current => {
                    let v = session.0.lock().by_sequence.get(&key).copied();
                    let v = v.ok_or_else(|| {
                        Error::NotInPrerequisiteState(format!(
                            "currval of sequence \"{}\" is not yet defined in this session",
                            log_text(key.split_once('.').map_or(key.as_str(), |(_, n)| n))
                        ))
                    })?;
                    out.append_value(v);
                }
                Op::Set => {
                    let Some(values) = &values else {
                        return Err(Error::Runtime("setval needs a value".into()).into());
                    };
                    let values = values.as_primitive::<datafusion::arrow::datatypes::Int64Type>();
                    if values.is_null(i) {
                        out.append_null();
                        continue;
                    }
                    let value = values.value(i);
                    let is_called = match &called {
                        Some(c) => {
                            let c = c.as_boolean();
                            if c.is_null(i) {
                                out.append_null();
                                continue;
                            }
                            c.value(i)
                        }
                        None => true,
                    };
                    self.sequences.set(&key, value, is_called)?;
                    if is_called {
                        session.remember(&key, value);
                    }
                    out.append_value(value);
                }
                Op::Last => {}
            }
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

impl SessionSequences {
    fn remember(&self, key: &str, value: i64) {
        let mut session = self.0.lock();
        session.by_sequence.insert(key.to_string(), value);
        session.last = Some(value);
    }
}

/// The sequence key a constant argument names; `None` for NULL.
fn scalar_name(name: &ScalarValue) -> Result<Option<String>> {
    let text = match name.cast_to(&DataType::Utf8) {
        Ok(ScalarValue::Utf8(text)) => text,
        _ => {
            return Err(Error::InvalidText(format!(
                "not a sequence name: {}",
                log_text(&name.to_string())
            )))
        }
    };
    text.map(|t| sequence_key(&t)).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_names_read_as_regclass_input() {
        assert_eq!(sequence_key("t_id_seq").unwrap(), "public.t_id_seq");
        assert_eq!(sequence_key("S.T_Seq").unwrap(), "s.t_seq");
        assert_eq!(sequence_key("\"Odd\"").unwrap(), "public.Odd");
        assert!(sequence_key("a.b.c.d").is_err());
        assert!(sequence_key("1; drop").is_err());
        assert!(sequence_key("a; drop table t").is_err());
    }
}
