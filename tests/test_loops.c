/* tests/test_loops.c -- loops kept in the tape (issue 11): tg_map and
 * tg_scan record one instruction over a body tape, and evaluate exactly as
 * the unrolled flat recording of the same computation.
 *
 * The oracle is the flat tape: every computation is written once as a C
 * recorder over tg_var arrays, used both to record the body and, inline,
 * to record the unrolled program; tg_eval of the looped tape must equal
 * tg_eval of the flat one bit for bit (NaN payloads aside) at random
 * points with specials (+-0, +-Inf, NaN).  Also: nesting, size-0 blocks,
 * shared bodies, the read API, the disassembly, tg_call of looped tapes,
 * argument errors and the clean refusals of the paths that do not handle
 * loops yet. */
#include "testutil.h"

/* ------------------------------------------------------------ recorders */

/* map body f: x[2], p[1] -> y[2] */
static void rec_f(const tg_var *x, const tg_var *p, tg_var *y)
{
    y[0] = tg_add(tg_mul(tg_sin(x[0]), p[0]), x[1]);
    y[1] = tg_sub(tg_mul(x[0], x[1]), tg_div(p[0], tg_add(x[1], 2.0)));
}

/* scan body s: carry[2], x[1], p[1] -> carry_next[2], y[1] */
static void rec_s(const tg_var *c, const tg_var *x, const tg_var *p, tg_var *cn, tg_var *y)
{
    cn[0] = tg_add(c[0], tg_mul(tg_mul(p[0], tg_cos(c[1])), x[0]));
    cn[1] = tg_sub(tg_mul(c[1], 0.5), tg_mul(c[0], x[0]));
    y[0] = tg_mul(c[0], c[1]);
}

static tg_tape *body_f(void)
{
    tg_tape *b = tu_tape("f", 0);
    tg_var x[2], p[1], y[2];
    tg_input_vec(b, "x", 2, x);
    tg_input_vec(b, "p", 1, p);
    rec_f(x, p, y);
    tg_output_vec(b, "y", 2, y);
    TU_TAPE_OK(b);
    return b;
}

static tg_tape *body_s(void)
{
    tg_tape *b = tu_tape("s", 0);
    tg_var c[2], x[1], p[1], cn[2], y[1];
    tg_input_vec(b, "c", 2, c);
    tg_input_vec(b, "x", 1, x);
    tg_input_vec(b, "p", 1, p);
    rec_s(c, x, p, cn, y);
    tg_output_vec(b, "cn", 2, cn);
    tg_output_vec(b, "y", 1, y);
    TU_TAPE_OK(b);
    return b;
}

/* ------------------------------------------------------------ comparison */

static double special(tu_rng *r)
{
    static const double sp[] = { 0.0, -0.0, INFINITY, -INFINITY, NAN, 1e-310, -1.0, 1.0 };
    if (tu_rng_below(r, 6) == 0)
        return sp[tu_rng_below(r, sizeof sp / sizeof *sp)];
    return tu_rng_range(r, -3.0, 3.0);
}

/* tg_eval of a and b agree bit for bit at npts random points; the batch
 * evaluation of a agrees with its pointwise one. */
static void same_values(const tg_tape *a, const tg_tape *b, int npts, uint64_t seed)
{
    size_t n = tg_num_inputs(a), m = tg_num_outputs(a);
    cr_assert_eq(n, tg_num_inputs(b));
    cr_assert_eq(m, tg_num_outputs(b));
    tu_rng r = { seed };
    double *X = calloc((size_t)npts * n + 1, sizeof *X), *Y = calloc((size_t)npts * m + 1, sizeof *Y);
    double *ya = calloc(m + 1, sizeof *ya), *yb = calloc(m + 1, sizeof *yb);
    cr_assert(X && Y && ya && yb);
    for (size_t k = 0; k < (size_t)npts * n; k++)
        X[k] = special(&r);
    for (int p = 0; p < npts; p++) {
        TU_OK(tg_eval(a, X + (size_t)p * n, ya));
        TU_OK(tg_eval(b, X + (size_t)p * n, yb));
        for (size_t j = 0; j < m; j++)
            cr_assert(tu_same_bits_nan(ya[j], yb[j]), "point %d output %zu: looped %.17g, flat %.17g",
                      p, j, ya[j], yb[j]);
    }
    TU_OK(tg_eval_batch(a, (size_t)npts, X, Y));
    for (int p = 0; p < npts; p++) {
        TU_OK(tg_eval(a, X + (size_t)p * n, ya));
        for (size_t j = 0; j < m; j++)
            cr_assert(tu_same_bits_nan(Y[(size_t)p * m + j], ya[j]), "batch point %d output %zu", p, j);
    }
    free(X);
    free(Y);
    free(ya);
    free(yb);
}

/* --------------------------------------------------------------- map */

static tg_tape *map_looped(const tg_tape *f, size_t count)
{
    tg_tape *t = tu_tape("m", 0);
    tg_var *xs = calloc(2 * count + 1, sizeof *xs), *ys = calloc(2 * count + 1, sizeof *ys), p;
    tg_input_vec(t, "xs", 2 * count, xs);
    p = tg_input(t, "p");
    tg_map(t, f, count, xs, &p, ys);
    tg_output_vec(t, "ys", 2 * count, ys);
    tg_output(t, "sum", tg_sum(2 * count, ys));
    TU_TAPE_OK(t);
    free(xs);
    free(ys);
    return t;
}

static tg_tape *map_flat(size_t count)
{
    tg_tape *t = tu_tape("m", 0);
    tg_var *xs = calloc(2 * count + 1, sizeof *xs), *ys = calloc(2 * count + 1, sizeof *ys), p;
    tg_input_vec(t, "xs", 2 * count, xs);
    p = tg_input(t, "p");
    for (size_t i = 0; i < count; i++)
        rec_f(xs + 2 * i, &p, ys + 2 * i);
    tg_output_vec(t, "ys", 2 * count, ys);
    tg_output(t, "sum", tg_sum(2 * count, ys));
    TU_TAPE_OK(t);
    free(xs);
    free(ys);
    return t;
}

Test(loops, map_equals_unrolled)
{
    tg_tape *f = body_f();
    const size_t counts[] = { 1, 2, 7, 50 };
    for (size_t c = 0; c < sizeof counts / sizeof *counts; c++) {
        tg_tape *a = map_looped(f, counts[c]), *b = map_flat(counts[c]);
        same_values(a, b, 37, 100 + c);
        /* one loop instruction: the tape grows with count*(nx+ny), not count*|body| */
        cr_expect_leq(tg_tape_size(a), 1 + 2 * counts[c] + 1 + 1 + 2 * counts[c] + 2 * counts[c]);
        cr_expect_eq(tg_tape_num_bodies(a), 1u);
        tg_tape_free(a);
        tg_tape_free(b);
    }
    tg_tape_free(f);
}

/* Large maps: many full chunks of applications, a partial last one (a
 * small remainder: narrower chunks; 16 or more: one more full chunk
 * overlapping the one before, as 80, 127, 1000, 20001), and
 * (count * |body| >= 65536) the OpenMP path; a map inside a map body. */
Test(loops, large_maps_equal_unrolled, .timeout = 120)
{
    tg_tape *f = body_f();
    const size_t counts[] = { 63, 64, 65, 79, 80, 127, 129, 1000, 20001 };
    for (size_t c = 0; c < sizeof counts / sizeof *counts; c++) {
        tg_tape *a = map_looped(f, counts[c]), *b = map_flat(counts[c]);
        same_values(a, b, counts[c] > 1000 ? 3 : 9, 600 + c);
        tg_tape_free(a);
        tg_tape_free(b);
    }
    /* a map whose body maps f over 70 rows (its body runs 70 wide) */
    tg_tape *inner = map_looped(f, 70);
    tg_tape *outer = tu_tape("outer", 0), *flat = tu_tape("outer", 0);
    {
        tg_tape *body = tu_tape("row", 0);
        tg_var x[140], p, ys[141];
        tg_input_vec(body, "x", 140, x);
        p = tg_input(body, "p");
        tg_var args[141];
        memcpy(args, x, sizeof x);
        args[140] = p;
        tg_call(body, inner, args, ys);
        tg_output(body, "s", ys[140]);
        TU_TAPE_OK(body);
        tg_var xs[3 * 140], q, y[3], yf[3], fx[3 * 140], fq;
        tg_input_vec(outer, "xs", 3 * 140, xs);
        q = tg_input(outer, "q");
        tg_map(outer, body, 3, xs, &q, y);
        tg_output_vec(outer, "y", 3, y);
        tg_input_vec(flat, "xs", 3 * 140, fx);
        fq = tg_input(flat, "q");
        for (int r = 0; r < 3; r++) {
            tg_var row[2 * 70], rows[2 * 70];
            for (int k = 0; k < 140; k++)
                row[k] = fx[r * 140 + k];
            for (int k = 0; k < 70; k++)
                rec_f(row + 2 * k, &fq, rows + 2 * k);
            yf[r] = tg_sum(140, rows);
        }
        tg_output_vec(flat, "y", 3, yf);
        TU_TAPE_OK(outer);
        TU_TAPE_OK(flat);
        tg_tape_free(body);
    }
    same_values(outer, flat, 5, 700);
    tg_tape_free(inner);
    tg_tape_free(outer);
    tg_tape_free(flat);
    tg_tape_free(f);
}

/* -------------------------------------------------------------- scan */

static tg_tape *scan_looped(const tg_tape *s, size_t steps)
{
    tg_tape *t = tu_tape("sc", 0);
    tg_var c0[2], xs[64], p, cout[2], ys[64];
    cr_assert(steps <= 64);
    tg_input_vec(t, "c0", 2, c0);
    tg_input_vec(t, "xs", steps, xs);
    p = tg_input(t, "p");
    tg_scan(t, s, steps, c0, xs, &p, cout, ys);
    tg_output_vec(t, "c", 2, cout);
    tg_output_vec(t, "ys", steps, ys);
    TU_TAPE_OK(t);
    return t;
}

static tg_tape *scan_flat(size_t steps)
{
    tg_tape *t = tu_tape("sc", 0);
    tg_var c[2], xs[64], p, ys[64];
    tg_input_vec(t, "c0", 2, c);
    tg_input_vec(t, "xs", steps, xs);
    p = tg_input(t, "p");
    for (size_t k = 0; k < steps; k++) {
        tg_var cn[2];
        rec_s(c, xs + k, &p, cn, ys + k);
        c[0] = cn[0];
        c[1] = cn[1];
    }
    tg_output_vec(t, "c", 2, c);
    tg_output_vec(t, "ys", steps, ys);
    TU_TAPE_OK(t);
    return t;
}

Test(loops, scan_equals_unrolled)
{
    tg_tape *s = body_s();
    const size_t steps[] = { 0, 1, 3, 64 };
    for (size_t c = 0; c < sizeof steps / sizeof *steps; c++) {
        tg_tape *a = scan_looped(s, steps[c]), *b = scan_flat(steps[c]);
        same_values(a, b, 29, 200 + c);
        tg_tape_free(a);
        tg_tape_free(b);
    }
    tg_tape_free(s);
}

/* ------------------------------------------------------------ nesting */

/* inner body g: x[1], p[1] -> y[1] */
static tg_var rec_g(tg_var x, tg_var p)
{
    tg_var e = tg_exp(tg_mul(x, p));        /* in sequence: the disassembly is checked */
    return tg_div(e, tg_add(tg_mul(x, x), 1.0));
}

static tg_tape *body_g(void)
{
    tg_tape *b = tu_tape("g", 0);
    tg_var x = tg_input(b, "x"), p = tg_input(b, "p");
    tg_output(b, "y", rec_g(x, p));
    TU_TAPE_OK(b);
    return b;
}

/* scan body h: carry[1], x[3], p[1] -> carry_next[1], y[3]; inside, a map
 * of g over the three x's (looped) or inline (flat). */
static void rec_h(tg_tape *t, const tg_tape *g, tg_var c, const tg_var *x, tg_var p, tg_var *cn,
                  tg_var *y)
{
    tg_var q = tg_add(p, tg_mul(c, 0.25));
    if (g) {
        tg_map(t, g, 3, x, &q, y);
    } else {
        for (int k = 0; k < 3; k++)
            y[k] = rec_g(x[k], q);
    }
    *cn = tg_add(tg_mul(c, 0.5), tg_sum(3, y));
}

static tg_tape *body_h(const tg_tape *g)
{
    tg_tape *b = tu_tape("h", 0);
    tg_var c = tg_input(b, "c"), x[3], p, cn, y[3];
    tg_input_vec(b, "x", 3, x);
    p = tg_input(b, "p");
    rec_h(b, g, c, x, p, &cn, y);
    tg_output(b, "cn", cn);
    tg_output_vec(b, "y", 3, y);
    TU_TAPE_OK(b);
    return b;
}

/* outer: a map of the scan-program over 2 independent rows (map body
 * "row" itself scans h, which maps g): three levels. */
static tg_tape *nested(bool looped, size_t steps)
{
    tg_tape *g = looped ? body_g() : NULL, *h = looped ? body_h(g) : NULL;
    tg_tape *row = tu_tape("row", 0);
    tg_var xr[3 * 8], pr, c0, cout, yr[3 * 8];
    cr_assert(steps <= 8);
    tg_input_vec(row, "x", 3 * steps, xr);
    pr = tg_input(row, "p");
    c0 = tg_mul(pr, 2.0);
    if (looped) {
        tg_scan(row, h, steps, &c0, xr, &pr, &cout, yr);
    } else {
        tg_var c = c0;
        for (size_t k = 0; k < steps; k++)
            rec_h(row, NULL, c, xr + 3 * k, pr, &c, yr + 3 * k);
        cout = c;
    }
    tg_output(row, "y", tg_add(cout, tg_sum(3 * steps, yr)));
    TU_TAPE_OK(row);
    tg_tape *t = tu_tape("outer", 0);
    tg_var xs[2 * 3 * 8], p, ys[2];
    tg_input_vec(t, "xs", 2 * 3 * steps, xs);
    p = tg_input(t, "p");
    if (looped) {
        tg_map(t, row, 2, xs, &p, ys);
    } else {
        for (int i = 0; i < 2; i++) {
            tg_var args[3 * 8 + 1];
            for (size_t k = 0; k < 3 * steps; k++)
                args[k] = xs[(size_t)i * 3 * steps + k];
            args[3 * steps] = p;
            tg_call(t, row, args, &ys[i]);
        }
    }
    tg_output_vec(t, "ys", 2, ys);
    TU_TAPE_OK(t);
    tg_tape_free(g);
    tg_tape_free(h);
    tg_tape_free(row);
    return t;
}

Test(loops, nested_three_levels_equal_unrolled)
{
    for (size_t steps = 0; steps <= 5; steps += 5) {
        tg_tape *a = nested(true, steps), *b = nested(false, steps);
        if (steps) {
            const tg_tape *row = tg_tape_body(a, 0);
            cr_assert(row != NULL);
            cr_expect_eq(tg_tape_num_bodies(row), 1u);
            cr_expect_eq(tg_tape_num_bodies(tg_tape_body(row, 0)), 1u);
        }
        same_values(a, b, 23, 300 + steps);
        tg_tape_free(a);
        tg_tape_free(b);
    }
}

/* --------------------------------------------------------- size 0 blocks */

Test(loops, empty_blocks)
{
    /* map body with no x: y = p0 * p1 (params only), ny = 1 */
    tg_tape *b = tu_tape("k", 0);
    tg_var p[2];
    tg_input_vec(b, "x", 0, NULL);
    tg_input_vec(b, "p", 2, p);
    tg_output(b, "y", tg_mul(p[0], p[1]));
    /* map body with no params and no outputs */
    tg_tape *z = tu_tape("z", 0);
    tg_var zx = tg_input(z, "x");
    (void)zx;
    tg_input_vec(z, "p", 0, NULL);
    tg_output_vec(z, "y", 0, NULL);
    /* scan body without carry: a map in disguise; and one without x or y */
    tg_tape *s = tu_tape("s0", 0);
    tg_input_vec(s, "c", 0, NULL);
    tg_var sx = tg_input(s, "x"), sp = tg_input(s, "p");
    tg_output_vec(s, "cn", 0, NULL);
    tg_output(s, "y", tg_add(sx, sp));
    tg_tape *s2 = tu_tape("s2", 0);
    tg_var c = tg_input(s2, "c");
    tg_input_vec(s2, "x", 0, NULL);
    tg_input_vec(s2, "p", 0, NULL);
    tg_output(s2, "cn", tg_mul(c, c));
    tg_output_vec(s2, "y", 0, NULL);

    tg_tape *t = tu_tape("e", 0);
    tg_var in[3], y3[3], sy[2], cout, none[1];
    tg_input_vec(t, "in", 3, in);
    tg_map(t, b, 3, NULL, in, y3);              /* xs NULL: nx == 0 */
    tg_map(t, z, 2, in, NULL, NULL);            /* ys NULL: ny == 0 */
    tg_map(t, b, 0, NULL, in, none);            /* count 0 */
    tg_scan(t, s, 2, NULL, in + 1, in, NULL, sy);
    tg_scan(t, s2, 3, &in[2], NULL, NULL, &cout, NULL);
    tg_var c0;
    tg_scan(t, s2, 0, &in[0], NULL, NULL, &c0, NULL);  /* steps 0: carry_out = carry_in */
    tg_output_vec(t, "y3", 3, y3);
    tg_output_vec(t, "sy", 2, sy);
    tg_output(t, "c", cout);
    tg_output(t, "c0", c0);
    TU_TAPE_OK(t);
    cr_expect_eq(tg_tape_num_bodies(t), 4u, "b, z, s, s2 stored once each");
    double x[3] = { 1.5, -2.0, 3.0 }, y[7];
    TU_OK(tg_eval(t, x, y));
    double pp = 1.5 * -2.0, c2 = 3.0 * 3.0, c3 = c2 * c2, c4 = c3 * c3;
    cr_expect(y[0] == pp && y[1] == pp && y[2] == pp);
    cr_expect(y[3] == -2.0 + 1.5 && y[4] == 3.0 + 1.5);
    cr_expect(y[5] == c4, "scan of c*c three times: %g", y[5]);
    cr_expect(tu_same_bits(y[6], 1.5));
    tg_tape_free(b);
    tg_tape_free(z);
    tg_tape_free(s);
    tg_tape_free(s2);
    tg_tape_free(t);
}

/* ------------------------------------------------ sharing, read API, text */

Test(loops, bodies_are_copied_and_shared)
{
    tg_tape *f = body_f(), *f2 = body_f(), *s = body_s();
    tg_tape *t = tu_tape("sh", 0);
    tg_var x[4], p = tg_const(t, 0.5), y[4], c[2], cy[2];
    tg_input_vec(t, "x", 4, x);
    tg_map(t, f, 2, x, &p, y);
    tg_map(t, f2, 2, y, &p, y);                 /* an identical body: stored once */
    tg_scan(t, s, 2, x, x + 2, &p, c, cy);
    cr_expect_eq(tg_tape_num_bodies(t), 2u);
    tg_output_vec(t, "y", 4, y);
    tg_output_vec(t, "c", 2, c);
    tg_output_vec(t, "cy", 2, cy);
    TU_TAPE_OK(t);
    double xv[4] = { 0.1, 0.2, -0.3, 0.4 }, before[8], after[8];
    TU_OK(tg_eval(t, xv, before));
    /* the bodies were copied: freeing or extending them changes nothing */
    tg_output(f, "extra", tg_input(f, "more"));
    tg_tape_free(f2);
    tg_tape_free(s);
    TU_OK(tg_eval(t, xv, after));
    for (int j = 0; j < 8; j++)
        cr_expect(tu_same_bits(before[j], after[j]));
    tg_tape_free(f);
    tg_tape_free(t);
}

Test(loops, read_api)
{
    tg_tape *f = body_f();
    tg_tape *t = tu_tape("r", 0);
    tg_var x[6], p = tg_input(t, "p"), y[6];
    tg_input_vec(t, "x", 6, x);
    tg_map(t, f, 3, x, &p, y);
    tg_output_vec(t, "y", 6, y);
    TU_TAPE_OK(t);
    uint32_t loop = (uint32_t)(y[0].id - 1);
    tg_insn in;
    TU_OK(tg_tape_insn(t, loop, &in));
    cr_expect_eq(in.op, TG_OP_MAP);
    cr_expect_eq(in.noperands, 7u);
    cr_expect_eq(in.operand[0], x[0].id);
    cr_expect_eq(in.operand[2], x[2].id);
    cr_expect_eq(in.body, 0u);
    uint32_t ops[7];
    TU_OK(tg_tape_insn_operands(t, loop, 0, 7, ops));
    for (int k = 0; k < 6; k++)
        cr_expect_eq(ops[k], x[k].id);
    cr_expect_eq(ops[6], p.id);
    cr_expect_eq(tg_tape_insn_operands(t, loop, 5, 3, ops), TG_ERR_ARG);
    for (int k = 0; k < 6; k++) {
        TU_OK(tg_tape_insn(t, y[k].id, &in));
        cr_expect_eq(in.op, TG_OP_XOUT);
        cr_expect_eq(in.noperands, 1u);
        cr_expect_eq(in.operand[0], loop);
        cr_expect_eq(in.input, (uint32_t)k);
    }
    cr_expect(tg_op_flags(TG_OP_MAP) & TG_OPF_MULTI);
    cr_expect(tg_op_flags(TG_OP_XOUT) & TG_OPF_EXTENDED);
    cr_expect_str_eq(tg_op_name(TG_OP_SCAN), "scan");
    const tg_tape *b = tg_tape_body(t, 0);
    cr_assert(b != NULL);
    cr_expect_eq(tg_tape_size(b), tg_tape_size(f));
    cr_expect(tg_tape_body(t, 1) == NULL);
    tg_tape_free(f);
    tg_tape_free(t);
}

Test(loops, disassembly)
{
    tg_tape *g = body_g();
    tg_tape *s = tu_tape("acc", 0);
    tg_var c = tg_input(s, "c"), x = tg_input(s, "x");
    tg_input_vec(s, "p", 0, NULL);
    tg_output(s, "cn", tg_add(c, x));
    tg_output_vec(s, "y", 0, NULL);
    tg_tape *t = tu_tape("d", 0);
    tg_var x2[2], p = tg_input(t, "p"), y[2], cout;
    tg_input_vec(t, "x", 2, x2);
    tg_map(t, g, 2, x2, &p, y);
    tg_scan(t, s, 2, &p, y, NULL, &cout, NULL);
    tg_output(t, "out", cout);
    TU_TAPE_OK(t);
    const char *want =
        "tape \"d\": 3 inputs, 1 outputs, 8 instructions\n"
        "in  p[1]\n"
        "in  x[2]\n"
        "out out[1]\n"
        "%0 = input p[0]\n"
        "%1 = input x[0]\n"
        "%2 = input x[1]\n"
        "%3 = map body0 count=2 xs=[%1 %2] params=[%0]\n"
        "%4 = xout %3 0\n"
        "%5 = xout %3 1\n"
        "%6 = scan body1 steps=2 carry=[%0] xs=[%4 %5] params=[]\n"
        "%7 = xout %6 0\n"
        "out[0] = %7\n"
        "body0:\n"
        "  tape \"g\": 2 inputs, 1 outputs, 8 instructions\n"
        "  in  x[1]\n"
        "  in  p[1]\n"
        "  out y[1]\n"
        "  %0 = input x[0]\n"
        "  %1 = input p[0]\n"
        "  %2 = mul %0 %1\n"
        "  %3 = exp %2\n"
        "  %4 = mul %0 %0\n"
        "  %5 = const 1\n"
        "  %6 = add %4 %5\n"
        "  %7 = div %3 %6\n"
        "  y[0] = %7\n"
        "body1:\n"
        "  tape \"acc\": 2 inputs, 1 outputs, 3 instructions\n"
        "  in  c[1]\n"
        "  in  x[1]\n"
        "  in  p[0]\n"
        "  out cn[1]\n"
        "  out y[0]\n"
        "  %0 = input c[0]\n"
        "  %1 = input x[0]\n"
        "  %2 = add %0 %1\n"
        "  cn[0] = %2\n";
    char *d = tg_tape_disasm(t);
    cr_assert(d != NULL);
    cr_expect_str_eq(d, want);
    free(d);
    tg_tape_free(g);
    tg_tape_free(s);
    tg_tape_free(t);
}

/* tg_call of a looped tape replays the loop (not its unrolling). */
Test(loops, call_replays_loops)
{
    tg_tape *f = body_f();
    tg_tape *a = map_looped(f, 5), *b = map_flat(5);
    tg_tape *t = tu_tape("m", 0);
    tg_var xs[10], p, ys[11];
    tg_input_vec(t, "xs", 10, xs);
    p = tg_input(t, "p");
    tg_var args[11];
    for (int k = 0; k < 10; k++)
        args[k] = xs[k];
    args[10] = p;
    tg_call(t, a, args, ys);
    tg_output_vec(t, "ys", 10, ys);
    tg_output(t, "sum", ys[10]);
    TU_TAPE_OK(t);
    cr_expect_eq(tg_tape_num_bodies(t), 1u);
    same_values(t, b, 17, 400);
    tg_tape_free(f);
    tg_tape_free(a);
    tg_tape_free(b);
    tg_tape_free(t);
}

/* ------------------------------------------------------------ optimise */

/* Optimising a looped tape at every level keeps every value bit for bit,
 * is idempotent, removes dead loops and optimises the bodies. */
Test(loops, optimize_keeps_values)
{
    static const tg_opt_level levels[] = { TG_OPT_NONE, TG_OPT_BASIC, TG_OPT_MEDIUM,
                                           TG_OPT_HIGH, TG_OPT_MAX };
    for (size_t l = 0; l < sizeof levels / sizeof *levels; l++) {
        tg_tape *ref = nested(true, 5), *t = nested(true, 5), *flat = nested(false, 5);
        TU_OK(tg_tape_optimize(t, levels[l]));
        same_values(t, ref, 11, 500 + l);
        same_values(t, flat, 11, 510 + l);
        char *d1 = tg_tape_disasm(t);
        TU_OK(tg_tape_optimize(t, levels[l]));
        char *d2 = tg_tape_disasm(t);
        cr_assert(d1 && d2);
        cr_expect_str_eq(d1, d2, "optimising twice differs from once at level %d", (int)levels[l]);
        free(d1);
        free(d2);
        tg_tape_free(ref);
        tg_tape_free(t);
        tg_tape_free(flat);
    }
}

Test(loops, optimize_removes_dead_loops_and_work_in_bodies)
{
    /* body with dead and foldable work: y = x*1 + (p - p*0) */
    tg_tape *b = tu_tape("b", TG_NO_FOLD | TG_NO_CSE);
    tg_var x = tg_input(b, "x"), p = tg_input(b, "p");
    tg_var dead = tg_sin(tg_mul(x, x));
    (void)dead;
    tg_output(b, "y", tg_add(tg_mul(x, 1.0), tg_sub(p, tg_mul(p, 0.0))));
    TU_TAPE_OK(b);
    tg_tape *t = tu_tape("o", 0);
    tg_var xs[4], q = tg_input(t, "q"), ys[4], zs[4];
    tg_input_vec(t, "x", 4, xs);
    tg_map(t, b, 4, xs, &q, ys);
    tg_tape *f = body_f();
    tg_var xz[8];
    for (int k = 0; k < 8; k++)
        xz[k] = xs[k % 4];
    tg_map(t, f, 4, xz, &q, xz);        /* dead: no output uses it */
    (void)zs;
    tg_output_vec(t, "y", 4, ys);
    TU_TAPE_OK(t);
    tg_tape *ref = tu_tape("o", 0);
    {
        tg_var rx[4], rq = tg_input(ref, "q"), ry[4];
        tg_input_vec(ref, "x", 4, rx);
        tg_map(ref, b, 4, rx, &rq, ry);
        tg_output_vec(ref, "y", 4, ry);
    }
    cr_expect_eq(tg_tape_num_bodies(t), 2u);
    size_t before = tg_tape_size(tg_tape_body(t, 0));
    TU_OK(tg_tape_optimize(t, TG_OPT_BASIC));
    cr_expect_eq(tg_tape_num_bodies(t), 1u, "the dead map and its body are gone");
    cr_expect_lt(tg_tape_size(tg_tape_body(t, 0)), before, "the body was optimised");
    cr_expect_lt(tg_tape_size(t), 1 + 4 + 1 + 4 + 1 + 8, "dead loop removed");
    same_values(t, ref, 19, 520);
    tg_tape_free(b);
    tg_tape_free(f);
    tg_tape_free(t);
    tg_tape_free(ref);
}

/* ------------------------------------------------------------- errors */

static void expect_error(tg_tape *t, tg_status st, const char *needle)
{
    cr_expect_eq(tg_tape_status(t), st, "status %d (%s), want %d", (int)tg_tape_status(t),
                 tg_tape_error(t), (int)st);
    cr_expect(strstr(tg_tape_error(t), needle) != NULL, "message \"%s\" lacks \"%s\"",
              tg_tape_error(t), needle);
}

Test(loops, recording_errors)
{
    tg_tape *f = body_f(), *s = body_s();
    tg_var y[4];
    {   /* NULL body */
        tg_tape *t = tu_tape("e", 0);
        tg_var x[2];
        tg_input_vec(t, "x", 2, x);
        tg_map(t, NULL, 1, x, x, y);
        expect_error(t, TG_ERR_ARG, "NULL body");
        tg_tape_free(t);
    }
    {   /* a scan body given to map: wrong block structure */
        tg_tape *t = tu_tape("e", 0);
        tg_var x[4];
        tg_input_vec(t, "x", 4, x);
        tg_map(t, s, 1, x, x, y);
        expect_error(t, TG_ERR_SHAPE, "input and");
        tg_tape_free(t);
    }
    {   /* a map body given to scan */
        tg_tape *t = tu_tape("e", 0);
        tg_var x[4], c[2];
        tg_input_vec(t, "x", 4, x);
        tg_scan(t, f, 1, x, x, x, c, y);
        expect_error(t, TG_ERR_SHAPE, "scan body");
        tg_tape_free(t);
    }
    {   /* carry sizes differ */
        tg_tape *b = tu_tape("bad", 0);
        tg_var c[2], x, p;
        tg_input_vec(b, "c", 2, c);
        x = tg_input(b, "x");
        p = tg_input(b, "p");
        tg_output(b, "cn", tg_add(c[0], tg_mul(x, p)));
        tg_output(b, "y", c[1]);
        tg_tape *t = tu_tape("e", 0);
        tg_var v[4], co[2];
        tg_input_vec(t, "v", 4, v);
        tg_scan(t, b, 1, v, v, v, co, y);
        expect_error(t, TG_ERR_SHAPE, "carry");
        tg_tape_free(b);
        tg_tape_free(t);
    }
    {   /* body in the error state */
        tg_tape *b = body_f();
        tg_input(b, "x");                       /* duplicate block name */
        cr_assert(tg_tape_status(b) != TG_OK);
        tg_tape *t = tu_tape("e", 0);
        tg_var x[3];
        tg_input_vec(t, "x", 3, x);
        tg_map(t, b, 1, x, x + 2, y);
        expect_error(t, tg_tape_status(b), "error state");
        tg_tape_free(b);
        tg_tape_free(t);
    }
    {   /* values of another tape, NULL arrays, body == t */
        tg_tape *t = tu_tape("e", 0), *o = tu_tape("o", 0);
        tg_var x[2], q = tg_input(o, "q");
        tg_input_vec(t, "x", 2, x);
        tg_var bad[2] = { x[0], q };
        tg_map(t, f, 1, bad, x, y);
        expect_error(t, TG_ERR_ARG, "xs[1]");
        tg_tape_free(t);
        t = tu_tape("e", 0);
        tg_input_vec(t, "x", 2, x);
        tg_map(t, f, 1, NULL, x, y);
        expect_error(t, TG_ERR_ARG, "'xs' is NULL");
        tg_tape_free(t);
        t = tu_tape("e", 0);
        tg_input_vec(t, "x", 2, x);
        tg_map(t, f, 1, x, x, NULL);
        expect_error(t, TG_ERR_ARG, "'ys' is NULL");
        tg_tape_free(t);
        t = tu_tape("e", 0);
        tg_input_vec(t, "x", 2, x);
        tg_map(t, t, 1, x, x, y);
        expect_error(t, TG_ERR_ARG, "own body");
        tg_tape_free(t);
        tg_tape_free(o);
    }
    {   /* a loop instruction is not a value; xout is not recordable by hand */
        tg_tape *t = tu_tape("e", 0);
        tg_var x[2], p = tg_input(t, "p"), yy[2];
        tg_input_vec(t, "x", 2, x);
        tg_map(t, f, 1, x, &p, yy);
        TU_TAPE_OK(t);
        tg_var loop = { t, yy[0].id - 1 };
        tg_var r = tg_sin(loop);
        cr_expect_eq(r.id, TG_NIL);
        expect_error(t, TG_ERR_ARG, "not a value");
        tg_tape_free(t);
        t = tu_tape("e", 0);
        tg_var a = tg_input(t, "a");
        tg_op1(TG_OP_XOUT, tg__opnd_var(a));
        expect_error(t, TG_ERR_ARG, "extended");
        tg_tape_free(t);
    }
    {   /* at most 2^32 - 1 applications, even of an empty body */
        tg_tape *e = tu_tape("empty", 0);
        tg_input_vec(e, "x", 0, NULL);
        tg_input_vec(e, "p", 0, NULL);
        tg_output_vec(e, "y", 0, NULL);
        tg_tape *t = tu_tape("e", 0);
        tg_map(t, e, (size_t)UINT32_MAX, NULL, NULL, NULL);
        TU_TAPE_OK(t);
        tg_map(t, e, (size_t)UINT32_MAX + 1, NULL, NULL, NULL);
        expect_error(t, TG_ERR_LIMIT, "applications");
        tg_tape_free(t);
        tg_tape_free(e);
    }
    {   /* errors are sticky: a later loop records nothing */
        tg_tape *t = tu_tape("e", 0);
        tg_var x[2];
        tg_input_vec(t, "x", 2, x);
        tg_map(t, NULL, 1, x, x, y);
        size_t n = tg_tape_size(t);
        tg_map(t, f, 1, x, x, y);
        cr_expect_eq(tg_tape_size(t), n);
        cr_expect_eq(y[1].id, TG_NIL);
        tg_tape_free(t);
    }
    tg_tape_free(f);
    tg_tape_free(s);
}

/* The paths that do not handle loops yet refuse them cleanly. */
Test(loops, unsupported_paths_refuse)
{
    tg_tape *f = body_f();
    tg_tape *t = map_looped(f, 3);
    tg_tape *sc = tu_tape("one", 0);
    {
        tg_var x[6], p = tg_input(sc, "p"), y[6];
        tg_input_vec(sc, "x", 6, x);
        tg_map(sc, f, 3, x, &p, y);
        tg_output(sc, "s", tg_sum(6, y));
    }
    size_t n = tg_num_inputs(sc);
    double x[8] = { 0 }, g[8], H[64], J[8 * 8];
    tg_status st;
#define REFUSED(call)                                                                   \
    do {                                                                                \
        st = (call);                                                                    \
        cr_expect_eq(st, TG_ERR_UNSUPPORTED, "%s: %d", #call, (int)st);                 \
        cr_expect(strstr(tg_last_error(), "does not support loops yet") != NULL,        \
                  "%s: %s", #call, tg_last_error());                                    \
    } while (0)
    /* the numeric derivatives handle loops (tests/test_loops_ad.c checks them);
     * files take loops; C, Rust and native kernels: tests/test_loops_codegen.c;
     * derivative tapes and the optimiser: tests/test_loops_dtape.c */
    TU_OK(tg_gradient(sc, x, g));
    TU_OK(tg_jacobian(sc, x, J));
    TU_OK(tg_hessian(sc, x, H));
    TU_OK(tg_hvp(sc, x, x, g));
    TU_OK(tg_jvp(sc, x, x, g));
    TU_OK(tg_vjp(sc, x, x, g));
    TU_OK(tg_gradient_wrt(sc, 0, x, g));
    TU_OK(tg_gradient_batch(sc, 1, x, g));
    (void)st;
    /* and so do the sparse calls (tests/test_loops_sparse.c) */
    tg_sparsity *sp = tg_jacobian_sparsity(sc, TG_ALL);
    cr_expect_eq(tg_sparsity_status(sp), TG_OK, "%s", tg_sparsity_error(sp));
    tg_sparsity_free(sp);
    /* the tape is untouched and still evaluates */
    TU_TAPE_OK(t);
    double y[1];
    TU_OK(tg_eval(sc, x, y));
    tg_workspace *w = tg_workspace_new(sc);
    cr_assert(w != NULL);
    TU_OK(tg_eval_ws(sc, w, x, y));
    tg_workspace_free(w);
    (void)n;
    tg_tape_free(sc);
    tg_tape_free(t);
    tg_tape_free(f);
}
