/* The test problems of the Ipopt example: eleven Hock-Schittkowski problems
 * and Luksan-Vlcek problem 1 at any size.
 *
 * A problem is   min f(x)   subject to   gl <= g(x) <= gu,  xl <= x <= xu,
 * with f and the m constraints g written once, as a model that records them
 * on a tape (nlp.c records it three times: f alone, g alone, and (f, g) for
 * the Lagrangian's Hessian).  Infinite bounds are +-NLP_INF, which Ipopt
 * treats as no bound (its nlp_lower/upper_bound_inf default to -+1e19). */
#ifndef IPOPT_NLP_PROBLEMS_H
#define IPOPT_NLP_PROBLEMS_H

#include <stddef.h>
#include <tapegen.h>

#define NLP_INF 1e20

/* Records f (one var) and g (m vars) of x (n vars) on x's tape. */
typedef void nlp_model(size_t n, const tg_var *x, tg_var *f, tg_var *g);

typedef struct nlp_problem {
    char name[32];
    size_t n, m;
    double f_star;           /* the published optimal objective */
    double *x0, *xl, *xu;    /* n each: start point and variable bounds */
    double *gl, *gu;         /* m each: constraint bounds */
    nlp_model *model;
} nlp_problem;

/* The Hock-Schittkowski problems this example solves: how many, and the
 * name of the k-th in table order (NULL past the end). */
size_t nlp_hs_count(void);
const char *nlp_hs_name(size_t k);

/* Fills p with HS problem `name` ("HS071"...).  Returns 0, or -1 for an
 * unknown name or when out of memory (p is then empty). */
int nlp_problem_hs(const char *name, nlp_problem *p);

/* Fills p with Luksan-Vlcek problem 1 in n >= 3 variables.  Returns 0 or -1. */
int nlp_problem_lv1(size_t n, nlp_problem *p);

void nlp_problem_free(nlp_problem *p);

#endif
