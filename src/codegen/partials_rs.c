/* src/codegen/partials_rs.c -- the Rust versions of the partial-derivative
 * ops (tg__powdx, tg__powdy, tg__hypotdx, tg__atan2dx in src/tape/mathx.h),
 * which derivative tapes record and generated kernels must compute the same
 * way.  Each helper is emitted once per crate, when a kernel uses it. */
#include "codegen/cg.h"

/* "a.method(b)" with std, "libm::name(a, b)" (f: its f32 twin) without. */
static void
call2(tape_sb *sb, const cg_opts *o, const char *method, const char *libm, const char *a,
      const char *b)
{
    if (o->no_std)
        tape_sb_printf(sb, "libm::%s%s(%s, %s)", libm, o->f32 ? "f" : "", a, b);
    else
        tape_sb_printf(sb, "%s.%s(%s)", a, method, b);
}

static void
call1(tape_sb *sb, const cg_opts *o, const char *method, const char *libm, const char *a)
{
    if (o->no_std)
        tape_sb_printf(sb, "libm::%s%s(%s)", libm, o->f32 ? "f" : "", a);
    else
        tape_sb_printf(sb, "%s.%s()", a, method);
}

unsigned
cg_partial_needs(unsigned needs, const cg_opts *o)
{
    if (needs & (CG_NEED_POWDX | CG_NEED_POWDY))
        needs |= CG_NEED_AZMUL;
    if (needs & CG_NEED_ATAN2DX)
        needs |= CG_NEED_HYPOTDX;
    if (o->no_std && (needs & (CG_NEED_POWDX | CG_NEED_POWDY | CG_NEED_HYPOTDX)))
        needs |= CG_NEED_LIBM;
    return needs;
}

void
cg_put_partial_helpers(tape_sb *sb, unsigned needs, const cg_opts *o)
{
    const char *T = o->f32 ? "f32" : "f64";
    /* the scaling of tg__hypotdx: 2^-600 / 2^600 in f64, 2^-60 / 2^60 in f32 */
    const char *lo = o->f32 ? "8.6736174e-19" : "2.409919865102884e-181";
    const char *hi = o->f32 ? "1.1529215e18" : "4.149515568880993e180";
    if (needs & CG_NEED_POWDX) {
        tape_sb_printf(sb, "\n/// d pow(x, y) / dx = y x^(y-1) (an absolute zero at y = 0).\n"
                       "#[inline(always)]\nfn tg_powdx(x: %s, y: %s) -> %s {\n    tg_azmul(y, ", T, T, T);
        call2(sb, o, "powf", "pow", "x", "y - 1.0");
        tape_sb_printf(sb, ")\n}\n");
    }
    if (needs & CG_NEED_POWDY) {
        tape_sb_printf(sb, "\n/// d pow(x, y) / dy = x^y log x (an absolute zero where x^y = 0).\n"
                       "#[inline(always)]\nfn tg_powdy(x: %s, y: %s) -> %s {\n    tg_azmul(", T, T, T);
        call2(sb, o, "powf", "pow", "x", "y");
        tape_sb_printf(sb, ", ");
        call1(sb, o, "ln", "log", "x");
        tape_sb_printf(sb, ")\n}\n");
    }
    if (needs & CG_NEED_HYPOTDX) {
        tape_sb_printf(sb, "\n/// d hypot(x, y) / dx = x / hypot(x, y), 0 at the origin; subnormal and\n"
                       "/// huge hypots are scaled by a power of two first.\n"
                       "#[inline(always)]\nfn tg_hypotdx(x: %s, y: %s) -> %s {\n    let h = ", T, T, T);
        call2(sb, o, "hypot", "hypot", "x", "y");
        tape_sb_printf(sb, ";\n    if !(h > 0.0) {\n        return 0.0;\n    }\n"
                       "    let s = if h < %s { %s } else if h > %s { %s } else { 1.0 };\n"
                       "    let xs = x * s;\n    let ys = y * s;\n    xs / ", lo, hi, hi, lo);
        call2(sb, o, "hypot", "hypot", "xs", "ys");
        tape_sb_printf(sb, "\n}\n");
    }
    if (needs & CG_NEED_ATAN2DX) {
        tape_sb_printf(sb, "\n/// d atan2(x, y) / dx = y / (x^2 + y^2), 0 where hypot(x, y) is 0 or Inf.\n"
                       "#[inline(always)]\nfn tg_atan2dx(x: %s, y: %s) -> %s {\n    let h = ", T, T, T);
        call2(sb, o, "hypot", "hypot", "x", "y");
        tape_sb_printf(sb, ";\n    if h > 0.0 && h < %s::INFINITY {\n        tg_hypotdx(y, x) / h\n"
                       "    } else {\n        0.0\n    }\n}\n", T);
    }
}
