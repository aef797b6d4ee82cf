/* src/codegen/kernel.c -- a kernel's Rust names: the function name and the
 * sanitised block names, checked for keywords and collisions before any
 * code is generated (a TG_ERR_NAME here, never a rustc error later). */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>

#include "codegen/cg.h"
#include "tape/alloc.h"

static tg_status name_error(char *err, size_t len, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static tg_status
name_error(char *err, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, len, fmt, ap);
    va_end(ap);
    return TG_ERR_NAME;
}

/* Sanitised block names of one side; -1 on a keyword. */
static tg_status
block_names(const tape_block *b, uint32_t nb, char (*out)[CG_IDENT_MAX], char *err, size_t len)
{
    for (uint32_t i = 0; i < nb; i++) {
        cg_sanitize(b[i].name, out[i], CG_IDENT_MAX);
        if (!cg_valid_ident(out[i]))
            return name_error(err, len, "block \"%s\" becomes the Rust keyword or invalid name `%s`",
                              b[i].name, out[i]);
        if (strcmp(out[i], "work") == 0 || strcmp(out[i], "_work") == 0)
            return name_error(err, len, "block \"%s\" collides with the workspace argument `%s`",
                              b[i].name, out[i]);
    }
    return TG_OK;
}

tg_status
cg_kernel_names(cg_kernel *k, const tg_tape *t, const char *fname, char *err, size_t len)
{
    memset(k, 0, sizeof *k);
    k->t = t;
    snprintf(k->fname, sizeof k->fname, "%s", fname);
    for (size_t i = 0; i < sizeof k->uname; i++)
        k->uname[i] = (char)toupper((unsigned char)k->fname[i]);
    k->in = mem_calloc((size_t)t->ninb + 1, sizeof *k->in);
    k->out = mem_calloc((size_t)t->noutb + 1, sizeof *k->out);
    if (!k->in || !k->out)
        return TG_ERR_NOMEM;
    tg_status s = block_names(t->inb, t->ninb, k->in, err, len);
    if (s == TG_OK)
        s = block_names(t->outb, t->noutb, k->out, err, len);
    if (s != TG_OK)
        return s;
    uint32_t nb = t->ninb + t->noutb;
    for (uint32_t i = 0; i < nb; i++) {         /* all blocks share one namespace */
        const char *a = i < t->ninb ? k->in[i] : k->out[i - t->ninb];
        for (uint32_t j = i + 1; j < nb; j++) {
            const char *b = j < t->ninb ? k->in[j] : k->out[j - t->ninb];
            if (strcmp(a, b) == 0)
                return name_error(err, len, "two blocks of tape \"%s\" become the same Rust "
                                  "name `%s`", t->name, a);
        }
    }
    return TG_OK;
}

void
cg_kernel_free(cg_kernel *k)
{
    mem_free(k->in);
    mem_free(k->out);
    k->in = NULL;
    k->out = NULL;
}
