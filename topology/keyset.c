/* The string set of keyset.h: open addressing, linear probing, grown to
 * keep at most half of the slots used. */
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "topology/keyset.h"

static struct tc_keyset_slot *probe(struct tc_keyset_slot *slots, size_t cap, const char *s,
                                    size_t len, uint64_t hash)
{
    size_t i = (size_t)hash & (cap - 1);
    while (slots[i].s &&
           !(slots[i].hash == hash && slots[i].len == len && !memcmp(slots[i].s, s, len))) {
        i = (i + 1) & (cap - 1);
    }
    return &slots[i];
}

static void grow(struct tc_keyset *set)
{
    size_t cap = set->cap ? set->cap * 2 : 16;
    struct tc_keyset_slot *slots = fl_xcalloc(cap, sizeof(*slots));
    for (size_t i = 0; i < set->cap; i++) {
        const struct tc_keyset_slot *o = &set->slots[i];
        if (o->s) {
            *probe(slots, cap, o->s, o->len, o->hash) = *o;
        }
    }
    free(set->slots);
    set->slots = slots;
    set->cap = cap;
}

/* The slot for s: its own, or the empty one where it would go (the set
 * grown first when it is half full). */
static struct tc_keyset_slot *slot_for(struct tc_keyset *set, const char *s, size_t len)
{
    if ((set->n + 1) * 2 > set->cap) {
        grow(set);
    }
    uint64_t hash = fl_hash64(s, len);
    struct tc_keyset_slot *slot = probe(set->slots, set->cap, s, len, hash);
    if (!slot->s) {
        *slot = (struct tc_keyset_slot){.s = s, .len = len, .value = TC_KEYSET_NONE, .hash = hash};
        set->n++;
    }
    return slot;
}

size_t tc_keyset_add(struct tc_keyset *set, const char *s, size_t len, size_t value)
{
    struct tc_keyset_slot *slot = slot_for(set, s, len);
    if (slot->value == TC_KEYSET_NONE) {
        slot->value = value;
    }
    return slot->value;
}

size_t tc_keyset_put(struct tc_keyset *set, const char *s, size_t len, size_t value)
{
    struct tc_keyset_slot *slot = slot_for(set, s, len);
    size_t old = slot->value;
    slot->value = value;
    return old;
}

size_t tc_keyset_find(const struct tc_keyset *set, const char *s, size_t len)
{
    if (!set->cap) {
        return TC_KEYSET_NONE;
    }
    const struct tc_keyset_slot *slot = probe(set->slots, set->cap, s, len, fl_hash64(s, len));
    return slot->s ? slot->value : TC_KEYSET_NONE;
}

void tc_keyset_free(struct tc_keyset *set)
{
    free(set->slots);
    memset(set, 0, sizeof(*set));
}
