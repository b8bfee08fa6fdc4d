/* bench/e2e's direct synchronous path: the replaced system's HTTP method.
 *
 * POST {"links": "<link>"} -> the link is checked with the module's parser
 * (lib/ytk_links.c, lib/ytk_url.c), the watch page and the oEmbed answer
 * are fetched inside the request with the consumer's fetcher
 * (consumer/ytc_fetch.c, both at once as the consumer does) and parsed with
 * the consumer's extractor (consumer/ytc_meta.c), and the request is
 * answered with the result: 200 and the result JSON, 400 for a bad link,
 * 502 when YouTube's answer gave no result. Nothing is stored.
 *
 * libmicrohttpd in thread-per-connection mode: one thread per client
 * connection, each request holding its thread for the whole fetch, and no
 * limit but the connection limit (what a plain threaded HTTP server does).
 *
 *   e2e-direct --youtube-url URL [--port 0] [--http-timeout 15000]
 *
 * Prints "PORT <n>" on stdout once it listens; runs until SIGTERM/SIGINT.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <json-c/json.h>
#include <microhttpd.h>

#include "ytc_config.h"
#include "ytc_fetch.h"
#include "ytc_log.h"
#include "ytc_meta.h"
#include "ytk_links.h"
#include "ytk_url.h"

#define MAX_BODY 8192

typedef struct {
    char buf[MAX_BODY];
    size_t len;
    int too_large;
} upload;

typedef struct {
    ytc_http_answer watch;
    ytc_http_answer oembed;
    int pending;
} attempt;

static ytc_config cfg;
static volatile sig_atomic_t run = 1;

static void on_signal(int sig)
{
    (void)sig;
    run = 0;
}

static void on_watch(void *baton, ytc_http_answer *a)
{
    attempt *t = baton;

    t->watch = *a;
    t->pending--;
}

static void on_oembed(void *baton, ytc_http_answer *a)
{
    attempt *t = baton;

    t->oembed = *a;
    t->pending--;
}

static enum MHD_Result answer(struct MHD_Connection *c, unsigned int status,
                              const char *json)
{
    struct MHD_Response *r;
    enum MHD_Result ret;

    r = MHD_create_response_from_buffer(strlen(json), (void *)json,
                                        MHD_RESPMEM_MUST_COPY);
    if (!r) {
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", "application/json");
    ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result error(struct MHD_Connection *c, unsigned int status,
                             const char *code, const char *message)
{
    json_object *o = json_object_new_object(), *e = json_object_new_object();
    enum MHD_Result ret;

    json_object_object_add(e, "code", json_object_new_string(code));
    json_object_object_add(e, "message", json_object_new_string(message));
    json_object_object_add(o, "error", e);
    ret = answer(c, status, json_object_to_json_string_ext(
                     o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
    return ret;
}

/* fetch and parse one video inside the request, as the consumer's job does
 * (consumer/ytc_jobs.c: ytc_job_start), on a fetcher of this request */
static enum MHD_Result fetch_and_answer(struct MHD_Connection *c,
                                        const char *id)
{
    ytc_fetcher *f = ytc_fetcher_create(&cfg);
    attempt t;
    char canon[64], url[1024], reason[600];
    char *enc;
    json_object *result = NULL;
    long retry_after = -1;
    ytc_outcome out;
    enum MHD_Result ret;

    if (!f) {
        return error(c, 500, "internal", "cannot create a fetcher");
    }
    memset(&t, 0, sizeof(t));
    t.pending = 2;
    ytk_canonical_url(id, canon, sizeof(canon));
    enc = curl_easy_escape(NULL, canon, 0);
    snprintf(url, sizeof(url), "%s/watch?v=%s", cfg.youtube_url, id);
    if (ytc_fetch_start(f, url, 1, on_watch, &t) != 0) {
        t.pending--;
    }
    snprintf(url, sizeof(url), "%s/oembed?url=%s&format=json",
             cfg.youtube_url, enc ? enc : "");
    curl_free(enc);
    if (ytc_fetch_start(f, url, 0, on_oembed, &t) != 0) {
        t.pending--;
    }
    while (t.pending > 0) {
        ytc_fetcher_run(f, 100, -1);
    }
    ytc_fetcher_destroy(f);
    out = ytc_meta_extract(id, &t.watch, &t.oembed, &result, reason,
                           sizeof(reason), &retry_after);
    free(t.watch.body);
    free(t.oembed.body);
    if (out == YTC_OUT_OK && result) {
        ret = answer(c, 200, json_object_to_json_string_ext(
                         result, JSON_C_TO_STRING_PLAIN));
    }
    else {
        ret = error(c, 502, ytc_outcome_name(out), reason);
    }
    if (result) {
        json_object_put(result);
    }
    return ret;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c,
                              const char *url, const char *method,
                              const char *version, const char *data,
                              size_t *size, void **state)
{
    upload *u = *state;
    ytk_links links;
    ytk_links_rc lrc;
    ytk_url_rc urc;
    char id[YTK_VIDEO_ID_LEN + 1];
    enum MHD_Result ret;

    (void)cls;
    (void)url;
    (void)version;
    if (strcmp(method, "POST")) {
        return error(c, 405, "method_not_allowed", "POST only");
    }
    if (!u) {
        if (!(u = calloc(1, sizeof(*u)))) {
            return MHD_NO;
        }
        *state = u;
        return MHD_YES;
    }
    if (*size) {
        if (u->len + *size >= MAX_BODY) {
            u->too_large = 1;
        }
        else {
            memcpy(u->buf + u->len, data, *size);
            u->len += *size;
        }
        *size = 0;
        return MHD_YES;
    }
    if (u->too_large) {
        return error(c, 413, "too_large", "body too large");
    }
    lrc = ytk_links_from_json(u->buf, u->len, 1, &links);
    if (lrc != YTK_LINKS_OK) {
        return error(c, 400, ytk_links_code(lrc), ytk_links_strerror(lrc));
    }
    urc = ytk_url_video_id(links.items[0], links.lens[0], id);
    ytk_links_free(&links);
    if (urc != YTK_URL_OK) {
        return error(c, 400, ytk_url_code(urc), ytk_url_strerror(urc));
    }
    ret = fetch_and_answer(c, id);
    return ret;
}

static void completed(void *cls, struct MHD_Connection *c, void **state,
                      enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    free(*state);
    *state = NULL;
}

int main(int argc, char **argv)
{
    struct MHD_Daemon *d;
    const union MHD_DaemonInfo *info;
    struct sockaddr_in sin;
    int i, port = 0;

    memset(&cfg, 0, sizeof(cfg));
    cfg.concurrency = 1;       /* two connections: watch and oEmbed at once */
    cfg.http_timeout_ms = 15000;
    for (i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--youtube-url")) {
            cfg.youtube_url = argv[i + 1];
        }
        else if (!strcmp(argv[i], "--port")) {
            port = atoi(argv[i + 1]);
        }
        else if (!strcmp(argv[i], "--http-timeout")) {
            cfg.http_timeout_ms = atoi(argv[i + 1]);
        }
        else {
            break;
        }
    }
    if (i != argc || !cfg.youtube_url || port < 0 || port > 65535) {
        fprintf(stderr, "usage: e2e-direct --youtube-url URL [--port 0]"
                " [--http-timeout MS]\n");
        return 1;
    }
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);   /* loopback only */
    ytc_log_level = YTC_LOG_WARN;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    signal(SIGPIPE, SIG_IGN);
    d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION
                         | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL,
                         (uint16_t)port, NULL, NULL, handle, NULL,
                         MHD_OPTION_CONNECTION_LIMIT, 10000U,
                         MHD_OPTION_CONNECTION_TIMEOUT, 60U,
                         MHD_OPTION_THREAD_STACK_SIZE, (size_t)256 * 1024,
                         MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024U,
                         MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
                         MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sin,
                         MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "e2e-direct: cannot listen on port %d\n", port);
        return 1;
    }
    info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    printf("PORT %u\n", info ? (unsigned)info->port : 0U);
    fflush(stdout);
    while (run) {
        pause();
    }
    MHD_stop_daemon(d);
    curl_global_cleanup();
    return 0;
}
