/**
 * @file ytc_sink.h
 * @brief Where results go: a JSON line on stdout and a row in the database.
 *
 * The database is reached through apr_dbd (sqlite3 in WAL mode, or pgsql);
 * the schema (conf/schema.sql, compiled in) is created if missing. Writes
 * are upserts keyed by video_id, so a redelivered message never adds a row.
 */
#ifndef YTC_SINK_H
#define YTC_SINK_H

#include <stdint.h>

#include <apr_pools.h>
#include <json-c/json.h>

#include "ytc_config.h"
#include "ytc_row.h"

typedef struct ytc_db ytc_db;

/**
 * Open the database named by @a dsn ("sqlite3:PATH", "pgsql:CONNINFO"),
 * create the schema, prepare the upsert. "none" gives *db = NULL and 0.
 * @return 0 or -1 (logged)
 */
int ytc_db_open(ytc_db **db, const char *dsn, apr_pool_t *p);

/** Upsert @a row; reconnects once if the connection was lost. 0 or -1. */
int ytc_db_upsert(ytc_db *db, const ytc_row *row);

/** A stored row reused instead of a fetch (ytc_db_lookup). */
typedef struct {
    char status[16];            /**< ok or unavailable */
    char updated_at[40];
    char *metadata_json;        /**< malloc'd: free() it */
} ytc_stored;

/**
 * Look up the row of @a video_id if its status is `ok` or `unavailable`
 * and its `updated_at` is at or after @a since (RFC 3339, as stored).
 * Reconnects once if the connection was lost, like ytc_db_upsert().
 * @return 1 (found, @a out filled), 0 (no such row) or -1 (the database
 *         failed: an outage, never "not found")
 */
int ytc_db_lookup(ytc_db *db, const char *video_id, const char *since,
                  ytc_stored *out);

/** Is the connection alive (no database counts as alive)? 0 or -1. */
int ytc_db_ping(ytc_db *db);

/** Close the connection. Safe with NULL. */
void ytc_db_close(ytc_db *db);

/** Write @a obj as one line on stdout and flush. 0 or -1. */
int ytc_stdout_line(json_object *obj);

/** Write @a len bytes of serialized JSON and a newline to stdout, flush. */
int ytc_stdout_write(const char *s, size_t len);

#endif /* YTC_SINK_H */
