/* Internal to topology/: partition shapes to cut sets (shapes.c). */
#ifndef FL_TOPOLOGY_SHAPES_H
#define FL_TOPOLOGY_SHAPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "impair/impair.h"
#include "topology/topology.h"

struct tc_cuts {
    struct topo_cut *v;
    size_t n, alloc;
};

/* Fewest nodes a shape can cut. */
size_t tc_shape_min_nodes(enum topo_partition_shape shape);
/* Cuts every direction from a to b (and b to a with both). */
void tc_cuts_between(struct tc_cuts *c, const uint32_t *a, size_t na, const uint32_t *b, size_t nb,
                     bool both);
/* Sorts by (src, dst) and removes duplicates. */
void tc_cuts_sort(struct tc_cuts *c);
/* A random (or, for isolate with fixed >= 0, a given) shape over `nodes`
 * (n >= tc_shape_min_nodes).  Appends to out; *label is malloc'ed. */
void tc_shape_cuts(const struct topo_scenario *s, enum topo_partition_shape shape,
                   const uint32_t *nodes, size_t n, int fixed, struct impair_rng *rng,
                   struct tc_cuts *out, char **label);

#endif /* FL_TOPOLOGY_SHAPES_H */
