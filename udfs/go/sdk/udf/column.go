package udf

import (
	"unsafe"

	"wasmudf/wasmudf_udf_types"
)

// Column is one argument of a call: `Rows()` values, or one value for a literal
// argument (`f(x, 12)`), which every accessor repeats for every row. It is valid for
// the call only in the sense that the host's batch is; the Go values it gives (strings,
// slices) stay valid for as long as they are kept.
type Column struct {
	typ      Type
	rows     int
	literal  bool
	validity []byte // nil: every value valid
	offsets  []int32
	bytes    []byte
	u16      []uint16
	u32      []uint32
	u64      []uint64
	// The views the per-row accessors read, made once per batch (nil when the
	// column is not of that type, or has no values).
	i64 []int64
	f64 []float64
	i32 []int32
}

func newColumn(c wasmudf_udf_types.Column, typ Type, rows int) Column {
	col := Column{typ: typ, rows: rows, literal: c.Len == 1 && rows != 1, offsets: c.Offsets}
	if c.Validity.IsSome() {
		col.validity = c.Validity.Some()
	}
	switch c.Values.Tag() {
	case wasmudf_udf_types.Buffer_Bytes:
		col.bytes = c.Values.Bytes()
	case wasmudf_udf_types.Buffer_U16s:
		col.u16 = c.Values.U16s()
	case wasmudf_udf_types.Buffer_U32s:
		col.u32 = c.Values.U32s()
	case wasmudf_udf_types.Buffer_U64s:
		col.u64 = c.Values.U64s()
	}
	switch {
	case sameValues(typ, Int64):
		col.i64 = view[int64](&col)
	case sameValues(typ, Float64):
		col.f64 = view[float64](&col)
	case sameValues(typ, Int32):
		col.i32 = view[int32](&col)
	}
	return col
}

// Rows is the number of rows of the call.
func (c *Column) Rows() int { return c.rows }

// Literal says whether the argument is one value for every row.
func (c *Column) Literal() bool { return c.literal }

func (c *Column) at(row int) int {
	if c.literal {
		return 0
	}
	return row
}

// Valid says whether the value of `row` is not null.
func (c *Column) Valid(row int) bool {
	if c.validity == nil {
		return true
	}
	r := c.at(row)
	return c.validity[r>>3]>>(r&7)&1 == 1
}

// HasNulls says whether any value may be null (false: Valid is true for every row).
func (c *Column) HasNulls() bool { return c.validity != nil }

// view is the values of a fixed-width column as a slice of T (of one value for a
// literal), without a copy; T must have the column's width.
func view[T any](c *Column) []T {
	var p unsafe.Pointer
	var n int
	switch {
	case c.u64 != nil:
		p, n = unsafe.Pointer(unsafe.SliceData(c.u64)), len(c.u64)*8
	case c.u32 != nil:
		p, n = unsafe.Pointer(unsafe.SliceData(c.u32)), len(c.u32)*4
	case c.u16 != nil:
		p, n = unsafe.Pointer(unsafe.SliceData(c.u16)), len(c.u16)*2
	case c.bytes != nil:
		p, n = unsafe.Pointer(unsafe.SliceData(c.bytes)), len(c.bytes)
	}
	var zero T
	w := int(unsafe.Sizeof(zero))
	if p == nil || n < w {
		return nil
	}
	return unsafe.Slice((*T)(p), n/w)
}

func (c *Column) fixed(want Type, what string) {
	if !sameValues(c.typ, want) {
		panic(usageError("column of type " + c.typ.name() + " read with " + what))
	}
}

// Int64s is the values of an int64 (or uint64, timestamp) column, without a copy:
// Rows() values, or one for a literal. Null rows hold an unspecified value.
func (c *Column) Int64s() []int64 {
	if c.i64 == nil {
		c.fixed(Int64, "Int64s")
	}
	return c.i64
}

// Uint64s is the same for uint64.
func (c *Column) Uint64s() []uint64 { c.fixed(Uint64, "Uint64s"); return view[uint64](c) }

// Float64s is the same for float64.
func (c *Column) Float64s() []float64 {
	if c.f64 == nil {
		c.fixed(Float64, "Float64s")
	}
	return c.f64
}

// Int32s is the same for int32 (and date).
func (c *Column) Int32s() []int32 {
	if c.i32 == nil {
		c.fixed(Int32, "Int32s")
	}
	return c.i32
}

// Float32s is the same for float32.
func (c *Column) Float32s() []float32 { c.fixed(Float32, "Float32s"); return view[float32](c) }

// Int16s is the same for int16.
func (c *Column) Int16s() []int16 { c.fixed(Int16, "Int16s"); return view[int16](c) }

// Int8s is the same for int8.
func (c *Column) Int8s() []int8 { c.fixed(Int8, "Int8s"); return view[int8](c) }

// Int64 is the value of `row` (int64, uint64 as its bits, timestamp).
func (c *Column) Int64(row int) int64 { return c.Int64s()[c.at(row)] }

// Float64 is the value of `row`.
func (c *Column) Float64(row int) float64 { return c.Float64s()[c.at(row)] }

// Int32 is the value of `row` (int32, date).
func (c *Column) Int32(row int) int32 { return c.Int32s()[c.at(row)] }

// Bool is the value of `row` of a boolean column.
func (c *Column) Bool(row int) bool {
	if c.typ.layout() != layoutBits {
		panic(usageError("column of type " + c.typ.name() + " read with Bool"))
	}
	r := c.at(row)
	return c.bytes[r>>3]>>(r&7)&1 == 1
}

// Text is the value of `row` of a text column (no copy: it shares the batch's bytes).
func (c *Column) Text(row int) string {
	b := c.Bytes(row)
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// Bytes is the value of `row` of a text or bytea column, without a copy.
func (c *Column) Bytes(row int) []byte {
	if c.typ.layout() != layoutOffset {
		panic(usageError("column of type " + c.typ.name() + " read with Text or Bytes"))
	}
	r := c.at(row)
	start, end := c.offsets[r], c.offsets[r+1]
	if start < 0 || end < start || int(end) > len(c.bytes) {
		panic(usageError("malformed offsets"))
	}
	return c.bytes[start:end:end]
}
