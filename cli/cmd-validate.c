/* faultline validate FILE [--dump] [--seed N] */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/core.h"
#include "topology/topology.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: faultline validate FILE [--dump] [--seed N]\n"
                 "\n"
                 "Checks a scenario file.  Prints nothing and exits 0 when it is valid; otherwise\n"
                 "prints every error found, one per line (FILE:LINE:COL: key.path: message), and\n"
                 "exits 2.\n"
                 "\n"
                 "  --dump      print the normalized model as JSON: every default resolved, every\n"
                 "              address assigned, the timeline expanded (nemesis schedules drawn)\n"
                 "  --seed N    use seed N instead of run.seed (a random seed is drawn when the\n"
                 "              file has none; --dump shows it)\n"
                 "  --help      this text\n"
                 "\n"
                 "The format is described in docs/scenario-format.md.\n");
}

static int validate_main(int argc, char **argv)
{
    const char *file = NULL;
    bool dump = false;
    bool have_seed = false;
    uint64_t seed = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return CLI_EXIT_OK;
        } else if (!strcmp(a, "--dump")) {
            dump = true;
        } else if (!strcmp(a, "--seed") || !strncmp(a, "--seed=", 7)) {
            const char *v = a[6] == '=' ? a + 7 : (i + 1 < argc ? argv[++i] : NULL);
            if (!cli_parse_seed("validate", v, &seed)) {
                return CLI_EXIT_USAGE;
            }
            have_seed = true;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr,
                    "faultline validate: unknown option '%s' (valid: --dump, --seed N, --help)\n",
                    a);
            return CLI_EXIT_USAGE;
        } else if (file) {
            fprintf(stderr, "faultline validate: one scenario file at a time ('%s' and '%s')\n",
                    file, a);
            return CLI_EXIT_USAGE;
        } else {
            file = a;
        }
    }
    if (!file) {
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    struct fl_error *err = NULL;
    struct topo_scenario *s = topo_load_file_seed(file, have_seed ? &seed : NULL, &err);
    if (!s) {
        fprintf(stderr, "%s\n", err ? err->msg : "invalid scenario");
        fl_error_free(err);
        return CLI_EXIT_USAGE;
    }
    if (dump) {
        struct fl_buf b = {0};
        topo_dump_json(s, &b);
        fputs(b.data ? b.data : "{}", stdout);
        fputc('\n', stdout);
        fl_buf_free(&b);
    }
    topo_scenario_free(s);
    if (fflush(stdout) != 0) {
        fprintf(stderr, "faultline validate: cannot write the output: %s\n", strerror(errno));
        return CLI_EXIT_INFRA;
    }
    return CLI_EXIT_OK;
}

const struct cli_command cli_cmd_validate = {
    .name = "validate",
    .summary = "check a scenario file (and print its normalized model with --dump)",
    .main = validate_main,
};
