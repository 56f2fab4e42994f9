/*
 * A newc ("070701") cpio writer: the format the kernel unpacks as the
 * initramfs.  Entries are written uncompressed (the kernel then copies
 * instead of decompressing: faster under TCG) with mtime 0, uid/gid 0 and
 * inode numbers in order, so the same tree gives the same bytes.
 *
 *   "070701" ino mode uid gid nlink mtime filesize devmaj devmin
 *            rdevmaj rdevmin namesize check   (13 x 8 hex digits)
 *   name NUL, padded to 4 | data, padded to 4
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hv/internal.h"

struct hv_cpio {
    FILE *f;
    char *path;
    uint32_t ino;
    uint64_t offset;
    bool failed;
};

struct hv_cpio *hv_cpio_create(const char *path, struct fl_error **errp)
{
    FILE *f = fopen(path, "wbe");
    if (!f) {
        fl_error_setf_errno(errp, errno, "cannot create '%s'", path);
        return NULL;
    }
    struct hv_cpio *c = fl_xcalloc(1, sizeof *c);
    c->f = f;
    c->path = fl_xstrdup(path);
    c->ino = 1;
    return c;
}

static void put(struct hv_cpio *c, const void *data, size_t size)
{
    if (size && fwrite(data, 1, size, c->f) != size) {
        c->failed = true;
    }
    c->offset += size;
}

static void pad4(struct hv_cpio *c)
{
    static const char zeros[4];
    put(c, zeros, (4 - c->offset % 4) % 4);
}

static void entry(struct hv_cpio *c, const char *name, uint32_t mode, uint32_t nlink,
                  const void *data, size_t size)
{
    char hdr[111];
    size_t namesize = strlen(name) + 1;
    snprintf(hdr, sizeof hdr, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
             c->ino++, mode, 0u, 0u, nlink, 0u, (unsigned)size, 0u, 0u, 0u, 0u, (unsigned)namesize,
             0u);
    put(c, hdr, 110);
    put(c, name, namesize);
    pad4(c);
    put(c, data, size);
    pad4(c);
}

bool hv_cpio_add(struct hv_cpio *c, const char *path, mode_t mode, const void *data, size_t size,
                 struct fl_error **errp)
{
    if (!path[0] || path[0] == '/' || strlen(path) > 4000) {
        fl_error_setf(errp, EINVAL, "cpio: bad entry path '%s' (relative, at most 4000 bytes)",
                      path);
        return false;
    }
    if (size > UINT32_MAX - 4) {
        fl_error_setf(errp, EFBIG, "cpio: '%s' is too large for newc (%zu bytes)", path, size);
        return false;
    }
    if (!S_ISREG(mode) && !S_ISDIR(mode) && !S_ISLNK(mode)) {
        fl_error_setf(errp, EINVAL, "cpio: '%s': only files, directories and symlinks", path);
        return false;
    }
    entry(c, path, (uint32_t)mode, S_ISDIR(mode) ? 2 : 1, data, S_ISDIR(mode) ? 0 : size);
    if (c->failed) {
        fl_error_setf_errno(errp, EIO, "cpio: write to '%s' failed", c->path);
        return false;
    }
    return true;
}

bool hv_cpio_finish(struct hv_cpio *c, struct fl_error **errp)
{
    entry(c, "TRAILER!!!", 0, 1, NULL, 0);
    bool ok = !c->failed;
    if (fflush(c->f) != 0 || fsync(fileno(c->f)) != 0) {
        ok = false;
    }
    if (fclose(c->f) != 0) {
        ok = false;
    }
    c->f = NULL;
    if (!ok) {
        fl_error_setf_errno(errp, EIO, "cpio: writing '%s' failed", c->path);
    }
    free(c->path);
    free(c);
    return ok;
}

void hv_cpio_destroy(struct hv_cpio *c)
{
    if (!c) {
        return;
    }
    if (c->f) {
        fclose(c->f);
    }
    free(c->path);
    free(c);
}
