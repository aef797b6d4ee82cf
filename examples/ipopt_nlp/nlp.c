#define _POSIX_C_SOURCE 200809L

#include "nlp.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Process CPU time: on a shared machine wall time also counts the time
 * other processes had the core, which would blur the callbacks' share.
 * Ipopt, MUMPS and tapegen all run on this process's threads, so the
 * solve's CPU time and the callbacks' are comparable. */
double nlp_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void fail(nlp_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(nlp_ctx *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof c->err, fmt, ap);
    va_end(ap);
    c->failed = 1;
}

/* x -> (f, g): the model recorded once. */
static tg_tape *record_lagrangian(const nlp_problem *p)
{
    tg_tape *t = tg_tape_new(p->name);
    tg_var *x = malloc(p->n * sizeof *x), *g = malloc(p->m * sizeof *g);
    if (t == NULL || x == NULL || g == NULL) {
        tg_tape_free(t);
        t = NULL;
    } else {
        tg_var f;
        tg_input_vec(t, "x", p->n, x);
        p->model(p->n, x, &f, g);
        tg_output(t, "f", f);
        tg_output_vec(t, "g", p->m, g);
        tg_tape_optimize(t, TG_OPT_BASIC);
    }
    free(x);
    free(g);
    return t;
}

/* x -> outputs [first, first + count) of L, as block `block`: L is inlined
 * and what the slice does not need is dropped by the optimiser. */
static tg_tape *slice(const tg_tape *L, const char *name, const char *block,
                      size_t first, size_t count)
{
    size_t n = tg_num_inputs(L), mo = tg_num_outputs(L);
    tg_tape *t = tg_tape_new(name);
    tg_var *x = malloc(n * sizeof *x), *y = malloc(mo * sizeof *y);
    if (t == NULL || x == NULL || y == NULL) {
        tg_tape_free(t);
        t = NULL;
    } else {
        tg_input_vec(t, "x", n, x);
        tg_call(t, L, x, y);
        tg_output_vec(t, block, count, y + first);
        /* Dead-code elimination only: L is already optimised and ordered. */
        tg_tape_optimize(t, TG_OPT_NONE);
    }
    free(x);
    free(y);
    return t;
}

static int tape_ok(nlp_ctx *c, const tg_tape *t, const char *what)
{
    if (t == NULL) {
        fail(c, "%s tape: out of memory", what);
        return 0;
    }
    if (tg_tape_status(t) != TG_OK) {
        fail(c, "%s tape: %s", what, tg_tape_error(t));
        return 0;
    }
    return 1;
}

static int pattern_ok(nlp_ctx *c, const tg_sparsity *s, const char *what)
{
    if (s == NULL) {
        fail(c, "%s pattern: out of memory", what);
        return 0;
    }
    if (tg_sparsity_status(s) != TG_OK) {
        fail(c, "%s pattern: %s", what, tg_sparsity_error(s));
        return 0;
    }
    return 1;
}

/* The sparse derivative tapes of NLP_TAPES, optimised once. */
static int prepare_tapes(nlp_ctx *c)
{
    double t0 = nlp_now();
    c->tjac = tg_sparse_jacobian_tape(c->tg, TG_ALL);
    if (!tape_ok(c, c->tjac, "sparse Jacobian"))
        return -1;
    c->thess = tg_sparse_hessian_tape(c->tl, TG_ALL);
    if (!tape_ok(c, c->thess, "sparse Hessian"))
        return -1;
    if (tg_tape_optimize(c->tjac, TG_OPT_BASIC) != TG_OK ||
        tg_tape_optimize(c->thess, TG_OPT_BASIC) != TG_OK) {
        fail(c, "optimising the sparse derivative tapes: %s", tg_last_error());
        return -1;
    }
    c->xw = malloc((c->p->n + c->p->m + 1) * sizeof *c->xw);
    if (c->xw == NULL) {
        fail(c, "%s: out of memory", c->p->name);
        return -1;
    }
    c->dtape_s = nlp_now() - t0;
    return 0;
}

int nlp_prepare(nlp_ctx *c, const nlp_problem *p, nlp_mode mode)
{
    memset(c, 0, sizeof *c);
    c->p = p;
    c->mode = mode;
    if (p->m == 0) {
        fail(c, "%s: this driver expects at least one constraint", p->name);
        return -1;
    }
    double t0 = nlp_now();
    c->tl = record_lagrangian(p);
    if (!tape_ok(c, c->tl, "Lagrangian"))
        return -1;
    c->tf = slice(c->tl, "f", "f", 0, 1);
    if (!tape_ok(c, c->tf, "objective"))
        return -1;
    c->tg = slice(c->tl, "g", "g", 1, p->m);
    if (!tape_ok(c, c->tg, "constraint"))
        return -1;
    double t1 = nlp_now();
    c->jac = tg_jacobian_sparsity(c->tg, TG_ALL);
    if (!pattern_ok(c, c->jac, "Jacobian"))
        return -1;
    c->hess = tg_hessian_sparsity(c->tl, TG_ALL);
    if (!pattern_ok(c, c->hess, "Hessian"))
        return -1;
    double t2 = nlp_now();
    c->record_s = t1 - t0;
    c->pattern_s = t2 - t1;
    c->wsf = tg_workspace_new(c->tf);
    c->wsg = tg_workspace_new(c->tg);
    c->wsl = tg_workspace_new(c->tl);
    c->w = malloc((p->m + 1) * sizeof *c->w);
    if (c->wsf == NULL || c->wsg == NULL || c->wsl == NULL || c->w == NULL) {
        fail(c, "%s: out of memory", p->name);
        return -1;
    }
    if (mode == NLP_TAPES && prepare_tapes(c) != 0)
        return -1;
    c->failed = 0;
    return 0;
}

void nlp_release(nlp_ctx *c)
{
    tg_sparsity_free(c->jac);
    tg_sparsity_free(c->hess);
    tg_workspace_free(c->wsf);
    tg_workspace_free(c->wsg);
    tg_workspace_free(c->wsl);
    tg_tape_free(c->tf);
    tg_tape_free(c->tg);
    tg_tape_free(c->tl);
    tg_tape_free(c->tjac);
    tg_tape_free(c->thess);
    free(c->w);
    free(c->xw);
    c->tjac = c->thess = NULL;
    c->xw = NULL;
    c->jac = c->hess = NULL;
    c->wsf = c->wsg = c->wsl = NULL;
    c->tf = c->tg = c->tl = NULL;
    c->w = NULL;
}

/* A failed numeric call: Ipopt is told (FALSE) and the message is kept. */
static Bool status_ok(nlp_ctx *c, tg_status s, const char *what)
{
    if (s == TG_OK)
        return TRUE;
    fail(c, "%s: %s", what, tg_last_error());
    return FALSE;
}

Bool nlp_eval_f(Index n, Number *x, Bool new_x, Number *obj, UserDataPtr ud)
{
    nlp_ctx *c = ud;
    (void)n;
    (void)new_x;
    double t0 = nlp_now();
    tg_status s = tg_eval_ws(c->tf, c->wsf, x, obj);
    c->clock.f += nlp_now() - t0;
    c->clock.nf++;
    return status_ok(c, s, "eval_f");
}

Bool nlp_eval_grad_f(Index n, Number *x, Bool new_x, Number *grad, UserDataPtr ud)
{
    nlp_ctx *c = ud;
    (void)n;
    (void)new_x;
    double t0 = nlp_now();
    tg_status s = tg_gradient_ws(c->tf, c->wsf, x, grad);
    c->clock.grad += nlp_now() - t0;
    c->clock.ngrad++;
    return status_ok(c, s, "eval_grad_f");
}

Bool nlp_eval_g(Index n, Number *x, Bool new_x, Index m, Number *g, UserDataPtr ud)
{
    nlp_ctx *c = ud;
    (void)n;
    (void)m;
    (void)new_x;
    double t0 = nlp_now();
    tg_status s = tg_eval_ws(c->tg, c->wsg, x, g);
    c->clock.g += nlp_now() - t0;
    c->clock.ng++;
    return status_ok(c, s, "eval_g");
}

/* Triplets: the pattern's (row, col) lists as Ipopt's 0-based indices. */
static void copy_structure(const tg_sparsity *s, Index *irow, Index *jcol)
{
    const uint32_t *r = tg_sparsity_rows(s), *k = tg_sparsity_cols(s);
    size_t nnz = tg_sparsity_nnz(s);
    for (size_t e = 0; e < nnz; e++) {
        irow[e] = (Index)r[e];
        jcol[e] = (Index)k[e];
    }
}

Bool nlp_eval_jac_g(Index n, Number *x, Bool new_x, Index m, Index nele,
                    Index *irow, Index *jcol, Number *vals, UserDataPtr ud)
{
    nlp_ctx *c = ud;
    (void)n;
    (void)m;
    (void)new_x;
    if ((size_t)nele != tg_sparsity_nnz(c->jac)) {
        fail(c, "eval_jac_g: %d elements asked, the pattern has %zu", (int)nele,
             tg_sparsity_nnz(c->jac));
        return FALSE;
    }
    if (vals == NULL) {
        copy_structure(c->jac, irow, jcol);
        return TRUE;
    }
    double t0 = nlp_now();
    tg_status s = c->mode == NLP_TAPES ? tg_eval_ws(c->tjac, c->wsg, x, vals)
                                       : tg_sparse_jacobian_ws(c->tg, c->wsg, c->jac, x, vals);
    c->clock.jac += nlp_now() - t0;
    c->clock.njac++;
    return status_ok(c, s, "eval_jac_g");
}

/* The Hessian of sigma f + lambda . g is the Hessian of w . (f, g) with
 * w = (sigma, lambda): the weighted Hessian of the (f, g) tape. */
Bool nlp_eval_h(Index n, Number *x, Bool new_x, Number sigma, Index m, Number *lambda,
                Bool new_lambda, Index nele, Index *irow, Index *jcol, Number *vals,
                UserDataPtr ud)
{
    nlp_ctx *c = ud;
    (void)n;
    (void)new_x;
    (void)new_lambda;
    if ((size_t)nele != tg_sparsity_nnz(c->hess)) {
        fail(c, "eval_h: %d elements asked, the pattern has %zu", (int)nele,
             tg_sparsity_nnz(c->hess));
        return FALSE;
    }
    if (vals == NULL) {
        copy_structure(c->hess, irow, jcol);
        return TRUE;
    }
    double t0 = nlp_now();
    tg_status s;
    if (c->mode == NLP_TAPES) {
        size_t nn = c->p->n;
        memcpy(c->xw, x, nn * sizeof *x);
        c->xw[nn] = sigma;
        memcpy(c->xw + nn + 1, lambda, (size_t)m * sizeof *lambda);
        s = tg_eval_ws(c->thess, c->wsl, c->xw, vals);
    } else {
        c->w[0] = sigma;
        memcpy(c->w + 1, lambda, (size_t)m * sizeof *lambda);
        s = tg_sparse_hessian_ws(c->tl, c->wsl, c->hess, x, c->w, vals);
    }
    c->clock.hess += nlp_now() - t0;
    c->clock.nhess++;
    return status_ok(c, s, "eval_h");
}

static Bool on_iteration(Index mode, Index iter, Number obj, Number inf_pr, Number inf_du,
                         Number mu, Number d_norm, Number reg, Number alpha_du,
                         Number alpha_pr, Index ls_trials, UserDataPtr ud)
{
    nlp_ctx *c = ud;
    (void)mode, (void)obj, (void)inf_pr, (void)inf_du, (void)mu, (void)d_norm;
    (void)reg, (void)alpha_du, (void)alpha_pr, (void)ls_trials;
    c->iter = iter;
    return TRUE;
}

int nlp_solve(nlp_ctx *c, int print_level, nlp_result *r)
{
    const nlp_problem *p = c->p;
    memset(r, 0, sizeof *r);
    size_t nnz_j = tg_sparsity_nnz(c->jac), nnz_h = tg_sparsity_nnz(c->hess);
    if (p->n > (size_t)INT32_MAX || nnz_j > (size_t)INT32_MAX || nnz_h > (size_t)INT32_MAX) {
        fail(c, "%s: too large for Ipopt's int indices", p->name);
        return -1;
    }
    r->x = malloc(p->n * sizeof *r->x);
    if (r->x == NULL) {
        fail(c, "%s: out of memory", p->name);
        return -1;
    }
    memcpy(r->x, p->x0, p->n * sizeof *r->x);
    IpoptProblem ip = CreateIpoptProblem((Index)p->n, p->xl, p->xu, (Index)p->m, p->gl, p->gu,
                                         (Index)nnz_j, (Index)nnz_h, 0, nlp_eval_f, nlp_eval_g,
                                         nlp_eval_grad_f, nlp_eval_jac_g, nlp_eval_h);
    if (ip == NULL) {
        fail(c, "%s: CreateIpoptProblem failed", p->name);
        nlp_result_free(r);
        return -1;
    }
    AddIpoptStrOption(ip, "sb", "yes");          /* no banner */
    AddIpoptIntOption(ip, "print_level", print_level);
    SetIntermediateCallback(ip, on_iteration);
    memset(&c->clock, 0, sizeof c->clock);
    c->iter = 0;
    double t0 = nlp_now();
    r->status = IpoptSolve(ip, r->x, NULL, &r->obj, NULL, NULL, NULL, c);
    r->solve_s = nlp_now() - t0;
    r->iter = c->iter;
    FreeIpoptProblem(ip);
    return 0;
}

void nlp_result_free(nlp_result *r)
{
    free(r->x);
    r->x = NULL;
}

const char *nlp_status_name(int status)
{
    switch (status) {
    case Solve_Succeeded: return "Solve_Succeeded";
    case Solved_To_Acceptable_Level: return "Solved_To_Acceptable";
    case Infeasible_Problem_Detected: return "Infeasible_Problem";
    case Search_Direction_Becomes_Too_Small: return "Search_Dir_Too_Small";
    case Diverging_Iterates: return "Diverging_Iterates";
    case User_Requested_Stop: return "User_Requested_Stop";
    case Feasible_Point_Found: return "Feasible_Point_Found";
    case Maximum_Iterations_Exceeded: return "Max_Iter_Exceeded";
    case Restoration_Failed: return "Restoration_Failed";
    case Error_In_Step_Computation: return "Error_In_Step";
    case Maximum_CpuTime_Exceeded: return "Max_CpuTime_Exceeded";
    case Not_Enough_Degrees_Of_Freedom: return "Not_Enough_DOF";
    case Invalid_Problem_Definition: return "Invalid_Problem";
    case Invalid_Option: return "Invalid_Option";
    case Invalid_Number_Detected: return "Invalid_Number";
    default: return "Ipopt_Error";
    }
}
