/* Partition shapes (Jepsen's nemeses) to explicit directed cut sets.
 *
 *   halves             shuffle, then  [first n/2] | [rest]         (n >= 2)
 *   majority-minority  shuffle, minority of 1..ceil(n/2)-1 | rest  (n >= 3)
 *   isolate            one node | everybody else                   (n >= 2)
 *   ring               shuffle into a ring; each node keeps its d = ceil((n/2)/2) nearest
 *                      neighbours on each side, so it sees a majority, and no two nodes
 *                      see the same majority                        (n >= 4)
 *   bridge             shuffle, bridge node b, then A | B halves of the rest;
 *                      A and B are cut, b sees both               (n >= 3)
 * Every random choice comes from the caller's PRNG, in this order:
 * a Fisher-Yates shuffle (n-1 draws), then the minority size
 * (majority-minority only).
 */
#include <stdlib.h>
#include <string.h>

#include "topology/shapes.h"

size_t tc_shape_min_nodes(enum topo_partition_shape shape)
{
    switch (shape) {
    case TOPO_SHAPE_RING:
        return 4;
    case TOPO_SHAPE_MAJORITY_MINORITY:
    case TOPO_SHAPE_BRIDGE:
        return 3;
    default:
        return 2;
    }
}

static void cut(struct tc_cuts *c, uint32_t a, uint32_t b)
{
    if (a == b) {
        return; /* duplicates are removed by tc_cuts_sort */
    }
    c->v = fl_xgrow(c->v, &c->alloc, c->n + 1, sizeof(*c->v));
    c->v[c->n].src = a;
    c->v[c->n].dst = b;
    c->n++;
}

void tc_cuts_between(struct tc_cuts *c, const uint32_t *a, size_t na, const uint32_t *b, size_t nb,
                     bool both)
{
    for (size_t i = 0; i < na; i++) {
        for (size_t j = 0; j < nb; j++) {
            cut(c, a[i], b[j]);
            if (both) {
                cut(c, b[j], a[i]);
            }
        }
    }
}

static int cmp_cut(const void *x, const void *y)
{
    const struct topo_cut *a = x, *b = y;
    if (a->src != b->src) {
        return a->src < b->src ? -1 : 1;
    }
    return a->dst < b->dst ? -1 : (a->dst > b->dst);
}

void tc_cuts_sort(struct tc_cuts *c)
{
    if (!c->n) {
        return;
    }
    qsort(c->v, c->n, sizeof(*c->v), cmp_cut);
    size_t w = 1;
    for (size_t i = 1; i < c->n; i++) {
        if (cmp_cut(&c->v[i], &c->v[w - 1])) {
            c->v[w++] = c->v[i];
        }
    }
    c->n = w;
}

static void names(struct fl_buf *b, const struct topo_scenario *s, const uint32_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        fl_buf_printf(b, "%s%s", i ? " " : "", s->nodes[v[i]].name);
    }
}

static void shuffle(uint32_t *v, size_t n, struct impair_rng *rng)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)impair_rng_below(rng, i);
        uint32_t t = v[i - 1];
        v[i - 1] = v[j];
        v[j] = t;
    }
}

static int cmp_u32(const void *x, const void *y)
{
    uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;
    return a < b ? -1 : (a > b);
}

static void sort_u32(uint32_t *v, size_t n)
{
    if (n) {
        qsort(v, n, sizeof(*v), cmp_u32);
    }
}

void tc_shape_cuts(const struct topo_scenario *s, enum topo_partition_shape shape,
                   const uint32_t *nodes, size_t n, int fixed, struct impair_rng *rng,
                   struct tc_cuts *out, char **label)
{
    uint32_t *v = fl_xcalloc(n ? n : 1, sizeof(*v));
    memcpy(v, nodes, n * sizeof(*v));
    struct fl_buf b = {0};
    switch (shape) {
    case TOPO_SHAPE_ISOLATE: {
        size_t pick = 0;
        if (fixed >= 0) {
            for (size_t i = 0; i < n; i++) {
                if (v[i] == (uint32_t)fixed) {
                    pick = i;
                }
            }
        } else {
            pick = (size_t)impair_rng_below(rng, n);
        }
        uint32_t one = v[pick];
        v[pick] = v[n - 1];
        sort_u32(v, n - 1);
        tc_cuts_between(out, &one, 1, v, n - 1, true);
        fl_buf_printf(&b, "isolate %s", s->nodes[one].name);
        break;
    }
    case TOPO_SHAPE_HALVES:
    case TOPO_SHAPE_MAJORITY_MINORITY: {
        shuffle(v, n, rng);
        size_t k = n / 2;
        if (shape == TOPO_SHAPE_MAJORITY_MINORITY) {
            size_t max_minority = (n + 1) / 2 - 1;
            k = 1 + (size_t)impair_rng_below(rng, max_minority);
        }
        sort_u32(v, k);
        sort_u32(v + k, n - k);
        tc_cuts_between(out, v, k, v + k, n - k, true);
        fl_buf_printf(&b, "%s: ", topo_partition_shape_name(shape));
        names(&b, s, v, k);
        fl_buf_puts(&b, " | ");
        names(&b, s, v + k, n - k);
        break;
    }
    case TOPO_SHAPE_RING: {
        shuffle(v, n, rng);
        size_t d = ((n / 2) + 1) / 2;
        for (size_t i = 0; i < n; i++) {
            for (size_t j = 0; j < n; j++) {
                size_t dist = i > j ? i - j : j - i;
                if (n - dist < dist) {
                    dist = n - dist;
                }
                if (dist > d) {
                    cut(out, v[i], v[j]);
                }
            }
        }
        fl_buf_puts(&b, "ring: ");
        names(&b, s, v, n);
        break;
    }
    case TOPO_SHAPE_BRIDGE: {
        shuffle(v, n, rng);
        size_t rest = n - 1;
        size_t ka = rest / 2;
        sort_u32(v + 1, ka);
        sort_u32(v + 1 + ka, rest - ka);
        tc_cuts_between(out, v + 1, ka, v + 1 + ka, rest - ka, true);
        fl_buf_printf(&b, "bridge %s: ", s->nodes[v[0]].name);
        names(&b, s, v + 1, ka);
        fl_buf_puts(&b, " | ");
        names(&b, s, v + 1 + ka, rest - ka);
        break;
    }
    default:
        break;
    }
    tc_cuts_sort(out);
    *label = fl_buf_steal(&b);
    free(v);
}
