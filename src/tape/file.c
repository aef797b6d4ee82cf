/* src/tape/file.c -- the tape file format (docs/file-format.md): a header,
 * five sections each followed by a 64-bit FNV-1a hash of its payload, and
 * a hash of everything before it at the end.  Little-endian on disk on
 * every platform.  The loader checks every count against the bytes that
 * are really there before allocating, every opcode, operand, input index,
 * output and name, and builds the tape only from a fully validated image:
 * a bad file is an error message with a byte offset, never a crash and
 * never a tape that computes something else. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>

#include "tape/alloc.h"
#include "internal.h"

#define FILE_MAGIC    "TAPEGEN"         /* 8 bytes with the NUL */
#define FILE_VERSION  1u
#define HEADER_BYTES  24u
#define FILE_MAX      ((uint64_t)1 << 40)

static const char section_tags[5][5] = { "META", "BLKS", "INST", "KPOO", "OUTS" };

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

/* FNV-1a, 64 bits: every single changed byte changes the hash. */
static uint64_t
fnv1a(const uint8_t *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* ------------------------------------------------------------- save */

static void
put_name(buf *b, const char *s)
{
    size_t n = strlen(s);
    put_u16(b, (uint16_t)n);
    put(b, s, n);
}

/* Section payloads, in file order. */
static void
sec_meta(buf *b, const tg_tape *t)
{
    put_u32(b, TG_OP_COUNT);
    put_u32(b, t->flags);
    put_name(b, t->name);
}

static void
sec_blocks(buf *b, const tg_tape *t)
{
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
sec_insts(buf *b, const tg_tape *t)
{
    put_u32(b, t->n);
    put(b, t->op, t->n);
    const uint32_t *col[3] = { t->a, t->b, t->c };
    for (int c = 0; c < 3; c++)
        for (uint32_t i = 0; i < t->n; i++)
            put_u32(b, (c == 0 || tape_op_arity[t->op[i]] > c) ? col[c][i] : 0);
}

static void
sec_consts(buf *b, const tg_tape *t)
{
    put_u32(b, t->nk);
    for (uint32_t i = 0; i < t->nk; i++)
        put_u64(b, tape_bits(t->k[i]));
}

static void
sec_outputs(buf *b, const tg_tape *t)
{
    put_u32(b, t->nout);
    for (uint32_t j = 0; j < t->nout; j++)
        put_u32(b, t->out_ref[j]);
}

static void
serialize(buf *b, const tg_tape *t)
{
    void (*const sec[5])(buf *, const tg_tape *) = { sec_meta, sec_blocks, sec_insts, sec_consts,
                                                      sec_outputs };
    put(b, FILE_MAGIC, 8);
    put_u32(b, FILE_VERSION);
    put_u32(b, 5);
    put_u64(b, 0);                      /* total size, patched below */
    for (int s = 0; s < 5; s++) {
        put(b, section_tags[s], 4);
        size_t at = b->len;
        put_u64(b, 0);                  /* payload length, patched */
        size_t start = b->len;
        sec[s](b, t);
        if (b->failed)
            return;
        uint64_t len = b->len - start;
        for (size_t i = 0; i < 8; i++)
            b->p[at + i] = (uint8_t)(len >> (8 * i));
        put_u64(b, fnv1a(b->p + start, (size_t)len));
    }
    if (b->failed)
        return;
    uint64_t total = b->len + 8;
    for (int i = 0; i < 8; i++)
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
    FILE *f = fopen(path, "wb");
    bool ok = f && fwrite(b.p, 1, b.len, f) == b.len;
    if (f)
        ok &= fclose(f) == 0;
    mem_free(b.p);
    if (!ok)
        return tape_fail_call(TG_ERR_IO, "tg_tape_save: cannot write %s", path);
    return TG_OK;
}

/* ------------------------------------------------------------- load */

typedef struct rd {
    const uint8_t *p;
    size_t len, at;         /* current section: [at, len) */
    size_t base;            /* file offset of p[0], for messages */
    char *err;
    size_t errlen;
} rd;

static int
bad(rd *r, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static int
bad(rd *r, const char *fmt, ...)
{
    char msg[200];
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
    uint32_t nops;          /* opcodes the writer knew */
    unsigned flags;
    char name[TAPE_NAME_MAX + 1];
    uint32_t ninb, noutb, nin, nout, n, nk;
    char (*bname)[TAPE_NAME_MAX + 1];   /* ninb + noutb names */
    uint32_t *bsize;
    const uint8_t *ops, *cols, *kbits, *outs;
} image;

static int
read_meta(rd *r, image *im)
{
    uint32_t nops, flags;
    if (rd_u32(r, &nops, "opcode count") || rd_u32(r, &flags, "flags"))
        return -1;
    if (nops > TG_OP_COUNT)
        return bad(r, "file uses %" PRIu32 " opcodes, this build knows %d", nops, TG_OP_COUNT);
    im->nops = nops;
    if (flags & ~(unsigned)(TG_NO_FOLD | TG_NO_CSE))
        return bad(r, "unknown flags 0x%" PRIx32, flags);
    im->flags = flags;
    return rd_name(r, im->name, "tape name");
}

static int
read_blocks(rd *r, image *im)
{
    if (rd_u32(r, &im->ninb, "input block count") || rd_u32(r, &im->noutb, "output block count"))
        return -1;
    uint64_t nb = (uint64_t)im->ninb + im->noutb;
    if (nb * 6 > r->len - r->at)        /* each block takes >= 6 bytes */
        return bad(r, "%" PRIu64 " blocks cannot fit in the section", nb);
    im->bname = mem_calloc((size_t)nb + 1, sizeof *im->bname);
    im->bsize = mem_calloc((size_t)nb + 1, sizeof *im->bsize);
    if (!im->bname || !im->bsize)
        return bad(r, "out of memory");
    uint64_t tot[2] = { 0, 0 };
    for (uint32_t i = 0; i < nb; i++) {
        bool in = i < im->ninb;
        if (rd_name(r, im->bname[i], in ? "input block name" : "output block name")
            || rd_u32(r, &im->bsize[i], "block size"))
            return -1;
        if (im->bsize[i] == 0)
            return bad(r, "block \"%s\" is empty", im->bname[i]);
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

/* Every instruction and output, against the invariants of internal.h. */
static int
check_program(rd *r, const image *im)
{
    uint32_t inputs = 0, n = im->n;
    for (uint32_t i = 0; i < n; i++) {
        uint8_t op = im->ops[i];
        uint32_t a = get_u32(im->cols + 4 * (size_t)i);
        uint32_t o[3] = { a, get_u32(im->cols + 4 * ((size_t)n + i)),
                          get_u32(im->cols + 4 * (2 * (size_t)n + i)) };
        if (op >= im->nops)
            return bad(r, "instruction %" PRIu32 ": opcode %u out of range (the file declares %"
                       PRIu32 " opcodes)", i, op, im->nops);
        if (op == TG_OP_INPUT && a != inputs++)
            return bad(r, "instruction %" PRIu32 ": input index %" PRIu32 " out of order", i, a);
        if (op == TG_OP_CONST && a >= im->nk)
            return bad(r, "instruction %" PRIu32 ": constant %" PRIu32 " of %" PRIu32, i, a, im->nk);
        int ar = tape_op_arity[op];
        for (int j = 0; j < 3; j++) {
            if (j < ar && o[j] >= i)
                return bad(r, "instruction %" PRIu32 ": operand %d (%" PRIu32 ") is not earlier",
                           i, j + 1, o[j]);
            if (j >= (ar ? ar : 1) && o[j] != 0)
                return bad(r, "instruction %" PRIu32 ": unused operand %d is not 0", i, j + 1);
        }
    }
    if (inputs != im->nin)
        return bad(r, "%" PRIu32 " input instructions, the input blocks hold %" PRIu32, inputs, im->nin);
    for (uint32_t j = 0; j < im->nout; j++)
        if (get_u32(im->outs + 4 * (size_t)j) >= n)
            return bad(r, "output %" PRIu32 " refers to a missing instruction", j);
    return 0;
}

static int
parse(const uint8_t *p, size_t len, image *im, char *err, size_t errlen)
{
    rd r = { p, len, 0, 0, err, errlen };
    int (*const sec[5])(rd *, image *) = { read_meta, read_blocks, read_insts, read_consts,
                                           read_outputs };
    if (len < HEADER_BYTES + 8 || memcmp(p, FILE_MAGIC, 8) != 0)
        return bad(&r, "not a tapegen tape file (bad magic)");
    if (get_u32(p + 8) != FILE_VERSION)
        return bad(&r, "unsupported format version %" PRIu32 " (this build reads %u)",
                   get_u32(p + 8), FILE_VERSION);
    if (get_u32(p + 12) != 5 || get_u64(p + 16) != len)
        return bad(&r, "header says %" PRIu64 " bytes, the file has %zu (truncated or extended)",
                   get_u64(p + 16), len);
    if (fnv1a(p, len - 8) != get_u64(p + len - 8)) {
        r.at = len - 8;
        return bad(&r, "file checksum mismatch (corrupted)");
    }
    size_t at = HEADER_BYTES, end = len - 8;
    for (int s = 0; s < 5; s++) {
        r.at = at;
        if (end - at < 12 || memcmp(p + at, section_tags[s], 4) != 0)
            return bad(&r, "expected section %s", section_tags[s]);
        uint64_t slen = get_u64(p + at + 4);
        if (slen > end - at - 12 || end - at - 12 - slen < 8)
            return bad(&r, "section %s is longer than the file", section_tags[s]);
        size_t start = at + 12;
        if (fnv1a(p + start, (size_t)slen) != get_u64(p + start + slen)) {
            r.at = start;
            return bad(&r, "section %s checksum mismatch (corrupted)", section_tags[s]);
        }
        rd sr = { p + start, (size_t)slen, 0, start, err, errlen };
        if (sec[s](&sr, im))
            return -1;
        if (sr.at != sr.len)
            return bad(&sr, "%zu unexpected bytes at the end of section %s", sr.len - sr.at,
                       section_tags[s]);
        at = start + (size_t)slen + 8;
    }
    r.at = at;
    if (at != end)
        return bad(&r, "unexpected data after the last section");
    return check_program(&r, im);
}

/* Fills t from a validated image. */
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
    for (uint32_t i = 0; i < im->n; i++) {
        t->op[i] = im->ops[i];
        t->a[i] = get_u32(im->cols + 4 * (size_t)i);
        t->b[i] = get_u32(im->cols + 4 * ((size_t)im->n + i));
        t->c[i] = get_u32(im->cols + 4 * (2 * (size_t)im->n + i));
        if (t->op[i] == TG_OP_INPUT)
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
    if (!(t->flags & TG_NO_CSE) && tape_cse_rebuild(t))
        tape_fail(t, TG_ERR_NOMEM, "out of memory building the CSE table");
}

/* Reads the whole file, refusing anything larger than FILE_MAX. */
static uint8_t *
slurp(const char *path, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot open %s", path);
        return NULL;
    }
    buf b = { 0 };
    uint8_t chunk[65536];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0 && !b.failed && b.len <= FILE_MAX)
        put(&b, chunk, got);
    bool rerr = ferror(f);
    fclose(f);
    if (rerr || b.failed || b.len > FILE_MAX) {
        snprintf(err, errlen, "%s: %s", path, b.failed ? "out of memory" : rerr ? "read error" : "file too large");
        mem_free(b.p);
        return NULL;
    }
    *len = b.len;
    return b.p ? b.p : mem_malloc(1);
}

tg_tape *
tg_tape_load(const char *path)
{
    tg_tape *t = tg_tape_new("loading");
    if (!t)
        return NULL;
    if (!path) {
        tape_fail(t, TG_ERR_ARG, "tg_tape_load: NULL path");
        return t;
    }
    char err[320];
    size_t len = 0;
    uint8_t *p = slurp(path, &len, err, sizeof err);
    if (!p) {
        tape_fail(t, strstr(err, "out of memory") ? TG_ERR_NOMEM : TG_ERR_IO, "%s", err);
        return t;
    }
    image im;
    memset(&im, 0, sizeof im);
    if (parse(p, len, &im, err, sizeof err) == 0) {
        char *name = mem_malloc(strlen(im.name) + 1);
        if (name) {
            strcpy(name, im.name);
            mem_free(t->name);
            t->name = name;
            tape_from_image(t, &im);
        } else {
            tape_fail(t, TG_ERR_NOMEM, "out of memory loading %s", path);
        }
    } else {
        tape_fail(t, strstr(err, "out of memory") ? TG_ERR_NOMEM : TG_ERR_FORMAT, "%s: %s", path, err);
    }
    mem_free(im.bname);
    mem_free(im.bsize);
    mem_free(p);
    return t;
}
