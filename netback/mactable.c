/* MAC learning table; see mactable.h. */
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "netback/mactable.h"

void nb_mactable_init(struct nb_mactable *t, int64_t aging_ns)
{
    memset(t, 0, sizeof *t);
    t->n_slots = 2 * NB_MAC_TABLE_MAX;
    t->aging_ns = aging_ns;
}

void nb_mactable_free(struct nb_mactable *t)
{
    free(t->slots);
    t->slots = NULL;
    t->used = 0;
    t->learn_memo = t->lookup_memo = NULL;
}

uint64_t nb_mac_key(const uint8_t *mac)
{
    /* The six bytes as a big-endian number, plus one. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    uint32_t hi;
    uint16_t lo;
    memcpy(&hi, mac, 4);
    memcpy(&lo, mac + 4, 2);
    return ((uint64_t)__builtin_bswap32(hi) << 16 | __builtin_bswap16(lo)) + 1;
#else
    uint64_t k = 0;
    for (int i = 0; i < 6; i++) {
        k = k << 8 | mac[i];
    }
    return k + 1;
#endif
}

static size_t slot_of(const struct nb_mactable *t, uint64_t key)
{
    /* Fibonacci hashing: guests' addresses share their high bytes. */
    return (size_t)((key * UINT64_C(0x9e3779b97f4a7c15)) >> 40) & (t->n_slots - 1);
}

static bool aged(const struct nb_mactable *t, const struct nb_mac_entry *e, int64_t now_ns)
{
    return now_ns - e->seen_ns > t->aging_ns;
}

static struct nb_mac_entry *find(const struct nb_mactable *t, uint64_t key)
{
    if (!t->slots) {
        return NULL;
    }
    for (size_t i = slot_of(t, key);; i = (i + 1) & (t->n_slots - 1)) {
        struct nb_mac_entry *e = &t->slots[i];
        if (e->mac == key) {
            return e;
        }
        if (e->mac == 0) {
            return NULL;
        }
    }
}

static void insert(struct nb_mactable *t, uint64_t key, uint32_t port, int64_t now_ns)
{
    size_t i = slot_of(t, key);
    while (t->slots[i].mac != 0) {
        i = (i + 1) & (t->n_slots - 1);
    }
    t->slots[i] = (struct nb_mac_entry){.mac = key, .seen_ns = now_ns, .port = port};
    t->used++;
}

/* Rebuilds the table keeping only live entries (and not those of
 * drop_port, when drop_port >= 0). */
static void rebuild(struct nb_mactable *t, int64_t now_ns, bool drop_aged, int64_t drop_port)
{
    struct nb_mac_entry *old = t->slots;
    t->slots = fl_xcalloc(t->n_slots, sizeof *t->slots);
    t->used = 0;
    t->learn_memo = t->lookup_memo = NULL;
    for (size_t i = 0; i < t->n_slots; i++) {
        struct nb_mac_entry *e = &old[i];
        if (e->mac == 0 || (drop_aged && aged(t, e, now_ns)) ||
            (drop_port >= 0 && e->port == (uint32_t)drop_port)) {
            continue;
        }
        insert(t, e->mac, e->port, e->seen_ns);
    }
    free(old);
}

void nb_mactable_learn(struct nb_mactable *t, const uint8_t *mac, uint32_t port, int64_t now_ns)
{
    uint64_t key = nb_mac_key(mac);
    if (!t->slots) {
        t->slots = fl_xcalloc(t->n_slots, sizeof *t->slots);
    }
    struct nb_mac_entry *e = t->learn_memo;
    if (!e || e->mac != key) {
        e = find(t, key);
    }
    if (e) {
        e->port = port;
        e->seen_ns = now_ns;
        t->learn_memo = e;
        return;
    }
    if (t->used >= NB_MAC_TABLE_MAX) {
        rebuild(t, now_ns, true, -1);
        if (t->used >= NB_MAC_TABLE_MAX) {
            t->learn_failures++;
            return;
        }
    }
    insert(t, key, port, now_ns);
}

int64_t nb_mactable_lookup(struct nb_mactable *t, const uint8_t *mac, int64_t now_ns)
{
    uint64_t key = nb_mac_key(mac);
    struct nb_mac_entry *e = t->lookup_memo;
    if (!e || e->mac != key) {
        e = find(t, key);
    }
    if (!e || aged(t, e, now_ns)) {
        return -1;
    }
    t->lookup_memo = e;
    return e->port;
}

void nb_mactable_forget_port(struct nb_mactable *t, uint32_t port)
{
    if (t->slots) {
        rebuild(t, 0, false, port);
    }
}
