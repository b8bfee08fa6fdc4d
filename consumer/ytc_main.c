/**
 * ytkafka-consumer: consume YouTube links from Kafka in a consumer group,
 * fetch each video's metadata, store it. See docs/ARCHITECTURE.md.
 */
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>
#include <apr_pools.h>
#include <apr_time.h>
#include <curl/curl.h>
#include <json-c/json.h>

#include "ytk_envelope.h"
#include "ytc_config.h"
#include "ytc_fetch_limits.h"
#include "ytc_log.h"
#include "ytc_loop.h"
#include "ytc_meta.h"
#include "ytc_metrics.h"
#include "ytc_record.h"
#include "ytc_sink.h"

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

/* an APR allocation failed (every pool descends from main's): nothing
 * more can be stored safely, and nothing uncommitted is lost by stopping */
static int pool_abort(int rc)
{
    (void)rc;
    fputs("ytkafka-consumer: out of memory\n", stderr);
    abort();
}

static char *slurp(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    char *buf = NULL;
    size_t cap = 0, n;

    *len = 0;
    if (!fp) {
        return NULL;
    }
    for (;;) {
        if (*len + 65536 + 1 > cap) {
            char *nb;
            cap = cap ? cap * 2 : 1 << 20;
            if (!(nb = realloc(buf, cap))) {
                free(buf);
                fclose(fp);
                return NULL;
            }
            buf = nb;
        }
        n = fread(buf + *len, 1, 65536, fp);
        *len += n;
        if (n == 0) {
            break;
        }
    }
    buf[*len] = '\0';
    fclose(fp);
    return buf;
}

/* --parse-watch: run the extractor over saved answers and print the
 * record a live consumer prints for them (ytc_record_make), with one
 * attempt and no Kafka source; the outcome goes to stderr */
static int parse_offline(const ytc_config *cfg)
{
    ytc_http_answer watch, oembed;
    json_object *result = NULL, *pr, *id;
    char reason[600], when[32];
    const char *vid = cfg->video_id, *text;
    long retry_after;
    size_t len;
    ytc_outcome out;

    memset(&watch, 0, sizeof(watch));
    memset(&oembed, 0, sizeof(oembed));
    watch.status = 200;
    watch.retry_after = oembed.retry_after = -1;
    if (!(watch.body = slurp(cfg->parse_watch, &watch.len))) {
        fprintf(stderr, "ytkafka-consumer: cannot read %s\n", cfg->parse_watch);
        return 1;
    }
    if (watch.len >= YTC_FETCH_MAX_BODY) {
        /* what the fetcher does with such a body: abort it */
        free(watch.body);
        watch.body = NULL;
        watch.len = 0;
        watch.status = 0;
        watch.transport = YTC_TRANSPORT_TOO_LARGE;
    }
    if (cfg->parse_oembed) {
        oembed.status = 200;
        if (!(oembed.body = slurp(cfg->parse_oembed, &oembed.len))) {
            fprintf(stderr, "ytkafka-consumer: cannot read %s\n",
                    cfg->parse_oembed);
            free(watch.body);
            return 1;
        }
    }
    else {
        oembed.status = 404;
    }
    pr = vid ? NULL : ytc_meta_player_response(watch.body, watch.len);
    if (pr && json_object_object_get_ex(pr, "videoDetails", &id)
        && json_object_object_get_ex(id, "videoId", &id)) {
        vid = json_object_get_string(id);
    }
    if (!vid) {
        vid = "";
    }
    out = ytc_meta_extract(vid, &watch, &oembed, &result, reason,
                           sizeof(reason), &retry_after);
    ytk_format_time((int64_t)apr_time_now(), when, sizeof(when));
    result = ytc_record_make(result, vid, out, reason, 1, when, NULL);
    text = ytc_record_text(result, &len);
    ytc_stdout_write(text, len);
    fprintf(stderr, "outcome: %s%s%s\n", ytc_outcome_name(out),
            reason[0] ? ": " : "", reason);
    json_object_put(result);
    json_object_put(pr);
    free(watch.body);
    free(oembed.body);
    return 0;
}

int main(int argc, char **argv)
{
    apr_pool_t *pool = NULL;
    ytc_config cfg;
    ytc_loop *loop = NULL;
    struct sigaction sa;
    int rc;

    /* watch pages are ~1 MB each, many at once: keep such buffers in the
     * heap for reuse instead of an mmap, page faults and munmap per page */
    mallopt(M_MMAP_THRESHOLD, 16 * 1024 * 1024);
    mallopt(M_TRIM_THRESHOLD, 64 * 1024 * 1024);

    if (apr_initialize() != APR_SUCCESS) {
        fputs("ytkafka-consumer: cannot initialise APR\n", stderr);
        return 1;
    }
    atexit(apr_terminate);
    if (apr_pool_create_ex(&pool, NULL, pool_abort, NULL) != APR_SUCCESS) {
        fputs("ytkafka-consumer: out of memory\n", stderr);
        return 1;
    }

    rc = ytc_config_parse(&cfg, pool, argc, argv);
    if (rc >= 0) {
        goto leave;
    }
    if (cfg.parse_watch) {
        rc = parse_offline(&cfg);
        goto leave;
    }

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);

    /* metrics: first, so that an address in use fails the start at once */
    if (cfg.metrics && ytc_metrics_start(cfg.metrics) != 0) {
        rc = 1;
        goto leave;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        ytc_log(YTC_LOG_ERR, YTC_LOGNO(00101) "cannot initialise libcurl");
        rc = 1;
        goto leave;
    }
    if (ytc_loop_create(&loop, &cfg, pool) != 0) {
        rc = 1;
        goto leave_curl;
    }
    rc = ytc_loop_run(loop, &stop_requested);

leave_curl:
    curl_global_cleanup();
leave:
    ytc_metrics_stop();  /* metrics */
    apr_pool_destroy(pool);
    return rc;
}
