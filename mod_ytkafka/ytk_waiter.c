/* mod_ytkafka: a request's wait for its delivery reports. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "ytk_waiter.h"

struct ytk_wslot {
    ytk_waiter_t *w;
    ytk_delivery d;
};

struct ytk_waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int refs;
    int pending;
    int n;
    struct ytk_wslot slots[];
};

ytk_waiter_t *ytk_waiter_create(int n)
{
    ytk_waiter_t *w = calloc(1, sizeof(*w)
                                + (size_t)n * sizeof(struct ytk_wslot));
    pthread_condattr_t attr;
    int i;

    if (!w) {
        return NULL;
    }
    pthread_mutex_init(&w->mu, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cv, &attr);
    pthread_condattr_destroy(&attr);
    w->refs = 1;
    w->n = n;
    for (i = 0; i < n; ++i) {
        w->slots[i].w = w;
        w->slots[i].d.partition = -1;
        w->slots[i].d.offset = -1;
    }
    return w;
}

void ytk_waiter_release(ytk_waiter_t *w)
{
    int last;

    if (!w) {
        return;
    }
    pthread_mutex_lock(&w->mu);
    last = (--w->refs == 0);
    pthread_mutex_unlock(&w->mu);
    if (last) {
        pthread_cond_destroy(&w->cv);
        pthread_mutex_destroy(&w->mu);
        free(w);
    }
}

ytk_wslot_t *ytk_waiter_arm(ytk_waiter_t *w, int idx)
{
    if (!w || idx < 0 || idx >= w->n) {
        return NULL;
    }
    pthread_mutex_lock(&w->mu);
    w->refs++;
    w->pending++;
    pthread_mutex_unlock(&w->mu);
    return &w->slots[idx];
}

void ytk_waiter_report(ytk_wslot_t *slot, rd_kafka_resp_err_t err,
                       int32_t partition, int64_t offset)
{
    ytk_waiter_t *w;

    if (!slot) {
        return;
    }
    w = slot->w;
    pthread_mutex_lock(&w->mu);
    slot->d.done = 1;
    slot->d.err = err;
    slot->d.partition = partition;
    slot->d.offset = offset;
    if (--w->pending == 0) {
        pthread_cond_signal(&w->cv);
    }
    pthread_mutex_unlock(&w->mu);
    ytk_waiter_release(w);
}

int ytk_waiter_wait(ytk_waiter_t *w, apr_time_t deadline, ytk_delivery *out)
{
    apr_interval_time_t left = deadline - apr_time_now();
    struct timespec ts;
    int i, pending;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    if (left > 0) {
        ts.tv_sec += (time_t)apr_time_sec(left);
        ts.tv_nsec += (long)apr_time_usec(left) * 1000;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec += 1;
            ts.tv_nsec -= 1000000000L;
        }
    }
    pthread_mutex_lock(&w->mu);
    while (w->pending > 0 && left > 0) {
        if (pthread_cond_timedwait(&w->cv, &w->mu, &ts) == ETIMEDOUT) {
            break;
        }
    }
    pending = w->pending;
    for (i = 0; i < w->n; ++i) {
        out[i] = w->slots[i].d;
    }
    pthread_mutex_unlock(&w->mu);
    return pending;
}
