/* The model: names of enums, lookups, formatting, freeing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "topology/internal.h"

#define NAME_FN(fn, type, LIST, count)                                                             \
    const char *fn(type v)                                                                         \
    {                                                                                              \
        static const char *const names[] = {LIST(NAME_STR)};                                       \
        return (size_t)v < FL_ARRAY_LEN(names) ? names[v] : "?";                                   \
    }
#define NAME_STR(name, str) str,

NAME_FN(topo_crash_policy_name, enum topo_crash_policy, TOPO_CRASH_POLICIES, _)
NAME_FN(topo_disk_cache_name, enum topo_disk_cache, TOPO_DISK_CACHES, _)
NAME_FN(topo_event_kind_name, enum topo_event_kind, TOPO_EVENT_KINDS, _)
NAME_FN(topo_partition_shape_name, enum topo_partition_shape, TOPO_PARTITION_SHAPES, _)
NAME_FN(topo_origin_name, enum topo_origin, TOPO_ORIGINS, _)

int topo_node_find(const struct topo_scenario *s, const char *name)
{
    for (size_t i = 0; s && name && i < s->n_nodes; i++) {
        if (!strcmp(s->nodes[i].name, name)) {
            return (int)i;
        }
    }
    return -1;
}

int topo_network_find(const struct topo_scenario *s, const char *name)
{
    for (size_t i = 0; s && name && i < s->n_networks; i++) {
        if (!strcmp(s->networks[i].name, name)) {
            return (int)i;
        }
    }
    return -1;
}

int topo_link_find(const struct topo_scenario *s, uint32_t network, uint32_t src, uint32_t dst)
{
    for (size_t i = 0; s && i < s->n_links; i++) {
        const struct topo_link *l = &s->links[i];
        if (l->network == network && l->src == src && l->dst == dst) {
            return (int)i;
        }
    }
    return -1;
}

uint32_t topo_host_address(const struct topo_scenario *s, uint32_t viewer, uint32_t target)
{
    if (!s || viewer >= s->n_nodes || target >= s->n_nodes) {
        return 0;
    }
    const struct topo_node *t = &s->nodes[target], *v = &s->nodes[viewer];
    /* First network in declaration order that both are on. */
    for (size_t w = 0; w < s->n_networks; w++) {
        const struct topo_nic *tn = NULL;
        bool vn = false;
        for (size_t i = 0; i < t->n_nics; i++) {
            if (t->nics[i].network == w) {
                tn = &t->nics[i];
            }
        }
        for (size_t i = 0; i < v->n_nics; i++) {
            vn = vn || v->nics[i].network == w;
        }
        if (tn && vn) {
            return tn->ip;
        }
    }
    return t->n_nics ? t->nics[0].ip : 0;
}

void topo_format_ip(uint32_t ip, char *buf)
{
    snprintf(buf, 16, "%u.%u.%u.%u", ip >> 24, (ip >> 16) & 255, (ip >> 8) & 255, ip & 255);
}

void topo_format_mac(const uint8_t mac[6], char *buf)
{
    snprintf(buf, 18, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4],
             mac[5]);
}

void topo_image_clear(struct topo_image *img)
{
    for (size_t i = 0; i < img->n_packages; i++) {
        free(img->packages[i]);
    }
    free(img->packages);
    for (size_t i = 0; i < img->n_files; i++) {
        free(img->files[i].src);
        free(img->files[i].dst);
    }
    free(img->files);
    memset(img, 0, sizeof(*img));
}

void topo_expect_clear(struct topo_expect *e)
{
    free(e->output);
    e->output = NULL;
}

void topo_event_clear(struct topo_event *e)
{
    free(e->name);
    free(e->source);
    switch (e->kind) {
    case TOPO_EV_PARTITION:
    case TOPO_EV_HEAL:
        free(e->u.partition.label);
        free(e->u.partition.cuts);
        free(e->u.partition.state);
        break;
    case TOPO_EV_LINK_SET:
    case TOPO_EV_LINK_CLEAR:
        free(e->u.link.label);
        for (size_t i = 0; i < e->u.link.n_changes; i++) {
            impair_link_params_clear(&e->u.link.changes[i].params);
        }
        free(e->u.link.changes);
        break;
    case TOPO_EV_DISK_SET:
    case TOPO_EV_DISK_CLEAR:
        impair_disk_params_clear(&e->u.disk.faults);
        break;
    case TOPO_EV_EXEC:
        free(e->u.exec.command);
        topo_expect_clear(&e->u.exec.expect);
        break;
    case TOPO_EV_WAIT:
        free(e->u.wait.command);
        break;
    case TOPO_EV_MARK:
        free(e->u.mark);
        break;
    default:
        break;
    }
    memset(e, 0, sizeof(*e));
}

void topo_scenario_free(struct topo_scenario *s)
{
    if (!s) {
        return;
    }
    free(s->file);
    free(s->name);
    free(s->description);
    topo_image_clear(&s->image);
    for (size_t i = 0; i < s->n_networks; i++) {
        free(s->networks[i].name);
        free(s->networks[i].nodes);
    }
    free(s->networks);
    for (size_t i = 0; i < s->n_nodes; i++) {
        struct topo_node *n = &s->nodes[i];
        free(n->name);
        free(n->nics);
        for (size_t d = 0; d < n->n_disks; d++) {
            free(n->disks[d].name);
            free(n->disks[d].base_image);
            free(n->disks[d].mount);
            impair_disk_params_clear(&n->disks[d].faults);
        }
        free(n->disks);
        for (size_t k = 0; k < n->n_commands; k++) {
            free(n->commands[k].command);
        }
        free(n->commands);
        for (size_t k = 0; k < n->n_env; k++) {
            free(n->env[k].name);
            free(n->env[k].value);
        }
        free(n->env);
        topo_image_clear(&n->image);
    }
    free(s->nodes);
    for (size_t i = 0; i < s->n_links; i++) {
        free(s->links[i].name);
        impair_link_params_clear(&s->links[i].params);
    }
    free(s->links);
    for (size_t i = 0; i < s->n_events; i++) {
        topo_event_clear(&s->events[i]);
    }
    free(s->events);
    for (size_t i = 0; i < s->n_checks; i++) {
        free(s->checks[i].name);
        free(s->checks[i].command);
        topo_expect_clear(&s->checks[i].expect);
    }
    free(s->checks);
    for (size_t i = 0; i < s->n_nemeses; i++) {
        free(s->nemeses[i].name);
        for (size_t k = 0; k < s->nemeses[i].n_faults; k++) {
            free(s->nemeses[i].faults[k]);
        }
        free(s->nemeses[i].faults);
        free(s->nemeses[i].nodes);
    }
    free(s->nemeses);
    free(s);
}

char *tc_format_duration(int64_t ns)
{
    char buf[IMPAIR_FMT_LEN];
    impair_format_duration(ns, buf, sizeof(buf));
    return fl_xstrdup(buf);
}
