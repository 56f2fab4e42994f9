/* Internal to topology/: timeline items (timeline.c), their payloads
 * (payloads.c), their expansion (expand.c) and the state simulation that
 * finds contradictions (simulate.c); nemesis.c adds its events. */
#ifndef FL_TOPOLOGY_TIMELINE_H
#define FL_TOPOLOGY_TIMELINE_H

#include "topology/internal.h"
#include "topology/shapes.h"

/* One list item of timeline: (or a check), before expansion. */
struct tc_item {
    size_t index;
    bool is_check;
    const struct ty_node *node;
    const struct ty_node *kind_key, *kind_val;
    enum topo_event_kind kind;
    char *name;
    const struct ty_node *name_node;
    size_t prev_same_name; /* the previous item of the same name, or TC_KEYSET_NONE */
    size_t n_same_name;    /* how many earlier items have that name */
    /* timing */
    const struct ty_node *at_node, *after_node, *every_node, *for_node, *times_node, *duration_node;
    int64_t at;
    bool at_end; /* checks: at: end (or no time) */
    char *after_name;
    int64_t after_off;
    bool has_every;
    int64_t every;
    int64_t window; /* -1: until the end of the run */
    uint64_t times; /* 0: no count */
    bool has_duration;
    int64_t duration;
    int state; /* time resolution: 0 todo, 1 resolving, 2 done, 3 failed */
    uint32_t rank;
    bool ok; /* payload parsed */

    /* payload */
    uint32_t *nodes;
    size_t n_nodes;
    bool has_policy;
    enum topo_crash_policy policy;
    enum topo_partition_shape shape;
    struct tc_cuts fixed_cuts; /* GROUPS / ONE_WAY: known at parse time */
    char *fixed_label;
    int isolate_node; /* -1 random */
    bool heal_all;
    size_t *heal_items; /* item indices healed by name */
    size_t n_heal;
    struct tc_selector *sels;
    struct tc_link_settings *lsets; /* LINK_SET: per selector; NULL for clear */
    size_t n_sels;
    bool clear_all;
    bool clock_jump;
    int64_t clock_value;
    int disk_node, disk_idx;
    struct tc_disk_settings dset;
    bool has_capacity, has_stall, stall;
    uint64_t capacity;
    char *command;
    bool background;
    int64_t timeout, within, interval;
    bool has_expect;
    struct topo_expect expect;
    char *mark;
};

/* Per-event data used while building (parallel to c->events). */
struct tc_evx {
    size_t item; /* SIZE_MAX: nemesis */
    bool is_static;
    uint32_t pid;      /* PARTITION: instance id; HEAL with heal_pid */
    bool heal_pid;     /* HEAL of one instance (revert, nemesis) */
    uint32_t cid;      /* CLOCK: instance id */
    bool clock_abs;    /* CLOCK: value is the offset (skew), else a delta (jump) */
    bool clock_revert; /* CLOCK: undo instance cid */
    int64_t clock_val;
    int64_t extent; /* how long the event occupies its node after at */
};

/* Defaults of the exec/wait payloads and of checks. */
#define DEFAULT_EXEC_TIMEOUT  (30 * FL_NS_PER_SEC)
#define DEFAULT_WAIT_TIMEOUT  (60 * FL_NS_PER_SEC)
#define DEFAULT_CHECK_TIMEOUT (10 * FL_NS_PER_SEC)
#define DEFAULT_INTERVAL      (1 * FL_NS_PER_SEC)

/* payloads.c: an item's kind value, by kind (the caller has pushed the
 * kind key on the path); `exit`/`output` expectations. */
bool tc_parse_payload(struct tc *c, struct tc_item *it);
/* A heal's value: parsed after every item, since it names others. */
bool tc_parse_heal(struct tc *c, struct tc_item *it, const struct ty_node *v);
bool tc_parse_expect(struct tc *c, const struct ty_node *map, struct topo_expect *out);
/* timeline.c */
void tc_item_clear(struct tc_item *it);

#endif /* FL_TOPOLOGY_TIMELINE_H */
