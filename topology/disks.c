/* nodes.N.disks: — each disk's size, base image, cache mode and size,
 * crash policy, capacity, mount point, format and faults. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "topology/internal.h"

#define DEFAULT_DISK_SIZE (64ull << 20)

static const char *const disk_keys[] = {"size",     "base",  "cache",  "cache-size", "crash-policy",
                                        "capacity", "mount", "format", "faults",     NULL};
void tc_parse_disk(struct tc *c, struct topo_node *node, const struct ty_node *k,
                   const struct ty_node *v)
{
    struct topo_disk *d = &node->disks[node->n_disks];
    memset(d, 0, sizeof(*d));
    d->name = fl_xstrdup(k->str);
    d->index = (uint32_t)node->n_disks;
    d->size_bytes = DEFAULT_DISK_SIZE;
    d->cache = TOPO_DISK_CACHE_WRITEBACK;
    d->crash_policy = TOPO_CRASH_LOSE_UNFLUSHED;
    d->mount = fl_xasprintf("/mnt/%s", k->str);
    d->format = true;
    d->loc = tc_loc(k);
    node->n_disks++;
    const struct ty_node *size = NULL, *crash = NULL, *cache = NULL;
    if (v->type == TY_SCALAR && !ty_is_null(v)) {
        size = v;
    } else if (v->type == TY_MAP) {
        if (!tc_check_map(c, v, disk_keys, "a disk")) {
            return;
        }
        size = ty_map_get(v, "size");
        const struct ty_node *x;
        if ((x = ty_map_get(v, "base"))) {
            size_t m = tc_path_key(c, "base");
            const char *p;
            if (tc_string(c, x, &p)) {
                d->base_image = tc_host_path(c, x, p, false);
                if (d->base_image && !size) {
                    struct stat st;
                    if (stat(d->base_image, &st) == 0) {
                        d->size_bytes = (uint64_t)st.st_size;
                        if (d->size_bytes % 512) {
                            tc_err_val(c, x,
                                       "is %llu bytes, not a multiple of 512: a disk image is "
                                       "made of 512-byte sectors",
                                       (unsigned long long)d->size_bytes);
                        }
                    }
                }
            }
            tc_path_pop(c, m);
        }
        if ((x = ty_map_get(v, "cache"))) {
            size_t m = tc_path_key(c, "cache");
            static const char *const names[] = {
#define N(name, str) str,
                TOPO_DISK_CACHES(N)
#undef N
            };
            int e;
            if (tc_enum(c, x, names, FL_ARRAY_LEN(names), &e)) {
                d->cache = (enum topo_disk_cache)e;
                cache = x;
            }
            tc_path_pop(c, m);
        }
        if ((x = ty_map_get(v, "crash-policy"))) {
            size_t m = tc_path_key(c, "crash-policy");
            static const char *const names[] = {
#define N(name, str) str,
                TOPO_CRASH_POLICIES(N)
#undef N
            };
            int e;
            if (tc_enum(c, x, names, FL_ARRAY_LEN(names), &e)) {
                d->crash_policy = (enum topo_crash_policy)e;
                crash = x;
            }
            tc_path_pop(c, m);
        }
        if ((x = ty_map_get(v, "cache-size"))) {
            size_t m = tc_path_key(c, "cache-size");
            tc_size(c, x, &d->cache_limit_bytes);
            tc_path_pop(c, m);
        }
        if ((x = ty_map_get(v, "capacity"))) {
            size_t m = tc_path_key(c, "capacity");
            tc_size(c, x, &d->capacity_bytes);
            tc_path_pop(c, m);
        }
        if ((x = ty_map_get(v, "mount"))) {
            size_t m = tc_path_key(c, "mount");
            const char *p;
            if (x->type == TY_SCALAR && (!strcmp(x->str, "none") || !strcmp(x->str, "false"))) {
                free(d->mount);
                d->mount = NULL;
                d->format = false;
            } else if (tc_string(c, x, &p)) {
                if (!tc_guest_path(p) || !strcmp(p, "/")) {
                    tc_err_val(c, x,
                               "is not a mount point (valid: an absolute guest path other than "
                               "'/', e.g. /data; or none)");
                } else {
                    free(d->mount);
                    d->mount = fl_xstrdup(p);
                }
            }
            tc_path_pop(c, m);
        }
        if ((x = ty_map_get(v, "format"))) {
            size_t m = tc_path_key(c, "format");
            bool b;
            if (tc_bool(c, x, &b)) {
                if (b && !d->mount) {
                    tc_err(c, x, "format: true needs a mount point (mount is none)");
                }
                d->format = b && d->mount;
            }
            tc_path_pop(c, m);
        }
        if ((x = ty_map_get(v, "faults"))) {
            size_t m = tc_path_key(c, "faults");
            struct tc_disk_settings settings;
            if (tc_disk_settings(c, x, NULL, &settings)) {
                tc_disk_apply(&d->faults, &settings);
                struct fl_error *e = NULL;
                if (!impair_disk_params_validate(&d->faults, &e)) {
                    tc_err(c, x, "%s", e->msg);
                    fl_error_free(e);
                }
            }
            impair_disk_params_clear(&settings.p);
            tc_path_pop(c, m);
        }
    } else if (!ty_is_null(v)) {
        tc_err_val(c, v,
                   "is not a disk: give a size (1GiB), a mapping {size, base, mount, "
                   "crash-policy, faults, ...}, or nothing for the defaults");
        return;
    }
    if (size) {
        size_t m = v->type == TY_MAP ? tc_path_key(c, "size") : c->path.size;
        uint64_t sz;
        if (tc_size(c, size, &sz)) {
            if (sz < (1ull << 20) || sz > (1ull << 42) || sz % 512) {
                tc_err_val(c, size, "is not a disk size (valid: 1MiB..4TiB, a multiple of 512)");
            } else {
                d->size_bytes = sz;
            }
        }
        tc_path_pop(c, m);
    }
    if (d->capacity_bytes > d->size_bytes) {
        tc_err(c, ty_map_get(v, "capacity"),
               "capacity %llu bytes is larger than the disk (%llu bytes): it would never be "
               "reached",
               (unsigned long long)d->capacity_bytes, (unsigned long long)d->size_bytes);
    }
    if (d->cache == TOPO_DISK_CACHE_WRITETHROUGH) {
        if (crash && d->crash_policy != TOPO_CRASH_KEEP) {
            char *see = tc_see(c, tc_loc(cache));
            size_t m = tc_path_key(c, "crash-policy");
            tc_err_val(c, crash,
                       "contradicts cache: writethrough (at %s): a write-through disk has no "
                       "unflushed writes to lose (valid with writethrough: keep)",
                       see);
            tc_path_pop(c, m);
            free(see);
        }
        d->crash_policy = TOPO_CRASH_KEEP;
    }
}
