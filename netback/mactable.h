/*
 * A network's MAC learning table (internal to netback/): source MAC ->
 * port, with aging.  Open addressing (linear probing) keyed by the 48-bit
 * address; entries are never deleted one by one: an entry older than the
 * aging time is simply "unknown" to lookups and is overwritten when its
 * address is learned again.  When the table is full, a sweep rebuilds it
 * without the aged entries; if it is still full the address is not
 * learned (frames to it are flooded), so a guest spraying random source
 * addresses costs bounded memory.
 */
#ifndef FL_NETBACK_MACTABLE_H
#define FL_NETBACK_MACTABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NB_MAC_TABLE_MAX 4096 /* entries per network */

struct nb_mac_entry {
    uint64_t mac; /* 48-bit address + 1 (0: empty slot) */
    int64_t seen_ns;
    uint32_t port; /* the network's port index */
};

struct nb_mactable {
    struct nb_mac_entry *slots;
    size_t n_slots; /* power of two, 2 * NB_MAC_TABLE_MAX */
    size_t used;
    int64_t aging_ns;
    uint64_t learn_failures; /* addresses not learned: table full */
    /* The entries the last learn and the last lookup found: a stream of
     * frames repeats them, and an entry keeps its address until the
     * slots are rebuilt (which clears these), so checking the address is
     * enough to reuse them. */
    struct nb_mac_entry *learn_memo, *lookup_memo;
};

void nb_mactable_init(struct nb_mactable *t, int64_t aging_ns);
void nb_mactable_free(struct nb_mactable *t);
uint64_t nb_mac_key(const uint8_t *mac);
static inline bool nb_mac_is_group(const uint8_t *mac)
{
    return mac[0] & 1;
}
/* Learns (or refreshes, or moves) mac -> port at now_ns. */
void nb_mactable_learn(struct nb_mactable *t, const uint8_t *mac, uint32_t port, int64_t now_ns);
/* The port mac was last seen on, or -1 when unknown or aged out. */
int64_t nb_mactable_lookup(struct nb_mactable *t, const uint8_t *mac, int64_t now_ns);
/* Forgets every entry pointing to port (the port went away). */
void nb_mactable_forget_port(struct nb_mactable *t, uint32_t port);

#endif /* FL_NETBACK_MACTABLE_H */
