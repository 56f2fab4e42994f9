/* Unit tests for netback's stream protocol reassembler: any chunking of
 * the byte stream gives the same frames; every protocol violation is
 * caught with a message that says what and where. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/core.h"
#include "netback/reassembly.h"

/* A deterministic PRNG for test data (splitmix64). */
static uint64_t rng_state;
static uint64_t rnd(void)
{
    uint64_t z = (rng_state += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

struct stream {
    uint8_t *bytes;
    size_t size;
    size_t n_frames;
    size_t *offsets; /* of each frame's body */
    size_t *lens;
};

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void make_stream(struct stream *s, size_t n_frames, uint64_t seed)
{
    rng_state = seed;
    memset(s, 0, sizeof *s);
    s->n_frames = n_frames;
    s->offsets = calloc(n_frames, sizeof *s->offsets);
    s->lens = calloc(n_frames, sizeof *s->lens);
    size_t total = 0;
    for (size_t i = 0; i < n_frames; i++) {
        size_t len;
        switch (i % 7) {
        case 0:
            len = NB_FRAME_MIN;
            break;
        case 5:
            len = i % 3 == 0 ? NB_FRAME_MAX : 1514;
            break;
        default:
            len = NB_FRAME_MIN + rnd() % 1500;
        }
        s->lens[i] = len;
        total += NB_STREAM_HDR_SIZE + len;
    }
    s->bytes = malloc(total);
    size_t at = 0;
    for (size_t i = 0; i < n_frames; i++) {
        put_be32(s->bytes + at, (uint32_t)s->lens[i]);
        at += NB_STREAM_HDR_SIZE;
        s->offsets[i] = at;
        for (size_t k = 0; k < s->lens[i]; k++) {
            s->bytes[at + k] = (uint8_t)rnd();
        }
        at += s->lens[i];
    }
    s->size = total;
}

static void free_stream(struct stream *s)
{
    free(s->bytes);
    free(s->offsets);
    free(s->lens);
}

struct check {
    const struct stream *s;
    size_t next;
    size_t in_place; /* frames handed over without a copy */
    const uint8_t *chunk;
    size_t chunk_size;
    int stop_after; /* return -ECANCELED after this many frames (0: never) */
};

static int on_frame(void *arg, const uint8_t *frame, size_t size)
{
    struct check *c = arg;
    assert_true(c->next < c->s->n_frames);
    assert_int_equal(size, c->s->lens[c->next]);
    assert_memory_equal(frame, c->s->bytes + c->s->offsets[c->next], size);
    if (frame >= c->chunk && frame + size <= c->chunk + c->chunk_size) {
        c->in_place++;
    }
    c->next++;
    if (c->stop_after && (int)c->next == c->stop_after) {
        return -ECANCELED;
    }
    return 0;
}

/* Feeds the stream in chunks whose sizes come from chunker; checks every
 * frame arrives once, in order, intact. */
static void feed_all(const struct stream *s, size_t (*chunker)(size_t left), size_t *in_place)
{
    struct nb_reasm r;
    nb_reasm_init(&r);
    struct check c = {.s = s};
    size_t at = 0;
    while (at < s->size) {
        size_t n = chunker(s->size - at);
        if (n > s->size - at) {
            n = s->size - at;
        }
        c.chunk = s->bytes + at;
        c.chunk_size = n;
        assert_int_equal(nb_reasm_feed(&r, s->bytes + at, n, on_frame, &c), 0);
        at += n;
        assert_int_equal(r.offset, at);
    }
    assert_int_equal(c.next, s->n_frames);
    assert_int_equal(r.frames, s->n_frames);
    assert_int_equal(nb_reasm_finish(&r), 0);
    if (in_place) {
        *in_place = c.in_place;
    }
    nb_reasm_free(&r);
}

static size_t chunk_all(size_t left)
{
    return left;
}
static size_t chunk_one(size_t left)
{
    return 1;
}
static size_t chunk_random(size_t left)
{
    /* Mostly small, sometimes large, sometimes exactly a prefix size. */
    switch (rnd() % 4) {
    case 0:
        return 1 + rnd() % 5;
    case 1:
        return 1 + rnd() % 100;
    case 2:
        return 1 + rnd() % 5000;
    default:
        return 1 + rnd() % 200000;
    }
}

static void test_whole_stream_in_place(void **state)
{
    struct stream s;
    make_stream(&s, 300, 1);
    size_t in_place = 0;
    feed_all(&s, chunk_all, &in_place);
    /* One chunk holding everything: no frame needs a copy. */
    assert_int_equal(in_place, s.n_frames);
    free_stream(&s);
}

static void test_one_byte_at_a_time(void **state)
{
    struct stream s;
    make_stream(&s, 60, 2);
    size_t in_place = 1;
    feed_all(&s, chunk_one, &in_place);
    assert_int_equal(in_place, 0);
    free_stream(&s);
}

static void test_random_chunks(void **state)
{
    for (uint64_t seed = 10; seed < 30; seed++) {
        struct stream s;
        make_stream(&s, 200, seed);
        rng_state = seed * 7919; /* chunk sizes */
        feed_all(&s, chunk_random, NULL);
        free_stream(&s);
    }
}

static void test_boundaries_accepted(void **state)
{
    uint8_t buf[NB_STREAM_HDR_SIZE + NB_FRAME_MAX];
    memset(buf, 0xab, sizeof buf);
    struct stream s = {.bytes = buf, .n_frames = 1};
    size_t off = NB_STREAM_HDR_SIZE, len;
    s.offsets = &off;
    s.lens = &len;
    for (int i = 0; i < 2; i++) {
        len = i == 0 ? NB_FRAME_MIN : NB_FRAME_MAX;
        put_be32(buf, (uint32_t)len);
        s.size = NB_STREAM_HDR_SIZE + len;
        feed_all(&s, chunk_all, NULL);
        feed_all(&s, chunk_one, NULL);
    }
}

/* Feeds bytes after n good frames; expects -EBADMSG and a message with
 * every word of `want`. */
static void expect_error(const uint8_t *bad, size_t bad_size, bool at_finish, const char *want1,
                         const char *want2)
{
    struct stream s;
    make_stream(&s, 3, 99);
    uint8_t *all = malloc(s.size + bad_size);
    memcpy(all, s.bytes, s.size);
    memcpy(all + s.size, bad, bad_size);
    for (int mode = 0; mode < 2; mode++) {
        struct nb_reasm r;
        nb_reasm_init(&r);
        struct check c = {.s = &s};
        int err = 0;
        size_t total = s.size + bad_size;
        if (mode == 0) {
            err = nb_reasm_feed(&r, all, total, on_frame, &c);
        } else {
            for (size_t i = 0; i < total && err == 0; i++) {
                err = nb_reasm_feed(&r, all + i, 1, on_frame, &c);
            }
        }
        if (at_finish) {
            assert_int_equal(err, 0);
            err = nb_reasm_finish(&r);
        }
        assert_int_equal(err, -EBADMSG);
        assert_int_equal(c.next, 3); /* the good frames came through first */
        assert_non_null(strstr(r.error, want1));
        if (want2) {
            assert_non_null(strstr(r.error, want2));
        }
        nb_reasm_free(&r);
    }
    free(all);
    free_stream(&s);
}

static void test_protocol_violations(void **state)
{
    struct stream s;
    make_stream(&s, 3, 99);
    char off[64];
    snprintf(off, sizeof off, "at stream offset %zu after 3 frames", s.size);
    free_stream(&s);

    uint8_t zero[8] = {0, 0, 0, 0, 1, 2, 3, 4};
    expect_error(zero, sizeof zero, false, "zero frame length 0", off);
    uint8_t runt[4];
    put_be32(runt, NB_FRAME_MIN - 1);
    expect_error(runt, sizeof runt, false, "runt frame length 13", "(valid: 14..65553)");
    uint8_t big[4];
    put_be32(big, NB_FRAME_MAX + 1);
    expect_error(big, sizeof big, false, "frame length 65554", "(valid: 14..65553)");
    uint8_t garbage[16] = "GET / HTTP/1.1\r\n";
    expect_error(garbage, sizeof garbage, false, "frame length 1195725856", "0x47455420");
    uint8_t half_hdr[2] = {0, 0};
    expect_error(half_hdr, sizeof half_hdr, true, "inside a length prefix (2 of 4 bytes)", NULL);
    uint8_t truncated[4 + 20];
    put_be32(truncated, 100);
    memset(truncated + 4, 1, 20);
    expect_error(truncated, sizeof truncated, true, "inside a frame (20 of 100 bytes)", NULL);
}

static void test_callback_stops_feed(void **state)
{
    struct stream s;
    make_stream(&s, 10, 5);
    struct nb_reasm r;
    nb_reasm_init(&r);
    struct check c = {.s = &s, .stop_after = 4};
    assert_int_equal(nb_reasm_feed(&r, s.bytes, s.size, on_frame, &c), -ECANCELED);
    assert_int_equal(c.next, 4);
    /* After a reset a fresh stream parses from its start. */
    nb_reasm_reset(&r);
    c = (struct check){.s = &s};
    assert_int_equal(nb_reasm_feed(&r, s.bytes, s.size, on_frame, &c), 0);
    assert_int_equal(c.next, 10);
    nb_reasm_free(&r);
    free_stream(&s);
}

static void test_reset_mid_frame(void **state)
{
    /* A connection dropped mid-frame, then a new one: the partial frame is
     * forgotten. */
    struct stream s;
    make_stream(&s, 5, 6);
    struct nb_reasm r;
    nb_reasm_init(&r);
    struct check c = {.s = &s};
    assert_int_equal(nb_reasm_feed(&r, s.bytes, s.offsets[1] + 3, on_frame, &c), 0);
    assert_int_equal(c.next, 1);
    assert_int_equal(nb_reasm_finish(&r), -EBADMSG);
    nb_reasm_reset(&r);
    c = (struct check){.s = &s};
    assert_int_equal(nb_reasm_feed(&r, s.bytes, s.size, on_frame, &c), 0);
    assert_int_equal(c.next, 5);
    assert_int_equal(nb_reasm_finish(&r), 0);
    nb_reasm_free(&r);
    free_stream(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_whole_stream_in_place), cmocka_unit_test(test_one_byte_at_a_time),
        cmocka_unit_test(test_random_chunks),         cmocka_unit_test(test_boundaries_accepted),
        cmocka_unit_test(test_protocol_violations),   cmocka_unit_test(test_callback_stops_feed),
        cmocka_unit_test(test_reset_mid_frame),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
