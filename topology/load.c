/* topo_load_*: the loader's phases, and the error report.
 *
 *   YAML ─▶ top-level keys ─▶ run ─▶ image ─▶ networks ─▶ nodes ─▶ addresses ─▶ links
 *        ─▶ timeline items ─▶ checks ─▶ expand + sort ─▶ simulate (contradictions)
 *        ─▶ nemesis (seeded, avoids busy nodes) ─▶ sort ─▶ cut sets, clock offsets
 * Every phase runs even after errors in an earlier one (with what could be
 * parsed), so one run reports every error it can find.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "topology/timeline.h"

static const char *const top_keys[] = {"version", "run",      "image",   "networks", "nodes",
                                       "links",   "timeline", "nemesis", "checks",   NULL};
/* Keys people write at the top that belong in a section. */
static const struct tc_key_home top_homes[] = {
    {"name", "run"},       {"description", "run"},  {"seed", "run"},
    {"duration", "run"},   {"boot-timeout", "run"}, {"record", "run"},
    {"packages", "image"}, {"files", "image"},      {NULL, NULL}};

static uint64_t random_seed(void)
{
    uint64_t seed = 0;
    ssize_t r = getrandom(&seed, sizeof(seed), 0);
    if (r != (ssize_t)sizeof(seed)) {
        /* getrandom cannot fail for 8 bytes after boot; keep something
         * varying anyway rather than a constant. */
        seed = (uint64_t)fl_clock_real_ns() ^ ((uint64_t)fl_clock_mono_ns() << 17);
    }
    return seed;
}

static char *default_name(const char *file)
{
    const char *base = strrchr(file, '/');
    base = base ? base + 1 : file;
    size_t len = strlen(base);
    if (len > 5 && !strcmp(base + len - 5, ".yaml")) {
        len -= 5;
    } else if (len > 4 && !strcmp(base + len - 4, ".yml")) {
        len -= 4;
    }
    char *name = fl_xstrndup(base, len > 64 ? 64 : len);
    bool ok = name[0] != '\0';
    for (char *p = name; *p; p++) {
        bool alnum =
            (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9');
        if (!alnum && *p != '-' && *p != '_' && *p != '.') {
            *p = '-';
        }
    }
    if (!ok) {
        free(name);
        name = fl_xstrdup("scenario");
    }
    return name;
}

static int cmp_diag(const void *x, const void *y)
{
    const struct tc_diag *a = x, *b = y;
    if (a->line != b->line) {
        return a->line < b->line ? -1 : 1;
    }
    if (a->col != b->col) {
        return a->col < b->col ? -1 : 1;
    }
    return a->order < b->order ? -1 : (a->order > b->order);
}

static void tc_free(struct tc *c)
{
    for (size_t i = 0; i < c->n_items; i++) {
        tc_item_clear(&c->items[i]);
    }
    free(c->items);
    tc_keyset_free(&c->item_names);
    for (size_t i = 0; i < c->n_citems; i++) {
        tc_item_clear(&c->citems[i]);
    }
    free(c->citems);
    for (size_t i = 0; i < c->n_events; i++) {
        topo_event_clear(&c->events[i]);
    }
    free(c->events);
    free(c->keys);
    free(c->evx);
    if (c->busy) {
        for (size_t i = 0; i < c->s->n_nodes; i++) {
            free(c->busy[i].iv);
        }
        free(c->busy);
    }
    if (c->nic_src) {
        for (size_t i = 0; i < c->s->n_nodes; i++) {
            free(c->nic_src[i]);
        }
        free(c->nic_src);
    }
    for (size_t i = 0; i < c->n_diags; i++) {
        free(c->diags[i].msg);
    }
    free(c->diags);
    fl_buf_free(&c->path);
    free(c->node_key_loc);
    free(c->network_key_loc);
    free(c->base_dir);
}

static struct topo_scenario *load(const char *file, const char *text, size_t len,
                                  const char *base_dir, const uint64_t *seed_override,
                                  struct fl_error **errp)
{
    struct tc c = {0};
    c.file = file;
    c.base_dir = fl_xstrdup(base_dir);
    struct topo_scenario *s = fl_xcalloc(1, sizeof(*s));
    c.s = s;
    s->file = fl_xstrdup(file);
    s->name = default_name(file);
    s->seed = random_seed();
    s->seed_random = true;

    struct ty_doc doc;
    struct ty_error yerr;
    if (!ty_load(text, len, &doc, &yerr)) {
        tc_err_loc(&c, yerr.line, yerr.col, "%s", yerr.msg);
        free(yerr.msg);
    } else if (!doc.root || ty_is_null(doc.root)) {
        tc_err_loc(&c, 1, 1,
                   "the scenario is empty: it needs at least 'nodes:' "
                   "(see docs/scenario-format.md)");
        ty_doc_free(&doc);
    } else if (doc.root->type != TY_MAP) {
        tc_err(&c, doc.root,
               "a scenario is a mapping with keys run, image, networks, nodes, "
               "links, timeline, nemesis, checks; this document is %s",
               doc.root->type == TY_SEQ ? "a list" : "a single value");
        ty_doc_free(&doc);
    } else {
        const struct ty_node *r = doc.root;
        c.root = r;
        tc_check_map_homes(&c, r, top_keys, "the scenario", top_homes);
        const struct ty_node *v = ty_map_get(r, "version");
        if (v) {
            size_t m = tc_path_key(&c, "version");
            uint64_t ver;
            if (tc_uint(&c, v, 0, UINT32_MAX, &ver) && ver != 1) {
                tc_err_val(&c, v,
                           "is not a scenario format version this faultline reads "
                           "(valid: 1)");
            }
            tc_path_pop(&c, m);
        }
        tc_parse_run(&c, ty_map_get(r, "run"));
        if (seed_override) {
            s->seed = *seed_override;
            s->seed_random = false;
        }
        v = ty_map_get(r, "image");
        if (v) {
            size_t m = tc_path_key(&c, "image");
            tc_parse_image(&c, v, &s->image);
            tc_path_pop(&c, m);
        }
        tc_parse_networks(&c, ty_map_get(r, "networks"));
        tc_parse_nodes(&c, ty_map_get(r, "nodes"));
        tc_parse_record(&c, ty_map_get(r, "run"));
        tc_assign_addresses(&c);
        tc_build_links(&c, ty_map_get(r, "links"));
        tc_parse_timeline(&c, ty_map_get(r, "timeline"));
        tc_parse_checks(&c, ty_map_get(r, "checks"));
        tc_expand_timeline(&c);
        tc_parse_nemesis(&c, ty_map_get(r, "nemesis"));
        tc_sort_events(&c);
        tc_finish_timeline(&c);
        tc_check_record(&c);
        if (c.too_many_events) {
            tc_err_loc(&c, 1, 1,
                       "the timeline expands to too much: more than %d events, or more than "
                       "%llu cut directions and link changes in all (check every/for/times and "
                       "the nemesis spacing)",
                       TC_MAX_EVENTS, (unsigned long long)TC_MAX_WORK);
        }
        ty_doc_free(&doc);
    }

    if (c.n_diags) {
        qsort(c.diags, c.n_diags, sizeof(*c.diags), cmp_diag);
        struct fl_buf b = {0};
        for (size_t i = 0; i < c.n_diags; i++) {
            if (c.diags[i].line) {
                fl_buf_printf(&b, "%s%s:%u:%u: %s", i ? "\n" : "", file, c.diags[i].line,
                              c.diags[i].col, c.diags[i].msg);
            } else {
                fl_buf_printf(&b, "%s%s: %s", i ? "\n" : "", file, c.diags[i].msg);
            }
        }
        if (c.n_dropped) {
            fl_buf_printf(&b, "\n%s: ... and %zu more errors", file, c.n_dropped);
        }
        fl_error_setf(errp, EINVAL, "%s", b.data);
        fl_buf_free(&b);
        tc_free(&c);
        topo_scenario_free(s);
        return NULL;
    }
    s->events = c.events;
    s->n_events = c.n_events;
    c.events = NULL;
    c.n_events = 0;
    tc_free(&c);
    return s;
}

struct topo_scenario *topo_load_string_seed(const char *name, const char *text, size_t len,
                                            const uint64_t *seed_override, struct fl_error **errp)
{
    return load(name ? name : "<string>", text ? text : "", text ? len : 0, ".", seed_override,
                errp);
}

struct topo_scenario *topo_load_string(const char *name, const char *text, size_t len,
                                       struct fl_error **errp)
{
    return topo_load_string_seed(name, text, len, NULL, errp);
}

struct topo_scenario *topo_load_file_seed(const char *path, const uint64_t *seed_override,
                                          struct fl_error **errp)
{
    size_t size = 0;
    struct fl_error *e = NULL;
    char *text = fl_read_file(path, &size, &e);
    if (!text) {
        fl_error_setf(errp, e ? e->code : EIO, "%s", e ? e->msg : "cannot read the scenario");
        fl_error_free(e);
        return NULL;
    }
    const char *slash = strrchr(path, '/');
    char *dir =
        slash ? fl_xstrndup(path, slash == path ? 1 : (size_t)(slash - path)) : fl_xstrdup(".");
    struct topo_scenario *s = load(path, text, size, dir, seed_override, errp);
    free(dir);
    free(text);
    return s;
}

struct topo_scenario *topo_load_file(const char *path, struct fl_error **errp)
{
    return topo_load_file_seed(path, NULL, errp);
}
