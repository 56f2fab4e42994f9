/*
 * Bundles (hv/record.h): what replaying some recorded nodes of a run
 * needs, in one tar file, and back.
 *
 *   pack:   a staging directory of links ─▶ tar --dereference [--zstd]
 *             faultline-bundle.json  (written there)
 *             rr/<node> ─▶ <run>/rr/<node>
 *             image/<key>/<file> ─▶ the kernel and initrd of the segments
 *   unpack: tar -x into a new directory ─▶ faultline-bundle.json checked
 *             ─▶ each segment.json pointed at image/<key>/<file>
 *
 * The system tar (GNU tar, with zstd for compression) does the archive:
 * it keeps the disk copies sparse (--sparse), detects the compression
 * when it reads, refuses member names that leave the directory, and
 * reports a truncated archive; writing a tar here would have to redo
 * each of those.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hv/internal.h"
#include "hv/record.h"

#define FORMAT  "faultline-bundle"
#define VERSION 1

static int cmp_uint(const void *a, const void *b)
{
    unsigned x = *(const unsigned *)a, y = *(const unsigned *)b;
    return x < y ? -1 : x > y;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

unsigned *hv_rr_list_segments(const char *node_dir, size_t *n)
{
    *n = 0;
    DIR *d = opendir(node_dir);
    if (!d) {
        return NULL;
    }
    unsigned *v = NULL;
    size_t alloc = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        char *end;
        unsigned long k = strtoul(e->d_name, &end, 10);
        if (!*e->d_name || *end || e->d_name[0] == '-' || k > 100000) {
            continue;
        }
        v = fl_xgrow(v, &alloc, *n + 1, sizeof *v);
        v[(*n)++] = (unsigned)k;
    }
    closedir(d);
    if (*n) {
        qsort(v, *n, sizeof *v, cmp_uint);
    }
    return v;
}

char **hv_rr_list_nodes(const char *rr_dir, size_t *n)
{
    *n = 0;
    DIR *d = opendir(rr_dir);
    if (!d) {
        return NULL;
    }
    char **v = NULL;
    size_t alloc = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') {
            continue;
        }
        v = fl_xgrow(v, &alloc, *n + 1, sizeof *v);
        v[(*n)++] = fl_xstrdup(e->d_name);
    }
    closedir(d);
    if (*n) {
        qsort(v, *n, sizeof *v, cmp_str);
    }
    return v;
}

void hv_rr_list_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i]);
    }
    free(v);
}

static bool is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static char *make_temp_dir(const char *what, struct fl_error **errp)
{
    const char *tmp = getenv("TMPDIR");
    char *dir = fl_xasprintf("%s/faultline-%s-XXXXXX", tmp && *tmp ? tmp : "/tmp", what);
    if (!mkdtemp(dir)) {
        fl_error_setf_errno(errp, errno, "cannot create '%s'", dir);
        free(dir);
        return NULL;
    }
    return dir;
}

/* tar's complaint, for an error message: its first line that says what
 * was wrong (not "Exiting with failure status ..."), without "tar: ". */
static char *tar_said(int st, const char *err)
{
    if (st < 0) {
        return fl_xstrdup(strerror(errno));
    }
    if (WIFEXITED(st) && WEXITSTATUS(st) == 127) {
        return fl_xstrdup("tar is not installed (apt-get install tar zstd)");
    }
    static const char *const noise[] = {"Exiting with failure", "Child returned status",
                                        "Error is not recoverable", "Skipping to next header"};
    const char *first = NULL;
    for (const char *p = err; p && *p;) {
        size_t len = strcspn(p, "\n");
        bool tar = len > 5 && !strncmp(p, "tar: ", 5), quiet = false;
        for (size_t i = 0; tar && i < FL_ARRAY_LEN(noise); i++) {
            quiet = quiet || !strncmp(p + 5, noise[i], strlen(noise[i]));
        }
        if (tar && !quiet) {
            return fl_xstrndup(p + 5, len - 5);
        }
        if (!first && len) {
            first = p;
        }
        p += len + (p[len] == '\n');
    }
    return first ? fl_xstrndup(first, strcspn(first, "\n")) : fl_xstrdup("tar failed");
}

/* The -kernel and -initrd files of a segment's replay command line. */
static void image_files(const struct hv_rr_segment *s, const char *files[2])
{
    files[0] = files[1] = NULL;
    for (size_t i = 0; s->replay_argv && s->replay_argv[i] && s->replay_argv[i + 1]; i++) {
        if (!strcmp(s->replay_argv[i], "-kernel")) {
            files[0] = s->replay_argv[i + 1];
        } else if (!strcmp(s->replay_argv[i], "-initrd")) {
            files[1] = s->replay_argv[i + 1];
        }
    }
}

static const char *base_name(const char *p)
{
    const char *b = strrchr(p, '/');
    return b ? b + 1 : p;
}

/* stage/image/<key>/<file> -> each image file the node's segments boot. */
static bool stage_images(const char *stage, const char *rr, const char *node,
                         struct fl_error **errp)
{
    char *nd = fl_xasprintf("%s/%s", rr, node);
    size_t n = 0;
    unsigned *segs = hv_rr_list_segments(nd, &n);
    bool ok = true;
    for (size_t k = 0; k < n && ok; k++) {
        char *meta = fl_xasprintf("%s/%u/" HV_RR_SEGMENT_FILE, nd, segs[k]);
        struct hv_rr_segment s;
        ok = hv_rr_segment_read(meta, &s, errp);
        free(meta);
        if (!ok) {
            break;
        }
        const char *files[2];
        image_files(&s, files);
        for (size_t f = 0; f < 2 && ok; f++) {
            if (!files[f]) {
                continue;
            }
            if (files[f][0] != '/' || access(files[f], R_OK) < 0 || strchr(s.image_key, '/') ||
                !*s.image_key || s.image_key[0] == '.') {
                fl_error_setf(errp, ENOENT,
                              "%s segment %u: its guest image file '%s' is not on this machine "
                              "(bundle with --no-image to leave the image out)",
                              node, segs[k], files[f]);
                ok = false;
                break;
            }
            char *dir = fl_xasprintf("%s/image/%s", stage, s.image_key);
            char *link = fl_xasprintf("%s/%s", dir, base_name(files[f]));
            ok = fl_mkdir_p(dir, 0755, errp);
            if (ok && symlink(files[f], link) < 0 && errno != EEXIST) {
                fl_error_setf_errno(errp, errno, "cannot link '%s'", link);
                ok = false;
            }
            free(link);
            free(dir);
        }
        hv_rr_segment_clear(&s);
    }
    free(segs);
    free(nd);
    return ok;
}

static bool write_mark(const char *stage, const struct hv_rr_bundle_opts *o, char **nodes, size_t n,
                       struct fl_error **errp)
{
    char run_abs[PATH_MAX];
    const char *run = realpath(o->run_dir, run_abs) ? run_abs : o->run_dir;
    struct fl_buf b = {0};
    fl_buf_printf(&b, "{\"format\":\"%s\",\"version\":%d,\"run\":", FORMAT, VERSION);
    fl_buf_json_string(&b, base_name(run));
    fl_buf_puts(&b, ",\"nodes\":[");
    for (size_t i = 0; i < n; i++) {
        fl_buf_puts(&b, i ? "," : "");
        fl_buf_json_string(&b, nodes[i]);
    }
    fl_buf_printf(&b, "],\"image\":%s,\"created_unix\":%lld}\n", o->no_image ? "false" : "true",
                  (long long)time(NULL));
    char *p = fl_xasprintf("%s/" HV_RR_BUNDLE_MARK, stage);
    bool ok = fl_write_file(p, b.data, b.size, errp);
    free(p);
    fl_buf_free(&b);
    return ok;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

bool hv_rr_bundle_pack(const struct hv_rr_bundle_opts *o, struct fl_error **errp)
{
    char *rr = fl_xasprintf("%s/rr", o->run_dir);
    if (!is_dir(rr)) {
        fl_error_setf(errp, ENOENT,
                      "'%s' holds no recording (no rr/ directory): record a run with "
                      "'faultline run --record SCENARIO'",
                      o->run_dir);
        free(rr);
        return false;
    }
    size_t n = 0;
    char **nodes = NULL;
    if (o->n_nodes) {
        nodes = fl_xcalloc(o->n_nodes, sizeof *nodes);
        for (; n < o->n_nodes; n++) {
            nodes[n] = fl_xstrdup(o->nodes[n]);
        }
    } else {
        nodes = hv_rr_list_nodes(rr, &n);
    }
    bool ok = n > 0;
    if (!ok) {
        fl_error_setf(errp, ENOENT, "'%s' has no recorded node (%s is empty)", o->run_dir, rr);
    }
    for (size_t i = 0; i < n && ok; i++) {
        char *nd = fl_xasprintf("%s/%s", rr, nodes[i]);
        size_t ns = 0;
        free(hv_rr_list_segments(nd, &ns));
        if (strchr(nodes[i], '/') || nodes[i][0] == '.' || !ns) {
            size_t na = 0;
            char **all = hv_rr_list_nodes(rr, &na);
            struct fl_buf names = {0};
            for (size_t k = 0; k < na; k++) {
                fl_buf_printf(&names, "%s%s", k ? ", " : "", all[k]);
            }
            fl_error_setf(errp, ENOENT, "node '%s' was not recorded in '%s' (recorded: %s)",
                          nodes[i], o->run_dir, names.data ? names.data : "none");
            fl_buf_free(&names);
            hv_rr_list_free(all, na);
            ok = false;
        }
        free(nd);
    }
    char *stage = ok ? make_temp_dir("bundle", errp) : NULL;
    ok = ok && stage;
    if (ok) {
        char *srr = fl_xasprintf("%s/rr", stage);
        ok = fl_mkdir_p(srr, 0755, errp);
        for (size_t i = 0; i < n && ok; i++) {
            char target[PATH_MAX];
            char *nd = fl_xasprintf("%s/%s", rr, nodes[i]);
            char *link = fl_xasprintf("%s/%s", srr, nodes[i]);
            if (!realpath(nd, target) || symlink(target, link) < 0) {
                fl_error_setf_errno(errp, errno, "cannot stage '%s'", nd);
                ok = false;
            }
            if (ok && !o->no_image) {
                ok = stage_images(stage, rr, nodes[i], errp);
            }
            free(link);
            free(nd);
        }
        free(srr);
        ok = ok && write_mark(stage, o, nodes, n, errp);
    }
    if (ok) {
        char *part = fl_xasprintf("%s.part", o->out);
        bool zst = !ends_with(o->out, ".tar");
        char *img = fl_xasprintf("%s/image", stage);
        bool has_img = is_dir(img);
        free(img);
        const char *argv[16];
        size_t a = 0;
        argv[a++] = "tar";
        argv[a++] = "--create";
        argv[a++] = "--format=gnu";
        argv[a++] = "--sparse";
        argv[a++] = "--dereference";
        if (zst) {
            argv[a++] = "--zstd";
        }
        argv[a++] = "--file";
        argv[a++] = part;
        argv[a++] = "--directory";
        argv[a++] = stage;
        argv[a++] = HV_RR_BUNDLE_MARK;
        argv[a++] = "rr";
        if (has_img) {
            argv[a++] = "image";
        }
        argv[a] = NULL;
        char *err = NULL;
        int st = hv_rr_run_tool(argv, NULL, NULL, &err);
        if (st < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            char *said = tar_said(st, err);
            fl_error_setf(errp, EIO, "cannot write '%s': %s", o->out, said);
            free(said);
            unlink(part);
            ok = false;
        } else if (rename(part, o->out) < 0) {
            fl_error_setf_errno(errp, errno, "cannot write '%s'", o->out);
            unlink(part);
            ok = false;
        }
        free(err);
        free(part);
    }
    if (stage) {
        fl_rm_rf(stage);
        free(stage);
    }
    hv_rr_list_free(nodes, n);
    free(rr);
    return ok;
}

/* Each unpacked segment boots the bundled kernel and initrd. */
static bool point_at_image(const char *dir, struct fl_error **errp)
{
    char *rr = fl_xasprintf("%s/rr", dir);
    size_t n = 0;
    char **nodes = hv_rr_list_nodes(rr, &n);
    bool ok = true;
    for (size_t i = 0; i < n && ok; i++) {
        char *nd = fl_xasprintf("%s/%s", rr, nodes[i]);
        size_t ns = 0;
        unsigned *segs = hv_rr_list_segments(nd, &ns);
        for (size_t k = 0; k < ns && ok; k++) {
            char *meta = fl_xasprintf("%s/%u/" HV_RR_SEGMENT_FILE, nd, segs[k]);
            struct hv_rr_segment s;
            bool read = hv_rr_segment_read(meta, &s, errp);
            ok = read;
            bool changed = false;
            for (size_t a = 0; ok && s.replay_argv[a] && s.replay_argv[a + 1]; a++) {
                if (strcmp(s.replay_argv[a], "-kernel") && strcmp(s.replay_argv[a], "-initrd")) {
                    continue;
                }
                char *p = fl_xasprintf("%s/image/%s/%s", dir, s.image_key,
                                       base_name(s.replay_argv[a + 1]));
                if (!strchr(s.image_key, '/') && access(p, R_OK) == 0) {
                    free(s.replay_argv[a + 1]);
                    s.replay_argv[a + 1] = p;
                    changed = true;
                } else {
                    free(p);
                }
            }
            if (ok && changed) {
                ok = hv_rr_segment_write(meta, &s, errp);
            }
            if (read) {
                hv_rr_segment_clear(&s);
            }
            free(meta);
        }
        free(segs);
        free(nd);
    }
    hv_rr_list_free(nodes, n);
    free(rr);
    return ok;
}

bool hv_rr_bundle_unpack(const char *bundle, char **dirp, struct fl_error **errp)
{
    *dirp = NULL;
    struct stat st;
    if (stat(bundle, &st) < 0) {
        fl_error_setf_errno(errp, errno, "cannot read '%s'", bundle);
        return false;
    }
    if (!S_ISREG(st.st_mode)) {
        fl_error_setf(errp, EINVAL, "'%s' is not a bundle file", bundle);
        return false;
    }
    char *dir = make_temp_dir("bundle", errp);
    if (!dir) {
        return false;
    }
    const char *argv[] = {"tar",         "--extract", "--file",          bundle,
                          "--directory", dir,         "--no-same-owner", "--no-same-permissions",
                          NULL};
    char *err = NULL;
    int ts = hv_rr_run_tool(argv, NULL, NULL, &err);
    bool ok = ts >= 0 && WIFEXITED(ts) && WEXITSTATUS(ts) == 0;
    if (!ok) {
        char *said = tar_said(ts, err);
        fl_error_setf(errp, EINVAL,
                      "'%s' is not a faultline bundle, or it is damaged or truncated (tar: %s)",
                      bundle, said);
        free(said);
    }
    free(err);
    if (ok) {
        char *mark = fl_xasprintf("%s/" HV_RR_BUNDLE_MARK, dir);
        size_t size = 0;
        char *text = fl_read_file(mark, &size, NULL);
        struct fl_json *j = text ? fl_json_parse(text, size, NULL) : NULL;
        const char *format = j ? fl_json_get_str(j, "format") : NULL;
        const struct fl_json *ver = j ? fl_json_get(j, "version") : NULL;
        char *rr = fl_xasprintf("%s/rr", dir);
        if (!text) {
            fl_error_setf(errp, EINVAL,
                          "'%s' is not a faultline bundle (it has no " HV_RR_BUNDLE_MARK
                          "; make one with 'faultline bundle RUN')",
                          bundle);
            ok = false;
        } else if (!format || strcmp(format, FORMAT) || !ver || ver->type != FL_JSON_NUM) {
            fl_error_setf(errp, EINVAL,
                          "'%s' is not a faultline bundle (its " HV_RR_BUNDLE_MARK
                          " does not say format \"" FORMAT "\" and a version)",
                          bundle);
            ok = false;
        } else if (ver->num != VERSION) {
            fl_error_setf(errp, EINVAL, "'%s': bundle version %g, this faultline reads version %d",
                          bundle, ver->num, VERSION);
            ok = false;
        } else if (!is_dir(rr)) {
            fl_error_setf(errp, EINVAL, "'%s' holds no recording (no rr/ in the bundle)", bundle);
            ok = false;
        }
        free(rr);
        fl_json_free(j);
        free(text);
        free(mark);
    }
    if (ok && !point_at_image(dir, errp)) {
        fl_error_prepend(errp, "'%s': ", bundle);
        ok = false;
    }
    if (!ok) {
        fl_rm_rf(dir);
        free(dir);
        return false;
    }
    *dirp = dir;
    return true;
}
