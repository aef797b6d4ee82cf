/* src/ad/derive.c -- derivative tapes.  Each starts as a new tape with f's
 * input blocks (plus a tangent or cotangent block), onto which f is
 * replayed; the symbolic sweeps then record the derivative code after it,
 * in place.  Second order is tangent over adjoint: the gradient is
 * recorded first and a tangent sweep runs over f and the gradient code, so
 * the HVP tape stays O(|f|) and the Hessian costs n_w tangent sweeps. */
#include <stdio.h>
#include <stdlib.h>

#include "tape/alloc.h"
#include "ad/symbolic.h"
#include "ad/derive.h"

static void
derive_free(derive *D)
{
    mem_free(D->map);
    mem_free(D->fout);
    mem_free(D->d);
    mem_free(D->d2);
    mem_free(D->active);
}

/* A derived tape that is in the error state from the start. */
static tg_tape *
failed_tape(const char *name, tg_status s, const char *msg)
{
    tg_tape *t = tg_tape_new(name);
    if (t)
        tape_fail(t, s, "%s", msg);
    return t;
}

/* Name of the extra block: base, or base_2, base_3, ... if f uses it. */
static void
extra_name(const tg_tape *f, const char *base, char *buf, size_t len)
{
    snprintf(buf, len, "%s", base);
    for (int k = 2; tg_input_block_index(f, buf) >= 0; k++)
        snprintf(buf, len, "%s_%d", base, k);
}

static void *
zalloc(tg_tape *t, size_t count, size_t size)
{
    void *p = mem_calloc(count ? count : 1, size);
    if (!p)
        tape_fail(t, TG_ERR_NOMEM, "out of memory building derivative tape \"%s\"", t->name);
    return p;
}

/* The largest output count of a tape: output scalars are numbered by
 * uint32_t and the count itself must stay below UINT32_MAX (blocks.c). */
#define DERIVE_MAX_OUT ((uint64_t)UINT32_MAX - 1)
#define DERIVE_PARTS   (TG_F | TG_GRAD | TG_JAC | TG_HESS | TG_HVP)

/* Output scalars of a derivative tape made of `parts` (TG_F: m values,
 * TG_GRAD and TG_HVP: n_w, TG_JAC: m*n_w, TG_HESS: n_w*n_w). */
static uint64_t
derive_out_count(unsigned parts, uint64_t m, uint64_t nw)
{
    return ((parts & TG_F) ? m : 0) + ((parts & TG_GRAD) ? nw : 0) + ((parts & TG_JAC) ? m * nw : 0)
         + ((parts & TG_HESS) ? nw * nw : 0) + ((parts & TG_HVP) ? nw : 0);
}

/* Refuses, before any work, a derivative tape whose outputs exceed the
 * tape's limit or whose scratch (a ref and a tg_var per output, a map and
 * a derivative ref per instruction of f) cannot be addressed: such a
 * constructor would otherwise run for minutes and exhaust memory before
 * failing at the last step (issue 9, defect 3). */
static int
derive_check_size(tg_tape *t, const tg_tape *f, unsigned parts, uint32_t nw)
{
    uint64_t count = derive_out_count(parts, f->nout, nw);
    if (count > DERIVE_MAX_OUT)
        return tape_fail(t, TG_ERR_LIMIT, "derivative tape \"%s\" would have %llu outputs; "
                         "a tape holds at most %llu", t->name, (unsigned long long)count,
                         (unsigned long long)DERIVE_MAX_OUT);
    uint64_t per = 3 * sizeof(uint32_t) + sizeof(tg_var);
    if (count > SIZE_MAX / per || f->n > SIZE_MAX / per - count)
        return tape_fail(t, TG_ERR_LIMIT, "derivative tape \"%s\" needs more memory than this "
                         "machine can address", t->name);
    return 0;
}

/* New tape "<f>_<suffix>" with f's input blocks, an extra block of
 * extra_size scalars named after extra_base (NULL: none; it is declared
 * even when empty), and f replayed onto it.  `parts` says
 * which outputs the tape will have (derive_out_count); their number is
 * checked first.  Returns -1 if the tape is in the error state (D->t may
 * still be NULL when out of memory). */
static int
derive_begin(derive *D, const tg_tape *f, const char *suffix, unsigned parts, int wrt,
             uint32_t extra_size, const char *extra_base)
{
    memset(D, 0, sizeof *D);
    D->f = f;
    D->extra = TG_NIL;
    if (!f)
        return (D->t = failed_tape(suffix, TG_ERR_ARG, "derivative of a NULL tape")), -1;
    char name[2 * TAPE_NAME_MAX];
    snprintf(name, sizeof name, "%s_%s", f->name, suffix);
    if (strlen(name) > TAPE_NAME_MAX)
        return (D->t = failed_tape(suffix, TG_ERR_LIMIT, "derived tape name too long")), -1;
    tg_tape *t = D->t = tg_tape_new(name);
    if (!t)
        return -1;
    if (f->status != TG_OK)
        return tape_fail(t, f->status, "source tape \"%s\" is in the error state: %s", f->name,
                         f->err);
    if (tape_has_x(f))      /* issue 11: derivative tapes of loops */
        return tape_fail(t, TG_ERR_UNSUPPORTED, "derivative tapes (%s) do not support loops yet "
                         "(tape \"%s\")", suffix, f->name);
    if (wrt == TG_ALL) {
        D->lo = 0;
        D->nw = f->nin;
    } else if (wrt >= 0 && (uint32_t)wrt < f->ninb) {
        D->lo = f->inb[wrt].offset;
        D->nw = f->inb[wrt].size;
    } else {
        return tape_fail(t, TG_ERR_ARG, "wrt %d is not an input block of \"%s\" (it has %u)",
                         wrt, f->name, f->ninb);
    }
    /* n_w == 0 (an empty block) or m == 0 is allowed: the derivative
     * blocks are then empty too (CONTRACT.md, zero-size blocks) */
    if (parts == 0 || (parts & ~DERIVE_PARTS))
        return tape_fail(t, TG_ERR_ARG, "tg_joint_tape: parts must be a nonempty set of TG_F, "
                         "TG_GRAD, TG_JAC, TG_HESS, TG_HVP");
    if (derive_check_size(t, f, parts, D->nw))
        return -1;
    for (uint32_t b = 0; b < f->ninb; b++)
        tape_input_block(t, f->inb[b].name, f->inb[b].size);
    if (extra_base && t->status == TG_OK) {
        char bn[TAPE_NAME_MAX + 16];
        extra_name(f, extra_base, bn, sizeof bn);
        D->extra = t->nin;
        tape_input_block(t, bn, extra_size);
    }
    D->map = zalloc(t, f->n, sizeof *D->map);
    D->fout = zalloc(t, f->nout, sizeof *D->fout);
    if (t->status != TG_OK || tape_replay(t, f, t->in_ref, D->map))
        return -1;
    for (uint32_t j = 0; j < f->nout; j++)
        D->fout[j] = D->map[f->out_ref[j]];
    return 0;
}

/* Fresh derivative arrays over t's first n instructions. */
static int
derive_arrays(derive *D, uint32_t n)
{
    mem_free(D->d);
    D->d = zalloc(D->t, n, sizeof *D->d);
    if (!D->d)
        return -1;
    memset(D->d, 0xff, (size_t)n * sizeof *D->d);
    return 0;
}

/* Records the gradient of the scalar output into g[nw] (t refs). */
static int
record_gradient(derive *D, uint32_t *g)
{
    tg_tape *t = D->t;
    if (D->f->nout != 1)
        return tape_fail(t, TG_ERR_SHAPE, "tape \"%s\" has %u outputs; a gradient, Hessian or "
                         "HVP needs exactly 1", D->f->name, D->f->nout);
    uint32_t n = t->n;
    D->active = zalloc(t, n, 1);
    if (!D->active || derive_arrays(D, n))
        return -1;
    ad_activity(t, n, D->lo, D->lo + D->nw, D->active);
    D->d[D->fout[0]] = tape_const(t, 1.0);
    if (ad_sym_adjoint(t, n, D->d, D->active))
        return -1;
    for (uint32_t k = 0; k < D->nw; k++)
        g[k] = D->d[t->in_ref[D->lo + k]];
    return 0;
}

/* Tangent sweep over t's first n instructions with the differentiated
 * inputs seeded by seed(k) (a ref or TG_NIL); the tangents of refs y[0..m)
 * go to out[0..m). */
static int
record_tangent(derive *D, uint32_t n, const uint32_t *seed, const uint32_t *y, uint32_t m,
               uint32_t *out)
{
    if (derive_arrays(D, n))
        return -1;
    for (uint32_t k = 0; k < D->nw; k++)
        D->d[D->t->in_ref[D->lo + k]] = seed[k];
    if (ad_sym_tangent(D->t, n, D->d))
        return -1;
    for (uint32_t j = 0; j < m; j++)
        out[j] = y[j] == TG_NIL ? TG_NIL : D->d[y[j]];
    return 0;
}

/* Unit seed e_j (const 1 at j, NIL elsewhere) into seed[nw]. */
static void
unit_seed(derive *D, uint32_t *seed, uint32_t j)
{
    for (uint32_t k = 0; k < D->nw; k++)
        seed[k] = TG_NIL;
    seed[j] = tape_const(D->t, 1.0);
}

/* Jacobian of refs y[0..m) w.r.t. the differentiated inputs over t's first
 * n instructions, row-major into J[m*nw]; forward or reverse, whichever
 * needs fewer sweeps. */
static int
record_jacobian(derive *D, uint32_t n, const uint32_t *y, uint32_t m, uint32_t *J)
{
    tg_tape *t = D->t;
    uint32_t nw = D->nw;
    uint32_t *seed = zalloc(t, nw, sizeof *seed), *col = zalloc(t, m, sizeof *col);
    int rc = (!seed || !col) ? -1 : 0;
    if (rc == 0 && nw <= m) {
        for (uint32_t j = 0; j < nw && rc == 0; j++) {
            unit_seed(D, seed, j);
            rc = record_tangent(D, n, seed, y, m, col);
            for (uint32_t i = 0; i < m && rc == 0; i++)
                J[(size_t)i * nw + j] = col[i];
        }
    } else if (rc == 0) {
        uint8_t *active = zalloc(t, n, 1);
        rc = active ? 0 : -1;
        if (rc == 0)
            ad_activity(t, n, D->lo, D->lo + nw, active);
        for (uint32_t i = 0; i < m && rc == 0; i++) {
            rc = derive_arrays(D, n);
            if (rc == 0 && y[i] != TG_NIL) {
                D->d[y[i]] = tape_const(t, 1.0);
                rc = ad_sym_adjoint(t, n, D->d, active);
            }
            for (uint32_t k = 0; k < nw && rc == 0; k++)
                J[(size_t)i * nw + k] = D->d[t->in_ref[D->lo + k]];
        }
        mem_free(active);
    }
    mem_free(seed);
    mem_free(col);
    return rc;
}

/* The INPUT refs of the extra block (NULL when the tape has no inputs at
 * all: every block empty). */
static const uint32_t *
extra_refs(const derive *D)
{
    return D->t->in_ref ? D->t->in_ref + D->extra : NULL;
}

/* Declares output block `name` of refs r[0..count) (TG_NIL: 0). */
static void
output_refs(tg_tape *t, const char *name, const uint32_t *r, size_t count)
{
    uint32_t zero = TG_NIL;
    for (size_t j = 0; j < count && zero == TG_NIL; j++)
        if (r[j] == TG_NIL)
            zero = tape_const(t, 0.0);
    uint32_t *slots = tape_output_block(t, name, count);
    for (size_t j = 0; slots && j < count; j++)
        slots[j] = r[j] != TG_NIL ? r[j] : zero;
}

/* Finishes: frees scratch, returns the tape (in error or not). */
static tg_tape *
derive_end(derive *D, uint32_t *buf)
{
    mem_free(buf);
    derive_free(D);
    tape_check_pass(D->t, "a derivative tape");   /* TG_VERIFY builds only */
    return D->t;
}

tg_tape *
tg_gradient_tape(const tg_tape *f, int wrt)
{
    derive D;
    uint32_t *g = NULL;
    if (derive_begin(&D, f, "grad", TG_GRAD, wrt, 0, NULL) == 0 && (g = zalloc(D.t, D.nw, sizeof *g))
        && record_gradient(&D, g) == 0)
        output_refs(D.t, "grad", g, D.nw);
    return derive_end(&D, g);
}

tg_tape *
tg_jacobian_tape(const tg_tape *f, int wrt)
{
    derive D;
    uint32_t *J = NULL;
    if (derive_begin(&D, f, "jac", TG_JAC, wrt, 0, NULL) == 0
        && (J = zalloc(D.t, (size_t)f->nout * D.nw, sizeof *J))
        && record_jacobian(&D, D.t->n, D.fout, f->nout, J) == 0)
        output_refs(D.t, "jac", J, (size_t)f->nout * D.nw);
    return derive_end(&D, J);
}

/* Number of scalars wrt selects in f (0 if invalid: derive_begin reports). */
static uint32_t
wrt_size(const tg_tape *f, int wrt)
{
    if (!f)
        return 0;
    if (wrt == TG_ALL)
        return f->nin;
    return wrt >= 0 && (uint32_t)wrt < f->ninb ? f->inb[wrt].size : 0;
}

tg_tape *
tg_jvp_tape(const tg_tape *f, int wrt)
{
    derive D;
    uint32_t *out = NULL;
    if (derive_begin(&D, f, "jvp", TG_F, wrt, wrt_size(f, wrt), "v") == 0
        && (out = zalloc(D.t, f->nout, sizeof *out))
        && record_tangent(&D, D.t->n, extra_refs(&D), D.fout, f->nout, out) == 0)
        output_refs(D.t, "jvp", out, f->nout);
    return derive_end(&D, out);
}

/* Adjoint sweep over t's first n instructions seeded with w_j on f's
 * output j (several outputs may share an instruction: seeds add up). */
static int
record_vjp(derive *D, uint32_t n, const uint32_t *w, uint32_t *out)
{
    tg_tape *t = D->t;
    D->active = zalloc(t, n, 1);
    if (!D->active || derive_arrays(D, n))
        return -1;
    ad_activity(t, n, D->lo, D->lo + D->nw, D->active);
    for (uint32_t j = 0; j < D->f->nout; j++) {
        uint32_t *s = &D->d[D->fout[j]];
        *s = *s == TG_NIL ? w[j] : tape_rec(t, TG_OP_ADD, tape_ref(*s), tape_ref(w[j]), tape_lit(0));
    }
    if (ad_sym_adjoint(t, n, D->d, D->active))
        return -1;
    for (uint32_t k = 0; k < D->nw; k++)
        out[k] = D->d[t->in_ref[D->lo + k]];
    return 0;
}

tg_tape *
tg_vjp_tape(const tg_tape *f, int wrt)
{
    derive D;
    uint32_t *out = NULL;
    if (derive_begin(&D, f, "vjp", TG_GRAD, wrt, f ? f->nout : 0, "w") == 0
        && (out = zalloc(D.t, D.nw, sizeof *out))
        && record_vjp(&D, D.t->n, extra_refs(&D), out) == 0)
        output_refs(D.t, "vjp", out, D.nw);
    return derive_end(&D, out);
}

tg_tape *
tg_hessian_tape(const tg_tape *f, int wrt)
{
    derive D;
    uint32_t *buf = NULL;
    if (derive_begin(&D, f, "hess", TG_HESS, wrt, 0, NULL) == 0
        && (buf = zalloc(D.t, D.nw + (size_t)D.nw * D.nw, sizeof *buf))
        && record_gradient(&D, buf) == 0
        && record_jacobian(&D, D.t->n, buf, D.nw, buf + D.nw) == 0)
        output_refs(D.t, "hess", buf + D.nw, (size_t)D.nw * D.nw);
    return derive_end(&D, buf);
}

tg_tape *
tg_hvp_tape(const tg_tape *f, int wrt)
{
    derive D;
    uint32_t *buf = NULL;
    if (derive_begin(&D, f, "hvp", TG_HVP, wrt, wrt_size(f, wrt), "v") == 0
        && (buf = zalloc(D.t, 2 * (size_t)D.nw, sizeof *buf))
        && record_gradient(&D, buf) == 0
        && record_tangent(&D, D.t->n, extra_refs(&D), buf, D.nw, buf + D.nw) == 0)
        output_refs(D.t, "hvp", buf + D.nw, D.nw);
    return derive_end(&D, buf);
}

tg_tape *
tg_joint_tape(const tg_tape *f, unsigned parts, int wrt)
{
    derive D;
    uint32_t *buf = NULL;
    bool second = parts & (TG_HESS | TG_HVP);
    uint32_t nw = wrt_size(f, wrt), m = f ? f->nout : 0;
    if (derive_begin(&D, f, "joint", parts, wrt, (parts & TG_HVP) ? nw : 0,
                     (parts & TG_HVP) ? "v" : NULL))
        return derive_end(&D, buf);
    tg_tape *t = D.t;
    /* g[nw] | J[m*nw] | H[nw*nw] | hv[nw], each only if asked for */
    size_t ng = (parts & TG_GRAD || second) ? nw : 0, nj = (parts & TG_JAC) ? (size_t)m * nw : 0;
    size_t nh = (parts & TG_HESS) ? (size_t)nw * nw : 0, nv = (parts & TG_HVP) ? nw : 0;
    buf = zalloc(t, ng + nj + nh + nv, sizeof *buf);
    uint32_t *g = buf, *J = g + ng, *H = J + nj, *hv = H + nh;
    if (!buf || ((parts & TG_GRAD || second) && record_gradient(&D, g)))
        return derive_end(&D, buf);
    uint32_t n1 = t->n;     /* f and its gradient: what second order differentiates */
    if ((parts & TG_JAC) && record_jacobian(&D, n1, D.fout, m, J))
        return derive_end(&D, buf);
    if ((parts & TG_HESS) && record_jacobian(&D, n1, g, nw, H))
        return derive_end(&D, buf);
    if ((parts & TG_HVP) && record_tangent(&D, n1, extra_refs(&D), g, nw, hv))
        return derive_end(&D, buf);
    if (parts & TG_F)
        output_refs(t, "f", D.fout, m);
    if (parts & TG_GRAD)
        output_refs(t, "grad", g, nw);
    if (parts & TG_JAC)
        output_refs(t, "jac", J, (size_t)m * nw);
    if (parts & TG_HESS)
        output_refs(t, "hess", H, (size_t)nw * nw);
    if (parts & TG_HVP)
        output_refs(t, "hvp", hv, nw);
    return derive_end(&D, buf);
}

/* ------------------------------------------ entry points for src/ad/sparse */

int
ad_derive_begin(derive *D, const tg_tape *f, const char *suffix, int wrt, uint32_t extra_size,
                const char *extra_base)
{
    /* the outputs (nnz of a pattern) are counted by the pattern itself
     * (sparsity.c refuses more than 2^32 - 1); TG_F checks f's own size */
    return derive_begin(D, f, suffix, TG_F, wrt, extra_size, extra_base);
}

tg_tape *
ad_derive_end(derive *D, uint32_t *buf)
{
    return derive_end(D, buf);
}

void *
ad_derive_zalloc(tg_tape *t, size_t count, size_t size)
{
    return zalloc(t, count, size);
}

int
ad_derive_tangent(derive *D, uint32_t n, const uint32_t *seed, const uint32_t *y, uint32_t m,
                  uint32_t *out)
{
    return record_tangent(D, n, seed, y, m, out);
}

int
ad_derive_vjp(derive *D, uint32_t n, const uint32_t *w, uint32_t *out)
{
    return record_vjp(D, n, w, out);
}

void
ad_derive_output(tg_tape *t, const char *name, const uint32_t *r, size_t count)
{
    output_refs(t, name, r, count);
}
