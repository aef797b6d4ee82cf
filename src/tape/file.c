/* src/tape/file.c -- the tape file format (docs/file-format.md): a header,
 * sections each followed by a 64-bit FNV-1a hash of its payload, and a hash
 * of everything before it at the end.  Little-endian on disk on every
 * platform.
 *
 * Format 2 (written) names its operations: an op-name table (section OPNM)
 * lists the mnemonics the tape uses, and the opcode column holds indices
 * into it, so files keep their meaning whatever the running library's
 * numbering.  Format 1 (read only) stored raw opcode numbers; it is read
 * through the frozen list of format 1 ops below.
 *
 * Format 3 (written for tapes with loops; a tape without them is still
 * written as format 2) holds a tree of tapes: section TAPS gives their
 * number m, then each tape in pre-order has format 2's six sections and
 * XREC (its body list as indices of later tapes of the file, its
 * extended-instruction records and their operand lists).  Tape 0 is the
 * tape; every other tape is the body of exactly one earlier tape, so the
 * tapes built are as many as the file holds, and nesting is bounded by
 * TAPE_MAX_DEPTH.  A tape that calls user functions (tg_call_func) is
 * written as format 3 too, with a CALL section after TAPS naming them
 * (name, n, k; present only then); loading resolves them in the caller's
 * tg_funcs object (tg_tape_load_funcs).
 *
 * Loading reads the 24-byte header first and checks magic, version and the
 * declared size against the real size (so a foreign or endless input costs
 * a few bytes, not its size), then reads exactly that many bytes.  The
 * loader checks every count against the bytes really there before
 * allocating, the encoding (names, op table, unused operands), builds the
 * tape, and checks the tape's invariants with tape_verify: a bad file is an
 * error message with a byte offset, never a crash and never a tape that
 * computes something else. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tape/alloc.h"
#include "tape/funcs.h"
#include "internal.h"

#define FILE_MAGIC    "TAPEGEN"         /* 8 bytes with the NUL */
#define FILE_VERSION  3u                /* written (2 for a tape without loops); 1..3 read */
#define HEADER_BYTES  24u
#define FILE_MIN      (HEADER_BYTES + 8u)
#define FILE_MAX      ((uint64_t)1 << 40)
#define MAX_SECTIONS  7               /* per tape */
#define XREC_BYTES    44u             /* body u32, count u64, nc nx np ny u32, nops u64, nout u64 */
#define MIN_TAPE_BYTES (7u * 20u)     /* seven empty sections: tag, length, hash */

/* Format 1 numbered ops in this order (the order of ops.def in release
 * 0.1.0).  Frozen: ops appended or reordered later do not change how a
 * format 1 file loads. */
static const char *const format1_ops[] = {
    "const", "input", "add", "sub", "mul", "div", "pow", "powk", "min", "max", "atan2", "hypot",
    "azmul", "lt", "le", "gt", "ge", "select", "neg", "sin", "cos", "tan", "asin", "acos", "atan",
    "sinh", "cosh", "tanh", "asinh", "acosh", "atanh", "exp", "expm1", "log", "log1p", "sqrt",
    "cbrt", "erf", "erfc", "abs", "floor", "ceil", "round", "trunc", "fract", "signum",
};
#define FORMAT1_NOPS ((uint32_t)(sizeof format1_ops / sizeof *format1_ops))

/* ------------------------------------------------------------ bytes */

typedef struct buf {
    uint8_t *p;
    size_t len, cap;
    bool failed;
} buf;

static void
put(buf *b, const void *src, size_t n)
{
    if (b->failed || n == 0)        /* n == 0: src may be NULL (an empty tape) */
        return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n)
            cap *= 2;
        uint8_t *q = mem_realloc(b->p, cap);
        if (!q) {
            b->failed = true;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, src, n);
    b->len += n;
}

static void
put_u16(buf *b, uint16_t v)
{
    uint8_t x[2] = { (uint8_t)v, (uint8_t)(v >> 8) };
    put(b, x, 2);
}

static void
put_u32(buf *b, uint32_t v)
{
    uint8_t x[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };
    put(b, x, 4);
}

static void
put_u64(buf *b, uint64_t v)
{
    put_u32(b, (uint32_t)v);
    put_u32(b, (uint32_t)(v >> 32));
}

static uint32_t
get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t
get_u64(const uint8_t *p)
{
    return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

/* FNV-1a, 64 bits: every single changed byte changes the hash.  fnv1a_more
 * continues a hash over more bytes. */
#define FNV_BASIS 0xcbf29ce484222325ULL

static uint64_t
fnv1a_more(uint64_t h, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

static uint64_t
fnv1a(const uint8_t *p, size_t n)
{
    return fnv1a_more(FNV_BASIS, p, n);
}

/* The running library's opcode of mnemonic `name` (length len), or -1. */
static int
op_by_name(const char *name, size_t len)
{
    for (int op = 0; op < TG_OP_COUNT; op++) {
        const char *s = tg_op_name((tg_opcode)op);
        if (strlen(s) == len && memcmp(s, name, len) == 0)
            return op;
    }
    return -1;
}

/* ------------------------------------------------------------- save */

/* The op-name table of a tape: the mnemonics of the ops it uses, sorted by
 * their bytes (independent of any numbering, so the file is canonical);
 * code[op] is op's index in the table. */
typedef struct optable {
    uint32_t n;
    const char *name[TG_OP_COUNT];
    uint8_t code[TG_OP_COUNT];
} optable;

static int
cmp_names(const void *x, const void *y)
{
    return strcmp(*(const char *const *)x, *(const char *const *)y);
}

static void
make_optable(optable *o, const tg_tape *t)
{
    bool used[TG_OP_COUNT] = { false };
    for (uint32_t i = 0; i < t->n; i++)
        used[t->op[i]] = true;
    o->n = 0;
    for (int op = 0; op < TG_OP_COUNT; op++)
        if (used[op])
            o->name[o->n++] = tg_op_name((tg_opcode)op);
    qsort(o->name, o->n, sizeof *o->name, cmp_names);
    for (uint32_t k = 0; k < o->n; k++)
        o->code[op_by_name(o->name[k], strlen(o->name[k]))] = (uint8_t)k;
}

/* What a section writer knows: the tape's op table, and its index among
 * the tapes of the file (format 3). */
typedef struct wctx {
    optable o;
    uint32_t self;
} wctx;

static void
put_name(buf *b, const char *s)
{
    size_t n = strlen(s);
    put_u16(b, (uint16_t)n);
    put(b, s, n);
}

/* Section payloads, in file order (format 2). */
static void
sec_meta(buf *b, const tg_tape *t, const wctx *w)
{
    const optable *o = &w->o;
    (void)o;
    put_u32(b, t->flags);
    put_name(b, t->name);
}

static void
sec_blocks(buf *b, const tg_tape *t, const wctx *w)
{
    const optable *o = &w->o;
    (void)o;
    put_u32(b, t->ninb);
    put_u32(b, t->noutb);
    for (uint32_t i = 0; i < t->ninb; i++) {
        put_name(b, t->inb[i].name);
        put_u32(b, t->inb[i].size);
    }
    for (uint32_t i = 0; i < t->noutb; i++) {
        put_name(b, t->outb[i].name);
        put_u32(b, t->outb[i].size);
    }
}

static void
sec_opnames(buf *b, const tg_tape *t, const wctx *w)
{
    const optable *o = &w->o;
    (void)t;
    put_u32(b, o->n);
    for (uint32_t k = 0; k < o->n; k++)
        put_name(b, o->name[k]);
}

static void
sec_insts(buf *b, const tg_tape *t, const wctx *w)
{
    const optable *o = &w->o;
    put_u32(b, t->n);
    for (uint32_t i = 0; i < t->n; i++)
        put(b, &o->code[t->op[i]], 1);
    const uint32_t *col[3] = { t->a, t->b, t->c };
    for (int c = 0; c < 3; c++)
        for (uint32_t i = 0; i < t->n; i++)
            put_u32(b, tape_cols_used(t->op[i]) > c ? col[c][i] : 0);
}

static void
sec_consts(buf *b, const tg_tape *t, const wctx *w)
{
    const optable *o = &w->o;
    (void)o;
    put_u32(b, t->nk);
    for (uint32_t i = 0; i < t->nk; i++)
        put_u64(b, tape_bits(t->k[i]));
}

static void
sec_outputs(buf *b, const tg_tape *t, const wctx *w)
{
    const optable *o = &w->o;
    (void)o;
    put_u32(b, t->nout);
    for (uint32_t j = 0; j < t->nout; j++)
        put_u32(b, t->out_ref[j]);
}

/* The number of tapes in t's tree (t and its bodies, recursively). */
static uint32_t
tree_size(const tg_tape *t)
{
    uint32_t m = 1;
    for (uint32_t j = 0; j < t->nbodies; j++)
        m += tree_size(t->bodies[j]);
    return m;
}

/* Format 3 XREC: body list (file indices: pre-order, so body j's index is
 * self + 1 + the sizes of bodies 0..j-1), records, operand lists.  The
 * records' kind, instruction and operand offset follow from the
 * instructions and are not stored. */
static void
sec_xrec(buf *b, const tg_tape *t, const wctx *w)
{
    put_u32(b, t->nbodies);
    uint32_t next = w->self + 1;
    for (uint32_t j = 0; j < t->nbodies; j++) {
        put_u32(b, next);
        next += tree_size(t->bodies[j]);
    }
    put_u32(b, t->nxr);
    for (uint32_t r = 0; r < t->nxr; r++) {
        const tape_xrec *x = &t->xr[r];
        put_u32(b, x->body);
        put_u64(b, x->count);
        put_u32(b, x->nc);
        put_u32(b, x->nx);
        put_u32(b, x->np);
        put_u32(b, x->ny);
        put_u64(b, x->nops);
        put_u64(b, x->nout);
    }
    put_u64(b, t->nxops);
    for (uint32_t r = 0; r < t->nxr; r++) {         /* in record order: canonical */
        const uint32_t *o = tape_xops(t, &t->xr[r]);
        for (uint64_t k = 0; k < t->xr[r].nops; k++)
            put_u32(b, o[k]);
    }
}

typedef void (*sec_writer)(buf *, const tg_tape *, const wctx *);

static const struct {
    char tag[5];
    sec_writer write;
} writers[MAX_SECTIONS] = {
    { "META", sec_meta }, { "BLKS", sec_blocks }, { "OPNM", sec_opnames },
    { "INST", sec_insts }, { "KPOO", sec_consts }, { "OUTS", sec_outputs },
    { "XREC", sec_xrec },
};

/* A section: tag, payload length, payload, hash of the payload. */
static void
put_section(buf *b, const char *tag, sec_writer write, const tg_tape *t, const wctx *w)
{
    put(b, tag, 4);
    size_t at = b->len;
    put_u64(b, 0);                      /* payload length, patched */
    size_t start = b->len;
    write(b, t, w);
    if (b->failed)
        return;
    uint64_t len = b->len - start;
    for (size_t i = 0; i < 8; i++)
        b->p[at + i] = (uint8_t)(len >> (8 * i));
    put_u64(b, fnv1a(b->p + start, (size_t)len));
}

/* Tape t as file tape `self`, then its bodies in pre-order (recursion as
 * deep as bodies nest, <= TAPE_MAX_DEPTH).  nsec: 6 (format 2) or 7. */
static void
put_tape(buf *b, const tg_tape *t, uint32_t self, int nsec)
{
    wctx *w = mem_malloc(sizeof *w);
    if (!w) {
        b->failed = true;
        return;
    }
    make_optable(&w->o, t);
    w->self = self;
    for (int s = 0; s < nsec && !b->failed; s++)
        put_section(b, writers[s].tag, writers[s].write, t, w);
    mem_free(w);
    uint32_t next = self + 1;
    for (uint32_t j = 0; j < t->nbodies && !b->failed; j++) {
        put_tape(b, t->bodies[j], next, nsec);
        next += tree_size(t->bodies[j]);
    }
}

static void
sec_taps(buf *b, const tg_tape *t, const wctx *w)
{
    (void)w;
    put_u32(b, tree_size(t));
}

/* Format 3 CALL (only for a tape that calls user functions): the
 * functions of its call table, by name and shape. */
static void
sec_calls(buf *b, const tg_tape *t, const wctx *w)
{
    (void)w;
    put_u32(b, t->ncalls);
    for (uint32_t c = 0; c < t->ncalls; c++) {
        const tape_func *f = tape_funcs_at(t->funcs, t->calls[c]);
        put_name(b, f->name);
        put_u32(b, f->n);
        put_u32(b, f->k);
    }
}

static void
serialize(buf *b, const tg_tape *t)
{
    bool loops = tape_has_x(t) || t->nbodies;
    put(b, FILE_MAGIC, 8);
    put_u32(b, loops ? 3u : 2u);
    put_u32(b, loops ? 7u : 6u);
    put_u64(b, 0);                      /* total size, patched below */
    if (loops)
        put_section(b, "TAPS", sec_taps, t, NULL);
    if (t->ncalls)
        put_section(b, "CALL", sec_calls, t, NULL);
    put_tape(b, t, 0, loops ? 7 : 6);
    if (b->failed)
        return;
    uint64_t total = b->len + 8;
    for (size_t i = 0; i < 8; i++)
        b->p[16 + i] = (uint8_t)(total >> (8 * i));
    put_u64(b, fnv1a(b->p, b->len));
}

tg_status
tg_tape_save(const tg_tape *t, const char *path)
{
    if (!t || !path)
        return tape_fail_call(TG_ERR_ARG, "tg_tape_save: NULL argument");
    if (t->status != TG_OK)
        return tape_fail_call(t->status, "tg_tape_save: tape \"%s\" is in the error state: %s",
                            t->name, t->err);
    buf b = { 0 };
    serialize(&b, t);
    if (b.failed) {
        mem_free(b.p);
        return tape_fail_call(TG_ERR_NOMEM, "tg_tape_save: out of memory");
    }
    char err[512];
    tg_status s = tape_write_file(path, b.p, b.len, err, sizeof err);
    mem_free(b.p);
    return s == TG_OK ? TG_OK : tape_fail_call(s, "tg_tape_save: %s", err);
}

/* ------------------------------------------------------------- load */

typedef struct rd {
    const uint8_t *p;
    size_t len, at;         /* current section: [at, len) */
    size_t base;            /* file offset of p[0], for messages */
    char *err;
    size_t errlen;
} rd;

static int bad(rd *r, const char *fmt, ...) TAPE_PRINTF(2, 3);

static int
bad(rd *r, const char *fmt, ...)
{
    char msg[240];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(r->err, r->errlen, "at byte %zu: %s", r->base + r->at, msg);
    return -1;
}

static int
need(rd *r, size_t n, const char *what)
{
    return r->len - r->at < n ? bad(r, "truncated %s", what) : 0;
}

static int
rd_u32(rd *r, uint32_t *v, const char *what)
{
    if (need(r, 4, what))
        return -1;
    *v = get_u32(r->p + r->at);
    r->at += 4;
    return 0;
}

/* A name: u16 length, bytes; copied NUL-terminated into out (256 bytes). */
static int
rd_name(rd *r, char *out, const char *what)
{
    if (need(r, 2, what))
        return -1;
    size_t n = (size_t)r->p[r->at] | (size_t)r->p[r->at + 1] << 8;
    r->at += 2;
    if (n == 0 || n > TAPE_NAME_MAX)
        return bad(r, "%s has length %zu (1..%d allowed)", what, n, TAPE_NAME_MAX);
    if (need(r, n, what))
        return -1;
    memcpy(out, r->p + r->at, n);
    out[n] = '\0';
    if (strlen(out) != n || !tape_name_ok(out))
        return bad(r, "%s is not valid UTF-8 without control characters", what);
    r->at += n;
    return 0;
}

/* The validated image of a file, pointing into the file's bytes. */
typedef struct image {
    const uint8_t *file;    /* byte 0 of the file, for offsets */
    uint32_t version;
    size_t opnames_at;      /* file offset of the op-name table */
    uint32_t nops;          /* entries of the file's op numbering */
    int16_t opmap[256];     /* file opcode -> running opcode; -1 unknown here */
    char opname[256][TAPE_NAME_MAX + 1];
    unsigned flags;
    char name[TAPE_NAME_MAX + 1];
    uint32_t ninb, noutb, nin, nout, n, nk;
    char (*bname)[TAPE_NAME_MAX + 1];   /* ninb + noutb names */
    uint32_t *bsize;
    const uint8_t *ops, *cols, *kbits, *outs;
    /* format 3 XREC */
    uint32_t nbodies, nxr;
    uint64_t nxops;
    const uint8_t *bodies, *xrecs, *xops;
    uint32_t self, ntapes;  /* this tape's index, the file's tape count */
    uint32_t ncalls;        /* format 3 CALL: the user functions */
    const uint8_t *calls;
    size_t calls_at;        /* file offset of the CALL payload */
    bool nomem;             /* the failure was an allocation */
} image;

static int
read_flags(rd *r, image *im)
{
    uint32_t flags;
    if (rd_u32(r, &flags, "flags"))
        return -1;
    if (flags & ~(unsigned)(TG_NO_FOLD | TG_NO_CSE))
        return bad(r, "unknown flags 0x%" PRIx32, flags);
    im->flags = flags;
    return rd_name(r, im->name, "tape name");
}

/* Format 1 META: the writer's opcode count (numbers follow format1_ops),
 * flags, name. */
static int
read_meta1(rd *r, image *im)
{
    uint32_t nops;
    if (rd_u32(r, &nops, "opcode count"))
        return -1;
    if (nops > FORMAT1_NOPS)
        return bad(r, "file uses %" PRIu32 " opcodes, format 1 has %" PRIu32, nops, FORMAT1_NOPS);
    im->nops = nops;
    for (uint32_t k = 0; k < nops; k++) {
        snprintf(im->opname[k], sizeof im->opname[k], "%s", format1_ops[k]);
        im->opmap[k] = (int16_t)op_by_name(format1_ops[k], strlen(format1_ops[k]));
    }
    return read_flags(r, im);
}

/* Format 2 META: flags, name. */
static int
read_meta2(rd *r, image *im)
{
    return read_flags(r, im);
}

/* Format 2 OPNM: the op-name table, sorted, each name known here. */
static int
read_opnames(rd *r, image *im)
{
    uint32_t n;
    im->opnames_at = r->base;
    if (rd_u32(r, &n, "op name count"))
        return -1;
    if (n > 256)
        return bad(r, "%" PRIu32 " op names (at most 256: opcodes are one byte)", n);
    for (uint32_t k = 0; k < n; k++) {
        size_t at = r->at;
        if (rd_name(r, im->opname[k], "op name"))
            return -1;
        if (k > 0 && strcmp(im->opname[k - 1], im->opname[k]) >= 0) {
            r->at = at;
            return bad(r, "op name table not in order at \"%s\"", im->opname[k]);
        }
        int op = op_by_name(im->opname[k], strlen(im->opname[k]));
        if (op < 0) {
            r->at = at;
            return bad(r, "unknown operation \"%s\" (the file was written by a newer tapegen?)",
                       im->opname[k]);
        }
        im->opmap[k] = (int16_t)op;
    }
    im->nops = n;
    return 0;
}

static int
read_blocks(rd *r, image *im)
{
    if (rd_u32(r, &im->ninb, "input block count") || rd_u32(r, &im->noutb, "output block count"))
        return -1;
    uint64_t nb = (uint64_t)im->ninb + im->noutb;
    if (nb * 7 > r->len - r->at)        /* each block takes >= 7 bytes */
        return bad(r, "%" PRIu64 " blocks cannot fit in the section", nb);
    im->bname = mem_calloc((size_t)nb + 1, sizeof *im->bname);
    im->bsize = mem_calloc((size_t)nb + 1, sizeof *im->bsize);
    if (!im->bname || !im->bsize) {
        im->nomem = true;
        return bad(r, "out of memory for %" PRIu64 " blocks", nb);
    }
    uint64_t tot[2] = { 0, 0 };
    for (uint32_t i = 0; i < nb; i++) {
        bool in = i < im->ninb;
        if (rd_name(r, im->bname[i], in ? "input block name" : "output block name")
            || rd_u32(r, &im->bsize[i], "block size"))
            return -1;
        uint32_t first = in ? 0 : im->ninb;
        for (uint32_t j = first; j < i; j++)
            if (strcmp(im->bname[j], im->bname[i]) == 0)
                return bad(r, "duplicate block name \"%s\"", im->bname[i]);
        tot[in ? 0 : 1] += im->bsize[i];
    }
    if (tot[0] >= UINT32_MAX || tot[1] >= UINT32_MAX)
        return bad(r, "too many input or output scalars");
    im->nin = (uint32_t)tot[0];
    im->nout = (uint32_t)tot[1];
    return 0;
}

static int
read_insts(rd *r, image *im)
{
    if (rd_u32(r, &im->n, "instruction count"))
        return -1;
    if ((uint64_t)im->n * 13 != r->len - r->at)
        return bad(r, "%" PRIu32 " instructions need %" PRIu64 " bytes, the section has %zu",
                   im->n, (uint64_t)im->n * 13, r->len - r->at);
    im->ops = r->p + r->at;
    im->cols = im->ops + im->n;
    r->at = r->len;
    return 0;
}

static int
read_consts(rd *r, image *im)
{
    if (rd_u32(r, &im->nk, "constant count"))
        return -1;
    if ((uint64_t)im->nk * 8 != r->len - r->at)
        return bad(r, "%" PRIu32 " constants do not match the section length", im->nk);
    im->kbits = r->p + r->at;
    r->at = r->len;
    return 0;
}

static int
read_outputs(rd *r, image *im)
{
    uint32_t nout;
    if (rd_u32(r, &nout, "output count"))
        return -1;
    if (nout != im->nout)
        return bad(r, "%" PRIu32 " outputs, the output blocks hold %" PRIu32, nout, im->nout);
    if ((uint64_t)nout * 4 != r->len - r->at)
        return bad(r, "output count does not match the section length");
    im->outs = r->p + r->at;
    r->at = r->len;
    return 0;
}

static int
rd_u64(rd *r, uint64_t *v, const char *what)
{
    if (need(r, 8, what))
        return -1;
    *v = get_u64(r->p + r->at);
    r->at += 8;
    return 0;
}

/* Format 3 XREC: bodies (later tapes of the file), records, operands;
 * every count is checked against the bytes present. */
static int
read_xrec(rd *r, image *im)
{
    if (rd_u32(r, &im->nbodies, "body count"))
        return -1;
    if ((uint64_t)im->nbodies * 4 > r->len - r->at)
        return bad(r, "%" PRIu32 " bodies cannot fit in the section", im->nbodies);
    im->bodies = r->p + r->at;
    for (uint32_t j = 0; j < im->nbodies; j++, r->at += 4) {
        uint32_t k = get_u32(r->p + r->at);
        if (k <= im->self || k >= im->ntapes)
            return bad(r, "body %" PRIu32 " is tape %" PRIu32 ": not a later tape of the %" PRIu32
                       " in the file", j, k, im->ntapes);
    }
    if (rd_u32(r, &im->nxr, "record count"))
        return -1;
    if ((uint64_t)im->nxr * XREC_BYTES > r->len - r->at)
        return bad(r, "%" PRIu32 " records cannot fit in the section", im->nxr);
    im->xrecs = r->p + r->at;
    r->at += (size_t)im->nxr * XREC_BYTES;
    if (rd_u64(r, &im->nxops, "operand count"))
        return -1;
    if (im->nxops > (r->len - r->at) / 4 || im->nxops * 4 != r->len - r->at)
        return bad(r, "%" PRIu64 " operands do not match the section length", im->nxops);
    im->xops = r->p + r->at;
    r->at = r->len;
    return 0;
}

typedef int (*sec_reader)(rd *, image *);

/* The sections of each format, in file order. */
static const struct layout {
    uint32_t version, nsec;
    char tag[MAX_SECTIONS][5];
    sec_reader read[MAX_SECTIONS];
} layouts[] = {
    { 1, 5, { "META", "BLKS", "INST", "KPOO", "OUTS" },
      { read_meta1, read_blocks, read_insts, read_consts, read_outputs } },
    { 2, 6, { "META", "BLKS", "OPNM", "INST", "KPOO", "OUTS" },
      { read_meta2, read_blocks, read_opnames, read_insts, read_consts, read_outputs } },
    { 3, 7, { "META", "BLKS", "OPNM", "INST", "KPOO", "OUTS", "XREC" },    /* per tape */
      { read_meta2, read_blocks, read_opnames, read_insts, read_consts, read_outputs,
        read_xrec } },
};

static const struct layout *
layout_of(uint32_t version)
{
    for (size_t i = 0; i < sizeof layouts / sizeof *layouts; i++)
        if (layouts[i].version == version)
            return &layouts[i];
    return NULL;
}

/* Header checks that need only its 24 bytes; len is the real size. */
static int
check_header(rd *r, const uint8_t *h, size_t have, uint64_t len)
{
    if (have < 8 || memcmp(h, FILE_MAGIC, 8) != 0)
        return bad(r, "not a tapegen tape file (bad magic)");
    if (have < HEADER_BYTES || len < FILE_MIN)
        return bad(r, "truncated header (%" PRIu64 " bytes)", len);
    const struct layout *l = layout_of(get_u32(h + 8));
    if (!l)
        return bad(r, "unsupported format version %" PRIu32 " (this build reads 1 to %u)",
                   get_u32(h + 8), FILE_VERSION);
    if (get_u32(h + 12) != l->nsec)
        return bad(r, "format %" PRIu32 " has %" PRIu32 " sections, the header says %" PRIu32,
                   l->version, l->nsec, get_u32(h + 12));
    if (get_u64(h + 16) != len)
        return bad(r, "header says %" PRIu64 " bytes, the file has %" PRIu64
                   " (truncated or extended)", get_u64(h + 16), len);
    return 0;
}

/* The encoding of the instructions: opcodes in the file's op table and
 * known here, unused operand columns 0.  The rest is tape_verify's. */
static int
check_encoding(rd *r, image *im)
{
    uint32_t n = im->n;
    bool used[256] = { false };
    /* Every count bounds what it allocates by the bytes present, except the
     * input scalars (in_ref): each needs an instruction. */
    if (im->nin > n) {
        r->at = (size_t)(im->ops - im->file) - 4;
        return bad(r, "the input blocks hold %" PRIu32 " scalars, more than the %" PRIu32
                   " instructions", im->nin, n);
    }
    for (uint32_t i = 0; i < n; i++) {
        uint8_t op = im->ops[i];
        r->at = (size_t)(im->ops + i - im->file);
        if (op >= im->nops)
            return bad(r, "instruction %" PRIu32 ": opcode %u out of range (the file names %"
                       PRIu32 " operations)", i, op, im->nops);
        if (im->opmap[op] < 0)
            return bad(r, "instruction %" PRIu32 ": operation \"%s\" is unknown to this build",
                       i, im->opname[op]);
        used[op] = true;
        for (int j = tape_cols_used((uint8_t)im->opmap[op]); j < 3; j++) {
            const uint8_t *at = im->cols + 4 * ((size_t)j * n + i);
            r->at = (size_t)(at - im->file);
            if (get_u32(at) != 0)
                return bad(r, "instruction %" PRIu32 ": unused operand %d is not 0", i, j + 1);
        }
    }
    for (uint32_t k = 0; im->version >= 2 && k < im->nops; k++)
        if (!used[k]) {         /* format 2 names exactly the ops it uses */
            r->at = im->opnames_at;
            return bad(r, "op name \"%s\" is used by no instruction", im->opname[k]);
        }
    return 0;
}

/* The sections of one tape (l->nsec of them) from *at on, then the
 * encoding checks. */
static int
parse_tape(const uint8_t *p, size_t *at_, size_t end, const struct layout *l, image *im,
           char *err, size_t errlen)
{
    rd r = { p, end, 0, 0, err, errlen };
    size_t at = *at_;
    for (uint32_t s = 0; s < l->nsec; s++) {
        r.at = at;
        if (end - at < 12 || memcmp(p + at, l->tag[s], 4) != 0)
            return bad(&r, "expected section %s", l->tag[s]);
        uint64_t slen = get_u64(p + at + 4);
        if (slen > end - at - 12 || end - at - 12 - slen < 8)
            return bad(&r, "section %s is longer than the file", l->tag[s]);
        size_t start = at + 12;
        if (fnv1a(p + start, (size_t)slen) != get_u64(p + start + slen)) {
            r.at = start;
            return bad(&r, "section %s checksum mismatch (corrupted)", l->tag[s]);
        }
        rd sr = { p + start, (size_t)slen, 0, start, err, errlen };
        if (l->read[s](&sr, im))
            return -1;
        if (sr.at != sr.len)
            return bad(&sr, "%zu unexpected bytes at the end of section %s", sr.len - sr.at,
                       l->tag[s]);
        at = start + (size_t)slen + 8;
    }
    *at_ = at;
    r.at = at;
    return check_encoding(&r, im);
}

/* Header and whole-file hash; the layout of the file's version. */
static const struct layout *
parse_head(const uint8_t *p, size_t len, char *err, size_t errlen)
{
    rd r = { p, len, 0, 0, err, errlen };
    if (check_header(&r, p, len, len))
        return NULL;
    if (fnv1a(p, len - 8) != get_u64(p + len - 8)) {
        r.at = len - 8;
        bad(&r, "file checksum mismatch (corrupted)");
        return NULL;
    }
    return layout_of(get_u32(p + 8));
}

/* Formats 1 and 2: one tape. */
static int
parse(const uint8_t *p, size_t len, image *im, char *err, size_t errlen)
{
    const struct layout *l = parse_head(p, len, err, errlen);
    if (!l)
        return -1;
    im->file = p;
    im->version = l->version;
    size_t at = HEADER_BYTES, end = len - 8;
    if (parse_tape(p, &at, end, l, im, err, errlen))
        return -1;
    rd r = { p, len, at, 0, err, errlen };
    if (at != end)
        return bad(&r, "unexpected data after the last section");
    return 0;
}

/* Where a tape's instructions and outputs are in the file (fault offsets
 * outlive the image in format 3, where it is reused per tape). */
typedef struct tape_at {
    size_t ops, cols, outs;
    uint32_t n;
} tape_at;

static tape_at
where_of(const image *im)
{
    tape_at w = { (size_t)(im->ops - im->file), (size_t)(im->cols - im->file),
                  (size_t)(im->outs - im->file), im->n };
    return w;
}

/* File offset of the fault tape_verify found in a tape built from a file. */
static size_t
fault_at(const tape_at *w, const tape_fault *f)
{
    size_t n = w->n, inst = w->ops;
    switch (f->kind) {
    case TAPE_AT_INST:
        if (f->index >= n)
            return inst - 4;
        return f->field == 0 ? inst + f->index : w->cols + 4 * ((size_t)(f->field - 1) * n + f->index);
    case TAPE_AT_OUTPUT:
        return w->outs + 4 * (size_t)f->index;
    case TAPE_AT_INPUTS:
        return f->index < n ? inst + f->index : inst - 4;
    default:
        return inst - 4;
    }
}

/* Fills t from a parsed image (opcodes mapped to this build's numbers);
 * the invariants are checked afterwards by tape_verify. */
static void
tape_from_image(tg_tape *t, const image *im)
{
    t->flags = im->flags;
    size_t nb = (size_t)im->ninb + im->noutb;
    if (tape_reserve(t, im->n ? im->n : 1)
        || tape_grow((void **)&t->k, &t->kcap, im->nk ? im->nk : 1, sizeof *t->k)
        || tape_grow((void **)&t->in_ref, &t->nincap, im->nin ? im->nin : 1, sizeof *t->in_ref)
        || tape_grow((void **)&t->out_ref, &t->noutcap, im->nout ? im->nout : 1, sizeof *t->out_ref)
        || tape_grow((void **)&t->inb, &t->inbcap, im->ninb ? im->ninb : 1, sizeof *t->inb)
        || tape_grow((void **)&t->outb, &t->outbcap, im->noutb ? im->noutb : 1, sizeof *t->outb)) {
        tape_fail(t, TG_ERR_NOMEM, "out of memory loading a tape of %" PRIu32 " instructions", im->n);
        return;
    }
    uint32_t off[2] = { 0, 0 };
    for (size_t i = 0; i < nb; i++) {
        bool in = i < im->ninb;
        tape_block *b = in ? &t->inb[t->ninb] : &t->outb[t->noutb];
        b->name = mem_malloc(strlen(im->bname[i]) + 1);
        if (!b->name) {
            tape_fail(t, TG_ERR_NOMEM, "out of memory loading block names");
            return;
        }
        strcpy(b->name, im->bname[i]);
        b->offset = off[in ? 0 : 1];
        b->size = im->bsize[i];
        off[in ? 0 : 1] += b->size;
        if (in)
            t->ninb++;
        else
            t->noutb++;
    }
    for (uint32_t k = 0; k < im->nin; k++)
        t->in_ref[k] = TG_NIL;
    for (uint32_t i = 0; i < im->n; i++) {
        t->op[i] = (uint8_t)im->opmap[im->ops[i]];    /* check_encoding: known */
        t->a[i] = get_u32(im->cols + 4 * (size_t)i);
        t->b[i] = get_u32(im->cols + 4 * ((size_t)im->n + i));
        t->c[i] = get_u32(im->cols + 4 * (2 * (size_t)im->n + i));
        if (t->op[i] == TG_OP_INPUT && t->a[i] < im->nin && t->in_ref[t->a[i]] == TG_NIL)
            t->in_ref[t->a[i]] = i;
    }
    for (uint32_t i = 0; i < im->nk; i++) {
        uint64_t bits = get_u64(im->kbits + 8 * (size_t)i);
        memcpy(&t->k[i], &bits, sizeof bits);
    }
    for (uint32_t j = 0; j < im->nout; j++)
        t->out_ref[j] = get_u32(im->outs + 4 * (size_t)j);
    t->n = im->n;
    t->nk = im->nk;
    t->nin = im->nin;
    t->nout = im->nout;
}


/* Format 3: the extended-instruction tables of a tape from its XREC.
 * Record k belongs to the k-th extended instruction (tape_verify checks
 * that its column a says so); operand lists follow one another. */
static void
x_from_image(tg_tape *t, const image *im)
{
    if (t->status != TG_OK || (im->nxr == 0 && im->nxops == 0))
        return;
    t->xr = mem_malloc((size_t)(im->nxr ? im->nxr : 1) * sizeof *t->xr);
    t->xops = mem_malloc((size_t)(im->nxops ? im->nxops : 1) * sizeof *t->xops);
    if (!t->xr || !t->xops) {
        tape_fail(t, TG_ERR_NOMEM, "out of memory loading %" PRIu32 " loop records", im->nxr);
        return;
    }
    t->xrcap = im->nxr;
    t->xopscap = im->nxops;
    uint64_t op0 = 0;
    for (uint32_t r = 0; r < im->nxr; r++) {
        const uint8_t *q = im->xrecs + (size_t)r * XREC_BYTES;
        tape_xrec *x = &t->xr[r];
        x->kind = 0;
        x->inst = UINT32_MAX;
        x->body = get_u32(q);
        x->count = get_u64(q + 4);
        x->nc = get_u32(q + 12);
        x->nx = get_u32(q + 16);
        x->np = get_u32(q + 20);
        x->ny = get_u32(q + 24);
        x->nops = get_u64(q + 28);
        x->nout = get_u64(q + 36);
        x->op0 = op0;
        op0 = x->nops > UINT64_MAX - op0 ? UINT64_MAX : op0 + x->nops;
    }
    for (uint32_t i = 0, k = 0; i < t->n; i++)
        if (tape_is_x(t->op[i]) && k < im->nxr) {
            t->xr[k].inst = i;
            t->xr[k].kind = t->op[i];
            t->xkinds |= tape_xk_bit(t->op[i]);
            k++;
        }
    for (uint64_t k = 0; k < im->nxops; k++)
        t->xops[k] = get_u32(im->xops + 4 * k);
    t->nxr = im->nxr;
    t->nxops = im->nxops;
}

static int
read_taps(rd *r, image *im)
{
    if (rd_u32(r, &im->ntapes, "tape count"))
        return -1;
    if (im->ntapes == 0)
        return bad(r, "no tape in the file");
    return 0;
}

static const struct layout taps_layout = { 3, 1, { "TAPS" }, { read_taps } };

/* Format 3 CALL: every entry well formed (name, n, k). */
static int
read_calls(rd *r, image *im)
{
    im->calls_at = r->base;
    if (rd_u32(r, &im->ncalls, "user function count"))
        return -1;
    if ((uint64_t)im->ncalls * 11 > r->len - r->at)     /* each entry takes >= 11 bytes */
        return bad(r, "%" PRIu32 " user functions cannot fit in the section", im->ncalls);
    im->calls = r->p + r->at;
    char name[TAPE_NAME_MAX + 1];
    for (uint32_t c = 0; c < im->ncalls; c++) {
        uint32_t n, k;
        if (rd_name(r, name, "user function name") || rd_u32(r, &n, "inputs")
            || rd_u32(r, &k, "outputs"))
            return -1;
    }
    return 0;
}

static const struct layout calls_layout = { 3, 1, { "CALL" }, { read_calls } };

/* The user functions a file names (its CALL section), to resolve in the
 * caller's object. */
typedef struct callsec {
    const tg_funcs *fs;
    const uint8_t *file, *p;
    uint32_t n;
    size_t at;
} callsec;

/* Tape 0's call table from the CALL section, each function resolved in
 * fs with the same shape.  0, or -1 with a message in err. */
static int
calls_from_file(tg_tape *t, const callsec *cs, char *err, size_t errlen, bool *nomem)
{
    rd r = { cs->p, (size_t)-1, 0, 0, err, errlen };
    char name[TAPE_NAME_MAX + 1], why[200];
    for (uint32_t c = 0; c < cs->n; c++) {
        uint32_t n = 0, k = 0;
        rd e = { cs->file, 0, cs->at + 4 + r.at, 0, err, errlen };     /* for messages */
        (void)rd_name(&r, name, "");                /* read_calls checked every entry */
        (void)rd_u32(&r, &n, "");
        (void)rd_u32(&r, &k, "");
        uint32_t fn = tape_funcs_find(cs->fs, name);
        if (fn == TAPE_FUNC_NONE)
            return bad(&e, "tape uses user function '%s' (%" PRIu32 " -> %" PRIu32 "): load it "
                       "with the tg_funcs object that defines it (tg_tape_load_funcs)", name, n,
                       k);
        const tape_func *f = tape_funcs_at(cs->fs, fn);
        if (f->n != n || f->k != k)
            return bad(&e, "tape uses user function '%s' (%" PRIu32 " -> %" PRIu32 "); the "
                       "tg_funcs object defines it as %" PRIu32 " -> %" PRIu32, name, n, k,
                       f->n, f->k);
        if (tape_funcs_seal(cs->fs, why, sizeof why))
            return bad(&e, "the tg_funcs object does not seal: %s", why);
        if (tape_call_entry(t, cs->fs, fn) == TG_NIL) {
            *nomem = true;
            return snprintf(err, errlen, "out of memory loading the call table"), -1;
        }
    }
    return 0;
}

/* The state of a format 3 load: the tapes built so far, their body lists
 * (file indices) and where they are in the file. */
typedef struct load3 {
    uint32_t m;
    tg_tape **tapes;
    uint32_t **links, *nb;      /* body lists and their lengths */
    tape_at *where;
    uint8_t *refd;
} load3;

static void
load3_free(load3 *L)
{
    for (uint32_t k = 0; k < L->m; k++) {
        if (L->tapes)
            tg_tape_free(L->tapes[k]);
        if (L->links)
            mem_free(L->links[k]);
    }
    mem_free(L->tapes);
    mem_free(L->links);
    mem_free(L->nb);
    mem_free(L->where);
    mem_free(L->refd);
}

/* Builds file tape k from its parsed image; tape 0 gets the call table. */
static int
build3(load3 *L, uint32_t k, const image *im, const callsec *cs, char *err, size_t errlen,
       bool *nomem)
{
    tg_tape *t = L->tapes[k] = tg_tape_new(im->name);
    L->links[k] = mem_malloc(((size_t)im->nbodies + 1) * sizeof **L->links);
    if (!t || !L->links[k]) {
        *nomem = true;
        return snprintf(err, errlen, "out of memory loading tape %" PRIu32, k), -1;
    }
    tape_from_image(t, im);
    x_from_image(t, im);
    if (t->status != TG_OK) {
        *nomem = t->status == TG_ERR_NOMEM;
        return snprintf(err, errlen, "%s", t->err), -1;
    }
    L->where[k] = where_of(im);
    if (k > 0 && (t->xkinds & TAPE_XK_CALL)) {  /* loop bodies never call user functions */
        rd r = { im->file, 0, L->where[k].ops, 0, err, errlen };
        return bad(&r, "a loop body calls user functions");
    }
    if (k == 0 && calls_from_file(t, cs, err, errlen, nomem))
        return -1;
    for (uint32_t j = 0; j < im->nbodies; j++) {
        uint32_t b = get_u32(im->bodies + 4 * (size_t)j);      /* read_xrec: k < b < m */
        if (L->refd[b]) {
            rd r = { im->file, 0, (size_t)(im->bodies - im->file) + 4 * j, 0, err, errlen };
            return bad(&r, "tape %" PRIu32 " is the body of two tapes", b);
        }
        L->refd[b] = 1;
        L->links[k][j] = b;
    }
    L->nb[k] = im->nbodies;
    return 0;
}

/* Gives tape k its bodies (built, verified, later in the file), bounds
 * the nesting and verifies it.  Children before parents: no recursion. */
static int
link3(load3 *L, uint32_t k, uint32_t nb, char *err, size_t errlen, bool *nomem)
{
    tg_tape *t = L->tapes[k];
    if (nb) {
        t->bodies = mem_malloc((size_t)nb * sizeof *t->bodies);
        if (!t->bodies) {
            *nomem = true;
            return snprintf(err, errlen, "out of memory linking loop bodies"), -1;
        }
        t->bodiescap = nb;
    }
    for (uint32_t j = 0; j < nb; j++) {
        tg_tape *b = L->tapes[L->links[k][j]];
        L->tapes[L->links[k][j]] = NULL;
        t->bodies[t->nbodies++] = b;
        if (b->depth + 1 > t->depth)
            t->depth = b->depth + 1;
        t->xkinds |= tape_xk_body(b);
    }
    rd r = { NULL, 0, L->where[k].ops - 4, 0, err, errlen };
    if (t->depth > TAPE_MAX_DEPTH)
        return bad(&r, "loop bodies nest deeper than %d levels", TAPE_MAX_DEPTH);
    tape_fault f;
    if (tape_verify_at(t, &f) != 0) {
        r.at = fault_at(&L->where[k], &f);
        return bad(&r, "%s%s", k ? "in a loop body: " : "", f.msg);
    }
    if (tape_guards_rebuild(t)) {   /* before its parent's tape_xk_body reads them */
        *nomem = true;
        return snprintf(err, errlen, "out of memory indexing branch guards"), -1;
    }
    return 0;
}

/* The tapes are in the writer's order: pre-order, each tape's bodies
 * numbered one after the other's subtree (so a file has one encoding and
 * save(load(file)) gives it back).  Subtree sizes bottom-up: no recursion. */
static int
check_order3(load3 *L, const uint8_t *p, size_t len, char *err, size_t errlen, bool *nomem)
{
    uint32_t *size = mem_malloc((size_t)L->m * sizeof *size);
    if (!size) {
        *nomem = true;
        return snprintf(err, errlen, "out of memory"), -1;
    }
    int rc = 0;
    for (uint32_t k = L->m; k-- > 0 && rc == 0;) {
        uint64_t s = 1, next = (uint64_t)k + 1;
        for (uint32_t j = 0; j < L->nb[k]; j++) {
            uint32_t b = L->links[k][j];
            if (b != next) {
                rd r = { p, len, L->where[k].ops, 0, err, errlen };
                rc = bad(&r, "tape %" PRIu32 ": body %" PRIu32 " is tape %" PRIu32 ", expected %"
                         PRIu64 " (bodies follow their tape in order)", k, j, b, next);
                break;
            }
            next += size[b];
            s += size[b];
        }
        size[k] = (uint32_t)s;
    }
    mem_free(size);
    return rc;
}

/* Format 3: the tree of tapes; tape 0 is returned (NULL with err set). */
static tg_tape *
parse3(const uint8_t *p, size_t len, const struct layout *l, const tg_funcs *fs, char *err,
       size_t errlen, bool *nomem)
{
    callsec cs = { fs, p, NULL, 0, 0 };
    load3 L = { 0 };
    tg_tape *root = NULL;
    image *im = mem_calloc(1, sizeof *im);
    size_t at = HEADER_BYTES, end = len - 8;
    if (!im) {
        *nomem = true;
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    im->file = p;
    if (parse_tape(p, &at, end, &taps_layout, im, err, errlen))
        goto out;
    if (end - at >= 4 && memcmp(p + at, "CALL", 4) == 0) {
        if (parse_tape(p, &at, end, &calls_layout, im, err, errlen))
            goto out;
        if (im->ncalls == 0) {      /* written only for a tape with calls */
            rd r = { p, len, im->calls_at - 4, 0, err, errlen };
            bad(&r, "an empty CALL section");
            goto out;
        }
        cs.p = im->calls;
        cs.n = im->ncalls;
        cs.at = im->calls_at;
    }
    L.m = im->ntapes;
    if ((uint64_t)L.m * MIN_TAPE_BYTES > end - at) {
        rd r = { p, len, at - 12, 0, err, errlen };
        bad(&r, "%" PRIu32 " tapes cannot fit in the file", L.m);
        goto out;
    }
    L.tapes = mem_calloc(L.m, sizeof *L.tapes);
    L.links = mem_calloc(L.m, sizeof *L.links);
    L.nb = mem_calloc(L.m, sizeof *L.nb);
    L.where = mem_calloc(L.m, sizeof *L.where);
    L.refd = mem_calloc(L.m, 1);
    if (!L.tapes || !L.links || !L.nb || !L.where || !L.refd) {
        *nomem = true;
        snprintf(err, errlen, "out of memory for %" PRIu32 " tapes", L.m);
        goto out;
    }
    for (uint32_t k = 0; k < L.m; k++) {
        mem_free(im->bname);
        mem_free(im->bsize);
        memset(im, 0, sizeof *im);
        im->file = p;
        im->version = 3;
        im->self = k;
        im->ntapes = L.m;
        if (parse_tape(p, &at, end, l, im, err, errlen)) {
            *nomem = im->nomem;
            goto out;
        }
        if (build3(&L, k, im, &cs, err, errlen, nomem))
            goto out;
    }
    if (at != end) {
        rd r = { p, len, at, 0, err, errlen };
        bad(&r, "unexpected data after the last section");
        goto out;
    }
    for (uint32_t k = 1; k < L.m; k++)
        if (!L.refd[k]) {
            rd r = { p, len, L.where[k].ops, 0, err, errlen };
            bad(&r, "tape %" PRIu32 " of the file is no tape's body", k);
            goto out;
        }
    if (check_order3(&L, p, len, err, errlen, nomem))
        goto out;
    for (uint32_t k = L.m; k-- > 0;)
        if (link3(&L, k, L.nb[k], err, errlen, nomem))
            goto out;
    if (L.m == 1 && L.tapes[0]->nxr == 0) {
        rd r = { p, len, HEADER_BYTES, 0, err, errlen };
        bad(&r, "a format 3 file of a tape without loops (such a tape is written as format 2)");
        goto out;
    }
    root = L.tapes[0];
    L.tapes[0] = NULL;
out:
    load3_free(&L);
    mem_free(im->bname);
    mem_free(im->bsize);
    mem_free(im);
    return root;
}

/* ------------------------------------------------------ reading bytes */

static tg_status
io_fail(char *err, size_t errlen, const char *what, const char *path, int e)
{
    char why[128];
    snprintf(err, errlen, "%s %s: %s", what, path, tape_errno_str(e, why, sizeof why));
    return TG_ERR_IO;
}

/* Reads up to n bytes (fewer only at the end of the input). */
static int
read_upto(int fd, uint8_t *p, size_t n, size_t *got)
{
    *got = 0;
    while (*got < n) {
        size_t want = n - *got > ((size_t)1 << 30) ? (size_t)1 << 30 : n - *got;
        ssize_t r = read(fd, p + *got, want);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            break;
        *got += (size_t)r;
    }
    return 0;
}

/* The rest of a file of `size` bytes whose header h is read: a regular
 * file is read in one allocation of its size; a stream (pipe, device)
 * grows its buffer only as bytes arrive, up to the declared size, and must
 * end there. */
static tg_status
read_body(int fd, const char *path, const uint8_t *h, uint64_t size, bool regular, uint8_t **out,
          char *err, size_t errlen)
{
    size_t cap = regular || size < ((size_t)1 << 20) ? (size_t)size : (size_t)1 << 20;
    size_t len = HEADER_BYTES;
    uint8_t *p = mem_malloc(cap);
    if (!p) {
        snprintf(err, errlen, "%s: out of memory for %" PRIu64 " bytes", path, size);
        return TG_ERR_NOMEM;
    }
    memcpy(p, h, HEADER_BYTES);
    for (;;) {
        size_t got;
        if (read_upto(fd, p + len, cap - len, &got) != 0) {
            mem_free(p);
            return io_fail(err, errlen, "cannot read", path, errno);
        }
        len += got;
        if (len < cap || cap == size)
            break;
        size_t ncap = cap > size / 2 ? (size_t)size : 2 * cap;
        uint8_t *q = mem_realloc(p, ncap);
        if (!q) {
            mem_free(p);
            snprintf(err, errlen, "%s: out of memory for %zu bytes", path, ncap);
            return TG_ERR_NOMEM;
        }
        p = q;
        cap = ncap;
    }
    uint8_t extra;
    size_t more = 0;
    if (len == size && !regular && read_upto(fd, &extra, 1, &more) != 0)
        more = 0;
    if (len != size || more) {
        mem_free(p);
        snprintf(err, errlen, "%s: at byte %zu: header says %" PRIu64 " bytes, the %s has %s%zu"
                 " (truncated or extended)", path, len, size, regular ? "file" : "stream",
                 more ? "more than " : "", len);
        return TG_ERR_FORMAT;
    }
    *out = p;
    return TG_OK;
}

/* A regular file's whole-file hash, checked by streaming it through a
 * small buffer before anything of its size is allocated: a file corrupted
 * anywhere (or junk behind a valid header) costs 64 kB, not its size.
 * Leaves the offset just after the header. */
static tg_status
prehash(int fd, const char *path, uint64_t size, char *err, size_t errlen)
{
    uint8_t chunk[65536], tail[8];
    uint64_t h = FNV_BASIS, left = size - 8;
    size_t got;
    if (lseek(fd, 0, SEEK_SET) != 0)
        return io_fail(err, errlen, "cannot read", path, errno);
    while (left > 0) {
        size_t want = left < sizeof chunk ? (size_t)left : sizeof chunk;
        if (read_upto(fd, chunk, want, &got) != 0)
            return io_fail(err, errlen, "cannot read", path, errno);
        if (got < want)
            break;              /* shrank meanwhile: read_body says so */
        h = fnv1a_more(h, chunk, got);
        left -= got;
    }
    if (left == 0 && read_upto(fd, tail, 8, &got) != 0)
        return io_fail(err, errlen, "cannot read", path, errno);
    if (left == 0 && got == 8 && h != get_u64(tail)) {
        snprintf(err, errlen, "%s: at byte %" PRIu64 ": file checksum mismatch (corrupted)", path,
                 size - 8);
        return TG_ERR_FORMAT;
    }
    if (lseek(fd, HEADER_BYTES, SEEK_SET) != (off_t)HEADER_BYTES)
        return io_fail(err, errlen, "cannot read", path, errno);
    return TG_OK;
}

/* The bytes of a tape file, read only after its header says they are
 * one: foreign files and endless devices cost a header's worth. */
static tg_status
read_file(const char *path, uint8_t **out, size_t *len, char *err, size_t errlen)
{
    int fd;
    do
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    while (fd < 0 && errno == EINTR);
    if (fd < 0)
        return io_fail(err, errlen, "cannot open", path, errno);
    struct stat st;
    uint8_t h[HEADER_BYTES];
    size_t have = 0;
    tg_status s = TG_OK;
    if (fstat(fd, &st) != 0 || (!S_ISDIR(st.st_mode) && read_upto(fd, h, sizeof h, &have) != 0))
        s = io_fail(err, errlen, "cannot read", path, errno);
    else if (S_ISDIR(st.st_mode))
        s = io_fail(err, errlen, "cannot read", path, EISDIR);
    bool regular = S_ISREG(st.st_mode);
    if (s == TG_OK) {
        char msg[300] = "";
        rd r = { h, have, 0, 0, msg, sizeof msg };
        /* a stream's real size is known only at its end: read_body checks it */
        uint64_t size = regular ? (uint64_t)st.st_size : have < HEADER_BYTES ? have : get_u64(h + 16);
        if (check_header(&r, h, have, size) != 0
            || (size > FILE_MAX && bad(&r, "the header declares %" PRIu64 " bytes, more than a "
                                       "tape file may have", size) != 0)) {
            snprintf(err, errlen, "%s: %s", path, msg);
            s = TG_ERR_FORMAT;
        } else {
            s = regular ? prehash(fd, path, size, err, errlen) : TG_OK;
            if (s == TG_OK)
                s = read_body(fd, path, h, size, regular, out, err, errlen);
            *len = (size_t)size;
        }
    }
    close(fd);
    return s;
}

tg_tape *
tg_tape_load(const char *path)
{
    return tg_tape_load_funcs(path, NULL);
}

tg_tape *
tg_tape_load_funcs(const char *path, const tg_funcs *fs)
{
    tg_tape *t = tg_tape_new("loading");
    if (!t)
        return NULL;
    if (!path) {
        tape_fail(t, TG_ERR_ARG, "tg_tape_load: NULL path");
        return t;
    }
    char err[512];
    size_t len = 0;
    uint8_t *p = NULL;
    tg_status s = read_file(path, &p, &len, err, sizeof err);
    if (s != TG_OK) {
        tape_fail(t, s, "%s", err);
        return t;
    }
    if (len >= HEADER_BYTES && get_u32(p + 8) == 3) {
        const struct layout *l = parse_head(p, len, err, sizeof err);
        bool nomem = false;
        tg_tape *u = l ? parse3(p, len, l, fs, err, sizeof err, &nomem) : NULL;
        if (u && !(u->flags & TG_NO_CSE) && tape_cse_rebuild(u))
            tape_fail(u, TG_ERR_NOMEM, "out of memory building the CSE table");
        mem_free(p);
        if (u) {
            tg_tape_free(t);
            return u;
        }
        tape_fail(t, nomem ? TG_ERR_NOMEM : TG_ERR_FORMAT, "%s: %s", path, err);
        return t;
    }
    image *im = mem_calloc(1, sizeof *im);
    char *name = NULL;
    tape_fault f;
    if (!im) {
        tape_fail(t, TG_ERR_NOMEM, "out of memory loading %s", path);
    } else if (parse(p, len, im, err, sizeof err) != 0) {
        tape_fail(t, im->nomem ? TG_ERR_NOMEM : TG_ERR_FORMAT, "%s: %s", path, err);
    } else if (!(name = mem_malloc(strlen(im->name) + 1))) {
        tape_fail(t, TG_ERR_NOMEM, "out of memory loading %s", path);
    } else {
        mem_free(t->name);
        t->name = strcpy(name, im->name);
        tape_from_image(t, im);
        if (t->status == TG_OK && tape_verify_at(t, &f) != 0) {
            /* an invalid tape is never handed out: an empty one in error */
            tg_tape_free(t);
            t = tg_tape_new("loading");
            if (t)
            {
                tape_at w = where_of(im);
                tape_fail(t, TG_ERR_FORMAT, "%s: at byte %zu: %s", path, fault_at(&w, &f), f.msg);
            }
        } else if (t->status == TG_OK && !(t->flags & TG_NO_CSE) && tape_cse_rebuild(t)) {
            tape_fail(t, TG_ERR_NOMEM, "out of memory building the CSE table");
        }
        if (t && t->status == TG_OK)
            tape_guards_rebuild(t);     /* the branch guards' index (tg_branch) */
    }
    if (im) {
        mem_free(im->bname);
        mem_free(im->bsize);
    }
    mem_free(im);
    mem_free(p);
    return t;
}
