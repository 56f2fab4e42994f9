/*
 * libFuzzer target for hv's parsers of untrusted bytes: the first byte
 * picks one, the rest is its input.
 *   0  QMP JSON (fl_json_parse)
 *   1  agent frames: header + payload readers, as the controller reads an
 *      EXEC_RESULT / CLOCK_RESULT / ERROR
 *   2  ELF dynamic section, PVH note, .modinfo (downloaded packages)
 *   3  LZ4 legacy stream + block decoder (the kernel payload)
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hv/internal.h"
#include "hv/proto.h"

static void agent(const uint8_t *p, size_t n)
{
    while (n >= FL_AGENT_HEADER_SIZE) {
        struct fl_agent_header h;
        if (fl_agent_header_parse(p, &h) < 0) {
            return;
        }
        p += FL_AGENT_HEADER_SIZE;
        n -= FL_AGENT_HEADER_SIZE;
        size_t len = h.len < n ? h.len : n;
        struct fl_agent_rd r = {.p = p, .left = len};
        uint32_t sz;
        switch (h.type) {
        case FL_AGENT_EXEC_RESULT:
            fl_agent_rd_u32(&r);
            fl_agent_rd_u32(&r);
            fl_agent_rd_u32(&r);
            fl_agent_rd_bytes(&r, FL_AGENT_OUTPUT_MAX, &sz);
            fl_agent_rd_bytes(&r, FL_AGENT_OUTPUT_MAX, &sz);
            break;
        case FL_AGENT_CLOCK_RESULT:
            fl_agent_rd_u32(&r);
            fl_agent_rd_i64(&r);
            break;
        case FL_AGENT_ERROR:
            fl_agent_rd_u32(&r);
            fl_agent_rd_bytes(&r, 4096, &sz);
            break;
        default:
            fl_agent_rd_u32(&r);
            break;
        }
        (void)fl_agent_rd_done(&r);
        p += len;
        n -= len;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    switch (data[0] % 4) {
    case 0: {
        struct fl_json *j = fl_json_parse((const char *)p, n, NULL);
        if (j) {
            (void)fl_json_get_str(j, "event");
            (void)fl_json_get(fl_json_get(j, "error"), "desc");
        }
        fl_json_free(j);
        break;
    }
    case 1:
        agent(p, n);
        break;
    case 2: {
        struct hv_elf_deps deps;
        if (hv_elf_read_deps(p, n, &deps) > 0) {
            hv_elf_deps_clear(&deps);
        }
        (void)hv_elf_has_pvh_note(p, n);
        free(hv_modinfo_depends(p, n));
        uint8_t *copy = malloc(n ? n : 1);
        memcpy(copy, p, n);
        (void)hv_elf_trim_zero_tails(copy, n);
        free(copy);
        break;
    }
    case 3: {
        size_t out = 0;
        free(hv_lz4_legacy_decode(p, n, &out, NULL));
        uint8_t buf[4096];
        (void)hv_lz4_block_decode(p, n, buf, sizeof buf);
        break;
    }
    }
    return 0;
}
