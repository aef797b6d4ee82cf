/* tapegen -- the command-line tool: dispatch to the subcommands.
 *
 *   tapegen --help | -h | help [COMMAND]   list the commands, or one command's help
 *   tapegen --version | version            print the version
 *   tapegen COMMAND [arguments]            see `tapegen COMMAND --help`
 *
 * Exit codes: 0 success, 1 failure while running a command (bad file,
 * library error, failed check, stdout not writable), 2 usage error.  Usage
 * errors and failures are reported on stderr. */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

static const cli_cmd *const commands[] = {
    &cli_cmd_info, &cli_cmd_dump, &cli_cmd_dot, &cli_cmd_eval, &cli_cmd_check,
    &cli_cmd_derive, &cli_cmd_optimize, &cli_cmd_rust, &cli_cmd_c, &cli_cmd_example,
};
#define NCOMMANDS (sizeof commands / sizeof *commands)

static void
print_usage(FILE *f)
{
    fputs("usage: tapegen <command> [arguments]\n"
          "\n"
          "Automatic differentiation on a bytecode tape: inspect, evaluate and\n"
          "differentiate tape files, and translate them to Rust and C.\n"
          "\n"
          "Commands:\n", f);
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(f, "  %-9s %s\n", commands[i]->name, commands[i]->summary);
    fputs("  help      show this help, or `tapegen help COMMAND` for one command\n"
          "  version   print the version (" TG_VERSION_STRING ")\n"
          "\n"
          "Options: -h, --help (also after a command), --version.\n"
          "Exit status: 0 success, 1 failure (unreadable or corrupt file, failed\n"
          "check, ...), 2 usage error.  Tape files: docs/file-format.md.\n"
          "Start with `tapegen example rosenbrock -o f.tape && tapegen info f.tape`.\n", f);
}

static void
print_command_help(FILE *f, const cli_cmd *c)
{
    fprintf(f, "usage: tapegen %s\n\n%s\n", c->synopsis, c->summary);
    if (c->help && *c->help)
        fprintf(f, "\n%s", c->help);
}

static const cli_cmd *
find_command(const char *name)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(commands[i]->name, name) == 0)
            return commands[i];
    return NULL;
}

/* Reports a top-level usage error and the usage on stderr. */
static int
usage_error(const char *problem, const char *what)
{
    if (what != NULL)
        fprintf(stderr, "tapegen: %s '%s'\n", problem, what);
    else
        fprintf(stderr, "tapegen: %s\n", problem);
    print_usage(stderr);
    return CLI_USAGE;
}

static int
is_any(const char *s, const char *a, const char *b, const char *c)
{
    return strcmp(s, a) == 0 || (b != NULL && strcmp(s, b) == 0)
        || (c != NULL && strcmp(s, c) == 0);
}

/* help, version: no other arguments except `help COMMAND`. */
static int
builtin(int argc, char **argv, int is_help)
{
    if (is_help && argc == 3) {
        const cli_cmd *c = find_command(argv[2]);
        if (c == NULL)
            return usage_error("unknown command", argv[2]);
        print_command_help(stdout, c);
        return CLI_OK;
    }
    if (argc > 2)
        return usage_error("unexpected argument", argv[2]);
    if (is_help)
        print_usage(stdout);
    else
        fputs("tapegen " TG_VERSION_STRING "\n", stdout);
    return CLI_OK;
}

static int
run_command(const cli_cmd *c, int argc, char **argv)
{
    cli_args a;
    int rc = cli_parse(c, argc, argv, &a);
    if (rc < 0) {
        print_command_help(stdout, c);
        rc = CLI_OK;
    } else if (rc == CLI_OK) {
        rc = c->run(&a);
    }
    free(a.pos);
    return rc;
}

int
main(int argc, char **argv)
{
    if (argc < 2)
        return usage_error("missing command", NULL);

    const char *cmd = argv[1];
    int rc;
    if (is_any(cmd, "help", "--help", "-h"))
        rc = builtin(argc, argv, 1);
    else if (is_any(cmd, "version", "--version", NULL))
        rc = builtin(argc, argv, 0);
    else if (find_command(cmd) != NULL)
        rc = run_command(find_command(cmd), argc - 2, argv + 2);
    else if (cmd[0] == '-')
        return usage_error("unknown option", cmd);
    else
        return usage_error("unknown command", cmd);

    /* A command whose output cannot be written (full disk, closed pipe)
     * has failed, whatever it computed. */
    if (fflush(stdout) == EOF || ferror(stdout)) {
        fprintf(stderr, "tapegen: cannot write to standard output\n");
        return CLI_FAIL;
    }
    return rc;
}
