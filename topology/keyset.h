/*
 * Internal to topology/: a set of byte strings, each with the index of
 * its first occurrence, so that "is this name/key/anchor already there?"
 * costs O(1) and not a scan of every earlier one.  A hostile file with
 * 100 000 keys, anchors or event names made those scans quadratic (tens
 * of seconds); the set keeps validation linear.
 *
 * The strings are not copied: they must outlive the set (they are the
 * YAML tree's scalars or the model's names).
 */
#ifndef FL_TOPOLOGY_KEYSET_H
#define FL_TOPOLOGY_KEYSET_H

#include <stddef.h>
#include <stdint.h>

struct tc_keyset_slot {
    const char *s; /* NULL: empty */
    size_t len;
    size_t value;
    uint64_t hash;
};

struct tc_keyset {
    struct tc_keyset_slot *slots;
    size_t cap; /* a power of two, or 0 */
    size_t n;
};

#define TC_KEYSET_NONE SIZE_MAX

/* Adds s (len bytes) with `value` unless it is present; returns the value
 * stored for s: `value` when added, the first one's otherwise. */
size_t tc_keyset_add(struct tc_keyset *set, const char *s, size_t len, size_t value);
/* Stores `value` for s (added, or replacing); returns the value it
 * replaced, or TC_KEYSET_NONE. */
size_t tc_keyset_put(struct tc_keyset *set, const char *s, size_t len, size_t value);
/* The value stored for s, or TC_KEYSET_NONE. */
size_t tc_keyset_find(const struct tc_keyset *set, const char *s, size_t len);
void tc_keyset_free(struct tc_keyset *set);

#endif /* FL_TOPOLOGY_KEYSET_H */
