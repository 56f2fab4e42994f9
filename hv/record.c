/*
 * Record and replay: QEMU's version, segment metadata, and the file
 * helpers a segment needs (hv/record.h).  The command lines are in
 * rr-cmdline.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hv/internal.h"
#include "hv/record.h"

/* ---- QEMU version ---- */

void hv_qemu_info_clear(struct hv_qemu_info *q)
{
    if (q) {
        free(q->path);
        free(q->version);
        free(q->package);
        memset(q, 0, sizeof *q);
    }
}

bool hv_qemu_version_parse(const char *text, struct hv_qemu_info *out, struct fl_error **errp)
{
    static const char prefix[] = "QEMU emulator version ";
    const char *p = text ? strstr(text, prefix) : NULL;
    unsigned maj = 0, min = 0, mic = 0;
    int used = 0;
    if (!p || sscanf(p + strlen(prefix), "%u.%u.%u%n", &maj, &min, &mic, &used) != 3) {
        size_t len = text ? strcspn(text, "\n") : 0;
        fl_error_setf(errp, EINVAL,
                      "QEMU version: '%.*s' is not 'QEMU emulator version X.Y.Z' (what "
                      "qemu-system-x86_64 --version prints)",
                      (int)FL_MIN(len, 200), text ? text : "");
        return false;
    }
    const char *ver = p + strlen(prefix);
    const char *rest = ver + used;
    while (*rest == ' ') {
        rest++;
    }
    out->major = maj;
    out->minor = min;
    out->micro = mic;
    free(out->version);
    out->version = fl_xasprintf("%u.%u.%u", maj, min, mic);
    free(out->package);
    out->package = fl_xasprintf("%.*s", (int)strcspn(rest, "\n"), rest);
    return true;
}

int hv_rr_run_tool(const char *const *argv, char **out, size_t *out_size, char **err_text)
{
    int po[2], pe[2];
    if (pipe2(po, O_CLOEXEC) < 0) {
        return -1;
    }
    if (pipe2(pe, O_CLOEXEC) < 0) {
        close(po[0]), close(po[1]);
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        close(po[0]), close(po[1]), close(pe[0]), close(pe[1]);
        return -1;
    }
    if (pid == 0) {
        int nul = open("/dev/null", O_RDONLY);
        if (nul < 0 || dup2(nul, 0) < 0 || dup2(po[1], 1) < 0 || dup2(pe[1], 2) < 0) {
            _exit(126);
        }
        execvp(argv[0], (char *const *)argv);
        dprintf(2, "cannot run '%s': %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(po[1]);
    close(pe[1]);
    struct fl_buf bo = {0}, be = {0};
    int fds[2] = {po[0], pe[0]};
    struct fl_buf *bufs[2] = {&bo, &be};
    for (int open_fds = 2; open_fds > 0;) {
        fd_set rs;
        FD_ZERO(&rs);
        int maxfd = -1;
        for (int i = 0; i < 2; i++) {
            if (fds[i] >= 0) {
                FD_SET(fds[i], &rs);
                maxfd = FL_MAX(maxfd, fds[i]);
            }
        }
        if (select(maxfd + 1, &rs, NULL, NULL, NULL) < 0) {
            if (errno == EINTR) {
                continue;
            }
            break;
        }
        for (int i = 0; i < 2; i++) {
            if (fds[i] < 0 || !FD_ISSET(fds[i], &rs)) {
                continue;
            }
            char buf[8192];
            ssize_t r = read(fds[i], buf, sizeof buf);
            if (r < 0 && errno == EINTR) {
                continue;
            }
            if (r <= 0) {
                close(fds[i]);
                fds[i] = -1;
                open_fds--;
                continue;
            }
            if (i == 0 && !out) {
                continue;
            }
            fl_buf_append(bufs[i], buf, (size_t)r);
            if (i == 1 && be.size > 4096) {
                memmove(be.data, be.data + be.size - 4096, 4096);
                be.size = 4096;
                be.data[be.size] = '\0';
            }
        }
    }
    for (int i = 0; i < 2; i++) {
        if (fds[i] >= 0) {
            close(fds[i]);
        }
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (out) {
        if (out_size) {
            *out_size = bo.size;
        }
        *out = bo.data ? fl_buf_steal(&bo) : fl_xstrdup("");
    }
    fl_buf_free(&bo);
    if (err_text) {
        while (be.size && (be.data[be.size - 1] == '\n' || be.data[be.size - 1] == '\r')) {
            be.data[--be.size] = '\0';
        }
        *err_text = be.data ? fl_buf_steal(&be) : fl_xstrdup("");
    }
    fl_buf_free(&be);
    return status;
}

static char *find_in_path(const char *prog)
{
    if (strchr(prog, '/')) {
        return access(prog, X_OK) == 0 ? fl_xstrdup(prog) : NULL;
    }
    const char *path = getenv("PATH");
    char *dirs = fl_xstrdup(path && *path ? path : "/usr/local/bin:/usr/bin:/bin");
    char *found = NULL;
    for (char *save = NULL, *d = strtok_r(dirs, ":", &save); d && !found;
         d = strtok_r(NULL, ":", &save)) {
        char *full = fl_xasprintf("%s/%s", *d ? d : ".", prog);
        if (access(full, X_OK) == 0) {
            found = full;
        } else {
            free(full);
        }
    }
    free(dirs);
    return found;
}

bool hv_qemu_probe(const char *binary, struct hv_qemu_info *out, struct fl_error **errp)
{
    memset(out, 0, sizeof *out);
    const char *env = getenv("FAULTLINE_QEMU");
    const char *prog = binary && *binary ? binary : env && *env ? env : "qemu-system-x86_64";
    char *path = find_in_path(prog);
    if (!path) {
        fl_error_setf(errp, ENOENT,
                      "QEMU '%s' was not found: install it (scripts/install-deps) or set "
                      "FAULTLINE_QEMU",
                      prog);
        return false;
    }
    const char *argv[] = {path, "--version", NULL};
    char *text = NULL, *err = NULL;
    int st = hv_rr_run_tool(argv, &text, NULL, &err);
    if (st < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fl_error_setf(errp, EIO, "QEMU '%s' --version failed: %s", path,
                      err && *err ? err : "no output");
        free(text), free(err), free(path);
        return false;
    }
    free(err);
    bool ok = hv_qemu_version_parse(text, out, errp);
    free(text);
    if (!ok) {
        fl_error_prepend(errp, "%s: ", path);
        free(path);
        return false;
    }
    size_t size = 0;
    char *bin = fl_read_file(path, &size, errp);
    if (!bin) {
        free(path);
        hv_qemu_info_clear(out);
        return false;
    }
    out->hash = fl_hash64(bin, size);
    free(bin);
    out->path = path;
    return true;
}

static const char *const flavor_names[] = {"qemu-7.2", "qemu-10"};

const char *hv_rr_flavor_name(enum hv_rr_flavor f)
{
    return (size_t)f < FL_ARRAY_LEN(flavor_names) ? flavor_names[f] : "?";
}

bool hv_rr_flavor_parse(const char *s, enum hv_rr_flavor *out)
{
    for (size_t i = 0; i < FL_ARRAY_LEN(flavor_names); i++) {
        if (s && !strcmp(s, flavor_names[i])) {
            *out = (enum hv_rr_flavor)i;
            return true;
        }
    }
    return false;
}

bool hv_rr_flavor_for(unsigned major, unsigned minor, enum hv_rr_flavor *out,
                      struct fl_error **errp)
{
    if (major == 7 && minor >= 2) {
        *out = HV_RR_QEMU72;
        return true;
    }
    if (major >= 10) {
        *out = HV_RR_QEMU10;
        return true;
    }
    fl_error_setf(errp, ENOTSUP,
                  "QEMU %u.%u cannot record here: record/replay was measured on QEMU 7.2 "
                  "(Debian 12) and 10.0+ only (set FAULTLINE_QEMU to one of those)",
                  major, minor);
    return false;
}

/* ---- segment metadata ---- */

static const char *const end_names[] = {
#define HV_RR_END_NAME(name, str) str,
    HV_RR_ENDS(HV_RR_END_NAME)
#undef HV_RR_END_NAME
};

const char *hv_rr_end_name(enum hv_rr_end e)
{
    return (size_t)e < FL_ARRAY_LEN(end_names) ? end_names[e] : "?";
}

void hv_rr_segment_clear(struct hv_rr_segment *s)
{
    if (!s) {
        return;
    }
    free(s->node);
    free(s->qemu_path);
    free(s->qemu_version);
    free(s->qemu_package);
    free(s->image_key);
    hv_rr_argv_free(s->record_argv);
    hv_rr_argv_free(s->replay_argv);
    for (size_t i = 0; i < s->n_disks; i++) {
        free(s->disks[i].name);
        free(s->disks[i].file);
    }
    free(s->disks);
    free(s->log);
    memset(s, 0, sizeof *s);
}

static void json_argv(struct fl_buf *b, const char *key, char *const *argv)
{
    fl_buf_printf(b, ",\n  \"%s\": [", key);
    for (size_t i = 0; argv && argv[i]; i++) {
        fl_buf_puts(b, i ? ",\n    " : "\n    ");
        fl_buf_json_string(b, argv[i]);
    }
    fl_buf_puts(b, "\n  ]");
}

static void json_kv(struct fl_buf *b, const char *key, const char *value)
{
    fl_buf_printf(b, "\"%s\": ", key);
    fl_buf_json_string(b, value ? value : "");
}

bool hv_rr_segment_write(const char *path, const struct hv_rr_segment *s, struct fl_error **errp)
{
    struct fl_buf b = {0};
    fl_buf_puts(&b, "{\n  \"format\": 1,\n  ");
    json_kv(&b, "node", s->node);
    fl_buf_printf(&b, ",\n  \"segment\": %u,\n  \"qemu\": {", s->index);
    json_kv(&b, "path", s->qemu_path);
    fl_buf_puts(&b, ", ");
    json_kv(&b, "version", s->qemu_version);
    fl_buf_puts(&b, ", ");
    json_kv(&b, "package", s->qemu_package);
    fl_buf_printf(&b, ", \"hash\": \"fnv64:%016llx\"},\n  ", (unsigned long long)s->qemu_hash);
    json_kv(&b, "flavor", hv_rr_flavor_name(s->flavor));
    fl_buf_puts(&b, ",\n  ");
    json_kv(&b, "image_key", s->image_key);
    fl_buf_printf(&b, ",\n  \"started_unix\": %lld,\n  \"duration_ns\": %lld,\n  ",
                  (long long)s->started_unix, (long long)s->duration_ns);
    json_kv(&b, "end", hv_rr_end_name(s->end));
    if (s->has_icount) {
        fl_buf_printf(&b, ",\n  \"icount\": %llu", (unsigned long long)s->icount);
    } else {
        fl_buf_puts(&b, ",\n  \"icount\": null");
    }
    fl_buf_puts(&b, ",\n  ");
    json_kv(&b, "log", s->log);
    fl_buf_puts(&b, ",\n  \"disks\": [");
    for (size_t i = 0; i < s->n_disks; i++) {
        fl_buf_puts(&b, i ? ", {" : "{");
        json_kv(&b, "name", s->disks[i].name);
        fl_buf_puts(&b, ", ");
        json_kv(&b, "file", s->disks[i].file);
        fl_buf_printf(&b, ", \"size\": %llu}", (unsigned long long)s->disks[i].size);
    }
    fl_buf_puts(&b, "]");
    json_argv(&b, "record_argv", s->record_argv);
    json_argv(&b, "replay_argv", s->replay_argv);
    fl_buf_puts(&b, "\n}\n");
    char *tmp = fl_xasprintf("%s.tmp", path);
    bool ok = fl_write_file(tmp, b.data, b.size, errp);
    if (ok && rename(tmp, path) < 0) {
        fl_error_setf_errno(errp, errno, "cannot rename '%s' to '%s'", tmp, path);
        ok = false;
    }
    if (!ok) {
        unlink(tmp);
    }
    free(tmp);
    fl_buf_free(&b);
    return ok;
}

struct rd {
    const char *path;
    struct fl_error **errp;
    bool ok;
};

static bool rd_fail(struct rd *r, const char *field, const char *why)
{
    if (r->ok) {
        fl_error_setf(r->errp, EINVAL, "%s: %s: %s", r->path, field, why);
    }
    r->ok = false;
    return false;
}

static char *rd_str(struct rd *r, const struct fl_json *obj, const char *key, bool required)
{
    const struct fl_json *v = fl_json_get(obj, key);
    if (!v || v->type != FL_JSON_STR) {
        if (required || v) {
            rd_fail(r, key, v ? "is not a string" : "is missing");
        }
        return NULL;
    }
    return fl_xstrdup(v->str);
}

static bool rd_u64(struct rd *r, const struct fl_json *obj, const char *key, uint64_t *out)
{
    const struct fl_json *v = fl_json_get(obj, key);
    if (!v || v->type != FL_JSON_NUM || v->num < 0 || v->num > 9007199254740992.0 ||
        v->num != (double)(uint64_t)v->num) {
        return rd_fail(r, key, v ? "is not a non-negative integer" : "is missing");
    }
    *out = (uint64_t)v->num;
    return true;
}

static char **rd_argv(struct rd *r, const struct fl_json *obj, const char *key)
{
    const struct fl_json *v = fl_json_get(obj, key);
    if (!v || v->type != FL_JSON_ARR || v->n == 0) {
        rd_fail(r, key, v ? "is not a non-empty array of strings" : "is missing");
        return NULL;
    }
    char **argv = fl_xcalloc(v->n + 1, sizeof *argv);
    for (size_t i = 0; i < v->n; i++) {
        if (v->items[i]->type != FL_JSON_STR) {
            char *f = fl_xasprintf("%s[%zu]", key, i);
            rd_fail(r, f, "is not a string");
            free(f);
            hv_rr_argv_free(argv);
            return NULL;
        }
        argv[i] = fl_xstrdup(v->items[i]->str);
    }
    return argv;
}

/* A file name inside the segment directory: no '/', not "." or "..". */
static bool plain_name(const char *s)
{
    return s && *s && !strchr(s, '/') && strcmp(s, ".") && strcmp(s, "..");
}

bool hv_rr_segment_read(const char *path, struct hv_rr_segment *s, struct fl_error **errp)
{
    memset(s, 0, sizeof *s);
    size_t size = 0;
    char *text = fl_read_file(path, &size, errp);
    if (!text) {
        return false;
    }
    struct fl_error *perr = NULL;
    struct fl_json *j = fl_json_parse(text, size, &perr);
    free(text);
    if (!j) {
        fl_error_setf(errp, EINVAL, "%s: not valid JSON: %s", path, perr->msg);
        fl_error_free(perr);
        return false;
    }
    struct rd r = {.path = path, .errp = errp, .ok = true};
    uint64_t u = 0;
    if (j->type != FL_JSON_OBJ) {
        rd_fail(&r, "(top level)", "is not an object");
        goto out;
    }
    if (rd_u64(&r, j, "format", &u) && u != 1) {
        char *why =
            fl_xasprintf("%llu is not a format this faultline reads (1)", (unsigned long long)u);
        rd_fail(&r, "format", why);
        free(why);
    }
    s->node = rd_str(&r, j, "node", true);
    if (r.ok && !hv_name_valid(s->node)) {
        rd_fail(&r, "node", "is not a node name");
    }
    if (rd_u64(&r, j, "segment", &u)) {
        if (u > 100000) {
            rd_fail(&r, "segment", "is out of range (0..100000)");
        }
        s->index = (unsigned)u;
    }
    const struct fl_json *q = fl_json_get(j, "qemu");
    if (!q || q->type != FL_JSON_OBJ) {
        rd_fail(&r, "qemu", q ? "is not an object" : "is missing");
    } else {
        s->qemu_path = rd_str(&r, q, "path", true);
        s->qemu_version = rd_str(&r, q, "version", true);
        s->qemu_package = rd_str(&r, q, "package", false);
        char *h = rd_str(&r, q, "hash", true);
        unsigned long long hv = 0;
        int used = 0;
        if (h && (sscanf(h, "fnv64:%16llx%n", &hv, &used) != 1 || h[used])) {
            rd_fail(&r, "qemu.hash", "is not 'fnv64:' and 16 hex digits");
        }
        s->qemu_hash = hv;
        free(h);
    }
    char *flavor = rd_str(&r, j, "flavor", true);
    if (flavor && !hv_rr_flavor_parse(flavor, &s->flavor)) {
        rd_fail(&r, "flavor", "is not qemu-7.2 or qemu-10");
    }
    free(flavor);
    s->image_key = rd_str(&r, j, "image_key", true);
    const struct fl_json *sv = fl_json_get(j, "started_unix");
    if (sv && sv->type == FL_JSON_NUM) {
        s->started_unix = (int64_t)sv->num;
    }
    sv = fl_json_get(j, "duration_ns");
    if (sv && sv->type == FL_JSON_NUM) {
        s->duration_ns = (int64_t)sv->num;
    }
    char *end = rd_str(&r, j, "end", true);
    bool found = false;
    for (size_t i = 0; end && i < FL_ARRAY_LEN(end_names); i++) {
        if (!strcmp(end, end_names[i])) {
            s->end = (enum hv_rr_end)i;
            found = true;
        }
    }
    if (end && !found) {
        rd_fail(&r, "end", "is not running, quit, killed or exited");
    }
    free(end);
    const struct fl_json *ic = fl_json_get(j, "icount");
    if (ic && ic->type != FL_JSON_NULL) {
        s->has_icount = rd_u64(&r, j, "icount", &s->icount);
    }
    s->log = rd_str(&r, j, "log", true);
    if (s->log && !plain_name(s->log)) {
        rd_fail(&r, "log", "is not a file name inside the segment directory");
    }
    const struct fl_json *d = fl_json_get(j, "disks");
    if (!d || d->type != FL_JSON_ARR) {
        rd_fail(&r, "disks", d ? "is not an array" : "is missing");
    } else if (r.ok) {
        s->disks = fl_xcalloc(d->n + 1, sizeof *s->disks);
        for (size_t i = 0; i < d->n && r.ok; i++) {
            char *f = fl_xasprintf("disks[%zu]", i);
            if (d->items[i]->type != FL_JSON_OBJ) {
                rd_fail(&r, f, "is not an object");
            } else {
                s->n_disks++;
                s->disks[i].name = rd_str(&r, d->items[i], "name", true);
                s->disks[i].file = rd_str(&r, d->items[i], "file", true);
                rd_u64(&r, d->items[i], "size", &s->disks[i].size);
                if (r.ok && !plain_name(s->disks[i].file)) {
                    rd_fail(&r, f, "file is not a name inside the segment directory");
                }
            }
            free(f);
        }
    }
    if (r.ok) {
        s->record_argv = rd_argv(&r, j, "record_argv");
    }
    if (r.ok) {
        s->replay_argv = rd_argv(&r, j, "replay_argv");
    }
out:
    fl_json_free(j);
    if (!r.ok) {
        hv_rr_segment_clear(s);
    }
    return r.ok;
}

/* ---- files ---- */

bool hv_rr_copy_file(const char *src, const char *dst, struct fl_error **errp)
{
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0) {
        fl_error_setf_errno(errp, errno, "cannot open '%s'", src);
        return false;
    }
    struct stat st;
    if (fstat(in, &st) < 0) {
        fl_error_setf_errno(errp, errno, "cannot stat '%s'", src);
        close(in);
        return false;
    }
    int out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (out < 0) {
        fl_error_setf_errno(errp, errno, "cannot create '%s'", dst);
        close(in);
        return false;
    }
    bool ok = true;
    if (ioctl(out, FICLONE, in) < 0) {
        /* No reflink here: copy the data extents, leave the holes. */
        off_t pos = 0;
        while (ok && pos < st.st_size) {
            off_t data = lseek(in, pos, SEEK_DATA);
            if (data < 0) {
                break; /* ENXIO: only a hole is left */
            }
            off_t hole = lseek(in, data, SEEK_HOLE);
            if (hole < 0) {
                hole = st.st_size;
            }
            off_t from = data, to = data;
            while (from < hole) {
                ssize_t n = copy_file_range(in, &from, out, &to, (size_t)(hole - from), 0);
                if (n <= 0) {
                    fl_error_setf_errno(errp, n < 0 ? errno : EIO, "cannot copy '%s' to '%s'", src,
                                        dst);
                    ok = false;
                    break;
                }
            }
            pos = hole;
        }
        if (ok && ftruncate(out, st.st_size) < 0) {
            fl_error_setf_errno(errp, errno, "cannot size '%s'", dst);
            ok = false;
        }
    }
    close(in);
    if (close(out) < 0 && ok) {
        fl_error_setf_errno(errp, errno, "cannot write '%s'", dst);
        ok = false;
    }
    if (!ok) {
        unlink(dst);
    }
    return ok;
}

bool hv_rr_zstd(bool compress, const char *src, const char *dst, struct fl_error **errp)
{
    const char *argv_c[] = {"zstd", "-q", "-f", "--rm", "-o", dst, src, NULL};
    const char *argv_d[] = {"zstd", "-d", "-q", "-f", "-o", dst, src, NULL};
    char *err = NULL;
    int st = hv_rr_run_tool(compress ? argv_c : argv_d, NULL, NULL, &err);
    bool ok = st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0;
    if (!ok) {
        fl_error_setf(errp, EIO, "zstd %s '%s': %s%s", compress ? "compressing" : "decompressing",
                      src,
                      st < 0                                    ? strerror(errno)
                      : WIFEXITED(st) && WEXITSTATUS(st) == 127 ? "zstd is not installed "
                                                                  "(apt-get install zstd)"
                      : err && *err                             ? err
                                                                : "failed",
                      "");
    }
    free(err);
    return ok;
}
