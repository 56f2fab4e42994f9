/* faultline bundle: what replaying recorded nodes of a run needs, in one
 * file (docs/record-replay.md); `faultline replay BUNDLE` reads it. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "hv/record.h"

static const char usage_text[] =
    "usage: faultline bundle RUN [NODE...] [-o FILE] [--no-image]\n"
    "\n"
    "Packs what 'faultline replay' needs to replay the recorded NODEs of RUN\n"
    "(default: every recorded node) into one file, for a CI artifact or another\n"
    "machine: each node's segments (rr/<node>/: logs, disks at segment start,\n"
    "console and agent transcripts, command lines) and the guest kernel and\n"
    "initrd they boot.  'faultline replay FILE NODE' and 'faultline replay FILE\n"
    "--verify' read it as they read a run directory.\n"
    "\n"
    "options:\n"
    "  -o, --output FILE  the bundle to write (default: RUN.bundle.tar.zst); a\n"
    "                     name ending in .tar is not compressed, any other is\n"
    "                     compressed with zstd\n"
    "      --no-image     leave the guest kernel and initrd out (smaller; the\n"
    "                     replaying machine must have the image in its cache)\n"
    "  -h, --help         this text\n"
    "\n"
    "exit codes: 0 written; 2 bad command line, RUN not recorded or a NODE not\n"
    "recorded in it; 3 the file could not be written.\n"
    "\n"
    "example:\n"
    "  faultline run scenario.yaml --record -o runs/r\n"
    "  faultline bundle runs/r n2 -o r-n2.tar.zst\n"
    "  faultline replay r-n2.tar.zst n2\n";

enum { OPT_NO_IMAGE = 256 };

static int bundle_main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"output", required_argument, NULL, 'o'},
        {"no-image", no_argument, NULL, OPT_NO_IMAGE},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct hv_rr_bundle_opts o = {0};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'o':
            o.out = optarg;
            break;
        case OPT_NO_IMAGE:
            o.no_image = true;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return CLI_EXIT_OK;
        default:
            fputs("(see 'faultline bundle --help')\n", stderr);
            return CLI_EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        fputs("faultline bundle: no run directory given\n", stderr);
        fputs(usage_text, stderr);
        return CLI_EXIT_USAGE;
    }
    o.run_dir = argv[optind++];
    o.nodes = (const char *const *)argv + optind;
    o.n_nodes = (size_t)(argc - optind);
    struct stat st;
    if (stat(o.run_dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "faultline bundle: '%s' is not a run directory\n", o.run_dir);
        return CLI_EXIT_USAGE;
    }
    char *def = NULL;
    if (!o.out) {
        size_t len = strlen(o.run_dir);
        while (len > 1 && o.run_dir[len - 1] == '/') {
            len--;
        }
        def = fl_xasprintf("%.*s.bundle.tar.zst", (int)len, o.run_dir);
        o.out = def;
    }
    struct fl_error *err = NULL;
    int code = CLI_EXIT_OK;
    if (!hv_rr_bundle_pack(&o, &err)) {
        fprintf(stderr, "faultline bundle: %s\n", err->msg);
        code = err->code == ENOENT ? CLI_EXIT_USAGE : CLI_EXIT_INFRA;
        fl_error_free(err);
    } else {
        if (stat(o.out, &st) == 0) {
            printf("%s (%.1f MiB)\n", o.out, (double)st.st_size / (1 << 20));
        }
    }
    free(def);
    return code;
}

const struct cli_command cli_cmd_bundle = {
    .name = "bundle",
    .summary = "pack recorded nodes of a run into one file for 'faultline replay'",
    .main = bundle_main,
};
