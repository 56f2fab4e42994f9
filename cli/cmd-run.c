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
    "  -h, --help          this text\n"
    "\n"
    "exit codes: 0 every check passed; 1 a check failed; 2 invalid scenario or\n"
    "command line, or the run directory claimed by another run; 3 infrastructure\n"
    "failure (QEMU missing, image build failed, the run directory could not hold\n"
    "the run's records); 130 interrupted (SIGINT/SIGTERM; partial results kept).\n"
    "\n"
    "example:\n"
    "  faultline run scenarios/quickstart.yaml\n";

enum {
    OPT_REPLAY = 256,
    OPT_ACCEL,
    OPT_CACHE,
    OPT_NO_FRAMES,
    OPT_NO_PCAP,
    OPT_NO_REPORT,
    OPT_PLAIN,
    OPT_LIVE,
    OPT_RECORD
};

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
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct runner_options o = {0};
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
    struct runner_outcome out;
    struct fl_error *err = NULL;
    runner_run(&o, &out, &err);
    if (err) {
        /* Scenario errors are FILE:LINE:COL lines (one per error) and
         * stand on their own; anything else gets the command's name. */
        const char *file = o.scenario_path;
        if (out.result == RUNNER_INVALID && file && !strncmp(err->msg, file, strlen(file)) &&
            err->msg[strlen(file)] == ':') {
            fprintf(stderr, "%s\n", err->msg);
        } else {
            /* An infrastructure message may quote a guest: shown escaped. */
            char *msg = fl_text_terminal_dup(err->msg);
            fprintf(stderr, "faultline run: %s\n", msg);
            free(msg);
        }
        if (out.result == RUNNER_ERROR) {
            fprintf(stderr, "faultline run: infrastructure failure%s%s\n",
                    out.run_dir ? "; partial results in " : "", out.run_dir ? out.run_dir : "");
        }
        fl_error_free(err);
    }
    int code = CLI_EXIT_INFRA;
    switch (out.result) {
    case RUNNER_PASS:
        code = CLI_EXIT_OK;
        break;
    case RUNNER_FAIL:
        code = CLI_EXIT_CHECK_FAILED;
        break;
    case RUNNER_INVALID:
        code = CLI_EXIT_USAGE;
        break;
    case RUNNER_ERROR:
        code = CLI_EXIT_INFRA;
        break;
    case RUNNER_INTERRUPTED:
        code = CLI_EXIT_INTERRUPTED;
        break;
    }
    runner_outcome_clear(&out);
    return code;
}

const struct cli_command cli_cmd_run = {
    .name = "run",
    .summary = "run a scenario: boot the fleet, play the faults, give a verdict",
    .main = run_main,
};
