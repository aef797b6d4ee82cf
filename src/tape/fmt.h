/* src/tape/fmt.h -- a growable string buffer and exact double formatting,
 * shared by the disassembler and the code generators. */
#ifndef TG_TAPE_FMT_H
#define TG_TAPE_FMT_H

#include <stdbool.h>
#include <stddef.h>

#include "tape/internal.h"

typedef struct tape_sb {
    char *buf;          /* NUL-terminated once anything was written; malloc'd */
    size_t len, cap;
    bool failed;        /* an allocation failed: the content is incomplete */
} tape_sb;

void tape_sb_printf(tape_sb *sb, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
void tape_fmt_double(char *buf, size_t len, double v);
void tape_disasm_to(tape_sb *sb, const tg_tape *t);

#endif
