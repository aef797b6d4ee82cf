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
/* share of operand x in min (CMP = LT, LE) or max (GT, GE) of (x, y):
 * 1 if x wins, 1/2 on a tie, 0 if it loses; if y is NaN, x is the result */
#define SHARE(S, SE, x, y) \
    F3(SELECT, F2(GE, y, y), F2(MUL, K(0.5), F2(ADD, F2(S, x, y), F2(SE, x, y))), F2(GE, x, x))
/* 0, or NaN for a NaN argument */
#define STEP0(x)        F2(MUL, K(0), F1(SIGNUM, x))

#endif
