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

static void json_string(struct fl_buf *b, const char *s, bool script_safe)
{
    fl_buf_append(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"':
            fl_buf_puts(b, "\\\"");
            break;
        case '\\':
            fl_buf_puts(b, "\\\\");
            break;
        case '\n':
            fl_buf_puts(b, "\\n");
            break;
        case '\r':
            fl_buf_puts(b, "\\r");
            break;
        case '\t':
            fl_buf_puts(b, "\\t");
            break;
        case '<':
        case '>':
        case '&':
            if (script_safe) {
                fl_buf_printf(b, "\\u%04x", *p);
            } else {
                fl_buf_append(b, p, 1);
            }
            break;
        default:
            if (*p < 0x20 || *p == 0x7f) {
                fl_buf_printf(b, "\\u%04x", *p);
            } else {
                fl_buf_append(b, p, 1);
            }
        }
    }
    fl_buf_append(b, "\"", 1);
}

void fl_buf_json_string(struct fl_buf *b, const char *s)
{
    json_string(b, s, false);
}

void fl_buf_json_string_script(struct fl_buf *b, const char *s)
{
    json_string(b, s, true);
}

void fl_buf_xml_escape(struct fl_buf *b, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        switch (*p) {
        case '<':
            fl_buf_puts(b, "&lt;");
            break;
        case '>':
            fl_buf_puts(b, "&gt;");
            break;
        case '&':
            fl_buf_puts(b, "&amp;");
            break;
        case '"':
            fl_buf_puts(b, "&quot;");
            break;
        default:
            if (*p < 0x20 && *p != '\n' && *p != '\t' && *p != '\r') {
                fl_buf_puts(b, "?");
            } else {
                fl_buf_append(b, p, 1);
            }
        }
    }
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
