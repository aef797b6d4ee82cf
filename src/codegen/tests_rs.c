/* src/codegen/tests_rs.c -- tests/kernels.rs of a crate: for each kernel, a
 * test that runs it at a fixed point against the values the C interpreter
 * computed when the crate was generated (or, when a branch guard of the
 * tape fails there, that the kernel returns Error::Branch writing
 * nothing), and one that a short input slice is refused with nothing
 * written. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>

#include "codegen/cg.h"
#include "tape/alloc.h"

/* The test point: x_k = 0.25 + 0.5 frac((k+1) * golden ratio), in every
 * usual domain; rounded to f32 for f32 crates. */
static double
test_input(uint32_t k, bool f32)
{
    double g = 0.6180339887498949 * (double)(k + 1);
    double v = 0.25 + 0.5 * (g - floor(g));
    return f32 ? (double)(float)v : v;
}

static void
put_array(tape_sb *sb, const double *v, uint32_t n, bool f32)
{
    for (uint32_t i = 0; i < n; i++) {
        char num[64];
        cg_fmt_const(num, sizeof num, v[i], f32);
        tape_sb_printf(sb, "%s%s", i ? ", " : "", num);
    }
}

static tg_status
kernel_test(tape_sb *sb, tg_rust_builder *b, const cg_kernel *k)
{
    const tg_tape *t = k->t;
    const char *T = b->o.f32 ? "f32" : "f64";
    double *x = mem_calloc((size_t)t->nin + 1, sizeof *x), *y = mem_calloc((size_t)t->nout + 1, sizeof *y);
    if (!x || !y) {
        mem_free(x);
        mem_free(y);
        return cg_fail(b, TG_ERR_NOMEM, "%s", "out of memory");
    }
    for (uint32_t i = 0; i < t->nin; i++)
        x[i] = test_input(i, b->o.f32);
    tg_status s = tg_eval(t, x, y);
    if (s == TG_OK) {
        tape_sb_printf(sb, "\n#[test]\nfn %s_matches_the_c_interpreter() {\n", k->fname);
        for (uint32_t j = 0; j < t->ninb; j++) {
            tape_sb_printf(sb, "    let %s: [%s; %" PRIu32 "] = [", k->in[j], T, t->inb[j].size);
            put_array(sb, x + t->inb[j].offset, t->inb[j].size, b->o.f32);
            tape_sb_printf(sb, "];\n");
        }
        for (uint32_t j = 0; j < t->noutb; j++)
            tape_sb_printf(sb, "    let mut %s = [0.0 as %s; %" PRIu32 "];\n", k->out[j], T, t->outb[j].size);
        /* on the heap: a loop's regions may be larger than a test thread's stack */
        tape_sb_printf(sb, "    let mut work_ = vec![0.0 as %s; WORK_LEN_%s];\n    %s::%s(", T, k->uname, b->crate, k->fname);
        for (uint32_t j = 0; j < t->ninb; j++)
            tape_sb_printf(sb, "&%s, ", k->in[j]);
        for (uint32_t j = 0; j < t->noutb; j++)
            tape_sb_printf(sb, "&mut %s, ", k->out[j]);
        tape_sb_printf(sb, "&mut work_).unwrap();\n");
        for (uint32_t j = 0; j < t->noutb; j++) {
            /* locals end in '_': sanitised block names never do */
            tape_sb_printf(sb, "    let want_: [%s; %" PRIu32 "] = [", T, t->outb[j].size);
            put_array(sb, y + t->outb[j].offset, t->outb[j].size, b->o.f32);
            tape_sb_printf(sb, "];\n    for k_ in 0..want_.len() {\n        assert!(close_(%s[k_], want_[k_]), "
                           "\"%s[{}] = {} but the C interpreter gave {}\", k_, %s[k_], want_[k_]);\n    }\n",
                           k->out[j], k->out[j], k->out[j]);
        }
        tape_sb_printf(sb, "}\n");
        uint32_t sj = 0;    /* the first input block that can be short (not empty) */
        while (sj < t->ninb && t->inb[sj].size == 0)
            sj++;
        if (sj < t->ninb) { /* a short input is refused, nothing written */
            tape_sb_printf(sb, "\n#[test]\nfn %s_refuses_a_short_input() {\n", k->fname);
            for (uint32_t j = 0; j < t->ninb; j++)
                tape_sb_printf(sb, "    let %s = [0.5 as %s; %" PRIu32 "];\n", k->in[j], T, t->inb[j].size);
            for (uint32_t j = 0; j < t->noutb; j++)
                tape_sb_printf(sb, "    let mut %s = [7.0 as %s; %" PRIu32 "];\n", k->out[j], T, t->outb[j].size);
            tape_sb_printf(sb, "    let mut work_ = vec![0.0 as %s; WORK_LEN_%s];\n    let res_ = %s::%s(", T, k->uname, b->crate, k->fname);
            for (uint32_t j = 0; j < t->ninb; j++)
                tape_sb_printf(sb, j == sj ? "&%s[..%" PRIu32 "], " : "&%s, ", k->in[j], t->inb[j].size - 1);
            for (uint32_t j = 0; j < t->noutb; j++)
                tape_sb_printf(sb, "&mut %s, ", k->out[j]);
            tape_sb_printf(sb, "&mut work_);\n    assert!(matches!(res_, Err(%s::Error::InputTooShort { .. })));\n", b->crate);
            for (uint32_t j = 0; j < t->noutb; j++)
                tape_sb_printf(sb, "    assert!(%s.iter().all(|&v_| v_ == 7.0));\n", k->out[j]);
            tape_sb_printf(sb, "}\n");
        }
    } else if (s == TG_ERR_BRANCH) {   /* a guard fails at the test point: so must Rust */
        tape_sb_printf(sb, "\n#[test]\nfn %s_refuses_the_other_branch() {\n", k->fname);
        for (uint32_t j = 0; j < t->ninb; j++) {
            tape_sb_printf(sb, "    let %s: [%s; %" PRIu32 "] = [", k->in[j], T, t->inb[j].size);
            put_array(sb, x + t->inb[j].offset, t->inb[j].size, b->o.f32);
            tape_sb_printf(sb, "];\n");
        }
        for (uint32_t j = 0; j < t->noutb; j++)
            tape_sb_printf(sb, "    let mut %s = [7.0 as %s; %" PRIu32 "];\n", k->out[j], T, t->outb[j].size);
        tape_sb_printf(sb, "    let mut work_ = [0.0 as %s; WORK_LEN_%s];\n    let res_ = %s::%s(", T, k->uname, b->crate, k->fname);
        for (uint32_t j = 0; j < t->ninb; j++)
            tape_sb_printf(sb, "&%s, ", k->in[j]);
        for (uint32_t j = 0; j < t->noutb; j++)
            tape_sb_printf(sb, "&mut %s, ", k->out[j]);
        tape_sb_printf(sb, "&mut work_);\n    assert!(matches!(res_, Err(%s::Error::Branch)));\n", b->crate);
        for (uint32_t j = 0; j < t->noutb; j++)
            tape_sb_printf(sb, "    assert!(%s.iter().all(|&v_| v_ == 7.0));\n", k->out[j]);
        tape_sb_printf(sb, "}\n");
        s = TG_OK;
    }
    mem_free(x);
    mem_free(y);
    return s == TG_OK ? TG_OK : cg_fail(b, s, "evaluating tape \"%s\" for the crate test failed", t->name);
}

tg_status
cg_tests_rs(tape_sb *sb, tg_rust_builder *b)
{
    const char *T = b->o.f32 ? "f32" : "f64";
    bool calls = false;     /* kernels calling user functions get no test here */
    for (uint32_t i = 0; i < b->nk; i++)
        calls |= b->k[i].t->ncalls > 0;
    tape_sb_printf(sb, "// Generated by tapegen %s. Checks every kernel against values the C\n"
                   "// interpreter computed when the crate was generated.\n#![allow(unused_mut)]\n"
                   "%suse %s::*;\n\n/// Equal, both NaN, or within %s relative (libm differences).\n"
                   "%sfn close_(a: %s, b: %s) -> bool {\n    (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= %s * b.abs().max(1.0)\n}\n",
                   TG_VERSION_STRING, calls ? "#[allow(unused_imports)]\n" : "", b->crate, b->o.f32 ? "1e-3" : "1e-9", calls ? "#[allow(dead_code)]\n" : "", T, T, b->o.f32 ? "1e-3" : "1e-9");
    for (uint32_t i = 0; i < b->nk; i++)       /* the user's functions are unknown here */
        if (b->k[i].t->ncalls == 0 && kernel_test(sb, b, &b->k[i]) != TG_OK)
            return b->status;
    return TG_OK;
}
