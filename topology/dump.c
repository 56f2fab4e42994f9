/* topo_dump_json: the normalized model, every default and address
 * resolved, as one JSON object (faultline validate --dump). */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "topology/internal.h"

static void dur(struct fl_buf *b, const char *key, int64_t ns)
{
    char buf[IMPAIR_FMT_LEN];
    fl_buf_printf(b, "\"%s\":", key);
    fl_buf_json_string(b, impair_format_duration(ns, buf, sizeof(buf)));
    fl_buf_printf(b, ",\"%s_ns\":%" PRId64, key, ns);
}

static void size(struct fl_buf *b, const char *key, uint64_t bytes)
{
    char buf[IMPAIR_FMT_LEN];
    fl_buf_printf(b, "\"%s\":", key);
    fl_buf_json_string(b, impair_format_size(bytes, buf, sizeof(buf)));
    fl_buf_printf(b, ",\"%s_bytes\":%" PRIu64, key, bytes);
}

static void str(struct fl_buf *b, const char *key, const char *v)
{
    fl_buf_printf(b, "\"%s\":", key);
    if (v) {
        fl_buf_json_string(b, v);
    } else {
        fl_buf_puts(b, "null");
    }
}

/* A JSON array of strings, and of node names by index. */
static void strings(struct fl_buf *b, char *const *v, size_t n)
{
    fl_buf_puts(b, "[");
    for (size_t i = 0; i < n; i++) {
        fl_buf_puts(b, i ? "," : "");
        fl_buf_json_string(b, v[i]);
    }
    fl_buf_puts(b, "]");
}

static void node_names(struct fl_buf *b, const struct topo_scenario *s, const uint32_t *v, size_t n)
{
    fl_buf_puts(b, "[");
    for (size_t i = 0; i < n; i++) {
        fl_buf_puts(b, i ? "," : "");
        fl_buf_json_string(b, s->nodes[v[i]].name);
    }
    fl_buf_puts(b, "]");
}

static void loc(struct fl_buf *b, struct topo_loc l)
{
    fl_buf_printf(b, "\"line\":%u,\"col\":%u", l.line, l.col);
}

static void image(struct fl_buf *b, const struct topo_image *img)
{
    fl_buf_puts(b, "{\"packages\":");
    strings(b, img->packages, img->n_packages);
    fl_buf_puts(b, ",\"files\":[");
    for (size_t i = 0; i < img->n_files; i++) {
        fl_buf_puts(b, i ? ",{" : "{");
        str(b, "src", img->files[i].src);
        fl_buf_puts(b, ",");
        str(b, "dst", img->files[i].dst);
        fl_buf_puts(b, "}");
    }
    fl_buf_puts(b, "]}");
}

static void link_words(struct fl_buf *b, const struct impair_link_params *p)
{
    struct fl_buf w = {0};
    impair_link_params_format(p, &w);
    fl_buf_json_string(b, w.data ? w.data : "");
    fl_buf_free(&w);
}

static void disk_words(struct fl_buf *b, const struct impair_disk_params *p)
{
    struct fl_buf w = {0};
    impair_disk_params_format(p, &w);
    fl_buf_json_string(b, w.data ? w.data : "");
    fl_buf_free(&w);
}

static void node_ref(struct fl_buf *b, const struct topo_scenario *s, const char *key, uint32_t n)
{
    str(b, key, n < s->n_nodes ? s->nodes[n].name : "?");
}

static void cuts(struct fl_buf *b, const struct topo_scenario *s, const struct topo_cut *v,
                 size_t n)
{
    fl_buf_puts(b, "[");
    for (size_t i = 0; i < n; i++) {
        fl_buf_printf(b, "%s[", i ? "," : "");
        fl_buf_json_string(b, s->nodes[v[i].src].name);
        fl_buf_puts(b, ",");
        fl_buf_json_string(b, s->nodes[v[i].dst].name);
        fl_buf_puts(b, "]");
    }
    fl_buf_puts(b, "]");
}

static void expect(struct fl_buf *b, const struct topo_expect *e)
{
    fl_buf_puts(b, "\"expect\":{\"exit\":");
    if (e->exit == TOPO_EXIT_EXACT) {
        fl_buf_printf(b, "%d", e->code);
    } else {
        fl_buf_json_string(b, e->exit == TOPO_EXIT_NONZERO ? "nonzero" : "any");
    }
    fl_buf_puts(b, ",");
    str(b, "output", e->output);
    fl_buf_puts(b, "}");
}

static void event(struct fl_buf *b, const struct topo_scenario *s, const struct topo_event *e)
{
    char buf[IMPAIR_FMT_LEN];
    fl_buf_printf(b, "{\"seq\":%u,\"at\":", e->seq);
    fl_buf_json_string(b, impair_format_duration(e->at_ns, buf, sizeof(buf)));
    fl_buf_printf(b, ",\"at_ns\":%" PRId64 ",", e->at_ns);
    str(b, "kind", topo_event_kind_name(e->kind));
    fl_buf_puts(b, ",");
    str(b, "origin", topo_origin_name(e->origin));
    fl_buf_puts(b, ",");
    str(b, "source", e->source);
    fl_buf_puts(b, ",");
    str(b, "name", e->name);
    fl_buf_puts(b, ",");
    loc(b, e->loc);
    switch (e->kind) {
    case TOPO_EV_PARTITION:
    case TOPO_EV_HEAL:
        if (e->kind == TOPO_EV_PARTITION) {
            fl_buf_puts(b, ",");
            str(b, "shape", topo_partition_shape_name(e->u.partition.shape));
        }
        fl_buf_puts(b, ",");
        str(b, "label", e->u.partition.label);
        fl_buf_puts(b, e->kind == TOPO_EV_PARTITION ? ",\"cuts\":" : ",\"healed\":");
        cuts(b, s, e->u.partition.cuts, e->u.partition.n_cuts);
        fl_buf_puts(b, ",\"cut_after\":");
        cuts(b, s, e->u.partition.state, e->u.partition.n_state);
        break;
    case TOPO_EV_LINK_SET:
    case TOPO_EV_LINK_CLEAR:
        fl_buf_puts(b, ",");
        str(b, "links", e->u.link.label);
        fl_buf_puts(b, ",\"changes\":[");
        for (size_t i = 0; i < e->u.link.n_changes; i++) {
            fl_buf_puts(b, i ? ",{" : "{");
            str(b, "link", s->links[e->u.link.changes[i].link].name);
            fl_buf_puts(b, ",\"params\":");
            link_words(b, &e->u.link.changes[i].params);
            fl_buf_puts(b, "}");
        }
        fl_buf_puts(b, "]");
        break;
    TOPO_EV_NODE_CASES:
        fl_buf_puts(b, ",");
        node_ref(b, s, "node", e->u.node.node);
        if (e->kind == TOPO_EV_CRASH) {
            fl_buf_puts(b, ",");
            str(b, "policy",
                e->u.node.has_policy ? topo_crash_policy_name(e->u.node.policy) : "per-disk");
        }
        break;
    case TOPO_EV_CLOCK:
        fl_buf_puts(b, ",");
        node_ref(b, s, "node", e->u.clock.node);
        fl_buf_printf(b, ",\"offset_ns\":%" PRId64 ",\"delta_ns\":%" PRId64, e->u.clock.offset_ns,
                      e->u.clock.delta_ns);
        break;
    case TOPO_EV_DISK_SET:
    case TOPO_EV_DISK_CLEAR:
        fl_buf_puts(b, ",");
        node_ref(b, s, "node", e->u.disk.node);
        fl_buf_puts(b, ",");
        str(b, "disk", s->nodes[e->u.disk.node].disks[e->u.disk.disk].name);
        fl_buf_puts(b, ",\"faults\":");
        disk_words(b, &e->u.disk.faults);
        fl_buf_printf(b, ",\"capacity_bytes\":%" PRIu64 ",\"stall\":%s", e->u.disk.capacity_bytes,
                      e->u.disk.stall ? "true" : "false");
        break;
    case TOPO_EV_EXEC:
        fl_buf_puts(b, ",");
        node_ref(b, s, "node", e->u.exec.node);
        fl_buf_puts(b, ",");
        str(b, "command", e->u.exec.command);
        fl_buf_printf(b, ",\"background\":%s,", e->u.exec.background ? "true" : "false");
        dur(b, "timeout", e->u.exec.timeout_ns);
        if (e->u.exec.has_expect) {
            fl_buf_puts(b, ",");
            expect(b, &e->u.exec.expect);
        }
        break;
    case TOPO_EV_WAIT:
        fl_buf_puts(b, ",");
        node_ref(b, s, "node", e->u.wait.node);
        fl_buf_puts(b, ",");
        str(b, "command", e->u.wait.command);
        fl_buf_puts(b, ",");
        dur(b, "timeout", e->u.wait.timeout_ns);
        fl_buf_puts(b, ",");
        dur(b, "interval", e->u.wait.interval_ns);
        break;
    case TOPO_EV_MARK:
        fl_buf_puts(b, ",");
        str(b, "mark", e->u.mark);
        break;
    case TOPO_EV_CHECK:
        fl_buf_puts(b, ",");
        str(b, "check", s->checks[e->u.check].name);
        break;
    default:
        break;
    }
    fl_buf_puts(b, "}");
}

bool topo_dump_json(const struct topo_scenario *s, struct fl_buf *b)
{
    char buf[IMPAIR_FMT_LEN], ip[16], mac[18];
    fl_buf_puts(b, "{");
    str(b, "file", s->file);
    fl_buf_puts(b, ",");
    str(b, "name", s->name);
    fl_buf_puts(b, ",");
    str(b, "description", s->description);
    fl_buf_printf(b, ",\"seed\":%" PRIu64 ",\"seed_random\":%s,", s->seed,
                  s->seed_random ? "true" : "false");
    dur(b, "duration", s->duration_ns);
    fl_buf_puts(b, ",");
    dur(b, "boot_timeout", s->boot_timeout_ns);
    fl_buf_puts(b, ",\"record\":[");
    for (size_t i = 0, k = 0; i < s->n_nodes; i++) {
        if (s->nodes[i].recorded) {
            fl_buf_puts(b, k++ ? "," : "");
            fl_buf_json_string(b, s->nodes[i].name);
        }
    }
    fl_buf_puts(b, "],\"image\":");
    image(b, &s->image);

    fl_buf_puts(b, ",\"networks\":[");
    for (size_t i = 0; i < s->n_networks; i++) {
        const struct topo_network *n = &s->networks[i];
        fl_buf_puts(b, i ? ",{" : "{");
        str(b, "name", n->name);
        topo_format_ip(n->subnet, ip);
        fl_buf_printf(b, ",\"subnet\":\"%s/%u\",\"mtu\":%u,\"learning\":%s,\"nodes\":", ip,
                      n->prefix_len, n->mtu, n->learning ? "true" : "false");
        node_names(b, s, n->nodes, n->n_nodes);
        fl_buf_puts(b, "}");
    }

    fl_buf_puts(b, "],\"nodes\":[");
    for (size_t i = 0; i < s->n_nodes; i++) {
        const struct topo_node *n = &s->nodes[i];
        fl_buf_puts(b, i ? ",{" : "{");
        str(b, "name", n->name);
        fl_buf_printf(b, ",\"index\":%u,\"vcpus\":%u,", n->index, n->vcpus);
        size(b, "memory", n->memory_bytes);
        fl_buf_puts(b, ",\"nics\":[");
        for (size_t k = 0; k < n->n_nics; k++) {
            const struct topo_nic *nic = &n->nics[k];
            fl_buf_puts(b, k ? ",{" : "{");
            str(b, "network", s->networks[nic->network].name);
            fl_buf_puts(b, ",");
            str(b, "ifname", nic->ifname);
            topo_format_mac(nic->mac, mac);
            topo_format_ip(nic->ip, ip);
            fl_buf_printf(b,
                          ",\"mac\":\"%s\",\"ip\":\"%s\",\"prefix_len\":%u,\"mac_fixed\":%s,"
                          "\"ip_fixed\":%s}",
                          mac, ip, nic->prefix_len, nic->mac_fixed ? "true" : "false",
                          nic->ip_fixed ? "true" : "false");
        }
        fl_buf_puts(b, "],\"disks\":[");
        for (size_t k = 0; k < n->n_disks; k++) {
            const struct topo_disk *d = &n->disks[k];
            fl_buf_puts(b, k ? ",{" : "{");
            str(b, "name", d->name);
            fl_buf_puts(b, ",");
            size(b, "size", d->size_bytes);
            fl_buf_puts(b, ",");
            str(b, "base", d->base_image);
            fl_buf_puts(b, ",");
            str(b, "cache", topo_disk_cache_name(d->cache));
            fl_buf_puts(b, ",");
            str(b, "crash_policy", topo_crash_policy_name(d->crash_policy));
            fl_buf_printf(b, ",\"cache_size_bytes\":%" PRIu64 ",\"capacity_bytes\":%" PRIu64 ",",
                          d->cache_limit_bytes, d->capacity_bytes);
            str(b, "mount", d->mount);
            fl_buf_printf(b, ",\"format\":%s,\"faults\":", d->format ? "true" : "false");
            disk_words(b, &d->faults);
            fl_buf_puts(b, "}");
        }
        fl_buf_puts(b, "],\"commands\":[");
        for (size_t k = 0; k < n->n_commands; k++) {
            fl_buf_puts(b, k ? ",{" : "{");
            str(b, "run", n->commands[k].command);
            fl_buf_printf(b, ",\"restart\":%s}", n->commands[k].restart ? "true" : "false");
        }
        fl_buf_puts(b, "],\"env\":{");
        for (size_t k = 0; k < n->n_env; k++) {
            fl_buf_puts(b, k ? "," : "");
            fl_buf_json_string(b, n->env[k].name);
            fl_buf_puts(b, ":");
            fl_buf_json_string(b, n->env[k].value);
        }
        fl_buf_puts(b, "},\"hosts\":{");
        bool first = true;
        for (size_t k = 0; k < s->n_nodes; k++) {
            uint32_t a = topo_host_address(s, (uint32_t)i, (uint32_t)k);
            if (!a) {
                continue;
            }
            topo_format_ip(a, ip);
            fl_buf_puts(b, first ? "" : ",");
            fl_buf_json_string(b, s->nodes[k].name);
            fl_buf_printf(b, ":\"%s\"", ip);
            first = false;
        }
        fl_buf_puts(b, "},\"image\":");
        image(b, &n->image);
        fl_buf_puts(b, ",");
        loc(b, n->loc);
        fl_buf_puts(b, "}");
    }

    fl_buf_puts(b, "],\"links\":[");
    for (size_t i = 0; i < s->n_links; i++) {
        const struct topo_link *l = &s->links[i];
        fl_buf_puts(b, i ? ",{" : "{");
        str(b, "name", l->name);
        fl_buf_puts(b, ",");
        str(b, "network", s->networks[l->network].name);
        fl_buf_puts(b, ",");
        node_ref(b, s, "src", l->src);
        fl_buf_puts(b, ",");
        node_ref(b, s, "dst", l->dst);
        fl_buf_puts(b, ",\"params\":");
        link_words(b, &l->params);
        fl_buf_puts(b, "}");
    }

    fl_buf_puts(b, "],\"events\":[");
    for (size_t i = 0; i < s->n_events; i++) {
        fl_buf_puts(b, i ? "," : "");
        event(b, s, &s->events[i]);
    }

    fl_buf_puts(b, "],\"checks\":[");
    for (size_t i = 0; i < s->n_checks; i++) {
        const struct topo_check *c = &s->checks[i];
        fl_buf_puts(b, i ? ",{" : "{");
        str(b, "name", c->name);
        fl_buf_puts(b, ",");
        node_ref(b, s, "node", c->node);
        fl_buf_puts(b, ",");
        str(b, "command", c->command);
        fl_buf_puts(b, ",\"at\":");
        if (c->at_ns == TOPO_AT_END) {
            fl_buf_puts(b, "\"end\",\"at_ns\":null,");
        } else {
            fl_buf_json_string(b, impair_format_duration(c->at_ns, buf, sizeof(buf)));
            fl_buf_printf(b, ",\"at_ns\":%" PRId64 ",", c->at_ns);
        }
        dur(b, "timeout", c->timeout_ns);
        fl_buf_puts(b, ",");
        dur(b, "within", c->within_ns);
        fl_buf_puts(b, ",");
        dur(b, "interval", c->interval_ns);
        fl_buf_puts(b, ",");
        expect(b, &c->expect);
        fl_buf_puts(b, ",");
        loc(b, c->loc);
        fl_buf_puts(b, "}");
    }

    fl_buf_puts(b, "],\"nemesis\":[");
    for (size_t i = 0; i < s->n_nemeses; i++) {
        const struct topo_nemesis *n = &s->nemeses[i];
        fl_buf_puts(b, i ? ",{" : "{");
        str(b, "name", n->name);
        fl_buf_puts(b, ",\"faults\":");
        strings(b, n->faults, n->n_faults);
        fl_buf_puts(b, ",\"nodes\":");
        node_names(b, s, n->nodes, n->n_nodes);
        fl_buf_puts(b, ",");
        dur(b, "every_min", n->every_min_ns);
        fl_buf_puts(b, ",");
        dur(b, "every_max", n->every_max_ns);
        fl_buf_puts(b, ",");
        dur(b, "duration_min", n->duration_min_ns);
        fl_buf_puts(b, ",");
        dur(b, "duration_max", n->duration_max_ns);
        fl_buf_puts(b, ",");
        dur(b, "start", n->start_ns);
        fl_buf_puts(b, ",");
        dur(b, "stop", n->stop_ns);
        fl_buf_printf(b, ",\"stream\":%" PRIu64 ",\"drawn\":%zu,\"skipped\":%zu}", n->stream,
                      n->n_drawn, n->n_skipped);
    }
    fl_buf_puts(b, "]}");
    return true;
}
