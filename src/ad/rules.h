/* src/ad/rules.h -- the vocabulary of the rule language used by rules.def,
 * written only in terms of K, F1, F2, F3, A, B, C, Z, which each context
 * defines (numeric, dual, symbolic). */
#ifndef TG_AD_RULES_H
#define TG_AD_RULES_H

#define TWO_OVER_SQRTPI 1.12837916709551257390   /* 2/sqrt(pi) */

#define RECIP(x)        F2(DIV, K(1), x)
/* p where the result is not NaN, NaN where it is (x >= x is the NaN test) */
#define NANGUARD(p)     F3(SELECT, F2(GE, Z, Z), p, K(NAN))
/* x where x > 0, else 0: quotients by a norm that may vanish */
#define IF_POS(h, x)    F3(SELECT, F2(GT, h, K(0)), x, K(0))
#define HYP             F2(HYPOT, A, B)
/* x where 0 < h < Inf, else 0 */
#define IF_FINPOS(h, x) F3(SELECT, F2(GT, h, K(0)), F3(SELECT, F2(LT, h, K(INFINITY)), x, K(0)), K(0))
/* the unit vector (A, B) / hypot(A, B), each component good to an ulp */
#define HYP_UA          F2(HYPOTDX, A, B)
#define HYP_UB          F2(HYPOTDX, B, A)
/* d2 pow(x, y) / dx dy = x^(y-1) (1 + y log x), the one formula both
 * mixed partials use (differentiating x^y log x in x gives x^y / x, which
 * overflows for subnormal x; differentiating y x^(y-1) in y overflows in
 * x^(y-1) log x before the factor y is applied) */
#define POW_MIXED       F2(AZMUL, F2(POW, A, F2(SUB, B, K(1))), F2(ADD, K(1), F2(AZMUL, B, F1(LOG, A))))
/* share of operand x in min (CMP = LT, LE) or max (GT, GE) of (x, y):
 * 1 if x wins, 1/2 on a tie, 0 if it loses; if y is NaN, x is the result */
#define SHARE(S, SE, x, y) \
    F3(SELECT, F2(GE, y, y), F2(MUL, K(0.5), F2(ADD, F2(S, x, y), F2(SE, x, y))), F2(GE, x, x))
/* 0, or NaN for a NaN argument */
#define STEP0(x)        F2(MUL, K(0), F1(SIGNUM, x))

#endif
