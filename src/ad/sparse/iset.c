/* src/ad/sparse/iset.c -- index sets over [0, U) for the pattern sweeps.
 * A set is a sorted list while that is smaller than a bitset of U bits
 * (len <= U/32 words) and a bitset after, so memory is
 * min(4 len, U/8) bytes and a union costs O(min(len, U/32)) beyond the
 * elements it adds.  Appending larger elements to a list (the common case:
 * a running sum over x_0, x_1, ...) merges from the end and costs only
 * what it adds.  Set structs come from slabs and are recycled with their
 * buffers.  An allocation failure sets S->oom; every later call is then a
 * no-op, and the caller checks S->oom once at the end. */
#include <stdlib.h>

#include "tape/alloc.h"
#include "ad/sparse/sparse.h"

enum { SLAB = 1024 };

int
sp_sets_init(sp_sets *S, uint32_t U)
{
    memset(S, 0, sizeof *S);
    S->U = U;
    S->words = (U + 31) / 32;
    S->scratch = mem_malloc(((size_t)U + 1) * sizeof *S->scratch);
    S->oom = S->scratch == NULL;
    return S->oom ? -1 : 0;
}

void
sp_sets_free(sp_sets *S)
{
    for (uint32_t i = 0; i < S->nslabs; i++) {
        sp_set *slab = S->slabs[i];
        uint32_t count = i + 1 == S->nslabs ? S->slabused : SLAB;
        for (uint32_t k = 0; k < count; k++)
            mem_free(slab[k].p);
        mem_free(slab);
    }
    mem_free(S->slabs);
    mem_free(S->scratch);
    memset(S, 0, sizeof *S);
}

sp_set *
sp_set_new(sp_sets *S)
{
    if (S->oom)
        return NULL;
    sp_set *s = S->free;
    if (s) {
        S->free = s->next;
    } else {
        if (S->nslabs == 0 || S->slabused == SLAB) {
            if (S->nslabs == S->slabcap) {
                uint32_t cap = S->slabcap ? 2 * S->slabcap : 16;
                void **p = mem_realloc(S->slabs, cap * sizeof *p);
                if (!p)
                    return S->oom = 1, NULL;
                S->slabs = p;
                S->slabcap = cap;
            }
            sp_set *slab = mem_calloc(SLAB, sizeof *slab);
            if (!slab)
                return S->oom = 1, NULL;
            S->slabs[S->nslabs++] = slab;
            S->slabused = 0;
        }
        s = (sp_set *)S->slabs[S->nslabs - 1] + S->slabused++;
    }
    s->len = 0;
    s->bits = 0;
    s->refs = 1;
    s->next = NULL;
    return s;
}

void
sp_set_release(sp_sets *S, sp_set *s)
{
    if (s && --s->refs == 0) {
        s->next = S->free;
        S->free = s;
    }
}

/* s->p holds at least cap words */
static int
reserve(sp_sets *S, sp_set *s, uint32_t cap)
{
    if (S->oom)
        return -1;
    if (cap <= s->cap)
        return 0;
    uint32_t nc = s->cap < 4 ? 4 : s->cap;
    while (nc < cap)
        nc = nc > UINT32_MAX / 2 ? cap : 2 * nc;
    uint32_t *p = mem_realloc(s->p, (size_t)nc * sizeof *p);
    if (!p)
        return S->oom = 1, -1;
    s->p = p;
    s->cap = nc;
    return 0;
}

/* list -> bitset (a new buffer: the caller's src may be any scratch) */
static int
to_bits(sp_sets *S, sp_set *s)
{
    if (S->oom)
        return -1;
    uint32_t *p = mem_calloc(S->words ? S->words : 1, sizeof *p);
    if (!p)
        return S->oom = 1, -1;
    for (uint32_t k = 0; k < s->len; k++)
        p[s->p[k] >> 5] |= 1u << (s->p[k] & 31);
    mem_free(s->p);
    s->p = p;
    s->cap = S->words ? S->words : 1;
    s->bits = 1;
    return 0;
}

static void
add_bits(sp_set *s, const uint32_t *src, uint32_t n)
{
    for (uint32_t k = 0; k < n; k++) {
        uint32_t w = src[k] >> 5, b = 1u << (src[k] & 31);
        s->len += !(s->p[w] & b);
        s->p[w] |= b;
    }
}

/* first index of l[0..n) holding a value >= x */
static uint32_t
lower_bound(const uint32_t *l, uint32_t n, uint32_t x)
{
    uint32_t lo = 0, hi = n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (l[mid] < x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* elements of src[0..n) not in the list l[0..len) */
static uint32_t
count_new(const uint32_t *l, uint32_t len, const uint32_t *src, uint32_t n)
{
    uint32_t fresh = 0;
    if ((uint64_t)n * 16 < len) {           /* few into many: binary search */
        for (uint32_t k = 0; k < n; k++) {
            uint32_t at = lower_bound(l, len, src[k]);
            fresh += at == len || l[at] != src[k];
        }
        return fresh;
    }
    uint32_t i = 0;
    for (uint32_t k = 0; k < n; k++) {
        while (i < len && l[i] < src[k])
            i++;
        fresh += i == len || l[i] != src[k];
    }
    return fresh;
}

void
sp_set_add(sp_sets *S, sp_set *s, const uint32_t *src, uint32_t n)
{
    if (S->oom || n == 0)
        return;
    if (s->bits) {
        add_bits(s, src, n);
        return;
    }
    /* appending beyond the largest element: the common, cheap case */
    uint32_t fresh = (s->len == 0 || src[0] > s->p[s->len - 1]) ? n
                   : count_new(s->p, s->len, src, n);
    if (fresh == 0)
        return;
    if (s->len + fresh > S->words) {
        if (to_bits(S, s) == 0)
            add_bits(s, src, n);
        return;
    }
    if (reserve(S, s, s->len + fresh))
        return;
    /* merge from the end, in place; equal elements are kept once */
    uint32_t *l = s->p;
    int64_t i = (int64_t)s->len - 1, j = (int64_t)n - 1, k = (int64_t)(s->len + fresh) - 1;
    while (j >= 0) {
        if (i >= 0 && l[i] > src[j]) {
            l[k--] = l[i--];
        } else {
            if (i >= 0 && l[i] == src[j])
                i--;
            l[k--] = src[j--];
        }
    }
    s->len += fresh;
}

void
sp_set_union(sp_sets *S, sp_set *s, const sp_set *t)
{
    if (S->oom || !t || t->len == 0 || s == t)
        return;
    if (!t->bits) {
        sp_set_add(S, s, t->p, t->len);
        return;
    }
    if (!s->bits && to_bits(S, s))
        return;
    uint32_t len = 0;
    for (uint32_t w = 0; w < S->words; w++) {
        s->p[w] |= t->p[w];
#if defined(__GNUC__)
        len += (uint32_t)__builtin_popcount(s->p[w]);
#else
        for (uint32_t x = s->p[w]; x; x &= x - 1)
            len++;
#endif
    }
    s->len = len;
}

sp_set *
sp_set_copy(sp_sets *S, const sp_set *t)
{
    sp_set *s = sp_set_new(S);
    if (!s)
        return NULL;
    uint32_t words = t->bits ? S->words : t->len;
    if (reserve(S, s, words)) {
        sp_set_release(S, s);
        return NULL;
    }
    memcpy(s->p, t->p, (size_t)words * sizeof *s->p);
    s->len = t->len;
    s->bits = t->bits;
    return s;
}

const uint32_t *
sp_set_list(const sp_set *s, uint32_t *out)
{
    if (!s->bits)
        return s->p;
    uint32_t k = 0;
    for (uint32_t w = 0; k < s->len; w++)
        for (uint32_t x = s->p[w]; x; x &= x - 1) {
#if defined(__GNUC__)
            out[k++] = 32 * w + (uint32_t)__builtin_ctz(x);
#else
            uint32_t b = 0;
            while (!(x >> b & 1))
                b++;
            out[k++] = 32 * w + b;
#endif
        }
    return out;
}
