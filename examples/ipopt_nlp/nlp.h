/* A problem of problems.h prepared for Ipopt: its tapes, recorded once, the
 * sparsity patterns of its constraint Jacobian and Lagrangian Hessian, and
 * the Ipopt callbacks (IpStdCInterface.h) that evaluate them with tapegen.
 *
 *   f tape   x -> f          eval_f, eval_grad_f (tg_gradient, one reverse sweep)
 *   g tape   x -> g (m)      eval_g, eval_jac_g  (tg_sparse_jacobian_ws)
 *   L tape   x -> (f, g)     eval_h              (tg_sparse_hessian_ws with the
 *                                                weights (sigma, lambda))
 *
 * The (f, g) tape is recorded from the model; the f and g tapes are sliced
 * from it (tg_call, then dead-code elimination).
 *
 * With NLP_TAPES the Jacobian and Hessian come from sparse derivative tapes
 * instead, built once: tg_sparse_jacobian_tape(g) and
 * tg_sparse_hessian_tape(L) (inputs x and the weights w), evaluated with
 * tg_eval_ws: the same values (the same patterns and order), fewer
 * instructions per call, more setup. */
#ifndef IPOPT_NLP_NLP_H
#define IPOPT_NLP_NLP_H

#include <IpStdCInterface.h>
#include <tapegen.h>

#include "problems.h"

/* CPU time spent in (and calls of) each kind of callback, seconds. */
typedef struct nlp_clock {
    double f, g, grad, jac, hess;
    long nf, ng, ngrad, njac, nhess;
} nlp_clock;

/* Where eval_jac_g and eval_h get their values. */
typedef enum nlp_mode {
    NLP_SPARSE_CALLS,    /* tg_sparse_jacobian_ws / tg_sparse_hessian_ws */
    NLP_TAPES            /* tg_eval_ws of the sparse derivative tapes */
} nlp_mode;

typedef struct nlp_ctx {
    const nlp_problem *p;
    nlp_mode mode;
    tg_tape *tf, *tg, *tl;          /* f, g and Lagrangian (f, g) tapes */
    tg_sparsity *jac, *hess;        /* patterns of dg/dx and of the L-Hessian (lower) */
    tg_workspace *wsf, *wsg, *wsl;  /* for the f, g and Lagrangian tapes */
    double *w;                      /* m + 1 Hessian weights (sigma, lambda) */
    tg_tape *tjac, *thess;          /* NLP_TAPES: the sparse derivative tapes */
    double *xw;                     /* NLP_TAPES: n + m + 1, the Hessian tape's inputs */
    double record_s, pattern_s;     /* recording + slicing, patterns + colouring */
    double dtape_s;                 /* NLP_TAPES: building the derivative tapes */
    nlp_clock clock;
    int iter;                       /* last iteration Ipopt reported */
    int failed;                     /* a callback failed (message in err) */
    char err[256];
} nlp_ctx;

/* Records p's tapes and computes the patterns.  Returns 0, or -1 with the
 * reason in c->err (c then holds nothing to free beyond nlp_release). */
int  nlp_prepare(nlp_ctx *c, const nlp_problem *p, nlp_mode mode);
void nlp_release(nlp_ctx *c);

typedef struct nlp_result {
    int status;            /* enum ApplicationReturnStatus */
    int iter;
    double obj;
    double solve_s;        /* CPU time of IpoptSolve (process) */
    double *x;             /* n: the final point (owned; free with nlp_result_free) */
} nlp_result;

/* Solves c's problem from its start point with Ipopt.  print_level: Ipopt's
 * (0 silent ... 12).  Returns 0 (the result says how the solve went), or -1
 * when Ipopt could not be set up (reason in c->err). */
int  nlp_solve(nlp_ctx *c, int print_level, nlp_result *r);
void nlp_result_free(nlp_result *r);

/* The Ipopt callbacks (user_data is the nlp_ctx).  Index style: C (0-based). */
Bool nlp_eval_f(Index n, Number *x, Bool new_x, Number *obj, UserDataPtr ud);
Bool nlp_eval_grad_f(Index n, Number *x, Bool new_x, Number *grad, UserDataPtr ud);
Bool nlp_eval_g(Index n, Number *x, Bool new_x, Index m, Number *g, UserDataPtr ud);
Bool nlp_eval_jac_g(Index n, Number *x, Bool new_x, Index m, Index nele,
                    Index *irow, Index *jcol, Number *vals, UserDataPtr ud);
Bool nlp_eval_h(Index n, Number *x, Bool new_x, Number sigma, Index m, Number *lambda,
                Bool new_lambda, Index nele, Index *irow, Index *jcol, Number *vals,
                UserDataPtr ud);

/* The process's CPU time, seconds (the clock of every figure here). */
double nlp_now(void);

/* Ipopt's name for a return status ("Solve_Succeeded", ...). */
const char *nlp_status_name(int status);

#endif
