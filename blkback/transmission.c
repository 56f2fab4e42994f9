/*
 * NBD transmission: requests from the header to the reply.
 *
 * Life of a request:
 *
 *   bytes ─▶ parse header (+ payload) ─▶ validate ─▶ bad: error reply now
 *                                           │ good
 *                                           ▼
 *                  bb_fault_decide() (fault layer): complete_ns, errno, corruption
 *                                           │
 *                      disk stalled? ──yes──▶ stall queue (in arrival order)
 *                                           │ no
 *                                           ▼
 *               execute on the layer stack (fault ▸ capacity ▸ cache ▸ file)
 *                                           │
 *                     complete_ns > now? ──yes──▶ fl_timer ─▶ reply
 *                                           │ no
 *                                           ▼
 *                                  reply + trace record (record.c)
 *
 * FLUSH and FUA replies also wait for the fdatasync the stack owes
 * (sync.c).  Each NBD command is described once, in cmds[] below.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "blkback/internal.h"
#include "trace/trace.h"

/* The commands faultline serves (CACHE and BLOCK_STATUS are not
 * advertised); anything else gets cmd_unknown, answered EINVAL and
 * recorded as before (op write_zeroes). */
static const struct nbd_cmd cmds[] = {
    {NBD_CMD_READ, IMPAIR_IO_READ, TRACE_IO_READ, false, 0},
    {NBD_CMD_WRITE, IMPAIR_IO_WRITE, TRACE_IO_WRITE, true, 0},
    {NBD_CMD_FLUSH, IMPAIR_IO_FLUSH, TRACE_IO_FLUSH, false, 0},
    {NBD_CMD_TRIM, IMPAIR_IO_TRIM, TRACE_IO_TRIM, true, 0},
    {NBD_CMD_WRITE_ZEROES, IMPAIR_IO_WRITE_ZEROES, TRACE_IO_WRITE_ZEROES, true,
     NBD_CMD_FLAG_NO_HOLE},
};
static const struct nbd_cmd cmd_unknown = {0xffff, IMPAIR_IO_WRITE_ZEROES, TRACE_IO_WRITE_ZEROES,
                                           false, 0};

static const struct nbd_cmd *cmd_of(uint16_t type)
{
    for (size_t i = 0; i < FL_ARRAY_LEN(cmds); i++) {
        if (cmds[i].type == type) {
            return &cmds[i];
        }
    }
    return &cmd_unknown;
}

/* Maps an errno to the NBD error value sent on the wire. */
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

uint16_t bb_tx_flags(const struct bb_conn *c)
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

/* Request data held past its arrival (a stalled write's payload, a read's
 * data waiting for its latency) counts against the global buffer limit. */
static uint8_t *req_hold(struct bb_req *r, size_t n)
{
    r->data = fl_xmalloc(n ? n : 1);
    r->held = n;
    bb_account(r->conn, (int64_t)n);
    return r->data;
}

static void req_drop_data(struct bb_req *r)
{
    free(r->data);
    r->data = NULL;
    if (r->held) {
        bb_account(r->conn, -(int64_t)r->held);
        r->held = 0;
    }
}

void bb_req_free(struct bb_req *r)
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
    req_drop_data(r);
    free(r);
}

/* The header of a successful read's reply, simple or structured (the
 * data follows it). */
static size_t read_header_len(const struct bb_conn *c)
{
    return c->structured ? 28 : 16;
}

static void put_read_header(const struct bb_conn *c, uint8_t *p, const struct bb_req *r)
{
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
}

static void send_reply(struct bb_conn *c, struct bb_req *r)
{
    uint32_t err = bb_nbd_errno(r->error);
    if (r->type == NBD_CMD_READ && err == 0) {
        size_t hdr = read_header_len(c);
        uint8_t *p = bb_out_reserve(c, hdr + (size_t)r->len);
        put_read_header(c, p, r);
        if (r->len) {
            memcpy(p + hdr, r->data, r->len);
        }
        return;
    }
    if (c->structured && r->type == NBD_CMD_READ) {
        const char *msg = strerror(-r->error);
        size_t ml = strlen(msg);
        uint8_t *p = bb_out_reserve(c, 20 + 6 + ml);
        put32(p, NBD_STRUCT_MAGIC);
        put16(p + 4, NBD_REPLY_FLAG_DONE);
        put16(p + 6, NBD_REPLY_TYPE_ERROR);
        put64(p + 8, r->handle);
        put32(p + 16, (uint32_t)(6 + ml));
        put32(p + 20, err);
        put16(p + 24, (uint16_t)ml);
        memcpy(p + 26, msg, ml);
        return;
    }
    uint8_t *p = bb_out_reserve(c, 16);
    put32(p, NBD_SIMPLE_MAGIC);
    put32(p + 4, err);
    put64(p + 8, r->handle);
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
void bb_req_complete(struct bb_req *r)
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
    bb_record_io(d, r, now);
    bb_req_free(r);
}

static void req_timer_cb(struct fl_loop *loop, struct fl_timer *t, void *arg)
{
    struct bb_req *r = arg;
    struct bb_conn *c = r->conn;
    bb_req_complete(r);
    bb_conn_flush_out(c);
    bb_conn_reap(c);
}

void bb_req_execute(struct bb_req *r)
{
    struct bb_disk *d = r->conn->disk;
    r->executed = true;
    if (r->dec.error) {
        r->fault = TRACE_IO_FAULT_ERROR;
    } else if (r->dec.complete_ns > r->submit_ns) {
        r->fault = TRACE_IO_FAULT_LATENCY;
    }
    unsigned fua = (r->flags & NBD_CMD_FLAG_FUA) ? BB_F_FUA : 0;
    struct bb_layer *top = d->top;
    struct bb_io io = {.tag = r->tag, .dec = &r->dec};
    int e = 0;
    switch (r->type) {
    case NBD_CMD_READ:
        req_drop_data(r);
        e = top->ops->pread(top, req_hold(r, r->len), r->len, r->off, &io);
        if (e < 0) {
            req_drop_data(r);
        }
        break;
    case NBD_CMD_WRITE:
        e = top->ops->pwrite(top, r->data ? r->data : r->payload, r->len, r->off, fua, &io);
        req_drop_data(r);
        r->payload = NULL;
        break;
    case NBD_CMD_FLUSH:
        e = top->ops->flush(top, &io);
        break;
    case NBD_CMD_TRIM:
        e = top->ops->zero(top, r->len, r->off, fua | BB_F_MAY_TRIM, &io);
        break;
    case NBD_CMD_WRITE_ZEROES:
        e = top->ops->zero(top, r->len, r->off,
                           fua | ((r->flags & NBD_CMD_FLAG_NO_HOLE) ? 0 : BB_F_MAY_TRIM), &io);
        break;
    default:
        e = -EINVAL;
        break;
    }
    if (e == -ENOSPC && !r->dec.error) {
        r->fault = TRACE_IO_FAULT_FULL;
        d->st.errors_enospc++;
    }
    r->error = e;
    if (e == 0) {
        bb_sync_submit(d, r); /* FLUSH / FUA: the reply waits for fdatasync */
    }
}

/* After execution: reply now or when the decided latency has passed. */
void bb_req_schedule(struct bb_req *r)
{
    struct bb_disk *d = r->conn->disk;
    if (r->job) {
        return; /* sync_reap() schedules it */
    }
    int64_t now = fl_loop_now(d->bb->loop);
    if (r->dec.complete_ns <= now) {
        bb_req_complete(r);
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
    r->cmd = cmd_of(r->type);
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
    if (r->cmd == &cmd_unknown) {
        return -EINVAL; /* unknown, or not advertised (CACHE, BLOCK_STATUS) */
    }
    uint16_t allowed = NBD_CMD_FLAG_FUA | r->cmd->flags_allowed;
    if (r->type == NBD_CMD_READ && c->structured) {
        allowed |= NBD_CMD_FLAG_DF;
    }
    if (r->flags & ~allowed) {
        return -EINVAL;
    }
    bool writes = r->cmd->writes;
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
    req_drop_data(r);
    /* invalid requests are answered at once, never stalled */
    bool stalled = c->disk->stalled;
    c->disk->stalled = false;
    bb_req_complete(r);
    c->disk->stalled = stalled;
}

/* The common read: no latency, no stall: read straight into the output
 * buffer behind the reply header (no copy).  0, or the -errno of a failed
 * read (nothing output; the caller replies with it). */
static int read_direct(struct bb_conn *c, struct bb_req *r)
{
    struct bb_disk *d = c->disk;
    size_t hdr = read_header_len(c);
    size_t mark = c->out_end;
    uint8_t *p = bb_out_reserve(c, hdr + r->len);
    struct bb_layer *top = d->top;
    struct bb_io io = {.tag = r->tag, .dec = &r->dec};
    int e = top->ops->pread(top, p + hdr, r->len, r->off, &io);
    if (e < 0) {
        bb_out_unreserve(c, mark);
        return e;
    }
    r->executed = true;
    put_read_header(c, p, r);
    d->st.reads++;
    d->st.bytes_read += r->len;
    bb_record_io(d, r, fl_loop_now(d->bb->loop));
    bb_req_free(r);
    return 0;
}

static void req_start(struct bb_conn *c, struct bb_req *r)
{
    struct bb_disk *d = c->disk;
    int e = req_validate(c, r);
    if (e) {
        req_reject(c, r, e);
        return;
    }
    int de = bb_fault_decide(d->fault, r->submit_ns, r->cmd->io, r->off, r->len, &r->dec);
    if (de < 0) {
        FL_LOG_RL(&d->rl, FL_LOG_ERROR, ROOM,
                  "%s:%s: internal error: impair_disk_decide: %s; the request runs without "
                  "faults",
                  d->node, d->name, strerror(-de));
    }
    if (d->stalled) {
        if (r->payload) { /* the input buffer moves on: keep a copy */
            memcpy(req_hold(r, r->len), r->payload, r->len);
            r->payload = NULL;
        }
        stall_push(d, r);
        return;
    }
    if (r->type == NBD_CMD_READ && !r->dec.error && r->dec.complete_ns <= r->submit_ns) {
        int re = read_direct(c, r);
        if (re < 0) { /* the host failed the read: reply with its error */
            r->executed = true;
            r->error = re;
            bb_req_schedule(r);
        }
        return;
    }
    bb_req_execute(r);
    r->payload = NULL;
    bb_req_schedule(r);
}

/* Consumes one request from the buffered input; false when more input is
 * needed or the connection ended (DISC, a bad magic). */
bool bb_tx_step(struct bb_conn *c)
{
    size_t avail = c->in_end - c->in_start;
    const uint8_t *p = c->in + c->in_start;
    switch (c->state) {
    case CS_REQ_HDR: {
        if (avail < REQ_HDR_LEN) {
            return false;
        }
        if (be32(p) != NBD_REQUEST_MAGIC) {
            bb_conn_protocol_error(c, "bad request magic");
            return false;
        }
        uint16_t type = be16(p + 6);
        uint32_t len = be32(p + 24);
        if (type == NBD_CMD_DISC) {
            c->in_start += REQ_HDR_LEN;
            c->disc = true;
            return false;
        }
        if (type == NBD_CMD_WRITE) {
            if (len > BB_MAX_PAYLOAD) {
                /* cannot buffer it: discard the payload, then answer */
                memcpy(c->req_hdr, p, REQ_HDR_LEN);
                c->in_start += REQ_HDR_LEN;
                c->skip_left = len;
                c->state = CS_SKIP;
                return true;
            }
            if (avail < REQ_HDR_LEN + (size_t)len) {
                c->state = CS_WRITE_DATA;
                return false;
            }
        }
        struct bb_req *r = req_new(c, p);
        if (type == NBD_CMD_WRITE && len) {
            r->payload = p + REQ_HDR_LEN; /* valid until req_start returns */
        }
        c->in_start += REQ_HDR_LEN + (type == NBD_CMD_WRITE ? (size_t)len : 0);
        c->state = CS_REQ_HDR;
        req_start(c, r);
        return true;
    }
    case CS_WRITE_DATA:
        if (avail < REQ_HDR_LEN + (size_t)be32(p + 24)) {
            return false;
        }
        c->state = CS_REQ_HDR;
        return true;
    case CS_SKIP: {
        size_t n = (size_t)FL_MIN((uint64_t)avail, c->skip_left);
        c->in_start += n;
        c->skip_left -= n;
        if (c->skip_left > 0) {
            return false;
        }
        struct bb_req *r = req_new(c, c->req_hdr);
        c->state = CS_REQ_HDR;
        req_reject(c, r, -EOVERFLOW);
        return true;
    }
    default:
        return false;
    }
}

size_t bb_tx_need(const struct bb_conn *c)
{
    if (c->state == CS_WRITE_DATA) {
        return REQ_HDR_LEN + be32(c->in + c->in_start + 24);
    }
    return 0;
}
