/* The run directory and the files written into it: events.log,
 * junit.xml, summary.json. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>

#include "runner/rundir.h"

static bool dir_is_empty(const char *path)
{
    DIR *d = opendir(path);
    if (!d) {
        return false;
    }
    struct dirent *e;
    bool empty = true;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            empty = false;
            break;
        }
    }
    closedir(d);
    return empty;
}

/* Socket paths must fit sun_path (108 bytes): the run directory is used
 * when "<dir>/sock/<node>-<name>.sock" fits, else a private 0700
 * directory under $TMPDIR. */
static bool make_sock_dir(struct run *run, struct fl_error **errp)
{
    size_t longest = 0;
    for (size_t i = 0; i < run->scen->n_nodes; i++) {
        const struct topo_node *n = &run->scen->nodes[i];
        size_t name = strlen(n->name) + 16 + 8;
        for (size_t d = 0; d < n->n_disks; d++) {
            name = FL_MAX(name, strlen(n->name) + strlen(n->disks[d].name) + 8);
        }
        longest = FL_MAX(longest, name);
    }
    char *candidate = fl_xasprintf("%s/sock", run->dir);
    if (strlen(candidate) + 1 + longest < sizeof(((struct sockaddr_un *)0)->sun_path)) {
        if (mkdir(candidate, 0700) < 0) {
            fl_error_setf_errno(errp, errno, "cannot create '%s'", candidate);
            free(candidate);
            return false;
        }
        run->sock_dir = candidate;
        run->sock_dir_owned = true;
        return true;
    }
    free(candidate);
    const char *tmp = getenv("TMPDIR");
    char *tmpl = fl_xasprintf("%s/faultline-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(tmpl)) {
        fl_error_setf_errno(errp, errno, "cannot create a socket directory '%s'", tmpl);
        free(tmpl);
        return false;
    }
    run->sock_dir = tmpl;
    run->sock_dir_owned = true;
    return true;
}

/* Text into junit.xml and summary.json: whatever bytes a guest printed,
 * the file stays well-formed (core/text.c). */
static void xml(struct fl_buf *b, const char *s)
{
    fl_text_xml(b, s ? s : "", s ? strlen(s) : 0);
}

static void json(struct fl_buf *b, const char *s)
{
    fl_text_json(b, s, strlen(s), false);
}

/* The log sink behind events.log. */
static void events_line(void *arg, const char *line)
{
    struct run *run = arg;
    if (run->events_log) {
        fprintf(run->events_log, "%s\n", line);
    }
}

bool rn_dir_check_out(const char *path, struct fl_error **errp)
{
    struct stat st;
    if (stat(path, &st) == 0 && (!S_ISDIR(st.st_mode) || !dir_is_empty(path))) {
        fl_error_setf(errp, EEXIST,
                      "--out '%s' exists and is not an empty directory (choose a new path)", path);
        return false;
    }
    return true;
}

/* The claim: one exclusive mkdir that only one run can win.  A new
 * directory is claimed by creating it; an existing empty --out by
 * creating its first subdirectory.  Two runs racing for one path: the
 * loser gets EEXIST before it has written anything. */
static bool claim(const char *dir, bool *created, struct fl_error **errp)
{
    *created = false;
    if (mkdir(dir, 0700) == 0) {
        *created = true;
    } else if (errno == ENOENT) {
        char *parent = fl_xstrdup(dir);
        char *slash = strrchr(parent, '/');
        if (slash && slash != parent) {
            *slash = '\0';
            if (!fl_mkdir_p(parent, 0700, errp)) {
                free(parent);
                return false;
            }
        }
        free(parent);
        if (mkdir(dir, 0700) == 0) {
            *created = true;
        } else if (errno != EEXIST) {
            fl_error_setf_errno(errp, errno, "cannot create the run directory '%s'", dir);
            return false;
        }
    } else if (errno != EEXIST) {
        fl_error_setf_errno(errp, errno, "cannot create the run directory '%s'", dir);
        return false;
    }
    if (!*created && !rn_dir_check_out(dir, errp)) {
        return false;
    }
    char *first = fl_xasprintf("%s/pcap", dir);
    int r = mkdir(first, 0700);
    int e = errno;
    free(first);
    if (r < 0 && e == EEXIST) {
        fl_error_setf(errp, EEXIST,
                      "run directory '%s' was claimed by another run at the same time (choose "
                      "another --out)",
                      dir);
        return false;
    }
    if (r < 0) {
        fl_error_setf_errno(errp, e, "cannot create '%s/pcap'", dir);
        return false;
    }
    return true;
}

char *rn_dir_make_default(const char *name, struct fl_error **errp)
{
    char stamp[32];
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
    if (!fl_mkdir_p("runs", 0700, errp)) {
        return NULL;
    }
    /* A name that exists (another run of this scenario in the same
     * second) gets the next free suffix: mkdir is the test. */
    char *dir = fl_xasprintf("runs/%s-%s", stamp, name);
    for (int i = 2;; i++) {
        if (mkdir(dir, 0700) == 0) {
            return dir;
        }
        if (errno != EEXIST || i > 10000) {
            fl_error_setf_errno(errp, errno, "cannot create the run directory '%s'", dir);
            free(dir);
            return NULL;
        }
        free(dir);
        dir = fl_xasprintf("runs/%s-%s-%d", stamp, name, i);
    }
}

bool rn_dir_link_latest(const char *dir)
{
    const char *slash = strrchr(dir, '/');
    char *parent = slash ? fl_xasprintf("%.*s", (int)(slash - dir), dir) : fl_xstrdup(".");
    const char *base = slash ? slash + 1 : dir;
    char *latest = fl_xasprintf("%s/latest", parent);
    char *tmp = fl_xasprintf("%s/.latest.%d", parent, (int)getpid());
    struct stat st;
    bool ok = false;
    if (lstat(latest, &st) == 0 && !S_ISLNK(st.st_mode)) {
        fl_log(FL_LOG_WARN, "runner", "'%s' is not a symbolic link: left as it is", latest);
    } else {
        unlink(tmp);
        ok = symlink(base, tmp) == 0 && rename(tmp, latest) == 0;
        if (!ok) {
            fl_log(FL_LOG_WARN, "runner", "cannot point '%s' at '%s': %s", latest, base,
                   strerror(errno));
            unlink(tmp);
        }
    }
    free(tmp);
    free(latest);
    free(parent);
    return ok;
}

bool rn_dir_create(struct run *run, struct fl_error **errp)
{
    bool created = false;
    if (run->opts->out_dir) {
        run->dir = fl_xstrdup(run->opts->out_dir);
        if (!claim(run->dir, &created, errp)) {
            return false;
        }
    } else {
        run->dir = rn_dir_make_default(run->scen->name, errp);
        if (!run->dir || !claim(run->dir, &created, errp)) {
            return false;
        }
        if (!run->opts->no_latest) {
            rn_dir_link_latest(run->dir);
        }
    }
    /* Sockets and consoles are private to the user running faultline; the
     * chmod covers an existing empty --out directory. */
    if (chmod(run->dir, 0700) < 0) {
        fl_error_setf_errno(errp, errno, "cannot chmod '%s'", run->dir);
        return false;
    }
    static const char *const subdirs[] = {"console", "disks"}; /* pcap/ is the claim */
    for (size_t i = 0; i < FL_ARRAY_LEN(subdirs); i++) {
        char *p = fl_xasprintf("%s/%s", run->dir, subdirs[i]);
        bool ok = fl_mkdir_p(p, 0700, errp);
        free(p);
        if (!ok) {
            return false;
        }
    }
    if (!make_sock_dir(run, errp)) {
        return false;
    }
    char *p = fl_xasprintf("%s/scenario.yaml", run->dir);
    bool ok = fl_write_file(p, run->scenario_text, run->scenario_size, errp);
    free(p);
    if (!ok) {
        return false;
    }
    char seed[32];
    int n = snprintf(seed, sizeof seed, "%llu\n", (unsigned long long)run->scen->seed);
    p = fl_xasprintf("%s/seed", run->dir);
    ok = fl_write_file(p, seed, (size_t)n, errp);
    free(p);
    if (!ok) {
        return false;
    }
    p = fl_xasprintf("%s/events.log", run->dir);
    run->events_log = fopen(p, "w");
    if (!run->events_log) {
        fl_error_setf_errno(errp, errno, "cannot create '%s'", p);
        free(p);
        return false;
    }
    free(p);
    setvbuf(run->events_log, NULL, _IOLBF, 0);
    rn_log_add_sink(&run->log, events_line, run);
    return true;
}

bool rn_write_junit(struct run *run, struct fl_error **errp)
{
    size_t failures = 0;
    for (size_t i = 0; i < run->n_results; i++) {
        failures += !run->results[i].passed;
    }
    struct fl_buf b = {0};
    fl_buf_puts(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n");
    fl_buf_puts(&b, "  <testsuite name=\"");
    xml(&b, run->scen->name);
    fl_buf_printf(&b, "\" tests=\"%zu\" failures=\"%zu\" errors=\"%d\">\n", run->n_results,
                  failures, run->result == RUNNER_ERROR || run->result == RUNNER_INTERRUPTED);
    fl_buf_printf(&b, "    <properties><property name=\"seed\" value=\"%llu\"/></properties>\n",
                  (unsigned long long)run->scen->seed);
    for (size_t i = 0; i < run->n_results; i++) {
        const struct rn_result *r = &run->results[i];
        fl_buf_puts(&b, "    <testcase classname=\"");
        xml(&b, run->scen->name);
        fl_buf_puts(&b, "\" name=\"");
        xml(&b, r->name);
        fl_buf_printf(&b, "\" time=\"%.3f\">\n", (double)r->duration_ns / 1e9);
        if (!r->passed) {
            fl_buf_puts(&b, "      <failure message=\"");
            xml(&b, r->message);
            fl_buf_puts(&b, "\">");
            fl_buf_puts(&b, "node: ");
            xml(&b, r->node);
            fl_buf_puts(&b, "\ncommand: ");
            xml(&b, r->command);
            fl_buf_puts(&b, "\nfrom: ");
            xml(&b, r->source);
            fl_buf_printf(&b, "\nexit: %d\n</failure>\n", r->exit_code);
        }
        if (r->out && *r->out) {
            fl_buf_puts(&b, "      <system-out>");
            xml(&b, r->out);
            fl_buf_puts(&b, "</system-out>\n");
        }
        if (r->err && *r->err) {
            fl_buf_puts(&b, "      <system-err>");
            xml(&b, r->err);
            fl_buf_puts(&b, "</system-err>\n");
        }
        fl_buf_puts(&b, "    </testcase>\n");
    }
    if (run->result == RUNNER_ERROR || run->result == RUNNER_INTERRUPTED) {
        fl_buf_puts(&b,
                    "    <testcase classname=\"faultline\" name=\"run\">\n      <error message=\"");
        xml(&b, run->infra ? run->infra->msg
                           : (run->interrupted ? "interrupted by a signal" : "error"));
        fl_buf_puts(&b, "\"/>\n    </testcase>\n");
    }
    fl_buf_puts(&b, "  </testsuite>\n</testsuites>\n");
    char *p = fl_xasprintf("%s/junit.xml", run->dir);
    bool ok = fl_write_file(p, b.data, b.size, errp);
    free(p);
    fl_buf_free(&b);
    return ok;
}

bool rn_write_summary(struct run *run, struct fl_error **errp)
{
    struct fl_buf b = {0};
    size_t failed = 0;
    for (size_t i = 0; i < run->n_results; i++) {
        failed += !run->results[i].passed;
    }
    fl_buf_puts(&b, "{\n  \"scenario\": ");
    json(&b, run->scen->name);
    fl_buf_puts(&b, ",\n  \"scenario_file\": ");
    json(&b, run->scen->file);
    fl_buf_printf(&b, ",\n  \"seed\": %llu", (unsigned long long)run->scen->seed);
    fl_buf_printf(&b, ",\n  \"verdict\": \"%s\"", runner_result_name(run->result));
    fl_buf_printf(&b, ",\n  \"interrupted\": %s", run->interrupted ? "true" : "false");
    if (run->infra) {
        fl_buf_puts(&b, ",\n  \"error\": ");
        json(&b, run->infra->msg);
    }
    fl_buf_printf(&b, ",\n  \"boot_ns\": %lld",
                  (long long)(run->clock.t0 ? run->clock.t0 - run->boot_start_ns : -1));
    fl_buf_printf(&b, ",\n  \"timeline_ns\": %lld",
                  (long long)(run->clock.t0 ? rn_clock_now(&run->clock) : 0));
    fl_buf_printf(&b, ",\n  \"held_ns\": %lld", (long long)run->clock.held_ns);
    fl_buf_printf(&b, ",\n  \"duration_ns\": %lld",
                  (long long)(fl_clock_mono_ns() - run->clock.run_start_ns));
    fl_buf_printf(&b, ",\n  \"events_played\": %zu", run->next_event);
    fl_buf_printf(&b, ",\n  \"events_total\": %zu", run->scen->n_events);
    fl_buf_printf(&b, ",\n  \"events_late\": %zu", run->late_events);
    fl_buf_printf(&b, ",\n  \"late_max_ns\": %lld", (long long)run->late_max_ns);
    fl_buf_printf(&b, ",\n  \"checks\": {\"total\": %zu, \"failed\": %zu, \"list\": [",
                  run->n_results, failed);
    for (size_t i = 0; i < run->n_results; i++) {
        const struct rn_result *r = &run->results[i];
        fl_buf_puts(&b, i ? ",\n    {" : "\n    {");
        fl_buf_puts(&b, "\"name\": ");
        json(&b, r->name);
        fl_buf_puts(&b, ", \"node\": ");
        json(&b, r->node ? r->node : "");
        fl_buf_printf(&b, ", \"passed\": %s, \"exit\": %d, \"attempts\": %u, \"at_ns\": %lld",
                      r->passed ? "true" : "false", r->exit_code, r->attempts, (long long)r->at_ns);
        fl_buf_puts(&b, ", \"message\": ");
        json(&b, r->message ? r->message : "");
        fl_buf_puts(&b, "}");
    }
    fl_buf_puts(&b, "]}");
    fl_buf_puts(&b, ",\n  \"nodes\": [");
    for (size_t i = 0; i < run->scen->n_nodes; i++) {
        const struct rn_node *n = &run->nodes[i];
        fl_buf_puts(&b, i ? ", " : "");
        fl_buf_puts(&b, "{\"name\": ");
        json(&b, n->topo->name);
        fl_buf_printf(&b, ", \"boot_ns\": %lld}", (long long)(n->hv ? hv_node_boot_ns(n->hv) : 0));
    }
    fl_buf_puts(&b, "]");
    /* Only files that are there (a full disk may have kept some out). */
    static const char *const files[][2] = {
        {"run_db", "run.db"},      {"events", "events.log"}, {"junit", "junit.xml"},
        {"report", "report.html"}, {"pcap", "pcap/"},        {"console", "console/"},
    };
    fl_buf_puts(&b, ",\n  \"files\": {");
    const char *sep = "";
    for (size_t i = 0; i < FL_ARRAY_LEN(files); i++) {
        char *path = fl_xasprintf("%s/%s", run->dir, files[i][1]);
        bool there =
            access(path, F_OK) == 0 && (strcmp(files[i][0], "report") || run->report_written);
        free(path);
        if (there) {
            fl_buf_printf(&b, "%s\"%s\": \"%s\"", sep, files[i][0], files[i][1]);
            sep = ", ";
        }
    }
    fl_buf_puts(&b, "}");
    if (run->unrecorded.size) {
        fl_buf_puts(&b, ",\n  \"unrecorded\": ");
        json(&b, run->unrecorded.data);
    }
    fl_buf_puts(&b, ",\n  \"replay\": ");
    char *replay = fl_xasprintf("faultline run --replay-of %s", run->dir);
    json(&b, replay);
    free(replay);
    fl_buf_puts(&b, "\n}\n");
    free(run->summary_text);
    run->summary_text = fl_xstrdup(b.data);
    char *p = fl_xasprintf("%s/summary.json", run->dir);
    bool ok = fl_write_file(p, b.data, b.size, errp);
    free(p);
    fl_buf_free(&b);
    return ok;
}
