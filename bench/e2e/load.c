/* bench/e2e's open-loop load generator (one thread, libcurl multi).
 *
 * Links are sent at their scheduled times whatever earlier requests are
 * doing: a POST is started when its time comes, on a new connection if no
 * idle one is left. Nothing waits for an answer before sending the next.
 *
 *   e2e-load --mode broker|direct --url http://127.0.0.1:PORT
 *            --profile RATE:SECONDS[,RATE:SECONDS...] --tag XX --out FILE
 *            [--send-path /links/send-message] [--get-path /links/]
 *            [--poll-ms 20] [--poll-max 64] [--timeout-ms 30000]
 *            [--wait-ms 120000] [--max-inflight 4000]
 *
 * broker: POST {"links": "https://youtu.be/ID"}; after a 2xx, GET
 * <get-path>ID every --poll-ms (at most --poll-max GETs in flight, the most
 * overdue first) until a 200 answers; the link is readable at the arrival
 * of that 200. direct: the POST's 200 is the result.
 *
 * Video ids are distinct per link: the 2-character --tag, then the link's
 * number in base 64 (9 characters). One line per link goes to --out:
 *   n sched_us lag_us post_status post_us readable_us resolution_us polls
 *   result error video_id
 * post_us and readable_us are measured from the moment the POST was
 * started; resolution_us is the time from the start of the last poll that
 * found nothing to the arrival of the 200 (what a poll-based reading can
 * overstate by). -1 for what did not happen.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#define BODY_CAP 65536

typedef struct link_st link_st;

typedef enum { REQ_POST, REQ_GET } req_kind;

typedef struct {
    req_kind kind;
    link_st *link;
    int64_t sent_us;
    struct curl_slist *headers;
    char body[BODY_CAP];
    size_t len;
} request;

struct link_st {
    long n;
    char id[12];
    int64_t sched_us;
    int64_t lag_us;
    int64_t post_start_us;
    long post_status;
    int64_t post_us;
    int64_t readable_us;
    int64_t resolution_us;
    int64_t last_miss_us;
    int64_t poll_due_us;
    long polls;
    const char *result;
    char error[64];
    int done;
};

static const char *mode = "broker";
static const char *base_url;
static const char *send_path = "/links/send-message";
static const char *get_path = "/links/";
static const char *out_path;
static const char *tag = "zz";
static const char *profile;
static long poll_ms = 20;
static long poll_max = 64;
static long timeout_ms = 30000;
static long wait_ms = 120000;
static long max_inflight = 4000;

static link_st *links;
static long nlinks;
static long active_posts, active_gets, inflight, finished;
static CURLM *multi;
static int64_t t0_us;

/* the poll queue: a binary min-heap of links by poll_due_us */
static link_st **heap;
static long heap_n;

static int64_t now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000 - t0_us;
}

static void heap_push(link_st *l)
{
    long i = heap_n++;

    while (i > 0) {
        long p = (i - 1) / 2;
        if (heap[p]->poll_due_us <= l->poll_due_us) {
            break;
        }
        heap[i] = heap[p];
        i = p;
    }
    heap[i] = l;
}

static link_st *heap_pop(void)
{
    link_st *top = heap[0], *last = heap[--heap_n];
    long i = 0;

    for (;;) {
        long c = 2 * i + 1;
        if (c >= heap_n) {
            break;
        }
        if (c + 1 < heap_n
            && heap[c + 1]->poll_due_us < heap[c]->poll_due_us) {
            c++;
        }
        if (heap[c]->poll_due_us >= last->poll_due_us) {
            break;
        }
        heap[i] = heap[c];
        i = c;
    }
    if (heap_n > 0) {
        heap[i] = last;
    }
    return top;
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
    request *q = ud;
    size_t n = size * nmemb, room = BODY_CAP - 1 - q->len;

    if (n < room) {
        room = n;
    }
    memcpy(q->body + q->len, ptr, room);
    q->len += room;
    q->body[q->len] = '\0';
    return n;
}

static void id_of(long n, char id[12])
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                              "0123456789-_";
    int i;

    id[0] = tag[0];
    id[1] = tag[1];
    for (i = 10; i >= 2; i--) {
        id[i] = b64[n & 63];
        n >>= 6;
    }
    id[11] = '\0';
}

static void finish(link_st *l, const char *error)
{
    if (l->done) {
        return;
    }
    l->done = 1;
    finished++;
    if (error) {
        snprintf(l->error, sizeof(l->error), "%s", error);
    }
}

static void post_error(link_st *l, long status)
{
    char e[32];

    snprintf(e, sizeof(e), "post_%ld", status);
    finish(l, e);
}

static void start(link_st *l, req_kind kind)
{
    CURL *e = curl_easy_init();
    request *q = calloc(1, sizeof(*q));
    char url[512];

    if (!e || !q) {
        fprintf(stderr, "e2e-load: out of memory\n");
        exit(2);
    }
    q->kind = kind;
    q->link = l;
    q->sent_us = now_us();
    curl_easy_setopt(e, CURLOPT_PRIVATE, q);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, q);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    if (kind == REQ_POST) {
        char body[128];

        snprintf(url, sizeof(url), "%s%s", base_url, send_path);
        snprintf(body, sizeof(body),
                 "{\"links\":\"https://youtu.be/%s\"}", l->id);
        curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, body);
        q->headers = curl_slist_append(NULL,
                                       "Content-Type: application/json");
        q->headers = curl_slist_append(q->headers, "Expect:");
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, q->headers);
        l->post_start_us = q->sent_us;
        l->lag_us = q->sent_us - l->sched_us;
        active_posts++;
    }
    else {
        snprintf(url, sizeof(url), "%s%s%s", base_url, get_path, l->id);
        l->polls++;
        active_gets++;
    }
    curl_easy_setopt(e, CURLOPT_URL, url);
    inflight++;
    curl_multi_add_handle(multi, e);
}

static void reap(CURL *e, CURLcode rc)
{
    request *q;
    link_st *l;
    long status = 0;
    int64_t t = now_us();

    curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&q);
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    l = q->link;
    inflight--;
    if (q->kind == REQ_POST) {
        active_posts--;
        l->post_status = rc == CURLE_OK ? status : 0;
        l->post_us = t - l->post_start_us;
        if (rc != CURLE_OK) {
            finish(l, rc == CURLE_OPERATION_TIMEDOUT ? "post_timeout"
                                                     : "post_failed");
        }
        else if (!strcmp(mode, "direct")) {
            if (status == 200) {
                l->readable_us = l->post_us;
                l->resolution_us = 0;
                l->result = strstr(q->body, "\"status\":\"ok\"") ? "ok"
                                                                 : "other";
                finish(l, NULL);
            }
            else {
                post_error(l, status);
            }
        }
        else if (status >= 200 && status < 300) {
            l->poll_due_us = t;
            l->last_miss_us = -1;
            heap_push(l);
        }
        else {
            post_error(l, status);
        }
    }
    else {
        active_gets--;
        if (rc == CURLE_OK && status == 200) {
            l->readable_us = t - l->post_start_us;
            l->resolution_us = l->last_miss_us < 0 ? t - q->sent_us
                                                   : t - l->last_miss_us;
            l->result = strstr(q->body, "\"status\":\"ok\"") ? "ok" : "other";
            finish(l, NULL);
        }
        else if (q->sent_us - l->post_start_us > wait_ms * 1000) {
            finish(l, "never_readable");
        }
        else {
            /* 404 (no row yet), or a 503 while the database is busy */
            l->last_miss_us = q->sent_us;
            l->poll_due_us = q->sent_us + poll_ms * 1000;
            if (l->poll_due_us < t) {
                l->poll_due_us = t;
            }
            heap_push(l);
        }
    }
    curl_multi_remove_handle(multi, e);
    curl_easy_cleanup(e);
    curl_slist_free_all(q->headers);
    free(q);
}

static int parse_profile(void)
{
    const char *p = profile;
    int64_t at = 0;
    long cap = 0;

    while (p && *p) {
        char *end;
        double rate = strtod(p, &end), secs;
        long k, count;

        if (end == p || *end != ':') {
            return -1;
        }
        p = end + 1;
        secs = strtod(p, &end);
        if (end == p || rate <= 0 || secs <= 0) {
            return -1;
        }
        p = *end == ',' ? end + 1 : end;
        count = (long)(rate * secs + 0.5);
        if (nlinks + count > cap) {
            cap = (nlinks + count) * 2;
            links = realloc(links, cap * sizeof(*links));
            if (!links) {
                return -1;
            }
        }
        for (k = 0; k < count; k++) {
            link_st *l = &links[nlinks];

            memset(l, 0, sizeof(*l));
            l->n = nlinks;
            id_of(nlinks, l->id);
            l->sched_us = at + (int64_t)(k * 1e6 / rate);
            l->post_status = -1;
            l->post_us = l->readable_us = l->resolution_us = -1;
            l->result = "-";
            nlinks++;
        }
        at += (int64_t)(secs * 1e6);
    }
    return nlinks > 0 ? 0 : -1;
}

static void usage(void)
{
    fprintf(stderr, "usage: e2e-load --mode broker|direct --url URL "
            "--profile RATE:SECONDS[,...] --tag XX --out FILE [--send-path P]"
            " [--get-path P] [--poll-ms 20] [--poll-max 64]"
            " [--timeout-ms 30000] [--wait-ms 120000]"
            " [--max-inflight 4000]\n");
    exit(1);
}

static void parse_args(int argc, char **argv)
{
    int i;

    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

        if (!v) {
            usage();
        }
        i++;
        if (!strcmp(a, "--mode")) {
            mode = v;
        }
        else if (!strcmp(a, "--url")) {
            base_url = v;
        }
        else if (!strcmp(a, "--profile")) {
            profile = v;
        }
        else if (!strcmp(a, "--tag")) {
            tag = v;
        }
        else if (!strcmp(a, "--out")) {
            out_path = v;
        }
        else if (!strcmp(a, "--send-path")) {
            send_path = v;
        }
        else if (!strcmp(a, "--get-path")) {
            get_path = v;
        }
        else if (!strcmp(a, "--poll-ms")) {
            poll_ms = atol(v);
        }
        else if (!strcmp(a, "--poll-max")) {
            poll_max = atol(v);
        }
        else if (!strcmp(a, "--timeout-ms")) {
            timeout_ms = atol(v);
        }
        else if (!strcmp(a, "--wait-ms")) {
            wait_ms = atol(v);
        }
        else if (!strcmp(a, "--max-inflight")) {
            max_inflight = atol(v);
        }
        else {
            usage();
        }
    }
    if (!base_url || !out_path || !profile || strlen(tag) != 2
        || (strcmp(mode, "broker") && strcmp(mode, "direct"))
        || poll_ms < 1 || poll_max < 1 || timeout_ms < 1 || wait_ms < 1
        || max_inflight < 1) {
        usage();
    }
}

int main(int argc, char **argv)
{
    struct timespec ts;
    long next = 0, i;
    FILE *out;

    parse_args(argc, argv);
    if (parse_profile() != 0) {
        fprintf(stderr, "e2e-load: bad --profile %s\n", profile);
        return 1;
    }
    if (!(out = fopen(out_path, "w"))) {
        fprintf(stderr, "e2e-load: %s: %s\n", out_path, strerror(errno));
        return 1;
    }
    if (!(heap = calloc(nlinks, sizeof(*heap)))) {
        return 2;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    multi = curl_multi_init();
    curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, max_inflight);
    curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, 0L);
    curl_multi_setopt(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, 0L);
    clock_gettime(CLOCK_MONOTONIC, &ts);
    t0_us = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000 + 200000;

    while (finished < nlinks) {
        int64_t t = now_us(), wake;
        int running, msgs;
        CURLMsg *m;
        long wait;

        while (next < nlinks && links[next].sched_us <= t) {
            if (inflight >= max_inflight) {
                links[next].lag_us = t - links[next].sched_us;
                finish(&links[next], "client_cap");
            }
            else {
                start(&links[next], REQ_POST);
            }
            next++;
        }
        while (heap_n > 0 && active_gets < poll_max
               && heap[0]->poll_due_us <= t && inflight < max_inflight) {
            start(heap_pop(), REQ_GET);
        }
        curl_multi_perform(multi, &running);
        while ((m = curl_multi_info_read(multi, &msgs))) {
            if (m->msg == CURLMSG_DONE) {
                reap(m->easy_handle, m->data.result);
            }
        }
        if (finished >= nlinks) {
            break;
        }
        t = now_us();
        wake = t + 50000;
        if (next < nlinks && links[next].sched_us < wake) {
            wake = links[next].sched_us;
        }
        if (heap_n > 0 && active_gets < poll_max
            && heap[0]->poll_due_us < wake) {
            wake = heap[0]->poll_due_us;
        }
        wait = (long)((wake - t + 999) / 1000);
        if (wait > 0) {
            curl_multi_poll(multi, NULL, 0, (int)wait, NULL);
        }
    }
    for (i = 0; i < nlinks; i++) {
        link_st *l = &links[i];

        fprintf(out, "%ld %" PRId64 " %" PRId64 " %ld %" PRId64 " %" PRId64
                " %" PRId64 " %ld %s %s %s\n", l->n, l->sched_us, l->lag_us,
                l->post_status, l->post_us, l->readable_us, l->resolution_us,
                l->polls, l->result, l->error[0] ? l->error : "-", l->id);
    }
    fclose(out);
    curl_multi_cleanup(multi);
    curl_global_cleanup();
    return 0;
}
