/* `faultline trace RUN ...`: questions about a finished (or running) run,
 * answered from its run.db without SQL.  The queries live in trace/. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/core.h"
#include "trace/trace.h"

static const char usage_text[] =
    "usage: faultline trace RUN [options]\n"
    "\n"
    "Shows what happened in a run: frames (default), block I/O, writes lost\n"
    "at crashes, or events.  RUN is a run directory (containing run.db) or a\n"
    "run.db file.  Times are on the run clock: 0 is when every node was\n"
    "ready; boot is negative.\n"
    "\n"
    "What to show (default: frames):\n"
    "  --ios                 block requests (with --node, --disk, --since, --until)\n"
    "  --lost                writes lost or torn at crashes\n"
    "  --events              timeline and unexpected events (node exits, disconnects,\n"
    "                        host errors: a full disk under a backing file)\n"
    "  --links               per-link statistics of the selected frames: sent,\n"
    "                        delivered, dropped by reason, delay percentiles\n"
    "\n"
    "Frame filters (all must hold):\n"
    "  --from NODE           sent by NODE\n"
    "  --to NODE             sent to NODE\n"
    "  --node NODE           from or to NODE (for --ios/--lost/--events: of NODE)\n"
    "  --fate FATE[,FATE]    delivered, dropped, duplicated, corrupted, reordered\n"
    "  --reason REASON       dropped for REASON: partition, loss, queue, mtu,\n"
    "                        port-down, port-queue-full, shutdown, spoofed,\n"
    "                        internal\n"
    "  --delayed-beyond DUR  delivered more than DUR after being sent (e.g. 10ms)\n"
    "  --since TIME          at or after TIME (e.g. 5s, 1500ms, -2s)\n"
    "  --until TIME          before TIME\n"
    "  --disk NAME           (--ios, --lost) only this disk\n"
    "  --limit N             at most N rows\n"
    "\n"
    "Output:\n"
    "  --json                one JSON object per line instead of a table\n"
    "  --pcap OUT            write the selected frames to OUT as a pcap for\n"
    "                        Wireshark (bytes from the run's per-NIC pcaps);\n"
    "                        OUT '-' is standard output (| wireshark -k -i -)\n"
    "\n"
    "Examples:\n"
    "  faultline trace runs/last --to n3 --fate dropped --since 5s --until 10s\n"
    "  faultline trace runs/last --reason loss --json\n"
    "  faultline trace runs/last --lost\n"
    "  faultline trace runs/last --links --since 10s --until 20s\n"
    "  faultline trace runs/last --from n1 --pcap n1.pcap && wireshark n1.pcap\n";

/* "10ms", "1.5s", "250us", "100ns", "2m"; a bare number is seconds. */
static bool parse_duration(const char *opt, const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno || !isfinite(v)) {
        goto bad;
    }
    double mul;
    if (!*end || !strcmp(end, "s")) {
        mul = 1e9;
    } else if (!strcmp(end, "ms")) {
        mul = 1e6;
    } else if (!strcmp(end, "us")) {
        mul = 1e3;
    } else if (!strcmp(end, "ns")) {
        mul = 1;
    } else if (!strcmp(end, "m")) {
        mul = 60e9;
    } else {
        goto bad;
    }
    v *= mul;
    if (v > 9e18 || v < -9e18) {
        goto bad;
    }
    *out = (int64_t)(v >= 0 ? v + 0.5 : v - 0.5);
    return true;
bad:
    fprintf(stderr,
            "faultline trace: %s: '%s' is not a time (a number with a unit: ns, us, ms, s, m;"
            " e.g. 10ms)\n",
            opt, s);
    return false;
}

static bool parse_fates(const char *s, unsigned *flags)
{
    static const struct {
        const char *name;
        unsigned flag;
    } fates[] = {{"delivered", TRACE_Q_DELIVERED},
                 {"dropped", TRACE_Q_DROPPED},
                 {"duplicated", TRACE_Q_DUPLICATED},
                 {"corrupted", TRACE_Q_CORRUPTED},
                 {"reordered", TRACE_Q_REORDERED}};
    char *copy = fl_xstrdup(s), *save = NULL;
    bool ok = true;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        bool found = false;
        for (size_t k = 0; k < FL_ARRAY_LEN(fates); k++) {
            if (!strcmp(tok, fates[k].name)) {
                *flags |= fates[k].flag;
                found = true;
            }
        }
        if (!found) {
            fprintf(stderr,
                    "faultline trace: --fate: '%s' is not a fate (valid: delivered, dropped,"
                    " duplicated, corrupted, reordered)\n",
                    tok);
            ok = false;
        }
    }
    free(copy);
    return ok;
}

/* `faultline trace ios RUN`: what to show is an option, not a word before
 * the run.  Says so when `arg` is one of those words. */
static void hint_kind_word(const char *arg)
{
    static const char *const words[] = {"frames", "ios", "lost", "events", "links"};
    for (size_t i = 0; i < FL_ARRAY_LEN(words); i++) {
        if (!strcmp(arg, words[i])) {
            fprintf(stderr, "  (what to show is an option: 'faultline trace RUN%s%s')\n",
                    i == 0 ? "" : " --", i == 0 ? "" : words[i]);
        }
    }
}
static int trace_main(int argc, char **argv)
{
    enum {
        OPT_FROM = 256,
        OPT_TO,
        OPT_NODE,
        OPT_FATE,
        OPT_REASON,
        OPT_DELAYED,
        OPT_SINCE,
        OPT_UNTIL,
        OPT_IOS,
        OPT_LOST,
        OPT_EVENTS,
        OPT_LINKS,
        OPT_DISK,
        OPT_LIMIT,
        OPT_JSON,
        OPT_PCAP,
        OPT_HELP,
    };
    static const struct option opts[] = {
        {"from", required_argument, NULL, OPT_FROM},
        {"to", required_argument, NULL, OPT_TO},
        {"node", required_argument, NULL, OPT_NODE},
        {"fate", required_argument, NULL, OPT_FATE},
        {"reason", required_argument, NULL, OPT_REASON},
        {"delayed-beyond", required_argument, NULL, OPT_DELAYED},
        {"since", required_argument, NULL, OPT_SINCE},
        {"until", required_argument, NULL, OPT_UNTIL},
        {"ios", no_argument, NULL, OPT_IOS},
        {"lost", no_argument, NULL, OPT_LOST},
        {"events", no_argument, NULL, OPT_EVENTS},
        {"links", no_argument, NULL, OPT_LINKS},
        {"disk", required_argument, NULL, OPT_DISK},
        {"limit", required_argument, NULL, OPT_LIMIT},
        {"json", no_argument, NULL, OPT_JSON},
        {"pcap", required_argument, NULL, OPT_PCAP},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    struct trace_query q = {.kind = TRACE_QUERY_FRAMES};
    const char *pcap_out = NULL;
    int kinds = 0;
    bool frame_filters = false;
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case OPT_FROM:
            q.from_node = optarg;
            frame_filters = true;
            break;
        case OPT_TO:
            q.to_node = optarg;
            frame_filters = true;
            break;
        case OPT_NODE:
            q.node = optarg;
            break;
        case OPT_FATE:
            if (!parse_fates(optarg, &q.fate_flags)) {
                return CLI_EXIT_USAGE;
            }
            frame_filters = true;
            break;
        case OPT_REASON:
            q.reason = trace_drop_reason_parse(optarg);
            if (q.reason <= 0) {
                fprintf(
                    stderr,
                    "faultline trace: --reason: '%s' is not a drop reason (valid: partition,"
                    " loss, queue, mtu, port-down, port-queue-full, shutdown, spoofed, internal)\n",
                    optarg);
                return CLI_EXIT_USAGE;
            }
            frame_filters = true;
            break;
        case OPT_DELAYED:
            if (!parse_duration("--delayed-beyond", optarg, &q.delayed_beyond_ns)) {
                return CLI_EXIT_USAGE;
            }
            if (q.delayed_beyond_ns < 0) {
                fprintf(stderr, "faultline trace: --delayed-beyond: '%s' is negative\n", optarg);
                return CLI_EXIT_USAGE;
            }
            frame_filters = true;
            break;
        case OPT_SINCE:
            if (!parse_duration("--since", optarg, &q.since_ns)) {
                return CLI_EXIT_USAGE;
            }
            q.has_since = true;
            break;
        case OPT_UNTIL:
            if (!parse_duration("--until", optarg, &q.until_ns)) {
                return CLI_EXIT_USAGE;
            }
            q.has_until = true;
            break;
        case OPT_IOS:
            q.kind = TRACE_QUERY_IOS;
            kinds++;
            break;
        case OPT_LOST:
            q.kind = TRACE_QUERY_LOST;
            kinds++;
            break;
        case OPT_EVENTS:
            q.kind = TRACE_QUERY_EVENTS;
            kinds++;
            break;
        case OPT_LINKS:
            q.kind = TRACE_QUERY_LINKS;
            kinds++;
            break;
        case OPT_DISK:
            q.disk = optarg;
            break;
        case OPT_LIMIT: {
            uint64_t v;
            if (!cli_parse_count("trace", "--limit", optarg, 1, SIZE_MAX, &v)) {
                return CLI_EXIT_USAGE;
            }
            q.limit = (size_t)v;
            break;
        }
        case OPT_JSON:
            q.json = true;
            break;
        case OPT_PCAP:
            pcap_out = optarg;
            break;
        case OPT_HELP:
        case 'h':
            fputs(usage_text, stdout);
            return CLI_EXIT_OK;
        default:
            fprintf(stderr, "faultline trace: unknown option '%s' (see 'faultline trace --help')\n",
                    argv[optind - 1]);
            return CLI_EXIT_USAGE;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "faultline trace: %s (see 'faultline trace --help')\n",
                optind >= argc ? "expected a run directory or run.db"
                               : "expected exactly one run directory or run.db");
        if (optind < argc) {
            hint_kind_word(argv[optind]);
        }
        return CLI_EXIT_USAGE;
    }
    if (kinds > 1) {
        fprintf(stderr,
                "faultline trace: --ios, --lost, --events and --links exclude each other\n");
        return CLI_EXIT_USAGE;
    }
    if (q.kind != TRACE_QUERY_FRAMES && q.kind != TRACE_QUERY_LINKS && frame_filters) {
        fprintf(stderr, "faultline trace: --from, --to, --fate, --reason and --delayed-beyond"
                        " select frames (also for --links); they do not apply to --ios, --lost or"
                        " --events\n");
        return CLI_EXIT_USAGE;
    }
    if ((q.kind == TRACE_QUERY_FRAMES || q.kind == TRACE_QUERY_LINKS) && q.disk) {
        fprintf(stderr, "faultline trace: --disk applies to --ios and --lost\n");
        return CLI_EXIT_USAGE;
    }
    if (pcap_out && q.kind != TRACE_QUERY_FRAMES) {
        fprintf(stderr, "faultline trace: --pcap writes frames; it does not apply to --ios,"
                        " --lost or --events\n");
        return CLI_EXIT_USAGE;
    }
    if (q.has_since && q.has_until && q.until_ns <= q.since_ns) {
        fprintf(stderr, "faultline trace: --until must be after --since\n");
        return CLI_EXIT_USAGE;
    }
    const char *run = argv[optind];
    struct fl_error *err = NULL;
    struct trace_db *db = trace_db_open_readonly(run, &err);
    if (!db) {
        fprintf(stderr, "faultline trace: %s\n", err->msg);
        if (err->code == ENOENT) {
            hint_kind_word(run);
        }
        int code = err->code == ENOENT || err->code == EPROTO ? CLI_EXIT_USAGE : CLI_EXIT_INFRA;
        fl_error_free(err);
        return code;
    }
    int rc = CLI_EXIT_OK;
    if (pcap_out) {
        /* the per-NIC pcaps live next to run.db */
        size_t n = strlen(run);
        char *dir = n >= 3 && !strcmp(run + n - 3, ".db")
                        ? (strrchr(run, '/') ? fl_xstrndup(run, (size_t)(strrchr(run, '/') - run))
                                             : fl_xstrdup("."))
                        : fl_xstrdup(run);
        size_t written = 0, missing = 0;
        if (!trace_pcap_merge(db, dir, &q, pcap_out, &written, &missing, &err)) {
            fprintf(stderr, "faultline trace: %s\n", err->msg);
            rc = err->code == ENOENT ? CLI_EXIT_USAGE : CLI_EXIT_INFRA;
            fl_error_free(err);
        } else {
            fprintf(stderr, "faultline trace: wrote %zu packets to %s", written, pcap_out);
            if (missing) {
                fprintf(stderr, " (%zu selected frames not found in %s/pcap/*.pcap)", missing, dir);
            }
            fputc('\n', stderr);
        }
        free(dir);
    } else {
        size_t rows = 0;
        if (!trace_query_print(db, &q, stdout, &rows, &err)) {
            fprintf(stderr, "faultline trace: %s\n", err->msg);
            rc = err->code == ENOENT ? CLI_EXIT_USAGE : CLI_EXIT_INFRA;
            fl_error_free(err);
        } else if (!q.json) {
            fprintf(stderr, "(%zu rows)\n", rows);
        }
    }
    trace_db_close(db);
    return rc;
}

const struct cli_command cli_cmd_trace = {
    .name = "trace",
    .summary = "query a run's database: frames, I/Os, lost writes, events; merged pcap",
    .main = trace_main,
};
