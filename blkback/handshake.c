/*
 * The NBD handshake, fixed newstyle only (doc/proto.md "Newstyle
 * negotiation"): the greeting, the client's flags, then options until
 * EXPORT_NAME or GO moves the connection to transmission.c.
 *
 *   greeting ─▶ CS_CLIENT_FLAGS ─▶ CS_OPT_HDR ◀──▶ CS_OPT_DATA ─▶ handle_option()
 *                                                                 │ GO / EXPORT_NAME
 *                                                                 ▼
 *                                                            CS_REQ_HDR
 *
 * Options larger than NBD_MAX_OPTION_SIZE, a bad option magic and unknown
 * client flags close the connection; everything else gets an option reply.
 */
#include <stdlib.h>
#include <string.h>

#include "blkback/internal.h"

void bb_handshake_greet(struct bb_conn *c)
{
    uint8_t *p = bb_out_reserve(c, 18);
    put64(p, NBD_MAGIC);
    put64(p + 8, NBD_OPT_MAGIC);
    put16(p + 16, NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
}

static void opt_reply(struct bb_conn *c, uint32_t opt, uint32_t type, const void *data, size_t len)
{
    uint8_t *p = bb_out_reserve(c, 20 + len);
    put64(p, NBD_REP_MAGIC);
    put32(p + 8, opt);
    put32(p + 12, type);
    put32(p + 16, (uint32_t)len);
    if (len) {
        memcpy(p + 20, data, len);
    }
}

static void opt_error(struct bb_conn *c, uint32_t opt, uint32_t type, const char *msg)
{
    opt_reply(c, opt, type, msg, strlen(msg));
}

static bool export_matches(const struct bb_conn *c, const uint8_t *name, size_t len)
{
    const char *e = c->disk->export_name;
    return len == 0 || (strlen(e) == len && memcmp(e, name, len) == 0);
}

static void enter_transmission(struct bb_conn *c)
{
    c->state = CS_REQ_HDR;
    c->disk->st.connections++;
}

static void handle_info_go(struct bb_conn *c, const uint8_t *data, uint32_t len)
{
    uint32_t opt = c->opt;
    if (len < 6) {
        opt_error(c, opt, NBD_REP_ERR_INVALID, "option data too short for INFO/GO");
        return;
    }
    uint32_t nl = be32(data);
    if (nl > len - 6 || nl > NBD_MAX_STRING) {
        opt_error(c, opt, NBD_REP_ERR_INVALID, "export name length exceeds the option data");
        return;
    }
    uint16_t nreq = be16(data + 4 + nl);
    if ((uint64_t)len != 6 + (uint64_t)nl + 2 * (uint64_t)nreq) {
        opt_error(c, opt, NBD_REP_ERR_INVALID, "information request count disagrees with length");
        return;
    }
    if (!export_matches(c, data + 4, nl)) {
        opt_error(c, opt, NBD_REP_ERR_UNKNOWN, "no such export on this socket");
        return;
    }
    bool want_name = false, want_desc = false, want_bs = false;
    for (uint16_t i = 0; i < nreq; i++) {
        uint16_t t = be16(data + 6 + nl + 2 * i);
        want_name |= t == NBD_INFO_NAME;
        want_desc |= t == NBD_INFO_DESCRIPTION;
        want_bs |= t == NBD_INFO_BLOCK_SIZE;
    }
    uint8_t info[12];
    put16(info, NBD_INFO_EXPORT);
    put64(info + 2, c->disk->size);
    put16(info + 10, bb_tx_flags(c));
    opt_reply(c, opt, NBD_REP_INFO, info, sizeof(info));
    if (want_name) {
        size_t el = strlen(c->disk->export_name);
        uint8_t *buf = fl_xmalloc(2 + el);
        put16(buf, NBD_INFO_NAME);
        memcpy(buf + 2, c->disk->export_name, el);
        opt_reply(c, opt, NBD_REP_INFO, buf, 2 + el);
        free(buf);
    }
    if (want_desc) {
        char *desc = fl_xasprintf("faultline disk %s:%s", c->disk->node, c->disk->name);
        size_t dl = strlen(desc);
        uint8_t *buf = fl_xmalloc(2 + dl);
        put16(buf, NBD_INFO_DESCRIPTION);
        memcpy(buf + 2, desc, dl);
        opt_reply(c, opt, NBD_REP_INFO, buf, 2 + dl);
        free(buf);
        free(desc);
    }
    if (want_bs) {
        uint8_t bs[14];
        put16(bs, NBD_INFO_BLOCK_SIZE);
        put32(bs + 2, 1);
        put32(bs + 6, BB_CLUSTER_SIZE);
        put32(bs + 10, BB_MAX_PAYLOAD);
        opt_reply(c, opt, NBD_REP_INFO, bs, sizeof(bs));
    }
    opt_reply(c, opt, NBD_REP_ACK, NULL, 0);
    if (opt == NBD_OPT_GO) {
        enter_transmission(c);
    }
}

static void handle_meta_context(struct bb_conn *c, const uint8_t *data, uint32_t len)
{
    /* export name length, name, query count, queries (each length + string) */
    if (!c->structured) {
        opt_error(c, c->opt, NBD_REP_ERR_INVALID, "negotiate structured replies first");
        return;
    }
    if (len < 8) {
        opt_error(c, c->opt, NBD_REP_ERR_INVALID, "option data too short");
        return;
    }
    uint32_t nl = be32(data);
    if (nl > len - 8) {
        opt_error(c, c->opt, NBD_REP_ERR_INVALID, "export name length exceeds the option data");
        return;
    }
    uint32_t nq = be32(data + 4 + nl);
    uint64_t pos = 8 + (uint64_t)nl;
    for (uint32_t i = 0; i < nq; i++) {
        if (pos + 4 > len || be32(data + pos) > len - pos - 4) {
            opt_error(c, c->opt, NBD_REP_ERR_INVALID, "query length exceeds the option data");
            return;
        }
        pos += 4 + be32(data + pos);
    }
    if (pos != len) {
        opt_error(c, c->opt, NBD_REP_ERR_INVALID, "trailing bytes after the queries");
        return;
    }
    if (!export_matches(c, data + 4, nl)) {
        opt_error(c, c->opt, NBD_REP_ERR_UNKNOWN, "no such export on this socket");
        return;
    }
    /* no metadata contexts: every block reads as allocated data */
    opt_reply(c, c->opt, NBD_REP_ACK, NULL, 0);
}

/* Returns false when the connection must close. */
static bool handle_option(struct bb_conn *c, const uint8_t *data, uint32_t len)
{
    switch (c->opt) {
    case NBD_OPT_EXPORT_NAME: {
        if (!export_matches(c, data, len)) {
            FL_LOG_RL(&c->disk->rl, FL_LOG_WARN, ROOM,
                      "%s:%s: client asked for an unknown export (%u bytes); closing",
                      c->disk->node, c->disk->name, len);
            return false;
        }
        uint8_t *p = bb_out_reserve(c, 10 + (c->no_zeroes ? 0 : 124));
        put64(p, c->disk->size);
        put16(p + 8, bb_tx_flags(c));
        if (!c->no_zeroes) {
            memset(p + 10, 0, 124);
        }
        enter_transmission(c);
        return true;
    }
    case NBD_OPT_ABORT:
        opt_reply(c, c->opt, NBD_REP_ACK, NULL, 0);
        c->state = CS_CLOSED;
        return true;
    case NBD_OPT_LIST: {
        if (len != 0) {
            opt_error(c, c->opt, NBD_REP_ERR_INVALID, "LIST takes no data");
            return true;
        }
        size_t el = strlen(c->disk->export_name);
        uint8_t *buf = fl_xmalloc(4 + el);
        put32(buf, (uint32_t)el);
        memcpy(buf + 4, c->disk->export_name, el);
        opt_reply(c, c->opt, NBD_REP_SERVER, buf, 4 + el);
        free(buf);
        opt_reply(c, c->opt, NBD_REP_ACK, NULL, 0);
        return true;
    }
    case NBD_OPT_STARTTLS:
        opt_error(c, c->opt, NBD_REP_ERR_POLICY, "TLS is not offered on local unix sockets");
        return true;
    case NBD_OPT_INFO:
    case NBD_OPT_GO:
        handle_info_go(c, data, len);
        return true;
    case NBD_OPT_STRUCTURED_REPLY:
        if (len != 0) {
            opt_error(c, c->opt, NBD_REP_ERR_INVALID, "STRUCTURED_REPLY takes no data");
        } else if (c->structured) {
            opt_error(c, c->opt, NBD_REP_ERR_INVALID, "structured replies already negotiated");
        } else {
            c->structured = true;
            opt_reply(c, c->opt, NBD_REP_ACK, NULL, 0);
        }
        return true;
    case NBD_OPT_LIST_META_CONTEXT:
    case NBD_OPT_SET_META_CONTEXT:
        handle_meta_context(c, data, len);
        return true;
    default:
        opt_error(c, c->opt, NBD_REP_ERR_UNSUP, "option not supported by faultline");
        return true;
    }
}

/* Consumes one handshake step from the buffered input; false when more
 * input is needed or the connection ended. */
bool bb_handshake_step(struct bb_conn *c)
{
    size_t avail = c->in_end - c->in_start;
    const uint8_t *p = c->in + c->in_start;
    switch (c->state) {
    case CS_CLIENT_FLAGS: {
        if (avail < 4) {
            return false;
        }
        uint32_t f = be32(p);
        c->in_start += 4;
        if (f & ~(NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES)) {
            bb_conn_protocol_error(c, "client set unknown handshake flags");
            return false;
        }
        c->no_zeroes = f & NBD_FLAG_C_NO_ZEROES;
        c->state = CS_OPT_HDR;
        return true;
    }
    case CS_OPT_HDR:
        if (avail < 16) {
            return false;
        }
        if (be64(p) != NBD_OPT_MAGIC) {
            bb_conn_protocol_error(c, "bad option magic");
            return false;
        }
        c->opt = be32(p + 8);
        c->opt_len = be32(p + 12);
        c->in_start += 16;
        if (c->opt_len > NBD_MAX_OPTION_SIZE) {
            bb_conn_protocol_error(c, "option data larger than 64 KiB");
            return false;
        }
        c->state = CS_OPT_DATA;
        return true;
    case CS_OPT_DATA:
        if (avail < c->opt_len) {
            return false;
        }
        c->in_start += c->opt_len;
        c->state = CS_OPT_HDR;
        if (!handle_option(c, p, c->opt_len)) {
            bb_conn_fail(c);
            return false;
        }
        return true;
    default:
        return false;
    }
}
