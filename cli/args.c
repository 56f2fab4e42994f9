/* Argument helpers shared by the subcommands. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli/cli.h"

bool cli_parse_seed(const char *cmd, const char *value, uint64_t *out)
{
    char *end = NULL;
    errno = 0;
    /* A digit first: strtoull would skip blanks and wrap "-5" around. */
    bool digit = value && isdigit((unsigned char)*value);
    unsigned long long v = digit ? strtoull(value, &end, 0) : 0;
    if (!digit || errno || *end) {
        fprintf(stderr,
                "faultline %s: --seed '%s' is not a seed (valid: a whole number "
                "0..18446744073709551615, decimal or 0x hex)\n",
                cmd, value ? value : "");
        return false;
    }
    *out = v;
    return true;
}

bool cli_parse_count(const char *cmd, const char *opt, const char *value, uint64_t min,
                     uint64_t max, uint64_t *out)
{
    char *end = NULL;
    errno = 0;
    /* A digit first: strtoull would skip blanks and wrap "-5" around. */
    bool digit = value && isdigit((unsigned char)*value);
    unsigned long long v = digit ? strtoull(value, &end, 0) : 0;
    if (!digit || errno || *end || v < min || v > max) {
        fprintf(stderr,
                "faultline %s: %s: '%s' is not a whole number in %" PRIu64 "..%" PRIu64 "\n", cmd,
                opt, value ? value : "", min, max);
        return false;
    }
    *out = v;
    return true;
}
