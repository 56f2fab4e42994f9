/*
 * Packing the initramfs tree into a newc cpio (cpio.c writes the
 * format): entries in name order, so the same tree gives the same bytes.
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

bool hv_image_pack(const char *root, const char *path, struct fl_error **errp)
{
    struct hv_cpio *c = hv_cpio_create(path, errp);
    if (!c) {
        return false;
    }
    if (!pack_tree(c, root, "", errp)) {
        hv_cpio_destroy(c);
        return false;
    }
    return hv_cpio_finish(c, errp);
}
