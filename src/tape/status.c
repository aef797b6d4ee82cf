/* src/tape/status.c -- status strings, and the thread-local message of the
 * last failing numeric call (recording errors live on the tape instead). */
#include <stdarg.h>
#include <stdio.h>

#include "internal.h"

static _Thread_local char last_error[256];

const char *
tg_status_str(tg_status s)
{
    switch (s) {
    case TG_OK:          return "success";
    case TG_ERR_NOMEM:   return "out of memory";
    case TG_ERR_ARG:     return "invalid argument";
    case TG_ERR_SHAPE:   return "wrong shape";
    case TG_ERR_IO:      return "input/output error";
    case TG_ERR_FORMAT:  return "not a valid tape file";
    case TG_ERR_NAME:    return "invalid or colliding identifier";
    case TG_ERR_LIMIT:   return "size limit exceeded";
    case TG_ERR_BRANCH:  return "a recorded branch goes the other way at this point";
    case TG_ERR_UNSUPPORTED: return "not supported by this build or machine";
    }
    return "unknown status";
}

const char *
tg_last_error(void)
{
    return last_error;
}

/* The one place numeric API errors pass through (a breakpoint target). */
tg_status
tape_fail_call(tg_status s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return s;
}
