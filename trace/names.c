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

uint32_t trace_frame_hash(const void *data, size_t size)
{
    const unsigned char *p = data;
    uint32_t h = UINT32_C(2166136261);
    for (size_t i = 0; i < size; i++) {
        h ^= p[i];
        h *= UINT32_C(16777619);
    }
    return h;
}

void trace_fmt_time(struct fl_buf *b, int64_t ns)
{
    const char *sign = ns < 0 ? "-" : "";
    uint64_t a = ns < 0 ? (uint64_t)0 - (uint64_t)ns : (uint64_t)ns;
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
