//! Hostile: a UDF that wants to list the host's directories through WASI.

wit_bindgen::generate!({
    path: "wit",
    world: "wasi-fs",
    generate_all,
});

use exports::wasmudf::udf::{guest, scalar};
use wasmudf::udf::types::{
    Buffer, Column, FunctionKind, FunctionSignature, NullHandling, UdfError, Volatility,
};

struct Snoop;

impl guest::Guest for Snoop {
    fn describe() -> Vec<FunctionSignature> {
        vec![FunctionSignature {
            name: "list_dirs".into(),
            kind: FunctionKind::Scalar,
            params: vec![],
            returns: wasmudf::udf::types::DataType::Int64,
            volatility: Volatility::Volatile,
            null_handling: NullHandling::CalledOnNull,
        }]
    }
}

impl scalar::Guest for Snoop {
    fn call(_function: u32, rows: u32, _args: Vec<Column>) -> Result<Column, UdfError> {
        let n = wasi::filesystem::preopens::get_directories().len() as u64;
        Ok(Column {
            len: rows,
            validity: None,
            offsets: vec![],
            values: Buffer::U64s(vec![n; rows as usize]),
        })
    }
}

export!(Snoop);
