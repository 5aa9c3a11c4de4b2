//! `length(bytea)`, `octet_length(bytea)` and `bit_length(bytea)`, as PostgreSQL has
//! them: DataFusion's functions of those names take only strings (and refuse a `bytea`
//! with "requires String"), so each is wrapped: a binary argument is measured in
//! bytes, every other argument goes to DataFusion's own function unchanged.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int32Array};
use datafusion::arrow::datatypes::DataType;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature,
};

/// The wrapped functions, for the template every session is cloned from.
pub(crate) fn functions() -> Vec<ScalarUDF> {
    use datafusion::functions::{string, unicode};
    [
        ("length", unicode::character_length(), 1),
        ("octet_length", string::octet_length(), 1),
        ("bit_length", string::bit_length(), 8),
    ]
    .into_iter()
    .map(|(name, text, bits_per_byte)| {
        ScalarUDF::new_from_impl(ByteLength::new(name, text, bits_per_byte))
    })
    .collect()
}

/// One of the functions: bytes (times `bits_per_byte`) of a binary argument, or
/// DataFusion's `text` function of the same name for a string.
#[derive(Debug, PartialEq, Eq, Hash)]
struct ByteLength {
    name: &'static str,
    text: Arc<ScalarUDF>,
    bits_per_byte: i32,
    signature: Signature,
}

impl ByteLength {
    fn new(name: &'static str, text: Arc<ScalarUDF>, bits_per_byte: i32) -> Self {
        let binary = [
            DataType::Binary,
            DataType::LargeBinary,
            DataType::BinaryView,
        ];
        let mut variants: Vec<TypeSignature> = binary
            .into_iter()
            .map(|t| TypeSignature::Exact(vec![t]))
            .collect();
        variants.push(text.signature().type_signature.clone());
        let signature = Signature::one_of(variants, text.signature().volatility);
        ByteLength {
            name,
            text,
            bits_per_byte,
            signature,
        }
    }
}

fn is_binary(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView
    )
}

/// The byte length of each value, NULL for NULL (PostgreSQL's `int4`).
fn byte_lengths(values: &ArrayRef, bits_per_byte: i32) -> DfResult<Int32Array> {
    let too_long = || DataFusionError::Execution("bytea value too long for int4".into());
    let length = |n: usize| -> DfResult<i32> {
        i32::try_from(n)
            .ok()
            .and_then(|n| n.checked_mul(bits_per_byte))
            .ok_or_else(too_long)
    };
    let lengths: DfResult<Vec<Option<i32>>> = match values.data_type() {
        DataType::Binary => values
            .as_binary::<i32>()
            .iter()
            .map(|v| v.map(|b| length(b.len())).transpose())
            .collect(),
        DataType::LargeBinary => values
            .as_binary::<i64>()
            .iter()
            .map(|v| v.map(|b| length(b.len())).transpose())
            .collect(),
        DataType::BinaryView => values
            .as_binary_view()
            .iter()
            .map(|v| v.map(|b| length(b.len())).transpose())
            .collect(),
        other => {
            return Err(DataFusionError::Internal(format!(
                "byte length of a {other} value"
            )))
        }
    };
    Ok(Int32Array::from(lengths?))
}

impl ScalarUDFImpl for ByteLength {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> DfResult<DataType> {
        match args {
            [t] if is_binary(t) => Ok(DataType::Int32),
            _ => self.text.inner().return_type(args),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let binary = args.arg_fields.first().map(|f| is_binary(f.data_type()));
        if binary != Some(true) {
            return self.text.inner().invoke_with_args(args);
        }
        match &args.args[..] {
            [ColumnarValue::Array(values)] => Ok(ColumnarValue::Array(Arc::new(byte_lengths(
                values,
                self.bits_per_byte,
            )?))),
            [ColumnarValue::Scalar(value)] => {
                let lengths = byte_lengths(&value.to_array()?, self.bits_per_byte)?;
                Ok(ColumnarValue::Scalar(
                    datafusion::common::ScalarValue::try_from_array(&lengths, 0)?,
                ))
            }
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
