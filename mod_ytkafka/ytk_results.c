/* mod_ytkafka: the ytkafka-results handler, the consumer's rows through
 * mod_dbd. The connection and its pool are mod_dbd's; this file only
 * prepares three statements, runs them and writes JSON. */
#include <string.h>

#include <apr_base64.h>
#include <apr_date.h>
#include <apr_dbd.h>
#include <apr_lib.h>
#include <apr_optional.h>
#include <apr_strings.h>

#include <httpd.h>
#include <http_config.h>
#include <http_core.h>
#include <http_log.h>
#include <http_protocol.h>
#include <http_request.h>
#include <mod_dbd.h>
#include <util_script.h>

#include <json-c/json.h>

#include "ytk_private.h"
#include "ytk_answer.h"
#include "ytk_config.h"
#include "ytk_reqid.h"
#include "ytk_results.h"
#include "ytk_url.h"

#define COLS "video_id, status, title, author_name, channel_id, " \
             "duration_seconds, view_count, publish_date, metadata_json, " \
             "attempts, last_error, first_seen_at, updated_at"
#define COLS_LIST "video_id, status, title, author_name, channel_id, " \
             "duration_seconds, view_count, publish_date, NULL, " \
             "attempts, last_error, first_seen_at, updated_at"
#define LBL_GET    "ytkafka_results_get"
#define LBL_LIST   "ytkafka_results_list"
#define LBL_BEFORE "ytkafka_results_before"
/* Seconds a client waits before asking again when the database is busy. */
#define RETRY_AFTER 2
/* Longest cursor accepted, in bytes: a timestamp and an id, base64url. */
#define CURSOR_MAX 128

static APR_OPTIONAL_FN_TYPE(ap_dbd_prepare) *dbd_prepare;
static APR_OPTIONAL_FN_TYPE(ap_dbd_acquire) *dbd_acquire;

static const char *const row_keys[] = {
    "video_id", "status", "title", "author_name", "channel_id",
    "duration_seconds", "view_count", "publish_date", "metadata",
    "attempts", "last_error", "first_seen_at", "updated_at"
};
#define NCOLS ((int)(sizeof(row_keys) / sizeof(row_keys[0])))
#define COL_META 8
#define COL_UPDATED 12

const char *ytk_results_set_table(cmd_parms *cmd, void *dcfg,
                                  const char *arg)
{
    ytk_srv_conf *sc = ytk_srv_conf_get(cmd->server);
    const char *c;

    (void)dcfg;
    if (!*arg || strlen(arg) > 63 || apr_isdigit(*arg)) {
        return "YtKafkaResultsTable: not an SQL identifier";
    }
    for (c = arg; *c; ++c) {
        if (!apr_isalnum(*c) && *c != '_') {
            return "YtKafkaResultsTable: only letters, digits and '_' "
                   "are allowed";
        }
    }
    sc->results_table = arg;
    return NULL;
}

const char *ytk_results_set_max_limit(cmd_parms *cmd, void *dcfg,
                                      const char *arg)
{
    ytk_srv_conf *sc = ytk_srv_conf_get(cmd->server);
    char *end;
    apr_int64_t v = apr_strtoi64(arg, &end, 10);

    (void)dcfg;
    if (end == arg || *end || v < 1 || v > 10000) {
        return "YtKafkaResultsMaxLimit: expects a number from 1 to 10000";
    }
    sc->results_max_limit = (int)v;
    return NULL;
}

static const char *conf_table(const ytk_srv_conf *sc)
{
    return sc->results_table ? sc->results_table : YTK_DEF_RESULTS_TABLE;
}

static int conf_max_limit(const ytk_srv_conf *sc)
{
    return sc->results_max_limit > 0 ? sc->results_max_limit
                                     : YTK_DEF_RESULTS_MAX_LIMIT;
}

/* First SetHandler ytkafka-results and first DBDriver of the tree. */
static void scan(apr_pool_t *p, const ap_directive_t *d,
                 const ap_directive_t **handler,
                 const ap_directive_t **driver)
{
    for (; d; d = d->next) {
        if (!strcasecmp(d->directive, "SetHandler")
            || !strcasecmp(d->directive, "AddHandler")) {
            const char *args = d->args;
            char *h = ap_getword_conf(p, &args);

            if (!strcasecmp(h, "ytkafka-results") && !*handler) {
                *handler = d;
            }
        }
        else if (!strcasecmp(d->directive, "DBDriver") && !*driver) {
            *driver = d;
        }
        if (d->first_child) {
            scan(p, d->first_child, handler, driver);
        }
    }
}

int ytk_results_check_config(apr_pool_t *pconf, apr_pool_t *plog,
                             apr_pool_t *ptemp, server_rec *s)
{
    const ap_directive_t *handler = NULL, *driver = NULL;

    (void)pconf;
    (void)plog;
    (void)s;
    scan(ptemp, ap_conftree, &handler, &driver);
    if (!handler) {
        return OK;
    }
    if (!APR_RETRIEVE_OPTIONAL_FN(ap_dbd_prepare)
        || !APR_RETRIEVE_OPTIONAL_FN(ap_dbd_acquire)) {
        ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_EMERG, 0, NULL,
                     YTK_LOGNO(00800) "SetHandler ytkafka-results (%s:%d) "
                     "needs mod_dbd: LoadModule dbd_module and set "
                     "DBDriver and DBDParams", handler->filename,
                     handler->line_num);
        return !OK;
    }
    if (!driver) {
        ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_EMERG, 0, NULL,
                     YTK_LOGNO(00801) "SetHandler ytkafka-results (%s:%d) "
                     "needs a database: no DBDriver is configured",
                     handler->filename, handler->line_num);
        return !OK;
    }
    return OK;
}

int ytk_results_post_config(apr_pool_t *pconf, apr_pool_t *plog,
                            apr_pool_t *ptemp, server_rec *s)
{
    const ap_directive_t *handler = NULL, *driver = NULL;
    server_rec *sv;

    (void)pconf;
    (void)plog;
    scan(ptemp, ap_conftree, &handler, &driver);
    dbd_prepare = APR_RETRIEVE_OPTIONAL_FN(ap_dbd_prepare);
    dbd_acquire = APR_RETRIEVE_OPTIONAL_FN(ap_dbd_acquire);
    if (!handler || !driver || !dbd_prepare || !dbd_acquire) {
        return OK;
    }
    for (sv = s; sv; sv = sv->next) {
        const char *t = conf_table(ytk_srv_conf_get(sv));
        apr_pool_t *pp = s->process->pool;

        dbd_prepare(sv, apr_psprintf(pp, "SELECT " COLS " FROM %s WHERE "
                                     "video_id = %%s", t), LBL_GET);
        dbd_prepare(sv, apr_psprintf(pp, "SELECT " COLS_LIST " FROM %s "
                                     "ORDER BY updated_at DESC, video_id "
                                     "DESC LIMIT CAST(%%s AS INTEGER)", t),
                    LBL_LIST);
        dbd_prepare(sv, apr_psprintf(pp, "SELECT " COLS_LIST " FROM %s "
                                     "WHERE updated_at < %%s OR (updated_at "
                                     "= %%s AND video_id < %%s) ORDER BY "
                                     "updated_at DESC, video_id DESC LIMIT "
                                     "CAST(%%s AS INTEGER)", t), LBL_BEFORE);
    }
    return OK;
}

/* The shared answer writer, plus the header these answers always had. */
static int respond(request_rec *r, const char *rid, int status, ytk_jbuf *b)
{
    apr_table_setn(r->headers_out, "X-Content-Type-Options", "nosniff");
    return ytk_answer_write(r, rid, status, b);
}

static int respond_error(request_rec *r, const char *rid, int status,
                         const char *code, const char *message)
{
    ytk_jbuf b;

    ytk_jb_init(&b, r->pool);
    YTK_JB_LIT(&b, "{");
    ytk_jerror(&b, code, message);
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    return respond(r, rid, status, &b);
}

static int unavailable(request_rec *r, const char *rid, ap_dbd_t *db,
                       int err, const char *what)
{
    ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                  YTK_LOGNO(00802) "results: %s: %s", what,
                  db ? apr_dbd_error(db->driver, db->handle, err)
                     : "no database connection");
    ytk_answer_retry_after(r, RETRY_AFTER);
    return respond_error(r, rid, HTTP_SERVICE_UNAVAILABLE,
                         "database_unavailable",
                         "the results database is unavailable or busy; "
                         "retry later");
}

/* pgsql's sequential mode reports a lost connection as "no more rows", so
 * it fetches everything inside the select (random access). sqlite3's random
 * mode keeps the statement, and its read lock, until the next use, so it
 * reads sequentially and the caller drains the rows. */
static int random_access(ap_dbd_t *db)
{
    return !strcmp(apr_dbd_name(db->driver), "pgsql");
}

/* The members of one row (the caller opens and closes the object); the
 * list leaves the metadata out. */
static void row_write(ytk_jbuf *b, ap_dbd_t *db, apr_dbd_row_t *row,
                      int with_meta)
{
    int i;

    for (i = 0; i < NCOLS; ++i) {
        const char *v = apr_dbd_get_entry(db->driver, row, i);
        json_object *j;

        if (i == COL_META) {
            if (!with_meta) {
                continue;
            }
            if (!v || !(j = json_tokener_parse(v))) {
                ytk_jset_null(b, row_keys[i]);
                continue;
            }
            v = json_object_to_json_string_ext(
                j, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
            ytk_jb_key(b, row_keys[i]);
            ytk_jb_raw(b, v, strlen(v));
            json_object_put(j);
        }
        else if (!v) {
            ytk_jset_null(b, row_keys[i]);
        }
        else if (i == 5 || i == 6 || i == 9) {
            ytk_jset_int(b, row_keys[i], apr_atoi64(v));
        }
        else {
            ytk_jset(b, row_keys[i], v);
        }
    }
}

/* "2026-11-23T04:12:48.123Z" to apr_time_t, 0 if it is not that. */
static apr_time_t parse_ts(const char *ts)
{
    apr_time_exp_t x;
    apr_time_t t;

    if (!ts || strlen(ts) < 20 || ts[4] != '-' || ts[10] != 'T') {
        return 0;
    }
    memset(&x, 0, sizeof(x));
    x.tm_year = atoi(ts) - 1900;
    x.tm_mon = atoi(ts + 5) - 1;
    x.tm_mday = atoi(ts + 8);
    x.tm_hour = atoi(ts + 11);
    x.tm_min = atoi(ts + 14);
    x.tm_sec = atoi(ts + 17);
    if (apr_time_exp_gmt_get(&t, &x) != APR_SUCCESS) {
        return 0;
    }
    return t;
}

static int answer_one(request_rec *r, const char *rid, const char *id)
{
    ap_dbd_t *db = dbd_acquire(r);
    apr_dbd_prepared_t *st;
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    ytk_jbuf b;
    const char *updated;
    apr_time_t mtime;
    int rv, status;

    if (!db) {
        return unavailable(r, rid, NULL, 0, "acquire");
    }
    st = apr_hash_get(db->prepared, LBL_GET, APR_HASH_KEY_STRING);
    if (!st) {
        return unavailable(r, rid, NULL, 0, "statement not prepared");
    }
    rv = apr_dbd_pvselect(db->driver, r->pool, db->handle, &res, st, random_access(db),
                          id, NULL);
    if (rv) {
        return unavailable(r, rid, db, rv, "select");
    }
    rv = apr_dbd_get_row(db->driver, r->pool, res, &row, -1);
    if (rv == -1) {
        return respond_error(r, rid, HTTP_NOT_FOUND, "not_found",
                             "no result for this video yet");
    }
    if (rv) {
        return unavailable(r, rid, db, rv, "fetch");
    }
    ytk_jb_init(&b, r->pool);
    YTK_JB_LIT(&b, "{");
    row_write(&b, db, row, 1);
    updated = apr_dbd_get_entry(db->driver, row, COL_UPDATED);
    updated = updated ? apr_pstrdup(r->pool, updated) : NULL;
    while (apr_dbd_get_row(db->driver, r->pool, res, &row, -1) == 0) {
    }
    apr_table_setn(r->headers_out, "Cache-Control", "no-cache");
    if (updated) {
        char *etag = apr_psprintf(r->pool, "\"%s-%s\"", id, updated);
        char *c;

        for (c = etag + 1; *c; ++c) {
            if (!apr_isalnum(*c) && *c != '"' && *c != '-' && *c != '_') {
                *c = '.';
            }
        }
        apr_table_setn(r->headers_out, "ETag", etag);
        if ((mtime = parse_ts(updated)) != 0) {
            ap_update_mtime(r, mtime);
            ap_set_last_modified(r);
        }
        if ((status = ap_meets_conditions(r)) != OK) {
            r->status = status;
            return status == HTTP_NOT_MODIFIED ? OK : status;
        }
    }
    return respond(r, rid, HTTP_OK, &b);
}

static char *cursor_make(apr_pool_t *p, const char *updated, const char *id)
{
    const char *plain = apr_pstrcat(p, updated, "|", id, NULL);
    int n = (int)strlen(plain);
    char *out = apr_palloc(p, apr_base64_encode_len(n));
    char *c;

    apr_base64_encode(out, plain, n);
    for (c = out; *c; ++c) {
        *c = *c == '+' ? '-' : *c == '/' ? '_' : *c == '=' ? '\0' : *c;
        if (!*c) {
            break;
        }
    }
    return out;
}

/* 0 and the two parts, or -1 if @a cur is not a cursor this module made. */
static int cursor_parse(apr_pool_t *p, const char *cur, const char **updated,
                        const char **id)
{
    apr_size_t n = strlen(cur), i;
    char *b, *plain, *bar;
    int len;

    if (!n || n > CURSOR_MAX) {
        return -1;
    }
    b = apr_palloc(p, n + 4);
    for (i = 0; i < n; ++i) {
        char c = cur[i];

        if (!apr_isalnum(c) && c != '-' && c != '_') {
            return -1;
        }
        b[i] = c == '-' ? '+' : c == '_' ? '/' : c;
    }
    while (i % 4) {
        b[i++] = '=';
    }
    b[i] = '\0';
    plain = apr_palloc(p, apr_base64_decode_len(b) + 1);
    len = apr_base64_decode(plain, b);
    plain[len] = '\0';
    if (!(bar = strchr(plain, '|'))) {
        return -1;
    }
    *bar = '\0';
    if (!ytk_video_id_valid(bar + 1, strlen(bar + 1)) || !parse_ts(plain)) {
        return -1;
    }
    for (i = 0; plain[i]; ++i) {
        if (!apr_isdigit(plain[i]) && !strchr("-:.TZ", plain[i])) {
            return -1;
        }
    }
    *updated = plain;
    *id = bar + 1;
    return 0;
}

static int answer_list(request_rec *r, const char *rid, const char *limit_s,
                       const char *before)
{
    const ytk_srv_conf *sc = ytk_srv_conf_get(r->server);
    int max = conf_max_limit(sc), limit = YTK_RESULTS_DEF_LIMIT, n = 0, rv;
    int more = 0;
    const char *b_upd = NULL, *b_id = NULL, *last_upd = NULL, *last_id = NULL;
    ap_dbd_t *db;
    apr_dbd_prepared_t *st;
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    ytk_jbuf b;

    if (limit_s) {
        char *end;
        apr_int64_t v = apr_strtoi64(limit_s, &end, 10);

        if (end == limit_s || *end || v < 1) {
            return respond_error(r, rid, HTTP_BAD_REQUEST, "bad_limit",
                                 "limit must be a positive integer");
        }
        limit = v > max ? max : (int)v;
    }
    if (limit > max) {
        limit = max;
    }
    if (before && cursor_parse(r->pool, before, &b_upd, &b_id)) {
        return respond_error(r, rid, HTTP_BAD_REQUEST, "bad_cursor",
                             "before is not a cursor from this endpoint");
    }
    if (!(db = dbd_acquire(r))) {
        return unavailable(r, rid, NULL, 0, "acquire");
    }
    st = apr_hash_get(db->prepared, before ? LBL_BEFORE : LBL_LIST,
                      APR_HASH_KEY_STRING);
    if (!st) {
        return unavailable(r, rid, NULL, 0, "statement not prepared");
    }
    /* One row more than asked tells whether there is a next page. Random
     * access (1) makes the drivers fetch every row inside the select, so a
     * lost connection is an error there, not a short answer. */
    if (before) {
        rv = apr_dbd_pvselect(db->driver, r->pool, db->handle, &res, st, random_access(db),
                              b_upd, b_upd, b_id,
                              apr_itoa(r->pool, limit + 1), NULL);
    }
    else {
        rv = apr_dbd_pvselect(db->driver, r->pool, db->handle, &res, st, random_access(db),
                              apr_itoa(r->pool, limit + 1), NULL);
    }
    if (rv) {
        return unavailable(r, rid, db, rv, "list");
    }
    ytk_jb_init(&b, r->pool);
    YTK_JB_LIT(&b, "{");
    ytk_jb_key(&b, "videos");
    YTK_JB_LIT(&b, "[");
    while ((rv = apr_dbd_get_row(db->driver, r->pool, res, &row, -1)) == 0) {
        if (n == limit) {
            more = 1;
            continue;
        }
        if (n) {
            YTK_JB_LIT(&b, ",");
        }
        YTK_JB_LIT(&b, "{");
        row_write(&b, db, row, 0);
        YTK_JB_LIT(&b, "}");
        last_id = apr_pstrdup(r->pool, apr_dbd_get_entry(db->driver, row, 0));
        last_upd = apr_pstrdup(r->pool,
                               apr_dbd_get_entry(db->driver, row,
                                                 COL_UPDATED));
        ++n;
    }
    if (rv != -1) {
        return unavailable(r, rid, db, rv, "list fetch");
    }
    YTK_JB_LIT(&b, "]");
    ytk_jset_int(&b, "limit", limit);
    if (more && last_id && last_upd) {
        ytk_jset(&b, "next", cursor_make(r->pool, last_upd, last_id));
    }
    else {
        ytk_jset_null(&b, "next");
    }
    apr_table_setn(r->headers_out, "Cache-Control", "no-cache");
    return respond(r, rid, HTTP_OK, &b);
}

int ytk_results_handler(request_rec *r)
{
    const char *rid, *pi;
    apr_table_t *args = NULL;
    const char *url, *limit, *before;
    char id[YTK_VIDEO_ID_LEN + 1];

    if (!r->handler || strcmp(r->handler, "ytkafka-results")) {
        return DECLINED;
    }
    rid = ytk_request_id(r);
    apr_table_setn(r->err_headers_out, "X-Request-ID", rid);
    r->allowed = (AP_METHOD_BIT << M_GET);
    if (r->method_number != M_GET) {
        apr_table_setn(r->err_headers_out, "Allow", "GET, HEAD");
        return respond_error(r, rid, HTTP_METHOD_NOT_ALLOWED,
                             "method_not_allowed",
                             "only GET and HEAD are allowed here");
    }
    if (!dbd_acquire) {
        return unavailable(r, rid, NULL, 0, "mod_dbd is not loaded");
    }
    pi = r->path_info ? r->path_info : "";
    while (*pi == '/') {
        ++pi;
    }
    if (*pi) {
        if (!ytk_video_id_valid(pi, strlen(pi))) {
            return respond_error(r, rid, HTTP_BAD_REQUEST, "bad_id",
                                 "not a YouTube video id");
        }
        return answer_one(r, rid, pi);
    }
    ap_args_to_table(r, &args);
    url = apr_table_get(args, "url");
    limit = apr_table_get(args, "limit");
    before = apr_table_get(args, "before");
    if (url) {
        ytk_url_rc rc = ytk_url_video_id(url, strlen(url), id);

        if (rc != YTK_URL_OK) {
            return respond_error(r, rid, HTTP_BAD_REQUEST,
                                 ytk_url_code(rc), ytk_url_strerror(rc));
        }
        return answer_one(r, rid, apr_pstrdup(r->pool, id));
    }
    return answer_list(r, rid, limit, before);
}
