/*
 * The image cache: where it lives and who may own it, the key of an
 * image, its manifest and the check of a hit, listing and pruning.
 *
 * Trust: the cache holds the kernels and initramfs that root may boot,
 * so it must be writable by its user alone.  The directory is created
 * 0700 and refused when it belongs to another uid or is group- or
 * world-writable (a directory planted in /tmp by someone else); without
 * HOME the fallback is per user ($XDG_RUNTIME_DIR/faultline, else
 * /tmp/faultline-<uid>), never a shared path.  A hit is not "a manifest
 * exists": each image file must still have the SHA-256 its manifest
 * records.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hv/image.h"

/* The files of a cache entry whose hashes the manifest records. */
static const char *const image_files[] = {"vmlinux", "initrd.cpio"};

/* ---- the cache directory ---- */

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
    if (e && *e) {
        return fl_xasprintf("%s/.cache/faultline", e);
    }
    /* No home: a per-user place, checked like any other (never a path
     * that another user could have created first and that we would then
     * share). */
    e = getenv("XDG_RUNTIME_DIR");
    if (e && *e == '/') {
        return fl_xasprintf("%s/faultline", e);
    }
    return fl_xasprintf("/tmp/faultline-%u", (unsigned)geteuid());
}

bool hv_cache_dir_check(const char *path, bool create, bool *exists, struct fl_error **errp)
{
    if (exists) {
        *exists = false;
    }
    struct stat lst;
    if (lstat(path, &lst) < 0) {
        if (errno != ENOENT) {
            fl_error_setf_errno(errp, errno, "image cache '%s'", path);
            return false;
        }
        if (!create) {
            return true;
        }
        /* Parents as for any cache (~/.cache), the cache itself 0700
         * whatever the umask. */
        char *parent = fl_xstrdup(path);
        char *slash = strrchr(parent, '/');
        bool ok = true;
        if (slash && slash != parent) {
            *slash = '\0';
            ok = fl_mkdir_p(parent, 0700, errp);
        }
        free(parent);
        if (!ok) {
            return false;
        }
        if (mkdir(path, 0700) < 0 && errno != EEXIST) {
            fl_error_setf_errno(errp, errno, "cannot create the image cache '%s'", path);
            return false;
        }
        if (lstat(path, &lst) < 0) {
            fl_error_setf_errno(errp, errno, "image cache '%s'", path);
            return false;
        }
    }
    uid_t me = geteuid();
    if (S_ISLNK(lst.st_mode) && lst.st_uid != me) {
        fl_error_setf(errp, EPERM,
                      "image cache '%s' is a symbolic link owned by uid %u, not by you (uid %u): "
                      "refusing to use it (remove it, or set FAULTLINE_CACHE)",
                      path, (unsigned)lst.st_uid, (unsigned)me);
        return false;
    }
    struct stat st;
    if (stat(path, &st) < 0) {
        fl_error_setf_errno(errp, errno, "image cache '%s'", path);
        return false;
    }
    if (!S_ISDIR(st.st_mode)) {
        fl_error_setf(errp, ENOTDIR, "image cache '%s' is not a directory", path);
        return false;
    }
    if (st.st_uid != me || (st.st_mode & (S_IWGRP | S_IWOTH))) {
        fl_error_setf(errp, EPERM,
                      "image cache '%s' is owned by uid %u with mode %04o: refusing to use it "
                      "(it must belong to you, uid %u, and not be group- or world-writable; "
                      "remove it, 'chmod go-w' it, or set FAULTLINE_CACHE)",
                      path, (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777), (unsigned)me);
        return false;
    }
    if (exists) {
        *exists = true;
    }
    return true;
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

/* ---- SHA-256 ---- */

static void hex_digest(const uint8_t d[SHA256_DIGEST_SIZE], char out[65])
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < SHA256_DIGEST_SIZE; i++) {
        out[2 * i] = hex[d[i] >> 4];
        out[2 * i + 1] = hex[d[i] & 15];
    }
    out[64] = '\0';
}

void hv_sha256_hex(const void *data, size_t size, char out[65])
{
    struct sha256_ctx ctx;
    uint8_t d[SHA256_DIGEST_SIZE];
    sha256_init(&ctx);
    sha256_update(&ctx, size, data);
    sha256_digest(&ctx, sizeof d, d);
    hex_digest(d, out);
}

bool hv_sha256_file(const char *path, char out[65], struct fl_error **errp)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fl_error_setf_errno(errp, errno, "cannot open '%s'", path);
        return false;
    }
    struct sha256_ctx ctx;
    sha256_init(&ctx);
    const size_t cap = (size_t)1 << 20;
    uint8_t *buf = fl_xmalloc(cap);
    for (;;) {
        ssize_t n = read(fd, buf, cap);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            fl_error_setf_errno(errp, errno, "cannot read '%s'", path);
            close(fd);
            free(buf);
            return false;
        }
        if (n == 0) {
            break;
        }
        sha256_update(&ctx, (size_t)n, buf);
    }
    free(buf);
    close(fd);
    uint8_t d[SHA256_DIGEST_SIZE];
    sha256_digest(&ctx, sizeof d, d);
    hex_digest(d, out);
    return true;
}

/* ---- the key ---- */

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
        char hex[65];
        struct fl_error *err = NULL;
        if (!hv_sha256_file(path, hex, &err)) {
            snprintf(hex, sizeof hex, "unreadable");
            fl_error_free(err);
        }
        fl_buf_printf(acc, "%llu %s\n", (unsigned long long)st.st_size, hex);
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

char *hv_image_key(struct hv_build *b)
{
    struct fl_buf acc = {0};
    fl_buf_printf(&acc, "builder %s\nkernel %s %s\nbusybox %s\n", HV_BUILDER_VERSION,
                  b->kernel.name, b->kernel.version, b->busybox.version);
    /* packages sorted by name: order on the command line does not matter */
    for (size_t i = 0; i < b->n_pkgs; i++) {
        for (size_t k = i + 1; k < b->n_pkgs; k++) {
            if (strcmp(b->pkgs[k].name, b->pkgs[i].name) < 0) {
                struct hv_pkg t = b->pkgs[i];
                b->pkgs[i] = b->pkgs[k];
                b->pkgs[k] = t;
            }
        }
    }
    for (size_t i = 0; i < b->n_pkgs; i++) {
        fl_buf_printf(&acc, "pkg %s %s %d\n", b->pkgs[i].name, b->pkgs[i].version,
                      b->pkgs[i].requested);
    }
    char hex[65];
    hv_sha256_hex(hv_agent_blob, (size_t)(hv_agent_blob_end - hv_agent_blob), hex);
    fl_buf_printf(&acc, "agent %s\n", hex);
    hv_sha256_hex(hv_init_blob, (size_t)(hv_init_blob_end - hv_init_blob), hex);
    fl_buf_printf(&acc, "init %s\n", hex);
    for (size_t i = 0; i < b->spec->n_files; i++) {
        fl_buf_printf(&acc, "file -> %s\n", b->spec->files[i].dst);
        hash_tree(b->spec->files[i].src, "", &acc);
    }
    hv_sha256_hex(acc.data, acc.size, hex);
    fl_buf_free(&acc);
    return fl_xstrdup(hex);
}

/* ---- manifest and verification ---- */

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

bool hv_image_manifest_write(const struct hv_build *b, const char *key, const char *outdir,
                             struct fl_error **errp)
{
    const struct hv_image_spec *spec = b->spec;
    struct fl_buf m = {0};
    fl_buf_printf(&m,
                  "key=%s\nbuilder=%s\nkernel_package=%s\nkernel_version=%s\n"
                  "kernel_release=%s\nbusybox_version=%s\npackages=",
                  key, HV_BUILDER_VERSION, b->kernel.name, b->kernel.version, b->kernel_release,
                  b->busybox.version);
    for (size_t i = 0; i < spec->n_packages; i++) {
        fl_buf_printf(&m, "%s%s", i ? "," : "", spec->packages[i]);
    }
    fl_buf_puts(&m, "\nclosure=");
    for (size_t i = 0; i < b->n_pkgs; i++) {
        fl_buf_printf(&m, "%s%s=%s", i ? "," : "", b->pkgs[i].name, b->pkgs[i].version);
    }
    fl_buf_puts(&m, "\nfiles=");
    for (size_t i = 0; i < spec->n_files; i++) {
        fl_buf_printf(&m, "%s%s:%s", i ? "," : "", spec->files[i].src, spec->files[i].dst);
    }
    fl_buf_puts(&m, "\n");
    bool ok = true;
    for (size_t i = 0; ok && i < FL_ARRAY_LEN(image_files); i++) {
        char *p = fl_xasprintf("%s/%s", outdir, image_files[i]);
        char hex[65];
        ok = hv_sha256_file(p, hex, errp);
        if (ok) {
            fl_buf_printf(&m, "sha256:%s=%s\n", image_files[i], hex);
        }
        free(p);
    }
    char *mp = fl_xasprintf("%s/manifest", outdir);
    ok = ok && fl_write_file(mp, m.data, m.size, errp);
    free(mp);
    fl_buf_free(&m);
    return ok;
}

bool hv_image_verify(const char *dir, struct fl_error **errp)
{
    char *mp = fl_xasprintf("%s/manifest", dir);
    char *text = fl_read_file(mp, NULL, errp);
    bool ok = text != NULL;
    for (size_t i = 0; ok && i < FL_ARRAY_LEN(image_files); i++) {
        char *field = fl_xasprintf("sha256:%s", image_files[i]);
        char *want = manifest_field(text, field);
        char *p = fl_xasprintf("%s/%s", dir, image_files[i]);
        char got[65];
        if (strlen(want) != 64) {
            fl_error_setf(errp, EBADMSG, "'%s' records no SHA-256 for %s", mp, image_files[i]);
            ok = false;
        } else if (!hv_sha256_file(p, got, errp)) {
            ok = false;
        } else if (strcmp(got, want)) {
            fl_error_setf(errp, EBADMSG,
                          "'%s' does not match its manifest (SHA-256 %s, recorded %s): the "
                          "file was changed after the image was built",
                          p, got, want);
            ok = false;
        }
        free(p);
        free(want);
        free(field);
    }
    free(text);
    free(mp);
    return ok;
}

void hv_image_fill(struct hv_image *out, const char *dir, const char *key, bool hit)
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
    fl_touch(lu);
    free(lu);
}

/* ---- listing and pruning ---- */

static int info_cmp(const void *a, const void *b)
{
    const struct hv_image_info *x = a, *y = b;
    return x->last_used_ns < y->last_used_ns ? 1 : x->last_used_ns > y->last_used_ns ? -1 : 0;
}

bool hv_image_list(const char *cache_dir, struct hv_image_info **out, size_t *n,
                   struct fl_error **errp)
{
    *out = NULL;
    *n = 0;
    char *cache = hv_image_cache_dir(cache_dir);
    if (!hv_cache_dir_check(cache, false, NULL, errp)) {
        free(cache);
        return false;
    }
    char *images = fl_xasprintf("%s/images", cache);
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
        info->size_bytes = fl_tree_size(dir);
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
        freed += fl_tree_size(debs);
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
