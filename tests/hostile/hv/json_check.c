/* Reads records from stdin (u32 little-endian size, then the bytes) and
 * writes one character per record: '1' when fl_json_parse accepts it, '0'
 * when it rejects it.  The other side of json_oracle.py. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/core.h"

int main(void)
{
    for (;;) {
        uint8_t len[4];
        if (fread(len, 1, 4, stdin) != 4) {
            break;
        }
        size_t size =
            (size_t)len[0] | (size_t)len[1] << 8 | (size_t)len[2] << 16 | (size_t)len[3] << 24;
        char *doc = fl_xmalloc(size + 1);
        if (fread(doc, 1, size, stdin) != size) {
            fprintf(stderr, "json_check: truncated record\n");
            return 2;
        }
        doc[size] = '\0';
        struct fl_error *err = NULL;
        struct fl_json *j = fl_json_parse(doc, size, &err);
        putchar(j ? '1' : '0');
        fl_json_free(j);
        fl_error_free(err);
        free(doc);
    }
    putchar('\n');
    return 0;
}
