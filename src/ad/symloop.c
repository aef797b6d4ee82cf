/* src/ad/symloop.c -- symbolic tangent and adjoint sweeps at a loop (see
 * symloop.h for what each records).
 *
 * Slots.  A body's inputs are numbered c_0.. (nc carries, scan only),
 * x_0.. (nx per-step inputs), p_0.. (np params); its outputs c'_0..
 * (scan only) then y_0.. (ny per-step outputs).  A slot is active when its
 * derivative can be nonzero for some application: a derived body carries
 * derivative inputs and outputs for its active slots only, and a slot whose
 * derivative is an exact zero everywhere gets none.
 *
 * The operand lists and records of t are re-read through the copied record
 * (t->xr and t->xops move when a loop is appended). */
#include <stdio.h>

#include "tape/alloc.h"
#include "ad/symbolic.h"
#include "ad/symloop.h"

/* One loop instruction of t, its record copied. */
typedef struct loopv {
    tg_tape *t;
    uint32_t i;
    tape_xrec r;
    const tg_tape *B;       /* the body (owned by t; the pointer is stable) */
    bool scan;
    uint32_t nc, nx, np, ny, nin, nbout;   /* nin = nc+nx+np, nbout = nc+ny */
    uint64_t count;
} loopv;

static int
loop_view(const tg_tape *t, uint32_t i, loopv *L)
{
    memset(L, 0, sizeof *L);
    L->t = (tg_tape *)(uintptr_t)t;
    L->i = i;
    L->r = *tape_xrec_of(t, i);
    if (L->r.kind != TG_OP_MAP && L->r.kind != TG_OP_SCAN)
        return -1;
    L->B = tape_body_of(t, &L->r);
    L->scan = L->r.kind == TG_OP_SCAN;
    L->nc = L->scan ? L->r.nc : 0;
    L->nx = L->r.nx;
    L->np = L->r.np;
    L->ny = L->r.ny;
    L->nin = L->nc + L->nx + L->np;
    L->nbout = L->nc + L->ny;
    L->count = L->r.count;
    return 0;
}

/* operand refs: carry in j, x j of application a, param j */
static uint32_t
op_c(const loopv *L, uint32_t j)
{
    return L->t->xops[L->r.op0 + j];
}

static uint32_t
op_x(const loopv *L, uint64_t a, uint32_t j)
{
    return L->t->xops[L->r.op0 + L->nc + a * L->nx + j];
}

static uint32_t
op_p(const loopv *L, uint32_t j)
{
    return L->t->xops[L->r.op0 + L->nc + L->count * L->nx + j];
}

/* output instructions: carry out j, y j of application a */
static uint32_t
out_c(const loopv *L, uint32_t j)
{
    return L->i + 1 + j;
}

static uint32_t
out_y(const loopv *L, uint64_t a, uint32_t j)
{
    return (uint32_t)(L->i + 1 + L->nc + a * L->ny + j);
}

static void *
zalloc(tg_tape *t, size_t count, size_t size)
{
    void *p = mem_calloc(count ? count : 1, size);
    if (!p)
        tape_fail(t, TG_ERR_NOMEM, "out of memory differentiating a loop of \"%s\"", t->name);
    return p;
}

static int
refuse(tg_tape *t, uint32_t i)
{
    return tape_fail(t, TG_ERR_UNSUPPORTED, "derivative tapes of \"%s\": the %s at instruction "
                     "%u is not supported", t->name, tg_op_name((tg_opcode)t->op[i]), i);
}

/* ------------------------------------------------------------ activity */

/* out_act[nbout] of body B given in_act[nin] (everything active when
 * memory runs out: a superset is always sound). */
static void
body_activity(const tg_tape *B, const uint8_t *in_act, uint8_t *out_act)
{
    uint8_t *act = mem_malloc((size_t)B->n + 1);
    if (!act) {
        memset(out_act, 1, B->nout);
        return;
    }
    ad_activity_in(B, B->n, in_act, act);
    for (uint32_t j = 0; j < B->nout; j++)
        out_act[j] = act[B->out_ref[j]];
    mem_free(act);
}

/* Carry slots of a scan: in_act[0..nc) grows to a fixed point through the
 * body (at most nc + 1 rounds); out_act[nbout] is the body's output
 * activity at that point. */
static void
slot_activity(const loopv *L, uint8_t *in_act, uint8_t *out_act)
{
    for (;;) {
        body_activity(L->B, in_act, out_act);
        bool grew = false;
        for (uint32_t j = 0; j < L->nc; j++)
            if (out_act[j] && !in_act[j])
                in_act[j] = 1, grew = true;
        if (!grew)
            return;
    }
}

void
ad_activity_x(const tg_tape *t, uint32_t i, uint8_t *active)
{
    loopv L;
    uint64_t nout = tape_xrec_of(t, i)->nout;
    const tape_xrec *r = tape_xrec_of(t, i);
    const uint32_t *ops = tape_xops(t, r);
    uint8_t any = 0;
    for (uint64_t k = 0; k < r->nops; k++)
        any |= active[ops[k]];
    active[i] = any;
    uint8_t *in_act = NULL, *out_act = NULL;
    if (any && loop_view(t, i, &L) == 0) {
        in_act = mem_calloc((size_t)L.nin + 1, 1);
        out_act = mem_calloc((size_t)L.nbout + 1, 1);
    }
    if (!in_act || !out_act) {      /* CALL, no memory or nothing active */
        memset(active + i + 1, any, nout);
        goto out;
    }
    uint8_t anyp = 0;
    for (uint32_t j = 0; j < L.nc; j++)
        in_act[j] = active[op_c(&L, j)];
    for (uint64_t a = 0; a < L.count; a++)
        for (uint32_t j = 0; j < L.nx; j++)
            in_act[L.nc + j] |= active[op_x(&L, a, j)];
    for (uint32_t j = 0; j < L.np; j++)
        anyp |= in_act[L.nc + L.nx + j] = active[op_p(&L, j)];
    slot_activity(&L, in_act, out_act);
    for (uint32_t j = 0; j < L.nc; j++)
        active[out_c(&L, j)] = in_act[j];
    for (uint64_t a = 0; a < L.count; a++) {
        /* a map application without an active operand is inactive */
        uint8_t on = L.scan || anyp;
        for (uint32_t j = 0; j < L.nx && !on; j++)
            on = active[op_x(&L, a, j)];
        for (uint32_t j = 0; j < L.ny; j++)
            active[out_y(&L, a, j)] = on && out_act[L.nc + j];
    }
out:
    mem_free(in_act);
    mem_free(out_act);
}

/* ----------------------------------------------------- derived bodies */

/* Positions of the set bytes of mask[n] into pos (n entries); their number. */
static uint32_t
positions(const uint8_t *mask, uint32_t n, uint32_t *pos)
{
    uint32_t k = 0;
    for (uint32_t j = 0; j < n; j++)
        if (mask[j])
            pos[k++] = j;
    return k;
}

/* A new body tape named after B; NULL with t failed. */
static tg_tape *
body_new(tg_tape *t, const tg_tape *B, const char *suffix)
{
    char name[TAPE_NAME_MAX + 1];
    snprintf(name, sizeof name, "%.200s_%s", B->name, suffix);
    tg_tape *u = tg_tape_new(name);
    if (!u)
        tape_fail(t, TG_ERR_NOMEM, "out of memory differentiating a loop of \"%s\"", t->name);
    return u;
}

/* Moves u's error to t; -1 if u is in error. */
static int
body_status(tg_tape *t, const tg_tape *u)
{
    if (u->status == TG_OK)
        return 0;
    return tape_fail(t, u->status, "%s", u->err);
}

/* Output block of refs r[n] on body u (TG_NIL: the constant 0). */
static void
body_output(tg_tape *u, const char *name, const uint32_t *r, uint32_t n)
{
    uint32_t zero = TG_NIL;
    for (uint32_t j = 0; j < n && zero == TG_NIL; j++)
        if (r[j] == TG_NIL)
            zero = tape_const(u, 0.0);
    uint32_t *slots = tape_output_block(u, name, n);
    for (uint32_t j = 0; slots && j < n; j++)
        slots[j] = r[j] != TG_NIL ? r[j] : zero;
}

/* Adds body u to t (u is freed) and appends the loop; the new instruction
 * or TG_NIL with t failed. */
static uint32_t
append_loop(tg_tape *t, uint8_t kind, tg_tape *u, uint64_t count, uint32_t nc, uint32_t nx,
            uint32_t np, uint32_t ny, const uint32_t *ops, uint64_t nops)
{
    uint32_t bi = UINT32_MAX;
    if (body_status(t, u) == 0)
        bi = tape_add_body(t, u);
    tg_tape_free(u);
    if (bi == UINT32_MAX || t->status != TG_OK)
        return TG_NIL;
    tape_xrec rec;
    memset(&rec, 0, sizeof rec);
    rec.kind = kind;
    rec.body = bi;
    rec.count = count;
    rec.nc = nc;
    rec.nx = nx;
    rec.np = np;
    rec.ny = ny;
    rec.nops = nops;
    rec.nout = (kind == TG_OP_SCAN ? nc : 0) + count * ny;
    return tape_append_x(t, kind, &rec, ops);
}

/* The operand ref for a derivative: d, or the constant 0 for TG_NIL. */
static uint32_t
or_zero(tg_tape *t, uint32_t d, uint32_t *zero)
{
    if (d != TG_NIL)
        return d;
    if (*zero == TG_NIL)
        *zero = tape_const(t, 0.0);
    return *zero;
}

/* *acc += term (TG_NIL: an exact zero), recorded on t. */
static void
acc_add(tg_tape *t, uint32_t *acc, uint32_t term)
{
    if (term == TG_NIL)
        return;
    *acc = *acc == TG_NIL ? term
         : tape_rec(t, TG_OP_ADD, tape_ref(*acc), tape_ref(term), tape_lit(0));
}

/* ------------------------------------------------------------ tangent */

/* Scratch of a tangent: slot masks and positions. */
typedef struct tscratch {
    uint8_t *act, *out_act, *app_on;
    uint32_t *pos;          /* active input slots (nin) */
    uint32_t *ypos;         /* output slots with a nonzero tangent (nbout) */
    uint32_t *in, *map, *tanB, *outs;
    uint32_t *ops;
} tscratch;

static void
tscratch_free(tscratch *s)
{
    mem_free(s->act);
    mem_free(s->out_act);
    mem_free(s->app_on);
    mem_free(s->pos);
    mem_free(s->ypos);
    mem_free(s->in);
    mem_free(s->map);
    mem_free(s->tanB);
    mem_free(s->outs);
    mem_free(s->ops);
}

/* The body's JVP: blocks (c, dc) (scan), (x, dx), (p, dp) for the active
 * slots pos[na] -> outputs (c', dc') (scan) and y's tangents for the
 * slots it returns in ypos (their number in *nya).  NULL with t failed. */
static tg_tape *
jvp_body(const loopv *L, tscratch *s, uint32_t na, uint32_t *nya)
{
    tg_tape *t = L->t;
    const tg_tape *B = L->B;
    tg_tape *u = body_new(t, B, "jvp");
    if (!u)
        return NULL;
    uint32_t base[3] = { L->nc, L->nx, L->np }, first[3] = { 0, L->nc, L->nc + L->nx };
    uint32_t nd[3] = { 0, 0, 0 };
    for (uint32_t q = 0; q < na; q++)
        nd[s->pos[q] < L->nc ? 0 : s->pos[q] < L->nc + L->nx ? 1 : 2]++;
    static const char *const names[3] = { "c", "x", "p" };
    for (int b = L->scan ? 0 : 1; b < 3; b++)
        tape_input_block(u, names[b], (size_t)base[b] + nd[b]);
    if (body_status(t, u))
        return tg_tape_free(u), NULL;
    /* B's input k -> u's input: block b's primal part, then its tangents */
    uint32_t off = 0, q = 0;
    for (int b = L->scan ? 0 : 1; b < 3; b++) {
        for (uint32_t j = 0; j < base[b]; j++)
            s->in[first[b] + j] = u->in_ref[off + j];
        off += base[b] + nd[b];
    }
    s->map = zalloc(t, B->n, sizeof *s->map);
    if (!s->map || tape_replay(u, B, s->in, s->map))
        return body_status(t, u), tg_tape_free(u), NULL;
    uint32_t n0 = u->n;
    s->tanB = zalloc(t, n0, sizeof *s->tanB);
    if (!s->tanB)
        return tg_tape_free(u), NULL;
    memset(s->tanB, 0xff, (size_t)n0 * sizeof *s->tanB);
    off = 0;
    for (int b = L->scan ? 0 : 1; b < 3; b++) {
        uint32_t k = 0;
        for (; q < na && s->pos[q] < first[b] + base[b]; q++, k++)
            s->tanB[s->in[s->pos[q]]] = u->in_ref[off + base[b] + k];
        off += base[b] + nd[b];
    }
    if (ad_sym_tangent(u, n0, s->tanB))
        return body_status(t, u), tg_tape_free(u), NULL;
    /* outputs: scan (c', dc' on the active carries), then the nonzero dy */
    uint32_t nca = nd[0], k = 0;
    if (L->scan) {
        for (uint32_t j = 0; j < L->nc; j++)
            s->outs[k++] = s->map[B->out_ref[j]];
        for (uint32_t qq = 0; qq < nca; qq++)
            s->outs[k++] = s->tanB[s->map[B->out_ref[s->pos[qq]]]];
        body_output(u, "c", s->outs, k);
    }
    uint32_t m = 0;
    for (uint32_t j = 0; j < L->ny; j++) {
        uint32_t d = s->tanB[s->map[B->out_ref[L->nc + j]]];
        if (d != TG_NIL) {
            s->ypos[m] = j;
            s->outs[k + m++] = d;
        }
    }
    body_output(u, "y", s->outs + k, m);
    *nya = m;
    return u;
}

int
ad_sym_tangent_x(tg_tape *t, uint32_t i, uint32_t *tan)
{
    loopv L;
    const tape_xrec *r = tape_xrec_of(t, i);
    uint64_t nout = r->nout;
    bool anyd = false;
    for (uint64_t k = 0; k < r->nops; k++)
        anyd |= tan[tape_xops(t, r)[k]] != TG_NIL;
    for (uint64_t k = 0; k <= nout; k++)
        tan[i + k] = TG_NIL;
    if (!anyd)
        return 0;
    if (loop_view(t, i, &L))
        return refuse(t, i);
    tscratch s;
    memset(&s, 0, sizeof s);
    int rc = -1;
    s.act = zalloc(t, L.nin, 1);
    s.out_act = zalloc(t, L.nbout, 1);
    s.app_on = zalloc(t, L.count, 1);
    s.pos = zalloc(t, L.nin, sizeof *s.pos);
    s.ypos = zalloc(t, L.ny, sizeof *s.ypos);
    s.in = zalloc(t, L.nin, sizeof *s.in);
    s.outs = zalloc(t, 2 * (size_t)L.nc + L.ny, sizeof *s.outs);
    if (t->status != TG_OK)
        goto out;
    /* active slots: a tangent that is not an exact zero somewhere */
    bool anyp = false;
    for (uint32_t j = 0; j < L.nc; j++)
        s.act[j] = tan[op_c(&L, j)] != TG_NIL;
    for (uint64_t a = 0; a < L.count; a++)
        for (uint32_t j = 0; j < L.nx; j++)
            if (tan[op_x(&L, a, j)] != TG_NIL)
                s.act[L.nc + j] = s.app_on[a] = 1;
    for (uint32_t j = 0; j < L.np; j++)
        if (tan[op_p(&L, j)] != TG_NIL)
            s.act[L.nc + L.nx + j] = 1, anyp = true;
    if (L.scan)
        slot_activity(&L, s.act, s.out_act);
    uint32_t na = positions(s.act, L.nin, s.pos), nca = 0, nxa = 0, nya = 0;
    if (na == 0) {
        rc = 0;
        goto out;
    }
    for (uint32_t q = 0; q < na; q++)
        nca += s.pos[q] < L.nc, nxa += s.pos[q] >= L.nc && s.pos[q] < L.nc + L.nx;
    uint32_t npa = na - nca - nxa;
    tg_tape *u = jvp_body(&L, &s, na, &nya);
    if (!u)
        goto out;
    if (nya == 0 && nca == 0) {          /* every output tangent is zero */
        tg_tape_free(u);
        rc = 0;
        goto out;
    }
    /* the applications to run: a map skips those with zero tangents */
    uint64_t napp = 0;
    for (uint64_t a = 0; a < L.count; a++)
        napp += s.app_on[a] = L.scan || anyp || s.app_on[a];
    uint64_t nops = 2 * (uint64_t)L.nc + napp * ((uint64_t)L.nx + nxa) + L.np + npa;
    s.ops = zalloc(t, nops, sizeof *s.ops);
    if (!s.ops) {
        tg_tape_free(u);
        goto out;
    }
    uint32_t zero = TG_NIL, *o = s.ops;
    for (uint32_t j = 0; j < L.nc; j++)
        *o++ = op_c(&L, j);
    for (uint32_t q = 0; q < nca; q++)
        *o++ = or_zero(t, tan[op_c(&L, s.pos[q])], &zero);
    for (uint64_t a = 0; a < L.count; a++) {
        if (!s.app_on[a])
            continue;
        for (uint32_t j = 0; j < L.nx; j++)
            *o++ = op_x(&L, a, j);
        for (uint32_t q = nca; q < nca + nxa; q++)
            *o++ = or_zero(t, tan[op_x(&L, a, s.pos[q] - L.nc)], &zero);
    }
    for (uint32_t j = 0; j < L.np; j++)
        *o++ = op_p(&L, j);
    for (uint32_t q = nca + nxa; q < na; q++)
        *o++ = or_zero(t, tan[op_p(&L, s.pos[q] - L.nc - L.nx)], &zero);
    uint32_t nc2 = L.scan ? L.nc + nca : 0;
    uint32_t i2 = append_loop(t, L.r.kind, u, napp, nc2, L.nx + nxa, L.np + npa, nya, s.ops,
                              (uint64_t)(o - s.ops));
    if (i2 == TG_NIL)
        goto out;
    for (uint32_t q = 0; q < nca; q++)
        tan[out_c(&L, s.pos[q])] = i2 + 1 + L.nc + q;
    uint64_t k = 0;
    for (uint64_t a = 0; a < L.count; a++) {
        if (!s.app_on[a])
            continue;
        for (uint32_t q = 0; q < nya; q++)
            tan[out_y(&L, a, s.ypos[q])] = (uint32_t)(i2 + 1 + nc2 + k * nya + q);
        k++;
    }
    rc = 0;
out:
    tscratch_free(&s);
    return t->status == TG_OK ? rc : -1;
}

/* ------------------------------------------------------------ adjoint */

typedef struct ascratch {
    uint8_t *act, *out_act, *ybm, *app_on, *actB, *pinit;
    uint32_t *pos, *ypos, *in, *map, *adjB, *outs, *ops, *init;
} ascratch;

static void
ascratch_free(ascratch *s)
{
    mem_free(s->act);
    mem_free(s->out_act);
    mem_free(s->ybm);
    mem_free(s->app_on);
    mem_free(s->actB);
    mem_free(s->pinit);
    mem_free(s->pos);
    mem_free(s->ypos);
    mem_free(s->in);
    mem_free(s->map);
    mem_free(s->adjB);
    mem_free(s->outs);
    mem_free(s->ops);
    mem_free(s->init);
}

/* The body's VJP.  Inputs: scan: "c" = (cbar[nca], pacc[npa]), "x" = (c[nc],
 * x[nx], ybar[nyb]), "p" = p[np]; map: "x" = (x[nx], ybar[nyb]), "p" = p[np].
 * Outputs: scan: "c" = (adjoint of c on the active carries, pacc + the
 * params' adjoints), "y" = the x adjoints; map: "y" = (x adjoints, params'
 * adjoints).  The active slots are pos[na] (carries, xs, params, in order),
 * the cotangent slots ypos[nyb].  The x (and, for a map, param) adjoints
 * that are exact zeros are left out: their slots are returned in
 * pos[nca + k] order as *nxo entries of xo (indices into pos).  NULL with t
 * failed. */
static tg_tape *
vjp_body(const loopv *L, ascratch *s, uint32_t na, uint32_t nca, uint32_t nxa, uint32_t nyb,
         uint32_t *xo, uint32_t *nxo)
{
    tg_tape *t = L->t;
    const tg_tape *B = L->B;
    uint32_t npa = na - nca - nxa;
    tg_tape *u = body_new(t, B, "vjp");
    if (!u)
        return NULL;
    if (L->scan) {
        tape_input_block(u, "c", (size_t)nca + npa);
        tape_input_block(u, "x", (size_t)L->nc + L->nx + nyb);
    } else {
        tape_input_block(u, "x", (size_t)L->nx + nyb);
    }
    tape_input_block(u, "p", L->np);
    if (body_status(t, u))
        return tg_tape_free(u), NULL;
    /* B's inputs: (c, x) are u's block "x" from its start, p is block "p" */
    uint32_t xb = L->scan ? nca + npa : 0, pb = xb + L->nc + L->nx + nyb;
    for (uint32_t j = 0; j < L->nc + L->nx; j++)
        s->in[j] = u->in_ref[xb + j];
    for (uint32_t j = 0; j < L->np; j++)
        s->in[L->nc + L->nx + j] = u->in_ref[pb + j];
    s->map = zalloc(t, B->n, sizeof *s->map);
    if (!s->map || tape_replay(u, B, s->in, s->map))
        return body_status(t, u), tg_tape_free(u), NULL;
    uint32_t n0 = u->n;
    s->adjB = zalloc(t, n0, sizeof *s->adjB);
    s->actB = zalloc(t, n0, 1);
    if (!s->adjB || !s->actB)
        return tg_tape_free(u), NULL;
    memset(s->adjB, 0xff, (size_t)n0 * sizeof *s->adjB);
    /* activity over u: the active slots' inputs */
    uint8_t *in_act = zalloc(t, u->nin, 1);
    if (!in_act)
        return tg_tape_free(u), NULL;
    for (uint32_t q = 0; q < na; q++) {
        uint32_t k = s->pos[q];
        in_act[k < L->nc + L->nx ? xb + k : pb + (k - L->nc - L->nx)] = 1;
    }
    ad_activity_in(u, n0, in_act, s->actB);
    mem_free(in_act);
    /* the params' accumulators (scan) start their adjoints, so that the
     * sum runs in the order of the unrolled sweep */
    if (L->scan)
        for (uint32_t q = 0; q < npa; q++)
            s->adjB[s->in[s->pos[nca + nxa + q]]] = u->in_ref[nca + q];
    for (uint32_t q = 0; q < nca; q++)
        acc_add(u, &s->adjB[s->map[B->out_ref[s->pos[q]]]], u->in_ref[q]);
    for (uint32_t q = 0; q < nyb; q++)
        acc_add(u, &s->adjB[s->map[B->out_ref[L->nc + s->ypos[q]]]],
                u->in_ref[xb + L->nc + L->nx + q]);
    if (ad_sym_adjoint(u, n0, s->adjB, s->actB))
        return body_status(t, u), tg_tape_free(u), NULL;
    uint32_t k = 0;
    if (L->scan) {
        for (uint32_t q = 0; q < nca + npa; q++) {
            uint32_t slot = s->pos[q < nca ? q : nxa + q];
            s->outs[k++] = s->adjB[s->in[slot]];
        }
        body_output(u, "c", s->outs, k);
    }
    /* x adjoints (map: and params'), exact zeros left out */
    uint32_t m = 0, from = nca, to = L->scan ? nca + nxa : na;
    for (uint32_t q = from; q < to; q++) {
        uint32_t d = s->adjB[s->in[s->pos[q]]];
        if (d != TG_NIL) {
            xo[m] = q;
            s->outs[k + m++] = d;
        }
    }
    body_output(u, "y", s->outs + k, m);
    *nxo = m;
    return u;
}

/* The first-occurrence rule for an accumulator initialised with adj[r]:
 * true (and r marked) if no earlier param slot of this loop took it. */
static bool
first_use(uint8_t *taken, const uint32_t *refs, uint32_t q, uint32_t r)
{
    for (uint32_t e = 0; e < q; e++)
        if (taken[e] && refs[e] == r)
            return false;
    return taken[q] = 1, true;
}

/* The carries entering each step, as outputs: where the scan already
 * returns carry j as its y slot q (its body outputs the carry's INPUT),
 * those ys; otherwise a saving scan is recorded -- the same body (a clone:
 * identical instructions) with the carries appended to its ys, so that the
 * optimiser can merge the original scan into it (tape_opt_merge_loops)
 * and the values are computed once.  sv[j] and *stride: carry j entering
 * step k is instruction sv[j] + k * stride.  0, or -1 with t failed. */
static int
saved_carries(const loopv *L, uint32_t *sv, uint64_t *stride)
{
    tg_tape *t = L->t;
    const tg_tape *B = L->B;
    bool all = true;
    for (uint32_t j = 0; j < L->nc; j++) {
        sv[j] = TG_NIL;
        for (uint32_t q = 0; q < L->ny && sv[j] == TG_NIL; q++)
            if (B->out_ref[L->nc + q] == B->in_ref[j])
                sv[j] = out_y(L, 0, q);
        all &= sv[j] != TG_NIL;
    }
    *stride = L->ny;
    if (all)
        return 0;
    tg_tape *u = tape_clone(B);
    if (!u || tape_grow((void **)&u->out_ref, &u->noutcap, (uint64_t)u->nout + L->nc,
                        sizeof *u->out_ref)) {
        tg_tape_free(u);
        return tape_fail(t, TG_ERR_NOMEM, "out of memory differentiating a scan of \"%s\"",
                         t->name);
    }
    for (uint32_t j = 0; j < L->nc; j++)
        u->out_ref[u->nout + j] = u->in_ref[j];
    u->nout += L->nc;
    u->outb[u->noutb - 1].size += L->nc;    /* the y block is the last */
    uint64_t nops = L->r.nops;
    uint32_t *ops = zalloc(t, nops, sizeof *ops);
    if (!ops)
        return tg_tape_free(u), -1;
    memcpy(ops, t->xops + L->r.op0, nops * sizeof *ops);
    uint32_t ny2 = L->ny + L->nc;
    uint32_t i2 = append_loop(t, TG_OP_SCAN, u, L->count, L->nc, L->nx, L->np, ny2, ops, nops);
    mem_free(ops);
    if (i2 == TG_NIL)
        return -1;
    for (uint32_t j = 0; j < L->nc; j++)
        sv[j] = i2 + 1 + L->nc + L->ny + j;
    *stride = ny2;
    return 0;
}

/* Adjoint of a map: a map of the body's VJP over the applications with a
 * nonzero cotangent, the params' contributions summed by a reverse scan. */
static int
adjoint_map(const loopv *L, ascratch *s, uint32_t *adj, const uint8_t *active, uint32_t na,
            uint32_t nyb)
{
    tg_tape *t = L->t;
    uint32_t nxa = 0;
    for (uint32_t q = 0; q < na; q++)
        nxa += s->pos[q] < L->nx;
    uint32_t *xo = zalloc(t, na, sizeof *xo), nxo = 0;
    tg_tape *u = xo ? vjp_body(L, s, na, 0, nxa, nyb, xo, &nxo) : NULL;
    if (!u || nxo == 0) {
        tg_tape_free(u);
        mem_free(xo);
        return t->status == TG_OK ? 0 : -1;
    }
    uint64_t napp = 0;
    for (uint64_t a = 0; a < L->count; a++)
        napp += s->app_on[a];
    s->ops = zalloc(t, napp * ((uint64_t)L->nx + nyb) + L->np, sizeof *s->ops);
    if (!s->ops)
        return tg_tape_free(u), mem_free(xo), -1;
    uint32_t zero = TG_NIL, *o = s->ops;
    for (uint64_t a = 0; a < L->count; a++) {
        if (!s->app_on[a])
            continue;
        for (uint32_t j = 0; j < L->nx; j++)
            *o++ = op_x(L, a, j);
        for (uint32_t q = 0; q < nyb; q++)
            *o++ = or_zero(t, adj[out_y(L, a, s->ypos[q])], &zero);
    }
    for (uint32_t j = 0; j < L->np; j++)
        *o++ = op_p(L, j);
    uint32_t i2 = append_loop(t, TG_OP_MAP, u, napp, 0, L->nx + nyb, L->np, nxo, s->ops,
                              (uint64_t)(o - s->ops));
    if (i2 == TG_NIL)
        return mem_free(xo), -1;
    /* the params' adjoints: xo entries with pos >= nx */
    uint32_t nxx = 0;
    while (nxx < nxo && s->pos[xo[nxx]] < L->nx)
        nxx++;
    uint32_t npo = nxo - nxx;
    uint32_t *pref = zalloc(t, npo + 1, sizeof *pref), *pout = zalloc(t, npo + 1, sizeof *pout);
    uint8_t *taken = zalloc(t, npo + 1, 1);
    int rc = pref && pout && taken ? 0 : -1;
    for (uint32_t q = 0; q < npo && rc == 0; q++)
        pref[q] = op_p(L, s->pos[xo[nxx + q]] - L->nx);
    if (rc == 0 && npo && napp == 1) {
        for (uint32_t q = 0; q < npo; q++)
            pout[q] = TG_NIL, taken[q] = 0;
        for (uint32_t q = 0; q < npo; q++)
            acc_add(t, &adj[pref[q]], i2 + 1 + nxx + q);
    } else if (rc == 0 && npo) {
        /* reverse scan: carry acc[npo] (from adj[p] at its first use), xs
         * the applications' contributions, last application first */
        tg_tape *R = body_new(t, L->B, "sum");
        uint64_t nops = npo + napp * npo;
        uint32_t *ops = R ? zalloc(t, nops, sizeof *ops) : NULL;
        if (R && ops) {
            tape_input_block(R, "c", npo);
            tape_input_block(R, "x", npo);
            tape_input_block(R, "p", 0);
            uint32_t *c = tape_output_block(R, "c", npo);
            for (uint32_t q = 0; c && q < npo; q++)
                c[q] = tape_rec(R, TG_OP_ADD, tape_ref(R->in_ref[q]), tape_ref(R->in_ref[npo + q]),
                                tape_lit(0));
            tape_output_block(R, "y", 0);
            for (uint32_t q = 0; q < npo; q++) {
                bool init = adj[pref[q]] != TG_NIL && first_use(taken, pref, q, pref[q]);
                ops[q] = init ? adj[pref[q]] : or_zero(t, TG_NIL, &zero);
            }
            uint64_t w = npo;
            for (uint64_t k = napp; k-- > 0;)
                for (uint32_t q = 0; q < npo; q++)
                    ops[w++] = (uint32_t)(i2 + 1 + k * nxo + nxx + q);
            uint32_t i3 = append_loop(t, TG_OP_SCAN, R, napp, npo, npo, 0, 0, ops, nops);
            R = NULL;
            for (uint32_t q = 0; q < npo && i3 != TG_NIL; q++)
                pout[q] = i3 + 1 + q;
        }
        tg_tape_free(R);
        mem_free(ops);
        rc = t->status == TG_OK ? 0 : -1;
        /* replace first (the init read adj[p]), then add the others */
        for (uint32_t q = 0; q < npo && rc == 0; q++)
            if (taken[q])
                adj[pref[q]] = pout[q];
        for (uint32_t q = 0; q < npo && rc == 0; q++)
            if (!taken[q])
                acc_add(t, &adj[pref[q]], pout[q]);
    }
    /* the xs' adjoints */
    uint64_t k = 0;
    for (uint64_t a = 0; a < L->count && rc == 0; a++) {
        if (!s->app_on[a])
            continue;
        for (uint32_t q = 0; q < nxx; q++) {
            uint32_t r = op_x(L, a, s->pos[xo[q]]);
            if (active[r])
                acc_add(t, &adj[r], (uint32_t)(i2 + 1 + k * nxo + q));
        }
        k++;
    }
    mem_free(pref);
    mem_free(pout);
    mem_free(taken);
    mem_free(xo);
    return t->status == TG_OK ? rc : -1;
}

/* Adjoint of a scan: a saving forward scan, then the reverse scan. */
static int
adjoint_scan(const loopv *L, ascratch *s, uint32_t *adj, const uint8_t *active, uint32_t na,
             uint32_t nyb)
{
    tg_tape *t = L->t;
    uint32_t nca = 0, nxa = 0;
    for (uint32_t q = 0; q < na; q++)
        nca += s->pos[q] < L->nc, nxa += s->pos[q] >= L->nc && s->pos[q] < L->nc + L->nx;
    uint32_t npa = na - nca - nxa;
    uint32_t *xo = zalloc(t, na, sizeof *xo), nxo = 0;
    tg_tape *u = xo ? vjp_body(L, s, na, nca, nxa, nyb, xo, &nxo) : NULL;
    if (!u)
        return mem_free(xo), -1;
    if (nca + npa == 0 && nxo == 0) {
        tg_tape_free(u);
        mem_free(xo);
        return 0;
    }
    uint32_t *sv = zalloc(t, L->nc, sizeof *sv);
    uint64_t stride = 0;
    if (!sv || saved_carries(L, sv, &stride))
        return tg_tape_free(u), mem_free(xo), mem_free(sv), -1;
    uint32_t nxs = L->nc + L->nx + nyb;
    uint64_t nops = (uint64_t)nca + npa + L->count * nxs + L->np;
    s->ops = zalloc(t, nops, sizeof *s->ops);
    s->pinit = zalloc(t, npa + 1, 1);
    uint32_t *pref = zalloc(t, npa + 1, sizeof *pref);
    if (!s->ops || !s->pinit || !pref)
        return tg_tape_free(u), mem_free(xo), mem_free(pref), mem_free(sv), -1;
    uint32_t zero = TG_NIL, *o = s->ops;
    for (uint32_t q = 0; q < nca; q++)
        *o++ = or_zero(t, adj[out_c(L, s->pos[q])], &zero);
    for (uint32_t q = 0; q < npa; q++) {
        uint32_t r = pref[q] = op_p(L, s->pos[nca + nxa + q] - L->nc - L->nx);
        bool init = adj[r] != TG_NIL && first_use(s->pinit, pref, q, r);
        *o++ = init ? adj[r] : or_zero(t, TG_NIL, &zero);
    }
    for (uint64_t k = L->count; k-- > 0;) {      /* last step first */
        for (uint32_t j = 0; j < L->nc; j++)
            *o++ = (uint32_t)(sv[j] + k * stride);
        for (uint32_t j = 0; j < L->nx; j++)
            *o++ = op_x(L, k, j);
        for (uint32_t q = 0; q < nyb; q++)
            *o++ = or_zero(t, adj[out_y(L, k, s->ypos[q])], &zero);
    }
    for (uint32_t j = 0; j < L->np; j++)
        *o++ = op_p(L, j);
    uint32_t i2 = append_loop(t, TG_OP_SCAN, u, L->count, nca + npa, nxs, L->np, nxo, s->ops,
                              (uint64_t)(o - s->ops));
    mem_free(sv);
    if (i2 == TG_NIL)
        return mem_free(xo), mem_free(pref), -1;
    /* params: replace where the accumulator started from adj[p] */
    for (uint32_t q = 0; q < npa; q++)
        if (s->pinit[q])
            adj[pref[q]] = i2 + 1 + nca + q;
    for (uint32_t q = 0; q < npa; q++)
        if (!s->pinit[q] && active[pref[q]])
            acc_add(t, &adj[pref[q]], i2 + 1 + nca + q);
    for (uint32_t q = 0; q < nca; q++) {
        uint32_t r = op_c(L, s->pos[q]);
        if (active[r])
            acc_add(t, &adj[r], i2 + 1 + q);
    }
    /* reverse step s holds step count-1-s */
    for (uint64_t st = 0; st < L->count; st++) {
        uint64_t k = L->count - 1 - st;
        for (uint32_t q = 0; q < nxo; q++) {
            uint32_t r = op_x(L, k, s->pos[xo[q]] - L->nc);
            if (active[r])
                acc_add(t, &adj[r], (uint32_t)(i2 + 1 + nca + npa + st * nxo + q));
        }
    }
    mem_free(xo);
    mem_free(pref);
    return t->status == TG_OK ? 0 : -1;
}

int
ad_sym_adjoint_x(tg_tape *t, uint32_t i, uint32_t *adj, const uint8_t *active)
{
    loopv L;
    if (loop_view(t, i, &L)) {
        for (uint64_t k = 1; k <= tape_xrec_of(t, i)->nout; k++)
            if (adj[i + k] != TG_NIL)
                return refuse(t, i);
        return 0;
    }
    ascratch s;
    memset(&s, 0, sizeof s);
    int rc = -1;
    s.act = zalloc(t, L.nin, 1);
    s.out_act = zalloc(t, L.nbout, 1);
    s.ybm = zalloc(t, L.ny, 1);
    s.app_on = zalloc(t, L.count, 1);
    s.pos = zalloc(t, L.nin, sizeof *s.pos);
    s.ypos = zalloc(t, L.ny, sizeof *s.ypos);
    s.in = zalloc(t, L.nin, sizeof *s.in);
    s.outs = zalloc(t, (size_t)L.nin + L.nbout, sizeof *s.outs);
    if (t->status != TG_OK)
        goto out;
    /* forward activity of the slots (the carries' to a fixed point) */
    for (uint32_t j = 0; j < L.nc; j++)
        s.act[j] = active[op_c(&L, j)];
    for (uint64_t a = 0; a < L.count; a++)
        for (uint32_t j = 0; j < L.nx; j++)
            s.act[L.nc + j] |= active[op_x(&L, a, j)];
    for (uint32_t j = 0; j < L.np; j++)
        s.act[L.nc + L.nx + j] = active[op_p(&L, j)];
    if (L.scan)
        slot_activity(&L, s.act, s.out_act);
    else
        body_activity(L.B, s.act, s.out_act);
    uint32_t na = positions(s.act, L.nin, s.pos);
    /* cotangent slots: active y slots with a nonzero cotangent somewhere */
    bool anyc = false;
    for (uint32_t j = 0; j < L.nc; j++)
        anyc |= s.act[j] && adj[out_c(&L, j)] != TG_NIL;
    for (uint64_t a = 0; a < L.count; a++)
        for (uint32_t j = 0; j < L.ny; j++)
            if (s.out_act[L.nc + j] && adj[out_y(&L, a, j)] != TG_NIL)
                s.ybm[j] = s.app_on[a] = 1;
    uint32_t nyb = positions(s.ybm, L.ny, s.ypos);
    rc = 0;
    if (na == 0 || (nyb == 0 && !anyc))
        goto out;
    rc = L.scan ? adjoint_scan(&L, &s, adj, active, na, nyb)
                : adjoint_map(&L, &s, adj, active, na, nyb);
out:
    ascratch_free(&s);
    return t->status == TG_OK ? rc : -1;
}
