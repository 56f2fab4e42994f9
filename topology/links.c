/* links: — the link settings per selector, layered (network < '*' <
 * pair < direction, key by key) into one parameter set per directed link
 * of every network. */
#include <stdlib.h>
#include <string.h>

#include "topology/internal.h"
/* ------------------------------------------------------------------ */
/* links:                                                              */
/* ------------------------------------------------------------------ */

struct link_entry {
    struct tc_selector sel;
    struct tc_link_settings set;
    const struct ty_node *key;
    bool ok;
};

static int cmp_entry_rank(const void *a, const void *b)
{
    const struct link_entry *x = a, *y = b;
    if (x->sel.rank != y->sel.rank) {
        return x->sel.rank - y->sel.rank;
    }
    return x->key->line != y->key->line ? (int)x->key->line - (int)y->key->line
                                        : (int)x->key->col - (int)y->key->col;
}

void tc_build_links(struct tc *c, const struct ty_node *links)
{
    struct topo_scenario *s = c->s;
    size_t total = 0;
    for (size_t w = 0; w < s->n_networks; w++) {
        size_t k = 0;
        for (size_t i = 0; i < s->n_nodes; i++) {
            for (size_t j = 0; j < s->nodes[i].n_nics; j++) {
                k += s->nodes[i].nics[j].network == w;
            }
        }
        s->networks[w].nodes = fl_xcalloc(k ? k : 1, sizeof(uint32_t));
        for (size_t i = 0; i < s->n_nodes; i++) {
            for (size_t j = 0; j < s->nodes[i].n_nics; j++) {
                if (s->nodes[i].nics[j].network == w) {
                    s->networks[w].nodes[s->networks[w].n_nodes++] = (uint32_t)i;
                }
            }
        }
        total += k * (k ? k - 1 : 0);
    }
    s->links = fl_xcalloc(total ? total : 1, sizeof(*s->links));
    for (size_t w = 0; w < s->n_networks; w++) {
        const struct topo_network *net = &s->networks[w];
        for (size_t a = 0; a < net->n_nodes; a++) {
            for (size_t b = 0; b < net->n_nodes; b++) {
                if (a == b) {
                    continue;
                }
                struct topo_link *l = &s->links[s->n_links++];
                l->network = (uint32_t)w;
                l->src = net->nodes[a];
                l->dst = net->nodes[b];
                l->name = fl_xasprintf("%s:%s->%s", net->name, s->nodes[l->src].name,
                                       s->nodes[l->dst].name);
            }
        }
    }
    if (!links || ty_is_null(links)) {
        return;
    }
    size_t m0;
    if (!tc_enter_section(c, links, "links", TY_MAP,
                          "a mapping of link selectors to parameters "
                          "(e.g. {lan: {delay: 1ms}, \"n1 -> n2\": {loss: 5%}})",
                          &m0)) {
        return;
    }
    struct link_entry *ents = fl_xcalloc(links->n_pairs ? links->n_pairs : 1, sizeof(*ents));
    size_t n_ents = 0;
    for (size_t i = 0; i < links->n_pairs; i++) {
        const struct ty_node *k = links->pairs[i].key, *v = links->pairs[i].value;
        size_t m = tc_path_keyn(c, k);
        struct link_entry *e = &ents[n_ents];
        memset(e, 0, sizeof(*e));
        e->key = k;
        bool ok = tc_selector(c, k, &e->sel);
        ok = tc_link_settings(c, v, &e->set) && ok;
        if (!ok) {
            free(e->sel.text);
            impair_link_params_clear(&e->set.p);
        } else {
            n_ents++;
        }
        tc_path_pop(c, m);
    }
    qsort(ents, n_ents, sizeof(*ents), cmp_entry_rank);
    /* One pass over the links: apply the matching entries in precedence
     * order, and flag two entries of the same precedence that set the same
     * key of the same link (contradictory; reported once per entry). */
    bool *reported = fl_xcalloc(n_ents ? n_ents : 1, sizeof(bool));
    bool *conflicted = fl_xcalloc(n_ents ? n_ents : 1, sizeof(bool));
    for (size_t l = 0; l < s->n_links; l++) {
        struct impair_link_params p = {0};
        int last = -1;
        int rank = -1;
        size_t setter[LK_NKEYS];
        uint32_t acc = 0;
        for (size_t i = 0; i < n_ents; i++) {
            if (!tc_selector_matches(c, &ents[i].sel, &s->links[l])) {
                continue;
            }
            if (ents[i].sel.rank != rank) {
                rank = ents[i].sel.rank;
                acc = 0;
            }
            uint32_t both = acc & ents[i].set.mask;
            if (both && !conflicted[i]) {
                conflicted[i] = true;
                int key = __builtin_ctz(both);
                const struct link_entry *first = &ents[setter[key]];
                char *see = tc_see(c, tc_loc(first->key));
                size_t m = tc_path_keyn(c, ents[i].key);
                tc_err(c, ents[i].key,
                       "sets '%s' of link %s, which '%s' (at %s) also sets with the same "
                       "precedence; say it once, or use a more specific selector",
                       tc_link_key_names[key], s->links[l].name, first->sel.text, see);
                tc_path_pop(c, m);
                free(see);
            }
            for (int k = 0; k < LK_NKEYS; k++) {
                if ((ents[i].set.mask & (1u << k)) && !(acc & (1u << k))) {
                    setter[k] = i;
                }
            }
            acc |= ents[i].set.mask;
            tc_link_apply(&p, &ents[i].set);
            last = (int)i;
        }
        struct fl_error *e = NULL;
        if (last >= 0 && !impair_link_params_validate(&p, &e)) {
            if (!reported[last]) {
                reported[last] = true;
                size_t m = tc_path_keyn(c, ents[last].key);
                tc_err(c, ents[last].key, "link %s: %s", s->links[l].name, e->msg);
                tc_path_pop(c, m);
            }
            fl_error_free(e);
        }
        s->links[l].params = p;
    }
    free(conflicted);
    for (size_t i = 0; i < n_ents; i++) {
        free(ents[i].sel.text);
        impair_link_params_clear(&ents[i].set.p);
    }
    free(reported);
    free(ents);
    tc_path_pop(c, m0);
}
