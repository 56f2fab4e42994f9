/* Argument helpers shared by the subcommands. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli/cli.h"

bool cli_parse_seed(const char *cmd, const char *value, uint64_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = value && *value && *value != '-' ? strtoull(value, &end, 0) : 0;
    if (!value || !*value || *value == '-' || errno || *end) {
        fprintf(stderr,
                "faultline %s: --seed '%s' is not a seed (valid: a whole number "
                "0..18446744073709551615, decimal or 0x hex)\n",
                cmd, value ? value : "");
        return false;
    }
    *out = v;
    return true;
}
