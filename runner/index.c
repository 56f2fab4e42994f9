/* The index of a directory of runs (runner/index.h): each run's
 * summary.json read back, then index.json and index.html.  Every name
 * and message comes from files a guest may have shaped (check names are
 * the scenario's, messages quote guests) or from directory names: all of
 * it goes through core/text.c's escapers, and links are percent-encoded. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "runner/index.h"

static void run_clear(struct rn_index_run *r)
{
    free(r->name);
    free(r->scenario);
    free(r->scenario_file);
    free(r->verdict);
    for (size_t i = 0; i < r->n_failed; i++) {
        free(r->failed[i]);
    }
    free(r->failed);
    free(r->error);
    free(r->replay);
}

void rn_index_clear(struct rn_index *index)
{
    for (size_t i = 0; i < index->n_runs; i++) {
        run_clear(&index->runs[i]);
    }
    free(index->runs);
    free(index->dir);
    memset(index, 0, sizeof *index);
}

static char *dup_or_null(const char *s)
{
    return s ? fl_xstrdup(s) : NULL;
}

/* What summary.json says; false when it is missing or unreadable. */
static bool read_summary(const char *path, struct rn_index_run *r)
{
    size_t size;
    char *text = fl_read_file(path, &size, NULL);
    if (!text) {
        return false;
    }
    struct fl_json *j = fl_json_parse(text, size, NULL);
    free(text);
    const char *verdict = fl_json_get_str(j, "verdict");
    if (!verdict) {
        fl_json_free(j);
        return false;
    }
    r->verdict = fl_xstrdup(verdict);
    r->scenario = dup_or_null(fl_json_get_str(j, "scenario"));
    r->scenario_file = dup_or_null(fl_json_get_str(j, "scenario_file"));
    r->error = dup_or_null(fl_json_get_str(j, "error"));
    r->replay = dup_or_null(fl_json_get_str(j, "replay"));
    r->has_seed = fl_json_u64(j, "seed", &r->seed);
    if (!fl_json_i64(j, "duration_ns", &r->duration_ns)) {
        r->duration_ns = -1;
    }
    const struct fl_json *list = fl_json_get(fl_json_get(j, "checks"), "list");
    if (list && list->type == FL_JSON_ARR) {
        r->n_checks = list->n;
        r->failed = fl_xcalloc(list->n + 1, sizeof *r->failed);
        for (size_t i = 0; i < list->n; i++) {
            const struct fl_json *passed = fl_json_get(list->items[i], "passed");
            const char *name = fl_json_get_str(list->items[i], "name");
            if (passed && passed->type == FL_JSON_BOOL && !passed->b) {
                r->failed[r->n_failed++] = fl_xstrdup(name ? name : "?");
            }
        }
    }
    const struct fl_json *files = fl_json_get(j, "files");
    r->has_report = fl_json_get_str(files, "report") != NULL;
    fl_json_free(j);
    return true;
}

/* A run directory without a (readable) summary.json: its seed file. */
static bool read_seed(const char *path, struct rn_index_run *r)
{
    char *text = fl_read_file(path, NULL, NULL);
    if (!text) {
        return false;
    }
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    r->has_seed = !errno && end != text && (*end == '\n' || !*end);
    r->seed = v;
    free(text);
    r->verdict = fl_xstrdup("incomplete");
    r->duration_ns = -1;
    return true;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const struct rn_index_run *)a)->name, ((const struct rn_index_run *)b)->name);
}

bool rn_index_read(const char *dir, struct rn_index *index, struct fl_error **errp)
{
    memset(index, 0, sizeof *index);
    DIR *d = opendir(dir);
    if (!d) {
        fl_error_setf_errno(errp, errno, "cannot read the directory '%s'", dir);
        return false;
    }
    size_t alloc = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') {
            continue;
        }
        char *path = fl_xasprintf("%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(path, &st) < 0 || !S_ISDIR(st.st_mode)) {
            free(path); /* runs/latest is a symbolic link: not a run of its own */
            continue;
        }
        struct rn_index_run r = {0};
        char *summary = fl_xasprintf("%s/summary.json", path);
        char *seed = fl_xasprintf("%s/seed", path);
        bool found = read_summary(summary, &r) || read_seed(seed, &r);
        free(summary);
        free(seed);
        free(path);
        if (!found) {
            run_clear(&r);
            continue;
        }
        r.name = fl_xstrdup(e->d_name);
        if (index->n_runs == alloc) {
            alloc = alloc ? alloc * 2 : 16;
            index->runs = fl_xrealloc(index->runs, alloc * sizeof *index->runs);
        }
        index->runs[index->n_runs++] = r;
    }
    closedir(d);
    if (!index->n_runs) {
        fl_error_setf(errp, ENOENT,
                      "'%s' holds no run directories (a run directory has a summary.json or a "
                      "seed file)",
                      dir);
        return false;
    }
    qsort(index->runs, index->n_runs, sizeof *index->runs, by_name);
    index->dir = fl_xstrdup(dir);
    for (size_t i = 0; i < index->n_runs; i++) {
        const char *v = index->runs[i].verdict;
        if (!strcmp(v, "pass")) {
            index->n_pass++;
        } else if (!strcmp(v, "fail")) {
            index->n_fail++;
        } else if (!strcmp(v, "interrupted")) {
            index->n_interrupted++;
        } else if (!strcmp(v, "incomplete")) {
            index->n_incomplete++;
        } else {
            index->n_error++;
        }
    }
    return true;
}

enum runner_result rn_index_verdict(const struct rn_index *index)
{
    if (index->n_fail) {
        return RUNNER_FAIL;
    }
    if (index->n_interrupted) {
        return RUNNER_INTERRUPTED;
    }
    if (index->n_error || index->n_incomplete || !index->n_runs) {
        return RUNNER_ERROR;
    }
    return RUNNER_PASS;
}

char *rn_index_rerun(const struct rn_index_run *run)
{
    if (!run->has_seed) {
        return NULL;
    }
    if (!run->scenario_file) {
        return dup_or_null(run->replay);
    }
    struct fl_buf b = {0};
    fl_buf_puts(&b, "faultline run ");
    fl_text_shell(&b, run->scenario_file);
    fl_buf_printf(&b, " --seed %llu", (unsigned long long)run->seed);
    return fl_buf_steal(&b);
}

static void json_str(struct fl_buf *b, const char *s)
{
    if (!s) {
        fl_buf_puts(b, "null");
        return;
    }
    fl_text_json(b, s, strlen(s), false);
}

char *rn_index_json(const struct rn_index *index)
{
    struct fl_buf b = {0};
    const char *scenario = index->n_runs ? index->runs[0].scenario : NULL;
    fl_buf_puts(&b, "{\n  \"scenario\": ");
    json_str(&b, scenario);
    fl_buf_puts(&b, ",\n  \"dir\": ");
    json_str(&b, index->dir);
    fl_buf_printf(&b, ",\n  \"verdict\": \"%s\"", runner_result_name(rn_index_verdict(index)));
    fl_buf_printf(&b,
                  ",\n  \"counts\": {\"total\": %zu, \"pass\": %zu, \"fail\": %zu, \"error\": %zu, "
                  "\"interrupted\": %zu, \"incomplete\": %zu}",
                  index->n_runs, index->n_pass, index->n_fail, index->n_error, index->n_interrupted,
                  index->n_incomplete);
    fl_buf_puts(&b, ",\n  \"runs\": [");
    for (size_t i = 0; i < index->n_runs; i++) {
        const struct rn_index_run *r = &index->runs[i];
        fl_buf_puts(&b, i ? ",\n    {\"dir\": " : "\n    {\"dir\": ");
        json_str(&b, r->name);
        if (r->has_seed) {
            fl_buf_printf(&b, ", \"seed\": %llu", (unsigned long long)r->seed);
        } else {
            fl_buf_puts(&b, ", \"seed\": null");
        }
        fl_buf_puts(&b, ", \"verdict\": ");
        json_str(&b, r->verdict);
        fl_buf_printf(&b, ", \"checks\": %zu, \"failed_checks\": [", r->n_checks);
        for (size_t k = 0; k < r->n_failed; k++) {
            fl_buf_puts(&b, k ? ", " : "");
            json_str(&b, r->failed[k]);
        }
        fl_buf_puts(&b, "]");
        if (r->duration_ns >= 0) {
            fl_buf_printf(&b, ", \"duration_ns\": %lld", (long long)r->duration_ns);
        } else {
            fl_buf_puts(&b, ", \"duration_ns\": null");
        }
        char *rel = fl_xasprintf("%s/report.html", r->name);
        fl_buf_puts(&b, ", \"report\": ");
        json_str(&b, r->has_report ? rel : NULL);
        free(rel);
        rel = fl_xasprintf("%s/summary.json", r->name);
        fl_buf_puts(&b, ", \"summary\": ");
        json_str(&b, strcmp(r->verdict, "incomplete") ? rel : NULL);
        free(rel);
        fl_buf_puts(&b, ", \"error\": ");
        json_str(&b, r->error);
        char *rerun = rn_index_rerun(r);
        fl_buf_puts(&b, ", \"rerun\": ");
        json_str(&b, rerun);
        free(rerun);
        fl_buf_puts(&b, ", \"replay\": ");
        json_str(&b, r->replay);
        fl_buf_puts(&b, "}");
    }
    fl_buf_puts(&b, "\n  ]\n}\n");
    return fl_buf_steal(&b);
}

static void html(struct fl_buf *b, const char *s)
{
    fl_text_xml(b, s ? s : "", s ? strlen(s) : 0);
}

/* A relative link to NAME/FILE: every byte of NAME outside the unreserved
 * set percent-encoded, so '#', '?', '%', quotes and '<' stay part of the
 * path and of the attribute. */
static void href(struct fl_buf *b, const char *name, const char *file)
{
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            strchr("-._~", *p)) {
            fl_buf_append(b, p, 1);
        } else {
            fl_buf_printf(b, "%%%02X", *p);
        }
    }
    fl_buf_printf(b, "/%s", file);
}

static void duration(struct fl_buf *b, int64_t ns)
{
    if (ns < 0) {
        fl_buf_puts(b, "-");
    } else {
        fl_buf_printf(b, "%.1fs", (double)ns / 1e9);
    }
}

char *rn_index_html(const struct rn_index *index)
{
    struct fl_buf b = {0};
    const char *scenario = index->n_runs && index->runs[0].scenario ? index->runs[0].scenario : "";
    const char *verdict = runner_result_name(rn_index_verdict(index));
    fl_buf_puts(&b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                    "<title>");
    html(&b, scenario);
    fl_buf_puts(&b, " · runs</title>\n<style>\n"
                    "body{font:14px system-ui,sans-serif;margin:2em;color:#222}\n"
                    "table{border-collapse:collapse}td,th{padding:.3em .8em;text-align:left;"
                    "border-bottom:1px solid #ddd;vertical-align:top}\n"
                    ".pass{color:#17813a}.fail{color:#c0262d;font-weight:600}"
                    ".error,.interrupted,.incomplete{color:#a35d00;font-weight:600}\n"
                    "code{font-size:12px}\n</style>\n</head>\n<body>\n<h1>");
    html(&b, scenario);
    fl_buf_printf(&b, ": <span class=\"%s\">%s</span></h1>\n<p>", verdict, verdict);
    fl_buf_printf(&b, "%zu run%s: %zu passed, %zu failed, %zu infrastructure error%s",
                  index->n_runs, index->n_runs == 1 ? "" : "s", index->n_pass, index->n_fail,
                  index->n_error, index->n_error == 1 ? "" : "s");
    if (index->n_interrupted) {
        fl_buf_printf(&b, ", %zu interrupted", index->n_interrupted);
    }
    if (index->n_incomplete) {
        fl_buf_printf(&b, ", %zu incomplete", index->n_incomplete);
    }
    fl_buf_puts(&b, ". Directory: <code>");
    html(&b, index->dir);
    fl_buf_puts(&b, "</code></p>\n<table>\n<thead><tr><th>#</th><th>run</th><th>seed</th>"
                    "<th>verdict</th><th>failed checks</th><th>duration</th><th>rerun</th>"
                    "</tr></thead>\n<tbody>\n");
    for (size_t i = 0; i < index->n_runs; i++) {
        const struct rn_index_run *r = &index->runs[i];
        fl_buf_printf(&b, "<tr><td>%zu</td><td>", i + 1);
        if (r->has_report) {
            fl_buf_puts(&b, "<a href=\"");
            href(&b, r->name, "report.html");
            fl_buf_puts(&b, "\">");
            html(&b, r->name);
            fl_buf_puts(&b, "</a>");
        } else {
            html(&b, r->name);
        }
        fl_buf_puts(&b, "</td><td>");
        if (r->has_seed) {
            fl_buf_printf(&b, "%llu", (unsigned long long)r->seed);
        }
        /* The class is one of the verdict names only, never file text. */
        const char *cls = !strcmp(r->verdict, "pass")          ? "pass"
                          : !strcmp(r->verdict, "fail")        ? "fail"
                          : !strcmp(r->verdict, "interrupted") ? "interrupted"
                          : !strcmp(r->verdict, "incomplete")  ? "incomplete"
                                                               : "error";
        fl_buf_printf(&b, "</td><td class=\"%s\">", cls);
        html(&b, r->verdict);
        fl_buf_puts(&b, "</td><td>");
        for (size_t k = 0; k < r->n_failed; k++) {
            fl_buf_puts(&b, k ? ", " : "");
            html(&b, r->failed[k]);
        }
        if (r->error) {
            fl_buf_puts(&b, r->n_failed ? "<br>" : "");
            html(&b, r->error);
        }
        fl_buf_puts(&b, "</td><td>");
        duration(&b, r->duration_ns);
        fl_buf_puts(&b, "</td><td>");
        char *rerun = strcmp(r->verdict, "pass") ? rn_index_rerun(r) : NULL;
        if (rerun) {
            fl_buf_puts(&b, "<code>");
            html(&b, rerun);
            fl_buf_puts(&b, "</code>");
        }
        free(rerun);
        fl_buf_puts(&b, "</td></tr>\n");
    }
    fl_buf_puts(&b, "</tbody>\n</table>\n</body>\n</html>\n");
    return fl_buf_steal(&b);
}

bool rn_index_write(const struct rn_index *index, struct fl_error **errp)
{
    char *text = rn_index_json(index);
    char *path = fl_xasprintf("%s/index.json", index->dir);
    bool ok = fl_write_file(path, text, strlen(text), errp);
    free(path);
    free(text);
    if (!ok) {
        return false;
    }
    text = rn_index_html(index);
    path = fl_xasprintf("%s/index.html", index->dir);
    ok = fl_write_file(path, text, strlen(text), errp);
    free(path);
    free(text);
    return ok;
}
