#include "workers.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

struct task {
    void (*fn)(void *arg);
    void *arg;
    struct task *next;
};

struct workers {
    pthread_mutex_t mutex;
    pthread_cond_t work;
    struct task *head, *tail;
    bool stopping;
    int queued, max_queued;
    int nthreads;
    pthread_t threads[];
};

static void *worker_main(void *arg)
{
    struct workers *w = arg;
    for (;;) {
        pthread_mutex_lock(&w->mutex);
        while (!w->head && !w->stopping)
            pthread_cond_wait(&w->work, &w->mutex);
        struct task *t = w->head;
        if (t) {
            w->head = t->next;
            if (!w->head)
                w->tail = NULL;
            w->queued--;
        }
        pthread_mutex_unlock(&w->mutex);
        if (!t)
            return NULL; /* stopping, and nothing left */
        t->fn(t->arg);
        free(t);
    }
}

struct workers *workers_start(int n, int max_queued, char *err, size_t errlen)
{
    struct workers *w = calloc(1, sizeof *w + (size_t)n * sizeof(pthread_t));
    if (!w) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    w->max_queued = max_queued;
    pthread_mutex_init(&w->mutex, NULL);
    pthread_cond_init(&w->work, NULL);
    for (; w->nthreads < n; w->nthreads++)
        if (pthread_create(&w->threads[w->nthreads], NULL, worker_main, w) != 0) {
            snprintf(err, errlen, "cannot start worker threads");
            workers_free(w);
            return NULL;
        }
    return w;
}

bool workers_submit(struct workers *w, void (*fn)(void *arg), void *arg)
{
    struct task *t = malloc(sizeof *t);
    if (!t)
        return false;
    *t = (struct task){fn, arg, NULL};
    pthread_mutex_lock(&w->mutex);
    bool accepted = w->queued < w->max_queued && !w->stopping;
    if (accepted) {
        if (w->tail)
            w->tail->next = t;
        else
            w->head = t;
        w->tail = t;
        w->queued++;
        pthread_cond_signal(&w->work);
    }
    pthread_mutex_unlock(&w->mutex);
    if (!accepted)
        free(t);
    return accepted;
}

void workers_stop(struct workers *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->mutex);
    w->stopping = true;
    pthread_cond_broadcast(&w->work);
    pthread_mutex_unlock(&w->mutex);
    for (int i = 0; i < w->nthreads; i++)
        pthread_join(w->threads[i], NULL);
    w->nthreads = 0;
}

void workers_free(struct workers *w)
{
    if (!w)
        return;
    workers_stop(w);
    pthread_mutex_destroy(&w->mutex);
    pthread_cond_destroy(&w->work);
    free(w);
}
