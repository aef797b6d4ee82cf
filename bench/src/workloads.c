/* bench/src/workloads.c -- the points and the hand-written ("native") C
 * functions and analytic derivatives of the four workloads.  These are the
 * reference every other system is checked against (after they themselves
 * have been checked against central differences, see main.c). */
#include "workloads.h"

#include <math.h>
#include <string.h>

/* ------------------------------------------------------------------ points */

void
w1_record_point(size_t n, double *x)
{
    for (size_t i = 0; i < n; i++)
        x[i] = i % 2 == 0 ? -1.2 : 1.0;
}

void
w1_eval_point(size_t n, double *x)
{
    for (size_t i = 0; i < n; i++)
        x[i] = 0.5 + 0.001 * (double)i;
}

void
w2_theta(double *theta)
{
    for (int k = 0; k < MLP_NP; k++)
        theta[k] = 0.1 * sin((double)(k + 1));
}

void
w2_data(double *inputs, double *targets)
{
    for (int s = 0; s < MLP_S; s++) {
        for (int j = 0; j < MLP_IN; j++)
            inputs[s * MLP_IN + j] = cos(0.3 * s + 0.7 * j);
        targets[s] = sin(0.5 * s);
    }
}

void
w3_point(double *u)
{
    u[0] = 1.0;
    u[1] = 1.0;
    u[2] = 1.0;
    u[3] = 10.0;
    u[4] = 28.0;
    u[5] = 8.0 / 3.0;
}

void
w4_point(size_t n, double *x)
{
    for (size_t i = 0; i < n; i++)
        x[i] = -1.0;
}

/* ---------------------------------------------------------- W1 rosenbrock */

double
w1_f(size_t n, const double *x)
{
    if (n < 2)
        return 0.0;
    double d = x[1] - x[0] * x[0];
    double e = 1.0 - x[0];
    double acc = 100.0 * d * d + e * e;
    for (size_t i = 1; i + 1 < n; i++) {
        d = x[i + 1] - x[i] * x[i];
        e = 1.0 - x[i];
        acc = acc + (100.0 * d * d + e * e);
    }
    return acc;
}

void
w1_grad(size_t n, const double *x, double *g)
{
    memset(g, 0, n * sizeof *g);
    for (size_t i = 0; i + 1 < n; i++) {
        double d = x[i + 1] - x[i] * x[i];
        double e = 1.0 - x[i];
        g[i] += -400.0 * x[i] * d - 2.0 * e;
        g[i + 1] += 200.0 * d;
    }
}

void
w1_hvp(size_t n, const double *x, const double *v, double *hv)
{
    memset(hv, 0, n * sizeof *hv);
    for (size_t i = 0; i + 1 < n; i++) {
        double hii = 1200.0 * x[i] * x[i] - 400.0 * x[i + 1] + 2.0;
        double hij = -400.0 * x[i];
        hv[i] += hii * v[i] + hij * v[i + 1];
        hv[i + 1] += hij * v[i] + 200.0 * v[i + 1];
    }
}

void
w1_hess(size_t n, const double *x, double *H)
{
    memset(H, 0, n * n * sizeof *H);
    for (size_t i = 0; i + 1 < n; i++) {
        H[i * n + i] += 1200.0 * x[i] * x[i] - 400.0 * x[i + 1] + 2.0;
        H[(i + 1) * n + (i + 1)] += 200.0;
        H[i * n + i + 1] = -400.0 * x[i];
        H[(i + 1) * n + i] = -400.0 * x[i];
    }
}

/* ------------------------------------------------------------------ W2 mlp */

typedef struct mlp_fwd {
    double h1[MLP_H], h2[MLP_H], y, e;
} mlp_fwd;

static void
mlp_forward(const double *th, const double *in, double t, mlp_fwd *o)
{
    for (int i = 0; i < MLP_H; i++) {
        double a = th[MLP_B1 + i];
        for (int j = 0; j < MLP_IN; j++)
            a = a + th[MLP_W1 + i * MLP_IN + j] * in[j];
        o->h1[i] = tanh(a);
    }
    for (int i = 0; i < MLP_H; i++) {
        double a = th[MLP_B2 + i];
        for (int j = 0; j < MLP_H; j++)
            a = a + th[MLP_W2 + i * MLP_H + j] * o->h1[j];
        o->h2[i] = tanh(a);
    }
    double y = th[MLP_B3];
    for (int j = 0; j < MLP_H; j++)
        y = y + th[MLP_W3 + j] * o->h2[j];
    o->y = y;
    o->e = y - t;
}

double
w2_f(const w2_data_t *d, const double *theta)
{
    double loss = 0.0;
    for (int s = 0; s < MLP_S; s++) {
        mlp_fwd o;
        mlp_forward(theta, d->in[s], d->t[s], &o);
        loss = s == 0 ? o.e * o.e : loss + o.e * o.e;
    }
    return loss * (1.0 / MLP_S);
}

void
w2_grad(const w2_data_t *d, const double *th, double *g)
{
    memset(g, 0, MLP_NP * sizeof *g);
    for (int s = 0; s < MLP_S; s++) {
        mlp_fwd o;
        const double *in = d->in[s];
        mlp_forward(th, in, d->t[s], &o);
        double dy = (2.0 / MLP_S) * o.e;
        double da2[MLP_H], dh1[MLP_H] = { 0 };
        g[MLP_B3] += dy;
        for (int j = 0; j < MLP_H; j++) {
            g[MLP_W3 + j] += dy * o.h2[j];
            da2[j] = th[MLP_W3 + j] * dy * (1.0 - o.h2[j] * o.h2[j]);
        }
        for (int i = 0; i < MLP_H; i++) {
            g[MLP_B2 + i] += da2[i];
            for (int j = 0; j < MLP_H; j++) {
                g[MLP_W2 + i * MLP_H + j] += da2[i] * o.h1[j];
                dh1[j] += th[MLP_W2 + i * MLP_H + j] * da2[i];
            }
        }
        for (int i = 0; i < MLP_H; i++) {
            double da1 = dh1[i] * (1.0 - o.h1[i] * o.h1[i]);
            g[MLP_B1 + i] += da1;
            for (int j = 0; j < MLP_IN; j++)
                g[MLP_W1 + i * MLP_IN + j] += da1 * in[j];
        }
    }
}

/* Pearlmutter's R-operator by hand: a forward pass of tangents R{.} along
 * v, then the backward pass with the tangents of the adjoints. */
void
w2_hvp(const w2_data_t *d, const double *th, const double *v, double *hv)
{
    memset(hv, 0, MLP_NP * sizeof *hv);
    for (int s = 0; s < MLP_S; s++) {
        mlp_fwd o;
        const double *in = d->in[s];
        mlp_forward(th, in, d->t[s], &o);
        double Rh1[MLP_H], Rh2[MLP_H];
        for (int i = 0; i < MLP_H; i++) {
            double ra = v[MLP_B1 + i];
            for (int j = 0; j < MLP_IN; j++)
                ra += v[MLP_W1 + i * MLP_IN + j] * in[j];
            Rh1[i] = (1.0 - o.h1[i] * o.h1[i]) * ra;
        }
        for (int i = 0; i < MLP_H; i++) {
            double ra = v[MLP_B2 + i];
            for (int j = 0; j < MLP_H; j++)
                ra += v[MLP_W2 + i * MLP_H + j] * o.h1[j] + th[MLP_W2 + i * MLP_H + j] * Rh1[j];
            Rh2[i] = (1.0 - o.h2[i] * o.h2[i]) * ra;
        }
        double Ry = v[MLP_B3];
        for (int j = 0; j < MLP_H; j++)
            Ry += v[MLP_W3 + j] * o.h2[j] + th[MLP_W3 + j] * Rh2[j];

        double dy = (2.0 / MLP_S) * o.e, Rdy = (2.0 / MLP_S) * Ry;
        double da2[MLP_H], Rda2[MLP_H];
        hv[MLP_B3] += Rdy;
        for (int j = 0; j < MLP_H; j++) {
            hv[MLP_W3 + j] += Rdy * o.h2[j] + dy * Rh2[j];
            double dh2 = th[MLP_W3 + j] * dy;
            double Rdh2 = v[MLP_W3 + j] * dy + th[MLP_W3 + j] * Rdy;
            double gp = 1.0 - o.h2[j] * o.h2[j];
            da2[j] = dh2 * gp;
            Rda2[j] = Rdh2 * gp - 2.0 * o.h2[j] * Rh2[j] * dh2;
        }
        double dh1[MLP_H] = { 0 }, Rdh1[MLP_H] = { 0 };
        for (int i = 0; i < MLP_H; i++) {
            hv[MLP_B2 + i] += Rda2[i];
            for (int j = 0; j < MLP_H; j++) {
                int k = MLP_W2 + i * MLP_H + j;
                hv[k] += Rda2[i] * o.h1[j] + da2[i] * Rh1[j];
                dh1[j] += th[k] * da2[i];
                Rdh1[j] += v[k] * da2[i] + th[k] * Rda2[i];
            }
        }
        for (int i = 0; i < MLP_H; i++) {
            double gp = 1.0 - o.h1[i] * o.h1[i];
            double Rda1 = Rdh1[i] * gp - 2.0 * o.h1[i] * Rh1[i] * dh1[i];
            hv[MLP_B1 + i] += Rda1;
            for (int j = 0; j < MLP_IN; j++)
                hv[MLP_W1 + i * MLP_IN + j] += Rda1 * in[j];
        }
    }
}

/* ------------------------------------------------------------- W3 lorenz */

static void
lorenz_rhs(const double *s, double sig, double rho, double beta, double *k)
{
    k[0] = sig * (s[1] - s[0]);
    k[1] = s[0] * (rho - s[2]) - s[1];
    k[2] = s[0] * s[1] - beta * s[2];
}

static void
rk4_step(double *s, double sig, double rho, double beta, double dt)
{
    const double h2 = 0.5 * dt, h6 = dt / 6.0;
    double k1[3], k2[3], k3[3], k4[3], t[3];
    lorenz_rhs(s, sig, rho, beta, k1);
    for (int c = 0; c < 3; c++)
        t[c] = s[c] + h2 * k1[c];
    lorenz_rhs(t, sig, rho, beta, k2);
    for (int c = 0; c < 3; c++)
        t[c] = s[c] + h2 * k2[c];
    lorenz_rhs(t, sig, rho, beta, k3);
    for (int c = 0; c < 3; c++)
        t[c] = s[c] + dt * k3[c];
    lorenz_rhs(t, sig, rho, beta, k4);
    for (int c = 0; c < 3; c++)
        s[c] = s[c] + h6 * (((k1[c] + 2.0 * k2[c]) + 2.0 * k3[c]) + k4[c]);
}

double
w3_f(const double *u)
{
    return w3_f_steps(u, LORENZ_STEPS, LORENZ_DT);
}

double
w3_f_steps(const double *u, size_t steps, double dt)
{
    double s[3] = { u[0], u[1], u[2] };
    for (size_t k = 0; k < steps; k++)
        rk4_step(s, u[3], u[4], u[5], dt);
    return s[0] * s[0] + s[1] * s[1] + s[2] * s[2];
}

/* lam_s += A(s)^T l, lam_p += B(s)^T l, where A = dF/ds, B = dF/d(sig,rho,beta). */
static void
rhs_adjoint(const double *s, double sig, double rho, double beta, const double *l, double *ls,
            double *lp)
{
    ls[0] += -sig * l[0] + (rho - s[2]) * l[1] + s[1] * l[2];
    ls[1] += sig * l[0] - l[1] + s[0] * l[2];
    ls[2] += -s[0] * l[1] - beta * l[2];
    lp[0] += (s[1] - s[0]) * l[0];
    lp[1] += s[0] * l[1];
    lp[2] += -s[2] * l[2];
}

/* Discrete adjoint of the RK4 scheme by hand: a forward pass stores the
 * states, the reverse pass recomputes each step's stages and runs them
 * backwards. */
void
w3_grad(const double *u, double *g, double *traj)
{
    w3_grad_steps(u, LORENZ_STEPS, LORENZ_DT, g, traj);
}

void
w3_grad_steps(const double *u, size_t steps, double dt, double *g, double *traj)
{
    const double h2 = 0.5 * dt, h6 = dt / 6.0;
    double sig = u[3], rho = u[4], beta = u[5];
    double s[3] = { u[0], u[1], u[2] };
    memcpy(traj, s, sizeof s);
    for (size_t k = 0; k < steps; k++) {
        rk4_step(s, sig, rho, beta, dt);
        memcpy(traj + 3 * (k + 1), s, sizeof s);
    }
    double lam[3] = { 2.0 * s[0], 2.0 * s[1], 2.0 * s[2] }, lp[3] = { 0, 0, 0 };
    for (size_t k = steps; k-- > 0;) {
        const double *s0 = traj + 3 * k;
        double k1[3], k2[3], k3[3], s2[3], s3[3], s4[3];
        lorenz_rhs(s0, sig, rho, beta, k1);
        for (int c = 0; c < 3; c++)
            s2[c] = s0[c] + h2 * k1[c];
        lorenz_rhs(s2, sig, rho, beta, k2);
        for (int c = 0; c < 3; c++)
            s3[c] = s0[c] + h2 * k2[c];
        lorenz_rhs(s3, sig, rho, beta, k3);
        for (int c = 0; c < 3; c++)
            s4[c] = s0[c] + dt * k3[c];
        double lk1[3], lk2[3], lk3[3], lk4[3], ls[3], lt[3];
        for (int c = 0; c < 3; c++) {
            ls[c] = lam[c];
            lk1[c] = h6 * lam[c];
            lk2[c] = 2.0 * h6 * lam[c];
            lk3[c] = 2.0 * h6 * lam[c];
            lk4[c] = h6 * lam[c];
        }
        /* k4 = F(s4), s4 = s + dt k3 */
        lt[0] = lt[1] = lt[2] = 0.0;
        rhs_adjoint(s4, sig, rho, beta, lk4, lt, lp);
        for (int c = 0; c < 3; c++) {
            ls[c] += lt[c];
            lk3[c] += dt * lt[c];
        }
        /* k3 = F(s3), s3 = s + h2 k2 */
        lt[0] = lt[1] = lt[2] = 0.0;
        rhs_adjoint(s3, sig, rho, beta, lk3, lt, lp);
        for (int c = 0; c < 3; c++) {
            ls[c] += lt[c];
            lk2[c] += h2 * lt[c];
        }
        /* k2 = F(s2), s2 = s + h2 k1 */
        lt[0] = lt[1] = lt[2] = 0.0;
        rhs_adjoint(s2, sig, rho, beta, lk2, lt, lp);
        for (int c = 0; c < 3; c++) {
            ls[c] += lt[c];
            lk1[c] += h2 * lt[c];
        }
        /* k1 = F(s) */
        rhs_adjoint(s0, sig, rho, beta, lk1, ls, lp);
        memcpy(lam, ls, sizeof lam);
    }
    g[0] = lam[0];
    g[1] = lam[1];
    g[2] = lam[2];
    g[3] = lp[0];
    g[4] = lp[1];
    g[5] = lp[2];
}

/* State with first and second derivatives w.r.t. the 6 inputs u:
 * S[c][a] = ds_c/du_a, T[c][p] = d2 s_c / du_a du_b for the 21 pairs a <= b
 * (p = pair index). */
#define NP6 21
typedef struct sens2 {
    double s[3];
    double S[3][6];
    double T[3][NP6];
} sens2;

static int pair_a[NP6], pair_b[NP6];

static void
init_pairs(void)
{
    int p = 0;
    for (int a = 0; a < 6; a++)
        for (int b = a; b < 6; b++) {
            pair_a[p] = a;
            pair_b[p] = b;
            p++;
        }
}

/* k = F(w) with its first and second derivatives; the parameters have
 * derivative e_3, e_4, e_5 and no second derivative. */
static void
rhs_sens2(const sens2 *w, double sig, double rho, double beta, sens2 *k)
{
    const double x = w->s[0], y = w->s[1], z = w->s[2];
    lorenz_rhs(w->s, sig, rho, beta, k->s);
    for (int a = 0; a < 6; a++) {
        double xa = w->S[0][a], ya = w->S[1][a], za = w->S[2][a];
        double siga = a == 3, rhoa = a == 4, betaa = a == 5;
        k->S[0][a] = -sig * xa + sig * ya + (y - x) * siga;
        k->S[1][a] = (rho - z) * xa - ya - x * za + x * rhoa;
        k->S[2][a] = y * xa + x * ya - beta * za - z * betaa;
    }
    for (int p = 0; p < NP6; p++) {
        int a = pair_a[p], b = pair_b[p];
        double xa = w->S[0][a], ya = w->S[1][a], za = w->S[2][a];
        double xb = w->S[0][b], yb = w->S[1][b], zb = w->S[2][b];
        double siga = a == 3, sigb = b == 3, rhoa = a == 4, rhob = b == 4;
        double betaa = a == 5, betab = b == 5;
        double T0 = w->T[0][p], T1 = w->T[1][p], T2 = w->T[2][p];
        k->T[0][p] = -sig * T0 + sig * T1 + (siga * yb + sigb * ya - siga * xb - sigb * xa);
        k->T[1][p] = (rho - z) * T0 - T1 - x * T2 + (xa * rhob + xb * rhoa - xa * zb - xb * za);
        k->T[2][p] = y * T0 + x * T1 - beta * T2 + (xa * yb + xb * ya - betaa * zb - betab * za);
    }
}

/* out = w + h k (values and derivatives). */
static void
axpy_sens2(const sens2 *w, double h, const sens2 *k, sens2 *out)
{
    for (int c = 0; c < 3; c++) {
        out->s[c] = w->s[c] + h * k->s[c];
        for (int a = 0; a < 6; a++)
            out->S[c][a] = w->S[c][a] + h * k->S[c][a];
        for (int p = 0; p < NP6; p++)
            out->T[c][p] = w->T[c][p] + h * k->T[c][p];
    }
}

/* Second-order forward sensitivities of the RK4 scheme by hand. */
void
w3_hess(const double *u, double *H)
{
    w3_hess_steps(u, LORENZ_STEPS, LORENZ_DT, H);
}

void
w3_hess_steps(const double *u, size_t steps, double dt, double *H)
{
    const double h2 = 0.5 * dt, h6 = dt / 6.0;
    if (pair_b[NP6 - 1] == 0)
        init_pairs();
    double sig = u[3], rho = u[4], beta = u[5];
    sens2 w, t, k1, k2, k3, k4;
    memset(&w, 0, sizeof w);
    for (int c = 0; c < 3; c++) {
        w.s[c] = u[c];
        w.S[c][c] = 1.0;
    }
    for (size_t step = 0; step < steps; step++) {
        rhs_sens2(&w, sig, rho, beta, &k1);
        axpy_sens2(&w, h2, &k1, &t);
        rhs_sens2(&t, sig, rho, beta, &k2);
        axpy_sens2(&w, h2, &k2, &t);
        rhs_sens2(&t, sig, rho, beta, &k3);
        axpy_sens2(&w, dt, &k3, &t);
        rhs_sens2(&t, sig, rho, beta, &k4);
        for (int c = 0; c < 3; c++) {
            w.s[c] = w.s[c] + h6 * (((k1.s[c] + 2.0 * k2.s[c]) + 2.0 * k3.s[c]) + k4.s[c]);
            for (int a = 0; a < 6; a++)
                w.S[c][a] = w.S[c][a] + h6 * (((k1.S[c][a] + 2.0 * k2.S[c][a]) +
                                               2.0 * k3.S[c][a]) + k4.S[c][a]);
            for (int p = 0; p < NP6; p++)
                w.T[c][p] = w.T[c][p] + h6 * (((k1.T[c][p] + 2.0 * k2.T[c][p]) +
                                               2.0 * k3.T[c][p]) + k4.T[c][p]);
        }
    }
    for (int p = 0; p < NP6; p++) {
        int a = pair_a[p], b = pair_b[p];
        double h = 0.0;
        for (int c = 0; c < 3; c++)
            h += 2.0 * (w.S[c][a] * w.S[c][b] + w.s[c] * w.T[c][p]);
        H[a * 6 + b] = h;
        H[b * 6 + a] = h;
    }
}

/* ------------------------------------------------------------- W4 broyden */

void
w4_f(size_t n, const double *x, double *r)
{
    for (size_t i = 0; i < n; i++) {
        double ri = (3.0 - 2.0 * x[i]) * x[i];
        if (i > 0)
            ri = ri - x[i - 1];
        if (i + 1 < n)
            ri = ri - 2.0 * x[i + 1];
        r[i] = ri + 1.0;
    }
}

void
w4_jac(size_t n, const double *x, double *J)
{
    memset(J, 0, n * n * sizeof *J);
    for (size_t i = 0; i < n; i++) {
        J[i * n + i] = 3.0 - 4.0 * x[i];
        if (i > 0)
            J[i * n + i - 1] = -1.0;
        if (i + 1 < n)
            J[i * n + i + 1] = -2.0;
    }
}

void
w4_jvp(size_t n, const double *x, const double *v, double *jv)
{
    for (size_t i = 0; i < n; i++) {
        double s = (3.0 - 4.0 * x[i]) * v[i];
        if (i > 0)
            s -= v[i - 1];
        if (i + 1 < n)
            s -= 2.0 * v[i + 1];
        jv[i] = s;
    }
}
