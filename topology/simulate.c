/* The static state simulation: walks the sorted timeline with every
 * node's state (running, paused, crashed, shut down) and the active
 * partitions, link changes and disk faults, reports the events that
 * contradict them (resume of a running node, heal of nothing, ...), and
 * records per node when it is busy, for the nemesis to avoid. */
#include <stdlib.h>
#include <string.h>

#include "topology/timeline.h"

/* ------------------------------------------------------------------ */
/* Static simulation: node states, active partitions/links/disk faults  */
/* ------------------------------------------------------------------ */

enum nstate { NS_RUNNING, NS_PAUSED, NS_CRASHED, NS_STOPPED };
static const char *const nstate_names[] = {"running", "paused", "crashed", "shut down"};

struct nsim {
    enum nstate st;
    const struct topo_event *since; /* event that put it in this state */
    int64_t down_at;                /* when it left RUNNING */
};

static void busy_add(struct tc *c, uint32_t node, int64_t a, int64_t b)
{
    struct tc_busy *bz = &c->busy[node];
    bz->iv = fl_xgrow(bz->iv, &bz->alloc, bz->n + 1, sizeof(*bz->iv));
    bz->iv[bz->n][0] = a;
    bz->iv[bz->n][1] = b;
    bz->n++;
}

static void state_err(struct tc *c, const struct topo_event *e, const struct nsim *ns,
                      uint32_t node, const char *what)
{
    char *ts =
        e->at_ns == TOPO_AT_END ? fl_xstrdup("the end of the run") : tc_format_duration(e->at_ns);
    struct fl_buf b = {0};
    if (ns->since) {
        char *ts2 = tc_format_duration(ns->since->at_ns);
        char *see = tc_see(c, ns->since->loc);
        fl_buf_printf(&b, " (since %s at %s, see %s)", ns->since->source, ts2, see);
        free(ts2);
        free(see);
    }
    size_t m = c->path.size;
    fl_buf_puts(&c->path, e->source ? e->source : "");
    fl_buf_printf(&c->path, ".%s",
                  e->kind == TOPO_EV_CHECK ? "node" : topo_event_kind_name(e->kind));
    tc_err_loc(c, e->loc.line, e->loc.col, "'%s' is %s at %s%s; %s", c->s->nodes[node].name,
               nstate_names[ns->st], ts, b.data ? b.data : "", what);
    tc_path_pop(c, m);
    fl_buf_free(&b);
    free(ts);
}

void tc_simulate_static(struct tc *c)
{
    struct topo_scenario *s = c->s;
    struct nsim *ns = fl_xcalloc(s->n_nodes ? s->n_nodes : 1, sizeof(*ns));
    c->busy = fl_xcalloc(s->n_nodes ? s->n_nodes : 1, sizeof(*c->busy));
    bool *link_active = fl_xcalloc(s->n_links ? s->n_links : 1, sizeof(bool));
    size_t total_disks = 0;
    for (size_t i = 0; i < s->n_nodes; i++) {
        total_disks += s->nodes[i].n_disks;
    }
    bool **disk_active = fl_xcalloc(s->n_nodes ? s->n_nodes : 1, sizeof(*disk_active));
    for (size_t i = 0; i < s->n_nodes; i++) {
        disk_active[i] = fl_xcalloc(s->nodes[i].n_disks ? s->nodes[i].n_disks : 1, sizeof(bool));
    }
    /* Active static partitions: by pid and item. */
    size_t n_active = 0, alloc_active = 0;
    struct {
        uint32_t pid;
        size_t item;
    } *active = NULL;

    for (size_t i = 0; i < c->n_events; i++) {
        const struct topo_event *e = &c->events[i];
        const struct tc_evx *x = &c->evx[i];
        if (!x->is_static) {
            continue;
        }
        switch (e->kind) {
        case TOPO_EV_CRASH:
        case TOPO_EV_RESTART:
        case TOPO_EV_SHUTDOWN:
        case TOPO_EV_PAUSE:
        case TOPO_EV_RESUME:
        case TOPO_EV_REBOOT: {
            uint32_t n = e->u.node.node;
            struct nsim *st = &ns[n];
            enum nstate to = st->st;
            bool bad = false;
            const char *why = NULL;
            switch (e->kind) {
            case TOPO_EV_CRASH:
                bad = st->st == NS_CRASHED || st->st == NS_STOPPED;
                why = "crash needs a running or paused node";
                to = NS_CRASHED;
                break;
            case TOPO_EV_RESTART:
                bad = st->st != NS_CRASHED && st->st != NS_STOPPED;
                why = "restart needs a crashed or shut down node";
                to = NS_RUNNING;
                break;
            case TOPO_EV_SHUTDOWN:
                bad = st->st != NS_RUNNING;
                why = "shutdown needs a running node";
                to = NS_STOPPED;
                break;
            case TOPO_EV_PAUSE:
                bad = st->st != NS_RUNNING;
                why = "pause needs a running node";
                to = NS_PAUSED;
                break;
            case TOPO_EV_RESUME:
                bad = st->st != NS_PAUSED;
                why = "resume needs a paused node";
                to = NS_RUNNING;
                break;
            default: /* REBOOT */
                bad = st->st != NS_RUNNING;
                why = "reboot needs a running node";
                break;
            }
            if (bad) {
                state_err(c, e, st, n, why);
                break;
            }
            busy_add(c, n, e->at_ns, e->at_ns);
            if (to != st->st) {
                if (st->st == NS_RUNNING) {
                    st->down_at = e->at_ns;
                } else if (to == NS_RUNNING) {
                    busy_add(c, n, st->down_at, e->at_ns);
                }
                st->st = to;
                st->since = e;
            }
            break;
        }
        case TOPO_EV_CLOCK:
        case TOPO_EV_EXEC:
        case TOPO_EV_WAIT:
        case TOPO_EV_CHECK: {
            uint32_t n = e->kind == TOPO_EV_CLOCK  ? e->u.clock.node
                         : e->kind == TOPO_EV_EXEC ? e->u.exec.node
                         : e->kind == TOPO_EV_WAIT ? e->u.wait.node
                                                   : s->checks[e->u.check].node;
            if (ns[n].st != NS_RUNNING) {
                state_err(c, e, &ns[n], n,
                          e->kind == TOPO_EV_CLOCK ? "setting a clock needs a running node"
                                                   : "running a command needs a running node");
            }
            busy_add(c, n, e->at_ns, e->at_ns + x->extent);
            break;
        }
        case TOPO_EV_PARTITION:
            active = fl_xgrow(active, &alloc_active, n_active + 1, sizeof(*active));
            active[n_active].pid = x->pid;
            active[n_active].item = x->item;
            n_active++;
            break;
        case TOPO_EV_HEAL: {
            const struct tc_item *it = x->item != SIZE_MAX ? &c->items[x->item] : NULL;
            size_t before = n_active;
            size_t w = 0;
            for (size_t a = 0; a < n_active; a++) {
                bool heal;
                if (x->heal_pid) {
                    heal = active[a].pid == x->pid;
                } else if (it && it->heal_all) {
                    heal = true;
                } else {
                    heal = false;
                    for (size_t h = 0; it && h < it->n_heal; h++) {
                        heal = heal || active[a].item == it->heal_items[h];
                    }
                }
                if (!heal) {
                    active[w++] = active[a];
                }
            }
            n_active = w;
            /* heal: all as a safety net after a nemesis is fine: the
             * nemesis' partitions are not known here. */
            bool nemesis = ty_map_get(c->root, "nemesis") != NULL;
            if (w == before && !x->heal_pid && !(nemesis && it && it->heal_all)) {
                char *ts = tc_format_duration(e->at_ns);
                size_t m = c->path.size;
                fl_buf_puts(&c->path, e->source);
                tc_err_loc(c, e->loc.line, e->loc.col,
                           "heal: nothing to heal at %s (%s is in force)", ts,
                           it && it->heal_all ? "no partition" : "no partition it names");
                tc_path_pop(c, m);
                free(ts);
            }
            break;
        }
        case TOPO_EV_LINK_SET:
            for (size_t k = 0; k < e->u.link.n_changes; k++) {
                link_active[e->u.link.changes[k].link] = true;
            }
            break;
        case TOPO_EV_LINK_CLEAR: {
            bool any = false;
            for (size_t k = 0; k < e->u.link.n_changes; k++) {
                any = any || link_active[e->u.link.changes[k].link];
                link_active[e->u.link.changes[k].link] = false;
            }
            if (!any && e->origin != TOPO_ORIGIN_REVERT) {
                char *ts = tc_format_duration(e->at_ns);
                size_t m = c->path.size;
                fl_buf_puts(&c->path, e->source);
                tc_err_loc(c, e->loc.line, e->loc.col,
                           "link-clear: no link event changed '%s' before %s, so there is "
                           "nothing to clear",
                           e->u.link.label, ts);
                tc_path_pop(c, m);
                free(ts);
            }
            break;
        }
        case TOPO_EV_DISK_SET:
            disk_active[e->u.disk.node][e->u.disk.disk] = true;
            break;
        case TOPO_EV_DISK_CLEAR:
            if (!disk_active[e->u.disk.node][e->u.disk.disk] && e->origin != TOPO_ORIGIN_REVERT) {
                char *ts = tc_format_duration(e->at_ns);
                size_t m = c->path.size;
                fl_buf_puts(&c->path, e->source);
                tc_err_loc(c, e->loc.line, e->loc.col,
                           "disk-clear: no disk event changed disk '%s' of node '%s' before %s, "
                           "so there is nothing to clear",
                           s->nodes[e->u.disk.node].disks[e->u.disk.disk].name,
                           s->nodes[e->u.disk.node].name, ts);
                tc_path_pop(c, m);
                free(ts);
            }
            disk_active[e->u.disk.node][e->u.disk.disk] = false;
            busy_add(c, e->u.disk.node, e->at_ns, e->at_ns);
            break;
        default:
            break;
        }
    }
    /* Checks at the end need their node running then. */
    for (size_t k = 0; k < s->n_checks; k++) {
        const struct topo_check *ck = &s->checks[k];
        if (ck->at_ns != TOPO_AT_END || ns[ck->node].st == NS_RUNNING) {
            continue;
        }
        struct topo_event fake = {.kind = TOPO_EV_CHECK, .at_ns = TOPO_AT_END, .loc = ck->loc};
        fake.source = fl_xasprintf("checks[%zu]", k);
        state_err(c, &fake, &ns[ck->node], ck->node,
                  "a check at the end runs a command, which needs a running node");
        free(fake.source);
    }
    for (size_t n = 0; n < s->n_nodes; n++) {
        if (ns[n].st != NS_RUNNING) {
            busy_add(c, (uint32_t)n, ns[n].down_at, INT64_MAX);
        }
    }
    free(active);
    free(link_active);
    for (size_t i = 0; i < s->n_nodes; i++) {
        free(disk_active[i]);
    }
    free(disk_active);
    free(ns);
    (void)total_disks;
}
