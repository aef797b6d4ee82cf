/* src/codegen/native/cc.c -- the compiler and its flags, and the identity
 * that keys the cache: the compiler's `--version` output (run once per
 * process and command), the command itself, the flags, and, with
 * -march=native, the CPU the code is tuned for (a cache directory shared
 * between machines then never hands one machine another's instructions). */
#define _GNU_SOURCE 1
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include "codegen/native/native.h"
#include "tape/alloc.h"
#include "tape/internal.h"

/* ------------------------------------------ `cc --version`, once per process */

#define ID_SLOTS 16
static struct {
    char cmd[512];
    unsigned char digest[NAT_SHA256_LEN];
} id_cache[ID_SLOTS];
static int id_count;
static pthread_mutex_t id_lock = PTHREAD_MUTEX_INITIALIZER;

static void
join(const nat_argv *a, char *buf, size_t len)
{
    size_t k = 0;
    buf[0] = '\0';
    for (int i = 0; i < a->n && k < len; i++)
        k += (size_t)snprintf(buf + k, len - k, "%s%s", i ? " " : "", a->v[i]);
}

static int
id_lookup(const char *cmd, unsigned char out[NAT_SHA256_LEN])
{
    int found = 0;
    pthread_mutex_lock(&id_lock);
    for (int i = 0; i < id_count && !found; i++)
        if (strcmp(id_cache[i].cmd, cmd) == 0) {
            memcpy(out, id_cache[i].digest, NAT_SHA256_LEN);
            found = 1;
        }
    pthread_mutex_unlock(&id_lock);
    return found;
}

static void
id_remember(const char *cmd, const unsigned char d[NAT_SHA256_LEN])
{
    pthread_mutex_lock(&id_lock);
    if (id_count < ID_SLOTS && strlen(cmd) < sizeof id_cache[0].cmd) {
        snprintf(id_cache[id_count].cmd, sizeof id_cache[0].cmd, "%s", cmd);
        memcpy(id_cache[id_count].digest, d, NAT_SHA256_LEN);
        id_count++;
    }
    pthread_mutex_unlock(&id_lock);
}

/* First line of s, at most 200 bytes, for messages. */
static void
first_lines(const char *s, char *buf, size_t len)
{
    snprintf(buf, len, "%s", s ? s : "");
    for (char *p = buf; *p; p++)
        if (*p == '\n' && p[1] == '\0')
            *p = '\0';
}

/* The digest of `cmd --version` and the command words. */
static tg_status
compiler_identity(const nat_argv *cmd, unsigned char out[NAT_SHA256_LEN], const char *fn)
{
    char joined[512];
    join(cmd, joined, sizeof joined);
    if (id_lookup(joined, out))
        return TG_OK;
    nat_argv a = { { NULL }, 0 };
    int code = 0;
    char *text = NULL;
    for (int i = 0; i < cmd->n; i++)
        if (nat_argv_add(&a, cmd->v[i]))
            goto nomem;
    if (nat_argv_add(&a, "--version"))
        goto nomem;
    if (nat_run(&a, &text, &code)) {
        int e = errno;
        nat_argv_free(&a);
        return tape_fail_call(TG_ERR_UNSUPPORTED,
                            "%s: no C compiler: cannot run \"%s\" (%s); set CC or "
                            "tg_compile_options.cc", fn, cmd->v[0], strerror(e));
    }
    nat_argv_free(&a);
    if (code != 0 || !text) {
        char msg[600];
        first_lines(text, msg, sizeof msg);
        mem_free(text);
        return tape_fail_call(TG_ERR_UNSUPPORTED, "%s: C compiler \"%s --version\" failed "
                            "(exit %d): %s", fn, joined, code, msg);
    }
    nat_sha256 s;
    nat_sha256_init(&s);
    nat_sha256_update(&s, joined, strlen(joined) + 1);
    nat_sha256_update(&s, text, strlen(text));
    nat_sha256_final(&s, out);
    mem_free(text);
    id_remember(joined, out);
    return TG_OK;
nomem:
    nat_argv_free(&a);
    return tape_fail_call(TG_ERR_NOMEM, "%s: out of memory", fn);
}

/* --------------------------------------------------------- CPU identity */

/* The lines of /proc/cpuinfo's first processor that say what instructions
 * -march=native may use (not its clock or numbering), and the machine. */
static void
hash_cpu_once(nat_sha256 *s)
{
    static const char *keys[] = { "vendor_id", "cpu family", "model", "model name", "stepping",
                                  "flags", "Features", "CPU implementer", "CPU architecture",
                                  "CPU variant", "CPU part", "isa", "uarch" };
    struct utsname u;
    if (uname(&u) == 0)
        nat_sha256_update(s, u.machine, strlen(u.machine) + 1);
    FILE *f = fopen("/proc/cpuinfo", "re");
    if (!f)
        return;
    char line[8192];
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '\n')
            break;                  /* end of the first processor */
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
            size_t k = strlen(keys[i]);
            if (strncmp(line, keys[i], k) == 0 && (line[k] == ' ' || line[k] == '\t' || line[k] == ':'))
                nat_sha256_update(s, line, strlen(line));
        }
    }
    fclose(f);
}

static unsigned char cpu_digest[NAT_SHA256_LEN];
static pthread_once_t cpu_once = PTHREAD_ONCE_INIT;

static void
cpu_init(void)
{
    nat_sha256 s;
    nat_sha256_init(&s);
    hash_cpu_once(&s);
    nat_sha256_final(&s, cpu_digest);
}

/* Read once per process: /proc/cpuinfo does not change under us. */
static void
hash_cpu(nat_sha256 *s)
{
    pthread_once(&cpu_once, cpu_init);
    nat_sha256_update(s, cpu_digest, sizeof cpu_digest);
}

/* ---------------------------------------------------------------- flags */

/* The C text of every op and helper, as the generated code spells them. */
static const char *const sem_text[] = {
#define OP(NAME, name, ar, fl, expr, rust) #expr,
#include "tapegen/ops.def"
#define HELPER(name, ...) #__VA_ARGS__,
#include "tape/mathx.def"
};

/* Functions IEEE 754 requires correctly rounded, so that the compiler's
 * folding (MPFR) and glibc agree; and names that are no libm calls. */
static bool
keep_builtin(const char *id, size_t len)
{
    static const char *const keep[] = { "sqrt", "fabs", "floor", "ceil", "round", "trunc",
                                        "isnan", "if", "return", "sizeof", "double" };
    if (len >= 4 && strncmp(id, "tg__", 4) == 0)
        return true;
    for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++)
        if (strlen(keep[i]) == len && strncmp(id, keep[i], len) == 0)
            return true;
    return false;
}

/* -fno-builtin-F for every libm function F the op semantics call that is
 * not correctly rounded (sin, exp, pow, ...): otherwise the compiler
 * evaluates F on constant operands at compile time with MPFR, correctly
 * rounded, where tg_eval calls glibc, which may differ in the last bit.
 * The list is read from the op table's own C text. */
static int
add_no_builtins(nat_argv *f)
{
    for (size_t i = 0; i < sizeof sem_text / sizeof sem_text[0]; i++) {
        for (const char *p = sem_text[i]; *p;) {
            if (!(isalpha((unsigned char)*p) || *p == '_')) {
                p++;
                continue;
            }
            const char *id = p;
            while (isalnum((unsigned char)*p) || *p == '_')
                p++;
            size_t len = (size_t)(p - id);
            const char *q = p;
            while (*q == ' ')
                q++;
            if (*q != '(' || keep_builtin(id, len) || len > 32)
                continue;
            char flag[64];
            snprintf(flag, sizeof flag, "-fno-builtin-%.*s", (int)len, id);
            int dup = 0;
            for (int k = 0; k < f->n && !dup; k++)
                dup = strcmp(f->v[k], flag) == 0;
            if (!dup && nat_argv_add(f, flag))
                return -1;
        }
    }
    return 0;
}

static int
add_flags(nat_argv *f, const nat_opts *o)
{
    char olev[8];
    snprintf(olev, sizeof olev, "-O%d", o->opt_level ? o->opt_level : 1);
    /* -ffp-contract=off / -fno-fast-math: the interpreter's exact IEEE
     * semantics (no FMA contraction, NaN/Inf/-0.0 kept); -fno-math-errno as
     * the library itself is built (lets sqrt inline; no value changes). */
    const char *fixed[] = { olev, "-fPIC", "-shared", "-ffp-contract=off", "-fno-fast-math",
                            "-fno-math-errno", "-w" };
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        if (nat_argv_add(f, fixed[i]))
            return -1;
    if (!(o->flags & TG_COMPILE_PORTABLE) && nat_argv_add(f, "-march=native"))
        return -1;
    return add_no_builtins(f);
}

tg_status
nat_cc_init(nat_cc *c, const nat_opts *o, const char *fn)
{
    memset(c, 0, sizeof *c);
    if (o->opt_level < 0 || o->opt_level > 3)
        return tape_fail_call(TG_ERR_ARG, "%s: opt_level %d is not 0..3", fn, o->opt_level);
    const char *cmd = o->cc;
    if (!cmd || !*cmd)
        cmd = getenv("CC");
    if (!cmd || !*cmd)
        cmd = "cc";
    if (nat_argv_split(&c->cmd, cmd))
        return tape_fail_call(TG_ERR_ARG, "%s: C compiler command \"%s\" is empty or too long",
                            fn, cmd);
    if (add_flags(&c->flags, o)) {
        nat_cc_free(c);
        return tape_fail_call(TG_ERR_NOMEM, "%s: out of memory", fn);
    }
    unsigned char ccid[NAT_SHA256_LEN];
    tg_status st = compiler_identity(&c->cmd, ccid, fn);
    if (st != TG_OK) {
        nat_cc_free(c);
        return st;
    }
    nat_sha256 s;
    nat_sha256_init(&s);
    nat_sha256_update(&s, "tapegen native 1", 17);
    nat_sha256_update(&s, ccid, sizeof ccid);
    for (int i = 0; i < c->flags.n; i++)
        nat_sha256_update(&s, c->flags.v[i], strlen(c->flags.v[i]) + 1);
    if (!(o->flags & TG_COMPILE_PORTABLE))
        hash_cpu(&s);
    nat_sha256_final(&s, c->id);
    return TG_OK;
}

void
nat_cc_free(nat_cc *c)
{
    nat_argv_free(&c->cmd);
    nat_argv_free(&c->flags);
}
