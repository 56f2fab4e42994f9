/*
 * The record writers of trace.h (trace_node_id() ... trace_host_error()):
 * each checks its arguments, then copies them into one record of the
 * staging batch (db-staging.c) under the db's mutex.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "trace/db-internal.h"

static bool valid_name(const char *s)
{
    return s && *s;
}

#define LOCKED_REC(db, type, r)                                                                    \
    struct rec *r = trace_rec_new((db), (type));                                                   \
    if (!r) {                                                                                      \
        pthread_mutex_unlock(&(db)->mu);                                                           \
        return (db)->readonly ? -EBADF : -EIO;                                                     \
    }

int trace_db_set_epoch(struct trace_db *db, int64_t mono_ns)
{
    if (!db || mono_ns == TRACE_NO_TIME) {
        return -EINVAL;
    }
    if (db->readonly) {
        return -EBADF;
    }
    pthread_mutex_lock(&db->mu);
    LOCKED_REC(db, REC_EPOCH, r);
    r->u.g.i[0] = mono_ns;
    db->epoch = mono_ns;
    trace_rec_done(db);
    pthread_mutex_unlock(&db->mu);
    return 0;
}

int64_t trace_db_epoch(const struct trace_db *db)
{
    return db->epoch;
}

static int64_t intern(struct trace_db *db, struct intern_table *t, enum rec_type type, int64_t a,
                      int64_t b, int64_t c, const char *name, const char *extra, uint64_t size)
{
    if (db->readonly) {
        return -EBADF;
    }
    pthread_mutex_lock(&db->mu);
    int64_t id;
    if (trace_intern_find(t, a, b, c, name, &id)) {
        pthread_mutex_unlock(&db->mu);
        return id;
    }
    LOCKED_REC(db, type, r);
    id = trace_intern_add(t, a, b, c, name);
    memset(&r->u.g, 0, sizeof(r->u.g));
    r->u.g.i[0] = id;
    switch (type) {
    case REC_NODE:
    case REC_NETWORK:
        r->u.g.s[0] = trace_rec_str(db, name);
        break;
    case REC_NIC:
        r->u.g.i[1] = a;
        r->u.g.i[2] = (int64_t)size; /* network id */
        r->u.g.s[0] = trace_rec_str(db, name);
        r->u.g.s[1] = trace_rec_str(db, extra);
        break;
    case REC_LINK:
        r->u.g.i[1] = a;
        r->u.g.i[2] = b;
        r->u.g.i[3] = c;
        break;
    case REC_DISK:
        r->u.g.i[1] = a;
        r->u.g.i[2] = (int64_t)size;
        r->u.g.s[0] = trace_rec_str(db, name);
        break;
    default:
        break;
    }
    trace_rec_done(db);
    pthread_mutex_unlock(&db->mu);
    return id;
}

static bool id_ok(const struct intern_table *t, int64_t id)
{
    return id > 0 && (size_t)id <= t->len;
}

int64_t trace_node_id(struct trace_db *db, const char *name)
{
    if (!db || !valid_name(name)) {
        return -EINVAL;
    }
    return intern(db, &db->nodes, REC_NODE, 0, 0, 0, name, NULL, 0);
}

int64_t trace_network_id(struct trace_db *db, const char *name)
{
    if (!db || !fl_name_valid(name, FL_NAME_MAX)) {
        return -EINVAL;
    }
    return intern(db, &db->networks, REC_NETWORK, 0, 0, 0, name, NULL, 0);
}

int64_t trace_nic_id(struct trace_db *db, int64_t node_id, int64_t network_id, const char *nic_name,
                     const char *mac)
{
    if (!db || !fl_name_valid(nic_name, FL_NAME_MAX)) {
        return -EINVAL;
    }
    if (db->readonly) {
        return -EBADF;
    }
    pthread_mutex_lock(&db->mu);
    bool ok = id_ok(&db->nodes, node_id) && (network_id == 0 || id_ok(&db->networks, network_id));
    pthread_mutex_unlock(&db->mu);
    if (!ok) {
        return -ENOENT;
    }
    return intern(db, &db->nics, REC_NIC, node_id, 0, 0, nic_name, mac, (uint64_t)network_id);
}

int64_t trace_link_id(struct trace_db *db, int64_t network_id, int64_t src_node_id,
                      int64_t dst_node_id)
{
    if (!db) {
        return -EINVAL;
    }
    if (db->readonly) {
        return -EBADF;
    }
    pthread_mutex_lock(&db->mu);
    bool ok = id_ok(&db->nodes, src_node_id) && id_ok(&db->nodes, dst_node_id) &&
              (network_id == 0 || id_ok(&db->networks, network_id));
    pthread_mutex_unlock(&db->mu);
    if (!ok) {
        return -ENOENT;
    }
    return intern(db, &db->links, REC_LINK, network_id, src_node_id, dst_node_id, NULL, NULL, 0);
}

int64_t trace_disk_id(struct trace_db *db, int64_t node_id, const char *disk_name,
                      uint64_t size_bytes)
{
    if (!db || !fl_name_valid(disk_name, FL_NAME_MAX)) {
        return -EINVAL;
    }
    if (db->readonly) {
        return -EBADF;
    }
    pthread_mutex_lock(&db->mu);
    bool ok = id_ok(&db->nodes, node_id);
    pthread_mutex_unlock(&db->mu);
    if (!ok) {
        return -ENOENT;
    }
    return intern(db, &db->disks, REC_DISK, node_id, 0, 0, disk_name, NULL, size_bytes);
}

int trace_run_begin(struct trace_db *db, const struct trace_run_info *info)
{
    if (!db || !info || !valid_name(info->scenario_name)) {
        return -EINVAL;
    }
    char host[256] = "";
    if (!info->host) {
        gethostname(host, sizeof(host) - 1);
    }
    if (db->readonly) {
        return -EBADF;
    }
    pthread_mutex_lock(&db->mu);
    if (db->run_begun) {
        pthread_mutex_unlock(&db->mu);
        return -EEXIST;
    }
    LOCKED_REC(db, REC_RUN_BEGIN, r);
    memset(&r->u.g, 0, sizeof(r->u.g));
    db->run_begun = true;
    r->u.g.s[0] = trace_rec_str(db, info->scenario_name);
    r->u.g.s[1] = trace_rec_str(db, info->scenario_path);
    r->u.g.s[2] = trace_rec_str(db, info->scenario_text);
    r->u.g.s[3] = trace_rec_str(db, info->faultline_version ? info->faultline_version : FL_VERSION);
    r->u.g.s[4] = trace_rec_str(db, info->host ? info->host : host);
    r->u.g.s[5] = trace_rec_str(db, info->accel);
    r->u.g.i[0] = (int64_t)info->seed;
    r->u.g.i[1] = info->started_wall_ns ? info->started_wall_ns : fl_clock_real_ns();
    trace_rec_done(db);
    pthread_mutex_unlock(&db->mu);
    return 0;
}

int trace_run_end(struct trace_db *db, const char *verdict, const char *detail, int64_t end_mono_ns)
{
    static const char *const verdicts[] = {"pass", "fail", "error", "interrupted"};
    bool ok = false;
    for (size_t k = 0; verdict && k < FL_ARRAY_LEN(verdicts); k++) {
        ok = ok || !strcmp(verdict, verdicts[k]);
    }
    if (!db || !ok) {
        return -EINVAL;
    }
    if (end_mono_ns == TRACE_NO_TIME) {
        end_mono_ns = fl_clock_mono_ns();
    }
    if (db->readonly) {
        return -EBADF;
    }
    pthread_mutex_lock(&db->mu);
    LOCKED_REC(db, REC_RUN_END, r);
    memset(&r->u.g, 0, sizeof(r->u.g));
    r->u.g.s[0] = trace_rec_str(db, verdict);
    r->u.g.s[1] = trace_rec_str(db, detail);
    r->u.g.i[0] = end_mono_ns;
    trace_rec_done(db);
    pthread_mutex_unlock(&db->mu);
    return 0;
}

int trace_link_params(struct trace_db *db, int64_t link_id, int64_t t_ns, const char *params)
{
    if (!db || !params) {
        return -EINVAL;
    }
    if (db->readonly) {
        return -EBADF;
    }
    pthread_mutex_lock(&db->mu);
    if (!id_ok(&db->links, link_id)) {
        pthread_mutex_unlock(&db->mu);
        return -ENOENT;
    }
    LOCKED_REC(db, REC_LINK_PARAMS, r);
    memset(&r->u.g, 0, sizeof(r->u.g));
    r->u.g.i[0] = link_id;
    r->u.g.i[1] = t_ns;
    r->u.g.s[0] = trace_rec_str(db, params);
    trace_rec_done(db);
    pthread_mutex_unlock(&db->mu);
    return 0;
}

int64_t trace_event(struct trace_db *db, int64_t t_ns, const char *kind, int64_t node_id,
                    const char *detail)
{
    if (!db || !valid_name(kind) || t_ns == TRACE_NO_TIME) {
        return -EINVAL;
    }
    if (db->readonly) {
        return -EBADF;
    }
    pthread_mutex_lock(&db->mu);
    if (node_id != 0 && !id_ok(&db->nodes, node_id)) {
        pthread_mutex_unlock(&db->mu);
        return -ENOENT;
    }
    LOCKED_REC(db, REC_EVENT, r);
    memset(&r->u.g, 0, sizeof(r->u.g));
    int64_t id = ++db->next_event;
    r->u.g.i[0] = id;
    r->u.g.i[1] = t_ns;
    r->u.g.i[2] = node_id;
    r->u.g.s[0] = trace_rec_str(db, kind);
    r->u.g.s[1] = trace_rec_str(db, detail);
    trace_rec_done(db);
    pthread_mutex_unlock(&db->mu);
    return id;
}

int trace_event_end(struct trace_db *db, int64_t event_id, int64_t end_ns)
{
    if (!db || end_ns == TRACE_NO_TIME) {
        return -EINVAL;
    }
    if (db->readonly) {
        return -EBADF;
    }
    pthread_mutex_lock(&db->mu);
    if (event_id <= 0 || event_id > db->next_event) {
        pthread_mutex_unlock(&db->mu);
        return -ENOENT;
    }
    LOCKED_REC(db, REC_EVENT_END, r);
    r->u.g.i[0] = event_id;
    r->u.g.i[1] = end_ns;
    trace_rec_done(db);
    pthread_mutex_unlock(&db->mu);
    return 0;
}

int trace_check(struct trace_db *db, const struct trace_check *c)
{
    if (!db || !c || !valid_name(c->name)) {
        return -EINVAL;
    }
    if (db->readonly) {
        return -EBADF;
    }
    pthread_mutex_lock(&db->mu);
    if (c->node_id != 0 && !id_ok(&db->nodes, c->node_id)) {
        pthread_mutex_unlock(&db->mu);
        return -ENOENT;
    }
    LOCKED_REC(db, REC_CHECK, r);
    memset(&r->u.g, 0, sizeof(r->u.g));
    r->u.g.s[0] = trace_rec_str(db, c->name);
    r->u.g.s[1] = trace_rec_str(db, c->command);
    r->u.g.s[2] = trace_rec_str(db, c->out);
    r->u.g.s[3] = trace_rec_str(db, c->err);
    r->u.g.i[0] = c->node_id;
    r->u.g.i[1] = c->exit_status;
    r->u.g.i[2] = c->passed ? 1 : 0;
    r->u.g.i[3] = c->start_ns;
    r->u.g.i[4] = c->end_ns;
    trace_rec_done(db);
    pthread_mutex_unlock(&db->mu);
    return 0;
}

int trace_frame(struct trace_db *db, const struct trace_frame *f)
{
    if (!db || !f || f->fate >= TRACE_FATE_COUNT || f->reason >= TRACE_DROP_COUNT ||
        f->link_id <= 0 || f->sent_ns == TRACE_NO_TIME ||
        (f->fate == TRACE_FATE_DELIVERED &&
         (f->delivered_ns == TRACE_NO_TIME || f->reason != TRACE_DROP_NONE)) ||
        (f->fate == TRACE_FATE_DROPPED && f->reason == TRACE_DROP_NONE)) {
        return -EINVAL;
    }
    if (db->readonly) {
        return -EBADF;
    }
    pthread_mutex_lock(&db->mu);
    if ((size_t)f->link_id > db->links.len) {
        pthread_mutex_unlock(&db->mu);
        return -ENOENT;
    }
    LOCKED_REC(db, REC_FRAME, r);
    r->u.frame = *f;
    if (f->fate == TRACE_FATE_DROPPED) {
        r->u.frame.delivered_ns = TRACE_NO_TIME;
    }
    trace_rec_done(db);
    pthread_mutex_unlock(&db->mu);
    return 0;
}

int64_t trace_io(struct trace_db *db, const struct trace_io *io)
{
    if (!db || !io || io->op >= TRACE_IO_OP_COUNT || io->fault >= TRACE_IO_FAULT_COUNT ||
        io->disk_id <= 0 || io->submit_ns == TRACE_NO_TIME || io->result < 0 ||
        io->offset > INT64_MAX || io->length > INT64_MAX) {
        return -EINVAL;
    }
    if (db->readonly) {
        return -EBADF;
    }
    pthread_mutex_lock(&db->mu);
    if ((size_t)io->disk_id > db->disks.len) {
        pthread_mutex_unlock(&db->mu);
        return -ENOENT;
    }
    LOCKED_REC(db, REC_IO, r);
    int64_t id = ++db->next_io;
    r->u.io.id = id;
    r->u.io.io = *io;
    trace_rec_done(db);
    pthread_mutex_unlock(&db->mu);
    return id;
}

int64_t trace_crash(struct trace_db *db, int64_t disk_id, int64_t t_ns, const char *policy)
{
    if (!db || t_ns == TRACE_NO_TIME) {
        return -EINVAL;
    }
    if (db->readonly) {
        return -EBADF;
    }
    pthread_mutex_lock(&db->mu);
    if (!id_ok(&db->disks, disk_id)) {
        pthread_mutex_unlock(&db->mu);
        return -ENOENT;
    }
    LOCKED_REC(db, REC_CRASH, r);
    memset(&r->u.g, 0, sizeof(r->u.g));
    int64_t id = ++db->next_crash;
    r->u.g.i[0] = id;
    r->u.g.i[1] = disk_id;
    r->u.g.i[2] = t_ns;
    r->u.g.s[0] = trace_rec_str(db, policy);
    trace_rec_done(db);
    pthread_mutex_unlock(&db->mu);
    return id;
}

int trace_crash_write(struct trace_db *db, int64_t crash_id, int64_t io_id,
                      enum trace_crash_outcome outcome, uint64_t kept_bytes)
{
    if (!db || (unsigned)outcome >= TRACE_CRASH_OUTCOME_COUNT || kept_bytes > INT64_MAX) {
        return -EINVAL;
    }
    if (db->readonly) {
        return -EBADF;
    }
    pthread_mutex_lock(&db->mu);
    if (crash_id <= 0 || crash_id > db->next_crash || io_id <= 0 || io_id > db->next_io) {
        pthread_mutex_unlock(&db->mu);
        return -ENOENT;
    }
    LOCKED_REC(db, REC_CRASH_WRITE, r);
    r->u.g.i[0] = crash_id;
    r->u.g.i[1] = io_id;
    r->u.g.i[2] = outcome;
    r->u.g.i[3] = (int64_t)kept_bytes;
    trace_rec_done(db);
    pthread_mutex_unlock(&db->mu);
    return 0;
}

int trace_rr_segment(struct trace_db *db, const struct trace_rr_segment *sg)
{
    if (!db || !sg || !valid_name(sg->ended) || sg->icount > INT64_MAX) {
        return -EINVAL;
    }
    if (db->readonly) {
        return -EBADF;
    }
    pthread_mutex_lock(&db->mu);
    if (!id_ok(&db->nodes, sg->node_id)) {
        pthread_mutex_unlock(&db->mu);
        return -ENOENT;
    }
    LOCKED_REC(db, REC_RR_SEGMENT, r);
    memset(&r->u.g, 0, sizeof(r->u.g));
    r->u.g.i[0] = sg->node_id;
    r->u.g.i[1] = sg->segment;
    r->u.g.i[2] = sg->start_ns;
    r->u.g.i[3] = sg->end_ns;
    r->u.g.i[4] = (int64_t)sg->icount;
    r->u.g.i[5] = sg->has_icount ? 1 : 0;
    r->u.g.s[0] = trace_rec_str(db, sg->ended);
    trace_rec_done(db);
    pthread_mutex_unlock(&db->mu);
    return 0;
}

/* "host error on disk data (/srv/data.img): ENOSPC (No space left on
 * device): destaging 4096 bytes" */
static char *host_error_detail(const struct trace_host_error *e, const char *errname)
{
    struct fl_buf b = {0};
    fl_buf_printf(&b, "host error on %s", e->what);
    if (e->name) {
        fl_buf_printf(&b, " %s", e->name);
    }
    if (e->path) {
        fl_buf_printf(&b, " (%s)", e->path);
    }
    fl_buf_printf(&b, ": %s (%s)", errname, strerror(e->errnum));
    if (e->message) {
        fl_buf_printf(&b, ": %s", e->message);
    }
    return b.data;
}

int64_t trace_host_error(struct trace_db *db, const struct trace_host_error *e)
{
    if (!db || !e || !valid_name(e->what) || e->errnum <= 0) {
        return -EINVAL;
    }
    if (db->readonly) {
        return -EBADF;
    }
    int64_t t_ns = e->t_ns == TRACE_NO_TIME ? fl_clock_mono_ns() : e->t_ns;
    const char *known = strerrorname_np(e->errnum);
    char *errname = known ? fl_xstrdup(known) : fl_xasprintf("errno %d", e->errnum);
    char *detail = host_error_detail(e, errname);
    int64_t id = -ENOENT;
    pthread_mutex_lock(&db->mu);
    int64_t node_id = e->node_id;
    if (e->disk_id != 0 && id_ok(&db->disks, e->disk_id) && node_id == 0) {
        node_id = db->disks.v[e->disk_id - 1].a; /* the disk's node */
    }
    if ((e->disk_id != 0 && !id_ok(&db->disks, e->disk_id)) ||
        (node_id != 0 && !id_ok(&db->nodes, node_id))) {
        goto out;
    }
    /* the event puts it on the timeline (`faultline trace --events`, the
     * report); the host_errors row keeps its parts for queries */
    struct rec *r = trace_rec_new(db, REC_EVENT);
    if (!r) {
        id = -EIO;
        goto out;
    }
    memset(&r->u.g, 0, sizeof(r->u.g));
    int64_t event_id = ++db->next_event;
    r->u.g.i[0] = event_id;
    r->u.g.i[1] = t_ns;
    r->u.g.i[2] = node_id;
    r->u.g.s[0] = trace_rec_str(db, "error");
    r->u.g.s[1] = trace_rec_str(db, detail);
    trace_rec_done(db);
    r = trace_rec_new(db, REC_HOST_ERROR);
    if (!r) {
        id = -EIO;
        goto out;
    }
    memset(&r->u.g, 0, sizeof(r->u.g));
    id = ++db->next_host_error;
    r->u.g.i[0] = id;
    r->u.g.i[1] = t_ns;
    r->u.g.i[2] = event_id;
    r->u.g.i[3] = node_id;
    r->u.g.i[4] = e->disk_id;
    r->u.g.i[5] = e->errnum;
    r->u.g.s[0] = trace_rec_str(db, e->what);
    r->u.g.s[1] = trace_rec_str(db, e->name);
    r->u.g.s[2] = trace_rec_str(db, e->path);
    r->u.g.s[3] = trace_rec_str(db, errname);
    r->u.g.s[4] = trace_rec_str(db, e->message);
    trace_rec_done(db);
out:
    pthread_mutex_unlock(&db->mu);
    free(detail);
    free(errname);
    return id;
}
