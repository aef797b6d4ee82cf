/* src/tape/atomic.c -- writing files so that nothing is lost: every file the
 * library writes (tape files, the files of a Rust crate) goes to a
 * temporary file in the target's directory, is flushed to the disk (fsync),
 * and only then renamed over the target; the directory is synced last, so
 * the rename itself survives a crash.  A group of files is staged entirely
 * before the first rename, so a failure while writing (full disk, file size
 * limit, I/O error) leaves every old file intact and no temporary behind.
 * POSIX rename(2) replaces the target atomically. */
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tape/alloc.h"
#include "internal.h"

const char *
tape_errno_str(int err, char *buf, size_t len)
{
    /* strerror is not thread-safe; the XSI strerror_r is. */
    switch (err) {
    case EFBIG:  snprintf(buf, len, "file size limit exceeded"); return buf;
    case ENOSPC: snprintf(buf, len, "no space left on the device"); return buf;
    case EISDIR: snprintf(buf, len, "is a directory"); return buf;
    default:
        if (strerror_r(err, buf, len) != 0)
            snprintf(buf, len, "error %d", err);
        return buf;
    }
}

static int
fail_errno(char *err, size_t errlen, const char *what, const char *path, int e)
{
    char why[128];
    snprintf(err, errlen, "%s %s: %s", what, path, tape_errno_str(e, why, sizeof why));
    return -1;
}

/* The directory part of path ("." when it has none), in buf. */
static void
dir_of(const char *path, char *buf, size_t len)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(buf, len, ".");
    else if (slash == path)
        snprintf(buf, len, "/");
    else
        snprintf(buf, len, "%.*s", (int)(slash - path), path);
}

/* The file the write must replace: path itself, or the file a symbolic link
 * points to (so the link stays a link).  -1 with a message when path is a
 * directory or cannot be resolved. */
static int
target_of(const char *path, char *out, size_t len, mode_t *mode, bool *exists,
          char *err, size_t errlen)
{
    struct stat st;
    *exists = false;
    if (snprintf(out, len, "%s", path) >= (int)len)
        return fail_errno(err, errlen, "cannot write", path, ENAMETOOLONG);
    if (lstat(path, &st) != 0)
        return errno == ENOENT ? 0 : fail_errno(err, errlen, "cannot write", path, errno);
    if (S_ISLNK(st.st_mode)) {
        char real[PATH_MAX];
        if (!realpath(path, real)) {
            if (errno != ENOENT)    /* a dangling link: written through below */
                return fail_errno(err, errlen, "cannot write", path, errno);
            return 0;
        }
        if (snprintf(out, len, "%s", real) >= (int)len)
            return fail_errno(err, errlen, "cannot write", path, ENAMETOOLONG);
        if (stat(real, &st) != 0)
            return fail_errno(err, errlen, "cannot write", path, errno);
    }
    if (S_ISDIR(st.st_mode))
        return fail_errno(err, errlen, "cannot write", path, EISDIR);
    *exists = true;
    *mode = st.st_mode & 07777;
    return 0;
}

/* Creates a new temporary file next to target with mode 0666 & ~umask
 * (open applies the umask; mkstemp would give 0600).  Its name goes to tmp. */
static int
create_temp(const char *target, const char *shown, char *tmp, size_t len, char *err, size_t errlen)
{
    static atomic_uint serial;
    char dir[PATH_MAX];
    dir_of(target, dir, sizeof dir);
    for (int attempt = 0; attempt < 100; attempt++) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        unsigned long tag = (unsigned long)ts.tv_nsec ^ ((unsigned long)atomic_fetch_add(&serial, 1) << 20);
        if (snprintf(tmp, len, "%s/.tapegen-%ld-%lx.tmp", dir, (long)getpid(), tag) >= (int)len)
            return fail_errno(err, errlen, "cannot write", shown, ENAMETOOLONG);
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd >= 0)
            return fd;
        if (errno != EEXIST)
            return fail_errno(err, errlen, "cannot write", shown, errno);
    }
    return fail_errno(err, errlen, "cannot write", shown, EEXIST);
}

/* Writes all n bytes, retrying after signals and short writes. */
static int
write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n > ((size_t)1 << 30) ? (size_t)1 << 30 : n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return w < 0 ? -1 : (errno = EIO, -1);
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* One staged file: its temporary is written and synced. */
static int
stage(const tape_wfile *f, char *target, char *tmp, char *err, size_t errlen)
{
    mode_t mode = 0;
    bool exists;
    if (target_of(f->path, target, PATH_MAX, &mode, &exists, err, errlen))
        return -1;
    int fd = create_temp(target, f->path, tmp, PATH_MAX, err, errlen);
    if (fd < 0)
        return -1;
    int e = 0;
    if (exists && fchmod(fd, mode) != 0)    /* a replaced file keeps its mode */
        e = errno;
    if (!e && write_all(fd, f->data, f->len) != 0)
        e = errno;
    if (!e && fsync(fd) != 0)
        e = errno;
    if (close(fd) != 0 && !e)
        e = errno;
    if (!e)
        return 0;
    unlink(tmp);
    return fail_errno(err, errlen, "cannot write", f->path, e);
}

/* Makes the renames in dir durable.  File systems that cannot sync a
 * directory say EINVAL: nothing more can be done there. */
static int
sync_dir(const char *target, char *err, size_t errlen)
{
    char dir[PATH_MAX];
    dir_of(target, dir, sizeof dir);
    int fd = open(dir, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return fail_errno(err, errlen, "cannot sync directory", dir, errno);
    int e = fsync(fd) != 0 && errno != EINVAL ? errno : 0;
    close(fd);
    return e ? fail_errno(err, errlen, "cannot sync directory", dir, e) : 0;
}

tg_status
tape_write_files(const tape_wfile *f, size_t n, char *err, size_t errlen)
{
    char (*target)[PATH_MAX] = mem_calloc(2 * n + 1, PATH_MAX);
    if (!target) {
        snprintf(err, errlen, "out of memory");
        return TG_ERR_NOMEM;
    }
    char (*tmp)[PATH_MAX] = target + n;
    size_t staged = 0, renamed = 0;
    int rc = 0;
    while (rc == 0 && staged < n)       /* a failed stage removes its own temporary */
        if ((rc = stage(&f[staged], target[staged], tmp[staged], err, errlen)) == 0)
            staged++;
    while (rc == 0 && renamed < n)
        if ((rc = rename(tmp[renamed], target[renamed])) == 0)
            renamed++;
        else
            fail_errno(err, errlen, "cannot replace", f[renamed].path, errno);
    for (size_t i = renamed; i < staged; i++)  /* nothing left behind */
        unlink(tmp[i]);
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = sync_dir(target[i], err, errlen);
    mem_free(target);
    return rc == 0 ? TG_OK : TG_ERR_IO;
}

tg_status
tape_write_file(const char *path, const void *data, size_t len, char *err, size_t errlen)
{
    tape_wfile f = { path, data, len };
    return tape_write_files(&f, 1, err, errlen);
}

int
tape_mkdirs(const char *path, char *err, size_t errlen)
{
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return fail_errno(err, errlen, "cannot create directory", path, ENAMETOOLONG);
    for (char *p = buf + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char c = *p;
        *p = '\0';
        struct stat st;
        if (mkdir(buf, 0777) != 0 && (errno != EEXIST || stat(buf, &st) != 0 || !S_ISDIR(st.st_mode)))
            return fail_errno(err, errlen, "cannot create directory", buf, errno == EEXIST ? ENOTDIR : errno);
        *p = c;
        if (c == '\0')
            return 0;
    }
}
