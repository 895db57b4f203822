#include "export_limit.h"

#include <pthread.h>
#include <stdlib.h>

/* At most `total` users hold slots at once, so one small array of (user,
 * count) pairs, scanned under the mutex, is all the bookkeeping needed: its
 * size is fixed at creation, whatever the number of users. */
struct export_user {
    long long user_id; /* 0: free entry */
    int count;
};

struct export_limit {
    pthread_mutex_t mutex;
    int per_user, total;
    int in_progress;
    struct export_user users[]; /* total entries */
};

struct export_limit *export_limit_create(int per_user, int total)
{
    struct export_limit *l = calloc(1, sizeof *l + (size_t)total * sizeof l->users[0]);
    if (!l)
        return NULL;
    pthread_mutex_init(&l->mutex, NULL);
    l->per_user = per_user;
    l->total = total;
    return l;
}

void export_limit_free(struct export_limit *l)
{
    if (!l)
        return;
    pthread_mutex_destroy(&l->mutex);
    free(l);
}

/* The user's entry, or a free one (user_id 0) when it has none; called with
 * the mutex held. Never NULL while in_progress < total. */
static struct export_user *user_entry(struct export_limit *l, long long user_id)
{
    struct export_user *free_entry = NULL;
    for (int i = 0; i < l->total; i++) {
        if (l->users[i].user_id == user_id)
            return &l->users[i];
        if (!free_entry && l->users[i].user_id == 0)
            free_entry = &l->users[i];
    }
    return free_entry;
}

enum export_admission export_limit_take(struct export_limit *l, long long user_id)
{
    pthread_mutex_lock(&l->mutex);
    struct export_user *u = user_entry(l, user_id);
    enum export_admission verdict = EXPORT_ADMITTED;
    if (u && u->user_id == user_id && u->count >= l->per_user)
        verdict = EXPORT_USER_FULL;
    else if (l->in_progress >= l->total || !u)
        verdict = EXPORT_SERVER_FULL;
    else {
        u->user_id = user_id;
        u->count++;
        l->in_progress++;
    }
    pthread_mutex_unlock(&l->mutex);
    return verdict;
}

void export_limit_give(struct export_limit *l, long long user_id)
{
    pthread_mutex_lock(&l->mutex);
    struct export_user *u = user_entry(l, user_id);
    if (u && u->user_id == user_id && u->count > 0) {
        if (--u->count == 0)
            u->user_id = 0;
        l->in_progress--;
    }
    pthread_mutex_unlock(&l->mutex);
}
