/* faultline run: one scenario file in, a cluster, a timeline of faults,
 * a verdict out. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "runner/runner.h"

static const char usage_text[] =
    "usage: faultline run [options] SCENARIO.yaml\n"
    "       faultline run --replay-of RUN_DIR [options]\n"
    "\n"
    "Boots the scenario's nodes on QEMU, waits until every node is ready (time\n"
    "zero), plays the timeline of faults, runs the checks, tears everything down\n"
    "and prints the verdict.  Everything lands in a run directory: run.db, pcaps,\n"
    "console logs, events.log, summary.json, junit.xml and report.html.\n"
    "\n"
    "options:\n"
    "  -o, --out DIR       run directory (default runs/<date>-<time>-<name>/)\n"
    "  -s, --seed N        seed for every random choice (default: run.seed, else drawn)\n"
    "      --replay-of RUN rerun RUN's scenario with RUN's seed (a scenario file given\n"
    "                      as well replaces RUN's copy)\n"
    "      --accel A       auto | kvm | tcg (default auto: KVM only when usable)\n"
    "      --cache DIR     guest image cache (default $FAULTLINE_CACHE or\n"
    "                      $XDG_CACHE_HOME/faultline)\n"
    "      --no-frames     do not record a fate row per frame in run.db\n"
    "      --no-pcap       do not write pcaps\n"
    "      --no-report     do not write report.html\n"
    "      --record[=NODES] record every node (or the comma-separated NODES) for\n"
    "                      'faultline replay' (TCG, 1 vCPU; docs/record-replay.md);\n"
    "                      overrides the scenario's run.record\n"
    "      --plain         plain event lines, no live view (default when stdout is\n"
    "                      not a terminal or CI is set)\n"
    "      --live          the live view even when stdout is not a terminal\n"
    "  -q, --quiet         print only errors\n"
    "      --json          print the summary as JSON on stdout (summary.json's content;\n"
    "                      with --repeat, index.json's); everything else goes to stderr\n"
    "  -h, --help          this text\n"
    "\n"
    "repeating (docs/cli.md, 'faultline run --repeat'):\n"
    "      --repeat N      N runs, each with a freshly drawn seed, each its own run\n"
    "                      directory NN-seed-S/ inside one directory (-o, or\n"
    "                      runs/<date>-<time>-<name>/) with index.html and index.json\n"
    "      --seeds LIST    one run per seed instead: '1-50', '3,9,12', '1-3,10'\n"
    "      --until-fail    stop after the first run that does not pass\n"
    "\n"
    "exit codes: 0 every check passed; 1 a check failed; 2 invalid scenario or\n"
    "command line, or the run directory claimed by another run; 3 infrastructure\n"
    "failure (QEMU missing, image build failed, the run directory could not hold\n"
    "the run's records); 130 interrupted (SIGINT/SIGTERM; partial results kept).\n"
    "With --repeat or --seeds: 1 if any run failed, else 130 if one was interrupted\n"
    "(no further run starts), else 3 if any run had an infrastructure failure, else 0.\n"
    "\n"
    "example:\n"
    "  faultline run scenarios/quickstart.yaml\n"
    "  faultline run scenarios/random-nemesis.yaml --repeat 20 --until-fail\n";

enum {
    OPT_REPLAY = 256,
    OPT_ACCEL,
    OPT_CACHE,
    OPT_NO_FRAMES,
    OPT_NO_PCAP,
    OPT_NO_REPORT,
    OPT_PLAIN,
    OPT_LIVE,
    OPT_RECORD,
    OPT_JSON,
    OPT_REPEAT,
    OPT_SEEDS,
    OPT_UNTIL_FAIL
};

static int exit_code(enum runner_result result)
{
    switch (result) {
    case RUNNER_PASS:
        return CLI_EXIT_OK;
    case RUNNER_FAIL:
        return CLI_EXIT_CHECK_FAILED;
    case RUNNER_INVALID:
        return CLI_EXIT_USAGE;
    case RUNNER_ERROR:
        return CLI_EXIT_INFRA;
    case RUNNER_INTERRUPTED:
        return CLI_EXIT_INTERRUPTED;
    }
    return CLI_EXIT_INFRA;
}

/* Scenario errors are FILE:LINE:COL lines (one per error) and stand on
 * their own; anything else gets the command's name, escaped (an
 * infrastructure message may quote a guest). */
static void print_error(const char *file, enum runner_result result, const struct fl_error *err)
{
    if (result == RUNNER_INVALID && file && !strncmp(err->msg, file, strlen(file)) &&
        err->msg[strlen(file)] == ':') {
        fprintf(stderr, "%s\n", err->msg);
    } else {
        char *msg = fl_text_terminal_dup(err->msg);
        fprintf(stderr, "faultline run: %s\n", msg);
        free(msg);
    }
}

/* --json: the run's JSON (summary.json's or index.json's text), or when
 * it made none (an invalid scenario, a directory it could not claim) the
 * verdict and the message, still one object. */
static void print_json(const char *text, enum runner_result result, const char *run_dir,
                       const struct fl_error *err)
{
    if (text) {
        fputs(text, stdout);
        return;
    }
    struct fl_buf b = {0};
    fl_buf_printf(&b, "{\n  \"verdict\": \"%s\"", runner_result_name(result));
    if (err) {
        fl_buf_puts(&b, ",\n  \"error\": ");
        fl_text_json(&b, err->msg, strlen(err->msg), false);
    }
    if (run_dir) {
        fl_buf_puts(&b, ",\n  \"run_dir\": ");
        fl_text_json(&b, run_dir, strlen(run_dir), false);
    }
    fl_buf_puts(&b, "\n}\n");
    fputs(b.data, stdout);
    fl_buf_free(&b);
}

static int repeat_main(const struct runner_options *o, size_t count, const char *seeds_text,
                       bool until_fail, bool json)
{
    struct runner_repeat rep = {.run = o, .count = count, .until_fail = until_fail};
    uint64_t *seeds = NULL;
    struct fl_error *err = NULL;
    if (seeds_text) {
        if (!runner_seeds_parse(seeds_text, &seeds, &rep.n_seeds, &err)) {
            fprintf(stderr, "faultline run: %s\n", err->msg);
            fl_error_free(err);
            return CLI_EXIT_USAGE;
        }
        rep.seeds = seeds;
    }
    struct runner_repeat_outcome out;
    runner_repeat_run(&rep, &out, &err);
    free(seeds);
    if (err) {
        print_error(o->scenario_path, out.result, err);
    }
    if (json) {
        print_json(out.index_json, out.result, out.dir, err);
    }
    fl_error_free(err);
    int code = exit_code(out.result);
    runner_repeat_outcome_clear(&out);
    return code;
}

static int run_main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"out", required_argument, NULL, 'o'},
        {"seed", required_argument, NULL, 's'},
        {"replay-of", required_argument, NULL, OPT_REPLAY},
        {"accel", required_argument, NULL, OPT_ACCEL},
        {"cache", required_argument, NULL, OPT_CACHE},
        {"no-frames", no_argument, NULL, OPT_NO_FRAMES},
        {"no-pcap", no_argument, NULL, OPT_NO_PCAP},
        {"no-report", no_argument, NULL, OPT_NO_REPORT},
        {"plain", no_argument, NULL, OPT_PLAIN},
        {"live", no_argument, NULL, OPT_LIVE},
        {"record", optional_argument, NULL, OPT_RECORD},
        {"json", no_argument, NULL, OPT_JSON},
        {"repeat", required_argument, NULL, OPT_REPEAT},
        {"seeds", required_argument, NULL, OPT_SEEDS},
        {"until-fail", no_argument, NULL, OPT_UNTIL_FAIL},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct runner_options o = {0};
    bool json = false, until_fail = false;
    size_t repeat = 0;
    const char *seeds = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:s:qh", longopts, NULL)) != -1) {
        switch (c) {
        case 'o':
            o.out_dir = optarg;
            break;
        case 's': {
            if (!cli_parse_seed("run", optarg, &o.seed)) {
                return CLI_EXIT_USAGE;
            }
            o.has_seed = true;
            break;
        }
        case OPT_REPLAY:
            o.replay_of = optarg;
            break;
        case OPT_ACCEL:
            if (strcmp(optarg, "auto") && strcmp(optarg, "kvm") && strcmp(optarg, "tcg")) {
                fprintf(stderr,
                        "faultline run: --accel '%s' is not an accelerator (valid: auto, "
                        "kvm, tcg)\n",
                        optarg);
                return CLI_EXIT_USAGE;
            }
            o.accel = optarg;
            break;
        case OPT_CACHE:
            o.cache_dir = optarg;
            break;
        case OPT_NO_FRAMES:
            o.no_frames = true;
            break;
        case OPT_NO_PCAP:
            o.no_pcap = true;
            break;
        case OPT_NO_REPORT:
            o.no_report = true;
            break;
        case OPT_PLAIN:
            o.view = RUNNER_VIEW_PLAIN;
            break;
        case OPT_LIVE:
            o.view = RUNNER_VIEW_LIVE;
            break;
        case OPT_RECORD:
            o.record = optarg ? optarg : "";
            break;
        case 'q':
            o.view = RUNNER_VIEW_QUIET;
            break;
        case OPT_JSON:
            json = true;
            o.human_to_stderr = true;
            break;
        case OPT_REPEAT: {
            uint64_t n;
            if (!cli_parse_count("run", "--repeat", optarg, 1, RUNNER_MAX_SEEDS, &n)) {
                return CLI_EXIT_USAGE;
            }
            repeat = (size_t)n;
            break;
        }
        case OPT_SEEDS:
            seeds = optarg;
            break;
        case OPT_UNTIL_FAIL:
            until_fail = true;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return CLI_EXIT_OK;
        default:
            fputs("(see 'faultline run --help')\n", stderr);
            return CLI_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        o.scenario_path = argv[optind++];
    }
    if (optind < argc) {
        fprintf(stderr, "faultline run: unexpected argument '%s' (one scenario file per run)\n",
                argv[optind]);
        return CLI_EXIT_USAGE;
    }
    if (!o.scenario_path && !o.replay_of) {
        fputs("faultline run: no scenario file given\n", stderr);
        fputs(usage_text, stderr);
        return CLI_EXIT_USAGE;
    }
    if (repeat || seeds) {
        const char *why = repeat && seeds ? "give --repeat N or --seeds LIST, not both"
                          : o.has_seed    ? "--seed is for one run; a repeat takes --seeds LIST"
                          : o.replay_of ? "--replay-of reruns one run; it does not go with a repeat"
                          : !o.scenario_path ? "a repeat needs a scenario file"
                                             : NULL;
        if (why) {
            fprintf(stderr, "faultline run: %s\n", why);
            return CLI_EXIT_USAGE;
        }
        return repeat_main(&o, repeat, seeds, until_fail, json);
    }
    if (until_fail) {
        fputs("faultline run: --until-fail needs --repeat N or --seeds LIST\n", stderr);
        return CLI_EXIT_USAGE;
    }
    struct runner_outcome out;
    struct fl_error *err = NULL;
    runner_run(&o, &out, &err);
    if (err) {
        print_error(o.scenario_path, out.result, err);
        if (out.result == RUNNER_ERROR) {
            fprintf(stderr, "faultline run: infrastructure failure%s%s\n",
                    out.run_dir ? "; partial results in " : "", out.run_dir ? out.run_dir : "");
        }
    }
    if (json) {
        print_json(out.summary_json, out.result, out.run_dir, err);
    }
    fl_error_free(err);
    int code = exit_code(out.result);
    runner_outcome_clear(&out);
    return code;
}

const struct cli_command cli_cmd_run = {
    .name = "run",
    .summary = "run a scenario: boot the fleet, play the faults, give a verdict",
    .main = run_main,
};
