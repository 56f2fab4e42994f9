/*
 * cli/ — the `faultline` command.  Each subcommand lives in its own file
 * cli/cmd-<name>.c and defines
 *
 *     const struct cli_command cli_cmd_<name> = { ... };
 *
 * (dashes in <name> become underscores).  The table in main.c is
 * generated from the file names by cli/CMakeLists.txt.  Commands parse
 * their arguments and call into the rooms; logic belongs in the rooms.
 */
#ifndef FL_CLI_H
#define FL_CLI_H

#include <stdbool.h>
#include <stdint.h>

/* Exit codes shared by every subcommand (docs/cli.md). */
#define FL_EXIT_CODES(X)                                                                           \
    X(OK, 0, "success; for `run`: every check passed")                                             \
    X(CHECK_FAILED, 1, "`run`: at least one check failed")                                         \
    X(USAGE, 2, "bad command line or invalid scenario/input file")                                 \
    X(INFRA, 3, "infrastructure failure (QEMU missing, image build failed, I/O error)")            \
    X(INTERRUPTED, 130, "interrupted by SIGINT/SIGTERM; partial results kept")

enum cli_exit {
#define CLI_EXIT_ENUM(name, value, doc) CLI_EXIT_##name = value,
    FL_EXIT_CODES(CLI_EXIT_ENUM)
#undef CLI_EXIT_ENUM
};

struct cli_command {
    const char *name;    /* as typed: "link", "image", ... */
    const char *summary; /* one line for `faultline --help` */
    /* argv[0] is the command name; returns an exit code (enum cli_exit).
     * Must handle `--help`. */
    int (*main)(int argc, char **argv);
};

/* Parses a --seed value (decimal or 0x hex, 0..UINT64_MAX).  On error
 * prints "faultline CMD: --seed 'VALUE' is not a seed (valid: ...)" to
 * stderr and returns false. */
bool cli_parse_seed(const char *cmd, const char *value, uint64_t *out);

/* Parses an option's whole number in min..max (decimal, or 0x hex).  On
 * error prints "faultline CMD: OPT: 'VALUE' is not a whole number in
 * MIN..MAX" to stderr and returns false. */
bool cli_parse_count(const char *cmd, const char *opt, const char *value, uint64_t min,
                     uint64_t max, uint64_t *out);

#endif /* FL_CLI_H */
