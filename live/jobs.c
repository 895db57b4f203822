/* jobs: the hub's worker thread and the two queues around it. The transport
 * thread submits jobs (database reads); the one worker runs them in order and
 * posts each, filled in, to the inbox; the transport thread applies the inbox
 * in hub_drain. What a job kind runs and applies is a row of JOB_TABLE. */
#include <stdlib.h>
#include <string.h>

#include "../base/log.h"
#include "hub_internal.h"

/* run: on the worker (NULL: the job skips it); apply: on the transport thread. */
static const struct job_row {
    void (*run)(struct hub *h, struct job *j);
    void (*apply)(struct hub *h, struct job *j, double now);
} JOB_TABLE[JOB_KINDS] = {
    [JOB_AUTH] = {session_auth_run, session_auth_apply},
    [JOB_REPLAY] = {replay_run_page, replay_apply_page},
    [JOB_ALERTS] = {replay_run_alerts, replay_apply_alerts},
    [JOB_OWNERS] = {usage_run_owners, usage_apply_owners},
    [JOB_USAGE] = {usage_run_read, usage_apply_read},
    [JOB_USERS] = {recheck_run, recheck_apply},
    [JOB_EVENTS] = {NULL, hub_apply_events},
    [JOB_COMMANDS] = {commands_run_read, commands_apply_read},
    [JOB_DEVICE_CLAIM] = {commands_run_claim, commands_apply_claim},
    [JOB_DEVICE_ANSWER] = {commands_run_answer, commands_apply_answer},
    [JOB_CHAT_SEND] = {chat_run_send, chat_apply_send},
    [JOB_CHAT_READ] = {chat_run_read, chat_apply_read},
    [JOB_CHAT_TYPING] = {chat_run_typing, chat_apply_typing},
    [JOB_CHAT_DELIVER] = {chat_run_deliver, chat_apply_deliver},
    [JOB_NOTICES] = {notices_run, notices_apply},
};

static void queue_push(struct job_queue *q, struct job *j)
{
    j->next = NULL;
    if (q->tail)
        q->tail->next = j;
    else
        q->head = j;
    q->tail = j;
}

static struct job *queue_pop(struct job_queue *q)
{
    struct job *j = q->head;
    if (j) {
        q->head = j->next;
        if (!q->head)
            q->tail = NULL;
    }
    return j;
}

static void queue_free(struct job_queue *q)
{
    struct job *j;
    while ((j = queue_pop(q)) != NULL)
        job_free(j);
}

void job_free(struct job *j)
{
    if (!j)
        return;
    free(j->token);
    free(j->ids);
    listener_events_free(&j->events);
    alert_list_free(&j->alerts);
    free(j->owners);
    free(j->usage);
    free(j->roles);
    command_list_free(&j->commands);
    free(j->transitions);
    free(j->muted);
    command_clear(&j->command);
    free(j->answer_result);
    free(j->answer_error);
    chat_job_free(j->chat);
    notice_list_free(&j->notices);
    free(j);
}

struct job *job_new(enum job_kind kind)
{
    struct job *j = calloc(1, sizeof *j);
    if (j)
        j->kind = kind;
    return j;
}

struct job *job_with_ids(enum job_kind kind, const long long *ids, int n)
{
    struct job *j = job_new(kind);
    if (!j)
        return NULL;
    j->ids = malloc((size_t)(n > 0 ? n : 1) * sizeof *j->ids);
    if (!j->ids) {
        free(j);
        return NULL;
    }
    memcpy(j->ids, ids, (size_t)n * sizeof *ids);
    j->nids = n;
    return j;
}

void job_submit(struct hub *h, struct job *j)
{
    if (!j) {
        log_error("hub: out of memory; a WebSocket job was dropped");
        return;
    }
    pthread_mutex_lock(&h->jobs.mutex);
    queue_push(&h->jobs.queue, j);
    pthread_cond_signal(&h->jobs.cond);
    pthread_mutex_unlock(&h->jobs.mutex);
}

void jobs_post_inbox(struct hub *h, struct job *j)
{
    pthread_mutex_lock(&h->jobs.inbox_mutex);
    queue_push(&h->jobs.inbox, j);
    pthread_mutex_unlock(&h->jobs.inbox_mutex);
    if (h->transport.wake)
        h->transport.wake(h->transport.ctx);
}

void jobs_apply_inbox(struct hub *h, double now)
{
    pthread_mutex_lock(&h->jobs.inbox_mutex);
    struct job_queue batch = h->jobs.inbox;
    h->jobs.inbox = (struct job_queue){0};
    pthread_mutex_unlock(&h->jobs.inbox_mutex);

    struct job *j;
    while ((j = queue_pop(&batch)) != NULL) {
        JOB_TABLE[j->kind].apply(h, j, now);
        job_free(j);
    }
}

static void jobs_run(struct hub *h, struct job *j)
{
    JOB_TABLE[j->kind].run(h, j);
    jobs_post_inbox(h, j);
}

bool jobs_work_once(struct hub *h)
{
    pthread_mutex_lock(&h->jobs.mutex);
    struct job *j = queue_pop(&h->jobs.queue);
    pthread_mutex_unlock(&h->jobs.mutex);
    if (j)
        jobs_run(h, j);
    return j != NULL;
}

/* One worker: jobs run in the order they were submitted, which is what keeps
 * replay pages and live alerts in order (see hub.h). */
static void *jobs_worker_main(void *arg)
{
    struct hub *h = arg;
    for (;;) {
        pthread_mutex_lock(&h->jobs.mutex);
        while (!h->jobs.queue.head && !h->jobs.stopping)
            pthread_cond_wait(&h->jobs.cond, &h->jobs.mutex);
        struct job *j = h->jobs.stopping ? NULL : queue_pop(&h->jobs.queue);
        pthread_mutex_unlock(&h->jobs.mutex);
        if (!j)
            return NULL;
        jobs_run(h, j);
    }
}

void jobs_init(struct jobs *q)
{
    pthread_mutex_init(&q->mutex, NULL);
    pthread_cond_init(&q->cond, NULL);
    pthread_mutex_init(&q->inbox_mutex, NULL);
}

bool jobs_start(struct hub *h)
{
    h->jobs.stopping = false;
    h->jobs.running = pthread_create(&h->jobs.worker, NULL, jobs_worker_main, h) == 0;
    return h->jobs.running;
}

void jobs_stop(struct hub *h)
{
    if (!h->jobs.running)
        return;
    pthread_mutex_lock(&h->jobs.mutex);
    h->jobs.stopping = true;
    pthread_cond_broadcast(&h->jobs.cond);
    pthread_mutex_unlock(&h->jobs.mutex);
    pthread_join(h->jobs.worker, NULL);
    h->jobs.running = false;
}

void jobs_destroy(struct jobs *q)
{
    queue_free(&q->queue);
    queue_free(&q->inbox);
    pthread_mutex_destroy(&q->mutex);
    pthread_cond_destroy(&q->cond);
    pthread_mutex_destroy(&q->inbox_mutex);
}
