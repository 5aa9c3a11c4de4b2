/* SQL functions: add_one(bigint) and the aggregate my_sum(bigint). */
#include <stdint.h>

#include "wasmudf.h"

/* Per row (strict: null rows are skipped); wrapping, as signed overflow is undefined. */
static int64_t add_one_value(int64_t x) { return (int64_t)((uint64_t)x + 1); }
WASMUDF_ROWS_1(add_one, i64, add_one_value, i64)

/* An aggregate: a plain struct per group. */
typedef struct sum_state {
    int64_t sum;
    int64_t n;
} sum_state;

static void sum_init(void *s) {
    ((sum_state *)s)->sum = 0;
    ((sum_state *)s)->n = 0;
}
static int sum_update(void *s, const wasmudf_column *args, uint32_t row, wasmudf_out *err) {
    (void)err;
    sum_state *m = s;
    m->sum = (int64_t)((uint64_t)m->sum + (uint64_t)wasmudf_i64(&args[0], row));
    m->n += 1;
    return 0;
}
static void sum_merge(void *s, const void *other) {
    sum_state *m = s;
    const sum_state *o = other;
    m->sum = (int64_t)((uint64_t)m->sum + (uint64_t)o->sum);
    m->n += o->n;
}
static int sum_finish(const void *s, wasmudf_out *out, uint32_t row) {
    const sum_state *m = s;
    if (m->n == 0)
        wasmudf_out_null(out, row);
    else
        wasmudf_out_i64(out)[row] = m->sum;
    return 0;
}
static const wasmudf_aggregate my_sum = {
    sizeof(sum_state), sum_init, sum_update, sum_merge, sum_finish,
};

WASMUDF_EXPORT(
    WASMUDF_SCALAR("add_one", add_one, WASMUDF_INT64, WASMUDF_INT64),
    WASMUDF_AGGREGATE("my_sum", my_sum, WASMUDF_INT64, WASMUDF_INT64),
)
