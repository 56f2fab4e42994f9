/* Run-clock times and durations as queries and the report print them. */
#include <inttypes.h>

#include "trace/internal.h"

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
