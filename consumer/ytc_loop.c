/*
 * The event loop: create, run, teardown.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ytc_log.h"
#include "ytc_loop_int.h"
#include "ytc_metrics.h"

int ytc_loop_create(ytc_loop **out, const ytc_config *cfg, apr_pool_t *p)
{
    ytc_loop *L = apr_pcalloc(p, sizeof(*L));   /* or the pool aborts */
    rd_kafka_topic_partition_list_t *topics;
    rd_kafka_conf_t *conf;
    rd_kafka_resp_err_t err;
    char errstr[512];
    int i;

    *out = NULL;
    L->cfg = cfg;
    L->pool = p;
    L->wake[0] = L->wake[1] = -1;
    L->seed = (unsigned int)(apr_time_now() ^ (apr_time_t)getpid());
    /* three failures in a row over two videos or more, nothing in between:
     * YouTube (or the way to it) is out; probe from 1 s up to 30 s */
    ytc_breaker_init(&L->yt, "youtube", 3, 2, 1000, 30000);
    /* any record not stored: the topic is out until one is */
    ytc_breaker_init(&L->kp, "kafka-produce", 1, 1, 1000, 30000);
    /* a row not stored: the database is out until one is */
    ytc_breaker_init(&L->dbb, "database", 1, 1, 500, 30000);

    if (!cfg->no_fetch) {
        if (ytc_db_open(&L->db, cfg->db, p) != 0) {
            goto leave;
        }
    }
    if (!(L->fetch = ytc_fetcher_create(cfg))) {
        ytc_log(YTC_LOG_ERR, YTC_LOGNO(00422) "cannot set up libcurl");
        goto leave;
    }
    if (!cfg->no_fetch) {
        if (!(conf = ytc_make_conf(L, 0))) {
            goto leave;
        }
        L->producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr,
                                   sizeof(errstr));
        if (!L->producer) {
            ytc_log(YTC_LOG_ERR, YTC_LOGNO(00423) "producer: %s", errstr);
            rd_kafka_conf_destroy(conf);
            goto leave;
        }
    }

    if (!(conf = ytc_make_conf(L, 1))) {
        goto leave;
    }
    L->consumer = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr,
                               sizeof(errstr));
    if (!L->consumer) {
        ytc_log(YTC_LOG_ERR, YTC_LOGNO(00424) "consumer: %s", errstr);
        rd_kafka_conf_destroy(conf);
        goto leave;
    }
    rd_kafka_poll_set_consumer(L->consumer);

    if (pipe(L->wake) != 0) {
        ytc_log(YTC_LOG_ERR, YTC_LOGNO(00425) "pipe: %s", strerror(errno));
        L->wake[0] = L->wake[1] = -1;
        goto leave;
    }
    fcntl(L->wake[0], F_SETFL, O_NONBLOCK);
    fcntl(L->wake[1], F_SETFL, O_NONBLOCK);
    if (!(L->cq = rd_kafka_queue_get_consumer(L->consumer))) {
        ytc_log(YTC_LOG_ERR, YTC_LOGNO(01101) "consumer: no queue");
        goto leave;
    }
    rd_kafka_queue_io_event_enable(L->cq, L->wake[1], "1", 1);

    if (!(topics = rd_kafka_topic_partition_list_new(cfg->topics->nelts))) {
        goto leave;
    }
    for (i = 0; i < cfg->topics->nelts; i++) {
        rd_kafka_topic_partition_list_add(
            topics, APR_ARRAY_IDX(cfg->topics, i, const char *),
            RD_KAFKA_PARTITION_UA);
    }
    err = rd_kafka_subscribe(L->consumer, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (err) {
        ytc_log(YTC_LOG_ERR, YTC_LOGNO(00426) "subscribe: %s",
                rd_kafka_err2str(err));
        goto leave;
    }
    *out = L;
    return 0;

leave:
    /* nothing consumed yet: destroy what was made, in reverse */
    if (L->cq) {
        rd_kafka_queue_destroy(L->cq);
    }
    if (L->wake[0] >= 0) {
        close(L->wake[0]);
        close(L->wake[1]);
    }
    if (L->consumer) {
        rd_kafka_destroy(L->consumer);
    }
    if (L->producer) {
        rd_kafka_destroy(L->producer);
    }
    ytc_fetcher_destroy(L->fetch);
    ytc_db_close(L->db);
    return -1;
}

static void drain_pipe(int fd)
{
    char buf[256];

    while (read(fd, buf, sizeof(buf)) > 0) {
    }
}

static void teardown(ytc_loop *L)
{
    ytc_part *p;
    ytc_job *j;
    int left;

    /* queued and backing-off jobs were never finished: they come back */
    while (L->all_jobs) {
        j = L->all_jobs;
        ytc_job_free(L, j);
    }
    L->ready_head = L->ready_tail = NULL;
    L->db_head = L->db_tail = NULL;
    L->backoff = NULL;
    ytc_fetcher_destroy(L->fetch);
    L->fetch = NULL;

    if (L->producer) {
        rd_kafka_flush(L->producer, 5000);
        left = rd_kafka_outq_len(L->producer);
        if (left > 0) {
            ytc_log(YTC_LOG_WARN, YTC_LOGNO(00427) "%d produced message(s) "
                    "not delivered at exit", left);
            rd_kafka_purge(L->producer, RD_KAFKA_PURGE_F_QUEUE
                           | RD_KAFKA_PURGE_F_INFLIGHT);
            for (left = 0; L->prod_inflight > 0 && left < 50; left++) {
                rd_kafka_poll(L->producer, 100);
            }
        }
        /* records never stored keep their messages unfinished, so those
         * offsets are not committed below and the messages come back */
        ytc_produce_discard(L);
    }
    ytc_commit_sync(L, "shutdown");
    rd_kafka_queue_destroy(L->cq);
    ytc_log(YTC_LOG_INFO, YTC_LOGNO(00428) "leaving the group");
    rd_kafka_consumer_close(L->consumer);
    rd_kafka_destroy(L->consumer);
    if (L->producer) {
        rd_kafka_destroy(L->producer);
    }
    ytc_db_close(L->db);
    while (L->parts || L->zombies) {
        ytc_part **list = L->parts ? &L->parts : &L->zombies;
        p = *list;
        *list = p->next;
        while (p->head) {
            ytc_msg *m = p->head;
            p->head = m->next;
            ytc_msg_free(L, m);
        }
        ytc_part_free(p);
    }
    close(L->wake[0]);
    close(L->wake[1]);
}

/* the loop's state for --metrics, once per turn (relaxed atomic stores) */
static void publish_state(const ytc_loop *L)
{
    ytc_metrics_set(YTC_G_JOBS, L->jobs);
    ytc_metrics_set(YTC_G_JOBS_FETCHING, L->running);
    ytc_metrics_set(YTC_G_MESSAGES_HELD, L->msgs);
    ytc_metrics_set(YTC_G_PARTITIONS_ASSIGNED, L->assigned);
    ytc_metrics_set(YTC_G_PARTITIONS_PAUSED, L->paused ? L->assigned : 0);
    ytc_metrics_set(YTC_G_OUTAGE_YOUTUBE, L->yt.open);
    ytc_metrics_set(YTC_G_OUTAGE_DATABASE, L->dbb.open);
    ytc_metrics_set(YTC_G_OUTAGE_KAFKA_OUTPUT, L->kp.open);
}

int ytc_loop_run(ytc_loop *L, volatile sig_atomic_t *stop)
{
    const ytc_config *cfg = L->cfg;

    ytc_log(YTC_LOG_INFO, YTC_LOGNO(00429) "consuming as group %s, "
            "concurrency %d, youtube %s%s", cfg->group, cfg->concurrency,
            cfg->youtube_url, cfg->no_fetch ? " (no fetch)" : "");
    for (;;) {
        apr_time_t now = apr_time_now();
        long timeout = 200;
        int more = 0;
        ytc_job *j, **jp;

        if (*stop && !L->stopping) {
            L->stopping = 1;
            L->deadline = now
                + (apr_time_t)cfg->shutdown_timeout_ms * 1000;
            ytc_set_paused(L, 1);
            ytc_log(YTC_LOG_INFO, YTC_LOGNO(00430) "stopping: %d video(s) in "
                    "flight, up to %d ms", L->running,
                    cfg->shutdown_timeout_ms);
        }
        if (L->fatal) {
            break;
        }
        if (L->stopping && ((L->running == 0 && L->prod_inflight == 0
                             && !L->prod_retry) || now >= L->deadline)) {
            if (L->running) {
                ytc_log(YTC_LOG_WARN, YTC_LOGNO(00431) "abandoning %d "
                        "video(s) in flight", L->running);
            }
            break;
        }

        if (!L->stopping) {
            more = ytc_intake(L, 0);
        }

        /* due retries go to the front of the line */
        now = apr_time_now();
        for (jp = &L->backoff; (j = *jp) != NULL;) {
            if (j->due <= now) {
                *jp = j->next;
                j->next = L->ready_head;
                L->ready_head = j;
                if (!L->ready_tail) {
                    L->ready_tail = j;
                }
            }
            else {
                long ms = (long)((j->due - now) / 1000) + 1;
                if (ms < timeout) {
                    timeout = ms;
                }
                jp = &j->next;
            }
        }
        ytc_jobs_start_ready(L);
        ytc_db_retry_due(L);
        {
            long w = ytc_breaker_wait_ms(&L->yt, apr_time_now());
            long d = L->db_head ? ytc_breaker_wait_ms(&L->dbb, apr_time_now())
                                : -1;
            if (d >= 0 && (w < 0 || d < w)) {
                w = d;
            }
            if (w >= 0 && w < timeout) {
                timeout = w > 0 ? w : 1;
            }
        }
        if (L->producer) {
            long w = ytc_produce_wait_ms(L);
            ytc_produce_retry_due(L, 0);
            if (w > 0 && w < timeout) {
                timeout = w;
            }
            rd_kafka_poll(L->producer, 0);
        }
        ytc_flush_offsets(L);
        publish_state(L);

        if (cfg->count > 0 && L->finished >= cfg->count && L->msgs == 0
            && L->jobs == 0) {
            ytc_log(YTC_LOG_INFO, YTC_LOGNO(00432) "%ld message(s) done",
                    L->finished);
            break;
        }
        if (cfg->exit_eof && L->msgs == 0 && L->jobs == 0 && ytc_all_at_eof(L)) {
            ytc_log(YTC_LOG_INFO, YTC_LOGNO(00433) "all partitions at end, "
                    "%ld message(s) done", L->finished);
            break;
        }
        if (more) {
            timeout = 0;
        }
        {
            long hold = ytc_hold_left_ms(L, apr_time_now());
            if (hold >= 0 && hold < timeout) {
                timeout = hold;
            }
        }
        drain_pipe(L->wake[0]);
        if (!L->stopping && !L->ready_head && ytc_fetcher_active(L->fetch) == 0
            && !ytc_count_reached(L) && ytc_hold_left_ms(L, apr_time_now()) < 0) {
            /* nothing on the wire: wait in librdkafka, which hands over a
             * message the moment it arrives */
            ytc_intake(L, (int)timeout);
        }
        else {
            ytc_fetcher_run(L->fetch, (int)timeout, L->wake[0]);
        }
    }
    teardown(L);
    ytc_log(YTC_LOG_INFO, YTC_LOGNO(00434) "stopped after %ld message(s)",
            L->finished);
    return L->fatal ? 1 : 0;
}
