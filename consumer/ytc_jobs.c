/*
 * Fetch jobs: one per video, attempts, backoff between them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <curl/curl.h>

#include "ytc_log.h"
#include "ytc_loop_int.h"
#include "ytc_metrics.h"

void ytc_job_free(ytc_loop *L, ytc_job *j)
{
    if (j->prev_all) {
        j->prev_all->next_all = j->next_all;
    }
    else {
        L->all_jobs = j->next_all;
    }
    if (j->next_all) {
        j->next_all->prev_all = j->prev_all;
    }
    free(j->watch.body);
    free(j->oembed.body);
    if (j->result) {
        json_object_put(j->result);
    }
    free(j);
    L->jobs--;
}

void ytc_job_enqueue(ytc_loop *L, ytc_job *j)
{
    j->next = NULL;
    if (L->ready_tail) {
        L->ready_tail->next = j;
    }
    else {
        L->ready_head = j;
    }
    L->ready_tail = j;
}

ytc_job *ytc_job_new(ytc_loop *L, ytc_msg *m, const char *id)
{
    ytc_job *j = calloc(1, sizeof(*j));

    j->loop = L;
    j->msg = m;
    j->yt_mark = L->yt_answers;
    memcpy(j->video_id, id, YTK_VIDEO_ID_LEN + 1);
    j->next_all = L->all_jobs;
    if (L->all_jobs) {
        L->all_jobs->prev_all = j;
    }
    L->all_jobs = j;
    L->jobs++;
    m->pending++;
    return j;
}

static long backoff_ms(ytc_loop *L, const ytc_job *j, long retry_after)
{
    return ytc_backoff_delay_ms(L->cfg->backoff_ms, L->cfg->backoff_max_ms,
                                j->attempts, retry_after,
                                (unsigned int)rand_r(&L->seed));
}

int ytc_outage(const ytc_loop *L)
{
    return L->yt.open || L->kp.open || L->dbb.open;
}

static void job_push_front(ytc_loop *L, ytc_job *j)
{
    j->next = L->ready_head;
    L->ready_head = j;
    if (!L->ready_tail) {
        L->ready_tail = j;
    }
}

/* YouTube looks out: give back every attempt lost to it, take no more */
static void youtube_out(ytc_loop *L, const char *reason)
{
    ytc_job *j;

    for (j = L->all_jobs; j; j = j->next_all) {
        j->attempts -= j->infra_fails;
        j->infra_fails = 0;
    }
    ytc_log(YTC_LOG_WARN, YTC_LOGNO(00500) "outage: youtube unreachable "
            "(%s); holding %ld job(s), intake paused, probing", reason,
            L->jobs);
    ytc_set_paused(L, 1);
}

static void youtube_back(ytc_loop *L)
{
    ytc_job *j;

    /* due at once: what waited out the outage goes first */
    for (j = L->backoff; j; j = L->backoff) {
        L->backoff = j->next;
        job_push_front(L, j);
    }
    ytc_log(YTC_LOG_WARN, YTC_LOGNO(00501) "outage over: youtube answers "
            "again; resuming %ld job(s)", L->jobs);
}

static void job_finish(ytc_loop *L, ytc_job *j)
{
    ytc_msg *m = j->msg;

    ytc_job_free(L, j);
    ytc_msg_release(m);
}

/* the row was not stored: the job waits (its message unfinished) */
static void db_hold(ytc_loop *L, ytc_job *j)
{
    j->db_fails++;
    if (ytc_breaker_failure(&L->dbb, j->video_id, apr_time_now())) {
        ytc_log(YTC_LOG_WARN, YTC_LOGNO(00507) "outage: database not "
                "storing rows; holding results, intake paused, probing");
        ytc_set_paused(L, 1);
    }
    j->next = NULL;
    if (L->db_tail) {
        L->db_tail->next = j;
    }
    else {
        L->db_head = j;
    }
    L->db_tail = j;
}

static ytc_job *db_pop(ytc_loop *L)
{
    ytc_job *j = L->db_head;

    if (j) {
        L->db_head = j->next;
        if (!L->db_head) {
            L->db_tail = NULL;
        }
    }
    return j;
}

static int db_emit_again(ytc_loop *L, ytc_job *j)
{
    json_object *result = j->result;

    j->result = NULL;
    if (ytc_job_emit(L, j, j->out, result, j->last_error) != 0) {
        return -1;
    }
    job_finish(L, j);
    return 0;
}

void ytc_db_retry_due(ytc_loop *L)
{
    ytc_job *j;

    if (!L->dbb.open || !L->db_head
        || !ytc_breaker_probe_ready(&L->dbb, apr_time_now())) {
        return;
    }
    /* one row alone first */
    j = db_pop(L);
    if (db_emit_again(L, j) != 0) {
        if (j->db_fails >= 3 && ytc_db_ping(L->db) == 0) {
            /* the database answers but refuses this row, tried alone
             * again and again: the data is at fault, not the database */
            ytc_log(YTC_LOG_WARN, YTC_LOGNO(00509) "video %s: the database "
                    "refuses its row; dead-lettering it", j->video_id);
            j->db_skip = 1;
            ytc_breaker_success(&L->dbb);
            db_emit_again(L, j);
        }
        else {
            db_hold(L, j);
            return;
        }
    }
    if (ytc_breaker_success(&L->dbb)) {
        ytc_log(YTC_LOG_WARN, YTC_LOGNO(00508) "outage over: database "
                "stores rows again");
    }
    while (!L->dbb.open && (j = db_pop(L)) != NULL) {
        if (db_emit_again(L, j) != 0) {
            db_hold(L, j);
        }
    }
}

void ytc_attempt_done(ytc_loop *L, ytc_job *j)
{
    json_object *result = NULL;
    char reason[600];
    long retry_after = -1;
    ytc_outcome out;
    int infra, probe = j->probe;
    long hold_left;

    L->running--;
    j->probe = 0;
    j->attempts++;
    out = ytc_meta_extract(j->video_id, &j->watch, &j->oembed, &result,
                           reason, sizeof(reason), &retry_after);
    infra = ytc_failure_is_infra(out, &j->watch, &j->oembed);
    free(j->watch.body);
    free(j->oembed.body);
    memset(&j->watch, 0, sizeof(j->watch));
    memset(&j->oembed, 0, sizeof(j->oembed));

    if (infra) {
        j->infra_fails++;
        if (!j->first_infra) {
            j->first_infra = apr_time_now();
        }
        if (ytc_breaker_failure(&L->yt, j->video_id, apr_time_now())) {
            youtube_out(L, reason);
        }
        if (L->yt.open) {
            /* an outage is not this video's fault: the attempt is given
             * back and the job waits for the next probe */
            j->attempts -= j->infra_fails;
            j->infra_fails = 0;
            if (result) {
                json_object_put(result);
            }
            if (L->stopping) {
                ytc_job_free(L, j);
                return;
            }
            if (probe) {
                ytc_log(YTC_LOG_DEBUG, YTC_LOGNO(00502) "outage probe with "
                        "video %s failed: %s; next in %ld ms", j->video_id,
                        reason, L->yt.probe_ms);
            }
            job_push_front(L, j);
            return;
        }
    }
    else {
        L->yt_answers++;
        if (ytc_breaker_success(&L->yt)) {
            youtube_back(L);
        }
    }

    hold_left = (j->first_infra + (apr_time_t)L->cfg->backoff_max_ms * 1000
                 - apr_time_now()) / 1000;
    if (infra && j->attempts >= L->cfg->max_attempts
        && L->yt_answers == j->yt_mark && hold_left > 0) {
        /* YouTube has answered no video since this one came in: a lone
         * video cannot open the breaker (that takes two), so its failures
         * may be an outage's. Its last attempt is not spent; it waits,
         * longer each time, until YouTube answers another video (then a
         * failure is this video's own), the breaker opens, or its
         * failures have lasted the longest backoff (then it is judged as
         * before: a video alone cannot tell a long outage from its own
         * fault). */
        j->attempts--;
        j->infra_fails--;
        j->held++;
    }
    if (out == YTC_OUT_TRANSIENT && j->attempts < L->cfg->max_attempts) {
        long d;
        if (L->stopping) {
            /* not finished: its offset stays uncommitted, so it comes back */
            ytc_log(YTC_LOG_INFO, YTC_LOGNO(00418) "video %s abandoned at "
                    "shutdown (%s)", j->video_id, reason);
            if (result) {
                json_object_put(result);
            }
            ytc_job_free(L, j);
            return;
        }
        ytc_metrics_add(YTC_M_RETRIES, 1);
        if (j->held && infra) {
            d = ytc_backoff_delay_ms(L->cfg->backoff_ms,
                                     L->cfg->backoff_max_ms,
                                     j->attempts + j->held, retry_after,
                                     (unsigned int)rand_r(&L->seed));
            if (d > hold_left + 10) {
                d = hold_left + 10;     /* judged when the hold ends */
            }
            ytc_log(YTC_LOG_INFO, YTC_LOGNO(01150) "video %s: last attempt "
                    "failed (%s), and YouTube has answered no video since "
                    "it came in: held as a possible outage, attempt not "
                    "spent, retry in %ld ms", j->video_id, reason, d);
        }
        else {
            d = backoff_ms(L, j, retry_after);
            ytc_log(YTC_LOG_INFO, YTC_LOGNO(00419) "video %s: attempt %d/%d "
                    "failed: %s; retry in %ld ms", j->video_id, j->attempts,
                    L->cfg->max_attempts, reason, d);
        }
        snprintf(j->last_error, sizeof(j->last_error), "%s", reason);
        if (result) {
            json_object_put(result);
        }
        j->due = apr_time_now() + (apr_time_t)d * 1000;
        j->next = L->backoff;
        L->backoff = j;
        return;
    }
    if (ytc_job_emit(L, j, out, result, reason) != 0) {
        db_hold(L, j);
        return;
    }
    job_finish(L, j);
}

static void on_watch(void *baton, ytc_http_answer *a)
{
    ytc_job *j = baton;

    j->watch = *a;
    ytc_metrics_fetch_done(a->status, apr_time_now() - j->started);
    if (--j->transfers == 0) {
        ytc_attempt_done(j->loop, j);
    }
}

static void on_oembed(void *baton, ytc_http_answer *a)
{
    ytc_job *j = baton;

    j->oembed = *a;
    ytc_metrics_fetch_done(a->status, apr_time_now() - j->started);
    if (--j->transfers == 0) {
        ytc_attempt_done(j->loop, j);
    }
}

void ytc_job_start(ytc_loop *L, ytc_job *j)
{
    char canon[64], url[1024];
    char *enc;

    ytk_canonical_url(j->video_id, canon, sizeof(canon));
    enc = curl_easy_escape(NULL, canon, 0);
    j->started = apr_time_now();
    L->running++;
    j->transfers = 2;
    memset(&j->watch, 0, sizeof(j->watch));
    memset(&j->oembed, 0, sizeof(j->oembed));

    snprintf(url, sizeof(url), "%s/watch?v=%s", L->cfg->youtube_url,
             j->video_id);
    if (ytc_fetch_start(L->fetch, url, 1, on_watch, j) != 0) {
        j->watch.retry_after = -1;
        snprintf(j->watch.error, sizeof(j->watch.error), "cannot start");
        j->transfers--;
    }
    snprintf(url, sizeof(url), "%s/oembed?url=%s&format=json",
             L->cfg->youtube_url, enc ? enc : "");
    curl_free(enc);
    if (ytc_fetch_start(L->fetch, url, 0, on_oembed, j) != 0) {
        j->oembed.retry_after = -1;
        snprintf(j->oembed.error, sizeof(j->oembed.error), "cannot start");
        j->transfers--;
    }
    if (j->transfers == 0) {
        ytc_attempt_done(L, j);
    }
}

void ytc_jobs_start_ready(ytc_loop *L)
{
    ytc_job *j;

    if (L->yt.open) {
        if (!L->stopping && L->ready_head
            && ytc_breaker_probe_ready(&L->yt, apr_time_now())) {
            j = L->ready_head;
            L->ready_head = j->next;
            if (!L->ready_head) {
                L->ready_tail = NULL;
            }
            L->yt.probing = 1;
            j->probe = 1;
            ytc_job_start(L, j);
        }
        return;
    }
    while (!L->stopping && L->ready_head
           && L->running < L->cfg->concurrency) {
        j = L->ready_head;
        L->ready_head = j->next;
        if (!L->ready_head) {
            L->ready_tail = NULL;
        }
        ytc_job_start(L, j);
    }
}
