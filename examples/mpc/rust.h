/* examples/mpc/rust.h -- the MPC gradient as a Rust kernel: the gradient
 * tape (tg_gradient_tape, optimised at TG_OPT_BASIC) translated by
 * tg_rust_crate into DIR/mpc_grad, a runner crate DIR/mpc_runner that calls
 * it, both built with cargo offline (crates.io replaced by Debian's
 * /usr/share/cargo/registry), run at a point and compared with the C
 * result. */
#ifndef MPC_RUST_H
#define MPC_RUST_H

#include <stddef.h>

#include <tapegen.h>

enum {
    MPC_RUST_OK = 0,
    MPC_RUST_UNAVAILABLE = 2,   /* the tape could not be translated (message printed) */
    MPC_RUST_FAILED = 3,        /* build failed, or Rust and C disagree */
    MPC_RUST_NO_CARGO = 77
};

/* f: the cost tape; x: its n inputs; g_c: the C gradient at x (n values);
 * tol: the largest relative difference accepted (entrywise, with a floor of
 * 1e-6 max|g_c|: sin/cos/tan may differ by an ulp between glibc and Rust's
 * std).  Prints what it does.  Returns one of the codes above. */
int mpc_rust_check(const tg_tape *f, const double *x, const double *g_c, size_t n,
                   const char *dir, double tol);

#endif
