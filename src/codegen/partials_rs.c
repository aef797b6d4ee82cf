/* src/codegen/partials_rs.c -- the Rust versions of the partial-derivative
 * ops (mathx_powdx, mathx_powdy, mathx_hypotdx, mathx_atan2dx in src/tape/mathx.h),
 * which derivative tapes record and generated kernels must compute the same
 * way.  Each helper is emitted once per crate, when a kernel uses it.  The
 * helpers compute in f64 also in an f32 crate (arguments widened, the
 * result rounded once): in f32, y - 1 or a scaled hypot would round to
 * other numbers (pow(-1, 2^52 - 1) would change sign, pow(x, tiny - 1)
 * would lose its NaN), while widened they are the C interpreter's result
 * rounded to f32. */
#include "codegen/cg.h"

/* "a.method(b)" with std, "libm::name(a, b)" without; always f64. */
static void
call2(tape_sb *sb, const cg_opts *o, const char *method, const char *libm, const char *a,
      const char *b)
{
    if (o->no_std)
        tape_sb_printf(sb, "libm::%s(%s, %s)", libm, a, b);
    else
        tape_sb_printf(sb, "%s.%s(%s)", a, method, b);
}

static void
call1(tape_sb *sb, const cg_opts *o, const char *method, const char *libm, const char *a)
{
    if (o->no_std)
        tape_sb_printf(sb, "libm::%s(%s)", libm, a);
    else
        tape_sb_printf(sb, "%s.%s()", a, method);
}

unsigned
cg_partial_needs(unsigned needs, const cg_opts *o)
{
    if (o->no_std && (needs & (CG_NEED_POWDX | CG_NEED_POWDY | CG_NEED_HYPOTDX | CG_NEED_ATAN2DX)))
        needs |= CG_NEED_LIBM;
    return needs;
}

/* fn NAME(x: T, y: T) -> T, with x and y as f64 in the body `r`. */
static void
head(tape_sb *sb, const cg_opts *o, const char *doc, const char *name)
{
    const char *T = o->f32 ? "f32" : "f64";
    tape_sb_printf(sb, "\n/// %s\n#[inline(always)]\nfn %s(x: %s, y: %s) -> %s {\n", doc, name, T,
                   T, T);
    if (o->f32)
        tape_sb_printf(sb, "    let (x, y) = (x as f64, y as f64);\n");
}

/* the f64 value r as the result */
static void
tail(tape_sb *sb, const cg_opts *o)
{
    tape_sb_printf(sb, "    %s\n}\n", o->f32 ? "r as f32" : "r");
}

void
cg_put_partial_helpers(tape_sb *sb, unsigned needs, const cg_opts *o)
{
    if (needs & CG_NEED_POWDX) {
        head(sb, o, "d pow(x, y) / dx = y x^(y-1), an absolute zero at y = 0.", "tg_powdx");
        tape_sb_printf(sb, "    let p = ");
        call2(sb, o, "powf", "pow", "x", "y - 1.0");
        tape_sb_printf(sb, ";\n    let r = if y == 0.0 || p == 0.0 { 0.0 } else { y * p };\n");
        tail(sb, o);
    }
    if (needs & CG_NEED_POWDY) {
        head(sb, o, "d pow(x, y) / dy = x^y log x, an absolute zero where x^y = 0.", "tg_powdy");
        tape_sb_printf(sb, "    let p = ");
        call2(sb, o, "powf", "pow", "x", "y");
        tape_sb_printf(sb, ";\n    let l = ");
        call1(sb, o, "ln", "log", "x");
        tape_sb_printf(sb, ";\n    let r = if p == 0.0 || l == 0.0 { 0.0 } else { p * l };\n");
        tail(sb, o);
    }
    if (needs & (CG_NEED_HYPOTDX | CG_NEED_ATAN2DX)) {
        /* the f64 core, shared with tg_atan2dx */
        tape_sb_printf(sb, "\n/// d hypot(x, y) / dx = x / hypot(x, y) in f64, 0 at the origin; subnormal and\n"
                       "/// huge hypots are scaled by a power of two (2^600, 2^-600) first.\n"
                       "#[inline(always)]\nfn tg_hypotdx_f64(x: f64, y: f64) -> f64 {\n    let h = ");
        call2(sb, o, "hypot", "hypot", "x", "y");
        tape_sb_printf(sb, ";\n    let s = if h < 2.409919865102884e-181 {\n"
                       "        4.149515568880993e180\n    } else if h > 4.149515568880993e180 {\n"
                       "        2.409919865102884e-181\n    } else {\n        1.0\n    };\n"
                       "    let (xs, ys) = (x * s, y * s);\n"
                       "    if h > 0.0 {\n        xs / ");
        call2(sb, o, "hypot", "hypot", "xs", "ys");
        tape_sb_printf(sb, "\n    } else {\n        0.0\n    }\n}\n");
    }
    if (needs & CG_NEED_HYPOTDX) {
        head(sb, o, "d hypot(x, y) / dx (tg_hypotdx_f64).", "tg_hypotdx");
        tape_sb_printf(sb, "    let r = tg_hypotdx_f64(x, y);\n");
        tail(sb, o);
    }
    if (needs & CG_NEED_ATAN2DX) {
        head(sb, o, "d atan2(x, y) / dx = y / (x^2 + y^2), 0 where hypot(x, y) is 0 or Inf.",
             "tg_atan2dx");
        tape_sb_printf(sb, "    let h = ");
        call2(sb, o, "hypot", "hypot", "x", "y");
        tape_sb_printf(sb, ";\n    let r = if h > 0.0 && h < f64::INFINITY { tg_hypotdx_f64(y, x) / h } "
                       "else { 0.0 };\n");
        tail(sb, o);
    }
}
