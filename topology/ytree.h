/*
 * Internal to topology/: a YAML document as a tree whose every node knows
 * where it came from (line:col), built from libyaml's events as they are
 * parsed: the nesting limit (64 levels) stops the parser where it is
 * crossed, so hostile depth costs nothing beyond it.
 *
 * Aliases share nodes (the tree is a DAG; recursive aliases are errors),
 * `<<` merge keys are applied (keys written in the mapping win over merged
 * ones; merged pairs keep the location where they were written), so the
 * schema code never sees anchors, aliases or merges.
 */
#ifndef FL_TOPOLOGY_YTREE_H
#define FL_TOPOLOGY_YTREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum ty_type {
    TY_SCALAR,
    TY_SEQ,
    TY_MAP,
};

struct ty_pair;

struct ty_node {
    enum ty_type type;
    uint32_t line, col; /* 1-based */
    /* TY_SCALAR */
    char *str; /* NUL-terminated (may also hold NULs; len is the truth) */
    size_t len;
    bool quoted; /* single/double quoted or block scalar: never null */
    /* TY_SEQ */
    struct ty_node **items;
    size_t n_items;
    /* TY_MAP */
    struct ty_pair *pairs;
    size_t n_pairs;
};

struct ty_pair {
    struct ty_node *key;
    struct ty_node *value;
};

struct ty_doc {
    struct ty_node *root; /* NULL: the document is empty */
    struct ty_node **all; /* every node, for freeing */
    size_t n_all, alloc_all;
};

/* A YAML syntax or structure error. */
struct ty_error {
    uint32_t line, col;
    char *msg;
};

/* Parses text.  On failure returns false and fills *err (free err->msg). */
bool ty_load(const char *text, size_t len, struct ty_doc *doc, struct ty_error *err);
void ty_doc_free(struct ty_doc *doc);

/* A plain (unquoted) scalar "", "~", "null", "Null" or "NULL". */
bool ty_is_null(const struct ty_node *n);
/* Looks up a key in a mapping (last match wins: merged pairs come after
 * written ones only when not overridden, so there is at most one). */
struct ty_node *ty_map_get(const struct ty_node *map, const char *key);

#endif /* FL_TOPOLOGY_YTREE_H */
