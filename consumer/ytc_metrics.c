/* The metric registry and its Prometheus text rendering; the HTTP side is
 * in ytc_metrics_http.c. */
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "config.h"
#include "ytc_metrics.h"

#define P "ytkafka_consumer_"

typedef struct {
    char topic[250];        /* Kafka caps topic names at 249 bytes */
    int32_t partition;
    int64_t lag;
} lag_entry;

static const double bucket_le[] = {
    0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30
};
#define NBUCKETS (sizeof(bucket_le) / sizeof(bucket_le[0]))

static _Atomic uint64_t counters[YTC_M__COUNTERS];
static _Atomic int64_t gauges[YTC_M__GAUGES];
static _Atomic uint64_t lag_dropped;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static lag_entry lags[YTC_METRICS_MAX_PARTITIONS];
static int nlags;
static uint64_t hist_bucket[NBUCKETS + 1];     /* not cumulative; last +Inf */
static uint64_t hist_count;
static double hist_sum;

void ytc_metrics_add(ytc_counter c, uint64_t n)
{
    if ((unsigned)c < YTC_M__COUNTERS) {
        atomic_fetch_add_explicit(&counters[c], n, memory_order_relaxed);
    }
}

void ytc_metrics_set(ytc_gauge g, int64_t v)
{
    if ((unsigned)g < YTC_M__GAUGES) {
        atomic_store_explicit(&gauges[g], v, memory_order_relaxed);
    }
}

void ytc_metrics_result(const char *status)
{
    if (status && !strcmp(status, "ok")) {
        ytc_metrics_add(YTC_M_RESULTS_OK, 1);
    }
    else if (status && !strcmp(status, "unavailable")) {
        ytc_metrics_add(YTC_M_RESULTS_UNAVAILABLE, 1);
    }
    else {
        ytc_metrics_add(YTC_M_RESULTS_ERROR, 1);
    }
}

void ytc_metrics_observe_fetch(double seconds)
{
    size_t i;

    if (!(seconds >= 0)) {      /* NaN too */
        seconds = 0;
    }
    for (i = 0; i < NBUCKETS && seconds > bucket_le[i]; i++) {
    }
    pthread_mutex_lock(&mu);
    hist_bucket[i]++;
    hist_count++;
    hist_sum += seconds;
    pthread_mutex_unlock(&mu);
}

void ytc_metrics_fetch_done(long http_status, int64_t usec)
{
    ytc_metrics_add(YTC_M_FETCHES, 1);
    if (http_status == 0 || http_status == 429 || http_status >= 500) {
        ytc_metrics_add(YTC_M_FETCH_FAILURES, 1);
    }
    ytc_metrics_observe_fetch((double)usec / 1e6);
}

/* under mu */
static void lag_put(const char *topic, int32_t partition, int64_t lag)
{
    int i;

    for (i = 0; i < nlags; i++) {
        if (lags[i].partition == partition && !strcmp(lags[i].topic, topic)) {
            if (lag < 0) {
                lags[i] = lags[--nlags];
            }
            else {
                lags[i].lag = lag;
            }
            return;
        }
    }
    if (lag < 0) {
        return;
    }
    if (nlags >= YTC_METRICS_MAX_PARTITIONS || strlen(topic) >= 250) {
        atomic_fetch_add_explicit(&lag_dropped, 1, memory_order_relaxed);
        return;
    }
    snprintf(lags[nlags].topic, sizeof(lags[nlags].topic), "%s", topic);
    lags[nlags].partition = partition;
    lags[nlags].lag = lag;
    nlags++;
}

void ytc_metrics_lag(const char *topic, int32_t partition, int64_t lag)
{
    pthread_mutex_lock(&mu);
    lag_put(topic, partition, lag);
    pthread_mutex_unlock(&mu);
}

static int64_t get_i64(json_object *o, const char *key, int64_t dflt)
{
    json_object *v;

    if (json_object_object_get_ex(o, key, &v)
        && json_object_is_type(v, json_type_int)) {
        return json_object_get_int64(v);
    }
    return dflt;
}

int ytc_metrics_kafka_stats(const char *json, size_t len)
{
    json_tokener *tok;
    json_object *doc, *topics;

    if (len > (size_t)INT32_MAX || !(tok = json_tokener_new())) {
        return -1;
    }
    doc = json_tokener_parse_ex(tok, json, (int)len);
    json_tokener_free(tok);
    if (!doc || !json_object_object_get_ex(doc, "topics", &topics)
        || !json_object_is_type(topics, json_type_object)) {
        json_object_put(doc);
        return -1;
    }
    pthread_mutex_lock(&mu);
    nlags = 0;
    json_object_object_foreach(topics, tname, t) {
        json_object *parts, *desired;
        if (!json_object_object_get_ex(t, "partitions", &parts)
            || !json_object_is_type(parts, json_type_object)) {
            continue;
        }
        json_object_object_foreach(parts, pname, pt) {
            int64_t id = get_i64(pt, "partition", -1), lag;
            (void)pname;
            if (id < 0 || id > INT32_MAX
                || !json_object_object_get_ex(pt, "desired", &desired)
                || !json_object_get_boolean(desired)) {
                continue;
            }
            lag = get_i64(pt, "consumer_lag_stored", -1);
            if (lag < 0) {
                lag = get_i64(pt, "consumer_lag", -1);
            }
            lag_put(tname, (int32_t)id, lag);
        }
    }
    pthread_mutex_unlock(&mu);
    json_object_put(doc);
    return 0;
}

int ytc_metrics_stats_cb(rd_kafka_t *rk, char *json, size_t len,
                         void *opaque)
{
    (void)rk;
    (void)opaque;
    ytc_metrics_kafka_stats(json, len);
    return 0;
}

void ytc_metrics_reset(void)
{
    int i;

    for (i = 0; i < YTC_M__COUNTERS; i++) {
        atomic_store(&counters[i], 0);
    }
    for (i = 0; i < YTC_M__GAUGES; i++) {
        atomic_store(&gauges[i], 0);
    }
    atomic_store(&lag_dropped, 0);
    pthread_mutex_lock(&mu);
    nlags = 0;
    memset(hist_bucket, 0, sizeof(hist_bucket));
    hist_count = 0;
    hist_sum = 0;
    pthread_mutex_unlock(&mu);
}

/* ---- rendering ----------------------------------------------------------- */

typedef struct {
    char *p;
    size_t len, cap;
    int oom;
} buf;

static void bput(buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void bput(buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (b->oom) {
        return;
    }
    for (;;) {
        va_start(ap, fmt);
        n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = 1;
            return;
        }
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        {
            size_t cap = b->cap * 2 + (size_t)n;
            char *np = realloc(b->p, cap);
            if (!np) {
                b->oom = 1;
                return;
            }
            b->p = np;
            b->cap = cap;
        }
    }
}

static void family(buf *b, const char *name, const char *type,
                   const char *help)
{
    bput(b, "# HELP " P "%s %s\n# TYPE " P "%s %s\n", name, help, name, type);
}

static uint64_t cnt(ytc_counter c)
{
    return atomic_load_explicit(&counters[c], memory_order_relaxed);
}

static int64_t gauge(ytc_gauge g)
{
    return atomic_load_explicit(&gauges[g], memory_order_relaxed);
}

static void counter1(buf *b, const char *name, const char *help,
                     ytc_counter c)
{
    family(b, name, "counter", help);
    bput(b, P "%s %" PRIu64 "\n", name, cnt(c));
}

static void gauge1(buf *b, const char *name, const char *help, ytc_gauge g)
{
    family(b, name, "gauge", help);
    bput(b, P "%s %" PRId64 "\n", name, gauge(g));
}

/* a label value: backslash, quote and newline escaped */
static void label_value(buf *b, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\' || *s == '"') {
            bput(b, "\\%c", *s);
        }
        else if (*s == '\n') {
            bput(b, "\\n");
        }
        else {
            bput(b, "%c", *s);
        }
    }
}

char *ytc_metrics_render(size_t *len)
{
    buf b = { NULL, 0, 0, 0 };
    uint64_t cum = 0;
    size_t i;
    int k;

    if (!(b.p = malloc(b.cap = 8192))) {
        return NULL;
    }
    family(&b, "info", "gauge", "Version of this consumer.");
    bput(&b, P "info{version=\"%s\"} 1\n", PACKAGE_VERSION);

    counter1(&b, "messages_total", "Kafka messages taken in.",
             YTC_M_MESSAGES);
    family(&b, "results_total", "counter",
           "Video results stored, by status.");
    bput(&b, P "results_total{status=\"ok\"} %" PRIu64 "\n",
         cnt(YTC_M_RESULTS_OK));
    bput(&b, P "results_total{status=\"unavailable\"} %" PRIu64 "\n",
         cnt(YTC_M_RESULTS_UNAVAILABLE));
    bput(&b, P "results_total{status=\"error\"} %" PRIu64 "\n",
         cnt(YTC_M_RESULTS_ERROR));
    counter1(&b, "retries_total", "Fetch attempts scheduled again after a "
             "transient failure.", YTC_M_RETRIES);
    counter1(&b, "dlq_records_total", "Records sent to a dead-letter topic.",
             YTC_M_DLQ);
    counter1(&b, "fetches_total", "HTTP requests to YouTube completed.",
             YTC_M_FETCHES);
    counter1(&b, "fetch_failures_total", "HTTP requests to YouTube that got "
             "no answer, a 429 or a 5xx.", YTC_M_FETCH_FAILURES);
    counter1(&b, "cache_hits_total", "Stored results reused without "
             "fetching.", YTC_M_CACHE_HITS);
    counter1(&b, "coalesced_jobs_total", "Jobs joined to a fetch of the same "
             "video already in flight.", YTC_M_COALESCED);
    counter1(&b, "outage_checks_total", "Requests asking whether YouTube "
             "itself is up before an attempt is spent.", YTC_M_CHECKS);

    gauge1(&b, "jobs", "Video jobs held: queued, fetching or backing off.",
           YTC_G_JOBS);
    gauge1(&b, "jobs_fetching", "Video jobs with requests on the wire.",
           YTC_G_JOBS_FETCHING);
    gauge1(&b, "messages_held", "Kafka messages taken in and not finished.",
           YTC_G_MESSAGES_HELD);
    gauge1(&b, "partitions_assigned", "Partitions assigned to this "
           "consumer.", YTC_G_PARTITIONS_ASSIGNED);
    gauge1(&b, "partitions_paused", "Assigned partitions paused.",
           YTC_G_PARTITIONS_PAUSED);
    family(&b, "dependency_outage", "gauge",
           "1 while a dependency every message needs is considered down.");
    bput(&b, P "dependency_outage{dependency=\"youtube\"} %" PRId64 "\n",
         gauge(YTC_G_OUTAGE_YOUTUBE));
    bput(&b, P "dependency_outage{dependency=\"database\"} %" PRId64 "\n",
         gauge(YTC_G_OUTAGE_DATABASE));
    bput(&b, P "dependency_outage{dependency=\"kafka_output\"} %" PRId64
         "\n", gauge(YTC_G_OUTAGE_KAFKA_OUTPUT));

    family(&b, "partition_lag_messages", "gauge", "Messages in a partition "
           "after the last offset this consumer finished.");
    pthread_mutex_lock(&mu);
    for (k = 0; k < nlags; k++) {
        bput(&b, P "partition_lag_messages{topic=\"");
        label_value(&b, lags[k].topic);
        bput(&b, "\",partition=\"%" PRId32 "\"} %" PRId64 "\n",
             lags[k].partition, lags[k].lag);
    }
    pthread_mutex_unlock(&mu);
    family(&b, "partition_lag_dropped_total", "counter", "Partitions left "
           "out of partition_lag_messages (table full).");
    bput(&b, P "partition_lag_dropped_total %" PRIu64 "\n",
         atomic_load(&lag_dropped));

    family(&b, "fetch_duration_seconds", "histogram",
           "Time of one HTTP request to YouTube.");
    pthread_mutex_lock(&mu);
    for (i = 0; i <= NBUCKETS; i++) {
        cum += hist_bucket[i];
        if (i < NBUCKETS) {
            bput(&b, P "fetch_duration_seconds_bucket{le=\"%g\"} %" PRIu64
                 "\n", bucket_le[i], cum);
        }
        else {
            bput(&b, P "fetch_duration_seconds_bucket{le=\"+Inf\"} %" PRIu64
                 "\n", cum);
        }
    }
    bput(&b, P "fetch_duration_seconds_sum %.6f\n", hist_sum);
    bput(&b, P "fetch_duration_seconds_count %" PRIu64 "\n", hist_count);
    pthread_mutex_unlock(&mu);

    if (b.oom) {
        free(b.p);
        return NULL;
    }
    *len = b.len;
    return b.p;
}
