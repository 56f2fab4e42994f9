/* Small file-system helpers (contracts in core/core.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/core.h"

bool fl_mkdir_p(const char *path, mode_t mode, struct fl_error **errp)
{
    char *p = fl_xstrdup(path);
    for (char *s = p + 1;; s++) {
        if (*s == '/' || *s == '\0') {
            char c = *s;
            *s = '\0';
            if (mkdir(p, mode) < 0 && errno != EEXIST) {
                fl_error_setf_errno(errp, errno, "cannot create directory '%s'", p);
                free(p);
                return false;
            }
            *s = c;
            if (!c) {
                break;
            }
        }
    }
    free(p);
    struct stat st;
    if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode)) {
        fl_error_setf(errp, ENOTDIR, "'%s' exists and is not a directory", path);
        return false;
    }
    return true;
}

int fl_rm_rf(const char *path)
{
    struct stat st;
    if (lstat(path, &st) < 0) {
        return errno == ENOENT ? 0 : -errno;
    }
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        if (!d) {
            return -errno;
        }
        struct dirent *e;
        int r = 0;
        while ((e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) {
                continue;
            }
            char *child = fl_xasprintf("%s/%s", path, e->d_name);
            int cr = fl_rm_rf(child);
            free(child);
            if (cr < 0 && !r) {
                r = cr;
            }
        }
        closedir(d);
        if (rmdir(path) < 0 && !r) {
            r = -errno;
        }
        return r;
    }
    return unlink(path) < 0 ? -errno : 0;
}

char *fl_read_file(const char *path, size_t *size, struct fl_error **errp)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fl_error_setf_errno(errp, errno, "cannot open '%s'", path);
        return NULL;
    }
    struct fl_buf b = {0};
    char chunk[65536];
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof chunk);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            fl_error_setf_errno(errp, errno, "cannot read '%s'", path);
            close(fd);
            fl_buf_free(&b);
            return NULL;
        }
        if (n == 0) {
            break;
        }
        fl_buf_append(&b, chunk, (size_t)n);
    }
    close(fd);
    if (size) {
        *size = b.size;
    }
    return fl_buf_steal(&b);
}

bool fl_write_file(const char *path, const void *data, size_t size, struct fl_error **errp)
{
    char *tmp = fl_xasprintf("%s.tmp.%d", path, (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        fl_error_setf_errno(errp, errno, "cannot create '%s'", tmp);
        free(tmp);
        return false;
    }
    const char *p = data;
    while (size) {
        ssize_t n = write(fd, p, size);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            fl_error_setf_errno(errp, errno, "cannot write '%s'", tmp);
            close(fd);
            unlink(tmp);
            free(tmp);
            return false;
        }
        p += n;
        size -= (size_t)n;
    }
    if (close(fd) < 0 || rename(tmp, path) < 0) {
        fl_error_setf_errno(errp, errno, "cannot write '%s'", path);
        unlink(tmp);
        free(tmp);
        return false;
    }
    free(tmp);
    return true;
}

int fl_set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
        return -errno;
    }
    return 0;
}

int fl_set_cloexec(int fd)
{
    int fl = fcntl(fd, F_GETFD);
    if (fl < 0 || fcntl(fd, F_SETFD, fl | FD_CLOEXEC) < 0) {
        return -errno;
    }
    return 0;
}

bool fl_is_dir(const char *p)
{
    struct stat st;
    return lstat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

bool fl_path_exists(const char *p)
{
    struct stat st;
    return lstat(p, &st) == 0;
}

bool fl_copy_file(const char *src, const char *dst, mode_t mode, struct fl_error **errp)
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

bool fl_mkdir_parent(const char *path, struct fl_error **errp)
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

bool fl_copy_tree(const char *src, const char *dst, struct fl_error **errp)
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
        if (fl_is_dir(dst)) {
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
        return fl_copy_file(src, dst, st.st_mode, errp);
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
        ok = fl_copy_tree(s, t, errp);
        free(s);
        free(t);
    }
    closedir(d);
    return ok;
}

/* Hashes a file or tree (names, modes, link targets, contents). */
uint64_t fl_tree_size(const char *path)
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
            total += fl_tree_size(p);
            free(p);
        }
    }
    if (d) {
        closedir(d);
    }
    return total;
}

void fl_touch(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd >= 0) {
        futimens(fd, NULL);
        close(fd);
    }
}
