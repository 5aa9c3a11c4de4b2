package udf

import (
	"unsafe"

	"wasmudf/wasmudf_udf_types"

	witTypes "go.bytecodealliance.org/pkg/wit/types"
)

// Out is the result column being built: Rows() values of the function's declared
// result type, all valid and zero (false, 0, "") until set.
type Out struct {
	typ      Type
	rows     int
	validity []byte // nil until a row is set null
	words    []uint64
	bytes    []byte  // boolean bitmap, or text/bytea data
	offsets  []int32 // text/bytea: rows+1 once done
	next     int     // text/bytea: rows appended so far
}

func newOut(typ Type, rows int) *Out {
	o := &Out{typ: typ, rows: rows}
	switch typ.layout() {
	case layoutBits:
		o.bytes = make([]byte, (rows+7)/8)
	case layoutFixed:
		o.words = make([]uint64, (rows*typ.width()+7)/8)
	case layoutOffset:
		o.offsets = make([]int32, 1, rows+1)
	}
	return o
}

// Rows is the number of values to produce.
func (o *Out) Rows() int { return o.rows }

func outView[T any](o *Out, want Type, what string) []T {
	if !sameValues(o.typ, want) {
		panic(usageError("result of type " + o.typ.name() + " written with " + what))
	}
	return words[T](o)
}

// words is a fixed-width result's values as []T (T of the result's width), unchecked.
func words[T any](o *Out) []T {
	if o.rows == 0 {
		return nil
	}
	return unsafe.Slice((*T)(unsafe.Pointer(unsafe.SliceData(o.words))), o.rows)
}

// Int64s is the result's values (int64, uint64 bits, timestamp), to fill in place.
func (o *Out) Int64s() []int64 { return outView[int64](o, Int64, "Int64s") }

// Uint64s is the same for uint64.
func (o *Out) Uint64s() []uint64 { return outView[uint64](o, Uint64, "Uint64s") }

// Float64s is the same for float64.
func (o *Out) Float64s() []float64 { return outView[float64](o, Float64, "Float64s") }

// Int32s is the same for int32 (and date).
func (o *Out) Int32s() []int32 { return outView[int32](o, Int32, "Int32s") }

// Float32s is the same for float32.
func (o *Out) Float32s() []float32 { return outView[float32](o, Float32, "Float32s") }

// Int16s is the same for int16.
func (o *Out) Int16s() []int16 { return outView[int16](o, Int16, "Int16s") }

// Int8s is the same for int8.
func (o *Out) Int8s() []int8 { return outView[int8](o, Int8, "Int8s") }

// SetBool sets `row` of a boolean result.
func (o *Out) SetBool(row int, v bool) {
	if o.typ.layout() != layoutBits {
		panic(usageError("result of type " + o.typ.name() + " written with SetBool"))
	}
	if v {
		o.bytes[row>>3] |= 1 << (row & 7)
	} else {
		o.bytes[row>>3] &^= 1 << (row & 7)
	}
}

// SetText sets `row` of a text result. Text and bytea rows are appended in order:
// rows skipped are empty, and a row before the last one set cannot be set again.
func (o *Out) SetText(row int, s string) {
	o.appendAt(row, unsafe.Slice(unsafe.StringData(s), len(s)), "SetText")
}

// SetBytes sets `row` of a text or bytea result (text must be UTF-8).
func (o *Out) SetBytes(row int, b []byte) { o.appendAt(row, b, "SetBytes") }

func (o *Out) appendAt(row int, b []byte, what string) {
	if o.typ.layout() != layoutOffset {
		panic(usageError("result of type " + o.typ.name() + " written with " + what))
	}
	if row < o.next || row >= o.rows {
		panic(usageError(what + ": rows must be set in order, each once"))
	}
	o.fill(row)
	o.bytes = append(o.bytes, b...)
	o.offsets = append(o.offsets, int32(len(o.bytes)))
	o.next = row + 1
}

// fill makes rows before `row` that were not set empty.
func (o *Out) fill(row int) {
	end := int32(len(o.bytes))
	for o.next < row {
		o.offsets = append(o.offsets, end)
		o.next++
	}
}

// SetNull makes `row` null.
func (o *Out) SetNull(row int) {
	if o.validity == nil {
		o.validity = make([]byte, (o.rows+7)/8)
		for i := range o.validity {
			o.validity[i] = 0xff
		}
	}
	o.validity[row>>3] &^= 1 << (row & 7)
}

// set writes a per-row function's value (boolean, text, bytea; fixed-width results
// are written through a view).
func set[T Value](o *Out, row int, v T) {
	switch x := any(v).(type) {
	case bool:
		o.SetBool(row, x)
	case string:
		o.SetText(row, x)
	case []byte:
		o.SetBytes(row, x)
	default:
		panic(usageError("unreachable: set of a fixed-width value"))
	}
}

// column is the finished result in the contract's layout.
func (o *Out) column() wasmudf_udf_types.Column {
	c := wasmudf_udf_types.Column{Len: uint32(o.rows), Validity: witTypes.None[[]uint8]()}
	if o.validity != nil {
		c.Validity = witTypes.Some(o.validity)
	}
	switch o.typ.layout() {
	case layoutBits:
		c.Values = wasmudf_udf_types.MakeBufferBytes(o.bytes)
	case layoutOffset:
		o.fill(o.rows)
		c.Offsets = o.offsets
		c.Values = wasmudf_udf_types.MakeBufferBytes(o.bytes)
	default:
		c.Values = wordsBuffer(o.words, o.typ.width(), o.rows)
	}
	return c
}

// wordsBuffer is `rows` values of `width` bytes, held in words, as the buffer
// variant of that width (no copy).
func wordsBuffer(words []uint64, width, rows int) wasmudf_udf_types.Buffer {
	p := unsafe.Pointer(unsafe.SliceData(words))
	if rows == 0 || p == nil {
		p = unsafe.Pointer(&empty)
		rows = 0
	}
	switch width {
	case 1:
		return wasmudf_udf_types.MakeBufferBytes(unsafe.Slice((*uint8)(p), rows))
	case 2:
		return wasmudf_udf_types.MakeBufferU16s(unsafe.Slice((*uint16)(p), rows))
	case 4:
		return wasmudf_udf_types.MakeBufferU32s(unsafe.Slice((*uint32)(p), rows))
	case 16:
		return wasmudf_udf_types.MakeBufferU64s(unsafe.Slice((*uint64)(p), rows*2))
	default:
		return wasmudf_udf_types.MakeBufferU64s(unsafe.Slice((*uint64)(p), rows))
	}
}

var empty uint64
