/* Numbers and text: the Rust examples' functions, in C. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "wasmudf.h"

/* Per row: a plain C function, wrapped (strict: null rows are skipped). */
/* Wrapping, like the Rust example (signed overflow is undefined in C). */
static int64_t add_one(int64_t x) { return (int64_t)((uint64_t)x + 1); }
WASMUDF_ROWS_1(c_add_one, i64, add_one, i64)

static int64_t gcd(int64_t a, int64_t b) {
    uint64_t x = a < 0 ? -(uint64_t)a : (uint64_t)a;
    uint64_t y = b < 0 ? -(uint64_t)b : (uint64_t)b;
    while (y) {
        uint64_t t = x % y;
        x = y;
        y = t;
    }
    return (int64_t)x;
}
WASMUDF_ROWS_2(c_gcd, i64, gcd, i64, i64)

/* A batch function: whole columns, pointers and lengths. Wrapping like the Rust
 * example's add_one_batch. */
static int c_add_one_batch(uint32_t rows, const wasmudf_column *args, wasmudf_out *out) {
    int64_t *y = wasmudf_out_i64(out);
    if (args[0].len == rows) {
        const int64_t *x = args[0].values;
        for (uint32_t i = 0; i < rows; i++) y[i] = (int64_t)((uint64_t)x[i] + 1);
    } else {
        for (uint32_t i = 0; i < rows; i++) y[i] = (int64_t)((uint64_t)wasmudf_i64(&args[0], i) + 1);
    }
    return 0;
}

/* An error: 38000 with the message and the row. */
static int c_div(uint32_t rows, const wasmudf_column *args, wasmudf_out *out) {
    int64_t *q = wasmudf_out_i64(out);
    for (uint32_t i = 0; i < rows; i++) {
        if (!wasmudf_valid(&args[0], i) || !wasmudf_valid(&args[1], i)) continue;
        int64_t a = wasmudf_i64(&args[0], i), b = wasmudf_i64(&args[1], i);
        if (b == 0) return wasmudf_fail(out, i, "division by zero (%lld / 0)", (long long)a);
        if (a == INT64_MIN && b == -1) return wasmudf_fail(out, i, "bigint out of range");
        q[i] = a / b;
    }
    return 0;
}

/* Text: ASCII upper case, a result appended row by row. */
static int c_upper(uint32_t rows, const wasmudf_column *args, wasmudf_out *out) {
    char buf[256];
    for (uint32_t i = 0; i < rows; i++) {
        if (!wasmudf_valid(&args[0], i)) continue;
        wasmudf_bytes s = wasmudf_text(&args[0], i);
        size_t done = 0;
        /* in chunks, so any length works with a small buffer */
        do {
            size_t n = s.len - done < sizeof buf ? s.len - done : sizeof buf;
            for (size_t k = 0; k < n; k++) {
                char c = s.ptr[done + k];
                buf[k] = (c >= 'a' && c <= 'z') ? (char)(c - 32) : c;
            }
            if (wasmudf_out_text(out, i, buf, n) != 0) return wasmudf_fail(out, i, "out of memory");
            done += n;
        } while (done < s.len);
    }
    return 0;
}

/* Called on null: null becomes 0. */
static int c_coalesce_zero(uint32_t rows, const wasmudf_column *args, wasmudf_out *out) {
    int64_t *y = wasmudf_out_i64(out);
    for (uint32_t i = 0; i < rows; i++) y[i] = wasmudf_valid(&args[0], i) ? wasmudf_i64(&args[0], i) : 0;
    return 0;
}

/* libc's WASI calls resolve in the deny-all adapter: printf is discarded, the clock
 * is a counter that only moves forward. Returns x. */
static int64_t loud(int64_t x) {
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    printf("x = %lld\n", (long long)x);
    fflush(stdout);
    clock_gettime(CLOCK_MONOTONIC, &b);
    return (b.tv_sec > a.tv_sec || b.tv_nsec > a.tv_nsec) ? x : -1;
}
WASMUDF_ROWS_1(c_loud, i64, loud, i64)

/* An aggregate: the mean of doubles, a plain struct per group. */
typedef struct mean_state {
    double total;
    int64_t n;
} mean_state;

static void mean_init(void *s) { memset(s, 0, sizeof(mean_state)); }
static int mean_update(void *s, const wasmudf_column *args, uint32_t row, wasmudf_out *err) {
    (void)err;
    mean_state *m = s;
    m->total += wasmudf_f64(&args[0], row);
    m->n += 1;
    return 0;
}
static void mean_merge(void *s, const void *other) {
    mean_state *m = s;
    const mean_state *o = other;
    m->total += o->total;
    m->n += o->n;
}
static int mean_finish(const void *s, wasmudf_out *out, uint32_t row) {
    const mean_state *m = s;
    if (m->n == 0)
        wasmudf_out_null(out, row);
    else
        wasmudf_out_f64(out)[row] = m->total / (double)m->n;
    return 0;
}
static const wasmudf_aggregate c_mean = {
    sizeof(mean_state), mean_init, mean_update, mean_merge, mean_finish,
};

/* An aggregate that refuses some input: the error names the row. */
static void sum_init(void *s) { *(int64_t *)s = 0; }
static int sum_update(void *s, const wasmudf_column *args, uint32_t row, wasmudf_out *err) {
    int64_t x = wasmudf_i64(&args[0], row);
    if (x < 0) return wasmudf_fail(err, row, "negative value %lld", (long long)x);
    *(int64_t *)s += x;
    return 0;
}
static void sum_merge(void *s, const void *other) { *(int64_t *)s += *(const int64_t *)other; }
static int sum_finish(const void *s, wasmudf_out *out, uint32_t row) {
    wasmudf_out_i64(out)[row] = *(const int64_t *)s;
    return 0;
}
static const wasmudf_aggregate c_strict_sum = {
    sizeof(int64_t), sum_init, sum_update, sum_merge, sum_finish,
};

WASMUDF_EXPORT(
    WASMUDF_SCALAR("c_add_one", c_add_one, WASMUDF_INT64, WASMUDF_INT64),
    WASMUDF_SCALAR("c_add_one_batch", c_add_one_batch, WASMUDF_INT64, WASMUDF_INT64),
    WASMUDF_SCALAR("c_gcd", c_gcd, WASMUDF_INT64, WASMUDF_INT64, WASMUDF_INT64),
    WASMUDF_SCALAR("c_div", c_div, WASMUDF_INT64, WASMUDF_INT64, WASMUDF_INT64),
    WASMUDF_SCALAR("c_upper", c_upper, WASMUDF_TEXT, WASMUDF_TEXT),
    WASMUDF_SCALAR("c_loud", c_loud, WASMUDF_INT64, WASMUDF_INT64),
    WASMUDF_SCALAR_ON_NULL("c_coalesce_zero", c_coalesce_zero, WASMUDF_INT64, WASMUDF_INT64),
    WASMUDF_AGGREGATE("c_mean", c_mean, WASMUDF_FLOAT64, WASMUDF_FLOAT64),
    WASMUDF_AGGREGATE("c_strict_sum", c_strict_sum, WASMUDF_INT64, WASMUDF_INT64),
)
