/*
 * Corpus replay without libFuzzer: runs a fuzz target's
 * LLVMFuzzerTestOneInput over every file of the directories (or files)
 * given, so the kept corpora -- crash reproducers included -- are a
 * regression test in every build, the sanitizer build among them.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/core.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t replayed;

static int replay_file(const char *path)
{
    struct fl_error *err = NULL;
    size_t size = 0;
    char *data = fl_read_file(path, &size, &err);
    if (!data) {
        fprintf(stderr, "replay: %s\n", err->msg);
        fl_error_free(err);
        return 1;
    }
    LLVMFuzzerTestOneInput((const uint8_t *)data, size);
    free(data);
    replayed++;
    return 0;
}

static int replay(const char *path)
{
    struct stat st;
    if (stat(path, &st) < 0) {
        fprintf(stderr, "replay: cannot stat '%s'\n", path);
        return 1;
    }
    if (!S_ISDIR(st.st_mode)) {
        return replay_file(path);
    }
    struct dirent **names;
    int n = scandir(path, &names, NULL, alphasort);
    if (n < 0) {
        fprintf(stderr, "replay: cannot read '%s'\n", path);
        return 1;
    }
    int bad = 0;
    for (int i = 0; i < n; i++) {
        if (names[i]->d_name[0] != '.') {
            char *child = fl_xasprintf("%s/%s", path, names[i]->d_name);
            bad |= replay(child);
            free(child);
        }
        free(names[i]);
    }
    free(names);
    return bad;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR|FILE...\n", argv[0]);
        return 2;
    }
    int bad = 0;
    for (int i = 1; i < argc; i++) {
        bad |= replay(argv[i]);
    }
    printf("replayed %zu inputs\n", replayed);
    return bad || replayed == 0;
}
