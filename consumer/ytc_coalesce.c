/*
 * A good client of YouTube: one fetch per video in flight (a job for a
 * video already being fetched waits on that fetch and ends with it), and
 * a stored answer younger than --refresh-after reused instead of a fetch.
 * See docs/ARCHITECTURE.md, "Data flow".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ytk_envelope.h"
#include "ytc_log.h"
#include "ytc_loop_int.h"
#include "ytc_metrics.h"

static ytc_job *leader_of(const ytc_loop *L, const char *id)
{
    if (!L->inflight) {
        return NULL;
    }
    return apr_hash_get(L->inflight, id, APR_HASH_KEY_STRING);
}

static void leader_set(ytc_loop *L, ytc_job *j)
{
    if (!L->inflight) {
        L->inflight = apr_hash_make(L->pool);
    }
    apr_hash_set(L->inflight, j->video_id, APR_HASH_KEY_STRING, j);
    j->registered = 1;
}

static void leader_unset(ytc_loop *L, ytc_job *j)
{
    if (j->registered) {
        apr_hash_set(L->inflight, j->video_id, APR_HASH_KEY_STRING, NULL);
        j->registered = 0;
    }
}

/* queue @a j behind the database without counting a failure (the
 * database was not asked, or its failure is counted once already) */
static void db_wait(ytc_loop *L, ytc_job *j)
{
    ytc_job_append(&L->db_head, &L->db_tail, j);
}

void ytc_coalesce_forget(ytc_loop *L, ytc_job *j)
{
    ytc_job *f, **fp;

    leader_unset(L, j);
    if (j->leader) {
        for (fp = &j->leader->followers; *fp; fp = &(*fp)->next) {
            if (*fp == j) {
                *fp = j->next;
                j->leader->nfollowers--;
                break;
            }
        }
        j->leader = NULL;
        j->next = NULL;
    }
    /* the leader goes without an answer (shutdown, teardown): so do the
     * jobs waiting on it; their messages stay unfinished, uncommitted */
    while ((f = j->followers) != NULL) {
        j->followers = f->next;
        f->leader = NULL;
        f->next = NULL;
        ytc_job_free(L, f);
    }
    j->nfollowers = 0;
}

void ytc_group_emit(ytc_loop *L, ytc_job *j, ytc_outcome out,
                    json_object *result, const char *reason)
{
    ytc_job *followers = j->followers, *f, *next;
    int attempts = j->attempts, reused = j->reused, stored;
    int has_reason = reason != NULL;
    char why[600];

    /* the job may be freed below and @a reason may be its last_error */
    snprintf(why, sizeof(why), "%s", reason ? reason : "");
    leader_unset(L, j);
    j->followers = NULL;
    j->nfollowers = 0;
    for (f = followers; f; f = f->next) {
        f->leader = NULL;
        if (f->result) {
            json_object_put(f->result);
        }
        f->result = NULL;
        /* each message shares the leader's result and its columns (the
         * row points into it): every emit replaces the record's own
         * members (source, attempts, fetched_at) before it writes */
        if (result) {
            f->result = json_object_get(result);
            f->row = j->row;
        }
    }

    if (ytc_job_emit(L, j, out, result, has_reason ? why : NULL) != 0) {
        stored = 0;
        ytc_job_db_hold(L, j);
    }
    else {
        stored = 1;
        ytc_job_finish(L, j);
    }

    for (f = followers; f; f = next) {
        json_object *r = f->result;

        next = f->next;
        f->next = NULL;
        f->result = NULL;
        f->attempts = attempts;     /* attempts count per fetch */
        f->reused = reused;
        f->row_stored = stored;     /* one upsert served them all */
        if (!stored) {
            /* the database just refused the leader's row: wait behind
             * it rather than ask again once per message */
            f->result = r ? r : json_object_new_object();
            f->out = out;
            snprintf(f->last_error, sizeof(f->last_error), "%s", why);
            if (!r) {
                json_object_object_add(f->result, "video_id",
                                       json_object_new_string(f->video_id));
                json_object_object_add(f->result, "status",
                                       json_object_new_string("error"));
            }
            db_wait(L, f);
            continue;
        }
        if (ytc_job_emit(L, f, out, r, has_reason ? why : NULL) != 0) {
            ytc_job_db_hold(L, f);
            continue;
        }
        ytc_job_finish(L, f);
    }
}

/* --refresh-after: 1 (answered from the stored row), 0 (fetch it), -1
 * (the database failed) */
static int try_stored(ytc_loop *L, ytc_job *j)
{
    char since[40];
    ytc_stored st;
    json_object *res, *v;
    int rc;

    ytk_format_time((int64_t)(apr_time_now()
                              - apr_time_from_sec(L->cfg->refresh_after)),
                    since, sizeof(since));
    rc = ytc_db_lookup(L->db, j->video_id, since, &st);
    if (rc <= 0) {
        return rc;
    }
    res = json_tokener_parse(st.metadata_json);
    free(st.metadata_json);
    if (!res || !json_object_is_type(res, json_type_object)) {
        if (res) {
            json_object_put(res);
        }
        return 0;
    }
    if (json_object_object_get_ex(res, "attempts", &v) && v
        && json_object_is_type(v, json_type_int)) {
        j->attempts = json_object_get_int(v);
    }
    j->reused = 1;
    ytc_metrics_add(YTC_M_CACHE_HITS, 1);
    j->row_stored = 1;      /* its updated_at stays as it is */
    ytc_log(YTC_LOG_DEBUG, YTC_LOGNO(01054) "video %s: stored %s row of %s "
            "reused, not fetched (%d message(s))", j->video_id, st.status,
            st.updated_at, 1 + j->nfollowers);
    ytc_group_emit(L, j, !strcmp(st.status, "ok") ? YTC_OUT_OK
                   : YTC_OUT_UNAVAILABLE, res, NULL);
    return 1;
}

int ytc_lookup_again(ytc_loop *L, ytc_job *j)
{
    int rc;

    j->lookup = 0;
    if (j->db_skip) {
        /* the database answers but keeps failing this lookup: fetch;
         * the row's own upsert then meets the database as usual */
        ytc_log(YTC_LOG_WARN, YTC_LOGNO(01055) "video %s: stored-row "
                "lookup keeps failing; fetching", j->video_id);
        j->db_skip = 0;
        j->db_fails = 0;
        ytc_job_enqueue(L, j);
        return 0;
    }
    rc = try_stored(L, j);
    if (rc < 0) {
        j->lookup = 1;
        return -1;
    }
    if (rc == 0) {
        ytc_job_enqueue(L, j);
    }
    return 0;
}

void ytc_job_submit(ytc_loop *L, ytc_msg *m, const char *id)
{
    ytc_job *j = ytc_job_new(L, m, id), *lead = leader_of(L, id);
    int rc;

    if (lead) {
        /* the video is being fetched (or waits for its retry, its probe
         * or its lookup): this job ends with that fetch */
        j->leader = lead;
        j->next = lead->followers;
        lead->followers = j;
        lead->nfollowers++;
        ytc_metrics_add(YTC_M_COALESCED, 1);
        ytc_log(YTC_LOG_DEBUG, YTC_LOGNO(01056) "video %s: joins the fetch "
                "in flight (%d waiting on it)", id, lead->nfollowers);
        return;
    }
    leader_set(L, j);
    if (L->cfg->refresh_after > 0 && L->db) {
        if (L->dbb.open) {
            /* the database is out: the lookup waits for it (a fetch now
             * could only be held too) */
            j->lookup = 1;
            db_wait(L, j);
            return;
        }
        rc = try_stored(L, j);
        if (rc > 0) {
            return;
        }
        if (rc < 0) {
            j->lookup = 1;
            ytc_job_db_hold(L, j);
            return;
        }
    }
    ytc_job_enqueue(L, j);
}
