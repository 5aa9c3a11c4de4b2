/* wasmudf's C SDK: SQL functions over whole Arrow columns.
 *
 *   #include "wasmudf.h"
 *
 *   static int64_t add_one(int64_t x) { return x + 1; }
 *   WASMUDF_ROWS_1(add_one_rows, i64, add_one, i64)       // a per-row function, wrapped
 *
 *   static int add_one_batch(uint32_t rows, const wasmudf_column *args, wasmudf_out *out) {
 *       int64_t *y = wasmudf_out_i64(out);
 *       for (uint32_t i = 0; i < rows; i++) y[i] = wasmudf_i64(&args[0], i) + 1;
 *       return 0;
 *   }
 *
 *   WASMUDF_EXPORT(
 *       WASMUDF_SCALAR("add_one", add_one_rows, WASMUDF_INT64, WASMUDF_INT64),
 *       WASMUDF_SCALAR("add_one_batch", add_one_batch, WASMUDF_INT64, WASMUDF_INT64),
 *   )
 *
 * `wasmudf build --lang c file.c` makes the component. See docs/writing-c-udfs.md.
 */
#ifndef WASMUDF_H
#define WASMUDF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Column types (the contract's `data-type`). */
typedef enum wasmudf_type {
    WASMUDF_BOOLEAN,
    WASMUDF_INT8,
    WASMUDF_INT16,
    WASMUDF_INT32,
    WASMUDF_INT64,
    WASMUDF_UINT8,
    WASMUDF_UINT16,
    WASMUDF_UINT32,
    WASMUDF_UINT64,
    WASMUDF_FLOAT32,
    WASMUDF_FLOAT64,
    WASMUDF_TEXT,  /* utf8 */
    WASMUDF_BYTEA, /* binary */
    WASMUDF_DATE,  /* days since 1970-01-01, int32 */
} wasmudf_type;

typedef enum wasmudf_volatility {
    WASMUDF_IMMUTABLE,
    WASMUDF_STABLE,
    WASMUDF_VOLATILE,
} wasmudf_volatility;

/* One argument column, read-only, valid for the call. `len` is the batch's row count,
 * or 1 for a literal argument (the accessors below repeat it for every row). */
typedef struct wasmudf_column {
    wasmudf_type type;
    uint32_t len;
    const uint8_t *validity; /* Arrow bitmap, bit set = valid; NULL: every row valid */
    const int32_t *offsets;  /* text, bytea: len + 1 offsets into values */
    const void *values;
    size_t values_len; /* bytes */
} wasmudf_column;

/* A text or bytea value: not NUL-terminated. */
typedef struct wasmudf_bytes {
    const char *ptr;
    size_t len;
} wasmudf_bytes;

static inline uint32_t wasmudf_row_(const wasmudf_column *c, uint32_t row) {
    return c->len == 1 ? 0 : row;
}
static inline bool wasmudf_valid(const wasmudf_column *c, uint32_t row) {
    uint32_t r = wasmudf_row_(c, row);
    return c->validity == NULL || ((c->validity[r >> 3] >> (r & 7)) & 1);
}
static inline int64_t wasmudf_i64(const wasmudf_column *c, uint32_t row) {
    return ((const int64_t *)c->values)[wasmudf_row_(c, row)];
}
static inline uint64_t wasmudf_u64(const wasmudf_column *c, uint32_t row) {
    return ((const uint64_t *)c->values)[wasmudf_row_(c, row)];
}
static inline int32_t wasmudf_i32(const wasmudf_column *c, uint32_t row) {
    return ((const int32_t *)c->values)[wasmudf_row_(c, row)];
}
static inline int16_t wasmudf_i16(const wasmudf_column *c, uint32_t row) {
    return ((const int16_t *)c->values)[wasmudf_row_(c, row)];
}
static inline int8_t wasmudf_i8(const wasmudf_column *c, uint32_t row) {
    return ((const int8_t *)c->values)[wasmudf_row_(c, row)];
}
static inline double wasmudf_f64(const wasmudf_column *c, uint32_t row) {
    return ((const double *)c->values)[wasmudf_row_(c, row)];
}
static inline float wasmudf_f32(const wasmudf_column *c, uint32_t row) {
    return ((const float *)c->values)[wasmudf_row_(c, row)];
}
static inline bool wasmudf_bool(const wasmudf_column *c, uint32_t row) {
    uint32_t r = wasmudf_row_(c, row);
    return (((const uint8_t *)c->values)[r >> 3] >> (r & 7)) & 1;
}
static inline wasmudf_bytes wasmudf_text(const wasmudf_column *c, uint32_t row) {
    uint32_t r = wasmudf_row_(c, row);
    wasmudf_bytes b = {(const char *)c->values + c->offsets[r],
                       (size_t)(c->offsets[r + 1] - c->offsets[r])};
    return b;
}

/* The result column being built: `rows` values of the declared type. */
typedef struct wasmudf_out wasmudf_out;

/* The value buffer of a fixed-width result, `rows` values, zeroed. */
int64_t *wasmudf_out_i64(wasmudf_out *out);
int32_t *wasmudf_out_i32(wasmudf_out *out);
int16_t *wasmudf_out_i16(wasmudf_out *out);
int8_t *wasmudf_out_i8(wasmudf_out *out);
double *wasmudf_out_f64(wasmudf_out *out);
float *wasmudf_out_f32(wasmudf_out *out);
void wasmudf_out_bool(wasmudf_out *out, uint32_t row, bool value);
/* Text and bytea results are appended row by row, in order (rows not appended are
 * empty). 0, or -1 when out of memory (the function should return it). */
int wasmudf_out_text(wasmudf_out *out, uint32_t row, const char *ptr, size_t len);
/* Marks `row` null. */
void wasmudf_out_null(wasmudf_out *out, uint32_t row);
/* Fails the call: the client sees SQLSTATE 38000 with the message (printf format)
 * and the row (or -1 for none). Returns -1, for `return wasmudf_fail(...)`. */
int wasmudf_fail(wasmudf_out *out, int64_t row, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

/* A scalar function: fills `out` for `rows` rows; 0 on success, -1 after
 * wasmudf_fail. A strict function's rows with a null argument are ignored by the
 * host (whatever the function writes there). */
typedef int (*wasmudf_scalar_fn)(uint32_t rows, const wasmudf_column *args, wasmudf_out *out);

/* An aggregate over fixed-size, plain-data states (they travel between instances as
 * bytes, so no pointers): `init` makes an empty state, `update` adds row `row` of
 * `args`, `merge` adds another state, `finish` writes the group's result at `row` of
 * `out`. `update` and `finish` return 0, or -1 after wasmudf_fail. */
typedef struct wasmudf_aggregate {
    size_t state_size;
    void (*init)(void *state);
    int (*update)(void *state, const wasmudf_column *args, uint32_t row, wasmudf_out *err);
    void (*merge)(void *state, const void *other);
    int (*finish)(const void *state, wasmudf_out *out, uint32_t row);
} wasmudf_aggregate;

typedef struct wasmudf_function {
    const char *name;
    const wasmudf_type *params;
    size_t param_count;
    wasmudf_type returns;
    wasmudf_volatility volatility;
    bool strict;
    wasmudf_scalar_fn scalar;               /* a scalar function, or */
    const wasmudf_aggregate *aggregate;     /* an aggregate */
} wasmudf_function;

#define WASMUDF_PARAMS_(...) \
    .params = (const wasmudf_type[]){__VA_ARGS__}, \
    .param_count = sizeof((wasmudf_type[]){__VA_ARGS__}) / sizeof(wasmudf_type)

/* A strict, immutable scalar: name, function, result type, argument types. */
#define WASMUDF_SCALAR(NAME, FN, RETURNS, ...) \
    {.name = (NAME), WASMUDF_PARAMS_(__VA_ARGS__), .returns = (RETURNS), \
     .volatility = WASMUDF_IMMUTABLE, .strict = true, .scalar = (FN)}
/* The same, called on null (the function reads validity with wasmudf_valid). */
#define WASMUDF_SCALAR_ON_NULL(NAME, FN, RETURNS, ...) \
    {.name = (NAME), WASMUDF_PARAMS_(__VA_ARGS__), .returns = (RETURNS), \
     .volatility = WASMUDF_IMMUTABLE, .strict = false, .scalar = (FN)}
/* A strict, immutable aggregate (`OPS` a wasmudf_aggregate). */
#define WASMUDF_AGGREGATE(NAME, OPS, RETURNS, ...) \
    {.name = (NAME), WASMUDF_PARAMS_(__VA_ARGS__), .returns = (RETURNS), \
     .volatility = WASMUDF_IMMUTABLE, .strict = true, .aggregate = &(OPS)}

/* The component's functions, in the order `describe` lists them. */
#define WASMUDF_EXPORT(...) \
    const wasmudf_function wasmudf_functions[] = {__VA_ARGS__}; \
    const size_t wasmudf_function_count = sizeof(wasmudf_functions) / sizeof(wasmudf_function);

/* Per-row wrappers: a plain C function of one or two fixed-width values becomes a
 * scalar (strict: null rows are skipped). Types: i64, i32, f64. */
#define WASMUDF_GET_i64 wasmudf_i64
#define WASMUDF_GET_i32 wasmudf_i32
#define WASMUDF_GET_f64 wasmudf_f64
#define WASMUDF_OUT_i64 wasmudf_out_i64
#define WASMUDF_OUT_i32 wasmudf_out_i32
#define WASMUDF_OUT_f64 wasmudf_out_f64
#define WASMUDF_ROWS_1(WRAPPER, R, FN, A) \
    static int WRAPPER(uint32_t rows, const wasmudf_column *args, wasmudf_out *out) { \
        __typeof__(WASMUDF_OUT_##R(out)) result = WASMUDF_OUT_##R(out); \
        if (args[0].validity == NULL) { \
            for (uint32_t i = 0; i < rows; i++) result[i] = FN(WASMUDF_GET_##A(&args[0], i)); \
        } else { \
            for (uint32_t i = 0; i < rows; i++) \
                if (wasmudf_valid(&args[0], i)) result[i] = FN(WASMUDF_GET_##A(&args[0], i)); \
        } \
        return 0; \
    }
#define WASMUDF_ROWS_2(WRAPPER, R, FN, A, B) \
    static int WRAPPER(uint32_t rows, const wasmudf_column *args, wasmudf_out *out) { \
        __typeof__(WASMUDF_OUT_##R(out)) result = WASMUDF_OUT_##R(out); \
        bool all_valid = args[0].validity == NULL && args[1].validity == NULL; \
        for (uint32_t i = 0; i < rows; i++) \
            if (all_valid || (wasmudf_valid(&args[0], i) && wasmudf_valid(&args[1], i))) \
                result[i] = FN(WASMUDF_GET_##A(&args[0], i), WASMUDF_GET_##B(&args[1], i)); \
        return 0; \
    }

extern const wasmudf_function wasmudf_functions[];
extern const size_t wasmudf_function_count;

#endif
