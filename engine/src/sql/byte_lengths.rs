//! `length(bytea)`, `octet_length(bytea)` and `bit_length(bytea)`, as PostgreSQL has
//! them: DataFusion's functions of those names take only strings (and refuse a `bytea`
//! with "requires String"), so each is wrapped: a binary argument is measured in
//! bytes, every other argument goes to DataFusion's own function unchanged.

use std::sync::Arc;

use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::compute::cast;
use datafusion::arrow::compute::kernels::length::{bit_length, length};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature,
};

/// What a binary value is measured in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Unit {
    Bytes,
    Bits,
}

/// The wrapped functions, for the template every session is cloned from.
pub(crate) fn functions() -> Vec<ScalarUDF> {
    use datafusion::functions::{string, unicode};
    [
        ("length", unicode::character_length(), Unit::Bytes),
        ("octet_length", string::octet_length(), Unit::Bytes),
        ("bit_length", string::bit_length(), Unit::Bits),
    ]
    .into_iter()
    .map(|(name, text, unit)| ScalarUDF::new_from_impl(ByteLength::new(name, text, unit)))
    .collect()
}

/// One of the functions: a binary argument's length in `unit` (Arrow's kernels), or DataFusion's
/// `text` function of the same name for a string.
#[derive(Debug, PartialEq, Eq, Hash)]
struct ByteLength {
    name: &'static str,
    text: Arc<ScalarUDF>,
    unit: Unit,
    signature: Signature,
}

impl ByteLength {
    fn new(name: &'static str, text: Arc<ScalarUDF>, unit: Unit) -> Self {
        let mut variants: Vec<TypeSignature> = BINARY
            .into_iter()
            .map(|t| TypeSignature::Exact(vec![t]))
            .collect();
        variants.push(text.signature().type_signature.clone());
        let signature = Signature::one_of(variants, text.signature().volatility);
        ByteLength {
            name,
            text,
            unit,
            signature,
        }
    }

    /// The lengths as PostgreSQL's `int4` (a `LargeBinary`'s come as int8).
    fn lengths(&self, values: &ArrayRef) -> DfResult<ArrayRef> {
        let lengths = match self.unit {
            Unit::Bytes => length(values.as_ref())?,
            Unit::Bits => bit_length(values.as_ref())?,
        };
        Ok(cast(&lengths, &DataType::Int32)?)
    }
}

const BINARY: [DataType; 3] = [
    DataType::Binary,
    DataType::LargeBinary,
    DataType::BinaryView,
];

impl ScalarUDFImpl for ByteLength {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> DfResult<DataType> {
        match args {
            [t] if BINARY.contains(t) => Ok(DataType::Int32),
            _ => self.text.inner().return_type(args),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let binary = args
            .arg_fields
            .first()
            .is_some_and(|f| BINARY.contains(f.data_type()));
        if !binary {
            return self.text.inner().invoke_with_args(args);
        }
        match &args.args[..] {
            [ColumnarValue::Array(values)] => Ok(ColumnarValue::Array(self.lengths(values)?)),
            [ColumnarValue::Scalar(value)] => Ok(ColumnarValue::Scalar(
                ScalarValue::try_from_array(&self.lengths(&value.to_array()?)?, 0)?,
            )),
            _ => Err(DataFusionError::Internal(format!(
                "{} takes one argument",
                self.name
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::util::display::array_value_to_string;
    use datafusion::prelude::SessionContext;

    async fn one(sql: &str) -> String {
        let ctx = SessionContext::new();
        for f in super::functions() {
            ctx.register_udf(f);
        }
        let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        array_value_to_string(batches[0].column(0), 0).unwrap()
    }

    #[tokio::test]
    async fn bytes_are_counted_and_strings_are_measured_as_before() {
        let bytes = "X'00FF10C3'";
        assert_eq!(one(&format!("SELECT length({bytes})")).await, "4");
        assert_eq!(one(&format!("SELECT octet_length({bytes})")).await, "4");
        assert_eq!(one(&format!("SELECT bit_length({bytes})")).await, "32");
        assert_eq!(one("SELECT length(CAST(NULL AS BYTEA))").await, "");
        // Strings keep DataFusion's functions: characters for length, bytes for octets.
        assert_eq!(one("SELECT length('héllo')").await, "5");
        assert_eq!(one("SELECT octet_length('héllo')").await, "6");
        assert_eq!(one("SELECT char_length('héllo')").await, "5");
    }
}
