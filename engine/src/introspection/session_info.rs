//! PostgreSQL's session information functions, which drivers and tools call on connect:
//! `version()`, `current_user`, `session_user`, `current_database()`, `current_schema()`.

use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use crate::store::{CATALOG_NAME, DEFAULT_SCHEMA};

/// A zero-argument function with a fixed text value for the session.
#[derive(Debug, PartialEq, Eq, Hash)]
struct SessionText {
    name: &'static str,
    value: String,
    signature: Signature,
}

impl ScalarUDFImpl for SessionText {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, _args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        Ok(ColumnarValue::Scalar(ScalarValue::Utf8(Some(
            self.value.clone(),
        ))))
    }
}

fn text(name: &'static str, value: String) -> ScalarUDF {
    ScalarUDF::new_from_impl(SessionText {
        name,
        value,
        signature: Signature::nullary(Volatility::Stable),
    })
}

/// The PostgreSQL version clients are told (they parse the leading `PostgreSQL x.y`);
/// the same as the `server_version` the wire layer reports at login.
pub const SERVER_VERSION: &str = "16.6";

/// The functions for a session of `user`.
pub(crate) fn functions(user: &str) -> Vec<Arc<ScalarUDF>> {
    vec![
        Arc::new(text(
            "version",
            format!(
                "PostgreSQL {SERVER_VERSION} (wasmudf {}, Apache DataFusion {})",
                env!("CARGO_PKG_VERSION"),
                datafusion::DATAFUSION_VERSION
            ),
        )),
        Arc::new(text("current_user", user.to_string())),
        Arc::new(text("session_user", user.to_string())),
        Arc::new(text("current_database", CATALOG_NAME.to_string())),
        Arc::new(text("current_schema", DEFAULT_SCHEMA.to_string())),
    ]
}
