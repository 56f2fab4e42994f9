/* run.record — the nodes recorded for replay — and what recording
 * requires of them (docs/record-replay.md).  topo_record_problems is the
 * one place the rules live: the loader applies them to the nodes
 * run.record names (faultline validate), the runner to those --record
 * names. */
#include <stdlib.h>
#include <string.h>

#include "topology/internal.h"

static void add(struct topo_record_problem **v, size_t *n, size_t *alloc, struct topo_loc loc,
                char *msg)
{
    *v = fl_xgrow(*v, alloc, *n + 1, sizeof **v);
    (*v)[*n].loc = loc;
    (*v)[(*n)++].msg = msg;
}

/* The events are the loader's until it returns the scenario. */
static size_t problems(const struct topo_scenario *s, const struct topo_event *events,
                       size_t n_events, uint32_t node, struct topo_record_problem **out)
{
    *out = NULL;
    size_t n = 0, alloc = 0;
    if (node >= s->n_nodes) {
        return 0;
    }
    const struct topo_node *tn = &s->nodes[node];
    if (tn->vcpus > 1) {
        add(out, &n, &alloc, tn->loc,
            fl_xasprintf("node %s: vcpus: %u: a recorded node needs exactly 1 vCPU (QEMU's "
                         "record/replay refuses more)",
                         tn->name, tn->vcpus));
    }
    struct impair_disk_params none;
    memset(&none, 0, sizeof none);
    for (size_t d = 0; d < tn->n_disks; d++) {
        const struct topo_disk *td = &tn->disks[d];
        if (td->base_image) {
            add(out, &n, &alloc, td->loc,
                fl_xasprintf("node %s: disk %s: base image '%s': a recorded node's disk must be "
                             "a plain disk (its content at each segment start is copied; a "
                             "copy-on-write overlay cannot be copied yet)",
                             tn->name, td->name, td->base_image));
        }
        if (!impair_disk_params_equal(&td->faults, &none)) {
            add(out, &n, &alloc, td->loc,
                fl_xasprintf("node %s: disk %s: faults: a recorded node's disk cannot have "
                             "faults yet (QEMU's blkreplay records completion order only, not "
                             "errors or data)",
                             tn->name, td->name));
        }
    }
    for (size_t e = 0; e < n_events; e++) {
        const struct topo_event *ev = &events[e];
        bool reboot = ev->kind == TOPO_EV_REBOOT && ev->u.node.node == node;
        bool disk = ev->kind == TOPO_EV_DISK_SET && ev->u.disk.node == node &&
                    !impair_disk_params_equal(&ev->u.disk.faults, &none);
        if (reboot || disk) {
            add(out, &n, &alloc, ev->loc,
                fl_xasprintf("%s: %s of %s: a recorded node cannot be %s (%s)", ev->source,
                             topo_event_kind_name(ev->kind), tn->name,
                             reboot ? "reset" : "given disk faults",
                             reboot ? "QEMU 7.2's replay stops at a system_reset; crash and "
                                      "restart it instead"
                                    : "QEMU's blkreplay does not record errors or data"));
        }
    }
    return n;
}

size_t topo_record_problems(const struct topo_scenario *s, uint32_t node,
                            struct topo_record_problem **out)
{
    return problems(s, s->events, s->n_events, node, out);
}

void topo_record_problems_free(struct topo_record_problem *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].msg);
    }
    free(v);
}

void tc_parse_record(struct tc *c, const struct ty_node *run)
{
    const struct ty_node *v = run && run->type == TY_MAP ? ty_map_get(run, "record") : NULL;
    if (!v) {
        return;
    }
    struct topo_scenario *s = c->s;
    size_t m0 = tc_path_key(c, "run");
    size_t m = tc_path_key(c, "record");
    bool on = false;
    bool is_bool = tc_bool_word(v, &on);
    if (v->type == TY_SEQ && !v->n_items) {
        tc_err(c, v,
               "an empty list is not what to record (valid: true, false, or a list of node "
               "names, e.g. [n1, n2])");
    } else if (ty_is_null(v)) {
        tc_err_val(c, v,
                   "is not what to record (valid: true, false, or a list of node names, e.g. "
                   "[n1, n2])");
    } else if (is_bool) {
        if (on) {
            for (size_t i = 0; i < s->n_nodes; i++) {
                s->nodes[i].recorded = true;
            }
            s->record_loc = tc_loc(v);
        }
    } else if (v->type == TY_SCALAR || v->type == TY_SEQ) {
        size_t count = 0;
        uint32_t *idx = tc_node_list(c, v, &count);
        for (size_t i = 0; i < count; i++) {
            s->nodes[idx[i]].recorded = true;
        }
        if (count) {
            s->record_loc = tc_loc(v);
        }
        free(idx);
    } else {
        tc_err_val(c, v,
                   "is not what to record (valid: true, false, or a list of node names, e.g. "
                   "[n1, n2])");
    }
    tc_path_pop(c, m);
    tc_path_pop(c, m0);
}

void tc_check_record(struct tc *c)
{
    const struct topo_scenario *s = c->s;
    for (uint32_t i = 0; i < s->n_nodes; i++) {
        if (!s->nodes[i].recorded) {
            continue;
        }
        struct topo_record_problem *p;
        size_t n = problems(s, c->events, c->n_events, i, &p);
        char *see = n ? tc_see(c, s->record_loc) : NULL;
        for (size_t k = 0; k < n; k++) {
            tc_err_loc(c, p[k].loc.line, p[k].loc.col, "%s; it is recorded by run.record at %s",
                       p[k].msg, see);
        }
        free(see);
        topo_record_problems_free(p, n);
    }
}
