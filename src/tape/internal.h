/* src/tape/internal.h -- the tape's representation, shared by src/tape,
 * src/ad and src/codegen.
 *
 * Invariants (checked by tape_verify):
 *  - instruction i defines value i; every operand of i is < i, so the tape
 *    is topologically ordered and sweeps are plain loops;
 *  - CONST: a = index into the constant pool k; INPUT: a = global input
 *    index (0..nin), the INPUT instructions appear in index order and
 *    in_ref[a] is the INPUT instruction of input a; unused operand columns
 *    hold 0 (checked for files, where the bytes are canonical);
 *  - input and output blocks tile the flat arrays in declaration order
 *    (sizes may be 0) and sum to nin and nout; outputs refer to
 *    instructions;
 *  - columns op/a/b/c live in one allocation (growth is all-or-nothing);
 *  - extended instructions (MAP, SCAN, CALL; see tape_xrec below): a = the
 *    index of its record in t->xr, b = c = 0; its nout outputs follow it
 *    as XOUT instructions (a = the extended instruction, b = the output
 *    index 0.., c = 0) and XOUTs appear nowhere else; the operand refs in
 *    t->xops are all earlier; a loop's body is a tape in t->bodies whose
 *    input/output block sizes match the record.  The xrecs are in
 *    instruction order. */
#ifndef TG_TAPE_INTERNAL_H
#define TG_TAPE_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "tapegen.h"
#include "tape/funcs.h"

#define TAPE_MAX_INSTS  ((uint64_t)UINT32_MAX - 1) /* ids 0..2^32-3; TG_ZERO, TG_NIL reserved */
#define TAPE_NAME_MAX   255

/* The record of an extended instruction (one per MAP/SCAN/CALL, in
 * instruction order).  Operand list at t->xops[op0 .. op0+nops):
 *   MAP:  xs[count*nx], params[np]
 *   SCAN: carry_in[nc], xs[count*nx], params[np]
 *   CALL: x[nx]
 * Outputs (the XOUT instructions inst+1 .. inst+nout):
 *   MAP:  ys[count*ny];  SCAN: carry_out[nc], ys[count*ny];  CALL: y[ny]. */
typedef struct tape_xrec {
    uint8_t kind;       /* TG_OP_MAP, TG_OP_SCAN or TG_OP_CALL */
    uint32_t body;      /* index into t->bodies (MAP/SCAN) or the call table (CALL) */
    uint64_t count;     /* map count / scan steps; 1 for CALL */
    uint32_t nc, nx, np, ny;    /* body block sizes: carry, per-step x, params, per-step y */
    uint64_t op0;       /* first operand in t->xops */
    uint64_t nops;
    uint64_t nout;
    uint32_t inst;      /* the extended instruction */
} tape_xrec;

/* Nesting depth of bodies within bodies that a tape may have (the loader
 * and tape_verify enforce it; recursive passes rely on it). */
#define TAPE_MAX_DEPTH 32
/* The most applications (map count, scan steps) one loop may have. */
#define TAPE_MAX_COUNT ((uint64_t)UINT32_MAX)

typedef struct tape_block {
    char *name;
    uint32_t offset;    /* first scalar in the flat input/output array */
    uint32_t size;
} tape_block;

struct tg_tape {
    char *name;
    tg_status status;
    char err[256];
    unsigned flags;             /* TG_NO_FOLD | TG_NO_CSE */
    uint64_t limit;             /* max instructions */

    uint32_t n, cap;            /* instructions, capacity of the columns */
    uint32_t *a, *b, *c;        /* operand columns (one block, see tape.c) */
    uint8_t *op;                /* opcode column */

    double *k;                  /* constant pool */
    uint32_t nk, kcap;

    tape_block *inb, *outb;     /* input / output blocks */
    uint32_t ninb, inbcap, noutb, outbcap;
    uint32_t *in_ref;           /* input scalar -> its INPUT instruction */
    uint32_t nin, nincap;
    uint32_t *out_ref;          /* output scalar -> instruction */
    uint32_t nout, noutcap;

    uint64_t *ht, *hg;          /* CSE tables, local and global (cse.c): slots */
    uint32_t hcap;              /* (hash tag << 32) | instruction id; the caps */
    uint32_t hgcap, hgcount;    /* are 0 or powers of two */
    struct tape_cse_pending {   /* the empty slot a missed find ended on, */
        uint64_t kbits, hash;   /* kept for the append that follows (cse.c) */
        uint32_t a, b, c, idx;
        uint8_t op, where;      /* where: 0 none, 1 local table, 2 global */
    } hpend;

    tape_xrec *xr;              /* extended-instruction records */
    uint32_t nxr, xrcap;
    uint32_t *xops;             /* their operand lists */
    uint64_t nxops, xopscap;
    struct tg_tape **bodies;    /* loop bodies, owned; each stored once */
    uint32_t nbodies, bodiescap;
    uint32_t depth;             /* nesting depth: 0 without loops, else 1 + max over bodies */
    unsigned xkinds;            /* TAPE_XK_* of the extended instructions here and in bodies */
    const struct tg_funcs *funcs;   /* the user functions CALLs refer to (one object per tape; */
    uint32_t *calls;            /* not owned); the call table: function indices into funcs, */
    uint32_t ncalls, callcap;   /* one entry per function called (src/tape/call.c) */
    /* Recording at a point (values.c): val[i] is instruction i's value,
     * TAPE_NOVAL where it has none; NULL (and never allocated) until an
     * input is declared with a value, then as long as the columns (cap). */
    double *val;
    /* Branch guards: the GUARD instructions in tape order (appended by
     * tape_append; rebuilt by tape_guards_rebuild after a pass that writes
     * the columns directly), checked by every evaluation. */
    uint32_t *guard;
    uint32_t nguard, guardcap;

    _Atomic(struct tape_attached *) attached;  /* see attach.c */
};

/* Bits of tg_tape.xkinds: which extended instructions a tape holds (its
 * bodies included). */
#define TAPE_XK_MAP  1u
#define TAPE_XK_SCAN 2u
#define TAPE_XK_CALL 4u
/* Not an instruction kind: some loop body (at any depth) holds branch
 * guards (tg_branch), so evaluations check them per application / step
 * (src/ad/xforward.c), and so does generated code (codegen/lower.h,
 * cg_guarded).  Set wherever a body is
 * attached (tape_append_x, the loader): tape_xk_body. */
#define TAPE_XK_BGUARD 8u
static inline unsigned
tape_xk_bit(uint8_t op)
{
    return op == TG_OP_MAP ? TAPE_XK_MAP : op == TG_OP_SCAN ? TAPE_XK_SCAN : TAPE_XK_CALL;
}

/* The xkinds bits a tape gets from holding body b. */
static inline unsigned
tape_xk_body(const struct tg_tape *b)
{
    return b->xkinds | (b->nguard ? TAPE_XK_BGUARD : 0u);
}

/* t (or a body of it) has loops, MAP or SCAN.  Paths that handle user
 * function calls but not loops yet refuse with this test (tape_refuse_x). */
static inline bool
tape_has_loops(const tg_tape *t)
{
    return (t->xkinds & (TAPE_XK_MAP | TAPE_XK_SCAN)) != 0;
}

/* op is MAP, SCAN or CALL (an extended instruction with a record).  The
 * instruction itself is not a value (only its XOUTs are). */
static inline bool
tape_is_x(uint8_t op)
{
    return op == TG_OP_MAP || op == TG_OP_SCAN || op == TG_OP_CALL;
}

extern const uint8_t tape_op_arity[TG_OP_COUNT];
extern const uint8_t tape_op_flags[TG_OP_COUNT];

/* How many of the columns a, b, c instruction op uses (the others hold 0):
 * the arity, or 1 for the leaves and extended instructions (a is an index),
 * 2 for XOUT (a the instruction, b the output index). */
static inline int
tape_cols_used(uint8_t op)
{
    return op == TG_OP_XOUT ? 2 : tape_op_arity[op] ? tape_op_arity[op] : 1;
}

/* t has extended instructions.  Every path that cannot handle them yet
 * refuses such tapes through this test (grep for tape_has_x). */
static inline bool
tape_has_x(const tg_tape *t)
{
    return t->nxr != 0;
}

/* The record of extended instruction i (tape_is_x(t->op[i])). */
static inline const tape_xrec *
tape_xrec_of(const tg_tape *t, uint32_t i)
{
    return &t->xr[t->a[i]];
}

/* The operand list of r (r->nops refs). */
static inline const uint32_t *
tape_xops(const tg_tape *t, const tape_xrec *r)
{
    return t->xops + r->op0;
}

/* The user function a CALL record calls (src/tape/funcs.h). */
static inline const tape_func *
tape_call_func(const tg_tape *t, const tape_xrec *r)
{
    return tape_funcs_at(t->funcs, t->calls[r->body]);
}

/* The body tape of a MAP/SCAN record. */
static inline const tg_tape *
tape_body_of(const tg_tape *t, const tape_xrec *r)
{
    return t->bodies[r->body];
}

/* An operand while recording: an instruction or a literal not yet on the
 * tape (literals are materialised only when an op is actually recorded, so
 * folding leaves no dead constants). */
typedef struct tape_opnd {
    uint32_t ref;       /* TG_NIL for a literal */
    double k;
} tape_opnd;

static inline tape_opnd tape_ref(uint32_t r) { tape_opnd o = { r, 0.0 }; return o; }
static inline tape_opnd tape_lit(double k)   { tape_opnd o = { TG_NIL, k }; return o; }

static inline uint64_t
tape_bits(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}

/* v is a value usable on t: an instruction of t (not an extended one), or the tapeless zero
 * {NULL or t, TG_ZERO} (tapegen.h). */
static inline bool
tape_var_ok(const tg_tape *t, tg_var v)
{
    return v.id == TG_ZERO ? (!v.tape || v.tape == t)
                           : (v.tape == t && v.id < t->n && !tape_is_x(t->op[v.id]));
}

/* attach.c: an object of a layer above, kept on a tape (made on first
 * use, destroyed with the tape).  The owner defines one static key per
 * kind of attachment.  tape_attachment returns t's object for key, making
 * it if needed (NULL: out of memory); thread-safe on a const tape. */
typedef struct tape_key {
    void *(*make)(void);
    void (*destroy)(void *obj);
} tape_key;
void *tape_attachment(const tg_tape *t, const tape_key *key);
/* t's object for key, or NULL when there is none yet (never makes one). */
void *tape_attachment_find(const tg_tape *t, const tape_key *key);
void  tape_detach_all(tg_tape *t);

/* blocks.c: the recorder's block entry points (the public tg_input_vec and
 * tg_output_vec check their arguments and call these).  tape_input_block
 * appends n INPUT instructions (t->in_ref[nin0 ..]); 0, or -1 with t
 * failed.  tape_output_block returns the n slots of a new output block for
 * the caller to fill with instructions of t, or NULL with t failed. */
int       tape_input_block(tg_tape *t, const char *name, size_t n);
uint32_t *tape_output_block(tg_tape *t, const char *name, size_t n);

/* blocks.c: the block (index) holding flat scalar k, and k's element in it */
uint32_t tape_block_of(const tape_block *b, uint32_t nb, uint32_t k, uint32_t *elem);

#if defined(__GNUC__)
#define TAPE_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define TAPE_UNLIKELY(x) (x)
#endif

/* tape.c */
#if defined(__GNUC__)
#define TAPE_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define TAPE_PRINTF(f, a)
#endif

int      tape_fail(tg_tape *t, tg_status s, const char *fmt, ...) TAPE_PRINTF(3, 4);
int      tape_reserve(tg_tape *t, uint64_t need);
uint32_t tape_append(tg_tape *t, uint8_t op, uint32_t a, uint32_t b, uint32_t c);
int      tape_grow(void **p, uint32_t *cap, uint64_t need, size_t elem);
bool     tape_name_ok(const char *s);

/* xtab.c: appends extended instruction op with record *rec (kind, body,
 * count, block sizes, nops, nout filled in by the caller) and operand list
 * ops[rec->nops], then its rec->nout XOUTs; all or nothing (t->limit
 * respected).  Returns the instruction id, or TG_NIL with t failed.
 * Never CSE'd. */
uint32_t tape_append_x(tg_tape *t, uint8_t op, const tape_xrec *rec, const uint32_t *ops);
/* xtab.c: index of body b in t->bodies, storing a copy when no
 * structurally identical body is there yet; UINT32_MAX with t failed. */
uint32_t tape_add_body(tg_tape *t, const tg_tape *b);
/* xtab.c: as tape_add_body, but takes b itself (freed when an identical
 * body is already there, or on failure). */
uint32_t tape_adopt_body(tg_tape *t, tg_tape *b);
/* xtab.c: a structural copy of t (instructions, constants, blocks, names,
 * flags, bodies, records; no CSE tables, no attachments); NULL when out
 * of memory.  Status and error are copied too. */
tg_tape *tape_clone(const tg_tape *t);
/* xtab.c: frees the loop tables of t (bodies included). */
void     tape_free_x(tg_tape *t);
/* xtab.c: the refusal of a path that cannot handle extended instructions
 * yet: TG_ERR_UNSUPPORTED with "<fn> does not support loops yet" as
 * tg_last_error, or TG_OK for a NULL tape or one without them.  Each call
 * is a piece of issue 11 still to do: grep tape_refuse_x.
 * tape_refuse_call: the same for user-function calls (issue 13). */
tg_status tape_refuse_x(const tg_tape *t, const char *fn);
tg_status tape_refuse_call(const tg_tape *t, const char *fn);
/* Both: for paths that handle neither (native code). */
tg_status tape_refuse_xc(const tg_tape *t, const char *fn);
/* xtab.c: bytes held by t's loop tables and bodies (for tg_tape_bytes). */
size_t   tape_x_bytes(const tg_tape *t);
/* xtab.c: two tapes record the same computation with the same blocks
 * (instructions, constants bit for bit, block names and sizes, bodies). */
bool     tape_same(const tg_tape *a, const tg_tape *b);

/* call.c: the index of function fn of fs in t's call table, added when
 * new (t->funcs becomes fs; a tape uses one object); TG_NIL with t failed.
 * tape_rec_call appends a CALL of fs's function fn on operand refs
 * x[n] with its k XOUTs: the CALL's id, or TG_NIL with t failed.
 * tape_copy_calls makes dst's call table a copy of src's (0, or -1 with
 * dst failed). */
uint32_t tape_call_entry(tg_tape *t, const tg_funcs *fs, uint32_t fn);
uint32_t tape_rec_call(tg_tape *t, const tg_funcs *fs, uint32_t fn, const uint32_t *x);
int      tape_copy_calls(tg_tape *dst, const tg_tape *src);

/* r is a CONST instruction of t: *v = its constant.  Inline: the folder
 * asks this of every operand of every recorded operation. */
static inline bool
tape_is_const(const tg_tape *t, uint32_t r, double *v)
{
    if (r >= t->n || t->op[r] != TG_OP_CONST)
        return false;
    *v = t->k[t->a[r]];
    return true;
}

/* record.c: the one recording entry point (fold, then CSE, then append).
 * Returns the result instruction, or TG_NIL once the tape is in error. */
uint32_t tape_rec(tg_tape *t, tg_opcode op, tape_opnd a, tape_opnd b, tape_opnd c);
/* As tape_rec, but a result folded to a constant stays an unmaterialised
 * literal (so chains of folds leave no dead constants). */
tape_opnd tape_rec_opnd(tg_tape *t, tg_opcode op, tape_opnd a, tape_opnd b, tape_opnd c);
uint32_t tape_const(tg_tape *t, double k);
/* The instruction of a value v with tape_var_ok(t, v): the tapeless zero
 * becomes the constant +0.0 on t (TG_NIL once t is in error). */
uint32_t tape_var_ref(tg_tape *t, tg_var v);
uint32_t tape_input(tg_tape *t);

/* replay.c: records f onto t with f's input k mapped to in[k] (refs of t);
 * map[i] receives t's ref for f's instruction i.  0, or -1 with t failed. */
int      tape_replay(tg_tape *t, const tg_tape *f, const uint32_t *in, uint32_t *map);

/* cse.c */
uint32_t tape_cse_find(tg_tape *t, uint8_t op, uint32_t a, uint32_t b, uint32_t c, double k);
/* The instruction (op, a, b, c) (not a constant or an input): found, or
 * appended -- tape_cse_find then tape_append, in one probe when there is
 * room.  TG_NIL with t failed. */
uint32_t tape_cse_append(tg_tape *t, uint8_t op, uint32_t a, uint32_t b, uint32_t c);
int      tape_cse_insert(tg_tape *t, uint32_t i);
int      tape_cse_reserve(tg_tape *t);
int      tape_cse_rebuild(tg_tape *t);
#define TAPE_CSE_WIN 16u        /* probe window of the local table */
/* true when tape_cse_reserve has nothing to do (the per-instruction test,
 * inlined into tape_append) */
static inline bool
tape_cse_has_room(const tg_tape *t)
{
    return (t->flags & TG_NO_CSE)
        || (2 * (uint64_t)(t->n + 1) + 2 * TAPE_CSE_WIN <= t->hcap
            && (uint64_t)(t->hgcount + 1) * 2 <= t->hgcap);
}

/* values.c: recording at a point.  The "no value" marker is a signalling
 * NaN with a payload no operation produces (arithmetic quiets NaNs), so a
 * value that is NaN by computation stays distinguishable from none. */
#define TAPE_NOVAL_BITS 0x7ff4e0a1e0a1e0a1ull
static inline double
tape_noval(void)
{
    double d;
    uint64_t u = TAPE_NOVAL_BITS;
    memcpy(&d, &u, sizeof d);
    return d;
}
static inline bool
tape_has_val(double d)
{
    return tape_bits(d) != TAPE_NOVAL_BITS;
}
/* Sets the value of new instruction i (t->val != NULL) from its operands'
 * values by the interpreter's semantics (tape_eval_op). */
void     tape_val_set(tg_tape *t, uint32_t i);
/* The values of loop i's outputs (loopval.c), when its operands have
 * values; fails t with TG_ERR_BRANCH when a body guard decides the other
 * way at this point. */
void     tape_val_loop(tg_tape *t, uint32_t i);
/* Makes t->val (all TAPE_NOVAL so far); 0, or -1 with t failed. */
int      tape_val_enable(tg_tape *t);
/* t->guard from the opcode column; 0, or -1 with t failed (no memory). */
int      tape_guards_rebuild(tg_tape *t);

/* fold.c: an exact replacement for op(a, b, c), or {TG_NIL, NaN-free} with
 * folded == false. */
bool     tape_fold(tg_tape *t, tg_opcode op, tape_opnd *a, tape_opnd *b, tape_opnd *c,
                   tape_opnd *out);

/* verify.c: 0 if the invariants hold, else -1 with a message in buf. */
int      tape_verify(const tg_tape *t, char *buf, size_t len);
/* The same, saying where the first broken invariant is (the loader turns
 * it into a byte offset of the file). */
enum { TAPE_AT_NONE, TAPE_AT_INST, TAPE_AT_OUTPUT, TAPE_AT_BLOCK, TAPE_AT_INPUTS,
       TAPE_AT_OUTPUTS };
typedef struct tape_fault {
    int kind;               /* TAPE_AT_* */
    uint32_t index;         /* the instruction, output scalar or block */
    int field;              /* instruction: 0 opcode, 1..3 operand; block: 1 input, 0 output */
    char msg[200];
} tape_fault;
int      tape_verify_at(const tg_tape *t, tape_fault *f);
/* After a pass that rebuilt t (replay, optimise, derivative tapes): in
 * TG_VERIFY builds (Debug, TG_SANITIZE) a broken invariant puts t in the
 * error state (TG_ERR_ARG, "internal error: ...") and returns -1; a no-op
 * returning 0 otherwise. */
int      tape_check_pass(tg_tape *t, const char *pass);

/* atomic.c: files written so that nothing is lost -- a temporary file in
 * the target's directory, fsync, rename over the target, fsync of the
 * directory.  tape_write_files stages every file before the first rename:
 * on failure (TG_ERR_IO, TG_ERR_NOMEM, message in err) every old file is
 * intact and no temporary is left.  A replaced file keeps its mode, a new
 * one gets 0666 & ~umask; a symbolic link stays a link to the new file. */
typedef struct tape_wfile {
    const char *path;
    const void *data;
    size_t len;
} tape_wfile;
tg_status   tape_write_files(const tape_wfile *f, size_t n, char *err, size_t errlen);
tg_status   tape_write_file(const char *path, const void *data, size_t len, char *err, size_t errlen);
/* mkdir -p; 0 or -1 with a message. */
int         tape_mkdirs(const char *path, char *err, size_t errlen);
/* errno as words (thread-safe; "file size limit exceeded" for EFBIG). */
const char *tape_errno_str(int err, char *buf, size_t len);

/* status.c: the thread-local message behind tg_last_error. */
tg_status tape_fail_call(tg_status s, const char *fmt, ...) TAPE_PRINTF(2, 3);

extern const uint8_t tape_op_arity[TG_OP_COUNT];
extern const uint8_t tape_op_flags[TG_OP_COUNT];

#endif
