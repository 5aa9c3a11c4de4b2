package udf

import (
	"fmt"
	"reflect"
	"unsafe"

	"wasmudf/wasmudf_udf_aggregate"
	"wasmudf/wasmudf_udf_types"

	witTypes "go.bytecodealliance.org/pkg/wit/types"
)

// An aggregate's state is a plain-data Go type S (numbers, booleans, arrays and
// structs of them: no pointers, strings or slices), because states travel between
// instances as bytes. Its zero value is the empty state. *S has the methods
//
//	Update(a A) error      // add one input row (a strict aggregate never sees nulls)
//	Merge(other *S)        // add another state
//	Finish() (R, bool)     // the result; false for null
//
// and, optionally, `Retract(a A) error` (remove a row added before), which lets the
// aggregate run over sliding window frames.

// Aggregate1 registers a strict aggregate of one argument with state type S:
// `udf.Aggregate1[float64, float64, meanState]("mean")`.
func Aggregate1[A, R Value, S any, P interface {
	*S
	Update(A) error
	Merge(*S)
	Finish() (R, bool)
}](name string, opts ...Option) {
	def := &aggregateOf[S, arg[A]]{
		read:   func(cols []Column) arg[A] { return newArg[A](&cols[0]) },
		update: func(s *S, x *arg[A], row int) error { return P(s).Update(x.get(row)) },
		merge:  func(s, o *S) { P(s).Merge(o) },
		finish: func(s *S, out *Out, row int) { r, ok := P(s).Finish(); emit(out, row, r, ok) },
	}
	type retracts interface{ Retract(A) error }
	if _, ok := any(P(nil)).(retracts); ok {
		def.retract = func(s *S, x *arg[A], row int) error {
			return any(P(s)).(retracts).Retract(x.get(row))
		}
	}
	register(&function{name: name, params: []Type{typeOf[A]()}, returns: typeOf[R](),
		strict: true, aggregate: def}, opts)
}

type args2[A, B Value] struct {
	a arg[A]
	b arg[B]
}

// Aggregate2 registers a strict aggregate of two arguments; *S has
// `Update(A, B) error`, `Merge(*S)`, `Finish() (R, bool)` and optionally
// `Retract(A, B) error`.
func Aggregate2[A, B, R Value, S any, P interface {
	*S
	Update(A, B) error
	Merge(*S)
	Finish() (R, bool)
}](name string, opts ...Option) {
	def := &aggregateOf[S, args2[A, B]]{
		read: func(cols []Column) args2[A, B] {
			return args2[A, B]{newArg[A](&cols[0]), newArg[B](&cols[1])}
		},
		update: func(s *S, x *args2[A, B], row int) error {
			return P(s).Update(x.a.get(row), x.b.get(row))
		},
		merge:  func(s, o *S) { P(s).Merge(o) },
		finish: func(s *S, out *Out, row int) { r, ok := P(s).Finish(); emit(out, row, r, ok) },
	}
	type retracts interface{ Retract(A, B) error }
	if _, ok := any(P(nil)).(retracts); ok {
		def.retract = func(s *S, x *args2[A, B], row int) error {
			return any(P(s)).(retracts).Retract(x.a.get(row), x.b.get(row))
		}
	}
	register(&function{name: name, params: []Type{typeOf[A](), typeOf[B]()}, returns: typeOf[R](),
		strict: true, aggregate: def}, opts)
}

func emit[R Value](out *Out, row int, r R, ok bool) {
	if !ok {
		out.SetNull(row)
		return
	}
	put(out, resultView[R](out), row, r)
}

// aggregateDef is an aggregate function: what `info` says, and its groups.
type aggregateDef interface {
	info() (retract bool, err error)
	newGroups(f *function) Groups
}

// Groups is the states of every group of one aggregate in one instance (the
// contract's `groups` resource).
type Groups interface {
	Update(args []wasmudf_udf_types.Column, groups []uint32, total uint32) error
	Retract(args []wasmudf_udf_types.Column, groups []uint32, total uint32) error
	Merge(states []wasmudf_udf_types.Column, groups []uint32, total uint32) error
	State(emit wasmudf_udf_aggregate.EmitTo) ([]wasmudf_udf_types.Column, error)
	Evaluate(emit wasmudf_udf_aggregate.EmitTo) (wasmudf_udf_types.Column, error)
}

// aggregateOf keeps states S, reading arguments through X.
type aggregateOf[S, X any] struct {
	read    func(cols []Column) X
	update  func(s *S, x *X, row int) error
	retract func(s *S, x *X, row int) error // nil: not supported
	merge   func(s, other *S)
	finish  func(s *S, out *Out, row int)
}

func (a *aggregateOf[S, X]) info() (bool, error) {
	var zero S
	if why := plainData(reflect.TypeOf(zero)); why != "" {
		return false, fmt.Errorf("state type %T cannot travel between instances: %s", zero, why)
	}
	return a.retract != nil, nil
}

func (a *aggregateOf[S, X]) newGroups(f *function) Groups {
	return &groupsOf[S, X]{def: a, f: f}
}

// plainData says why values of t cannot be copied as bytes, or "".
func plainData(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128:
		return ""
	case reflect.Array:
		return plainData(t.Elem())
	case reflect.Struct:
		for i := 0; i < t.NumField(); i++ {
			if why := plainData(t.Field(i).Type); why != "" {
				return why
			}
		}
		return ""
	default:
		return "it holds a " + t.Kind().String() + " (only numbers, booleans, arrays and structs of them)"
	}
}

type groupsOf[S, X any] struct {
	def    *aggregateOf[S, X]
	f      *function
	states []S
}

func (g *groupsOf[S, X]) grow(total uint32) {
	var zero S
	for len(g.states) < int(total) {
		g.states = append(g.states, zero)
	}
}

func (g *groupsOf[S, X]) apply(args []wasmudf_udf_types.Column, groups []uint32, total uint32,
	step func(s *S, x *X, row int) error) (err error) {
	row := -1
	defer catch(&err, &row)
	cols, err := columns(g.f, len(groups), args)
	if err != nil {
		return err
	}
	g.grow(total)
	x := g.def.read(cols)
	for i, group := range groups {
		if int(group) >= len(g.states) {
			return usageError("group index out of range")
		}
		row = i
		if e := step(&g.states[group], &x, i); e != nil {
			return rowError(e, i)
		}
	}
	return nil
}

func (g *groupsOf[S, X]) Update(args []wasmudf_udf_types.Column, groups []uint32, total uint32) error {
	return g.apply(args, groups, total, g.def.update)
}

func (g *groupsOf[S, X]) Retract(args []wasmudf_udf_types.Column, groups []uint32, total uint32) error {
	if g.def.retract == nil {
		return usageError("this aggregate cannot retract")
	}
	return g.apply(args, groups, total, g.def.retract)
}

func (g *groupsOf[S, X]) Merge(states []wasmudf_udf_types.Column, groups []uint32, total uint32) (err error) {
	row := -1
	defer catch(&err, &row)
	if len(states) != 1 || states[0].Len != uint32(len(groups)) {
		return usageError("malformed state")
	}
	col := newColumn(states[0], Bytea, len(groups))
	g.grow(total)
	var zero S
	size := int(unsafe.Sizeof(zero))
	for i, group := range groups {
		row = i
		b := col.Bytes(i)
		if len(b) != size || int(group) >= len(g.states) {
			return usageError("malformed state")
		}
		other := zero
		if size > 0 {
			copy(unsafe.Slice((*byte)(unsafe.Pointer(&other)), size), b)
		}
		g.def.merge(&g.states[group], &other)
	}
	return nil
}

// take is the emitted groups' states, removing them unless peeking.
func (g *groupsOf[S, X]) take(e wasmudf_udf_aggregate.EmitTo) ([]S, error) {
	switch e.Tag() {
	case wasmudf_udf_aggregate.EmitTo_First:
		n := int(e.First())
		if n > len(g.states) {
			return nil, usageError("emit beyond the last group")
		}
		taken := append([]S(nil), g.states[:n]...)
		g.states = append(g.states[:0], g.states[n:]...)
		return taken, nil
	case wasmudf_udf_aggregate.EmitTo_PeekAll:
		return g.states, nil
	default:
		taken := g.states
		g.states = nil
		return taken, nil
	}
}

func (g *groupsOf[S, X]) State(e wasmudf_udf_aggregate.EmitTo) ([]wasmudf_udf_types.Column, error) {
	states, err := g.take(e)
	if err != nil {
		return nil, err
	}
	var zero S
	size := int(unsafe.Sizeof(zero))
	out := newOut(Bytea, len(states))
	if size > 0 && len(states) > 0 {
		out.bytes = append(out.bytes[:0], unsafe.Slice((*byte)(unsafe.Pointer(&states[0])), size*len(states))...)
	}
	out.offsets = out.offsets[:0]
	for i := 0; i <= len(states); i++ {
		out.offsets = append(out.offsets, int32(i*size))
	}
	out.next = len(states)
	return []wasmudf_udf_types.Column{out.column()}, nil
}

func (g *groupsOf[S, X]) Evaluate(e wasmudf_udf_aggregate.EmitTo) (c wasmudf_udf_types.Column, err error) {
	row := -1
	defer catch(&err, &row)
	states, err := g.take(e)
	if err != nil {
		return c, err
	}
	out := newOut(g.f.returns, len(states))
	for i := range states {
		row = i
		g.def.finish(&states[i], out, i)
	}
	return out.column(), nil
}

// Info is the contract's aggregate `info`.
func Info(index uint32) witTypes.Result[wasmudf_udf_aggregate.AggregateInfo, wasmudf_udf_types.UdfError] {
	f, err := lookup(index, true)
	var retract bool
	if err == nil {
		retract, err = f.aggregate.info()
	}
	if err != nil {
		return witTypes.Err[wasmudf_udf_aggregate.AggregateInfo](failure(err))
	}
	return witTypes.Ok[wasmudf_udf_aggregate.AggregateInfo, wasmudf_udf_types.UdfError](
		wasmudf_udf_aggregate.AggregateInfo{State: []wasmudf_udf_types.DataType{Bytea.wire}, Retract: retract})
}

// NewGroups is the contract's `groups` constructor; nil for an unknown function.
func NewGroups(index uint32) Groups {
	f, err := lookup(index, true)
	if err != nil {
		return nil
	}
	return f.aggregate.newGroups(f)
}

// Failure is how an export package returns an error (its message and row).
func Failure(err error) wasmudf_udf_types.UdfError { return failure(err) }
