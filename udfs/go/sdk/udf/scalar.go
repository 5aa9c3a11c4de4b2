package udf

// Batch registers a strict scalar function over whole columns: `f` fills `out` for
// every row of `args` (one Column per parameter). Rows with a null argument come out
// null whatever `f` writes there.
func Batch(name string, returns Type, params []Type, f func(args []Column, out *Out) error, opts ...Option) {
	register(&function{name: name, params: params, returns: returns, strict: true, scalar: f}, opts)
}

// BatchOnNull is Batch for a function called on null input: it sees every row, reads
// validity with Column.Valid and makes nulls with Out.SetNull.
func BatchOnNull(name string, returns Type, params []Type, f func(args []Column, out *Out) error, opts ...Option) {
	register(&function{name: name, params: params, returns: returns, strict: false, scalar: f}, opts)
}

// Scalar1 registers a strict per-row function of one argument; the SQL types are
// the Go types' (see Value).
func Scalar1[A, R Value](name string, f func(A) R, opts ...Option) {
	// The dense loop calls f directly: through Scalar1E's error-returning wrapper,
	// every row would cost a second call, which Go's Wasm port makes expensive.
	slow := func(a A) (R, error) { return f(a), nil }
	call := func(args []Column, out *Out) (err error) {
		row := -1
		defer catch(&err, &row)
		x := newArg[A](&args[0])
		ys := resultView[R](out)
		if n := out.rows; ys != nil && x.dense(n) {
			xs, ys := x.fixed[:n], ys[:n]
			for row = range xs {
				ys[row] = f(xs[row])
			}
			return nil
		}
		return rows1(args, out, x, ys, slow, &row)
	}
	register(&function{name: name, params: []Type{typeOf[A]()}, returns: typeOf[R](), strict: true, scalar: call}, opts)
}

// Scalar2 registers a strict per-row function of two arguments.
func Scalar2[A, B, R Value](name string, f func(A, B) R, opts ...Option) {
	slow := func(a A, b B) (R, error) { return f(a, b), nil }
	call := func(args []Column, out *Out) (err error) {
		row := -1
		defer catch(&err, &row)
		x, y := newArg[A](&args[0]), newArg[B](&args[1])
		ys := resultView[R](out)
		if n := out.rows; ys != nil && x.dense(n) && y.dense(n) {
			xs, zs, ys := x.fixed[:n], y.fixed[:n], ys[:n]
			for row = range xs {
				ys[row] = f(xs[row], zs[row])
			}
			return nil
		}
		return rows2(args, out, x, y, ys, slow, &row)
	}
	register(&function{name: name, params: []Type{typeOf[A](), typeOf[B]()}, returns: typeOf[R](), strict: true, scalar: call}, opts)
}

// Scalar3 registers a strict per-row function of three arguments.
func Scalar3[A, B, C, R Value](name string, f func(A, B, C) R, opts ...Option) {
	Scalar3E(name, func(a A, b B, c C) (R, error) { return f(a, b, c), nil }, opts...)
}

// Scalar1E registers a strict per-row function of one argument that may fail: an
// error is SQLSTATE 38000 with its message and the row.
func Scalar1E[A, R Value](name string, f func(A) (R, error), opts ...Option) {
	call := func(args []Column, out *Out) (err error) {
		row := -1
		defer catch(&err, &row)
		x := newArg[A](&args[0])
		ys := resultView[R](out)
		n := out.rows
		if ys != nil && x.dense(n) {
			xs, ys := x.fixed[:n], ys[:n]
			for row = range xs {
				r, e := f(xs[row])
				if e != nil {
					return rowError(e, row)
				}
				ys[row] = r
			}
			return nil
		}
		return rows1(args, out, x, ys, f, &row)
	}
	register(&function{name: name, params: []Type{typeOf[A]()}, returns: typeOf[R](), strict: true, scalar: call}, opts)
}

// rows1 is the general per-row loop of one argument: literals, nulls, and results
// that are not fixed-width.
func rows1[A, R Value](args []Column, out *Out, x arg[A], ys []R, f func(A) (R, error), row *int) error {
	nulls := args[0].HasNulls()
	for *row = 0; *row < out.rows; *row++ {
		i := *row
		if nulls && !args[0].Valid(i) {
			continue
		}
		r, e := f(x.get(i))
		if e != nil {
			return rowError(e, i)
		}
		put(out, ys, i, r)
	}
	return nil
}

// Scalar2E registers a strict per-row function of two arguments that may fail.
func Scalar2E[A, B, R Value](name string, f func(A, B) (R, error), opts ...Option) {
	call := func(args []Column, out *Out) (err error) {
		row := -1
		defer catch(&err, &row)
		x, y := newArg[A](&args[0]), newArg[B](&args[1])
		ys := resultView[R](out)
		n := out.rows
		if ys != nil && x.dense(n) && y.dense(n) {
			xs, zs, ys := x.fixed[:n], y.fixed[:n], ys[:n]
			for row = range xs {
				r, e := f(xs[row], zs[row])
				if e != nil {
					return rowError(e, row)
				}
				ys[row] = r
			}
			return nil
		}
		return rows2(args, out, x, y, ys, f, &row)
	}
	register(&function{name: name, params: []Type{typeOf[A](), typeOf[B]()}, returns: typeOf[R](), strict: true, scalar: call}, opts)
}

// rows2 is the general per-row loop of two arguments.
func rows2[A, B, R Value](args []Column, out *Out, x arg[A], y arg[B], ys []R, f func(A, B) (R, error), row *int) error {
	nulls := args[0].HasNulls() || args[1].HasNulls()
	for *row = 0; *row < out.rows; *row++ {
		i := *row
		if nulls && !(args[0].Valid(i) && args[1].Valid(i)) {
			continue
		}
		r, e := f(x.get(i), y.get(i))
		if e != nil {
			return rowError(e, i)
		}
		put(out, ys, i, r)
	}
	return nil
}

// Scalar3E registers a strict per-row function of three arguments that may fail.
func Scalar3E[A, B, C, R Value](name string, f func(A, B, C) (R, error), opts ...Option) {
	call := func(args []Column, out *Out) (err error) {
		row := -1
		defer catch(&err, &row)
		x, y, z := newArg[A](&args[0]), newArg[B](&args[1]), newArg[C](&args[2])
		ys := resultView[R](out)
		nulls := args[0].HasNulls() || args[1].HasNulls() || args[2].HasNulls()
		for row = 0; row < out.rows; row++ {
			if nulls && !(args[0].Valid(row) && args[1].Valid(row) && args[2].Valid(row)) {
				continue
			}
			r, e := f(x.get(row), y.get(row), z.get(row))
			if e != nil {
				return rowError(e, row)
			}
			put(out, ys, row, r)
		}
		return nil
	}
	register(&function{name: name, params: []Type{typeOf[A](), typeOf[B](), typeOf[C]()}, returns: typeOf[R](), strict: true, scalar: call}, opts)
}

// catch turns a panic of a per-row function into an error naming the row.
func catch(err *error, row *int) {
	if v := recover(); v != nil {
		*err = recovered(v, *row)
	}
}

// rowError is a per-row function's error for `row`.
func rowError(e error, row int) error {
	if r := rowOf(e); r >= 0 {
		return e
	}
	return &RowError{Row: row, Message: e.Error()}
}

// arg reads one argument column as Go values of type T.
type arg[T Value] struct {
	col   *Column
	fixed []T  // fixed-width values: one per row, or one for a literal
	step  int  // 1, or 0 for a literal
	text  bool // T is string (else a text/bytea column is read as []byte)
}

func newArg[T Value](c *Column) arg[T] {
	a := arg[T]{col: c, step: 1}
	if c.literal {
		a.step = 0
	}
	if c.typ.layout() == layoutFixed {
		a.fixed = view[T](c)
	}
	var zero T
	_, a.text = any(zero).(string)
	return a
}

// dense says whether the column is `n` fixed-width values, none null.
func (a *arg[T]) dense(n int) bool {
	return a.fixed != nil && a.step == 1 && len(a.fixed) >= n && a.col.validity == nil
}

func (a *arg[T]) get(row int) T {
	if a.fixed != nil {
		return a.fixed[row*a.step]
	}
	var v any
	switch a.col.typ.layout() {
	case layoutBits:
		v = a.col.Bool(row)
	default:
		if a.text {
			v = a.col.Text(row)
		} else {
			v = a.col.Bytes(row)
		}
	}
	return v.(T)
}

// resultView is a fixed-width result's values as []R, or nil for boolean, text and
// bytea results (written with set).
func resultView[R Value](o *Out) []R {
	if o.typ.layout() != layoutFixed {
		return nil
	}
	return words[R](o)
}

func put[R Value](o *Out, ys []R, row int, v R) {
	if ys != nil {
		ys[row] = v
	} else {
		set(o, row, v)
	}
}
