/*
 * blkback internal: the server's objects and how its files share them.
 *
 *   disk.c          backend and disks: setup, the control API (faults,
 *                   capacity, stall, crash, flush, stats), host errors
 *   listen.c        the unix socket: bind 0600, accept, back off on EMFILE
 *   conn.c          one client connection: input and output buffers, epoll
 *                   interest, backpressure (per connection and global),
 *                   feeding the handshake or transmission parser
 *   handshake.c     fixed newstyle negotiation (greeting, options, GO)
 *   transmission.c  requests: parse, validate, decide, execute on the layer
 *                   stack, hold until the decided completion, reply
 *   sync.c          the fdatasync worker thread FLUSH/FUA replies wait for
 *   tags.c          request tag -> trace I/O id for cached writes
 *   record.c        trace records: I/O and crash outcomes
 *   fault.c, capacity.c, cache.c, file.c: the layer stack (layer-provider.h)
 *
 * Everything runs on the loop's thread except sync.c's worker, which
 * touches only struct sync_job and the fields of struct blkback marked
 * "under mu".
 */
#ifndef FL_BLKBACK_INTERNAL_H
#define FL_BLKBACK_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "blkback/blkback.h"
#include "blkback/nbd.h"
#include "blkback/layer-provider.h"
#include "core/core.h"
#include "impair/impair.h"

#define ROOM         "blkback"
#define READ_CHUNK   (256u << 10)
#define OUT_HIGH     (64u << 20) /* stop reading a client that does not read replies */
#define REQ_HDR_LEN  28u
#define MAX_INFLIGHT 512u /* requests per connection before input is left unread */

struct bb_req;
struct bb_disk;
struct bb_conn;

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
    bb_host_error_cb *on_host_error;
    void *on_host_error_arg;
    /* global bound on bytes held for clients (conn.c) */
    uint64_t buffered, buffer_limit;
    bool over_limit;          /* connections stopped reading because of it */
    struct fl_timer *wake;    /* resumes them once under the bound again */
    uint64_t backpressure_on; /* times the bound was reached */
    /* sync worker (sync.c) */
    pthread_mutex_t mu;
    pthread_cond_t cv;                          /* worker: jobs queued or stop (under mu) */
    pthread_cond_t done_cv;                     /* loop: a job finished */
    struct sync_job *queue, *queue_tail, *done; /* under mu */
    bool worker_started, stop;                  /* under mu */
    pthread_t worker;
    int efd;
};

struct tag_slot {
    uint64_t tag;
    int64_t io_id;
};

struct bb_disk {
    struct blkback *bb;
    struct bb_disk *next;
    char *node, *name, *export_name, *socket_path;
    int listen_fd;
    bool accept_paused; /* listen.c: out of descriptors, listener off */
    struct fl_timer *accept_retry;
    uint64_t size;
    bool read_only;
    enum bb_crash_policy policy;
    /* the layer stack, top first: fault ▸ capacity ▸ cache ▸ file; the
     * server reads and writes through `top` only */
    struct bb_layer *top, *fault, *cap, *cache, *file;
    struct impair_rng crash_rng;
    struct bb_disk_stats st;
    struct bb_conn *conns;
    bool stalled;
    struct bb_req *stall_head, *stall_tail;
    uint64_t serial;
    int64_t trace_id;
    struct fl_ratelimit rl;
    /* an fdatasync the file layer owes (its sync hook, disk.c); sync.c
     * hands it to the worker after the request that caused it */
    bool sync_owed;
    int sync_fd;
    char *sync_map;
    uint64_t sync_inflight; /* jobs queued or running (under bb->mu) */
    int host_logged[8];     /* host errnos logged so far (each once) */
    int n_host_logged;
    /* trace ids of acknowledged, unflushed writes by request tag, so a
     * crash can point at their I/O records (tags.c) */
    struct tag_slot *tags;
    size_t tags_cap, tags_len;
};

enum conn_state {
    CS_CLIENT_FLAGS, /* handshake.c */
    CS_OPT_HDR,
    CS_OPT_DATA,
    CS_REQ_HDR, /* transmission.c */
    CS_WRITE_DATA,
    CS_SKIP,
    CS_CLOSED,
};

/* What the server knows about each NBD command, in one place. */
struct nbd_cmd {
    uint16_t type;
    enum impair_io_op io;   /* impair's op for the fault decision */
    uint8_t trace_op;       /* TRACE_IO_* */
    bool writes;            /* changes data: EPERM on read-only disks */
    uint16_t flags_allowed; /* besides FUA */
};

struct bb_req {
    struct bb_conn *conn;
    struct bb_req *cprev, *cnext; /* conn's outstanding requests */
    struct bb_req *snext;         /* disk stall queue */
    const struct nbd_cmd *cmd;    /* never NULL (unknown commands have an entry) */
    bool in_stall;
    bool executed;
    uint16_t type, flags;
    uint64_t handle, off;
    uint32_t len;
    uint64_t tag;
    int64_t submit_ns;
    int error; /* 0 or -errno */
    uint8_t fault;
    struct impair_io_decision dec;
    uint8_t *data; /* WRITE payload before execution; READ result after */
    size_t held;   /* bytes of data counted against the global bound */
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
    uint8_t *in;
    size_t in_start, in_end, in_alloc;
    uint8_t *out;
    size_t out_start, out_end, out_alloc;
    struct bb_req *reqs;
    uint64_t n_reqs;
    uint64_t held; /* this connection's share of bb->buffered */
    bool dead;
    bool mem;        /* created by bb_conn_create_mem(): freed by its creator only */
    uint32_t events; /* registered epoll events */
};

/* conn.c */
uint8_t *bb_out_reserve(struct bb_conn *c, size_t n);
void bb_out_unreserve(struct bb_conn *c, size_t mark); /* back to out_end == mark */
bool bb_conn_can_take(const struct bb_conn *c);
void bb_conn_flush_out(struct bb_conn *c);
void bb_conn_fail(struct bb_conn *c);
void bb_conn_reap(struct bb_conn *c); /* destroys a dead socket connection */
void bb_conn_protocol_error(struct bb_conn *c, const char *what);
/* Counts bytes held for clients against the global bound (delta may be
 * negative). */
void bb_account(struct bb_conn *c, int64_t delta);
/* bb->wake's callback: resumes connections once under the bound. */
void bb_wake_cb(struct fl_loop *loop, struct fl_timer *t, void *arg);

/* handshake.c: false when more input is needed or the connection ended */
void bb_handshake_greet(struct bb_conn *c);
bool bb_handshake_step(struct bb_conn *c);

/* transmission.c */
bool bb_tx_step(struct bb_conn *c);
size_t bb_tx_need(const struct bb_conn *c); /* bytes the parser waits for */
uint16_t bb_tx_flags(const struct bb_conn *c);
void bb_req_free(struct bb_req *r);
void bb_req_complete(struct bb_req *r);
void bb_req_execute(struct bb_req *r);
void bb_req_schedule(struct bb_req *r);

/* sync.c */
bool bb_sync_init(struct blkback *bb, struct fl_error **errp);
void bb_sync_fini(struct blkback *bb);
void bb_sync_submit(struct bb_disk *d, struct bb_req *r);
void bb_sync_drain(struct bb_disk *d);

/* tags.c */
void bb_tags_put(struct bb_disk *d, uint64_t tag, int64_t io_id);
int64_t bb_tags_get(const struct bb_disk *d, uint64_t tag);
void bb_tags_clear(struct bb_disk *d);

/* record.c */
void bb_record_io(struct bb_disk *d, struct bb_req *r, int64_t complete_ns);
void bb_record_crash(void *arg, const struct bb_cache_rec *rec, int outcome, uint64_t kept);
struct bb_crash_ctx {
    struct bb_disk *d;
    int64_t crash_id;
};

/* listen.c */
bool bb_listen(struct bb_disk *d, struct fl_error **errp);
void bb_unlisten(struct bb_disk *d);
void bb_listen_resume(struct bb_disk *d); /* a descriptor was freed */

/* disk.c */
void bb_host_error(void *arg, const char *path, const char *op, int err);

#endif /* FL_BLKBACK_INTERNAL_H */
