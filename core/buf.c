/* Growable NUL-terminated byte strings. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

void fl_buf_append(struct fl_buf *b, const void *data, size_t size)
{
    b->data = fl_xgrow(b->data, &b->alloc, b->size + size + 1, 1);
    if (size) {
        memcpy(b->data + b->size, data, size);
    }
    b->size += size;
    b->data[b->size] = '\0';
}

void fl_buf_puts(struct fl_buf *b, const char *s)
{
    fl_buf_append(b, s, strlen(s));
}

void fl_buf_printf(struct fl_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = fl_xvasprintf(fmt, ap);
    va_end(ap);
    fl_buf_puts(b, s);
    free(s);
}

/* JSON strings are written by core/text.c's one escaper, which also
 * turns invalid UTF-8 into U+FFFD, so every writer emits valid JSON. */
void fl_buf_json_string(struct fl_buf *b, const char *s)
{
    fl_text_json(b, s ? s : "", s ? strlen(s) : 0, false);
}

void fl_buf_json_string_script(struct fl_buf *b, const char *s)
{
    fl_text_json(b, s ? s : "", s ? strlen(s) : 0, true);
}

void fl_buf_reset(struct fl_buf *b)
{
    b->size = 0;
    if (b->data) {
        b->data[0] = '\0';
    }
}

char *fl_buf_steal(struct fl_buf *b)
{
    char *s = b->data ? b->data : fl_xstrdup("");
    b->data = NULL;
    b->size = b->alloc = 0;
    return s;
}

void fl_buf_free(struct fl_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->size = b->alloc = 0;
}
