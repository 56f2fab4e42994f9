/* Levenshtein distance, for the "did you mean ...?" of every parser
 * (scenario keys, CLI commands, impairment words). */
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

/* One row of the classic dynamic programme: O(len(a) * len(b)) time,
 * O(len(b)) memory. */
size_t fl_edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    size_t *row = fl_xcalloc(lb + 1, sizeof *row);
    for (size_t j = 0; j <= lb; j++) {
        row[j] = j;
    }
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            size_t v = FL_MIN(row[j] + 1, row[j - 1] + 1);
            row[j] = FL_MIN(v, diag + cost);
            diag = up;
        }
    }
    size_t d = row[lb];
    free(row);
    return d;
}
