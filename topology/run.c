/* run: — the run's name, description, seed, duration and boot timeout. */
#include <stdlib.h>
#include <string.h>

#include "topology/internal.h"

#define DEFAULT_DURATION_NS     (60 * FL_NS_PER_SEC)
#define DEFAULT_BOOT_TIMEOUT_NS (120 * FL_NS_PER_SEC)
#define MAX_DURATION_NS         (24 * 3600 * FL_NS_PER_SEC)

/* ------------------------------------------------------------------ */
/* run:                                                                */
/* ------------------------------------------------------------------ */

static const char *const run_keys[] = {"name",         "description", "seed", "duration",
                                       "boot-timeout", "record",      NULL};

void tc_parse_run(struct tc *c, const struct ty_node *n)
{
    struct topo_scenario *s = c->s;
    s->duration_ns = DEFAULT_DURATION_NS;
    s->boot_timeout_ns = DEFAULT_BOOT_TIMEOUT_NS;
    if (!n || ty_is_null(n)) {
        return;
    }
    size_t m0 = tc_path_key(c, "run");
    if (!tc_check_map(c, n, run_keys, "run")) {
        tc_path_pop(c, m0);
        return;
    }
    const struct ty_node *v;
    if ((v = ty_map_get(n, "name"))) {
        size_t m = tc_path_key(c, "name");
        if (tc_name(c, v, 64, "run name")) {
            free(s->name);
            s->name = fl_xstrdup(v->str);
        }
        tc_path_pop(c, m);
    }
    if ((v = ty_map_get(n, "description"))) {
        size_t m = tc_path_key(c, "description");
        const char *d;
        if (tc_string(c, v, &d)) {
            s->description = fl_xstrdup(d);
        }
        tc_path_pop(c, m);
    }
    if ((v = ty_map_get(n, "seed"))) {
        size_t m = tc_path_key(c, "seed");
        bool digits = v->type == TY_SCALAR && v->len > 0;
        if (digits) {
            const char *d = v->str;
            bool hex = d[0] == '0' && (d[1] == 'x' || d[1] == 'X');
            d += hex ? 2 : 0;
            digits = *d && strspn(d, hex ? "0123456789abcdefABCDEF" : "0123456789") == strlen(d);
        }
        if (v->type == TY_SCALAR && !strcmp(v->str, "random")) {
            /* drawn by the loader */
        } else if (!digits) {
            tc_err_val(c, v,
                       "is not a seed (valid: a whole number 0..18446744073709551615, or "
                       "random)");
        } else {
            uint64_t seed;
            if (tc_uint(c, v, 0, UINT64_MAX, &seed)) {
                s->seed = seed;
                s->seed_random = false;
            }
        }
        tc_path_pop(c, m);
    }
    if ((v = ty_map_get(n, "duration"))) {
        size_t m = tc_path_key(c, "duration");
        int64_t d;
        if (tc_duration(c, v, &d)) {
            if (d <= 0 || d > MAX_DURATION_NS) {
                tc_err_val(c, v, "is not a run duration (valid: more than 0s, at most 24h)");
            } else {
                s->duration_ns = d;
            }
        }
        tc_path_pop(c, m);
    }
    if ((v = ty_map_get(n, "boot-timeout"))) {
        size_t m = tc_path_key(c, "boot-timeout");
        int64_t d;
        if (tc_duration(c, v, &d)) {
            if (d < FL_NS_PER_SEC || d > 3600 * FL_NS_PER_SEC) {
                tc_err_val(c, v, "is not a boot timeout (valid: 1s..1h)");
            } else {
                s->boot_timeout_ns = d;
            }
        }
        tc_path_pop(c, m);
    }
    tc_path_pop(c, m0);
}
