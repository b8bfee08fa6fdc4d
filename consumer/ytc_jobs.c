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
    ytc_coalesce_forget(L, j);
    if (j->prev_all) {
        j->prev_all->next_all = j->next_all;
    }
    else {
        L->all_jobs = j->next_all;
    }
    if (j->next_all) {
        j->next_all->prev_all = j->prev_all;
    }
    ytc_fetch_answer_free(L->fetch, &j->watch);
    ytc_fetch_answer_free(L->fetch, &j->oembed);
    if (j->result) {
        json_object_put(j->result);
    }
    free(j);
    L->jobs--;
}

void ytc_job_append(ytc_job **head, ytc_job **tail, ytc_job *j)
{
    j->next = NULL;
    if (*tail) {
        (*tail)->next = j;
    }
    else {
        *head = j;
    }
    *tail = j;
}

void ytc_job_enqueue(ytc_loop *L, ytc_job *j)
{
    if (!j) {
        return;     /* ytc_job_new failed */
    }
    ytc_job_append(&L->ready_head, &L->ready_tail, j);
}

ytc_job *ytc_job_new(ytc_loop *L, ytc_msg *m, const char *id)
{
    ytc_job *j = calloc(1, sizeof(*j));

    if (!j) {
        /* the message stays unfinished: its offset is never stored */
        m->pending++;
        ytc_offsets_freeze(L, "a job");
        return NULL;
    }
    j->loop = L;
    j->msg = m;
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
    ytc_job_append(&L->db_head, &L->db_tail, j);
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

void ytc_job_db_hold(ytc_loop *L, ytc_job *j)
{
    db_hold(L, j);
}

void ytc_job_finish(ytc_loop *L, ytc_job *j)
{
    job_finish(L, j);
}

static int db_emit_again(ytc_loop *L, ytc_job *j)
{
    json_object *result = j->result;

    if (j->lookup) {
        /* the stored-row lookup waited for the database */
        return ytc_lookup_again(L, j);
    }
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
    int infra, probe = j->probe, checked = j->checked;
    ytc_breaker_verdict v = YTC_BREAKER_COUNTED;

    L->running--;
    j->probe = 0;
    j->checked = 0;
    j->attempts++;
    out = ytc_meta_extract_row(j->video_id, &j->watch, &j->oembed, &result,
                               reason, sizeof(reason), &retry_after,
                               &j->row);
    infra = ytc_failure_is_infra(out, &j->watch, &j->oembed);
    if (infra) {
        /* what failed: the next check asks for the same kind */
        j->fail_where = ytc_failure_where(&j->watch, &j->oembed);
        L->yt_where = j->fail_where;
        v = ytc_breaker_checked_failure(&L->yt, j->video_id,
                                        checked ? &j->check : NULL,
                                        apr_time_now());
    }
    ytc_fetch_answer_free(L->fetch, &j->watch);
    ytc_fetch_answer_free(L->fetch, &j->oembed);
    memset(&j->watch, 0, sizeof(j->watch));
    memset(&j->oembed, 0, sizeof(j->oembed));

    if (infra && v >= YTC_BREAKER_OWN) {
        /* YouTube itself answered the check: the failure is this video's
         * own (docs/ARCHITECTURE.md, the failure model) */
        ytc_log(YTC_LOG_DEBUG, YTC_LOGNO(01190) "video %s: youtube answers "
                "(check HTTP %ld), the failure is the video's own",
                j->video_id, j->check.status);
        j->infra_fails = 0;
        if (v == YTC_BREAKER_OWN_CLOSED) {
            youtube_back(L);
        }
    }
    else if (infra) {
        j->infra_fails++;
        if (v == YTC_BREAKER_OPENED) {
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
        L->yt_where = 0;
        if (ytc_breaker_success(&L->yt)) {
            youtube_back(L);
        }
    }
    if (out == YTC_OUT_OK || out == YTC_OUT_UNAVAILABLE) {
        ytc_breaker_answered(&L->yt, j->video_id);
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
        d = backoff_ms(L, j, retry_after);
        ytc_metrics_add(YTC_M_RETRIES, 1);
        ytc_log(YTC_LOG_INFO, YTC_LOGNO(00419) "video %s: attempt %d/%d "
                "failed: %s; retry in %ld ms", j->video_id, j->attempts,
                L->cfg->max_attempts, reason, d);
        snprintf(j->last_error, sizeof(j->last_error), "%s", reason);
        if (result) {
            json_object_put(result);
        }
        j->due = apr_time_now() + (apr_time_t)d * 1000;
        j->next = L->backoff;
        L->backoff = j;
        return;
    }
    /* this job and every job attached to its fetch */
    ytc_group_emit(L, j, out, result, reason);
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

static void on_check(void *baton, ytc_http_answer *a)
{
    ytc_job *j = baton;

    j->check = *a;
    ytc_metrics_add(YTC_M_CHECKS, 1);
    /* only its status counts (ytc_fetch_start_status: no body is read) */
    ytc_fetch_answer_free(j->loop->fetch, &j->check);
    if (--j->transfers == 0) {
        ytc_attempt_done(j->loop, j);
    }
}

/* Is YouTube itself up? Asked alongside a probe, a retry after a failure
 * that may be an outage, and a last attempt: one video alone cannot open
 * the breaker by counting videos (docs/ARCHITECTURE.md, the failure model).
 * The same kind of resource that failed, of the last video that got a real
 * answer: its oEmbed answer if only oEmbed failed, else its watch page;
 * the home page if no video got one. Asking for the watch page while only
 * oEmbed is out would find YouTube up and spend the attempts. */
/* the oEmbed URL of video @a id under --youtube-url */
static void oembed_url(const ytc_loop *L, const char *id, char *url,
                       size_t size)
{
    char canon[64];
    char *enc;

    ytk_canonical_url(id, canon, sizeof(canon));
    enc = curl_easy_escape(NULL, canon, 0);
    snprintf(url, size, "%s/oembed?url=%s&format=json", L->cfg->youtube_url,
             enc ? enc : "");
    curl_free(enc);
}

static void check_start(ytc_loop *L, ytc_job *j)
{
    char url[1024];
    const char *ref;
    int cookie = 0;         /* the watch page wants the consent cookie */

    j->checked = 0;
    if (!j->probe && !j->infra_fails
        && j->attempts + 1 < L->cfg->max_attempts) {
        return;
    }
    j->checked = 1;
    memset(&j->check, 0, sizeof(j->check));
    ref = ytc_breaker_check_key(&L->yt, j->video_id);
    if (ref && ytc_check_asks_oembed(j->fail_where, L->yt_where)) {
        oembed_url(L, ref, url, sizeof(url));
    }
    else if (ref) {
        snprintf(url, sizeof(url), "%s/watch?v=%s", L->cfg->youtube_url,
                 ref);
        cookie = 1;
    }
    else {
        snprintf(url, sizeof(url), "%s/", L->cfg->youtube_url);
    }
    j->transfers++;
    if (ytc_fetch_start_status(L->fetch, url, cookie, on_check, j) != 0) {
        j->check.retry_after = -1;
        snprintf(j->check.error, sizeof(j->check.error), "cannot start");
        j->transfers--;
    }
}

void ytc_job_start(ytc_loop *L, ytc_job *j)
{
    char url[1024];

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
    oembed_url(L, j->video_id, url, sizeof(url));
    if (ytc_fetch_start(L->fetch, url, 0, on_oembed, j) != 0) {
        j->oembed.retry_after = -1;
        snprintf(j->oembed.error, sizeof(j->oembed.error), "cannot start");
        j->transfers--;
    }
    check_start(L, j);
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
