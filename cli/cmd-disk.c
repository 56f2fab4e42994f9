/* `faultline disk serve`: one file as a fault-injecting NBD export. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blkback/blkback.h"
#include "cli/cli.h"
#include "core/core.h"
#include "impair/impair.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: faultline disk serve FILE --socket PATH [options]\n"
            "\n"
            "Serves FILE as an NBD export on a unix socket, through faultline's disk\n"
            "model: a volatile write cache (FLUSH/FUA make writes durable), injected\n"
            "latency, I/O errors, read corruption, a capacity limit and crash policies.\n"
            "Like `nbdkit file`, with faults.  FILE is created sparse if missing.\n"
            "\n"
            "options:\n"
            "  --socket PATH         unix socket to listen on (required)\n"
            "  --size SIZE           disk size (e.g. 1G, 512MiB); default: FILE's size;\n"
            "                        a larger size grows FILE\n"
            "  --export NAME         export name (default \"\"; \"\" always works too)\n"
            "  --base IMAGE          read-only base image; FILE becomes a copy-on-write\n"
            "                        overlay (plus FILE.cowmap)\n"
            "  --read-only           refuse writes (EPERM)\n"
            "  --latency [OP:]TIME[:JITTER]\n"
            "                        completion latency, e.g. 2ms, write:5ms:1ms\n"
            "  --error [OP:]ERRNO:PCT[:START-END]\n"
            "                        fail PCT of OP requests (default all) overlapping\n"
            "                        bytes [START, END) with ERRNO, e.g. 'write:EIO:1%%',\n"
            "                        'read:EIO:0.1%%:0-1G'\n"
            "  --corrupt PCT         flip one bit in PCT of reads (seeded)\n"
            "  --faults 'WORDS'      impair's disk grammar, e.g. 'write delay 5ms 1ms\n"
            "                        distribution pareto error 1%% ENOSPC range 0 1GiB';\n"
            "                        replaces the faults given before it.  --latency,\n"
            "                        --error and --corrupt are shorthands in the same\n"
            "                        grammar (':' separates words: 'write:EIO:1%%' is\n"
            "                        'write error 1%% EIO'), and may be repeated\n"
            "  --capacity SIZE       writes needing space beyond SIZE fail with ENOSPC\n"
            "  --cache-limit SIZE    volatile cache size before the oldest writes are\n"
            "                        destaged (default 64MiB)\n"
            "  --crash-policy P      what SIGUSR1 (power cut) does to unflushed writes:\n"
            "                        keep, lose-unflushed, lose-random, tear (default keep)\n"
            "  --seed N              seed for fault and crash draws (default 1)\n"
            "  --no-sync             skip fdatasync() on flush (faster; same model)\n"
            "  -h, --help            this text\n"
            "\n"
            "OP is read, write, flush, trim, write-zeroes or all.\n"
            "\n"
            "Signals: SIGINT/SIGTERM stop cleanly (cached writes are written back, as a\n"
            "disk powered off cleanly).  SIGUSR1 simulates a power cut: connections\n"
            "drop and --crash-policy decides what unflushed writes survive.  SIGUSR2\n"
            "toggles a stall (requests held until the next SIGUSR2).\n"
            "\n"
            "example:\n"
            "  faultline disk serve disk.img --size 1G --socket /tmp/d.sock \\\n"
            "      --latency write:2ms --error 'write:EIO:1%%' --crash-policy lose-unflushed &\n"
            "  qemu-img info 'nbd+unix:///?socket=/tmp/d.sock'\n"
            "  qemu-system-x86_64 ... -blockdev driver=nbd,node-name=d0,\\\n"
            "      server.type=unix,server.path=/tmp/d.sock -device virtio-blk,drive=d0\n");
}

static bool report(const char *opt, const char *arg, struct fl_error *err)
{
    fprintf(stderr, "faultline disk serve: %s '%s': %s\n", opt, arg, err->msg);
    fl_error_free(err);
    return false;
}

static char *read_table(void *arg, const char *path, struct fl_error **errp)
{
    return fl_read_file(path, NULL, errp);
}

/* The fault options are one grammar, impair's disk words (impair/disk.c):
 * --latency, --error and --corrupt are shorthands written in it ('write:
 * EIO:1%' is "write EIO 1%" is "write error 1% EIO"), --faults is the
 * grammar itself.  Each option's words are checked alone (so an error
 * names the option), then appended, each after "all" so one option's op
 * does not leak into the next; --faults starts over. */
struct fault_words {
    struct fl_buf text; /* the words so far, space-separated */
};
/* static: a usage error returns from anywhere in the option loop and
 * leaves it reachable; serve_main() resets it */
static struct fault_words fw;

static const char *const fault_hint[] = {
    [0] = "",
    [1] = " (--latency takes [OP:]TIME[:JITTER], e.g. write:5ms:1ms)",
    [2] = " (--error takes [OP:]ERRNO:PCT[:START-END] with OP one of read, write, flush, trim, "
          "write-zeroes, all; e.g. write:EIO:1%)",
};

/* Parses whitespace-separated disk words with impair's grammar. */
static bool parse_words(const char *text, struct impair_disk_params *out, struct fl_error **errp)
{
    char *copy = fl_xstrdup(text);
    size_t cap = strlen(text) / 2 + 1;
    char **words = fl_xcalloc(cap, sizeof(*words));
    int n = 0;
    for (char *t = strtok(copy, " \t\n"); t; t = strtok(NULL, " \t\n")) {
        words[n++] = t;
    }
    struct impair_parse_opts po = {.read_file = read_table};
    bool ok = impair_disk_params_parse(n, words, &po, out, errp);
    free(words);
    free(copy);
    return ok;
}

static bool add_fault_words(const char *opt, const char *arg, const char *prefix, int hint,
                            bool replace)
{
    char *text = fl_xasprintf("%s%s", prefix, arg);
    struct impair_disk_params parsed;
    struct fl_error *err = NULL;
    if (!parse_words(text, &parsed, &err)) {
        free(text);
        fprintf(stderr, "faultline disk serve: %s '%s': %s%s\n", opt, arg, err->msg,
                fault_hint[hint]);
        fl_error_free(err);
        return false;
    }
    impair_disk_params_clear(&parsed);
    if (replace) {
        fl_buf_free(&fw.text);
    }
    fl_buf_printf(&fw.text, "%sall %s", fw.text.size ? " " : "", text);
    free(text);
    return true;
}

struct serve_state {
    struct bb_disk *disk;
    enum bb_crash_policy policy;
    bool stalled;
};

static void on_stop(struct fl_loop *loop, int signo, void *arg)
{
    fl_log(FL_LOG_INFO, "disk", "signal %d: stopping", signo);
    fl_loop_stop(loop);
}

static void on_crash(struct fl_loop *loop, int signo, void *arg)
{
    struct serve_state *s = arg;
    struct bb_crash_report r;
    int e = bb_disk_crash(s->disk, s->policy, &r);
    fprintf(stderr,
            "faultline disk serve: power cut (%s): %" PRIu64 " unflushed writes kept, %" PRIu64
            " lost, %" PRIu64 " torn%s%s\n",
            bb_crash_policy_name(r.policy), r.writes_kept, r.writes_lost, r.writes_torn,
            e ? "; I/O error: " : "", e ? strerror(-e) : "");
}

static void on_stall(struct fl_loop *loop, int signo, void *arg)
{
    struct serve_state *s = arg;
    s->stalled = !s->stalled;
    bb_disk_stall(s->disk, s->stalled);
    fprintf(stderr, "faultline disk serve: %s\n", s->stalled ? "stalled" : "released");
}

static int serve_main(int argc, char **argv)
{
    enum {
        O_SOCKET = 256,
        O_SIZE,
        O_EXPORT,
        O_BASE,
        O_RO,
        O_LATENCY,
        O_ERROR,
        O_CORRUPT,
        O_FAULTS,
        O_CAPACITY,
        O_CACHE,
        O_POLICY,
        O_SEED,
        O_NOSYNC,
    };
    static const struct option opts[] = {
        {"socket", required_argument, NULL, O_SOCKET},
        {"size", required_argument, NULL, O_SIZE},
        {"export", required_argument, NULL, O_EXPORT},
        {"base", required_argument, NULL, O_BASE},
        {"read-only", no_argument, NULL, O_RO},
        {"latency", required_argument, NULL, O_LATENCY},
        {"error", required_argument, NULL, O_ERROR},
        {"corrupt", required_argument, NULL, O_CORRUPT},
        {"faults", required_argument, NULL, O_FAULTS},
        {"capacity", required_argument, NULL, O_CAPACITY},
        {"cache-limit", required_argument, NULL, O_CACHE},
        {"crash-policy", required_argument, NULL, O_POLICY},
        {"seed", required_argument, NULL, O_SEED},
        {"no-sync", no_argument, NULL, O_NOSYNC},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct bb_disk_config dc = {.node = "local", .name = "disk", .crash_policy = BB_CRASH_KEEP};
    struct impair_disk_params faults;
    memset(&faults, 0, sizeof(faults));
    fl_buf_free(&fw.text);
    uint64_t seed = 1;
    struct fl_error *err = NULL;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        const char *a = optarg;
        switch (c) {
        case O_SOCKET:
            dc.socket_path = a;
            break;
        case O_SIZE:
            if (!impair_parse_size(a, &dc.size, &err)) {
                report("--size", a, err);
                return CLI_EXIT_USAGE;
            }
            break;
        case O_EXPORT:
            dc.export_name = a;
            break;
        case O_BASE:
            dc.base = a;
            break;
        case O_RO:
            dc.read_only = true;
            break;
        case O_LATENCY:
            if (!add_fault_words("--latency", a, "", 1, false)) {
                return CLI_EXIT_USAGE;
            }
            break;
        case O_ERROR:
            if (!add_fault_words("--error", a, "", 2, false)) {
                return CLI_EXIT_USAGE;
            }
            break;
        case O_CORRUPT:
            if (!add_fault_words("--corrupt", a, "read corrupt ", 0, false)) {
                return CLI_EXIT_USAGE;
            }
            break;
        case O_FAULTS:
            if (!add_fault_words("--faults", a, "", 0, true)) {
                return CLI_EXIT_USAGE;
            }
            break;
        case O_CAPACITY:
            if (!impair_parse_size(a, &dc.capacity, &err)) {
                report("--capacity", a, err);
                return CLI_EXIT_USAGE;
            }
            break;
        case O_CACHE:
            if (!impair_parse_size(a, &dc.cache_limit, &err)) {
                report("--cache-limit", a, err);
                return CLI_EXIT_USAGE;
            }
            break;
        case O_POLICY:
            if (!bb_crash_policy_parse(a, &dc.crash_policy, &err)) {
                report("--crash-policy", a, err);
                return CLI_EXIT_USAGE;
            }
            break;
        case O_SEED:
            if (!cli_parse_seed("disk serve", a, &seed)) {
                return CLI_EXIT_USAGE;
            }
            break;
        case O_NOSYNC:
            dc.no_sync = true;
            break;
        case 'h':
            usage(stdout);
            return CLI_EXIT_OK;
        default:
            fprintf(stderr,
                    "faultline disk serve: unknown or incomplete option '%s' (see --help)\n",
                    argv[optind - 1]);
            return CLI_EXIT_USAGE;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "faultline disk serve: expected exactly one FILE (see --help)\n");
        return CLI_EXIT_USAGE;
    }
    if (!dc.socket_path) {
        fprintf(stderr, "faultline disk serve: --socket PATH is required (see --help)\n");
        return CLI_EXIT_USAGE;
    }
    dc.path = argv[optind];
    if (fw.text.size) {
        /* every part parsed alone already; together they are the faults */
        bool ok = parse_words(fw.text.data, &faults, &err);
        fl_buf_free(&fw.text);
        if (!ok) {
            report("faults", "", err);
            return CLI_EXIT_USAGE;
        }
    }
    dc.faults = &faults;

    struct fl_loop *loop = fl_loop_create(NULL, &err);
    struct bb_config bc = {.seed = seed};
    struct blkback *bb = loop ? bb_create(loop, &bc, &err) : NULL;
    struct bb_disk *disk = bb ? bb_disk_add(bb, &dc, &err) : NULL;
    if (!disk) {
        fprintf(stderr, "faultline disk serve: %s\n", err ? err->msg : "setup failed");
        int rc = err && (err->code == EINVAL || err->code == EEXIST || err->code == ENAMETOOLONG)
                     ? CLI_EXIT_USAGE
                     : CLI_EXIT_INFRA;
        fl_error_free(err);
        bb_destroy(bb);
        fl_loop_destroy(loop);
        impair_disk_params_clear(&faults);
        return rc;
    }
    struct serve_state st = {.disk = disk, .policy = dc.crash_policy};
    fl_loop_add_signal(loop, SIGINT, on_stop, &st);
    fl_loop_add_signal(loop, SIGTERM, on_stop, &st);
    fl_loop_add_signal(loop, SIGUSR1, on_crash, &st);
    fl_loop_add_signal(loop, SIGUSR2, on_stall, &st);
    signal(SIGPIPE, SIG_IGN);
    printf("serving %s (%" PRIu64 " bytes) on nbd+unix:///%s?socket=%s\n", dc.path,
           bb_disk_size(disk), dc.export_name ? dc.export_name : "", dc.socket_path);
    fflush(stdout);
    int e = fl_loop_run(loop);
    struct bb_disk_stats s;
    bb_disk_get_stats(disk, &s);
    fprintf(stderr,
            "faultline disk serve: %" PRIu64 " reads, %" PRIu64 " writes, %" PRIu64
            " flushes, %" PRIu64 " injected errors, %" PRIu64 " corrupted reads\n",
            s.reads, s.writes, s.flushes, s.errors_injected, s.reads_corrupted);
    bb_destroy(bb);
    fl_loop_destroy(loop);
    impair_disk_params_clear(&faults);
    return e < 0 ? CLI_EXIT_INFRA : CLI_EXIT_OK;
}

static int disk_main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
    }
    if (!strcmp(argv[1], "serve")) {
        return serve_main(argc - 1, argv + 1);
    }
    fprintf(stderr, "faultline disk: '%s' is not a subcommand (valid: serve)\n", argv[1]);
    return CLI_EXIT_USAGE;
}

const struct cli_command cli_cmd_disk = {
    .name = "disk",
    .summary = "serve a file as a fault-injecting NBD disk",
    .main = disk_main,
};
