/* Name tables of the trace enums (generated from the X-macro lists in
 * trace.h), the frame hash, and time formatting for queries/report. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "trace/db-internal.h"

static const char *const fate_names[] = {
#define N(name, str) str,
    TRACE_FATES(N)
#undef N
};
static const char *const reason_names[] = {
#define N(name, str) str,
    TRACE_DROP_REASONS(N)
#undef N
};
static const char *const op_names[] = {
#define N(name, str) str,
    TRACE_IO_OPS(N)
#undef N
};
static const char *const fault_names[] = {
#define N(name, str) str,
    TRACE_IO_FAULTS(N)
#undef N
};
static const char *const outcome_names[] = {
#define N(name, str) str,
    TRACE_CRASH_OUTCOMES(N)
#undef N
};

static const char *lookup(const char *const *names, size_t n, unsigned v)
{
    return v < n ? names[v] : "invalid";
}

static int parse(const char *const *names, size_t n, const char *s)
{
    if (!s) {
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (!strcmp(names[i], s)) {
            return (int)i;
        }
    }
    return -1;
}

const char *trace_fate_name(enum trace_fate fate)
{
    return lookup(fate_names, FL_ARRAY_LEN(fate_names), (unsigned)fate);
}

const char *trace_drop_reason_name(enum trace_drop_reason reason)
{
    return lookup(reason_names, FL_ARRAY_LEN(reason_names), (unsigned)reason);
}

const char *trace_io_op_name(enum trace_io_op op)
{
    return lookup(op_names, FL_ARRAY_LEN(op_names), (unsigned)op);
}

const char *trace_io_fault_name(enum trace_io_fault fault)
{
    return lookup(fault_names, FL_ARRAY_LEN(fault_names), (unsigned)fault);
}

const char *trace_crash_outcome_name(enum trace_crash_outcome outcome)
{
    return lookup(outcome_names, FL_ARRAY_LEN(outcome_names), (unsigned)outcome);
}

int trace_fate_parse(const char *name)
{
    return parse(fate_names, FL_ARRAY_LEN(fate_names), name);
}

int trace_drop_reason_parse(const char *name)
{
    return parse(reason_names, FL_ARRAY_LEN(reason_names), name);
}

/* See trace.h: four 64-bit lanes over 32-byte blocks (independent
 * multiply chains, so the CPU overlaps them), folded, then the remaining
 * words and a zero-padded tail, then MurmurHash3's fmix64.  About 8x
 * faster than byte-wise FNV on a 1500-byte frame; netback hashes every
 * frame on its event loop. */
#define FH_K UINT64_C(0x517cc1b727220a95)

static inline uint64_t fh_rotl(uint64_t x, int r)
{
    return (x << r) | (x >> (64 - r));
}

static inline uint64_t fh_step(uint64_t h, uint64_t w)
{
    return (fh_rotl(h, 5) ^ w) * FH_K;
}

static inline uint64_t fh_load(const unsigned char *p)
{
    /* little-endian regardless of the host */
    return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24 |
           (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 | (uint64_t)p[6] << 48 |
           (uint64_t)p[7] << 56;
}

uint32_t trace_frame_hash(const void *data, size_t size)
{
    const unsigned char *p = data;
    size_t n = size;
    uint64_t a = UINT64_C(0x9e3779b97f4a7c15) ^ (uint64_t)size;
    uint64_t b = UINT64_C(0xbf58476d1ce4e5b9);
    uint64_t c = UINT64_C(0x94d049bb133111eb);
    uint64_t d = UINT64_C(0x2545f4914f6cdd1d);
    for (; n >= 32; p += 32, n -= 32) {
        a = fh_step(a, fh_load(p));
        b = fh_step(b, fh_load(p + 8));
        c = fh_step(c, fh_load(p + 16));
        d = fh_step(d, fh_load(p + 24));
    }
    uint64_t h = fh_step(fh_step(fh_step(a, b), c), d);
    for (; n >= 8; p += 8, n -= 8) {
        h = fh_step(h, fh_load(p));
    }
    if (n) {
        uint64_t w = 0;
        for (size_t i = 0; i < n; i++) {
            w |= (uint64_t)p[i] << (8 * i);
        }
        h = fh_step(h, w);
    }
    h ^= h >> 33;
    h *= UINT64_C(0xff51afd7ed558ccd);
    h ^= h >> 33;
    h *= UINT64_C(0xc4ceb9fe1a85ec53);
    h ^= h >> 33;
    return (uint32_t)h;
}

void trace_fmt_time(struct fl_buf *b, int64_t ns)
{
    uint64_t a = ns < 0 ? (uint64_t)0 - (uint64_t)ns : (uint64_t)ns;
    const char *sign = ns < 0 && a >= 1000u ? "-" : ""; /* never "-0.000000s" */
    fl_buf_printf(b, "%s%" PRIu64 ".%06" PRIu64 "s", sign, a / 1000000000u,
                  (a % 1000000000u) / 1000u);
}

void trace_fmt_duration(struct fl_buf *b, int64_t ns)
{
    double v = (double)ns;
    double a = v < 0 ? -v : v;
    if (a < 1e3) {
        fl_buf_printf(b, "%" PRId64 "ns", ns);
    } else if (a < 1e6) {
        fl_buf_printf(b, "%.3gus", v / 1e3);
    } else if (a < 1e9) {
        fl_buf_printf(b, "%.3gms", v / 1e6);
    } else {
        fl_buf_printf(b, "%.3gs", v / 1e9);
    }
}
