/*
 * Link rate, as netem computes it (sch_netem.c packet_time_ns): a frame
 * occupies the wire for its size plus the per-packet overhead, rounded up
 * to whole cells (each cell carrying cell_overhead extra bytes) when a
 * cell size is set.  The caller serializes: a frame starts when the
 * previous one has left (impair.h, struct impair_link_params.rate).
 *
 *   |<-- frame + packet_overhead -->|
 *   [cell][cell][cell][cell..pad]      each cell: cell_size + cell_overhead on the wire
 */
#include "impair/internal.h"

int64_t impair_rate_packet_ns(const struct impair_link_params *p, uint32_t frame_size,
                              uint64_t *rem)
{
    int64_t len = (int64_t)frame_size + p->rate.packet_overhead;
    if (len < 0) {
        len = 0;
    }
    if (p->rate.cell_size) {
        int64_t cells = (len + p->rate.cell_size - 1) / p->rate.cell_size;
        int64_t per_cell = (int64_t)p->rate.cell_size + p->rate.cell_overhead;
        len = cells * (per_cell > 0 ? per_cell : 0);
    }
    /* time = len * 8e9 / bits, carrying the remainder so that the long-run
     * rate is exact (netem truncates each frame). */
    const uint64_t bits = p->rate.bits_per_s;
    if ((uint64_t)len < (UINT64_C(1) << 31)) {
        /* len * 8e9 < 1.72e19 and *rem < bits <= 1e13: fits in 64 bits */
        uint64_t num = (uint64_t)len * UINT64_C(8000000000) + *rem;
        *rem = num % bits;
        return (int64_t)(num / bits);
    }
    u128 num = (u128)(uint64_t)len * UINT64_C(8000000000) + *rem;
    *rem = (uint64_t)(num % bits);
    return (int64_t)(num / bits);
}
