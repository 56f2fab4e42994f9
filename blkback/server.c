/*
 * The NBD server: listening sockets, connections, the fixed newstyle
 * handshake, request validation, impair decisions and replies held until
 * their completion time.
 *
 * Life of a request:
 *
 *   bytes ─▶ parse header (+ payload) ─▶ validate ─▶ bad: error reply now
 *                                           │ good
 *                                           ▼
 *                     impair_disk_decide(): complete_ns, errno, corruption
 *                                           │
 *                      disk stalled? ──yes──▶ stall queue (in arrival order)
 *                                           │ no
 *                                           ▼
 *                     execute on the layer stack (capacity ▸ cache ▸ file)
 *                                           │
 *                     complete_ns > now? ──yes──▶ fl_timer ─▶ reply
 *                                           │ no
 *                                           ▼
 *                                  reply + trace_io record
 *
 * I/O to the backing file: reads and writes are synchronous in the loop
 * (they hit the host page cache: microseconds).  fdatasync() is not: it
 * took 3.7 ms (p50) to 15 ms here, so FLUSH and FUA write to the file in
 * the loop and hand the fdatasync to one worker thread; the reply waits
 * for it (docs/blkback.md has the measurements).
 *
 *   loop:   FLUSH ─▶ destage cache (pwrite) ─▶ job ─┐          ┌─▶ reply
 *   worker:                                         └▶ fdatasync ─▶ eventfd
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "blkback/blkback.h"
#include "blkback/nbd.h"
#include "blkback/store.h"
#include "impair/impair.h"
#include "trace/trace.h"

#define ROOM         "blkback"
#define READ_CHUNK   (256u << 10)
#define OUT_HIGH     (64u << 20) /* stop reading a client that does not read replies */
#define REQ_HDR_LEN  28u
#define MAX_INFLIGHT 512u /* requests per connection before input is left unread */

struct bb_req;
struct bb_disk;

/* An fdatasync for the worker thread.  `req` (may be NULL) is cleared
 * under the mutex when the request goes away first. */
struct sync_job {
    struct sync_job *next;
    struct bb_disk *disk;
    struct bb_req *req;
    int fd;
    char *map_path;
    int result;
};

struct blkback {
    struct fl_loop *loop;
    uint64_t seed;
    struct trace_db *trace;
    struct bb_disk *disks;
    /* sync worker */
    pthread_mutex_t mu;
    pthread_cond_t cv;      /* worker: jobs queued or stop */
    pthread_cond_t done_cv; /* loop: a job finished */
    struct sync_job *queue, *queue_tail, *done;
    bool worker_started, stop;
    pthread_t worker;
    int efd;
};

struct bb_disk {
    struct blkback *bb;
    struct bb_disk *next;
    char *node, *name, *export_name, *socket_path;
    int listen_fd;
    uint64_t size;
    bool read_only;
    enum bb_crash_policy policy;
    struct bb_layer *top, *cache, *file;
    struct impair_disk *imp;
    struct impair_rng crash_rng;
    struct bb_disk_stats st;
    struct bb_conn *conns;
    bool stalled;
    struct bb_req *stall_head, *stall_tail;
    uint64_t serial;
    int64_t trace_id;
    struct fl_ratelimit rl;
    uint64_t sync_inflight; /* jobs queued or running (under bb->mu) */
    /* trace ids of acknowledged, unflushed writes by request tag, so a
     * crash can point at their I/O records (open addressing, tag 0 free) */
    struct tag_slot *tags;
    size_t tags_cap, tags_len;
};

struct tag_slot {
    uint64_t tag;
    int64_t io_id;
};

enum conn_state {
    CS_CLIENT_FLAGS,
    CS_OPT_HDR,
    CS_OPT_DATA,
    CS_REQ_HDR,
    CS_WRITE_DATA,
    CS_SKIP,
    CS_CLOSED,
};

struct bb_req {
    struct bb_conn *conn;
    struct bb_req *cprev, *cnext; /* conn's outstanding requests */
    struct bb_req *snext;         /* disk stall queue */
    bool in_stall;
    bool executed;
    uint16_t type, flags;
    uint64_t handle, off;
    uint32_t len;
    uint64_t tag;
    int64_t submit_ns, complete_ns;
    int error; /* 0 or -errno */
    uint8_t fault;
    struct impair_io_decision dec;
    uint8_t *data; /* WRITE payload before execution; READ result after */
    struct fl_timer *timer;
    struct sync_job *job;   /* fdatasync the reply waits for, or NULL */
    const uint8_t *payload; /* WRITE payload still in the input buffer (req_start only) */
};

struct bb_conn {
    struct bb_disk *disk;
    struct bb_conn *next, *prev;
    int fd; /* -1: memory connection */
    enum conn_state state;
    bool no_zeroes, structured, disc, reading;
    uint32_t opt, opt_len;
    uint8_t req_hdr[REQ_HDR_LEN];
    uint64_t skip_left;
    uint32_t skip_error;
    uint8_t *in;
    size_t in_start, in_end, in_alloc;
    uint8_t *out;
    size_t out_start, out_end, out_alloc;
    struct bb_req *reqs;
    uint64_t n_reqs;
    bool dead;
    bool mem;        /* created by bb_conn_create_mem(): freed by its creator only */
    uint32_t events; /* registered epoll events */
};

static uint16_t be16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}
static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static uint64_t be64(const uint8_t *p)
{
    return (uint64_t)be32(p) << 32 | be32(p + 4);
}
static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}
static void put32(uint8_t *p, uint32_t v)
{
    put16(p, (uint16_t)(v >> 16));
    put16(p + 2, (uint16_t)v);
}
static void put64(uint8_t *p, uint64_t v)
{
    put32(p, (uint32_t)(v >> 32));
    put32(p + 4, (uint32_t)v);
}

uint32_t bb_nbd_errno(int err)
{
    switch (err < 0 ? -err : err) {
    case 0:
        return 0;
    case EPERM:
    case EROFS:
        return NBD_EPERM;
    case ENOMEM:
        return NBD_ENOMEM;
    case EINVAL:
        return NBD_EINVAL;
    case ENOSPC:
    case EDQUOT:
    case EFBIG:
        return NBD_ENOSPC;
    case EOVERFLOW:
        return NBD_EOVERFLOW;
    case ESHUTDOWN:
        return NBD_ESHUTDOWN;
    default:
        return NBD_EIO;
    }
}

/* ------------------------------------------------------------------ */
/* Output                                                              */
/* ------------------------------------------------------------------ */

static uint8_t *out_reserve(struct bb_conn *c, size_t n)
{
    if (c->out_alloc - c->out_end < n) {
        if (c->out_start > 0) {
            memmove(c->out, c->out + c->out_start, c->out_end - c->out_start);
            c->out_end -= c->out_start;
            c->out_start = 0;
        }
        if (c->out_alloc - c->out_end < n) {
            c->out = fl_xgrow(c->out, &c->out_alloc, c->out_end + n, 1);
        }
    }
    uint8_t *p = c->out + c->out_end;
    c->out_end += n;
    return p;
}

static void conn_fail(struct bb_conn *c);

/* May more input be parsed now?  Not while the client leaves replies
 * unread or has too many requests in flight: a guest cannot make the
 * controller buffer without bound. */
static bool conn_can_take(const struct bb_conn *c)
{
    return !c->dead && !c->disc && c->state != CS_CLOSED && c->out_end - c->out_start < OUT_HIGH &&
           c->n_reqs < MAX_INFLIGHT;
}

static void conn_update_events(struct bb_conn *c)
{
    if (c->fd < 0 || c->dead) {
        return;
    }
    bool want_read = conn_can_take(c);
    /* no RDHUP while not reading: level-triggered, it would spin the loop
     * (a full hang-up is still reported as EPOLLHUP) */
    uint32_t ev =
        (want_read ? EPOLLIN | EPOLLRDHUP : 0) | (c->out_end > c->out_start ? EPOLLOUT : 0);
    if (ev != c->events) { /* one epoll_ctl per change, not per request */
        fl_loop_mod_fd(c->disk->bb->loop, c->fd, ev);
        c->events = ev;
    }
    c->reading = want_read;
}

static void conn_process(struct bb_conn *c);

/* Sends what is queued, then parses input left buffered while the
 * connection was over its limits, until nothing moves. */
static void conn_flush_out(struct bb_conn *c)
{
    for (int round = 0; round < 16 && !c->dead; round++) {
        while (c->fd >= 0 && c->out_end > c->out_start) {
            ssize_t n = send(c->fd, c->out + c->out_start, c->out_end - c->out_start,
                             MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n < 0) {
                if (errno == EINTR) {
                    continue;
                }
                if (errno == EAGAIN || errno == EWOULDBLOCK) {
                    break;
                }
                conn_fail(c);
                return;
            }
            c->out_start += (size_t)n;
        }
        if (c->out_start == c->out_end) {
            c->out_start = c->out_end = 0;
        }
        size_t before = c->in_start;
        if (c->in_end == c->in_start || !conn_can_take(c)) {
            break;
        }
        conn_process(c);
        if (c->in_start == before) {
            break;
        }
    }
    if (c->dead || c->fd < 0) {
        return;
    }
    /* a finished conversation (ABORT, DISC) ends once everything is sent */
    if ((c->state == CS_CLOSED || (c->disc && c->n_reqs == 0)) && c->out_end == 0) {
        conn_fail(c);
        return;
    }
    conn_update_events(c);
}

/* ------------------------------------------------------------------ */
/* Requests                                                            */
/* ------------------------------------------------------------------ */

static void req_free(struct bb_req *r)
{
    struct bb_conn *c = r->conn;
    if (r->cprev) {
        r->cprev->cnext = r->cnext;
    } else {
        c->reqs = r->cnext;
    }
    if (r->cnext) {
        r->cnext->cprev = r->cprev;
    }
    c->n_reqs--;
    if (r->in_stall) {
        struct bb_disk *d = c->disk;
        struct bb_req **pp = &d->stall_head, *prev = NULL;
        while (*pp && *pp != r) {
            prev = *pp;
            pp = &(*pp)->snext;
        }
        if (*pp) {
            *pp = r->snext;
            if (d->stall_tail == r) {
                d->stall_tail = prev;
            }
            d->st.stalled_now--;
        }
    }
    if (r->job) {
        struct blkback *bb = c->disk->bb;
        pthread_mutex_lock(&bb->mu);
        r->job->req = NULL;
        pthread_mutex_unlock(&bb->mu);
    }
    fl_timer_destroy(r->timer);
    free(r->data);
    free(r);
}

static size_t tag_hash(uint64_t tag, size_t cap)
{
    return (size_t)((tag * UINT64_C(0x9e3779b97f4a7c15)) >> 20) & (cap - 1);
}

static void tags_put_raw(struct tag_slot *t, size_t cap, uint64_t tag, int64_t id)
{
    size_t i = tag_hash(tag, cap);
    while (t[i].tag && t[i].tag != tag) {
        i = (i + 1) & (cap - 1);
    }
    t[i].tag = tag;
    t[i].io_id = id;
}

static int64_t tags_get_in(const struct tag_slot *t, size_t cap, uint64_t tag)
{
    if (!t) {
        return 0;
    }
    size_t i = tag_hash(tag, cap);
    while (t[i].tag) {
        if (t[i].tag == tag) {
            return t[i].io_id;
        }
        i = (i + 1) & (cap - 1);
    }
    return 0;
}

static int64_t tags_get(const struct bb_disk *d, uint64_t tag)
{
    return tags_get_in(d->tags, d->tags_cap, tag);
}

/* Keeps only the tags still in the cache (after flushes and destaging
 * most entries are stale), sized for twice that. */
static void tags_rebuild(struct bb_disk *d)
{
    uint64_t recs, bytes, destaged;
    bb_cache_counts(d->cache, &recs, &bytes, &destaged);
    size_t cap = 1024;
    while (cap < 4 * recs + 64) {
        cap *= 2;
    }
    struct tag_slot *t = fl_xcalloc(cap, sizeof(*t));
    size_t len = 0;
    for (struct bb_cache_rec *r = bb_cache_first(d->cache); r; r = r->next) {
        int64_t id = tags_get(d, r->tag);
        if (id > 0 && tags_get_in(t, cap, r->tag) == 0) {
            tags_put_raw(t, cap, r->tag, id);
            len++;
        }
    }
    free(d->tags);
    d->tags = t;
    d->tags_cap = cap;
    d->tags_len = len;
}

static void tags_put(struct bb_disk *d, uint64_t tag, int64_t id)
{
    if (!d->tags || 2 * (d->tags_len + 1) > d->tags_cap) {
        tags_rebuild(d);
        if (2 * (d->tags_len + 1) > d->tags_cap) {
            /* everything is still cached: grow */
            size_t cap = d->tags_cap * 2;
            struct tag_slot *t = fl_xcalloc(cap, sizeof(*t));
            for (size_t i = 0; i < d->tags_cap; i++) {
                if (d->tags[i].tag) {
                    tags_put_raw(t, cap, d->tags[i].tag, d->tags[i].io_id);
                }
            }
            free(d->tags);
            d->tags = t;
            d->tags_cap = cap;
        }
    }
    tags_put_raw(d->tags, d->tags_cap, tag, id);
    d->tags_len++;
}

static void record_io(struct bb_disk *d, struct bb_req *r, int64_t complete_ns)
{
    struct trace_db *db = d->bb->trace;
    if (!db || d->trace_id <= 0 || r->type == NBD_CMD_DISC) {
        return;
    }
    struct trace_io io = {
        .disk_id = d->trace_id,
        .submit_ns = r->submit_ns,
        .complete_ns = complete_ns,
        .offset = r->off,
        .length = r->len,
        .op = (uint8_t)(r->type == NBD_CMD_READ    ? TRACE_IO_READ
                        : r->type == NBD_CMD_WRITE ? TRACE_IO_WRITE
                        : r->type == NBD_CMD_FLUSH ? TRACE_IO_FLUSH
                        : r->type == NBD_CMD_TRIM  ? TRACE_IO_TRIM
                                                   : TRACE_IO_WRITE_ZEROES),
        .fault = r->fault,
        .fua = (r->flags & NBD_CMD_FLAG_FUA) != 0,
        .result = r->error < 0 ? -r->error : r->error,
    };
    int64_t id = trace_io(db, &io);
    if (id > 0 && r->error == 0 && !(r->flags & NBD_CMD_FLAG_FUA) &&
        (r->type == NBD_CMD_WRITE || r->type == NBD_CMD_TRIM || r->type == NBD_CMD_WRITE_ZEROES)) {
        tags_put(d, r->tag, id);
    }
}

static void send_reply(struct bb_conn *c, struct bb_req *r)
{
    uint32_t err = bb_nbd_errno(r->error);
    if (c->structured && r->type == NBD_CMD_READ) {
        if (err == 0) {
            uint8_t *p = out_reserve(c, 20 + 8 + (size_t)r->len);
            put32(p, NBD_STRUCT_MAGIC);
            put16(p + 4, NBD_REPLY_FLAG_DONE);
            put16(p + 6, NBD_REPLY_TYPE_OFFSET_DATA);
            put64(p + 8, r->handle);
            put32(p + 16, 8 + r->len);
            put64(p + 20, r->off);
            if (r->len) {
                memcpy(p + 28, r->data, r->len);
            }
        } else {
            const char *msg = strerror(-r->error);
            size_t ml = strlen(msg);
            uint8_t *p = out_reserve(c, 20 + 6 + ml);
            put32(p, NBD_STRUCT_MAGIC);
            put16(p + 4, NBD_REPLY_FLAG_DONE);
            put16(p + 6, NBD_REPLY_TYPE_ERROR);
            put64(p + 8, r->handle);
            put32(p + 16, (uint32_t)(6 + ml));
            put32(p + 20, err);
            put16(p + 24, (uint16_t)ml);
            memcpy(p + 26, msg, ml);
        }
        return;
    }
    size_t payload = (r->type == NBD_CMD_READ && err == 0) ? r->len : 0;
    uint8_t *p = out_reserve(c, 16 + payload);
    put32(p, NBD_SIMPLE_MAGIC);
    put32(p + 4, err);
    put64(p + 8, r->handle);
    if (payload) {
        memcpy(p + 16, r->data, payload);
    }
}

static void stall_push(struct bb_disk *d, struct bb_req *r)
{
    r->in_stall = true;
    r->snext = NULL;
    if (d->stall_tail) {
        d->stall_tail->snext = r;
    } else {
        d->stall_head = r;
    }
    d->stall_tail = r;
    d->st.stalled_now++;
}

/* Sends the reply now (or holds it while the disk is stalled). */
static void req_complete(struct bb_req *r)
{
    struct bb_conn *c = r->conn;
    struct bb_disk *d = c->disk;
    if (d->stalled) {
        if (!r->in_stall) {
            stall_push(d, r);
        }
        return;
    }
    int64_t now = fl_loop_now(d->bb->loop);
    switch (r->type) {
    case NBD_CMD_READ:
        d->st.reads++;
        d->st.bytes_read += r->error ? 0 : r->len;
        break;
    case NBD_CMD_WRITE:
        d->st.writes++;
        d->st.bytes_written += r->error ? 0 : r->len;
        break;
    case NBD_CMD_FLUSH:
        d->st.flushes++;
        break;
    case NBD_CMD_TRIM:
        d->st.trims++;
        break;
    case NBD_CMD_WRITE_ZEROES:
        d->st.zeroes++;
        break;
    default:
        break;
    }
    send_reply(c, r);
    record_io(d, r, now);
    req_free(r);
}

static void req_timer_cb(struct fl_loop *loop, struct fl_timer *t, void *arg)
{
    struct bb_req *r = arg;
    struct bb_conn *c = r->conn;
    req_complete(r);
    conn_flush_out(c);
    if (c->dead && !c->mem) {
        bb_conn_destroy(c);
    }
}

/* ------------------------------------------------------------------ */
/* fdatasync worker                                                    */
/* ------------------------------------------------------------------ */

static void *sync_worker(void *arg)
{
    struct blkback *bb = arg;
    pthread_mutex_lock(&bb->mu);
    for (;;) {
        while (!bb->queue && !bb->stop) {
            pthread_cond_wait(&bb->cv, &bb->mu);
        }
        if (!bb->queue) {
            break;
        }
        struct sync_job *j = bb->queue;
        bb->queue = j->next;
        if (!bb->queue) {
            bb->queue_tail = NULL;
        }
        pthread_mutex_unlock(&bb->mu);
        j->result = fdatasync(j->fd) < 0 ? -errno : 0;
        if (j->map_path) {
            int mfd = open(j->map_path, O_RDONLY | O_CLOEXEC);
            if (mfd >= 0) {
                if (fdatasync(mfd) < 0 && j->result == 0) {
                    j->result = -errno;
                }
                close(mfd);
            }
        }
        pthread_mutex_lock(&bb->mu);
        j->next = bb->done;
        bb->done = j;
        j->disk->sync_inflight--;
        pthread_cond_broadcast(&bb->done_cv);
        uint64_t one = 1;
        ssize_t w = write(bb->efd, &one, sizeof(one));
        (void)w; /* the counter only wakes the loop; saturation cannot happen */
    }
    pthread_mutex_unlock(&bb->mu);
    return NULL;
}

static void req_schedule(struct bb_req *r);

/* Completes finished jobs (in the loop thread). */
static void sync_reap(struct blkback *bb)
{
    pthread_mutex_lock(&bb->mu);
    struct sync_job *done = bb->done;
    bb->done = NULL;
    /* detach requests under the lock; they cannot go away after this */
    for (struct sync_job *j = done; j; j = j->next) {
        if (j->req) {
            j->req->job = NULL;
        }
    }
    pthread_mutex_unlock(&bb->mu);
    while (done) {
        struct sync_job *j = done;
        done = j->next;
        struct bb_req *r = j->req;
        if (j->result < 0) {
            fl_log(FL_LOG_ERROR, ROOM, "%s:%s: fdatasync: %s", j->disk->node, j->disk->name,
                   strerror(-j->result));
        }
        if (r) {
            struct bb_conn *c = r->conn;
            if (j->result < 0 && r->error == 0) {
                r->error = j->result;
            }
            req_schedule(r);
            conn_flush_out(c);
            if (c->dead && !c->mem) {
                bb_conn_destroy(c);
            }
        }
        free(j->map_path);
        free(j);
    }
}

static void sync_efd_cb(struct fl_loop *loop, int fd, uint32_t events, void *arg)
{
    uint64_t n;
    ssize_t rd = read(fd, &n, sizeof(n));
    (void)rd;
    sync_reap(arg);
}

/* Hands the disk's owed fdatasync (if any) to the worker; the reply of r
 * (may be NULL) waits for it. */
static void sync_submit(struct bb_disk *d, struct bb_req *r)
{
    struct blkback *bb = d->bb;
    int fd;
    char *map = NULL;
    if (!bb_file_take_sync(d->file, &fd, &map)) {
        return;
    }
    struct sync_job *j = fl_xcalloc(1, sizeof(*j));
    j->disk = d;
    j->req = r;
    j->fd = fd;
    j->map_path = map;
    if (r) {
        r->job = j;
    }
    pthread_mutex_lock(&bb->mu);
    if (!bb->worker_started) {
        bb->worker_started = pthread_create(&bb->worker, NULL, sync_worker, bb) == 0;
    }
    if (!bb->worker_started) {
        pthread_mutex_unlock(&bb->mu);
        /* no thread: sync in place (slow but correct) */
        j->result = fdatasync(fd) < 0 ? -errno : 0;
        if (r) {
            r->job = NULL;
            if (j->result < 0 && r->error == 0) {
                r->error = j->result;
            }
        }
        free(j->map_path);
        free(j);
        return;
    }
    d->sync_inflight++;
    if (bb->queue_tail) {
        bb->queue_tail->next = j;
    } else {
        bb->queue = j;
    }
    bb->queue_tail = j;
    pthread_cond_signal(&bb->cv);
    pthread_mutex_unlock(&bb->mu);
}

/* Waits until no job of d is queued or running, then completes them. */
static void sync_drain(struct bb_disk *d)
{
    struct blkback *bb = d->bb;
    pthread_mutex_lock(&bb->mu);
    while (d->sync_inflight > 0) {
        pthread_cond_wait(&bb->done_cv, &bb->mu);
    }
    pthread_mutex_unlock(&bb->mu);
    sync_reap(bb);
}

/* Performs the request on the layer stack (once, at arrival or at stall
 * release). */
static void req_execute(struct bb_req *r)
{
    struct bb_disk *d = r->conn->disk;
    r->executed = true;
    if (r->dec.error) {
        r->error = r->dec.error;
        r->fault = TRACE_IO_FAULT_ERROR;
        d->st.errors_injected++;
        free(r->data);
        r->data = NULL;
        return;
    }
    if (r->dec.complete_ns > r->submit_ns) {
        r->fault = TRACE_IO_FAULT_LATENCY;
    }
    unsigned fua = (r->flags & NBD_CMD_FLAG_FUA) ? BB_F_FUA : 0;
    struct bb_layer *top = d->top;
    int e = 0;
    switch (r->type) {
    case NBD_CMD_READ:
        free(r->data);
        r->data = fl_xmalloc(r->len ? r->len : 1);
        e = top->ops->pread(top, r->data, r->len, r->off);
        if (e == 0 && r->dec.corrupted && r->dec.corrupt_offset < r->len) {
            r->data[r->dec.corrupt_offset] ^= r->dec.corrupt_mask;
            d->st.reads_corrupted++;
            d->st.bits_flipped++;
        }
        break;
    case NBD_CMD_WRITE:
        e = top->ops->pwrite(top, r->data ? r->data : r->payload, r->len, r->off, fua, r->tag,
                             r->submit_ns);
        free(r->data);
        r->data = NULL;
        r->payload = NULL;
        break;
    case NBD_CMD_FLUSH:
        e = top->ops->flush(top);
        break;
    case NBD_CMD_TRIM:
        e = top->ops->zero(top, r->len, r->off, fua | BB_F_MAY_TRIM, r->tag, r->submit_ns);
        break;
    case NBD_CMD_WRITE_ZEROES:
        e = top->ops->zero(top, r->len, r->off,
                           fua | ((r->flags & NBD_CMD_FLAG_NO_HOLE) ? 0 : BB_F_MAY_TRIM), r->tag,
                           r->submit_ns);
        break;
    default:
        e = -EINVAL;
        break;
    }
    if (e == -ENOSPC) {
        r->fault = TRACE_IO_FAULT_FULL;
        d->st.errors_enospc++;
    }
    r->error = e;
    if (e == 0) {
        sync_submit(d, r); /* FLUSH / FUA: the reply waits for fdatasync */
    }
}

/* After execution: reply now or when the decided latency has passed. */
static void req_schedule(struct bb_req *r)
{
    struct bb_disk *d = r->conn->disk;
    if (r->job) {
        return; /* sync_reap() schedules it */
    }
    int64_t now = fl_loop_now(d->bb->loop);
    if (r->dec.complete_ns <= now) {
        req_complete(r);
        return;
    }
    r->timer = fl_timer_create(d->bb->loop, req_timer_cb, r);
    fl_timer_arm(r->timer, r->dec.complete_ns);
}

static struct bb_req *req_new(struct bb_conn *c, const uint8_t *hdr)
{
    struct bb_req *r = fl_xcalloc(1, sizeof(*r));
    r->conn = c;
    r->flags = be16(hdr + 4);
    r->type = be16(hdr + 6);
    r->handle = be64(hdr + 8);
    r->off = be64(hdr + 16);
    r->len = be32(hdr + 24);
    r->submit_ns = fl_loop_now(c->disk->bb->loop);
    r->dec.complete_ns = r->submit_ns;
    r->tag = ++c->disk->serial;
    r->cnext = c->reqs;
    if (c->reqs) {
        c->reqs->cprev = r;
    }
    c->reqs = r;
    c->n_reqs++;
    return r;
}

/* Validates a request; 0 or the -errno to reply with. */
static int req_validate(struct bb_conn *c, const struct bb_req *r)
{
    struct bb_disk *d = c->disk;
    uint16_t allowed = NBD_CMD_FLAG_FUA;
    switch (r->type) {
    case NBD_CMD_READ:
        if (c->structured) {
            allowed |= NBD_CMD_FLAG_DF;
        }
        break;
    case NBD_CMD_WRITE:
    case NBD_CMD_TRIM:
    case NBD_CMD_FLUSH:
        break;
    case NBD_CMD_WRITE_ZEROES:
        allowed |= NBD_CMD_FLAG_NO_HOLE;
        break;
    default:
        return -EINVAL; /* unknown, or not advertised (CACHE, BLOCK_STATUS) */
    }
    if (r->flags & ~allowed) {
        return -EINVAL;
    }
    bool writes =
        r->type == NBD_CMD_WRITE || r->type == NBD_CMD_TRIM || r->type == NBD_CMD_WRITE_ZEROES;
    if (writes && d->read_only) {
        return -EPERM;
    }
    if (r->type == NBD_CMD_FLUSH) {
        return (r->off || r->len) ? -EINVAL : 0;
    }
    if (r->len == 0) {
        return -EINVAL; /* nothing to do; a structured read reply cannot even say it */
    }
    if ((r->type == NBD_CMD_READ || r->type == NBD_CMD_WRITE) && r->len > BB_MAX_PAYLOAD) {
        return -EOVERFLOW;
    }
    if (r->off > d->size || r->len > d->size - r->off) {
        return writes ? -ENOSPC : -EINVAL;
    }
    return 0;
}

static void req_reject(struct bb_conn *c, struct bb_req *r, int err)
{
    r->payload = NULL;
    r->error = err;
    r->executed = true;
    c->disk->st.errors_invalid++;
    free(r->data);
    r->data = NULL;
    /* invalid requests are answered at once, never stalled */
    bool stalled = c->disk->stalled;
    c->disk->stalled = false;
    req_complete(r);
    c->disk->stalled = stalled;
}

/* The common read: no latency, no stall: read straight into the output
 * buffer behind the reply header (no copy).  false: not done (an I/O
 * error), the caller takes the general path. */
static bool read_direct(struct bb_conn *c, struct bb_req *r)
{
    struct bb_disk *d = c->disk;
    size_t hdr = c->structured ? 28 : 16;
    size_t mark = c->out_end;
    uint8_t *p = out_reserve(c, hdr + r->len);
    struct bb_layer *top = d->top;
    if (top->ops->pread(top, p + hdr, r->len, r->off) < 0) {
        c->out_end = mark;
        return false;
    }
    r->executed = true;
    if (r->dec.corrupted && r->dec.corrupt_offset < r->len) {
        p[hdr + r->dec.corrupt_offset] ^= r->dec.corrupt_mask;
        d->st.reads_corrupted++;
        d->st.bits_flipped++;
    }
    if (c->structured) {
        put32(p, NBD_STRUCT_MAGIC);
        put16(p + 4, NBD_REPLY_FLAG_DONE);
        put16(p + 6, NBD_REPLY_TYPE_OFFSET_DATA);
        put64(p + 8, r->handle);
        put32(p + 16, 8 + r->len);
        put64(p + 20, r->off);
    } else {
        put32(p, NBD_SIMPLE_MAGIC);
        put32(p + 4, 0);
        put64(p + 8, r->handle);
    }
    d->st.reads++;
    d->st.bytes_read += r->len;
    record_io(d, r, fl_loop_now(d->bb->loop));
    req_free(r);
    return true;
}

static void req_start(struct bb_conn *c, struct bb_req *r)
{
    struct bb_disk *d = c->disk;
    int e = req_validate(c, r);
    if (e) {
        req_reject(c, r, e);
        return;
    }
    if (d->imp) {
        int64_t now = r->submit_ns;
        bool extent = r->type != NBD_CMD_FLUSH;
        int de = impair_disk_decide(d->imp, now,
                                    (enum impair_io_op)(r->type == NBD_CMD_READ    ? IMPAIR_IO_READ
                                                        : r->type == NBD_CMD_WRITE ? IMPAIR_IO_WRITE
                                                        : r->type == NBD_CMD_FLUSH ? IMPAIR_IO_FLUSH
                                                        : r->type == NBD_CMD_TRIM
                                                            ? IMPAIR_IO_TRIM
                                                            : IMPAIR_IO_WRITE_ZEROES),
                                    extent ? r->off : 0, extent ? r->len : 0, &r->dec);
        if (de < 0) {
            r->dec.complete_ns = now;
            r->dec.error = 0;
        }
    }
    if (d->stalled) {
        if (r->payload) { /* the input buffer moves on: keep a copy */
            r->data = fl_xmalloc(r->len);
            memcpy(r->data, r->payload, r->len);
            r->payload = NULL;
        }
        stall_push(d, r);
        return;
    }
    if (r->type == NBD_CMD_READ && !r->dec.error && r->dec.complete_ns <= r->submit_ns &&
        read_direct(c, r)) {
        return;
    }
    req_execute(r);
    r->payload = NULL;
    req_schedule(r);
}

/* ------------------------------------------------------------------ */
/* Handshake                                                           */
/* ------------------------------------------------------------------ */

static uint16_t tx_flags(const struct bb_conn *c)
{
    uint16_t f = NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_FUA | NBD_FLAG_SEND_TRIM |
                 NBD_FLAG_SEND_WRITE_ZEROES | NBD_FLAG_CAN_MULTI_CONN;
    if (c->disk->read_only) {
        f |= NBD_FLAG_READ_ONLY;
    }
    if (c->structured) {
        f |= NBD_FLAG_SEND_DF;
    }
    return f;
}

static void opt_reply(struct bb_conn *c, uint32_t opt, uint32_t type, const void *data, size_t len)
{
    uint8_t *p = out_reserve(c, 20 + len);
    put64(p, NBD_REP_MAGIC);
    put32(p + 8, opt);
    put32(p + 12, type);
    put32(p + 16, (uint32_t)len);
    if (len) {
        memcpy(p + 20, data, len);
    }
}

static void opt_error(struct bb_conn *c, uint32_t opt, uint32_t type, const char *msg)
{
    opt_reply(c, opt, type, msg, strlen(msg));
}

static bool export_matches(const struct bb_conn *c, const uint8_t *name, size_t len)
{
    const char *e = c->disk->export_name;
    return len == 0 || (strlen(e) == len && memcmp(e, name, len) == 0);
}

static void enter_transmission(struct bb_conn *c)
{
    c->state = CS_REQ_HDR;
    c->disk->st.connections++;
}

static void handle_info_go(struct bb_conn *c, const uint8_t *data, uint32_t len)
{
    uint32_t opt = c->opt;
    if (len < 6) {
        opt_error(c, opt, NBD_REP_ERR_INVALID, "option data too short for INFO/GO");
        return;
    }
    uint32_t nl = be32(data);
    if (nl > len - 6 || nl > NBD_MAX_STRING) {
        opt_error(c, opt, NBD_REP_ERR_INVALID, "export name length exceeds the option data");
        return;
    }
    uint16_t nreq = be16(data + 4 + nl);
    if ((uint64_t)len != 6 + (uint64_t)nl + 2 * (uint64_t)nreq) {
        opt_error(c, opt, NBD_REP_ERR_INVALID, "information request count disagrees with length");
        return;
    }
    if (!export_matches(c, data + 4, nl)) {
        opt_error(c, opt, NBD_REP_ERR_UNKNOWN, "no such export on this socket");
        return;
    }
    bool want_name = false, want_desc = false, want_bs = false;
    for (uint16_t i = 0; i < nreq; i++) {
        uint16_t t = be16(data + 6 + nl + 2 * i);
        want_name |= t == NBD_INFO_NAME;
        want_desc |= t == NBD_INFO_DESCRIPTION;
        want_bs |= t == NBD_INFO_BLOCK_SIZE;
    }
    uint8_t info[12];
    put16(info, NBD_INFO_EXPORT);
    put64(info + 2, c->disk->size);
    put16(info + 10, tx_flags(c));
    opt_reply(c, opt, NBD_REP_INFO, info, sizeof(info));
    if (want_name) {
        size_t el = strlen(c->disk->export_name);
        uint8_t *buf = fl_xmalloc(2 + el);
        put16(buf, NBD_INFO_NAME);
        memcpy(buf + 2, c->disk->export_name, el);
        opt_reply(c, opt, NBD_REP_INFO, buf, 2 + el);
        free(buf);
    }
    if (want_desc) {
        char *desc = fl_xasprintf("faultline disk %s:%s", c->disk->node, c->disk->name);
        size_t dl = strlen(desc);
        uint8_t *buf = fl_xmalloc(2 + dl);
        put16(buf, NBD_INFO_DESCRIPTION);
        memcpy(buf + 2, desc, dl);
        opt_reply(c, opt, NBD_REP_INFO, buf, 2 + dl);
        free(buf);
        free(desc);
    }
    if (want_bs) {
        uint8_t bs[14];
        put16(bs, NBD_INFO_BLOCK_SIZE);
        put32(bs + 2, 1);
        put32(bs + 6, BB_CLUSTER_SIZE);
        put32(bs + 10, BB_MAX_PAYLOAD);
        opt_reply(c, opt, NBD_REP_INFO, bs, sizeof(bs));
    }
    opt_reply(c, opt, NBD_REP_ACK, NULL, 0);
    if (opt == NBD_OPT_GO) {
        enter_transmission(c);
    }
}

static void handle_meta_context(struct bb_conn *c, const uint8_t *data, uint32_t len)
{
    /* export name length, name, query count, queries (each length + string) */
    if (!c->structured) {
        opt_error(c, c->opt, NBD_REP_ERR_INVALID, "negotiate structured replies first");
        return;
    }
    if (len < 8) {
        opt_error(c, c->opt, NBD_REP_ERR_INVALID, "option data too short");
        return;
    }
    uint32_t nl = be32(data);
    if (nl > len - 8) {
        opt_error(c, c->opt, NBD_REP_ERR_INVALID, "export name length exceeds the option data");
        return;
    }
    uint32_t nq = be32(data + 4 + nl);
    uint64_t pos = 8 + (uint64_t)nl;
    for (uint32_t i = 0; i < nq; i++) {
        if (pos + 4 > len || be32(data + pos) > len - pos - 4) {
            opt_error(c, c->opt, NBD_REP_ERR_INVALID, "query length exceeds the option data");
            return;
        }
        pos += 4 + be32(data + pos);
    }
    if (pos != len) {
        opt_error(c, c->opt, NBD_REP_ERR_INVALID, "trailing bytes after the queries");
        return;
    }
    if (!export_matches(c, data + 4, nl)) {
        opt_error(c, c->opt, NBD_REP_ERR_UNKNOWN, "no such export on this socket");
        return;
    }
    /* no metadata contexts: every block reads as allocated data */
    opt_reply(c, c->opt, NBD_REP_ACK, NULL, 0);
}

/* Returns false when the connection must close. */
static bool handle_option(struct bb_conn *c, const uint8_t *data, uint32_t len)
{
    switch (c->opt) {
    case NBD_OPT_EXPORT_NAME: {
        if (!export_matches(c, data, len)) {
            FL_LOG_RL(&c->disk->rl, FL_LOG_WARN, ROOM,
                      "%s:%s: client asked for an unknown export (%u bytes); closing",
                      c->disk->node, c->disk->name, len);
            return false;
        }
        uint8_t *p = out_reserve(c, 10 + (c->no_zeroes ? 0 : 124));
        put64(p, c->disk->size);
        put16(p + 8, tx_flags(c));
        if (!c->no_zeroes) {
            memset(p + 10, 0, 124);
        }
        enter_transmission(c);
        return true;
    }
    case NBD_OPT_ABORT:
        opt_reply(c, c->opt, NBD_REP_ACK, NULL, 0);
        c->state = CS_CLOSED;
        return true;
    case NBD_OPT_LIST: {
        if (len != 0) {
            opt_error(c, c->opt, NBD_REP_ERR_INVALID, "LIST takes no data");
            return true;
        }
        size_t el = strlen(c->disk->export_name);
        uint8_t *buf = fl_xmalloc(4 + el);
        put32(buf, (uint32_t)el);
        memcpy(buf + 4, c->disk->export_name, el);
        opt_reply(c, c->opt, NBD_REP_SERVER, buf, 4 + el);
        free(buf);
        opt_reply(c, c->opt, NBD_REP_ACK, NULL, 0);
        return true;
    }
    case NBD_OPT_STARTTLS:
        opt_error(c, c->opt, NBD_REP_ERR_POLICY, "TLS is not offered on local unix sockets");
        return true;
    case NBD_OPT_INFO:
    case NBD_OPT_GO:
        handle_info_go(c, data, len);
        return true;
    case NBD_OPT_STRUCTURED_REPLY:
        if (len != 0) {
            opt_error(c, c->opt, NBD_REP_ERR_INVALID, "STRUCTURED_REPLY takes no data");
        } else if (c->structured) {
            opt_error(c, c->opt, NBD_REP_ERR_INVALID, "structured replies already negotiated");
        } else {
            c->structured = true;
            opt_reply(c, c->opt, NBD_REP_ACK, NULL, 0);
        }
        return true;
    case NBD_OPT_LIST_META_CONTEXT:
    case NBD_OPT_SET_META_CONTEXT:
        handle_meta_context(c, data, len);
        return true;
    default:
        opt_error(c, c->opt, NBD_REP_ERR_UNSUP, "option not supported by faultline");
        return true;
    }
}

static void protocol_error(struct bb_conn *c, const char *what)
{
    c->disk->st.protocol_errors++;
    FL_LOG_RL(&c->disk->rl, FL_LOG_WARN, ROOM, "%s:%s: %s; closing the connection", c->disk->node,
              c->disk->name, what);
    conn_fail(c);
}

/* Consumes as much buffered input as the state machine can. */
static void conn_process(struct bb_conn *c)
{
    while (conn_can_take(c)) {
        size_t avail = c->in_end - c->in_start;
        const uint8_t *p = c->in + c->in_start;
        switch (c->state) {
        case CS_CLIENT_FLAGS: {
            if (avail < 4) {
                return;
            }
            uint32_t f = be32(p);
            c->in_start += 4;
            if (f & ~(NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES)) {
                protocol_error(c, "client set unknown handshake flags");
                return;
            }
            c->no_zeroes = f & NBD_FLAG_C_NO_ZEROES;
            c->state = CS_OPT_HDR;
            break;
        }
        case CS_OPT_HDR:
            if (avail < 16) {
                return;
            }
            if (be64(p) != NBD_OPT_MAGIC) {
                protocol_error(c, "bad option magic");
                return;
            }
            c->opt = be32(p + 8);
            c->opt_len = be32(p + 12);
            c->in_start += 16;
            if (c->opt_len > NBD_MAX_OPTION_SIZE) {
                protocol_error(c, "option data larger than 64 KiB");
                return;
            }
            c->state = CS_OPT_DATA;
            break;
        case CS_OPT_DATA: {
            if (avail < c->opt_len) {
                return;
            }
            c->in_start += c->opt_len;
            c->state = CS_OPT_HDR;
            if (!handle_option(c, p, c->opt_len)) {
                conn_fail(c);
                return;
            }
            break;
        }
        case CS_REQ_HDR: {
            if (avail < REQ_HDR_LEN) {
                return;
            }
            if (be32(p) != NBD_REQUEST_MAGIC) {
                protocol_error(c, "bad request magic");
                return;
            }
            uint16_t type = be16(p + 6);
            uint32_t len = be32(p + 24);
            if (type == NBD_CMD_DISC) {
                c->in_start += REQ_HDR_LEN;
                c->disc = true;
                return;
            }
            if (type == NBD_CMD_WRITE) {
                if (len > BB_MAX_PAYLOAD) {
                    /* cannot buffer it: discard the payload, then answer */
                    memcpy(c->req_hdr, p, REQ_HDR_LEN);
                    c->in_start += REQ_HDR_LEN;
                    c->skip_left = len;
                    c->state = CS_SKIP;
                    break;
                }
                if (avail < REQ_HDR_LEN + (size_t)len) {
                    c->state = CS_WRITE_DATA;
                    return;
                }
            }
            struct bb_req *r = req_new(c, p);
            if (type == NBD_CMD_WRITE && len) {
                r->payload = p + REQ_HDR_LEN; /* valid until req_start returns */
            }
            c->in_start += REQ_HDR_LEN + (type == NBD_CMD_WRITE ? (size_t)len : 0);
            c->state = CS_REQ_HDR;
            req_start(c, r);
            break;
        }
        case CS_WRITE_DATA:
            if (avail < REQ_HDR_LEN + (size_t)be32(p + 24)) {
                return;
            }
            c->state = CS_REQ_HDR;
            break;
        case CS_SKIP: {
            size_t n = (size_t)FL_MIN((uint64_t)avail, c->skip_left);
            c->in_start += n;
            c->skip_left -= n;
            if (c->skip_left > 0) {
                return;
            }
            struct bb_req *r = req_new(c, c->req_hdr);
            c->state = CS_REQ_HDR;
            req_reject(c, r, -EOVERFLOW);
            break;
        }
        case CS_CLOSED:
            return;
        }
    }
}

/* Bytes the parser needs buffered before it can progress. */
static size_t conn_need(const struct bb_conn *c)
{
    if (c->state == CS_WRITE_DATA) {
        return REQ_HDR_LEN + be32(c->in + c->in_start + 24);
    }
    if (c->state == CS_OPT_DATA) {
        return c->opt_len;
    }
    return 0;
}

static void in_make_room(struct bb_conn *c, size_t want)
{
    if (c->in_start == c->in_end) {
        c->in_start = c->in_end = 0;
    }
    if (c->in_alloc - c->in_end >= want) {
        return;
    }
    if (c->in_start > 0) {
        memmove(c->in, c->in + c->in_start, c->in_end - c->in_start);
        c->in_end -= c->in_start;
        c->in_start = 0;
    }
    if (c->in_alloc - c->in_end < want) {
        c->in = fl_xgrow(c->in, &c->in_alloc, c->in_end + want, 1);
    }
}

static void conn_fail(struct bb_conn *c)
{
    if (c->dead) {
        return;
    }
    c->dead = true;
    c->state = CS_CLOSED;
    if (c->fd >= 0) {
        fl_loop_del_fd(c->disk->bb->loop, c->fd);
        close(c->fd);
        c->fd = -1;
    }
}

static void conn_read_cb(struct fl_loop *loop, int fd, uint32_t events, void *arg)
{
    struct bb_conn *c = arg;
    if (events & EPOLLOUT) {
        conn_flush_out(c);
    }
    if (!c->dead && (events & (EPOLLIN | EPOLLHUP | EPOLLRDHUP | EPOLLERR)) && c->reading) {
        for (int round = 0; round < 8 && !c->dead && !c->disc; round++) {
            size_t need = conn_need(c);
            size_t have = c->in_end - c->in_start;
            size_t want = need > have ? need - have : 0;
            in_make_room(c, FL_MAX(want, (size_t)READ_CHUNK));
            size_t space = c->in_alloc - c->in_end;
            ssize_t n = recv(fd, c->in + c->in_end, space, MSG_DONTWAIT);
            if (n < 0) {
                if (errno == EINTR) {
                    continue;
                }
                if (errno != EAGAIN && errno != EWOULDBLOCK) {
                    conn_fail(c);
                }
                break;
            }
            if (n == 0) {
                /* client gone (possibly mid-request): pending replies are
                 * dropped; executed writes stay in the cache */
                conn_fail(c);
                break;
            }
            c->in_end += (size_t)n;
            conn_process(c);
            /* replies leave before the next system call on this socket */
            conn_flush_out(c);
            if (c->dead || (size_t)n < space || c->out_end - c->out_start >= OUT_HIGH) {
                break; /* a short read means the socket is drained */
            }
        }
    } else if (!c->dead && (events & (EPOLLHUP | EPOLLERR))) {
        conn_fail(c);
    }
    if (!c->dead) {
        conn_flush_out(c);
    }
    if (c->dead) {
        bb_conn_destroy(c);
    }
}

static struct bb_conn *conn_new(struct bb_disk *d, int fd)
{
    struct bb_conn *c = fl_xcalloc(1, sizeof(*c));
    c->disk = d;
    c->fd = fd;
    c->state = CS_CLIENT_FLAGS;
    c->next = d->conns;
    if (d->conns) {
        d->conns->prev = c;
    }
    d->conns = c;
    d->st.connections_open++;
    uint8_t *p = out_reserve(c, 18);
    put64(p, NBD_MAGIC);
    put64(p + 8, NBD_OPT_MAGIC);
    put16(p + 16, NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
    return c;
}

void bb_conn_destroy(struct bb_conn *c)
{
    if (!c) {
        return;
    }
    conn_fail(c);
    while (c->reqs) {
        req_free(c->reqs);
    }
    struct bb_disk *d = c->disk;
    if (c->prev) {
        c->prev->next = c->next;
    } else {
        d->conns = c->next;
    }
    if (c->next) {
        c->next->prev = c->prev;
    }
    d->st.connections_open--;
    free(c->in);
    free(c->out);
    free(c);
}

struct bb_conn *bb_conn_create_mem(struct bb_disk *d)
{
    struct bb_conn *c = conn_new(d, -1);
    c->mem = true;
    return c;
}

bool bb_conn_feed(struct bb_conn *c, const void *data, size_t size)
{
    if (c->dead || c->state == CS_CLOSED) {
        return false;
    }
    in_make_room(c, size);
    memcpy(c->in + c->in_end, data, size);
    c->in_end += size;
    conn_process(c);
    return !c->dead && c->state != CS_CLOSED && !c->disc;
}

void bb_conn_take_output(struct bb_conn *c, uint8_t **out, size_t *size)
{
    *size = c->out_end - c->out_start;
    *out = fl_xmalloc(*size ? *size : 1);
    memcpy(*out, c->out + c->out_start, *size);
    c->out_start = c->out_end = 0;
}

bool bb_conn_closed(const struct bb_conn *c)
{
    return c->dead || c->state == CS_CLOSED || c->disc;
}

/* ------------------------------------------------------------------ */
/* Disks                                                               */
/* ------------------------------------------------------------------ */

int bb_disk_attach_fd(struct bb_disk *d, int fd)
{
    if (fd < 0) {
        return -EBADF;
    }
    int e = fl_set_nonblock(fd);
    if (e == 0) {
        e = fl_set_cloexec(fd);
    }
    if (e < 0) {
        close(fd);
        return e;
    }
    struct bb_conn *c = conn_new(d, fd);
    c->events = EPOLLIN | EPOLLOUT | EPOLLRDHUP;
    e = fl_loop_add_fd(d->bb->loop, fd, c->events, conn_read_cb, c);
    if (e < 0) {
        c->fd = -1;
        close(fd);
        bb_conn_destroy(c);
        return e;
    }
    c->reading = true;
    conn_flush_out(c);
    return 0;
}

static void listen_cb(struct fl_loop *loop, int fd, uint32_t events, void *arg)
{
    struct bb_disk *d = arg;
    for (int i = 0; i < 16; i++) {
        int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                FL_LOG_RL(&d->rl, FL_LOG_WARN, ROOM, "%s:%s: accept: %s", d->node, d->name,
                          strerror(errno));
            }
            return;
        }
        int e = bb_disk_attach_fd(d, cfd);
        if (e < 0) {
            FL_LOG_RL(&d->rl, FL_LOG_WARN, ROOM, "%s:%s: cannot serve a connection: %s", d->node,
                      d->name, strerror(-e));
        }
    }
}

static bool disk_listen(struct bb_disk *d, struct fl_error **errp)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(d->socket_path) >= sizeof(sa.sun_path)) {
        fl_error_setf(errp, ENAMETOOLONG,
                      "socket path '%s' is %zu bytes; unix socket paths must be shorter than "
                      "%zu bytes",
                      d->socket_path, strlen(d->socket_path), sizeof(sa.sun_path));
        return false;
    }
    strcpy(sa.sun_path, d->socket_path);
    struct stat st;
    if (lstat(d->socket_path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            fl_error_setf(errp, EEXIST, "'%s' exists and is not a socket; refusing to replace it",
                          d->socket_path);
            return false;
        }
        unlink(d->socket_path);
    }
    d->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (d->listen_fd < 0) {
        fl_error_setf_errno(errp, errno, "socket()");
        return false;
    }
    if (bind(d->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        listen(d->listen_fd, 16) < 0) {
        fl_error_setf_errno(errp, errno, "cannot listen on '%s'", d->socket_path);
        close(d->listen_fd);
        d->listen_fd = -1;
        return false;
    }
    int e = fl_loop_add_fd(d->bb->loop, d->listen_fd, EPOLLIN, listen_cb, d);
    if (e < 0) {
        fl_error_setf_errno(errp, -e, "cannot watch '%s'", d->socket_path);
        close(d->listen_fd);
        d->listen_fd = -1;
        unlink(d->socket_path);
        return false;
    }
    return true;
}

static void disk_free(struct bb_disk *d)
{
    while (d->conns) {
        bb_conn_destroy(d->conns);
    }
    sync_drain(d);
    if (d->listen_fd >= 0) {
        fl_loop_del_fd(d->bb->loop, d->listen_fd);
        close(d->listen_fd);
        unlink(d->socket_path);
    }
    if (d->top) {
        bb_layer_destroy_stack(d->top);
    } else if (d->file) {
        bb_layer_destroy_stack(d->file);
    }
    impair_disk_destroy(d->imp);
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
    bb_file_set_deferred_sync(d->file, true);
    d->cache = bb_cache_create(d->file, d->size, cfg->cache_limit);
    d->top = bb_capacity_create(d->cache, d->file, d->size, cfg->capacity);

    char *istream = fl_xasprintf("%s:%s", d->node, d->name);
    struct impair_disk_params none;
    memset(&none, 0, sizeof(none));
    d->imp = impair_disk_create(cfg->faults ? cfg->faults : &none, bb->seed,
                                impair_stream_id(istream), errp);
    free(istream);
    if (!d->imp) {
        fl_error_prepend(errp, "disk %s:%s: faults: ", d->node, d->name);
        disk_free(d);
        return NULL;
    }
    if (cfg->socket_path) {
        d->socket_path = fl_xstrdup(cfg->socket_path);
        if (!disk_listen(d, errp)) {
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
    int e = d->top->ops->flush(d->top);
    if (e < 0) {
        fl_log(FL_LOG_ERROR, ROOM, "%s:%s: writing back the cache at removal: %s", d->node, d->name,
               strerror(-e));
    }
    disk_free(d);
}

bool bb_disk_set_faults(struct bb_disk *d, const struct impair_disk_params *params,
                        struct fl_error **errp)
{
    struct impair_disk_params none;
    memset(&none, 0, sizeof(none));
    if (!impair_disk_set_params(d->imp, params ? params : &none, errp)) {
        fl_error_prepend(errp, "disk %s:%s: ", d->node, d->name);
        return false;
    }
    return true;
}

void bb_disk_set_capacity(struct bb_disk *d, uint64_t capacity)
{
    bb_capacity_set(d->top, capacity);
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
            req_complete(r);
        } else {
            req_execute(r);
            req_schedule(r);
        }
    }
    for (struct bb_conn *c = d->conns, *next; c; c = next) {
        next = c->next;
        conn_flush_out(c);
        if (c->dead && !c->mem) {
            bb_conn_destroy(c);
        }
    }
}

struct crash_ctx {
    struct bb_disk *d;
    int64_t crash_id;
};

static uint64_t crash_rand(void *arg)
{
    return impair_rng_next(arg);
}

static void crash_record(void *arg, const struct bb_cache_rec *rec, int outcome, uint64_t kept)
{
    struct crash_ctx *x = arg;
    int64_t io_id = tags_get(x->d, rec->tag);
    if (x->crash_id > 0 && io_id > 0) {
        trace_crash_write(x->d->bb->trace, x->crash_id, io_id,
                          outcome == BB_OUTCOME_LOST   ? TRACE_CRASH_LOST
                          : outcome == BB_OUTCOME_TORN ? TRACE_CRASH_TORN
                                                       : TRACE_CRASH_KEPT,
                          kept);
    }
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
                record_io(d, r, TRACE_NO_TIME);
            } else if (!r->executed) {
                r->error = -ESHUTDOWN;
                record_io(d, r, TRACE_NO_TIME);
            }
        }
    }
    for (struct bb_conn *c = d->conns, *next; c; c = next) {
        next = c->next;
        if (c->mem) {
            /* owned by its creator (tests, fuzzing): end it, keep the struct */
            conn_fail(c);
            while (c->reqs) {
                req_free(c->reqs);
            }
        } else {
            bb_conn_destroy(c);
        }
    }
    d->stalled = false;
    struct crash_ctx x = {.d = d};
    if (d->bb->trace && d->trace_id > 0) {
        x.crash_id = trace_crash(d->bb->trace, d->trace_id, now, bb_crash_policy_name(policy));
    }
    int e = bb_cache_crash(d->cache, policy, crash_rand, &d->crash_rng, crash_record, &x, report);
    sync_submit(d, NULL);
    free(d->tags); /* the cache is empty now */
    d->tags = NULL;
    d->tags_cap = d->tags_len = 0;
    d->st.crashes++;
    d->st.crash_kept += report->writes_kept;
    d->st.crash_lost += report->writes_lost;
    d->st.crash_torn += report->writes_torn;
    return e;
}

int bb_disk_flush(struct bb_disk *d)
{
    int e = d->top->ops->flush(d->top);
    sync_submit(d, NULL);
    return e;
}

void bb_disk_get_stats(const struct bb_disk *d, struct bb_disk_stats *out)
{
    *out = d->st;
    uint64_t destaged;
    bb_cache_counts(d->cache, &out->cached_writes, &out->cached_bytes, &destaged);
    out->destaged_writes = destaged;
    out->allocated_bytes = bb_capacity_allocated(d->top);
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

/* ------------------------------------------------------------------ */
/* Backend                                                             */
/* ------------------------------------------------------------------ */

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
    bb->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (bb->efd < 0) {
        fl_error_setf_errno(errp, errno, "blkback: eventfd");
        free(bb);
        return NULL;
    }
    int e = fl_loop_add_fd(loop, bb->efd, EPOLLIN, sync_efd_cb, bb);
    if (e < 0) {
        fl_error_setf_errno(errp, -e, "blkback: watching the sync eventfd");
        close(bb->efd);
        free(bb);
        return NULL;
    }
    pthread_mutex_init(&bb->mu, NULL);
    pthread_cond_init(&bb->cv, NULL);
    pthread_cond_init(&bb->done_cv, NULL);
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
    pthread_mutex_lock(&bb->mu);
    bb->stop = true;
    pthread_cond_signal(&bb->cv);
    pthread_mutex_unlock(&bb->mu);
    if (bb->worker_started) {
        pthread_join(bb->worker, NULL);
    }
    sync_reap(bb);
    fl_loop_del_fd(bb->loop, bb->efd);
    close(bb->efd);
    pthread_mutex_destroy(&bb->mu);
    pthread_cond_destroy(&bb->cv);
    pthread_cond_destroy(&bb->done_cv);
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
