/*
 * Internal to topology/: the loader's context, diagnostics (diag.c) and
 * the value parsers (values.c, impairs.c, selectors.c) shared by the
 * section files (run.c, image.c, networks.c, nodes.c, disks.c,
 * addresses.c, links.c, timeline.c, payloads.c, nemesis.c); timeline.h
 * adds what the timeline's files share.
 *
 * Every error goes through tc_err*(): it is recorded with its location and
 * the current key path, and loading carries on so that ALL errors are
 * reported.  A failed value parse leaves the default in place.
 */
#ifndef FL_TOPOLOGY_INTERNAL_H
#define FL_TOPOLOGY_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"
#include "impair/impair.h"
#include "topology/keyset.h"
#include "topology/topology.h"
#include "topology/ytree.h"

#define TC_MAX_ERRORS 200
#define TC_MAX_NODES  254
/* Every node joins every network by default: NICs, addresses and links
 * grow with nodes x networks, and their checks with its square. */
#define TC_MAX_NETWORKS 1024
#define TC_MAX_EVENTS   100000 /* after expansion of every/nemesis */
/* Cut directions and link changes summed over the timeline (and the work
 * of computing cut sets): bounds time and memory for hostile files. */
#define TC_MAX_WORK 20000000ull
/* A link change holds a whole parameter set (~16 times a cut's size). */
#define TC_WORK_LINK_CHANGE 16

struct tc_diag {
    uint32_t line, col;
    uint32_t order;
    char *msg; /* "path: message" (without file:line:col) */
};

/* Per-key "was set" bits of a link settings block, so that layered
 * settings (network < * < pair < direction) merge key by key. */
enum {
    LK_DELAY = 1u << 0,
    LK_JITTER = 1u << 1,
    LK_DELAY_CORR = 1u << 2,
    LK_DIST = 1u << 3,
    LK_LOSS = 1u << 4,
    LK_DUP = 1u << 5,
    LK_DUP_CORR = 1u << 6,
    LK_CORRUPT = 1u << 7,
    LK_CORRUPT_CORR = 1u << 8,
    LK_REORDER = 1u << 9,
    LK_REORDER_CORR = 1u << 10,
    LK_GAP = 1u << 11,
    LK_RATE = 1u << 12,
    LK_PKT_OVH = 1u << 13,
    LK_CELL = 1u << 14,
    LK_CELL_OVH = 1u << 15,
    LK_LIMIT = 1u << 16,
    LK_LIMIT_BYTES = 1u << 17,
    LK_MTU = 1u << 18,
};
#define LK_NKEYS 19
extern const char *const tc_link_key_names[LK_NKEYS];

struct tc_link_settings {
    struct impair_link_params p; /* holds a table reference when dist is a table */
    uint32_t mask;
};

/* Per-op, per-key bits of disk fault settings. */
enum {
    DK_LATENCY = 1u << 0,
    DK_JITTER = 1u << 1,
    DK_CORR = 1u << 2,
    DK_DIST = 1u << 3,
    DK_ERROR = 1u << 4,
    DK_ERRNO = 1u << 5,
    DK_RANGE = 1u << 6,
    DK_CORRUPT = 1u << 7,
};
struct tc_disk_settings {
    struct impair_disk_params p;
    uint32_t mask[IMPAIR_IO__COUNT];
};

/* A parsed link selector ("lan", "n1 -> n2", "n1 <-> n2 @ wan", "*"). */
struct tc_selector {
    int network; /* -1: every network */
    int a, b;    /* node indices; -1 = '*' (any); a == b == -1 with kind NET */
    int kind;    /* 0 everything, 1 network, 2 directed, 3 both directions */
    int rank;    /* precedence: higher wins */
    char *text;  /* as written */
};

/* Per-NIC address nodes as written, kept until addresses are assigned. */
struct nic_src {
    const struct ty_node *ipn;
    const struct ty_node *macn;
};

/* A timeline item as parsed, before expansion (timeline.h). */
struct tc_item;
struct tc_evx;

struct tc {
    const char *file;
    char *base_dir; /* for relative paths: the file's directory, or "." */
    struct tc_diag *diags;
    size_t n_diags, alloc_diags;
    size_t n_dropped; /* beyond TC_MAX_ERRORS */
    uint32_t order;
    struct fl_buf path;
    struct topo_scenario *s;
    const struct ty_node *root;

    /* Locations of the first definition of each name (for "see ..."). */
    struct topo_loc *node_key_loc;    /* per node */
    struct topo_loc *network_key_loc; /* per network */
    struct nic_src **nic_src;         /* [node][nic] during parsing */

    /* Timeline items and expanded events. */
    struct tc_item *items; /* timeline: items */
    size_t n_items;
    struct tc_keyset item_names; /* event name -> the last item named so */
    struct tc_item *citems;      /* checks: items */
    size_t n_citems;
    struct topo_event *events;
    size_t n_events, alloc_events;
    /* Parallel to events: sort keys and build data. */
    struct tc_evkey *keys;
    size_t alloc_keys;
    struct tc_evx *evx;
    size_t alloc_evx;
    uint32_t next_pid, next_cid;
    bool too_many_events;
    uint64_t work; /* see TC_MAX_WORK */
    /* Static simulation results for the nemesis: per node, intervals
     * [start, end] when it is busy (not running, or used by an event). */
    struct tc_busy *busy; /* per node */
};

struct tc_busy {
    int64_t (*iv)[2];
    size_t n, alloc;
};

struct tc_evkey {
    int64_t at;
    uint32_t group; /* 0 timeline/check/revert, 1 nemesis */
    uint32_t rank;  /* depth in the `after` chain */
    uint32_t decl;  /* declaration index of the item */
    uint32_t sub;   /* order within the item */
};

/* ---- diagnostics (diag.c) ---- */
void tc_err_loc(struct tc *c, uint32_t line, uint32_t col, const char *fmt, ...) FL_PRINTF(4, 5);
void tc_err(struct tc *c, const struct ty_node *at, const char *fmt, ...) FL_PRINTF(3, 4);
/* "'<value>' <message>" at the node (a scalar; other nodes print as
 * "a list"/"a mapping"). */
void tc_err_val(struct tc *c, const struct ty_node *at, const char *fmt, ...) FL_PRINTF(3, 4);
/* Appends ". see FILE:L:C" style reference text for a second place. */
char *tc_see(const struct tc *c, struct topo_loc loc);
/* Quotes a value for a message: escapes control bytes, truncates. */
void tc_quote(struct fl_buf *b, const char *s, size_t len);
char *tc_describe(const struct ty_node *n); /* "'x'", "a list", "a mapping" */

size_t tc_path_key(struct tc *c, const char *key);
/* Enters a top-level section: pushes `key` on the path (*mark for
 * tc_path_pop) and checks that n is a `want` (TY_MAP or TY_SEQ).  If it
 * is not, reports "'<value>' is not <what>" at n, pops the key and
 * returns false. */
bool tc_enter_section(struct tc *c, const struct ty_node *n, const char *key, enum ty_type want,
                      const char *what, size_t *mark);
size_t tc_path_keyn(struct tc *c, const struct ty_node *key);
size_t tc_path_index(struct tc *c, size_t index);
void tc_path_pop(struct tc *c, size_t mark);
static inline struct topo_loc tc_loc(const struct ty_node *n)
{
    struct topo_loc l = {n ? n->line : 0, n ? n->col : 0};
    return l;
}

/* Checks a mapping's keys against `allowed` (NULL-terminated): unknown
 * keys get "did you mean", written-twice keys name the first place.
 * Keys starting with "x-" are always allowed.  Returns false when the
 * node is not a mapping (error reported). */
bool tc_check_map(struct tc *c, const struct ty_node *n, const char *const *allowed,
                  const char *what);
/* A key that belongs in a section below, for the hint when it is written
 * one level too high: {"name", "run"} says "it belongs under 'run:'". */
struct tc_key_home {
    const char *key, *home;
};
/* tc_check_map, with `homes` ({NULL, NULL}-terminated) for misplaced keys. */
bool tc_check_map_homes(struct tc *c, const struct ty_node *n, const char *const *allowed,
                        const char *what, const struct tc_key_home *homes);
/* Entries named by their keys (networks, nodes, disks, nemeses) are
 * defined once.  `names` maps each name defined so far to its key node:
 * tc_defined_twice reports "'x' is defined twice (first at ...)" at k and
 * returns true when k's name is there; tc_define adds k's. */
bool tc_defined_twice(struct tc *c, const struct tc_keyset *names, const struct ty_node *k);
void tc_define(struct tc_keyset *names, const struct ty_node *k);
/* Suggestion: the nearest of `names` within distance 2 (or a third of the
 * length), or NULL. */
const char *tc_suggest(const char *word, const char *const *names, size_t n);
/* Formats "a, b, c" of names into b. */
void tc_list_names(struct fl_buf *b, const char *const *names, size_t n);

/* ---- value parsers (values.c): false + error reported on failure ---- */
bool tc_string(struct tc *c, const struct ty_node *n, const char **out);
bool tc_duration(struct tc *c, const struct ty_node *n, int64_t *out);
bool tc_signed_duration(struct tc *c, const struct ty_node *n, int64_t *out);
bool tc_duration_range(struct tc *c, const struct ty_node *n, int64_t *min, int64_t *max);
bool tc_prob(struct tc *c, const struct ty_node *n, impair_prob *out);
bool tc_size(struct tc *c, const struct ty_node *n, uint64_t *out);
bool tc_rate(struct tc *c, const struct ty_node *n, uint64_t *out);
bool tc_uint(struct tc *c, const struct ty_node *n, uint64_t min, uint64_t max, uint64_t *out);
bool tc_int(struct tc *c, const struct ty_node *n, int64_t min, int64_t max, int64_t *out);
bool tc_bool(struct tc *c, const struct ty_node *n, bool *out);
/* A YAML boolean word (true/yes/on, false/no/off), without an error. */
bool tc_bool_word(const struct ty_node *n, bool *out);
/* One of names[0..n) (an X-macro table); *out = index. */
bool tc_enum(struct tc *c, const struct ty_node *n, const char *const *names, size_t count,
             int *out);
/* A node reference by name; -1 and an error (with suggestion) if unknown. */
int tc_node_ref(struct tc *c, const struct ty_node *n);
int tc_network_ref(struct tc *c, const struct ty_node *n);
/* A name by the one rule of every room (fl_name_valid, core/name.c). */
bool tc_name(struct tc *c, const struct ty_node *n, size_t max, const char *what);
/* A list of node names (scalar or list) into a malloc'ed array; NULL on error. */
uint32_t *tc_node_list(struct tc *c, const struct ty_node *n, size_t *count);
/* Resolves a host path against base_dir; the file must exist. */
char *tc_host_path(struct tc *c, const struct ty_node *n, const char *s, bool want_dir_ok);
/* ---- impairment settings (impairs.c) ---- */
/* Link settings mapping (links: values, link events). */
bool tc_link_settings(struct tc *c, const struct ty_node *n, struct tc_link_settings *out);
void tc_link_apply(struct impair_link_params *dst, const struct tc_link_settings *src);
/* Disk fault keys in `n`; `allowed_extra` are other keys the caller
 * handles (NULL-terminated, may be NULL). */
bool tc_disk_settings(struct tc *c, const struct ty_node *n, const char *const *allowed_extra,
                      struct tc_disk_settings *out);
void tc_disk_apply(struct impair_disk_params *dst, const struct tc_disk_settings *src);
/* ---- link selectors (selectors.c) ---- */
/* A link selector string. */
bool tc_selector(struct tc *c, const struct ty_node *n, struct tc_selector *out);
bool tc_selector_matches(const struct tc *c, const struct tc_selector *sel,
                         const struct topo_link *l);

/* ---- schema: one file per section, called in load order (load.c) ---- */
/* run.c, image.c, networks.c, nodes.c (disks.c for each disk) */
void tc_parse_run(struct tc *c, const struct ty_node *n);
/* run.record, once the nodes are known; its rules once the timeline is. */
void tc_parse_record(struct tc *c, const struct ty_node *run);
void tc_check_record(struct tc *c);
void tc_parse_image(struct tc *c, const struct ty_node *n, struct topo_image *img);
void tc_parse_networks(struct tc *c, const struct ty_node *n);
void tc_parse_nodes(struct tc *c, const struct ty_node *n);
/* addresses.c, links.c */
void tc_assign_addresses(struct tc *c);
void tc_build_links(struct tc *c, const struct ty_node *links);
/* timeline.c (payloads.c for each kind's value) */
void tc_parse_checks(struct tc *c, const struct ty_node *n);
void tc_parse_timeline(struct tc *c, const struct ty_node *n);
/* nemesis.c */
void tc_parse_nemesis(struct tc *c, const struct ty_node *n);
void tc_finish_timeline(struct tc *c);
/* expand.c: resolve, expand and sort (tc_expand_timeline also runs
 * tc_simulate_static, simulate.c) */
void tc_sort_events(struct tc *c);
void tc_expand_timeline(struct tc *c);
void tc_simulate_static(struct tc *c);

/* Shared between the section files. */
/* image.c: an absolute guest path without a '..' component. */
bool tc_guest_path(const char *s);
/* image.c: dst = base + extra (packages merged and sorted; extra's files
 * win at the same guest path). */
void tc_merge_image(struct topo_image *dst, const struct topo_image *base,
                    const struct topo_image *extra);
/* disks.c: one disk of a node (k: its name, v: its value). */
void tc_parse_disk(struct tc *c, struct topo_node *node, const struct ty_node *k,
                   const struct ty_node *v);
/* networks.c: a dotted IPv4 address (host byte order); the netmask of a
 * prefix length. */
bool tc_parse_ipv4(const char *s, uint32_t *out);
uint32_t tc_prefix_mask(uint8_t len);

/* expand.c: adds an event (zeroed, kind/origin/at set) and its sort key. */
struct topo_event *tc_add_event(struct tc *c, enum topo_event_kind kind, enum topo_origin origin,
                                int64_t at, const struct tc_evkey *key);

/* ---- model helpers (model.c) ---- */
void topo_image_clear(struct topo_image *img);
void topo_event_clear(struct topo_event *e);
void topo_expect_clear(struct topo_expect *e);
char *tc_format_duration(int64_t ns); /* static-free: caller frees */

#endif /* FL_TOPOLOGY_INTERNAL_H */
