/*
 * The file layer: the disk's durable medium.
 *
 * Without a base image this is a sparse file read and written with
 * pread/pwrite; zeroing punches holes.  With a base image the file is a
 * copy-on-write overlay at BB_CLUSTER_SIZE granularity:
 *
 *   cluster:     0     1     2     3 ...
 *   cow bitmap:  1     0     1     0        1 = the overlay owns it
 *   reads from:  file  base  file  base     (base beyond its end: zeroes)
 *
 * A write that covers a cluster only partly first copies the cluster up
 * from the base.  The bitmap is kept in memory and saved to
 * "<path>.cowmap" whenever the layer is flushed (so it is durable exactly
 * when the data is).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blkback/layer-provider.h"

#define COWMAP_MAGIC "FLCOWMAP"

struct file_layer {
    struct bb_layer layer;
    int fd;
    int base_fd; /* -1: no base */
    uint64_t size, base_size;
    uint8_t *cow; /* bitmap, one bit per cluster; NULL without base */
    size_t cow_bytes;
    bool cow_dirty;
    char *cowmap_path;
    bool no_sync;
    bb_sync_owed_fn *sync_hook; /* flush leaves fdatasync to it (a worker) */
    void *sync_arg;
    bool no_prealloc;    /* fallocate() not supported here */
    uint8_t *placed;     /* clusters known allocated in the file (bitmap):
                            writes there need no fallocate() first */
    bool cluster_blocks; /* the file system allocates >= a cluster at a time */
    char *path;
    bb_host_error_fn *on_error;
    void *on_error_arg;
};

static struct file_layer *fl_of(struct bb_layer *l)
{
    return container_of(l, struct file_layer, layer);
}

static bool cow_test(const struct file_layer *f, uint64_t c)
{
    return f->cow[c / 8] & (1u << (c % 8));
}

static void cow_set(struct file_layer *f, uint64_t c)
{
    if (!cow_test(f, c)) {
        f->cow[c / 8] |= (uint8_t)(1u << (c % 8));
        f->cow_dirty = true;
    }
}

/* Full pread: bytes beyond the end of the file read as zeroes. */
static int pread_full(int fd, void *buf, uint64_t len, uint64_t off)
{
    uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = pread(fd, p, len, (off_t)off);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -errno;
        }
        if (n == 0) {
            memset(p, 0, len);
            return 0;
        }
        p += n;
        off += (uint64_t)n;
        len -= (uint64_t)n;
    }
    return 0;
}

static int pwrite_full(int fd, const void *buf, uint64_t len, uint64_t off)
{
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = pwrite(fd, p, len, (off_t)off);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return errno == EDQUOT || errno == EFBIG ? -ENOSPC : -errno;
        }
        p += n;
        off += (uint64_t)n;
        len -= (uint64_t)n;
    }
    return 0;
}

/* Tells the owner about a failed host operation (the disk logs it once,
 * counts it and tells the runner); returns err. */
static int host_error(struct file_layer *f, const char *op, const char *path, int err)
{
    if (err < 0 && f->on_error) {
        f->on_error(f->on_error_arg, path ? path : f->path, op, -err);
    }
    return err;
}

/* Allocates [off, off+len) before it is written, so a host file system
 * without space refuses the write before any byte of it lands: a refused
 * write changes nothing (a short pwrite would leave part of it behind).
 * File systems without fallocate() just write. */
static bool placed_test(const struct file_layer *f, uint64_t c)
{
    return f->placed[c / 8] & (1u << (c % 8));
}

static void placed_set(void *arg, uint64_t c)
{
    struct file_layer *f = arg;
    f->placed[c / 8] |= (uint8_t)(1u << (c % 8));
}

static int preallocate(struct file_layer *f, uint64_t len, uint64_t off)
{
    if (f->no_prealloc || len == 0) {
        return 0;
    }
    uint64_t first = off / BB_CLUSTER_SIZE, last = (off + len - 1) / BB_CLUSTER_SIZE;
    uint64_t c = first;
    while (c <= last && placed_test(f, c)) {
        c++;
    }
    if (c > last) {
        return 0; /* an overwrite: the space is there (one fallocate per cluster, ever) */
    }
    if (fallocate(f->fd, FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len) < 0) {
        if (errno == EOPNOTSUPP || errno == ENOSYS || errno == EINVAL) {
            f->no_prealloc = true;
            return 0;
        }
        return errno == EDQUOT || errno == EFBIG ? -ENOSPC : -errno;
    }
    /* the clusters are allocated now: every one it touched when the file
     * system allocates in blocks of a cluster or more, else those it
     * covers whole (or up to the disk's end) */
    uint64_t end = off + len;
    uint64_t cf = f->cluster_blocks ? first : (off + BB_CLUSTER_SIZE - 1) / BB_CLUSTER_SIZE;
    uint64_t ce = f->cluster_blocks || end >= f->size
                      ? FL_MIN(last + 1, (f->size + BB_CLUSTER_SIZE - 1) / BB_CLUSTER_SIZE)
                      : end / BB_CLUSTER_SIZE;
    for (c = cf; c < ce; c++) {
        placed_set(f, c);
    }
    return 0;
}

/* A hole was punched in [off, off+len): its whole clusters are free. */
static void placed_clear(struct file_layer *f, uint64_t len, uint64_t off)
{
    uint64_t cf = (off + BB_CLUSTER_SIZE - 1) / BB_CLUSTER_SIZE, ce = (off + len) / BB_CLUSTER_SIZE;
    for (uint64_t c = cf; c < ce; c++) {
        f->placed[c / 8] &= (uint8_t) ~(1u << (c % 8));
    }
}

static int base_read(struct file_layer *f, void *buf, uint64_t len, uint64_t off)
{
    if (off >= f->base_size) {
        memset(buf, 0, len);
        return 0;
    }
    uint64_t in = FL_MIN(len, f->base_size - off);
    int r = pread_full(f->base_fd, buf, in, off);
    if (r == 0 && in < len) {
        memset((uint8_t *)buf + in, 0, len - in);
    }
    return r;
}

static int file_pread(struct bb_layer *l, void *buf, uint64_t len, uint64_t off,
                      const struct bb_io *io)
{
    struct file_layer *f = fl_of(l);
    if (!f->cow) {
        return host_error(f, "read", NULL, pread_full(f->fd, buf, len, off));
    }
    uint8_t *p = buf;
    while (len > 0) {
        uint64_t c = off / BB_CLUSTER_SIZE;
        bool owned = cow_test(f, c);
        /* extend the run over clusters with the same owner */
        uint64_t end = (c + 1) * BB_CLUSTER_SIZE;
        while (end < off + len && cow_test(f, end / BB_CLUSTER_SIZE) == owned) {
            end += BB_CLUSTER_SIZE;
        }
        uint64_t n = FL_MIN(len, end - off);
        int r = owned ? pread_full(f->fd, p, n, off) : base_read(f, p, n, off);
        if (r < 0) {
            return host_error(f, "read", NULL, r);
        }
        p += n;
        off += n;
        len -= n;
    }
    return 0;
}

/* Makes the overlay own every cluster of [off, off+len), copying up the
 * clusters that the range covers only partly. */
static int cow_claim(struct file_layer *f, uint64_t len, uint64_t off)
{
    if (!f->cow || len == 0) {
        return 0;
    }
    uint64_t first = off / BB_CLUSTER_SIZE, last = (off + len - 1) / BB_CLUSTER_SIZE;
    uint8_t tmp[BB_CLUSTER_SIZE];
    for (uint64_t c = first; c <= last; c++) {
        if (cow_test(f, c)) {
            continue;
        }
        uint64_t cs = c * BB_CLUSTER_SIZE, ce = FL_MIN(cs + BB_CLUSTER_SIZE, f->size);
        bool full = off <= cs && off + len >= ce;
        if (!full) {
            int r = base_read(f, tmp, ce - cs, cs);
            if (r == 0) {
                r = pwrite_full(f->fd, tmp, ce - cs, cs);
            }
            if (r < 0) {
                return r;
            }
        }
        cow_set(f, c);
    }
    return 0;
}

static int file_pwrite(struct bb_layer *l, const void *buf, uint64_t len, uint64_t off,
                       unsigned flags, const struct bb_io *io)
{
    struct file_layer *f = fl_of(l);
    uint64_t ps = off, pe = off + len;
    if (f->cow && len > 0) { /* copy-up writes whole clusters */
        ps -= ps % BB_CLUSTER_SIZE;
        pe = FL_MIN((pe + BB_CLUSTER_SIZE - 1) / BB_CLUSTER_SIZE * BB_CLUSTER_SIZE, f->size);
    }
    int r = preallocate(f, pe - ps, ps);
    if (r == 0) {
        r = cow_claim(f, len, off);
    }
    if (r == 0) {
        r = pwrite_full(f->fd, buf, len, off);
    }
    if (r < 0) {
        return host_error(f, "write", NULL, r);
    }
    if (flags & BB_F_FUA) {
        r = l->ops->flush(l, io);
    }
    return r;
}

static int write_zeroes_slow(int fd, uint64_t len, uint64_t off)
{
    static const uint8_t zeroes[65536];
    while (len > 0) {
        uint64_t n = FL_MIN(len, sizeof(zeroes));
        int r = pwrite_full(fd, zeroes, n, off);
        if (r < 0) {
            return r;
        }
        off += n;
        len -= n;
    }
    return 0;
}

static int file_zero(struct bb_layer *l, uint64_t len, uint64_t off, unsigned flags,
                     const struct bb_io *io)
{
    struct file_layer *f = fl_of(l);
    int r = cow_claim(f, len, off);
    if (r < 0) {
        return host_error(f, "write", NULL, r);
    }
    int mode = (flags & BB_F_MAY_TRIM) ? FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE
                                       : FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE;
    if (flags & BB_F_MAY_TRIM) {
        placed_clear(f, len, off); /* before: a failed punch may have freed some */
    }
    if (fallocate(f->fd, mode, (off_t)off, (off_t)len) < 0) {
        if (errno != EOPNOTSUPP && errno != ENOSYS && errno != EINVAL) {
            return host_error(f, "zero", NULL, -errno);
        }
        r = write_zeroes_slow(f->fd, len, off);
        if (r < 0) {
            return host_error(f, "zero", NULL, r);
        }
    }
    if (flags & BB_F_FUA) {
        r = l->ops->flush(l, io);
    }
    return r;
}

static int save_cowmap(struct file_layer *f)
{
    int fd = open(f->cowmap_path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        return -errno;
    }
    uint8_t hdr[16];
    memcpy(hdr, COWMAP_MAGIC, 8);
    for (int i = 0; i < 8; i++) {
        hdr[8 + i] = (uint8_t)(f->size >> (8 * i));
    }
    int r = pwrite_full(fd, hdr, sizeof(hdr), 0);
    if (r == 0) {
        r = pwrite_full(fd, f->cow, f->cow_bytes, sizeof(hdr));
    }
    if (r == 0 && !f->no_sync && !f->sync_hook && fdatasync(fd) < 0) {
        r = -errno;
    }
    close(fd);
    if (r == 0) {
        f->cow_dirty = false;
    }
    return r;
}

static int file_flush(struct bb_layer *l, const struct bb_io *io)
{
    struct file_layer *f = fl_of(l);
    if (!f->sync_hook && !f->no_sync && fdatasync(f->fd) < 0) {
        return host_error(f, "fdatasync", NULL, -errno);
    }
    bool map_saved = false;
    if (f->cow && f->cow_dirty) {
        int r = host_error(f, "write", f->cowmap_path, save_cowmap(f));
        if (r < 0) {
            return r;
        }
        map_saved = true;
    }
    if (f->sync_hook && !f->no_sync) {
        f->sync_hook(f->sync_arg, f->fd, map_saved ? f->cowmap_path : NULL);
    }
    return 0;
}

static void file_destroy(struct bb_layer *l)
{
    struct file_layer *f = fl_of(l);
    if (f->cow && f->cow_dirty) {
        save_cowmap(f);
    }
    if (f->fd >= 0) {
        close(f->fd);
    }
    if (f->base_fd >= 0) {
        close(f->base_fd);
    }
    free(f->cow);
    free(f->placed);
    free(f->cowmap_path);
    free(f->path);
    free(f);
}

static const struct bb_layer_ops file_ops = {
    .name = "file",
    .pread = file_pread,
    .pwrite = file_pwrite,
    .zero = file_zero,
    .flush = file_flush,
    .destroy = file_destroy,
};

/* Calls fn for every cluster of the file that holds data (SEEK_DATA). */
static void for_each_data_cluster(struct file_layer *f, void (*fn)(void *arg, uint64_t cluster),
                                  void *arg)
{
    off_t pos = 0;
    while ((uint64_t)pos < f->size) {
        off_t data = lseek(f->fd, pos, SEEK_DATA);
        if (data < 0) {
            break;
        }
        off_t hole = lseek(f->fd, data, SEEK_HOLE);
        if (hole < 0) {
            hole = (off_t)f->size;
        }
        for (uint64_t c = (uint64_t)data / BB_CLUSTER_SIZE;
             c * BB_CLUSTER_SIZE < (uint64_t)hole && c * BB_CLUSTER_SIZE < f->size; c++) {
            fn(arg, c);
        }
        pos = hole;
    }
}

static bool load_cowmap(struct file_layer *f, bool overlay_existed, struct fl_error **errp)
{
    size_t size = 0;
    if (access(f->cowmap_path, F_OK) != 0) {
        if (overlay_existed) {
            struct stat st;
            if (fstat(f->fd, &st) == 0 && st.st_blocks == 0) {
                return true; /* an empty overlay needs no map */
            }
            fl_error_setf(errp, ENOENT,
                          "overlay '%s' holds data but its map '%s' is missing; remove the "
                          "overlay to start again from the base",
                          f->cowmap_path, f->cowmap_path);
            return false;
        }
        return true;
    }
    char *data = fl_read_file(f->cowmap_path, &size, errp);
    if (!data) {
        return false;
    }
    uint64_t sz = 0;
    for (int i = 0; i < 8 && size >= 16; i++) {
        sz |= (uint64_t)(uint8_t)data[8 + i] << (8 * i);
    }
    if (size != 16 + f->cow_bytes || memcmp(data, COWMAP_MAGIC, 8) != 0 || sz != f->size) {
        fl_error_setf(errp, EINVAL,
                      "'%s' is not a copy-on-write map for a %llu-byte disk (%zu bytes, "
                      "expected %zu)",
                      f->cowmap_path, (unsigned long long)f->size, size, 16 + f->cow_bytes);
        free(data);
        return false;
    }
    memcpy(f->cow, data + 16, f->cow_bytes);
    free(data);
    return true;
}

struct bb_layer *bb_file_open(const struct bb_file_config *cfg, uint64_t *size_out,
                              struct fl_error **errp)
{
    struct file_layer *f = fl_xcalloc(1, sizeof(*f));
    f->layer.ops = &file_ops;
    f->fd = f->base_fd = -1;
    f->no_sync = cfg->no_sync;
    f->path = fl_xstrdup(cfg->path);
    struct stat st;
    bool existed = stat(cfg->path, &st) == 0;
    if (existed && !S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
        fl_error_setf(errp, EINVAL, "backing file '%s' is not a regular file or block device",
                      cfg->path);
        goto fail;
    }
    if (!existed && cfg->size == 0 && !cfg->base) {
        fl_error_setf(errp, EINVAL,
                      "backing file '%s' does not exist and no size was given (a positive "
                      "multiple of 512 bytes)",
                      cfg->path);
        goto fail;
    }
    f->fd = open(cfg->path, (cfg->read_only ? O_RDONLY : O_RDWR | O_CREAT) | O_CLOEXEC, 0644);
    if (f->fd < 0) {
        fl_error_setf_errno(errp, errno, "cannot open backing file '%s'", cfg->path);
        goto fail;
    }
    if (fstat(f->fd, &st) < 0) {
        fl_error_setf_errno(errp, errno, "cannot stat '%s'", cfg->path);
        goto fail;
    }
    uint64_t cur = (uint64_t)st.st_size;
    if (S_ISBLK(st.st_mode)) {
        off_t end = lseek(f->fd, 0, SEEK_END);
        cur = end < 0 ? 0 : (uint64_t)end;
    }
    if (cfg->base) {
        f->base_fd = open(cfg->base, O_RDONLY | O_CLOEXEC);
        if (f->base_fd < 0) {
            fl_error_setf_errno(errp, errno, "cannot open base image '%s'", cfg->base);
            goto fail;
        }
        struct stat bst;
        if (fstat(f->base_fd, &bst) < 0 || !S_ISREG(bst.st_mode)) {
            fl_error_setf(errp, EINVAL, "base image '%s' is not a regular file", cfg->base);
            goto fail;
        }
        f->base_size = (uint64_t)bst.st_size;
    }
    f->size = cfg->size;
    if (f->size == 0) {
        f->size = (cfg->base && cur == 0) ? f->base_size : cur;
        f->size -= f->size % BB_SECTOR_SIZE;
    }
    if (f->size == 0) {
        fl_error_setf(errp, EINVAL,
                      "disk '%s' has size 0: give a size (a positive multiple of 512 bytes) "
                      "or an existing non-empty file",
                      cfg->path);
        goto fail;
    }
    if (f->size % BB_SECTOR_SIZE) {
        fl_error_setf(errp, EINVAL, "disk size %llu is not a multiple of 512 bytes",
                      (unsigned long long)f->size);
        goto fail;
    }
    if (cur < f->size) {
        if (cfg->read_only || S_ISBLK(st.st_mode)) {
            fl_error_setf(errp, EINVAL, "'%s' holds %llu bytes, less than the disk size %llu",
                          cfg->path, (unsigned long long)cur, (unsigned long long)f->size);
            goto fail;
        }
        if (ftruncate(f->fd, (off_t)f->size) < 0) {
            fl_error_setf_errno(errp, errno, "cannot size '%s' to %llu bytes", cfg->path,
                                (unsigned long long)f->size);
            goto fail;
        }
    }
    f->cluster_blocks = st.st_blksize >= (blksize_t)BB_CLUSTER_SIZE;
    f->placed = fl_xcalloc(1, (size_t)((f->size + BB_CLUSTER_SIZE - 1) / BB_CLUSTER_SIZE / 8 + 1));
    if (cfg->base) {
        uint64_t clusters = (f->size + BB_CLUSTER_SIZE - 1) / BB_CLUSTER_SIZE;
        f->cow_bytes = (size_t)((clusters + 7) / 8);
        f->cow = fl_xcalloc(1, f->cow_bytes);
        f->cowmap_path = fl_xasprintf("%s.cowmap", cfg->path);
        if (!load_cowmap(f, existed && cur > 0, errp)) {
            goto fail;
        }
    }
    if (f->cluster_blocks) {
        /* what the file already holds needs no fallocate (partly held
         * clusters: their blocks are whole clusters here) */
        for_each_data_cluster(f, placed_set, f);
    }
    *size_out = f->size;
    return &f->layer;
fail:
    file_destroy(&f->layer);
    return NULL;
}

void bb_file_for_each_allocated(struct bb_layer *l, void (*fn)(void *arg, uint64_t cluster),
                                void *arg)
{
    struct file_layer *f = fl_of(l);
    if (f->cow) {
        for (uint64_t c = 0; c < (uint64_t)f->cow_bytes * 8; c++) {
            if (cow_test(f, c)) {
                fn(arg, c);
            }
        }
        return;
    }
    for_each_data_cluster(f, fn, arg);
}

void bb_file_set_error_fn(struct bb_layer *l, bb_host_error_fn *fn, void *arg)
{
    struct file_layer *f = fl_of(l);
    f->on_error = fn;
    f->on_error_arg = arg;
}

const char *bb_file_path(struct bb_layer *l)
{
    return fl_of(l)->path;
}

void bb_file_set_sync_hook(struct bb_layer *l, bb_sync_owed_fn *fn, void *arg)
{
    struct file_layer *f = fl_of(l);
    f->sync_hook = fn;
    f->sync_arg = arg;
}

void bb_layer_destroy_stack(struct bb_layer *top)
{
    while (top) {
        struct bb_layer *next = top->next;
        top->ops->destroy(top);
        top = next;
    }
}
