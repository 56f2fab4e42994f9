/*
 * runner/json.h — a small strict JSON reader, for the files runs write
 * (summary.json) read back by the index of a directory of runs
 * (runner/index.c).  RFC 8259: objects, arrays, strings (\u escapes,
 * surrogate pairs), numbers, true, false, null; nesting at most 64 deep.
 * Numbers keep their text, so a 64-bit seed reads back exactly.
 */
#ifndef FL_RUNNER_JSON_H
#define FL_RUNNER_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

enum rn_json_type {
    RN_JSON_NULL,
    RN_JSON_BOOL,
    RN_JSON_NUMBER,
    RN_JSON_STRING,
    RN_JSON_ARRAY,
    RN_JSON_OBJECT
};

struct rn_json {
    enum rn_json_type type;
    bool boolean;
    char *text;            /* a string's UTF-8 (NUL-terminated), a number's text */
    struct rn_json *items; /* array items, object values */
    char **keys;           /* object keys (same order as items) */
    size_t n;
};

/* The document in text[0..size), or NULL with *errp naming what and the
 * byte offset. */
struct rn_json *rn_json_parse(const char *text, size_t size, struct fl_error **errp);
void rn_json_free(struct rn_json *json);
/* An object's member, or NULL (also when json is not an object). */
const struct rn_json *rn_json_get(const struct rn_json *json, const char *key);
/* A string member's text, or NULL. */
const char *rn_json_str(const struct rn_json *json, const char *key);
/* A number member that is a non-negative integer: true and *out. */
bool rn_json_u64(const struct rn_json *json, const char *key, uint64_t *out);
bool rn_json_i64(const struct rn_json *json, const char *key, int64_t *out);

#endif /* FL_RUNNER_JSON_H */
