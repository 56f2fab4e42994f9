/*
 * The faultline guest agent protocol, shared by the controller (hv/node.c)
 * and the guest agent (hv/agent/agent.c).  Internal to hv/.
 *
 * One virtio-serial port ("org.faultline.agent") carries frames in both
 * directions.  Every integer is little-endian.
 *
 *   offset  size  field
 *        0     4  magic   "FLA1" (0x31414c46)
 *        4     2  type    enum fl_agent_msg
 *        6     2  zero
 *        8     4  id      request id chosen by the controller; echoed back
 *       12     4  session guest's boot nonce (HELLO); requests carrying
 *                         another session are ignored by the agent (stale
 *                         bytes queued before a reset never run)
 *       16     4  len     payload bytes, <= FL_AGENT_PAYLOAD_MAX
 *       20   len  payload (layout per type below)
 *
 *   HELLO        g->h  u32 version, u32 session          (id 0)
 *   PING         h->g  empty
 *   PONG         g->h  empty
 *   EXEC         h->g  u32 timeout_ms (0 = none), u32 n_env,
 *                      n_env x (u32 size, bytes "K=V"), u32 size, bytes cmd
 *   EXEC_RESULT  g->h  i32 exit_code, i32 signal, u32 flags (FL_AGENT_F_*),
 *                      u32 out_size, out bytes, u32 err_size, err bytes
 *   CLOCK        h->g  u32 mode (0 jump, 1 set), i64 value_ns
 *   CLOCK_RESULT g->h  i32 errno (0 = ok), i64 new CLOCK_REALTIME ns
 *   ERROR        g->h  i32 errno, u32 size, message bytes (request failed)
 *
 * Either side treats a bad magic, unknown type, oversized length or a
 * payload that does not parse exactly as a protocol violation and drops
 * the connection state (controller: on_fail; agent: resynchronises by
 * discarding its input buffer).
 */
#ifndef FL_HV_PROTO_H
#define FL_HV_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FL_AGENT_MAGIC       UINT32_C(0x31414c46)
#define FL_AGENT_VERSION     1u
#define FL_AGENT_HEADER_SIZE 20u
/* Room for two full 1 MiB outputs plus fields. */
#define FL_AGENT_PAYLOAD_MAX ((uint32_t)((2u << 20) + 4096u))
#define FL_AGENT_OUTPUT_MAX  ((uint32_t)(1u << 20))
#define FL_AGENT_CMD_MAX     ((uint32_t)(1u << 20))
#define FL_AGENT_ENV_MAX     256u
#define FL_AGENT_PORT_NAME   "org.faultline.agent"

#define FL_AGENT_MSGS(X)                                                                           \
    X(HELLO, 1)                                                                                    \
    X(PING, 2)                                                                                     \
    X(PONG, 3)                                                                                     \
    X(EXEC, 4)                                                                                     \
    X(EXEC_RESULT, 5)                                                                              \
    X(CLOCK, 6)                                                                                    \
    X(CLOCK_RESULT, 7)                                                                             \
    X(ERROR, 8)

enum fl_agent_msg {
#define FL_AGENT_MSG_ENUM(name, val) FL_AGENT_##name = val,
    FL_AGENT_MSGS(FL_AGENT_MSG_ENUM)
#undef FL_AGENT_MSG_ENUM
};

#define FL_AGENT_F_TIMED_OUT     1u
#define FL_AGENT_F_OUT_TRUNCATED 2u
#define FL_AGENT_F_ERR_TRUNCATED 4u

struct fl_agent_header {
    uint16_t type;
    uint32_t id;
    uint32_t session;
    uint32_t len;
};

/* Returns the name of a message type, or NULL if unknown. */
const char *fl_agent_msg_name(uint32_t type);

/* Parses a header from FL_AGENT_HEADER_SIZE bytes.  0, or -EPROTO (bad
 * magic, nonzero reserved field, unknown type) or -EMSGSIZE (len too
 * large). */
int fl_agent_header_parse(const uint8_t *p, struct fl_agent_header *h);
void fl_agent_header_write(uint8_t *p, const struct fl_agent_header *h);

/* A bounded little-endian reader over one payload. */
struct fl_agent_rd {
    const uint8_t *p;
    size_t left;
    bool bad; /* set on any over-read; sticky */
};
uint32_t fl_agent_rd_u32(struct fl_agent_rd *r);
int64_t fl_agent_rd_i64(struct fl_agent_rd *r);
/* Reads u32 size then that many bytes (size <= max); returns a pointer
 * into the payload (not NUL-terminated) or NULL (and r->bad). */
const uint8_t *fl_agent_rd_bytes(struct fl_agent_rd *r, uint32_t max, uint32_t *size);
/* True when the whole payload was consumed without error. */
bool fl_agent_rd_done(const struct fl_agent_rd *r);

/* A growable writer (for the agent and the controller; abort on OOM is
 * the caller's allocator policy: realloc failure sets `bad`). */
struct fl_agent_wr {
    uint8_t *p;
    size_t size, alloc;
    bool bad;
};
void fl_agent_wr_u32(struct fl_agent_wr *w, uint32_t v);
void fl_agent_wr_i64(struct fl_agent_wr *w, int64_t v);
void fl_agent_wr_bytes(struct fl_agent_wr *w, const void *data, uint32_t size);
/* Starts a frame: reserves the header (filled by fl_agent_wr_finish);
 * returns the frame's start offset. */
size_t fl_agent_wr_begin(struct fl_agent_wr *w, uint16_t type, uint32_t id, uint32_t session);
/* Completes the frame started at `start` (offset of its header). */
void fl_agent_wr_finish(struct fl_agent_wr *w, size_t start);
void fl_agent_wr_free(struct fl_agent_wr *w);

#endif /* FL_HV_PROTO_H */
