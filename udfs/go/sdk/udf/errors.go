package udf

import (
	"errors"
	"fmt"
)

// RowError is an error about one row of the batch: the client sees SQLSTATE 38000
// with the message and the row.
type RowError struct {
	Row     int
	Message string
}

func (e *RowError) Error() string { return e.Message }

// Errorf makes a RowError for `row` with a formatted message.
func Errorf(row int, format string, args ...any) error {
	return &RowError{Row: row, Message: fmt.Sprintf(format, args...)}
}

// usageError is a misuse of the SDK (reading a column as the wrong type, say),
// raised as a panic and reported like a function's error.
type usageError string

func (e usageError) Error() string { return string(e) }

// rowOf is the row an error names, or -1.
func rowOf(err error) int {
	var re *RowError
	if errors.As(err, &re) && re.Row >= 0 {
		return re.Row
	}
	return -1
}

// recovered turns a panic of a function into its error (a Go panic would otherwise
// end the instance, and its message, written to a discarded stderr, would be lost).
func recovered(v any, row int) error {
	msg := fmt.Sprint(v)
	if err, ok := v.(error); ok {
		msg = err.Error()
	}
	if _, ok := v.(usageError); !ok {
		msg = "panic: " + msg
	}
	return &RowError{Row: row, Message: msg}
}
