#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_dbd.h>
#include <apr_strings.h>
#include <apr_time.h>

#include "ytc_log.h"
#include "ytc_schema.h"
#include "ytc_sink.h"

struct ytc_db {
    apr_pool_t *pool;           /* connection and statement live here */
    const apr_dbd_driver_t *driver;
    apr_dbd_t *handle;
    apr_dbd_prepared_t *upsert;
    apr_dbd_prepared_t *lookup;
    const char *driver_name;
    const char *params;
    int is_sqlite;
};

/* The same statement for SQLite and PostgreSQL. A failed retry series
 * (status 'error') never overwrites a result that was already stored. */
static const char UPSERT_SQL[] =
    "INSERT INTO videos (video_id, status, title, author_name, channel_id,"
    " duration_seconds, view_count, publish_date, metadata_json, attempts,"
    " last_error, first_seen_at, updated_at)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
    " ON CONFLICT (video_id) DO UPDATE SET"
    " status = CASE WHEN excluded.status = 'error'"
    "  THEN videos.status ELSE excluded.status END,"
    " title = COALESCE(excluded.title, videos.title),"
    " author_name = COALESCE(excluded.author_name, videos.author_name),"
    " channel_id = COALESCE(excluded.channel_id, videos.channel_id),"
    " duration_seconds = COALESCE(excluded.duration_seconds,"
    "  videos.duration_seconds),"
    " view_count = COALESCE(excluded.view_count, videos.view_count),"
    " publish_date = COALESCE(excluded.publish_date, videos.publish_date),"
    " metadata_json = CASE WHEN excluded.status = 'error'"
    "  AND videos.metadata_json IS NOT NULL"
    "  THEN videos.metadata_json ELSE excluded.metadata_json END,"
    " attempts = videos.attempts + excluded.attempts,"
    " last_error = excluded.last_error,"
    " updated_at = excluded.updated_at";

/* --refresh-after: a stored answer young enough to reuse. RFC 3339 UTC
 * text compares in time order, so the age test is a string comparison
 * the same on both databases. */
static const char LOOKUP_SQL[] =
    "SELECT status, metadata_json, updated_at FROM videos"
    " WHERE video_id = %s AND status IN ('ok', 'unavailable')"
    " AND updated_at >= %s";

static int run_pragma(ytc_db *db, apr_pool_t *p, const char *sql,
                      int quiet)
{
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    int rv;

    rv = apr_dbd_select(db->driver, p, db->handle, &res, sql, 0);
    if (rv != 0) {
        ytc_log(quiet ? YTC_LOG_DEBUG : YTC_LOG_ERR, YTC_LOGNO(00301)
                "sqlite: %s: %s", sql,
                apr_dbd_error(db->driver, db->handle, rv));
        return -1;
    }
    while (apr_dbd_get_row(db->driver, p, res, &row, -1) == 0) {
        /* drain */
    }
    return 0;
}

/* one statement at a time: each ends with ';' at the end of a line */
static int create_schema(ytc_db *db, int quiet)
{
    apr_pool_t *p;
    const char *s = ytc_schema_sql;
    int rc = 0;

    apr_pool_create(&p, db->pool);
    while (*s && rc == 0) {
        const char *end = strstr(s, ";\n");
        const char *line;
        char *stmt, *out;
        size_t len = end ? (size_t)(end - s) + 1 : strlen(s);
        int nrows = 0, rv, has_sql = 0;

        /* drop "--" comment lines, keep the rest */
        stmt = out = apr_palloc(p, len + 1);
        for (line = s; line < s + len;) {
            const char *nl = memchr(line, '\n', (size_t)(s + len - line));
            const char *le = nl ? nl + 1 : s + len, *q = line;
            while (q < le && (*q == ' ' || *q == '\t')) {
                q++;
            }
            if (!(le - q >= 2 && q[0] == '-' && q[1] == '-')) {
                memcpy(out, line, (size_t)(le - line));
                out += le - line;
                for (; q < le; q++) {
                    has_sql |= !(*q == ' ' || *q == '\t' || *q == '\n'
                                 || *q == '\r');
                }
            }
            line = le;
        }
        *out = '\0';
        s += len;
        while (*s == '\n') {
            s++;
        }
        if (!has_sql) {
            continue;
        }
        rv = apr_dbd_query(db->driver, db->handle, &nrows, stmt);
        if (rv != 0) {
            ytc_log(quiet ? YTC_LOG_DEBUG : YTC_LOG_ERR, YTC_LOGNO(00303)
                    "database %s: schema: %s", db->driver_name,
                    apr_dbd_error(db->driver, db->handle, rv));
            rc = -1;
        }
    }
    apr_pool_destroy(p);
    return rc;
}

static int connect_db(ytc_db *db, int quiet)
{
    const char *err = NULL;
    int rv;

    db->handle = NULL;
    db->upsert = NULL;
    db->lookup = NULL;
    if (apr_dbd_open_ex(db->driver, db->pool, db->params, &db->handle, &err)
        != APR_SUCCESS) {
        ytc_log(quiet ? YTC_LOG_DEBUG : YTC_LOG_ERR, YTC_LOGNO(00302)
                "database %s: cannot open: %s",
                db->driver_name, err ? err : "unknown error");
        db->handle = NULL;
        return -1;
    }
    /* busy_timeout first: another consumer may be creating the same file */
    if (db->is_sqlite
        && (run_pragma(db, db->pool, "PRAGMA busy_timeout=10000", quiet)
            || run_pragma(db, db->pool, "PRAGMA journal_mode=WAL", quiet)
            || run_pragma(db, db->pool, "PRAGMA synchronous=NORMAL", quiet))) {
        goto fail;
    }
    /* consumers starting together race to create the schema (SQLite:
     * "schema has changed", PostgreSQL: duplicate pg_type): try again */
    if (create_schema(db, quiet) != 0) {
        goto fail;
    }
    rv = apr_dbd_prepare(db->driver, db->pool, db->handle, UPSERT_SQL, NULL,
                         &db->upsert);
    if (rv != 0) {
        ytc_log(YTC_LOG_ERR, YTC_LOGNO(00304) "database %s: prepare: %s",
                db->driver_name, apr_dbd_error(db->driver, db->handle, rv));
        goto fail;
    }
    rv = apr_dbd_prepare(db->driver, db->pool, db->handle, LOOKUP_SQL, NULL,
                         &db->lookup);
    if (rv != 0) {
        ytc_log(YTC_LOG_ERR, YTC_LOGNO(01050) "database %s: prepare: %s",
                db->driver_name, apr_dbd_error(db->driver, db->handle, rv));
        goto fail;
    }
    return 0;

fail:
    apr_dbd_close(db->driver, db->handle);
    db->handle = NULL;
    return -1;
}

int ytc_db_open(ytc_db **out, const char *dsn, apr_pool_t *p)
{
    static int dbd_initialised;
    const char *colon = strchr(dsn, ':');
    ytc_db *db;
    apr_pool_t *pool;
    apr_status_t rv;
    int tries;

    *out = NULL;
    if (!strcmp(dsn, "none")) {
        return 0;
    }
    if (!colon) {
        ytc_log(YTC_LOG_ERR, YTC_LOGNO(00305) "--db %s: expected DRIVER:PARAMS",
                dsn);
        return -1;
    }
    if (!dbd_initialised) {
        apr_dbd_init(p);
        dbd_initialised = 1;
    }
    apr_pool_create(&pool, p);
    db = apr_pcalloc(pool, sizeof(*db));
    db->pool = pool;
    db->driver_name = apr_pstrmemdup(pool, dsn, (apr_size_t)(colon - dsn));
    db->params = apr_pstrdup(pool, colon + 1);
    db->is_sqlite = !strcmp(db->driver_name, "sqlite3");
    rv = apr_dbd_get_driver(pool, db->driver_name, &db->driver);
    if (rv != APR_SUCCESS) {
        ytc_log(YTC_LOG_ERR, YTC_LOGNO(00306) "database driver '%s' is not "
                "available (apr_dbd: %d; install libaprutil1-dbd-%s)",
                db->driver_name, rv, db->driver_name);
        apr_pool_destroy(pool);
        return -1;
    }
    /* consumers starting together race to switch SQLite to WAL and to
     * create the schema (SQLite: "database is locked", "schema has
     * changed"; PostgreSQL: duplicate pg_type): try again a few times */
    for (tries = 0; connect_db(db, tries < 9) != 0; tries++) {
        if (tries == 9) {
            apr_pool_destroy(pool);
            return -1;
        }
        apr_sleep(apr_time_from_msec(100 + 100 * tries));
    }
    ytc_log(YTC_LOG_INFO, YTC_LOGNO(00307) "database %s ready",
            db->driver_name);
    *out = db;
    return 0;
}

static int do_upsert(ytc_db *db, apr_pool_t *p, const char **args,
                     const char **err)
{
    int nrows = 0, rv;

    rv = apr_dbd_pquery(db->driver, p, db->handle, &nrows, db->upsert, 13,
                        args);
    if (rv != 0) {
        *err = apr_dbd_error(db->driver, db->handle, rv);
        return -1;
    }
    return 0;
}

int ytc_db_upsert(ytc_db *db, const ytc_row *row)
{
    const char *args[13], *err = NULL;
    apr_pool_t *p;
    int rc;

    if (!db) {
        return 0;
    }
    apr_pool_create(&p, db->pool);
    args[0] = row->video_id;
    args[1] = row->status;
    args[2] = row->title;
    args[3] = row->author_name;
    args[4] = row->channel_id;
    args[5] = row->duration_seconds >= 0
        ? apr_psprintf(p, "%" PRId64, row->duration_seconds) : NULL;
    args[6] = row->view_count >= 0
        ? apr_psprintf(p, "%" PRId64, row->view_count) : NULL;
    args[7] = row->publish_date;
    args[8] = row->metadata_json;
    args[9] = apr_psprintf(p, "%d", row->attempts);
    args[10] = row->last_error;
    args[11] = row->now;
    args[12] = row->now;

    rc = db->handle ? do_upsert(db, p, args, &err) : -1;
    if (rc != 0) {
        ytc_log(YTC_LOG_WARN, YTC_LOGNO(00308) "database %s: upsert of %s "
                "failed (%s); reconnecting", db->driver_name, row->video_id,
                err ? err : "not connected");
        /* the error text lives in the connection closed below */
        err = err ? apr_pstrdup(p, err) : NULL;
        if (db->handle) {
            apr_dbd_close(db->driver, db->handle);
            db->handle = NULL;
        }
        if (connect_db(db, 0) == 0) {
            rc = do_upsert(db, p, args, &err);
        }
        if (rc != 0) {
            ytc_log(YTC_LOG_ERR, YTC_LOGNO(00309) "database %s: upsert of %s "
                    "failed: %s", db->driver_name, row->video_id,
                    err ? err : "not connected");
        }
    }
    apr_pool_destroy(p);
    return rc;
}

static int do_lookup(ytc_db *db, apr_pool_t *p, const char **args,
                     ytc_stored *out, const char **err)
{
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    int rv, found = 0;

    /* random access (1): the whole answer at once, its status checked;
     * apr_dbd_pgsql's sequential mode reports a dead connection as "no
     * rows", which would turn an outage into a fetch */
    rv = apr_dbd_pselect(db->driver, p, db->handle, &res, db->lookup, 1, 2,
                         args);
    if (rv != 0) {
        *err = apr_dbd_error(db->driver, db->handle, rv);
        return -1;
    }
    /* read every row (one at most: video_id is the key), so the
     * statement is reset for the next lookup */
    while ((rv = apr_dbd_get_row(db->driver, p, res, &row, -1)) == 0) {
        const char *st = apr_dbd_get_entry(db->driver, row, 0);
        const char *js = apr_dbd_get_entry(db->driver, row, 1);
        const char *up = apr_dbd_get_entry(db->driver, row, 2);
        if (found || !st || !js || !*js) {
            continue;
        }
        if (!(out->metadata_json = strdup(js))) {
            continue;
        }
        snprintf(out->status, sizeof(out->status), "%s", st);
        snprintf(out->updated_at, sizeof(out->updated_at), "%s",
                 up ? up : "");
        found = 1;
    }
    if (rv > 0) {
        /* -1 is the end of the rows; anything else is an error */
        free(out->metadata_json);
        out->metadata_json = NULL;
        *err = apr_dbd_error(db->driver, db->handle, rv);
        return -1;
    }
    return found;
}

int ytc_db_lookup(ytc_db *db, const char *video_id, const char *since,
                  ytc_stored *out)
{
    const char *args[2], *err = NULL;
    apr_pool_t *p;
    int rc;

    memset(out, 0, sizeof(*out));
    if (!db) {
        return 0;
    }
    apr_pool_create(&p, db->pool);
    args[0] = video_id;
    args[1] = since;
    rc = db->handle ? do_lookup(db, p, args, out, &err) : -1;
    if (rc < 0) {
        ytc_log(YTC_LOG_WARN, YTC_LOGNO(01051) "database %s: lookup of %s "
                "failed (%s); reconnecting", db->driver_name, video_id,
                err ? err : "not connected");
        if (db->handle) {
            apr_dbd_close(db->driver, db->handle);
            db->handle = NULL;
        }
        err = NULL;
        if (connect_db(db, 0) == 0) {
            rc = do_lookup(db, p, args, out, &err);
        }
        if (rc < 0) {
            ytc_log(YTC_LOG_WARN, YTC_LOGNO(01052) "database %s: lookup of "
                    "%s failed: %s", db->driver_name, video_id,
                    err ? err : "not connected");
        }
    }
    apr_pool_destroy(p);
    return rc;
}

int ytc_db_ping(ytc_db *db)
{
    if (!db) {
        return 0;
    }
    if (!db->handle) {
        return -1;
    }
    return apr_dbd_check_conn(db->driver, db->pool, db->handle) == APR_SUCCESS
           ? 0 : -1;
}

void ytc_db_close(ytc_db *db)
{
    if (!db) {
        return;
    }
    if (db->handle) {
        apr_dbd_close(db->driver, db->handle);
    }
    apr_pool_destroy(db->pool);
}

int ytc_stdout_write(const char *s, size_t len)
{
    if (fwrite(s, 1, len, stdout) != len || fputc('\n', stdout) == EOF
        || fflush(stdout) != 0) {
        return -1;
    }
    return 0;
}

int ytc_stdout_line(json_object *obj)
{
    size_t len = 0;
    const char *s = json_object_to_json_string_length(
        obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);

    return ytc_stdout_write(s, len);
}
