/* The YAML reader: libyaml's event API to a located tree (ytree.h).  The
 * tree is built as the events arrive, so the limits (nesting) stop the
 * parser itself, not a walk over a tree libyaml has already built. */
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "core/core.h"
#include "topology/keyset.h"
#include "topology/ytree.h"

/* Bounds that keep hostile input (the fuzzer's, or a mistake) cheap. */
#define TY_MAX_DEPTH 64

/* One open collection while its events arrive.  Mappings keep their
 * pairs as written (merge pairs included) and are assembled at their end:
 * written pairs first, merged ones after, so written keys win. */
struct frame {
    struct ty_node *n;
    struct ty_pair *raw; /* mapping: pairs as written, key NULL = awaiting */
    size_t n_raw, alloc_raw;
    size_t alloc_items;
    struct ty_node *key; /* mapping: the key whose value comes next */
    int anchor;          /* index in anchors[], or -1 */
};

struct anchor {
    char *name;
    struct ty_node *node;
    yaml_mark_t mark;
    bool open; /* its collection has not ended yet */
};

struct build {
    struct ty_doc *doc;
    struct ty_error *err;
    struct frame stack[TY_MAX_DEPTH + 1];
    size_t depth;
    struct anchor *anchors;
    size_t n_anchors, alloc_anchors;
    struct tc_keyset anchor_index; /* name -> index in anchors[] */
    struct ty_node *root;
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

static void set_error_at(struct ty_error *err, const yaml_mark_t *m, const char *msg)
{
    set_error(err, (uint32_t)m->line + 1, (uint32_t)m->column + 1, "%s", msg);
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

static bool is_merge_key(const struct ty_node *k)
{
    return k->type == TY_SCALAR && !k->quoted && k->len == 2 && !memcmp(k->str, "<<", 2);
}

static void map_add(struct ty_node *m, size_t *alloc, struct ty_node *k, struct ty_node *v)
{
    m->pairs = fl_xgrow(m->pairs, alloc, m->n_pairs + 1, sizeof(*m->pairs));
    m->pairs[m->n_pairs].key = k;
    m->pairs[m->n_pairs].value = v;
    m->n_pairs++;
}

/* Adds the pairs of a merged mapping whose keys the target lacks (`keys`
 * holds the target's scalar keys). */
static void merge_into(struct ty_node *m, size_t *alloc, struct tc_keyset *keys,
                       const struct ty_node *src)
{
    for (size_t i = 0; i < src->n_pairs; i++) {
        const struct ty_node *k = src->pairs[i].key;
        if (k->type == TY_SCALAR) {
            if (tc_keyset_find(keys, k->str, k->len) != TC_KEYSET_NONE) {
                continue;
            }
            tc_keyset_add(keys, k->str, k->len, m->n_pairs);
        }
        map_add(m, alloc, src->pairs[i].key, src->pairs[i].value);
    }
}

static bool merge_error(struct build *b, const struct ty_node *at)
{
    set_error(b->err, at->line, at->col,
              "a merge key '<<' takes a mapping or a list of mappings "
              "(e.g. '<<: *defaults')");
    return false;
}

/* A mapping's end: its written pairs, then what its '<<' keys merge in. */
static bool finish_mapping(struct build *b, struct frame *f)
{
    struct ty_node *m = f->n;
    size_t alloc = 0;
    bool merges = false;
    for (size_t i = 0; i < f->n_raw; i++) {
        if (!is_merge_key(f->raw[i].key)) {
            map_add(m, &alloc, f->raw[i].key, f->raw[i].value);
        } else {
            merges = true;
        }
    }
    if (!merges) {
        return true;
    }
    struct tc_keyset keys = {0};
    for (size_t i = 0; i < m->n_pairs; i++) {
        const struct ty_node *k = m->pairs[i].key;
        if (k->type == TY_SCALAR) {
            tc_keyset_add(&keys, k->str, k->len, i);
        }
    }
    bool ok = true;
    for (size_t i = 0; i < f->n_raw && ok; i++) {
        if (!is_merge_key(f->raw[i].key)) {
            continue;
        }
        const struct ty_node *v = f->raw[i].value;
        if (v->type == TY_MAP) {
            merge_into(m, &alloc, &keys, v);
        } else if (v->type == TY_SEQ) {
            for (size_t j = 0; j < v->n_items && ok; j++) {
                if (v->items[j]->type != TY_MAP) {
                    ok = merge_error(b, v->items[j]);
                } else {
                    merge_into(m, &alloc, &keys, v->items[j]);
                }
            }
        } else {
            ok = merge_error(b, v);
        }
    }
    tc_keyset_free(&keys);
    return ok;
}

/* A complete node (a scalar, an alias's target, or an ended collection)
 * goes into the collection it belongs to, or becomes the root. */
static void attach(struct build *b, struct ty_node *n)
{
    if (b->depth == 0) {
        b->root = n;
        return;
    }
    struct frame *f = &b->stack[b->depth - 1];
    if (f->n->type == TY_SEQ) {
        f->n->items =
            fl_xgrow(f->n->items, &f->alloc_items, f->n->n_items + 1, sizeof(*f->n->items));
        f->n->items[f->n->n_items++] = n;
    } else if (!f->key) {
        f->key = n;
    } else {
        f->raw = fl_xgrow(f->raw, &f->alloc_raw, f->n_raw + 1, sizeof(*f->raw));
        f->raw[f->n_raw].key = f->key;
        f->raw[f->n_raw].value = n;
        f->n_raw++;
        f->key = NULL;
    }
}

/* Registers an anchor (a duplicate is an error, as libyaml's loader has
 * it); returns its index, -1 for none or on error (*ok false). */
static int add_anchor(struct build *b, const yaml_char_t *name, const yaml_mark_t *mark,
                      struct ty_node *n, bool open, bool *ok)
{
    *ok = true;
    if (!name) {
        return -1;
    }
    size_t first_i =
        tc_keyset_find(&b->anchor_index, (const char *)name, strlen((const char *)name));
    if (first_i != TC_KEYSET_NONE) {
        const yaml_mark_t *first = &b->anchors[first_i].mark;
        set_error(b->err, (uint32_t)mark->line + 1, (uint32_t)mark->column + 1,
                  "YAML syntax error: second occurrence (found duplicate anchor; first "
                  "occurrence at line %zu, column %zu)",
                  first->line + 1, first->column + 1);
        *ok = false;
        return -1;
    }
    b->anchors = fl_xgrow(b->anchors, &b->alloc_anchors, b->n_anchors + 1, sizeof(*b->anchors));
    struct anchor *a = &b->anchors[b->n_anchors];
    a->name = fl_xstrdup((const char *)name);
    a->node = n;
    a->mark = *mark;
    a->open = open;
    tc_keyset_add(&b->anchor_index, a->name, strlen(a->name), b->n_anchors);
    return (int)b->n_anchors++;
}

/* A node starts at the current depth: beyond the limit it is an error,
 * raised here, before libyaml reads any further (a 100 000-level document
 * costs 65 levels of work, not a tree of 100 000). */
static bool depth_ok(struct build *b, const yaml_mark_t *mark)
{
    if (b->depth > TY_MAX_DEPTH) {
        set_error(b->err, (uint32_t)mark->line + 1, (uint32_t)mark->column + 1,
                  "nesting deeper than %d levels", TY_MAX_DEPTH);
        return false;
    }
    return true;
}

static bool open_collection(struct build *b, const yaml_event_t *e, enum ty_type type)
{
    if (!depth_ok(b, &e->start_mark)) {
        return false;
    }
    struct ty_node *n = new_node(b->doc, type, &e->start_mark);
    const yaml_char_t *anchor =
        type == TY_SEQ ? e->data.sequence_start.anchor : e->data.mapping_start.anchor;
    bool ok;
    int ai = add_anchor(b, anchor, &e->start_mark, n, true, &ok);
    if (!ok) {
        return false;
    }
    b->stack[b->depth++] = (struct frame){.n = n, .anchor = ai};
    return true;
}

static void frame_free(struct frame *f)
{
    free(f->raw);
    memset(f, 0, sizeof(*f));
}

static bool close_collection(struct build *b)
{
    struct frame *f = &b->stack[b->depth - 1];
    bool ok = f->n->type == TY_SEQ || finish_mapping(b, f);
    if (f->anchor >= 0) {
        b->anchors[f->anchor].open = false;
    }
    struct ty_node *n = f->n;
    frame_free(f);
    b->depth--;
    if (ok) {
        attach(b, n);
    }
    return ok;
}

static bool on_scalar(struct build *b, const yaml_event_t *e)
{
    if (!depth_ok(b, &e->start_mark)) {
        return false;
    }
    struct ty_node *n = new_node(b->doc, TY_SCALAR, &e->start_mark);
    n->len = e->data.scalar.length;
    n->str = fl_xmalloc(n->len + 1);
    memcpy(n->str, e->data.scalar.value, n->len);
    n->str[n->len] = '\0';
    n->quoted = e->data.scalar.style != YAML_PLAIN_SCALAR_STYLE &&
                e->data.scalar.style != YAML_ANY_SCALAR_STYLE;
    bool ok;
    add_anchor(b, e->data.scalar.anchor, &e->start_mark, n, false, &ok);
    if (ok) {
        attach(b, n);
    }
    return ok;
}

/* An alias shares its target (never copied, so alias bombs stay cheap). */
static bool on_alias(struct build *b, const yaml_event_t *e)
{
    const char *name = (const char *)e->data.alias.anchor;
    size_t i = tc_keyset_find(&b->anchor_index, name, strlen(name));
    if (i != TC_KEYSET_NONE) {
        struct anchor *a = &b->anchors[i];
        if (a->open) {
            set_error_at(b->err, &a->mark,
                         "an alias refers to a node that contains it (recursive structure)");
            return false;
        }
        attach(b, a->node);
        return true;
    }
    set_error_at(b->err, &e->start_mark, "YAML syntax error: found undefined alias");
    return false;
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

static void build_free(struct build *b)
{
    while (b->depth > 0) {
        frame_free(&b->stack[--b->depth]);
    }
    for (size_t i = 0; i < b->n_anchors; i++) {
        free(b->anchors[i].name);
    }
    free(b->anchors);
    tc_keyset_free(&b->anchor_index);
    b->anchors = NULL;
    b->n_anchors = b->alloc_anchors = 0;
    b->root = NULL;
}

/* Reads one document's events (after its DOCUMENT-START) up to its
 * DOCUMENT-END into b->root.  Anchors are per document. */
static bool load_document(yaml_parser_t *p, struct build *b)
{
    for (;;) {
        yaml_event_t e;
        if (!yaml_parser_parse(p, &e)) {
            parser_error(p, b->err);
            return false;
        }
        bool ok = true, done = false;
        switch (e.type) {
        case YAML_SCALAR_EVENT:
            ok = on_scalar(b, &e);
            break;
        case YAML_ALIAS_EVENT:
            ok = on_alias(b, &e);
            break;
        case YAML_SEQUENCE_START_EVENT:
            ok = open_collection(b, &e, TY_SEQ);
            break;
        case YAML_MAPPING_START_EVENT:
            ok = open_collection(b, &e, TY_MAP);
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            ok = close_collection(b);
            break;
        case YAML_DOCUMENT_END_EVENT:
            done = true;
            break;
        default:
            set_error_at(b->err, &e.start_mark, "internal YAML structure error");
            ok = false;
            break;
        }
        yaml_event_delete(&e);
        if (!ok || done) {
            return ok;
        }
    }
}

/* The next event of the stream: a DOCUMENT-START (true, *mark set) or the
 * STREAM-END (true, *more false). */
static bool next_document(yaml_parser_t *p, struct ty_error *err, bool *more, yaml_mark_t *mark)
{
    yaml_event_t e;
    if (!yaml_parser_parse(p, &e)) {
        parser_error(p, err);
        return false;
    }
    *more = e.type == YAML_DOCUMENT_START_EVENT;
    *mark = e.start_mark;
    bool ok = *more || e.type == YAML_STREAM_END_EVENT;
    if (!ok) {
        set_error_at(err, &e.start_mark, "internal YAML structure error");
    }
    yaml_event_delete(&e);
    return ok;
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
    struct build b = {.doc = doc, .err = err};
    bool ok, more = false;
    yaml_mark_t mark;
    yaml_event_t e;
    if (!yaml_parser_parse(&parser, &e)) { /* STREAM-START */
        parser_error(&parser, err);
        ok = false;
    } else {
        yaml_event_delete(&e);
        ok = next_document(&parser, err, &more, &mark);
    }
    if (ok && more) {
        ok = load_document(&parser, &b);
        doc->root = b.root;
        build_free(&b);
        if (ok) {
            ok = next_document(&parser, err, &more, &mark);
        }
        if (ok && more) {
            /* A second document is a mistake (a stray '---'), not
             * something to ignore; its own syntax errors come first. */
            struct ty_doc second = {0};
            b = (struct build){.doc = &second, .err = err};
            if (load_document(&parser, &b)) {
                set_error(err, (uint32_t)mark.line + 1, (uint32_t)mark.column + 1,
                          "a second YAML document ('---'); a scenario is one document");
            }
            build_free(&b);
            ty_doc_free(&second);
            ok = false;
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
