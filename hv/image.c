/*
 * Guest images: a kernel (uncompressed vmlinux for PVH boot) and an
 * initramfs (newc cpio), built from Debian packages into a
 * content-addressed cache.
 *
 *   <cache>/debs/<pkg>_<version>.deb     downloads (apt-get download), kept
 *   <cache>/images/<key>/vmlinux          the kernel
 *   <cache>/images/<key>/initrd.cpio      the initramfs
 *   <cache>/images/<key>/manifest         what went in (key=value lines)
 *   <cache>/images/<key>/last-used        mtime = last build or hit
 *   <cache>/tmp/                          private build directories
 *
 * Build steps:  resolve (apt-cache, offline) -> key -> hit? done
 *               -> download missing .debs -> unpack -> kernel + modules
 *               -> busybox + applet links -> agent + init -> packages with
 *               their shared-library closure -> local files -> cpio
 *               -> rename into place (atomic; a concurrent builder of the
 *               same key loses the rename and uses the winner's entry).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hv/internal.h"

#define HV_BUILDER_VERSION "hv-image-7"
#define DEFAULT_KERNEL_PKG "linux-image-cloud-amd64"

/* Embedded by blobs.c: the static guest agent and the init script. */
extern const uint8_t hv_agent_blob[], hv_agent_blob_end[];
extern const uint8_t hv_init_blob[], hv_init_blob_end[];

/* Kernel modules the guest needs (virtio-mmio transport, net, blk,
 * serial port for the agent); their dependencies are added from each
 * module's .modinfo and everything is loaded in dependency order. */
static const char *const wanted_modules[] = {"virtio_mmio", "virtio_net", "virtio_blk",
                                             "virtio_console"};

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

struct pkg {
    char *name;
    char *version;
    bool requested; /* unpacked whole; others only give libraries */
    char *deb;      /* path in <cache>/debs */
};

struct build {
    const struct hv_image_spec *spec;
    hv_progress_fn *progress;
    void *parg;
    char *cache;
    char *tmp;  /* private build dir */
    char *root; /* initramfs tree */
    struct pkg kernel, busybox;
    struct pkg *pkgs;
    size_t n_pkgs, pkgs_alloc;
    char *kernel_release;
    uint64_t files_hash;
};

static void progress(struct build *b, const char *stage, const char *item, uint64_t done,
                     uint64_t total)
{
    if (b->progress) {
        b->progress(b->parg, stage, item, done, total);
    }
}

/* True, with errp set, if the caller asked the build to stop. */
static bool stopped(const struct build *b, struct fl_error **errp)
{
    if (b && b->spec->cancelled && b->spec->cancelled(b->spec->cancel_arg)) {
        fl_error_setf(errp, ECANCELED, "interrupted");
        return true;
    }
    return false;
}

/* ---- subprocesses ---- */

/* Runs argv (PATH lookup) in cwd (NULL = here); stdout captured into out
 * (may be NULL: discarded).  stderr is captured and quoted on failure.
 * With b, a stop asked for while it runs ends it (SIGTERM) and fails. */
static bool run(const struct build *b, const char *const *argv, const char *cwd, struct fl_buf *out,
                struct fl_error **errp)
{
    int po[2], pe[2];
    if (pipe2(po, O_CLOEXEC) < 0 || pipe2(pe, O_CLOEXEC) < 0) {
        fl_error_setf_errno(errp, errno, "pipe");
        return false;
    }
    pid_t pid = fork();
    if (pid < 0) {
        fl_error_setf_errno(errp, errno, "fork");
        return false;
    }
    if (pid == 0) {
        /* The caller may block or ignore signals (the runner reads SIGINT
         * through a signalfd): the tool gets the defaults, so a Ctrl-C at
         * the terminal reaches it too. */
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGPIPE, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        if (cwd && chdir(cwd) < 0) {
            _exit(126);
        }
        int nul = open("/dev/null", O_RDONLY);
        if (nul >= 0) {
            dup2(nul, 0);
        }
        dup2(po[1], 1);
        dup2(pe[1], 2);
        setenv("LC_ALL", "C", 1);
        setenv("DEBIAN_FRONTEND", "noninteractive", 1);
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(po[1]);
    close(pe[1]);
    struct fl_buf err = {0};
    int fds[2] = {po[0], pe[0]};
    bool open_[2] = {true, true};
    bool cancellable = b && b->spec->cancelled, killed = false;
    int64_t asked = fl_clock_mono_ns();
    while (open_[0] || open_[1]) {
        fd_set set;
        FD_ZERO(&set);
        for (int i = 0; i < 2; i++) {
            if (open_[i]) {
                FD_SET(fds[i], &set);
            }
        }
        struct timeval tick = {0, 100000};
        int r = select(FL_MAX(fds[0], fds[1]) + 1, &set, NULL, NULL, cancellable ? &tick : NULL);
        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            break;
        }
        /* Every 100 ms, also while the tool keeps writing; a tool that
         * ignores SIGTERM gets SIGKILL 2 s later. */
        int64_t now = fl_clock_mono_ns();
        if (cancellable && !killed && now - asked >= 100 * FL_NS_PER_MS) {
            asked = now;
            if (b->spec->cancelled(b->spec->cancel_arg)) {
                kill(pid, SIGTERM);
                killed = true;
            }
        } else if (killed && asked && now - asked >= 2 * FL_NS_PER_SEC) {
            kill(pid, SIGKILL);
            asked = 0;
        }
        for (int i = 0; i < 2; i++) {
            if (open_[i] && FD_ISSET(fds[i], &set)) {
                char tmp[65536];
                ssize_t n = read(fds[i], tmp, sizeof tmp);
                if (n <= 0) {
                    open_[i] = false;
                } else if (i == 0 && out) {
                    fl_buf_append(out, tmp, (size_t)n);
                } else if (i == 1 && err.size < 8192) {
                    fl_buf_append(&err, tmp, (size_t)n);
                }
            }
        }
    }
    close(po[0]);
    close(pe[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (killed) {
        fl_buf_free(&err);
        fl_error_setf(errp, ECANCELED, "interrupted");
        return false;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        fl_buf_free(&err);
        return true;
    }
    /* Last line of stderr says most. */
    while (err.size && (err.data[err.size - 1] == '\n' || err.data[err.size - 1] == ' ')) {
        err.data[--err.size] = '\0';
    }
    fl_error_setf(
        errp, EIO, "'%s' failed (%s %d)%s%s", argv[0], WIFEXITED(status) ? "exit status" : "signal",
        WIFEXITED(status) ? WEXITSTATUS(status) : (WIFSIGNALED(status) ? WTERMSIG(status) : -1),
        err.size ? ": " : "", err.size ? err.data : "");
    fl_buf_free(&err);
    return false;
}

/* ---- small file helpers ---- */

static bool is_dir(const char *p)
{
    struct stat st;
    return lstat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool exists(const char *p)
{
    struct stat st;
    return lstat(p, &st) == 0;
}

static bool copy_file(const char *src, const char *dst, mode_t mode, struct fl_error **errp)
{
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0) {
        fl_error_setf_errno(errp, errno, "cannot read '%s'", src);
        return false;
    }
    unlink(dst);
    int out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode & 07777);
    if (out < 0) {
        fl_error_setf_errno(errp, errno, "cannot create '%s'", dst);
        close(in);
        return false;
    }
    char buf[1 << 16];
    ssize_t n;
    bool ok = true;
    while ((n = read(in, buf, sizeof buf)) > 0) {
        if (write(out, buf, (size_t)n) != n) {
            ok = false;
            break;
        }
    }
    if (n < 0 || close(out) < 0) {
        ok = false;
    }
    close(in);
    if (!ok) {
        fl_error_setf_errno(errp, EIO, "copying '%s' to '%s' failed", src, dst);
    }
    fchmodat(AT_FDCWD, dst, mode & 07777, 0);
    return ok;
}

static bool mkparent(const char *path, struct fl_error **errp)
{
    char *d = fl_xstrdup(path);
    char *slash = strrchr(d, '/');
    bool ok = true;
    if (slash && slash != d) {
        *slash = '\0';
        ok = fl_mkdir_p(d, 0755, errp);
    }
    free(d);
    return ok;
}

/* Copies src (file, symlink or directory, recursively) to dst. */
static bool copy_tree(const char *src, const char *dst, struct fl_error **errp)
{
    struct stat st;
    if (lstat(src, &st) < 0) {
        fl_error_setf_errno(errp, errno, "cannot read '%s'", src);
        return false;
    }
    if (S_ISLNK(st.st_mode)) {
        char target[4096];
        ssize_t n = readlink(src, target, sizeof target - 1);
        if (n < 0) {
            fl_error_setf_errno(errp, errno, "cannot read link '%s'", src);
            return false;
        }
        target[n] = '\0';
        if (is_dir(dst)) {
            return true; /* keep a real directory over a link (usrmerge) */
        }
        unlink(dst);
        if (symlink(target, dst) < 0) {
            fl_error_setf_errno(errp, errno, "cannot create link '%s'", dst);
            return false;
        }
        return true;
    }
    if (S_ISREG(st.st_mode)) {
        return copy_file(src, dst, st.st_mode, errp);
    }
    if (!S_ISDIR(st.st_mode)) {
        return true; /* devices, fifos: not in images */
    }
    struct stat dst_st;
    if (lstat(dst, &dst_st) == 0 && S_ISLNK(dst_st.st_mode)) {
        unlink(dst); /* a directory replaces a link */
    }
    if (mkdir(dst, st.st_mode & 07777) < 0 && errno != EEXIST) {
        fl_error_setf_errno(errp, errno, "cannot create directory '%s'", dst);
        return false;
    }
    DIR *d = opendir(src);
    if (!d) {
        fl_error_setf_errno(errp, errno, "cannot list '%s'", src);
        return false;
    }
    bool ok = true;
    struct dirent *e;
    while (ok && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) {
            continue;
        }
        char *s = fl_xasprintf("%s/%s", src, e->d_name);
        char *t = fl_xasprintf("%s/%s", dst, e->d_name);
        ok = copy_tree(s, t, errp);
        free(s);
        free(t);
    }
    closedir(d);
    return ok;
}

/* Hashes a file or tree (names, modes, link targets, contents). */
static void hash_tree(const char *path, const char *rel, struct fl_buf *acc)
{
    struct stat st;
    if (lstat(path, &st) < 0) {
        fl_buf_printf(acc, "missing %s\n", rel);
        return;
    }
    fl_buf_printf(acc, "%s %o ", rel, (unsigned)st.st_mode);
    if (S_ISLNK(st.st_mode)) {
        char target[4096];
        ssize_t n = readlink(path, target, sizeof target - 1);
        target[n < 0 ? 0 : n] = '\0';
        fl_buf_printf(acc, "-> %s\n", target);
    } else if (S_ISREG(st.st_mode)) {
        size_t size = 0;
        char *data = fl_read_file(path, &size, NULL);
        fl_buf_printf(acc, "%zu %016llx\n", size,
                      (unsigned long long)(data ? fl_hash64(data, size) : 0));
        free(data);
    } else if (S_ISDIR(st.st_mode)) {
        fl_buf_puts(acc, "dir\n");
        struct dirent **list;
        int n = scandir(path, &list, NULL, alphasort);
        for (int i = 0; i < n; i++) {
            if (strcmp(list[i]->d_name, ".") && strcmp(list[i]->d_name, "..")) {
                char *p = fl_xasprintf("%s/%s", path, list[i]->d_name);
                char *r = fl_xasprintf("%s/%s", rel, list[i]->d_name);
                hash_tree(p, r, acc);
                free(p);
                free(r);
            }
            free(list[i]);
        }
        free(n >= 0 ? list : NULL);
    } else {
        fl_buf_puts(acc, "special\n");
    }
}

/* ---- cache paths ---- */

char *hv_image_cache_dir(const char *cache_dir)
{
    if (cache_dir && *cache_dir) {
        return fl_xstrdup(cache_dir);
    }
    const char *e = getenv("FAULTLINE_CACHE");
    if (e && *e) {
        return fl_xstrdup(e);
    }
    e = getenv("XDG_CACHE_HOME");
    if (e && *e == '/') {
        return fl_xasprintf("%s/faultline", e);
    }
    e = getenv("HOME");
    return fl_xasprintf("%s/.cache/faultline", e && *e ? e : "/tmp");
}

void hv_image_clear(struct hv_image *img)
{
    if (!img) {
        return;
    }
    free(img->key);
    free(img->dir);
    free(img->kernel);
    free(img->initrd);
    free(img->kernel_release);
    memset(img, 0, sizeof *img);
}

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

static struct pkg *find_pkg(struct build *b, const char *name)
{
    for (size_t i = 0; i < b->n_pkgs; i++) {
        if (!strcmp(b->pkgs[i].name, name)) {
            return &b->pkgs[i];
        }
    }
    return NULL;
}

static struct pkg *add_pkg(struct build *b, const char *name, bool requested)
{
    struct pkg *p = find_pkg(b, name);
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
static bool deps_of(struct build *b, char *const *names, size_t n_names,
                    void (*add)(struct build *b, const char *dep), struct fl_error **errp)
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
    bool ok = run(b, argv, NULL, &out_buf, errp);
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
static bool resolve_versions(struct pkg **pkgs, size_t n, struct fl_error **errp)
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
    bool ran = run(NULL, argv, NULL, &out, &err);
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

static void add_closure_dep(struct build *b, const char *dep)
{
    if (!skip_dep(dep) && pkg_name_valid(dep)) {
        /* libraries only give their shared objects; other dependencies
         * (redis-server -> redis-tools) are unpacked whole */
        add_pkg(b, dep, strncmp(dep, "lib", 3) != 0);
    }
}

static char *kernel_dep;

static void add_kernel_dep(struct build *b, const char *dep)
{
    if (!kernel_dep && !strncmp(dep, "linux-image-", 12)) {
        kernel_dep = fl_xstrdup(dep);
    }
}

static bool resolve(struct build *b, struct fl_error **errp)
{
    const char *kmeta = b->spec->kernel_package ? b->spec->kernel_package : DEFAULT_KERNEL_PKG;
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
    progress(b, "resolve", kmeta, 0, 0);
    /* Requested names first: a clear error naming an unknown package. */
    struct pkg **req = fl_xcalloc(b->n_pkgs + 1, sizeof *req);
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
    free(kernel_dep);
    kernel_dep = NULL;
    if (!deps_of(b, &meta, 1, add_kernel_dep, errp)) {
        return false;
    }
    b->kernel.name = kernel_dep ? kernel_dep : fl_xstrdup(kmeta);
    kernel_dep = NULL;
    b->busybox.name = fl_xstrdup("busybox-static");
    /* Breadth-first closure over Depends, one apt-cache call per level. */
    size_t level_start = 0;
    while (level_start < b->n_pkgs) {
        size_t level_end = b->n_pkgs;
        char **names = fl_xcalloc(level_end - level_start, sizeof *names);
        for (size_t i = level_start; i < level_end; i++) {
            names[i - level_start] = b->pkgs[i].name;
        }
        progress(b, "resolve", names[0], level_start, level_end);
        bool ok = deps_of(b, names, level_end - level_start, add_closure_dep, errp);
        free(names);
        if (!ok) {
            return false;
        }
        level_start = level_end;
    }
    struct pkg **all = fl_xcalloc(b->n_pkgs + 2, sizeof *all);
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

/* ---- the key ---- */

static char *compute_key(struct build *b)
{
    struct fl_buf acc = {0};
    fl_buf_printf(&acc, "builder %s\nkernel %s %s\nbusybox %s\n", HV_BUILDER_VERSION,
                  b->kernel.name, b->kernel.version, b->busybox.version);
    /* packages sorted by name: order on the command line does not matter */
    for (size_t i = 0; i < b->n_pkgs; i++) {
        for (size_t k = i + 1; k < b->n_pkgs; k++) {
            if (strcmp(b->pkgs[k].name, b->pkgs[i].name) < 0) {
                struct pkg t = b->pkgs[i];
                b->pkgs[i] = b->pkgs[k];
                b->pkgs[k] = t;
            }
        }
    }
    for (size_t i = 0; i < b->n_pkgs; i++) {
        fl_buf_printf(&acc, "pkg %s %s %d\n", b->pkgs[i].name, b->pkgs[i].version,
                      b->pkgs[i].requested);
    }
    fl_buf_printf(
        &acc, "agent %016llx\n",
        (unsigned long long)fl_hash64(hv_agent_blob, (size_t)(hv_agent_blob_end - hv_agent_blob)));
    fl_buf_printf(
        &acc, "init %016llx\n",
        (unsigned long long)fl_hash64(hv_init_blob, (size_t)(hv_init_blob_end - hv_init_blob)));
    for (size_t i = 0; i < b->spec->n_files; i++) {
        fl_buf_printf(&acc, "file -> %s\n", b->spec->files[i].dst);
        hash_tree(b->spec->files[i].src, "", &acc);
    }
    /* 128 bits from two FNV-1a passes over differently salted input. */
    uint64_t h1 = fl_hash64(acc.data, acc.size);
    fl_buf_puts(&acc, "\nsalt-2");
    uint64_t h2 = fl_hash64(acc.data, acc.size);
    fl_buf_free(&acc);
    return fl_xasprintf("%016llx%016llx", (unsigned long long)h1, (unsigned long long)h2);
}

/* ---- download and unpack ---- */

static char *deb_path(struct build *b, const struct pkg *p)
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

static bool download(struct build *b, struct pkg *p, size_t idx, size_t total,
                     struct fl_error **errp)
{
    p->deb = deb_path(b, p);
    if (exists(p->deb)) {
        return true;
    }
    progress(b, "download", p->name, idx, total);
    char *dir = fl_xasprintf("%s/dl-%s", b->tmp, p->name);
    char *spec = fl_xasprintf("%s=%s", p->name, p->version);
    bool ok = fl_mkdir_p(dir, 0755, errp);
    if (ok) {
        const char *argv[] = {"apt-get", "download", "-q", "-o", "APT::Sandbox::User=root",
                              spec,      NULL};
        struct fl_error *err = NULL;
        ok = run(b, argv, dir, NULL, &err);
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

static bool unpack(const char *deb, const char *dir, struct fl_error **errp)
{
    if (!fl_mkdir_p(dir, 0755, errp)) {
        return false;
    }
    const char *argv[] = {"dpkg-deb", "-x", deb, dir, NULL};
    return run(NULL, argv, NULL, NULL, errp);
}

/* ---- kernel and modules ---- */

struct module {
    char *name;
    char *path;
    char *depends;
    bool placed;
};

static char *find_file(const char *dir, const char *name)
{
    DIR *d = opendir(dir);
    if (!d) {
        return NULL;
    }
    char *found = NULL;
    struct dirent *e;
    while (!found && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) {
            continue;
        }
        char *p = fl_xasprintf("%s/%s", dir, e->d_name);
        if (!strcmp(e->d_name, name)) {
            found = p;
            break;
        }
        if (is_dir(p)) {
            found = find_file(p, name);
        }
        free(p);
    }
    closedir(d);
    return found;
}

static bool add_module(struct build *b, const char *moddir, const char *name, struct module **mods,
                       size_t *n, size_t *alloc, int depth, struct fl_error **errp)
{
    for (size_t i = 0; i < *n; i++) {
        if (!strcmp((*mods)[i].name, name)) {
            return true;
        }
    }
    if (depth > 16) {
        fl_error_setf(errp, ELOOP, "kernel module dependencies of '%s' are too deep", name);
        return false;
    }
    char *file = fl_xasprintf("%s.ko", name);
    char *path = find_file(moddir, file);
    if (!path) {
        /* modules.dep spells '-' and '_' alike */
        for (char *c = file; *c; c++) {
            *c = *c == '_' ? '-' : *c;
        }
        path = find_file(moddir, file);
    }
    free(file);
    if (!path) {
        fl_error_setf(errp, ENOENT, "kernel module '%s' not found under '%s'", name, moddir);
        return false;
    }
    size_t size;
    uint8_t *data = (uint8_t *)fl_read_file(path, &size, errp);
    if (!data) {
        free(path);
        return false;
    }
    char *deps = hv_modinfo_depends(data, size);
    free(data);
    if (!deps) {
        fl_error_setf(errp, EINVAL, "'%s' is not a kernel module (no .modinfo)", path);
        free(path);
        return false;
    }
    *mods = fl_xgrow(*mods, alloc, *n + 1, sizeof **mods);
    (*mods)[(*n)++] = (struct module){.name = fl_xstrdup(name), .path = path, .depends = deps};
    char *save = NULL, *copy = fl_xstrdup(deps);
    bool ok = true;
    for (char *d = strtok_r(copy, ",", &save); ok && d; d = strtok_r(NULL, ",", &save)) {
        ok = add_module(b, moddir, d, mods, n, alloc, depth + 1, errp);
    }
    free(copy);
    return ok;
}

static bool depends_placed(const struct module *mods, size_t n, const struct module *m)
{
    char *copy = fl_xstrdup(m->depends), *save = NULL;
    bool ok = true;
    for (char *d = strtok_r(copy, ",", &save); ok && d; d = strtok_r(NULL, ",", &save)) {
        for (size_t i = 0; i < n; i++) {
            if (!strcmp(mods[i].name, d)) {
                ok = mods[i].placed;
            }
        }
    }
    free(copy);
    return ok;
}

/* Copies a kernel module without its appended signature.  Verifying an
 * RSA-4096 signature is slow under TCG (it is emulated), the Debian
 * kernel does not enforce signatures (CONFIG_MODULE_SIG_FORCE is off)
 * and the modules come from the same verified package as the kernel.
 * Layout of a signed module: ELF | signature | struct module_signature
 * (12 bytes, sig_len big-endian in its last 4) | "~Module signature
 * appended~\n". */
static bool copy_module(const char *src, const char *dst, struct fl_error **errp)
{
    static const char magic[] = "~Module signature appended~\n";
    const size_t mlen = sizeof magic - 1;
    size_t size = 0;
    uint8_t *data = (uint8_t *)fl_read_file(src, &size, errp);
    if (!data) {
        return false;
    }
    if (size > mlen + 12 && !memcmp(data + size - mlen, magic, mlen)) {
        const uint8_t *ms = data + size - mlen - 12;
        size_t sig_len = (size_t)ms[8] << 24 | (size_t)ms[9] << 16 | (size_t)ms[10] << 8 | ms[11];
        if (sig_len <= size - mlen - 12) {
            size -= mlen + 12 + sig_len;
        }
    }
    bool ok = fl_write_file(dst, data, size, errp);
    free(data);
    return ok;
}

static bool build_kernel(struct build *b, const char *outdir, struct fl_error **errp)
{
    char *kdir = fl_xasprintf("%s/kernel", b->tmp);
    bool ok = unpack(b->kernel.deb, kdir, errp);
    char *bootdir = fl_xasprintf("%s/boot", kdir);
    char *vmlinuz = NULL;
    DIR *d = ok ? opendir(bootdir) : NULL;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (!strncmp(e->d_name, "vmlinuz-", 8)) {
            free(vmlinuz);
            vmlinuz = fl_xasprintf("%s/%s", bootdir, e->d_name);
            free(b->kernel_release);
            b->kernel_release = fl_xstrdup(e->d_name + 8);
        }
    }
    if (d) {
        closedir(d);
    }
    if (ok && !vmlinuz) {
        fl_error_setf(errp, ENOENT, "package %s holds no boot/vmlinuz-*", b->kernel.name);
        ok = false;
    }
    if (ok) {
        progress(b, "kernel", b->kernel_release, 0, 0);
        size_t size, vsize;
        uint8_t *bz = (uint8_t *)fl_read_file(vmlinuz, &size, errp);
        uint8_t *vm = NULL;
        if (bz) {
            struct fl_error *err = NULL;
            vm = hv_vmlinux_extract(bz, size, &vsize, &err);
            if (!vm) {
                fl_error_prepend(&err, "%s: ", vmlinuz);
                fl_error_propagate(errp, err);
            }
        }
        if (vm) {
            /* Sections nothing in a faultline guest needs, each at the
             * end of its segment: BPF type information (~4 MB at the end
             * of the read-only segment) and the SME scratch area (4 MB
             * at the end of the image; SME is not used in a guest).
             * Loaded, every guest would hold them twice: in QEMU's copy
             * of the kernel file (kept for resets) and in guest RAM.  The
             * guest sees zeros: /sys/kernel/btf/vmlinux holds no types,
             * BTF-based BPF (CO-RE, fentry) is unavailable, modules log
             * that their BTF does not validate and load anyway. */
            static const char *const unused[] = {".BTF", ".BTF_ids", ".init.scratch"};
            size_t dropped = hv_elf_drop_tail_sections(vm, vsize, unused, FL_ARRAY_LEN(unused));
            fl_log(FL_LOG_DEBUG, "hv", "image: %zu bytes of unused kernel sections not loaded",
                   dropped);
            size_t trimmed = hv_elf_trim_zero_tails(vm, vsize);
            fl_log(FL_LOG_DEBUG, "hv",
                   "image: %zu bytes of zero segment tails not loaded from the "
                   "kernel file",
                   trimmed);
        }
        char *out = fl_xasprintf("%s/vmlinux", outdir);
        ok = vm && fl_write_file(out, vm, vsize, errp);
        free(out);
        free(bz);
        free(vm);
    }
    /* Modules, in dependency order, into the initramfs. */
    char *moddir = ok ? fl_xasprintf("%s/lib/modules/%s", kdir, b->kernel_release) : NULL;
    struct module *mods = NULL;
    size_t n = 0, alloc = 0;
    for (size_t i = 0; ok && i < FL_ARRAY_LEN(wanted_modules); i++) {
        ok = add_module(b, moddir, wanted_modules[i], &mods, &n, &alloc, 0, errp);
    }
    struct fl_buf order = {0};
    char *dst_dir = fl_xasprintf("%s/lib/modules", b->root);
    ok = ok && fl_mkdir_p(dst_dir, 0755, errp);
    for (size_t placed = 0; ok && placed < n;) {
        size_t before = placed;
        for (size_t i = 0; ok && i < n; i++) {
            if (!mods[i].placed && depends_placed(mods, n, &mods[i])) {
                mods[i].placed = true;
                placed++;
                fl_buf_printf(&order, "%s\n", mods[i].name);
                char *dst = fl_xasprintf("%s/%s.ko", dst_dir, mods[i].name);
                ok = copy_module(mods[i].path, dst, errp);
                free(dst);
            }
        }
        if (ok && placed == before) {
            fl_error_setf(errp, ELOOP, "kernel module dependencies form a cycle");
            ok = false;
        }
    }
    if (ok) {
        char *p = fl_xasprintf("%s/etc/fl/modules", b->root);
        ok = mkparent(p, errp) && fl_write_file(p, order.data ? order.data : "", order.size, errp);
        free(p);
    }
    for (size_t i = 0; i < n; i++) {
        free(mods[i].name);
        free(mods[i].path);
        free(mods[i].depends);
    }
    free(mods);
    fl_buf_free(&order);
    free(dst_dir);
    free(moddir);
    free(vmlinuz);
    free(bootdir);
    fl_rm_rf(kdir);
    free(kdir);
    return ok;
}

/* ---- userland ---- */

static bool build_busybox(struct build *b, struct fl_error **errp)
{
    char *dir = fl_xasprintf("%s/busybox", b->tmp);
    char *bin = fl_xasprintf("%s/bin/busybox", dir);
    char *dst = fl_xasprintf("%s/bin/busybox", b->root);
    struct fl_buf list = {0};
    bool ok =
        unpack(b->busybox.deb, dir, errp) && mkparent(dst, errp) && copy_file(bin, dst, 0755, errp);
    if (ok) {
        const char *argv[] = {bin, "--list-full", NULL};
        ok = run(b, argv, NULL, &list, errp);
    }
    char *save = NULL;
    for (char *l = ok && list.data ? strtok_r(list.data, "\n", &save) : NULL; ok && l;
         l = strtok_r(NULL, "\n", &save)) {
        if (!*l || strstr(l, "..") || l[0] == '/' || !strcmp(l, "bin/busybox")) {
            continue;
        }
        char *link = fl_xasprintf("%s/%s", b->root, l);
        ok = mkparent(link, errp);
        if (ok && !exists(link) && symlink("/bin/busybox", link) < 0) {
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
    bool ok = mkparent(path, errp) && fl_write_file(path, p, (size_t)(end - p), errp);
    if (ok && chmod(path, mode) < 0) {
        fl_error_setf_errno(errp, errno, "chmod '%s'", path);
        ok = false;
    }
    free(path);
    return ok;
}

static bool build_base(struct build *b, struct fl_error **errp)
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
        if (!copy_tree(src, dst, errp)) {
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
        if (mkparent(dst, errp)) {
            if (S_ISLNK(st.st_mode)) {
                char target[4096];
                ssize_t n = readlink(src, target, sizeof target - 1);
                if (n > 0) {
                    target[n] = '\0';
                    if (!exists(dst)) {
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
                if (exists(dst) || copy_file(src, dst, st.st_mode, errp)) {
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

static bool resolve_libs(struct build *b, const char *stage, struct fl_buf *elf_list,
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
        progress(b, "libraries", rel, qi, queue.n);
        if (deps.interp) { /* the loader itself, e.g. /lib64/ld-linux-x86-64.so.2 */
            char *got = place(stage, b->root, deps.interp + (deps.interp[0] == '/'), 0, errp);
            if (got) {
                strset_add(&done, got);
            } else if (!exists(deps.interp)) {
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
                if (exists(in_root)) {
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

static bool build_packages(struct build *b, struct fl_error **errp)
{
    if (!b->n_pkgs) {
        return true;
    }
    char *stage = fl_xasprintf("%s/stage", b->tmp);
    struct fl_buf elfs = {0};
    bool ok = true;
    for (size_t i = 0; ok && i < b->n_pkgs; i++) {
        progress(b, "unpack", b->pkgs[i].name, i, b->n_pkgs);
        ok = !stopped(b, errp) && unpack(b->pkgs[i].deb, stage, errp);
    }
    for (size_t i = 0; ok && i < b->n_pkgs; i++) {
        if (!b->pkgs[i].requested) {
            continue;
        }
        char *own = fl_xasprintf("%s/pkg-%s", b->tmp, b->pkgs[i].name);
        ok = unpack(b->pkgs[i].deb, own, errp) && merge_pkg(own, b->root, "", &elfs, errp);
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
        if (ok && !run(b, argv, NULL, NULL, &err)) {
            fl_log(FL_LOG_INFO, "hv", "image: ldconfig: %s", err->msg);
            fl_error_free(err);
        }
    }
    fl_buf_free(&elfs);
    fl_rm_rf(stage);
    free(stage);
    return ok;
}

static bool build_files(struct build *b, struct fl_error **errp)
{
    for (size_t i = 0; i < b->spec->n_files; i++) {
        const struct hv_image_file *f = &b->spec->files[i];
        progress(b, "files", f->dst, i, b->spec->n_files);
        char *dst = fl_xasprintf("%s%s", b->root, f->dst);
        bool ok = mkparent(dst, errp) && copy_tree(f->src, dst, errp);
        free(dst);
        if (!ok) {
            fl_error_prepend(errp, "files[%zu] (%s -> %s): ", i, f->src, f->dst);
            return false;
        }
    }
    return true;
}

/* ---- cpio ---- */

static bool pack_tree(struct hv_cpio *c, const char *abs, const char *rel, struct fl_error **errp)
{
    struct dirent **list;
    int n = scandir(abs, &list, NULL, alphasort);
    if (n < 0) {
        fl_error_setf_errno(errp, errno, "cannot list '%s'", abs);
        return false;
    }
    bool ok = true;
    for (int i = 0; i < n; i++) {
        const char *name = list[i]->d_name;
        if (ok && strcmp(name, ".") && strcmp(name, "..")) {
            char *a = fl_xasprintf("%s/%s", abs, name);
            char *r = *rel ? fl_xasprintf("%s/%s", rel, name) : fl_xstrdup(name);
            struct stat st;
            if (lstat(a, &st) < 0) {
                fl_error_setf_errno(errp, errno, "cannot read '%s'", a);
                ok = false;
            } else if (S_ISDIR(st.st_mode)) {
                ok = hv_cpio_add(c, r, st.st_mode, NULL, 0, errp) && pack_tree(c, a, r, errp);
            } else if (S_ISLNK(st.st_mode)) {
                char target[4096];
                ssize_t len = readlink(a, target, sizeof target);
                ok = len > 0 && hv_cpio_add(c, r, st.st_mode, target, (size_t)len, errp);
            } else if (S_ISREG(st.st_mode)) {
                size_t size = 0;
                char *data = fl_read_file(a, &size, errp);
                ok = data && hv_cpio_add(c, r, st.st_mode, data, size, errp);
                free(data);
            }
            free(a);
            free(r);
        }
        free(list[i]);
    }
    free(list);
    return ok;
}

static uint64_t tree_size(const char *path)
{
    struct stat st;
    if (lstat(path, &st) < 0) {
        return 0;
    }
    if (!S_ISDIR(st.st_mode)) {
        return (uint64_t)st.st_size;
    }
    uint64_t total = 0;
    DIR *d = opendir(path);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            char *p = fl_xasprintf("%s/%s", path, e->d_name);
            total += tree_size(p);
            free(p);
        }
    }
    if (d) {
        closedir(d);
    }
    return total;
}

static void touch(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd >= 0) {
        futimens(fd, NULL);
        close(fd);
    }
}

static void fill_image(struct hv_image *out, const char *dir, const char *key, bool hit)
{
    memset(out, 0, sizeof *out);
    out->key = fl_xstrdup(key);
    out->dir = fl_xstrdup(dir);
    out->kernel = fl_xasprintf("%s/vmlinux", dir);
    out->initrd = fl_xasprintf("%s/initrd.cpio", dir);
    char *m = fl_xasprintf("%s/manifest", dir);
    char *text = fl_read_file(m, NULL, NULL);
    const char *kr = text ? strstr(text, "kernel_release=") : NULL;
    out->kernel_release = kr ? fl_xstrndup(kr + 15, strcspn(kr + 15, "\n")) : fl_xstrdup("");
    free(text);
    free(m);
    out->cache_hit = hit;
    char *lu = fl_xasprintf("%s/last-used", dir);
    touch(lu);
    free(lu);
}

static void build_free(struct build *b)
{
    for (size_t i = 0; i < b->n_pkgs; i++) {
        free(b->pkgs[i].name);
        free(b->pkgs[i].version);
        free(b->pkgs[i].deb);
    }
    free(b->pkgs);
    struct pkg *fixed[] = {&b->kernel, &b->busybox};
    for (size_t i = 0; i < 2; i++) {
        free(fixed[i]->name);
        free(fixed[i]->version);
        free(fixed[i]->deb);
    }
    if (b->tmp) {
        fl_rm_rf(b->tmp);
    }
    free(b->tmp);
    free(b->root);
    free(b->cache);
    free(b->kernel_release);
}

static bool check_spec(const struct hv_image_spec *spec, struct fl_error **errp)
{
    for (size_t i = 0; i < spec->n_files; i++) {
        const struct hv_image_file *f = &spec->files[i];
        if (!f->src || !f->dst || f->dst[0] != '/' || strstr(f->dst, "/..") ||
            !strcmp(f->dst, "/")) {
            fl_error_setf(errp, EINVAL,
                          "files[%zu]: destination '%s' must be an absolute guest path below / "
                          "without '..'",
                          i, f->dst ? f->dst : "(null)");
            return false;
        }
        if (!exists(f->src)) {
            fl_error_setf(errp, ENOENT, "files[%zu]: source '%s' does not exist", i, f->src);
            return false;
        }
    }
    return true;
}

bool hv_image_build(const struct hv_image_spec *spec, struct hv_image *out,
                    hv_progress_fn *progress_fn, void *progress_arg, struct fl_error **errp)
{
    if (!check_spec(spec, errp)) {
        return false;
    }
    struct build b = {.spec = spec, .progress = progress_fn, .parg = progress_arg};
    b.cache = hv_image_cache_dir(spec->cache_dir);
    char *debs = fl_xasprintf("%s/debs", b.cache);
    char *images = fl_xasprintf("%s/images", b.cache);
    char *tmps = fl_xasprintf("%s/tmp", b.cache);
    bool ok = fl_mkdir_p(debs, 0755, errp) && fl_mkdir_p(images, 0755, errp) &&
              fl_mkdir_p(tmps, 0700, errp);
    if (ok) {
        /* Build directories of builders that were killed: gone after a day. */
        DIR *d = opendir(tmps);
        struct dirent *e;
        int64_t now = fl_clock_real_ns();
        while (d && (e = readdir(d))) {
            if (strncmp(e->d_name, "build-", 6)) {
                continue;
            }
            char *p = fl_xasprintf("%s/%s", tmps, e->d_name);
            struct stat st;
            if (lstat(p, &st) == 0 &&
                now - ((int64_t)st.st_mtim.tv_sec * FL_NS_PER_SEC) > 86400 * FL_NS_PER_SEC) {
                fl_rm_rf(p);
            }
            free(p);
        }
        if (d) {
            closedir(d);
        }
        char *tmpl = fl_xasprintf("%s/build-XXXXXX", tmps);
        if (mkdtemp(tmpl)) {
            b.tmp = tmpl;
            b.root = fl_xasprintf("%s/root", tmpl);
        } else {
            fl_error_setf_errno(errp, errno, "cannot create a build directory in '%s'", tmps);
            free(tmpl);
            ok = false;
        }
    }
    ok = ok && !stopped(&b, errp) && resolve(&b, errp);
    char *key = ok ? compute_key(&b) : NULL;
    char *final = key ? fl_xasprintf("%s/%s", images, key) : NULL;
    char *manifest = final ? fl_xasprintf("%s/manifest", final) : NULL;
    if (ok && exists(manifest)) {
        fill_image(out, final, key, true);
        progress(&b, "done", key, 1, 1);
        goto done;
    }
    size_t total = 2 + b.n_pkgs;
    ok = ok && download(&b, &b.kernel, 0, total, errp) && download(&b, &b.busybox, 1, total, errp);
    for (size_t i = 0; ok && i < b.n_pkgs; i++) {
        ok = !stopped(&b, errp) && download(&b, &b.pkgs[i], 2 + i, total, errp);
    }
    char *outdir = b.tmp ? fl_xasprintf("%s/out", b.tmp) : NULL;
    ok = ok && !stopped(&b, errp) && fl_mkdir_p(outdir, 0755, errp) &&
         fl_mkdir_p(b.root, 0755, errp) && build_base(&b, errp) && build_busybox(&b, errp) &&
         !stopped(&b, errp) && build_packages(&b, errp) && !stopped(&b, errp) &&
         build_kernel(&b, outdir, errp) && build_files(&b, errp) && !stopped(&b, errp);
    if (ok) {
        progress(&b, "pack", "initrd.cpio", 0, 0);
        char *cpio_path = fl_xasprintf("%s/initrd.cpio", outdir);
        struct hv_cpio *c = hv_cpio_create(cpio_path, errp);
        ok = c && pack_tree(c, b.root, "", errp);
        ok = c && (ok ? hv_cpio_finish(c, errp) : (hv_cpio_destroy(c), false));
        free(cpio_path);
    }
    if (ok) {
        struct fl_buf m = {0};
        fl_buf_printf(&m,
                      "key=%s\nbuilder=%s\nkernel_package=%s\nkernel_version=%s\n"
                      "kernel_release=%s\nbusybox_version=%s\npackages=",
                      key, HV_BUILDER_VERSION, b.kernel.name, b.kernel.version, b.kernel_release,
                      b.busybox.version);
        for (size_t i = 0; i < spec->n_packages; i++) {
            fl_buf_printf(&m, "%s%s", i ? "," : "", spec->packages[i]);
        }
        fl_buf_puts(&m, "\nclosure=");
        for (size_t i = 0; i < b.n_pkgs; i++) {
            fl_buf_printf(&m, "%s%s=%s", i ? "," : "", b.pkgs[i].name, b.pkgs[i].version);
        }
        fl_buf_puts(&m, "\nfiles=");
        for (size_t i = 0; i < spec->n_files; i++) {
            fl_buf_printf(&m, "%s%s:%s", i ? "," : "", spec->files[i].src, spec->files[i].dst);
        }
        fl_buf_puts(&m, "\n");
        char *mp = fl_xasprintf("%s/manifest", outdir);
        ok = fl_write_file(mp, m.data, m.size, errp);
        free(mp);
        fl_buf_free(&m);
    }
    if (ok && rename(outdir, final) < 0) {
        if (errno == EEXIST || errno == ENOTEMPTY) {
            /* another builder won the race; its entry is equivalent */
        } else {
            fl_error_setf_errno(errp, errno, "cannot move the image into '%s'", final);
            ok = false;
        }
    }
    if (ok) {
        fill_image(out, final, key, false);
        progress(&b, "done", key, 1, 1);
    }
    free(outdir);
done:
    free(manifest);
    free(final);
    free(key);
    free(debs);
    free(images);
    free(tmps);
    build_free(&b);
    return ok;
}

/* ---- listing and pruning ---- */

static int info_cmp(const void *a, const void *b)
{
    const struct hv_image_info *x = a, *y = b;
    return x->last_used_ns < y->last_used_ns ? 1 : x->last_used_ns > y->last_used_ns ? -1 : 0;
}

static char *manifest_field(const char *text, const char *key)
{
    size_t n = strlen(key);
    for (const char *p = text; p && *p;) {
        if (!strncmp(p, key, n) && p[n] == '=') {
            return fl_xstrndup(p + n + 1, strcspn(p + n + 1, "\n"));
        }
        p = strchr(p, '\n');
        p = p ? p + 1 : NULL;
    }
    return fl_xstrdup("");
}

bool hv_image_list(const char *cache_dir, struct hv_image_info **out, size_t *n,
                   struct fl_error **errp)
{
    char *cache = hv_image_cache_dir(cache_dir);
    char *images = fl_xasprintf("%s/images", cache);
    *out = NULL;
    *n = 0;
    size_t alloc = 0;
    DIR *d = opendir(images);
    if (!d && errno != ENOENT) {
        fl_error_setf_errno(errp, errno, "cannot list '%s'", images);
        free(cache);
        free(images);
        return false;
    }
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.') {
            continue;
        }
        char *dir = fl_xasprintf("%s/%s", images, e->d_name);
        char *mp = fl_xasprintf("%s/manifest", dir);
        char *text = fl_read_file(mp, NULL, NULL);
        free(mp);
        if (!text) {
            free(dir);
            continue;
        }
        *out = fl_xgrow(*out, &alloc, *n + 1, sizeof **out);
        struct hv_image_info *info = &(*out)[(*n)++];
        info->key = fl_xstrdup(e->d_name);
        info->dir = dir;
        info->kernel_release = manifest_field(text, "kernel_release");
        info->packages = manifest_field(text, "packages");
        info->size_bytes = tree_size(dir);
        char *lu = fl_xasprintf("%s/last-used", dir);
        struct stat st;
        info->last_used_ns = stat(lu, &st) == 0
                                 ? (int64_t)st.st_mtim.tv_sec * FL_NS_PER_SEC + st.st_mtim.tv_nsec
                                 : 0;
        free(lu);
        free(text);
    }
    if (d) {
        closedir(d);
    }
    if (*n) {
        qsort(*out, *n, sizeof **out, info_cmp);
    }
    free(cache);
    free(images);
    return true;
}

void hv_image_info_free(struct hv_image_info *infos, size_t n)
{
    for (size_t i = 0; infos && i < n; i++) {
        free(infos[i].key);
        free(infos[i].dir);
        free(infos[i].kernel_release);
        free(infos[i].packages);
    }
    free(infos);
}

bool hv_image_prune(const char *cache_dir, int64_t older_than_ns, bool downloads, size_t *removed,
                    uint64_t *freed_bytes, struct fl_error **errp)
{
    if (older_than_ns < 0) {
        fl_error_setf(errp, EINVAL, "prune: age must not be negative");
        return false;
    }
    struct hv_image_info *infos;
    size_t n;
    if (!hv_image_list(cache_dir, &infos, &n, errp)) {
        return false;
    }
    size_t count = 0;
    uint64_t freed = 0;
    int64_t now = fl_clock_real_ns();
    bool ok = true;
    for (size_t i = 0; i < n; i++) {
        if (older_than_ns == 0 || now - infos[i].last_used_ns >= older_than_ns) {
            int r = fl_rm_rf(infos[i].dir);
            if (r < 0) {
                fl_error_setf_errno(errp, -r, "cannot remove '%s'", infos[i].dir);
                ok = false;
                break;
            }
            count++;
            freed += infos[i].size_bytes;
        }
    }
    hv_image_info_free(infos, n);
    if (ok && downloads) {
        char *cache = hv_image_cache_dir(cache_dir);
        char *debs = fl_xasprintf("%s/debs", cache);
        freed += tree_size(debs);
        int r = fl_rm_rf(debs);
        if (r < 0 && r != -ENOENT) {
            fl_error_setf_errno(errp, -r, "cannot remove '%s'", debs);
            ok = false;
        }
        free(debs);
        free(cache);
    }
    if (removed) {
        *removed = count;
    }
    if (freed_bytes) {
        *freed_bytes = freed;
    }
    return ok;
}
