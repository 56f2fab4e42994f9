/*
 * The kernel of an image: the bzImage of the kernel package decoded to a
 * vmlinux with a PVH note (elf.c, lz4.c), minus what no guest loads, and
 * the few modules a guest needs, in dependency order.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hv/image.h"

/* Kernel modules the guest needs (virtio-mmio transport, net, blk,
 * serial port for the agent); their dependencies are added from each
 * module's .modinfo and everything is loaded in dependency order. */
static const char *const wanted_modules[] = {"virtio_mmio", "virtio_net", "virtio_blk",
                                             "virtio_console"};

/* ---- kernel and modules ---- */

struct module {
    char *name;
    char *path;
    char *depends;
    bool placed;
};

static char *find_file(const char *dir, const char *name)
{
    DIR *d = opendir(dir);
    if (!d) {
        return NULL;
    }
    char *found = NULL;
    struct dirent *e;
    while (!found && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) {
            continue;
        }
        char *p = fl_xasprintf("%s/%s", dir, e->d_name);
        if (!strcmp(e->d_name, name)) {
            found = p;
            break;
        }
        if (fl_is_dir(p)) {
            found = find_file(p, name);
        }
        free(p);
    }
    closedir(d);
    return found;
}

static bool add_module(struct hv_build *b, const char *moddir, const char *name,
                       struct module **mods, size_t *n, size_t *alloc, int depth,
                       struct fl_error **errp)
{
    for (size_t i = 0; i < *n; i++) {
        if (!strcmp((*mods)[i].name, name)) {
            return true;
        }
    }
    if (depth > 16) {
        fl_error_setf(errp, ELOOP, "kernel module dependencies of '%s' are too deep", name);
        return false;
    }
    char *file = fl_xasprintf("%s.ko", name);
    char *path = find_file(moddir, file);
    if (!path) {
        /* modules.dep spells '-' and '_' alike */
        for (char *c = file; *c; c++) {
            *c = *c == '_' ? '-' : *c;
        }
        path = find_file(moddir, file);
    }
    free(file);
    if (!path) {
        fl_error_setf(errp, ENOENT, "kernel module '%s' not found under '%s'", name, moddir);
        return false;
    }
    size_t size;
    uint8_t *data = (uint8_t *)fl_read_file(path, &size, errp);
    if (!data) {
        free(path);
        return false;
    }
    char *deps = hv_modinfo_depends(data, size);
    free(data);
    if (!deps) {
        fl_error_setf(errp, EINVAL, "'%s' is not a kernel module (no .modinfo)", path);
        free(path);
        return false;
    }
    *mods = fl_xgrow(*mods, alloc, *n + 1, sizeof **mods);
    (*mods)[(*n)++] = (struct module){.name = fl_xstrdup(name), .path = path, .depends = deps};
    char *save = NULL, *copy = fl_xstrdup(deps);
    bool ok = true;
    for (char *d = strtok_r(copy, ",", &save); ok && d; d = strtok_r(NULL, ",", &save)) {
        ok = add_module(b, moddir, d, mods, n, alloc, depth + 1, errp);
    }
    free(copy);
    return ok;
}

static bool depends_placed(const struct module *mods, size_t n, const struct module *m)
{
    char *copy = fl_xstrdup(m->depends), *save = NULL;
    bool ok = true;
    for (char *d = strtok_r(copy, ",", &save); ok && d; d = strtok_r(NULL, ",", &save)) {
        for (size_t i = 0; i < n; i++) {
            if (!strcmp(mods[i].name, d)) {
                ok = mods[i].placed;
            }
        }
    }
    free(copy);
    return ok;
}

/* Copies a kernel module without its appended signature.  Verifying an
 * RSA-4096 signature is slow under TCG (it is emulated), the Debian
 * kernel does not enforce signatures (CONFIG_MODULE_SIG_FORCE is off)
 * and the modules come from the same verified package as the kernel.
 * Layout of a signed module: ELF | signature | struct module_signature
 * (12 bytes, sig_len big-endian in its last 4) | "~Module signature
 * appended~\n". */
static bool copy_module(const char *src, const char *dst, struct fl_error **errp)
{
    static const char magic[] = "~Module signature appended~\n";
    const size_t mlen = sizeof magic - 1;
    size_t size = 0;
    uint8_t *data = (uint8_t *)fl_read_file(src, &size, errp);
    if (!data) {
        return false;
    }
    if (size > mlen + 12 && !memcmp(data + size - mlen, magic, mlen)) {
        const uint8_t *ms = data + size - mlen - 12;
        size_t sig_len = (size_t)ms[8] << 24 | (size_t)ms[9] << 16 | (size_t)ms[10] << 8 | ms[11];
        if (sig_len <= size - mlen - 12) {
            size -= mlen + 12 + sig_len;
        }
    }
    bool ok = fl_write_file(dst, data, size, errp);
    free(data);
    return ok;
}

bool hv_image_kernel(struct hv_build *b, const char *outdir, struct fl_error **errp)
{
    char *kdir = fl_xasprintf("%s/kernel", b->tmp);
    bool ok = hv_deb_unpack(b->kernel.deb, kdir, errp);
    char *bootdir = fl_xasprintf("%s/boot", kdir);
    char *vmlinuz = NULL;
    DIR *d = ok ? opendir(bootdir) : NULL;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (!strncmp(e->d_name, "vmlinuz-", 8)) {
            free(vmlinuz);
            vmlinuz = fl_xasprintf("%s/%s", bootdir, e->d_name);
            free(b->kernel_release);
            b->kernel_release = fl_xstrdup(e->d_name + 8);
        }
    }
    if (d) {
        closedir(d);
    }
    if (ok && !vmlinuz) {
        fl_error_setf(errp, ENOENT, "package %s holds no boot/vmlinuz-*", b->kernel.name);
        ok = false;
    }
    if (ok) {
        hv_build_progress(b, "kernel", b->kernel_release, 0, 0);
        size_t size, vsize;
        uint8_t *bz = (uint8_t *)fl_read_file(vmlinuz, &size, errp);
        uint8_t *vm = NULL;
        if (bz) {
            struct fl_error *err = NULL;
            vm = hv_vmlinux_extract(bz, size, &vsize, &err);
            if (!vm) {
                fl_error_prepend(&err, "%s: ", vmlinuz);
                fl_error_propagate(errp, err);
            }
        }
        if (vm) {
            /* Sections nothing in a faultline guest needs, each at the
             * end of its segment: BPF type information (~4 MB at the end
             * of the read-only segment) and the SME scratch area (4 MB
             * at the end of the image; SME is not used in a guest).
             * Loaded, every guest would hold them twice: in QEMU's copy
             * of the kernel file (kept for resets) and in guest RAM.  The
             * guest sees zeros: /sys/kernel/btf/vmlinux holds no types,
             * BTF-based BPF (CO-RE, fentry) is unavailable, modules log
             * that their BTF does not validate and load anyway. */
            static const char *const unused[] = {".BTF", ".BTF_ids", ".init.scratch"};
            size_t dropped = hv_elf_drop_tail_sections(vm, vsize, unused, FL_ARRAY_LEN(unused));
            fl_log(FL_LOG_DEBUG, "hv", "image: %zu bytes of unused kernel sections not loaded",
                   dropped);
            size_t trimmed = hv_elf_trim_zero_tails(vm, vsize);
            fl_log(FL_LOG_DEBUG, "hv",
                   "image: %zu bytes of zero segment tails not loaded from the "
                   "kernel file",
                   trimmed);
        }
        char *out = fl_xasprintf("%s/vmlinux", outdir);
        ok = vm && fl_write_file(out, vm, vsize, errp);
        free(out);
        free(bz);
        free(vm);
    }
    /* Modules, in dependency order, into the initramfs. */
    char *moddir = ok ? fl_xasprintf("%s/lib/modules/%s", kdir, b->kernel_release) : NULL;
    struct module *mods = NULL;
    size_t n = 0, alloc = 0;
    for (size_t i = 0; ok && i < FL_ARRAY_LEN(wanted_modules); i++) {
        ok = add_module(b, moddir, wanted_modules[i], &mods, &n, &alloc, 0, errp);
    }
    struct fl_buf order = {0};
    char *dst_dir = fl_xasprintf("%s/lib/modules", b->root);
    ok = ok && fl_mkdir_p(dst_dir, 0755, errp);
    for (size_t placed = 0; ok && placed < n;) {
        size_t before = placed;
        for (size_t i = 0; ok && i < n; i++) {
            if (!mods[i].placed && depends_placed(mods, n, &mods[i])) {
                mods[i].placed = true;
                placed++;
                fl_buf_printf(&order, "%s\n", mods[i].name);
                char *dst = fl_xasprintf("%s/%s.ko", dst_dir, mods[i].name);
                ok = copy_module(mods[i].path, dst, errp);
                free(dst);
            }
        }
        if (ok && placed == before) {
            fl_error_setf(errp, ELOOP, "kernel module dependencies form a cycle");
            ok = false;
        }
    }
    if (ok) {
        char *p = fl_xasprintf("%s/etc/fl/modules", b->root);
        ok = fl_mkdir_parent(p, errp) &&
             fl_write_file(p, order.data ? order.data : "", order.size, errp);
        free(p);
    }
    for (size_t i = 0; i < n; i++) {
        free(mods[i].name);
        free(mods[i].path);
        free(mods[i].depends);
    }
    free(mods);
    fl_buf_free(&order);
    free(dst_dir);
    free(moddir);
    free(vmlinuz);
    free(bootdir);
    fl_rm_rf(kdir);
    free(kdir);
    return ok;
}
