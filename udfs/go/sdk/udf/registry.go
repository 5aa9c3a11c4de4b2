package udf

import (
	"wasmudf/wasmudf_udf_types"

	witTypes "go.bytecodealliance.org/pkg/wit/types"
)

// function is one registered function, in `describe` order.
type function struct {
	name       string
	params     []Type
	returns    Type
	volatility uint8
	strict     bool
	scalar     func(args []Column, out *Out) error
	aggregate  aggregateDef // or nil
}

var functions []*function

// Option changes how a function is declared.
type Option func(*function)

// Stable declares the function stable: the same output within one query.
func Stable() Option { return func(f *function) { f.volatility = wasmudf_udf_types.Volatility_Stable } }

// Volatile declares the function volatile: it may differ on every call.
func Volatile() Option {
	return func(f *function) { f.volatility = wasmudf_udf_types.Volatility_Volatile }
}

func register(f *function, opts []Option) {
	f.volatility = wasmudf_udf_types.Volatility_Immutable
	for _, o := range opts {
		o(f)
	}
	functions = append(functions, f)
}

// Describe is the contract's `describe`: every registered function.
func Describe() []wasmudf_udf_types.FunctionSignature {
	out := make([]wasmudf_udf_types.FunctionSignature, len(functions))
	for i, f := range functions {
		params := make([]wasmudf_udf_types.DataType, len(f.params))
		for j, p := range f.params {
			params[j] = p.wire
		}
		kind := wasmudf_udf_types.FunctionKind_Scalar
		if f.aggregate != nil {
			kind = wasmudf_udf_types.FunctionKind_Aggregate
		}
		nulls := wasmudf_udf_types.NullHandling_Strict
		if !f.strict {
			nulls = wasmudf_udf_types.NullHandling_CalledOnNull
		}
		out[i] = wasmudf_udf_types.FunctionSignature{
			Name: f.name, Kind: kind, Params: params, Returns: f.returns.wire,
			Volatility: f.volatility, NullHandling: nulls,
		}
	}
	return out
}

type result = witTypes.Result[wasmudf_udf_types.Column, wasmudf_udf_types.UdfError]

func failure(err error) wasmudf_udf_types.UdfError {
	row := witTypes.None[uint32]()
	if r := rowOf(err); r >= 0 {
		row = witTypes.Some(uint32(r))
	}
	return wasmudf_udf_types.UdfError{Message: err.Error(), Row: row}
}

func lookup(index uint32, aggregate bool) (*function, error) {
	if int(index) >= len(functions) || (functions[index].aggregate != nil) != aggregate {
		return nil, usageError("no such function")
	}
	return functions[index], nil
}

func columns(f *function, rows int, args []wasmudf_udf_types.Column) ([]Column, error) {
	if len(args) != len(f.params) {
		return nil, usageError("wrong number of arguments")
	}
	cols := make([]Column, len(args))
	for i, a := range args {
		if a.Len != uint32(rows) && a.Len != 1 {
			return nil, usageError("argument length differs from the batch")
		}
		cols[i] = newColumn(a, f.params[i], rows)
	}
	return cols, nil
}

// Call is the contract's scalar `call`.
func Call(index, rows uint32, args []wasmudf_udf_types.Column) (r result) {
	f, err := lookup(index, false)
	if err != nil {
		return witTypes.Err[wasmudf_udf_types.Column](failure(err))
	}
	cols, err := columns(f, int(rows), args)
	if err != nil {
		return witTypes.Err[wasmudf_udf_types.Column](failure(err))
	}
	out := newOut(f.returns, int(rows))
	defer func() {
		if v := recover(); v != nil {
			r = witTypes.Err[wasmudf_udf_types.Column](failure(recovered(v, -1)))
		}
	}()
	if err := f.scalar(cols, out); err != nil {
		return witTypes.Err[wasmudf_udf_types.Column](failure(err))
	}
	return witTypes.Ok[wasmudf_udf_types.Column, wasmudf_udf_types.UdfError](out.column())
}
