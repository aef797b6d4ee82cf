/* src/codegen/native/spawn.c -- running the compiler: a command is a list
 * of words split on blanks (so "ccache gcc" works) and is started with
 * posix_spawnp, never through a shell.  Its stdout and stderr go into one
 * pipe that we read to the end (the library never lets a child write to
 * the caller's terminal); stdin is /dev/null. */
#define _GNU_SOURCE 1
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "codegen/native/native.h"
#include "tape/alloc.h"

extern char **environ;

int
nat_argv_add(nat_argv *a, const char *s)
{
    if (a->n >= NAT_MAX_ARGS)
        return -1;
    size_t len = strlen(s);
    char *w = mem_malloc(len + 1);
    if (!w)
        return -1;
    memcpy(w, s, len + 1);
    a->v[a->n++] = w;
    a->v[a->n] = NULL;
    return 0;
}

int
nat_argv_split(nat_argv *a, const char *cmd)
{
    int before = a->n;
    char word[4096];
    for (const char *p = cmd; *p;) {
        while (*p == ' ' || *p == '\t')
            p++;
        size_t len = strcspn(p, " \t");
        if (len == 0)
            break;
        if (len >= sizeof word)
            return -1;
        memcpy(word, p, len);
        word[len] = '\0';
        if (nat_argv_add(a, word))
            return -1;
        p += len;
    }
    return a->n > before ? 0 : -1;
}

void
nat_argv_free(nat_argv *a)
{
    for (int i = 0; i < a->n; i++)
        mem_free(a->v[i]);
    a->n = 0;
    a->v[0] = NULL;
}

/* Reads fd to EOF, keeping the first NAT_OUT_MAX bytes in *out (if out). */
static void
drain(int fd, char **out)
{
    char *buf = out ? mem_malloc(NAT_OUT_MAX + 1) : NULL;
    size_t len = 0;
    char chunk[4096];
    for (;;) {
        ssize_t r = read(fd, chunk, sizeof chunk);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        size_t take = (size_t)r;
        if (take > NAT_OUT_MAX - len)
            take = NAT_OUT_MAX - len;
        if (buf && take) {
            memcpy(buf + len, chunk, take);
            len += take;
        }
    }
    if (buf)
        buf[len] = '\0';
    if (out)
        *out = buf;
}

static int
wait_child(pid_t pid, int *code)
{
    int status;
    for (;;) {
        pid_t r = waitpid(pid, &status, 0);
        if (r == pid)
            break;
        if (r < 0 && errno == EINTR)
            continue;
        *code = -1;                 /* reaped elsewhere (SIGCHLD ignored): unknown */
        return 0;
    }
    *code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return 0;
}

int
nat_run(const nat_argv *argv, char **out, int *code)
{
    if (out)
        *out = NULL;
    int fds[2];
    if (pipe2(fds, O_CLOEXEC))      /* no other thread's child inherits our pipe */
        return -1;
    posix_spawn_file_actions_t fa;
    int err = posix_spawn_file_actions_init(&fa);
    if (err) {
        close(fds[0]);
        close(fds[1]);
        errno = err;
        return -1;
    }
    err = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    if (!err)
        err = posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    if (!err)
        err = posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
    pid_t pid = -1;
    if (!err)
        err = posix_spawnp(&pid, argv->v[0], &fa, NULL, argv->v, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    if (err) {
        close(fds[0]);
        errno = err;
        return -1;
    }
    drain(fds[0], out);
    close(fds[0]);
    return wait_child(pid, code);
}
