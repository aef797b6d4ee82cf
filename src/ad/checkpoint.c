/* src/ad/checkpoint.c -- the per-tape checkpoint budget of scans
 * (tg_tape_set_checkpoints), kept on the tape as an attachment so that
 * setting it is not a change of the recording. */
#include "tape/alloc.h"
#include "ad/xsweep.h"

typedef struct ckpt_opt {
    _Atomic uint64_t snaps;
} ckpt_opt;

static void *
opt_make(void)
{
    ckpt_opt *o = mem_malloc(sizeof *o);
    if (o)
        atomic_init(&o->snaps, 0);
    return o;
}

static void
opt_destroy(void *obj)
{
    mem_free(obj);
}

static const tape_key opt_key = { opt_make, opt_destroy };

uint64_t
ad_x_snaps(const tg_tape *t)
{
    ckpt_opt *o = tape_attachment_find(t, &opt_key);
    return o ? atomic_load(&o->snaps) : 0;
}

tg_status
tg_tape_set_checkpoints(tg_tape *t, size_t snapshots)
{
    if (!t)
        return tape_fail_call(TG_ERR_ARG, "tg_tape_set_checkpoints: NULL tape");
    ckpt_opt *o = tape_attachment(t, &opt_key);
    if (!o)
        return tape_fail_call(TG_ERR_NOMEM, "tg_tape_set_checkpoints: out of memory");
    atomic_store(&o->snaps, (uint64_t)snapshots);
    return TG_OK;
}
