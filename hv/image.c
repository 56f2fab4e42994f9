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
 * <cache> is created 0700 and used only when it belongs to this user and
 * nobody else can write to it (image-cache.c); a hit is verified against
 * the SHA-256 of each file in its manifest.
 * Build steps:  resolve (apt-cache, offline) -> key -> hit? done
 *               -> download missing .debs -> unpack -> kernel + modules
 *               -> busybox + applet links -> agent + init -> packages with
 *               their shared-library closure -> local files -> cpio
 *               -> rename into place (atomic; a concurrent builder of the
 *               same key loses the rename and uses the winner's entry).
 *
 * The stages live in their own files (hv/image.h lists them); this file
 * holds the pipeline and the build directory.
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

void hv_build_progress(struct hv_build *b, const char *stage, const char *item, uint64_t done,
                       uint64_t total)
{
    if (b->progress) {
        b->progress(b->parg, stage, item, done, total);
    }
}

bool hv_build_stopped(const struct hv_build *b, struct fl_error **errp)
{
    if (b && b->spec->cancelled && b->spec->cancelled(b->spec->cancel_arg)) {
        fl_error_setf(errp, ECANCELED, "interrupted");
        return true;
    }
    return false;
}

static void build_free(struct hv_build *b)
{
    for (size_t i = 0; i < b->n_pkgs; i++) {
        free(b->pkgs[i].name);
        free(b->pkgs[i].version);
        free(b->pkgs[i].deb);
    }
    free(b->pkgs);
    struct hv_pkg *fixed[] = {&b->kernel, &b->busybox};
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
        if (!fl_path_exists(f->src)) {
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
    struct hv_build b = {.spec = spec, .progress = progress_fn, .parg = progress_arg};
    b.cache = hv_image_cache_dir(spec->cache_dir);
    char *debs = fl_xasprintf("%s/debs", b.cache);
    char *images = fl_xasprintf("%s/images", b.cache);
    char *tmps = fl_xasprintf("%s/tmp", b.cache);
    bool ok = hv_cache_dir_check(b.cache, true, NULL, errp) && fl_mkdir_p(debs, 0755, errp) &&
              fl_mkdir_p(images, 0755, errp) && fl_mkdir_p(tmps, 0700, errp);
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
    ok = ok && !hv_build_stopped(&b, errp) && hv_image_resolve(&b, errp);
    char *key = ok ? hv_image_key(&b) : NULL;
    char *final = key ? fl_xasprintf("%s/%s", images, key) : NULL;
    char *manifest = final ? fl_xasprintf("%s/manifest", final) : NULL;
    if (ok && fl_path_exists(manifest)) {
        struct fl_error *err = NULL;
        if (hv_image_verify(final, &err)) {
            hv_image_fill(out, final, key, true);
            hv_build_progress(&b, "done", key, 1, 1);
            goto done;
        }
        /* Damaged or tampered with: set aside (atomically, so a concurrent
         * user of the entry keeps its open files) and build it again. */
        fl_log(FL_LOG_WARN, "hv", "image cache: %s; building the image again", err->msg);
        fl_error_free(err);
        char *stale = fl_xasprintf("%s/stale-XXXXXX", b.tmp);
        if (!mkdtemp(stale) || rename(final, stale) < 0) {
            fl_error_setf_errno(errp, errno, "cannot set aside the damaged image '%s'", final);
            ok = false;
        }
        fl_rm_rf(stale);
        free(stale);
    }
    size_t total = 2 + b.n_pkgs;
    ok = ok && hv_image_download(&b, &b.kernel, 0, total, errp) &&
         hv_image_download(&b, &b.busybox, 1, total, errp);
    for (size_t i = 0; ok && i < b.n_pkgs; i++) {
        ok = !hv_build_stopped(&b, errp) && hv_image_download(&b, &b.pkgs[i], 2 + i, total, errp);
    }
    char *outdir = b.tmp ? fl_xasprintf("%s/out", b.tmp) : NULL;
    ok = ok && !hv_build_stopped(&b, errp) && fl_mkdir_p(outdir, 0755, errp) &&
         fl_mkdir_p(b.root, 0755, errp) && hv_image_base(&b, errp) && hv_image_busybox(&b, errp) &&
         !hv_build_stopped(&b, errp) && hv_image_packages(&b, errp) &&
         !hv_build_stopped(&b, errp) && hv_image_kernel(&b, outdir, errp) &&
         hv_image_files(&b, errp) && !hv_build_stopped(&b, errp);
    if (ok) {
        hv_build_progress(&b, "pack", "initrd.cpio", 0, 0);
        char *cpio_path = fl_xasprintf("%s/initrd.cpio", outdir);
        ok = hv_image_pack(b.root, cpio_path, errp);
        free(cpio_path);
    }
    ok = ok && hv_image_manifest_write(&b, key, outdir, errp);
    if (ok && rename(outdir, final) < 0) {
        if (errno == EEXIST || errno == ENOTEMPTY) {
            /* another builder won the race; its entry is equivalent */
        } else {
            fl_error_setf_errno(errp, errno, "cannot move the image into '%s'", final);
            ok = false;
        }
    }
    if (ok) {
        hv_image_fill(out, final, key, false);
        hv_build_progress(&b, "done", key, 1, 1);
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
