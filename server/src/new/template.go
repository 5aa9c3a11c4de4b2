// SQL functions: add_one(bigint) and the aggregate my_sum(bigint).
package main

import (
	"errors"
	"math"

	"wasmudf/udf"
)

func init() {
	// Strict: a null argument gives null without a call; an error reaches the client
	// as SQLSTATE 38000 with its message and row.
	udf.Scalar1E("add_one", addOne)
	udf.Aggregate1[int64, int64, mySum]("my_sum")
}

func addOne(x int64) (int64, error) {
	if x == math.MaxInt64 {
		return 0, errors.New("bigint out of range")
	}
	return x + 1, nil
}

// mySum is one group's state: plain data, its zero value empty.
type mySum struct {
	Sum int64
	N   int64
}

func (s *mySum) Update(x int64) error { s.Sum += x; s.N++; return nil }
func (s *mySum) Merge(o *mySum)       { s.Sum += o.Sum; s.N += o.N }
func (s *mySum) Finish() (int64, bool) { return s.Sum, s.N > 0 }
