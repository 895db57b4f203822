#include "migration_files.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/crypto.h"

bool migrations_parse_name(const char *name, long *version)
{
    size_t digits = strspn(name, "0123456789");
    size_t len = strlen(name);
    if (digits == 0 || digits > 9 || name[digits] != '_' || len < digits + 6 ||
        strcmp(name + len - 4, ".sql") != 0)
        return false;
    *version = strtol(name, NULL, 10);
    return true;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    if (fseek(f, 0, SEEK_END) == 0) {
        long size = ftell(f);
        if (size >= 0 && fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)size + 1))) {
            *len = fread(buf, 1, (size_t)size, f);
            buf[*len] = '\0';
            if (*len != (size_t)size) {
                free(buf);
                buf = NULL;
            }
        }
    }
    fclose(f);
    return buf;
}

static int by_version(const void *a, const void *b)
{
    long va = ((const struct migration *)a)->version, vb = ((const struct migration *)b)->version;
    return (va > vb) - (va < vb);
}

static bool add_file(struct migration_set *set, size_t *cap, const char *dir, const char *name,
                     long version, char *err, size_t errlen)
{
    if (set->count == *cap) {
        size_t ncap = *cap ? *cap * 2 : 16;
        struct migration *items = realloc(set->items, ncap * sizeof *items);
        if (!items) {
            snprintf(err, errlen, "out of memory");
            return false;
        }
        set->items = items;
        *cap = ncap;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    struct migration *m = &set->items[set->count];
    memset(m, 0, sizeof *m);
    size_t len = 0;
    m->version = version;
    m->name = strdup(name);
    m->sql = read_file(path, &len);
    if (!m->name || !m->sql) {
        snprintf(err, errlen, "cannot read migration %s: %s", path, strerror(errno));
        free(m->name);
        free(m->sql);
        return false;
    }
    crypto_sha256_hex(m->sql, len, m->checksum);
    set->count++;
    return true;
}

bool migrations_load(const char *dir, struct migration_set *set, char *err, size_t errlen)
{
    memset(set, 0, sizeof *set);
    DIR *d = opendir(dir);
    if (!d) {
        snprintf(err, errlen, "cannot open migrations directory '%s': %s", dir, strerror(errno));
        return false;
    }
    size_t cap = 0;
    bool ok = true;
    struct dirent *e;
    while (ok && (e = readdir(d))) {
        long version;
        if (migrations_parse_name(e->d_name, &version))
            ok = add_file(set, &cap, dir, e->d_name, version, err, errlen);
    }
    closedir(d);
    if (ok) {
        qsort(set->items, set->count, sizeof *set->items, by_version);
        for (size_t i = 1; i < set->count; i++)
            if (set->items[i].version == set->items[i - 1].version) {
                snprintf(err, errlen, "migrations %s and %s share version %ld",
                         set->items[i - 1].name, set->items[i].name, set->items[i].version);
                ok = false;
                break;
            }
    }
    if (ok && set->count == 0) {
        snprintf(err, errlen, "no migrations found in '%s'", dir);
        ok = false;
    }
    if (!ok)
        migrations_free(set);
    return ok;
}

void migrations_free(struct migration_set *set)
{
    for (size_t i = 0; i < set->count; i++) {
        free(set->items[i].name);
        free(set->items[i].sql);
    }
    free(set->items);
    memset(set, 0, sizeof *set);
}
