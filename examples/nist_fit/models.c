/* models.c -- the NIST StRD models as tapegen recordings.
 *
 * One function per dataset, transcribing the formula printed in the .dat
 * file (quoted above each function; b1..bk are b[0..k)).  Integer and
 * literal powers use tg_pow with a literal exponent, which tapegen records as
 * the constant-exponent op (x**2 becomes x*x).  Datasets that share a model
 * (Lanczos1-3, Gauss1-3, Chwirut1/2, Misra1a/BoxBOD, Hahn1/Thurber) share a
 * function.  The analytic Jacobians in data/NAME.jac check these formulas
 * (tests/test_nist.c).
 */
#include "models.h"

#include <ctype.h>

static const double PI = 3.14159265358979323846;

/* b*exp(-c*x) */
static tg_var
decay(tg_var b, tg_var c, tg_var x)
{
    return tg_mul(b, tg_exp(tg_neg(tg_mul(c, x))));
}

/* b*exp(-(x-c)**2 / d**2) */
static tg_var
gauss_peak(tg_var b, tg_var c, tg_var d, tg_var x)
{
    tg_var num = tg_neg(tg_pow(tg_sub(x, c), 2));
    return tg_mul(b, tg_exp(tg_div(num, tg_pow(d, 2))));
}

/* y = b1*(1-exp[-b2*x])  (Misra1a, BoxBOD) */
static tg_var
model_misra1a(const tg_var *b, tg_var x)
{
    return tg_mul(b[0], tg_sub(1.0, tg_exp(tg_neg(tg_mul(b[1], x)))));
}

/* y = exp[-b1*x]/(b2+b3*x)  (Chwirut1, Chwirut2) */
static tg_var
model_chwirut(const tg_var *b, tg_var x)
{
    tg_var num = tg_exp(tg_neg(tg_mul(b[0], x)));
    return tg_div(num, tg_add(b[1], tg_mul(b[2], x)));
}

/* y = b1*exp(-b2*x) + b3*exp(-b4*x) + b5*exp(-b6*x)  (Lanczos1-3) */
static tg_var
model_lanczos(const tg_var *b, tg_var x)
{
    tg_var s = tg_add(decay(b[0], b[1], x), decay(b[2], b[3], x));
    return tg_add(s, decay(b[4], b[5], x));
}

/* y = b1*exp( -b2*x ) + b3*exp( -(x-b4)**2 / b5**2 )
 *                     + b6*exp( -(x-b7)**2 / b8**2 )  (Gauss1-3) */
static tg_var
model_gauss(const tg_var *b, tg_var x)
{
    tg_var s = tg_add(decay(b[0], b[1], x), gauss_peak(b[2], b[3], b[4], x));
    return tg_add(s, gauss_peak(b[5], b[6], b[7], x));
}

/* y = b1*x**b2 */
static tg_var
model_danwood(const tg_var *b, tg_var x)
{
    return tg_mul(b[0], tg_pow(x, b[1]));
}

/* y = b1 * (1-(1+b2*x/2)**(-2)) */
static tg_var
model_misra1b(const tg_var *b, tg_var x)
{
    tg_var base = tg_add(1.0, tg_div(tg_mul(b[1], x), 2.0));
    return tg_mul(b[0], tg_sub(1.0, tg_pow(base, -2)));
}

/* y = (b1 + b2*x + b3*x**2) / (1 + b4*x + b5*x**2) */
static tg_var
model_kirby2(const tg_var *b, tg_var x)
{
    tg_var x2 = tg_pow(x, 2);
    tg_var num = tg_add(tg_add(b[0], tg_mul(b[1], x)), tg_mul(b[2], x2));
    tg_var den = tg_add(tg_add(1.0, tg_mul(b[3], x)), tg_mul(b[4], x2));
    return tg_div(num, den);
}

/* y = (b1+b2*x+b3*x**2+b4*x**3) / (1+b5*x+b6*x**2+b7*x**3)  (Hahn1, Thurber) */
static tg_var
model_hahn1(const tg_var *b, tg_var x)
{
    tg_var x2 = tg_pow(x, 2), x3 = tg_pow(x, 3);
    tg_var num = tg_add(tg_add(tg_add(b[0], tg_mul(b[1], x)), tg_mul(b[2], x2)),
                        tg_mul(b[3], x3));
    tg_var den = tg_add(tg_add(tg_add(1.0, tg_mul(b[4], x)), tg_mul(b[5], x2)),
                        tg_mul(b[6], x3));
    return tg_div(num, den);
}

/* y = b1 + b2*exp[-x*b4] + b3*exp[-x*b5] */
static tg_var
model_mgh17(const tg_var *b, tg_var x)
{
    tg_var s = tg_add(b[0], tg_mul(b[1], tg_exp(tg_neg(tg_mul(x, b[3])))));
    return tg_add(s, tg_mul(b[2], tg_exp(tg_neg(tg_mul(x, b[4])))));
}

/* y = b1 * (1-(1+2*b2*x)**(-.5)) */
static tg_var
model_misra1c(const tg_var *b, tg_var x)
{
    tg_var base = tg_add(1.0, tg_mul(tg_mul(2.0, b[1]), x));
    return tg_mul(b[0], tg_sub(1.0, tg_pow(base, -0.5)));
}

/* y = b1*b2*x*((1+b2*x)**(-1)) */
static tg_var
model_misra1d(const tg_var *b, tg_var x)
{
    tg_var base = tg_add(1.0, tg_mul(b[1], x));
    return tg_mul(tg_mul(tg_mul(b[0], b[1]), x), tg_pow(base, -1));
}

/* y = b1 + b2*cos( 2*pi*x/12 ) + b3*sin( 2*pi*x/12 )
 *        + b5*cos( 2*pi*x/b4 ) + b6*sin( 2*pi*x/b4 )
 *        + b8*cos( 2*pi*x/b7 ) + b9*sin( 2*pi*x/b7 ) */
static tg_var
model_enso(const tg_var *b, tg_var x)
{
    tg_var w = tg_mul(2.0 * PI, x);                 /* 2*pi*x */
    tg_var a1 = tg_div(w, 12.0), a2 = tg_div(w, b[3]), a3 = tg_div(w, b[6]);
    tg_var s = tg_add(b[0], tg_mul(b[1], tg_cos(a1)));
    s = tg_add(s, tg_mul(b[2], tg_sin(a1)));
    s = tg_add(s, tg_mul(b[4], tg_cos(a2)));
    s = tg_add(s, tg_mul(b[5], tg_sin(a2)));
    s = tg_add(s, tg_mul(b[7], tg_cos(a3)));
    return tg_add(s, tg_mul(b[8], tg_sin(a3)));
}

/* y = b1*(x**2+x*b2) / (x**2+x*b3+b4) */
static tg_var
model_mgh09(const tg_var *b, tg_var x)
{
    tg_var x2 = tg_pow(x, 2);
    tg_var num = tg_mul(b[0], tg_add(x2, tg_mul(x, b[1])));
    return tg_div(num, tg_add(tg_add(x2, tg_mul(x, b[2])), b[3]));
}

/* y = b1 / (1+exp[b2-b3*x]) */
static tg_var
model_rat42(const tg_var *b, tg_var x)
{
    return tg_div(b[0], tg_add(1.0, tg_exp(tg_sub(b[1], tg_mul(b[2], x)))));
}

/* y = b1 * exp[b2/(x+b3)] */
static tg_var
model_mgh10(const tg_var *b, tg_var x)
{
    return tg_mul(b[0], tg_exp(tg_div(b[1], tg_add(x, b[2]))));
}

/* y = (b1/b2) * exp[-0.5*((x-b3)/b2)**2] */
static tg_var
model_eckerle4(const tg_var *b, tg_var x)
{
    tg_var z = tg_div(tg_sub(x, b[2]), b[1]);
    return tg_mul(tg_div(b[0], b[1]), tg_exp(tg_mul(-0.5, tg_pow(z, 2))));
}

/* y = b1 / ((1+exp[b2-b3*x])**(1/b4)) */
static tg_var
model_rat43(const tg_var *b, tg_var x)
{
    tg_var base = tg_add(1.0, tg_exp(tg_sub(b[1], tg_mul(b[2], x))));
    return tg_div(b[0], tg_pow(base, tg_div(1.0, b[3])));
}

/* y = b1 * (b2+x)**(-1/b3) */
static tg_var
model_bennett5(const tg_var *b, tg_var x)
{
    return tg_mul(b[0], tg_pow(tg_add(b[1], x), tg_div(-1.0, b[2])));
}

const nist_model nist_models[] = {
    /* lower difficulty */
    { "Misra1a",  2, model_misra1a  },
    { "Chwirut2", 3, model_chwirut  },
    { "Chwirut1", 3, model_chwirut  },
    { "Lanczos3", 6, model_lanczos  },
    { "Gauss1",   8, model_gauss    },
    { "Gauss2",   8, model_gauss    },
    { "DanWood",  2, model_danwood  },
    { "Misra1b",  2, model_misra1b  },
    /* average difficulty */
    { "Kirby2",   5, model_kirby2   },
    { "Hahn1",    7, model_hahn1    },
    { "MGH17",    5, model_mgh17    },
    { "Lanczos1", 6, model_lanczos  },
    { "Lanczos2", 6, model_lanczos  },
    { "Gauss3",   8, model_gauss    },
    { "Misra1c",  2, model_misra1c  },
    { "Misra1d",  2, model_misra1d  },
    { "ENSO",     9, model_enso     },
    /* higher difficulty */
    { "MGH09",    4, model_mgh09    },
    { "Thurber",  7, model_hahn1    },
    { "BoxBOD",   2, model_misra1a  },
    { "Rat42",    3, model_rat42    },
    { "MGH10",    3, model_mgh10    },
    { "Eckerle4", 3, model_eckerle4 },
    { "Rat43",    4, model_rat43    },
    { "Bennett5", 3, model_bennett5 },
};
const size_t nist_num_models = sizeof nist_models / sizeof nist_models[0];

static int
name_eq(const char *a, const char *b)
{
    for (; *a && *b; a++, b++)
        if (tolower((unsigned char)*a) != tolower((unsigned char)*b))
            return 0;
    return *a == *b;
}

const nist_model *
nist_model_find(const char *name)
{
    for (size_t i = 0; i < nist_num_models; i++)
        if (name_eq(nist_models[i].name, name))
            return &nist_models[i];
    return NULL;
}
