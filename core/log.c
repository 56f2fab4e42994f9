/* Leveled logging with a pluggable sink and rate limiting. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

static const char *const level_names[] = {
#define FL_LOG_LEVEL_NAME(name, str) str,
    FL_LOG_LEVELS(FL_LOG_LEVEL_NAME)
#undef FL_LOG_LEVEL_NAME
};

static int current_level = -1;
static fl_log_fn *sink_fn;
static void *sink_arg;

const char *fl_log_level_name(enum fl_log_level level)
{
    return (size_t)level < FL_ARRAY_LEN(level_names) ? level_names[level] : "?";
}

static enum fl_log_level level_from_env(void)
{
    const char *s = getenv("FAULTLINE_LOG");
    if (s) {
        for (size_t i = 0; i < FL_ARRAY_LEN(level_names); i++) {
            if (!strcmp(s, level_names[i])) {
                return (enum fl_log_level)i;
            }
        }
        if (!strcmp(s, "warn")) {
            return FL_LOG_WARN;
        }
    }
    return FL_LOG_WARN;
}

void fl_log_set_level(enum fl_log_level level)
{
    current_level = (int)level;
}

enum fl_log_level fl_log_get_level(void)
{
    if (current_level < 0) {
        current_level = (int)level_from_env();
    }
    return (enum fl_log_level)current_level;
}

void fl_log_set_sink(fl_log_fn *fn, void *arg)
{
    sink_fn = fn;
    sink_arg = arg;
}

bool fl_log_enabled(enum fl_log_level level)
{
    return level <= fl_log_get_level();
}

void fl_log(enum fl_log_level level, const char *room, const char *fmt, ...)
{
    if (!fl_log_enabled(level)) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    char *line = fl_xvasprintf(fmt, ap);
    va_end(ap);
    if (sink_fn) {
        sink_fn(sink_arg, level, room, line);
    } else {
        fprintf(stderr, "faultline: %s: %s: %s\n", room, fl_log_level_name(level), line);
    }
    free(line);
}

bool fl_ratelimit_allow(struct fl_ratelimit *rl, int64_t now_ns, uint64_t *suppressed)
{
    *suppressed = 0;
    if (rl->interval_ns > 0 && now_ns - rl->last_refill_ns >= rl->interval_ns) {
        rl->tokens = rl->burst;
        rl->last_refill_ns = now_ns;
    }
    if (rl->tokens == 0) {
        rl->suppressed++;
        return false;
    }
    rl->tokens--;
    *suppressed = rl->suppressed;
    rl->suppressed = 0;
    return true;
}
