/*
 * LZ4 decoding for Debian's bzImage payload (CONFIG_KERNEL_LZ4): the
 * "legacy" frame of lz4 -l.
 *
 *   02 21 4c 18 | u32le csize | block (<= 8 MiB decoded) | u32le csize | block ...
 *
 * Every block but the last decodes to exactly 8 MiB; that is how the end
 * is found without trusting what follows the stream in the bzImage (the
 * kernel's 4-byte size, then decompressor code).
 *
 * A block is a run of sequences:
 *   token (lit_len:4 | match_len:4) [lit_len ext 255...] literals
 *   u16le offset [match_len ext 255...]      (match length + 4)
 * the last sequence has literals only.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hv/internal.h"

#define LZ4_LEGACY_BLOCK (8u << 20)
#define LZ4_BOUND(n)     ((n) + (n) / 255 + 16)

ssize_t hv_lz4_block_decode(const uint8_t *src, size_t src_size, uint8_t *dst, size_t dst_cap)
{
    size_t ip = 0, op = 0;
    while (ip < src_size) {
        uint8_t token = src[ip++];
        size_t lit = token >> 4;
        if (lit == 15) {
            uint8_t b;
            do {
                if (ip >= src_size) {
                    return -EINVAL;
                }
                b = src[ip++];
                lit += b;
            } while (b == 255);
        }
        if (lit > src_size - ip) {
            return -EINVAL;
        }
        if (lit > dst_cap - op) {
            return -ENOSPC;
        }
        memcpy(dst + op, src + ip, lit);
        ip += lit;
        op += lit;
        if (ip == src_size) {
            break; /* last sequence: literals only */
        }
        if (src_size - ip < 2) {
            return -EINVAL;
        }
        size_t offset = (size_t)src[ip] | (size_t)src[ip + 1] << 8;
        ip += 2;
        if (offset == 0 || offset > op) {
            return -EINVAL;
        }
        size_t mlen = token & 15;
        if (mlen == 15) {
            uint8_t b;
            do {
                if (ip >= src_size) {
                    return -EINVAL;
                }
                b = src[ip++];
                mlen += b;
            } while (b == 255);
        }
        mlen += 4;
        if (mlen > dst_cap - op) {
            return -ENOSPC;
        }
        const uint8_t *m = dst + op - offset;
        if (offset >= mlen) {
            memcpy(dst + op, m, mlen);
        } else {
            for (size_t i = 0; i < mlen; i++) {
                dst[op + i] = m[i]; /* overlapping copy repeats the pattern */
            }
        }
        op += mlen;
    }
    return (ssize_t)op;
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

uint8_t *hv_lz4_legacy_decode(const uint8_t *src, size_t src_size, size_t *out_size,
                              struct fl_error **errp)
{
    if (src_size < 4 || le32(src) != UINT32_C(0x184c2102)) {
        fl_error_setf(errp, EINVAL, "not an LZ4 legacy stream (magic 02 21 4c 18 missing)");
        return NULL;
    }
    size_t ip = 4, op = 0, alloc = 0;
    uint8_t *out = NULL;
    size_t blocks = 0;
    while (src_size - ip >= 4) {
        uint32_t csize = le32(src + ip);
        if (csize == UINT32_C(0x184c2102)) { /* concatenated stream */
            ip += 4;
            continue;
        }
        if (csize == 0 || csize > LZ4_BOUND(LZ4_LEGACY_BLOCK) || csize > src_size - ip - 4) {
            break; /* not a block: the end of the stream */
        }
        out = fl_xgrow(out, &alloc, op + LZ4_LEGACY_BLOCK, 1);
        ssize_t n = hv_lz4_block_decode(src + ip + 4, csize, out + op, LZ4_LEGACY_BLOCK);
        if (n < 0) {
            fl_error_setf(errp, EINVAL, "LZ4 block %zu at offset %zu (%u bytes) is malformed",
                          blocks, ip, csize);
            free(out);
            return NULL;
        }
        ip += 4 + csize;
        op += (size_t)n;
        blocks++;
        if ((size_t)n < LZ4_LEGACY_BLOCK) {
            break; /* a short block is the last one */
        }
    }
    if (blocks == 0) {
        fl_error_setf(errp, EINVAL, "LZ4 legacy stream holds no block");
        free(out);
        return NULL;
    }
    *out_size = op;
    return out;
}
