/*
 * Just enough ELF64 reading for the image builder, with every offset
 * bounds-checked (the input comes from downloaded packages):
 *   - the kernel's PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY),
 *   - DT_NEEDED / DT_RUNPATH / PT_INTERP of executables and libraries,
 *   - the .modinfo `depends=` of kernel modules.
 */
#include <elf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hv/internal.h"

#define XEN_ELFNOTE_PHYS32_ENTRY 18

static bool range_ok(size_t size, uint64_t off, uint64_t len)
{
    return off <= size && len <= size - off;
}

/* Headers are copied out (memcpy): the input need not be aligned. */
static bool elf64(const uint8_t *data, size_t size, Elf64_Ehdr *eh)
{
    if (size < sizeof(Elf64_Ehdr) || memcmp(data, ELFMAG, SELFMAG) ||
        data[EI_CLASS] != ELFCLASS64 || data[EI_DATA] != ELFDATA2LSB) {
        return false;
    }
    memcpy(eh, data, sizeof *eh);
    return true;
}

static bool phdrs_ok(size_t size, const Elf64_Ehdr *eh)
{
    return eh->e_phentsize == sizeof(Elf64_Phdr) &&
           range_ok(size, eh->e_phoff, (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr));
}

static Elf64_Phdr phdr(const uint8_t *data, const Elf64_Ehdr *eh, size_t i)
{
    Elf64_Phdr ph;
    memcpy(&ph, data + eh->e_phoff + i * sizeof ph, sizeof ph);
    return ph;
}

bool hv_elf_has_pvh_note(const uint8_t *data, size_t size)
{
    Elf64_Ehdr eh;
    if (!elf64(data, size, &eh) || eh.e_machine != EM_X86_64 || eh.e_type != ET_EXEC ||
        !phdrs_ok(size, &eh)) {
        return false;
    }
    for (size_t i = 0; i < eh.e_phnum; i++) {
        Elf64_Phdr ph = phdr(data, &eh, i);
        if (ph.p_type != PT_NOTE || !range_ok(size, ph.p_offset, ph.p_filesz)) {
            continue;
        }
        const uint8_t *p = data + ph.p_offset;
        size_t left = ph.p_filesz;
        while (left >= 12) {
            uint32_t namesz, descsz, type;
            memcpy(&namesz, p, 4);
            memcpy(&descsz, p + 4, 4);
            memcpy(&type, p + 8, 4);
            size_t nsz = ((size_t)namesz + 3) & ~(size_t)3;
            size_t dsz = ((size_t)descsz + 3) & ~(size_t)3;
            if (nsz > left - 12 || dsz > left - 12 - nsz) {
                break;
            }
            if (namesz == 4 && !memcmp(p + 12, "Xen", 4) && type == XEN_ELFNOTE_PHYS32_ENTRY) {
                return true;
            }
            p += 12 + nsz + dsz;
            left -= 12 + nsz + dsz;
        }
    }
    return false;
}

uint8_t *hv_vmlinux_extract(const uint8_t *bzimage, size_t size, size_t *out_size,
                            struct fl_error **errp)
{
    static const uint8_t magic[4] = {0x02, 0x21, 0x4c, 0x18};
    const uint8_t *p = size >= 4 ? memmem(bzimage, size, magic, sizeof magic) : NULL;
    if (!p) {
        fl_error_setf(errp, EINVAL,
                      "no LZ4 payload (magic 02 21 4c 18) in the kernel image; "
                      "faultline needs a kernel built with CONFIG_KERNEL_LZ4 (Debian 12)");
        return NULL;
    }
    struct fl_error *err = NULL;
    uint8_t *out = hv_lz4_legacy_decode(p, size - (size_t)(p - bzimage), out_size, &err);
    if (!out) {
        fl_error_prepend(&err, "kernel payload at offset %zu: ", (size_t)(p - bzimage));
        fl_error_propagate(errp, err);
        return NULL;
    }
    if (!hv_elf_has_pvh_note(out, *out_size)) {
        free(out);
        fl_error_setf(errp, EINVAL,
                      "the decompressed kernel is not an x86-64 ELF with a PVH entry note "
                      "(CONFIG_PVH); QEMU microvm cannot boot it directly");
        return NULL;
    }
    return out;
}

void hv_elf_deps_clear(struct hv_elf_deps *deps)
{
    for (size_t i = 0; i < deps->n_needed; i++) {
        free(deps->needed[i]);
    }
    free(deps->needed);
    free(deps->runpath);
    free(deps->interp);
    memset(deps, 0, sizeof *deps);
}

/* Maps a virtual address to a file offset through the PT_LOAD headers. */
static bool vaddr_to_off(const uint8_t *data, const Elf64_Ehdr *eh, uint64_t vaddr, uint64_t *off)
{
    for (size_t i = 0; i < eh->e_phnum; i++) {
        Elf64_Phdr ph = phdr(data, eh, i);
        if (ph.p_type == PT_LOAD && vaddr >= ph.p_vaddr && vaddr - ph.p_vaddr < ph.p_filesz) {
            *off = ph.p_offset + (vaddr - ph.p_vaddr);
            return true;
        }
    }
    return false;
}

static char *str_at(const uint8_t *data, size_t size, uint64_t strtab, uint64_t strsz, uint64_t idx)
{
    if (idx >= strsz || !range_ok(size, strtab, strsz)) {
        return NULL;
    }
    const char *s = (const char *)data + strtab + idx;
    size_t max = strsz - idx;
    size_t len = strnlen(s, max);
    if (len == max || len == 0) {
        return NULL;
    }
    return fl_xstrndup(s, len);
}

int hv_elf_read_deps(const uint8_t *data, size_t size, struct hv_elf_deps *deps)
{
    memset(deps, 0, sizeof *deps);
    Elf64_Ehdr eh;
    if (!elf64(data, size, &eh)) {
        return 0;
    }
    if (eh.e_type != ET_EXEC && eh.e_type != ET_DYN) {
        return 0;
    }
    if (!phdrs_ok(size, &eh)) {
        return -EINVAL;
    }
    Elf64_Phdr dynph;
    const Elf64_Phdr *dyn = NULL;
    for (size_t i = 0; i < eh.e_phnum; i++) {
        Elf64_Phdr ph = phdr(data, &eh, i);
        if (ph.p_type == PT_DYNAMIC) {
            dynph = ph;
            dyn = &dynph;
        } else if (ph.p_type == PT_INTERP && range_ok(size, ph.p_offset, ph.p_filesz) &&
                   ph.p_filesz > 1) {
            const char *s = (const char *)data + ph.p_offset;
            size_t len = strnlen(s, ph.p_filesz);
            if (len < ph.p_filesz && len > 0 && !deps->interp) {
                deps->interp = fl_xstrndup(s, len);
            }
        }
    }
    if (!dyn) {
        return 1;
    }
    if (!range_ok(size, dyn->p_offset, dyn->p_filesz)) {
        hv_elf_deps_clear(deps);
        return -EINVAL;
    }
    size_t n = dyn->p_filesz / sizeof(Elf64_Dyn);
    const uint8_t *base = data + dyn->p_offset;
    uint64_t strtab_va = 0, strsz = 0, runpath = UINT64_MAX, rpath = UINT64_MAX;
    bool have_strtab = false;
    for (size_t i = 0; i < n; i++) {
        Elf64_Dyn d;
        memcpy(&d, base + i * sizeof d, sizeof d);
        if (d.d_tag == DT_NULL) {
            n = i;
            break;
        }
        if (d.d_tag == DT_STRTAB) {
            strtab_va = d.d_un.d_ptr;
            have_strtab = true;
        } else if (d.d_tag == DT_STRSZ) {
            strsz = d.d_un.d_val;
        } else if (d.d_tag == DT_RUNPATH) {
            runpath = d.d_un.d_val;
        } else if (d.d_tag == DT_RPATH) {
            rpath = d.d_un.d_val;
        }
    }
    uint64_t strtab;
    if (!have_strtab || !vaddr_to_off(data, &eh, strtab_va, &strtab) ||
        !range_ok(size, strtab, strsz)) {
        hv_elf_deps_clear(deps);
        return -EINVAL;
    }
    size_t alloc = 0;
    for (size_t i = 0; i < n; i++) {
        Elf64_Dyn d;
        memcpy(&d, base + i * sizeof d, sizeof d);
        if (d.d_tag != DT_NEEDED) {
            continue;
        }
        char *s = str_at(data, size, strtab, strsz, d.d_un.d_val);
        if (!s) {
            hv_elf_deps_clear(deps);
            return -EINVAL;
        }
        deps->needed = fl_xgrow(deps->needed, &alloc, deps->n_needed + 1, sizeof(char *));
        deps->needed[deps->n_needed++] = s;
    }
    uint64_t rp = runpath != UINT64_MAX ? runpath : rpath;
    if (rp != UINT64_MAX) {
        deps->runpath = str_at(data, size, strtab, strsz, rp);
    }
    return 1;
}

char *hv_modinfo_depends(const uint8_t *data, size_t size)
{
    Elf64_Ehdr ehdr;
    const Elf64_Ehdr *eh = &ehdr;
    if (!elf64(data, size, &ehdr) || eh->e_type != ET_REL ||
        eh->e_shentsize != sizeof(Elf64_Shdr) ||
        !range_ok(size, eh->e_shoff, (uint64_t)eh->e_shnum * sizeof(Elf64_Shdr)) ||
        eh->e_shstrndx >= eh->e_shnum) {
        return NULL;
    }
    const uint8_t *shbase = data + eh->e_shoff;
    Elf64_Shdr strsh;
    memcpy(&strsh, shbase + (size_t)eh->e_shstrndx * sizeof strsh, sizeof strsh);
    if (!range_ok(size, strsh.sh_offset, strsh.sh_size)) {
        return NULL;
    }
    for (size_t i = 0; i < eh->e_shnum; i++) {
        Elf64_Shdr sh;
        memcpy(&sh, shbase + i * sizeof sh, sizeof sh);
        if (sh.sh_name >= strsh.sh_size) {
            continue;
        }
        const char *name = (const char *)data + strsh.sh_offset + sh.sh_name;
        size_t max = strsh.sh_size - sh.sh_name;
        if (strnlen(name, max) == max || strcmp(name, ".modinfo") ||
            !range_ok(size, sh.sh_offset, sh.sh_size)) {
            continue;
        }
        const char *p = (const char *)data + sh.sh_offset;
        const char *end = p + sh.sh_size;
        while (p < end) {
            size_t len = strnlen(p, (size_t)(end - p));
            if (len >= 8 && !strncmp(p, "depends=", 8)) {
                return fl_xstrndup(p + 8, len - 8);
            }
            p += len + 1;
        }
        return fl_xstrdup("");
    }
    return NULL;
}

size_t hv_elf_trim_zero_tails(uint8_t *data, size_t size)
{
    Elf64_Ehdr eh;
    if (!elf64(data, size, &eh) || !phdrs_ok(size, &eh)) {
        return 0;
    }
    size_t saved = 0;
    for (size_t i = 0; i < eh.e_phnum; i++) {
        Elf64_Phdr ph = phdr(data, &eh, i);
        if (ph.p_type != PT_LOAD || !range_ok(size, ph.p_offset, ph.p_filesz) ||
            ph.p_memsz < ph.p_filesz) {
            continue;
        }
        uint64_t n = ph.p_filesz;
        while (n > 0 && data[ph.p_offset + n - 1] == 0) {
            n--;
        }
        saved += (size_t)(ph.p_filesz - n);
        ph.p_filesz = n;
        memcpy(data + eh.e_phoff + i * sizeof ph, &ph, sizeof ph);
    }
    return saved;
}

size_t hv_elf_drop_tail_sections(uint8_t *data, size_t size, const char *const *names,
                                 size_t n_names)
{
    Elf64_Ehdr eh;
    if (!elf64(data, size, &eh) || !phdrs_ok(size, &eh) || eh.e_shentsize != sizeof(Elf64_Shdr) ||
        !range_ok(size, eh.e_shoff, (uint64_t)eh.e_shnum * sizeof(Elf64_Shdr)) ||
        eh.e_shstrndx >= eh.e_shnum) {
        return 0;
    }
    Elf64_Shdr strs;
    memcpy(&strs, data + eh.e_shoff + eh.e_shstrndx * sizeof strs, sizeof strs);
    if (!range_ok(size, strs.sh_offset, strs.sh_size)) {
        return 0;
    }
    size_t saved = 0;
    for (size_t i = 0; i < eh.e_phnum; i++) {
        Elf64_Phdr ph = phdr(data, &eh, i);
        if (ph.p_type != PT_LOAD || ph.p_memsz < ph.p_filesz ||
            ph.p_vaddr > UINT64_MAX - ph.p_memsz) {
            continue;
        }
        /* Walk back from the end of the segment's memory range: while the
         * last allocated section in it is one of `names`, cut it off;
         * then end at the last section that stays (no gap to zero). */
        uint64_t end = ph.p_vaddr + ph.p_memsz;
        bool cut = false;
        for (;;) {
            bool found = false;
            Elf64_Shdr last = {0};
            for (size_t s = 0; s < eh.e_shnum; s++) {
                Elf64_Shdr sh;
                memcpy(&sh, data + eh.e_shoff + s * sizeof sh, sizeof sh);
                if (!(sh.sh_flags & SHF_ALLOC) || sh.sh_size == 0 || sh.sh_addr < ph.p_vaddr ||
                    sh.sh_addr >= end || sh.sh_size > end - sh.sh_addr) {
                    continue;
                }
                if (!found || sh.sh_addr + sh.sh_size > last.sh_addr + last.sh_size) {
                    last = sh;
                    found = true;
                }
            }
            if (!found) {
                break;
            }
            bool named = false;
            if (last.sh_name < strs.sh_size) {
                const char *name = (const char *)data + strs.sh_offset + last.sh_name;
                size_t max = (size_t)(strs.sh_size - last.sh_name);
                for (size_t k = 0; k < n_names; k++) {
                    size_t len = strlen(names[k]);
                    named |= len < max && !memcmp(name, names[k], len + 1);
                }
            }
            if (!named) {
                if (cut) {
                    end = last.sh_addr + last.sh_size;
                }
                break;
            }
            end = last.sh_addr;
            cut = true;
        }
        if (!cut) {
            continue;
        }
        uint64_t memsz = end - ph.p_vaddr;
        saved += (size_t)(ph.p_memsz - memsz);
        ph.p_memsz = memsz;
        if (ph.p_filesz > memsz) {
            ph.p_filesz = memsz;
        }
        memcpy(data + eh.e_phoff + i * sizeof ph, &ph, sizeof ph);
    }
    return saved;
}
