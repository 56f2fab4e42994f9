/*
 * hv/ image builder internals, shared by its files (not part of hv.h).
 *
 *   image.c           hv_image_build: the pipeline below, the build dir
 *   image-resolve.c   resolve (apt-cache, offline) -> download -> unpack
 *   image-kernel.c    vmlinux from the kernel package + the modules
 *   image-userland.c  base tree, busybox, packages + library closure, files
 *   image-pack.c      the tree as a newc cpio (cpio.c writes the format)
 *   image-cache.c     cache directory (checked), key, manifest, verify,
 *                     list, prune
 *   tool.c            running apt-get / dpkg-deb / busybox, cancellable
 *
 * Dependencies: image.c calls the stages; the stages call tool.c and
 * core's file helpers; nothing here includes node code.
 */
#ifndef FL_HV_IMAGE_H
#define FL_HV_IMAGE_H

#include "hv/internal.h"

/* Part of every key: bumping it makes every cached image stale. */
#define HV_BUILDER_VERSION    "hv-image-8"
#define HV_DEFAULT_KERNEL_PKG "linux-image-cloud-amd64"

/* Embedded by trace/embed.cmake (hv/CMakeLists.txt): the static guest
 * agent and the init script. */
extern const uint8_t hv_agent_blob[], hv_agent_blob_end[];
extern const uint8_t hv_init_blob[], hv_init_blob_end[];

struct hv_pkg {
    char *name;
    char *version;
    bool requested; /* unpacked whole; others only give libraries */
    char *deb;      /* path in <cache>/debs */
};

struct hv_build {
    const struct hv_image_spec *spec;
    hv_progress_fn *progress;
    void *parg;
    char *cache;
    char *tmp;  /* private build dir */
    char *root; /* initramfs tree */
    struct hv_pkg kernel, busybox;
    struct hv_pkg *pkgs;
    size_t n_pkgs, pkgs_alloc;
    char *kernel_release;
};

/* ---- image.c ---- */
void hv_build_progress(struct hv_build *b, const char *stage, const char *item, uint64_t done,
                       uint64_t total);
/* True, with errp set (ECANCELED), if the caller asked the build to stop. */
bool hv_build_stopped(const struct hv_build *b, struct fl_error **errp);

/* ---- tool.c ---- */
/* Runs argv (PATH lookup) in cwd (NULL = here); stdout captured into out
 * (may be NULL: discarded).  stderr is captured and quoted on failure.
 * With b, a stop asked for while it runs ends it (SIGTERM) and fails. */
bool hv_tool_run(const struct hv_build *b, const char *const *argv, const char *cwd,
                 struct fl_buf *out, struct fl_error **errp);

/* ---- image-resolve.c ---- */
/* Names and versions of the kernel, busybox and the package closure. */
bool hv_image_resolve(struct hv_build *b, struct fl_error **errp);
/* Fetches p's .deb into <cache>/debs unless it is there (sets p->deb). */
bool hv_image_download(struct hv_build *b, struct hv_pkg *p, size_t idx, size_t total,
                       struct fl_error **errp);
/* dpkg-deb -x deb dir (dir is created). */
bool hv_deb_unpack(const char *deb, const char *dir, struct fl_error **errp);

/* ---- image-kernel.c ---- */
/* outdir/vmlinux and the wanted modules (with their dependencies, load
 * order in /etc/fl/modules) into the root; sets b->kernel_release. */
bool hv_image_kernel(struct hv_build *b, const char *outdir, struct fl_error **errp);

/* ---- image-userland.c ---- */
bool hv_image_base(struct hv_build *b, struct fl_error **errp);     /* dirs, /etc, init, agent */
bool hv_image_busybox(struct hv_build *b, struct fl_error **errp);  /* + applet links */
bool hv_image_packages(struct hv_build *b, struct fl_error **errp); /* + library closure */
bool hv_image_files(struct hv_build *b, struct fl_error **errp);    /* spec->files */

/* ---- image-pack.c ---- */
/* The root tree as a newc cpio at `path`, entries in name order. */
bool hv_image_pack(const char *root, const char *path, struct fl_error **errp);

/* ---- image-cache.c ---- */
/* The cache directory, created 0700 when missing (parents too), and
 * refused unless it is a directory owned by the effective uid and not
 * group- or world-writable (a link to one must itself be ours).  With
 * create false a missing directory is fine (true returned, *exists
 * false). */
bool hv_cache_dir_check(const char *path, bool create, bool *exists, struct fl_error **errp);
/* Hex SHA-256 (64 characters + NUL). */
void hv_sha256_hex(const void *data, size_t size, char out[65]);
bool hv_sha256_file(const char *path, char out[65], struct fl_error **errp);
/* SHA-256 over every input of the build (resolved b, agent, init, files). */
char *hv_image_key(struct hv_build *b);
/* Writes outdir/manifest: what went in and the SHA-256 of each image file. */
bool hv_image_manifest_write(const struct hv_build *b, const char *key, const char *outdir,
                             struct fl_error **errp);
/* A cache entry is usable when its manifest names the SHA-256 of each
 * image file and the files still have them; false with *errp naming the
 * file otherwise. */
bool hv_image_verify(const char *dir, struct fl_error **errp);
/* Fills out for the entry in dir and marks it used. */
void hv_image_fill(struct hv_image *out, const char *dir, const char *key, bool hit);

#endif /* FL_HV_IMAGE_H */
