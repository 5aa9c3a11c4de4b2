// SQL functions: add_one(bigint) and the aggregate my_sum(bigint).
import { scalar, aggregate, types as t } from "./wasmudf.js";

// bigint values are BigInts; a throw reaches the client as SQLSTATE 38000.
scalar("add_one", [t.int64], t.int64, (x) => {
  if (x === 9223372036854775807n) throw new Error("bigint out of range");
  return x + 1n;
});

// A class per group's state.
aggregate("my_sum", [t.int64], t.int64, class {
  constructor() {
    this.sum = 0n;
    this.n = 0;
  }
  update(x) {
    this.sum = BigInt.asIntN(64, this.sum + x);
    this.n += 1;
  }
  merge(other) {
    this.sum = BigInt.asIntN(64, this.sum + other.sum);
    this.n += other.n;
  }
  finish() {
    return this.n ? this.sum : null;
  }
});
