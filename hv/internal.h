/*
 * hv/ internals shared between its files and its unit tests.  Not part
 * of the public API (hv/hv.h).
 */
#ifndef FL_HV_INTERNAL_H
#define FL_HV_INTERNAL_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/core.h"
#include "hv/hv.h"

/* ---- lz4.c: the LZ4 "legacy" frame format the kernel uses ---- */

/* Decodes one LZ4 block into dst (capacity dst_cap).  Returns the decoded
 * size, or -EINVAL (malformed, offset before the start) or -ENOSPC. */
ssize_t hv_lz4_block_decode(const uint8_t *src, size_t src_size, uint8_t *dst, size_t dst_cap);
/* Decodes a legacy frame (magic 02 21 4c 18, then blocks of u32le
 * compressed size + data, each up to 8 MiB decoded) starting at src.
 * Stops at the end of input or at a block size that cannot be a block
 * (the kernel appends its 4-byte uncompressed size after the last
 * block).  Returns a malloc'd buffer and its size, or NULL with *errp. */
uint8_t *hv_lz4_legacy_decode(const uint8_t *src, size_t src_size, size_t *out_size,
                              struct fl_error **errp);

/* ---- elf.c ---- */

/* True when `data` is an ELF64 x86-64 executable carrying a Xen PVH entry
 * note (XEN_ELFNOTE_PHYS32_ENTRY, type 18). */
bool hv_elf_has_pvh_note(const uint8_t *data, size_t size);
/* Finds the first LZ4 legacy magic in a bzImage and decodes the kernel
 * from there; checks the result has a PVH note. */
uint8_t *hv_vmlinux_extract(const uint8_t *bzimage, size_t size, size_t *out_size,
                            struct fl_error **errp);
/* Shrinks each PT_LOAD's p_filesz to exclude its trailing zero bytes
 * (p_memsz unchanged: the loader zero-fills them, as ELF specifies).
 * QEMU then never touches those pages of the kernel file (less RSS per
 * guest: .bss, .brk and .init.scratch are ~10 MB of zeros in the
 * Debian kernel).  Returns the bytes no longer loaded from the file. */
size_t hv_elf_trim_zero_tails(uint8_t *data, size_t size);
/* Cuts the named sections off the end of each PT_LOAD segment, in memory
 * (p_memsz) and in the file (p_filesz): the loader neither copies nor
 * zero-fills them, so those guest pages stay untouched (QEMU 7.2 does
 * zero-fill p_memsz beyond p_filesz).  Only sections that end the
 * segment, possibly several in a row, are cut, and then the segment ends
 * with the last section that stays.  Returns the bytes of memory no
 * longer loaded; 0 for anything not a valid ELF64 with section headers. */
size_t hv_elf_drop_tail_sections(uint8_t *data, size_t size, const char *const *names,
                                 size_t n_names);
/* ELF dynamic information of a shared object or executable. */
struct hv_elf_deps {
    char **needed; /* DT_NEEDED sonames */
    size_t n_needed;
    char *runpath; /* DT_RUNPATH or DT_RPATH, NULL if none */
    char *interp;  /* PT_INTERP, NULL if none */
};
/* Returns 1 with *deps filled for a dynamic ELF64 file, 0 when the file
 * is not ELF (or is a static ELF: deps empty), -errno on malformed ELF. */
int hv_elf_read_deps(const uint8_t *data, size_t size, struct hv_elf_deps *deps);
void hv_elf_deps_clear(struct hv_elf_deps *deps);
/* The `depends=` field of a kernel module's .modinfo section (a
 * comma-separated list, "" when none).  NULL when the file is no module. */
char *hv_modinfo_depends(const uint8_t *data, size_t size);

/* ---- cpio.c: newc writer (what the kernel unpacks as initramfs) ---- */

struct hv_cpio;
struct hv_cpio *hv_cpio_create(const char *path, struct fl_error **errp);
/* mode includes the file type bits (S_IFREG, S_IFDIR, S_IFLNK).  For a
 * symlink, data is the target.  Paths are relative ("bin/sh"). */
bool hv_cpio_add(struct hv_cpio *c, const char *path, mode_t mode, const void *data, size_t size,
                 struct fl_error **errp);
/* Writes the trailer and closes.  Returns false on any earlier error. */
bool hv_cpio_finish(struct hv_cpio *c, struct fl_error **errp);
void hv_cpio_destroy(struct hv_cpio *c); /* abandons; accepts NULL */

/* ---- script.c: the per-node setup script the agent runs ---- */

/* Appends s single-quoted for sh. */
void hv_sh_quote(struct fl_buf *b, const char *s);
/* The setup script for a node (validated config). */
char *hv_setup_script(const struct hv_node_config *cfg);
/* IPv4 `addr` lies in the subnet of `cidr` ("a.b.c.d/len"; NULL or IPv6:
 * false). */
bool hv_ipv4_in_cidr(const char *cidr, struct in_addr addr);
/* `addr` is the address of one of cfg's NICs. */
bool hv_ipv4_is_own(const struct hv_node_config *cfg, struct in_addr addr);
/* Stable MAC for NIC `index` of node `name` (52:54:00 + hash). */
void hv_default_mac(const char *name, size_t index, char out[18]);
bool hv_mac_valid(const char *mac);
bool hv_cidr_valid(const char *cidr);
bool hv_ip_valid(const char *ip);
bool hv_name_valid(const char *name);

/* ---- accel.c ---- */

/* For tests: resolve from given cpuinfo text and whether /dev/kvm opens. */
enum hv_accel hv_accel_decide(const char *cpuinfo, bool kvm_opens, const char **why);

#endif /* FL_HV_INTERNAL_H */
