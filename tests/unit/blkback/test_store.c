/* Unit tests for blkback's storage model: the file layer (plain and
 * copy-on-write), the volatile write cache and its crash policies, and the
 * capacity layer.  A reference model (two byte arrays: what the guest sees,
 * what is durable) is compared against the layers after every operation,
 * and the cache's invariant checker runs after every operation. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "blkback/layer-provider.h"
#include "impair/impair.h"
#include "core/core.h"

#define DISK (256u * 1024u)

static char tmpdir[64];

static int setup(void **state)
{
    strcpy(tmpdir, "/tmp/bb-store-XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    return 0;
}

static int teardown(void **state)
{
    fl_rm_rf(tmpdir);
    return 0;
}

static char *tpath(const char *name)
{
    return fl_xasprintf("%s/%s", tmpdir, name);
}

struct stack {
    struct bb_layer *file, *cache, *top;
    uint64_t size;
};

static void open_stack(struct stack *s, const char *name, const char *base, uint64_t size,
                       uint64_t cache_limit, uint64_t capacity)
{
    char *p = tpath(name);
    char *b = base ? tpath(base) : NULL;
    struct bb_file_config fc = {.path = p, .base = b, .size = size, .no_sync = true};
    struct fl_error *err = NULL;
    s->file = bb_file_open(&fc, &s->size, &err);
    if (!s->file) {
        fail_msg("%s", err->msg);
    }
    s->cache = bb_cache_create(s->file, s->size, cache_limit);
    s->top = bb_capacity_create(s->cache, s->file, s->size, capacity);
    free(p);
    free(b);
}

static void close_stack(struct stack *s)
{
    bb_layer_destroy_stack(s->top);
}

/* A request's context for the layers: its tag (crash records), no fault. */
#define IO(t) (&(struct bb_io){.tag = (uint64_t)(t)})

static void must(int r)
{
    assert_int_equal(r, 0);
}

static void check_cache(struct stack *s)
{
    const char *e = bb_cache_check(s->cache);
    if (e) {
        fail_msg("cache invariant: %s", e);
    }
}

static void fill(uint8_t *buf, size_t n, uint8_t v)
{
    memset(buf, v, n);
}

/* Reads the durable file directly (what a power cut leaves). */
static void read_file_raw(const char *name, uint8_t *buf, uint64_t len, uint64_t off)
{
    char *p = tpath(name);
    int fd = open(p, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, buf, len, (off_t)off), (ssize_t)len);
    close(fd);
    free(p);
}

static uint64_t xs_state = 88172645463325252ull;
static uint64_t xs(void *arg)
{
    (void)arg;
    xs_state ^= xs_state << 13;
    xs_state ^= xs_state >> 7;
    xs_state ^= xs_state << 17;
    return xs_state;
}

/* --- crash policies ------------------------------------------------------ */

static void crash_case(enum bb_crash_policy policy, bool flush_first, uint8_t expect)
{
    struct stack s;
    open_stack(&s, "crash.img", NULL, DISK, 0, 0);
    uint8_t buf[8192];
    fill(buf, sizeof(buf), 0xAA);
    must(s.top->ops->pwrite(s.top, buf, sizeof(buf), 4096, 0, IO(1)));
    if (flush_first) {
        must(s.top->ops->flush(s.top, NULL));
    }
    fill(buf, sizeof(buf), 0);
    must(s.top->ops->pread(s.top, buf, sizeof(buf), 4096, NULL));
    assert_int_equal(buf[0], 0xAA); /* the guest sees its write before the crash */
    struct bb_crash_report r;
    must(bb_cache_crash(s.cache, policy, xs, NULL, NULL, NULL, &r));
    check_cache(&s);
    read_file_raw("crash.img", buf, sizeof(buf), 4096);
    for (size_t i = 0; i < sizeof(buf); i++) {
        assert_int_equal(buf[i], expect);
    }
    must(s.top->ops->pread(s.top, buf, sizeof(buf), 4096, NULL));
    assert_int_equal(buf[100], expect);
    close_stack(&s);
    char *p = tpath("crash.img");
    unlink(p);
    free(p);
}

static void test_crash_write_noflush_lost(void **state)
{
    crash_case(BB_CRASH_LOSE_UNFLUSHED, false, 0x00);
}

static void test_crash_write_flush_kept(void **state)
{
    crash_case(BB_CRASH_LOSE_UNFLUSHED, true, 0xAA);
    crash_case(BB_CRASH_TEAR, true, 0xAA);
    crash_case(BB_CRASH_LOSE_RANDOM, true, 0xAA);
}

static void test_crash_keep(void **state)
{
    crash_case(BB_CRASH_KEEP, false, 0xAA);
}

static void test_fua_survives_crash(void **state)
{
    struct stack s;
    open_stack(&s, "fua.img", NULL, DISK, 0, 0);
    uint8_t a[1024], b[1024];
    fill(a, sizeof(a), 1);
    fill(b, sizeof(b), 2);
    must(s.top->ops->pwrite(s.top, a, sizeof(a), 0, 0, IO(1)));           /* cached */
    must(s.top->ops->pwrite(s.top, b, 512, 512, BB_F_FUA, IO(2)));        /* durable */
    must(s.top->ops->pwrite(s.top, b, sizeof(b), 8192, BB_F_FUA, IO(3))); /* durable */
    check_cache(&s);
    struct bb_crash_report r;
    must(bb_cache_crash(s.cache, BB_CRASH_LOSE_UNFLUSHED, xs, NULL, NULL, NULL, &r));
    assert_int_equal(r.writes_lost, 1);
    uint8_t got[1024];
    read_file_raw("fua.img", got, sizeof(got), 0);
    assert_int_equal(got[0], 0);   /* first sector of the unflushed write: lost */
    assert_int_equal(got[600], 2); /* FUA sector: durable, not reverted */
    read_file_raw("fua.img", got, sizeof(got), 8192);
    assert_int_equal(got[1023], 2);
    close_stack(&s);
}

static void test_torn_writes_sector_aligned(void **state)
{
    struct stack s;
    open_stack(&s, "tear.img", NULL, DISK, 0, 0);
    enum { N = 64 * 1024 };
    uint8_t *old = fl_xmalloc(N), *nw = fl_xmalloc(N), *got = fl_xmalloc(N);
    for (size_t i = 0; i < N; i++) {
        old[i] = (uint8_t)(i * 7 + 1);
        nw[i] = (uint8_t)~old[i];
    }
    must(s.top->ops->pwrite(s.top, old, N, 0, 0, IO(1)));
    must(s.top->ops->flush(s.top, NULL));
    must(s.top->ops->pwrite(s.top, nw, N, 0, 0, IO(2)));
    struct bb_crash_report r;
    must(bb_cache_crash(s.cache, BB_CRASH_TEAR, xs, NULL, NULL, NULL, &r));
    assert_int_equal(r.writes_torn, 1);
    read_file_raw("tear.img", got, N, 0);
    size_t kept = 0, lost = 0;
    for (size_t sec = 0; sec < N / 512; sec++) {
        const uint8_t *g = got + sec * 512;
        bool is_new = !memcmp(g, nw + sec * 512, 512);
        bool is_old = !memcmp(g, old + sec * 512, 512);
        /* every sector is entirely old or entirely new */
        assert_true(is_new != is_old);
        kept += is_new;
        lost += is_old;
    }
    assert_int_equal(kept, r.sectors_kept);
    assert_int_equal(lost, r.sectors_lost);
    /* 128 sectors at p=1/2: 99.99% interval is roughly 64 +- 22 */
    assert_true(kept >= 42 && kept <= 86);
    free(old);
    free(nw);
    free(got);
    close_stack(&s);
}

struct outcome_count {
    int lost, kept, torn;
};

static void count_outcome(void *arg, const struct bb_cache_rec *rec, int outcome, uint64_t kept)
{
    struct outcome_count *c = arg;
    if (outcome == BB_OUTCOME_LOST) {
        c->lost++;
        assert_int_equal(kept, 0);
    } else if (outcome == BB_OUTCOME_KEPT) {
        c->kept++;
        assert_int_equal(kept, rec->len);
    } else {
        c->torn++;
    }
}

static void test_lose_random_whole_writes(void **state)
{
    struct stack s;
    open_stack(&s, "rand.img", NULL, DISK, 0, 0);
    enum { W = 200 };
    uint8_t buf[1024];
    for (int i = 0; i < W; i++) {
        fill(buf, sizeof(buf), (uint8_t)(i + 1));
        must(s.top->ops->pwrite(s.top, buf, sizeof(buf), (uint64_t)i * 1024, 0,
                                IO((uint64_t)i + 1)));
    }
    struct outcome_count oc = {0};
    struct bb_crash_report r;
    must(bb_cache_crash(s.cache, BB_CRASH_LOSE_RANDOM, xs, NULL, count_outcome, &oc, &r));
    assert_int_equal(oc.torn, 0);
    assert_int_equal(oc.kept + oc.lost, W);
    /* binomial(200, 1/2), 99.99%: 100 +- 28 */
    assert_true(oc.kept >= 72 && oc.kept <= 128);
    int kept = 0;
    for (int i = 0; i < W; i++) {
        read_file_raw("rand.img", buf, sizeof(buf), (uint64_t)i * 1024);
        bool whole_new = buf[0] == (uint8_t)(i + 1) && buf[1023] == (uint8_t)(i + 1);
        bool whole_old = buf[0] == 0 && buf[1023] == 0;
        assert_true(whole_new || whole_old);
        kept += whole_new;
    }
    assert_int_equal(kept, oc.kept);
    close_stack(&s);
}

/* --- reference model ---------------------------------------------------- */

static void test_random_ops_match_reference(void **state)
{
    struct stack s;
    /* a small cache limit forces destaging too */
    open_stack(&s, "ref.img", NULL, DISK, 48 * 1024, 0);
    uint8_t *view = fl_xcalloc(1, DISK), *durable = fl_xcalloc(1, DISK);
    uint8_t *buf = fl_xmalloc(DISK), *got = fl_xmalloc(DISK);
    xs_state = 12345;
    for (int step = 0; step < 3000; step++) {
        uint64_t op = xs(NULL) % 100;
        uint64_t off = xs(NULL) % DISK;
        uint64_t len = 1 + xs(NULL) % 9000;
        if (off + len > DISK) {
            len = DISK - off;
        }
        if (op < 50) {
            for (uint64_t i = 0; i < len; i++) {
                buf[i] = (uint8_t)xs(NULL);
            }
            bool fua = op < 8;
            must(s.top->ops->pwrite(s.top, buf, len, off, fua ? BB_F_FUA : 0,
                                    IO((uint64_t)step + 1)));
            memcpy(view + off, buf, len);
        } else if (op < 60) {
            must(s.top->ops->zero(s.top, len, off, op < 55 ? BB_F_MAY_TRIM : 0,
                                  IO((uint64_t)step + 1)));
            memset(view + off, 0, len);
        } else if (op < 63) {
            must(s.top->ops->flush(s.top, NULL));
            memcpy(durable, view, DISK);
        } else {
            must(s.top->ops->pread(s.top, got, len, off, NULL));
            assert_memory_equal(got, view + off, len);
        }
        check_cache(&s);
        /* whatever the file holds is, per sector, either the durable or a
         * later value: checked at the end via the crash */
    }
    must(s.top->ops->pread(s.top, got, DISK, 0, NULL));
    assert_memory_equal(got, view, DISK);
    /* KEEP leaves exactly what the guest saw */
    struct bb_crash_report r;
    must(bb_cache_crash(s.cache, BB_CRASH_KEEP, xs, NULL, NULL, NULL, &r));
    read_file_raw("ref.img", got, DISK, 0);
    assert_memory_equal(got, view, DISK);
    free(view);
    free(durable);
    free(buf);
    free(got);
    close_stack(&s);
}

static void test_lose_unflushed_matches_durable(void **state)
{
    struct stack s;
    open_stack(&s, "dur.img", NULL, DISK, 0, 0); /* default limit: nothing destaged */
    uint8_t *view = fl_xcalloc(1, DISK), *durable = fl_xcalloc(1, DISK);
    uint8_t *buf = fl_xmalloc(16384), *got = fl_xmalloc(DISK);
    xs_state = 999;
    for (int step = 0; step < 2000; step++) {
        uint64_t op = xs(NULL) % 100;
        uint64_t off = xs(NULL) % DISK, len = 1 + xs(NULL) % 16000;
        len = off + len > DISK ? DISK - off : len;
        if (op < 70) {
            for (uint64_t i = 0; i < len; i++) {
                buf[i] = (uint8_t)xs(NULL);
            }
            bool fua = op < 5;
            must(s.top->ops->pwrite(s.top, buf, len, off, fua ? BB_F_FUA : 0,
                                    IO((uint64_t)step + 1)));
            memcpy(view + off, buf, len);
            if (fua) {
                /* FUA makes the sectors it touched durable with their
                 * current (merged) contents */
                uint64_t s0 = off / 512 * 512, e0 = (off + len + 511) / 512 * 512;
                memcpy(durable + s0, view + s0, e0 - s0);
            }
        } else if (op < 72) {
            must(s.top->ops->flush(s.top, NULL));
            memcpy(durable, view, DISK);
        } else {
            must(s.top->ops->pread(s.top, got, len, off, NULL));
            assert_memory_equal(got, view + off, len);
        }
        check_cache(&s);
    }
    struct bb_crash_report r;
    must(bb_cache_crash(s.cache, BB_CRASH_LOSE_UNFLUSHED, xs, NULL, NULL, NULL, &r));
    read_file_raw("dur.img", got, DISK, 0);
    assert_memory_equal(got, durable, DISK);
    must(s.top->ops->pread(s.top, buf, 4096, 0, NULL));
    assert_memory_equal(buf, durable, 4096);
    free(view);
    free(durable);
    free(buf);
    free(got);
    close_stack(&s);
}

static void test_destage_when_full(void **state)
{
    struct stack s;
    open_stack(&s, "full.img", NULL, DISK, 8192, 0);
    uint8_t buf[4096];
    for (int i = 0; i < 4; i++) {
        fill(buf, sizeof(buf), (uint8_t)(0x10 + i));
        must(s.top->ops->pwrite(s.top, buf, sizeof(buf), (uint64_t)i * 4096, 0,
                                IO((uint64_t)i + 1)));
        check_cache(&s);
    }
    uint64_t recs, bytes, destaged;
    bb_cache_counts(s.cache, &recs, &bytes, &destaged);
    assert_int_equal(bytes, 8192);
    assert_int_equal(destaged, 2);
    struct bb_crash_report r;
    must(bb_cache_crash(s.cache, BB_CRASH_LOSE_UNFLUSHED, xs, NULL, NULL, NULL, &r));
    read_file_raw("full.img", buf, sizeof(buf), 0);
    assert_int_equal(buf[0], 0x10); /* destaged: durable */
    read_file_raw("full.img", buf, sizeof(buf), 3 * 4096);
    assert_int_equal(buf[0], 0); /* still cached at the crash: lost */
    close_stack(&s);
}

/* --- copy-on-write and capacity ------------------------------------------ */

static void test_cow_overlay(void **state)
{
    char *bp = tpath("base.img");
    uint8_t *base = fl_xmalloc(64 * 1024);
    for (size_t i = 0; i < 64 * 1024; i++) {
        base[i] = (uint8_t)(i / 4096 + 1);
    }
    struct fl_error *err = NULL;
    assert_true(fl_write_file(bp, base, 64 * 1024, &err));
    chmod(bp, 0444);
    struct stack s;
    open_stack(&s, "ovl.img", "base.img", 128 * 1024, 0, 0);
    assert_int_equal(s.size, 128 * 1024);
    uint8_t buf[8192];
    must(s.top->ops->pread(s.top, buf, sizeof(buf), 4096 - 100, NULL));
    assert_int_equal(buf[0], 1);
    assert_int_equal(buf[100], 2);
    must(s.top->ops->pread(s.top, buf, 512, 100 * 1024, NULL)); /* beyond the base: zeroes */
    assert_int_equal(buf[0], 0);
    /* a partial write copies its cluster up: the rest still reads the base */
    fill(buf, 512, 0xEE);
    must(s.top->ops->pwrite(s.top, buf, 512, 8192 + 512, BB_F_FUA, IO(1)));
    must(s.top->ops->pread(s.top, buf, 4096, 8192, NULL));
    assert_int_equal(buf[0], 3);
    assert_int_equal(buf[600], 0xEE);
    assert_int_equal(buf[4095], 3);
    must(s.top->ops->flush(s.top, NULL));
    close_stack(&s);
    /* the base is untouched; the overlay map persists */
    char *again = fl_read_file(bp, NULL, &err);
    assert_memory_equal(again, base, 64 * 1024);
    free(again);
    open_stack(&s, "ovl.img", "base.img", 0, 0, 0);
    must(s.top->ops->pread(s.top, buf, 4096, 8192, NULL));
    assert_int_equal(buf[0], 3);
    assert_int_equal(buf[600], 0xEE);
    must(s.top->ops->pread(s.top, buf, 512, 20000, NULL));
    assert_int_equal(buf[0], 5);
    close_stack(&s);
    free(base);
    free(bp);
}

static void test_cow_missing_map_is_an_error(void **state)
{
    char *bp = tpath("b2.img"), *op = tpath("o2.img");
    struct fl_error *err = NULL;
    assert_true(fl_write_file(bp, "xxxxxxxx", 8, &err));
    assert_true(fl_write_file(op, "data!", 5, &err));
    struct bb_file_config fc = {.path = op, .base = bp, .size = 4096, .no_sync = true};
    uint64_t size;
    assert_null(bb_file_open(&fc, &size, &err));
    assert_non_null(err);
    assert_non_null(strstr(err->msg, "cowmap"));
    fl_error_free(err);
    free(bp);
    free(op);
}

static void test_file_errors(void **state)
{
    struct fl_error *err = NULL;
    uint64_t size;
    struct bb_file_config fc = {.path = tmpdir, .no_sync = true};
    assert_null(bb_file_open(&fc, &size, &err)); /* a directory */
    assert_non_null(strstr(err->msg, "not a regular file"));
    fl_error_free(err);
    err = NULL;
    char *p = tpath("empty.img");
    fc.path = p;
    assert_null(bb_file_open(&fc, &size, &err)); /* no size, new file */
    assert_non_null(strstr(err->msg, "no size was given"));
    assert_int_equal(access(p, F_OK), -1); /* nothing left behind */
    fl_error_free(err);
    err = NULL;
    fc.size = 1000;
    assert_null(bb_file_open(&fc, &size, &err));
    assert_non_null(strstr(err->msg, "multiple of 512"));
    fl_error_free(err);
    free(p);
}

static void test_capacity_enospc(void **state)
{
    struct stack s;
    open_stack(&s, "cap.img", NULL, DISK, 0, 3 * 4096);
    uint8_t buf[8192] = {1};
    must(s.top->ops->pwrite(s.top, buf, 8192, 0, 0, IO(1)));   /* 2 clusters */
    must(s.top->ops->pwrite(s.top, buf, 100, 9000, 0, IO(2))); /* 3rd */
    assert_int_equal(s.top->ops->pwrite(s.top, buf, 10, 20000, 0, IO(3)), -ENOSPC);
    assert_int_equal(s.top->ops->zero(s.top, 4096, 40960, 0, IO(4)), -ENOSPC);
    must(s.top->ops->pwrite(s.top, buf, 8192, 0, 0, IO(5))); /* overwrite: fine */
    assert_int_equal(bb_capacity_allocated(s.top), 3 * 4096);
    /* a trim frees space */
    must(s.top->ops->zero(s.top, 4096, 4096, BB_F_MAY_TRIM, IO(6)));
    must(s.top->ops->pwrite(s.top, buf, 10, 20000, 0, IO(7)));
    bb_capacity_set(s.top, 0);
    must(s.top->ops->pwrite(s.top, buf, 8192, 65536, 0, IO(8)));
    close_stack(&s);
}

/* --- host I/O errors under the cache (issue 14 item 1) -------------------- */

/* A layer between the cache and the file that fails every write with
 * `err` while armed, as a host file system that ran full would. */
struct fail_layer {
    struct bb_layer layer;
    int err; /* 0: pass through; else -errno for pwrite/zero/flush */
    unsigned failures;
};

static int fail_pread(struct bb_layer *l, void *buf, uint64_t len, uint64_t off,
                      const struct bb_io *io)
{
    return l->next->ops->pread(l->next, buf, len, off, io);
}
static int fail_pwrite(struct bb_layer *l, const void *buf, uint64_t len, uint64_t off,
                       unsigned flags, const struct bb_io *io)
{
    struct fail_layer *f = container_of(l, struct fail_layer, layer);
    if (f->err) {
        f->failures++;
        return f->err;
    }
    return l->next->ops->pwrite(l->next, buf, len, off, flags, io);
}
static int fail_zero(struct bb_layer *l, uint64_t len, uint64_t off, unsigned flags,
                     const struct bb_io *io)
{
    struct fail_layer *f = container_of(l, struct fail_layer, layer);
    if (f->err) {
        f->failures++;
        return f->err;
    }
    return l->next->ops->zero(l->next, len, off, flags, io);
}
static int fail_flush(struct bb_layer *l, const struct bb_io *io)
{
    struct fail_layer *f = container_of(l, struct fail_layer, layer);
    return f->err ? f->err : l->next->ops->flush(l->next, io);
}
static void fail_destroy(struct bb_layer *l)
{
    free(container_of(l, struct fail_layer, layer));
}
static const struct bb_layer_ops fail_ops = {
    .name = "test-fail",
    .pread = fail_pread,
    .pwrite = fail_pwrite,
    .zero = fail_zero,
    .flush = fail_flush,
    .destroy = fail_destroy,
};

/* capacity ▸ cache ▸ fail ▸ file */
static struct fail_layer *open_failing_stack(struct stack *s, const char *name,
                                             uint64_t cache_limit)
{
    char *p = tpath(name);
    struct bb_file_config fc = {.path = p, .size = DISK, .no_sync = true};
    struct fl_error *err = NULL;
    s->file = bb_file_open(&fc, &s->size, &err);
    assert_non_null(s->file);
    struct fail_layer *f = fl_xcalloc(1, sizeof(*f));
    f->layer.ops = &fail_ops;
    f->layer.next = s->file;
    s->cache = bb_cache_create(&f->layer, s->size, cache_limit);
    s->top = bb_capacity_create(s->cache, s->file, s->size, 0);
    free(p);
    return f;
}

static void expect_bytes(struct stack *s, uint64_t off, uint64_t len, uint8_t v)
{
    uint8_t *buf = fl_xmalloc(len);
    must(s->top->ops->pread(s->top, buf, len, off, NULL));
    for (uint64_t i = 0; i < len; i++) {
        if (buf[i] != v) {
            fail_msg("byte %llu reads 0x%02x, expected 0x%02x", (unsigned long long)(off + i),
                     buf[i], v);
        }
    }
    free(buf);
}

/* The host runs full while writes are cached: every acknowledged write
 * stays readable, a write the cache cannot make room for is refused with
 * the host's error and changes nothing, and once space returns a flush
 * makes everything durable. */
static void test_host_enospc_loses_nothing(void **state)
{
    struct stack s;
    struct fail_layer *f = open_failing_stack(&s, "enospc.img", 16384);
    uint8_t buf[8192];
    fill(buf, sizeof(buf), 0xA1);
    must(s.top->ops->pwrite(s.top, buf, 8192, 0, 0, IO(1)));
    fill(buf, sizeof(buf), 0xB2);
    must(s.top->ops->pwrite(s.top, buf, 8192, 8192, 0, IO(2)));
    f->err = -ENOSPC;
    /* the cache is full: room needs a destage, which the host refuses */
    fill(buf, sizeof(buf), 0xC3);
    assert_int_equal(s.top->ops->pwrite(s.top, buf, 8192, 16384, 0, IO(3)), -ENOSPC);
    assert_true(f->failures > 0);
    check_cache(&s);
    expect_bytes(&s, 0, 8192, 0xA1);                       /* acknowledged: still readable */
    expect_bytes(&s, 8192, 8192, 0xB2);                    /* acknowledged: still readable */
    expect_bytes(&s, 16384, 8192, 0x00);                   /* refused: changed nothing */
    assert_int_equal(bb_capacity_allocated(s.top), 16384); /* refused: no space counted */
    /* an overwrite of a cached range needs no room... but FUA goes to the host */
    fill(buf, sizeof(buf), 0xD4);
    assert_int_equal(s.top->ops->pwrite(s.top, buf, 8192, 0, BB_F_FUA, IO(4)), -ENOSPC);
    expect_bytes(&s, 0, 8192, 0xA1); /* refused FUA: the cached value stays */
    assert_int_equal(s.top->ops->zero(s.top, 8192, 8192, BB_F_FUA, IO(5)), -ENOSPC);
    expect_bytes(&s, 8192, 8192, 0xB2);
    /* a flush cannot make them durable: it fails and keeps them */
    assert_int_equal(s.top->ops->flush(s.top, NULL), -ENOSPC);
    check_cache(&s);
    expect_bytes(&s, 0, 8192, 0xA1);
    expect_bytes(&s, 8192, 8192, 0xB2);
    uint64_t recs, bytes, destaged;
    bb_cache_counts(s.cache, &recs, &bytes, &destaged);
    assert_int_equal(bytes, 16384);
    /* space is back: the flush drains everything to the file */
    f->err = 0;
    must(s.top->ops->flush(s.top, NULL));
    read_file_raw("enospc.img", buf, 8192, 0);
    assert_int_equal(buf[0], 0xA1);
    assert_int_equal(buf[8191], 0xA1);
    read_file_raw("enospc.img", buf, 8192, 8192);
    assert_int_equal(buf[0], 0xB2);
    read_file_raw("enospc.img", buf, 8192, 16384);
    assert_int_equal(buf[0], 0x00);
    close_stack(&s);
}

/* The same with write-zeroes: a refused zero changes nothing either. */
static void test_host_eio_zero_changes_nothing(void **state)
{
    struct stack s;
    struct fail_layer *f = open_failing_stack(&s, "eio.img", 8192);
    uint8_t buf[8192];
    fill(buf, sizeof(buf), 0x5A);
    must(s.top->ops->pwrite(s.top, buf, 8192, 0, 0, IO(1)));
    f->err = -EIO;
    /* 100 bytes in: head and tail partial sectors plus a zero record */
    assert_int_equal(s.top->ops->zero(s.top, 4000, 100, 0, IO(2)), -EIO);
    assert_int_equal(s.top->ops->pwrite(s.top, buf, 512, 65536, 0, IO(3)), -EIO);
    check_cache(&s);
    expect_bytes(&s, 0, 8192, 0x5A);
    expect_bytes(&s, 65536, 512, 0x00);
    f->err = 0;
    must(s.top->ops->flush(s.top, NULL));
    read_file_raw("eio.img", buf, 8192, 0);
    assert_int_equal(buf[4095], 0x5A);
    close_stack(&s);
}

/* --- fault layer ---------------------------------------------------------- */

/* The decision travels with the request: its errno instead of the
 * operation (nothing below changes), its bit flip on the data read;
 * impair failing is an internal error, counted, and the request runs
 * unfaulted. */
static void test_fault_layer(void **state)
{
    struct stack s;
    open_stack(&s, "fault.img", NULL, DISK, 0, 0);
    struct fl_error *err = NULL;
    struct bb_layer *fault = bb_fault_create(s.top, NULL, 1, 2, &err);
    assert_non_null(fault);
    uint8_t buf[4096];
    fill(buf, sizeof(buf), 0x33);
    struct impair_io_decision dec;
    memset(&dec, 0, sizeof(dec));
    dec.error = -EIO;
    struct bb_io io = {.tag = 1, .dec = &dec};
    assert_int_equal(fault->ops->pwrite(fault, buf, sizeof(buf), 0, 0, &io), -EIO);
    assert_int_equal(fault->ops->zero(fault, 4096, 0, 0, &io), -EIO);
    assert_int_equal(fault->ops->flush(fault, &io), -EIO);
    assert_int_equal(fault->ops->pread(fault, buf, sizeof(buf), 0, &io), -EIO);
    uint64_t recs, bytes, destaged;
    bb_cache_counts(s.cache, &recs, &bytes, &destaged);
    assert_int_equal(recs, 0); /* nothing reached the cache */
    /* no decision: passes through */
    fill(buf, sizeof(buf), 0x33);
    must(fault->ops->pwrite(fault, buf, sizeof(buf), 0, 0, NULL));
    memset(&dec, 0, sizeof(dec));
    dec.corrupted = true;
    dec.corrupt_offset = 10;
    dec.corrupt_mask = 0x04;
    must(fault->ops->pread(fault, buf, sizeof(buf), 0, &io));
    assert_int_equal(buf[10], 0x33 ^ 0x04);
    assert_int_equal(buf[11], 0x33);
    must(fault->ops->pread(fault, buf, sizeof(buf), 0, NULL));
    assert_int_equal(buf[10], 0x33); /* the stored data is not changed */
    struct bb_fault_counts fc;
    bb_fault_get_counts(fault, &fc);
    assert_int_equal(fc.injected, 4);
    assert_int_equal(fc.reads_corrupted, 1);
    /* an op impair does not know: internal error, no fault */
    memset(&dec, 0x55, sizeof(dec));
    assert_int_equal(bb_fault_decide(fault, 1000, 99, 0, 4096, &dec), -EINVAL);
    assert_int_equal(dec.error, 0);
    assert_false(dec.corrupted);
    assert_int_equal(dec.complete_ns, 1000);
    bb_fault_get_counts(fault, &fc);
    assert_int_equal(fc.internal, 1);
    bb_layer_destroy_stack(fault);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crash_write_noflush_lost),
        cmocka_unit_test(test_crash_write_flush_kept),
        cmocka_unit_test(test_crash_keep),
        cmocka_unit_test(test_fua_survives_crash),
        cmocka_unit_test(test_torn_writes_sector_aligned),
        cmocka_unit_test(test_lose_random_whole_writes),
        cmocka_unit_test(test_random_ops_match_reference),
        cmocka_unit_test(test_lose_unflushed_matches_durable),
        cmocka_unit_test(test_destage_when_full),
        cmocka_unit_test(test_cow_overlay),
        cmocka_unit_test(test_cow_missing_map_is_an_error),
        cmocka_unit_test(test_file_errors),
        cmocka_unit_test(test_capacity_enospc),
        cmocka_unit_test(test_host_enospc_loses_nothing),
        cmocka_unit_test(test_host_eio_zero_changes_nothing),
        cmocka_unit_test(test_fault_layer),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
