/*
 * The link-selector grammar (impair.h section 8): the shape of "*",
 * "lan", "n1 -> n2", "n1 <-> * @ wan".  One parser for the scenario file,
 * `net ctl` and `net serve --link`; names are resolved by the callers.
 *
 *   text ─ split at '@' ─▶ left ─ "<->" or "->"? ─ yes ─▶ END arrow END
 *                      └─▶ network name            └ no ─▶ "*" or NETWORK
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "impair/internal.h"

static bool blank(char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r'); /* isspace() in the C locale */
}

/* text[0..len) without surrounding blanks, as a new string. */
static char *trimmed(const char *text, size_t len)
{
    while (len && blank(*text)) {
        text++;
        len--;
    }
    while (len && blank(text[len - 1])) {
        len--;
    }
    return fl_xstrndup(text, len);
}

static const char *find(const char *s, size_t len, const char *what)
{
    size_t n = strlen(what);
    for (size_t i = 0; i + n <= len; i++) {
        if (!memcmp(s + i, what, n)) {
            return s + i;
        }
    }
    return NULL;
}

bool impair_selector_parse(const char *text, size_t len, struct impair_selector *out,
                           struct fl_error **errp)
{
    memset(out, 0, sizeof *out);
    if (memchr(text, '\0', len)) {
        fl_error_setf(errp, EINVAL, "contains a NUL byte %s", IMPAIR_SELECTOR_HELP);
        return false;
    }
    const char *at = memchr(text, '@', len);
    size_t left_len = at ? (size_t)(at - text) : len;
    char *net = NULL;
    if (at) {
        net = trimmed(at + 1, len - left_len - 1);
        if (!*net) {
            fl_error_setf(errp, EINVAL, "has no network name after '@' %s", IMPAIR_SELECTOR_HELP);
            free(net);
            return false;
        }
    }
    size_t alen = 3;
    const char *arrow = find(text, left_len, "<->");
    if (!arrow) {
        arrow = find(text, left_len, "->");
        alen = 2;
    }
    if (!arrow) {
        char *word = trimmed(text, left_len);
        bool ok = true;
        if (net) {
            fl_error_setf(errp, EINVAL,
                          "uses '@ NETWORK' without a node pair; write just the network name for "
                          "every link of a network");
            ok = false;
        } else if (!*word) {
            fl_error_setf(errp, EINVAL, "is empty %s", IMPAIR_SELECTOR_HELP);
            ok = false;
        } else if (!strcmp(word, "*")) {
            out->kind = IMPAIR_SEL_ALL;
        } else {
            out->kind = IMPAIR_SEL_NETWORK;
            out->network = word;
            word = NULL;
        }
        free(word);
        free(net);
        return ok;
    }
    char *ends[2] = {trimmed(text, (size_t)(arrow - text)),
                     trimmed(arrow + alen, left_len - (size_t)(arrow - text) - alen)};
    if (!*ends[0] || !*ends[1]) {
        fl_error_setf(errp, EINVAL, "is missing a node name on one side of the arrow %s",
                      IMPAIR_SELECTOR_HELP);
        free(ends[0]);
        free(ends[1]);
        free(net);
        return false;
    }
    out->kind = alen == 3 ? IMPAIR_SEL_BOTH_WAYS : IMPAIR_SEL_ONE_WAY;
    for (int i = 0; i < 2; i++) {
        if (!strcmp(ends[i], "*")) {
            free(ends[i]);
            ends[i] = NULL;
        }
    }
    out->a = ends[0];
    out->b = ends[1];
    out->network = net;
    return true;
}

void impair_selector_clear(struct impair_selector *sel)
{
    free(sel->a);
    free(sel->b);
    free(sel->network);
    memset(sel, 0, sizeof *sel);
}

void impair_selector_format(const struct impair_selector *sel, struct fl_buf *out)
{
    switch (sel->kind) {
    case IMPAIR_SEL_ALL:
        fl_buf_puts(out, "*");
        return;
    case IMPAIR_SEL_NETWORK:
        fl_buf_puts(out, sel->network);
        return;
    default:
        fl_buf_printf(out, "%s %s %s", sel->a ? sel->a : "*",
                      sel->kind == IMPAIR_SEL_BOTH_WAYS ? "<->" : "->", sel->b ? sel->b : "*");
        if (sel->network) {
            fl_buf_printf(out, " @ %s", sel->network);
        }
    }
}
