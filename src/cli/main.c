/* tapegen -- the command-line tool.
 *
 *   tapegen --help | -h | help       list the commands (stdout, exit 0)
 *   tapegen --version | version      print the version (stdout, exit 0)
 *
 * Exit codes: 0 success, 1 failure while running a command (e.g. stdout
 * could not be written), 2 usage error (no command, unknown command or
 * option, extra arguments).  Usage errors are reported on stderr. */
#include <stdio.h>
#include <string.h>

#include "tapegen.h"

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

static const char usage_text[] =
    "usage: tapegen <command> [arguments]\n"
    "\n"
    "Automatic differentiation on a bytecode tape.\n"
    "\n"
    "Commands:\n"
    "  help, --help, -h        show this help and exit\n"
    "  version, --version      print the version (" TG_VERSION_STRING ") and exit\n"
    "\n"
    "Commands that read and write tape files, build derivative tapes and\n"
    "generate Rust crates (`tapegen rust TAPE_FILE... -o DIR`) arrive with\n"
    "later releases.  The library itself is used from C: see tapegen.h.\n";

/* Writes s to f; returns 0, or -1 if the stream reports an error. */
static int
put_all(FILE *f, const char *s)
{
    if (fputs(s, f) == EOF)
        return -1;
    if (fflush(f) == EOF || ferror(f))
        return -1;
    return 0;
}

/* Prints s on stdout for a successful command; a write error (full disk,
 * closed pipe) turns success into failure. */
static int
succeed_with(const char *s)
{
    if (put_all(stdout, s) != 0) {
        fprintf(stderr, "tapegen: cannot write to standard output\n");
        return EXIT_FAIL;
    }
    return EXIT_OK;
}

/* Reports a usage error ("tapegen: <problem> '<what>'", or just the problem
 * when what is NULL) and the usage on stderr. */
static int
usage_error(const char *problem, const char *what)
{
    if (what != NULL)
        fprintf(stderr, "tapegen: %s '%s'\n", problem, what);
    else
        fprintf(stderr, "tapegen: %s\n", problem);
    fputs(usage_text, stderr);
    return EXIT_USAGE;
}

static int
is_any(const char *s, const char *a, const char *b, const char *c)
{
    return strcmp(s, a) == 0 || (b != NULL && strcmp(s, b) == 0)
        || (c != NULL && strcmp(s, c) == 0);
}

int
main(int argc, char **argv)
{
    if (argc < 2)
        return usage_error("missing command", NULL);

    const char *cmd = argv[1];
    int is_help = is_any(cmd, "help", "--help", "-h");
    int is_version = is_any(cmd, "version", "--version", NULL);

    if (!is_help && !is_version) {
        if (cmd[0] == '-')
            return usage_error("unknown option", cmd);
        return usage_error("unknown command", cmd);
    }
    if (argc > 2)
        return usage_error("unexpected argument", argv[2]);

    if (is_help)
        return succeed_with(usage_text);
    return succeed_with("tapegen " TG_VERSION_STRING "\n");
}
