//! Host-side Rust mirrors of the WIT types in `wit/udf.wit`.
//!
//! Written by hand because the hot call needs *borrowed* argument types (`&[u8]`
//! straight out of Arrow buffers): `bindgen!`'s default owned types add a host-side
//! copy of every buffer (1.24–1.49× the time of an 8192-row i64 call, `benches/bindings.rs`).
//! `bindgen!` with `ownership: Borrowing` generates the same borrowed shape and measured
//! the same (0.97–1.01× for i64; text calls are guest-bound, within noise). This mirror
//! stays because it is not tied to a world: the engine looks each interface up by export
//! index, so a scalar-only component (no `aggregate`) and a later contract version reuse
//! these types, where generated bindings need one world per combination of exports and
//! one set of types per package version. wasmtime type-checks these against the
//! component's real export types when the typed function is looked up, so a mismatch is
//! a load-time error, never silent corruption.

// Enum variants below are constructed by `Lift` from guest values, which the dead-code
// lint cannot see.
#![allow(dead_code)]

use wasmtime::component::{ComponentType, Lift, Lower};

/// WIT `time-unit`.
#[derive(ComponentType, Lift, Lower, Clone, Copy, Debug, PartialEq, Eq)]
#[component(enum)]
#[repr(u8)]
pub(crate) enum TimeUnit {
    #[component(name = "second")]
    Second,
    #[component(name = "millisecond")]
    Millisecond,
    #[component(name = "microsecond")]
    Microsecond,
    #[component(name = "nanosecond")]
    Nanosecond,
}

/// WIT `timestamp-type`.
#[derive(ComponentType, Lift, Lower, Clone, Debug, PartialEq, Eq)]
#[component(record)]
pub(crate) struct TimestampType {
    pub unit: TimeUnit,
    pub timezone: Option<String>,
}

/// WIT `decimal-type`.
#[derive(ComponentType, Lift, Lower, Clone, Copy, Debug, PartialEq, Eq)]
#[component(record)]
pub(crate) struct DecimalType {
    pub precision: u8,
    pub scale: i8,
}

/// WIT `data-type`.
#[derive(ComponentType, Lift, Lower, Clone, Debug, PartialEq, Eq)]
#[component(variant)]
pub(crate) enum WitType {
    #[component(name = "boolean")]
    Boolean,
    #[component(name = "int8")]
    Int8,
    #[component(name = "int16")]
    Int16,
    #[component(name = "int32")]
    Int32,
    #[component(name = "int64")]
    Int64,
    #[component(name = "uint8")]
    Uint8,
    #[component(name = "uint16")]
    Uint16,
    #[component(name = "uint32")]
    Uint32,
    #[component(name = "uint64")]
    Uint64,
    #[component(name = "float32")]
    Float32,
    #[component(name = "float64")]
    Float64,
    #[component(name = "utf8")]
    Utf8,
    #[component(name = "binary")]
    Binary,
    #[component(name = "date32")]
    Date32,
    #[component(name = "timestamp")]
    Timestamp(TimestampType),
    #[component(name = "decimal128")]
    Decimal128(DecimalType),
}

/// WIT `volatility`.
#[derive(ComponentType, Lift, Lower, Clone, Copy, Debug, PartialEq, Eq)]
#[component(enum)]
#[repr(u8)]
pub(crate) enum WitVolatility {
    #[component(name = "immutable")]
    Immutable,
    #[component(name = "stable")]
    Stable,
    #[component(name = "volatile")]
    Volatile,
}

/// WIT `null-handling`.
#[derive(ComponentType, Lift, Lower, Clone, Copy, Debug, PartialEq, Eq)]
#[component(enum)]
#[repr(u8)]
pub(crate) enum WitNullHandling {
    #[component(name = "strict")]
    Strict,
    #[component(name = "called-on-null")]
    CalledOnNull,
}

/// WIT `function-kind`.
#[derive(ComponentType, Lift, Lower, Clone, Copy, Debug, PartialEq, Eq)]
#[component(enum)]
#[repr(u8)]
pub(crate) enum WitKind {
    #[component(name = "scalar")]
    Scalar,
    #[component(name = "aggregate")]
    Aggregate,
}

/// WIT `function-signature`.
#[derive(ComponentType, Lift, Lower, Clone, Debug)]
#[component(record)]
pub(crate) struct WitSignature {
    pub name: String,
    pub kind: WitKind,
    pub params: Vec<WitType>,
    pub returns: WitType,
    pub volatility: WitVolatility,
    #[component(name = "null-handling")]
    pub null_handling: WitNullHandling,
}

impl WitSignature {
    /// Bytes this signature takes as the host holds it (name, types, zone names),
    /// counted against the engine's `max_description_size`.
    pub(crate) fn size_hint(&self) -> usize {
        let ty = |t: &WitType| {
            size_of::<WitType>()
                + match t {
                    WitType::Timestamp(TimestampType {
                        timezone: Some(z), ..
                    }) => z.len(),
                    _ => 0,
                }
        };
        size_of::<Self>()
            + self.name.len()
            + self.params.iter().map(ty).sum::<usize>()
            + ty(&self.returns)
    }
}

/// WIT `buffer`, borrowed from Arrow memory for an argument.
#[derive(ComponentType, Lower, Clone, Copy, Debug)]
#[component(variant)]
pub(crate) enum BufferRef<'a> {
    #[component(name = "bytes")]
    Bytes(&'a [u8]),
    #[component(name = "u16s")]
    U16s(&'a [u16]),
    #[component(name = "u32s")]
    U32s(&'a [u32]),
    #[component(name = "u64s")]
    U64s(&'a [u64]),
}

/// WIT `column`, borrowed from Arrow memory for an argument.
#[derive(ComponentType, Lower, Clone, Copy, Debug)]
#[component(record)]
pub(crate) struct ColumnRef<'a> {
    pub len: u32,
    pub validity: Option<&'a [u8]>,
    pub offsets: &'a [i32],
    pub values: BufferRef<'a>,
}

/// WIT `buffer`, owned, as returned by the guest.
#[derive(ComponentType, Lift, Debug)]
#[component(variant)]
pub(crate) enum BufferOut {
    #[component(name = "bytes")]
    Bytes(Vec<u8>),
    #[component(name = "u16s")]
    U16s(Vec<u16>),
    #[component(name = "u32s")]
    U32s(Vec<u32>),
    #[component(name = "u64s")]
    U64s(Vec<u64>),
}

/// WIT `column`, owned, as returned by the guest.
#[derive(ComponentType, Lift, Debug)]
#[component(record)]
pub(crate) struct ColumnOut {
    pub len: u32,
    pub validity: Option<Vec<u8>>,
    pub offsets: Vec<i32>,
    pub values: BufferOut,
}

/// WIT `udf-error`.
#[derive(ComponentType, Lift, Debug)]
#[component(record)]
pub(crate) struct GuestError {
    pub message: String,
    pub row: Option<u32>,
}

/// WIT `aggregate-info`.
#[derive(ComponentType, Lift, Debug)]
#[component(record)]
pub(crate) struct AggregateInfo {
    pub state: Vec<WitType>,
    pub retract: bool,
}

/// WIT `emit-to`.
#[derive(ComponentType, Lower, Clone, Copy, Debug, PartialEq, Eq)]
#[component(variant)]
pub(crate) enum EmitTo {
    #[component(name = "all")]
    All,
    #[component(name = "first")]
    First(u32),
    #[component(name = "peek-all")]
    PeekAll,
}

/// Fully qualified export names of the 0.1.0 contract.
pub(crate) const GUEST_INTERFACE: &str = "wasmudf:udf/guest@0.1.0";
pub(crate) const SCALAR_INTERFACE: &str = "wasmudf:udf/scalar@0.1.0";
pub(crate) const AGGREGATE_INTERFACE: &str = "wasmudf:udf/aggregate@0.1.0";
/// The contract's type-only interface, which components import (any 0.x version).
pub(crate) const TYPES_INTERFACE_PREFIX: &str = "wasmudf:udf/types@";
