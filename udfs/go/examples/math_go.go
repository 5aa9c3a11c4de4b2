// Numbers and text: the Rust examples' functions, in Go.
package main

import (
	"errors"
	"math"
	"os"
	"strings"
	"time"

	"wasmudf/udf"
)

func init() {
	// Per row: the SQL types are the Go types (int64 is bigint). Strict: a null
	// argument gives null without a call.
	udf.Scalar1("go_add_one", func(x int64) int64 { return x + 1 })
	udf.Scalar2("go_gcd", gcd)
	udf.Scalar2E("go_div", div)
	udf.Scalar2("go_hypot", math.Hypot)
	udf.Scalar1("go_upper", strings.ToUpper)
	udf.Scalar2E("go_checked_add", checkedAdd)
	udf.Scalar1("go_is_even", func(x int64) bool { return x%2 == 0 })
	udf.Scalar1("go_next_day", func(d udf.Date) udf.Date { return d + 1 })
	udf.Scalar1("go_loud", loud)
	udf.Scalar1("go_panic", func(x int64) int64 { return 10 / (x - x) })
	udf.Scalar1E("go_read_file", readFile)
	udf.Scalar1("go_spin", spin)
	udf.Scalar1("go_alloc", alloc)
	// A batch function: whole columns, without a copy.
	udf.Batch("go_add_one_batch", udf.Int64, []udf.Type{udf.Int64}, addOneBatch)
	// Reading a column as the wrong type is an error that says so, not garbage.
	udf.Batch("go_misread", udf.Int64, []udf.Type{udf.Text}, func(args []udf.Column, out *udf.Out) error {
		copy(out.Int64s(), args[0].Int64s())
		return nil
	})
	// Called on null: sees every row and decides.
	udf.BatchOnNull("go_coalesce_zero", udf.Int64, []udf.Type{udf.Int64}, coalesceZero)
	// Aggregates: a plain-data state type per group, its zero value empty.
	udf.Aggregate1[float64, float64, mean]("go_mean")
	udf.Aggregate1[int64, int64, strictSum]("go_strict_sum")
}

func gcd(a, b int64) int64 {
	x, y := abs(a), abs(b)
	for y != 0 {
		x, y = y, x%y
	}
	return int64(x)
}

func abs(v int64) uint64 {
	if v < 0 {
		return -uint64(v)
	}
	return uint64(v)
}

// div is a / b rounded toward zero; an error is SQLSTATE 38000 with its message
// and the row.
func div(a, b int64) (int64, error) {
	if b == 0 {
		return 0, errors.New("division by zero")
	}
	if a == math.MinInt64 && b == -1 {
		return 0, errors.New("bigint out of range")
	}
	return a / b, nil
}

func checkedAdd(a, b int32) (int32, error) {
	s := int64(a) + int64(b)
	if s > math.MaxInt32 || s < math.MinInt32 {
		return 0, errors.New("integer out of range")
	}
	return int32(s), nil
}

// loud prints and reads the clock: inside the sandbox the output is discarded and
// the clock is a counter that only moves forward.
func loud(x int64) int64 {
	a := time.Now()
	println("x =", x)
	if time.Since(a) < 0 {
		return -1
	}
	return x
}

// readFile tries to read a file: the sandbox has none, so it returns Go's error.
func readFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	return string(b), err
}

// spin loops n times (for the fuel limit).
func spin(n int64) int64 {
	var acc int64
	for i := int64(0); i < n; i++ {
		acc += i ^ (acc >> 3)
	}
	if acc == 42 {
		return -n
	}
	return n
}

// alloc allocates and touches n bytes (for the memory limit).
func alloc(n int64) int64 {
	b := make([]byte, n)
	for i := 0; i < len(b); i += 4096 {
		b[i] = 1
	}
	return int64(len(b))
}

func addOneBatch(args []udf.Column, out *udf.Out) error {
	ys := out.Int64s()
	if args[0].Literal() {
		for i := range ys {
			ys[i] = args[0].Int64(0) + 1
		}
		return nil
	}
	xs := args[0].Int64s()[:len(ys)]
	for i, x := range xs {
		ys[i] = x + 1
	}
	return nil
}

func coalesceZero(args []udf.Column, out *udf.Out) error {
	ys := out.Int64s()
	for i := range ys {
		if args[0].Valid(i) {
			ys[i] = args[0].Int64(i)
		}
	}
	return nil
}

type mean struct {
	Total float64
	N     int64
}

func (m *mean) Update(x float64) error { m.Total += x; m.N++; return nil }
func (m *mean) Merge(o *mean)          { m.Total += o.Total; m.N += o.N }
func (m *mean) Finish() (float64, bool) {
	if m.N == 0 {
		return 0, false
	}
	return m.Total / float64(m.N), true
}

// strictSum refuses negative input: the error names the row.
type strictSum struct{ Sum int64 }

func (s *strictSum) Update(x int64) error {
	if x < 0 {
		return errors.New("negative value")
	}
	s.Sum += x
	return nil
}
func (s *strictSum) Retract(x int64) error { s.Sum -= x; return nil }
func (s *strictSum) Merge(o *strictSum)    { s.Sum += o.Sum }
func (s *strictSum) Finish() (int64, bool) { return s.Sum, true }
