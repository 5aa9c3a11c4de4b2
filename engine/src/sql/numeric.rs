//! PostgreSQL's unconstrained `numeric`: `x::numeric` keeps the scale of `x`
//! (`2.5::numeric * 2` is `5.0`, `count(*)::numeric` is `3`, `'3.14'::numeric` is
//! `3.14`). Arrow decimals have one scale per column, PostgreSQL's numeric one per
//! value, and DataFusion plans every typmod-less `numeric` as `Decimal128(38, 10)`, so
//! `5.0000000000`. Here a typmod-less cast takes the scale its operand has:
//!
//! - a string literal, its own (`'3.14'::numeric` is `numeric(22, 2)`), rewritten in
//!   the statement's text, where the literal is still one;
//! - any other expression through `pg_numeric(x)`, whose type follows the operand's
//!   *type* (never its value, so constant folding cannot change it): an integer is
//!   scale 0, a decimal keeps its scale (with at least a bigint's integer digits, so a
//!   table made from it holds more than its first values), anything else (a float,
//!   text) has DataFusion's default scale, as no one scale keeps every value of those.
//!
//! A parameter (`$1::numeric`) keeps the plain cast, whose type Describe announces.
//!
//! Division ([`NumericDivision`]): Arrow gives a decimal quotient 4 more decimals than
//! the dividend (`1.0 / 3` is `0.33333`); PostgreSQL at least 16 significant digits
//! (`0.33333333333333333333`). A quotient of numerics here has 20 decimals where its
//! integer digits leave room for them.

use std::ops::ControlFlow;
use std::str::FromStr;

use datafusion::arrow::compute::{cast_with_options, CastOptions};
use datafusion::arrow::datatypes::{DataType, DECIMAL128_MAX_PRECISION};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::{
    BinaryExpr, Cast, ColumnarValue, Expr, ExprSchemable, LogicalPlan, Operator,
    ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::optimizer::analyzer::AnalyzerRule;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{
    visit_expressions_mut, CastKind, DataType as SqlDataType, ExactNumberInfo, Expr as SqlExpr,
    Function, FunctionArg, FunctionArgExpr, FunctionArgumentList, FunctionArguments, Ident,
    ObjectName, Value,
};

/// The function a typmod-less `numeric` cast of an expression becomes.
const FUNCTION: &str = "pg_numeric";

/// DataFusion's scale for a typmod-less `numeric` (its `DECIMAL_DEFAULT_SCALE`).
const DEFAULT_SCALE: i8 = 10;

/// Every typmod-less `numeric` / `decimal` cast in `statement` as described in the
/// module documentation.
pub(crate) fn unconstrained_numeric_casts(statement: &mut DfStatement) {
    let DfStatement::Statement(sql) = statement else {
        return;
    };
    let _ = visit_expressions_mut(sql.as_mut(), |expr| {
        let replacement = match expr {
            SqlExpr::Cast {
                expr: inner,
                data_type,
                kind,
                ..
            } if unconstrained(data_type)
                && !matches!(kind, CastKind::TryCast | CastKind::SafeCast) =>
            {
                match inner.as_ref() {
                    SqlExpr::Value(v) => match &v.value {
                        Value::Placeholder(_) => None,
                        Value::SingleQuotedString(text) => literal_cast(text),
                        _ => Some(call(inner.as_ref().clone())),
                    },
                    other => Some(call(other.clone())),
                }
            }
            SqlExpr::TypedString(typed) if unconstrained(&typed.data_type) => {
                match &typed.value.value {
                    Value::SingleQuotedString(text) => literal_cast(text),
                    _ => None,
                }
            }
            _ => None,
        };
        if let Some(replacement) = replacement {
            *expr = replacement;
        }
        ControlFlow::<()>::Continue(())
    });
}

/// Number literals no decimal holds (`1e308`: Arrow's scale stops at -128, its
/// precision at 76 digits) as the float8 PostgreSQL would compare them as, where
/// DataFusion's planner, reading them as decimals, refuses them.
pub(crate) fn out_of_range_numbers(statement: &mut DfStatement) {
    let DfStatement::Statement(sql) = statement else {
        return;
    };
    let _ = visit_expressions_mut(sql.as_mut(), |expr| {
        if let SqlExpr::Value(v) = expr {
            if let Value::Number(text, _) = &v.value {
                if !fits_a_decimal(text) {
                    *expr = SqlExpr::Cast {
                        kind: CastKind::Cast,
                        expr: Box::new(SqlExpr::value(Value::SingleQuotedString(text.to_string()))),
                        data_type: SqlDataType::DoublePrecision,
                        array: false,
                        format: None,
                    };
                }
            }
        }
        ControlFlow::<()>::Continue(())
    });
}

/// Whether the number literal `text` is one a 128- or 256-bit decimal holds (as
/// DataFusion's planner reads it: digits, and a scale from -128 to 76).
fn fits_a_decimal(text: &str) -> bool {
    let Ok(number) = bigdecimal::BigDecimal::from_str(text) else {
        return true; // not for this rewrite to judge
    };
    let (_, exponent) = number.as_bigint_and_exponent();
    let digits = i64::try_from(number.digits()).unwrap_or(i64::MAX);
    (i64::from(i8::MIN)..=76).contains(&exponent) && digits.max(exponent) <= 76
}

/// Whether `data_type` is `numeric` / `decimal` without a precision or scale.
fn unconstrained(data_type: &SqlDataType) -> bool {
    matches!(
        data_type,
        SqlDataType::Numeric(ExactNumberInfo::None)
            | SqlDataType::Decimal(ExactNumberInfo::None)
            | SqlDataType::Dec(ExactNumberInfo::None)
    )
}

/// `'3.14'` as `CAST('3.14' AS NUMERIC(22, 2))`; `None` (the plain cast, and its
/// error) for text that is not a number or has more digits after the point than a
/// decimal holds.
fn literal_cast(text: &str) -> Option<SqlExpr> {
    let (precision, scale) = literal_digits(text)?;
    Some(SqlExpr::Cast {
        kind: CastKind::Cast,
        expr: Box::new(SqlExpr::value(Value::SingleQuotedString(text.to_string()))),
        data_type: SqlDataType::Numeric(ExactNumberInfo::PrecisionAndScale(
            u64::from(precision),
            i64::from(scale),
        )),
        array: false,
        format: None,
    })
}

/// The precision (at least a bigint's integer digits) and scale (the digits after the
/// point: `'1.50'` 2, `'1e3'` 0) of a numeric literal's text, if a 128-bit decimal
/// holds it.
fn literal_digits(text: &str) -> Option<(u8, u8)> {
    let number = bigdecimal::BigDecimal::from_str(text.trim()).ok()?;
    let (_, exponent) = number.as_bigint_and_exponent();
    let scale = u8::try_from(exponent.max(0)).ok()?;
    let digits = i64::try_from(number.digits()).ok()?;
    let integer_digits = u8::try_from((digits - exponent).max(0)).ok()?;
    let precision = integer_digits.max(INTEGER_DIGITS).checked_add(scale)?;
    (precision <= DECIMAL128_MAX_PRECISION)
        .then_some((precision, scale))
        .or_else(|| {
            // Fewer spare integer digits, where the value still fits.
            let needed = integer_digits.checked_add(scale)?;
            (needed <= DECIMAL128_MAX_PRECISION).then_some((DECIMAL128_MAX_PRECISION, scale))
        })
}

/// `pg_numeric(inner)`.
fn call(inner: SqlExpr) -> SqlExpr {
    SqlExpr::Function(Function {
        name: ObjectName::from(vec![Ident::new(FUNCTION)]),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::List(FunctionArgumentList {
            duplicate_treatment: None,
            args: vec![FunctionArg::Unnamed(FunctionArgExpr::Expr(
                SqlExpr::Nested(Box::new(inner)),
            ))],
            clauses: Vec::new(),
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: Vec::new(),
    })
}

/// The type a column made from a query's `dt` values stores (`CREATE TABLE ... AS`):
/// a decimal with at least a bigint's integer digits, so `AS SELECT 1.5 AS price`
/// takes `99.5` later, as PostgreSQL's unconstrained numeric column does; any other
/// type as it is.
pub(crate) fn stored_type(dt: &DataType) -> DataType {
    match dt {
        DataType::Decimal32(..) | DataType::Decimal64(..) | DataType::Decimal128(..) => {
            numeric_type(dt)
        }
        other => other.clone(),
    }
}

/// The functions of this module, for the template every session is cloned from.
pub(crate) fn functions() -> Vec<ScalarUDF> {
    vec![ScalarUDF::new_from_impl(PgNumeric {
        signature: Signature::any(1, Volatility::Immutable),
    })]
}

/// `pg_numeric(x)`: `x` as an unconstrained numeric of the scale its type has.
#[derive(Debug, PartialEq, Eq, Hash)]
struct PgNumeric {
    signature: Signature,
}

/// Integer digits a typmod-less numeric of an integer or decimal holds at least: a
/// bigint's (20, with the unsigned ones), so a table made from it takes larger values
/// than its first ones, while leaving digits for the scale of a quotient.
const INTEGER_DIGITS: u8 = 20;

/// The decimal type a typmod-less cast of a `from` value gives.
fn numeric_type(from: &DataType) -> DataType {
    match from {
        t if t.is_integer() => DataType::Decimal128(INTEGER_DIGITS, 0),
        DataType::Null => DataType::Decimal128(INTEGER_DIGITS, 0),
        DataType::Decimal32(p, s) | DataType::Decimal64(p, s) | DataType::Decimal128(p, s) => {
            let integer_digits = (i16::from(*p) - i16::from(*s)).max(i16::from(INTEGER_DIGITS));
            let precision =
                (integer_digits + i16::from((*s).max(0))).min(i16::from(DECIMAL128_MAX_PRECISION));
            DataType::Decimal128(
                u8::try_from(precision).unwrap_or(DECIMAL128_MAX_PRECISION),
                *s,
            )
        }
        DataType::Decimal256(p, s) => DataType::Decimal256(*p, *s),
        DataType::Dictionary(_, values) => numeric_type(values),
        _ => DataType::Decimal128(DECIMAL128_MAX_PRECISION, DEFAULT_SCALE),
    }
}

impl ScalarUDFImpl for PgNumeric {
    fn name(&self) -> &str {
        FUNCTION
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> DfResult<DataType> {
        match args {
            [from] => Ok(numeric_type(from)),
            _ => Err(DataFusionError::Plan(format!(
                "{FUNCTION} takes one argument"
            ))),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let to = args.return_field.data_type();
        // Errors, not NULLs, for text that is no number and values that overflow, as
        // DataFusion's own CAST.
        let options = CastOptions {
            safe: false,
            ..Default::default()
        };
        match &args.args[..] {
            [ColumnarValue::Array(values)] => Ok(ColumnarValue::Array(cast_with_options(
                values, to, &options,
            )?)),
            [ColumnarValue::Scalar(value)] => {
                let array = cast_with_options(&value.to_array()?, to, &options)?;
                Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(
                    &array, 0,
                )?))
            }
            _ => Err(DataFusionError::Internal(format!(
                "{FUNCTION} takes one argument"
            ))),
        }
    }
}

/// Decimals a numeric quotient gets where its integer digits leave room: `1.0 / 3`
/// has 20 in PostgreSQL (which gives at least 16 significant digits).
const QUOTIENT_SCALE: i16 = 20;

/// Arrow's decimal division: the quotient has this many more decimals than the
/// dividend.
const ARROW_DIVISION_INCREMENT: i16 = 4;

/// Divides numerics to [`QUOTIENT_SCALE`] decimals: an analyzer rule, before type
/// coercion, over every expression of the plan.
#[derive(Debug, Default)]
pub(crate) struct NumericDivision;

impl AnalyzerRule for NumericDivision {
    fn analyze(&self, plan: LogicalPlan, _: &ConfigOptions) -> DfResult<LogicalPlan> {
        plan.transform_up_with_subqueries(|plan| {
            let mut schema = DFSchema::empty();
            for input in plan.inputs() {
                schema.merge(input.schema());
            }
            let names = NamePreserver::new(&plan);
            let rewritten = plan.map_expressions(|e| {
                let name = names.save(&e);
                e.transform_up(|e| match e {
                    Expr::BinaryExpr(BinaryExpr {
                        left,
                        op: Operator::Divide,
                        right,
                    }) => {
                        let types = (left.get_type(&schema), right.get_type(&schema));
                        let quotient = match &types {
                            (Ok(l), Ok(r)) => precise_quotient(l, r),
                            _ => None,
                        };
                        Ok(match quotient {
                            Some(q) => Transformed::yes(q.divide(*left, *right)),
                            None => Transformed::no(Expr::BinaryExpr(BinaryExpr {
                                left,
                                op: Operator::Divide,
                                right,
                            })),
                        })
                    }
                    other => Ok(Transformed::no(other)),
                })
                .map(|t| t.update_data(|e| name.restore(e)))
            })?;
            // A quotient's type changed: so did the node's output.
            if rewritten.transformed {
                rewritten.map_data(|p| p.recompute_schema())
            } else {
                Ok(rewritten)
            }
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "pg_numeric_division"
    }
}

/// How a division of numerics is computed to more decimals than Arrow's.
#[derive(Debug, PartialEq)]
struct Quotient {
    /// The dividend, widened to one decimal more than the quotient's, less the 4 Arrow
    /// adds.
    dividend: DataType,
    divisor: DataType,
    result: DataType,
}

impl Quotient {
    /// `left / right` computed in 256-bit decimals (room for the widened dividend),
    /// the quotient as the `Decimal128` it fits.
    fn divide(&self, left: Expr, right: Expr) -> Expr {
        let cast = |e: Expr, t: &DataType| Expr::Cast(Cast::new(Box::new(e), t.clone()));
        let quotient = Expr::BinaryExpr(BinaryExpr {
            left: Box::new(cast(left, &self.dividend)),
            op: Operator::Divide,
            right: Box::new(cast(right, &self.divisor)),
        });
        cast(quotient, &self.result)
    }
}

/// The decimal precision and scale an integer or decimal type's values take.
fn decimal_digits(t: &DataType) -> Option<(i16, i16)> {
    Some(match t {
        DataType::Int8 | DataType::UInt8 => (3, 0),
        DataType::Int16 | DataType::UInt16 => (5, 0),
        DataType::Int32 | DataType::UInt32 => (10, 0),
        DataType::Int64 => (19, 0),
        DataType::UInt64 => (20, 0),
        DataType::Decimal32(p, s) | DataType::Decimal64(p, s) | DataType::Decimal128(p, s) => {
            (i16::from(*p), i16::from(*s))
        }
        _ => return None,
    })
}

/// How `left / right` is computed to more decimals, if one is a decimal, the other a
/// decimal or an integer, and the quotient has room for more than Arrow gives it.
fn precise_quotient(left: &DataType, right: &DataType) -> Option<Quotient> {
    let decimal = |t: &DataType| {
        matches!(
            t,
            DataType::Decimal32(..) | DataType::Decimal64(..) | DataType::Decimal128(..)
        )
    };
    if !decimal(left) && !decimal(right) {
        return None;
    }
    let ((p1, s1), (p2, s2)) = (decimal_digits(left)?, decimal_digits(right)?);
    if s1 < 0 || s2 < 0 {
        return None;
    }
    // Dividing by a value of s2 decimals multiplies by up to 10^s2.
    let integer_digits = p1 - s1 + s2;
    let max = i16::from(DECIMAL128_MAX_PRECISION);
    let scale = QUOTIENT_SCALE.max(s1).max(s2).min(max - integer_digits);
    if scale <= s1 + ARROW_DIVISION_INCREMENT {
        return None;
    }
    // One decimal more than the quotient keeps, which the cast to it rounds away (as
    // PostgreSQL rounds: `2.0 / 3` is `0.66666666666666666667`).
    let widened = scale + 1 - ARROW_DIVISION_INCREMENT;
    let decimal256 = |p: i16, s: i16| {
        Some(DataType::Decimal256(
            u8::try_from(p).ok()?,
            i8::try_from(s).ok()?,
        ))
    };
    Some(Quotient {
        dividend: decimal256(p1 - s1 + widened, widened)?,
        divisor: decimal256(p2.max(1), s2)?,
        result: DataType::Decimal128(
            u8::try_from(integer_digits + scale).ok()?,
            i8::try_from(scale).ok()?,
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotients_get_twenty_decimals_where_they_fit() {
        // 1.0 / 3: 20 decimals, computed to 21 from a dividend of 17.
        let q = precise_quotient(&DataType::Decimal128(2, 1), &DataType::Int64).unwrap();
        assert_eq!(q.dividend, DataType::Decimal256(18, 17));
        assert_eq!(q.result, DataType::Decimal128(21, 20));
        // A wide dividend leaves fewer: 38 - 30 integer digits.
        let q = precise_quotient(&DataType::Decimal128(32, 2), &DataType::Int32).unwrap();
        assert_eq!(q.result, DataType::Decimal128(38, 8));
        // No room beyond Arrow's own 4 more: left to Arrow.
        assert_eq!(
            precise_quotient(&DataType::Decimal128(38, 10), &DataType::Int32),
            None
        );
        // Integers divide as integers; floats as floats.
        assert_eq!(precise_quotient(&DataType::Int64, &DataType::Int64), None);
        assert_eq!(
            precise_quotient(&DataType::Float64, &DataType::Decimal128(2, 1)),
            None
        );
    }

    #[test]
    fn numbers_beyond_decimals_are_floats() {
        assert!(fits_a_decimal("1.5"));
        assert!(fits_a_decimal("1e100"));
        assert!(fits_a_decimal(&"9".repeat(76)));
        assert!(!fits_a_decimal("1e308"));
        assert!(!fits_a_decimal("1.5e-200"));
        assert!(!fits_a_decimal(&"9".repeat(77)));
    }

    fn literal_scale(text: &str) -> Option<u8> {
        literal_digits(text).map(|(_, scale)| scale)
    }

    #[test]
    fn literal_scales_are_the_digits_after_the_point() {
        assert_eq!(literal_scale("3.14"), Some(2));
        assert_eq!(literal_scale(" 1.500 "), Some(3));
        assert_eq!(literal_scale("-7"), Some(0));
        assert_eq!(literal_scale("1e3"), Some(0));
        assert_eq!(literal_scale("1.5e-3"), Some(4));
        assert_eq!(literal_scale("abc"), None);
        assert_eq!(literal_digits("3.14"), Some((22, 2)));
        // More integer digits than a bigint's, still within a decimal.
        assert_eq!(
            literal_digits(&format!("{}.5", "9".repeat(30))),
            Some((31, 1))
        );
        assert_eq!(literal_digits(&"9".repeat(39)), None);
        assert_eq!(literal_scale(&format!("0.{}", "1".repeat(40))), None);
    }

    #[test]
    fn types_follow_the_operand_type() {
        assert_eq!(numeric_type(&DataType::Int32), DataType::Decimal128(20, 0));
        assert_eq!(
            numeric_type(&DataType::Decimal128(2, 1)),
            DataType::Decimal128(21, 1)
        );
        assert_eq!(
            numeric_type(&DataType::Decimal128(38, 4)),
            DataType::Decimal128(38, 4)
        );
        assert_eq!(
            numeric_type(&DataType::Float64),
            DataType::Decimal128(38, 10)
        );
    }
}
