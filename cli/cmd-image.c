/*
 * faultline image build|ls|prune — guest images in the cache (hv/).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/core.h"
#include "hv/hv.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: faultline image build [--packages a,b] [--files SRC:DST]... [--cache DIR]\n"
            "                             [--kernel-package NAME] [--quiet]\n"
            "       faultline image ls    [--cache DIR] [--json]   (or: list)\n"
            "       faultline image prune [--cache DIR] [--older-than DAYS] [--downloads]\n"
            "\n"
            "Guest images (kernel + initramfs) are built from Debian packages into a\n"
            "content-addressed cache: $FAULTLINE_CACHE, else $XDG_CACHE_HOME/faultline,\n"
            "else ~/.cache/faultline (without HOME: $XDG_RUNTIME_DIR/faultline, else\n"
            "/tmp/faultline-UID).  The cache must be yours and not writable by others.\n"
            "A second build with the same inputs is a cache hit (its files checked);\n"
            "after the first build everything works offline.  See docs/images.md.\n"
            "\n"
            "build   prints the image key, the kernel and the initrd paths\n"
            "  --packages a,b     extra Debian packages (with their shared libraries)\n"
            "  --files SRC:DST    copy a local file or directory to guest path DST\n"
            "  --kernel-package   kernel package (default linux-image-cloud-amd64)\n"
            "  --quiet            no progress display (also when stdout is no TTY or CI=true)\n"
            "ls      lists cached images, most recently used first\n"
            "prune   removes images unused for DAYS days (default: all), with\n"
            "        --downloads also the cached .deb files\n");
}

struct progress_state {
    bool show;
    char last[160];
};

static void on_progress(void *arg, const char *stage, const char *item, uint64_t done,
                        uint64_t total)
{
    struct progress_state *p = arg;
    if (!p->show) {
        return;
    }
    char line[160];
    if (total) {
        snprintf(line, sizeof line, "%-9s %3u%% %s", stage, (unsigned)(done * 100 / total),
                 item ? item : "");
    } else {
        snprintf(line, sizeof line, "%-9s      %s", stage, item ? item : "");
    }
    if (strcmp(line, p->last)) {
        fprintf(stderr, "\r\033[K%.*s", 100, line);
        fflush(stderr);
        snprintf(p->last, sizeof p->last, "%s", line);
    }
}

static int cmd_build(int argc, char **argv)
{
    static const struct option opts[] = {{"packages", required_argument, NULL, 'p'},
                                         {"files", required_argument, NULL, 'f'},
                                         {"cache", required_argument, NULL, 'c'},
                                         {"kernel-package", required_argument, NULL, 'k'},
                                         {"quiet", no_argument, NULL, 'q'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    struct hv_image_spec spec = {0};
    char **pkgs = NULL, *pkgbuf = NULL;
    size_t n_pkgs = 0, pkgs_alloc = 0;
    struct hv_image_file *files = NULL;
    size_t n_files = 0, files_alloc = 0;
    bool quiet = false;
    int c, rc = CLI_EXIT_OK;
    optind = 1;
    while ((c = getopt_long(argc, argv, "p:f:c:k:qh", opts, NULL)) != -1) {
        switch (c) {
        case 'p': {
            free(pkgbuf);
            pkgbuf = fl_xstrdup(optarg);
            n_pkgs = 0;
            char *save = NULL;
            for (char *t = strtok_r(pkgbuf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                pkgs = fl_xgrow(pkgs, &pkgs_alloc, n_pkgs + 1, sizeof *pkgs);
                pkgs[n_pkgs++] = t;
            }
            break;
        }
        case 'f': {
            char *colon = strrchr(optarg, ':');
            if (!colon || colon == optarg || colon[1] != '/') {
                fprintf(stderr,
                        "faultline image build: --files '%s' must be SRC:DST with DST an "
                        "absolute guest path\n",
                        optarg);
                rc = CLI_EXIT_USAGE;
                goto out;
            }
            *colon = '\0';
            files = fl_xgrow(files, &files_alloc, n_files + 1, sizeof *files);
            files[n_files++] = (struct hv_image_file){.src = optarg, .dst = colon + 1};
            break;
        }
        case 'c':
            spec.cache_dir = optarg;
            break;
        case 'k':
            spec.kernel_package = optarg;
            break;
        case 'q':
            quiet = true;
            break;
        case 'h':
            usage(stdout);
            goto out;
        default:
            usage(stderr);
            rc = CLI_EXIT_USAGE;
            goto out;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "faultline image build: unexpected argument '%s'\n", argv[optind]);
        rc = CLI_EXIT_USAGE;
        goto out;
    }
    spec.packages = (const char *const *)pkgs;
    spec.n_packages = n_pkgs;
    spec.files = files;
    spec.n_files = n_files;
    const char *ci = getenv("CI");
    struct progress_state ps = {.show = !quiet && isatty(STDOUT_FILENO) && isatty(STDERR_FILENO) &&
                                        !(ci && (!strcmp(ci, "true") || !strcmp(ci, "1")))};
    struct hv_image img;
    struct fl_error *err = NULL;
    bool ok = hv_image_build(&spec, &img, on_progress, &ps, &err);
    if (ps.show) {
        fprintf(stderr, "\r\033[K");
    }
    if (!ok) {
        fprintf(stderr, "faultline image build: %s\n", err->msg);
        /* a bad package name or file spec is the user's; the rest is ours */
        rc = err->code == EINVAL ? CLI_EXIT_USAGE : CLI_EXIT_INFRA;
        fl_error_free(err);
        goto out;
    }
    printf("key     %s%s\nkernel  %s\ninitrd  %s\nrelease %s\n", img.key,
           img.cache_hit ? " (cached)" : "", img.kernel, img.initrd, img.kernel_release);
    hv_image_clear(&img);
out:
    free(pkgs);
    free(pkgbuf);
    free(files);
    return rc;
}

static int cmd_ls(int argc, char **argv)
{
    static const struct option opts[] = {{"cache", required_argument, NULL, 'c'},
                                         {"json", no_argument, NULL, 'j'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *cache = NULL;
    bool json = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:jh", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            cache = optarg;
            break;
        case 'j':
            json = true;
            break;
        case 'h':
            usage(stdout);
            return CLI_EXIT_OK;
        default:
            usage(stderr);
            return CLI_EXIT_USAGE;
        }
    }
    struct hv_image_info *infos;
    size_t n;
    struct fl_error *err = NULL;
    if (!hv_image_list(cache, &infos, &n, &err)) {
        fprintf(stderr, "faultline image ls: %s\n", err->msg);
        fl_error_free(err);
        return CLI_EXIT_INFRA;
    }
    if (!json) {
        printf("%-64s  %-22s  %8s  %-16s  %s\n", "KEY", "KERNEL", "SIZE", "LAST USED", "PACKAGES");
    }
    for (size_t i = 0; i < n; i++) {
        time_t t = (time_t)(infos[i].last_used_ns / FL_NS_PER_SEC);
        struct tm tm;
        char when[32];
        strftime(when, sizeof when, "%Y-%m-%d %H:%M", localtime_r(&t, &tm));
        if (json) {
            struct fl_buf b = {0};
            fl_buf_puts(&b, "{\"key\":");
            fl_buf_json_string(&b, infos[i].key);
            fl_buf_puts(&b, ",\"dir\":");
            fl_buf_json_string(&b, infos[i].dir);
            fl_buf_puts(&b, ",\"kernel_release\":");
            fl_buf_json_string(&b, infos[i].kernel_release);
            fl_buf_puts(&b, ",\"packages\":");
            fl_buf_json_string(&b, infos[i].packages);
            fl_buf_printf(&b, ",\"size_bytes\":%llu,\"last_used_ns\":%lld}",
                          (unsigned long long)infos[i].size_bytes,
                          (long long)infos[i].last_used_ns);
            puts(b.data);
            fl_buf_free(&b);
        } else {
            printf("%-64s  %-22s  %6.1fMB  %-16s  %s\n", infos[i].key, infos[i].kernel_release,
                   (double)infos[i].size_bytes / 1e6, when,
                   infos[i].packages[0] ? infos[i].packages : "-");
        }
    }
    hv_image_info_free(infos, n);
    return CLI_EXIT_OK;
}

static int cmd_prune(int argc, char **argv)
{
    static const struct option opts[] = {{"cache", required_argument, NULL, 'c'},
                                         {"older-than", required_argument, NULL, 'o'},
                                         {"downloads", no_argument, NULL, 'd'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *cache = NULL;
    int64_t age = 0;
    bool downloads = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:o:dh", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            cache = optarg;
            break;
        case 'o': {
            char *end;
            errno = 0;
            double days = strtod(optarg, &end);
            if (errno || *end || end == optarg || days < 0 || days > 36500) {
                fprintf(stderr,
                        "faultline image prune: --older-than '%s' is not a number of days "
                        "(0..36500)\n",
                        optarg);
                return CLI_EXIT_USAGE;
            }
            age = (int64_t)(days * 86400.0 * 1e9);
            break;
        }
        case 'd':
            downloads = true;
            break;
        case 'h':
            usage(stdout);
            return CLI_EXIT_OK;
        default:
            usage(stderr);
            return CLI_EXIT_USAGE;
        }
    }
    size_t removed = 0;
    uint64_t freed = 0;
    struct fl_error *err = NULL;
    if (!hv_image_prune(cache, age, downloads, &removed, &freed, &err)) {
        fprintf(stderr, "faultline image prune: %s\n", err->msg);
        fl_error_free(err);
        return CLI_EXIT_INFRA;
    }
    printf("removed %zu image%s, freed %.1f MB\n", removed, removed == 1 ? "" : "s",
           (double)freed / 1e6);
    return CLI_EXIT_OK;
}

static int image_main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
    }
    if (!strcmp(argv[1], "build")) {
        return cmd_build(argc - 1, argv + 1);
    }
    if (!strcmp(argv[1], "ls") || !strcmp(argv[1], "list")) {
        return cmd_ls(argc - 1, argv + 1);
    }
    if (!strcmp(argv[1], "prune")) {
        return cmd_prune(argc - 1, argv + 1);
    }
    fprintf(stderr, "faultline image: '%s' is not a subcommand (build, ls, prune)\n", argv[1]);
    return CLI_EXIT_USAGE;
}

const struct cli_command cli_cmd_image = {
    .name = "image",
    .summary = "build, list and prune guest images (kernel + initramfs)",
    .main = image_main,
};
