/* A downstream program built against an installed tapegen (see run.sh). */
#include <math.h>
#include <stdio.h>

#include <tapegen.h>

static int
near(double got, double want)
{
    return fabs(got - want) <= 1e-14 * (1.0 + fabs(want));
}

int
main(void)
{
    int fails = 0;
    tg_tape *t = tg_tape_new("consumer");
    if (t == NULL) {
        fprintf(stderr, "tg_tape_new: out of memory\n");
        return 1;
    }
    tg_var x = tg_input(t, "x");
    tg_output(t, "y", tg_sin(x));
    if (tg_tape_status(t) != TG_OK) {
        fprintf(stderr, "recording failed: %s\n", tg_tape_error(t));
        tg_tape_free(t);
        return 1;
    }

    double x0 = 0.5, y = 0.0, g = 0.0;
    tg_status s = tg_eval(t, &x0, &y);
    if (s != TG_OK || !near(y, sin(x0))) {
        fprintf(stderr, "tg_eval: %s, y = %.17g, want %.17g\n", tg_status_str(s), y, sin(x0));
        fails++;
    }
    s = tg_gradient(t, &x0, &g);
    if (s != TG_OK || !near(g, cos(x0))) {
        fprintf(stderr, "tg_gradient: %s, g = %.17g, want %.17g\n", tg_status_str(s), g, cos(x0));
        fails++;
    }

    /* The batch path pulls in the OpenMP part of the library (when built
     * with it), so a missing -fopenmp on the link line fails here. */
    double X[4] = { -1.0, 0.0, 0.25, 2.0 }, Y[4] = { 0 };
    s = tg_eval_batch(t, 4, X, Y);
    for (int i = 0; i < 4; i++) {
        if (s != TG_OK || !near(Y[i], sin(X[i]))) {
            fprintf(stderr, "tg_eval_batch[%d]: %s, y = %.17g, want %.17g\n",
                    i, tg_status_str(s), Y[i], sin(X[i]));
            fails++;
        }
    }

    tg_tape_free(t);
    if (fails != 0)
        return 1;
    printf("consumer: ok (tapegen %s)\n", TG_VERSION_STRING);
    return 0;
}
