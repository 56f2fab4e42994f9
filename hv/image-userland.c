/*
 * The initramfs tree: base directories and /etc, init and the agent,
 * busybox with its applet links, requested packages with the closure of
 * their shared libraries, and the spec's local files.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hv/image.h"

/* ---- userland ---- */

bool hv_image_busybox(struct hv_build *b, struct fl_error **errp)
{
    char *dir = fl_xasprintf("%s/busybox", b->tmp);
    char *bin = fl_xasprintf("%s/bin/busybox", dir);
    char *dst = fl_xasprintf("%s/bin/busybox", b->root);
    struct fl_buf list = {0};
    bool ok = hv_deb_unpack(b->busybox.deb, dir, errp) && fl_mkdir_parent(dst, errp) &&
              fl_copy_file(bin, dst, 0755, errp);
    if (ok) {
        const char *argv[] = {bin, "--list-full", NULL};
        ok = hv_tool_run(b, argv, NULL, &list, errp);
    }
    char *save = NULL;
    for (char *l = ok && list.data ? strtok_r(list.data, "\n", &save) : NULL; ok && l;
         l = strtok_r(NULL, "\n", &save)) {
        if (!*l || strstr(l, "..") || l[0] == '/' || !strcmp(l, "bin/busybox")) {
            continue;
        }
        char *link = fl_xasprintf("%s/%s", b->root, l);
        ok = fl_mkdir_parent(link, errp);
        if (ok && !fl_path_exists(link) && symlink("/bin/busybox", link) < 0) {
            fl_error_setf_errno(errp, errno, "cannot create '%s'", link);
            ok = false;
        }
        free(link);
    }
    fl_buf_free(&list);
    fl_rm_rf(dir);
    free(dir);
    free(bin);
    free(dst);
    return ok;
}

static bool write_blob(const char *root, const char *rel, const uint8_t *p, const uint8_t *end,
                       mode_t mode, struct fl_error **errp)
{
    char *path = fl_xasprintf("%s/%s", root, rel);
    bool ok = fl_mkdir_parent(path, errp) && fl_write_file(path, p, (size_t)(end - p), errp);
    if (ok && chmod(path, mode) < 0) {
        fl_error_setf_errno(errp, errno, "chmod '%s'", path);
        ok = false;
    }
    free(path);
    return ok;
}

bool hv_image_base(struct hv_build *b, struct fl_error **errp)
{
    static const char *const dirs[] = {"proc",   "sys",  "dev",     "run",     "tmp",
                                       "etc/fl", "root", "var/log", "var/tmp", "mnt"};
    for (size_t i = 0; i < FL_ARRAY_LEN(dirs); i++) {
        char *p = fl_xasprintf("%s/%s", b->root, dirs[i]);
        bool ok = fl_mkdir_p(p, 0755, errp);
        free(p);
        if (!ok) {
            return false;
        }
    }
    static const char passwd[] = "root:x:0:0:root:/root:/bin/sh\n"
                                 "daemon:x:1:1:daemon:/:/bin/false\n"
                                 "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
    static const char group[] = "root:x:0:\ndaemon:x:1:\nnogroup:x:65534:\n";
    static const char nsswitch[] = "passwd: files\ngroup: files\nhosts: files\n";
    char *tmpdir = fl_xasprintf("%s/tmp", b->root);
    chmod(tmpdir, 01777);
    free(tmpdir);
    return write_blob(b->root, "etc/passwd", (const uint8_t *)passwd,
                      (const uint8_t *)passwd + sizeof passwd - 1, 0644, errp) &&
           write_blob(b->root, "etc/group", (const uint8_t *)group,
                      (const uint8_t *)group + sizeof group - 1, 0644, errp) &&
           write_blob(b->root, "etc/nsswitch.conf", (const uint8_t *)nsswitch,
                      (const uint8_t *)nsswitch + sizeof nsswitch - 1, 0644, errp) &&
           write_blob(b->root, "init", hv_init_blob, hv_init_blob_end, 0755, errp) &&
           write_blob(b->root, "sbin/fl-agent", hv_agent_blob, hv_agent_blob_end, 0755, errp);
}

/* Creates directory dst unless it (or a link to a directory) exists. */
static bool copy_tree_dir_only(const char *dst, mode_t mode, struct fl_error **errp)
{
    struct stat st;
    if (stat(dst, &st) == 0 && S_ISDIR(st.st_mode)) {
        return true;
    }
    unlink(dst);
    if (mkdir(dst, (mode & 07777) | 0700) < 0 && errno != EEXIST) {
        fl_error_setf_errno(errp, errno, "cannot create directory '%s'", dst);
        return false;
    }
    return true;
}

/* Paths in a package that no guest needs. */
static bool pruned(const char *rel)
{
    static const char *const prefixes[] = {"usr/share/doc",     "usr/share/man",
                                           "usr/share/info",    "usr/share/locale",
                                           "usr/share/lintian", "usr/share/bug"};
    for (size_t i = 0; i < FL_ARRAY_LEN(prefixes); i++) {
        size_t n = strlen(prefixes[i]);
        if (!strncmp(rel, prefixes[i], n) && (rel[n] == '\0' || rel[n] == '/')) {
            return true;
        }
    }
    return false;
}

/* Copies a requested package's tree into the root, minus docs, and
 * queues its ELF files for library resolution. */
static bool merge_pkg(const char *src, const char *dst, const char *rel, struct fl_buf *elfs,
                      struct fl_error **errp)
{
    if (pruned(rel)) {
        return true;
    }
    struct stat st;
    if (lstat(src, &st) < 0) {
        fl_error_setf_errno(errp, errno, "cannot read '%s'", src);
        return false;
    }
    if (!S_ISDIR(st.st_mode)) {
        if (!fl_copy_tree(src, dst, errp)) {
            return false;
        }
        if (S_ISREG(st.st_mode)) {
            fl_buf_printf(elfs, "%s\n", rel);
        }
        return true;
    }
    if (!copy_tree_dir_only(dst, st.st_mode, errp)) {
        return false;
    }
    struct dirent **list;
    int n = scandir(src, &list, NULL, alphasort);
    bool ok = n >= 0;
    for (int i = 0; i < n; i++) {
        if (ok && strcmp(list[i]->d_name, ".") && strcmp(list[i]->d_name, "..")) {
            char *s = fl_xasprintf("%s/%s", src, list[i]->d_name);
            char *d = fl_xasprintf("%s/%s", dst, list[i]->d_name);
            char *r =
                *rel ? fl_xasprintf("%s/%s", rel, list[i]->d_name) : fl_xstrdup(list[i]->d_name);
            ok = merge_pkg(s, d, r, elfs, errp);
            free(s);
            free(d);
            free(r);
        }
        free(list[i]);
    }
    free(n >= 0 ? list : NULL);
    return ok;
}

/* ---- shared-library closure ---- */

struct strset {
    char **v;
    size_t n, alloc;
};

static bool strset_add(struct strset *s, const char *x)
{
    for (size_t i = 0; i < s->n; i++) {
        if (!strcmp(s->v[i], x)) {
            return false;
        }
    }
    s->v = fl_xgrow(s->v, &s->alloc, s->n + 1, sizeof *s->v);
    s->v[s->n++] = fl_xstrdup(x);
    return true;
}

static void strset_free(struct strset *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->v[i]);
    }
    free(s->v);
}

static char *dir_of(const char *rel)
{
    const char *slash = strrchr(rel, '/');
    return slash ? fl_xstrndup(rel, (size_t)(slash - rel)) : fl_xstrdup("");
}

static char *join_rel(const char *dir, const char *name)
{
    while (*name == '/') {
        name++;
    }
    return *dir ? fl_xasprintf("%s/%s", dir, name) : fl_xstrdup(name);
}

/* Copies stage/rel into root/rel, following a chain of symlinks (each
 * link is recreated, then its target placed).  Returns the relative path
 * of the final file, or NULL if the chain leads nowhere in the stage. */
static char *place(const char *stage, const char *root, const char *rel, int depth,
                   struct fl_error **errp)
{
    if (depth > 16 || strstr(rel, "..")) {
        return NULL;
    }
    char *src = fl_xasprintf("%s/%s", stage, rel);
    char *dst = fl_xasprintf("%s/%s", root, rel);
    struct stat st;
    char *result = NULL;
    if (lstat(src, &st) == 0) {
        if (fl_mkdir_parent(dst, errp)) {
            if (S_ISLNK(st.st_mode)) {
                char target[4096];
                ssize_t n = readlink(src, target, sizeof target - 1);
                if (n > 0) {
                    target[n] = '\0';
                    if (!fl_path_exists(dst)) {
                        if (symlink(target, dst) < 0) {
                            fl_error_setf_errno(errp, errno, "cannot create link '%s'", dst);
                        }
                    }
                    char *d = dir_of(rel);
                    char *next = target[0] == '/' ? fl_xstrdup(target + 1) : join_rel(d, target);
                    free(d);
                    result = place(stage, root, next, depth + 1, errp);
                    free(next);
                }
            } else if (S_ISREG(st.st_mode)) {
                if (fl_path_exists(dst) || fl_copy_file(src, dst, st.st_mode, errp)) {
                    result = fl_xstrdup(rel);
                }
            }
        }
    }
    free(src);
    free(dst);
    return result;
}

static const char *const lib_dirs[] = {
    "lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu", "lib64", "usr/lib64", "lib", "usr/lib"};

static bool resolve_libs(struct hv_build *b, const char *stage, struct fl_buf *elf_list,
                         struct fl_error **errp)
{
    struct strset queue = {0}, done = {0};
    char *save = NULL;
    for (char *l = elf_list->data ? strtok_r(elf_list->data, "\n", &save) : NULL; l;
         l = strtok_r(NULL, "\n", &save)) {
        strset_add(&queue, l);
    }
    bool ok = true;
    for (size_t qi = 0; ok && qi < queue.n; qi++) {
        const char *rel = queue.v[qi];
        char *path = fl_xasprintf("%s/%s", b->root, rel);
        size_t size = 0;
        uint8_t *data = (uint8_t *)fl_read_file(path, &size, NULL);
        free(path);
        if (!data) {
            continue;
        }
        struct hv_elf_deps deps;
        int r = hv_elf_read_deps(data, size, &deps);
        free(data);
        if (r <= 0) {
            if (r < 0) {
                fl_log(FL_LOG_WARN, "hv",
                       "image: '%s' is a malformed ELF file; libraries not "
                       "resolved for it",
                       rel);
            }
            continue;
        }
        hv_build_progress(b, "libraries", rel, qi, queue.n);
        if (deps.interp) { /* the loader itself, e.g. /lib64/ld-linux-x86-64.so.2 */
            char *got = place(stage, b->root, deps.interp + (deps.interp[0] == '/'), 0, errp);
            if (got) {
                strset_add(&done, got);
            } else if (!fl_path_exists(deps.interp)) {
                fl_log(FL_LOG_WARN, "hv", "image: loader '%s' of '%s' not found in packages",
                       deps.interp, rel);
            }
            free(got);
        }
        for (size_t i = 0; ok && i < deps.n_needed; i++) {
            const char *so = deps.needed[i];
            if (strchr(so, '/')) {
                continue;
            }
            struct strset dirs = {0};
            if (deps.runpath) {
                char *rp = fl_xstrdup(deps.runpath), *s2 = NULL;
                char *origin = dir_of(rel);
                for (char *d = strtok_r(rp, ":", &s2); d; d = strtok_r(NULL, ":", &s2)) {
                    if (!strncmp(d, "$ORIGIN", 7)) {
                        char *j = join_rel(origin, d + 7);
                        strset_add(&dirs, j);
                        free(j);
                    } else {
                        strset_add(&dirs, d + (d[0] == '/'));
                    }
                }
                free(origin);
                free(rp);
            }
            for (size_t k = 0; k < FL_ARRAY_LEN(lib_dirs); k++) {
                strset_add(&dirs, lib_dirs[k]);
            }
            char *found = NULL;
            for (size_t k = 0; !found && k < dirs.n; k++) {
                char *cand = join_rel(dirs.v[k], so);
                char *in_root = fl_xasprintf("%s/%s", b->root, cand);
                if (fl_path_exists(in_root)) {
                    found = fl_xstrdup(cand);
                } else {
                    found = place(stage, b->root, cand, 0, errp);
                }
                if (found) {
                    /* queue the real file too (found may be the link) */
                    strset_add(&queue, found);
                    strset_add(&queue, cand);
                }
                free(in_root);
                free(cand);
            }
            if (!found) {
                fl_log(FL_LOG_WARN, "hv",
                       "image: '%s' needs '%s', which none of the unpacked packages provides", rel,
                       so);
            }
            free(found);
            strset_free(&dirs);
        }
        hv_elf_deps_clear(&deps);
    }
    strset_free(&queue);
    strset_free(&done);
    return ok;
}

bool hv_image_packages(struct hv_build *b, struct fl_error **errp)
{
    if (!b->n_pkgs) {
        return true;
    }
    char *stage = fl_xasprintf("%s/stage", b->tmp);
    struct fl_buf elfs = {0};
    bool ok = true;
    for (size_t i = 0; ok && i < b->n_pkgs; i++) {
        hv_build_progress(b, "unpack", b->pkgs[i].name, i, b->n_pkgs);
        ok = !hv_build_stopped(b, errp) && hv_deb_unpack(b->pkgs[i].deb, stage, errp);
    }
    for (size_t i = 0; ok && i < b->n_pkgs; i++) {
        if (!b->pkgs[i].requested) {
            continue;
        }
        char *own = fl_xasprintf("%s/pkg-%s", b->tmp, b->pkgs[i].name);
        ok = hv_deb_unpack(b->pkgs[i].deb, own, errp) && merge_pkg(own, b->root, "", &elfs, errp);
        fl_rm_rf(own);
        free(own);
    }
    ok = ok && resolve_libs(b, stage, &elfs, errp);
    if (ok) {
        /* An ld.so.cache for libraries outside the default directories;
         * skipped quietly where ldconfig is missing (the defaults work). */
        static const char conf[] = "include /etc/ld.so.conf.d/*.conf\n";
        ok = write_blob(b->root, "etc/ld.so.conf", (const uint8_t *)conf,
                        (const uint8_t *)conf + sizeof conf - 1, 0644, errp);
        const char *argv[] = {"ldconfig", "-X", "-r", b->root, NULL};
        struct fl_error *err = NULL;
        if (ok && !hv_tool_run(b, argv, NULL, NULL, &err)) {
            fl_log(FL_LOG_INFO, "hv", "image: ldconfig: %s", err->msg);
            fl_error_free(err);
        }
    }
    fl_buf_free(&elfs);
    fl_rm_rf(stage);
    free(stage);
    return ok;
}

bool hv_image_files(struct hv_build *b, struct fl_error **errp)
{
    for (size_t i = 0; i < b->spec->n_files; i++) {
        const struct hv_image_file *f = &b->spec->files[i];
        hv_build_progress(b, "files", f->dst, i, b->spec->n_files);
        char *dst = fl_xasprintf("%s%s", b->root, f->dst);
        bool ok = fl_mkdir_parent(dst, errp) && fl_copy_tree(f->src, dst, errp);
        free(dst);
        if (!ok) {
            fl_error_prepend(errp, "files[%zu] (%s -> %s): ", i, f->src, f->dst);
            return false;
        }
    }
    return true;
}
