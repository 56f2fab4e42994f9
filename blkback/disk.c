/*
 * The backend and its disks: setup (the layer stack, the socket), the
 * control API the runner and `disk serve` use at run time (faults,
 * capacity, stall, power cut, flush, statistics) and host I/O errors.
 *
 *   bb_disk_add ─▶ file ─▶ cache ─▶ capacity ─▶ fault (top) ─▶ listen
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "blkback/internal.h"
#include "trace/trace.h"

/* The file layer's sync hook: a flush owes an fdatasync, which
 * bb_sync_submit() hands to the worker after the request (sync.c). */
static void sync_owed(void *arg, int fd, const char *map_path)
{
    struct bb_disk *d = arg;
    d->sync_owed = true;
    d->sync_fd = fd;
    if (map_path && !d->sync_map) {
        d->sync_map = fl_xstrdup(map_path);
    }
}

/* A host operation on the backing file failed (the host file system is
 * full, the device failed): counted; logged once per errno, naming the
 * file; the runner is told through bb_config.on_host_error.  The guest
 * gets the error for its request; nothing acknowledged is dropped
 * (cache.c keeps what it could not write back). */
void bb_host_error(void *arg, const char *path, const char *op, int err)
{
    struct bb_disk *d = arg;
    d->st.host_errors++;
    d->st.host_errno = err;
    bool logged = false;
    for (int i = 0; i < d->n_host_logged; i++) {
        logged |= d->host_logged[i] == err;
    }
    if (!logged && d->n_host_logged < (int)FL_ARRAY_LEN(d->host_logged)) {
        d->host_logged[d->n_host_logged++] = err;
        fl_log(FL_LOG_ERROR, ROOM,
               "%s:%s: host %s on '%s' failed: %s (the guest gets an I/O error; acknowledged "
               "writes stay cached; further %s errors are counted, not logged)",
               d->node, d->name, op, path, strerror(err),
               impair_errno_name(err) ? impair_errno_name(err) : "such");
    }
    struct blkback *bb = d->bb;
    if (bb->on_host_error) {
        struct bb_host_error e = {
            .node = d->node,
            .disk = d->name,
            .path = path,
            .op = op,
            .err = err,
            .count = d->st.host_errors,
        };
        bb->on_host_error(bb->on_host_error_arg, &e);
    }
}

static void disk_free(struct bb_disk *d)
{
    bb_unlisten(d); /* first: closing connections must not resume it */
    while (d->conns) {
        bb_conn_destroy(d->conns);
    }
    bb_sync_drain(d);
    if (d->top) {
        bb_layer_destroy_stack(d->top);
    } else if (d->file) {
        bb_layer_destroy_stack(d->file);
    }
    free(d->sync_map);
    free(d->node);
    free(d->name);
    free(d->export_name);
    free(d->tags);
    free(d->socket_path);
    free(d);
}

struct bb_disk *bb_disk_add(struct blkback *bb, const struct bb_disk_config *cfg,
                            struct fl_error **errp)
{
    /* One name rule for the whole tree (core/name.c). */
    if (!fl_name_check("node", cfg->node, FL_NAME_MAX, errp) ||
        !fl_name_check("disk", cfg->name, FL_NAME_MAX, errp)) {
        return NULL;
    }
    if (!cfg->path || !*cfg->path) {
        fl_error_setf(errp, EINVAL, "disk %s:%s: path: required (the backing file)", cfg->node,
                      cfg->name);
        return NULL;
    }
    if (bb_disk_find(bb, cfg->node, cfg->name)) {
        fl_error_setf(errp, EEXIST, "disk %s:%s: already exists", cfg->node, cfg->name);
        return NULL;
    }
    if (cfg->export_name && strlen(cfg->export_name) > NBD_MAX_STRING) {
        fl_error_setf(errp, EINVAL, "disk %s:%s: export name longer than %u bytes", cfg->node,
                      cfg->name, NBD_MAX_STRING);
        return NULL;
    }
    if ((unsigned)cfg->crash_policy >= BB_CRASH__COUNT) {
        fl_error_setf(errp, EINVAL, "disk %s:%s: crash policy %d is not one of 0..%d", cfg->node,
                      cfg->name, (int)cfg->crash_policy, BB_CRASH__COUNT - 1);
        return NULL;
    }
    if (cfg->read_only && cfg->base) {
        fl_error_setf(errp, EINVAL,
                      "disk %s:%s: a read-only disk cannot have a base image (serve the base "
                      "itself read-only)",
                      cfg->node, cfg->name);
        return NULL;
    }
    struct bb_disk *d = fl_xcalloc(1, sizeof(*d));
    d->bb = bb;
    d->listen_fd = -1;
    d->node = fl_xstrdup(cfg->node);
    d->name = fl_xstrdup(cfg->name);
    d->export_name = fl_xstrdup(cfg->export_name ? cfg->export_name : "");
    d->read_only = cfg->read_only;
    d->policy = cfg->crash_policy == BB_CRASH_DEFAULT ? BB_CRASH_KEEP : cfg->crash_policy;
    d->rl = (struct fl_ratelimit)FL_RATELIMIT_INIT(FL_NS_PER_SEC, 5);
    char *stream = fl_xasprintf("%s:%s:crash", d->node, d->name);
    impair_rng_seed(&d->crash_rng, bb->seed, impair_stream_id(stream));
    free(stream);

    struct bb_file_config fc = {
        .path = cfg->path,
        .base = cfg->base,
        .size = cfg->size,
        .read_only = cfg->read_only,
        .no_sync = cfg->no_sync,
    };
    d->file = bb_file_open(&fc, &d->size, errp);
    if (!d->file) {
        fl_error_prepend(errp, "disk %s:%s: ", d->node, d->name);
        disk_free(d);
        return NULL;
    }
    bb_file_set_sync_hook(d->file, sync_owed, d);
    bb_file_set_error_fn(d->file, bb_host_error, d);
    d->cache = bb_cache_create(d->file, d->size, cfg->cache_limit);
    d->cap = bb_capacity_create(d->cache, d->file, d->size, cfg->capacity);
    char *istream = fl_xasprintf("%s:%s", d->node, d->name);
    d->fault = bb_fault_create(d->cap, cfg->faults, bb->seed, impair_stream_id(istream), errp);
    free(istream);
    if (!d->fault) {
        bb_layer_destroy_stack(d->cap);
        d->file = NULL;
        fl_error_prepend(errp, "disk %s:%s: faults: ", d->node, d->name);
        disk_free(d);
        return NULL;
    }
    d->top = d->fault;
    if (cfg->socket_path) {
        d->socket_path = fl_xstrdup(cfg->socket_path);
        if (!bb_listen(d, errp)) {
            fl_error_prepend(errp, "disk %s:%s: ", d->node, d->name);
            disk_free(d);
            return NULL;
        }
    }
    if (bb->trace) {
        int64_t nid = trace_node_id(bb->trace, d->node);
        d->trace_id = nid > 0 ? trace_disk_id(bb->trace, nid, d->name, d->size) : 0;
    }
    d->next = bb->disks;
    bb->disks = d;
    return d;
}

struct bb_disk *bb_disk_find(struct blkback *bb, const char *node, const char *name)
{
    for (struct bb_disk *d = bb->disks; d; d = d->next) {
        if (!strcmp(d->node, node) && !strcmp(d->name, name)) {
            return d;
        }
    }
    return NULL;
}

void bb_disk_remove(struct bb_disk *d)
{
    if (!d) {
        return;
    }
    struct blkback *bb = d->bb;
    for (struct bb_disk **pp = &bb->disks; *pp; pp = &(*pp)->next) {
        if (*pp == d) {
            *pp = d->next;
            break;
        }
    }
    int e = d->top->ops->flush(d->top, NULL);
    if (e < 0) {
        fl_log(FL_LOG_ERROR, ROOM, "%s:%s: writing back the cache at removal: %s", d->node, d->name,
               strerror(-e));
    }
    bb_sync_submit(d, NULL);
    disk_free(d);
}

bool bb_disk_set_faults(struct bb_disk *d, const struct impair_disk_params *params,
                        struct fl_error **errp)
{
    if (!bb_fault_set(d->fault, params, errp)) {
        fl_error_prepend(errp, "disk %s:%s: ", d->node, d->name);
        return false;
    }
    return true;
}

void bb_disk_set_capacity(struct bb_disk *d, uint64_t capacity)
{
    bb_capacity_set(d->cap, capacity);
}

void bb_disk_stall(struct bb_disk *d, bool stall)
{
    if (d->stalled == stall) {
        return;
    }
    d->stalled = stall;
    if (stall) {
        return;
    }
    /* release in arrival order; a reply may close its connection, so
     * connections are reaped after the whole queue is drained */
    while (d->stall_head && !d->stalled) {
        struct bb_req *r = d->stall_head;
        d->stall_head = r->snext;
        if (!d->stall_head) {
            d->stall_tail = NULL;
        }
        r->in_stall = false;
        d->st.stalled_now--;
        if (r->executed) {
            bb_req_complete(r);
        } else {
            bb_req_execute(r);
            bb_req_schedule(r);
        }
    }
    for (struct bb_conn *c = d->conns, *next; c; c = next) {
        next = c->next;
        bb_conn_flush_out(c);
        bb_conn_reap(c);
    }
}

static uint64_t crash_rand(void *arg)
{
    return impair_rng_next(arg);
}

int bb_disk_crash(struct bb_disk *d, enum bb_crash_policy policy, struct bb_crash_report *report)
{
    struct bb_crash_report local;
    if (!report) {
        report = &local;
    }
    if ((unsigned)policy >= BB_CRASH__COUNT) {
        return -EINVAL;
    }
    if (policy == BB_CRASH_DEFAULT) {
        policy = d->policy;
    }
    int64_t now = fl_loop_now(d->bb->loop);
    /* executed writes whose reply was never sent still need an I/O record
     * (never completed) so their crash outcome can point at it */
    for (struct bb_conn *c = d->conns; c; c = c->next) {
        for (struct bb_req *r = c->reqs; r; r = r->cnext) {
            if (r->executed && !r->error) {
                bb_record_io(d, r, TRACE_NO_TIME);
            } else if (!r->executed) {
                r->error = -ESHUTDOWN;
                bb_record_io(d, r, TRACE_NO_TIME);
            }
        }
    }
    for (struct bb_conn *c = d->conns, *next; c; c = next) {
        next = c->next;
        if (c->mem) {
            /* owned by its creator (tests, fuzzing): end it, keep the struct */
            bb_conn_fail(c);
            while (c->reqs) {
                bb_req_free(c->reqs);
            }
        } else {
            bb_conn_destroy(c);
        }
    }
    d->stalled = false;
    struct bb_crash_ctx x = {.d = d};
    if (d->bb->trace && d->trace_id > 0) {
        x.crash_id = trace_crash(d->bb->trace, d->trace_id, now, bb_crash_policy_name(policy));
    }
    int e =
        bb_cache_crash(d->cache, policy, crash_rand, &d->crash_rng, bb_record_crash, &x, report);
    bb_sync_submit(d, NULL);
    bb_tags_clear(d); /* the cache is empty now */
    d->st.crashes++;
    d->st.crash_kept += report->writes_kept;
    d->st.crash_lost += report->writes_lost;
    d->st.crash_torn += report->writes_torn;
    return e;
}

int bb_disk_flush(struct bb_disk *d)
{
    int e = d->top->ops->flush(d->top, NULL);
    bb_sync_submit(d, NULL);
    return e;
}

void bb_disk_get_stats(const struct bb_disk *d, struct bb_disk_stats *out)
{
    *out = d->st;
    uint64_t destaged;
    bb_cache_counts(d->cache, &out->cached_writes, &out->cached_bytes, &destaged);
    out->destaged_writes = destaged;
    out->allocated_bytes = bb_capacity_allocated(d->cap);
    struct bb_fault_counts fc;
    bb_fault_get_counts(d->fault, &fc);
    out->errors_injected = fc.injected;
    out->reads_corrupted = out->bits_flipped = fc.reads_corrupted;
    out->errors_internal = fc.internal;
    out->buffered_bytes = d->bb->buffered;
    out->backpressure = d->bb->backpressure_on;
}

uint64_t bb_disk_size(const struct bb_disk *d)
{
    return d->size;
}
const char *bb_disk_socket_path(const struct bb_disk *d)
{
    return d->socket_path;
}
const char *bb_disk_node(const struct bb_disk *d)
{
    return d->node;
}
const char *bb_disk_name(const struct bb_disk *d)
{
    return d->name;
}

struct blkback *bb_create(struct fl_loop *loop, const struct bb_config *cfg, struct fl_error **errp)
{
    if (!loop) {
        fl_error_setf(errp, EINVAL, "blkback: an event loop is required");
        return NULL;
    }
    struct blkback *bb = fl_xcalloc(1, sizeof(*bb));
    bb->loop = loop;
    if (cfg) {
        bb->seed = cfg->seed;
        bb->trace = cfg->trace;
    }
    bb->buffer_limit = BB_DEFAULT_BUFFER_LIMIT;
    if (cfg && cfg->buffer_limit) {
        bb->buffer_limit = FL_MAX(cfg->buffer_limit, (uint64_t)BB_MIN_BUFFER_LIMIT);
    }
    if (cfg) {
        bb->on_host_error = cfg->on_host_error;
        bb->on_host_error_arg = cfg->on_host_error_arg;
    }
    if (!bb_sync_init(bb, errp)) {
        free(bb);
        return NULL;
    }
    bb->wake = fl_timer_create(loop, bb_wake_cb, bb);
    return bb;
}

void bb_destroy(struct blkback *bb)
{
    if (!bb) {
        return;
    }
    while (bb->disks) {
        bb_disk_remove(bb->disks);
    }
    bb_sync_fini(bb);
    fl_timer_destroy(bb->wake);
    free(bb);
}

static const char *const policy_names[] = {
#define BB_CRASH_NAME(name, str, doc) str,
    BB_CRASH_POLICIES(BB_CRASH_NAME)
#undef BB_CRASH_NAME
};

const char *bb_crash_policy_name(enum bb_crash_policy p)
{
    return (unsigned)p < BB_CRASH__COUNT ? policy_names[p] : "?";
}

bool bb_crash_policy_parse(const char *s, enum bb_crash_policy *out, struct fl_error **errp)
{
    for (int i = 0; i < BB_CRASH__COUNT; i++) {
        if (s && !strcmp(s, policy_names[i])) {
            *out = (enum bb_crash_policy)i;
            return true;
        }
    }
    fl_error_setf(errp, EINVAL,
                  "'%s' is not a crash policy (valid: keep, lose-unflushed, lose-random, tear, "
                  "default)",
                  s ? s : "");
    return false;
}
