/* The name tables of trace's enums (fates, drop reasons, I/O ops and
 * faults, crash outcomes), generated from the X-macro lists in trace.h,
 * and their lookups both ways. */
#include <string.h>

#include "trace/trace.h"

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
