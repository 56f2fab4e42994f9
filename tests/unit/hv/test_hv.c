/* Unit tests for hv/ pieces that need no guest: LZ4, ELF, cpio, the agent
 * wire format, the QMP JSON reader, the setup script helpers, the
 * accelerator decision. */
#include <arpa/inet.h>
#include <elf.h>
#include <dirent.h>
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

#include "hv/internal.h"
#include "hv/proto.h"

/* ---- LZ4 ---- */

static void test_lz4_block(void **state)
{
    /* literals "abc", then a match at offset 3 of length 6 (nibble 2),
     * then a final literal-only sequence "Z" */
    const uint8_t block[] = {0x32, 'a', 'b', 'c', 0x03, 0x00, 0x10, 'Z'};
    uint8_t out[64];
    ssize_t n = hv_lz4_block_decode(block, sizeof block, out, sizeof out);
    assert_int_equal(n, 10);
    assert_memory_equal(out, "abcabcabcZ", 10);
    /* an overlapping match of offset 1 repeats one byte */
    const uint8_t rle[] = {0x1f, 'x', 0x01, 0x00, 0x05, 0x00};
    n = hv_lz4_block_decode(rle, sizeof rle, out, sizeof out);
    assert_int_equal(n, 1 + 15 + 5 + 4);
    for (int i = 0; i < n; i++) {
        assert_int_equal(out[i], 'x');
    }
    /* long literal length extension: 15 + 255 + 10 = 280 literals */
    uint8_t lit[3 + 280];
    lit[0] = 0xf0;
    lit[1] = 255;
    lit[2] = 10;
    memset(lit + 3, 'q', 280);
    uint8_t big[300];
    assert_int_equal(hv_lz4_block_decode(lit, sizeof lit, big, sizeof big), 280);
}

static void test_lz4_block_malformed(void **state)
{
    uint8_t out[16];
    /* offset 0 */
    const uint8_t off0[] = {0x10, 'a', 0x00, 0x00};
    assert_int_equal(hv_lz4_block_decode(off0, sizeof off0, out, sizeof out), -EINVAL);
    /* offset before the start of the output */
    const uint8_t before[] = {0x10, 'a', 0x05, 0x00};
    assert_int_equal(hv_lz4_block_decode(before, sizeof before, out, sizeof out), -EINVAL);
    /* literals run past the input */
    const uint8_t past[] = {0x50, 'a', 'b'};
    assert_int_equal(hv_lz4_block_decode(past, sizeof past, out, sizeof out), -EINVAL);
    /* truncated offset */
    const uint8_t trunc[] = {0x10, 'a', 0x01};
    assert_int_equal(hv_lz4_block_decode(trunc, sizeof trunc, out, sizeof out), -EINVAL);
    /* output too small */
    const uint8_t rle[] = {0x1f, 'x', 0x01, 0x00, 0x05, 0x00};
    assert_int_equal(hv_lz4_block_decode(rle, sizeof rle, out, sizeof out), -ENOSPC);
    /* unterminated length extension */
    const uint8_t ext[] = {0xf0, 255, 255};
    assert_int_equal(hv_lz4_block_decode(ext, sizeof ext, out, sizeof out), -EINVAL);
}

static void test_lz4_legacy(void **state)
{
    const uint8_t block[] = {0x32, 'a', 'b', 'c', 0x03, 0x00, 0x10, 'Z'};
    uint8_t frame[4 + 4 + sizeof block + 8];
    memcpy(frame, "\x02\x21\x4c\x18", 4);
    frame[4] = sizeof block;
    frame[5] = frame[6] = frame[7] = 0;
    memcpy(frame + 8, block, sizeof block);
    /* what follows in a bzImage: the kernel's 4-byte size and code */
    memcpy(frame + 8 + sizeof block, "\x00\x00\x00\x7f\xcc\xcc\xcc\xcc", 8);
    size_t size = 0;
    struct fl_error *err = NULL;
    uint8_t *out = hv_lz4_legacy_decode(frame, sizeof frame, &size, &err);
    assert_non_null(out);
    assert_int_equal(size, 10);
    assert_memory_equal(out, "abcabcabcZ", 10);
    free(out);
    /* bad magic */
    frame[0] = 0;
    assert_null(hv_lz4_legacy_decode(frame, sizeof frame, &size, &err));
    assert_non_null(strstr(err->msg, "magic"));
    fl_error_free(err);
    err = NULL;
    /* no block at all */
    const uint8_t empty[] = {0x02, 0x21, 0x4c, 0x18, 0xff, 0xff, 0xff, 0xff};
    assert_null(hv_lz4_legacy_decode(empty, sizeof empty, &size, &err));
    fl_error_free(err);
    err = NULL;
    /* a corrupt block is an error, not a silent truncation */
    uint8_t bad[4 + 4 + 4] = {0x02, 0x21, 0x4c, 0x18, 4, 0, 0, 0, 0x10, 'a', 0x09, 0x00};
    assert_null(hv_lz4_legacy_decode(bad, sizeof bad, &size, &err));
    assert_non_null(strstr(err->msg, "malformed"));
    fl_error_free(err);
    /* no LZ4 payload in a "bzImage" */
    err = NULL;
    assert_null(hv_vmlinux_extract((const uint8_t *)"not a kernel", 12, &size, &err));
    assert_non_null(strstr(err->msg, "LZ4"));
    fl_error_free(err);
}

/* ---- ELF ---- */

static void test_elf_self_deps(void **state)
{
    size_t size = 0;
    uint8_t *self = (uint8_t *)fl_read_file("/proc/self/exe", &size, NULL);
    assert_non_null(self);
    struct hv_elf_deps deps;
    assert_int_equal(hv_elf_read_deps(self, size, &deps), 1);
    bool libc = false;
    for (size_t i = 0; i < deps.n_needed; i++) {
        libc |= !strcmp(deps.needed[i], "libc.so.6");
    }
    assert_true(libc);
    assert_non_null(deps.interp);
    assert_non_null(strstr(deps.interp, "ld-linux"));
    hv_elf_deps_clear(&deps);
    /* not a PVH kernel */
    assert_false(hv_elf_has_pvh_note(self, size));
    /* truncations never crash and never succeed wrongly */
    for (size_t cut = 0; cut < 4096 && cut < size; cut += 7) {
        int r = hv_elf_read_deps(self, cut, &deps);
        assert_true(r <= 1);
        hv_elf_deps_clear(&deps);
    }
    /* not ELF */
    assert_int_equal(hv_elf_read_deps((const uint8_t *)"#!/bin/sh\n", 10, &deps), 0);
    assert_null(hv_modinfo_depends(self, size)); /* an executable is no module */
    free(self);
}

/* A kernel-like ELF: one PT_LOAD at vaddr 0x1000 holding .text, .BTF,
 * .BTF_ids (2 bytes of padding between them), then .bss and, after an
 * alignment gap, .scratch.  With btf_ids_last the segment ends with
 * .BTF_ids. */
struct fake_kernel {
    uint8_t img[4096];
};

static Elf64_Phdr fake_kernel(struct fake_kernel *k, bool btf_ids_last)
{
    memset(k, 0, sizeof *k);
    Elf64_Ehdr eh = {0};
    memcpy(eh.e_ident, ELFMAG, SELFMAG);
    eh.e_ident[EI_CLASS] = ELFCLASS64;
    eh.e_ident[EI_DATA] = ELFDATA2LSB;
    eh.e_type = ET_EXEC;
    eh.e_machine = EM_X86_64;
    eh.e_phoff = sizeof eh;
    eh.e_phentsize = sizeof(Elf64_Phdr);
    eh.e_phnum = 1;
    eh.e_shoff = 2048;
    eh.e_shentsize = sizeof(Elf64_Shdr);
    eh.e_shnum = 7;
    eh.e_shstrndx = 6;
    memcpy(k->img, &eh, sizeof eh);
    static const char names[] = "\0.text\0.BTF\0.BTF_ids\0.bss\0.scratch\0.shstrtab";
    memcpy(k->img + 1536, names, sizeof names);
    /* name offsets: .text 1, .BTF 7, .BTF_ids 12, .bss 21, .scratch 26, .shstrtab 35 */
    Elf64_Shdr sh[7] = {
        {0},
        {.sh_name = 1,
         .sh_type = SHT_PROGBITS,
         .sh_flags = SHF_ALLOC,
         .sh_addr = 0x1000,
         .sh_offset = 512,
         .sh_size = 100},
        {.sh_name = 7,
         .sh_type = SHT_PROGBITS,
         .sh_flags = SHF_ALLOC,
         .sh_addr = 0x1064,
         .sh_offset = 612,
         .sh_size = 200},
        {.sh_name = 12,
         .sh_type = SHT_PROGBITS,
         .sh_flags = SHF_ALLOC,
         .sh_addr = 0x112e,
         .sh_offset = 814,
         .sh_size = 50},
        {.sh_name = 21,
         .sh_type = SHT_NOBITS,
         .sh_flags = SHF_ALLOC,
         .sh_addr = 0x1160,
         .sh_offset = 864,
         .sh_size = 0x100},
        {.sh_name = 26,
         .sh_type = SHT_PROGBITS,
         .sh_flags = SHF_ALLOC,
         .sh_addr = 0x1400,
         .sh_offset = 1024,
         .sh_size = 0x200},
        {.sh_name = 35, .sh_type = SHT_STRTAB, .sh_offset = 1536, .sh_size = sizeof names},
    };
    memcpy(k->img + 2048, sh, sizeof sh);
    Elf64_Phdr ph = {.p_type = PT_LOAD,
                     .p_offset = 512,
                     .p_vaddr = 0x1000,
                     .p_paddr = 0x1000,
                     .p_filesz = btf_ids_last ? 352 : 1024 + 0x200 - 512,
                     .p_memsz = btf_ids_last ? 352 : 0x600};
    memcpy(k->img + sizeof eh, &ph, sizeof ph);
    return ph;
}

static Elf64_Phdr phdr0(const struct fake_kernel *k)
{
    Elf64_Phdr ph;
    memcpy(&ph, k->img + sizeof(Elf64_Ehdr), sizeof ph);
    return ph;
}

static void test_elf_drop_tail_sections(void **state)
{
    struct fake_kernel k;
    static const char *const btf[] = {".BTF", ".BTF_ids"};
    static const char *const all[] = {".BTF", ".BTF_ids", ".scratch"};
    static const char *const scratch[] = {".scratch"};

    /* .BTF_ids ends the segment, .BTF before it (2 bytes of padding):
     * both go, the segment ends with .text */
    fake_kernel(&k, true);
    assert_int_equal(hv_elf_drop_tail_sections(k.img, sizeof k.img, btf, 2), 352 - 100);
    assert_int_equal(phdr0(&k).p_memsz, 100);
    assert_int_equal(phdr0(&k).p_filesz, 100);

    /* .scratch ends the segment: it goes, and the alignment gap before
     * it; .bss stays (it is not named), so .BTF stays too */
    fake_kernel(&k, false);
    assert_int_equal(hv_elf_drop_tail_sections(k.img, sizeof k.img, all, 3), 0x600 - 0x260);
    assert_int_equal(phdr0(&k).p_memsz, 0x260);
    assert_int_equal(phdr0(&k).p_filesz, 0x260);

    /* nothing named at the end: nothing changes */
    fake_kernel(&k, false);
    assert_int_equal(hv_elf_drop_tail_sections(k.img, sizeof k.img, btf, 2), 0);
    assert_int_equal(phdr0(&k).p_memsz, 0x600);
    fake_kernel(&k, true);
    assert_int_equal(hv_elf_drop_tail_sections(k.img, sizeof k.img, scratch, 1), 0);
    assert_int_equal(phdr0(&k).p_memsz, 352);

    /* malformed: section headers out of the file, bad string index */
    fake_kernel(&k, true);
    Elf64_Ehdr eh;
    memcpy(&eh, k.img, sizeof eh);
    eh.e_shoff = sizeof k.img - 64;
    memcpy(k.img, &eh, sizeof eh);
    assert_int_equal(hv_elf_drop_tail_sections(k.img, sizeof k.img, btf, 2), 0);
    fake_kernel(&k, true);
    memcpy(&eh, k.img, sizeof eh);
    eh.e_shstrndx = 7;
    memcpy(k.img, &eh, sizeof eh);
    assert_int_equal(hv_elf_drop_tail_sections(k.img, sizeof k.img, btf, 2), 0);
    assert_int_equal(hv_elf_drop_tail_sections(k.img, 16, btf, 2), 0); /* truncated */
    /* a section name running off the string table is not a match */
    fake_kernel(&k, true);
    Elf64_Shdr strtab;
    memcpy(&strtab, k.img + 2048 + 6 * sizeof strtab, sizeof strtab);
    strtab.sh_size = 14; /* cuts ".BTF_ids" short */
    memcpy(k.img + 2048 + 6 * sizeof strtab, &strtab, sizeof strtab);
    assert_int_equal(hv_elf_drop_tail_sections(k.img, sizeof k.img, btf, 2), 0);
}

static void test_elf_pvh_note_and_modinfo(void **state)
{
    /* A minimal ELF64 ET_EXEC with one PT_NOTE holding the Xen PVH note. */
    uint8_t img[512] = {0};
    Elf64_Ehdr *eh = (Elf64_Ehdr *)(void *)img;
    memcpy(eh->e_ident, ELFMAG, SELFMAG);
    eh->e_ident[EI_CLASS] = ELFCLASS64;
    eh->e_ident[EI_DATA] = ELFDATA2LSB;
    eh->e_type = ET_EXEC;
    eh->e_machine = EM_X86_64;
    eh->e_phoff = sizeof *eh;
    eh->e_phentsize = sizeof(Elf64_Phdr);
    eh->e_phnum = 1;
    Elf64_Phdr *ph = (Elf64_Phdr *)(void *)(img + sizeof *eh);
    ph->p_type = PT_NOTE;
    ph->p_offset = 256;
    ph->p_filesz = 12 + 4 + 4;
    uint32_t note[5] = {4, 4, 18, 0, 0x1000000};
    memcpy(note + 3, "Xen", 4);
    memcpy(img + 256, note, sizeof note);
    assert_true(hv_elf_has_pvh_note(img, sizeof img));
    note[2] = 17; /* another Xen note type */
    memcpy(img + 256, note, sizeof note);
    assert_false(hv_elf_has_pvh_note(img, sizeof img));
    note[2] = 18;
    memcpy(img + 256, note, sizeof note);
    ph->p_filesz = 4000; /* note segment past the end of the file */
    assert_false(hv_elf_has_pvh_note(img, sizeof img));

    /* A relocatable object with a .modinfo section. */
    uint8_t mod[1024] = {0};
    Elf64_Ehdr *me = (Elf64_Ehdr *)(void *)mod;
    memcpy(me->e_ident, ELFMAG, SELFMAG);
    me->e_ident[EI_CLASS] = ELFCLASS64;
    me->e_ident[EI_DATA] = ELFDATA2LSB;
    me->e_type = ET_REL;
    me->e_shoff = 512;
    me->e_shentsize = sizeof(Elf64_Shdr);
    me->e_shnum = 3;
    me->e_shstrndx = 1;
    static const char shstr[] = "\0.shstrtab\0.modinfo\0";
    memcpy(mod + 128, shstr, sizeof shstr);
    static const char info[] = "license=GPL\0depends=virtio,virtio_ring\0name=virtio_net\0";
    memcpy(mod + 256, info, sizeof info);
    Elf64_Shdr *sh = (Elf64_Shdr *)(void *)(mod + 512);
    sh[1].sh_name = 1;
    sh[1].sh_offset = 128;
    sh[1].sh_size = sizeof shstr;
    sh[2].sh_name = 11;
    sh[2].sh_offset = 256;
    sh[2].sh_size = sizeof info;
    char *deps = hv_modinfo_depends(mod, sizeof mod);
    assert_string_equal(deps, "virtio,virtio_ring");
    free(deps);
    sh[2].sh_size = 12; /* only "license=GPL": no depends field */
    deps = hv_modinfo_depends(mod, sizeof mod);
    assert_string_equal(deps, "");
    free(deps);
    sh[2].sh_offset = 100000; /* out of bounds: ignored */
    assert_null(hv_modinfo_depends(mod, sizeof mod));
}

/* ---- cpio ---- */

static void test_cpio(void **state)
{
    char path[] = "/tmp/fl-hv-cpio-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    struct fl_error *err = NULL;
    struct hv_cpio *c = hv_cpio_create(path, &err);
    assert_non_null(c);
    assert_true(hv_cpio_add(c, "bin", S_IFDIR | 0755, NULL, 0, &err));
    assert_true(hv_cpio_add(c, "bin/hello", S_IFREG | 0755, "hi\n", 3, &err));
    assert_true(hv_cpio_add(c, "bin/sh", S_IFLNK | 0777, "busybox", 7, &err));
    assert_false(hv_cpio_add(c, "/abs", S_IFREG | 0644, "", 0, &err));
    assert_non_null(strstr(err->msg, "relative"));
    fl_error_free(err);
    err = NULL;
    assert_false(hv_cpio_add(c, "fifo", S_IFIFO | 0644, "", 0, &err));
    fl_error_free(err);
    err = NULL;
    assert_true(hv_cpio_finish(c, &err));
    size_t size = 0;
    char *data = fl_read_file(path, &size, NULL);
    assert_non_null(data);
    assert_int_equal(size % 4, 0);
    /* first header: magic, ino 1, mode 040755 */
    assert_memory_equal(data, "07070100000001000041ED", 22);
    /* the file entry's name and data are 4-aligned */
    char *name = memmem(data, size, "bin/hello", 9);
    assert_non_null(name);
    assert_int_equal((name - data) % 4, 2); /* 110-byte header + 4k offset */
    assert_non_null(memmem(data, size, "hi\n", 3));
    assert_non_null(memmem(data, size, "TRAILER!!!", 10));
    free(data);
    unlink(path);
    hv_cpio_destroy(NULL);
}

/* ---- agent protocol ---- */

static void test_proto_roundtrip(void **state)
{
    struct fl_agent_wr w = {0};
    size_t s = fl_agent_wr_begin(&w, FL_AGENT_EXEC, 7, 0xabcd);
    fl_agent_wr_u32(&w, 1500);
    fl_agent_wr_i64(&w, -5);
    fl_agent_wr_bytes(&w, "echo hi", 7);
    fl_agent_wr_finish(&w, s);
    assert_false(w.bad);
    struct fl_agent_header h;
    assert_int_equal(fl_agent_header_parse(w.p, &h), 0);
    assert_int_equal(h.type, FL_AGENT_EXEC);
    assert_int_equal(h.id, 7);
    assert_int_equal(h.session, 0xabcd);
    assert_int_equal(h.len, w.size - FL_AGENT_HEADER_SIZE);
    struct fl_agent_rd r = {.p = w.p + FL_AGENT_HEADER_SIZE, .left = h.len};
    assert_int_equal(fl_agent_rd_u32(&r), 1500);
    assert_true(fl_agent_rd_i64(&r) == -5);
    uint32_t sz;
    const uint8_t *cmd = fl_agent_rd_bytes(&r, 100, &sz);
    assert_int_equal(sz, 7);
    assert_memory_equal(cmd, "echo hi", 7);
    assert_true(fl_agent_rd_done(&r));
    /* over-read is sticky */
    assert_int_equal(fl_agent_rd_u32(&r), 0);
    assert_true(r.bad);
    assert_false(fl_agent_rd_done(&r));
    /* a byte string longer than allowed */
    r = (struct fl_agent_rd){.p = w.p + FL_AGENT_HEADER_SIZE + 12, .left = 11};
    assert_null(fl_agent_rd_bytes(&r, 3, &sz));
    /* a length beyond the payload */
    uint8_t lie[8] = {0xff, 0xff, 0, 0, 'a', 'b', 'c', 'd'};
    r = (struct fl_agent_rd){.p = lie, .left = sizeof lie};
    assert_null(fl_agent_rd_bytes(&r, UINT32_MAX, &sz));
    fl_agent_wr_free(&w);
    assert_string_equal(fl_agent_msg_name(FL_AGENT_PONG), "PONG");
    assert_null(fl_agent_msg_name(99));
}

static void test_proto_bad_headers(void **state)
{
    uint8_t p[FL_AGENT_HEADER_SIZE];
    struct fl_agent_header h = {.type = FL_AGENT_PING, .id = 1, .session = 2, .len = 0};
    fl_agent_header_write(p, &h);
    assert_int_equal(fl_agent_header_parse(p, &h), 0);
    uint8_t q[FL_AGENT_HEADER_SIZE];
    memcpy(q, p, sizeof q);
    q[0] ^= 1; /* magic */
    assert_int_equal(fl_agent_header_parse(q, &h), -EPROTO);
    memcpy(q, p, sizeof q);
    q[4] = 42; /* unknown type */
    assert_int_equal(fl_agent_header_parse(q, &h), -EPROTO);
    memcpy(q, p, sizeof q);
    q[6] = 1; /* reserved */
    assert_int_equal(fl_agent_header_parse(q, &h), -EPROTO);
    memcpy(q, p, sizeof q);
    q[19] = 0x7f; /* len way past the maximum */
    assert_int_equal(fl_agent_header_parse(q, &h), -EMSGSIZE);
}

/* ---- JSON ---- */

static void test_json(void **state)
{
    const char *qmp = "{\"return\": {\"status\": \"running\", \"n\": -1.5e2, \"ok\": true, "
                      "\"list\": [1, null, \"x\\u00e9\\n\"]}, \"id\": 3}";
    struct fl_error *err = NULL;
    struct fl_json *j = fl_json_parse(qmp, strlen(qmp), &err);
    assert_non_null(j);
    const struct fl_json *ret = fl_json_get(j, "return");
    assert_string_equal(fl_json_get_str(ret, "status"), "running");
    assert_true(fl_json_get(ret, "n")->num == -150.0);
    assert_true(fl_json_get(ret, "ok")->b);
    const struct fl_json *list = fl_json_get(ret, "list");
    assert_int_equal(list->n, 3);
    assert_int_equal(list->items[1]->type, FL_JSON_NULL);
    assert_string_equal(list->items[2]->str, "x\xc3\xa9\n");
    assert_null(fl_json_get_str(j, "missing"));
    fl_json_free(j);

    const char *bad[] = {"", "{", "{\"a\" 1}", "[1,]", "\"\\x\"", "{\"a\":1}x", "tru",
                         "\"unterminated", "[1 2]", "\"\\u12\"", "{1:2}", "\"a\x01\"",
                         "\"\\u0000\"",
                         /* RFC 8259 strictness (issue 14, item 9) */
                         "01", "-01", "1.", ".5", "+1", "1e", "1e+", "0x1", "NaN", "Infinity",
                         "\"\\ud800\"", "\"\\udc00\"", "\"\\ud800\\u0041\"", "\"\xed\xa0\x80\"",
                         "\"\xc0\xaf\"", "\"\xf4\x90\x80\x80\"", "\"\x80\"", "\"\xc3\""};
    for (size_t i = 0; i < FL_ARRAY_LEN(bad); i++) {
        err = NULL;
        assert_null(fl_json_parse(bad[i], strlen(bad[i]), &err));
        assert_non_null(err);
        assert_non_null(strstr(err->msg, "JSON"));
        fl_error_free(err);
    }
    /* the same edges, valid */
    const char *good[] = {"0",
                          "-0",
                          "1.5e-3",
                          "1E+2",
                          "\"\\ud83d\\ude00\"",
                          "\"\xf4\x8f\xbf\xbf\"",
                          "123456789012345678901234567890123456789012345678901234567890123456789"};
    for (size_t i = 0; i < FL_ARRAY_LEN(good); i++) {
        err = NULL;
        j = fl_json_parse(good[i], strlen(good[i]), &err);
        assert_non_null(j);
        fl_json_free(j);
    }
    /* nesting is bounded */
    char deep[200];
    memset(deep, '[', sizeof deep);
    err = NULL;
    assert_null(fl_json_parse(deep, sizeof deep, &err));
    assert_non_null(strstr(err->msg, "deep"));
    fl_error_free(err);
}

/* ---- script helpers ---- */

static void test_quote_and_validators(void **state)
{
    struct fl_buf b = {0};
    hv_sh_quote(&b, "it's $HOME `x`");
    assert_string_equal(b.data, "'it'\\''s $HOME `x`'");
    fl_buf_free(&b);

    char mac[18], mac2[18];
    hv_default_mac("n1", 0, mac);
    hv_default_mac("n1", 0, mac2);
    assert_string_equal(mac, mac2);
    assert_true(hv_mac_valid(mac));
    hv_default_mac("n1", 1, mac2);
    assert_string_not_equal(mac, mac2);
    assert_true(hv_mac_valid("52:54:00:AB:cd:01"));
    assert_false(hv_mac_valid("53:54:00:ab:cd:01")); /* multicast */
    assert_false(hv_mac_valid("52:54:00:ab:cd"));
    assert_false(hv_mac_valid("52-54-00-ab-cd-01"));

    assert_true(hv_cidr_valid("10.0.0.1/24"));
    assert_true(hv_cidr_valid("fd00::1/64"));
    assert_false(hv_cidr_valid("10.0.0.1"));
    assert_false(hv_cidr_valid("10.0.0.1/33"));
    assert_false(hv_cidr_valid("10.0.0.256/24"));
    assert_false(hv_cidr_valid("10.0.0.1/2x"));
    assert_true(hv_ip_valid("10.0.0.2"));
    assert_false(hv_ip_valid("10.0.0"));

    assert_true(hv_name_valid("node-1_a"));
    assert_false(hv_name_valid("-node"));
    assert_false(hv_name_valid("a b"));
    assert_false(hv_name_valid(""));
}

static void test_setup_script(void **state)
{
    struct hv_nic_config nics[] = {{.socket_path = "/r/n1.sock", .ip_cidr = "10.0.0.1/24"}};
    struct hv_disk_config disks[] = {
        {.kind = HV_DISK_NBD, .path = "/r/d", .mount_point = "/data", .format_if_blank = true}};
    struct hv_host_entry hosts[] = {{"n1", "10.0.0.1", NULL}, {"n2", "10.0.0.2", NULL}};
    struct hv_command cmds[] = {{"redis-server --port 6379", true}, {"echo 'once'", false}};
    const char *env[] = {"A=b c"};
    struct hv_node_config cfg = {.name = "n1",
                                 .nics = nics,
                                 .n_nics = 1,
                                 .disks = disks,
                                 .n_disks = 1,
                                 .hosts = hosts,
                                 .n_hosts = 2,
                                 .commands = cmds,
                                 .n_commands = 2,
                                 .env = env,
                                 .n_env = 1};
    char *s = hv_setup_script(&cfg);
    assert_non_null(strstr(s, "hostname 'n1'"));
    assert_non_null(strstr(s, "'10.0.0.2 n2'"));
    assert_non_null(strstr(s, "ip addr add '10.0.0.1/24'"));
    assert_non_null(strstr(s, "fl_blk fl-d0"));
    assert_non_null(strstr(s, "mke2fs"));
    assert_non_null(strstr(s, "FL_CMD='redis-server --port 6379'"));
    assert_non_null(strstr(s, "FL_CMD='echo '\\''once'\\'''"));
    char mac[18];
    hv_default_mac("n1", 0, mac);
    assert_non_null(strstr(s, mac));
    /* the first command restarts, the second breaks out of its loop */
    char *first = strstr(s, "FL_CMD='redis");
    char *second = strstr(s, "FL_CMD='echo");
    assert_true(first && second);
    char *brk = strstr(first, "break;");
    assert_true(brk && brk > second);
    /* no MACs given: no neighbor entries */
    assert_null(strstr(s, "arp "));
    free(s);
}

/* Permanent ARP entries: one per other node's IPv4 address on one of the
 * node's subnets, on that subnet's NIC; never for the node itself. */
static void test_setup_script_arp(void **state)
{
    struct hv_nic_config nics[] = {
        {.socket_path = "/r/a.sock", .mac = "52:54:00:00:01:01", .ip_cidr = "10.0.0.1/24"},
        {.socket_path = "/r/b.sock", .mac = "52:54:00:00:01:02", .ip_cidr = "10.1.0.1/16"},
        {.socket_path = "/r/c.sock", .mac = "52:54:00:00:01:03"}};
    struct hv_host_entry hosts[] = {
        {"n1", "10.0.0.1", "52:54:00:00:01:01"},   /* itself: skipped */
        {"n1b", "10.1.0.1", "52:54:00:00:01:02"},  /* itself, second NIC: skipped */
        {"n2", "10.0.0.2", "52:54:00:AB:CD:EF"},   /* first NIC, MAC lower-cased */
        {"n3", "10.1.200.3", "52:54:00:00:00:03"}, /* second NIC (/16) */
        {"n4", "10.2.0.4", "52:54:00:00:00:04"},   /* on no subnet: skipped */
        {"n5", "10.0.0.5", NULL},                  /* no MAC: skipped */
    };
    struct hv_node_config cfg = {
        .name = "n1", .nics = nics, .n_nics = 3, .hosts = hosts, .n_hosts = 6};
    char *s = hv_setup_script(&cfg);
    assert_non_null(strstr(s, "nic0=$dev\n"));
    assert_non_null(strstr(s, "nic1=$dev\n"));
    const char *n2 = strstr(s, "arp -i \"$nic0\" -s 10.0.0.2 52:54:00:ab:cd:ef\n");
    assert_non_null(n2);
    assert_non_null(strstr(s, "arp -i \"$nic1\" -s 10.1.200.3 52:54:00:00:00:03\n"));
    /* after every address is configured */
    assert_true(n2 > strstr(s, "ip addr add '10.1.0.1/16'"));
    assert_null(strstr(s, "10.0.0.1 52:"));
    assert_null(strstr(s, "10.1.0.1 52:"));
    assert_null(strstr(s, "10.2.0.4 52:"));
    assert_null(strstr(s, "$nic2"));
    assert_null(strstr(s, " -s 10.0.0.5"));
    size_t count = 0;
    for (const char *p = s; (p = strstr(p, "arp -i")); p++) {
        count++;
    }
    assert_int_equal(count, 2);
    free(s);

    /* overlapping subnets: an entry on each NIC that holds the address */
    nics[1].ip_cidr = "10.0.0.9/8";
    cfg.n_hosts = 3;
    s = hv_setup_script(&cfg);
    assert_non_null(strstr(s, "arp -i \"$nic0\" -s 10.0.0.2 52:54:00:ab:cd:ef\n"));
    assert_non_null(strstr(s, "arp -i \"$nic1\" -s 10.0.0.2 52:54:00:ab:cd:ef\n"));
    /* 10.1.0.1 is no longer the node's own address but on nic1's /8 */
    assert_non_null(strstr(s, "arp -i \"$nic1\" -s 10.1.0.1 52:54:00:00:01:02\n"));
    free(s);

    struct in_addr a;
    assert_int_equal(inet_pton(AF_INET, "192.168.1.77", &a), 1);
    assert_true(hv_ipv4_in_cidr("192.168.1.1/24", a));
    assert_true(hv_ipv4_in_cidr("192.168.1.77/32", a));
    assert_true(hv_ipv4_in_cidr("0.0.0.0/0", a));
    assert_false(hv_ipv4_in_cidr("192.168.2.1/24", a));
    assert_false(hv_ipv4_in_cidr("192.168.1.1/33", a));
    assert_false(hv_ipv4_in_cidr("fd00::1/64", a));
    assert_false(hv_ipv4_in_cidr(NULL, a));
    assert_false(hv_ipv4_in_cidr("192.168.1.1", a));
}

/* ---- accelerator ---- */

static void test_accel(void **state)
{
    const char *why = NULL;
    const char *vmx = "processor\t: 0\nflags\t\t: fpu vme vmx sse\n";
    const char *none = "processor\t: 0\nflags\t\t: fpu vme sse vmxx\n";
    const char *svm = "flags\t: fpu svm\n";
    assert_int_equal(hv_accel_decide(vmx, true, &why), HV_ACCEL_KVM);
    assert_non_null(strstr(why, "KVM"));
    assert_int_equal(hv_accel_decide(vmx, false, &why), HV_ACCEL_TCG);
    assert_non_null(strstr(why, "/dev/kvm"));
    assert_int_equal(hv_accel_decide(none, true, &why), HV_ACCEL_TCG);
    assert_non_null(strstr(why, "no hardware"));
    assert_int_equal(hv_accel_decide(svm, true, &why), HV_ACCEL_KVM);
    assert_int_equal(hv_accel_decide(NULL, true, &why), HV_ACCEL_TCG);
    enum hv_accel a;
    assert_true(hv_accel_parse("tcg", &a, NULL));
    assert_int_equal(a, HV_ACCEL_TCG);
    struct fl_error *err = NULL;
    assert_false(hv_accel_parse("xen", &a, &err));
    assert_non_null(strstr(err->msg, "'xen'"));
    fl_error_free(err);
    assert_int_equal(hv_accel_resolve(HV_ACCEL_KVM, &why), HV_ACCEL_KVM);
    assert_string_equal(hv_accel_name(HV_ACCEL_AUTO), "auto");
}

/* ---- node configuration validation (no QEMU started) ---- */

static void test_node_config_errors(void **state)
{
    char dir[] = "/tmp/fl-hv-unit-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char *kernel = fl_xasprintf("%s/vmlinux", dir);
    assert_true(fl_write_file(kernel, "x", 1, NULL));
    struct fl_error *err = NULL;
    struct fl_loop *loop = fl_loop_create(NULL, &err);
    struct hv_node_config cfg = {
        .name = "n1", .kernel = kernel, .initrd = kernel, .run_dir = dir, .accel = HV_ACCEL_TCG};
    struct hv_node *n = hv_node_create(loop, &cfg, NULL, NULL, &err);
    assert_non_null(n);
    assert_int_equal(hv_node_state(n), HV_NODE_OFF);
    assert_int_equal(hv_node_pid(n), 0);
    /* operations on an OFF node fail with a message, never crash */
    assert_false(hv_node_exec(n, "true", 0, NULL, NULL, &err));
    assert_non_null(strstr(err->msg, "off"));
    fl_error_free(err);
    err = NULL;
    assert_false(hv_node_pause(n, &err));
    fl_error_free(err);
    err = NULL;
    /* the argv names the pieces */
    const char *const *argv = hv_node_argv(n);
    bool microvm = false, nodefaults = false;
    for (size_t i = 0; argv[i]; i++) {
        microvm |= !strncmp(argv[i], "microvm", 7);
        nodefaults |= !strcmp(argv[i], "-nodefaults");
    }
    assert_true(microvm && nodefaults);
    hv_node_destroy(n);
    hv_node_destroy(NULL);

    struct hv_node_config bad = cfg;
    bad.name = "bad name";
    assert_null(hv_node_create(loop, &bad, NULL, NULL, &err));
    assert_non_null(strstr(err->msg, "'bad name'"));
    fl_error_free(err);
    err = NULL;

    bad = cfg;
    bad.memory_mib = 16;
    assert_null(hv_node_create(loop, &bad, NULL, NULL, &err));
    assert_non_null(strstr(err->msg, "memory"));
    fl_error_free(err);
    err = NULL;

    struct hv_nic_config nic = {.socket_path = "/x.sock", .mac = "01:00:00:00:00:01"};
    bad = cfg;
    bad.nics = &nic;
    bad.n_nics = 1;
    assert_null(hv_node_create(loop, &bad, NULL, NULL, &err));
    assert_non_null(strstr(err->msg, "nics[0].mac"));
    fl_error_free(err);
    err = NULL;

    nic.mac = NULL;
    nic.ip_cidr = "10.1.1.1";
    assert_null(hv_node_create(loop, &bad, NULL, NULL, &err));
    assert_non_null(strstr(err->msg, "10.1.1.1"));
    fl_error_free(err);
    err = NULL;

    struct hv_host_entry host = {"n2", "10.0.0.2", "52:54:00:00:00:0"};
    bad = cfg;
    bad.hosts = &host;
    bad.n_hosts = 1;
    assert_null(hv_node_create(loop, &bad, NULL, NULL, &err));
    assert_non_null(strstr(err->msg, "hosts[0].mac: '52:54:00:00:00:0'"));
    fl_error_free(err);
    err = NULL;
    host.mac = "03:54:00:00:00:01"; /* multicast */
    assert_null(hv_node_create(loop, &bad, NULL, NULL, &err));
    assert_non_null(strstr(err->msg, "hosts[0].mac"));
    fl_error_free(err);
    err = NULL;
    host.ip = "fd00::2";
    host.mac = "52:54:00:00:00:02";
    assert_null(hv_node_create(loop, &bad, NULL, NULL, &err));
    assert_non_null(strstr(err->msg, "IPv4 addresses only"));
    fl_error_free(err);
    err = NULL;
    host.mac = NULL; /* IPv6 without a MAC is fine */
    struct hv_node *ok6 = hv_node_create(loop, &bad, NULL, NULL, &err);
    assert_non_null(ok6);
    hv_node_destroy(ok6);
    host.ip = "10.0.0.2";
    host.mac = "52:54:00:00:00:02";
    ok6 = hv_node_create(loop, &bad, NULL, NULL, &err);
    assert_non_null(ok6);
    hv_node_destroy(ok6);

    const char *env[] = {"1BAD=x"};
    bad = cfg;
    bad.env = env;
    bad.n_env = 1;
    assert_null(hv_node_create(loop, &bad, NULL, NULL, &err));
    assert_non_null(strstr(err->msg, "env[0]"));
    fl_error_free(err);
    err = NULL;

    struct hv_disk_config disk = {.kind = HV_DISK_FILE, .path = "/nonexistent/disk"};
    bad = cfg;
    bad.disks = &disk;
    bad.n_disks = 1;
    assert_null(hv_node_create(loop, &bad, NULL, NULL, &err));
    assert_non_null(strstr(err->msg, "disks[0]"));
    fl_error_free(err);
    err = NULL;

    /* a run directory others can read is refused */
    assert_int_equal(chmod(dir, 0755), 0);
    assert_null(hv_node_create(loop, &cfg, NULL, NULL, &err));
    assert_non_null(strstr(err->msg, "0700"));
    fl_error_free(err);

    fl_loop_destroy(loop);
    unlink(kernel);
    free(kernel);
    rmdir(dir);
}

/* ---- image spec errors (no download) ---- */

static int cancel_calls;
static bool always_cancelled(void *arg)
{
    cancel_calls++;
    return true;
}

/* A build asked to stop fails with ECANCELED before doing anything, and
 * leaves the cache as it was (no image, no build directory). */
static void test_image_build_cancelled(void **state)
{
    char dir[] = "/tmp/fl-hv-cancel-XXXXXX";
    assert_non_null(mkdtemp(dir));
    struct fl_error *err = NULL;
    struct hv_image img;
    struct hv_image_spec spec = {.cache_dir = dir, .cancelled = always_cancelled};
    cancel_calls = 0;
    assert_false(hv_image_build(&spec, &img, NULL, NULL, &err));
    assert_non_null(err);
    assert_int_equal(err->code, ECANCELED);
    assert_string_equal(err->msg, "interrupted");
    fl_error_free(err);
    assert_int_equal(cancel_calls, 1);
    struct hv_image_info *infos;
    size_t n = 99;
    assert_true(hv_image_list(dir, &infos, &n, NULL));
    assert_int_equal(n, 0);
    hv_image_info_free(infos, n);
    char *tmps = fl_xasprintf("%s/tmp", dir);
    DIR *d = opendir(tmps);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        assert_true(strncmp(e->d_name, "build-", 6) != 0);
    }
    if (d) {
        closedir(d);
    }
    free(tmps);
    fl_rm_rf(dir);
}

static void test_image_spec_errors(void **state)
{
    struct fl_error *err = NULL;
    struct hv_image img;
    struct hv_image_file f = {.src = "/etc/hostname", .dst = "relative/path"};
    struct hv_image_spec spec = {.files = &f, .n_files = 1, .cache_dir = "/tmp/fl-hv-unit-cache"};
    assert_false(hv_image_build(&spec, &img, NULL, NULL, &err));
    assert_non_null(strstr(err->msg, "files[0]"));
    fl_error_free(err);
    err = NULL;
    f = (struct hv_image_file){.src = "/nonexistent/x", .dst = "/x"};
    assert_false(hv_image_build(&spec, &img, NULL, NULL, &err));
    assert_non_null(strstr(err->msg, "does not exist"));
    fl_error_free(err);

    char *d = hv_image_cache_dir("/explicit");
    assert_string_equal(d, "/explicit");
    free(d);
    setenv("FAULTLINE_CACHE", "/from/env", 1);
    d = hv_image_cache_dir(NULL);
    assert_string_equal(d, "/from/env");
    free(d);
    unsetenv("FAULTLINE_CACHE");
    setenv("XDG_CACHE_HOME", "/xdg", 1);
    d = hv_image_cache_dir(NULL);
    assert_string_equal(d, "/xdg/faultline");
    free(d);
    unsetenv("XDG_CACHE_HOME");

    /* listing an empty cache is an empty list */
    struct hv_image_info *infos;
    size_t n = 99;
    err = NULL;
    assert_true(hv_image_list("/tmp/fl-hv-unit-empty-cache", &infos, &n, &err));
    assert_int_equal(n, 0);
    hv_image_info_free(infos, n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lz4_block),
        cmocka_unit_test(test_lz4_block_malformed),
        cmocka_unit_test(test_lz4_legacy),
        cmocka_unit_test(test_elf_self_deps),
        cmocka_unit_test(test_elf_pvh_note_and_modinfo),
        cmocka_unit_test(test_elf_drop_tail_sections),
        cmocka_unit_test(test_cpio),
        cmocka_unit_test(test_proto_roundtrip),
        cmocka_unit_test(test_proto_bad_headers),
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_quote_and_validators),
        cmocka_unit_test(test_setup_script),
        cmocka_unit_test(test_setup_script_arp),
        cmocka_unit_test(test_accel),
        cmocka_unit_test(test_node_config_errors),
        cmocka_unit_test(test_image_spec_errors),
        cmocka_unit_test(test_image_build_cancelled),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
