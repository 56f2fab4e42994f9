/* The YAML reader: libyaml's document API to a located tree (ytree.h). */
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "core/core.h"
#include "topology/ytree.h"

/* Bounds that keep hostile input (the fuzzer's, or a mistake) cheap. */
#define TY_MAX_DEPTH 64

struct conv {
    yaml_document_t *ydoc;
    struct ty_doc *doc;
    struct ty_node **memo; /* per libyaml node index: converted node */
    uint8_t *state;        /* 0 = not yet, 1 = in progress, 2 = done */
    size_t n;
    struct ty_error *err;
};

static void set_error(struct ty_error *err, uint32_t line, uint32_t col, const char *fmt, ...)
    FL_PRINTF(4, 5);
static void set_error(struct ty_error *err, uint32_t line, uint32_t col, const char *fmt, ...)
{
    if (err->msg) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    err->msg = fl_xvasprintf(fmt, ap);
    va_end(ap);
    err->line = line;
    err->col = col;
}

static struct ty_node *new_node(struct ty_doc *doc, enum ty_type type, const yaml_mark_t *mark)
{
    struct ty_node *n = fl_xcalloc(1, sizeof(*n));
    n->type = type;
    n->line = (uint32_t)mark->line + 1;
    n->col = (uint32_t)mark->column + 1;
    doc->all = fl_xgrow(doc->all, &doc->alloc_all, doc->n_all + 1, sizeof(*doc->all));
    doc->all[doc->n_all++] = n;
    return n;
}

static bool is_merge_key(const yaml_node_t *k)
{
    return k->type == YAML_SCALAR_NODE && k->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
           k->data.scalar.length == 2 && !memcmp(k->data.scalar.value, "<<", 2);
}

static bool scalar_eq(const struct ty_node *a, const struct ty_node *b)
{
    return a->type == TY_SCALAR && b->type == TY_SCALAR && a->len == b->len &&
           !memcmp(a->str, b->str, a->len);
}

static struct ty_node *convert(struct conv *c, int index, int depth);

static void map_add(struct ty_node *m, size_t *alloc, struct ty_node *k, struct ty_node *v)
{
    m->pairs = fl_xgrow(m->pairs, alloc, m->n_pairs + 1, sizeof(*m->pairs));
    m->pairs[m->n_pairs].key = k;
    m->pairs[m->n_pairs].value = v;
    m->n_pairs++;
}

/* Adds the pairs of a merged mapping whose keys the target lacks. */
static void merge_into(struct ty_node *m, size_t *alloc, size_t n_written,
                       const struct ty_node *src)
{
    for (size_t i = 0; i < src->n_pairs; i++) {
        bool present = false;
        for (size_t j = 0; j < m->n_pairs && !present; j++) {
            present = scalar_eq(m->pairs[j].key, src->pairs[i].key);
        }
        (void)n_written;
        if (!present) {
            map_add(m, alloc, src->pairs[i].key, src->pairs[i].value);
        }
    }
}

static struct ty_node *convert_mapping(struct conv *c, yaml_node_t *y, int depth)
{
    struct ty_node *m = new_node(c->doc, TY_MAP, &y->start_mark);
    size_t alloc = 0;
    /* Written pairs first, merges after, so written keys win. */
    for (yaml_node_pair_t *p = y->data.mapping.pairs.start; p < y->data.mapping.pairs.top; p++) {
        yaml_node_t *yk = yaml_document_get_node(c->ydoc, p->key);
        if (yk && is_merge_key(yk)) {
            continue;
        }
        struct ty_node *k = convert(c, p->key, depth + 1);
        struct ty_node *v = convert(c, p->value, depth + 1);
        if (!k || !v) {
            return NULL;
        }
        map_add(m, &alloc, k, v);
    }
    size_t n_written = m->n_pairs;
    for (yaml_node_pair_t *p = y->data.mapping.pairs.start; p < y->data.mapping.pairs.top; p++) {
        yaml_node_t *yk = yaml_document_get_node(c->ydoc, p->key);
        if (!yk || !is_merge_key(yk)) {
            continue;
        }
        struct ty_node *v = convert(c, p->value, depth + 1);
        if (!v) {
            return NULL;
        }
        if (v->type == TY_MAP) {
            merge_into(m, &alloc, n_written, v);
        } else if (v->type == TY_SEQ) {
            for (size_t i = 0; i < v->n_items; i++) {
                if (v->items[i]->type != TY_MAP) {
                    set_error(c->err, v->items[i]->line, v->items[i]->col,
                              "a merge key '<<' takes a mapping or a list of mappings "
                              "(e.g. '<<: *defaults')");
                    return NULL;
                }
                merge_into(m, &alloc, n_written, v->items[i]);
            }
        } else {
            set_error(c->err, v->line, v->col,
                      "a merge key '<<' takes a mapping or a list of mappings "
                      "(e.g. '<<: *defaults')");
            return NULL;
        }
    }
    return m;
}

static struct ty_node *convert(struct conv *c, int index, int depth)
{
    yaml_node_t *y = yaml_document_get_node(c->ydoc, index);
    if (!y || index < 1 || (size_t)index > c->n) {
        set_error(c->err, 1, 1, "internal YAML structure error");
        return NULL;
    }
    size_t i = (size_t)index - 1;
    if (c->state[i] == 2) {
        return c->memo[i];
    }
    if (c->state[i] == 1) {
        set_error(c->err, (uint32_t)y->start_mark.line + 1, (uint32_t)y->start_mark.column + 1,
                  "an alias refers to a node that contains it (recursive structure)");
        return NULL;
    }
    if (depth > TY_MAX_DEPTH) {
        set_error(c->err, (uint32_t)y->start_mark.line + 1, (uint32_t)y->start_mark.column + 1,
                  "nesting deeper than %d levels", TY_MAX_DEPTH);
        return NULL;
    }
    c->state[i] = 1;
    struct ty_node *n = NULL;
    switch (y->type) {
    case YAML_SCALAR_NODE:
        n = new_node(c->doc, TY_SCALAR, &y->start_mark);
        n->len = y->data.scalar.length;
        n->str = fl_xmalloc(n->len + 1);
        memcpy(n->str, y->data.scalar.value, n->len);
        n->str[n->len] = '\0';
        n->quoted = y->data.scalar.style != YAML_PLAIN_SCALAR_STYLE &&
                    y->data.scalar.style != YAML_ANY_SCALAR_STYLE;
        break;
    case YAML_SEQUENCE_NODE: {
        n = new_node(c->doc, TY_SEQ, &y->start_mark);
        size_t alloc = 0;
        for (yaml_node_item_t *it = y->data.sequence.items.start; it < y->data.sequence.items.top;
             it++) {
            struct ty_node *child = convert(c, *it, depth + 1);
            if (!child) {
                return NULL;
            }
            n->items = fl_xgrow(n->items, &alloc, n->n_items + 1, sizeof(*n->items));
            n->items[n->n_items++] = child;
        }
        break;
    }
    case YAML_MAPPING_NODE:
        n = convert_mapping(c, y, depth);
        if (!n) {
            return NULL;
        }
        break;
    default:
        set_error(c->err, (uint32_t)y->start_mark.line + 1, (uint32_t)y->start_mark.column + 1,
                  "empty YAML node");
        return NULL;
    }
    c->memo[i] = n;
    c->state[i] = 2;
    return n;
}

static void parser_error(const yaml_parser_t *p, struct ty_error *err)
{
    const char *problem = p->problem ? p->problem : "malformed YAML";
    uint32_t line = (uint32_t)p->problem_mark.line + 1;
    uint32_t col = (uint32_t)p->problem_mark.column + 1;
    if (p->context) {
        set_error(err, line, col, "YAML syntax error: %s (%s at line %zu, column %zu)", problem,
                  p->context, p->context_mark.line + 1, p->context_mark.column + 1);
    } else {
        set_error(err, line, col, "YAML syntax error: %s", problem);
    }
}

bool ty_load(const char *text, size_t len, struct ty_doc *doc, struct ty_error *err)
{
    memset(doc, 0, sizeof(*doc));
    memset(err, 0, sizeof(*err));
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser)) {
        set_error(err, 1, 1, "cannot initialize the YAML parser");
        return false;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    yaml_document_t ydoc;
    if (!yaml_parser_load(&parser, &ydoc)) {
        parser_error(&parser, err);
        yaml_parser_delete(&parser);
        return false;
    }
    bool ok = true;
    yaml_node_t *root = yaml_document_get_root_node(&ydoc);
    if (root) {
        struct conv c = {
            .ydoc = &ydoc,
            .doc = doc,
            .n = (size_t)(ydoc.nodes.top - ydoc.nodes.start),
            .err = err,
        };
        c.memo = fl_xcalloc(c.n ? c.n : 1, sizeof(*c.memo));
        c.state = fl_xcalloc(c.n ? c.n : 1, 1);
        doc->root = convert(&c, 1, 0);
        ok = doc->root != NULL;
        free(c.memo);
        free(c.state);
    }
    yaml_document_delete(&ydoc);
    if (ok && root) {
        /* A second document is a mistake (a stray '---'), not something to
         * ignore. */
        yaml_document_t next;
        if (!yaml_parser_load(&parser, &next)) {
            parser_error(&parser, err);
            ok = false;
        } else {
            yaml_node_t *r2 = yaml_document_get_root_node(&next);
            if (r2) {
                set_error(err, (uint32_t)next.start_mark.line + 1,
                          (uint32_t)next.start_mark.column + 1,
                          "a second YAML document ('---'); a scenario is one document");
                ok = false;
            }
            yaml_document_delete(&next);
        }
    }
    yaml_parser_delete(&parser);
    if (!ok) {
        ty_doc_free(doc);
    }
    return ok;
}

void ty_doc_free(struct ty_doc *doc)
{
    for (size_t i = 0; i < doc->n_all; i++) {
        struct ty_node *n = doc->all[i];
        free(n->str);
        free(n->items);
        free(n->pairs);
        free(n);
    }
    free(doc->all);
    memset(doc, 0, sizeof(*doc));
}

bool ty_is_null(const struct ty_node *n)
{
    if (n->type != TY_SCALAR || n->quoted) {
        return false;
    }
    return n->len == 0 || !strcmp(n->str, "~") || !strcmp(n->str, "null") ||
           !strcmp(n->str, "Null") || !strcmp(n->str, "NULL");
}

struct ty_node *ty_map_get(const struct ty_node *map, const char *key)
{
    if (!map || map->type != TY_MAP) {
        return NULL;
    }
    size_t klen = strlen(key);
    for (size_t i = 0; i < map->n_pairs; i++) {
        const struct ty_node *k = map->pairs[i].key;
        if (k->type == TY_SCALAR && k->len == klen && !memcmp(k->str, key, klen)) {
            return map->pairs[i].value;
        }
    }
    return NULL;
}
