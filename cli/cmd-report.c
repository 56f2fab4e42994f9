/* `faultline report RUN`: writes RUN/report.html from RUN/run.db (the
 * runner also writes it at the end of every run).  The report lives in
 * trace/.  `faultline report DIR` on a directory of run directories (a
 * repeat's, or runs/) writes DIR/index.html and DIR/index.json instead
 * (runner/index.c). */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/core.h"
#include "runner/runner.h"
#include "trace/trace.h"

static const char usage_text[] =
    "usage: faultline report RUN [-o FILE]\n"
    "\n"
    "Writes a self-contained HTML report of a run (inline CSS, JavaScript\n"
    "and SVG; it fetches nothing, so it works offline and as a CI artifact):\n"
    "the verdict and checks, what the faults did, a timeline per node with\n"
    "partitions and fault windows shaded, per-link statistics, a space-time\n"
    "diagram of the frames between nodes, disk I/O and what each crash lost.\n"
    "\n"
    "RUN is a run directory (containing run.db) or a run.db file.\n"
    "\n"
    "DIR, a directory of run directories (a 'run --repeat' directory, or runs/),\n"
    "gets an index instead: DIR/index.html (each run's seed, verdict, failed\n"
    "checks, duration, a link to its report, the command that reruns it) and\n"
    "DIR/index.json (the same as JSON).\n"
    "\n"
    "  -o, --output FILE   write FILE instead of report.html next to run.db\n"
    "  -h, --help          this text\n";

static int report_main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"output", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *output = NULL;
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
        switch (c) {
        case 'o':
            output = optarg;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return CLI_EXIT_OK;
        default:
            fprintf(stderr,
                    "faultline report: unknown option or missing value '%s' (see 'faultline report"
                    " --help')\n",
                    argv[optind - 1]);
            return CLI_EXIT_USAGE;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "faultline report: %s (see 'faultline report --help')\n",
                optind >= argc ? "expected a run directory or run.db"
                               : "expected exactly one run directory or run.db");
        return CLI_EXIT_USAGE;
    }
    const char *run = argv[optind];
    size_t n = strlen(run);
    /* A directory that is no run directory itself (no run.db, no seed
     * file) is indexed. */
    char *probe = fl_xasprintf("%s/run.db", run);
    char *seed = fl_xasprintf("%s/seed", run);
    struct stat st;
    bool is_index = access(probe, F_OK) != 0 && access(seed, F_OK) != 0 && stat(run, &st) == 0 &&
                    S_ISDIR(st.st_mode);
    free(probe);
    free(seed);
    if (is_index) {
        struct fl_error *err = NULL;
        char *index = NULL;
        if (output) {
            fputs("faultline report: -o is for one run's report; an index is written as "
                  "DIR/index.html\n",
                  stderr);
            return CLI_EXIT_USAGE;
        }
        if (!runner_index_dir(run, &index, &err)) {
            fprintf(stderr, "faultline report: %s\n", err->msg);
            int rc = err->code == ENOENT ? CLI_EXIT_USAGE : CLI_EXIT_INFRA;
            fl_error_free(err);
            return rc;
        }
        printf("%s\n", index);
        free(index);
        return CLI_EXIT_OK;
    }
    char *db_path, *html;
    if (n >= 3 && !strcmp(run + n - 3, ".db")) {
        db_path = fl_xstrdup(run);
        const char *slash = strrchr(run, '/');
        html = slash ? fl_xasprintf("%.*s/report.html", (int)(slash - run), run)
                     : fl_xstrdup("report.html");
    } else {
        db_path = fl_xasprintf("%s/run.db", run);
        html = fl_xasprintf("%s/report.html", run);
    }
    if (output) {
        free(html);
        html = fl_xstrdup(output);
    }
    struct fl_error *err = NULL;
    int rc = CLI_EXIT_OK;
    if (!trace_report_write_to(db_path, html, &err)) {
        fprintf(stderr, "faultline report: %s\n", err->msg);
        rc = err->code == ENOENT || err->code == EPROTO ? CLI_EXIT_USAGE : CLI_EXIT_INFRA;
        fl_error_free(err);
    } else {
        printf("%s\n", html);
    }
    free(db_path);
    free(html);
    return rc;
}

const struct cli_command cli_cmd_report = {
    .name = "report",
    .summary = "write a run's self-contained HTML report (report.html)",
    .main = report_main,
};
