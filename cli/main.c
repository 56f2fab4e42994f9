/* The `faultline` entry point: dispatches to the subcommand table. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "core/core.h"

#define FL_CLI_COMMAND(name) extern const struct cli_command cli_cmd_##name;
#include "cli-commands.inc"
#undef FL_CLI_COMMAND

static const struct cli_command *const commands[] = {
#define FL_CLI_COMMAND(name) &cli_cmd_##name,
#include "cli-commands.inc"
#undef FL_CLI_COMMAND
    NULL,
};

static void usage(FILE *out)
{
    fprintf(out,
            "faultline %s - a distributed-system emulator\n\n"
            "usage: faultline <command> [options]\n\ncommands:\n",
            FL_VERSION);
    for (size_t i = 0; commands[i]; i++) {
        fprintf(out, "  %-10s %s\n", commands[i]->name, commands[i]->summary);
    }
    fprintf(out, "\n`faultline <command> --help` describes a command.\n"
                 "Exit codes:\n");
#define CLI_EXIT_DOC(name, value, doc) fprintf(out, "  %3d  %s\n", value, doc);
    FL_EXIT_CODES(CLI_EXIT_DOC)
#undef CLI_EXIT_DOC
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return CLI_EXIT_OK;
    }
    if (!strcmp(argv[1], "--version")) {
        return cli_cmd_version.main(1, (char *[]){"version", NULL});
    }
    const struct cli_command *best = NULL;
    size_t best_distance = (size_t)-1;
    for (size_t i = 0; commands[i]; i++) {
        if (!strcmp(argv[1], commands[i]->name)) {
            return commands[i]->main(argc - 1, argv + 1);
        }
        size_t d = fl_edit_distance(argv[1], commands[i]->name);
        if (d < best_distance) {
            best_distance = d;
            best = commands[i];
        }
    }
    fprintf(stderr, "faultline: '%s' is not a command", argv[1]);
    if (best && best_distance <= 2) {
        fprintf(stderr, "; did you mean '%s'?", best->name);
    }
    fprintf(stderr, " (see 'faultline --help')\n");
    return CLI_EXIT_USAGE;
}
