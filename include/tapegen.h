/* tapegen.h -- automatic differentiation on a bytecode tape.
 *
 * Record a function once with the tg_* operation macros, then evaluate it
 * and its derivatives (gradient, Jacobian, JVP, VJP, Hessian, HVP) at many
 * points, from many threads.
 *
 * Conventions used throughout (see docs/):
 *  - Inputs and outputs come in named blocks; flat arrays concatenate the
 *    blocks in declaration order.  n = tg_num_inputs(t), m = tg_num_outputs(t).
 *  - Matrices are dense and row-major: J is m x n, J[i*n + j] = dy_i/dx_j;
 *    H is n x n (H[i*n + j] = d2y/dx_i dx_j) of a scalar-output tape.
 *  - Recording never returns an error: the first error is stored on the tape
 *    (sticky), later operations on that tape do nothing, and tg_tape_status /
 *    tg_tape_error report it.  Numeric functions return a tg_status and set a
 *    thread-local message (tg_last_error).  The library never aborts, exits
 *    or prints.
 *  - Functions taking `const tg_tape *` are safe to call concurrently from
 *    many threads on the same tape.  Recording into a tape is not.
 *  - Derivatives follow the numerical conventions in docs/conventions.md:
 *    absolute-zero products (CppAD's azmul), subgradient 0 at kinks, 1/2-1/2
 *    ties for min/max, stable formulas.
 */
#ifndef TAPEGEN_H
#define TAPEGEN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Every function declared here is exported from the library; nothing else
 * is (the library is built with -fvisibility=hidden). */
#if defined(__GNUC__)
#pragma GCC visibility push(default)
#endif

#define TG_VERSION_MAJOR 0
#define TG_VERSION_MINOR 1
#define TG_VERSION_PATCH 0
#define TG_VERSION_STRING "0.1.0"

/* ------------------------------------------------------------------ types */

/* A tape: the recorded program.  Opaque; create with tg_tape_new, release
 * with tg_tape_free. */
typedef struct tg_tape tg_tape;

/* A value on a tape: instruction `id` of `tape`.  Pass by value; it has no
 * lifetime of its own and is meaningful on its own tape only. */
typedef struct tg_var {
    tg_tape *tape;
    uint32_t id;
} tg_var;

/* Status codes.  tg_status_str gives a static description. */
typedef enum tg_status {
    TG_OK = 0,
    TG_ERR_NOMEM,   /* allocation failed */
    TG_ERR_ARG,     /* invalid argument: NULL pointer, bad block index, var of another tape, ... */
    TG_ERR_SHAPE,   /* wrong shape, e.g. gradient or Hessian of a tape whose output is not scalar */
    TG_ERR_IO,      /* file could not be read or written */
    TG_ERR_FORMAT,  /* file is not a valid tape (corrupt, truncated, unsupported version) */
    TG_ERR_NAME,    /* invalid or colliding identifier in code generation */
    TG_ERR_LIMIT,   /* a size limit of the tape or file format was exceeded */
    TG_ERR_BRANCH,  /* a recorded branch decision differs at this point: record again */
    TG_ERR_UNSUPPORTED /* needs something this build or machine lacks (e.g. a C compiler) */
} tg_status;

/* "Every input block" for a wrt argument. */
#define TG_ALL (-1)

/* The instruction id of no value (returned in tg_var.id after an error). */
#define TG_NIL UINT32_MAX

/* The id of the tapeless zero: {NULL, TG_ZERO} is the constant +0.0 before
 * it is on any tape.  It is what tg_sum, tg_dot and every norm return for
 * n == 0 (they have no tape to record on), so a sum over an empty block
 * needs no special case.  Every operation, tg_output, tg_output_vec,
 * tg_call and the vector helpers accept it (also as {t, TG_ZERO}) wherever
 * they accept a value, as the literal 0.0; it becomes tg_const(t, 0.0) when
 * it has to be on t (as an output).  An operation none of whose operands is
 * on a tape is computed: a result of +0.0 is the tapeless zero again,
 * anything else {NULL, TG_NIL} (e.g. tg_exp of it: use tg_const). */
#define TG_ZERO (UINT32_MAX - 1)
#define TG_ZERO_VAR ((tg_var){ NULL, TG_ZERO })

/* Static, never NULL.  Thread-safe. */
const char *tg_status_str(tg_status s);

/* The message of the last failing numeric call (tg_eval, tg_gradient, ...)
 * on the calling thread; "" if none failed yet.  Thread-local storage owned
 * by the library, valid until the next failing call on this thread. */
const char *tg_last_error(void);

/* The instruction set.  TG_OP_COUNT is the number of opcodes.  The table
 * lives in tapegen/ops.def; tg_op_name gives the lowercase mnemonic
 * ("add", "sin", ...) or NULL for an out-of-range code.
 *
 * Op flags (the flags column of ops.def; tg_op_flags):
 *  TG_OPF_COMMUTATIVE  op(a, b) == op(b, a) bit for bit in IEEE 754 (the
 *                      recorder puts the operands in a canonical order);
 *  TG_OPF_COMPARISON   the result is 0.0 or 1.0 and the op is piecewise
 *                      constant (derivative 0);
 *  TG_OPF_INTERNAL     recorded by the library itself (e.g. powk, the
 *                      constant-exponent pow), not a user-facing operation;
 *  TG_OPF_EXTENDED     an extended instruction (map, scan, call) or the
 *                      output of one (xout): recorded only by tg_map,
 *                      tg_scan and tg_call_fn-style calls, never by
 *                      tg_op1/2/3; its operands are read through
 *                      tg_tape_insn_operands;
 *  TG_OPF_MULTI        an extended instruction with several outputs, which
 *                      are the xout instructions right after it;
 *  TG_OPF_GUARD        a branch guard recorded by tg_branch (see "Recording
 *                      at a point"): never removed by optimisation, checked
 *                      by every evaluation. */
#define TG_OPF_COMMUTATIVE 1u
#define TG_OPF_COMPARISON  2u
#define TG_OPF_INTERNAL    4u
#define TG_OPF_EXTENDED    8u
#define TG_OPF_MULTI       16u
#define TG_OPF_GUARD       32u
typedef enum tg_opcode {
#define LEAF(NAME, name) TG_OP_##NAME,
#define OP(NAME, name, arity, flags, expr, rust) TG_OP_##NAME,
#define XOP(NAME, name, arity, flags) TG_OP_##NAME,
#include "tapegen/ops.def"
    TG_OP_COUNT
} tg_opcode;
const char *tg_op_name(tg_opcode op);
/* Number of operands of op (0 for leaves), or -1 out of range. */
int tg_op_arity(tg_opcode op);
/* The TG_OPF_* flags of op; 0 for leaves and out-of-range codes.
 * Thread-safe. */
unsigned tg_op_flags(tg_opcode op);

/* -------------------------------------------------------------- recording */

/* Recording options for tg_tape_new_ex.  By default the recorder applies
 * IEEE-exact constant folding and identities (x*1 and x/1 -> x, -(-x) -> x,
 * pow(x,2) -> x*x, ...; the full list is rule 2 of docs/conventions.md) and
 * hash-consing CSE; these flags turn them off, e.g. to check that
 * optimisation changes no bit of any result.
 *
 * TG_NO_CSE is also the fast recording option, for callers who re-record
 * often: without the CSE table recording takes about half the default's
 * time, a third on tapes of 10^6 instructions (bench/: "record nocse"); repeated subexpressions and literals then stay
 * duplicated until tg_tape_optimize (TG_OPT_BASIC and up), which re-records
 * with CSE: the optimised tape equals the default recording optimised the
 * same way, instruction for instruction (tests/test_cse.c). */
#define TG_NO_FOLD 1u
#define TG_NO_CSE  2u

/* A new empty tape named `name` (copied; NULL gives "f").  Returns NULL only
 * when out of memory.  Owned by the caller: release with tg_tape_free.  A
 * name that is not 1..255 bytes of UTF-8 puts the tape in the error state. */
tg_tape *tg_tape_new(const char *name);
/* As tg_tape_new, with option flags TG_NO_FOLD | TG_NO_CSE. */
tg_tape *tg_tape_new_ex(const char *name, unsigned flags);
/* Releases t and everything it owns.  NULL is allowed. */
void tg_tape_free(tg_tape *t);

/* The sticky status of t: TG_OK or the first error met while recording.
 * A NULL tape gives TG_ERR_ARG. */
tg_status tg_tape_status(const tg_tape *t);
/* The message of the first error, "" when TG_OK.  Owned by the tape. */
const char *tg_tape_error(const tg_tape *t);
/* The tape's name.  Owned by the tape. */
const char *tg_tape_name(const tg_tape *t);

/* Caps the number of instructions of t (at most and by default 2^32 - 2;
 * ids TG_ZERO and TG_NIL are reserved).
 * Growing past the cap puts the tape in the TG_ERR_LIMIT state; the
 * instructions already recorded stay intact.  Returns TG_ERR_ARG if the cap
 * is below the current size or t is NULL. */
tg_status tg_tape_set_limit(tg_tape *t, uint64_t max_instructions);

/* Declares a scalar input block named `name` and returns its value.
 * Block names are 1..255 bytes of UTF-8 and unique among the inputs. */
tg_var tg_input(tg_tape *t, const char *name);
/* Declares an input block of n scalars; fills x[0..n) with its values.  n
 * may be 0 (x may then be NULL): an empty block occupies no scalars but is
 * a block like any other (block lists, files, derivative tapes, a
 * zero-length slice in Rust).  Errors (sticky on t): a bad or duplicate
 * name, x NULL with n > 0 (TG_ERR_ARG), more than 2^32 - 2 input scalars
 * (TG_ERR_LIMIT), out of memory.  On any error x[0..n) receives the
 * placeholder {t, TG_NIL}, which every later operation accepts and ignores
 * -- except when n alone exceeds the limit (no array can be that long and
 * x is not written).  All arguments are checked before x is written. */
void tg_input_vec(tg_tape *t, const char *name, size_t n, tg_var *x);
/* ---------------------------------------------------- recording at a point
 *
 * Record a C function as it is written, ifs and loops included, the way
 * ADOL-C (trace_on, values on adouble, a return code from zos_forward when
 * a recorded branch would go the other way), CppAD (Independent,
 * compare_change) and echidna (record(f, x), branch tracking) do.
 *
 * tg_input_at and tg_input_vec_at declare input blocks as tg_input and
 * tg_input_vec (same names, errors and placeholders) whose scalars carry
 * the values x0 (x0[0..n)).  Every operation whose operands all have
 * values then computes its value while recording, with exactly the
 * interpreter's semantics (the opcode table's C expressions): tg_value(v)
 * equals, bit for bit, what tg_eval gives for v at that point.  Constants
 * have their value; an instruction depending on an input declared without
 * a value has none.  Values never change what is recorded (the tape is the
 * same as without values: docs/conventions.md rule 3), except for the
 * guards of tg_branch.  They are kept in a side array made by the first
 * valued input (a tape recorded without values never allocates it) and
 * dropped by tg_tape_optimize, saving, loading and derivative tapes (they
 * describe the recording, not the function).  Recording at a point costs
 * about 1.1-1.3x recording without values (bench/: "record at a point").
 * Errors: as tg_input_vec, plus TG_ERR_ARG for x0 NULL with n > 0.
 * The "no value" marker is one signalling-NaN bit pattern
 * (0x7ff4e0a1e0a1e0a1) that no operation produces: an input value with
 * exactly those bits counts as no value. */
tg_var tg_input_at(tg_tape *t, const char *name, double x0);
void   tg_input_vec_at(tg_tape *t, const char *name, size_t n, const double *x0, tg_var *x);
/* v's value at the recording point: 0.0 for the tapeless zero, NaN when v
 * has none (no valued input behind it, {NULL, TG_NIL}, a NULL tape).  A
 * value that is NaN by computation is NaN too: tg_branch tells them apart.
 * Reads only; not synchronised with recording on the same tape. */
double tg_value(tg_var v);
/* Whether cond's value at the recording point is != 0 (NaN counts as
 * true, as in C), and records a guard: the instruction GUARD(cond,
 * decision).  Afterwards every evaluation of the tape -- tg_eval, the
 * derivative calls and their _ws, multi, _wrt and sparse variants, the
 * batch calls, derivative tapes (which carry the same guards), kernels of
 * tg_tape_compile, generated C and Rust -- first checks each guard at its
 * point (one comparison per guard, after the value sweep and before any
 * output is written) and, where one decides the other way, returns
 * TG_ERR_BRANCH and writes nothing (generated Rust: Err(Error::Branch);
 * generated C and kernels: the status TG_ERR_BRANCH).  Derivatives are
 * those of the branch that was recorded.  Record again at the new point
 * to follow the other branch (the retape loop: examples/retape).
 * A constant condition is folded (no guard); equal guards are one (CSE).
 * Returns 0 and puts the tape in the error state TG_ERR_ARG when cond has
 * no value or is not a value of a tape; 0 on a tape already in error. */
int    tg_branch(tg_var cond);
/* The number of branch guards of t, and the instruction of guard k (tape
 * order; TG_NIL out of range).  0 / TG_NIL for NULL t. */
size_t   tg_num_guards(const tg_tape *t);
uint32_t tg_guard_ref(const tg_tape *t, size_t k);

/* The literal constant c (hash-consed by bit pattern: 0.0 and -0.0 differ). */
tg_var tg_const(tg_tape *t, double c);
/* Declares a scalar output block named `name` holding y. */
void tg_output(tg_tape *t, const char *name, tg_var y);
/* Declares an output block of n scalars holding y[0..n) (values of t or the
 * tapeless zero).  n may be 0 (y may then be NULL): an empty block.  The
 * name, the size and every element are checked before the tape changes;
 * errors as tg_input_vec, plus TG_ERR_ARG for an element that is not a
 * value of t. */
void tg_output_vec(tg_tape *t, const char *name, size_t n, const tg_var *y);

/* Total input scalars n and output scalars m (0 for NULL). */
size_t tg_num_inputs(const tg_tape *t);
size_t tg_num_outputs(const tg_tape *t);
/* Number of instructions, leaves (inputs, constants) included. */
size_t tg_tape_size(const tg_tape *t);
/* Bytes the tape's columns, constant pool, blocks and CSE table occupy. */
size_t tg_tape_bytes(const tg_tape *t);

/* Block queries: counts, and for block i (0-based, declaration order) its
 * name (owned by the tape), size and offset in the flat input/output array.
 * Out-of-range i gives NULL / 0. */
size_t      tg_num_input_blocks(const tg_tape *t);
size_t      tg_num_output_blocks(const tg_tape *t);
const char *tg_input_block_name(const tg_tape *t, size_t i);
size_t      tg_input_block_size(const tg_tape *t, size_t i);
size_t      tg_input_block_offset(const tg_tape *t, size_t i);
const char *tg_output_block_name(const tg_tape *t, size_t i);
size_t      tg_output_block_size(const tg_tape *t, size_t i);
size_t      tg_output_block_offset(const tg_tape *t, size_t i);
/* Index of the input block named `name`, or -1. */
int         tg_input_block_index(const tg_tape *t, const char *name);

/* The disassembly of t: one line per instruction ("%3 = mul %1 %2"), then
 * one line per output scalar, preceded by a header naming the tape and its
 * blocks.  Constants print so that they read back to the same bits.  Loops
 * print as "%5 = map body0 count=100 xs=[%1 %2 ...] params=[%3]" (scan:
 * "steps=" and "carry=[...]" before xs) with their outputs as "%6 = xout
 * %5 0"; after the outputs come the bodies, each as "body0:" and its own
 * disassembly indented by two spaces (nested bodies by two more).  The
 * string is malloc'd (caller frees with free()); NULL when out of memory. */
char *tg_tape_disasm(const tg_tape *t);

/* Reading a tape's instructions (for tools: graph printers, statistics,
 * translators outside the library).  Instruction i defines value i; its
 * operands are earlier instructions, so the tape is in topological order.
 *
 *   op          the opcode;
 *   noperands   the number of operands: tg_op_arity(op) for every op of
 *               this release (0 for CONST and INPUT);
 *   operand[k]  for k < noperands (and k < 3): the instruction id of
 *               operand k, < i; unused entries are TG_NIL;
 *   value       CONST: the constant, bit for bit as recorded (NaN payloads
 *               and -0.0 included); 0.0 for every other op;
 *   input       INPUT: the flat input index (0 .. tg_num_inputs(t)-1; see
 *               the tg_input_block_* queries for its block); TG_NIL else;
 *   body        MAP, SCAN: the index of the loop's body tape (read it
 *               with tg_tape_body); CALL: the index of the called
 *               function; TG_NIL for every other op.
 * Extended instructions (tg_op_flags(op) & TG_OPF_EXTENDED):
 *   map, scan, call  noperands = the length of the operand list (any
 *               number), operand[0..2] its first three entries, the rest
 *               through tg_tape_insn_operands.  Operand order: map: xs
 *               (count*nx), params (np); scan: carry_in (nc), xs
 *               (steps*nx), params (np); call: its arguments.  The
 *               instruction has no value of its own (0.0): its outputs are
 *               the xout instructions right after it;
 *   xout        noperands = 1, operand[0] = the extended instruction, and
 *               `input` = the output index k (map: ys in order; scan:
 *               carry_out (nc) then ys; call: its results).
 * Code that handles only
 * the ops it knows should skip an unknown op (op >= the TG_OP_COUNT it was
 * compiled with).  Fields may be appended at the end of the struct: fill
 * it only through tg_tape_insn.
 *
 * tg_tape_insn fills *out with instruction i (0 <= i < tg_tape_size(t)).
 * It reads a tape in the error state too (the instructions recorded before
 * the error are intact).  Errors: TG_ERR_ARG for a NULL t or out, or i out
 * of range (message in tg_last_error(); *out untouched).  Reads the tape
 * only: safe to call concurrently, as every const tg_tape function. */
typedef struct tg_insn {
    tg_opcode op;
    uint32_t noperands;
    uint32_t operand[3];
    double value;
    uint32_t input;
    uint32_t body;
} tg_insn;
tg_status tg_tape_insn(const tg_tape *t, size_t i, tg_insn *out);
/* Operands first .. first+n-1 of instruction i into out[0..n) (for the
 * extended instructions, whose operand lists are longer than three; works
 * for every instruction, with noperands as tg_tape_insn gives it).
 * Errors: TG_ERR_ARG for a NULL t, a NULL out with n > 0, i out of range,
 * or first + n > noperands (nothing written).  Reads only. */
tg_status tg_tape_insn_operands(const tg_tape *t, size_t i, size_t first, size_t n,
                                uint32_t *out);
/* The body tapes of t's loops (bodies of bodies are read from the body):
 * their number (0 for NULL), and body j (NULL when j is out of range).
 * The body is owned by t: valid while t lives, never to be freed or
 * recorded on. */
size_t          tg_tape_num_bodies(const tg_tape *t);
const tg_tape  *tg_tape_body(const tg_tape *t, size_t j);
/* The instruction that output scalar j (flat index, 0 .. tg_num_outputs(t)
 * - 1) refers to; TG_NIL for a NULL t or j out of range.  Several outputs
 * may share an instruction, and an output may be an input or a constant. */
uint32_t tg_output_ref(const tg_tape *t, size_t j);
/* The INPUT instruction of input scalar k (flat index, 0 .. tg_num_inputs(t)
 * - 1); TG_NIL for a NULL t or k out of range. */
uint32_t tg_input_ref(const tg_tape *t, size_t k);

/* Operands of the operation macros: a tg_var or any arithmetic literal.
 * Internal plumbing for the macros below; use the macros. */
typedef struct tg_operand {
    tg_tape *tape;
    uint32_t id;
    uint32_t is_var;   /* 0: the literal k */
    double k;
} tg_operand;
static inline tg_operand tg__opnd_var(tg_var v)
{ tg_operand o; o.tape = v.tape; o.id = v.id; o.is_var = 1; o.k = 0.0; return o; }
static inline tg_operand tg__opnd_num(double k)
{ tg_operand o; o.tape = NULL; o.id = TG_NIL; o.is_var = 0; o.k = k; return o; }
#define TG_OPND(x) _Generic((x), tg_var: tg__opnd_var, default: tg__opnd_num)(x)

/* Records op on its operands and returns the result.  The tape is the one
 * the tg_var operands belong to; they must all belong to the same tape (an
 * operand of another tape is a sticky TG_ERR_ARG on the first operand's
 * tape).  With no tg_var operand there is no tape to record on and the
 * result is {NULL, TG_NIL}, which poisons whatever tape it is later used on
 * (but see TG_ZERO: the tapeless zero is an operand on any tape).
 * op must have the arity of the function (1, 2 or 3). */
tg_var tg_op1(tg_opcode op, tg_operand a);
tg_var tg_op2(tg_opcode op, tg_operand a, tg_operand b);
tg_var tg_op3(tg_opcode op, tg_operand a, tg_operand b, tg_operand c);

/* The same as tg_op1 and tg_op2 with each operand unpacked into scalars
 * (tape; id | is_var << 32; k), which travel in registers where a
 * tg_operand (24 bytes) is copied through the stack: the operation macros
 * call these through tg__op1/tg__op2, which halves the per-operation cost
 * of recording.  Same results, errors and thread-safety as tg_op1/tg_op2;
 * use the macros. */
tg_var tg_op1_unpacked(tg_opcode op, tg_tape *ta, uint64_t ia, double ka);
tg_var tg_op2_unpacked(tg_opcode op, tg_tape *ta, uint64_t ia, double ka,
                       tg_tape *tb, uint64_t ib, double kb);
static inline tg_var tg__op1(tg_opcode op, tg_operand a)
{ return tg_op1_unpacked(op, a.tape, a.id | (uint64_t)a.is_var << 32, a.k); }
static inline tg_var tg__op2(tg_opcode op, tg_operand a, tg_operand b)
{
    return tg_op2_unpacked(op, a.tape, a.id | (uint64_t)a.is_var << 32, a.k,
                           b.tape, b.id | (uint64_t)b.is_var << 32, b.k);
}

/* Binary operations; each operand is a tg_var or a number.
 * tg_pow with a literal (or tg_const) exponent records the constant-exponent
 * op: finite for a negative base and an integer exponent, never computed
 * through exp/log.  tg_min/tg_max ignore a NaN operand (as C's fmin/fmax)
 * and return the first operand on ties; their derivatives give 1/2 to each
 * operand on ties.  tg_azmul(a, b) is 0 if either factor is exactly 0, else
 * a*b (CppAD's absolute-zero multiplication). */
#define tg_add(a, b)   tg__op2(TG_OP_ADD,   TG_OPND(a), TG_OPND(b))
#define tg_sub(a, b)   tg__op2(TG_OP_SUB,   TG_OPND(a), TG_OPND(b))
#define tg_mul(a, b)   tg__op2(TG_OP_MUL,   TG_OPND(a), TG_OPND(b))
#define tg_div(a, b)   tg__op2(TG_OP_DIV,   TG_OPND(a), TG_OPND(b))
#define tg_pow(a, b)   tg__op2(TG_OP_POW,   TG_OPND(a), TG_OPND(b))
#define tg_min(a, b)   tg__op2(TG_OP_MIN,   TG_OPND(a), TG_OPND(b))
#define tg_max(a, b)   tg__op2(TG_OP_MAX,   TG_OPND(a), TG_OPND(b))
#define tg_atan2(a, b) tg__op2(TG_OP_ATAN2, TG_OPND(a), TG_OPND(b))
#define tg_hypot(a, b) tg__op2(TG_OP_HYPOT, TG_OPND(a), TG_OPND(b))
#define tg_azmul(a, b) tg__op2(TG_OP_AZMUL, TG_OPND(a), TG_OPND(b))
/* Comparisons: 1.0 or 0.0 (0.0 when an operand is NaN); derivative 0. */
#define tg_lt(a, b)    tg__op2(TG_OP_LT,    TG_OPND(a), TG_OPND(b))
#define tg_le(a, b)    tg__op2(TG_OP_LE,    TG_OPND(a), TG_OPND(b))
#define tg_gt(a, b)    tg__op2(TG_OP_GT,    TG_OPND(a), TG_OPND(b))
#define tg_ge(a, b)    tg__op2(TG_OP_GE,    TG_OPND(a), TG_OPND(b))
/* a where c != 0, else b.  Derivatives flow only into the taken branch. */
#define tg_select(c, a, b) tg_op3(TG_OP_SELECT, TG_OPND(c), TG_OPND(a), TG_OPND(b))

/* Unary operations on a tg_var.  Semantics are C's libm; in addition
 * fract(x) = x - trunc(x), round is half away from zero, signum(+-0) = 0 and
 * signum(NaN) = NaN.  Derivatives of abs at 0, and of floor, ceil, round,
 * trunc and signum everywhere, are 0 (NaN for a NaN argument). */
#define tg_neg(a)    tg__op1(TG_OP_NEG,    TG_OPND(a))
#define tg_sin(a)    tg__op1(TG_OP_SIN,    TG_OPND(a))
#define tg_cos(a)    tg__op1(TG_OP_COS,    TG_OPND(a))
#define tg_tan(a)    tg__op1(TG_OP_TAN,    TG_OPND(a))
#define tg_asin(a)   tg__op1(TG_OP_ASIN,   TG_OPND(a))
#define tg_acos(a)   tg__op1(TG_OP_ACOS,   TG_OPND(a))
#define tg_atan(a)   tg__op1(TG_OP_ATAN,   TG_OPND(a))
#define tg_sinh(a)   tg__op1(TG_OP_SINH,   TG_OPND(a))
#define tg_cosh(a)   tg__op1(TG_OP_COSH,   TG_OPND(a))
#define tg_tanh(a)   tg__op1(TG_OP_TANH,   TG_OPND(a))
#define tg_asinh(a)  tg__op1(TG_OP_ASINH,  TG_OPND(a))
#define tg_acosh(a)  tg__op1(TG_OP_ACOSH,  TG_OPND(a))
#define tg_atanh(a)  tg__op1(TG_OP_ATANH,  TG_OPND(a))
#define tg_exp(a)    tg__op1(TG_OP_EXP,    TG_OPND(a))
#define tg_expm1(a)  tg__op1(TG_OP_EXPM1,  TG_OPND(a))
#define tg_log(a)    tg__op1(TG_OP_LOG,    TG_OPND(a))
#define tg_log1p(a)  tg__op1(TG_OP_LOG1P,  TG_OPND(a))
#define tg_sqrt(a)   tg__op1(TG_OP_SQRT,   TG_OPND(a))
#define tg_cbrt(a)   tg__op1(TG_OP_CBRT,   TG_OPND(a))
#define tg_erf(a)    tg__op1(TG_OP_ERF,    TG_OPND(a))
#define tg_erfc(a)   tg__op1(TG_OP_ERFC,   TG_OPND(a))
#define tg_abs(a)    tg__op1(TG_OP_ABS,    TG_OPND(a))
#define tg_floor(a)  tg__op1(TG_OP_FLOOR,  TG_OPND(a))
#define tg_ceil(a)   tg__op1(TG_OP_CEIL,   TG_OPND(a))
#define tg_round(a)  tg__op1(TG_OP_ROUND,  TG_OPND(a))
#define tg_trunc(a)  tg__op1(TG_OP_TRUNC,  TG_OPND(a))
#define tg_fract(a)  tg__op1(TG_OP_FRACT,  TG_OPND(a))
#define tg_signum(a) tg__op1(TG_OP_SIGNUM, TG_OPND(a))

/* Vector helpers over n >= 1 values x[0..n) (and y[0..n)) of one tape,
 * recorded as ordinary instructions (left-to-right sums):
 *   tg_sum = sum x_i           tg_dot = sum x_i*y_i
 *   tg_norm2 = sqrt(sum x_i^2) tg_norm2sq = sum x_i^2
 *   tg_norm1 = sum |x_i|       tg_norm_inf = max |x_i|
 *   tg_norm_p = (sum |x_i|^p)^(1/p)   tg_norm_p_to_p = sum |x_i|^p
 * n == 0 gives the constant 0 whatever the function (the tapeless zero,
 * TG_ZERO_VAR: there may be no tape to record on); elements may be the
 * tapeless zero.  A NULL array with n > 0, or an element of another tape,
 * gives {t or NULL, TG_NIL} and puts the tape in TG_ERR_ARG. */
tg_var tg_sum(size_t n, const tg_var *x);
tg_var tg_dot(size_t n, const tg_var *x, const tg_var *y);
tg_var tg_norm2(size_t n, const tg_var *x);
tg_var tg_norm2sq(size_t n, const tg_var *x);
tg_var tg_norm1(size_t n, const tg_var *x);
tg_var tg_norm_inf(size_t n, const tg_var *x);
tg_var tg_norm_p(size_t n, const tg_var *x, double p);
tg_var tg_norm_p_to_p(size_t n, const tg_var *x, double p);

/* ------------------------------------------- evaluation and derivatives */

/* All of these read the tape only and may run concurrently on one tape.
 * x: n doubles (inputs, blocks concatenated).  Errors: TG_ERR_ARG for a
 * NULL pointer, the tape's own sticky status if it is in the error state,
 * TG_ERR_SHAPE where noted, TG_ERR_NOMEM.  On error the outputs are left
 * untouched.  Each call borrows a workspace from a small pool owned by the
 * tape (allocation only when the pool is empty); use the *_ws variants
 * below with a caller-owned workspace for a hot loop that never allocates.
 *
 * Derivatives are computed by sweeps over the tape: a forward (value) sweep,
 * a reverse (adjoint) sweep [Griewank & Walther, Evaluating Derivatives,
 * 2nd ed., ch. 3], a forward tangent sweep, and a second-order
 * tangent-over-adjoint sweep for Hessian-vector products [ibid., ch. 5]. */

/* y = f(x).  y: m doubles. */
tg_status tg_eval(const tg_tape *t, const double *x, double *y);
/* g = grad f(x), m must be 1 (else TG_ERR_SHAPE).  g: n doubles. */
tg_status tg_gradient(const tg_tape *t, const double *x, double *g);
/* J = df/dx (x), m*n doubles, row-major.  When the tape's structural
 * pattern lets several columns (or rows) share a direction (Curtis-Powell-
 * Reid seed compression: the pattern and colouring of tg_jacobian_sparsity,
 * made on the first call or by tg_workspace_new(t) and kept with the tape),
 * one tangent (adjoint) sweep per 8 colours; otherwise forward sweeps in
 * blocks of 8 directions when n <= m, else reverse sweeps in blocks of 8
 * outputs.  Compressed and uncompressed sweeps in the same direction give
 * the same values (up to the sign of zeros); across directions they agree
 * up to rounding.  For large sparse Jacobians use tg_sparse_jacobian,
 * which writes only the nonzeros. */
tg_status tg_jacobian(const tg_tape *t, const double *x, double *J);
/* jv = J(x) v.  v: n doubles, jv: m doubles (one forward tangent sweep). */
tg_status tg_jvp(const tg_tape *t, const double *x, const double *v, double *jv);
/* wj = w^T J(x).  w: m doubles, wj: n doubles (one reverse sweep). */
tg_status tg_vjp(const tg_tape *t, const double *x, const double *w, double *wj);
/* H = Hessian of f at x, m == 1; H: n*n doubles, row-major (symmetric up to
 * rounding; computed as n Hessian-vector products, 8 per sweep). */
tg_status tg_hessian(const tg_tape *t, const double *x, double *H);
/* hv = H(x) v, m == 1.  v, hv: n doubles (tangent-over-adjoint). */
tg_status tg_hvp(const tg_tape *t, const double *x, const double *v, double *hv);

/* Lazy derivative tapes (tg_gradient, tg_hvp, their _ws variants and
 * tg_gradient_batch, where a batch counts as one call).  On
 * the 32nd simple tg_gradient (tg_hvp) call on a tape (about when the
 * sweeps have cost as much as the build), the library builds
 * tg_gradient_tape(t, TG_ALL) (tg_hvp_tape(t, TG_ALL)) once, optimises it
 * (TG_OPT_BASIC), keeps it on t and from then on evaluates it with the
 * value sweep, which runs faster than the adjoint sweeps (W1 n = 1000:
 * gradient 11 us against 28 us, HVP 22 us against 72 us; tgbench
 * --no-lazy measures the sweeps).  The build runs in the calling thread,
 * costs about as much as 25-40 sweeps, is thread-safe (one
 * build per tape) and is skipped silently when out of memory or when the
 * derivative tape would exceed 8x the instructions of t or 64 MiB
 * (tg_tape_bytes); the sweeps then
 * keep serving.  _ws calls use the derivative tape once a simple call has
 * built it and the workspace holds it (tg_workspace_new made afterwards
 * does), else they sweep: they never allocate for it.  Recording into t
 * or optimising it makes the tape be rebuilt for the new shape (the old
 * one is freed with t).  Native routes (tg_tape_compile) take precedence.
 * Results: a derivative tape's value agrees with the sweep up to the sign
 * of zeros (gradient) and up to rounding (HVP: the HVP tape is tangent
 * over adjoint, recorded through the folding recorder); see "derivative
 * tapes" below.  So consecutive calls at the same point may differ in that
 * way across the switch.  Callers that need the sweep's bits every time
 * turn the lazy tapes off with tg_tape_set_lazy(t, 0) (on: 1, the
 * default).  Returns TG_ERR_ARG for a NULL t, TG_ERR_NOMEM.  Not
 * thread-safe with respect to other calls on t. */
tg_status tg_tape_set_lazy(tg_tape *t, int on);

/* The memory budget of the adjoint and second-order sweeps through scans
 * (tg_scan) on t and in its loop bodies: at most `snapshots` carries (for
 * second order: carries with their tangents) of one scan are held at a
 * time.  A scan's reverse pass needs the carry before each step, in
 * reverse order; with s snapshots for l steps they are recomputed from
 * checkpoints placed by binomial checkpointing [Griewank & Walther,
 * "Algorithm 799: revolve", ACM TOMS 26(1), 2000], which needs the fewest
 * forward steps possible: r*l - C(s+r, s+1) with r the least integer with
 * C(s+r, s) >= l, i.e. every step is recomputed at most r times (10^5
 * steps with 100 snapshots: r = 3).  s counts the snapshot of the scan's
 * input carry; s >= l stores every carry (each step recomputed once in
 * the reverse pass, no more).  snapshots == 0 (the default) is automatic:
 * every carry is stored while they take at most 8 MiB per scan, else as
 * many snapshots as fit in 8 MiB.  Memory: snapshots * (carry size)
 * doubles per scan being reversed, plus one body's arrays per nesting
 * level; it is taken from the caller's workspace (tg_workspace_new(t)
 * sizes for it) or the pooled one.  When every carry is stored, the
 * first-order sweeps at one point (tg_gradient, tg_vjp, the first-order
 * part of tg_hvp and tg_hessian, their _ws, _wrt and _multi variants)
 * keep what their forward sweep computes instead of recomputing it: each
 * step's local partials of the body (2 doubles per body instruction and
 * step, as the flat tape stores) when the body has no loops, else the
 * carries, within 8 MiB per call (workspaces size for it), so the reverse
 * pass sweeps the body once per step, as the flat tape does; a scan
 * beyond that is reversed as above.  Results do not depend on the budget
 * (the same operations in the same order), only time and memory do.
 * Returns TG_ERR_ARG for a NULL t, TG_ERR_NOMEM.  Not thread-safe with
 * respect to other calls on t; workspaces made before the change may be
 * regrown by the next call. */
tg_status tg_tape_set_checkpoints(tg_tape *t, size_t snapshots);

/* Kinks (echidna's kink detection): which instructions are at or within
 * tol of a point where the function is not differentiable, so that the
 * derivatives at x are one-sided there (the library's conventions pick
 * one side: docs/conventions.md).  One value sweep at x; then, in tape
 * order, every instruction whose argument is within tol (absolute, in
 * the argument's units) of its kink:
 *   abs, signum: |a|;  min, max, lt, le, gt, ge: |a - b| (a tie);
 *   floor, ceil, trunc, fract: |a - nearest integer|;
 *   round: |a - nearest half-integer|;
 *   select: the distance of its condition when that is a comparison,
 *   else |c|.
 * out[0 .. min(*n, cap)) receives {instruction, op, distance}; *n the
 * number found (may exceed cap: call again with a larger array).  Branch
 * guards are not checked (tg_kinks is how to learn which comparison is
 * about to flip).  NaN distances are never reported.  Errors: TG_ERR_ARG
 * (NULL t, x with n > 0, n, out with cap > 0; tol < 0 or NaN), the
 * tape's status, TG_ERR_NOMEM.  Thread-safe on a const tape. */
typedef struct tg_kink {
    uint32_t insn;      /* the instruction (tg_tape_insn) */
    tg_opcode op;
    double dist;        /* how far its argument is from the kink, <= tol */
} tg_kink;
tg_status tg_kinks(const tg_tape *t, const double *x, double tol, tg_kink *out, size_t cap,
                   size_t *n);

/* Batches of npts points, evaluated in parallel with OpenMP (when built with
 * it) and several points per instruction dispatch.  X: npts*n doubles, one
 * point per row; Y: npts*m; G: npts*n (m must be 1).  npts == 0 does
 * nothing and returns TG_OK. */
tg_status tg_eval_batch(const tg_tape *t, size_t npts, const double *X, double *Y);
tg_status tg_gradient_batch(const tg_tape *t, size_t npts, const double *X, double *G);
/* The same, saying per point whether its branch guards (tg_branch) hold:
 * st[p] (npts entries, written for every point once the arguments pass
 * their checks) is TG_OK or TG_ERR_BRANCH, and the row of a point whose
 * guard decides the other way is left untouched; the other rows are
 * written.  The plain calls behave the same without st.  Both return
 * TG_ERR_BRANCH when any point failed, the message (tg_last_error) giving
 * how many and the first; TG_OK when every point passed.  Other errors as
 * the plain calls (st NULL with npts > 0: TG_ERR_ARG).  A guarded tape
 * with a native route (tg_tape_compile) runs its kernel point by point. */
tg_status tg_eval_batch_status(const tg_tape *t, size_t npts, const double *X, double *Y,
                               tg_status *st);
tg_status tg_gradient_batch_status(const tg_tape *t, size_t npts, const double *X, double *G,
                                   tg_status *st);

/* ------------------------------------------------------ derivative tapes */

/* Each returns a NEW tape (the caller frees it with tg_tape_free) that
 * computes a derivative of f symbolically: f is replayed onto it and a
 * forward (tangent) or reverse (adjoint) sweep records the derivative code
 * after it, through the normal recorder, so CSE and folding apply as it is
 * made.  Derivative tapes are ordinary tapes: evaluate, differentiate again,
 * optimise, save, translate them.
 *
 * Layout: f's input blocks first, in order, then the extra block (if any):
 * a tangent block "v" of n_w scalars (jvp, hvp) or a cotangent block "w" of
 * m scalars (vjp), renamed "v_2", "v_3", ... if f already has such a block.
 * Exactly one output block: "grad" (n_w), "jac" (m*n_w, row-major), "hess"
 * (n_w*n_w, row-major), "jvp" (m), "vjp" (n_w), "hvp" (n_w).  The tape is
 * named "<f>_grad", "<f>_jac", "<f>_hess", "<f>_jvp", "<f>_vjp", "<f>_hvp".
 *
 * wrt: an input block index (0-based, declaration order) or TG_ALL; n_w is
 * the number of scalars it selects.  Invalid arguments give a tape in the
 * error state (check tg_tape_status): TG_ERR_ARG for a NULL f or a bad wrt,
 * TG_ERR_SHAPE for grad/hess/hvp of a tape whose m != 1, f's own status if
 * f is in error, TG_ERR_LIMIT when the tape would have more than 2^32 - 2
 * outputs (or more scratch than the machine can address) -- checked from
 * the sizes alone, before any work, so an n_w = 70000 Hessian (4.9e9
 * outputs) fails at once.  NULL only when out of memory.
 *
 * Empty blocks: n_w may be 0 (wrt an empty block) and m may be 0; the
 * derivative blocks are then empty ("grad" of 0 scalars, an empty tangent
 * block "v", ...), never an error.
 *
 * Second derivatives: the partials of pow, atan2 and hypot are ops of
 * their own (powdx, powdy, atan2dx, hypotdx; src/ad/rules.def) whose
 * partials are written once, so both mixed partials of these ops are the
 * same expression: Hessians are symmetric, bit for bit, also where one
 * side would overflow (pow at a subnormal base, atan2 at infinite or
 * subnormal arguments).
 *
 * The derivative rules are the ones the numeric sweeps use (one table), so
 * a derivative tape and the numeric call that sweeps in the same direction
 * agree (up to the sign of zeros): gradient/VJP tapes and tg_gradient/
 * tg_vjp, JVP tapes and tg_jvp.  Where the directions differ (a Jacobian
 * tape built from tangent sweeps vs tg_jacobian using adjoint sweeps, or
 * Hessians), results agree up to rounding.
 * Partials that can be Inf or NaN meet tangents/adjoints through explicit
 * absolute-zero products (azmul); select routes adjoints to the taken
 * branch only.  The Jacobian tape uses n_w tangent sweeps when n_w <= m,
 * else m adjoint sweeps; the Hessian tape is the Jacobian of the gradient
 * code; the HVP tape is tangent over adjoint and stays O(|f|).
 *
 * Loops (tg_map, tg_scan) stay loops in every derivative tape, at every
 * nesting depth, so its size is O(|body| + trip-count data), never
 * O(count * |body|): the tangent of a map is a map of the body's JVP (over
 * the applications with a nonzero tangent), of a scan a scan of the body's
 * JVP carrying (c, dc); the adjoint of a map is a map of the body's VJP
 * (over the applications with a nonzero cotangent) and a reverse scan
 * summing the params' contributions, of a scan a forward scan that saves
 * the carry entering each step (none when the scan returns its carries as
 * ys already) followed by a reverse scan of the body's VJP carrying the
 * carry's adjoint and the params' adjoint, over the saved carries and step
 * inputs in reverse order [Griewank & Walther, 2nd ed., ch. 12, the
 * store-all reversal of an evolution]; second order composes the two.  The
 * derived bodies recompute the body's values; tg_tape_optimize merges the
 * original scan into its carry-saving copy.  Results agree with the
 * derivative tapes of the unrolled recording up to the order of sums (a
 * map's param adjoints are summed per application, then across). */
tg_tape *tg_gradient_tape(const tg_tape *f, int wrt);
tg_tape *tg_jacobian_tape(const tg_tape *f, int wrt);
tg_tape *tg_hessian_tape(const tg_tape *f, int wrt);
tg_tape *tg_jvp_tape(const tg_tape *f, int wrt);
tg_tape *tg_vjp_tape(const tg_tape *f, int wrt);
tg_tape *tg_hvp_tape(const tg_tape *f, int wrt);

/* Parts of a joint tape. */
#define TG_F    1u
#define TG_GRAD 2u
#define TG_JAC  4u
#define TG_HESS 8u
#define TG_HVP  16u
/* One tape computing several results for one wrt and sharing their common
 * work (gradgen's Function.joint): f is recorded once, the gradient once
 * (for GRAD, HESS and HVP alike).  Inputs: f's blocks, plus a tangent block
 * "v" (n_w) when TG_HVP is requested.  Output blocks, in this order, for the
 * parts requested: "f" (m), "grad" (n_w), "jac" (m*n_w), "hess" (n_w*n_w),
 * "hvp" (n_w).  Named "<f>_joint".  GRAD, HESS and HVP need m == 1
 * (TG_ERR_SHAPE).  Errors as for the tapes above. */
tg_tape *tg_joint_tape(const tg_tape *f, unsigned parts, int wrt);

/* Inlines f into the tape dst being recorded (symbolic call, gradgen's
 * f(z)): f's input k takes the value args[k] (tg_num_inputs(f) values of
 * dst, or the tapeless zero; args may be NULL when f has no input scalars),
 * and results[j] receives f's output j (tg_num_outputs(f) values; results
 * may be NULL when there are none).
 * Every instruction goes through dst's recorder, so folding and CSE work
 * across the boundary.  Errors are sticky on dst (results are then
 * {dst, TG_NIL}).  f may be dst itself. */
void tg_call(tg_tape *dst, const tg_tape *f, const tg_var *args, tg_var *results);

/* Loops kept in the tape (issue 11).  Both record ONE loop instruction on
 * t that refers to a copy of `body` owned by t (body may be freed or
 * changed afterwards; structurally identical bodies are stored once).  The
 * tape grows by |body| + count*(nx+ny) (+ nc for a scan), never by
 * count * |body|.  Bodies may contain loops themselves (at most 32 levels
 * deep).
 *
 * tg_map: body has exactly two input blocks, x[nx] and p[np], and one
 * output block y[ny] (any of them may have size 0).  For i = 0..count-1:
 *     ys[i*ny .. i*ny+ny) = body(xs[i*nx .. i*nx+nx), params)
 * xs: count*nx values of t, params: np values shared by every
 * application, ys: count*ny slots filled by the call (xs, params, ys may be
 * NULL when they would hold no element).
 *
 * tg_scan (JAX's lax.scan, CasADi's mapaccum): body has input blocks
 * carry[nc], x[nx], p[np] and output blocks carry_next[nc], y[ny].  With
 * c = carry_in: for k = 0..steps-1:
 *     (c, ys[k*ny .. k*ny+ny)) = body(c, xs[k*nx .. k*nx+nx), params)
 * then carry_out = c (carry_in itself when steps == 0).  carry_in and
 * carry_out hold nc values; xs may be NULL when nx == 0, ys when ny == 0.
 *
 * The values filled in are those of the loop's outputs, usable as any
 * value of t.  Block names of the body do not matter, their sizes do.
 * Recording at a point (tg_input_at): when every operand has a value, the
 * outputs get theirs -- the body evaluated application by application /
 * step by step with the interpreter's semantics, so tg_value equals
 * tg_eval bit for bit and tg_branch may follow a loop.
 *
 * Branch guards in bodies: a body recorded at a point with tg_branch keeps
 * its guards, and every evaluation of t (the numeric and batch calls,
 * derivative tapes, kernels, generated C and Rust, as for guards of t
 * itself: see tg_branch) checks them at every application and step,
 * returning TG_ERR_BRANCH and writing nothing where one decides the other
 * way; the message names the loop's body and instruction and the first
 * failing application or step.  Recording a loop at a point where a body
 * guard fails puts t in the error state TG_ERR_BRANCH (record the body on
 * the side that application takes).
 *
 * Errors (sticky on t, as for every recording call; the outputs are then
 * {t, TG_NIL}): TG_ERR_ARG for a NULL body, body == t, a NULL array that
 * must hold values, a value of another tape; the body's own status when it
 * is in the error state; TG_ERR_SHAPE for a body with the wrong block
 * structure (the message says which); TG_ERR_LIMIT when the outputs exceed
 * the tape's limit, count or steps exceed 2^32 - 1, or bodies nest too
 * deep; TG_ERR_NOMEM.  A NULL t
 * records nothing.  Not thread-safe on t (as every recording call); body
 * is only read.
 *
 * Every numeric path evaluates loops, and the numeric derivatives go
 * through them: tg_gradient, tg_vjp, tg_jvp, tg_jacobian, tg_hvp,
 * tg_hessian, their _ws, _wrt and _multi variants and tg_gradient_batch.
 * A map's tangent is a map of the body's tangent, its adjoint a map of
 * the body's adjoint with the params' adjoints summed over applications;
 * a scan's adjoint runs the body's adjoint backwards over the steps from
 * carries stored or recomputed from checkpoints (tg_tape_set_checkpoints
 * sets the memory budget); second order is tangent over adjoint through
 * both.  The memory of these sweeps is one body's arrays per nesting level
 * plus a scan's checkpoints, never count * |body| beyond 8 MiB (what a
 * store-all gradient keeps, see tg_tape_set_checkpoints).  Results agree with the
 * flat recording of the same function up to rounding (sums over
 * applications are added in another grouping).  Derivative tapes and
 * tg_tape_optimize keep loops as loops (see there); files, generated C and
 * Rust and native kernels carry them.  The sparse calls (tg_jacobian_sparsity,
 * tg_hessian_sparsity, tg_sparse_jacobian/_hessian and their _ws and
 * _tape variants) handle loops too, with the patterns of the flat
 * recording (see there). */
void tg_map(tg_tape *t, const tg_tape *body, size_t count,
            const tg_var *xs, const tg_var *params, tg_var *ys);
void tg_scan(tg_tape *t, const tg_tape *body, size_t steps,
             const tg_var *carry_in, const tg_var *xs, const tg_var *params,
             tg_var *carry_out, tg_var *ys);

/* Optimisation effort, gradgen's presets.  Every rewrite is exact for all
 * inputs, +-0, +-Inf and NaN included (NaN payloads aside):
 *  TG_OPT_NONE    dead-code elimination and compaction only;
 *  TG_OPT_BASIC   + re-CSE and refolding (replay through the recorder);
 *  TG_OPT_MEDIUM  + sign normalisation: x+(-y) -> x-y, (-x)+y -> y-x,
 *                 x-(-y) -> x+y, (-x)*(-y) -> x*y, (-x)/(-y) -> x/y;
 *  TG_OPT_HIGH    + x/c -> x*(1/c) for c = +-2^k (exact reciprocal);
 *  TG_OPT_MAX     HIGH repeated until the tape stops shrinking.
 * Inputs, outputs and their blocks are unchanged; instructions are
 * renumbered (inputs first) and, from TG_OPT_BASIC on, ordered by depth in
 * the DAG within windows of 256 instructions, so that consecutive
 * instructions are mostly independent and the sweeps overlap them (the
 * adjoint sweep of a recorded Rosenbrock runs ~30% faster).  tg_var values
 * of t recorded before are invalid afterwards.  Linear time and memory, no recursion; optimising
 * twice gives the same tape as optimising once.  On error (out of memory)
 * t is unchanged.
 * Loops (tg_map, tg_scan) stay loops; at every level: a loop whose outputs
 * are all dead goes; a map's y slots dead in every application, and its
 * applications whose outputs are all dead, leave the body and the loop; a
 * scan's y slots dead at every step, and its carries whose final value is
 * dead and that no live output needs later, leave the body; the x and
 * param slots only those read leave the operand list; a loop whose
 * outputs a later loop also computes (same body, trip count and operands,
 * more ys: the carry-saving scan of a gradient tape) is merged into it.
 * From TG_OPT_BASIC on: each body is optimised at the same level; an x
 * slot with the same operand in every application becomes a param, a
 * constant param becomes a constant of the body, and body work that
 * depends on params and constants only is computed once outside the loop
 * (from two applications on) -- the value is the same, bit for bit; the
 * recursion into bodies is bounded by their nesting depth (at most 32).
 * User-defined function calls (tg_call_fn) give TG_ERR_UNSUPPORTED. */
typedef enum tg_opt_level {
    TG_OPT_NONE = 0,
    TG_OPT_BASIC,
    TG_OPT_MEDIUM,
    TG_OPT_HIGH,
    TG_OPT_MAX
} tg_opt_level;
tg_status tg_tape_optimize(tg_tape *t, tg_opt_level level);

/* ------------------------------------------------- user-defined functions */

/* A function the user implements in C, recorded as ONE instruction (a CALL
 * with n operands and k outputs) and called back by every numeric path:
 * an interpolation table, a solver, a special function with a known
 * derivative.  The peers are ADOL-C's external functions and CppAD's atomic
 * functions; as in tenferro (AdContext owning its extension rule sets) the
 * functions live in an explicit object, tg_funcs, passed where it is
 * needed -- there is no process-global registry, so two libraries in one
 * process cannot collide.
 *
 * Lifetime and threads.  Define every function first (tg_func_define), then
 * use the object: the first tg_call_func or tg_tape_load_funcs with it
 * SEALS it (checks the jvp_func/vjp_func references below; afterwards
 * tg_func_define returns TG_ERR_ARG), and a sealed object is never written
 * again, so any number of threads may evaluate tapes that use it at once.
 * The callbacks are then called concurrently from those threads (and from
 * OpenMP batch calls) with the same ctx: they must be thread-safe for that
 * (reentrant, or ctx read-only).  The object must outlive every tape
 * recorded or loaded with it, and every tape derived from those
 * (derivative tapes, copies, optimised tapes); tg_funcs_free does not know
 * about tapes.  A tape refers to at most ONE tg_funcs object (recording a
 * call with another one is TG_ERR_ARG). */
typedef struct tg_funcs tg_funcs;

/* The callbacks.  x: the n inputs; every array is the caller's, read or
 * written only during the call.  They cannot fail: a point outside the
 * function's domain should give NaN (which then propagates as for every
 * op).  They may be called many times per evaluation (once per point and
 * per derivative direction) and in any order.
 *   eval: y[k] = f(x).
 *   jvp:  dy[k] = J(x) dx            (J = df/dx, k x n; dx: n).
 *   vjp:  xbar[n] = J(x)^T ybar      (ybar: k); OVERWRITE xbar (the library
 *         accumulates).
 *   hvp:  hv[n] = d/dx (ybar . J(x) v) = sum_q ybar_q H_q(x) v
 *         (ybar: k, v: n, H_q the Hessian of output q): the second order. */
typedef void (*tg_func_eval_fn)(void *ctx, const double *x, double *y);
typedef void (*tg_func_jvp_fn)(void *ctx, const double *x, const double *dx, double *dy);
typedef void (*tg_func_vjp_fn)(void *ctx, const double *x, const double *ybar, double *xbar);
typedef void (*tg_func_hvp_fn)(void *ctx, const double *x, const double *ybar, const double *v,
                               double *hv);

/* The definition of one function; zero-initialise it and fill the fields
 * you use (fields may be appended in later releases).
 *   name        the function's name: 1..63 bytes, [A-Za-z_][A-Za-z0-9_]*,
 *               unique within the object.  Tape files record it (with n
 *               and k) and generated code calls it by this name.
 *   n, k        inputs and outputs (0 allowed; at most 2^24 each).
 *   eval        required.
 *   jvp, vjp    first derivatives; may be NULL, but then every numeric
 *               call that needs them (forward: tg_jvp, tg_jacobian's
 *               tangent sweeps, sparse calls; reverse: tg_gradient,
 *               tg_vjp, ...) returns TG_ERR_UNSUPPORTED naming the
 *               function.  Give both unless the function is only ever
 *               evaluated (e.g. the derivative functions named below).
 *   hvp         second order (tg_hvp, tg_hessian, tg_sparse_hessian).
 *               Optional; when NULL:
 *   hvp_numeric 1: second order differentiates vjp numerically, by
 *               central differences along v,
 *                 hv = (vjp(x + h v, ybar) - vjp(x - h v, ybar)) / (2 h),
 *                 h = eps^(1/3) * max(1, max_j |x_j|) / max_j |v_j|
 *               (eps = DBL_EPSILON: h balances truncation O(h^2) against
 *               rounding O(eps/h), a relative error near eps^(2/3), about
 *               4e-11 for a well-scaled function [Nocedal & Wright,
 *               Numerical Optimization, 2nd ed., sec. 8.1]).  Such second
 *               derivatives are approximations: they are NOT exact like
 *               the rest of tapegen, which is why you must ask for them.
 *               0 (default): second-order calls return TG_ERR_UNSUPPORTED.
 *   jvp_func    optional: the name of ANOTHER function of the same object
 *               computing the JVP as a function of the same kind, with
 *               n + n inputs (x, dx) and k outputs (dy).
 *   vjp_func    optional: the same for the VJP, with n + k inputs
 *               (x, ybar) and n outputs (xbar).
 *               Derivative TAPES of a tape using this function record
 *               CALLs to these (forward: jvp_func, reverse: vjp_func;
 *               second order: the derivatives of those, so give them
 *               jvp_func/vjp_func too); without them tg_*_tape return a
 *               tape in the error state TG_ERR_UNSUPPORTED.  Checked when
 *               the object is sealed (unknown name or wrong shape:
 *               TG_ERR_ARG from the call that seals it).
 *   ctx         passed to every callback. */
typedef struct tg_func_def {
    const char *name;
    size_t n, k;
    tg_func_eval_fn eval;
    tg_func_jvp_fn jvp;
    tg_func_vjp_fn vjp;
    tg_func_hvp_fn hvp;
    int hvp_numeric;
    const char *jvp_func;
    const char *vjp_func;
    void *ctx;
} tg_func_def;

/* A new, empty object (NULL only when out of memory); free with
 * tg_funcs_free (NULL allowed) once no tape uses it. */
tg_funcs *tg_funcs_new(void);
void      tg_funcs_free(tg_funcs *fs);
/* Adds a copy of *def to fs (the strings are copied; ctx and the callbacks
 * are kept as pointers).  Errors (message in tg_last_error(), fs
 * unchanged): TG_ERR_ARG for a NULL argument, a missing eval, a bad or
 * duplicate name, n or k > 2^24, or fs already sealed; TG_ERR_NOMEM.  Not
 * thread-safe with respect to other uses of fs. */
tg_status tg_func_define(tg_funcs *fs, const tg_func_def *def);
/* Seals fs now (see above): checks every jvp_func/vjp_func reference.
 * Optional (the first use seals), but call it before handing fs to several
 * threads that might use it first at the same time.  Errors: TG_ERR_ARG
 * (NULL fs, a reference to an undefined function or one of the wrong
 * shape; fs then stays open). */
tg_status tg_funcs_seal(tg_funcs *fs);
/* Number of functions in fs (0 for NULL); their names in definition order
 * (NULL when i is out of range; owned by fs). */
size_t      tg_funcs_count(const tg_funcs *fs);
const char *tg_funcs_name(const tg_funcs *fs, size_t i);

/* Records y = name(x) on t: one CALL instruction with n operands and k
 * outputs (XOUT instructions; tg_tape_insn shows them).  x: the function's
 * n values of t (or the tapeless zero; NULL allowed when n == 0); y: k
 * slots receiving the outputs (NULL allowed when k == 0).  Seals fs.
 * Errors are sticky on t (y then {t, TG_NIL}; untouched when fs does not
 * define the name, whose k is unknown): TG_ERR_ARG for a NULL fs or
 * name, a name fs does not define, a value of another tape, fs failing to
 * seal, or t already using another tg_funcs object; TG_ERR_LIMIT.  CALLs
 * are never folded or merged by CSE (the user's function may have state
 * the library cannot see), and are not allowed inside tg_map/tg_scan
 * bodies (TG_ERR_UNSUPPORTED).
 *
 * How each path uses the callbacks (per point and per direction):
 *   tg_eval, batch calls          eval;
 *   tangent sweeps (tg_jvp, sparse Jacobians by columns) jvp, skipped
 *     for an all-zero dx (dy = 0); tg_jacobian and tg_sparse_jacobian
 *     ask for jvp and vjp (they pick the direction);
 *   adjoint sweeps (tg_gradient, tg_vjp, reverse-mode Jacobian, batch
 *     gradients)                  vjp, skipped for an all-zero ybar;
 *   second order (tg_hvp, tg_hessian, sparse Hessians)  vjp, and hvp or
 *     its numeric replacement (hvp_numeric), skipped for zero directions;
 *   sparsity patterns             the call is a dense block: every output
 *     depends on every input (Jacobian), and every pair of its inputs
 *     may interact (Hessian), since the library cannot see inside it;
 *   derivative tapes              CALLs of jvp_func / vjp_func (above);
 *   lazy derivative tapes and tg_tape_compile   not used for such tapes
 *     (the sweeps serve; tg_tape_compile and tg_compile return
 *     TG_ERR_UNSUPPORTED), nor tg_tape_optimize (TG_ERR_UNSUPPORTED, for
 *     now);
 *   tg_call (inlining a tape)     the CALLs are copied (same object);
 *   tape files                    the function's name and shape are
 *     saved; load with tg_tape_load_funcs and the object defining them;
 *   Rust and C output             a call of a user-supplied function by
 *     name (see tg_rust_source and tg_c_source).
 * Absolute zero (CONVENTIONS rule 1) holds for the call as a whole: a zero
 * direction or cotangent contributes exactly zero, whatever the callbacks
 * would return; inside the callbacks it is the user's business. */
void tg_call_func(tg_tape *t, const tg_funcs *fs, const char *name, const tg_var *x, tg_var *y);

/* ----------------------------------------------------------------- files */

/* Saves t to path in the versioned, checksummed tape format
 * (docs/file-format.md; little-endian on every platform): version 3, with
 * the loop bodies, for a tape with loops, version 2 otherwise.  Saving is
 * deterministic: the same tape gives the same bytes.  The file is written
 * atomically: to a temporary file in path's directory, flushed to the disk
 * (fsync), then renamed over path (and the directory synced); on any
 * failure the old file at path is intact and no temporary file is left.
 * A replaced file keeps its permissions, a new one gets 0666 & ~umask; a
 * symbolic link at path stays a link to the new file.  Errors: TG_ERR_ARG,
 * t's own status if it is in error, TG_ERR_IO (tg_last_error gives the
 * reason: "is a directory", "file size limit exceeded", "no space left on
 * the device", ...), TG_ERR_NOMEM. */
tg_status tg_tape_save(const tg_tape *t, const char *path);
/* Loads a tape saved by tg_tape_save (the caller frees it); files of every
 * earlier format version load too (format 1: release 0.1.0).  Everything
 * is validated before it is trusted: the 24-byte header first (magic,
 * version, and the size it declares against the file's real size), so a
 * foreign file, a device or an endless stream costs a header's worth of
 * reading; then exactly the declared bytes.  A pipe or device is read only
 * up to the size its header declares.  Any truncation or corrupted byte
 * gives a tape in the error state (TG_ERR_FORMAT, or TG_ERR_IO when the
 * file cannot be read, e.g. "is a directory"; TG_ERR_NOMEM) whose
 * tg_tape_error names the file, the byte offset and the problem.  NULL only
 * when out of memory.  A loaded tape is identical to the saved one (same
 * disassembly, bitwise-equal results). */
tg_tape *tg_tape_load(const char *path);
/* As tg_tape_load, for tapes that call user functions (tg_call_func): each
 * function the file names must be defined in fs with the same n and k; the
 * loaded tape then calls fs's callbacks (fs is sealed, and must outlive the
 * tape).  fs may be NULL: then this is tg_tape_load.  Loading a file that
 * calls user functions without an object, or with one that lacks a
 * function or defines it with another shape, gives a tape in the error
 * state TG_ERR_FORMAT, e.g. "tape uses user function 'foo' (2 -> 1): load
 * it with the tg_funcs object that defines it".  Errors otherwise as
 * tg_tape_load. */
tg_tape *tg_tape_load_funcs(const char *path, const tg_funcs *fs);

/* ------------------------------------------------------------------ Rust */

/* Options of the Rust translator; zero-initialised = all defaults.  (User
 * functions in generated code: see tg_rust_source and tg_c_source.) */
typedef struct tg_rust_options {
    const char *crate_name;      /* NULL: derived from the tape name */
    const char *function_name;   /* NULL: derived from the tape name */
    int f32;                     /* 0: f64 (default), 1: f32 */
    int no_std;                  /* 0: std (default), 1: #![no_std], math through the libm crate */
} tg_rust_options;

/* Translates t to the source of a Rust module (a crate's src/lib.rs) with
 * one kernel
 *   pub fn NAME(in_1: &[T], ..., in_k: &[T], out_1: &mut [T], ...,
 *               out_l: &mut [T], work: &mut [T]) -> Result<(), Error>
 * one slice per block in declaration order, named after the blocks
 * (sanitised to snake_case identifiers), T = f64 or f32.  The kernel checks
 * every slice length once at entry (Error::InputTooShort, OutputTooShort,
 * WorkTooShort; nothing is written then), then runs without panicking,
 * allocating or `unsafe`.  Constants WORK_LEN_NAME, INPUTS_NAME and
 * OUTPUTS_NAME describe it.  The code is the lowering tg_c_source
 * describes: values in depth-first order from the outputs as `let` locals,
 * #[inline(never)] parts of at most 1000 statements (rustc's time stays
 * linear), `work` slots (reused by liveness) only for values read in a
 * later part, absolute-zero products spelt as plain ones where provably
 * equal; constants print so that they read back to the same bits.
 * Loops stay loops, as in tg_c_source: each body one function `NAME_lJ`
 * taking its blocks as fixed-size arrays, each loop a `for` calling it
 * with windows of the work array, split once per loop into disjoint
 * regions (carry, next carry, ys, body work); WORK_LEN_NAME counts them,
 * so crate size and build time do not grow with trip counts.
 * Output is deterministic.  Semantics are the interpreter's (docs/
 * conventions.md): + - * / sqrt and comparisons agree bit for bit; libm
 * functions may differ by an ulp or two (glibc vs Rust std / the libm crate).
 *
 * User functions (tg_call_func): the crate declares
 *   pub trait UserFunctions { fn NAME(&self, x: &[T], y: &mut [T]); ... }
 * with one method per function its kernels call (x: n values, y: k values
 * to write; a user function name must be a valid Rust identifier, else
 * TG_ERR_NAME), and such a kernel takes your implementation first:
 *   pub fn KERNEL<U: UserFunctions + ?Sized>(user: &U, in_1: &[T], ...)
 * (kernels without calls are unchanged).  The generated tests/kernels.rs
 * cannot know your functions: it has no test for such kernels.
 *
 * *src: malloc'd, NUL-terminated (caller frees with free()); *work_len
 * (may be NULL): the kernel's work length.  Errors: TG_ERR_ARG (NULL),
 * TG_ERR_NAME (a block name that sanitises to a keyword or to the same
 * identifier as another block, or to `work`; an explicit crate/function
 * name that is not [A-Za-z_][A-Za-z0-9_]* or is a keyword), the tape's
 * status if it is in error, TG_ERR_LIMIT and TG_ERR_UNSUPPORTED as
 * tg_c_source, TG_ERR_NOMEM.  Message: tg_last_error(). */
tg_status tg_rust_source(const tg_tape *t, const tg_rust_options *o, char **src, size_t *work_len);
/* Writes a Cargo crate into dir (created with missing parents; generated
 * files overwritten): Cargo.toml (libm as dependency only when the code
 * needs it: no_std, or erf/erfc), README.md, src/lib.rs, and tests/
 * kernels.rs, which checks the kernel against values the C interpreter
 * computed at generation time (so `cargo test` proves the translation).
 * The four files are generated in memory, then each is written to a
 * temporary file and all are renamed into place only once every one is
 * written (as tg_tape_save): a failure leaves the previous crate's files
 * intact, never a half-written lib.rs.  Errors as tg_rust_source, plus
 * TG_ERR_IO. */
tg_status tg_rust_crate(const tg_tape *t, const tg_rust_options *o, const char *dir);

/* Several kernels in one crate, with one shared Error type (gradgen's
 * CodeGenerationBuilder).  Kernel names are "<crate>_<function>", the
 * function name defaulting to the sanitised tape name; the crate name is
 * o->crate_name or the first tape's sanitised name.  Errors are sticky on
 * the builder (tg_rust_builder_error gives the message); write reports
 * them.  The builder does not own the tapes added: keep them alive until
 * tg_rust_builder_write has returned. */
typedef struct tg_rust_builder tg_rust_builder;
tg_rust_builder *tg_rust_builder_new(const tg_rust_options *o);   /* NULL: out of memory */
tg_status   tg_rust_builder_add(tg_rust_builder *b, const tg_tape *t, const char *function_name);
/* The derivative bundle of f: kernels "<f>_f", and per input block B
 * "<f>_grad_B", "<f>_hess_B", "<f>_hvp_B" (scalar f) or "<f>_jac_B"
 * (vector f), from derivative tapes optimised at TG_OPT_BASIC (owned by the
 * builder). */
tg_status   tg_rust_bundle(tg_rust_builder *b, const tg_tape *f);
/* Writes the crate as tg_rust_crate.  TG_ERR_ARG for a builder without
 * kernels (nothing is written).  A failure to write (TG_ERR_IO) is not
 * sticky: the builder can write again. */
tg_status   tg_rust_builder_write(tg_rust_builder *b, const char *dir);
const char *tg_rust_builder_error(const tg_rust_builder *b);
void        tg_rust_builder_free(tg_rust_builder *b);

/* --------------------------------------------------------------------- C */

/* Points per block of the batch variant NAME_batch (see tg_c_source). */
#define TG_C_BATCH_BLOCK 8

/* Options of the C translator; zero-initialised = all defaults. */
typedef struct tg_c_options {
    const char *function_name;  /* NULL: the tape name made a C identifier */
    int f32;                    /* 0: double (default); 1: float arithmetic and arrays */
    int batch;                  /* 0: NAME only (default); 1: also NAME_batch */
    unsigned part_size;         /* statements per non-inlined part function; 0: 1000 */
    unsigned unit_size;         /* statements per translation unit (tg_c_files):
                                   whole parts, at least one; 0: one file */
} tg_c_options;

/* Translates t to one C11 source file defining
 *   int NAME(const T *x, T *y, T *work);        T = double, or float with o->f32
 * which computes y = f(x) exactly as tg_eval does (x: n = tg_num_inputs(t)
 * values, y: m = tg_num_outputs(t) values, flat in block order; work:
 * *work_len scratch values; x, y and work must not overlap) and returns 0.
 * With o->batch, also
 *   int NAME_batch(size_t npts, const T *X, T *Y, T *work);
 * the same over npts points (X: npts*n, one point per row; Y: npts*m, as
 * tg_eval_batch), computed over blocks of TG_C_BATCH_BLOCK points with the
 * points as the innermost (vectorisable) loop of every statement; its work
 * needs TG_C_BATCH_BLOCK * (*work_len + n + m) values.  Both functions are
 * pure, allocate nothing, and are thread-safe given separate work arrays.
 *
 * The code is the tape lowered in depth-first order from the outputs (each
 * value computed just before its first use), values as block-scoped locals
 * unless they cross one of the non-inlined part functions of at most
 * o->part_size statements (those live in work slots reused by liveness), so
 * compile time grows linearly with the tape.  The op semantics are the
 * interpreter's source text: each op's C expression from the opcode table
 * and the mathx_* helpers of the library, copied verbatim, the same libm
 * calls, constants as exact literals.  Compiled without floating-point
 * contraction (-ffp-contract=off; the file header says so) and without
 * -ffast-math, against the same libm, the f64 code agrees with tg_eval bit
 * for bit (NaN payloads aside).  The f32 variant computes in float (libm's
 * float functions, sinf...) and is close, not equal.  The helpers are
 * guarded so that several generated files may be concatenated into one
 * translation unit.  Output is deterministic.
 *
 * Loops (tg_map, tg_scan) stay loops: each body the tape's loops use is one
 * static function NAME_lJ (its blocks as pointer arguments), and each loop
 * a `for` over its applications/steps calling it, so the size of the code
 * does not grow with trip counts.  The ys, the carry (two buffers swapped
 * after each step) and the body's own work live in work; consecutive xs
 * already in an input block or in an earlier loop's ys at a constant
 * stride are read in place, other xs and params are first copied to work.
 * Each application/step computes what the interpreter computes for it, in
 * the same order: bit for bit still.  NAME_batch of a tape with loops
 * evaluates the points one after the other.
 *
 * User functions (tg_call_func): the code calls a C function of yours by
 * the function's name, declared in the source (and in NAME.h) as
 *   void FNAME(const T *x, T *y);    x: n values, y: k values to write
 * (T the kernel's type); link your definitions with the generated code.
 * The batch variant calls it once per point.  Bit-for-bit agreement with
 * tg_eval then also needs your C function to compute what your eval
 * callback does.
 *
 * *src: malloc'd, NUL-terminated (caller frees with free()); *work_len (may
 * be NULL): the work length of NAME.  Errors: TG_ERR_ARG (NULL), TG_ERR_NAME
 * (a function name, or a user function's name, that is not
 * [A-Za-z_][A-Za-z0-9_]* or is a C keyword or a <math.h> name),
 * the tape's status if it is in error, TG_ERR_LIMIT (work beyond 2^32 - 2
 * values), TG_ERR_NOMEM.  Message: tg_last_error().
 * Thread-safe (t is only read). */
tg_status tg_c_source(const tg_tape *t, const tg_c_options *o, char **src, size_t *work_len);
/* Writes NAME.c (tg_c_source) and NAME.h (the prototypes, with macros
 * NAME_N_IN, NAME_N_OUT, NAME_WORK_LEN and, with o->batch,
 * NAME_BATCH_WORK_LEN; NAME in upper case) into dir, which must exist.  With
 * o->unit_size, the code is cut into translation units of at most
 * max(unit_size, part_size) statements (whole parts), so that the C
 * compiler's memory is bounded by the unit, not the tape: NAME.c (the entry
 * points and the first parts) and NAME_1.c, NAME_2.c ... (further parts,
 * as functions NAME_pK / NAME_bK with external linkage, hidden visibility
 * under GCC and clang); compile each and link them together.  tg_c_source
 * always gives one file.  Unit files of an earlier, larger translation
 * are not removed.  The files are written as tg_rust_crate writes its
 * files: each to a temporary file (fsync), all renamed into place only once
 * all are written, so a failure leaves the previous files intact.
 * Errors as tg_c_source, plus TG_ERR_IO. */
tg_status tg_c_files(const tg_tape *t, const tg_c_options *o, const char *dir);

/* ---------------------------------------------------- native code at run time */

/* Machine code compiled from one tape: the C translation (tg_c_source)
 * compiled by the system's C compiler and loaded into the process.
 * Immutable once made: evaluate it from any number of threads at once. */
typedef struct tg_kernel tg_kernel;

/* Options of tg_compile and tg_tape_compile; zero-initialised = defaults. */
typedef struct tg_compile_options {
    const char *cc;          /* C compiler command; NULL: $CC, else "cc" */
    const char *cache_dir;   /* where compiled kernels are kept and reused; NULL: the default cache */
    int opt_level;           /* 0: the default; 1..3 the compiler's -O level */
} tg_compile_options;

/* Flags of tg_compile_options_ex. */
#define TG_COMPILE_PORTABLE 1u  /* no -march=native: code for any CPU of the architecture */
#define TG_COMPILE_NO_CACHE 2u  /* neither look in nor write to the cache */
#define TG_COMPILE_BATCH    4u  /* also compile the batch variant (tg_kernel_eval_batch) */
/* The options plus flags (tg_compile_options is fixed by the contract). */
typedef struct tg_compile_options_ex {
    tg_compile_options base;
    unsigned flags;          /* TG_COMPILE_* */
} tg_compile_options_ex;

/* Compiles t to native code: the C source of tg_c_source, compiled by the
 * system's C compiler run as a subprocess without a shell: o->cc, else
 * $CC, else "cc", split on blanks (so "ccache gcc" works), with
 *   -O1 -fPIC -shared -ffp-contract=off -fno-fast-math -fno-math-errno
 *   -march=native -fno-builtin-sin -fno-builtin-exp ... -lm
 * (-O<opt_level> for opt_level 1..3).  -fno-builtin-F for every libm
 * function of the op table that IEEE 754 does not require correctly
 * rounded: otherwise the compiler evaluates calls on constants at compile
 * time (with MPFR) and may differ from the run-time libm in the last bit.
 * -march=native tunes the code for the CPU it is compiled on, so a kernel
 * runs where it was compiled; the cache key includes the CPU's model and
 * features, so a cache directory shared by different machines is safe;
 * TG_COMPILE_PORTABLE leaves the flag out.  Temporary files live in a
 * private mkdtemp directory under $TMPDIR (else /tmp), removed before the
 * call returns; the kernel is loaded with dlopen (RTLD_LOCAL).
 *
 * A tape of more than 16000 statements is translated into units of 16000
 * (tg_c_options.unit_size; at most 500 units, larger tapes get larger
 * units), each compiled on its own with -c, one after the other, then
 * linked into the shared object: the compiler's peak memory is that of
 * one unit (gcc 12 -O1, W1 gradient: 92 MiB), not of the tape (one file:
 * 317 MiB at 96k instructions, 2.1 GB at 960k), and its time stays
 * linear (0.07 s of CPU per 1000 instructions either way).
 *
 * tg_compile also compiles the batch variant of the kernel, at -O3 so that
 * its loops over the points of a block vectorise, as a second object
 * compiled at the same time (in parallel); tg_compile_ex only with
 * TG_COMPILE_BATCH.  The batch variant costs about 5x the kernel's
 * compile time (W1 n = 1000 gradient: 3.7 s against 0.7 s of CPU).
 *
 * The cache: o->cache_dir, else $XDG_CACHE_HOME/tapegen (absolute), else
 * $HOME/.cache/tapegen, created with mode 0700.  Each shared object is
 * stored under a SHA-256 of the C sources (every unit, in order), the compiler's identity (its
 * `--version` output, asked once per process), the flags and, with
 * -march=native, the CPU; written atomically (temporary file + rename) with
 * a trailer holding that key and a SHA-256 of the object.  A hit skips the
 * compiler (it still translates the tape to C, ~1 ms per 1500
 * instructions, and checks the checksum).  An entry that is corrupt,
 * truncated, foreign (another .so renamed) or stale is recompiled and
 * replaced, never loaded; entries must be regular files of the user, not
 * writable by others.  A cache directory that cannot be created or
 * written is no error: the kernel is compiled and loaded from the
 * temporary directory.
 *
 * Returns NULL on failure with the reason in tg_last_error(): TG_ERR_ARG
 * (NULL t, opt_level outside 0..3, an empty cc), the tape's status if it is
 * in error, TG_ERR_UNSUPPORTED when no compiler can be run (the message
 * names the command), when it fails (the message holds the start of its
 * output) or when the object cannot be loaded (e.g. a noexec $TMPDIR with
 * an unusable cache), TG_ERR_IO, TG_ERR_NOMEM.  The library prints
 * nothing: the compiler's output is captured.  The caller owns the kernel:
 * tg_kernel_free.  Thread-safe (t is only read; concurrent compiles of the
 * same tape may both run the compiler, the cache stays consistent). */
tg_kernel *tg_compile(const tg_tape *t, const tg_compile_options *o);
/* As tg_compile, with flags (the batch variant only with TG_COMPILE_BATCH).
 * o may be NULL (all defaults, no batch variant). */
tg_kernel *tg_compile_ex(const tg_tape *t, const tg_compile_options_ex *o);

/* y = f(x) by the kernel of tape f: exactly the bits tg_eval(f, x, y)
 * gives, NaN, Inf, -0.0 and subnormals included (NaN payloads aside).
 * x: n doubles, y: m doubles.  TG_ERR_ARG for NULL pointers; outputs are
 * untouched on error.  Scratch memory comes from the stack for small
 * kernels, else one allocation per call.  Thread-safe.  A tape with branch
 * guards (tg_branch) gives TG_ERR_BRANCH, y untouched, where one decides
 * the other way (the generated C checks them before writing y). */
tg_status tg_kernel_eval(const tg_kernel *k, const double *x, double *y);
/* As tg_eval_batch: X npts*n (one point per row), Y npts*m, the same bits
 * as tg_kernel_eval point by point.  Blocks of TG_C_BATCH_BLOCK points run
 * through the batch variant (the points the inner, vectorised loop); a
 * kernel compiled without it calls the kernel point by point.  Chunks of
 * points run in parallel with OpenMP when the work is large.  npts == 0
 * does nothing and returns TG_OK.  Thread-safe.  Branch guards: every
 * point is evaluated; the rows of points where a guard fails are left
 * untouched and the call returns TG_ERR_BRANCH (tg_eval_batch_status on a
 * tape compiled with tg_tape_compile says which points). */
tg_status tg_kernel_eval_batch(const tg_kernel *k, size_t npts, const double *X, double *Y);
/* Number of inputs / outputs of the kernel's tape (0 for NULL). */
size_t tg_kernel_num_inputs(const tg_kernel *k);
size_t tg_kernel_num_outputs(const tg_kernel *k);
/* Releases k (unloads its code).  NULL is allowed. */
void tg_kernel_free(tg_kernel *k);

/* Routes the numeric calls on t to native code for the parts requested
 * (TG_F | TG_GRAD | TG_JAC | TG_HVP): tg_eval, tg_eval_batch (TG_F),
 * tg_gradient, tg_gradient_batch (TG_GRAD), tg_jacobian (TG_JAC), tg_hvp
 * (TG_HVP), and their _ws variants, then run kernels compiled (as
 * tg_compile_ex; all parts at once, the compilers in parallel) from the
 * derivative tapes
 *   TG_F: t itself; TG_GRAD: tg_gradient_tape(t, TG_ALL);
 *   TG_JAC: tg_jacobian_tape(t, TG_ALL); TG_HVP: tg_hvp_tape(t, TG_ALL),
 * each built once and optimised (tg_tape_optimize, TG_OPT_MAX), so results
 * equal tg_eval of the corresponding derivative tape bit for bit (which may
 * differ from the interpreter's sweeps by rounding or the sign of a zero,
 * see the derivative tapes above).  Other calls (tg_jvp, tg_vjp,
 * tg_hessian) keep interpreting.  Batch calls run the kernel point by
 * point, in parallel; tg_tape_compile_ex with TG_COMPILE_BATCH also
 * compiles batch variants for TG_F and TG_GRAD.  Calling it again adds parts.  Recording
 * into t afterwards (its size or outputs change) drops the native routes
 * silently: the interpreter is used again until t is compiled again.
 * Errors (t unchanged and fully usable): TG_ERR_ARG (NULL t, parts empty or
 * with other bits), TG_ERR_SHAPE (TG_GRAD or TG_HVP with m != 1), the
 * tape's status, TG_ERR_UNSUPPORTED (no working compiler, see tg_compile),
 * TG_ERR_NOMEM.  Not thread-safe with respect to other calls on t (it
 * changes t); afterwards concurrent evaluation is safe as before.
 *
 * When it pays (gcc 12, -O1; measured by bench/src/native.c): a cold
 * compile costs about 0.06-0.1 s of CPU per 1000 instructions of the
 * compiled tape, linear in its size (the W1 n = 1000 gradient tape, 12k
 * instructions: 0.8 s; 10^6 instructions: 86 s and 2 GB of compiler
 * memory), more for tapes with long dependency chains (W2 gradient 6.5 s,
 * W3 flat 26 s).  A compiled gradient then runs 2-14x faster than
 * tg_gradient (W1 n = 1000: 2 us against 27 us; W3: 125 us against 231
 * us).  So a cold compile pays after (compile time) / (time saved per
 * call) calls: ~30 000 gradients for W1 n = 1000, ~250 000 for W3.  A
 * cache hit (later runs on the same machine) costs ~6-10 ms of CPU and
 * pays after a few hundred calls. */
tg_status tg_tape_compile(tg_tape *t, unsigned parts, const tg_compile_options *o);
/* As tg_tape_compile, with flags. */
tg_status tg_tape_compile_ex(tg_tape *t, unsigned parts, const tg_compile_options_ex *o);

/* ---------------------------------------------------- workspaces (hot loops) */

/* A caller-owned scratch area for the numeric functions: after the first
 * call at a given size it never allocates again.  One workspace serves one
 * thread at a time; it can be used with any tape (it grows on demand).
 * tg_workspace_new returns NULL when out of memory (TG_ERR_NOMEM) or when
 * the size t needs cannot be addressed (TG_ERR_LIMIT, checked before any
 * allocation); tg_last_error() says which.  t may be NULL (then it starts
 * empty), otherwise it is pre-sized for every call on t: no _ws call on t
 * allocates afterwards. */
typedef struct tg_workspace tg_workspace;
tg_workspace *tg_workspace_new(const tg_tape *t);
void          tg_workspace_free(tg_workspace *w);   /* NULL is allowed */
/* Bytes currently held by w. */
size_t        tg_workspace_bytes(const tg_workspace *w);

/* Same contracts as the functions without _ws. */
tg_status tg_eval_ws(const tg_tape *t, tg_workspace *w, const double *x, double *y);
tg_status tg_gradient_ws(const tg_tape *t, tg_workspace *w, const double *x, double *g);
tg_status tg_jacobian_ws(const tg_tape *t, tg_workspace *w, const double *x, double *J);
tg_status tg_jvp_ws(const tg_tape *t, tg_workspace *w, const double *x, const double *v, double *jv);
tg_status tg_vjp_ws(const tg_tape *t, tg_workspace *w, const double *x, const double *w_, double *wj);
tg_status tg_hessian_ws(const tg_tape *t, tg_workspace *w, const double *x, double *H);
tg_status tg_hvp_ws(const tg_tape *t, tg_workspace *w, const double *x, const double *v, double *hv);


/* ------------------------------- parameters and many directions per call */

/* Derivatives with respect to ONE input block (wrt: a block index, or
 * TG_ALL for every input); the other blocks are parameters, held fixed at
 * their values in x (CppAD's dynamic parameters, ADOL-C's mkparam).  x
 * always has all n inputs.  n_w is the size of the selected block; arrays
 * are as for the calls without _wrt with n_w in place of n:
 *   tg_gradient_wrt  g[n_w]                      (m == 1)
 *   tg_jacobian_wrt  J[m * n_w], row-major       (ceil(n_w/8) tangent or
 *                                                 ceil(m/8) adjoint sweeps)
 *   tg_jvp_wrt       v[n_w] -> jv[m]
 *   tg_vjp_wrt       w[m]   -> wj[n_w]
 *   tg_hessian_wrt   H[n_w * n_w], row-major     (m == 1)
 *   tg_hvp_wrt       v[n_w] -> hv[n_w]           (m == 1)
 * Errors: as the calls without _wrt, plus TG_ERR_ARG for a wrt that is
 * neither TG_ALL nor a block index.  Values equal those calls' entries for
 * the block's columns (up to the sign of zeros). */
tg_status tg_gradient_wrt(const tg_tape *t, int wrt, const double *x, double *g);
tg_status tg_jacobian_wrt(const tg_tape *t, int wrt, const double *x, double *J);
tg_status tg_jvp_wrt(const tg_tape *t, int wrt, const double *x, const double *v, double *jv);
tg_status tg_vjp_wrt(const tg_tape *t, int wrt, const double *x, const double *w, double *wj);
tg_status tg_hessian_wrt(const tg_tape *t, int wrt, const double *x, double *H);
tg_status tg_hvp_wrt(const tg_tape *t, int wrt, const double *x, const double *v, double *hv);

/* k directions in one call, swept TG_LANES (8) at a time over one value
 * sweep (one first-order sweep for HVPs), with respect to block wrt (or
 * TG_ALL).  Direction matrices are row-major, one direction per row:
 *   tg_jvp_multi  V[k * n_w]  -> JV[k * m]     JV row d = J V_d
 *   tg_vjp_multi  W[k * m]    -> WJ[k * n_w]   WJ row d = W_d^T J
 *   tg_hvp_multi  V[k * n_w]  -> HV[k * n_w]   HV row d = H V_d (m == 1)
 * k == 0 does nothing and returns TG_OK.  Errors as the _wrt calls. */
tg_status tg_jvp_multi(const tg_tape *t, int wrt, size_t k, const double *x, const double *V,
                       double *JV);
tg_status tg_vjp_multi(const tg_tape *t, int wrt, size_t k, const double *x, const double *W,
                       double *WJ);
tg_status tg_hvp_multi(const tg_tape *t, int wrt, size_t k, const double *x, const double *V,
                       double *HV);

/* The same with a caller-owned workspace (no allocation once it was made
 * by tg_workspace_new(t)). */
tg_status tg_gradient_wrt_ws(const tg_tape *t, tg_workspace *w, int wrt, const double *x,
                             double *g);
tg_status tg_jacobian_wrt_ws(const tg_tape *t, tg_workspace *w, int wrt, const double *x,
                             double *J);
tg_status tg_jvp_wrt_ws(const tg_tape *t, tg_workspace *w, int wrt, const double *x,
                        const double *v, double *jv);
tg_status tg_vjp_wrt_ws(const tg_tape *t, tg_workspace *w, int wrt, const double *x,
                        const double *w_, double *wj);
tg_status tg_hessian_wrt_ws(const tg_tape *t, tg_workspace *w, int wrt, const double *x,
                            double *H);
tg_status tg_hvp_wrt_ws(const tg_tape *t, tg_workspace *w, int wrt, const double *x,
                        const double *v, double *hv);
tg_status tg_jvp_multi_ws(const tg_tape *t, tg_workspace *w, int wrt, size_t k, const double *x,
                          const double *V, double *JV);
tg_status tg_vjp_multi_ws(const tg_tape *t, tg_workspace *w, int wrt, size_t k, const double *x,
                          const double *W, double *WJ);
tg_status tg_hvp_multi_ws(const tg_tape *t, tg_workspace *w, int wrt, size_t k, const double *x,
                          const double *V, double *HV);

/* --------------------------------------------------- sparse derivatives */

/* A structural sparsity pattern with its colouring: which entries of a
 * Jacobian or Hessian can be nonzero, and how to compute them all with few
 * sweeps.  Immutable after construction; share it across threads.
 *
 * tg_jacobian_sparsity(t, wrt): the m x n_w Jacobian of t's outputs with
 * respect to input block wrt (TG_ALL: every input; columns count within
 * the selected scalars, in block order).  tg_hessian_sparsity(t, wrt): the
 * LOWER TRIANGLE (row >= col, diagonal included) of the n_w x n_w Hessian
 * of the weighted sum w . y, the union over all weights (any m; e.g. an
 * NLP Lagrangian sigma f + lambda . c).  Entries are sorted by row, then
 * column; tg_sparsity_rows/cols give nnz uint32_t each (owned by s).
 *
 * The pattern is structural: computed from t alone, valid at every point
 * (an entry that is zero only at some points is kept; both branches of a
 * select count).  Comparisons and a select's condition carry no
 * derivative; floor, ceil, round, trunc and signum have a zero first
 * derivative that is kept in Jacobian patterns (it is NaN at NaN) and no
 * second derivative; min, max, abs and select are linear for Hessians.
 * Jacobian pattern: forward index-set propagation [Griewank & Walther,
 * Evaluating Derivatives, 2nd ed., sec. 7.1].  Hessian pattern: nonlinear
 * interaction domains [A. Walther, Computing sparse Hessians with automatic
 * differentiation, ACM TOMS 34(1), 2008], restricted to instructions that
 * reach an output.  Index sets are sorted lists or bitsets, whichever is
 * smaller; a set lives until its last reader; no recursion over
 * instructions.  Time and memory are linear in the tape size times the set
 * sizes (row densities).
 *
 * Loops (tg_map, tg_scan, nested at any depth) are not unrolled: each
 * body's own patterns are computed once per call -- its outputs'
 * dependencies on its inputs, and for Hessians its inputs' interactions
 * for each set of live outputs met -- and each application applies them to
 * the index sets of its operands (a scan steps its carries' sets through
 * the steps).  The pattern is exactly that of the same function recorded
 * flat, in time proportional to the trip counts times the bodies'
 * summaries, never count^2.  (Only record-time folding can make the two
 * recordings differ: a select whose condition, or an azmul whose factor,
 * is a body input bound to a constant folds in the flat recording but not
 * in the body, so the looped pattern then keeps the other operand.)
 *
 * Colouring [Gebremedhin, Manne & Pothen, What color is your Jacobian?,
 * SIAM Review 47(4), 2005], greedy over natural, largest-first and
 * smallest-last orderings, keeping the fewest colours:
 *  - Jacobian: partial distance-2 colouring of the columns (Curtis-Powell-
 *    Reid: one tangent direction per colour) or of the rows (one adjoint
 *    direction per colour), whichever needs fewer colours;
 *  - Hessian: star colouring with direct recovery (every entry read off
 *    one compressed Hessian-vector product, no substitution, so no error
 *    beyond the dense Hessian's).  Acyclic colouring with substitution
 *    saves colours on some patterns but propagates rounding through its
 *    triangular solves; star colouring is optimal on the banded and
 *    arrowhead patterns (3 colours for tridiagonal).
 * tg_sparsity_colors: the number of directions one evaluation sweeps.
 *
 * Errors: both constructors return NULL only when out of memory; otherwise
 * an object whose tg_sparsity_status is TG_OK or says why construction
 * failed (TG_ERR_ARG: NULL tape or bad wrt; the tape's own status if it is
 * in the error state), with a message from tg_sparsity_error ("" when OK).
 * On an error-state object nnz and colors are 0 and rows/cols NULL. */
typedef struct tg_sparsity tg_sparsity;
tg_sparsity    *tg_jacobian_sparsity(const tg_tape *t, int wrt);
tg_sparsity    *tg_hessian_sparsity(const tg_tape *t, int wrt);
tg_status       tg_sparsity_status(const tg_sparsity *s);
const char     *tg_sparsity_error(const tg_sparsity *s);
size_t          tg_sparsity_nnz(const tg_sparsity *s);
const uint32_t *tg_sparsity_rows(const tg_sparsity *s);
const uint32_t *tg_sparsity_cols(const tg_sparsity *s);
size_t          tg_sparsity_colors(const tg_sparsity *s);
void            tg_sparsity_free(tg_sparsity *s);    /* NULL allowed */

/* The nonzeros of the Jacobian (s from tg_jacobian_sparsity) or of the
 * lower triangle of the Hessian of w . y (s from tg_hessian_sparsity) at x,
 * into vals[nnz] in the pattern's order.  x: all n inputs (blocks outside
 * s's wrt are parameters, held fixed); w: m weights, NULL for all ones.
 * One value sweep, then one 8-lane sweep per 8 colours (tangent, adjoint
 * or tangent-over-adjoint), with direct recovery into vals; nothing of
 * size m x n or n x n is formed.  Values agree with tg_jacobian /
 * tg_hessian up to rounding (the compressed sums add structurally zero
 * terms only).  Errors: TG_ERR_ARG for a NULL pointer, an s in the error
 * state (its status), an s built for the other kind or for a tape with
 * other dimensions; the tape's own status; TG_ERR_NOMEM.  Thread-safe on a
 * const tape and sparsity.  The _ws variants take a caller-owned workspace
 * and never allocate once it was made by tg_workspace_new(t).  On a tape
 * with loops the sweeps are those of tg_jacobian / tg_hessian through
 * loops (maps as maps of the body's sweeps, scans stepped with their
 * checkpoints), with the same colourings. */
tg_status tg_sparse_jacobian(const tg_tape *t, const tg_sparsity *s, const double *x, double *vals);
tg_status tg_sparse_hessian(const tg_tape *t, const tg_sparsity *s, const double *x,
                            const double *w, double *vals);
tg_status tg_sparse_jacobian_ws(const tg_tape *t, tg_workspace *ws, const tg_sparsity *s,
                                const double *x, double *vals);
tg_status tg_sparse_hessian_ws(const tg_tape *t, tg_workspace *ws, const tg_sparsity *s,
                               const double *x, const double *w, double *vals);

/* Sparse derivative tapes.  tg_sparse_jacobian_tape(f, wrt): f's input
 * blocks -> one output block "jac" of nnz values in the order of
 * tg_jacobian_sparsity(f, wrt); named "<f>_sjac".
 * tg_sparse_hessian_tape(f, wrt): f's input blocks plus a block "w" of m
 * weights (renamed "w_2", ... if f has one) -> one output block "hess" of
 * the nnz values of the lower triangle of the Hessian of w . y, in the order
 * of tg_hessian_sparsity(f, wrt); named "<f>_shess".  Recorded by
 * compressed symbolic sweeps (one tangent sweep per colour, over f, or over
 * f and its recorded weighted gradient), so their size grows with nnz and
 * the number of colours, never with n^2.  Loops of f stay loops: each
 * colour's sweep records a map of the body's JVP (or a scan of it) as the
 * derivative tapes above do, so the size is O(colours * (|body| + operand
 * lists)), independent of count * |body|.  Errors as for the derivative
 * tapes above (a tape in the error state; NULL only when out of memory). */
tg_tape *tg_sparse_jacobian_tape(const tg_tape *f, int wrt);
tg_tape *tg_sparse_hessian_tape(const tg_tape *f, int wrt);
#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#ifdef __cplusplus
}
#endif
#endif /* TAPEGEN_H */
