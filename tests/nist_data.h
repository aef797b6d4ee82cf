/* tests/nist_data.h -- where the NIST StRD datasets are, for the suites
 * that fit them (test_nist, test_nist_rust): $TG_SOURCE_DIR/examples/
 * nist_fit/data, else the directory beside this file's ../examples. */
#ifndef NIST_DATA_H
#define NIST_DATA_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *
data_dir(void)
{
    static char dir[4096];
    const char *src = getenv("TG_SOURCE_DIR");

    if (dir[0])
        return dir;
    if (src && *src) {
        snprintf(dir, sizeof dir, "%s/examples/nist_fit/data", src);
    } else {                                /* this file is SRC/tests/nist_data.h */
        const char *f = __FILE__, *slash = strrchr(f, '/');
        int len = slash ? (int)(slash - f) : 0;
        snprintf(dir, sizeof dir, "%.*s%s../examples/nist_fit/data", len, f,
                 slash ? "/" : "");
    }
    return dir;
}

#endif
