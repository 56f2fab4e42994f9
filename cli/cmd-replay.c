/* faultline replay: a recorded node of a run, replayed alone and
 * instruction-exact (docs/record-replay.md). */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "hv/record.h"

static const char usage_text[] =
    "usage: faultline replay RUN|BUNDLE NODE [--segment N] [--until-icount N] [--gdb[=PORT]]\n"
    "       faultline replay RUN|BUNDLE --verify [NODE...]\n"
    "\n"
    "Replays a node recorded by 'faultline run --record' alone: no other node,\n"
    "no network or disk backend (the recording's log feeds the frames, the disk is\n"
    "the copy taken when the segment began), instruction for instruction, and\n"
    "prints its console as it was.  A segment is one QEMU process of the node\n"
    "(its first boot, then each restart); without --segment every segment is\n"
    "replayed in order.  A BUNDLE (a file written by 'faultline bundle') is\n"
    "unpacked into a temporary directory, replayed from there, and removed.\n"
    "\n"
    "options:\n"
    "      --segment N       only segment N (0 = the first boot)\n"
    "      --until-icount N  stop after N instructions of the segment\n"
    "      --gdb[=PORT]      at the stop, keep the guest paused with a gdbstub on\n"
    "                        127.0.0.1:PORT (default 1234), print the gdb command\n"
    "                        line, and end the replay when stdin is closed or a\n"
    "                        line is entered\n"
    "      --verify          replay every segment of every recorded node (or of the\n"
    "                        NODEs given) and compare the console bytes, the agent\n"
    "                        transcript and the final instruction count with the\n"
    "                        recording\n"
    "      --stall S         report a replay whose instruction count does not move\n"
    "                        for S seconds (default 60)\n"
    "  -q, --quiet           no console output (replay) / only divergences (verify)\n"
    "  -h, --help            this text\n"
    "\n"
    "exit codes: 0 replayed (--verify: every segment identical); 1 a replay\n"
    "diverged, stalled or failed (--verify names node, segment and what differed);\n"
    "2 bad command line, or RUN was not recorded; 3 infrastructure failure.\n"
    "\n"
    "example:\n"
    "  faultline run scenarios/quickstart.yaml --record -o runs/q\n"
    "  faultline replay runs/q n1 --segment 0\n"
    "  faultline replay runs/q n1 --segment 0 --until-icount 300000000 --gdb\n"
    "  faultline replay runs/q --verify\n"
    "  faultline bundle runs/q -o q.tar.zst; faultline replay q.tar.zst n1\n";

enum { OPT_SEGMENT = 256, OPT_UNTIL_ICOUNT, OPT_VERIFY, OPT_STALL, OPT_GDB };

/* Bytes around `at`, printable, for a divergence message. */
static void show_bytes(struct fl_buf *b, const char *p, size_t size, size_t at)
{
    size_t from = at > 16 ? at - 16 : 0, to = FL_MIN(size, at + 24);
    fl_buf_puts(b, "\"");
    for (size_t i = from; i < to; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == '\n') {
            fl_buf_puts(b, "\\n");
        } else if (c == '"' || c == '\\') {
            fl_buf_printf(b, "\\%c", c);
        } else if (c < 0x20 || c > 0x7e) {
            fl_buf_printf(b, "\\x%02x", c);
        } else {
            fl_buf_append(b, (const char *)&c, 1);
        }
    }
    fl_buf_puts(b, to < size ? "\"..." : "\"");
}

/* NULL when equal, else what differs (caller frees). */
static char *compare(const char *what, const char *rec, size_t rec_size, const char *rep,
                     size_t rep_size)
{
    size_t n = FL_MIN(rec_size, rep_size), at = 0;
    while (at < n && rec[at] == rep[at]) {
        at++;
    }
    if (at == n && rec_size == rep_size) {
        return NULL;
    }
    struct fl_buf b = {0};
    fl_buf_printf(&b, "%s differs at byte %zu (recorded %zu bytes, replayed %zu): recorded ", what,
                  at, rec_size, rep_size);
    show_bytes(&b, rec, rec_size, at);
    fl_buf_puts(&b, ", replayed ");
    show_bytes(&b, rep, rep_size, at);
    return fl_buf_steal(&b);
}

/* QEMU's last message (hv leaves out the hub-port warnings). */
static const char *qemu_said(const char *text)
{
    if (!text || !*text) {
        return NULL;
    }
    const char *nl = strrchr(text, '\n');
    return nl ? nl + 1 : text;
}

struct opts {
    const char *run;   /* the run directory (a bundle: where it was unpacked) */
    const char *shown; /* RUN or BUNDLE as given, for messages */
    bool bundle;
    bool quiet;
    bool has_segment;
    unsigned segment;
    uint64_t until;
    int64_t stall_ns;
    unsigned gdb_port; /* 0: no gdbstub */
};

struct gdb_stop {
    const struct opts *o;
    const char *node;
    unsigned segment;
    const char *kernel;
};

/* The replay is paused at its stop point with a gdbstub listening. */
static void at_gdb_stop(void *arg, uint64_t icount)
{
    const struct gdb_stop *g = arg;
    fprintf(stderr,
            "faultline replay: %s segment %u paused at instruction %llu; gdbstub on "
            "127.0.0.1:%u:\n"
            "    gdb -ex 'target remote 127.0.0.1:%u' %s\n"
            "faultline replay: enter a line (or close stdin) to end the replay\n",
            g->node, g->segment, (unsigned long long)icount, g->o->gdb_port, g->o->gdb_port,
            g->kernel ? g->kernel : "");
    char line[256];
    (void)!fgets(line, sizeof line, stdin);
}

/* The -kernel of a segment's replay command line (for gdb's symbols). */
static char *segment_kernel(const char *dir)
{
    char *meta = fl_xasprintf("%s/" HV_RR_SEGMENT_FILE, dir);
    struct hv_rr_segment seg;
    char *k = NULL;
    if (hv_rr_segment_read(meta, &seg, NULL)) {
        for (size_t i = 0; seg.replay_argv[i] && !k; i++) {
            if (!strcmp(seg.replay_argv[i], "-kernel") && seg.replay_argv[i + 1]) {
                k = fl_xstrdup(seg.replay_argv[i + 1]);
            }
        }
        hv_rr_segment_clear(&seg);
    }
    free(meta);
    return k;
}

/* 0 identical, 1 diverged, 3 could not run. */
static int verify_segment(const struct opts *o, const char *node, unsigned k)
{
    char *dir = fl_xasprintf("%s/rr/%s/%u", o->run, node, k);
    char *meta = fl_xasprintf("%s/" HV_RR_SEGMENT_FILE, dir);
    struct hv_rr_segment seg;
    struct fl_error *err = NULL;
    int code = 0;
    if (!hv_rr_segment_read(meta, &seg, &err)) {
        printf("%s segment %u: DIVERGED: cannot read the recording: %s\n", node, k, err->msg);
        fl_error_free(err);
        free(meta);
        free(dir);
        return 1;
    }
    free(meta);
    struct hv_replay_opts ro = {
        .segment_dir = dir,
        .console_fd = -1,
        .stall_ns = o->stall_ns,
    };
    struct hv_replay_result res;
    bool ok = hv_rr_replay(&ro, &res, &err);
    char *why = NULL;
    if (!ok) {
        why = fl_xasprintf("the replay failed at instruction %llu: %s",
                           (unsigned long long)res.icount, err->msg);
        fl_error_free(err);
    } else if (!res.reached || res.icount != seg.icount) {
        const char *said = qemu_said(res.qemu_stderr);
        why = fl_xasprintf("instruction count: recorded %llu, replay stopped at %llu%s%s",
                           (unsigned long long)seg.icount, (unsigned long long)res.icount,
                           said ? "; QEMU said: " : "", said ? said : "");
    } else {
        size_t cs = 0, as = 0;
        char *p = fl_xasprintf("%s/" HV_RR_CONSOLE_FILE, dir);
        char *con = fl_read_file(p, &cs, NULL);
        free(p);
        p = fl_xasprintf("%s/" HV_RR_AGENT_FILE, dir);
        char *ag = fl_read_file(p, &as, NULL);
        free(p);
        why = compare("console", con ? con : "", cs, res.console, res.console_size);
        if (!why) {
            why = compare("agent transcript", ag ? ag : "", as, res.agent, res.agent_size);
        }
        if (!why && !o->quiet) {
            printf("%s segment %u: identical (%llu instructions, console %zu bytes, agent "
                   "%zu bytes)\n",
                   node, k, (unsigned long long)res.icount, cs, as);
        }
        free(con);
        free(ag);
    }
    if (why) {
        printf("%s segment %u: DIVERGED: %s\n", node, k, why);
        printf("  replay it: faultline replay %s %s --segment %u\n", o->shown, node, k);
        free(why);
        code = 1;
    }
    fflush(stdout);
    hv_replay_result_clear(&res);
    hv_rr_segment_clear(&seg);
    free(dir);
    return code;
}

static int verify(const struct opts *o, char **nodes, size_t n_nodes)
{
    char *rr = fl_xasprintf("%s/rr", o->run);
    size_t n_all = 0;
    char **all = NULL;
    if (!n_nodes) {
        all = hv_rr_list_nodes(rr, &n_all);
        nodes = all;
        n_nodes = n_all;
    }
    int worst = 0;
    size_t segments = 0, diverged = 0;
    for (size_t i = 0; i < n_nodes; i++) {
        char *nd = fl_xasprintf("%s/%s", rr, nodes[i]);
        size_t n = 0;
        unsigned *segs = hv_rr_list_segments(nd, &n);
        if (!n) {
            printf("%s: DIVERGED: no recorded segment in %s\n", nodes[i],
                   o->bundle ? o->shown : nd);
            worst = 1;
            diverged++;
        }
        for (size_t k = 0; k < n; k++) {
            int c = verify_segment(o, nodes[i], segs[k]);
            segments++;
            diverged += c != 0;
            worst = FL_MAX(worst, c);
        }
        free(segs);
        free(nd);
    }
    hv_rr_list_free(all, n_all);
    free(rr);
    printf("verify: %zu segment%s, %s\n", segments, segments == 1 ? "" : "s",
           diverged ? "DIVERGED" : "every one identical");
    if (diverged && !segments) {
        return CLI_EXIT_CHECK_FAILED;
    }
    return worst ? CLI_EXIT_CHECK_FAILED : CLI_EXIT_OK;
}

static int replay_node(const struct opts *o, const char *node)
{
    char *nd = fl_xasprintf("%s/rr/%s", o->run, node);
    size_t n = 0;
    unsigned *segs = hv_rr_list_segments(nd, &n);
    if (!n && o->bundle) {
        char *rr = fl_xasprintf("%s/rr", o->run);
        size_t na = 0;
        char **all = hv_rr_list_nodes(rr, &na);
        struct fl_buf names = {0};
        for (size_t i = 0; i < na; i++) {
            fl_buf_printf(&names, "%s%s", i ? ", " : "", all[i]);
        }
        fprintf(stderr, "faultline replay: node '%s' is not in the bundle %s (it holds: %s)\n",
                node, o->shown, names.data ? names.data : "none");
        fl_buf_free(&names);
        hv_rr_list_free(all, na);
        free(rr);
        free(nd);
        return CLI_EXIT_USAGE;
    }
    if (!n) {
        fprintf(stderr, "faultline replay: node '%s' was not recorded in %s (no %s)\n", node,
                o->run, nd);
        free(nd);
        return CLI_EXIT_USAGE;
    }
    int code = CLI_EXIT_OK;
    bool found = false;
    for (size_t k = 0; k < n && code == CLI_EXIT_OK; k++) {
        if (o->has_segment && segs[k] != o->segment) {
            continue;
        }
        found = true;
        char *dir = fl_xasprintf("%s/%u", nd, segs[k]);
        if (!o->quiet) {
            fprintf(stderr, "faultline replay: %s segment %u\n", node, segs[k]);
        }
        struct hv_replay_opts ro = {
            .segment_dir = dir,
            .console_fd = o->quiet ? -1 : 1,
            .until_icount = o->until,
            .stall_ns = o->stall_ns,
        };
        char gdb_arg[64];
        const char *extra[] = {"-gdb", gdb_arg};
        struct gdb_stop gs = {.o = o, .node = node, .segment = segs[k]};
        if (o->gdb_port) {
            snprintf(gdb_arg, sizeof gdb_arg, "tcp:127.0.0.1:%u", o->gdb_port);
            ro.extra = extra;
            ro.n_extra = 2;
            gs.kernel = segment_kernel(dir);
            ro.at_stop = at_gdb_stop;
            ro.at_stop_arg = &gs;
        }
        struct hv_replay_result res;
        struct fl_error *err = NULL;
        fflush(stdout);
        if (!hv_rr_replay(&ro, &res, &err)) {
            fprintf(stderr, "faultline replay: %s segment %u: %s\n", node, segs[k], err->msg);
            fl_error_free(err);
            code = CLI_EXIT_CHECK_FAILED;
        } else if (!o->quiet) {
            fprintf(stderr, "faultline replay: %s segment %u: stopped at instruction %llu%s\n",
                    node, segs[k], (unsigned long long)res.icount,
                    res.reached ? "" : " (not the one asked for)");
        }
        hv_replay_result_clear(&res);
        free((char *)gs.kernel);
        free(dir);
    }
    if (!found) {
        fprintf(stderr, "faultline replay: %s has no segment %u (it has %zu: 0..%u)\n", node,
                o->segment, n, segs[n - 1]);
        code = CLI_EXIT_USAGE;
    }
    free(segs);
    free(nd);
    return code;
}

static int replay_run(struct opts *op, bool do_verify, int argc, char **argv);

static int replay_main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"segment", required_argument, NULL, OPT_SEGMENT},
        {"until-icount", required_argument, NULL, OPT_UNTIL_ICOUNT},
        {"verify", no_argument, NULL, OPT_VERIFY},
        {"stall", required_argument, NULL, OPT_STALL},
        {"gdb", optional_argument, NULL, OPT_GDB},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct opts o = {0};
    bool do_verify = false;
    uint64_t v;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "qh", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_SEGMENT:
            if (!cli_parse_count("replay", "--segment", optarg, 0, 100000, &v)) {
                return CLI_EXIT_USAGE;
            }
            o.has_segment = true;
            o.segment = (unsigned)v;
            break;
        case OPT_UNTIL_ICOUNT:
            if (!cli_parse_count("replay", "--until-icount", optarg, 1, (uint64_t)1 << 53,
                                 &o.until)) {
                return CLI_EXIT_USAGE;
            }
            break;
        case OPT_VERIFY:
            do_verify = true;
            break;
        case OPT_STALL:
            if (!cli_parse_count("replay", "--stall", optarg, 1, 86400, &v)) {
                return CLI_EXIT_USAGE;
            }
            o.stall_ns = (int64_t)v * FL_NS_PER_SEC;
            break;
        case OPT_GDB:
            o.gdb_port = 1234;
            if (optarg) {
                if (!cli_parse_count("replay", "--gdb", optarg, 1, 65535, &v)) {
                    return CLI_EXIT_USAGE;
                }
                o.gdb_port = (unsigned)v;
            }
            break;
        case 'q':
            o.quiet = true;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return CLI_EXIT_OK;
        default:
            fputs("(see 'faultline replay --help')\n", stderr);
            return CLI_EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        fputs("faultline replay: no run directory given\n", stderr);
        fputs(usage_text, stderr);
        return CLI_EXIT_USAGE;
    }
    o.run = o.shown = argv[optind++];
    struct stat bs;
    if (stat(o.run, &bs) == 0 && S_ISREG(bs.st_mode)) {
        /* A bundle (faultline bundle): replayed from a temporary copy. */
        char *dir = NULL;
        struct fl_error *err = NULL;
        if (!hv_rr_bundle_unpack(o.shown, &dir, &err)) {
            fprintf(stderr, "faultline replay: %s\n", err->msg);
            fl_error_free(err);
            return CLI_EXIT_USAGE;
        }
        o.run = dir;
        o.bundle = true;
        int code = replay_run(&o, do_verify, argc, argv);
        fl_rm_rf(dir);
        free(dir);
        return code;
    }
    return replay_run(&o, do_verify, argc, argv);
}

/* After the options: RUN (o->run) and what follows it (argv[optind..]). */
static int replay_run(struct opts *op, bool do_verify, int argc, char **argv)
{
    struct opts o = *op;
    char *rr = fl_xasprintf("%s/rr", o.run);
    struct stat st;
    bool recorded = stat(rr, &st) == 0 && S_ISDIR(st.st_mode);
    free(rr);
    if (!recorded) {
        fprintf(stderr,
                "faultline replay: '%s' holds no recording (no rr/ directory): record a run "
                "with 'faultline run --record SCENARIO'\n",
                o.run);
        return CLI_EXIT_USAGE;
    }
    if (do_verify) {
        if (o.has_segment || o.until || o.gdb_port) {
            fputs("faultline replay: --verify replays whole segments (no --segment, "
                  "--until-icount, --gdb)\n",
                  stderr);
            return CLI_EXIT_USAGE;
        }
        return verify(&o, argv + optind, (size_t)(argc - optind));
    }
    if (optind >= argc) {
        fputs("faultline replay: which node? (faultline replay RUN NODE, or --verify)\n", stderr);
        return CLI_EXIT_USAGE;
    }
    const char *node = argv[optind++];
    if (optind < argc) {
        fprintf(stderr, "faultline replay: unexpected argument '%s' (one node per replay)\n",
                argv[optind]);
        return CLI_EXIT_USAGE;
    }
    if ((o.until || o.gdb_port) && !o.has_segment) {
        fputs("faultline replay: --until-icount and --gdb need --segment (a count is per "
              "segment)\n",
              stderr);
        return CLI_EXIT_USAGE;
    }
    return replay_node(&o, node);
}

const struct cli_command cli_cmd_replay = {
    .name = "replay",
    .summary = "replay a recorded node alone, instruction-exact (--verify: all of them)",
    .main = replay_main,
};
