/* The one rule for the names of nodes, networks, NICs and disks: the
 * scenario loader, netback, blkback and the run database all check names
 * with it, so a name one of them accepts is never refused by another.
 *
 * The rule is the scenario format's (docs/scenario-format.md): 1 to max
 * ASCII letters, digits, '-' or '_', the first a letter or digit.  Such a
 * name is safe in a file name, a socket path, an NBD export name, a
 * selector ("n1 -> n2 @ lan") and a command line; a leading '-' would
 * read as an option, a '.' as a path or a host name part. */
#include <errno.h>
#include <string.h>

#include "core/core.h"

static bool name_char(unsigned char ch, bool first)
{
    bool alnum = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
    return alnum || (!first && (ch == '-' || ch == '_'));
}

bool fl_name_valid(const char *name, size_t max)
{
    size_t len = name ? strlen(name) : 0;
    if (len == 0 || len > max) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (!name_char((unsigned char)name[i], i == 0)) {
            return false;
        }
    }
    return true;
}

/* The name as a message shows it: printable ASCII as is, other bytes as
 * \xNN, cut after 64 bytes. */
static void quote(struct fl_buf *b, const char *s)
{
    size_t i = 0;
    for (; s[i] && i < 64; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch >= 0x20 && ch < 0x7f && ch != '\\' && ch != '\'') {
            fl_buf_printf(b, "%c", ch);
        } else {
            fl_buf_printf(b, "\\x%02x", ch);
        }
    }
    if (s[i]) {
        fl_buf_puts(b, "...");
    }
}

bool fl_name_check(const char *what, const char *name, size_t max, struct fl_error **errp)
{
    if (fl_name_valid(name, max)) {
        return true;
    }
    struct fl_buf b = {0};
    size_t len = name ? strlen(name) : 0;
    fl_buf_printf(&b, "%s name '", what);
    quote(&b, name ? name : "");
    fl_buf_puts(&b, "'");
    if (len == 0) {
        fl_buf_puts(&b, " is empty");
    } else if (len > max) {
        fl_buf_printf(&b, " is longer than %zu characters", max);
    } else {
        size_t i = 0;
        while (name_char((unsigned char)name[i], i == 0)) {
            i++;
        }
        unsigned char ch = (unsigned char)name[i];
        if (ch >= 0x20 && ch < 0x7f && ch != '\\' && ch != '\'') {
            fl_buf_printf(&b, ": character '%c' at %zu is not allowed", ch, i);
        } else {
            fl_buf_printf(&b, ": byte 0x%02x at %zu is not allowed", ch, i);
        }
    }
    fl_buf_printf(&b, " (valid: " FL_NAME_RULE ")", max);
    fl_error_setf(errp, EINVAL, "%s", b.data);
    fl_buf_free(&b);
    return false;
}
