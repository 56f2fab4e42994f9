/* Small file-system helpers. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
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
