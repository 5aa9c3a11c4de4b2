// Numbers and text: the Rust examples' functions, in JavaScript.
import { scalar, batch, aggregate, types as t } from "./wasmudf.js";

// Per row: bigint values are BigInts (exact over the whole int64 range), the other
// numbers Numbers. Strict: a null argument gives null without a call.
scalar("js_add_one", [t.int64], t.int64, (x) => BigInt.asIntN(64, x + 1n));

// A batch function: whole columns as typed arrays (a BigInt64Array here).
batch("js_add_one_batch", [t.int64], t.int64, (xs) => {
  const ys = new BigInt64Array(xs.length);
  for (let i = 0; i < xs.length; i++) ys[i] = xs[i] + 1n;
  return ys;
});

scalar("js_gcd", ["bigint", "bigint"], "bigint", (a, b) => {
  a = a < 0n ? -a : a;
  b = b < 0n ? -b : b;
  while (b) [a, b] = [b, a % b];
  return a;
});

// A thrown error is SQLSTATE 38000 with its message and the row.
scalar("js_div", [t.int64, t.int64], t.int64, (a, b) => {
  if (b === 0n) throw new Error("division by zero");
  const q = a / b;
  if (q !== BigInt.asIntN(64, q)) throw new RangeError("bigint out of range");
  return q;
});

scalar("js_hypot", [t.float64, t.float64], t.float64, Math.hypot);

scalar("js_upper", [t.text], t.text, (s) => s.toUpperCase());

scalar("js_is_even", [t.int32], t.boolean, (x) => x % 2 === 0);

// Called on null: sees null and decides.
scalar("js_coalesce_zero", [t.int64], t.int64, (x) => x ?? 0n, { strict: false });

// Returning null gives null.
scalar("js_null_if_negative", [t.float64], t.float64, (x) => (x < 0 ? null : x));

// The sandbox has no clock: a clear error, not the build time.
scalar("js_clock", [], t.float64, () => Date.now(), { volatility: "volatile" });

// A function returning the wrong type: an error naming what was expected.
scalar("js_wrong_type", [t.int64], t.int64, (x) => Number(x));

// A batch function returning too few values: an error, not a short column.
batch("js_bad_length", [t.int64], t.int64, () => new BigInt64Array(1));

scalar("js_spin", [t.int64], t.int64, (n) => {
  let acc = 0;
  for (let i = 0; i < Number(n); i++) acc = (acc + i) % 1000003;
  return acc >= 0 ? n : -n;
});

scalar("js_alloc", [t.int64], t.int64, (n) => BigInt(new Uint8Array(Number(n)).fill(1).length));

// Aggregates: a class per group's state.
aggregate("js_mean", [t.float64], t.float64, class {
  constructor() {
    this.total = 0;
    this.n = 0;
  }
  update(x) {
    this.total += x;
    this.n += 1;
  }
  merge(other) {
    this.total += other.total;
    this.n += other.n;
  }
  finish() {
    return this.n ? this.total / this.n : null;
  }
});

// BigInt state (exact), a refusal naming the row, and retract for sliding frames.
aggregate("js_strict_sum", [t.int64], t.int64, class {
  constructor() {
    this.sum = 0n;
  }
  update(x) {
    if (x < 0n) throw new Error("negative value");
    this.sum += x;
  }
  retract(x) {
    this.sum -= x;
  }
  merge(other) {
    this.sum += other.sum;
  }
  finish() {
    return this.sum;
  }
});

// Text state: the longest string.
aggregate("js_longest", [t.text], t.text, class {
  constructor() {
    this.best = null;
  }
  update(s) {
    if (this.best === null || s.length > this.best.length) this.best = s;
  }
  merge(other) {
    if (other.best !== null) this.update(other.best);
  }
  finish() {
    return this.best;
  }
});
