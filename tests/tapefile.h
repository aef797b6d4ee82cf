/* tests/tapefile.h -- the tape file format by hand (docs/file-format.md),
 * for tests and the fuzzer that craft files: little-endian accessors, the
 * FNV-1a 64 hash, and fixup(), which recomputes the header's size, the
 * section hashes (where the section lengths allow; as many sections as
 * the header says, at most 16, or all of a format 3 file) and the file hash, like a writer that does
 * not validate.  An independent reimplementation on
 * purpose: it must not share code with src/tape/file.c. */
#ifndef TG_TESTS_TAPEFILE_H
#define TG_TESTS_TAPEFILE_H

#include <stddef.h>
#include <stdint.h>

static inline uint32_t get32(const uint8_t *p)
{ return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static inline uint64_t get64(const uint8_t *p)
{ return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32; }
static inline void put16(uint8_t *p, uint16_t v)
{ p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static inline void put32(uint8_t *p, uint32_t v)
{ for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static inline void put64(uint8_t *p, uint64_t v)
{ put32(p, (uint32_t)v); put32(p + 4, (uint32_t)(v >> 32)); }

static inline uint64_t
fnv1a(const uint8_t *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

static inline void
fixup(uint8_t *p, size_t len)
{
    if (len < 32)
        return;
    put64(p + 16, len);
    size_t at = 24, end = len - 8;
    /* format 3: a TAPS section, then sections per tape up to the end */
    uint32_t nsec = get32(p + 8) == 3 ? UINT32_MAX : get32(p + 12) < 16 ? get32(p + 12) : 16;
    for (uint32_t s = 0; s < nsec && end - at >= 12; s++) {
        uint64_t slen = get64(p + at + 4);
        if (slen > end - at - 12 || end - at - 12 - slen < 8)
            break;
        put64(p + at + 12 + slen, fnv1a(p + at + 12, (size_t)slen));
        at += 12 + (size_t)slen + 8;
    }
    put64(p + end, fnv1a(p, end));
}

#endif
