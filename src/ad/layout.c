/* src/ad/layout.c -- where each sweep kind keeps its arrays in a workspace
 * (see layout.h).  Every array of a kind is placed here and nowhere else. */
#include "ad/layout.h"

enum { L8 = TG_LANES };

/* The loop scratch of a kind running sweeps (k1, L1) and (k2, L2). */
static size_t
xneed(const tg_tape *t, int k1, size_t L1, int k2, size_t L2)
{
    if (!t->nxr)
        return 0;
    size_t a = ad_x_need(t, k1, L1), b = ad_x_need(t, k2, L2);
    return a > b ? a : b;
}

ad_eval_layout
ad_layout_eval(const tg_tape *t)
{
    ad_eval_layout l = { 0 };
    l.v = ad_place(&l.size, ad_values_len(t, 1));
    return l;
}

ad_reverse_layout
ad_layout_reverse(const tg_tape *t)
{
    size_t n = t->n;
    ad_reverse_layout l = { 0 };
    l.v = ad_place(&l.size, ad_values_len(t, 1));
    l.bar = ad_place(&l.size, n);
    l.pa = ad_place(&l.size, n);
    l.pb = ad_place(&l.size, n);
    l.ta = ad_place(&l.size, ad_u32s(n));
    l.tb = ad_place(&l.size, ad_u32s(n));
    l.xn = xneed(t, AD_X_REVERSE, 1, AD_X_REVERSE, 1);
    l.x = ad_place(&l.size, l.xn);
    return l;
}

ad_jvp_layout
ad_layout_jvp(const tg_tape *t)
{
    ad_jvp_layout l = { 0 };
    l.v = ad_place(&l.size, ad_values_len(t, 1));
    l.vd = ad_place(&l.size, t->n);
    l.xn = xneed(t, AD_X_TANGENT, 1, AD_X_TANGENT, 1);
    l.x = ad_place(&l.size, l.xn);
    return l;
}

ad_hvp_layout
ad_layout_hvp(const tg_tape *t)
{
    ad_hvp_layout l = { 0 };
    l.v = ad_place(&l.size, ad_values_len(t, 1));
    l.vd = ad_place(&l.size, t->n);
    l.w = ad_place(&l.size, t->n);
    l.wd = ad_place(&l.size, t->n);
    l.xn = xneed(t, AD_X_TANGENT, 1, AD_X_SECOND, 1);
    l.x = ad_place(&l.size, l.xn);
    return l;
}

ad_hessian_layout
ad_layout_hessian(const tg_tape *t)
{
    ad_hessian_layout l = { 0 };
    l.first = ad_layout_reverse(t);
    l.size = l.first.size;
    l.vd = ad_place(&l.size, L8 * (size_t)t->n);
    l.wd = ad_place(&l.size, L8 * (size_t)t->n);
    /* first order, then 8-lane tangents and second order */
    size_t a = xneed(t, AD_X_SECOND, L8, AD_X_REVERSE, 1);
    size_t b = xneed(t, AD_X_TANGENT, L8, AD_X_TANGENT, L8);
    l.xn = a > b ? a : b;
    l.x = ad_place(&l.size, l.xn);
    return l;
}

ad_jacobian_layout
ad_layout_jacobian(const tg_tape *t)
{
    ad_jacobian_layout l = { 0 };
    l.v = ad_place(&l.size, ad_values_len(t, 1));
    l.lanes = ad_place(&l.size, L8 * (size_t)t->n);
    l.xn = xneed(t, AD_X_TANGENT, L8, AD_X_REVERSE, L8);
    l.x = ad_place(&l.size, l.xn);
    return l;
}

ad_batch_layout
ad_layout_batch(const tg_tape *t)
{
    ad_batch_layout l = { 0 };
    l.v = ad_place(&l.size, ad_values_len(t, L8));
    l.bar = ad_place(&l.size, L8 * (size_t)t->n);
    l.xn = xneed(t, AD_X_REVERSE, 1, AD_X_REVERSE, 1);
    l.x = ad_place(&l.size, l.xn);
    return l;
}

ad_seeded_layout
ad_layout_seeded(const tg_tape *t)
{
    ad_seeded_layout l = { 0 };
    l.v = ad_place(&l.size, ad_values_len(t, 1));
    l.lanes = ad_place(&l.size, L8 * (size_t)t->n);
    l.seed = ad_place(&l.size, L8 * (size_t)t->nin);
    /* tangent sweeps, or adjoint ones for a row-coloured sparse Jacobian */
    l.xn = xneed(t, AD_X_TANGENT, L8, AD_X_REVERSE, L8);
    l.x = ad_place(&l.size, l.xn);
    return l;
}

ad_hvp_wrt_layout
ad_layout_hvp_wrt(const tg_tape *t)
{
    ad_hvp_wrt_layout l = { 0 };
    l.hvp = ad_layout_hvp(t);
    l.size = l.hvp.size;
    l.seed = ad_place(&l.size, t->nin);
    return l;
}
