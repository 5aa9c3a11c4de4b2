//! What a component says about its functions, in Arrow and DataFusion terms.

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, TimeUnit as ArrowTimeUnit};
use datafusion::logical_expr::Volatility;

use crate::error::{guest_text, Error, Result};
use crate::wasm::abi::{
    DecimalType, TimeUnit, TimestampType, WitKind, WitNullHandling, WitSignature, WitType,
    WitVolatility,
};

/// Whether a function maps rows to rows or groups to values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FunctionKind {
    /// One output row per input row.
    Scalar,
    /// One output value per group: a vectorized aggregate (also usable as a window
    /// function), served by [`crate::Module::aggregate_udf`].
    Aggregate,
}

/// How a function treats null inputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NullHandling {
    /// Null wherever any input is null; the host computes those nulls with bitmap
    /// operations and never lets the guest's value for such a row through.
    Strict,
    /// The guest sees validity and decides for every row.
    CalledOnNull,
}

/// One function a component provides, as described by the component itself.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FunctionSignature {
    /// The function's name in the component (its export name).
    pub name: String,
    /// Scalar or aggregate.
    pub kind: FunctionKind,
    /// Argument types, in order.
    pub params: Vec<DataType>,
    /// Result type.
    pub returns: DataType,
    /// Volatility the component declares.
    pub volatility: Volatility,
    /// Null handling the component declares. For an aggregate, strict means rows
    /// with a null in any argument are skipped (the host drops them before the guest
    /// sees the batch).
    pub null_handling: NullHandling,
    /// For an aggregate: its intermediate state and whether it can retract rows.
    pub aggregate: Option<AggregateShape>,
}

/// What the host knows of an aggregate beyond its signature.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AggregateShape {
    /// Types of the intermediate state columns (one value per group in each).
    pub state: Vec<DataType>,
    /// Whether the aggregate can remove rows (needed by sliding window frames).
    pub retract: bool,
}

impl fmt::Display for FunctionSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let params: Vec<String> = self.params.iter().map(sql_type_name).collect();
        write!(
            f,
            "{}({}) -> {}",
            self.name,
            params.join(", "),
            sql_type_name(&self.returns)
        )
    }
}

/// The word for a function kind: what `wasm.functions` shows and the catalog stores.
pub fn kind_word(kind: FunctionKind) -> &'static str {
    match kind {
        FunctionKind::Scalar => "scalar",
        FunctionKind::Aggregate => "aggregate",
    }
}

/// The word for a volatility: what `wasm.functions` shows and the catalog stores.
pub fn volatility_word(v: Volatility) -> &'static str {
    match v {
        Volatility::Immutable => "immutable",
        Volatility::Stable => "stable",
        Volatility::Volatile => "volatile",
    }
}

/// The PostgreSQL spelling of a supported Arrow type, for messages and catalogs.
pub fn sql_type_name(dt: &DataType) -> String {
    match dt {
        DataType::Boolean => "boolean".into(),
        DataType::Int8 => "tinyint".into(),
        DataType::Int16 => "smallint".into(),
        DataType::Int32 => "integer".into(),
        DataType::Int64 => "bigint".into(),
        DataType::UInt8 => "tinyint unsigned".into(),
        DataType::UInt16 => "smallint unsigned".into(),
        DataType::UInt32 => "integer unsigned".into(),
        DataType::UInt64 => "bigint unsigned".into(),
        DataType::Float32 => "real".into(),
        DataType::Float64 => "double precision".into(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "text".into(),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => "bytea".into(),
        DataType::Date32 => "date".into(),
        DataType::Timestamp(_, None) => "timestamp".into(),
        DataType::Timestamp(_, Some(_)) => "timestamptz".into(),
        DataType::Decimal128(p, s) => format!("numeric({p},{s})"),
        other => other.to_string(),
    }
}

impl WitType {
    pub(crate) fn to_arrow(&self) -> Result<DataType> {
        Ok(match self {
            WitType::Boolean => DataType::Boolean,
            WitType::Int8 => DataType::Int8,
            WitType::Int16 => DataType::Int16,
            WitType::Int32 => DataType::Int32,
            WitType::Int64 => DataType::Int64,
            WitType::Uint8 => DataType::UInt8,
            WitType::Uint16 => DataType::UInt16,
            WitType::Uint32 => DataType::UInt32,
            WitType::Uint64 => DataType::UInt64,
            WitType::Float32 => DataType::Float32,
            WitType::Float64 => DataType::Float64,
            WitType::Utf8 => DataType::Utf8,
            WitType::Binary => DataType::Binary,
            WitType::Date32 => DataType::Date32,
            WitType::Timestamp(TimestampType { unit, timezone }) => {
                let unit = match unit {
                    TimeUnit::Second => ArrowTimeUnit::Second,
                    TimeUnit::Millisecond => ArrowTimeUnit::Millisecond,
                    TimeUnit::Microsecond => ArrowTimeUnit::Microsecond,
                    TimeUnit::Nanosecond => ArrowTimeUnit::Nanosecond,
                };
                if let Some(tz) = timezone {
                    // Reject zone names Arrow cannot interpret, here rather than mid-query.
                    tz.parse::<datafusion::arrow::array::timezone::Tz>()
                        .map_err(|e| {
                            Error::InvalidDescription(format!("time zone \"{tz}\": {e}"))
                        })?;
                }
                DataType::Timestamp(unit, timezone.as_deref().map(Arc::from))
            }
            WitType::Decimal128(DecimalType { precision, scale }) => {
                if *precision == 0 || *precision > 38 || i16::from(*scale) > i16::from(*precision) {
                    return Err(Error::InvalidDescription(format!(
                        "decimal128({precision}, {scale}) is not a valid decimal type (1 <= precision <= 38, scale <= precision)"
                    )));
                }
                DataType::Decimal128(*precision, *scale)
            }
        })
    }
}

impl TryFrom<WitSignature> for FunctionSignature {
    type Error = Error;

    fn try_from(w: WitSignature) -> Result<Self> {
        // PostgreSQL's identifiers are at most 63 bytes (NAMEDATALEN - 1).
        if w.name.is_empty() || w.name.len() > 63 || w.name.chars().any(|c| c.is_control()) {
            return Err(Error::InvalidDescription(format!(
                "function name \"{}\" ({} bytes) is empty, longer than 63 bytes or has control characters",
                guest_text(&w.name),
                w.name.len()
            )));
        }
        let context = |e: Error| match e {
            Error::InvalidDescription(m) => {
                Error::InvalidDescription(format!("function {}: {m}", w.name))
            }
            other => other,
        };
        let params = w
            .params
            .iter()
            .map(WitType::to_arrow)
            .collect::<Result<Vec<_>>>()
            .map_err(context)?;
        let returns = w.returns.to_arrow().map_err(context)?;
        Ok(FunctionSignature {
            kind: match w.kind {
                WitKind::Scalar => FunctionKind::Scalar,
                WitKind::Aggregate => FunctionKind::Aggregate,
            },
            params,
            returns,
            volatility: match w.volatility {
                WitVolatility::Immutable => Volatility::Immutable,
                WitVolatility::Stable => Volatility::Stable,
                WitVolatility::Volatile => Volatility::Volatile,
            },
            null_handling: match w.null_handling {
                WitNullHandling::Strict => NullHandling::Strict,
                WitNullHandling::CalledOnNull => NullHandling::CalledOnNull,
            },
            name: w.name,
            aggregate: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn wit_type() -> impl Strategy<Value = WitType> {
        let unit = proptest::sample::select(vec![
            TimeUnit::Second,
            TimeUnit::Millisecond,
            TimeUnit::Microsecond,
            TimeUnit::Nanosecond,
        ]);
        let zone = proptest::option::of(prop_oneof![
            Just("+00:00".to_string()),
            Just("Europe/Paris".to_string()),
            "(?s).{0,12}",
        ]);
        prop_oneof![
            proptest::sample::select(vec![
                WitType::Boolean,
                WitType::Int8,
                WitType::Int16,
                WitType::Int32,
                WitType::Int64,
                WitType::Uint8,
                WitType::Uint16,
                WitType::Uint32,
                WitType::Uint64,
                WitType::Float32,
                WitType::Float64,
                WitType::Utf8,
                WitType::Binary,
                WitType::Date32,
            ]),
            (unit, zone)
                .prop_map(|(unit, timezone)| WitType::Timestamp(TimestampType { unit, timezone })),
            (any::<u8>(), any::<i8>()).prop_map(|(precision, scale)| {
                WitType::Decimal128(DecimalType { precision, scale })
            }),
        ]
    }

    fn signature() -> impl Strategy<Value = WitSignature> {
        (
            prop_oneof!["[a-z_][a-z0-9_]{0,70}", "(?s).{0,80}"],
            any::<bool>(),
            proptest::collection::vec(wit_type(), 0..6),
            wit_type(),
            0u8..3,
            any::<bool>(),
        )
            .prop_map(|(name, aggregate, params, returns, volatility, strict)| {
                WitSignature {
                    name,
                    kind: if aggregate {
                        WitKind::Aggregate
                    } else {
                        WitKind::Scalar
                    },
                    params,
                    returns,
                    volatility: match volatility {
                        0 => WitVolatility::Immutable,
                        1 => WitVolatility::Stable,
                        _ => WitVolatility::Volatile,
                    },
                    null_handling: if strict {
                        WitNullHandling::Strict
                    } else {
                        WitNullHandling::CalledOnNull
                    },
                }
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        /// Whatever a component describes: a signature the host can plan with, or an
        /// error; never a panic, never a name a catalog or a log cannot carry.
        #[test]
        fn any_description_is_checked(w in signature()) {
            if let Ok(sig) = FunctionSignature::try_from(w) {
                prop_assert!(!sig.name.is_empty() && sig.name.len() <= 63);
                prop_assert!(!sig.name.chars().any(char::is_control));
                for t in sig.params.iter().chain([&sig.returns]) {
                    if let DataType::Decimal128(p, s) = t {
                        prop_assert!((1..=38).contains(p) && i16::from(*s) <= i16::from(*p));
                    }
                }
            }
        }
    }
}
