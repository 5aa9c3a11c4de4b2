/* The contract's exports (wit-bindgen's C bindings in gen/) over the functions a
 * component lists with WASMUDF_EXPORT.
 *
 * Ownership, as wit-bindgen's C bindings have it: argument lists belong to the export
 * (freed here after the call); results are malloc'd here and freed by the generated
 * post-return functions once the host has read them. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "udfs.h"
#include "wasmudf.h"

/* gen/udfs.c links wit-bindgen's udfs_component_type.o through this symbol; wasmudf
 * build embeds the contract itself (see server/src/build/c.rs), so it is defined here. */
void __component_type_object_force_link_udfs(void) {}

struct wasmudf_out {
    wasmudf_type type;
    uint32_t rows;
    uint8_t *values;
    size_t values_len; /* bytes used (text, bytea) */
    size_t values_cap;
    int32_t *offsets;  /* text, bytea */
    int64_t text_row;  /* the row being appended to, -1 before the first */
    uint8_t *validity; /* NULL until a row is null */
    bool failed;
    char *message;
    int64_t row;
    void *scratch; /* what a mismatched accessor writes into */
};

/* Bytes per value of a fixed-width type (0: boolean, bit-packed; -1: variable). */
static int width_of(wasmudf_type t) {
    switch (t) {
    case WASMUDF_BOOLEAN: return 0;
    case WASMUDF_INT8: case WASMUDF_UINT8: return 1;
    case WASMUDF_INT16: case WASMUDF_UINT16: return 2;
    case WASMUDF_INT32: case WASMUDF_UINT32: case WASMUDF_FLOAT32: case WASMUDF_DATE: return 4;
    case WASMUDF_INT64: case WASMUDF_UINT64: case WASMUDF_FLOAT64: return 8;
    case WASMUDF_TEXT: case WASMUDF_BYTEA: return -1;
    }
    return -1;
}

static uint8_t wit_tag(wasmudf_type t) {
    switch (t) {
    case WASMUDF_BOOLEAN: return WASMUDF_UDF_TYPES_DATA_TYPE_BOOLEAN;
    case WASMUDF_INT8: return WASMUDF_UDF_TYPES_DATA_TYPE_INT8;
    case WASMUDF_INT16: return WASMUDF_UDF_TYPES_DATA_TYPE_INT16;
    case WASMUDF_INT32: return WASMUDF_UDF_TYPES_DATA_TYPE_INT32;
    case WASMUDF_INT64: return WASMUDF_UDF_TYPES_DATA_TYPE_INT64;
    case WASMUDF_UINT8: return WASMUDF_UDF_TYPES_DATA_TYPE_UINT8;
    case WASMUDF_UINT16: return WASMUDF_UDF_TYPES_DATA_TYPE_UINT16;
    case WASMUDF_UINT32: return WASMUDF_UDF_TYPES_DATA_TYPE_UINT32;
    case WASMUDF_UINT64: return WASMUDF_UDF_TYPES_DATA_TYPE_UINT64;
    case WASMUDF_FLOAT32: return WASMUDF_UDF_TYPES_DATA_TYPE_FLOAT32;
    case WASMUDF_FLOAT64: return WASMUDF_UDF_TYPES_DATA_TYPE_FLOAT64;
    case WASMUDF_TEXT: return WASMUDF_UDF_TYPES_DATA_TYPE_UTF8;
    case WASMUDF_BYTEA: return WASMUDF_UDF_TYPES_DATA_TYPE_BINARY;
    case WASMUDF_DATE: return WASMUDF_UDF_TYPES_DATA_TYPE_DATE32;
    }
    return WASMUDF_UDF_TYPES_DATA_TYPE_BINARY;
}

/* ---- results ---- */

static bool out_init(wasmudf_out *o, wasmudf_type type, uint32_t rows) {
    memset(o, 0, sizeof *o);
    o->type = type;
    o->rows = rows;
    o->text_row = -1;
    o->row = -1;
    int w = width_of(type);
    if (w > 0) {
        o->values = calloc(rows ? rows : 1, (size_t)w);
    } else if (w == 0) {
        o->values = calloc((rows + 7) / 8 ? (rows + 7) / 8 : 1, 1);
    } else {
        o->offsets = calloc((size_t)rows + 1, sizeof(int32_t));
        o->values_cap = 64;
        o->values = malloc(o->values_cap);
        if (o->offsets == NULL) return false;
    }
    return o->values != NULL;
}

static void out_free(wasmudf_out *o) {
    free(o->values);
    free(o->offsets);
    free(o->validity);
    free(o->message);
    free(o->scratch);
}

static void *typed_values(wasmudf_out *o, int width) {
    /* A wrong accessor for the declared type is a bug in the function: fail loudly. */
    if (width_of(o->type) != width) {
        wasmudf_fail(o, -1, "result accessor does not match the declared result type");
        if (o->scratch == NULL) o->scratch = calloc(o->rows ? o->rows : 1, 8);
        if (o->scratch == NULL) abort();
        return o->scratch;
    }
    return o->values;
}

int64_t *wasmudf_out_i64(wasmudf_out *o) { return typed_values(o, 8); }
int32_t *wasmudf_out_i32(wasmudf_out *o) { return typed_values(o, 4); }
int16_t *wasmudf_out_i16(wasmudf_out *o) { return typed_values(o, 2); }
int8_t *wasmudf_out_i8(wasmudf_out *o) { return typed_values(o, 1); }
double *wasmudf_out_f64(wasmudf_out *o) { return typed_values(o, 8); }
float *wasmudf_out_f32(wasmudf_out *o) { return typed_values(o, 4); }

void wasmudf_out_bool(wasmudf_out *o, uint32_t row, bool value) {
    if (o->type != WASMUDF_BOOLEAN || row >= o->rows) return;
    if (value)
        o->values[row >> 3] |= (uint8_t)(1u << (row & 7));
    else
        o->values[row >> 3] &= (uint8_t) ~(1u << (row & 7));
}

void wasmudf_out_null(wasmudf_out *o, uint32_t row) {
    if (row >= o->rows) return;
    if (o->validity == NULL) {
        size_t n = (o->rows + 7) / 8;
        o->validity = malloc(n ? n : 1);
        if (o->validity == NULL) {
            wasmudf_fail(o, row, "out of memory");
            return;
        }
        memset(o->validity, 0xff, n);
    }
    o->validity[row >> 3] &= (uint8_t) ~(1u << (row & 7));
}

int wasmudf_out_text(wasmudf_out *o, uint32_t row, const char *ptr, size_t len) {
    if (width_of(o->type) != -1) return wasmudf_fail(o, row, "text result for a non-text function");
    if (row >= o->rows || (int64_t)row < o->text_row)
        return wasmudf_fail(o, row, "text results must be appended in row order");
    for (int64_t k = o->text_row + 1; k <= (int64_t)row; k++) o->offsets[k] = (int32_t)o->values_len;
    o->text_row = row;
    if (len > (size_t)INT32_MAX - o->values_len) return wasmudf_fail(o, row, "text results exceed 2 GiB");
    if (o->values_len + len > o->values_cap) {
        size_t cap = o->values_cap * 2;
        while (cap < o->values_len + len) cap *= 2;
        uint8_t *grown = realloc(o->values, cap);
        if (grown == NULL) return -1;
        o->values = grown;
        o->values_cap = cap;
    }
    memcpy(o->values + o->values_len, ptr, len);
    o->values_len += len;
    return 0;
}

int wasmudf_fail(wasmudf_out *o, int64_t row, const char *format, ...) {
    if (o->failed) return -1; /* the first error is the one reported */
    o->failed = true;
    o->row = row;
    char buf[512];
    va_list ap;
    va_start(ap, format);
    vsnprintf(buf, sizeof buf, format, ap);
    va_end(ap);
    o->message = strdup(buf);
    return -1;
}

/* Moves the result into a contract column (the post-return function frees it). */
static void out_column(wasmudf_out *o, wasmudf_udf_types_column_t *col) {
    memset(col, 0, sizeof *col);
    col->len = o->rows;
    int w = width_of(o->type);
    if (w == -1) {
        for (int64_t k = o->text_row + 1; k <= (int64_t)o->rows; k++) o->offsets[k] = (int32_t)o->values_len;
        col->offsets.ptr = o->offsets;
        col->offsets.len = (size_t)o->rows + 1;
        col->values.tag = WASMUDF_UDF_TYPES_BUFFER_BYTES;
        col->values.val.bytes.ptr = o->values;
        col->values.val.bytes.len = o->values_len;
        o->offsets = NULL;
    } else {
        switch (w) {
        case 0:
        case 1:
            col->values.tag = WASMUDF_UDF_TYPES_BUFFER_BYTES;
            col->values.val.bytes.ptr = o->values;
            col->values.val.bytes.len = w == 0 ? (o->rows + 7) / 8 : o->rows;
            break;
        case 2:
            col->values.tag = WASMUDF_UDF_TYPES_BUFFER_U16S;
            col->values.val.u16s.ptr = (uint16_t *)o->values;
            col->values.val.u16s.len = o->rows;
            break;
        case 4:
            col->values.tag = WASMUDF_UDF_TYPES_BUFFER_U32S;
            col->values.val.u32s.ptr = (uint32_t *)o->values;
            col->values.val.u32s.len = o->rows;
            break;
        default:
            col->values.tag = WASMUDF_UDF_TYPES_BUFFER_U64S;
            col->values.val.u64s.ptr = (uint64_t *)o->values;
            col->values.val.u64s.len = o->rows;
            break;
        }
    }
    o->values = NULL;
    if (o->validity != NULL) {
        col->validity.is_some = true;
        col->validity.val.ptr = o->validity;
        col->validity.val.len = (o->rows + 7) / 8;
        o->validity = NULL;
    }
}

static void set_error(wasmudf_udf_types_udf_error_t *err, const char *message, int64_t row) {
    udfs_string_dup(&err->message, message ? message : "the function failed");
    err->row.is_some = row >= 0;
    err->row.val = row >= 0 ? (uint32_t)row : 0;
}

/* ---- arguments ---- */

static wasmudf_column arg_view(const wasmudf_udf_types_column_t *c, wasmudf_type type) {
    wasmudf_column v;
    v.type = type;
    v.len = c->len;
    v.validity = c->validity.is_some ? c->validity.val.ptr : NULL;
    v.offsets = c->offsets.ptr;
    switch (c->values.tag) {
    case WASMUDF_UDF_TYPES_BUFFER_BYTES:
        v.values = c->values.val.bytes.ptr;
        v.values_len = c->values.val.bytes.len;
        break;
    case WASMUDF_UDF_TYPES_BUFFER_U16S:
        v.values = c->values.val.u16s.ptr;
        v.values_len = c->values.val.u16s.len * 2;
        break;
    case WASMUDF_UDF_TYPES_BUFFER_U32S:
        v.values = c->values.val.u32s.ptr;
        v.values_len = c->values.val.u32s.len * 4;
        break;
    default:
        v.values = c->values.val.u64s.ptr;
        v.values_len = c->values.val.u64s.len * 8;
        break;
    }
    return v;
}

static const wasmudf_function *function_of(uint32_t number, bool aggregate) {
    if (number >= wasmudf_function_count) return NULL;
    const wasmudf_function *f = &wasmudf_functions[number];
    return (f->aggregate != NULL) == aggregate ? f : NULL;
}

/* ---- guest ---- */

void exports_wasmudf_udf_guest_describe(exports_wasmudf_udf_guest_list_function_signature_t *ret) {
    size_t n = wasmudf_function_count;
    ret->ptr = calloc(n ? n : 1, sizeof *ret->ptr);
    ret->len = ret->ptr ? n : 0;
    for (size_t i = 0; i < ret->len; i++) {
        const wasmudf_function *f = &wasmudf_functions[i];
        wasmudf_udf_types_function_signature_t *s = &ret->ptr[i];
        udfs_string_dup(&s->name, f->name);
        s->kind = f->aggregate ? WASMUDF_UDF_TYPES_FUNCTION_KIND_AGGREGATE
                               : WASMUDF_UDF_TYPES_FUNCTION_KIND_SCALAR;
        s->params.ptr = calloc(f->param_count ? f->param_count : 1, sizeof *s->params.ptr);
        s->params.len = s->params.ptr ? f->param_count : 0;
        for (size_t p = 0; p < s->params.len; p++) s->params.ptr[p].tag = wit_tag(f->params[p]);
        s->returns.tag = wit_tag(f->returns);
        s->volatility = (wasmudf_udf_types_volatility_t)f->volatility;
        s->null_handling = f->strict ? WASMUDF_UDF_TYPES_NULL_HANDLING_STRICT
                                     : WASMUDF_UDF_TYPES_NULL_HANDLING_CALLED_ON_NULL;
    }
}

/* ---- scalar ---- */

#define MAX_ARGS 32

bool exports_wasmudf_udf_scalar_call(uint32_t function, uint32_t rows,
                                     exports_wasmudf_udf_scalar_list_column_t *args,
                                     exports_wasmudf_udf_scalar_column_t *ret,
                                     exports_wasmudf_udf_scalar_udf_error_t *err) {
    const wasmudf_function *f = function_of(function, false);
    bool ok = false;
    if (f == NULL || args->len != f->param_count || args->len > MAX_ARGS) {
        set_error(err, "no such scalar function, or the wrong number of arguments", -1);
    } else {
        wasmudf_column views[MAX_ARGS];
        for (size_t i = 0; i < args->len; i++) views[i] = arg_view(&args->ptr[i], f->params[i]);
        wasmudf_out out;
        if (!out_init(&out, f->returns, rows)) {
            set_error(err, "out of memory", -1);
        } else {
            int status = f->scalar(rows, views, &out);
            if (status != 0 || out.failed) {
                set_error(err, out.message, out.row);
            } else {
                out_column(&out, ret);
                ok = true;
            }
            out_free(&out);
        }
    }
    exports_wasmudf_udf_scalar_list_column_free(args);
    return ok;
}

/* ---- aggregate ---- */

struct exports_wasmudf_udf_aggregate_groups_t {
    const wasmudf_function *f;
    uint8_t *states;
    size_t count;
    size_t cap;
};

bool exports_wasmudf_udf_aggregate_info(uint32_t function,
                                        exports_wasmudf_udf_aggregate_aggregate_info_t *ret,
                                        exports_wasmudf_udf_aggregate_udf_error_t *err) {
    if (function_of(function, true) == NULL) {
        set_error(err, "no such aggregate function", -1);
        return false;
    }
    ret->state.ptr = calloc(1, sizeof *ret->state.ptr);
    if (ret->state.ptr == NULL) {
        set_error(err, "out of memory", -1);
        return false;
    }
    ret->state.len = 1;
    ret->state.ptr[0].tag = WASMUDF_UDF_TYPES_DATA_TYPE_BINARY;
    ret->retract = false;
    return true;
}

exports_wasmudf_udf_aggregate_own_groups_t exports_wasmudf_udf_aggregate_constructor_groups(uint32_t function) {
    exports_wasmudf_udf_aggregate_groups_t *g = calloc(1, sizeof *g);
    if (g == NULL) abort(); /* the constructor cannot return an error; the host sees a trap */
    g->f = function_of(function, true);
    return exports_wasmudf_udf_aggregate_groups_new(g);
}

void exports_wasmudf_udf_aggregate_groups_destructor(exports_wasmudf_udf_aggregate_groups_t *g) {
    free(g->states);
    free(g);
}

static uint8_t *state_at(exports_wasmudf_udf_aggregate_groups_t *g, size_t i) {
    return g->states + i * g->f->aggregate->state_size;
}

static bool grow(exports_wasmudf_udf_aggregate_groups_t *g, size_t total, wasmudf_udf_types_udf_error_t *err) {
    if (g->f == NULL) {
        set_error(err, "no such aggregate function", -1);
        return false;
    }
    if (total <= g->count) return true;
    size_t size = g->f->aggregate->state_size;
    if (total > g->cap) {
        size_t cap = g->cap ? g->cap : 64;
        while (cap < total) cap *= 2;
        uint8_t *grown = realloc(g->states, cap * (size ? size : 1));
        if (grown == NULL) {
            set_error(err, "out of memory for the groups' states", -1);
            return false;
        }
        g->states = grown;
        g->cap = cap;
    }
    for (size_t i = g->count; i < total; i++) g->f->aggregate->init(state_at(g, i));
    g->count = total;
    return true;
}

bool exports_wasmudf_udf_aggregate_method_groups_update(exports_wasmudf_udf_aggregate_borrow_groups_t g,
                                                        exports_wasmudf_udf_aggregate_list_column_t *args,
                                                        udfs_list_u32_t *group_indices, uint32_t total_groups,
                                                        exports_wasmudf_udf_aggregate_udf_error_t *err) {
    bool ok = grow(g, total_groups, err);
    if (ok && (args->len != g->f->param_count || args->len > MAX_ARGS)) {
        set_error(err, "the wrong number of arguments", -1);
        ok = false;
    }
    if (ok) {
        wasmudf_column views[MAX_ARGS];
        for (size_t i = 0; i < args->len; i++) views[i] = arg_view(&args->ptr[i], g->f->params[i]);
        wasmudf_out scratch;
        memset(&scratch, 0, sizeof scratch);
        scratch.row = -1;
        for (size_t i = 0; i < group_indices->len && ok; i++) {
            uint32_t group = group_indices->ptr[i];
            if (group >= g->count) {
                set_error(err, "group index beyond total-groups", (int64_t)i);
                ok = false;
            } else if (g->f->aggregate->update(state_at(g, group), views, (uint32_t)i, &scratch) != 0 ||
                       scratch.failed) {
                set_error(err, scratch.message, scratch.failed ? scratch.row : (int64_t)i);
                ok = false;
            }
        }
        free(scratch.message);
    }
    exports_wasmudf_udf_aggregate_list_column_free(args);
    udfs_list_u32_free(group_indices);
    return ok;
}

bool exports_wasmudf_udf_aggregate_method_groups_retract(exports_wasmudf_udf_aggregate_borrow_groups_t g,
                                                         exports_wasmudf_udf_aggregate_list_column_t *args,
                                                         udfs_list_u32_t *group_indices, uint32_t total_groups,
                                                         exports_wasmudf_udf_aggregate_udf_error_t *err) {
    (void)g;
    (void)total_groups;
    exports_wasmudf_udf_aggregate_list_column_free(args);
    udfs_list_u32_free(group_indices);
    set_error(err, "this aggregate cannot retract rows", -1);
    return false;
}

bool exports_wasmudf_udf_aggregate_method_groups_merge(exports_wasmudf_udf_aggregate_borrow_groups_t g,
                                                       exports_wasmudf_udf_aggregate_list_column_t *states,
                                                       udfs_list_u32_t *group_indices, uint32_t total_groups,
                                                       exports_wasmudf_udf_aggregate_udf_error_t *err) {
    bool ok = grow(g, total_groups, err);
    if (ok && (states->len != 1 || states->ptr[0].values.tag != WASMUDF_UDF_TYPES_BUFFER_BYTES ||
               states->ptr[0].offsets.len != (size_t)states->ptr[0].len + 1 ||
               states->ptr[0].len != group_indices->len)) {
        set_error(err, "merge: not a state column of this aggregate", -1);
        ok = false;
    }
    if (ok) {
        const wasmudf_udf_types_column_t *c = &states->ptr[0];
        size_t size = g->f->aggregate->state_size;
        for (size_t i = 0; i < group_indices->len && ok; i++) {
            int32_t start = c->offsets.ptr[i], end = c->offsets.ptr[i + 1];
            uint32_t group = group_indices->ptr[i];
            if (end - start != (int32_t)size || start < 0 || (size_t)end > c->values.val.bytes.len ||
                group >= g->count) {
                set_error(err, "merge: a state of the wrong size", (int64_t)i);
                ok = false;
            } else {
                g->f->aggregate->merge(state_at(g, group), c->values.val.bytes.ptr + start);
            }
        }
    }
    exports_wasmudf_udf_aggregate_list_column_free(states);
    udfs_list_u32_free(group_indices);
    return ok;
}

/* How many groups `emit` takes. */
static size_t emitted(exports_wasmudf_udf_aggregate_groups_t *g, const exports_wasmudf_udf_aggregate_emit_to_t *emit) {
    if (emit->tag == EXPORTS_WASMUDF_UDF_AGGREGATE_EMIT_TO_FIRST)
        return emit->val.first < g->count ? emit->val.first : g->count;
    return g->count;
}

/* Removes the groups `emit` took (none for peek-all). */
static void drop_emitted(exports_wasmudf_udf_aggregate_groups_t *g, const exports_wasmudf_udf_aggregate_emit_to_t *emit, size_t n) {
    if (emit->tag == EXPORTS_WASMUDF_UDF_AGGREGATE_EMIT_TO_PEEK_ALL) return;
    size_t size = g->f->aggregate->state_size;
    memmove(g->states, g->states + n * size, (g->count - n) * size);
    g->count -= n;
}

bool exports_wasmudf_udf_aggregate_method_groups_state(exports_wasmudf_udf_aggregate_borrow_groups_t g,
                                                       exports_wasmudf_udf_aggregate_emit_to_t *emit,
                                                       exports_wasmudf_udf_aggregate_list_column_t *ret,
                                                       exports_wasmudf_udf_aggregate_udf_error_t *err) {
    if (g->f == NULL) {
        set_error(err, "no such aggregate function", -1);
        return false;
    }
    size_t n = emitted(g, emit), size = g->f->aggregate->state_size;
    wasmudf_out out;
    if (!out_init(&out, WASMUDF_BYTEA, (uint32_t)n)) {
        set_error(err, "out of memory", -1);
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (wasmudf_out_text(&out, (uint32_t)i, (const char *)state_at(g, i), size) != 0) {
            set_error(err, out.message ? out.message : "out of memory", -1);
            out_free(&out);
            return false;
        }
    }
    ret->ptr = calloc(1, sizeof *ret->ptr);
    if (ret->ptr == NULL) {
        out_free(&out);
        set_error(err, "out of memory", -1);
        return false;
    }
    ret->len = 1;
    out_column(&out, &ret->ptr[0]);
    out_free(&out);
    drop_emitted(g, emit, n);
    return true;
}

bool exports_wasmudf_udf_aggregate_method_groups_evaluate(exports_wasmudf_udf_aggregate_borrow_groups_t g,
                                                          exports_wasmudf_udf_aggregate_emit_to_t *emit,
                                                          exports_wasmudf_udf_aggregate_column_t *ret,
                                                          exports_wasmudf_udf_aggregate_udf_error_t *err) {
    if (g->f == NULL) {
        set_error(err, "no such aggregate function", -1);
        return false;
    }
    size_t n = emitted(g, emit);
    wasmudf_out out;
    if (!out_init(&out, g->f->returns, (uint32_t)n)) {
        set_error(err, "out of memory", -1);
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (g->f->aggregate->finish(state_at(g, i), &out, (uint32_t)i) != 0 || out.failed) {
            set_error(err, out.message, out.failed ? out.row : (int64_t)i);
            out_free(&out);
            return false;
        }
    }
    out_column(&out, ret);
    out_free(&out);
    drop_emitted(g, emit, n);
    return true;
}
