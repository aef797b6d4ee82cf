/* src/codegen/names.c -- Rust identifiers.  User-facing names (tape and
 * block names) are sanitised; explicit crate and function names are
 * validated strictly; keywords are refused (gradgen's rules). */
#include <ctype.h>
#include <stdio.h>

#include "codegen/cg.h"

/* Strict, reserved and edition-2024 keywords (The Rust Reference, 2.3). */
static const char *const keywords[] = {
    "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum",
    "extern", "false", "fn", "for", "gen", "if", "impl", "in", "let", "loop", "match", "mod",
    "move", "mut", "pub", "ref", "return", "self", "Self", "static", "struct", "super", "trait",
    "true", "try", "type", "unsafe", "use", "where", "while", "abstract", "become", "box", "do",
    "final", "macro", "override", "priv", "typeof", "unsized", "virtual", "yield", "union",
    "macro_rules",
};

bool
cg_is_keyword(const char *s)
{
    for (size_t i = 0; i < sizeof keywords / sizeof *keywords; i++)
        if (strcmp(s, keywords[i]) == 0)
            return true;
    return false;
}

bool
cg_valid_ident(const char *s)
{
    if (!s || !*s || strlen(s) >= CG_IDENT_MAX || strcmp(s, "_") == 0 || cg_is_keyword(s))
        return false;
    if (!(isalpha((unsigned char)s[0]) || s[0] == '_'))
        return false;
    for (const char *p = s; *p; p++)
        if (!(isalnum((unsigned char)*p) || *p == '_'))
            return false;
    return true;
}

void
cg_sanitize(const char *s, char *out, size_t len)
{
    size_t o = 0;
    if (isdigit((unsigned char)s[0]))
        out[o++] = 'v';
    for (const char *p = s; *p && o + 1 < len; p++) {
        unsigned char c = (unsigned char)*p;
        char r = isalnum(c) && c < 0x80 ? (char)tolower(c) : '_';
        if (r == '_' && o > 0 && out[o - 1] == '_')
            continue;                               /* collapse runs of '_' */
        out[o++] = r;
    }
    while (o > 1 && out[o - 1] == '_')
        o--;
    out[o] = '\0';
    if (o == 0 || strcmp(out, "_") == 0)
        snprintf(out, len, "v");
}
