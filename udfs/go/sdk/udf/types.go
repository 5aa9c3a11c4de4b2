// Package udf is wasmudf's Go SDK: SQL functions from Go functions, run over whole
// Arrow columns.
//
//	package main
//
//	import "wasmudf/udf"
//
//	func init() {
//		// Per row: argument and result types come from the function's own.
//		udf.Scalar1("add_one", func(x int64) int64 { return x + 1 })
//		// A batch function sees whole columns.
//		udf.Batch("add_one_batch", udf.Int64, []udf.Type{udf.Int64},
//			func(args []udf.Column, out *udf.Out) error {
//				ys := out.Int64s()
//				for i := range ys {
//					ys[i] = args[0].Int64(i) + 1
//				}
//				return nil
//			})
//		// An aggregate: a plain-data state type with Update, Merge and Finish.
//		udf.Aggregate1[float64, float64, mean]("mean")
//	}
//
// `wasmudf build --lang go FILE.go` makes the component. See docs/writing-go-udfs.md.
package udf

import (
	"wasmudf/wasmudf_udf_types"

	witTypes "go.bytecodealliance.org/pkg/wit/types"
)

// Type is a column type: one SQL type, one Arrow type.
type Type struct {
	wire wasmudf_udf_types.DataType
}

// The column types.
var (
	Boolean = Type{wasmudf_udf_types.MakeDataTypeBoolean()}
	Int8    = Type{wasmudf_udf_types.MakeDataTypeInt8()}
	Int16   = Type{wasmudf_udf_types.MakeDataTypeInt16()}
	Int32   = Type{wasmudf_udf_types.MakeDataTypeInt32()}
	Int64   = Type{wasmudf_udf_types.MakeDataTypeInt64()}
	Uint8   = Type{wasmudf_udf_types.MakeDataTypeUint8()}
	Uint16  = Type{wasmudf_udf_types.MakeDataTypeUint16()}
	Uint32  = Type{wasmudf_udf_types.MakeDataTypeUint32()}
	Uint64  = Type{wasmudf_udf_types.MakeDataTypeUint64()}
	Float32 = Type{wasmudf_udf_types.MakeDataTypeFloat32()}
	Float64 = Type{wasmudf_udf_types.MakeDataTypeFloat64()}
	// Text is SQL text (Arrow Utf8).
	Text = Type{wasmudf_udf_types.MakeDataTypeUtf8()}
	// Bytea is SQL bytea (Arrow Binary).
	Bytea = Type{wasmudf_udf_types.MakeDataTypeBinary()}
	// DateType is SQL date: days since 1970-01-01 (Arrow Date32).
	DateType = Type{wasmudf_udf_types.MakeDataTypeDate32()}
	// TimestampMicrosType is SQL timestamp (no zone) in microseconds.
	TimestampMicrosType = Timestamp(wasmudf_udf_types.TimeUnit_Microsecond, "")
	// TimestampNanosType is SQL timestamp (no zone) in nanoseconds.
	TimestampNanosType = Timestamp(wasmudf_udf_types.TimeUnit_Nanosecond, "")
)

// Timestamp is a timestamp type of `unit` (0 seconds … 3 nanoseconds); a zone makes
// it timestamptz (values are UTC instants).
func Timestamp(unit uint8, zone string) Type {
	tz := witTypes.None[string]()
	if zone != "" {
		tz = witTypes.Some(zone)
	}
	return Type{wasmudf_udf_types.MakeDataTypeTimestamp(wasmudf_udf_types.TimestampType{Unit: unit, Timezone: tz})}
}

// Decimal is numeric(precision, scale), values as 128-bit integers (batch API only).
func Decimal(precision uint8, scale int8) Type {
	return Type{wasmudf_udf_types.MakeDataTypeDecimal128(wasmudf_udf_types.DecimalType{Precision: precision, Scale: scale})}
}

// Date is a date argument or result of a per-row function: days since 1970-01-01.
type Date int32

// TimestampMicros is a timestamp argument or result of a per-row function:
// microseconds since 1970-01-01 00:00, no zone.
type TimestampMicros int64

// TimestampNanos is the same in nanoseconds.
type TimestampNanos int64

// Value is what per-row functions and aggregates take and return: each Go type is
// one SQL type (bool boolean, int64 bigint, float64 double precision, string text,
// []byte bytea, Date date, ...).
type Value interface {
	bool | int8 | int16 | int32 | int64 | uint8 | uint16 | uint32 | uint64 |
		float32 | float64 | string | []byte | Date | TimestampMicros | TimestampNanos
}

// typeOf is the column type of Go type T.
func typeOf[T Value]() Type {
	var zero T
	switch any(zero).(type) {
	case bool:
		return Boolean
	case int8:
		return Int8
	case int16:
		return Int16
	case int32:
		return Int32
	case int64:
		return Int64
	case uint8:
		return Uint8
	case uint16:
		return Uint16
	case uint32:
		return Uint32
	case uint64:
		return Uint64
	case float32:
		return Float32
	case float64:
		return Float64
	case string:
		return Text
	case []byte:
		return Bytea
	case Date:
		return DateType
	case TimestampMicros:
		return TimestampMicrosType
	default: // TimestampNanos
		return TimestampNanosType
	}
}

// layout is how a type's values are stored.
type layout uint8

const (
	layoutBits   layout = iota // boolean: a bitmap
	layoutFixed                // fixed-width numbers
	layoutOffset               // text, bytea: offsets + bytes
)

func (t Type) layout() layout {
	switch t.wire.Tag() {
	case wasmudf_udf_types.DataType_Boolean:
		return layoutBits
	case wasmudf_udf_types.DataType_Utf8, wasmudf_udf_types.DataType_Binary:
		return layoutOffset
	default:
		return layoutFixed
	}
}

// width is the bytes per value of a fixed-width type.
func (t Type) width() int {
	switch t.wire.Tag() {
	case wasmudf_udf_types.DataType_Int8, wasmudf_udf_types.DataType_Uint8:
		return 1
	case wasmudf_udf_types.DataType_Int16, wasmudf_udf_types.DataType_Uint16:
		return 2
	case wasmudf_udf_types.DataType_Int32, wasmudf_udf_types.DataType_Uint32,
		wasmudf_udf_types.DataType_Float32, wasmudf_udf_types.DataType_Date32:
		return 4
	case wasmudf_udf_types.DataType_Decimal128:
		return 16
	default:
		return 8
	}
}

// sameValues says whether values of `have` can be read as those of `want`: the same
// width, and both floating point or both integers (int64 and uint64 share a view, as
// do timestamps; a float64 column is never read as int64 bits by mistake).
func sameValues(have, want Type) bool {
	float := func(t Type) bool {
		tag := t.wire.Tag()
		return tag == wasmudf_udf_types.DataType_Float32 || tag == wasmudf_udf_types.DataType_Float64
	}
	return have.layout() == layoutFixed && have.width() == want.width() && float(have) == float(want)
}

// name is the type as the SDK's messages show it.
func (t Type) name() string {
	names := [...]string{"boolean", "int8", "int16", "int32", "int64", "uint8", "uint16",
		"uint32", "uint64", "float32", "float64", "text", "bytea", "date", "timestamp", "decimal"}
	if int(t.wire.Tag()) < len(names) {
		return names[t.wire.Tag()]
	}
	return "unknown"
}
