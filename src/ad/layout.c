/* src/ad/layout.c -- where each sweep kind keeps its arrays in a workspace
 * (see layout.h).  Every array of a kind is placed here and nowhere else. */
#include "ad/layout.h"

enum { L8 = TG_LANES };

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
    return l;
}

ad_jvp_layout
ad_layout_jvp(const tg_tape *t)
{
    ad_jvp_layout l = { 0 };
    l.v = ad_place(&l.size, ad_values_len(t, 1));
    l.vd = ad_place(&l.size, t->n);
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
    return l;
}

ad_jacobian_layout
ad_layout_jacobian(const tg_tape *t)
{
    ad_jacobian_layout l = { 0 };
    l.v = ad_place(&l.size, ad_values_len(t, 1));
    l.lanes = ad_place(&l.size, L8 * (size_t)t->n);
    return l;
}

ad_batch_layout
ad_layout_batch(const tg_tape *t)
{
    ad_batch_layout l = { 0 };
    l.v = ad_place(&l.size, ad_values_len(t, L8));
    l.bar = ad_place(&l.size, L8 * (size_t)t->n);
    return l;
}

ad_seeded_layout
ad_layout_seeded(const tg_tape *t)
{
    ad_seeded_layout l = { 0 };
    l.v = ad_place(&l.size, ad_values_len(t, 1));
    l.lanes = ad_place(&l.size, L8 * (size_t)t->n);
    l.seed = ad_place(&l.size, L8 * (size_t)t->nin);
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
