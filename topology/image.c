/* image: — extra Debian packages and files copied into the guest image,
 * for every node (image:) and per node (nodes.N.image, merged here). */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "topology/internal.h"
/* ------------------------------------------------------------------ */
/* image:                                                              */
/* ------------------------------------------------------------------ */

static const char *const image_keys[] = {"packages", "files", NULL};
static const char *const file_keys[] = {"src", "dst", NULL};

static bool debian_package_name(const char *s)
{
    /* Debian policy 5.6.1: [a-z0-9][a-z0-9+.-]+ */
    size_t len = strlen(s);
    if (len < 2 || len > 128 || !(islower((unsigned char)s[0]) || isdigit((unsigned char)s[0]))) {
        return false;
    }
    for (size_t i = 1; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (!islower(ch) && !isdigit(ch) && ch != '+' && ch != '.' && ch != '-') {
            return false;
        }
    }
    return true;
}

bool tc_guest_path(const char *s)
{
    if (s[0] != '/' || strlen(s) > 4096) {
        return false;
    }
    /* No ".." component: files land inside the image. */
    for (const char *p = s; (p = strstr(p, "..")); p += 2) {
        bool start = p == s || p[-1] == '/';
        bool end = p[2] == '\0' || p[2] == '/';
        if (start && end) {
            return false;
        }
    }
    return true;
}

/* `dsts` maps each guest path of img->files to its index there. */
static void add_file(struct tc *c, struct topo_image *img, struct tc_keyset *dsts,
                     const struct ty_node *at, const struct ty_node *srcn, const char *src,
                     const struct ty_node *dstn, const char *dst)
{
    bool ok = true;
    if (!tc_guest_path(dst)) {
        tc_err(c, dstn,
               "guest path '%s' is not absolute (or contains '..'): files are copied to an "
               "absolute path in the guest, e.g. /usr/local/bin/app",
               dst);
        ok = false;
    }
    char *abs = tc_host_path(c, srcn, src, true);
    if (!abs || !ok) {
        free(abs);
        return;
    }
    size_t i = tc_keyset_find(dsts, dst, strlen(dst));
    if (i != TC_KEYSET_NONE) {
        char *see = tc_see(c, img->files[i].loc);
        tc_err(c, dstn, "guest path '%s' is the destination of two files (other at %s)", dst, see);
        free(see);
        free(abs);
        return;
    }
    img->files = fl_xrealloc(img->files, (img->n_files + 1) * sizeof(*img->files));
    struct topo_file_copy *f = &img->files[img->n_files];
    f->src = abs;
    f->dst = fl_xstrdup(dst);
    tc_keyset_add(dsts, f->dst, strlen(f->dst), img->n_files++);
    f->loc = tc_loc(at);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void tc_parse_image(struct tc *c, const struct ty_node *n, struct topo_image *img)
{
    if (!n || ty_is_null(n)) {
        return;
    }
    if (!tc_check_map(c, n, image_keys, "image")) {
        return;
    }
    struct tc_keyset pkgs = {0}, dsts = {0}; /* packages and guest paths so far */
    const struct ty_node *pk = ty_map_get(n, "packages");
    if (pk && !ty_is_null(pk)) {
        size_t m = tc_path_key(c, "packages");
        if (pk->type != TY_SEQ) {
            tc_err_val(c, pk, "is not a list of Debian package names (e.g. [etcd-server])");
        } else {
            for (size_t i = 0; i < pk->n_items; i++) {
                size_t mi = tc_path_index(c, i);
                const char *name;
                if (tc_string(c, pk->items[i], &name)) {
                    if (!debian_package_name(name)) {
                        tc_err_val(c, pk->items[i],
                                   "is not a Debian package name (lower case letters, digits, "
                                   "'+', '-', '.'; e.g. etcd-server)");
                    } else {
                        if (tc_keyset_find(&pkgs, name, strlen(name)) == TC_KEYSET_NONE) {
                            img->packages =
                                fl_xrealloc(img->packages, (img->n_packages + 1) * sizeof(char *));
                            char *copy = fl_xstrdup(name);
                            img->packages[img->n_packages++] = copy;
                            tc_keyset_add(&pkgs, copy, strlen(copy), 0);
                        }
                    }
                }
                tc_path_pop(c, mi);
            }
        }
        tc_path_pop(c, m);
    }
    const struct ty_node *fk = ty_map_get(n, "files");
    if (fk && !ty_is_null(fk)) {
        size_t m = tc_path_key(c, "files");
        if (fk->type != TY_SEQ) {
            tc_err_val(c, fk, "is not a list of files (e.g. ['./app:/usr/local/bin/app'])");
        } else {
            for (size_t i = 0; i < fk->n_items; i++) {
                size_t mi = tc_path_index(c, i);
                const struct ty_node *it = fk->items[i];
                if (it->type == TY_SCALAR && !ty_is_null(it)) {
                    const char *colon = strstr(it->str, ":/");
                    const char *last = colon;
                    while (last && (colon = strstr(last + 1, ":/"))) {
                        last = colon;
                    }
                    if (!last || last == it->str || strlen(it->str) != it->len) {
                        tc_err_val(c, it,
                                   "is not 'HOST_PATH:GUEST_PATH' (e.g. ./app:/usr/local/bin/app)");
                    } else {
                        char *src = fl_xstrndup(it->str, (size_t)(last - it->str));
                        add_file(c, img, &dsts, it, it, src, it, last + 1);
                        free(src);
                    }
                } else if (tc_check_map(c, it, file_keys, "a file copy")) {
                    const struct ty_node *sn = ty_map_get(it, "src");
                    const struct ty_node *dn = ty_map_get(it, "dst");
                    const char *src, *dst;
                    if (!sn || !dn) {
                        tc_err(c, it, "a file copy needs 'src' (host path) and 'dst' (guest path)");
                    } else {
                        size_t ms = tc_path_key(c, "src");
                        bool ok = tc_string(c, sn, &src);
                        tc_path_pop(c, ms);
                        ms = tc_path_key(c, "dst");
                        ok = tc_string(c, dn, &dst) && ok;
                        if (ok) {
                            add_file(c, img, &dsts, it, sn, src, dn, dst);
                        }
                        tc_path_pop(c, ms);
                    }
                }
                tc_path_pop(c, mi);
            }
        }
        tc_path_pop(c, m);
    }
    tc_keyset_free(&pkgs);
    tc_keyset_free(&dsts);
    if (img->n_packages) {
        qsort(img->packages, img->n_packages, sizeof(char *), cmp_str);
    }
}

void tc_merge_image(struct topo_image *dst, const struct topo_image *base,
                    const struct topo_image *extra)
{
    size_t np = base->n_packages + extra->n_packages;
    dst->packages = fl_xcalloc(np ? np : 1, sizeof(char *));
    for (size_t i = 0; i < base->n_packages; i++) {
        dst->packages[dst->n_packages++] = fl_xstrdup(base->packages[i]);
    }
    for (size_t i = 0; i < extra->n_packages; i++) {
        bool dup = false;
        for (size_t j = 0; j < base->n_packages && !dup; j++) {
            dup = !strcmp(base->packages[j], extra->packages[i]);
        }
        if (!dup) {
            dst->packages[dst->n_packages++] = fl_xstrdup(extra->packages[i]);
        }
    }
    if (dst->n_packages) {
        qsort(dst->packages, dst->n_packages, sizeof(char *), cmp_str);
    }
    size_t nf = base->n_files + extra->n_files;
    dst->files = fl_xcalloc(nf ? nf : 1, sizeof(*dst->files));
    for (size_t i = 0; i < base->n_files; i++) {
        bool overridden = false;
        for (size_t j = 0; j < extra->n_files && !overridden; j++) {
            overridden = !strcmp(extra->files[j].dst, base->files[i].dst);
        }
        if (overridden) {
            continue; /* a node's own file at the same guest path wins */
        }
        dst->files[dst->n_files].src = fl_xstrdup(base->files[i].src);
        dst->files[dst->n_files].dst = fl_xstrdup(base->files[i].dst);
        dst->files[dst->n_files].loc = base->files[i].loc;
        dst->n_files++;
    }
    for (size_t i = 0; i < extra->n_files; i++) {
        dst->files[dst->n_files].src = fl_xstrdup(extra->files[i].src);
        dst->files[dst->n_files].dst = fl_xstrdup(extra->files[i].dst);
        dst->files[dst->n_files].loc = extra->files[i].loc;
        dst->n_files++;
    }
}
