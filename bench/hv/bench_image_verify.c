/*
 * What checking a cache hit costs (issue 14, item 7): hv_image_verify
 * hashes vmlinux and initrd.cpio (SHA-256) against the manifest.  Reports
 * as JSON lines (DESIGN.md):
 *   hv.image_verify  ms per verification of the default image (best of
 *                    --runs), baseline "read": reading the same files
 *                    without hashing, measured in the same run
 * and a human summary last.
 *
 *   bench_image_verify [--runs N] [IMAGE_DIR]
 *
 * Without IMAGE_DIR the default image is built (a cache hit after the
 * first time: apt-cache only).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hv/image.h"

static double best_ms(bool hash, const char *dir, int runs)
{
    double best = 1e18;
    for (int r = 0; r < runs; r++) {
        int64_t t0 = fl_clock_mono_ns();
        if (hash) {
            struct fl_error *err = NULL;
            if (!hv_image_verify(dir, &err)) {
                fprintf(stderr, "bench_image_verify: %s\n", err->msg);
                exit(3);
            }
        } else {
            static const char *const files[] = {"vmlinux", "initrd.cpio"};
            for (size_t i = 0; i < 2; i++) {
                char *p = fl_xasprintf("%s/%s", dir, files[i]);
                size_t size;
                char *data = fl_read_file(p, &size, NULL);
                if (!data) {
                    fprintf(stderr, "bench_image_verify: cannot read '%s'\n", p);
                    exit(3);
                }
                free(data);
                free(p);
            }
        }
        double ms = (double)(fl_clock_mono_ns() - t0) / 1e6;
        best = ms < best ? ms : best;
    }
    return best;
}

int main(int argc, char **argv)
{
    int runs = 5;
    const char *dir = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--runs") && i + 1 < argc) {
            runs = atoi(argv[++i]);
        } else if (argv[i][0] != '-') {
            dir = argv[i];
        } else {
            fprintf(stderr, "usage: bench_image_verify [--runs N] [IMAGE_DIR]\n");
            return 2;
        }
    }
    struct hv_image img = {0};
    if (!dir) {
        struct hv_image_spec spec = {0};
        struct fl_error *err = NULL;
        if (!hv_image_build(&spec, &img, NULL, NULL, &err)) {
            fprintf(stderr, "bench_image_verify: %s\n", err->msg);
            return 3;
        }
        dir = img.dir;
    }
    uint64_t bytes = fl_tree_size(dir);
    double read_ms = best_ms(false, dir, runs);
    double verify_ms = best_ms(true, dir, runs);
    printf(
        "{\"bench\":\"hv.image_verify\",\"case\":\"default-image\",\"value\":%.1f,\"unit\":\"ms\","
        "\"baseline\":\"read\",\"baseline_value\":%.1f,\"ratio\":%.2f}\n",
        verify_ms, read_ms, read_ms > 0 ? verify_ms / read_ms : 0);
    printf("verifying a cache hit (%.1f MB) takes %.1f ms; reading the files alone %.1f ms "
           "(best of %d)\n",
           (double)bytes / 1e6, verify_ms, read_ms, runs);
    hv_image_clear(&img);
    return 0;
}
