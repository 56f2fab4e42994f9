/* Allocation that aborts on exhaustion, string duplication and formatting,
 * and the byte hash (fl_hash64). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

static void *check(void *p)
{
    if (!p) {
        fputs("faultline: out of memory\n", stderr);
        abort();
    }
    return p;
}

void *fl_xmalloc(size_t size)
{
    return check(malloc(size ? size : 1));
}

void *fl_xcalloc(size_t n, size_t size)
{
    return check(calloc(n ? n : 1, size ? size : 1));
}

void *fl_xrealloc(void *p, size_t size)
{
    return check(realloc(p, size ? size : 1));
}

void *fl_xgrow(void *p, size_t *alloc, size_t want, size_t elem_size)
{
    if (want <= *alloc) {
        return p;
    }
    size_t n = *alloc ? *alloc : 8;
    while (n < want) {
        if (n > SIZE_MAX / 2 / elem_size) {
            check(NULL);
        }
        n *= 2;
    }
    p = fl_xrealloc(p, n * elem_size);
    *alloc = n;
    return p;
}

char *fl_xstrdup(const char *s)
{
    return check(strdup(s));
}

char *fl_xstrndup(const char *s, size_t n)
{
    return check(strndup(s, n));
}

char *fl_xvasprintf(const char *fmt, va_list ap)
{
    char *s;
    if (vasprintf(&s, fmt, ap) < 0) {
        check(NULL);
    }
    return s;
}

char *fl_xasprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = fl_xvasprintf(fmt, ap);
    va_end(ap);
    return s;
}

uint64_t fl_hash64(const void *data, size_t size)
{
    const unsigned char *p = data;
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    for (size_t i = 0; i < size; i++) {
        h ^= p[i];
        h *= UINT64_C(0x100000001b3);
    }
    return h;
}
