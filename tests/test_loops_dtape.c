/* tests/test_loops_dtape.c -- derivative tapes of tapes with loops (issue 11
 * part 4: derivative tapes keep loops as loops).
 *
 * Every derivative tape (gradient, Jacobian, JVP, VJP, Hessian, HVP, joint,
 * and second order by composition: the Jacobian and JVP of the gradient
 * tape) of a tape L holding a tg_map or tg_scan is evaluated with tg_eval
 * and compared with the same derivative tape of F, the flat recording of
 * the same function (the loop unrolled by tg_call of its body, inner loops
 * unrolled too): 1e-13 relative, plus 1e-13 times the largest magnitude of
 * the output vector for sums whose order differs (a loop's param adjoints
 * are summed per application, then across); NaN only where NaN, an
 * infinity only where the same infinity.  The numeric sweeps of F (and of
 * L where they return TG_OK) are a third opinion.
 *
 * Bodies are random (fixed seeds): arithmetic, transcendental and the
 * special operations (select over comparisons, min, max, abs, floor, sqrt,
 * log, pow, atan2, hypot, division), with zero-size blocks, trip counts 0,
 * 1 and more, loops nested inside bodies; points are random with ±0, ±Inf
 * and NaN on some inputs.  The derivative tapes of L must hold loops and
 * their size must not grow with the trip count beyond the operand lists
 * and per-step outputs (checked by the second difference in the count). */
#include <criterion/criterion.h>
#include <sys/stat.h>
#include <unistd.h>

#include "derivutil.h"
#include "ad/lazy.h"

/* ------------------------------------------------------ random bodies */

typedef struct shape {
    bool scan;
    uint32_t nc, nx, np, ny;
} shape;

static tg_var pick(tu_rng *r, const tg_var *pool, size_t n)
{
    /* prefer recent values, so that chains get deep */
    size_t k = tu_rng_below(r, 3) ? n - 1 - tu_rng_below(r, n < 4 ? n : 4) : tu_rng_below(r, n);
    return pool[k];
}

static tg_var rand_op(tu_rng *r, tg_var a, tg_var b, tg_var c)
{
    switch (tu_rng_below(r, 24)) {
    case 0: return tg_add(a, b);
    case 1: return tg_sub(a, b);
    case 2: return tg_mul(a, b);
    case 3: return tg_div(a, tg_add(tg_mul(b, b), 0.5));
    case 4: return tg_sin(a);
    case 5: return tg_cos(a);
    case 6: return tg_tanh(a);
    case 7: return tg_exp(tg_mul(a, 0.3));
    case 8: return tg_log(a);                       /* NaN for a < 0 */
    case 9: return tg_sqrt(a);                      /* NaN, Inf partial at 0 */
    case 10: return tg_abs(a);
    case 11: return tg_min(a, b);
    case 12: return tg_max(a, b);
    case 13: return tg_select(tg_lt(a, b), c, tg_mul(a, 2.0));
    case 14: return tg_floor(a);
    case 15: return tg_pow(a, 2.0);
    case 16: return tg_pow(tg_abs(a), b);
    case 17: return tg_atan2(a, b);
    case 18: return tg_hypot(a, b);
    case 19: return tg_mul(tg_mul(a, b), c);
    case 20: return tg_atan(a);
    case 21: return tg_neg(a);
    case 22: return tg_sub(tg_mul(a, a), b);
    default: return tg_add(tg_mul(a, 0.5), tg_sin(b));
    }
}

static tg_tape *rand_body(uint64_t seed, shape s, int nest, bool unroll);

/* An inner loop recorded inside a body on pool values (nest > 0):
 * returns how many values it appended to pool. */
static size_t inner_loop(tu_rng *r, tg_tape *t, tg_var *pool, size_t n, int nest, bool unroll)
{
    shape is = { tu_rng_below(r, 2) == 1, 1, 1, tu_rng_below(r, 2), 1 };
    if (!is.scan)
        is.nc = 0;
    uint64_t iseed = tu_rng_next(r);
    tg_tape *ib = rand_body(iseed, is, nest - 1, unroll);
    size_t cnt = 2 + tu_rng_below(r, 2);
    tg_var c[1], xs[4], p[1], ys[4], cout[1];
    for (size_t k = 0; k < cnt; k++)
        xs[k] = pick(r, pool, n);
    c[0] = pick(r, pool, n);
    p[0] = pick(r, pool, n);
    if (!unroll) {
        if (is.scan)
            tg_scan(t, ib, cnt, c, xs, p, cout, ys);
        else
            tg_map(t, ib, cnt, xs, p, ys);
    } else {
        tg_var cur = c[0];
        for (size_t k = 0; k < cnt; k++) {
            tg_var args[3], res[2];
            size_t na = 0;
            if (is.scan)
                args[na++] = cur;
            args[na++] = xs[k];
            if (is.np)
                args[na++] = p[0];
            tg_call(t, ib, args, res);
            if (is.scan) {
                cur = res[0];
                ys[k] = res[1];
            } else {
                ys[k] = res[0];
            }
        }
        cout[0] = cur;
    }
    tg_tape_free(ib);
    size_t m = 0;
    for (size_t k = 0; k < cnt; k++)
        pool[n + m++] = ys[k];
    if (is.scan)
        pool[n + m++] = cout[0];
    return m;
}

/* A random body of shape s: blocks (c, x, p) -> (c', y) for a scan, (x, p)
 * -> y for a map.  The same seed gives the same function whether inner
 * loops are recorded as loops or unrolled. */
static tg_tape *rand_body(uint64_t seed, shape s, int nest, bool unroll)
{
    tu_rng r = { seed };
    tg_tape *t = tu_tape("body", 0);
    tg_var pool[128], c[4];
    size_t n = 0;
    if (s.scan) {
        tg_input_vec(t, "c", s.nc, c);
        for (uint32_t j = 0; j < s.nc; j++)
            pool[n++] = c[j];
    }
    tg_input_vec(t, "x", s.nx, pool + n);
    n += s.nx;
    tg_input_vec(t, "p", s.np, pool + n);
    n += s.np;
    pool[n++] = tg_const(t, tu_rng_range(&r, -1, 1));
    size_t nops = 3 + tu_rng_below(&r, 6);
    for (size_t k = 0; k < nops; k++) {
        if (nest > 0 && k == nops / 2) {
            n += inner_loop(&r, t, pool, n, nest, unroll);
            continue;
        }
        tg_var a = pick(&r, pool, n), b = pick(&r, pool, n), cc = pick(&r, pool, n);
        pool[n++] = rand_op(&r, a, b, cc);
    }
    if (s.scan) {
        /* c' = tanh(v) + c/2 keeps the carries bounded over many steps */
        tg_var cn[4];
        for (uint32_t j = 0; j < s.nc; j++)
            cn[j] = tg_add(tg_tanh(pick(&r, pool, n)), tg_mul(c[j], 0.5));
        tg_output_vec(t, "c", s.nc, cn);
    }
    tg_var y[4];
    for (uint32_t j = 0; j < s.ny; j++)
        y[j] = pick(&r, pool, n);
    tg_output_vec(t, "y", s.ny, y);
    TU_TAPE_OK(t);
    return t;
}

/* ----------------------------------------------------- looped and flat */

#define MAXV 512

/* The loop outputs of L or F: carry_out ++ ys into out (their number). */
static size_t record_loop(tg_tape *t, const tg_tape *B, shape s, size_t count, bool flat,
                          tg_var *out)
{
    tg_var c0[4], p[4], *xs = calloc(count * s.nx + 1, sizeof *xs);
    cr_assert(xs);
    if (s.scan)
        tg_input_vec(t, "c0", s.nc, c0);
    tg_input_vec(t, "xs", count * s.nx, xs);
    tg_input_vec(t, "p", s.np, p);
    size_t nc = s.scan ? s.nc : 0, m = nc + count * s.ny;
    cr_assert(m <= MAXV);
    if (!flat) {
        if (s.scan)
            tg_scan(t, B, count, c0, xs, p, out, out + nc);
        else
            tg_map(t, B, count, xs, p, out);
    } else {
        tg_var cur[4], args[16], res[16];
        memcpy(cur, c0, sizeof cur);
        for (size_t a = 0; a < count; a++) {
            size_t na = 0;
            for (uint32_t j = 0; j < nc; j++)
                args[na++] = cur[j];
            for (uint32_t j = 0; j < s.nx; j++)
                args[na++] = xs[a * s.nx + j];
            for (uint32_t j = 0; j < s.np; j++)
                args[na++] = p[j];
            tg_call(t, B, args, res);
            for (uint32_t j = 0; j < nc; j++)
                cur[j] = res[j];
            for (uint32_t j = 0; j < s.ny; j++)
                out[nc + a * s.ny + j] = res[nc + j];
        }
        for (uint32_t j = 0; j < nc; j++)
            out[j] = cur[j];
    }
    free(xs);
    return m;
}

/* vector: outputs "y" = the loop's outputs; scalar: "f" = a nonlinear
 * function of them (and of the inputs, so that it is never empty). */
static tg_tape *make_outer(const tg_tape *B, shape s, size_t count, bool flat, bool scalar)
{
    tg_tape *t = tu_tape(scalar ? "fs" : "fv", 0);
    tg_var out[MAXV];
    size_t m = record_loop(t, B, s, count, flat, out);
    if (!scalar) {
        tg_output_vec(t, "y", m, out);
    } else {
        tg_var f0 = tg_num_inputs(t) ? (tg_var){ t, tg_input_ref(t, 0) } : tg_const(t, 1.0);
        tg_var f = tg_mul(f0, 0.125);
        for (size_t k = 0; k < m; k++)
            f = tg_add(f, tg_mul(out[k], 0.25 + 0.125 * (double)(k % 5)));
        if (m >= 2)
            f = tg_add(f, tg_mul(out[0], out[m - 1]));
        tg_output(t, "f", f);
    }
    TU_TAPE_OK(t);
    return t;
}

/* -------------------------------------------------------- comparison */

static size_t count_loops(const tg_tape *t)
{
    size_t k = 0;
    for (size_t i = 0; i < tg_tape_size(t); i++) {
        tg_insn in;
        TU_OK(tg_tape_insn(t, i, &in));
        k += in.op == TG_OP_MAP || in.op == TG_OP_SCAN;
    }
    return k;
}

static void random_point(tu_rng *r, double *x, size_t n, int special)
{
    static const double sp[] = { 0.0, -0.0, INFINITY, -INFINITY, NAN, 1e-310 };
    for (size_t j = 0; j < n; j++)
        x[j] = tu_rng_range(r, -1.6, 1.6);
    if (special && n)
        x[tu_rng_below(r, n)] = sp[tu_rng_below(r, sizeof sp / sizeof *sp)];
}

/* At a point with a special input (special != 0), sums that meet
 * infinities of both signs in another order (the flat recording merges
 * identical applications by CSE, the loop cannot) may give NaN where the
 * other gives an infinity: there, non-finite only has to meet non-finite. */
static void assert_close_vec_sp(const char *what, const double *a, const double *b, size_t m,
                                const char *ctx, int special)
{
    double scale = fmax(du_scale(a, m), du_scale(b, m));
    for (size_t j = 0; j < m; j++)
        cr_assert(tu_close(a[j], b[j], 1e-13, 1e-13 * scale)
                  || (special && !isfinite(a[j]) && !isfinite(b[j])),
                  "%s %s: output %zu: loop %s, flat %s", ctx, what, j, tu_d(a[j]).s,
                  tu_d(b[j]).s);
}

static void assert_close_vec(const char *what, const double *a, const double *b, size_t m,
                             const char *ctx)
{
    assert_close_vec_sp(what, a, b, m, ctx, 0);
}

/* DL (of the looped tape) and DF (of the flat one) agree at npts points. */
static void cmp_tapes(const char *what, tg_tape *DL, tg_tape *DF, uint64_t seed, const char *ctx)
{
    cr_assert(DL && DF, "%s %s: NULL tape", ctx, what);
    cr_assert(tg_tape_status(DL) == TG_OK, "%s %s of the loop: %s", ctx, what, tg_tape_error(DL));
    TU_TAPE_OK(DF);
    size_t n = tg_num_inputs(DL), m = tg_num_outputs(DL);
    cr_assert_eq(n, tg_num_inputs(DF), "%s %s: inputs", ctx, what);
    cr_assert_eq(m, tg_num_outputs(DF), "%s %s: outputs", ctx, what);
    du_check_same_blocks(DL, DF, what);
    double *x = malloc((n + 1) * sizeof *x), *yl = malloc((m + 1) * sizeof *yl);
    double *yf = malloc((m + 1) * sizeof *yf);
    tu_rng r = { seed };
    for (int p = 0; p < 6; p++) {
        random_point(&r, x, n, p >= 4);
        du_eval(DL, x, yl);
        du_eval(DF, x, yf);
        assert_close_vec_sp(what, yl, yf, m, ctx, p >= 4);
    }
    free(x);
    free(yl);
    free(yf);
}

/* Every derivative tape of L against F's, for wrt = TG_ALL and each block. */
static void cmp_all(const tg_tape *L, const tg_tape *F, bool scalar, uint64_t seed, const char *ctx)
{
    for (int wrt = TG_ALL; wrt < (int)tg_num_input_blocks(L); wrt++) {
        char c2[200];
        snprintf(c2, sizeof c2, "%s wrt %d", ctx, wrt);
#define PAIR(name, expr_l, expr_f)                                      \
        do {                                                            \
            tg_tape *dl_ = (expr_l), *df_ = (expr_f);                   \
            cmp_tapes(name, dl_, df_, seed, c2);                        \
            tg_tape_free(dl_);                                          \
            tg_tape_free(df_);                                          \
        } while (0)
        PAIR("jacobian", tg_jacobian_tape(L, wrt), tg_jacobian_tape(F, wrt));
        PAIR("jvp", tg_jvp_tape(L, wrt), tg_jvp_tape(F, wrt));
        PAIR("vjp", tg_vjp_tape(L, wrt), tg_vjp_tape(F, wrt));
        if (!scalar)
            continue;
        PAIR("gradient", tg_gradient_tape(L, wrt), tg_gradient_tape(F, wrt));
        PAIR("hessian", tg_hessian_tape(L, wrt), tg_hessian_tape(F, wrt));
        PAIR("hvp", tg_hvp_tape(L, wrt), tg_hvp_tape(F, wrt));
        PAIR("joint", tg_joint_tape(L, TG_F | TG_GRAD | TG_JAC | TG_HESS | TG_HVP, wrt),
             tg_joint_tape(F, TG_F | TG_GRAD | TG_JAC | TG_HESS | TG_HVP, wrt));
        /* second order by composition: through the gradient tape's loops */
        tg_tape *GL = tg_gradient_tape(L, wrt), *GF = tg_gradient_tape(F, wrt);
        PAIR("jacobian of gradient", tg_jacobian_tape(GL, TG_ALL), tg_jacobian_tape(GF, TG_ALL));
        PAIR("vjp of gradient", tg_vjp_tape(GL, TG_ALL), tg_vjp_tape(GF, TG_ALL));
        tg_tape_free(GL);
        tg_tape_free(GF);
#undef PAIR
    }
}

/* The gradient tape of L against the numeric sweeps: of F always, of L when
 * they work on loops (another helper's part). */
static void cmp_numeric(const tg_tape *L, const tg_tape *F, uint64_t seed, const char *ctx)
{
    size_t n = tg_num_inputs(L);
    tg_tape *G = tg_gradient_tape(L, TG_ALL);
    TU_TAPE_OK(G);
    double x[MAXV], g[MAXV], gf[MAXV], gl[MAXV];
    tu_rng r = { seed };
    for (int p = 0; p < 3; p++) {
        random_point(&r, x, n, 0);
        du_eval(G, x, g);
        TU_OK(tg_gradient(F, x, gf));
        assert_close_vec("gradient tape vs tg_gradient(flat)", g, gf, n, ctx);
        if (tg_gradient(L, x, gl) == TG_OK)
            assert_close_vec("gradient tape vs tg_gradient(loop)", g, gl, n, ctx);
    }
    tg_tape_free(G);
}

static void run_case(uint64_t seed, shape s, size_t count, int nest)
{
    char ctx[160];
    snprintf(ctx, sizeof ctx, "seed %llu %s nc %u nx %u np %u ny %u count %zu nest %d",
             (unsigned long long)seed, s.scan ? "scan" : "map", s.nc, s.nx, s.np, s.ny, count,
             nest);
    tg_tape *B = rand_body(seed, s, nest, false);
    tg_tape *Bf = rand_body(seed, s, nest, true);
    for (int scalar = 0; scalar < 2; scalar++) {
        tg_tape *L = make_outer(B, s, count, false, scalar);
        tg_tape *F = make_outer(Bf, s, count, true, scalar);
        cr_assert(count_loops(L) >= 1, "%s: the looped tape holds no loop", ctx);
        cmp_all(L, F, scalar, seed * 7 + (uint64_t)scalar, ctx);
        if (scalar)
            cmp_numeric(L, F, seed, ctx);
        tg_tape_free(L);
        tg_tape_free(F);
    }
    tg_tape_free(B);
    tg_tape_free(Bf);
}

static shape rand_shape(tu_rng *r, bool scan)
{
    shape s = { scan, scan ? (uint32_t)tu_rng_below(r, 4) : 0, (uint32_t)tu_rng_below(r, 4),
                (uint32_t)tu_rng_below(r, 3), (uint32_t)tu_rng_below(r, 4) };
    return s;
}

Test(loops_dtape, map_random, .timeout = 300)
{
    tu_rng r = { 11 };
    static const size_t counts[] = { 0, 1, 2, 5 };
    for (uint64_t seed = 1; seed <= 24; seed++)
        run_case(seed, rand_shape(&r, false), counts[seed % 4], 0);
}

Test(loops_dtape, scan_random, .timeout = 300)
{
    tu_rng r = { 12 };
    static const size_t steps[] = { 0, 1, 3, 6 };
    for (uint64_t seed = 100; seed < 124; seed++)
        run_case(seed, rand_shape(&r, true), steps[seed % 4], 0);
}

Test(loops_dtape, nested, .timeout = 300)
{
    tu_rng r = { 13 };
    for (uint64_t seed = 200; seed < 212; seed++) {
        shape s = rand_shape(&r, seed % 2 == 1);
        if (s.nx + s.np + s.nc == 0)
            s.nx = 1;
        run_case(seed, s, 1 + seed % 3, 1 + (int)(seed % 4 == 0));
    }
}

Test(loops_dtape, empty_blocks, .timeout = 120)
{
    /* every block size 0 in turn, and count 0 */
    shape shapes[] = {
        { false, 0, 0, 0, 1 }, { false, 0, 2, 0, 0 }, { false, 0, 0, 2, 2 },
        { true, 0, 1, 1, 1 }, { true, 2, 0, 0, 0 }, { true, 1, 0, 1, 1 }, { true, 2, 1, 0, 0 },
    };
    for (size_t k = 0; k < sizeof shapes / sizeof *shapes; k++)
        for (size_t count = 0; count < 3; count++)
            run_case(300 + k, shapes[k], count, 0);
}

/* ----------------------------------------------------------- sizes */

/* A fixed smooth body for the size checks and for long loops. */
static tg_tape *smooth_body(bool scan)
{
    tg_tape *t = tu_tape("smooth", 0);
    tg_var c[2], x[2], p[1];
    if (scan)
        tg_input_vec(t, "c", 2, c);
    tg_input_vec(t, "x", 2, x);
    tg_input_vec(t, "p", 1, p);
    tg_var u = tg_add(tg_mul(x[0], p[0]), tg_sin(x[1]));
    if (scan) {
        u = tg_add(u, tg_mul(c[0], c[1]));
        tg_var cn[2] = { tg_add(tg_mul(c[0], 0.5), tg_tanh(u)), tg_sub(c[1], tg_mul(0.1, u)) };
        tg_output_vec(t, "c", 2, cn);
    }
    tg_var y[1] = { tg_mul(u, tg_cos(x[0])) };
    tg_output_vec(t, "y", 1, y);
    TU_TAPE_OK(t);
    return t;
}

typedef tg_tape *(*dfun)(const tg_tape *, int);

static size_t dsize(dfun d, const tg_tape *B, shape s, size_t count, bool opt)
{
    tg_tape *L = make_outer(B, s, count, false, true);
    tg_tape *D = d(L, TG_ALL);
    TU_TAPE_OK(D);
    cr_assert(count_loops(D) >= 1, "derivative tape without a loop");
    if (opt)
        TU_OK(tg_tape_optimize(D, TG_OPT_BASIC));
    size_t n = tg_tape_size(D);
    tg_tape_free(L);
    tg_tape_free(D);
    return n;
}

/* instructions per step of the flat recording's derivative tape */
static size_t dsize_flat(dfun d, const tg_tape *B, shape s, size_t c1, size_t c2)
{
    size_t n[2];
    for (int k = 0; k < 2; k++) {
        tg_tape *F = make_outer(B, s, k ? c2 : c1, true, true);
        tg_tape *D = d(F, TG_ALL);
        TU_TAPE_OK(D);
        n[k] = tg_tape_size(D);
        tg_tape_free(F);
        tg_tape_free(D);
    }
    return (n[1] - n[0]) / (c2 - c1);
}

Test(loops_dtape, sizes_independent_of_trip_count, .timeout = 120)
{
    dfun fns[] = { tg_gradient_tape, tg_jvp_tape, tg_vjp_tape, tg_hvp_tape };
    const char *names[] = { "gradient", "jvp", "vjp", "hvp" };
    for (int sc = 0; sc < 2; sc++) {
        tg_tape *B = smooth_body(sc);
        shape s = { sc, sc ? 2u : 0u, 2, 1, 1 };
        for (int k = 0; k < 4; k++) {
            for (int opt = 0; opt < 2; opt++) {
                size_t n1 = dsize(fns[k], B, s, 100, opt), n2 = dsize(fns[k], B, s, 200, opt);
                size_t n3 = dsize(fns[k], B, s, 300, opt);
                /* affine in the count ... */
                cr_assert_eq(n2 - n1, n3 - n2, "%s %s: sizes %zu %zu %zu not affine in the count",
                             names[k], sc ? "scan" : "map", n1, n2, n3);
                /* ... with a slope of the per-step data only (inputs, the
                 * loops' per-step outputs, the adjoints' sums): far below
                 * the flat recording's, which holds the body per step */
                size_t slope = (n2 - n1) / 100;
                size_t flat = dsize_flat(fns[k], B, s, 100, 200);
                cr_assert(slope <= 24 && 2 * slope < flat, "%s %s: %zu instructions per step "
                          "(flat: %zu)", names[k], sc ? "scan" : "map", slope, flat);
            }
        }
        tg_tape_free(B);
    }
}

Test(loops_dtape, long_loops_smaller_than_flat, .timeout = 120)
{
    for (int sc = 0; sc < 2; sc++) {
        tg_tape *B = smooth_body(sc);
        shape s = { sc, sc ? 2u : 0u, 2, 1, 1 };
        tg_tape *L = make_outer(B, s, 200, false, true), *F = make_outer(B, s, 200, true, true);
        tg_tape *GL = tg_gradient_tape(L, TG_ALL), *GF = tg_gradient_tape(F, TG_ALL);
        tg_tape *HL = tg_hvp_tape(L, TG_ALL), *HF = tg_hvp_tape(F, TG_ALL);
        TU_TAPE_OK(GL);
        TU_TAPE_OK(HL);
        cr_assert(tg_tape_size(GL) < tg_tape_size(GF), "gradient: loop %zu >= flat %zu",
                  tg_tape_size(GL), tg_tape_size(GF));
        cr_assert(tg_tape_size(HL) < tg_tape_size(HF), "hvp: loop %zu >= flat %zu",
                  tg_tape_size(HL), tg_tape_size(HF));
        cmp_tapes("gradient", GL, GF, 5, sc ? "long scan" : "long map");
        cmp_tapes("hvp", HL, HF, 6, sc ? "long scan" : "long map");
        tg_tape_free(GL);
        tg_tape_free(GF);
        tg_tape_free(HL);
        tg_tape_free(HF);
        tg_tape_free(L);
        tg_tape_free(F);
        tg_tape_free(B);
    }
}

/* ------------------------------------------------ optimise, lazy, sparse */

Test(loops_dtape, optimized_derivative_tapes_agree, .timeout = 120)
{
    tu_rng r = { 14 };
    for (uint64_t seed = 400; seed < 412; seed++) {
        shape s = rand_shape(&r, seed % 2 == 0);
        tg_tape *B = rand_body(seed, s, (int)(seed % 3 == 0), false);
        tg_tape *L = make_outer(B, s, 3, false, true);
        tg_tape *G = tg_gradient_tape(L, TG_ALL), *H = tg_hvp_tape(L, TG_ALL);
        for (int lvl = TG_OPT_NONE; lvl <= TG_OPT_MAX; lvl++) {
            tg_tape *G2 = tg_gradient_tape(L, TG_ALL), *H2 = tg_hvp_tape(L, TG_ALL);
            TU_OK(tg_tape_optimize(G2, (tg_opt_level)lvl));
            TU_OK(tg_tape_optimize(H2, (tg_opt_level)lvl));
            cmp_tapes("optimised gradient", G2, G, seed, "optimize");
            cmp_tapes("optimised hvp", H2, H, seed, "optimize");
            tg_tape_free(G2);
            tg_tape_free(H2);
        }
        tg_tape_free(G);
        tg_tape_free(H);
        tg_tape_free(L);
        tg_tape_free(B);
    }
}

/* The lazy derivative tapes (src/ad/lazy.c) of a looped tape: built on the
 * AD_LAZY_AFTER-th count, within the size cap, and equal to the derivative
 * tapes they are made from (and, when the numeric sweeps take loops, what
 * tg_gradient returns). */
Test(loops_dtape, lazy_tapes_through_loops, .timeout = 120)
{
    for (int sc = 0; sc < 2; sc++) {
        tg_tape *B = smooth_body(sc);
        shape s = { sc, sc ? 2u : 0u, 2, 1, 1 };
        tg_tape *L = make_outer(B, s, 20, false, true);
        TU_OK(tg_tape_set_lazy(L, 1));
        const tg_tape *d[AD_LAZY_KINDS] = { NULL, NULL };
        for (int k = 0; k < AD_LAZY_KINDS; k++) {
            for (int call = 0; call < AD_LAZY_AFTER; call++)
                d[k] = ad_lazy_count(L, k);
            cr_assert(d[k] != NULL, "%s: no lazy %s tape", sc ? "scan" : "map", k ? "hvp" : "gradient");
            cr_assert(d[k] == ad_lazy_get(L, k));
            cr_assert(count_loops(d[k]) >= 1, "the lazy tape holds no loop");
        }
        tg_tape *G = tg_gradient_tape(L, TG_ALL), *H = tg_hvp_tape(L, TG_ALL);
        cmp_tapes("lazy gradient", (tg_tape *)(uintptr_t)d[0], G, 31, sc ? "scan" : "map");
        cmp_tapes("lazy hvp", (tg_tape *)(uintptr_t)d[1], H, 32, sc ? "scan" : "map");
        size_t n = tg_num_inputs(L);
        double x[MAXV], g[MAXV], g2[MAXV];
        tu_rng r = { 15 };
        random_point(&r, x, n, 0);
        if (tg_gradient(L, x, g) == TG_OK) {     /* the numeric sweeps take loops */
            du_eval(G, x, g2);
            assert_close_vec("tg_gradient with a lazy tape", g, g2, n, sc ? "scan" : "map");
        }
        tg_tape_free(G);
        tg_tape_free(H);
        tg_tape_free(L);
        tg_tape_free(B);
    }
}

/* A sparse tape of a looped tape: its pattern is the flat tape's
 * (tests/test_loops_sparse.c), so it has the same outputs and values. */
static void check_sparse(const char *what, tg_tape *SL, tg_tape *SF, uint64_t seed, int sc)
{
    TU_TAPE_OK(SF);
    TU_TAPE_OK(SL);
    cr_assert_eq(tg_num_outputs(SL), tg_num_outputs(SF), "%s", what);
    cmp_tapes(what, SL, SF, seed, sc ? "scan" : "map");
}

Test(loops_dtape, sparse_tapes, .timeout = 120)
{
    for (int sc = 0; sc < 2; sc++) {
        tg_tape *B = smooth_body(sc);
        shape s = { sc, sc ? 2u : 0u, 2, 1, 1 };
        tg_tape *Lv = make_outer(B, s, 4, false, false), *Ls = make_outer(B, s, 4, false, true);
        tg_tape *Fv = make_outer(B, s, 4, true, false), *Fs = make_outer(B, s, 4, true, true);
        tg_tape *SJ = tg_sparse_jacobian_tape(Lv, TG_ALL), *SH = tg_sparse_hessian_tape(Ls, TG_ALL);
        tg_tape *SJf = tg_sparse_jacobian_tape(Fv, TG_ALL), *SHf = tg_sparse_hessian_tape(Fs, TG_ALL);
        cr_assert(SJ && SH);
        check_sparse("sparse jacobian", SJ, SJf, 21, sc);
        check_sparse("sparse hessian", SH, SHf, 22, sc);
        tg_tape_free(SJ);
        tg_tape_free(SH);
        tg_tape_free(SJf);
        tg_tape_free(SHf);
        tg_tape_free(Lv);
        tg_tape_free(Ls);
        tg_tape_free(Fv);
        tg_tape_free(Fs);
        tg_tape_free(B);
    }
}

/* ------------------------------------------------- optimisation of loops */

/* y = t(x) for both tapes, the same values (optimisation is exact). */
static void same_values(const tg_tape *a, const tg_tape *b, uint64_t seed, const char *ctx)
{
    size_t n = tg_num_inputs(a), m = tg_num_outputs(a);
    cr_assert_eq(n, tg_num_inputs(b));
    cr_assert_eq(m, tg_num_outputs(b));
    double x[MAXV], ya[MAXV], yb[MAXV];
    cr_assert(n <= MAXV && m <= MAXV);
    tu_rng r = { seed };
    for (int p = 0; p < 6; p++) {
        random_point(&r, x, n, p >= 4);
        du_eval(a, x, ya);
        du_eval(b, x, yb);
        for (size_t j = 0; j < m; j++)
            cr_assert(tu_same_value(ya[j], yb[j]) || (isnan(ya[j]) && isnan(yb[j])),
                      "%s: output %zu: %s vs %s", ctx, j, tu_d(ya[j]).s, tu_d(yb[j]).s);
    }
}

/* The loop instructions of t: their indices into ix (at most 16), count. */
static size_t loops_of(const tg_tape *t, size_t *ix)
{
    size_t k = 0;
    for (size_t i = 0; i < tg_tape_size(t) && k < 16; i++) {
        tg_insn in;
        TU_OK(tg_tape_insn(t, i, &in));
        if (in.op == TG_OP_MAP || in.op == TG_OP_SCAN)
            ix[k++] = i;
    }
    return k;
}

Test(loops_dtape, optimize_looped_tapes_exactly, .timeout = 120)
{
    tu_rng r = { 16 };
    for (uint64_t seed = 500; seed < 524; seed++) {
        shape s = rand_shape(&r, seed % 2 == 0);
        tg_tape *B = rand_body(seed, s, (int)(seed % 4 == 1), false);
        for (int scalar = 0; scalar < 2; scalar++) {
            tg_tape *L = make_outer(B, s, 1 + seed % 4, false, scalar);
            for (int lvl = TG_OPT_NONE; lvl <= TG_OPT_MAX; lvl++) {
                tg_tape *O = make_outer(B, s, 1 + seed % 4, false, scalar);
                TU_OK(tg_tape_optimize(O, (tg_opt_level)lvl));
                same_values(O, L, seed, "optimised looped tape");
                size_t n1 = tg_tape_size(O);
                char *d1 = tg_tape_disasm(O);
                TU_OK(tg_tape_optimize(O, (tg_opt_level)lvl));
                if (getenv("TG_DUMP") && tg_tape_size(O) != n1) {
                    char *d2 = tg_tape_disasm(O);
                    fprintf(stderr, "%s\n-----\n%s\n", d1, d2);
                    free(d2);
                }
                free(d1);
                cr_assert_eq(tg_tape_size(O), n1, "seed %llu scalar %d level %d: optimising "
                             "twice changed the size from %zu to %zu", (unsigned long long)seed,
                             scalar, lvl, n1, tg_tape_size(O));
                tg_tape_free(O);
            }
            tg_tape_free(L);
        }
        tg_tape_free(B);
    }
}

/* Dead ys leave the body, dead applications the map, dead carries the
 * scan, and what only they read the operand list. */
Test(loops_dtape, dead_outputs_leave_the_loop)
{
    /* map body: (x0, x1; p0, p1) -> (y0 = x0 p0, y1 = sin x1, y2 = x1 p1) */
    tg_tape *B = tu_tape("mb", 0);
    tg_var x[2], p[2];
    tg_input_vec(B, "x", 2, x);
    tg_input_vec(B, "p", 2, p);
    tg_var y[3] = { tg_mul(x[0], p[0]), tg_sin(x[1]), tg_mul(x[1], p[1]) };
    tg_output_vec(B, "y", 3, y);
    tg_tape *L = tu_tape("f", 0);
    tg_var xs[10], ps[2], ys[15];
    tg_input_vec(L, "xs", 10, xs);
    tg_input_vec(L, "p", 2, ps);
    tg_map(L, B, 5, xs, ps, ys);
    /* only y0 of applications 0..2 is used */
    tg_output(L, "f", tg_add(tg_add(ys[0], ys[3]), ys[6]));
    TU_TAPE_OK(L);
    size_t before = tg_tape_size(L);
    tg_tape *U = tu_tape("f", 0);
    tg_var ux[10], up[2], uy[15];
    tg_input_vec(U, "xs", 10, ux);
    tg_input_vec(U, "p", 2, up);
    tg_map(U, B, 5, ux, up, uy);
    tg_output(U, "f", tg_add(tg_add(uy[0], uy[3]), uy[6]));
    TU_OK(tg_tape_optimize(U, TG_OPT_BASIC));
    same_values(U, L, 1, "pruned map");
    size_t ix[16];
    cr_assert_eq(loops_of(U, ix), 1);
    tg_insn in;
    TU_OK(tg_tape_insn(U, ix[0], &in));
    const tg_tape *pb = tg_tape_body(U, in.body);
    cr_assert_eq(tg_num_outputs(pb), 1, "dead ys stay in the body");
    cr_assert_eq(tg_input_block_size(pb, 0), 1, "x1 is read only by dead ys");
    cr_assert_eq(tg_input_block_size(pb, 1), 1, "p1 is read only by dead ys");
    cr_assert_eq(in.noperands, 3 + 1, "operands: x0 of 3 applications, p0");
    cr_assert(tg_tape_size(U) < before);
    tg_tape_free(U);
    tg_tape_free(L);
    tg_tape_free(B);

    /* scan body: (c0, c1; x; p) -> (c0' = c0 x + p, c1' = c1 + c0; y = c0) */
    B = tu_tape("sb", 0);
    tg_var c[2], sx[1], sp[1];
    tg_input_vec(B, "c", 2, c);
    tg_input_vec(B, "x", 1, sx);
    tg_input_vec(B, "p", 1, sp);
    tg_var cn[2] = { tg_add(tg_mul(c[0], sx[0]), sp[0]), tg_add(c[1], c[0]) };
    tg_output_vec(B, "c", 2, cn);
    tg_output_vec(B, "y", 1, c);
    for (int keep = 0; keep < 2; keep++) {
        tg_tape *S = tu_tape("g", 0);
        tg_var c0[2], xs2[6], p2[1], co[2], ys2[6];
        tg_input_vec(S, "c0", 2, c0);
        tg_input_vec(S, "xs", 6, xs2);
        tg_input_vec(S, "p", 1, p2);
        tg_scan(S, B, 6, c0, xs2, p2, co, ys2);
        /* keep 0: only c0's final value; keep 1: c1's too, which reads c0 */
        tg_output(S, "f", keep ? tg_add(co[0], co[1]) : co[0]);
        TU_TAPE_OK(S);
        tg_tape *S0 = tg_gradient_tape(S, TG_ALL);     /* unoptimised reference values */
        tg_tape *ref = tu_tape("g", 0);
        tg_var r0[2], rx[6], rp[1], rco[2], rys[6];
        tg_input_vec(ref, "c0", 2, r0);
        tg_input_vec(ref, "xs", 6, rx);
        tg_input_vec(ref, "p", 1, rp);
        tg_scan(ref, B, 6, r0, rx, rp, rco, rys);
        tg_output(ref, "f", keep ? tg_add(rco[0], rco[1]) : rco[0]);
        TU_OK(tg_tape_optimize(S, TG_OPT_BASIC));
        same_values(S, ref, 2, "pruned scan");
        cr_assert_eq(loops_of(S, ix), 1);
        TU_OK(tg_tape_insn(S, ix[0], &in));
        pb = tg_tape_body(S, in.body);
        cr_assert_eq(tg_input_block_size(pb, 0), keep ? 2u : 1u, "carries kept");
        cr_assert_eq(tg_output_block_size(pb, 1), 0, "the ys are dead");
        /* the gradient tape, optimised: the original scan merged into the
         * carry-saving one, so one forward and one reverse scan */
        tg_tape *G = tg_gradient_tape(ref, TG_ALL);
        TU_OK(tg_tape_optimize(G, TG_OPT_BASIC));
        same_values(G, S0, 3, "optimised gradient of a scan");
        size_t nl = loops_of(G, ix);
        cr_assert_eq(nl, 2, "%zu loops in the optimised gradient tape of a scan", nl);
        tg_tape_free(G);
        tg_tape_free(S0);
        tg_tape_free(ref);
        tg_tape_free(S);
    }
    tg_tape_free(B);
}

static size_t count_op(const tg_tape *t, tg_opcode op)
{
    size_t k = 0;
    for (size_t i = 0; i < tg_tape_size(t); i++) {
        tg_insn in;
        TU_OK(tg_tape_insn(t, i, &in));
        k += in.op == op;
    }
    return k;
}

/* Work that depends on params only leaves the body (computed once, passed
 * in as a param); an x slot with the same operand in every application
 * becomes a param; a constant param becomes a constant of the body. */
Test(loops_dtape, invariant_work_hoisted)
{
    /* body: (x0, x1; p0, p1) -> y = x0 * sin(p0) + x1 * cos(p0 * p1) + p1 */
    tg_tape *B = tu_tape("hb", 0);
    tg_var x[2], p[2];
    tg_input_vec(B, "x", 2, x);
    tg_input_vec(B, "p", 2, p);
    tg_var y[1] = { tg_add(tg_add(tg_mul(x[0], tg_sin(p[0])), tg_mul(x[1], tg_cos(tg_mul(p[0], p[1])))),
                           p[1]) };
    tg_output_vec(B, "y", 1, y);
    for (int variant = 0; variant < 3; variant++) {
        tg_tape *L = tu_tape("h", 0), *R = tu_tape("h", 0);
        for (int k = 0; k < 2; k++) {
            tg_tape *t = k ? R : L;
            tg_var xs[20], xv[10], ps[2], ys[10];
            tg_input_vec(t, "xs", 10, xv);
            tg_input_vec(t, "p", 2, ps);
            for (int a = 0; a < 10; a++) {
                xs[2 * a] = xv[a];
                /* variant 1: x1 is the same value in every application */
                xs[2 * a + 1] = variant == 1 ? ps[1] : xv[(a + 1) % 10];
            }
            tg_var par[2] = { ps[0], variant == 2 ? tg_const(t, 0.75) : ps[1] };
            tg_map(t, B, 10, xs, par, ys);
            tg_output(t, "f", tg_sum(10, ys));
            TU_TAPE_OK(t);
        }
        TU_OK(tg_tape_optimize(L, TG_OPT_BASIC));
        same_values(L, R, 40 + (uint64_t)variant, "hoisted");
        size_t ix[16];
        cr_assert_eq(loops_of(L, ix), 1);
        tg_insn in;
        TU_OK(tg_tape_insn(L, ix[0], &in));
        const tg_tape *hb = tg_tape_body(L, in.body);
        cr_assert_eq(count_op(hb, TG_OP_SIN) + count_op(hb, TG_OP_COS), 0,
                     "variant %d: sin/cos of params stayed in the body", variant);
        cr_assert_eq(count_op(L, TG_OP_SIN), 1, "variant %d: sin(p0) computed once outside", variant);
        if (variant == 1)
            cr_assert_eq(tg_input_block_size(hb, 0), 1, "the uniform x slot is a param");
        if (variant == 2)
            cr_assert_eq(count_op(hb, TG_OP_CONST) + count_op(L, TG_OP_CONST) >= 1, 1);
        /* optimising again changes nothing */
        size_t n1 = tg_tape_size(L);
        TU_OK(tg_tape_optimize(L, TG_OPT_BASIC));
        cr_assert_eq(tg_tape_size(L), n1);
        /* the derivative tapes of the optimised tape agree with the original's */
        tg_tape *G1 = tg_gradient_tape(L, TG_ALL), *G2 = tg_gradient_tape(R, TG_ALL);
        cmp_tapes("gradient of the hoisted tape", G1, G2, 41, "hoisted");
        tg_tape_free(G1);
        tg_tape_free(G2);
        tg_tape_free(L);
        tg_tape_free(R);
    }
    tg_tape_free(B);
}

/* ------------------------------------------------------------- files */

/* Derivative tapes with loops (nested, optimised or not) go through a file
 * (format 3) unchanged: same disassembly, the same values bit for bit. */
Test(loops_dtape, derivative_tapes_through_files, .timeout = 120)
{
    char dir[128], path[192];
    snprintf(dir, sizeof dir, "/tmp/tg_loops_dtape_%ld", (long)getpid());
    mkdir(dir, 0700);
    snprintf(path, sizeof path, "%s/d.tape", dir);
    tu_rng r = { 17 };
    for (uint64_t seed = 600; seed < 606; seed++) {
        shape s = rand_shape(&r, seed % 2 == 0);
        tg_tape *B = rand_body(seed, s, (int)(seed % 3 == 0), false);
        tg_tape *L = make_outer(B, s, 3, false, true);
        tg_tape *D[4] = { tg_gradient_tape(L, TG_ALL), tg_hvp_tape(L, TG_ALL),
                          tg_jacobian_tape(L, TG_ALL), tg_gradient_tape(L, TG_ALL) };
        TU_OK(tg_tape_optimize(D[3], TG_OPT_MAX));
        for (int k = 0; k < 4; k++) {
            TU_TAPE_OK(D[k]);
            TU_OK(tg_tape_save(D[k], path));
            tg_tape *E = tg_tape_load(path);
            cr_assert(E != NULL);
            TU_TAPE_OK(E);
            char *d1 = tg_tape_disasm(D[k]), *d2 = tg_tape_disasm(E);
            cr_assert(d1 && d2 && strcmp(d1, d2) == 0, "seed %llu tape %d: disassembly differs "
                      "after a save and load", (unsigned long long)seed, k);
            free(d1);
            free(d2);
            same_values(E, D[k], seed, "loaded derivative tape");
            tg_tape_free(E);
            tg_tape_free(D[k]);
        }
        tg_tape_free(L);
        tg_tape_free(B);
    }
    unlink(path);
    rmdir(dir);
}
