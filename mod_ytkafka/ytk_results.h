/**
 * @file ytk_results.h
 * @brief The ytkafka-results handler: the consumer's rows back over HTTP,
 *        read through mod_dbd.
 *
 * GET /links/{video_id}, GET /links?url=<link>, GET /links?limit=N
 * [&before=<cursor>]. The database connection is mod_dbd's (DBDriver,
 * DBDParams); the statements are prepared through ap_dbd_prepare.
 */
#ifndef YTK_RESULTS_H
#define YTK_RESULTS_H

#include <httpd.h>
#include <http_config.h>

/** Default of YtKafkaResultsTable. */
#define YTK_DEF_RESULTS_TABLE      "videos"
/** Default of YtKafkaResultsMaxLimit. */
#define YTK_DEF_RESULTS_MAX_LIMIT  100
/** Rows a list answers when the request names no limit (capped by max). */
#define YTK_RESULTS_DEF_LIMIT      20

/** YtKafkaResultsTable name: an SQL identifier, checked here. */
const char *ytk_results_set_table(cmd_parms *cmd, void *dcfg,
                                  const char *arg);

/** YtKafkaResultsMaxLimit n: 1..10000. */
const char *ytk_results_set_max_limit(cmd_parms *cmd, void *dcfg,
                                      const char *arg);

/**
 * check_config hook (so "apache2 -t" sees it): fail the configuration if
 * the ytkafka-results handler is used but mod_dbd is not loaded or no
 * DBDriver is configured.
 */
int ytk_results_check_config(apr_pool_t *pconf, apr_pool_t *plog,
                             apr_pool_t *ptemp, server_rec *s);

/**
 * post_config hook, run before mod_dbd's: prepare the statements of every
 * server when the ytkafka-results handler is used.
 */
int ytk_results_post_config(apr_pool_t *pconf, apr_pool_t *plog,
                            apr_pool_t *ptemp, server_rec *s);

/**
 * The handler. GET and HEAD only (405 with Allow otherwise); 200, 304,
 * 400, 404, or 503 with Retry-After when the database is down or locked.
 * Every error body is {"error": {"code", "message"}, "request_id"}.
 */
int ytk_results_handler(request_rec *r);

#endif /* YTK_RESULTS_H */
