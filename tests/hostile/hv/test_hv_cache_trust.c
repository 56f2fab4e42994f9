/* The image cache under a hostile local user (issue 14, item 7): a cache
 * directory planted by another uid or writable by others is refused with
 * an error naming the path, the owner and the mode; without HOME the
 * fallback is per user; a hit whose files no longer match the SHA-256 in
 * the manifest is detected.  Ownership cases need root (chown to 65534)
 * and are skipped otherwise. */
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

#include "hv/image.h"

static char *scratch(void)
{
    char tmpl[] = "/tmp/fl-hv-trust-XXXXXX";
    assert_non_null(mkdtemp(tmpl));
    return fl_xstrdup(tmpl);
}

/* Every way in: the check itself, image ls (prune lists first) and a
 * build, which must stop before anything else (no apt-cache call). */
static void assert_refused(const char *cache, const char *why1, const char *why2)
{
    struct fl_error *err = NULL;
    assert_false(hv_cache_dir_check(cache, true, NULL, &err));
    assert_non_null(err);
    assert_int_equal(err->code, EPERM);
    assert_non_null(strstr(err->msg, cache));
    assert_non_null(strstr(err->msg, why1));
    assert_non_null(strstr(err->msg, why2));
    fl_error_free(err);
    err = NULL;
    struct hv_image_info *infos = NULL;
    size_t n = 0;
    assert_false(hv_image_list(cache, &infos, &n, &err));
    assert_non_null(err);
    assert_non_null(strstr(err->msg, cache));
    fl_error_free(err);
    err = NULL;
    struct hv_image img;
    struct hv_image_spec spec = {.cache_dir = cache, .kernel_package = "no-such-kernel-pkg"};
    assert_false(hv_image_build(&spec, &img, NULL, NULL, &err));
    assert_int_equal(err->code, EPERM);
    fl_error_free(err);
}

static void test_planted_by_other_uid(void **state)
{
    char *dir = scratch();
    char *cache = fl_xasprintf("%s/faultline", dir);
    assert_int_equal(mkdir(cache, 0755), 0);
    if (chown(cache, 65534, 65534) < 0) {
        fl_rm_rf(dir);
        free(cache);
        free(dir);
        skip(); /* not root */
    }
    assert_refused(cache, "uid 65534", "0755");
    /* nothing was written into it */
    char *images = fl_xasprintf("%s/images", cache);
    assert_false(fl_path_exists(images));
    free(images);
    fl_rm_rf(dir);
    free(cache);
    free(dir);
}

static void test_link_planted_by_other_uid(void **state)
{
    char *dir = scratch();
    char *mine = fl_xasprintf("%s/mine", dir);
    char *cache = fl_xasprintf("%s/faultline", dir);
    assert_int_equal(mkdir(mine, 0700), 0);
    assert_int_equal(symlink(mine, cache), 0);
    if (lchown(cache, 65534, 65534) < 0) {
        fl_rm_rf(dir);
        free(mine), free(cache), free(dir);
        skip();
    }
    struct fl_error *err = NULL;
    assert_false(hv_cache_dir_check(cache, true, NULL, &err));
    assert_non_null(strstr(err->msg, "symbolic link owned by uid 65534"));
    fl_error_free(err);
    fl_rm_rf(dir);
    free(mine), free(cache), free(dir);
}

static void test_group_or_world_writable(void **state)
{
    char *dir = scratch();
    char *cache = fl_xasprintf("%s/faultline", dir);
    assert_int_equal(mkdir(cache, 0700), 0);
    assert_int_equal(chmod(cache, 0775), 0);
    char uid[32];
    snprintf(uid, sizeof uid, "uid %u", (unsigned)geteuid());
    assert_refused(cache, uid, "0775");
    assert_int_equal(chmod(cache, 01777), 0); /* a /tmp-like directory */
    assert_refused(cache, uid, "1777");
    assert_int_equal(chmod(cache, 0755), 0); /* read-only for others: fine */
    assert_true(hv_cache_dir_check(cache, true, NULL, NULL));
    fl_rm_rf(dir);
    free(cache);
    free(dir);
}

static void test_not_a_directory(void **state)
{
    char *dir = scratch();
    char *cache = fl_xasprintf("%s/faultline", dir);
    assert_true(fl_write_file(cache, "x", 1, NULL));
    struct fl_error *err = NULL;
    assert_false(hv_cache_dir_check(cache, true, NULL, &err));
    assert_int_equal(err->code, ENOTDIR);
    fl_error_free(err);
    fl_rm_rf(dir);
    free(cache);
    free(dir);
}

static void test_created_0700_whatever_the_umask(void **state)
{
    char *dir = scratch();
    char *cache = fl_xasprintf("%s/a/b/faultline", dir);
    mode_t old = umask(0);
    bool exists = true;
    assert_true(hv_cache_dir_check(cache, false, &exists, NULL));
    assert_false(exists); /* listing creates nothing */
    assert_false(fl_path_exists(cache));
    assert_true(hv_cache_dir_check(cache, true, &exists, NULL));
    umask(old);
    assert_true(exists);
    struct stat st;
    assert_int_equal(stat(cache, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0700);
    assert_int_equal(st.st_uid, geteuid());
    fl_rm_rf(dir);
    free(cache);
    free(dir);
}

static void test_fallback_without_home_is_per_user(void **state)
{
    const char *vars[] = {"FAULTLINE_CACHE", "XDG_CACHE_HOME", "HOME", "XDG_RUNTIME_DIR"};
    char *saved[4];
    for (size_t i = 0; i < 4; i++) {
        const char *v = getenv(vars[i]);
        saved[i] = v ? fl_xstrdup(v) : NULL;
        unsetenv(vars[i]);
    }
    char *d = hv_image_cache_dir(NULL);
    char *want = fl_xasprintf("/tmp/faultline-%u", (unsigned)geteuid());
    assert_string_equal(d, want); /* was the shared /tmp/.cache/faultline */
    free(d);
    free(want);
    setenv("XDG_RUNTIME_DIR", "/run/user/1000", 1);
    d = hv_image_cache_dir(NULL);
    assert_string_equal(d, "/run/user/1000/faultline");
    free(d);
    setenv("XDG_RUNTIME_DIR", "relative", 1); /* not absolute: ignored */
    d = hv_image_cache_dir(NULL);
    assert_non_null(strstr(d, "/tmp/faultline-"));
    free(d);
    setenv("HOME", "/home/u", 1);
    d = hv_image_cache_dir(NULL);
    assert_string_equal(d, "/home/u/.cache/faultline");
    free(d);
    for (size_t i = 0; i < 4; i++) {
        if (saved[i]) {
            setenv(vars[i], saved[i], 1);
            free(saved[i]);
        } else {
            unsetenv(vars[i]);
        }
    }
}

static void test_sha256_known_answers(void **state)
{
    char hex[65];
    hv_sha256_hex("abc", 3, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    hv_sha256_hex("", 0, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    char *dir = scratch();
    char *p = fl_xasprintf("%s/f", dir);
    /* longer than one read of the file hasher */
    size_t size = (3u << 20) + 7;
    char *data = fl_xmalloc(size);
    for (size_t i = 0; i < size; i++) {
        data[i] = (char)(i * 131 + 7);
    }
    assert_true(fl_write_file(p, data, size, NULL));
    char whole[65];
    hv_sha256_hex(data, size, whole);
    assert_true(hv_sha256_file(p, hex, NULL));
    assert_string_equal(hex, whole);
    free(data);
    free(p);
    fl_rm_rf(dir);
    free(dir);
}

/* A cache entry as the builder leaves it. */
static char *fake_entry(const char *dir)
{
    char *entry = fl_xasprintf("%s/images/k", dir);
    assert_true(fl_mkdir_p(entry, 0755, NULL));
    char *k = fl_xasprintf("%s/vmlinux", entry);
    char *i = fl_xasprintf("%s/initrd.cpio", entry);
    assert_true(fl_write_file(k, "kernel bytes", 12, NULL));
    assert_true(fl_write_file(i, "070701 initrd bytes", 19, NULL));
    free(k);
    free(i);
    struct hv_image_spec spec = {0};
    struct hv_build b = {.spec = &spec,
                         .kernel = {.name = "linux-image-x", .version = "1"},
                         .busybox = {.name = "busybox-static", .version = "2"},
                         .kernel_release = "6.1.0-x"};
    assert_true(hv_image_manifest_write(&b, "k", entry, NULL));
    return entry;
}

static void test_tampered_image_detected(void **state)
{
    char *dir = scratch();
    char *entry = fake_entry(dir);
    struct fl_error *err = NULL;
    assert_true(hv_image_verify(entry, &err));
    /* one byte of the initramfs changed, same size */
    char *i = fl_xasprintf("%s/initrd.cpio", entry);
    assert_true(fl_write_file(i, "070701 initrd bytez", 19, NULL));
    assert_false(hv_image_verify(entry, &err));
    assert_int_equal(err->code, EBADMSG);
    assert_non_null(strstr(err->msg, i));
    assert_non_null(strstr(err->msg, "does not match its manifest"));
    fl_error_free(err);
    err = NULL;
    /* a missing file */
    unlink(i);
    assert_false(hv_image_verify(entry, &err));
    assert_non_null(strstr(err->msg, i));
    fl_error_free(err);
    err = NULL;
    free(i);
    /* a manifest without hashes (an older builder, or planted) */
    free(entry);
    entry = fake_entry(dir);
    char *m = fl_xasprintf("%s/manifest", entry);
    assert_true(fl_write_file(m, "key=k\nkernel_release=x\n", 23, NULL));
    assert_false(hv_image_verify(entry, &err));
    assert_non_null(strstr(err->msg, "records no SHA-256"));
    fl_error_free(err);
    free(m);
    free(entry);
    fl_rm_rf(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_planted_by_other_uid),
        cmocka_unit_test(test_link_planted_by_other_uid),
        cmocka_unit_test(test_group_or_world_writable),
        cmocka_unit_test(test_not_a_directory),
        cmocka_unit_test(test_created_0700_whatever_the_umask),
        cmocka_unit_test(test_fallback_without_home_is_per_user),
        cmocka_unit_test(test_sha256_known_answers),
        cmocka_unit_test(test_tampered_image_detected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
