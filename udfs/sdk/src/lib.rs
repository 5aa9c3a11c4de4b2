//! # wasmudf — write SQL functions in Rust, run them in wasmudf
//!
//! ```ignore
//! #[wasmudf::scalar]
//! fn gcd(a: i64, b: i64) -> i64 { /* ... */ }
//!
//! #[wasmudf::scalar]
//! fn initials(name: Option<&str>) -> Option<String> { /* ... */ }
//!
//! wasmudf::export!(gcd, initials);
//! ```
//!
//! Build with `cargo build --release --target wasm32-unknown-unknown` and wrap the
//! `.wasm` into a component (`wasm-tools component new`, or put the crate under
//! `udfs/examples/` and run `cargo build -p wasmudf-udfs`).
//!
//! - Arguments: `bool`, `i8`..`i64`, `u8`..`u64`, `f32`, `f64`, `&str`, `&[u8]`,
//!   [`Date32`], [`TimestampMicros`], [`TimestampNanos`], [`TimestampTzMicros`],
//!   [`TimestampTzNanos`], [`Decimal`]. Wrap in `Option` to see nulls: a function whose
//!   arguments are all non-`Option` is *strict* (null in, null out, never called).
//! - Results: the same types with `String` and `Vec<u8>` for text and bytes, optionally
//!   in `Option` (null) and/or `Result<_, E: Display>` (an error fails the query with
//!   your message and the row).
//! - Whole-batch functions: [`batch`] with [`Column::reader`] and [`Output`].
//! - Aggregates: a per-group state struct with [`aggregate`] and [`Aggregate`]; the SDK
//!   runs it over every group of a batch in one call. [`GroupsAggregate`] is the
//!   batch-level interface underneath, for full control.
mod aggregate;
mod column;
mod types;

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../engine/wit",
        world: "udfs",
        pub_export_macro: true,
        export_macro_name: "__export_wasmudf_world",
        default_bindings_module: "wasmudf::bindings",
    });
}

#[doc(hidden)]
pub use aggregate::{aggregate_info, state_column, Groups};
pub use aggregate::{
    Aggregate, AggregateArg, AggregateArgs, AggregateFunction, AggregateState, Emit, Emitted,
    GroupsAggregate, PerGroup, StateValue,
};
pub use column::{Output, OutputBuilder, Reader};
pub use types::{
    ArgType, Date32, Decimal, IntoOutput, ReturnType, SqlType, TimestampMicros, TimestampNanos,
    TimestampTzMicros, TimestampTzNanos,
};
pub use wasmudf_macros::{aggregate, batch, scalar};

/// A column as it arrives from the host (Arrow layout).
pub type Column = bindings::wasmudf::udf::types::Column;
/// A column type.
pub type DataType = bindings::wasmudf::udf::types::DataType;
/// Volatility of a function.
pub type Volatility = bindings::wasmudf::udf::types::Volatility;
/// Null handling of a function.
pub type NullHandling = bindings::wasmudf::udf::types::NullHandling;
/// An error that fails the query, with the guest's message.
pub type UdfError = bindings::wasmudf::udf::types::UdfError;
#[doc(hidden)]
pub use bindings::wasmudf::udf::types::{
    Buffer, DecimalType, FunctionKind, FunctionSignature, TimeUnit, TimestampType,
};

/// Makes a [`UdfError`] with a message and no row.
pub fn error(message: impl Into<String>) -> UdfError {
    UdfError {
        message: message.into(),
        row: None,
    }
}

/// One exported scalar function: what `#[scalar]` and `#[batch]` generate.
#[doc(hidden)]
pub struct ScalarFunction {
    pub name: &'static str,
    pub params: fn() -> Vec<DataType>,
    pub returns: fn() -> DataType,
    pub volatility: Volatility,
    pub null_handling: NullHandling,
    pub call: fn(usize, &[Column]) -> Result<Column, UdfError>,
}

/// One exported function of either kind, as listed by [`export!`]: the macros make
/// these as `<name>::FUNCTION`; a [`GroupsAggregate`] is exported by writing one:
///
/// ```ignore
/// mod my_sum {
///     use super::*;
///     pub const FUNCTION: Function = Function::Aggregate(AggregateFunction {
///         name: "my_sum",
///         params: || vec![i64::data_type()],
///         returns: i64::data_type,
///         state: || vec![i64::data_type()],
///         strict: || true,
///         retract: false,
///         volatility: Volatility::Immutable,
///         new: || Box::new(MySum::default()),
///     });
/// }
/// wasmudf::export!(my_sum);
/// ```
pub enum Function {
    /// A scalar function (`#[scalar]`, `#[batch]`).
    Scalar(ScalarFunction),
    /// An aggregate (`#[aggregate]`, or a [`GroupsAggregate`]).
    Aggregate(AggregateFunction),
}

#[doc(hidden)]
pub fn describe(functions: &[&Function]) -> Vec<FunctionSignature> {
    functions
        .iter()
        .map(|f| match f {
            Function::Scalar(f) => FunctionSignature {
                name: f.name.into(),
                kind: FunctionKind::Scalar,
                params: (f.params)(),
                returns: (f.returns)(),
                volatility: f.volatility,
                null_handling: f.null_handling,
            },
            Function::Aggregate(f) => FunctionSignature {
                name: f.name.into(),
                kind: FunctionKind::Aggregate,
                params: (f.params)(),
                returns: (f.returns)(),
                volatility: f.volatility,
                null_handling: if (f.strict)() {
                    NullHandling::Strict
                } else {
                    NullHandling::CalledOnNull
                },
            },
        })
        .collect()
}

#[doc(hidden)]
pub fn dispatch(
    functions: &[&Function],
    function: u32,
    rows: u32,
    args: Vec<Column>,
) -> Result<Column, UdfError> {
    match functions.get(function as usize) {
        // Each generated `call` checks its own arity.
        Some(Function::Scalar(f)) => (f.call)(rows as usize, &args),
        _ => Err(error(format!("no scalar function number {function}"))),
    }
}

#[doc(hidden)]
pub use bindings::exports::wasmudf::udf::aggregate::{AggregateInfo, EmitTo};

/// Exports the listed functions (each marked `#[scalar]`, `#[batch]` or, on a state
/// struct, `#[aggregate]`) as this component's UDFs. Use once per crate.
///
/// `export!(describe = rewrite; f, g)` passes the description through `rewrite`
/// (a `fn(Vec<FunctionSignature>) -> Vec<FunctionSignature>`) first: for the host's
/// tests, which need components that describe themselves in ways no honest one does.
#[macro_export]
macro_rules! export {
    (describe = $rewrite:path; $($f:ident),+ $(,)?) => {
        $crate::export!(@component $rewrite; $($f),+);
    };
    ($($f:ident),+ $(,)?) => {
        $crate::export!(@component ::core::convert::identity; $($f),+);
    };
    (@component $rewrite:path; $($f:ident),+) => {
        #[doc(hidden)]
        struct __WasmudfComponent;

        #[doc(hidden)]
        const __WASMUDF_FUNCTIONS: &[&$crate::Function] = &[$(&$f::FUNCTION),+];

        impl $crate::bindings::exports::wasmudf::udf::guest::Guest for __WasmudfComponent {
            fn describe() -> ::std::vec::Vec<$crate::FunctionSignature> {
                $rewrite($crate::describe(__WASMUDF_FUNCTIONS))
            }
        }

        impl $crate::bindings::exports::wasmudf::udf::scalar::Guest for __WasmudfComponent {
            fn call(
                function: u32,
                rows: u32,
                args: ::std::vec::Vec<$crate::Column>,
            ) -> ::core::result::Result<$crate::Column, $crate::UdfError> {
                $crate::dispatch(__WASMUDF_FUNCTIONS, function, rows, args)
            }
        }

        #[doc(hidden)]
        struct __WasmudfGroups($crate::Groups);

        impl $crate::bindings::exports::wasmudf::udf::aggregate::Guest for __WasmudfComponent {
            type Groups = __WasmudfGroups;
            fn info(
                function: u32,
            ) -> ::core::result::Result<$crate::AggregateInfo, $crate::UdfError> {
                $crate::aggregate_info(__WASMUDF_FUNCTIONS, function)
            }
        }

        impl $crate::bindings::exports::wasmudf::udf::aggregate::GuestGroups for __WasmudfGroups {
            fn new(function: u32) -> Self {
                __WasmudfGroups($crate::Groups::new(__WASMUDF_FUNCTIONS, function))
            }
            fn update(
                &self,
                args: ::std::vec::Vec<$crate::Column>,
                group_indices: ::std::vec::Vec<u32>,
                total_groups: u32,
            ) -> ::core::result::Result<(), $crate::UdfError> {
                self.0.update(args, group_indices, total_groups)
            }
            fn retract(
                &self,
                args: ::std::vec::Vec<$crate::Column>,
                group_indices: ::std::vec::Vec<u32>,
                total_groups: u32,
            ) -> ::core::result::Result<(), $crate::UdfError> {
                self.0.retract(args, group_indices, total_groups)
            }
            fn merge(
                &self,
                states: ::std::vec::Vec<$crate::Column>,
                group_indices: ::std::vec::Vec<u32>,
                total_groups: u32,
            ) -> ::core::result::Result<(), $crate::UdfError> {
                self.0.merge(states, group_indices, total_groups)
            }
            fn state(
                &self,
                emit: $crate::EmitTo,
            ) -> ::core::result::Result<::std::vec::Vec<$crate::Column>, $crate::UdfError> {
                self.0.state(emit)
            }
            fn evaluate(
                &self,
                emit: $crate::EmitTo,
            ) -> ::core::result::Result<$crate::Column, $crate::UdfError> {
                self.0.evaluate(emit)
            }
        }

        $crate::bindings::__export_wasmudf_world!(__WasmudfComponent with_types_in $crate::bindings);
    };
}
