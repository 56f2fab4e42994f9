/*
 * Frame reassembly for QEMU's stream protocol (internal to netback/).
 *
 *   byte stream:  [len:4 BE][frame: len bytes][len:4 BE][frame] ...
 *
 * nb_reasm_feed() takes whatever chunk a read() returned.  Frames that lie
 * whole inside the chunk are handed to the callback in place (no copy);
 * only a frame split across chunks is copied into the reassembler's own
 * buffer (NB_FRAME_MAX bytes, allocated on first need).  A length outside
 * NB_FRAME_MIN..NB_FRAME_MAX is a protocol violation: feed returns
 * -EBADMSG and r->error says what and where; the stream cannot be
 * resynchronised after that (there are no frame markers), so the caller
 * closes the connection.
 */
#ifndef FL_NETBACK_REASSEMBLY_H
#define FL_NETBACK_REASSEMBLY_H

#include <stddef.h>
#include <stdint.h>

#include "netback/netback.h"

/* Called once per complete frame; a negative return stops the feed and is
 * returned by nb_reasm_feed (the remaining bytes are not consumed). */
typedef int nb_frame_fn(void *arg, const uint8_t *frame, size_t size);

struct nb_reasm {
    uint8_t hdr[NB_STREAM_HDR_SIZE];
    size_t hdr_have; /* bytes of the current length prefix seen */
    uint32_t want;   /* length of the frame being assembled (valid when hdr_have == 4) */
    size_t have;     /* bytes of that frame copied into buf */
    uint8_t *buf;    /* NB_FRAME_MAX bytes, allocated on first split frame */
    uint64_t offset; /* stream bytes consumed since the last reset */
    uint64_t frames; /* frames completed since the last reset */
    char error[160]; /* set when feed/finish return -EBADMSG */
};

void nb_reasm_init(struct nb_reasm *r);
/* Forget any partial frame (new connection); keeps the buffer. */
void nb_reasm_reset(struct nb_reasm *r);
void nb_reasm_free(struct nb_reasm *r);

/* 0 when every byte was consumed, -EBADMSG on a protocol violation
 * (r->error), or the callback's negative return. */
int nb_reasm_feed(struct nb_reasm *r, const uint8_t *data, size_t size, nb_frame_fn *cb, void *arg);
/* The stream ended: 0 at a frame boundary, -EBADMSG (r->error) if it
 * ended inside a length prefix or a frame. */
int nb_reasm_finish(struct nb_reasm *r);

#endif /* FL_NETBACK_REASSEMBLY_H */
