/* idmap: the hub's small containers. An idmap maps non-zero long long keys
 * to pointers (open addressing, linear probing, backward-shift deletion); a
 * ptrvec is an unordered set of pointers. Neither owns what it points to. */
#ifndef WATTLINE_IDMAP_H
#define WATTLINE_IDMAP_H

#include <stdbool.h>
#include <stddef.h>

struct idmap {
    long long *keys;
    void **vals;
    size_t cap; /* a power of two, or 0 */
    size_t count;
};

void *idmap_get(const struct idmap *m, long long key);
/* False when memory is short (the map is unchanged). */
bool idmap_put(struct idmap *m, long long key, void *val);
void idmap_del(struct idmap *m, long long key);
void idmap_free(struct idmap *m);

struct ptrvec {
    void **items;
    int n, cap;
};

bool ptrvec_add(struct ptrvec *v, void *p);
void ptrvec_remove(struct ptrvec *v, const void *p);

#endif
