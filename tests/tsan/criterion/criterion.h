/* tests/tsan/criterion/criterion.h -- a minimal stand-in for Criterion,
 * for the ThreadSanitizer build only (CMake option TG_TSAN).
 *
 * Criterion 2.4 cannot start under ThreadSanitizer: its runner maps an
 * "inheritable arena" that collides with TSan's shadow memory ("Could not
 * initialize inheritable arena: Resource temporarily unavailable",
 * Snaipe/Criterion#274).  This header lets an ordinary Criterion suite
 * (tests/test_threads.c) compile without Criterion: Test() registers a
 * function, main() runs them one after the other in this process, the
 * cr_assert / cr_expect macros check and print, and the run ends with
 * "N passed, N failed".  Only what the threads suite and testutil.h use is
 * here. */
#ifndef TG_TSAN_CRITERION_H
#define TG_TSAN_CRITERION_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct tsan_test {
    const char *suite, *name;
    void (*fn)(void);
} tsan_test;

static tsan_test tsan_tests[256];
static int tsan_ntests, tsan_failed_checks;

static void
tsan_register(const char *suite, const char *name, void (*fn)(void))
{
    if (tsan_ntests < 256) {
        tsan_test t = { suite, name, fn };
        tsan_tests[tsan_ntests++] = t;
    }
}

#define Test(suite, name, ...)                                                         \
    static void suite##_##name(void);                                                  \
    __attribute__((constructor)) static void tsan_reg_##suite##_##name(void)           \
    {                                                                                  \
        tsan_register(#suite, #name, suite##_##name);                                  \
    }                                                                                  \
    static void suite##_##name(void)

#define TestSuite(...) extern int tsan_unused_suite_decl

static void
tsan_msg(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static void
tsan_fail(int fatal, const char *file, int line, const char *cond)
{
    fprintf(stderr, "%s:%d: %s failed: %s\n  ", file, line, fatal ? "assertion" : "expectation",
            cond);
    tsan_failed_checks++;
}

/* cr_assert(cond, "fmt", args...): the message is optional. */
#define TSAN_CHECK(fatal, cond, ...)                                                   \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            tsan_fail(fatal, __FILE__, __LINE__, #cond);                               \
            tsan_msg(__VA_ARGS__);                                                     \
            if (fatal)                                                                 \
                exit(1);                                                               \
        }                                                                              \
    } while (0)

#define cr_assert(cond, ...) TSAN_CHECK(1, cond, "" __VA_ARGS__)
#define cr_expect(cond, ...) TSAN_CHECK(0, cond, "" __VA_ARGS__)
#define cr_assert_eq(a, b, ...) TSAN_CHECK(1, (a) == (b), "" __VA_ARGS__)
#define cr_expect_eq(a, b, ...) TSAN_CHECK(0, (a) == (b), "" __VA_ARGS__)
#define cr_assert_neq(a, b, ...) TSAN_CHECK(1, (a) != (b), "" __VA_ARGS__)
#define cr_expect_neq(a, b, ...) TSAN_CHECK(0, (a) != (b), "" __VA_ARGS__)
#define cr_assert_gt(a, b, ...) TSAN_CHECK(1, (a) > (b), "" __VA_ARGS__)
#define cr_expect_gt(a, b, ...) TSAN_CHECK(0, (a) > (b), "" __VA_ARGS__)
#define cr_assert_lt(a, b, ...) TSAN_CHECK(1, (a) < (b), "" __VA_ARGS__)
#define cr_expect_lt(a, b, ...) TSAN_CHECK(0, (a) < (b), "" __VA_ARGS__)
#define cr_assert_str_eq(a, b, ...) TSAN_CHECK(1, strcmp((a), (b)) == 0, "" __VA_ARGS__)
#define cr_expect_str_eq(a, b, ...) TSAN_CHECK(0, strcmp((a), (b)) == 0, "" __VA_ARGS__)
#define cr_log_error(...) tsan_msg(__VA_ARGS__)
#define cr_log_warn(...) tsan_msg(__VA_ARGS__)
#define cr_log_info(...) tsan_msg(__VA_ARGS__)

int
main(void)
{
    int passed = 0, failed = 0;
    for (int i = 0; i < tsan_ntests; i++) {
        int before = tsan_failed_checks;
        printf("[RUN ] %s::%s\n", tsan_tests[i].suite, tsan_tests[i].name);
        fflush(stdout);
        tsan_tests[i].fn();
        int ok = tsan_failed_checks == before;
        printf("[%s] %s::%s\n", ok ? "PASS" : "FAIL", tsan_tests[i].suite, tsan_tests[i].name);
        passed += ok;
        failed += !ok;
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}

#endif
