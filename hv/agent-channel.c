/*
 * The agent channel of a node: fl-agent in the guest, over a
 * virtio-serial port whose host side is a socketpair (fd 4 in QEMU).
 * Frames are proto.h's (header + payload); this file owns both
 * directions and the requests waiting for answers.
 *
 *   out: hv_agent_send_exec / PING / CLOCK frames, queued in ag_out and
 *        flushed as the socket takes them (EPOLLOUT while backed up)
 *   in:  frames reassembled in ag_in; HELLO -> hv_node_agent_hello;
 *        PONG / EXEC_RESULT / CLOCK_RESULT / ERROR -> the request with
 *        that id (answers of an earlier boot's session are ignored)
 *   requests: one timer each (ETIMEDOUT); failed all at once when the
 *        guest resets, reboots or breaks the protocol
 *
 * A guest that breaks the protocol is not listened to again until it
 * boots anew (agent_violation): the guest is untrusted.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "hv/node.h"

void hv_req_unlink(struct hv_node *n, struct hv_req *r)
{
    for (struct hv_req **pp = &n->reqs; *pp; pp = &(*pp)->next) {
        if (*pp == r) {
            *pp = r->next;
            break;
        }
    }
    fl_timer_destroy(r->timer);
    r->timer = NULL;
}

/* Completes an unlinked request with an error (callbacks of user
 * requests) and frees it. */
static void req_complete_err(struct hv_node *n, struct hv_req *r, int code, const char *msg)
{
    struct fl_error *err = NULL;
    fl_error_setf(&err, code, "node %s: %s", n->cfg.name, msg);
    if (r->kind == HV_REQ_EXEC && r->exec_cb) {
        r->exec_cb(n, NULL, err, r->arg);
    } else if ((r->kind == HV_REQ_PING || r->kind == HV_REQ_CLOCK) && r->done_cb) {
        r->done_cb(n, err, r->arg);
    }
    fl_error_free(err);
    bool poweroff = r->kind == HV_REQ_POWEROFF;
    free(r);
    if (poweroff && !n->destroyed) {
        hv_node_poweroff_done(n); /* no answer from the agent: quit anyway */
    }
}

static void req_fail(struct hv_node *n, struct hv_req *r, int code, const char *msg)
{
    hv_req_unlink(n, r);
    req_complete_err(n, r, code, msg);
}

void hv_req_fail_all(struct hv_node *n, int code, const char *msg)
{
    hv_node_ref(n);
    while (n->reqs && !n->destroyed) {
        req_fail(n, n->reqs, code, msg);
    }
    hv_node_unref(n);
}

static void on_req_timer(struct fl_loop *loop, struct fl_timer *t, void *arg)
{
    struct hv_req *r = arg;
    struct hv_node *n = r->node;
    hv_node_ref(n);
    req_fail(n, r, ETIMEDOUT,
             n->state == HV_NODE_PAUSED ? "the guest agent did not answer in time (node paused)"
                                        : "the guest agent did not answer in time");
    hv_node_unref(n);
}

struct hv_req *hv_req_new(struct hv_node *n, enum hv_req_kind kind, int64_t timeout_ns)
{
    struct hv_req *r = fl_xcalloc(1, sizeof *r);
    r->node = n;
    r->kind = kind;
    r->id = ++n->next_id ? n->next_id : ++n->next_id;
    r->start_ns = fl_loop_now(n->loop);
    r->timer = fl_timer_create(n->loop, on_req_timer, r);
    fl_timer_arm_in(r->timer, timeout_ns);
    r->next = n->reqs;
    n->reqs = r;
    return r;
}

static struct hv_req *find_req(struct hv_node *n, uint32_t id)
{
    for (struct hv_req *r = n->reqs; r; r = r->next) {
        if (r->id == id) {
            return r;
        }
    }
    return NULL;
}

static void agent_flush(struct hv_node *n)
{
    while (n->ag_out_sent < n->ag_out.size) {
        ssize_t w = send(n->agent_fd, n->ag_out.p + n->ag_out_sent, n->ag_out.size - n->ag_out_sent,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN) {
                fl_loop_mod_fd(n->loop, n->agent_fd, EPOLLIN | EPOLLOUT);
            }
            return;
        }
        n->ag_out_sent += (size_t)w;
    }
    n->ag_out.size = n->ag_out_sent = 0;
    fl_loop_mod_fd(n->loop, n->agent_fd, EPOLLIN);
}

void hv_agent_send(struct hv_node *n)
{
    if (n->agent_fd >= 0) {
        agent_flush(n);
    }
}

void hv_agent_send_exec(struct hv_node *n, struct hv_req *r, const char *cmd, int64_t timeout_ns)
{
    size_t s = fl_agent_wr_begin(&n->ag_out, FL_AGENT_EXEC, r->id, n->session);
    uint64_t ms = timeout_ns > 0 ? (uint64_t)(timeout_ns + FL_NS_PER_MS - 1) / FL_NS_PER_MS : 0;
    fl_agent_wr_u32(&n->ag_out, ms > UINT32_MAX ? UINT32_MAX : (uint32_t)ms);
    fl_agent_wr_u32(&n->ag_out, (uint32_t)n->cfg.n_env);
    for (size_t i = 0; i < n->cfg.n_env; i++) {
        fl_agent_wr_bytes(&n->ag_out, n->cfg.env[i], (uint32_t)strlen(n->cfg.env[i]));
    }
    fl_agent_wr_bytes(&n->ag_out, cmd, (uint32_t)strlen(cmd));
    fl_agent_wr_finish(&n->ag_out, s);
    hv_agent_send(n);
}

static void agent_violation(struct hv_node *n, const char *what)
{
    /* The guest broke the protocol: stop listening to it. */
    n->ag_dead = true;
    if (n->agent_fd >= 0) {
        fl_loop_del_fd(n->loop, n->agent_fd);
    }
    n->ag_in_size = 0;
    hv_node_fail(n, EPROTO, "guest agent protocol violation (%s); agent disconnected", what);
    hv_req_fail_all(n, EPROTO, "guest agent disconnected");
}

static char *dup_bytes(const uint8_t *p, uint32_t n)
{
    char *s = fl_xmalloc((size_t)n + 1);
    if (n) {
        memcpy(s, p, n);
    }
    s[n] = '\0';
    return s;
}

static bool agent_frame(struct hv_node *n, const struct fl_agent_header *h, const uint8_t *pl)
{
    struct fl_agent_rd rd = {.p = pl, .left = h->len};
    if (h->type == FL_AGENT_HELLO) {
        uint32_t version = fl_agent_rd_u32(&rd);
        uint32_t session = fl_agent_rd_u32(&rd);
        if (!fl_agent_rd_done(&rd) || version != FL_AGENT_VERSION || session != h->session) {
            agent_violation(n, "bad HELLO (version or session)");
            return false;
        }
        hv_node_agent_hello(n, session);
        return true;
    }
    if (h->type != FL_AGENT_PONG && h->type != FL_AGENT_EXEC_RESULT &&
        h->type != FL_AGENT_CLOCK_RESULT && h->type != FL_AGENT_ERROR) {
        agent_violation(n, "unexpected message type from the guest");
        return false;
    }
    if (h->session != n->session) {
        return true; /* an answer from an earlier boot */
    }
    struct hv_req *r = find_req(n, h->id);
    if (!r) {
        fl_log(FL_LOG_DEBUG, "hv", "node %s: late agent answer %u ignored", n->cfg.name, h->id);
        return true;
    }
    int64_t now = fl_loop_now(n->loop);
    if (h->type == FL_AGENT_ERROR) {
        uint32_t code = fl_agent_rd_u32(&rd);
        uint32_t sz;
        const uint8_t *m = fl_agent_rd_bytes(&rd, 4096, &sz);
        if (!m || !fl_agent_rd_done(&rd)) {
            agent_violation(n, "malformed ERROR");
            return false;
        }
        char *msg = dup_bytes(m, sz);
        for (char *c = msg; *c; c++) {
            *c = (unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e ? '?' : *c;
        }
        char *full = fl_xasprintf("the guest agent refused: %s", msg);
        enum hv_req_kind kind = r->kind;
        req_fail(n, r, code > 0 && code < 4096 ? (int)code : EIO, full);
        if (kind == HV_REQ_SETUP && !n->destroyed) {
            hv_node_fail(n, EIO, "node setup: %s", full);
        }
        free(msg);
        free(full);
        return !n->destroyed;
    }
    hv_req_unlink(n, r);
    bool ok = true;
    if (h->type == FL_AGENT_PONG && r->kind == HV_REQ_PING) {
        if (!fl_agent_rd_done(&rd)) {
            ok = false;
        } else if (r->done_cb) {
            r->done_cb(n, NULL, r->arg);
        }
    } else if (h->type == FL_AGENT_CLOCK_RESULT && r->kind == HV_REQ_CLOCK) {
        uint32_t code = fl_agent_rd_u32(&rd);
        int64_t t = fl_agent_rd_i64(&rd);
        (void)t;
        if (!fl_agent_rd_done(&rd)) {
            ok = false;
        } else if (r->done_cb) {
            struct fl_error *err = NULL;
            if (code) {
                fl_error_setf(&err, code < 4096 ? (int)code : EIO,
                              "node %s: the guest could not set its clock: %s", n->cfg.name,
                              strerror(code < 4096 ? (int)code : EIO));
            }
            r->done_cb(n, err, r->arg);
            fl_error_free(err);
        }
    } else if (h->type == FL_AGENT_EXEC_RESULT &&
               (r->kind == HV_REQ_EXEC || r->kind == HV_REQ_SETUP || r->kind == HV_REQ_POWEROFF)) {
        struct hv_exec_result res = {0};
        uint32_t code = fl_agent_rd_u32(&rd);
        uint32_t sig = fl_agent_rd_u32(&rd);
        uint32_t flags = fl_agent_rd_u32(&rd);
        uint32_t osz, esz;
        const uint8_t *o = fl_agent_rd_bytes(&rd, FL_AGENT_OUTPUT_MAX, &osz);
        const uint8_t *e = fl_agent_rd_bytes(&rd, FL_AGENT_OUTPUT_MAX, &esz);
        if (!o || !e || !fl_agent_rd_done(&rd) || sig > 64 || (code != UINT32_MAX && code > 255) ||
            (flags & ~7u)) {
            ok = false;
        } else {
            res.exit_code = code == UINT32_MAX ? -1 : (int)code;
            res.signal = (int)sig;
            res.timed_out = flags & FL_AGENT_F_TIMED_OUT;
            res.out_truncated = flags & FL_AGENT_F_OUT_TRUNCATED;
            res.err_truncated = flags & FL_AGENT_F_ERR_TRUNCATED;
            res.out = dup_bytes(o, osz);
            res.out_size = osz;
            res.err = dup_bytes(e, esz);
            res.err_size = esz;
            res.duration_ns = now - r->start_ns;
            if (r->kind == HV_REQ_EXEC) {
                if (r->exec_cb) {
                    r->exec_cb(n, &res, NULL, r->arg);
                }
            } else if (r->kind == HV_REQ_SETUP) {
                hv_node_setup_done(n, &res);
            } else {
                hv_node_poweroff_done(n);
            }
            hv_exec_result_clear(&res);
        }
    } else {
        ok = false;
    }
    if (ok) {
        free(r);
    } else {
        hv_node_ref(n);
        agent_violation(n, "malformed or mismatched answer");
        if (!n->destroyed) {
            req_complete_err(n, r, EPROTO, "guest agent protocol violation");
        } else {
            free(r);
        }
        hv_node_unref(n);
    }
    return ok && !n->destroyed;
}

void hv_agent_on_readable(struct fl_loop *loop, int fd, uint32_t events, void *arg)
{
    struct hv_node *n = arg;
    if (events & EPOLLOUT) {
        agent_flush(n);
    }
    if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR)) || n->ag_dead) {
        return;
    }
    const size_t cap = FL_AGENT_HEADER_SIZE + FL_AGENT_PAYLOAD_MAX;
    if (!n->ag_in) {
        n->ag_in = fl_xmalloc(cap);
    }
    ssize_t r = recv(fd, n->ag_in + n->ag_in_size, cap - n->ag_in_size, MSG_DONTWAIT);
    if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
        return;
    }
    if (r <= 0) {
        fl_loop_del_fd(loop, fd);
        close(fd);
        n->agent_fd = -1;
        return;
    }
    n->ag_in_size += (size_t)r;
    hv_node_ref(n);
    size_t off = 0;
    while (!n->destroyed && !n->ag_dead && n->ag_in_size - off >= FL_AGENT_HEADER_SIZE) {
        struct fl_agent_header h;
        int e = fl_agent_header_parse(n->ag_in + off, &h);
        if (e < 0) {
            agent_violation(n, e == -EMSGSIZE ? "frame too large" : "bad frame header");
            break;
        }
        if (n->ag_in_size - off < FL_AGENT_HEADER_SIZE + (size_t)h.len) {
            break;
        }
        const uint8_t *payload = n->ag_in + off + FL_AGENT_HEADER_SIZE;
        off += FL_AGENT_HEADER_SIZE + (size_t)h.len;
        if (!agent_frame(n, &h, payload)) {
            break;
        }
    }
    if (!n->destroyed) {
        if (n->ag_dead) {
            n->ag_in_size = 0;
        } else {
            memmove(n->ag_in, n->ag_in + off, n->ag_in_size - off);
            n->ag_in_size -= off;
        }
    }
    hv_node_unref(n);
}

void hv_agent_reset(struct hv_node *n)
{
    n->ag_in_size = 0;
    n->ag_out.size = n->ag_out_sent = 0;
    n->ag_hello = false;
    n->ag_dead = false;
}
