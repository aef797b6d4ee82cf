/* src/cli/cli.h -- the tapegen command-line tool: one cli_cmd per
 * subcommand (cmd_*.c), a shared option parser (opts.c), tape loading,
 * messages and printing (util.c).  Tapes are read through the public
 * instruction view (tg_tape_insn), never by parsing the disassembly.
 *
 * The tool is a client of the public API only (tapegen.h).  Exit codes:
 * CLI_OK 0 success, CLI_FAIL 1 the command could not be carried out (file
 * missing or corrupt, library error, derivative check above tolerance,
 * output not writable), CLI_USAGE 2 the command line is wrong (unknown
 * command or option, missing or malformed argument, a value that does not
 * fit the tape).  Messages go to stderr as "tapegen CMD: problem". */
#ifndef TG_CLI_H
#define TG_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "tapegen.h"

enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

#define CLI_MAX_OPTS 16

#if defined(__GNUC__)
#define CLI_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define CLI_PRINTF(f, a)
#endif

/* One option of a command: "--name" and an optional short alias ("-o");
 * metavar is the placeholder of its value in help texts, NULL for a flag. */
typedef struct cli_opt {
    const char *name;
    const char *alias;
    const char *metavar;
} cli_opt;

typedef struct cli_cmd cli_cmd;

/* A parsed command line.  val[i] belongs to cmd->opts[i]: its value, "" for
 * a flag that was given, NULL when absent. */
typedef struct cli_args {
    const cli_cmd *cmd;
    const char **pos;
    int npos;
    const char *val[CLI_MAX_OPTS];
} cli_args;

struct cli_cmd {
    const char *name;
    const char *synopsis;       /* "info FILE" */
    const char *summary;        /* one line for `tapegen --help` */
    const char *help;           /* the body of `tapegen CMD --help` */
    const cli_opt *opts;        /* terminated by { NULL } */
    int min_pos, max_pos;       /* positional arguments; max_pos < 0: any */
    int (*run)(const cli_args *a);
};

extern const cli_cmd cli_cmd_info, cli_cmd_dump, cli_cmd_dot, cli_cmd_eval, cli_cmd_derive,
    cli_cmd_optimize, cli_cmd_check, cli_cmd_rust, cli_cmd_c, cli_cmd_example;

/* opts.c: parses argv[0..argc) (the words after the command name) into a.
 * Returns CLI_OK, CLI_USAGE (message printed) or -1 when --help/-h was
 * given.  a->pos must be freed with free(). */
int cli_parse(const cli_cmd *c, int argc, char **argv, cli_args *a);
/* The comma-separated numbers of option `opt` (value s) into a malloc'd
 * array (*v, *n); "" is the empty list.  CLI_OK or CLI_USAGE (printed). */
int cli_numbers(const cli_args *a, const char *opt, const char *s, double **v, size_t *n);
/* As cli_numbers, and exactly `want` values are required (`what` names
 * them on tape t, e.g. "inputs"). */
int cli_vector(const cli_args *a, const char *opt, const char *s, const tg_tape *t, size_t want,
               const char *what, double **v);
/* "none".."max" or 0..4 into *level (a NULL s keeps *level). */
int cli_level(const cli_args *a, const char *opt, const char *s, tg_opt_level *level);
/* A block of t by name, else by 0-based index; NULL s gives TG_ALL. */
int cli_wrt(const cli_args *a, const tg_tape *t, const char *s, int *wrt);
/* A non-negative integer. */
int cli_count(const cli_args *a, const char *opt, const char *s, size_t lo, size_t hi, size_t *out);

/* util.c */
int cli_usage(const cli_args *a, const char *fmt, ...) CLI_PRINTF(2, 3);
int cli_fail(const cli_args *a, const char *fmt, ...) CLI_PRINTF(2, 3);
/* The required option i of a, or a usage error (NULL, printed). */
const char *cli_required(const cli_args *a, int i, int *rc);
/* Loads path; NULL after printing why (the library's message, naming the
 * file and the byte offset; for unreadable files also the system's
 * reason).  *rc receives CLI_FAIL then. */
tg_tape *cli_load(const cli_args *a, const char *path, int *rc);
/* Saves t to path; CLI_OK or CLI_FAIL (printed). */
int cli_save(const cli_args *a, const tg_tape *t, const char *path);
/* Numbers with %.17g, separated by one space. */
void cli_print_row(FILE *f, const double *v, size_t n);
/* A rows x cols row-major matrix, one row per line, each indented by two. */
void cli_print_matrix(FILE *f, const double *m, size_t rows, size_t cols);
/* "PATH: tape "name", 2 inputs, 1 output, 11 instructions" on stdout. */
void cli_describe(const char *path, const tg_tape *t);
/* "1 input" / "2 inputs". */
const char *cli_plural(size_t n, const char *one, const char *many);
/* Allocation that cannot return NULL (the tool exits with 1 on failure). */
void *cli_alloc(size_t count, size_t size);

/* pattern.c: pictures of sparsity patterns (rows x cols; symmetric: s
 * holds the lower triangle and the picture mirrors it).  The ASCII picture
 * has at most maxw x maxh characters ('#' nonzero, '.' zero), each one a
 * block of entries when the matrix is larger. */
void cli_pattern_ascii(FILE *f, const tg_sparsity *s, size_t rows, size_t cols, int symmetric,
                       size_t maxw, size_t maxh);
typedef struct cli_pattern {
    const char *title;
    const tg_sparsity *s;
    size_t rows, cols;
    int symmetric;
} cli_pattern;
/* An SVG with one panel per pattern (at most 400 x 400 cells each), written
 * to path through a temporary file and a rename.  0, or -1 with the reason
 * in why. */
int cli_pattern_svg(const char *path, const cli_pattern *p, size_t np, char *why, size_t why_len);

#endif
