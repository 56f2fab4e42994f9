/* Unit tests for blkback's NBD server: handshake variants, request
 * validation, every fault kind through the control API, stalls, crashes,
 * and clients that vanish mid-request.  Runs on a manual clock: latency is
 * observed by advancing it, never by sleeping. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "blkback/blkback.h"
#include "blkback/nbd.h"
#include "core/core.h"
#include "impair/impair.h"
#include "trace/trace.h"

#define DISK_SIZE (1024u * 1024u)

struct env {
    char dir[64];
    struct fl_clock *clock;
    struct fl_loop *loop;
    struct blkback *bb;
    struct bb_disk *disk;
};

static struct env E;

static void env_disk(const struct bb_disk_config *extra)
{
    struct bb_disk_config dc = {
        .node = "n1",
        .name = "vda",
        .size = DISK_SIZE,
        .export_name = "vda",
        .no_sync = true,
        .crash_policy = BB_CRASH_LOSE_UNFLUSHED,
    };
    if (extra) {
        dc = *extra;
    }
    char *path = fl_xasprintf("%s/%s.img", E.dir, dc.name);
    dc.path = path;
    struct fl_error *err = NULL;
    E.disk = bb_disk_add(E.bb, &dc, &err);
    if (!E.disk) {
        fail_msg("%s", err->msg);
    }
    free(path);
}

static int setup(void **state)
{
    memset(&E, 0, sizeof(E));
    strcpy(E.dir, "/tmp/bb-nbd-XXXXXX");
    assert_non_null(mkdtemp(E.dir));
    E.clock = fl_clock_manual_create(FL_NS_PER_SEC);
    E.loop = fl_loop_create(E.clock, NULL);
    struct bb_config bc = {.seed = 42};
    E.bb = bb_create(E.loop, &bc, NULL);
    assert_non_null(E.bb);
    env_disk(NULL);
    return 0;
}

static int teardown(void **state)
{
    bb_destroy(E.bb);
    fl_loop_destroy(E.loop);
    fl_clock_destroy(E.clock);
    fl_rm_rf(E.dir);
    return 0;
}

/* --- wire helpers -------------------------------------------------------- */

/* put16/32/64 and be16/32/64 come from blkback/nbd.h */

struct out {
    uint8_t *data;
    size_t size, pos;
};

static void take(struct bb_conn *c, struct out *o)
{
    free(o->data);
    bb_conn_take_output(c, &o->data, &o->size);
    o->pos = 0;
}

static void out_free(struct out *o)
{
    free(o->data);
    memset(o, 0, sizeof(*o));
}

static bool feed_opt(struct bb_conn *c, uint32_t opt, const void *data, uint32_t len)
{
    uint8_t h[16];
    put64(h, NBD_OPT_MAGIC);
    put32(h + 8, opt);
    put32(h + 12, len);
    bool ok = bb_conn_feed(c, h, sizeof(h));
    return len ? bb_conn_feed(c, data, len) : ok;
}

/* Expects one option reply; returns its type and copies up to cap bytes
 * of data. */
static uint32_t opt_reply(struct out *o, uint32_t opt, uint8_t *data, size_t cap, uint32_t *len)
{
    assert_true(o->size - o->pos >= 20);
    const uint8_t *p = o->data + o->pos;
    assert_true(be64(p) == NBD_REP_MAGIC);
    assert_int_equal(be32(p + 8), opt);
    uint32_t type = be32(p + 12), l = be32(p + 16);
    assert_true(o->size - o->pos >= 20 + (size_t)l);
    if (data) {
        memcpy(data, p + 20, FL_MIN(cap, (size_t)l));
    }
    if (len) {
        *len = l;
    }
    o->pos += 20 + l;
    return type;
}

static struct bb_conn *handshake(uint32_t client_flags)
{
    struct bb_conn *c = bb_conn_create_mem(E.disk);
    struct out o = {0};
    take(c, &o);
    assert_int_equal(o.size, 18);
    assert_true(be64(o.data) == NBD_MAGIC);
    assert_true(be64(o.data + 8) == NBD_OPT_MAGIC);
    assert_int_equal(be16(o.data + 16), NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
    out_free(&o);
    uint8_t f[4];
    put32(f, client_flags);
    bb_conn_feed(c, f, 4);
    return c;
}

/* Fixed newstyle + (optionally structured replies) + GO on "vda". */
static struct bb_conn *connect_go(bool structured)
{
    struct bb_conn *c = handshake(NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES);
    struct out o = {0};
    if (structured) {
        assert_true(feed_opt(c, NBD_OPT_STRUCTURED_REPLY, NULL, 0));
        take(c, &o);
        assert_int_equal(opt_reply(&o, NBD_OPT_STRUCTURED_REPLY, NULL, 0, NULL), NBD_REP_ACK);
    }
    uint8_t go[4 + 3 + 2];
    put32(go, 3);
    memcpy(go + 4, "vda", 3);
    put16(go + 7, 0);
    assert_true(feed_opt(c, NBD_OPT_GO, go, sizeof(go)));
    take(c, &o);
    uint8_t info[12];
    assert_int_equal(opt_reply(&o, NBD_OPT_GO, info, sizeof(info), NULL), NBD_REP_INFO);
    assert_int_equal(be16(info), NBD_INFO_EXPORT);
    assert_true(be64(info + 2) == DISK_SIZE);
    uint16_t tf = be16(info + 10);
    assert_true(tf & NBD_FLAG_SEND_FLUSH);
    assert_true(tf & NBD_FLAG_SEND_FUA);
    assert_true(tf & NBD_FLAG_SEND_TRIM);
    assert_true(tf & NBD_FLAG_SEND_WRITE_ZEROES);
    assert_int_equal(opt_reply(&o, NBD_OPT_GO, NULL, 0, NULL), NBD_REP_ACK);
    assert_int_equal(o.pos, o.size);
    out_free(&o);
    return c;
}

static bool send_req(struct bb_conn *c, uint16_t type, uint16_t flags, uint64_t handle,
                     uint64_t off, uint32_t len, const void *payload)
{
    uint8_t h[28];
    put32(h, NBD_REQUEST_MAGIC);
    put16(h + 4, flags);
    put16(h + 6, type);
    put64(h + 8, handle);
    put64(h + 16, off);
    put32(h + 24, len);
    bool ok = bb_conn_feed(c, h, sizeof(h));
    if (payload && len) {
        ok = bb_conn_feed(c, payload, len);
    }
    return ok;
}

/* Expects one simple reply; returns the NBD error; data (read) copied. */
static uint32_t simple_reply(struct out *o, uint64_t handle, void *data, size_t len)
{
    assert_true(o->size - o->pos >= 16);
    const uint8_t *p = o->data + o->pos;
    assert_int_equal(be32(p), NBD_SIMPLE_MAGIC);
    assert_true(be64(p + 8) == handle);
    uint32_t err = be32(p + 4);
    o->pos += 16;
    if (err == 0 && data) {
        assert_true(o->size - o->pos >= len);
        memcpy(data, o->data + o->pos, len);
        o->pos += len;
    }
    return err;
}

static uint32_t do_req(struct bb_conn *c, uint16_t type, uint16_t flags, uint64_t off, uint32_t len,
                       const void *payload, void *rdata)
{
    static uint64_t handle = 100;
    handle++;
    send_req(c, type, flags, handle, off, len, payload);
    struct out o = {0};
    take(c, &o);
    uint32_t e = simple_reply(&o, handle, rdata, type == NBD_CMD_READ ? len : 0);
    assert_int_equal(o.pos, o.size);
    out_free(&o);
    return e;
}

/* --- handshake ----------------------------------------------------------- */

static void test_handshake_export_name(void **state)
{
    for (int nz = 0; nz < 2; nz++) {
        struct bb_conn *c = handshake(NBD_FLAG_C_FIXED_NEWSTYLE | (nz ? NBD_FLAG_C_NO_ZEROES : 0));
        assert_true(feed_opt(c, NBD_OPT_EXPORT_NAME, "", 0));
        struct out o = {0};
        take(c, &o);
        assert_int_equal(o.size, nz ? 10u : 134u);
        assert_true(be64(o.data) == DISK_SIZE);
        assert_true(be16(o.data + 8) & NBD_FLAG_HAS_FLAGS);
        out_free(&o);
        uint8_t buf[512];
        assert_int_equal(do_req(c, NBD_CMD_READ, 0, 0, 512, NULL, buf), 0);
        bb_conn_destroy(c);
    }
    /* a named export that does not exist: the session ends (no way to err) */
    struct bb_conn *c = handshake(NBD_FLAG_C_FIXED_NEWSTYLE);
    assert_false(feed_opt(c, NBD_OPT_EXPORT_NAME, "nope", 4));
    assert_true(bb_conn_closed(c));
    bb_conn_destroy(c);
}

static void test_handshake_options(void **state)
{
    struct bb_conn *c = handshake(NBD_FLAG_C_FIXED_NEWSTYLE);
    struct out o = {0};
    uint8_t buf[64];
    uint32_t len;
    /* LIST: one server entry, then ACK */
    assert_true(feed_opt(c, NBD_OPT_LIST, NULL, 0));
    take(c, &o);
    assert_int_equal(opt_reply(&o, NBD_OPT_LIST, buf, sizeof(buf), &len), NBD_REP_SERVER);
    assert_int_equal(len, 7);
    assert_int_equal(be32(buf), 3);
    assert_memory_equal(buf + 4, "vda", 3);
    assert_int_equal(opt_reply(&o, NBD_OPT_LIST, NULL, 0, NULL), NBD_REP_ACK);
    /* LIST with data: invalid */
    assert_true(feed_opt(c, NBD_OPT_LIST, "x", 1));
    take(c, &o);
    assert_int_equal(opt_reply(&o, NBD_OPT_LIST, NULL, 0, NULL), NBD_REP_ERR_INVALID);
    /* unknown option, STARTTLS */
    assert_true(feed_opt(c, 99, "abc", 3));
    take(c, &o);
    assert_int_equal(opt_reply(&o, 99, NULL, 0, NULL), NBD_REP_ERR_UNSUP);
    assert_true(feed_opt(c, NBD_OPT_STARTTLS, NULL, 0));
    take(c, &o);
    assert_int_equal(opt_reply(&o, NBD_OPT_STARTTLS, NULL, 0, NULL), NBD_REP_ERR_POLICY);
    /* meta context before structured replies: invalid */
    uint8_t mc[8] = {0};
    assert_true(feed_opt(c, NBD_OPT_SET_META_CONTEXT, mc, sizeof(mc)));
    take(c, &o);
    assert_int_equal(opt_reply(&o, NBD_OPT_SET_META_CONTEXT, NULL, 0, NULL), NBD_REP_ERR_INVALID);
    /* INFO on an unknown export, then malformed INFO lengths */
    uint8_t info[4 + 4 + 2];
    put32(info, 4);
    memcpy(info + 4, "nope", 4);
    put16(info + 8, 0);
    assert_true(feed_opt(c, NBD_OPT_INFO, info, sizeof(info)));
    take(c, &o);
    assert_int_equal(opt_reply(&o, NBD_OPT_INFO, NULL, 0, NULL), NBD_REP_ERR_UNKNOWN);
    put32(info, 200); /* name longer than the data */
    assert_true(feed_opt(c, NBD_OPT_INFO, info, sizeof(info)));
    take(c, &o);
    assert_int_equal(opt_reply(&o, NBD_OPT_INFO, NULL, 0, NULL), NBD_REP_ERR_INVALID);
    put32(info, 4);
    put16(info + 8, 5); /* 5 requests announced, none present */
    assert_true(feed_opt(c, NBD_OPT_INFO, info, sizeof(info)));
    take(c, &o);
    assert_int_equal(opt_reply(&o, NBD_OPT_INFO, NULL, 0, NULL), NBD_REP_ERR_INVALID);
    /* INFO with name, description and block size requests */
    uint8_t inf2[4 + 3 + 2 + 6];
    put32(inf2, 3);
    memcpy(inf2 + 4, "vda", 3);
    put16(inf2 + 7, 3);
    put16(inf2 + 9, NBD_INFO_NAME);
    put16(inf2 + 11, NBD_INFO_DESCRIPTION);
    put16(inf2 + 13, NBD_INFO_BLOCK_SIZE);
    assert_true(feed_opt(c, NBD_OPT_INFO, inf2, sizeof(inf2)));
    take(c, &o);
    int seen = 0;
    for (;;) {
        uint32_t t = opt_reply(&o, NBD_OPT_INFO, buf, sizeof(buf), &len);
        if (t == NBD_REP_ACK) {
            break;
        }
        assert_int_equal(t, NBD_REP_INFO);
        uint16_t it = be16(buf);
        if (it == NBD_INFO_BLOCK_SIZE) {
            assert_int_equal(len, 14);
            assert_int_equal(be32(buf + 2), 1);
            assert_int_equal(be32(buf + 10), BB_MAX_PAYLOAD);
        }
        if (it == NBD_INFO_NAME) {
            assert_memory_equal(buf + 2, "vda", 3);
        }
        seen |= 1 << it;
    }
    assert_int_equal(seen, 0xF);
    assert_false(bb_conn_closed(c)); /* INFO does not end the handshake */
    /* ABORT: ACK, then the connection ends */
    assert_false(feed_opt(c, NBD_OPT_ABORT, NULL, 0));
    take(c, &o);
    assert_int_equal(opt_reply(&o, NBD_OPT_ABORT, NULL, 0, NULL), NBD_REP_ACK);
    assert_true(bb_conn_closed(c));
    out_free(&o);
    bb_conn_destroy(c);
}

static void test_handshake_malformed(void **state)
{
    /* unknown client flags */
    struct bb_conn *c = handshake(0x80);
    assert_true(bb_conn_closed(c));
    bb_conn_destroy(c);
    /* bad option magic */
    c = handshake(NBD_FLAG_C_FIXED_NEWSTYLE);
    uint8_t h[16] = {0};
    assert_false(bb_conn_feed(c, h, sizeof(h)));
    bb_conn_destroy(c);
    /* oversized option */
    c = handshake(NBD_FLAG_C_FIXED_NEWSTYLE);
    put64(h, NBD_OPT_MAGIC);
    put32(h + 8, NBD_OPT_LIST);
    put32(h + 12, 0x7fffffff);
    assert_false(bb_conn_feed(c, h, sizeof(h)));
    bb_conn_destroy(c);
    /* byte-at-a-time input is fine */
    c = handshake(NBD_FLAG_C_FIXED_NEWSTYLE);
    put32(h + 12, 0);
    for (size_t i = 0; i < sizeof(h); i++) {
        assert_true(bb_conn_feed(c, h + i, 1));
    }
    struct out o = {0};
    take(c, &o);
    assert_int_equal(opt_reply(&o, NBD_OPT_LIST, NULL, 0, NULL), NBD_REP_SERVER);
    out_free(&o);
    bb_conn_destroy(c);
}

/* --- transmission -------------------------------------------------------- */

static void test_read_write_roundtrip(void **state)
{
    struct bb_conn *c = connect_go(false);
    uint8_t w[3000], r[3000];
    for (size_t i = 0; i < sizeof(w); i++) {
        w[i] = (uint8_t)(i * 31);
    }
    assert_int_equal(do_req(c, NBD_CMD_WRITE, 0, 1001, sizeof(w), w, NULL), 0);
    assert_int_equal(do_req(c, NBD_CMD_READ, 0, 1001, sizeof(r), NULL, r), 0);
    assert_memory_equal(w, r, sizeof(w));
    assert_int_equal(do_req(c, NBD_CMD_WRITE, NBD_CMD_FLAG_FUA, 8192, 512, w, NULL), 0);
    assert_int_equal(do_req(c, NBD_CMD_FLUSH, 0, 0, 0, NULL, NULL), 0);
    assert_int_equal(do_req(c, NBD_CMD_TRIM, 0, 1024, 1024, NULL, NULL), 0);
    assert_int_equal(do_req(c, NBD_CMD_WRITE_ZEROES, NBD_CMD_FLAG_NO_HOLE, 2048, 100, NULL, NULL),
                     0);
    assert_int_equal(do_req(c, NBD_CMD_READ, 0, 1001, sizeof(r), NULL, r), 0);
    for (size_t i = 1024 - 1001; i < 2148 - 1001; i++) {
        assert_int_equal(r[i], 0);
    }
    assert_int_equal(r[2148 - 1001], w[2148 - 1001]);
    /* several requests in one chunk: replies in order, all present */
    uint8_t batch[3 * 28];
    for (int i = 0; i < 3; i++) {
        uint8_t *h = batch + 28 * i;
        put32(h, NBD_REQUEST_MAGIC);
        put16(h + 4, 0);
        put16(h + 6, NBD_CMD_READ);
        put64(h + 8, 7000 + (uint64_t)i);
        put64(h + 16, 0);
        put32(h + 24, 16);
    }
    assert_true(bb_conn_feed(c, batch, sizeof(batch)));
    struct out o = {0};
    take(c, &o);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(simple_reply(&o, 7000 + (uint64_t)i, r, 16), 0);
    }
    out_free(&o);
    struct bb_disk_stats st;
    bb_disk_get_stats(E.disk, &st);
    assert_int_equal(st.writes, 2);
    assert_int_equal(st.flushes, 1);
    assert_int_equal(st.trims, 1);
    assert_int_equal(st.zeroes, 1);
    assert_int_equal(st.reads, 5);
    /* DISC: no reply, connection done */
    assert_false(send_req(c, NBD_CMD_DISC, 0, 1, 0, 0, NULL));
    take(c, &o);
    assert_int_equal(o.size, 0);
    out_free(&o);
    bb_conn_destroy(c);
}

static void test_structured_read(void **state)
{
    struct bb_conn *c = connect_go(true);
    uint8_t w[100];
    memset(w, 0x5A, sizeof(w));
    assert_int_equal(do_req(c, NBD_CMD_WRITE, 0, 0, sizeof(w), w, NULL), 0);
    assert_true(send_req(c, NBD_CMD_READ, NBD_CMD_FLAG_DF, 77, 10, 50, NULL));
    struct out o = {0};
    take(c, &o);
    assert_int_equal(o.size, 20 + 8 + 50);
    assert_int_equal(be32(o.data), NBD_STRUCT_MAGIC);
    assert_int_equal(be16(o.data + 4), NBD_REPLY_FLAG_DONE);
    assert_int_equal(be16(o.data + 6), NBD_REPLY_TYPE_OFFSET_DATA);
    assert_true(be64(o.data + 8) == 77);
    assert_int_equal(be32(o.data + 16), 58);
    assert_true(be64(o.data + 20) == 10);
    assert_int_equal(o.data[28], 0x5A);
    /* an out-of-bounds read is an error chunk */
    assert_true(send_req(c, NBD_CMD_READ, 0, 78, DISK_SIZE, 1, NULL));
    take(c, &o);
    assert_int_equal(be16(o.data + 6), NBD_REPLY_TYPE_ERROR);
    assert_int_equal(be32(o.data + 20), NBD_EINVAL);
    out_free(&o);
    bb_conn_destroy(c);
}

static void test_invalid_requests(void **state)
{
    struct bb_conn *c = connect_go(false);
    uint8_t buf[1024] = {0};
    assert_int_equal(do_req(c, 42, 0, 0, 0, NULL, NULL), NBD_EINVAL); /* unknown command */
    assert_int_equal(do_req(c, NBD_CMD_BLOCK_STATUS, 0, 0, 512, NULL, NULL), NBD_EINVAL);
    assert_int_equal(do_req(c, NBD_CMD_READ, 0x40, 0, 512, NULL, NULL), NBD_EINVAL); /* flag */
    assert_int_equal(do_req(c, NBD_CMD_READ, NBD_CMD_FLAG_DF, 0, 512, NULL, NULL),
                     NBD_EINVAL); /* DF without structured replies */
    assert_int_equal(do_req(c, NBD_CMD_WRITE, NBD_CMD_FLAG_NO_HOLE, 0, 10, buf, NULL), NBD_EINVAL);
    assert_int_equal(do_req(c, NBD_CMD_READ, 0, DISK_SIZE - 100, 512, NULL, NULL), NBD_EINVAL);
    assert_int_equal(do_req(c, NBD_CMD_READ, 0, UINT64_MAX - 10, 512, NULL, NULL), NBD_EINVAL);
    assert_int_equal(do_req(c, NBD_CMD_WRITE, 0, DISK_SIZE - 100, 512, buf, NULL), NBD_ENOSPC);
    assert_int_equal(do_req(c, NBD_CMD_TRIM, 0, DISK_SIZE, 1, NULL, NULL), NBD_ENOSPC);
    assert_int_equal(do_req(c, NBD_CMD_FLUSH, 0, 0, 512, NULL, NULL), NBD_EINVAL);
    assert_int_equal(do_req(c, NBD_CMD_READ, 0, 0, 0, NULL, NULL), NBD_EINVAL);
    assert_int_equal(do_req(c, NBD_CMD_TRIM, 0, 0, 0, NULL, NULL), NBD_EINVAL);
    assert_int_equal(do_req(c, NBD_CMD_READ, 0, 0, BB_MAX_PAYLOAD + 1, NULL, NULL), NBD_EOVERFLOW);
    /* an oversized write: its payload is skipped and the stream stays in sync */
    size_t big = BB_MAX_PAYLOAD + 4096;
    uint8_t *payload = fl_xcalloc(1, big);
    assert_int_equal(do_req(c, NBD_CMD_WRITE, 0, 0, (uint32_t)big, payload, NULL), NBD_EOVERFLOW);
    free(payload);
    assert_int_equal(do_req(c, NBD_CMD_READ, 0, 0, 512, NULL, buf), 0);
    struct bb_disk_stats st;
    bb_disk_get_stats(E.disk, &st);
    assert_int_equal(st.errors_invalid, 14);
    /* bad magic: the connection closes */
    uint8_t h[28] = {0};
    assert_false(bb_conn_feed(c, h, sizeof(h)));
    assert_true(bb_conn_closed(c));
    bb_conn_destroy(c);
}

static void test_read_only(void **state)
{
    struct bb_disk_config dc = {.node = "n1", .name = "ro", .size = DISK_SIZE, .no_sync = true};
    env_disk(&dc); /* create the file */
    bb_disk_remove(E.disk);
    dc.read_only = true;
    dc.export_name = "vda";
    env_disk(&dc);
    struct bb_conn *c = connect_go(false);
    uint8_t buf[512] = {0};
    assert_int_equal(do_req(c, NBD_CMD_WRITE, 0, 0, 512, buf, NULL), NBD_EPERM);
    assert_int_equal(do_req(c, NBD_CMD_TRIM, 0, 0, 512, NULL, NULL), NBD_EPERM);
    assert_int_equal(do_req(c, NBD_CMD_READ, 0, 0, 512, NULL, buf), 0);
    bb_conn_destroy(c);
}

/* --- faults -------------------------------------------------------------- */

static void run_due(void)
{
    while (fl_loop_run_once(E.loop, 0) > 0) {
    }
}

static void test_latency_holds_reply(void **state)
{
    struct impair_disk_params p;
    memset(&p, 0, sizeof(p));
    p.op[IMPAIR_IO_READ].latency.latency_ns = 5 * FL_NS_PER_MS;
    p.op[IMPAIR_IO_FLUSH].latency.latency_ns = 50 * FL_NS_PER_MS; /* a slow flush */
    assert_true(bb_disk_set_faults(E.disk, &p, NULL));
    struct bb_conn *c = connect_go(false);
    assert_true(send_req(c, NBD_CMD_READ, 0, 1, 0, 512, NULL));
    assert_true(send_req(c, NBD_CMD_FLUSH, 0, 2, 0, 0, NULL));
    assert_true(send_req(c, NBD_CMD_WRITE, 0, 3, 0, 4, "abcd"));
    struct out o = {0};
    take(c, &o);
    assert_int_equal(simple_reply(&o, 3, NULL, 0), 0); /* the write has no latency */
    assert_int_equal(o.pos, o.size);
    fl_clock_manual_advance(E.clock, 5 * FL_NS_PER_MS - 1);
    run_due();
    take(c, &o);
    assert_int_equal(o.size, 0);
    fl_clock_manual_advance(E.clock, 1);
    run_due();
    take(c, &o);
    uint8_t buf[512];
    assert_int_equal(simple_reply(&o, 1, buf, 512), 0);
    assert_int_equal(o.pos, o.size);
    fl_clock_manual_advance(E.clock, 45 * FL_NS_PER_MS - 1);
    run_due();
    take(c, &o);
    assert_int_equal(o.size, 0);
    fl_clock_manual_advance(E.clock, 1);
    run_due();
    take(c, &o);
    assert_int_equal(simple_reply(&o, 2, NULL, 0), 0);
    out_free(&o);
    /* clearing faults: immediate again */
    assert_true(bb_disk_set_faults(E.disk, NULL, NULL));
    assert_int_equal(do_req(c, NBD_CMD_READ, 0, 0, 512, NULL, buf), 0);
    bb_conn_destroy(c);
}

static void test_error_in_range(void **state)
{
    struct impair_disk_params p;
    memset(&p, 0, sizeof(p));
    p.op[IMPAIR_IO_WRITE].error_p = IMPAIR_PROB_MAX;
    p.op[IMPAIR_IO_WRITE].error_errno = EIO;
    p.op[IMPAIR_IO_WRITE].range_start = 65536;
    p.op[IMPAIR_IO_WRITE].range_end = 131072;
    p.op[IMPAIR_IO_READ].error_p = IMPAIR_PROB_MAX;
    p.op[IMPAIR_IO_READ].error_errno = ENOSPC;
    p.op[IMPAIR_IO_READ].range_start = 0;
    p.op[IMPAIR_IO_READ].range_end = 512;
    assert_true(bb_disk_set_faults(E.disk, &p, NULL));
    struct bb_conn *c = connect_go(false);
    uint8_t buf[512];
    memset(buf, 7, sizeof(buf));
    assert_int_equal(do_req(c, NBD_CMD_WRITE, 0, 65536 - 512, 512, buf, NULL), 0);
    assert_int_equal(do_req(c, NBD_CMD_WRITE, 0, 65536 - 256, 512, buf, NULL), NBD_EIO);
    assert_int_equal(do_req(c, NBD_CMD_WRITE, 0, 131072, 512, buf, NULL), 0);
    assert_int_equal(do_req(c, NBD_CMD_READ, 0, 0, 512, NULL, buf), NBD_ENOSPC);
    assert_int_equal(do_req(c, NBD_CMD_READ, 0, 512, 512, NULL, buf), 0);
    /* a failed write changed nothing */
    assert_int_equal(do_req(c, NBD_CMD_READ, 0, 65536, 256, NULL, buf), 0);
    assert_int_equal(buf[0], 0);
    struct bb_disk_stats st;
    bb_disk_get_stats(E.disk, &st);
    assert_int_equal(st.errors_injected, 2);
    /* a 50% error rate: binomial(400, 1/2) within 99.99% (200 +- 39) */
    p.op[IMPAIR_IO_READ].error_p = IMPAIR_PROB_MAX / 2;
    p.op[IMPAIR_IO_READ].range_end = 0;
    assert_true(bb_disk_set_faults(E.disk, &p, NULL));
    int fails = 0;
    for (int i = 0; i < 400; i++) {
        fails += do_req(c, NBD_CMD_READ, 0, 4096, 512, NULL, buf) != 0;
    }
    assert_true(fails >= 161 && fails <= 239);
    /* invalid parameters are refused and change nothing */
    p.op[IMPAIR_IO_FLUSH].range_start = 10;
    p.op[IMPAIR_IO_FLUSH].range_end = 20;
    struct fl_error *err = NULL;
    assert_false(bb_disk_set_faults(E.disk, &p, &err));
    assert_non_null(err);
    fl_error_free(err);
    bb_conn_destroy(c);
}

static void test_read_corruption(void **state)
{
    struct impair_disk_params p;
    memset(&p, 0, sizeof(p));
    p.op[IMPAIR_IO_READ].corrupt_p = IMPAIR_PROB_MAX;
    assert_true(bb_disk_set_faults(E.disk, &p, NULL));
    struct bb_conn *c = connect_go(false);
    uint8_t w[4096], r[4096];
    memset(w, 0x33, sizeof(w));
    assert_int_equal(do_req(c, NBD_CMD_WRITE, 0, 0, sizeof(w), w, NULL), 0);
    assert_int_equal(do_req(c, NBD_CMD_READ, 0, 0, sizeof(r), NULL, r), 0);
    int bits = 0;
    for (size_t i = 0; i < sizeof(r); i++) {
        bits += __builtin_popcount(r[i] ^ w[i]);
    }
    assert_int_equal(bits, 1);
    /* the stored data is not corrupted */
    assert_true(bb_disk_set_faults(E.disk, NULL, NULL));
    assert_int_equal(do_req(c, NBD_CMD_READ, 0, 0, sizeof(r), NULL, r), 0);
    assert_memory_equal(r, w, sizeof(w));
    struct bb_disk_stats st;
    bb_disk_get_stats(E.disk, &st);
    assert_int_equal(st.reads_corrupted, 1);
    bb_conn_destroy(c);
}

static void test_capacity_full(void **state)
{
    bb_disk_set_capacity(E.disk, 8192);
    struct bb_conn *c = connect_go(false);
    uint8_t buf[4096] = {1};
    assert_int_equal(do_req(c, NBD_CMD_WRITE, 0, 0, 4096, buf, NULL), 0);
    assert_int_equal(do_req(c, NBD_CMD_WRITE, 0, 65536, 4096, buf, NULL), 0);
    assert_int_equal(do_req(c, NBD_CMD_WRITE, 0, 131072, 4096, buf, NULL), NBD_ENOSPC);
    assert_int_equal(do_req(c, NBD_CMD_WRITE, 0, 0, 4096, buf, NULL), 0);
    bb_disk_set_capacity(E.disk, 0);
    assert_int_equal(do_req(c, NBD_CMD_WRITE, 0, 131072, 4096, buf, NULL), 0);
    struct bb_disk_stats st;
    bb_disk_get_stats(E.disk, &st);
    assert_int_equal(st.errors_enospc, 1);
    bb_conn_destroy(c);
}

static void test_stall(void **state)
{
    struct bb_conn *c = connect_go(false);
    bb_disk_stall(E.disk, true);
    assert_true(send_req(c, NBD_CMD_WRITE, 0, 1, 0, 4, "wxyz"));
    assert_true(send_req(c, NBD_CMD_READ, 0, 2, 0, 4, NULL));
    struct out o = {0};
    fl_clock_manual_advance(E.clock, 10 * FL_NS_PER_SEC);
    run_due();
    take(c, &o);
    assert_int_equal(o.size, 0);
    struct bb_disk_stats st;
    bb_disk_get_stats(E.disk, &st);
    assert_int_equal(st.stalled_now, 2);
    bb_disk_stall(E.disk, false);
    take(c, &o);
    assert_int_equal(simple_reply(&o, 1, NULL, 0), 0);
    uint8_t r[4];
    assert_int_equal(simple_reply(&o, 2, r, 4), 0);
    assert_memory_equal(r, "wxyz", 4); /* executed in arrival order */
    out_free(&o);
    bb_conn_destroy(c);
}

static void test_crash_through_nbd(void **state)
{
    struct bb_conn *c = connect_go(false);
    uint8_t a[4096], b[4096], r[4096];
    memset(a, 0xA1, sizeof(a));
    memset(b, 0xB2, sizeof(b));
    assert_int_equal(do_req(c, NBD_CMD_WRITE, 0, 0, 4096, a, NULL), 0);
    assert_int_equal(do_req(c, NBD_CMD_FLUSH, 0, 0, 0, NULL, NULL), 0);
    assert_int_equal(do_req(c, NBD_CMD_WRITE, 0, 8192, 4096, b, NULL), 0);
    assert_int_equal(do_req(c, NBD_CMD_READ, 0, 8192, 4096, NULL, r), 0);
    assert_memory_equal(r, b, 4096); /* before the crash the guest sees it */
    struct bb_crash_report rep;
    assert_int_equal(bb_disk_crash(E.disk, BB_CRASH_DEFAULT, &rep), 0);
    assert_int_equal(rep.policy, BB_CRASH_LOSE_UNFLUSHED);
    assert_int_equal(rep.writes_lost, 1);
    bb_conn_destroy(c);
    c = connect_go(false);
    assert_int_equal(do_req(c, NBD_CMD_READ, 0, 0, 4096, NULL, r), 0);
    assert_memory_equal(r, a, 4096);
    assert_int_equal(do_req(c, NBD_CMD_READ, 0, 8192, 4096, NULL, r), 0);
    assert_int_equal(r[0], 0);
    assert_int_equal(r[4095], 0);
    bb_conn_destroy(c);
}

/* --- real sockets -------------------------------------------------------- */

static void sock_write(int fd, const void *p, size_t n)
{
    assert_int_equal(write(fd, p, n), (ssize_t)n);
}

static void test_client_vanishes_mid_request(void **state)
{
    struct impair_disk_params p;
    memset(&p, 0, sizeof(p));
    p.op[IMPAIR_IO_WRITE].latency.latency_ns = FL_NS_PER_SEC;
    assert_true(bb_disk_set_faults(E.disk, &p, NULL));
    for (int variant = 0; variant < 3; variant++) {
        int sv[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
        assert_int_equal(bb_disk_attach_fd(E.disk, sv[0]), 0);
        uint8_t greet[18];
        run_due();
        assert_int_equal(read(sv[1], greet, sizeof(greet)), 18);
        uint8_t msg[4 + 16];
        put32(msg, NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES);
        put64(msg + 4, NBD_OPT_MAGIC);
        put32(msg + 12, NBD_OPT_EXPORT_NAME);
        put32(msg + 16, 0);
        sock_write(sv[1], msg, sizeof(msg));
        run_due();
        uint8_t info[10];
        assert_int_equal(read(sv[1], info, sizeof(info)), 10);
        uint8_t h[28];
        put32(h, NBD_REQUEST_MAGIC);
        put16(h + 4, 0);
        put16(h + 6, NBD_CMD_WRITE);
        put64(h + 8, 1);
        put64(h + 16, 0);
        put32(h + 24, 4096);
        sock_write(sv[1], h, sizeof(h));
        if (variant >= 1) {
            uint8_t half[2048] = {0};
            sock_write(sv[1], half, sizeof(half)); /* half the payload */
        }
        if (variant == 2) {
            uint8_t rest[2048] = {0};
            sock_write(sv[1], rest, sizeof(rest)); /* complete: reply pending */
        }
        run_due();
        close(sv[1]);
        run_due();
        struct bb_disk_stats st;
        bb_disk_get_stats(E.disk, &st);
        assert_int_equal(st.connections_open, 0);
        fl_clock_manual_advance(E.clock, 2 * FL_NS_PER_SEC); /* the dropped timer must not fire */
        run_due();
    }
    /* the disk still serves */
    assert_true(bb_disk_set_faults(E.disk, NULL, NULL));
    struct bb_conn *c = connect_go(false);
    uint8_t buf[512];
    assert_int_equal(do_req(c, NBD_CMD_READ, 0, 0, 512, NULL, buf), 0);
    bb_conn_destroy(c);
}

static void test_unix_socket_listen(void **state)
{
    char *sock = fl_xasprintf("%s/d.sock", E.dir);
    struct bb_disk_config dc = {
        .node = "n2", .name = "vdb", .size = DISK_SIZE, .socket_path = sock, .no_sync = true};
    char *path = fl_xasprintf("%s/n2.img", E.dir);
    dc.path = path;
    struct fl_error *err = NULL;
    struct bb_disk *d = bb_disk_add(E.bb, &dc, &err);
    assert_non_null(d);
    assert_string_equal(bb_disk_socket_path(d), sock);
    assert_ptr_equal(bb_disk_find(E.bb, "n2", "vdb"), d);
    /* same name again: refused */
    assert_null(bb_disk_add(E.bb, &dc, &err));
    assert_non_null(strstr(err->msg, "already exists"));
    fl_error_free(err);
    err = NULL;
    /* a regular file in the socket's place is never replaced */
    dc.name = "vdc";
    dc.socket_path = path;
    assert_null(bb_disk_add(E.bb, &dc, &err));
    assert_non_null(strstr(err->msg, "not a socket"));
    fl_error_free(err);
    bb_disk_remove(d);
    assert_int_equal(access(sock, F_OK), -1); /* removed with the disk */
    free(sock);
    free(path);
}

static int64_t sql_int(sqlite3 *db, const char *q)
{
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, q, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static void test_io_records(void **state)
{
    char *dbpath = fl_xasprintf("%s/run.db", E.dir);
    struct fl_error *err = NULL;
    struct trace_db *tdb = trace_db_open(dbpath, &err);
    assert_non_null(tdb);
    struct bb_config bc = {.seed = 7, .trace = tdb};
    struct blkback *bb = bb_create(E.loop, &bc, NULL);
    char *img = fl_xasprintf("%s/traced.img", E.dir);
    struct bb_disk_config dc = {.node = "n9",
                                .name = "vdz",
                                .export_name = "vda",
                                .path = img,
                                .size = DISK_SIZE,
                                .no_sync = true,
                                .crash_policy = BB_CRASH_LOSE_UNFLUSHED};
    struct bb_disk *saved = E.disk;
    E.disk = bb_disk_add(bb, &dc, &err);
    assert_non_null(E.disk);
    struct bb_conn *c = connect_go(false);
    uint8_t buf[4096] = {1};
    assert_int_equal(do_req(c, NBD_CMD_WRITE, 0, 0, 4096, buf, NULL), 0); /* flushed */
    assert_int_equal(do_req(c, NBD_CMD_FLUSH, 0, 0, 0, NULL, NULL), 0);
    assert_int_equal(do_req(c, NBD_CMD_WRITE, 0, 8192, 4096, buf, NULL), 0); /* unflushed */
    assert_int_equal(do_req(c, NBD_CMD_WRITE, NBD_CMD_FLAG_FUA, 16384, 512, buf, NULL), 0);
    assert_int_equal(do_req(c, NBD_CMD_READ, 0, DISK_SIZE, 512, NULL, NULL), NBD_EINVAL);
    /* many unflushed writes: each must still find its I/O record at the crash */
    for (uint64_t i = 0; i < 1800; i++) {
        assert_int_equal(do_req(c, NBD_CMD_WRITE, 0, 65536 + i * 512, 512, buf, NULL), 0);
    }
    struct impair_disk_params p;
    memset(&p, 0, sizeof(p));
    p.op[IMPAIR_IO_WRITE].latency.latency_ns = FL_NS_PER_SEC;
    assert_true(bb_disk_set_faults(E.disk, &p, NULL));
    assert_true(send_req(c, NBD_CMD_WRITE, 0, 5, 32768, 1024, buf)); /* reply never sent */
    struct bb_crash_report rep;
    assert_int_equal(bb_disk_crash(E.disk, BB_CRASH_DEFAULT, &rep), 0);
    assert_int_equal(rep.writes_lost, 1802);
    bb_conn_destroy(c);
    bb_destroy(bb);
    E.disk = saved;
    trace_db_close(tdb);

    sqlite3 *db;
    assert_int_equal(sqlite3_open(dbpath, &db), SQLITE_OK);
    assert_int_equal(sql_int(db, "SELECT count(*) FROM ios"), 1806);
    assert_int_equal(sql_int(db, "SELECT count(*) FROM crash_writes WHERE outcome='lost'"), 1802);
    assert_int_equal(sql_int(db, "SELECT count(*) FROM ios WHERE op='write' AND fua=1"), 1);
    assert_int_equal(sql_int(db, "SELECT count(*) FROM ios WHERE result=22 AND op='read'"), 1);
    assert_int_equal(sql_int(db, "SELECT count(*) FROM ios WHERE complete_ns IS NULL"), 1);
    assert_int_equal(sql_int(db, "SELECT count(*) FROM crashes WHERE policy='lose-unflushed'"), 1);
    assert_int_equal(sql_int(db, "SELECT count(*) FROM crash_writes cw JOIN ios i ON i.id = "
                                 "cw.io_id WHERE cw.outcome='lost' AND i.offset IN (8192, 32768)"),
                     2);
    assert_int_equal(sql_int(db, "SELECT count(*) FROM ios_named WHERE node='n9' AND disk='vdz'"),
                     1806);
    sqlite3_close(db);
    free(img);
    free(dbpath);
}

static void test_flush_syncs_off_loop(void **state)
{
    /* a disk that really fdatasyncs: the FLUSH reply comes from the worker */
    struct bb_disk_config dc = {.node = "n1",
                                .name = "synced",
                                .size = DISK_SIZE,
                                .export_name = "vda",
                                .crash_policy = BB_CRASH_LOSE_UNFLUSHED};
    bb_disk_remove(E.disk);
    env_disk(&dc);
    struct bb_conn *c = connect_go(false);
    uint8_t buf[4096];
    memset(buf, 0x77, sizeof(buf));
    assert_int_equal(do_req(c, NBD_CMD_WRITE, 0, 0, sizeof(buf), buf, NULL), 0);
    assert_true(send_req(c, NBD_CMD_FLUSH, 0, 9, 0, 0, NULL));
    assert_true(send_req(c, NBD_CMD_WRITE, NBD_CMD_FLAG_FUA, 10, 8192, 512, buf));
    struct out o = {0}, all = {0};
    take(c, &o);
    assert_int_equal(o.size, 0); /* the fdatasync runs on the worker, not in the loop */
    for (int i = 0; i < 500 && all.size < 32; i++) {
        fl_loop_run_once(E.loop, 10);
        take(c, &o);
        all.data = fl_xrealloc(all.data, all.size + o.size + 1);
        memcpy(all.data + all.size, o.data, o.size);
        all.size += o.size;
    }
    assert_int_equal(all.size, 32);
    /* replies may come in either order */
    uint64_t h1 = be64(all.data + 8), h2 = be64(all.data + 24);
    assert_true((h1 == 9 && h2 == 10) || (h1 == 10 && h2 == 9));
    assert_int_equal(be32(all.data + 4), 0);
    assert_int_equal(be32(all.data + 20), 0);
    out_free(&o);
    out_free(&all);
    /* both are durable: a crash keeps them */
    struct bb_crash_report rep;
    assert_int_equal(bb_disk_crash(E.disk, BB_CRASH_LOSE_UNFLUSHED, &rep), 0);
    assert_int_equal(rep.writes_lost, 0);
    bb_conn_destroy(c);
    c = connect_go(false);
    assert_int_equal(do_req(c, NBD_CMD_READ, 0, 0, sizeof(buf), NULL, buf), 0);
    assert_int_equal(buf[4095], 0x77);
    bb_conn_destroy(c);
}

static void test_inflight_limit(void **state)
{
    struct impair_disk_params p;
    memset(&p, 0, sizeof(p));
    p.op[IMPAIR_IO_READ].latency.latency_ns = FL_NS_PER_SEC;
    assert_true(bb_disk_set_faults(E.disk, &p, NULL));
    struct bb_conn *c = connect_go(false);
    enum { N = 600 };
    uint8_t *batch = fl_xmalloc(N * 28);
    for (int i = 0; i < N; i++) {
        uint8_t *h = batch + 28 * i;
        put32(h, NBD_REQUEST_MAGIC);
        put16(h + 4, 0);
        put16(h + 6, NBD_CMD_READ);
        put64(h + 8, (uint64_t)i);
        put64(h + 16, 0);
        put32(h + 24, 512);
    }
    assert_true(bb_conn_feed(c, batch, N * 28));
    free(batch);
    struct out o = {0};
    size_t replies = 0;
    for (int round = 0; round < 3; round++) {
        fl_clock_manual_advance(E.clock, FL_NS_PER_SEC);
        run_due();
        take(c, &o);
        size_t got = o.size / (16 + 512);
        if (round == 0) {
            assert_int_equal(got, 512); /* at most 512 in flight */
        }
        replies += got;
    }
    assert_int_equal(replies, N); /* the rest was parsed once replies left */
    out_free(&o);
    bb_conn_destroy(c);
}

static void test_crash_policy_names(void **state)
{
    enum bb_crash_policy p;
    for (int i = 0; i < BB_CRASH__COUNT; i++) {
        assert_true(bb_crash_policy_parse(bb_crash_policy_name((enum bb_crash_policy)i), &p, NULL));
        assert_int_equal(p, i);
    }
    struct fl_error *err = NULL;
    assert_false(bb_crash_policy_parse("lose-some", &p, &err));
    assert_non_null(strstr(err->msg, "'lose-some'"));
    assert_non_null(strstr(err->msg, "lose-unflushed"));
    fl_error_free(err);
    assert_int_equal(bb_nbd_errno(-EDQUOT), NBD_ENOSPC);
    assert_int_equal(bb_nbd_errno(-ENOTTY), NBD_EIO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_handshake_export_name, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handshake_options, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handshake_malformed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_write_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_structured_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_requests, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_latency_holds_reply, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_in_range, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_corruption, setup, teardown),
        cmocka_unit_test_setup_teardown(test_capacity_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stall, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_through_nbd, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_vanishes_mid_request, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unix_socket_listen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_io_records, setup, teardown),
        cmocka_unit_test_setup_teardown(test_inflight_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flush_syncs_off_loop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_policy_names, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
