/*
 * The fault layer: the top of every disk's stack (like nbdkit's error
 * filter).  It owns the disk's impair state; the server asks it for a
 * request's fate when the request arrives (bb_fault_decide: latency,
 * errno, corruption, drawn in arrival order), and the decision then
 * travels down with the request (struct bb_io.dec):
 *
 *   dec.error      the request fails with it; the layers below never see it
 *   dec.corrupted  a read succeeds, then one bit of its data is flipped
 *   (latency is the server's: it holds the reply until dec.complete_ns)
 *
 * Traffic without a decision (io or io->dec NULL) passes through.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "blkback/layer-provider.h"
#include "impair/impair.h"

struct fault_layer {
    struct bb_layer layer;
    struct impair_disk *imp;
    struct bb_fault_counts counts;
};

static struct fault_layer *fault_of(struct bb_layer *l)
{
    return container_of(l, struct fault_layer, layer);
}

/* The injected errno of io's decision, counted; 0 = none. */
static int injected(struct bb_layer *l, const struct bb_io *io)
{
    if (!io || !io->dec || !io->dec->error) {
        return 0;
    }
    fault_of(l)->counts.injected++;
    return io->dec->error;
}

static int fault_pread(struct bb_layer *l, void *buf, uint64_t len, uint64_t off,
                       const struct bb_io *io)
{
    int e = injected(l, io);
    if (e) {
        return e;
    }
    e = l->next->ops->pread(l->next, buf, len, off, io);
    if (e == 0 && io && io->dec && io->dec->corrupted && io->dec->corrupt_offset < len) {
        ((uint8_t *)buf)[io->dec->corrupt_offset] ^= io->dec->corrupt_mask;
        fault_of(l)->counts.reads_corrupted++;
    }
    return e;
}

static int fault_pwrite(struct bb_layer *l, const void *buf, uint64_t len, uint64_t off,
                        unsigned flags, const struct bb_io *io)
{
    int e = injected(l, io);
    return e ? e : l->next->ops->pwrite(l->next, buf, len, off, flags, io);
}

static int fault_zero(struct bb_layer *l, uint64_t len, uint64_t off, unsigned flags,
                      const struct bb_io *io)
{
    int e = injected(l, io);
    return e ? e : l->next->ops->zero(l->next, len, off, flags, io);
}

static int fault_flush(struct bb_layer *l, const struct bb_io *io)
{
    int e = injected(l, io);
    return e ? e : l->next->ops->flush(l->next, io);
}

static void fault_destroy(struct bb_layer *l)
{
    struct fault_layer *f = fault_of(l);
    impair_disk_destroy(f->imp);
    free(f);
}

static const struct bb_layer_ops fault_ops = {
    .name = "fault",
    .pread = fault_pread,
    .pwrite = fault_pwrite,
    .zero = fault_zero,
    .flush = fault_flush,
    .destroy = fault_destroy,
};

struct bb_layer *bb_fault_create(struct bb_layer *next, const struct impair_disk_params *params,
                                 uint64_t seed, uint64_t stream, struct fl_error **errp)
{
    struct impair_disk_params none;
    memset(&none, 0, sizeof(none));
    struct impair_disk *imp = impair_disk_create(params ? params : &none, seed, stream, errp);
    if (!imp) {
        return NULL;
    }
    struct fault_layer *f = fl_xcalloc(1, sizeof(*f));
    f->layer.ops = &fault_ops;
    f->layer.next = next;
    f->imp = imp;
    return &f->layer;
}

bool bb_fault_set(struct bb_layer *l, const struct impair_disk_params *params,
                  struct fl_error **errp)
{
    struct impair_disk_params none;
    memset(&none, 0, sizeof(none));
    return impair_disk_set_params(fault_of(l)->imp, params ? params : &none, errp);
}

int bb_fault_decide(struct bb_layer *l, int64_t now_ns, unsigned op, uint64_t off, uint64_t len,
                    struct impair_io_decision *dec)
{
    struct fault_layer *f = fault_of(l);
    bool extent = op != IMPAIR_IO_FLUSH;
    int e = impair_disk_decide(f->imp, now_ns, (enum impair_io_op)op, extent ? off : 0,
                               extent ? len : 0, dec);
    if (e < 0) {
        memset(dec, 0, sizeof(*dec));
        dec->complete_ns = now_ns;
        f->counts.internal++;
    }
    return e < 0 ? e : 0;
}

void bb_fault_get_counts(struct bb_layer *l, struct bb_fault_counts *out)
{
    *out = fault_of(l)->counts;
}
