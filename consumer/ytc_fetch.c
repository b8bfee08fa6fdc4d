#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "ytc_fetch.h"
#include "ytc_log.h"
#include "ytc_fetch_limits.h"

/* real watch pages are ~1 MB; anything far larger is not YouTube */
#define YTC_MAX_BODY YTC_FETCH_MAX_BODY

/* --max-rps paces this many percent slower than the cap */
#define YTC_FETCH_RPS_MARGIN 10

/* libcurl reads a socket once per multi_perform; with its 16 kB default a
 * 1 MB page took ~64 loop turns (poll, perform, callback) */
#ifndef YTC_READ_BUFFER
#define YTC_READ_BUFFER (256L * 1024)
#endif

typedef struct ytc_transfer {
    CURL *easy;
    char *buf;
    size_t len, cap;
    int overflow;
    int status_only;            /* ytc_fetch_start_status(): no body */
    int cut;                    /* ... and it was cut at its first byte */
    int paused;                 /* waiting for room in the body budget */
    unsigned long seq;          /* start order: the oldest always proceeds */
    long retry_after;           /* parsed from the header, or -1 */
    ytc_fetch_done_fn *done;
    void *baton;
    struct ytc_fetcher *fetcher;
    struct ytc_transfer *prev, *next;
} ytc_transfer;

struct ytc_fetcher {
    CURLM *multi;
    struct curl_slist *headers;
    struct curl_slist *headers_cookie;
    long timeout_ms;
    int active;
    ytc_transfer *list;
    /* finished transfers kept with their easy handle: a new handle costs
     * its state and a YTC_READ_BUFFER allocation per fetch */
    ytc_transfer *idle;
    int nidle, max_idle;
    /* --max-rps: transfers wait here, in order, until their turn; the
     * next start is allowed at next_us (monotonic), one every gap_us */
    ytc_transfer *wait_head, *wait_tail;
    long long gap_us, next_us;
    /* body budget: bytes of bodies allocated, receiving or handed to a
     * job and not yet given back with ytc_fetch_answer_free() */
    size_t held, budget;
    int npaused;
    unsigned long seq;
};

static long long mono_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

/* Retry-After from the header itself: libcurl's reading does not clamp */
static size_t on_header(char *ptr, size_t size, size_t nmemb, void *ud)
{
    ytc_transfer *t = ud;
    size_t n = size * nmemb;
    static const char name[] = "retry-after:";

    if (n > sizeof(name) - 1 && n < 256
        && !strncasecmp(ptr, name, sizeof(name) - 1)) {
        char v[256];
        size_t l = n - (sizeof(name) - 1);
        memcpy(v, ptr + sizeof(name) - 1, l);
        v[l] = '\0';
        while (l > 0 && (v[l - 1] == '\r' || v[l - 1] == '\n'
                         || v[l - 1] == ' ' || v[l - 1] == '\t')) {
            v[--l] = '\0';
        }
        t->retry_after = ytc_meta_retry_after(v, time(NULL));
    }
    return n;
}

/* is @a t the oldest transfer on the wire? (it may pass the budget, so
 * that one always completes and gives its room back: no deadlock) */
static int oldest(const ytc_fetcher *f, const ytc_transfer *t)
{
    const ytc_transfer *o;

    for (o = f->list; o; o = o->next) {
        if (o->seq < t->seq) {
            return 0;
        }
    }
    return 1;
}

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *ud)
{
    ytc_transfer *t = ud;
    ytc_fetcher *f = t->fetcher;
    size_t n = size * nmemb;

    if (t->status_only) {
        /* the status and headers are in: end the transfer here, before a
         * byte of the body is kept (finish() takes it as an answer) */
        t->cut = n > 0;
        return 0;
    }
    if (t->len + n + 1 > YTC_MAX_BODY) {
        t->overflow = 1;
        return 0;
    }
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 64 * 1024;
        curl_off_t cl = -1;
        char *nb;

        /* size the buffer once from Content-Length: a watch page is ~1 MB
         * and growing by doubling would copy it over and over */
        if (!t->cap
            && curl_easy_getinfo(t->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T,
                                 &cl) == CURLE_OK
            && cl > 0 && cl < YTC_MAX_BODY) {
            cap = (size_t)cl + 1;
        }
        while (cap < t->len + n + 1) {
            cap *= 2;
        }
        if (cap > YTC_MAX_BODY) {
            cap = YTC_MAX_BODY;
        }
        if (f->held + (cap - t->cap) > f->budget && !oldest(f, t)) {
            /* over the budget: wait (libcurl keeps this chunk and stops
             * reading the socket) until bodies are given back */
            if (!t->paused) {
                t->paused = 1;
                f->npaused++;
            }
            return CURL_WRITEFUNC_PAUSE;
        }
        if (!(nb = realloc(t->buf, cap))) {
            return 0;
        }
        f->held += cap - t->cap;
        t->buf = nb;
        t->cap = cap;
    }
    memcpy(t->buf + t->len, ptr, n);
    t->len += n;
    t->buf[t->len] = '\0';
    return n;
}

/* let paused transfers try again (outside libcurl's callbacks) */
static void resume_paused(ytc_fetcher *f)
{
    ytc_transfer *t;

    if (!f->npaused) {
        return;
    }
    for (t = f->list; t; t = t->next) {
        if (t->paused) {
            t->paused = 0;
            f->npaused--;
            /* delivers the kept chunk at once: on_data may pause again */
            curl_easy_pause(t->easy, CURLPAUSE_CONT);
        }
    }
}

void ytc_fetch_answer_free(ytc_fetcher *f, ytc_http_answer *a)
{
    if (a->body) {
        if (f) {
            size_t n = a->len + 1;
            f->held -= n <= f->held ? n : f->held;
        }
        free(a->body);
        a->body = NULL;
    }
}

ytc_fetcher *ytc_fetcher_create(const ytc_config *cfg)
{
    ytc_fetcher *f = calloc(1, sizeof(*f));
    struct curl_slist *cookie;

    if (!f) {
        return NULL;
    }
    if (!(f->multi = curl_multi_init())) {
        free(f);
        return NULL;
    }
    curl_multi_setopt(f->multi, CURLMOPT_MAX_HOST_CONNECTIONS,
                      (long)cfg->concurrency * 2);
    curl_multi_setopt(f->multi, CURLMOPT_MAXCONNECTS,
                      (long)cfg->concurrency * 2);
    f->headers = curl_slist_append(NULL, "Accept-Language: en-US,en;q=0.9");
    f->headers_cookie = curl_slist_append(NULL,
                                          "Accept-Language: en-US,en;q=0.9");
    /* SOCS=CAI answers the EU consent interstitial (yt-dlp does the same) */
    cookie = f->headers_cookie ? curl_slist_append(f->headers_cookie,
                                                   "Cookie: SOCS=CAI")
                               : NULL;
    if (!f->headers || !cookie) {
        ytc_fetcher_destroy(f);
        return NULL;
    }
    f->headers_cookie = cookie;
    f->timeout_ms = cfg->http_timeout_ms;
    f->max_idle = cfg->concurrency * 2;
    /* --fetch-memory, else 2 MiB per video fetched at once, at least
     * YTC_FETCH_BODY_BUDGET (what --concurrency 16 gives) */
    f->budget = cfg->fetch_memory_mb > 0
                ? (size_t)cfg->fetch_memory_mb * 1024 * 1024
                : (size_t)cfg->concurrency * 2 * 1024 * 1024;
    if (cfg->fetch_memory_mb <= 0 && f->budget < YTC_FETCH_BODY_BUDGET) {
        f->budget = YTC_FETCH_BODY_BUDGET;
    }
    if (cfg->max_rps > 0) {
        /* YTC_FETCH_RPS_MARGIN under the cap: a request delayed on its way
         * (a busy loop turn, a new connection) must not bunch up with the
         * next one into more than N in some second at the server */
        f->gap_us = (1000000LL * (100 + YTC_FETCH_RPS_MARGIN) / 100
                     + cfg->max_rps - 1) / cfg->max_rps;
    }
    return f;
}

static void transfer_free(ytc_fetcher *f, ytc_transfer *t)
{
    if (t->prev) {
        t->prev->next = t->next;
    }
    else {
        f->list = t->next;
    }
    if (t->next) {
        t->next->prev = t->prev;
    }
    curl_multi_remove_handle(f->multi, t->easy);
    if (t->buf) {
        f->held -= t->cap <= f->held ? t->cap : f->held;
        free(t->buf);
    }
    if (t->paused) {
        f->npaused--;
    }
    f->active--;
    if (f->nidle < f->max_idle) {
        CURL *e = t->easy;
        memset(t, 0, sizeof(*t));
        t->easy = e;
        t->next = f->idle;
        f->idle = t;
        f->nidle++;
        return;
    }
    curl_easy_cleanup(t->easy);
    free(t);
}

void ytc_fetcher_destroy(ytc_fetcher *f)
{
    if (!f) {
        return;
    }
    while (f->wait_head) {
        ytc_transfer *t = f->wait_head;
        f->wait_head = t->next;
        curl_easy_cleanup(t->easy);
        free(t);
    }
    while (f->list) {
        transfer_free(f, f->list);
    }
    while (f->idle) {
        ytc_transfer *t = f->idle;
        f->idle = t->next;
        curl_easy_cleanup(t->easy);
        free(t);
    }
    curl_multi_cleanup(f->multi);
    curl_slist_free_all(f->headers);
    curl_slist_free_all(f->headers_cookie);
    free(f);
}

/* hand @a t to the multi handle; the rate slot is taken here */
static int launch(ytc_fetcher *f, ytc_transfer *t)
{
    if (curl_multi_add_handle(f->multi, t->easy) != CURLM_OK) {
        return -1;
    }
    t->seq = ++f->seq;
    if (f->gap_us > 0) {
        long long now = mono_us();
        f->next_us = (now > f->next_us ? now : f->next_us) + f->gap_us;
    }
    t->prev = NULL;
    t->next = f->list;
    if (f->list) {
        f->list->prev = t;
    }
    f->list = t;
    return 0;
}

static int fetch_start(ytc_fetcher *f, const char *url, int consent_cookie,
                       int status_only, ytc_fetch_done_fn *done, void *baton)
{
    ytc_transfer *t;
    CURL *e;

    if (f->idle) {
        /* every option below is set again: nothing leaks from the last use */
        t = f->idle;
        f->idle = t->next;
        f->nidle--;
        t->next = NULL;
        e = t->easy;
    }
    else {
        t = calloc(1, sizeof(*t));
        if (!t || !(e = curl_easy_init())) {
            free(t);
            return -1;
        }
        t->easy = e;
    }
    t->done = done;
    t->baton = baton;
    t->fetcher = f;
    t->status_only = status_only;
    t->cut = 0;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, t);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER,
                     consent_cookie ? f->headers_cookie : f->headers);
    curl_easy_setopt(e, CURLOPT_USERAGENT,
                     "Mozilla/5.0 (X11; Linux x86_64) ytkafka-consumer");
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, f->timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                     f->timeout_ms < 5000 ? f->timeout_ms : 5000L);
    curl_easy_setopt(e, CURLOPT_BUFFERSIZE, YTC_READ_BUFFER);
    /* a status-only transfer keeps no body: a large one is no error */
    curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE,
                     status_only ? (curl_off_t)0 : (curl_off_t)YTC_MAX_BODY);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, t);
    t->retry_after = -1;
    if (f->gap_us > 0 && (f->wait_head || mono_us() < f->next_us)) {
        /* not its turn yet: ytc_fetcher_run() starts it when it is */
        t->prev = t->next = NULL;
        if (f->wait_tail) {
            f->wait_tail->next = t;
        }
        else {
            f->wait_head = t;
        }
        f->wait_tail = t;
        f->active++;
        return 0;
    }
    if (launch(f, t) != 0) {
        curl_easy_cleanup(e);
        free(t);
        return -1;
    }
    f->active++;
    if (f->gap_us > 0) {
        int running = 0;
        curl_multi_perform(f->multi, &running);   /* in its slot */
    }
    return 0;
}

int ytc_fetch_start(ytc_fetcher *f, const char *url, int consent_cookie,
                    ytc_fetch_done_fn *done, void *baton)
{
    return fetch_start(f, url, consent_cookie, 0, done, baton);
}

int ytc_fetch_start_status(ytc_fetcher *f, const char *url,
                           int consent_cookie, ytc_fetch_done_fn *done,
                           void *baton)
{
    return fetch_start(f, url, consent_cookie, 1, done, baton);
}

/* start waiting transfers whose turn has come; returns ms until the next
 * turn, or -1 when nothing waits */
static long launch_due(ytc_fetcher *f)
{
    int running = 0;

    while (f->wait_head) {
        long long now = mono_us();
        ytc_transfer *t = f->wait_head;

        if (now < f->next_us) {
            return (long)((f->next_us - now + 999) / 1000);
        }
        f->wait_head = t->next;
        if (!f->wait_head) {
            f->wait_tail = NULL;
        }
        t->next = NULL;
        if (launch(f, t) != 0) {
            /* report it as failed through the usual path */
            ytc_http_answer a;
            ytc_fetch_done_fn *done = t->done;
            void *baton = t->baton;

            memset(&a, 0, sizeof(a));
            a.retry_after = -1;
            a.transport = YTC_TRANSPORT_OTHER;
            snprintf(a.error, sizeof(a.error), "cannot start");
            curl_easy_cleanup(t->easy);
            free(t);
            f->active--;
            done(baton, &a);
            continue;
        }
        /* send it now, in its slot, not at the next loop turn */
        curl_multi_perform(f->multi, &running);
    }
    return -1;
}

int ytc_fetcher_active(const ytc_fetcher *f)
{
    return f->active;
}

static ytc_transport transport_of(CURLcode res, int overflow)
{
    if (overflow || res == CURLE_FILESIZE_EXCEEDED) {
        return YTC_TRANSPORT_TOO_LARGE;
    }
    switch (res) {
    case CURLE_OPERATION_TIMEDOUT:
        return YTC_TRANSPORT_TIMEOUT;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PARTIAL_FILE:
        return YTC_TRANSPORT_NETWORK;
    default:
        return YTC_TRANSPORT_OTHER;
    }
}

static void finish(ytc_fetcher *f, ytc_transfer *t, CURLcode res)
{
    ytc_http_answer a;
    curl_off_t ra = -1;
    char *loc = NULL;
    long status = 0;

    memset(&a, 0, sizeof(a));
    a.retry_after = -1;
    if (res == CURLE_WRITE_ERROR && t->cut) {
        /* a status-only transfer ended by on_data: the whole answer it
         * wanted had come (libcurl drops that connection, or that stream
         * only on HTTP/2, rather than reuse it with a body unread) */
        res = CURLE_OK;
    }
    if (res == CURLE_OK) {
        curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
        a.status = status;
        (void)ra;
        a.retry_after = t->retry_after;
        if (curl_easy_getinfo(t->easy, CURLINFO_REDIRECT_URL, &loc)
            == CURLE_OK && loc) {
            snprintf(a.location, sizeof(a.location), "%s", loc);
        }
        if (t->buf && t->cap != t->len + 1) {
            /* hand over exactly len + 1 bytes: what the job gives back */
            char *nb = realloc(t->buf, t->len + 1);
            if (nb) {
                f->held -= t->cap - (t->len + 1);
                t->buf = nb;
                t->cap = t->len + 1;
            }
            else {
                /* keep it as it is: give back what len + 1 does not */
                f->held -= t->cap - (t->len + 1);
            }
        }
        a.body = t->buf;
        a.len = t->len;
        t->buf = NULL;
    }
    else {
        a.transport = transport_of(res, t->overflow);
        snprintf(a.error, sizeof(a.error), "%s",
                 a.transport == YTC_TRANSPORT_TOO_LARGE
                 ? "body too large" : curl_easy_strerror(res));
    }
    {
        ytc_fetch_done_fn *done = t->done;
        void *baton = t->baton;
        transfer_free(f, t);
        done(baton, &a);
    }
}

/* hand finished transfers to their callbacks; returns how many */
static int reap(ytc_fetcher *f)
{
    CURLMsg *m;
    int left = 0, n = 0;

    while ((m = curl_multi_info_read(f->multi, &left)) != NULL) {
        if (m->msg == CURLMSG_DONE) {
            char *priv = NULL;
            CURLcode res = m->data.result;
            curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
            finish(f, (ytc_transfer *)priv, res);
            n++;
        }
    }
    return n;
}

void ytc_fetcher_run(ytc_fetcher *f, int timeout_ms, int wake_fd)
{
    struct curl_waitfd extra;
    int running = 0, numfds = 0;
    long turn = launch_due(f);

    resume_paused(f);
    if (turn >= 0 && turn < timeout_ms) {
        timeout_ms = (int)turn;     /* wake for the next paced start */
    }
    curl_multi_perform(f->multi, &running);
    /* something finished already: let the caller start more before waiting
     * (a wait now would sleep the whole timeout on an idle socket set) */
    if (reap(f) > 0 || timeout_ms <= 0) {
        return;
    }
    memset(&extra, 0, sizeof(extra));
    extra.fd = wake_fd;
    extra.events = CURL_WAIT_POLLIN;
    curl_multi_wait(f->multi, wake_fd >= 0 ? &extra : NULL,
                    wake_fd >= 0 ? 1 : 0, timeout_ms, &numfds);
    curl_multi_perform(f->multi, &running);
    reap(f);
    launch_due(f);
}
