/* src/tape/attach.c -- objects that the layers above keep on a tape
 * (caches such as a pool of scratch memory) without the tape knowing what
 * they are.  Each owner names its attachment by a static key (how to make and
 * destroy it); a tape holds at most one attachment per key, made on first
 * use and destroyed with the tape.  Lock-free: the attachments form a list
 * that only grows, pushed by compare-and-swap; a thread that loses a race
 * to attach the same key destroys its own copy and takes the winner's. */
#include "tape/alloc.h"
#include "internal.h"

struct tape_attached {
    const tape_key *key;
    void *obj;
    struct tape_attached *next;
};

static void *
find(struct tape_attached *a, const tape_key *key)
{
    for (; a; a = a->next)
        if (a->key == key)
            return a->obj;
    return NULL;
}

void *
tape_attachment(const tg_tape *t, const tape_key *key)
{
    /* the list is synchronised by its own atomics, so a const tape may grow it */
    tg_tape *mt = (tg_tape *)(uintptr_t)t;
    struct tape_attached *head = atomic_load(&mt->attached), *mine = NULL;
    for (;;) {
        void *obj = find(head, key);
        if (obj) {
            if (mine) {
                key->destroy(mine->obj);
                mem_free(mine);
            }
            return obj;
        }
        if (!mine) {
            mine = mem_malloc(sizeof *mine);
            if (!mine)
                return NULL;
            mine->key = key;
            mine->obj = key->make();
            if (!mine->obj) {
                mem_free(mine);
                return NULL;
            }
        }
        mine->next = head;
        if (atomic_compare_exchange_strong(&mt->attached, &head, mine))
            return mine->obj;
        /* head now holds the list another thread pushed: look again */
    }
}

void
tape_detach_all(tg_tape *t)
{
    struct tape_attached *a = atomic_exchange(&t->attached, NULL);
    while (a) {
        struct tape_attached *next = a->next;
        a->key->destroy(a->obj);
        mem_free(a);
        a = next;
    }
}
