/*
 * Resolving what goes into an image: the kernel package, busybox-static
 * and the Depends closure of the requested packages, with apt's
 * candidate versions (apt-cache works offline); then their .deb files,
 * downloaded once into <cache>/debs, and unpacking.
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

/* Dependencies not followed when collecting a package's closure: package
 * management and init-system glue that means nothing in a guest whose
 * maintainer scripts never run. */
static const char *const skip_deps[] = {
    "adduser",
    "debconf",
    "cdebconf",
    "init-system-helpers",
    "lsb-base",
    "passwd",
    "usrmerge",
    "usr-is-merged",
    "perl",
    "perl-base",
    "dpkg",
    "base-files",
    "debianutils",
    "sensible-utils",
    "ucf",
    "systemd",
    "sysvinit-utils",
    "procps",
    "lsb-release",
    "python3",
    "logrotate",
    "tzdata",
    "libpam-systemd",
    "systemd-sysv",
    "dbus",
};

/* ---- resolving packages (apt-cache works offline) ---- */

static bool pkg_name_valid(const char *s)
{
    /* Debian policy: [a-z0-9][a-z0-9+.-]+ */
    size_t n = strlen(s);
    if (n < 2 || n > 100 || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= '0' && s[0] <= '9'))) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '.' ||
              c == '-')) {
            return false;
        }
    }
    return true;
}

static struct hv_pkg *find_pkg(struct hv_build *b, const char *name)
{
    for (size_t i = 0; i < b->n_pkgs; i++) {
        if (!strcmp(b->pkgs[i].name, name)) {
            return &b->pkgs[i];
        }
    }
    return NULL;
}

static struct hv_pkg *add_pkg(struct hv_build *b, const char *name, bool requested)
{
    struct hv_pkg *p = find_pkg(b, name);
    if (p) {
        p->requested |= requested;
        return p;
    }
    b->pkgs = fl_xgrow(b->pkgs, &b->pkgs_alloc, b->n_pkgs + 1, sizeof *b->pkgs);
    p = &b->pkgs[b->n_pkgs++];
    memset(p, 0, sizeof *p);
    p->name = fl_xstrdup(name);
    p->requested = requested;
    return p;
}

static bool skip_dep(const char *name)
{
    for (size_t i = 0; i < FL_ARRAY_LEN(skip_deps); i++) {
        if (!strcmp(skip_deps[i], name)) {
            return true;
        }
    }
    return !strncmp(name, "python3", 7) || !strncmp(name, "perl", 4) ||
           !strncmp(name, "systemd", 7);
}

/* `apt-cache depends` of several packages in one call (each apt-cache
 * start loads apt's whole cache: one call per package costs seconds).
 * For each package, its Depends/PreDepends: the first real (non-virtual)
 * alternative of each OR group.  Calls add(b, dep) for each. */
static bool deps_of(struct hv_build *b, char *const *names, size_t n_names,
                    void (*add)(struct hv_build *b, const char *dep), struct fl_error **errp)
{
    const char **argv = fl_xcalloc(n_names + 10, sizeof *argv);
    size_t argc = 0;
    static const char *const fixed[] = {"apt-cache",     "depends",        "--no-recommends",
                                        "--no-suggests", "--no-conflicts", "--no-breaks",
                                        "--no-replaces", "--no-enhances"};
    for (size_t i = 0; i < FL_ARRAY_LEN(fixed); i++) {
        argv[argc++] = fixed[i];
    }
    for (size_t i = 0; i < n_names; i++) {
        argv[argc++] = names[i];
    }
    struct fl_buf out_buf = {0};
    bool ok = hv_tool_run(b, argv, NULL, &out_buf, errp);
    free(argv);
    if (!ok) {
        fl_buf_free(&out_buf);
        return false;
    }
    bool in_group = false, group_taken = false;
    char *save = NULL;
    for (char *line = strtok_r(out_buf.data ? out_buf.data : (char[]){""}, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        if (line[0] != ' ') { /* a package's block starts */
            in_group = group_taken = false;
            continue;
        }
        bool alt = line[1] == '|';
        const char *kw = line + 2;
        const char *colon = strchr(kw, ':');
        if (!colon || (strncmp(kw, "Depends:", 8) && strncmp(kw, "PreDepends:", 11))) {
            continue;
        }
        const char *dep = colon + 1;
        while (*dep == ' ') {
            dep++;
        }
        if (!in_group) {
            group_taken = false;
        }
        if (!group_taken && dep[0] != '<') {
            char *d = fl_xstrdup(dep);
            char *q = strchr(d, ':');
            if (q) {
                *q = '\0'; /* libfoo:any */
            }
            add(b, d);
            free(d);
            group_taken = true;
        }
        in_group = alt;
        if (!alt) {
            group_taken = false;
        }
    }
    fl_buf_free(&out_buf);
    return true;
}

/* Fills each package's version with apt's candidate, in one call. */
static bool resolve_versions(struct hv_pkg **pkgs, size_t n, struct fl_error **errp)
{
    if (!n) {
        return true;
    }
    const char **argv = fl_xcalloc(n + 4, sizeof *argv);
    size_t argc = 0;
    argv[argc++] = "apt-cache";
    argv[argc++] = "show";
    argv[argc++] = "--no-all-versions";
    for (size_t i = 0; i < n; i++) {
        argv[argc++] = pkgs[i]->name;
    }
    struct fl_buf out = {0};
    struct fl_error *err = NULL;
    bool ran = hv_tool_run(NULL, argv, NULL, &out, &err);
    free(argv);
    fl_error_free(err);
    char *save = NULL, *cur = NULL;
    for (char *line = ran && out.data ? strtok_r(out.data, "\n", &save) : NULL; line;
         line = strtok_r(NULL, "\n", &save)) {
        if (!strncmp(line, "Package: ", 9)) {
            cur = line + 9;
        } else if (!strncmp(line, "Version: ", 9) && cur) {
            for (size_t i = 0; i < n; i++) {
                if (!strcmp(pkgs[i]->name, cur) && !pkgs[i]->version) {
                    pkgs[i]->version = fl_xstrdup(line + 9);
                }
            }
            cur = NULL;
        }
    }
    fl_buf_free(&out);
    for (size_t i = 0; i < n; i++) {
        if (!pkgs[i]->version) {
            fl_error_setf(errp, EINVAL,
                          "package '%s' is not known to apt or has no installable version (check "
                          "the name; on a fresh machine run 'apt-get update' first)",
                          pkgs[i]->name);
            return false;
        }
    }
    return true;
}

static void add_closure_dep(struct hv_build *b, const char *dep)
{
    if (!skip_dep(dep) && pkg_name_valid(dep)) {
        /* libraries only give their shared objects; other dependencies
         * (redis-server -> redis-tools) are unpacked whole */
        add_pkg(b, dep, strncmp(dep, "lib", 3) != 0);
    }
}

/* The first linux-image-* dependency of the kernel metapackage is the
 * real kernel package. */
static void add_kernel_dep(struct hv_build *b, const char *dep)
{
    if (!b->kernel.name && !strncmp(dep, "linux-image-", 12)) {
        b->kernel.name = fl_xstrdup(dep);
    }
}

bool hv_image_resolve(struct hv_build *b, struct fl_error **errp)
{
    const char *kmeta = b->spec->kernel_package ? b->spec->kernel_package : HV_DEFAULT_KERNEL_PKG;
    if (!pkg_name_valid(kmeta)) {
        fl_error_setf(errp, EINVAL, "kernel package: '%s' is not a Debian package name", kmeta);
        return false;
    }
    for (size_t i = 0; i < b->spec->n_packages; i++) {
        const char *name = b->spec->packages[i];
        if (!pkg_name_valid(name)) {
            fl_error_setf(errp, EINVAL,
                          "packages[%zu]: '%s' is not a Debian package name "
                          "([a-z0-9][a-z0-9+.-]+)",
                          i, name);
            return false;
        }
        add_pkg(b, name, true);
    }
    if (b->n_pkgs) {
        add_pkg(b, "libc6", false); /* the dynamic loader */
    }
    hv_build_progress(b, "resolve", kmeta, 0, 0);
    /* Requested names first: a clear error naming an unknown package. */
    struct hv_pkg **req = fl_xcalloc(b->n_pkgs + 1, sizeof *req);
    for (size_t i = 0; i < b->n_pkgs; i++) {
        req[i] = &b->pkgs[i];
    }
    bool known = resolve_versions(req, b->n_pkgs, errp);
    free(req);
    if (!known) {
        return false;
    }
    /* A metapackage names the real kernel package in its Depends. */
    char *meta = (char *)kmeta;
    if (!deps_of(b, &meta, 1, add_kernel_dep, errp)) {
        return false;
    }
    if (!b->kernel.name) {
        b->kernel.name = fl_xstrdup(kmeta); /* not a metapackage */
    }
    b->busybox.name = fl_xstrdup("busybox-static");
    /* Breadth-first closure over Depends, one apt-cache call per level. */
    size_t level_start = 0;
    while (level_start < b->n_pkgs) {
        size_t level_end = b->n_pkgs;
        char **names = fl_xcalloc(level_end - level_start, sizeof *names);
        for (size_t i = level_start; i < level_end; i++) {
            names[i - level_start] = b->pkgs[i].name;
        }
        hv_build_progress(b, "resolve", names[0], level_start, level_end);
        bool ok = deps_of(b, names, level_end - level_start, add_closure_dep, errp);
        free(names);
        if (!ok) {
            return false;
        }
        level_start = level_end;
    }
    struct hv_pkg **all = fl_xcalloc(b->n_pkgs + 2, sizeof *all);
    size_t n = 0;
    all[n++] = &b->kernel;
    all[n++] = &b->busybox;
    for (size_t i = 0; i < b->n_pkgs; i++) {
        if (!b->pkgs[i].version) {
            all[n++] = &b->pkgs[i];
        }
    }
    bool ok = resolve_versions(all, n, errp);
    free(all);
    return ok;
}

/* ---- download and unpack ---- */

static char *deb_path(struct hv_build *b, const struct hv_pkg *p)
{
    struct fl_buf v = {0};
    for (const char *c = p->version; *c; c++) {
        if (*c == ':') {
            fl_buf_puts(&v, "%3a");
        } else {
            fl_buf_append(&v, c, 1);
        }
    }
    char *path = fl_xasprintf("%s/debs/%s_%s_amd64.deb", b->cache, p->name, v.data);
    fl_buf_free(&v);
    return path;
}

bool hv_image_download(struct hv_build *b, struct hv_pkg *p, size_t idx, size_t total,
                       struct fl_error **errp)
{
    p->deb = deb_path(b, p);
    if (fl_path_exists(p->deb)) {
        return true;
    }
    hv_build_progress(b, "download", p->name, idx, total);
    char *dir = fl_xasprintf("%s/dl-%s", b->tmp, p->name);
    char *spec = fl_xasprintf("%s=%s", p->name, p->version);
    bool ok = fl_mkdir_p(dir, 0755, errp);
    if (ok) {
        const char *argv[] = {"apt-get", "download", "-q", "-o", "APT::Sandbox::User=root",
                              spec,      NULL};
        struct fl_error *err = NULL;
        ok = hv_tool_run(b, argv, dir, NULL, &err);
        if (!ok) {
            fl_error_prepend(&err,
                             "downloading %s %s (no network? a cached image or .deb would avoid "
                             "it): ",
                             p->name, p->version);
            fl_error_propagate(errp, err);
        }
    }
    if (ok) {
        DIR *d = opendir(dir);
        struct dirent *e;
        char *found = NULL;
        while (d && (e = readdir(d))) {
            size_t n = strlen(e->d_name);
            if (n > 4 && !strcmp(e->d_name + n - 4, ".deb")) {
                free(found);
                found = fl_xasprintf("%s/%s", dir, e->d_name);
            }
        }
        if (d) {
            closedir(d);
        }
        if (!found || rename(found, p->deb) < 0) {
            fl_error_setf_errno(errp, found ? errno : ENOENT, "apt-get download of %s gave no .deb",
                                p->name);
            ok = false;
        }
        free(found);
    }
    fl_rm_rf(dir);
    free(dir);
    free(spec);
    return ok;
}

bool hv_deb_unpack(const char *deb, const char *dir, struct fl_error **errp)
{
    if (!fl_mkdir_p(dir, 0755, errp)) {
        return false;
    }
    const char *argv[] = {"dpkg-deb", "-x", deb, dir, NULL};
    return hv_tool_run(NULL, argv, NULL, NULL, errp);
}
