/* src/codegen/native/cache.c -- the kernel cache: one file per shared
 * object, named by its key (hex SHA-256 of compiler identity, flags and C
 * source), written atomically (temporary file in the same directory, then
 * rename).  Each file is the shared object followed by a trailer
 *
 *     magic "TGKCACHE" | key (32) | SHA-256 of the object (32) |
 *     object size (8, little-endian) | version (4) | magic "TGKEND\0\0"
 *
 * (the dynamic loader maps segments through the ELF program headers and
 * ignores bytes after them).  An entry is loaded only when the trailer is
 * ours, names the key we want and the checksum matches the bytes: a
 * corrupt, truncated, foreign (any other .so renamed) or stale entry is
 * rebuilt, never loaded blindly.  Entries must be regular files owned by
 * the user and not writable by others; the directory is created 0700. */
#define _GNU_SOURCE 1
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "codegen/native/native.h"

enum { TRAILER_LEN = 8 + 32 + 32 + 8 + 4 + 8, CACHE_VERSION = 1 };
static const char MAGIC[8] = { 'T', 'G', 'K', 'C', 'A', 'C', 'H', 'E' };
static const char MAGIC_END[8] = { 'T', 'G', 'K', 'E', 'N', 'D', 0, 0 };

/* mkdir -p with mode 0700 for the directories we create. */
static int
mkdirs(char *path)
{
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        int r = mkdir(path, 0700);
        *p = '/';
        if (r && errno != EEXIST)
            return -1;
    }
    if (mkdir(path, 0700) && errno != EEXIST)
        return -1;
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode) ? 0 : -1;
}

int
nat_cache_dir(const char *cache_dir, char *buf, size_t len)
{
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    int n;
    if (cache_dir && *cache_dir)
        n = snprintf(buf, len, "%s", cache_dir);
    else if (xdg && xdg[0] == '/')      /* the XDG spec: relative values are ignored */
        n = snprintf(buf, len, "%s/tapegen", xdg);
    else if (home && *home)
        n = snprintf(buf, len, "%s/.cache/tapegen", home);
    else
        return -1;
    if (n < 0 || (size_t)n >= len - 80)     /* room for "/<64 hex>.so.tmp.XXXXXX" */
        return -1;
    while (n > 1 && buf[n - 1] == '/')
        buf[--n] = '\0';
    if (mkdirs(buf))
        return -1;
    return access(buf, W_OK | X_OK) == 0 ? 0 : -1;
}

void
nat_cache_path(const char *dir, const unsigned char key[NAT_SHA256_LEN], char *buf, size_t len)
{
    char hex[2 * NAT_SHA256_LEN + 1];
    nat_hex(key, NAT_SHA256_LEN, hex);
    snprintf(buf, len, "%s/%s.so", dir, hex);
}

static uint64_t
get64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static void
put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

/* SHA-256 of the first len bytes of fd (from offset 0); 0 or -1. */
static int
hash_fd(int fd, uint64_t len, unsigned char out[NAT_SHA256_LEN])
{
    nat_sha256 s;
    nat_sha256_init(&s);
    unsigned char buf[65536];
    uint64_t off = 0;
    while (off < len) {
        size_t want = len - off < sizeof buf ? (size_t)(len - off) : sizeof buf;
        ssize_t r = pread(fd, buf, want, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        nat_sha256_update(&s, buf, (size_t)r);
        off += (uint64_t)r;
    }
    nat_sha256_final(&s, out);
    return 0;
}

static int
check_fd(int fd, const unsigned char key[NAT_SHA256_LEN])
{
    struct stat st;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
        (st.st_mode & (S_IWGRP | S_IWOTH)) || st.st_size <= TRAILER_LEN)
        return -1;
    unsigned char tr[TRAILER_LEN];
    uint64_t body = (uint64_t)st.st_size - TRAILER_LEN;
    if (pread(fd, tr, TRAILER_LEN, (off_t)body) != TRAILER_LEN)
        return -1;
    const unsigned char *p = tr;
    if (memcmp(p, MAGIC, 8) || memcmp(p + 8, key, NAT_SHA256_LEN) || get64(p + 72) != body ||
        p[80] != CACHE_VERSION || p[81] || p[82] || p[83] || memcmp(p + 84, MAGIC_END, 8))
        return -1;
    unsigned char sum[NAT_SHA256_LEN];
    if (hash_fd(fd, body, sum) || memcmp(sum, p + 40, NAT_SHA256_LEN))
        return -1;
    return 0;
}

int
nat_cache_check(const char *path, const unsigned char key[NAT_SHA256_LEN])
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -1;
    int r = check_fd(fd, key);
    close(fd);
    return r;
}

static int
write_all(int fd, const void *p, size_t len)
{
    const char *c = p;
    while (len) {
        ssize_t w = write(fd, c, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        c += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Copies so_path into fd, appends the trailer. */
static int
write_entry(int fd, const char *so_path, const unsigned char key[NAT_SHA256_LEN])
{
    int in = open(so_path, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return -1;
    nat_sha256 s;
    nat_sha256_init(&s);
    unsigned char buf[65536];
    uint64_t size = 0;
    int bad = 0;
    for (;;) {
        ssize_t r = read(in, buf, sizeof buf);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            bad = 1;
        if (r <= 0)
            break;
        nat_sha256_update(&s, buf, (size_t)r);
        if (write_all(fd, buf, (size_t)r)) {
            bad = 1;
            break;
        }
        size += (uint64_t)r;
    }
    close(in);
    if (bad || size == 0)
        return -1;
    unsigned char tr[TRAILER_LEN];
    memcpy(tr, MAGIC, 8);
    memcpy(tr + 8, key, NAT_SHA256_LEN);
    nat_sha256_final(&s, tr + 40);
    put64(tr + 72, size);
    tr[80] = CACHE_VERSION; tr[81] = tr[82] = tr[83] = 0;
    memcpy(tr + 84, MAGIC_END, 8);
    return write_all(fd, tr, sizeof tr);
}

int
nat_cache_store(const char *dir, const unsigned char key[NAT_SHA256_LEN], const char *so_path)
{
    char path[4096], tmp[4096 + 16];
    nat_cache_path(dir, key, path, sizeof path);
    snprintf(tmp, sizeof tmp, "%s.tmp.XXXXXX", path);
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0)
        return -1;
    int r = fchmod(fd, 0600) || write_entry(fd, so_path, key);
    if (close(fd))
        r = -1;
    if (r == 0 && rename(tmp, path) == 0)
        return 0;
    unlink(tmp);
    return -1;
}
