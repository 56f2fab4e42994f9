/* Link selectors: which directed links a `links:` entry or a link event
 * applies to.  The grammar is impair's (impair_selector_parse, shared with
 * `net ctl` and `net serve --link`); this file resolves the names against
 * the scenario and ranks the result.
 *
 *   "*"                 every link                         rank 0
 *   "lan"               every link of network lan          rank 2
 *   "n1 -> *", "* <-> n2"   links from/to/of one node      rank 4 (+1 with @net)
 *   "n1 <-> n2"         both directions of a pair          rank 6 (+1 with @net)
 *   "n1 -> n2"          one direction                      rank 8 (+1 with @net)
 *   any of the last three may end with "@ NETWORK" to limit it to one network.
 * Higher rank wins key by key (a network default, then a pair, then a
 * direction).
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "topology/internal.h"

static char *trim(const char *s, size_t len)
{
    while (len && isspace((unsigned char)*s)) {
        s++;
        len--;
    }
    while (len && isspace((unsigned char)s[len - 1])) {
        len--;
    }
    return fl_xstrndup(s, len);
}

static const char selector_help[] = IMPAIR_SELECTOR_HELP;

/* Node name or '*' (NULL: -1); -2 on error (reported). */
static int node_word(struct tc *c, const struct ty_node *at, const char *w)
{
    if (!w) {
        return -1;
    }
    for (size_t i = 0; i < c->s->n_nodes; i++) {
        if (!strcmp(c->s->nodes[i].name, w)) {
            return (int)i;
        }
    }
    const char **names = fl_xcalloc(c->s->n_nodes + 1, sizeof(*names));
    for (size_t i = 0; i < c->s->n_nodes; i++) {
        names[i] = c->s->nodes[i].name;
    }
    const char *sugg = tc_suggest(w, names, c->s->n_nodes);
    struct fl_buf q = {0};
    tc_quote(&q, w, strlen(w));
    if (sugg) {
        tc_err_val(c, at, "names %s, which is not a node; did you mean '%s'?", q.data, sugg);
    } else {
        struct fl_buf valid = {0};
        tc_list_names(&valid, names, c->s->n_nodes > 12 ? 12 : c->s->n_nodes);
        tc_err_val(c, at, "names %s, which is not a node (valid: %s)", q.data,
                   valid.data ? valid.data : "no nodes");
        fl_buf_free(&valid);
    }
    fl_buf_free(&q);
    free(names);
    return -2;
}

static bool on_network(const struct topo_scenario *s, int node, int net)
{
    for (size_t i = 0; i < s->nodes[node].n_nics; i++) {
        if ((int)s->nodes[node].nics[i].network == net) {
            return true;
        }
    }
    return false;
}

static bool share_network(const struct topo_scenario *s, int a, int b)
{
    for (size_t i = 0; i < s->nodes[a].n_nics; i++) {
        if (on_network(s, b, (int)s->nodes[a].nics[i].network)) {
            return true;
        }
    }
    return false;
}

/* Index of network `name`, or -1 after reporting it (with a suggestion). */
static int network_word(struct tc *c, const struct ty_node *n, const char *net)
{
    for (size_t i = 0; i < c->s->n_networks; i++) {
        if (!strcmp(c->s->networks[i].name, net)) {
            return (int)i;
        }
    }
    const char **names = fl_xcalloc(c->s->n_networks + 1, sizeof(*names));
    for (size_t i = 0; i < c->s->n_networks; i++) {
        names[i] = c->s->networks[i].name;
    }
    struct fl_buf valid = {0};
    tc_list_names(&valid, names, c->s->n_networks);
    const char *sugg = tc_suggest(net, names, c->s->n_networks);
    if (sugg) {
        tc_err_val(c, n, "names network '%s', which does not exist; did you mean '%s'?", net, sugg);
    } else {
        tc_err_val(c, n, "names network '%s', which does not exist (valid: %s)", net,
                   valid.data ? valid.data : "");
    }
    fl_buf_free(&valid);
    free(names);
    return -1;
}

/* A bare word that is not a network: say what it is instead. */
static void not_a_network(struct tc *c, const struct ty_node *n, const char *text)
{
    bool is_node = false;
    for (size_t i = 0; i < c->s->n_nodes; i++) {
        is_node = is_node || !strcmp(c->s->nodes[i].name, text);
    }
    if (is_node) {
        tc_err_val(c, n, "is a node, not a network; for a node's links write '%s <-> *' %s", text,
                   selector_help);
        return;
    }
    const char **names = fl_xcalloc(c->s->n_networks + 1, sizeof(*names));
    for (size_t i = 0; i < c->s->n_networks; i++) {
        names[i] = c->s->networks[i].name;
    }
    const char *sugg = tc_suggest(text, names, c->s->n_networks);
    if (sugg) {
        tc_err_val(c, n, "is not a network; did you mean '%s'? %s", sugg, selector_help);
    } else {
        tc_err_val(c, n, "is not a network or a link %s", selector_help);
    }
    free(names);
}

/* The node pair of a parsed "A -> B" / "A <-> B" [@ NET], ranked. */
static bool pair(struct tc *c, const struct ty_node *n, const struct impair_selector *sel,
                 int has_net, struct tc_selector *out)
{
    int a = node_word(c, n, sel->a);
    int b = a == -2 ? -2 : node_word(c, n, sel->b);
    if (a == -2 || b == -2) {
        return false;
    }
    out->a = a;
    out->b = b;
    out->kind = sel->kind == IMPAIR_SEL_BOTH_WAYS ? 3 : 2;
    if (a == -1 && b == -1) {
        tc_err_val(c, n, "has '*' on both sides; write '*' alone for every link");
        return false;
    }
    if (a >= 0 && a == b) {
        tc_err_val(c, n, "links a node to itself; a link joins two different nodes");
        return false;
    }
    if (a >= 0 && b >= 0) {
        out->rank = (out->kind == 3 ? 6 : 8) + has_net;
        if (out->network >= 0 &&
            (!on_network(c->s, a, out->network) || !on_network(c->s, b, out->network))) {
            int off = on_network(c->s, a, out->network) ? b : a;
            tc_err_val(c, n, "names network '%s', which node '%s' is not on",
                       c->s->networks[out->network].name, c->s->nodes[off].name);
            return false;
        }
        if (!share_network(c->s, a, b)) {
            tc_err_val(c, n,
                       "joins '%s' and '%s', which share no network (no link exists between "
                       "them)",
                       c->s->nodes[a].name, c->s->nodes[b].name);
            return false;
        }
        return true;
    }
    out->rank = 4 + has_net;
    int one = a >= 0 ? a : b;
    if (out->network >= 0 && !on_network(c->s, one, out->network)) {
        tc_err_val(c, n, "names network '%s', which node '%s' is not on",
                   c->s->networks[out->network].name, c->s->nodes[one].name);
        return false;
    }
    return true;
}

static bool selector(struct tc *c, const struct ty_node *n, struct tc_selector *out)
{
    memset(out, 0, sizeof(*out));
    out->network = -1;
    out->a = out->b = -1;
    if (!n || n->type != TY_SCALAR || ty_is_null(n) || strlen(n->str) != n->len) {
        tc_err_val(c, n, "is not a link selector %s", selector_help);
        return false;
    }
    out->text = trim(n->str, n->len);
    struct impair_selector sel;
    struct fl_error *err = NULL;
    if (!impair_selector_parse(n->str, n->len, &sel, &err)) {
        tc_err_val(c, n, "%s", err->msg);
        fl_error_free(err);
        return false;
    }
    bool ok = true;
    switch (sel.kind) {
    case IMPAIR_SEL_ALL:
        out->kind = 0;
        out->rank = 0;
        break;
    case IMPAIR_SEL_NETWORK:
        for (size_t i = 0; i < c->s->n_networks; i++) {
            if (!strcmp(c->s->networks[i].name, sel.network)) {
                out->network = (int)i;
            }
        }
        if (out->network < 0) {
            not_a_network(c, n, sel.network);
            ok = false;
        } else {
            out->kind = 1;
            out->rank = 2;
        }
        break;
    default:
        if (sel.network) {
            out->network = network_word(c, n, sel.network);
            ok = out->network >= 0;
        }
        ok = ok && pair(c, n, &sel, sel.network ? 1 : 0, out);
        break;
    }
    impair_selector_clear(&sel);
    return ok;
}

bool tc_selector(struct tc *c, const struct ty_node *n, struct tc_selector *out)
{
    if (!selector(c, n, out)) {
        free(out->text);
        out->text = NULL;
        return false;
    }
    return true;
}

bool tc_selector_matches(const struct tc *c, const struct tc_selector *sel,
                         const struct topo_link *l)
{
    (void)c;
    if (sel->network >= 0 && (int)l->network != sel->network) {
        return false;
    }
    switch (sel->kind) {
    case 0:
    case 1:
        return true;
    case 2:
        return (sel->a < 0 || (int)l->src == sel->a) && (sel->b < 0 || (int)l->dst == sel->b);
    default:
        return ((sel->a < 0 || (int)l->src == sel->a) && (sel->b < 0 || (int)l->dst == sel->b)) ||
               ((sel->a < 0 || (int)l->dst == sel->a) && (sel->b < 0 || (int)l->src == sel->b));
    }
}
