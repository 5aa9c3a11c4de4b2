// wasmudf's JavaScript SDK: SQL functions from JavaScript functions, run over whole
// Arrow columns.
//
//   import { scalar, batch, aggregate, types as t } from "./wasmudf.js";
//
//   // Per row: bigint columns are BigInts, the other numbers Numbers.
//   scalar("js_add_one", [t.int64], t.int64, (x) => x + 1n);
//
//   // A batch function sees whole columns as typed arrays (BigInt64Array for bigint).
//   batch("js_add_one_batch", [t.int64], t.int64, (xs) => xs.map((x) => x + 1n));
//
//   // An aggregate: a class with update, merge and finish.
//   aggregate("js_mean", [t.float64], t.float64, class {
//     constructor() { this.total = 0; this.n = 0; }
//     update(x) { this.total += x; this.n += 1; }
//     merge(other) { this.total += other.total; this.n += other.n; }
//     finish() { return this.n ? this.total / this.n : null; }
//   });
//
// `wasmudf build --lang js FILE.js` makes the component (componentize-js). See
// docs/writing-js-udfs.md.

// ---------------------------------------------------------------------------
// Types

/** Column types: each one SQL type, one Arrow type, one JS representation. */
export const types = Object.freeze({
  boolean: { tag: "boolean" },
  int8: { tag: "int8" },
  int16: { tag: "int16" },
  int32: { tag: "int32" },
  int64: { tag: "int64" },
  uint8: { tag: "uint8" },
  uint16: { tag: "uint16" },
  uint32: { tag: "uint32" },
  uint64: { tag: "uint64" },
  float32: { tag: "float32" },
  float64: { tag: "float64" },
  text: { tag: "utf8" },
  bytea: { tag: "binary" },
  /** Days since 1970-01-01, as a Number. */
  date: { tag: "date32" },
  /** Microseconds since 1970-01-01 00:00 (no zone), as a BigInt. */
  timestamp: { tag: "timestamp", val: { unit: "microsecond", timezone: undefined } },
  /** The same in nanoseconds. */
  timestampNanos: { tag: "timestamp", val: { unit: "nanosecond", timezone: undefined } },
});

// SQL spellings, so that `["bigint", "text"]` works as well as `[t.int64, t.text]`.
const SQL_NAMES = {
  boolean: types.boolean, bool: types.boolean,
  tinyint: types.int8, smallint: types.int16, int2: types.int16,
  integer: types.int32, int: types.int32, int4: types.int32,
  bigint: types.int64, int8: types.int64,
  real: types.float32, float4: types.float32,
  "double precision": types.float64, float8: types.float64, double: types.float64,
  text: types.text, varchar: types.text, bytea: types.bytea,
  date: types.date, timestamp: types.timestamp,
};

function resolveType(t, what) {
  if (typeof t === "string") {
    const found = SQL_NAMES[t.toLowerCase()] ?? types[t];
    if (found) return found;
  } else if (t && typeof t.tag === "string" && Object.values(types).includes(t)) {
    return t;
  }
  throw new TypeError(`${what}: not a wasmudf type: ${String(t)}`);
}

// How a type's values are laid out and what JS holds them.
function layoutOf(type) {
  switch (type.tag) {
    case "boolean": return { kind: "bits" };
    case "utf8": return { kind: "text" };
    case "binary": return { kind: "bytes" };
    case "int8": return { kind: "fixed", array: Int8Array, wire: "bytes", wireArray: Uint8Array };
    case "uint8": return { kind: "fixed", array: Uint8Array, wire: "bytes", wireArray: Uint8Array };
    case "int16": return { kind: "fixed", array: Int16Array, wire: "u16s", wireArray: Uint16Array };
    case "uint16": return { kind: "fixed", array: Uint16Array, wire: "u16s", wireArray: Uint16Array };
    case "int32": case "date32":
      return { kind: "fixed", array: Int32Array, wire: "u32s", wireArray: Uint32Array };
    case "uint32": return { kind: "fixed", array: Uint32Array, wire: "u32s", wireArray: Uint32Array };
    case "float32": return { kind: "fixed", array: Float32Array, wire: "u32s", wireArray: Uint32Array };
    case "int64": case "timestamp":
      return { kind: "fixed", array: BigInt64Array, wire: "u64s", wireArray: BigUint64Array };
    case "uint64": return { kind: "fixed", array: BigUint64Array, wire: "u64s", wireArray: BigUint64Array };
    case "float64": return { kind: "fixed", array: Float64Array, wire: "u64s", wireArray: BigUint64Array };
    default: throw new TypeError(`unsupported type ${type.tag}`);
  }
}

// ---------------------------------------------------------------------------
// The sandbox: no clock, no entropy. Without this, Date.now() would be the build
// time and Math.random() one fixed sequence, silently; console output is discarded.

/** A call the sandbox does not provide. */
export class SandboxError extends Error {
  constructor(message) {
    super(message);
    this.name = "SandboxError";
  }
}

function denied(name, why) {
  return function () {
    throw new SandboxError(`${name} is not available in the wasmudf sandbox (${why})`);
  };
}

{
  const noClock = "there is no clock; pass the time as an argument";
  const noEntropy = "there is no entropy; pass a seed as an argument";
  const OriginalDate = Date;
  const SandboxDate = function Date(...args) {
    if (args.length === 0) denied("new Date()", noClock)();
    return new.target ? new OriginalDate(...args) : denied("Date()", noClock)();
  };
  SandboxDate.prototype = OriginalDate.prototype;
  SandboxDate.UTC = OriginalDate.UTC;
  SandboxDate.parse = OriginalDate.parse;
  SandboxDate.now = denied("Date.now()", noClock);
  globalThis.Date = SandboxDate;
  if (globalThis.performance) globalThis.performance.now = denied("performance.now()", noClock);
  Math.random = denied("Math.random()", noEntropy);
  if (globalThis.crypto) {
    globalThis.crypto.getRandomValues = denied("crypto.getRandomValues()", noEntropy);
    globalThis.crypto.randomUUID = denied("crypto.randomUUID()", noEntropy);
  }
}

// ---------------------------------------------------------------------------
// Registry

const functions = [];

function options(opts, what) {
  const o = { volatility: "immutable", strict: true, ...(opts ?? {}) };
  if (!["immutable", "stable", "volatile"].includes(o.volatility)) {
    throw new TypeError(`${what}: volatility must be "immutable", "stable" or "volatile"`);
  }
  return o;
}

function define(kind, name, params, returns, run, opts) {
  if (typeof name !== "string" || name === "") throw new TypeError("a function needs a name");
  const what = `function ${name}`;
  if (!Array.isArray(params)) throw new TypeError(`${what}: params must be an array of types`);
  const o = options(opts, what);
  const f = {
    name,
    kind,
    params: params.map((p) => resolveType(p, what)),
    returns: resolveType(returns, what),
    volatility: o.volatility,
    strict: o.strict,
    ...run,
  };
  f.paramLayouts = f.params.map(layoutOf);
  f.returnLayout = layoutOf(f.returns);
  functions.push(f);
}

/**
 * A per-row scalar function: `fn(...values)` for each row, its return value the
 * row's result (null or undefined: null). Strict by default: rows with a null argument
 * are null without a call; `{ strict: false }` passes nulls as `null`.
 * Options: `{ volatility: "stable" | "volatile", strict: false }`.
 */
export function scalar(name, params, returns, fn, opts) {
  if (typeof fn !== "function") throw new TypeError(`function ${name}: not a function`);
  define("scalar", name, params, returns, { rows: fn }, opts);
}

/**
 * A batch scalar function: `fn(...columns)` once per batch. Each column has one value
 * per row: a typed array for numbers (BigInt64Array for bigint), an Array for text,
 * bytea and boolean. Strict by default: a null row holds an unspecified value and its
 * result is ignored; `{ strict: false }` gives Arrays with `null` for nulls. Returns
 * one value per row: a typed array or an Array (null entries are null).
 */
export function batch(name, params, returns, fn, opts) {
  if (typeof fn !== "function") throw new TypeError(`function ${name}: not a function`);
  define("scalar", name, params, returns, { columns: fn }, opts);
}

/**
 * An aggregate: `State` is a class whose instances are one group's state, with
 * `update(...values)`, `merge(other)` and `finish()` (null: null), and optionally
 * `retract(...values)` (sliding window frames). States travel between instances as
 * JSON of their own fields (numbers, strings, booleans, BigInts, arrays and plain
 * objects of them); `merge` gets such a copy, with the class's prototype.
 */
export function aggregate(name, params, returns, State, opts) {
  if (typeof State !== "function") throw new TypeError(`function ${name}: State must be a class`);
  for (const m of ["update", "merge", "finish"]) {
    if (typeof State.prototype[m] !== "function") {
      throw new TypeError(`function ${name}: the state class has no ${m}() method`);
    }
  }
  define("aggregate", name, params, returns, { State }, opts);
}

// ---------------------------------------------------------------------------
// Errors

// What the contract's result err is made of: componentize-js turns a thrown object
// with a `payload` into the err case.
function failure(message, row) {
  return { payload: { message: String(message), row: row === undefined || row < 0 ? undefined : row } };
}

function messageOf(e) {
  if (e instanceof Error) return e.name && e.name !== "Error" ? `${e.name}: ${e.message}` : e.message;
  return String(e);
}

/** An error about one row of the batch (the client sees its row). */
export class RowError extends Error {
  constructor(row, message) {
    super(message);
    this.row = row;
  }
}

function guarded(run, row) {
  try {
    return run();
  } catch (e) {
    if (e && e.payload) throw e;
    throw failure(messageOf(e), e instanceof RowError ? e.row : row());
  }
}

// ---------------------------------------------------------------------------
// Columns in: the contract's records as JS values

const decoder = new TextDecoder();
const encoder = new TextEncoder();

function bit(bits, i) {
  return (bits[i >> 3] >> (i & 7)) & 1;
}

// A fixed-width column's values as its JS typed array, without a copy.
function fixedView(col, layout) {
  const raw = col.values.val;
  if (raw.constructor === layout.array) return raw;
  return new layout.array(raw.buffer, raw.byteOffset, (raw.byteLength / layout.array.BYTES_PER_ELEMENT) | 0);
}

// A reader of one argument: get(row) → the JS value (literal arguments repeat).
function reader(col, layout, rows) {
  const literal = col.len === 1 && rows !== 1;
  const validity = col.validity;
  const at = literal ? () => 0 : (i) => i;
  let get;
  switch (layout.kind) {
    case "fixed": {
      const v = fixedView(col, layout);
      get = literal ? () => v[0] : (i) => v[i];
      break;
    }
    case "bits": {
      const v = col.values.val;
      get = (i) => bit(v, at(i)) === 1;
      break;
    }
    case "text": case "bytes": {
      const o = col.offsets;
      const v = col.values.val;
      const text = layout.kind === "text";
      get = (i) => {
        const r = at(i);
        const b = v.subarray(o[r], o[r + 1]);
        return text ? decoder.decode(b) : b.slice();
      };
      break;
    }
  }
  const valid = validity ? (i) => bit(validity, at(i)) === 1 : () => true;
  return { get, valid, literal, hasNulls: validity !== undefined, col, layout };
}

// A whole argument column for a batch function: one value per row.
function fullColumn(rd, rows, strict) {
  const { layout, col } = rd;
  if (layout.kind === "fixed" && (strict || !rd.hasNulls)) {
    const v = fixedView(col, layout);
    if (!rd.literal) return v;
    return new layout.array(rows).fill(v[0]);
  }
  const out = new Array(rows);
  for (let i = 0; i < rows; i++) out[i] = !strict && !rd.valid(i) ? null : rd.get(i);
  return out;
}

// ---------------------------------------------------------------------------
// Columns out

class Builder {
  constructor(layout, type, rows) {
    this.layout = layout;
    this.type = type;
    this.rows = rows;
    this.validity = undefined;
    // Whether fixed-width values are BigInts (int64, uint64, timestamp) or Numbers.
    this.bigint = layout.array === BigInt64Array || layout.array === BigUint64Array;
    if (layout.kind === "fixed") this.values = new layout.array(rows);
    else if (layout.kind === "bits") this.values = new Uint8Array((rows + 7) >> 3);
    else this.values = new Array(rows);
  }

  setNull(i) {
    if (!this.validity) this.validity = new Uint8Array((this.rows + 7) >> 3).fill(0xff);
    this.validity[i >> 3] &= ~(1 << (i & 7));
  }

  // Sets row i from a JS value (null/undefined: null), checking its type.
  set(i, v) {
    if (v === null || v === undefined) return this.setNull(i);
    const { kind } = this.layout;
    if (kind === "fixed") {
      const bigint = this.bigint;
      if (bigint ? typeof v !== "bigint" : typeof v !== "number") {
        throw new TypeError(`the result must be a ${bigint ? "BigInt" : "Number"} (${this.type.tag}), not ${typeof v}`);
      }
      this.values[i] = v;
    } else if (kind === "bits") {
      if (v) this.values[i >> 3] |= 1 << (i & 7);
    } else if (kind === "text") {
      if (typeof v !== "string") throw new TypeError(`the result must be a string (text), not ${typeof v}`);
      this.values[i] = v;
    } else {
      if (!(v instanceof Uint8Array)) throw new TypeError("the result must be a Uint8Array (bytea)");
      this.values[i] = v;
    }
  }

  // The contract's column record.
  column() {
    const { kind } = this.layout;
    let offsets = new Int32Array(0);
    let values;
    if (kind === "fixed") {
      const v = this.values;
      values = { tag: this.layout.wire, val: v.constructor === this.layout.wireArray ? v : new this.layout.wireArray(v.buffer, v.byteOffset, v.length) };
    } else if (kind === "bits") {
      values = { tag: "bytes", val: this.values };
    } else {
      offsets = new Int32Array(this.rows + 1);
      const parts = new Array(this.rows);
      let total = 0;
      for (let i = 0; i < this.rows; i++) {
        const v = this.values[i];
        const b = v === undefined ? EMPTY : kind === "text" ? encoder.encode(v) : v;
        parts[i] = b;
        total += b.length;
        offsets[i + 1] = total;
      }
      const bytes = new Uint8Array(total);
      for (let i = 0; i < this.rows; i++) bytes.set(parts[i], offsets[i]);
      values = { tag: "bytes", val: bytes };
    }
    return { len: this.rows, validity: this.validity, offsets, values };
  }
}

const EMPTY = new Uint8Array(0);

// A batch function's returned values as the result column.
function resultColumn(f, rows, result) {
  if (result === null || result === undefined || typeof result.length !== "number") {
    throw new TypeError("a batch function must return one value per row (an array or typed array)");
  }
  if (result.length !== rows) {
    throw new TypeError(`a batch function returned ${result.length} values for ${rows} rows`);
  }
  const layout = f.returnLayout;
  const b = new Builder(layout, f.returns, rows);
  if (layout.kind === "fixed" && result.constructor === layout.array) {
    b.values = result;
    return b.column();
  }
  for (let i = 0; i < rows; i++) b.set(i, result[i]);
  return b.column();
}

// ---------------------------------------------------------------------------
// The contract's exports

function lookup(index, kind) {
  const f = functions[index];
  if (!f || f.kind !== kind) throw failure(`no ${kind} function number ${index}`);
  return f;
}

function readers(f, args, rows) {
  if (args.length !== f.params.length) throw failure(`function ${f.name}: wrong number of arguments`);
  return args.map((col, i) => {
    if (col.len !== rows && col.len !== 1) throw failure("argument length differs from the batch");
    return reader(col, f.paramLayouts[i], rows);
  });
}

function callRows(f, rows, rds) {
  const out = new Builder(f.returnLayout, f.returns, rows);
  const fn = f.rows;
  const n = rds.length;
  const nulls = rds.some((r) => r.hasNulls);
  let row = -1;
  guarded(() => {
    // The common case, one dense argument of a fixed-width type into a fixed-width
    // result, without the per-row closures.
    if (n === 1 && !nulls && !rds[0].literal && rds[0].layout.kind === "fixed" && out.layout.kind === "fixed") {
      const xs = fixedView(rds[0].col, rds[0].layout);
      const ys = out.values;
      const want = out.bigint ? "bigint" : "number";
      for (row = 0; row < rows; row++) {
        const y = fn(xs[row]);
        if (y === null || y === undefined) out.setNull(row);
        else if (typeof y === want) ys[row] = y;
        else out.set(row, y);
      }
      return;
    }
    const values = new Array(n);
    for (row = 0; row < rows; row++) {
      let skip = false;
      for (let k = 0; k < n; k++) {
        const r = rds[k];
        if (nulls && !r.valid(row)) {
          if (f.strict) { skip = true; break; }
          values[k] = null;
        } else {
          values[k] = r.get(row);
        }
      }
      if (skip) continue;
      out.set(row, fn(...values));
    }
  }, () => row);
  return out.column();
}

export const guest = {
  describe() {
    return functions.map((f) => ({
      name: f.name,
      kind: f.kind,
      params: f.params,
      returns: f.returns,
      volatility: f.volatility,
      nullHandling: f.strict ? "strict" : "called-on-null",
    }));
  },
};

export const scalar_ = {
  call(index, rows, args) {
    const f = lookup(index, "scalar");
    const rds = readers(f, args, rows);
    if (f.rows) return callRows(f, rows, rds);
    const columns = rds.map((rd) => fullColumn(rd, rows, f.strict));
    const result = guarded(() => f.columns(...columns), () => -1);
    return guarded(() => resultColumn(f, rows, result), () => -1);
  },
};

// --- aggregates

// JSON with BigInts (as {"$bigint": "digits"}), for states.
function toJson(state) {
  return JSON.stringify(state, (_k, v) => (typeof v === "bigint" ? { $bigint: v.toString() } : v));
}
function fromJson(text, State) {
  const fields = JSON.parse(text, (_k, v) =>
    v && typeof v === "object" && typeof v.$bigint === "string" && Object.keys(v).length === 1 ? BigInt(v.$bigint) : v);
  return Object.assign(Object.create(State.prototype), fields);
}

class Groups {
  constructor(index) {
    this.f = lookup(index, "aggregate");
    this.states = [];
  }

  grow(total) {
    const { State } = this.f;
    while (this.states.length < total) this.states.push(new State());
  }

  apply(args, groups, total, method) {
    const f = this.f;
    const rows = groups.length;
    const rds = readers(f, args, rows);
    this.grow(total);
    const n = rds.length;
    const values = new Array(n);
    let row = -1;
    guarded(() => {
      for (row = 0; row < rows; row++) {
        for (let k = 0; k < n; k++) values[k] = rds[k].get(row);
        const state = this.states[groups[row]];
        if (state === undefined) throw new Error("group index out of range");
        state[method](...values);
      }
    }, () => row);
  }

  update(args, groups, total) {
    this.apply(args, groups, total, "update");
  }

  retract(args, groups, total) {
    if (typeof this.f.State.prototype.retract !== "function") throw failure("this aggregate cannot retract");
    this.apply(args, groups, total, "retract");
  }

  merge(states, groups, total) {
    if (states.length !== 1) throw failure("malformed state");
    const rows = groups.length;
    const rd = reader(states[0], { kind: "text" }, rows);
    this.grow(total);
    let row = -1;
    guarded(() => {
      for (row = 0; row < rows; row++) {
        const state = this.states[groups[row]];
        if (state === undefined) throw new Error("group index out of range");
        state.merge(fromJson(rd.get(row), this.f.State));
      }
    }, () => row);
  }

  take(emit) {
    if (emit.tag === "first") {
      if (emit.val > this.states.length) throw failure("emit beyond the last group");
      return this.states.splice(0, emit.val);
    }
    if (emit.tag === "peek-all") return this.states;
    const all = this.states;
    this.states = [];
    return all;
  }

  state(emit) {
    const taken = this.take(emit);
    const b = new Builder({ kind: "text" }, types.text, taken.length);
    let row = -1;
    guarded(() => {
      for (row = 0; row < taken.length; row++) b.set(row, toJson(taken[row]));
    }, () => row);
    return [b.column()];
  }

  evaluate(emit) {
    const taken = this.take(emit);
    const b = new Builder(this.f.returnLayout, this.f.returns, taken.length);
    let row = -1;
    guarded(() => {
      for (row = 0; row < taken.length; row++) b.set(row, taken[row].finish());
    }, () => row);
    return b.column();
  }
}

export const aggregate_ = {
  info(index) {
    const f = lookup(index, "aggregate");
    return {
      state: [types.text],
      retract: typeof f.State.prototype.retract === "function",
    };
  },
  Groups,
};
