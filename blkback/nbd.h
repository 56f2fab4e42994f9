/*
 * blkback internal: NBD protocol constants (NetworkBlockDevice/nbd
 * doc/proto.md) and the connection entry points used by the server, the
 * unit tests and the fuzz target.  All protocol integers are big-endian.
 */
#ifndef FL_BLKBACK_NBD_H
#define FL_BLKBACK_NBD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NBD_MAGIC         UINT64_C(0x4e42444d41474943) /* "NBDMAGIC" */
#define NBD_OPT_MAGIC     UINT64_C(0x49484156454F5054) /* "IHAVEOPT" */
#define NBD_REP_MAGIC     UINT64_C(0x0003e889045565a9)
#define NBD_REQUEST_MAGIC 0x25609513u
#define NBD_SIMPLE_MAGIC  0x67446698u
#define NBD_STRUCT_MAGIC  0x668e33efu

/* handshake flags (server) and client flags */
#define NBD_FLAG_FIXED_NEWSTYLE   0x1u
#define NBD_FLAG_NO_ZEROES        0x2u
#define NBD_FLAG_C_FIXED_NEWSTYLE 0x1u
#define NBD_FLAG_C_NO_ZEROES      0x2u

/* transmission flags */
#define NBD_FLAG_HAS_FLAGS         (1u << 0)
#define NBD_FLAG_READ_ONLY         (1u << 1)
#define NBD_FLAG_SEND_FLUSH        (1u << 2)
#define NBD_FLAG_SEND_FUA          (1u << 3)
#define NBD_FLAG_ROTATIONAL        (1u << 4)
#define NBD_FLAG_SEND_TRIM         (1u << 5)
#define NBD_FLAG_SEND_WRITE_ZEROES (1u << 6)
#define NBD_FLAG_SEND_DF           (1u << 7)
#define NBD_FLAG_CAN_MULTI_CONN    (1u << 8)

/* options */
#define NBD_OPT_EXPORT_NAME       1u
#define NBD_OPT_ABORT             2u
#define NBD_OPT_LIST              3u
#define NBD_OPT_STARTTLS          5u
#define NBD_OPT_INFO              6u
#define NBD_OPT_GO                7u
#define NBD_OPT_STRUCTURED_REPLY  8u
#define NBD_OPT_LIST_META_CONTEXT 10u
#define NBD_OPT_SET_META_CONTEXT  11u

/* option replies */
#define NBD_REP_ACK         1u
#define NBD_REP_SERVER      2u
#define NBD_REP_INFO        3u
#define NBD_REP_ERR_BIT     0x80000000u
#define NBD_REP_ERR_UNSUP   (NBD_REP_ERR_BIT | 1u)
#define NBD_REP_ERR_POLICY  (NBD_REP_ERR_BIT | 2u)
#define NBD_REP_ERR_INVALID (NBD_REP_ERR_BIT | 3u)
#define NBD_REP_ERR_UNKNOWN (NBD_REP_ERR_BIT | 6u)
#define NBD_REP_ERR_TOO_BIG (NBD_REP_ERR_BIT | 9u)

#define NBD_INFO_EXPORT      0u
#define NBD_INFO_NAME        1u
#define NBD_INFO_DESCRIPTION 2u
#define NBD_INFO_BLOCK_SIZE  3u

/* commands */
#define NBD_CMD_READ         0u
#define NBD_CMD_WRITE        1u
#define NBD_CMD_DISC         2u
#define NBD_CMD_FLUSH        3u
#define NBD_CMD_TRIM         4u
#define NBD_CMD_CACHE        5u
#define NBD_CMD_WRITE_ZEROES 6u
#define NBD_CMD_BLOCK_STATUS 7u

#define NBD_CMD_FLAG_FUA     (1u << 0)
#define NBD_CMD_FLAG_NO_HOLE (1u << 1)
#define NBD_CMD_FLAG_DF      (1u << 2)

#define NBD_REPLY_FLAG_DONE        1u
#define NBD_REPLY_TYPE_NONE        0u
#define NBD_REPLY_TYPE_OFFSET_DATA 1u
#define NBD_REPLY_TYPE_ERROR       0x8001u

/* NBD error values (doc/proto.md "Error values") */
#define NBD_EPERM     1u
#define NBD_EIO       5u
#define NBD_ENOMEM    12u
#define NBD_EINVAL    22u
#define NBD_ENOSPC    28u
#define NBD_EOVERFLOW 75u
#define NBD_ESHUTDOWN 108u

#define NBD_MAX_OPTION_SIZE (64u << 10) /* larger option payloads: hostile, close */
#define NBD_MAX_STRING      4096u

/* Big-endian fields in protocol messages. */
static inline uint16_t be16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}
static inline uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline uint64_t be64(const uint8_t *p)
{
    return (uint64_t)be32(p) << 32 | be32(p + 4);
}
static inline void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}
static inline void put32(uint8_t *p, uint32_t v)
{
    put16(p, (uint16_t)(v >> 16));
    put16(p + 2, (uint16_t)v);
}
static inline void put64(uint8_t *p, uint64_t v)
{
    put32(p, (uint32_t)(v >> 32));
    put32(p + 4, (uint32_t)v);
}

struct bb_disk;
struct bb_conn;

/* A connection not backed by a socket (unit tests, fuzzing): bytes are
 * fed with bb_conn_feed() and the server's output accumulates until
 * bb_conn_take_output().  The handshake greeting is output at creation. */
struct bb_conn *bb_conn_create_mem(struct bb_disk *disk);
/* Returns false once the connection is closed (malformed input, ABORT,
 * DISC); later calls do nothing. */
bool bb_conn_feed(struct bb_conn *conn, const void *data, size_t size);
/* Moves the accumulated output into *out (caller frees; size in *size). */
void bb_conn_take_output(struct bb_conn *conn, uint8_t **out, size_t *size);
bool bb_conn_closed(const struct bb_conn *conn);
void bb_conn_destroy(struct bb_conn *conn); /* accepts NULL */

/* Maps an errno to the NBD error value sent on the wire. */
uint32_t bb_nbd_errno(int err);

#endif /* FL_BLKBACK_NBD_H */
