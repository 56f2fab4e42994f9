/* Stream protocol frame reassembly; see reassembly.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "netback/reassembly.h"

void nb_reasm_init(struct nb_reasm *r)
{
    memset(r, 0, sizeof *r);
}

void nb_reasm_reset(struct nb_reasm *r)
{
    r->hdr_have = 0;
    r->want = 0;
    r->have = 0;
    r->offset = 0;
    r->frames = 0;
    r->error[0] = '\0';
}

void nb_reasm_free(struct nb_reasm *r)
{
    free(r->buf);
    r->buf = NULL;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Validates a length prefix found at stream offset `at`. */
static int check_len(struct nb_reasm *r, uint32_t len, uint64_t at)
{
    if (len >= NB_FRAME_MIN && len <= NB_FRAME_MAX) {
        return 0;
    }
    const char *what = len == 0             ? "zero frame length"
                       : len < NB_FRAME_MIN ? "runt frame length"
                                            : "frame length";
    snprintf(r->error, sizeof r->error,
             "%s %u (0x%08x) at stream offset %llu after %llu frames (valid: %d..%d)", what,
             (unsigned)len, (unsigned)len, (unsigned long long)at, (unsigned long long)r->frames,
             NB_FRAME_MIN, NB_FRAME_MAX);
    return -EBADMSG;
}

int nb_reasm_feed(struct nb_reasm *r, const uint8_t *data, size_t size, nb_frame_fn *cb, void *arg)
{
    const uint8_t *p = data;
    const uint8_t *end = data + size;

    /* Finish a split length prefix or frame first. */
    if (r->hdr_have > 0 && r->hdr_have < NB_STREAM_HDR_SIZE) {
        size_t n = FL_MIN((size_t)(end - p), NB_STREAM_HDR_SIZE - r->hdr_have);
        memcpy(r->hdr + r->hdr_have, p, n);
        r->hdr_have += n;
        p += n;
        r->offset += n;
        if (r->hdr_have < NB_STREAM_HDR_SIZE) {
            return 0;
        }
        uint32_t len = be32(r->hdr);
        int err = check_len(r, len, r->offset - NB_STREAM_HDR_SIZE);
        if (err) {
            return err;
        }
        r->want = len;
        r->have = 0;
    }
    if (r->hdr_have == NB_STREAM_HDR_SIZE) {
        size_t n = FL_MIN((size_t)(end - p), r->want - r->have);
        if (r->have == 0 && n == r->want) {
            /* The whole body is in this chunk: no copy. */
            r->hdr_have = 0;
            r->offset += n;
            r->frames++;
            int err = cb(arg, p, n);
            p += n;
            if (err < 0) {
                return err;
            }
        } else {
            if (!r->buf) {
                r->buf = fl_xmalloc(NB_FRAME_MAX);
            }
            memcpy(r->buf + r->have, p, n);
            r->have += n;
            p += n;
            r->offset += n;
            if (r->have < r->want) {
                return 0;
            }
            r->hdr_have = 0;
            r->frames++;
            int err = cb(arg, r->buf, r->want);
            if (err < 0) {
                return err;
            }
        }
    }

    /* Whole frames in place. */
    while ((size_t)(end - p) >= NB_STREAM_HDR_SIZE) {
        uint32_t len = be32(p);
        int err = check_len(r, len, r->offset);
        if (err) {
            return err;
        }
        if ((size_t)(end - p) - NB_STREAM_HDR_SIZE < len) {
            break;
        }
        p += NB_STREAM_HDR_SIZE;
        r->offset += NB_STREAM_HDR_SIZE + len;
        r->frames++;
        err = cb(arg, p, len);
        p += len;
        if (err < 0) {
            return err;
        }
    }

    /* Keep the tail: a partial prefix, or a prefix and part of a frame. */
    size_t left = (size_t)(end - p);
    if (left == 0) {
        return 0;
    }
    if (left < NB_STREAM_HDR_SIZE) {
        memcpy(r->hdr, p, left);
        r->hdr_have = left;
        r->offset += left;
        return 0;
    }
    memcpy(r->hdr, p, NB_STREAM_HDR_SIZE);
    r->hdr_have = NB_STREAM_HDR_SIZE;
    r->want = be32(r->hdr); /* validated in the loop above */
    p += NB_STREAM_HDR_SIZE;
    left -= NB_STREAM_HDR_SIZE;
    if (!r->buf) {
        r->buf = fl_xmalloc(NB_FRAME_MAX);
    }
    memcpy(r->buf, p, left);
    r->have = left;
    r->offset += NB_STREAM_HDR_SIZE + left;
    return 0;
}

int nb_reasm_finish(struct nb_reasm *r)
{
    if (r->hdr_have == 0) {
        return 0;
    }
    if (r->hdr_have < NB_STREAM_HDR_SIZE) {
        snprintf(r->error, sizeof r->error,
                 "stream ended inside a length prefix (%zu of %d bytes) at offset %llu after %llu "
                 "frames",
                 r->hdr_have, NB_STREAM_HDR_SIZE, (unsigned long long)r->offset,
                 (unsigned long long)r->frames);
    } else {
        snprintf(r->error, sizeof r->error,
                 "stream ended inside a frame (%zu of %u bytes) at offset %llu after %llu frames",
                 r->have, (unsigned)r->want, (unsigned long long)r->offset,
                 (unsigned long long)r->frames);
    }
    return -EBADMSG;
}
