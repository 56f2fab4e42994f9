/*
 * Bundles (hv/record.h, `faultline bundle`): a fake recorded run packed
 * and unpacked with the system tar and zstd, replayable from a fresh
 * directory once the run and the image are gone; bad files refused,
 * naming the file.  No QEMU.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "hv/record.h"

static char *tmp; /* a directory for each test */

static int setup(void **state)
{
    (void)state;
    tmp = fl_xstrdup("/tmp/fl-bundle-test-XXXXXX");
    assert_non_null(mkdtemp(tmp));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    fl_rm_rf(tmp);
    free(tmp);
    return 0;
}

static void put(const char *path, const char *text)
{
    struct fl_error *err = NULL;
    assert_true(fl_mkdir_parent(path, &err));
    assert_true(fl_write_file(path, text, strlen(text), &err));
}

static char *slurp(const char *path)
{
    size_t size;
    char *t = fl_read_file(path, &size, NULL);
    assert_non_null(t);
    return t;
}

/* tmp/run/rr/<node>/<k>/ with a segment.json booting tmp/image/vmlinux. */
static void fake_segment(const char *node, unsigned k)
{
    char *d = fl_xasprintf("%s/run/rr/%s/%u", tmp, node, k);
    struct fl_error *err = NULL;
    assert_true(fl_mkdir_p(d, 0755, &err));
    struct hv_rr_segment s;
    memset(&s, 0, sizeof s);
    s.node = fl_xstrdup(node);
    s.index = k;
    s.qemu_path = fl_xstrdup("/usr/bin/qemu-system-x86_64");
    s.qemu_version = fl_xstrdup("7.2.22");
    s.qemu_package = fl_xstrdup("");
    s.image_key = fl_xstrdup("key1");
    char *kernel = fl_xasprintf("%s/image/vmlinux", tmp);
    char *initrd = fl_xasprintf("%s/image/initrd.cpio", tmp);
    const char *rep[] = {
        "/usr/bin/qemu-system-x86_64", "-kernel", kernel, "-initrd", initrd, "-S", NULL};
    s.record_argv = fl_xcalloc(2, sizeof(char *));
    s.record_argv[0] = fl_xstrdup("qemu");
    s.replay_argv = fl_xcalloc(7, sizeof(char *));
    for (size_t i = 0; rep[i]; i++) {
        s.replay_argv[i] = fl_xstrdup(rep[i]);
    }
    s.log = fl_xstrdup(HV_RR_LOG_ZST);
    s.end = HV_RR_END_QUIT;
    s.has_icount = true;
    s.icount = 1000 + k;
    char *p = fl_xasprintf("%s/" HV_RR_SEGMENT_FILE, d);
    assert_true(hv_rr_segment_write(p, &s, &err));
    free(p);
    p = fl_xasprintf("%s/console.log", d);
    put(p, node);
    free(p);
    hv_rr_segment_clear(&s);
    free(kernel);
    free(initrd);
    free(d);
}

/* A run with n1 (one segment, a sparse 64 MiB disk) and n2 (two). */
static void fake_run(void)
{
    char *p = fl_xasprintf("%s/image/vmlinux", tmp);
    put(p, "KERNEL");
    free(p);
    p = fl_xasprintf("%s/image/initrd.cpio", tmp);
    put(p, "INITRD");
    free(p);
    fake_segment("n1", 0);
    fake_segment("n2", 0);
    fake_segment("n2", 1);
    p = fl_xasprintf("%s/run/rr/n1/0/disk-0.img", tmp);
    put(p, "");
    assert_int_equal(truncate(p, 64 << 20), 0);
    free(p);
    p = fl_xasprintf("%s/run/run.db", tmp); /* not for replay: left out */
    put(p, "db");
    free(p);
}

static char *pack(const char *out_name, const char *const *nodes, size_t n, bool no_image,
                  struct fl_error **err)
{
    char *run = fl_xasprintf("%s/run", tmp);
    char *out = fl_xasprintf("%s/%s", tmp, out_name);
    struct hv_rr_bundle_opts o = {
        .run_dir = run, .nodes = nodes, .n_nodes = n, .out = out, .no_image = no_image};
    bool ok = hv_rr_bundle_pack(&o, err);
    free(run);
    if (!ok) {
        free(out);
        return NULL;
    }
    return out;
}

static void test_roundtrip(void **state)
{
    (void)state;
    fake_run();
    struct fl_error *err = NULL;
    char *bundle = pack("b.tar.zst", NULL, 0, false, &err);
    if (!bundle) {
        fail_msg("pack: %s", err->msg);
    }
    /* zstd-compressed (its magic), and smaller than the disk it holds */
    char *head = slurp(bundle);
    assert_memory_equal(head, "\x28\xb5\x2f\xfd", 4);
    free(head);
    struct stat st;
    assert_int_equal(stat(bundle, &st), 0);
    assert_true(st.st_size < (1 << 20));
    /* the run and the image are gone: the bundle alone */
    char *p = fl_xasprintf("%s/run", tmp);
    fl_rm_rf(p);
    free(p);
    p = fl_xasprintf("%s/image", tmp);
    fl_rm_rf(p);
    free(p);

    char *dir = NULL;
    if (!hv_rr_bundle_unpack(bundle, &dir, &err)) {
        fail_msg("unpack: %s", err->msg);
    }
    char *rr = fl_xasprintf("%s/rr", dir);
    size_t n = 0;
    char **nodes = hv_rr_list_nodes(rr, &n);
    assert_int_equal(n, 2);
    assert_string_equal(nodes[0], "n1");
    assert_string_equal(nodes[1], "n2");
    hv_rr_list_free(nodes, n);
    p = fl_xasprintf("%s/n2", rr);
    unsigned *segs = hv_rr_list_segments(p, &n);
    assert_int_equal(n, 2);
    assert_int_equal(segs[1], 1);
    free(segs);
    free(p);
    /* the disk came back whole and sparse */
    p = fl_xasprintf("%s/n1/0/disk-0.img", rr);
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_size, 64 << 20);
    assert_true(st.st_blocks * 512 < (1 << 20));
    free(p);
    p = fl_xasprintf("%s/n2/1/console.log", rr);
    char *t = slurp(p);
    assert_string_equal(t, "n2");
    free(t);
    free(p);
    /* the segment boots the bundled kernel and initrd */
    p = fl_xasprintf("%s/n2/1/" HV_RR_SEGMENT_FILE, rr);
    struct hv_rr_segment s;
    assert_true(hv_rr_segment_read(p, &s, &err));
    assert_true(s.icount == 1001);
    char *want = fl_xasprintf("%s/image/key1/vmlinux", dir);
    assert_string_equal(s.replay_argv[2], want);
    t = slurp(want);
    assert_string_equal(t, "KERNEL");
    free(t);
    free(want);
    want = fl_xasprintf("%s/image/key1/initrd.cpio", dir);
    assert_string_equal(s.replay_argv[4], want);
    free(want);
    hv_rr_segment_clear(&s);
    free(p);
    /* what replay does not read stays out */
    p = fl_xasprintf("%s/run.db", dir);
    assert_int_not_equal(access(p, F_OK), 0);
    free(p);
    p = fl_xasprintf("%s/" HV_RR_BUNDLE_MARK, dir);
    t = slurp(p);
    assert_non_null(strstr(t, "\"format\":\"faultline-bundle\",\"version\":1,\"run\":\"run\","
                              "\"nodes\":[\"n1\",\"n2\"],\"image\":true"));
    free(t);
    free(p);
    free(rr);
    fl_rm_rf(dir);
    free(dir);
    free(bundle);
}

/* Named nodes only, uncompressed (.tar), without the image: the segment
 * keeps its image paths. */
static void test_some_nodes_plain(void **state)
{
    (void)state;
    fake_run();
    struct fl_error *err = NULL;
    const char *only[] = {"n2"};
    char *bundle = pack("b.tar", only, 1, true, &err);
    if (!bundle) {
        fail_msg("pack: %s", err->msg);
    }
    char *t = slurp(bundle); /* not compressed: a tar header, ustar at 257 */
    assert_memory_equal(t + 257, "ustar", 5);
    free(t);
    char *dir = NULL;
    assert_true(hv_rr_bundle_unpack(bundle, &dir, &err));
    char *p = fl_xasprintf("%s/rr/n1", dir);
    assert_int_not_equal(access(p, F_OK), 0);
    free(p);
    p = fl_xasprintf("%s/image", dir);
    assert_int_not_equal(access(p, F_OK), 0);
    free(p);
    p = fl_xasprintf("%s/rr/n2/0/" HV_RR_SEGMENT_FILE, dir);
    struct hv_rr_segment s;
    assert_true(hv_rr_segment_read(p, &s, &err));
    char *want = fl_xasprintf("%s/image/vmlinux", tmp);
    assert_string_equal(s.replay_argv[2], want);
    free(want);
    hv_rr_segment_clear(&s);
    free(p);
    fl_rm_rf(dir);
    free(dir);
    free(bundle);
}

static void expect_pack_error(const char *const *nodes, size_t n, bool no_image, const char *want)
{
    struct fl_error *err = NULL;
    char *b = pack("bad.tar.zst", nodes, n, no_image, &err);
    assert_null(b);
    assert_non_null(err);
    if (!strstr(err->msg, want)) {
        fail_msg("expected '%s' in '%s'", want, err->msg);
    }
    fl_error_free(err);
    char *p = fl_xasprintf("%s/bad.tar.zst", tmp);
    assert_int_not_equal(access(p, F_OK), 0);
    char *part = fl_xasprintf("%s.part", p);
    assert_int_not_equal(access(part, F_OK), 0);
    free(part);
    free(p);
}

static void test_pack_refused(void **state)
{
    (void)state;
    expect_pack_error(NULL, 0, false, "/run' holds no recording (no rr/ directory)");
    fake_run();
    const char *n9[] = {"n9"};
    expect_pack_error(n9, 1, false, "node 'n9' was not recorded in '");
    expect_pack_error(n9, 1, false, "(recorded: n1, n2)");
    const char *dots[] = {".."};
    expect_pack_error(dots, 1, false, "node '..' was not recorded");
    /* the image must be there (or left out) */
    char *p = fl_xasprintf("%s/image/vmlinux", tmp);
    unlink(p);
    expect_pack_error(NULL, 0, false, "n1 segment 0: its guest image file '");
    expect_pack_error(NULL, 0, false, "bundle with --no-image");
    free(p);
    struct fl_error *err = NULL;
    char *b = pack("ok.tar.zst", NULL, 0, true, &err);
    assert_non_null(b);
    free(b);
}

static void expect_unpack_error(const char *bundle, const char *want)
{
    char *dir = (char *)"untouched";
    struct fl_error *err = NULL;
    assert_false(hv_rr_bundle_unpack(bundle, &dir, &err));
    assert_null(dir);
    assert_non_null(err);
    if (!strstr(err->msg, want) || !strstr(err->msg, bundle)) {
        fail_msg("expected '%s' and the file name in '%s'", want, err->msg);
    }
    fl_error_free(err);
}

static void test_unpack_refused(void **state)
{
    (void)state;
    char *scratch = fl_xasprintf("%s/scratch", tmp);
    assert_int_equal(mkdir(scratch, 0700), 0);
    setenv("TMPDIR", scratch, 1);
    char *p = fl_xasprintf("%s/text.tar.zst", tmp);
    put(p, "this is not a tar file\n");
    expect_unpack_error(p, "is not a faultline bundle, or it is damaged or truncated (tar: This "
                           "does not look like a tar archive)");
    free(p);
    p = fl_xasprintf("%s/missing.tar.zst", tmp);
    expect_unpack_error(p, "cannot read");
    free(p);
    expect_unpack_error(tmp, "is not a bundle file");
    /* a tar that is not a bundle */
    p = fl_xasprintf("%s/other.tar", tmp);
    char *q = fl_xasprintf("%s/other", tmp);
    put(q, "x");
    const char *argv[] = {"tar", "-cf", p, "-C", tmp, "other", NULL};
    assert_int_equal(hv_rr_run_tool(argv, NULL, NULL, NULL), 0);
    expect_unpack_error(p, "is not a faultline bundle (it has no faultline-bundle.json");
    free(q);
    free(p);
    /* a truncated bundle */
    fake_run();
    struct fl_error *err = NULL;
    char *b = pack("t.tar.zst", NULL, 0, false, &err);
    assert_non_null(b);
    struct stat st;
    assert_int_equal(stat(b, &st), 0);
    assert_int_equal(truncate(b, st.st_size / 2), 0);
    expect_unpack_error(b, "damaged or truncated (tar: ");
    free(b);
    /* no failure left its temporary directory behind */
    assert_int_equal(rmdir(scratch), 0);
    unsetenv("TMPDIR");
    free(scratch);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_some_nodes_plain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pack_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unpack_refused, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
