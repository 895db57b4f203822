/* unauth: sessions that have not authenticated yet, counted per client
 * address. They do not count against the authenticated total, so sockets
 * that never authenticate cannot keep users out; instead one address may hold
 * at most max_unauth_per_addr of them (the rest get 1013 at once), and all of
 * them together at most max_sessions, which bounds what they can make the
 * server hold. A session leaves its address's count when it authenticates
 * or is gone. Transport thread only.
 *
 * The addresses are the keys of an idmap through a seeded hash; the few that
 * share a hash are chained. An entry lives while its address has a session
 * counted, so there are never more entries than sessions in the pool. */
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../base/crypto.h"
#include "hub_internal.h"

/* The bucket of clients whose address is not known. */
#define UNAUTH_UNKNOWN "unknown"

struct unauth_entry {
    struct unauth_entry *next; /* another address with the same key */
    long long key;
    int sessions;
    char addr[HUB_ADDR_MAX];
};

void unauth_init(struct unauth_index *u)
{
    if (!crypto_random((unsigned char *)&u->seed, sizeof u->seed))
        u->seed = 0x9e3779b97f4a7c15ULL; /* still correct; only easier to collide */
}

/* FNV-1a over the seed and the address, finished with murmur3's mixer. */
static long long unauth_key(const struct unauth_index *u, const char *addr)
{
    uint64_t x = 14695981039346656037ULL;
    for (int i = 0; i < 8; i++) {
        x ^= (u->seed >> (8 * i)) & 0xff;
        x *= 1099511628211ULL;
    }
    for (const unsigned char *p = (const unsigned char *)addr; *p; p++) {
        x ^= *p;
        x *= 1099511628211ULL;
    }
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return (long long)(x & (uint64_t)LLONG_MAX) | 1; /* idmap keys are non-zero */
}

static struct unauth_entry *unauth_find(const struct unauth_index *u, long long key,
                                        const char *addr)
{
    struct unauth_entry *e = idmap_get(&u->addrs, key);
    while (e && strcmp(e->addr, addr) != 0)
        e = e->next;
    return e;
}

enum unauth_verdict unauth_take(struct hub *h, struct hub_session *s, const char *addr)
{
    struct unauth_index *u = &h->unauth;
    if (!addr || !*addr || strlen(addr) >= HUB_ADDR_MAX)
        addr = UNAUTH_UNKNOWN;
    long long key = unauth_key(u, addr);
    struct unauth_entry *e = unauth_find(u, key, addr);
    if (e && e->sessions >= h->limits.max_unauth_per_addr)
        return UNAUTH_ADDR_FULL;
    if (u->count >= h->limits.max_sessions)
        return UNAUTH_POOL_FULL;
    if (!e) {
        if (!(e = calloc(1, sizeof *e)))
            return UNAUTH_NO_MEMORY;
        e->key = key;
        memcpy(e->addr, addr, strlen(addr) + 1);
        e->next = idmap_get(&u->addrs, key);
        if (!idmap_put(&u->addrs, key, e)) {
            free(e);
            return UNAUTH_NO_MEMORY;
        }
    }
    e->sessions++;
    u->count++;
    s->unauth = e;
    return UNAUTH_TAKEN;
}

void unauth_release(struct hub *h, struct hub_session *s)
{
    struct unauth_index *u = &h->unauth;
    struct unauth_entry *e = s->unauth;
    if (!e)
        return;
    s->unauth = NULL;
    u->count--;
    if (--e->sessions > 0)
        return;
    struct unauth_entry *head = idmap_get(&u->addrs, e->key);
    if (head == e) {
        /* Deleted first, so that putting the next one back needs no room. */
        idmap_del(&u->addrs, e->key);
        if (e->next)
            idmap_put(&u->addrs, e->key, e->next);
    } else {
        while (head->next != e)
            head = head->next;
        head->next = e->next;
    }
    free(e);
}

void unauth_free(struct unauth_index *u)
{
    for (size_t i = 0; i < u->addrs.cap; i++) {
        if (!u->addrs.keys[i])
            continue;
        for (struct unauth_entry *e = u->addrs.vals[i], *next; e; e = next) {
            next = e->next;
            free(e);
        }
    }
    idmap_free(&u->addrs);
}
