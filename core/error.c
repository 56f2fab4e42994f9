/* Error objects for setup paths (QEMU include/qapi/error.h rules). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

void fl_error_vsetf(struct fl_error **errp, int code, const char *fmt, va_list ap)
{
    if (!errp || *errp) {
        return;
    }
    struct fl_error *err = fl_xmalloc(sizeof *err);
    err->code = code;
    err->msg = fl_xvasprintf(fmt, ap);
    *errp = err;
}

void fl_error_setf(struct fl_error **errp, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fl_error_vsetf(errp, code, fmt, ap);
    va_end(ap);
}

void fl_error_setf_errno(struct fl_error **errp, int code, const char *fmt, ...)
{
    if (!errp || *errp) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    char *msg = fl_xvasprintf(fmt, ap);
    va_end(ap);
    fl_error_setf(errp, code, "%s: %s", msg, strerror(code));
    free(msg);
}

void fl_error_prepend(struct fl_error **errp, const char *fmt, ...)
{
    if (!errp || !*errp) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    char *prefix = fl_xvasprintf(fmt, ap);
    va_end(ap);
    char *msg = fl_xasprintf("%s%s", prefix, (*errp)->msg);
    free(prefix);
    free((*errp)->msg);
    (*errp)->msg = msg;
}

void fl_error_propagate(struct fl_error **dst, struct fl_error *src)
{
    if (!src) {
        return;
    }
    if (!dst || *dst) {
        fl_error_free(src);
        return;
    }
    *dst = src;
}

void fl_error_free(struct fl_error *err)
{
    if (err) {
        free(err->msg);
        free(err);
    }
}
