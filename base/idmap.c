#include "idmap.h"

#include <stdint.h>
#include <stdlib.h>

static size_t idmap_slot(const struct idmap *m, long long key)
{
    uint64_t x = (uint64_t)key; /* splitmix64's finaliser spreads sequential ids */
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return (size_t)x & (m->cap - 1);
}

void *idmap_get(const struct idmap *m, long long key)
{
    if (!m->cap)
        return NULL;
    for (size_t i = idmap_slot(m, key);; i = (i + 1) & (m->cap - 1)) {
        if (m->keys[i] == key)
            return m->vals[i];
        if (m->keys[i] == 0)
            return NULL;
    }
}

static bool idmap_grow(struct idmap *m)
{
    struct idmap bigger = {.cap = m->cap ? m->cap * 2 : 64};
    bigger.keys = calloc(bigger.cap, sizeof *bigger.keys);
    bigger.vals = calloc(bigger.cap, sizeof *bigger.vals);
    if (!bigger.keys || !bigger.vals) {
        free(bigger.keys);
        free(bigger.vals);
        return false;
    }
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->keys[i])
            continue;
        size_t j = idmap_slot(&bigger, m->keys[i]);
        while (bigger.keys[j])
            j = (j + 1) & (bigger.cap - 1);
        bigger.keys[j] = m->keys[i];
        bigger.vals[j] = m->vals[i];
    }
    bigger.count = m->count;
    free(m->keys);
    free(m->vals);
    *m = bigger;
    return true;
}

/* Inserts or replaces; false when out of memory. */
bool idmap_put(struct idmap *m, long long key, void *val)
{
    if ((m->count + 1) * 4 > m->cap * 3 && !idmap_grow(m))
        return false;
    size_t i = idmap_slot(m, key);
    while (m->keys[i] && m->keys[i] != key)
        i = (i + 1) & (m->cap - 1);
    if (!m->keys[i])
        m->count++;
    m->keys[i] = key;
    m->vals[i] = val;
    return true;
}

void idmap_del(struct idmap *m, long long key)
{
    if (!m->cap)
        return;
    size_t mask = m->cap - 1, i = idmap_slot(m, key);
    while (m->keys[i] != key) {
        if (!m->keys[i])
            return;
        i = (i + 1) & mask;
    }
    /* Shift back the entries that probed past the hole. */
    for (size_t j = (i + 1) & mask; m->keys[j]; j = (j + 1) & mask) {
        size_t home = idmap_slot(m, m->keys[j]);
        bool movable = i <= j ? (home <= i || home > j) : (home <= i && home > j);
        if (movable) {
            m->keys[i] = m->keys[j];
            m->vals[i] = m->vals[j];
            i = j;
        }
    }
    m->keys[i] = 0;
    m->vals[i] = NULL;
    m->count--;
}

void idmap_free(struct idmap *m)
{
    free(m->keys);
    free(m->vals);
    *m = (struct idmap){0};
}

bool ptrvec_add(struct ptrvec *v, void *p)
{
    if (v->n == v->cap) {
        int cap = v->cap ? v->cap * 2 : 4;
        void **items = realloc(v->items, (size_t)cap * sizeof *items);
        if (!items)
            return false;
        v->items = items;
        v->cap = cap;
    }
    v->items[v->n++] = p;
    return true;
}

void ptrvec_remove(struct ptrvec *v, const void *p)
{
    for (int i = 0; i < v->n; i++) {
        if (v->items[i] == p) {
            v->items[i] = v->items[--v->n];
            return;
        }
    }
}
