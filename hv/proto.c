/* The guest agent wire format (see proto.h); linked into both the
 * controller and the static guest agent, so it uses libc only. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hv/proto.h"

const char *fl_agent_msg_name(uint32_t type)
{
    switch (type) {
#define FL_AGENT_MSG_CASE(name, val)                                                               \
    case val:                                                                                      \
        return #name;
        FL_AGENT_MSGS(FL_AGENT_MSG_CASE)
#undef FL_AGENT_MSG_CASE
    }
    return NULL;
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

int fl_agent_header_parse(const uint8_t *p, struct fl_agent_header *h)
{
    if (get_u32(p) != FL_AGENT_MAGIC) {
        return -EPROTO;
    }
    uint16_t type = (uint16_t)(p[4] | p[5] << 8);
    if (p[6] || p[7] || !fl_agent_msg_name(type)) {
        return -EPROTO;
    }
    h->type = type;
    h->id = get_u32(p + 8);
    h->session = get_u32(p + 12);
    h->len = get_u32(p + 16);
    if (h->len > FL_AGENT_PAYLOAD_MAX) {
        return -EMSGSIZE;
    }
    return 0;
}

void fl_agent_header_write(uint8_t *p, const struct fl_agent_header *h)
{
    put_u32(p, FL_AGENT_MAGIC);
    p[4] = (uint8_t)h->type;
    p[5] = (uint8_t)(h->type >> 8);
    p[6] = p[7] = 0;
    put_u32(p + 8, h->id);
    put_u32(p + 12, h->session);
    put_u32(p + 16, h->len);
}

uint32_t fl_agent_rd_u32(struct fl_agent_rd *r)
{
    if (r->bad || r->left < 4) {
        r->bad = true;
        return 0;
    }
    uint32_t v = get_u32(r->p);
    r->p += 4;
    r->left -= 4;
    return v;
}

int64_t fl_agent_rd_i64(struct fl_agent_rd *r)
{
    uint64_t lo = fl_agent_rd_u32(r);
    uint64_t hi = fl_agent_rd_u32(r);
    return (int64_t)(lo | hi << 32);
}

const uint8_t *fl_agent_rd_bytes(struct fl_agent_rd *r, uint32_t max, uint32_t *size)
{
    uint32_t n = fl_agent_rd_u32(r);
    if (r->bad || n > max || n > r->left) {
        r->bad = true;
        *size = 0;
        return NULL;
    }
    const uint8_t *p = r->p;
    r->p += n;
    r->left -= n;
    *size = n;
    return p;
}

bool fl_agent_rd_done(const struct fl_agent_rd *r)
{
    return !r->bad && r->left == 0;
}

static uint8_t *wr_room(struct fl_agent_wr *w, size_t n)
{
    if (w->bad) {
        return NULL;
    }
    if (w->size + n > w->alloc) {
        size_t alloc = w->alloc ? w->alloc : 256;
        while (alloc < w->size + n) {
            alloc *= 2;
        }
        uint8_t *p = realloc(w->p, alloc);
        if (!p) {
            w->bad = true;
            return NULL;
        }
        w->p = p;
        w->alloc = alloc;
    }
    uint8_t *p = w->p + w->size;
    w->size += n;
    return p;
}

void fl_agent_wr_u32(struct fl_agent_wr *w, uint32_t v)
{
    uint8_t *p = wr_room(w, 4);
    if (p) {
        put_u32(p, v);
    }
}

void fl_agent_wr_i64(struct fl_agent_wr *w, int64_t v)
{
    fl_agent_wr_u32(w, (uint32_t)(uint64_t)v);
    fl_agent_wr_u32(w, (uint32_t)((uint64_t)v >> 32));
}

void fl_agent_wr_bytes(struct fl_agent_wr *w, const void *data, uint32_t size)
{
    fl_agent_wr_u32(w, size);
    uint8_t *p = wr_room(w, size);
    if (p && size) {
        memcpy(p, data, size);
    }
}

size_t fl_agent_wr_begin(struct fl_agent_wr *w, uint16_t type, uint32_t id, uint32_t session)
{
    size_t start = w->size;
    uint8_t *p = wr_room(w, FL_AGENT_HEADER_SIZE);
    if (p) {
        struct fl_agent_header h = {.type = type, .id = id, .session = session, .len = 0};
        fl_agent_header_write(p, &h);
    }
    return start;
}

void fl_agent_wr_finish(struct fl_agent_wr *w, size_t start)
{
    if (w->bad) {
        return;
    }
    size_t len = w->size - start - FL_AGENT_HEADER_SIZE;
    if (len > FL_AGENT_PAYLOAD_MAX) {
        w->bad = true;
        return;
    }
    put_u32(w->p + start + 16, (uint32_t)len);
}

void fl_agent_wr_free(struct fl_agent_wr *w)
{
    free(w->p);
    memset(w, 0, sizeof *w);
}
