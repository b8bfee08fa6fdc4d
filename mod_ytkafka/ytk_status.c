/* mod_ytkafka: shared-memory counters and the ytkafka-status handler. */
#include <errno.h>
#include <signal.h>
#include <sys/types.h>
#include <unistd.h>

#include <apr_shm.h>
#include <apr_strings.h>

#include <httpd.h>
#include <http_config.h>
#include <http_core.h>
#include <http_log.h>
#include <http_protocol.h>
#include <http_request.h>
#include <util_script.h>

#include "ytk_private.h"
#include "ytk_status.h"
#include "ytk_url.h"

#define YTK_SHM_KEY   "mod_ytkafka_status_shm"
#define YTK_SHM_MAGIC 0x59544b31u   /* "YTK1", bump on layout change */
/* Children alive at once, old generations included. */
#define YTK_SLOTS     1024
#define YTK_URL_RC_N  (YTK_URL_BAD_ID + 1)

#define YTK_ADD(x, n) __atomic_fetch_add(&(x), (n), __ATOMIC_RELAXED)
#define YTK_GET(x)    __atomic_load_n(&(x), __ATOMIC_RELAXED)

static const int ytk_statuses[] = {
    201, 202, 207, 400, 405, 413, 415, 422, 500, 503, 504
};
#define YTK_NSTATUS ((int)(sizeof(ytk_statuses) / sizeof(ytk_statuses[0])))

typedef struct {
    apr_int32_t pid;
    apr_int32_t producers;
    apr_int32_t down;
    apr_int32_t pad;
    apr_int64_t qdepth;
} ytk_slot;

typedef struct {
    apr_uint32_t magic;
    apr_uint32_t pad;
    apr_time_t created;
    apr_uint64_t requests[YTK_NSTATUS + 1];     /* last: any other */
    apr_uint64_t links_accepted;
    apr_uint64_t links_rejected[YTK_URL_RC_N];
    apr_uint64_t produced;
    apr_uint64_t delivered;
    apr_uint64_t failed[YTK_FAIL__COUNT];
    ytk_slot slots[YTK_SLOTS];
} ytk_shm_data;

/* Set in post_config in the parent, inherited by children. Static data is
 * reset when httpd reloads the module on restart; the segment itself lives
 * in the process pool. */
static ytk_shm_data *ytk_shm;
static ytk_slot *ytk_my_slot;

int ytk_status_post_config(apr_pool_t *pconf, apr_pool_t *plog,
                           apr_pool_t *ptemp, server_rec *s)
{
    apr_pool_t *pproc = s->process->pool;
    apr_shm_t *shm = NULL;
    apr_status_t rv;
    void *data = NULL;

    apr_pool_userdata_get(&data, YTK_SHM_KEY, pproc);
    if (data) {
        shm = data;
    }
    else {
        rv = apr_shm_create(&shm, sizeof(ytk_shm_data), NULL, pproc);
        if (rv != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s,
                         YTK_LOGNO(00401) "cannot create %" APR_SIZE_T_FMT
                         " bytes of anonymous shared memory for the "
                         "status counters", sizeof(ytk_shm_data));
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        memset(apr_shm_baseaddr_get(shm), 0, sizeof(ytk_shm_data));
        ((ytk_shm_data *)apr_shm_baseaddr_get(shm))->magic = YTK_SHM_MAGIC;
        ((ytk_shm_data *)apr_shm_baseaddr_get(shm))->created = apr_time_now();
        apr_pool_userdata_set(shm, YTK_SHM_KEY, apr_pool_cleanup_null, pproc);
    }
    ytk_shm = apr_shm_baseaddr_get(shm);
    return OK;
}

static apr_status_t slot_release(void *data)
{
    ytk_slot *slot = data;

    __atomic_store_n(&slot->pid, 0, __ATOMIC_RELEASE);
    if (ytk_my_slot == slot) {
        ytk_my_slot = NULL;
    }
    return APR_SUCCESS;
}

static int pid_alive(apr_int32_t pid)
{
    return pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM);
}

void ytk_status_child_init(apr_pool_t *pchild, server_rec *s)
{
    apr_int32_t me = (apr_int32_t)getpid();
    int i;

    if (!ytk_shm) {
        return;
    }
    for (i = 0; i < YTK_SLOTS; ++i) {
        ytk_slot *slot = &ytk_shm->slots[i];
        apr_int32_t old = YTK_GET(slot->pid);

        /* A free slot, or one a crashed child left behind. */
        if ((old == 0 || (old != me && !pid_alive(old)))
            && __atomic_compare_exchange_n(&slot->pid, &old, me, 0,
                                           __ATOMIC_ACQ_REL,
                                           __ATOMIC_RELAXED)) {
            __atomic_store_n(&slot->producers, 0, __ATOMIC_RELAXED);
            __atomic_store_n(&slot->down, 0, __ATOMIC_RELAXED);
            __atomic_store_n(&slot->qdepth, 0, __ATOMIC_RELAXED);
            ytk_my_slot = slot;
            /* Registered before the producers' sub-pools exist, so it runs
             * after they flushed. */
            apr_pool_cleanup_register(pchild, slot, slot_release,
                                      apr_pool_cleanup_null);
            return;
        }
    }
    ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                 YTK_LOGNO(00402) "no free status slot of %d: this child's "
                 "queue depth and broker state are not shown", YTK_SLOTS);
}

void ytk_status_request(int status)
{
    int i;

    if (!ytk_shm) {
        return;
    }
    for (i = 0; i < YTK_NSTATUS && ytk_statuses[i] != status; ++i) {
    }
    YTK_ADD(ytk_shm->requests[i], 1);
}

void ytk_status_link_accepted(void)
{
    if (ytk_shm) {
        YTK_ADD(ytk_shm->links_accepted, 1);
    }
}

void ytk_status_link_rejected(int url_rc)
{
    if (ytk_shm && url_rc > 0 && url_rc < YTK_URL_RC_N) {
        YTK_ADD(ytk_shm->links_rejected[url_rc], 1);
    }
}

void ytk_status_produced(void)
{
    if (ytk_shm) {
        YTK_ADD(ytk_shm->produced, 1);
    }
}

void ytk_status_delivered(void)
{
    if (ytk_shm) {
        YTK_ADD(ytk_shm->delivered, 1);
    }
}

void ytk_status_failed(ytk_fail_class c)
{
    if (ytk_shm && c > YTK_FAIL_NONE && c < YTK_FAIL__COUNT) {
        YTK_ADD(ytk_shm->failed[c], 1);
    }
}

void ytk_status_gauges(long qdepth_delta, int producers_delta,
                       int down_delta)
{
    ytk_slot *slot = ytk_my_slot;

    if (slot) {
        YTK_ADD(slot->qdepth, qdepth_delta);
        YTK_ADD(slot->producers, producers_delta);
        YTK_ADD(slot->down, down_delta);
    }
}

/* A consistent-enough copy: each counter is read atomically. */
typedef struct {
    apr_uint64_t requests[YTK_NSTATUS + 1], requests_total;
    apr_uint64_t accepted, rejected[YTK_URL_RC_N], rejected_total;
    apr_uint64_t produced, delivered, failed[YTK_FAIL__COUNT], failed_total;
    apr_int64_t qdepth;
    int children, producers, down;
} ytk_snapshot;

static void snapshot(ytk_snapshot *sn)
{
    int i;

    memset(sn, 0, sizeof(*sn));
    for (i = 0; i <= YTK_NSTATUS; ++i) {
        sn->requests[i] = YTK_GET(ytk_shm->requests[i]);
        sn->requests_total += sn->requests[i];
    }
    sn->accepted = YTK_GET(ytk_shm->links_accepted);
    for (i = 1; i < YTK_URL_RC_N; ++i) {
        sn->rejected[i] = YTK_GET(ytk_shm->links_rejected[i]);
        sn->rejected_total += sn->rejected[i];
    }
    sn->produced = YTK_GET(ytk_shm->produced);
    sn->delivered = YTK_GET(ytk_shm->delivered);
    for (i = 1; i < YTK_FAIL__COUNT; ++i) {
        sn->failed[i] = YTK_GET(ytk_shm->failed[i]);
        sn->failed_total += sn->failed[i];
    }
    for (i = 0; i < YTK_SLOTS; ++i) {
        ytk_slot *slot = &ytk_shm->slots[i];

        if (pid_alive(YTK_GET(slot->pid))) {
            sn->children++;
            sn->producers += YTK_GET(slot->producers);
            sn->down += YTK_GET(slot->down);
            sn->qdepth += YTK_GET(slot->qdepth);
        }
    }
}

static const char *broker_state(const ytk_snapshot *sn)
{
    if (sn->producers <= 0) {
        return "none";
    }
    if (sn->down <= 0) {
        return "up";
    }
    return sn->down >= sn->producers ? "down" : "degraded";
}

static void emit_json(request_rec *r, const ytk_snapshot *sn)
{
    int i, first;

    ap_set_content_type(r, "application/json");
    ap_rprintf(r, "{\"source\":\"mod_ytkafka/" YTK_MODULE_VERSION "\","
               "\"uptime_seconds\":%" APR_TIME_T_FMT ","
               "\"requests\":{\"total\":%" APR_UINT64_T_FMT ",\"by_status\":{",
               apr_time_sec(apr_time_now() - ytk_shm->created),
               sn->requests_total);
    for (i = 0; i < YTK_NSTATUS; ++i) {
        ap_rprintf(r, "%s\"%d\":%" APR_UINT64_T_FMT, i ? "," : "",
                   ytk_statuses[i], sn->requests[i]);
    }
    ap_rprintf(r, ",\"other\":%" APR_UINT64_T_FMT "}},", sn->requests[i]);
    ap_rprintf(r, "\"links\":{\"accepted\":%" APR_UINT64_T_FMT
               ",\"rejected\":%" APR_UINT64_T_FMT ",\"rejected_by_reason\":{",
               sn->accepted, sn->rejected_total);
    for (i = 1, first = 1; i < YTK_URL_RC_N; ++i, first = 0) {
        ap_rprintf(r, "%s\"%s\":%" APR_UINT64_T_FMT, first ? "" : ",",
                   ytk_url_code((ytk_url_rc)i), sn->rejected[i]);
    }
    ap_rprintf(r, "}},\"messages\":{\"produced\":%" APR_UINT64_T_FMT
               ",\"delivered\":%" APR_UINT64_T_FMT
               ",\"failed\":%" APR_UINT64_T_FMT ",\"failed_by_reason\":{",
               sn->produced, sn->delivered, sn->failed_total);
    for (i = 1, first = 1; i < YTK_FAIL__COUNT; ++i, first = 0) {
        ap_rprintf(r, "%s\"%s\":%" APR_UINT64_T_FMT, first ? "" : ",",
                   ytk_fail_code((ytk_fail_class)i), sn->failed[i]);
    }
    ap_rprintf(r, "}},\"queue_depth\":%" APR_INT64_T_FMT ",\"children\":%d,"
               "\"brokers\":{\"state\":\"%s\",\"producers\":%d,"
               "\"producers_up\":%d,\"producers_down\":%d}}\n",
               sn->qdepth, sn->children, broker_state(sn), sn->producers,
               sn->producers - sn->down, sn->down);
}

static void emit_prometheus(request_rec *r, const ytk_snapshot *sn)
{
    int i;

    ap_set_content_type(r, "text/plain; version=0.0.4; charset=utf-8");
    ap_rputs("# HELP ytkafka_requests_total Send requests answered, by "
             "HTTP status.\n# TYPE ytkafka_requests_total counter\n", r);
    for (i = 0; i < YTK_NSTATUS; ++i) {
        ap_rprintf(r, "ytkafka_requests_total{status=\"%d\"} %"
                   APR_UINT64_T_FMT "\n", ytk_statuses[i], sn->requests[i]);
    }
    ap_rprintf(r, "ytkafka_requests_total{status=\"other\"} %"
               APR_UINT64_T_FMT "\n", sn->requests[i]);
    ap_rprintf(r, "# HELP ytkafka_links_accepted_total Links that passed "
               "validation.\n# TYPE ytkafka_links_accepted_total counter\n"
               "ytkafka_links_accepted_total %" APR_UINT64_T_FMT "\n",
               sn->accepted);
    ap_rputs("# HELP ytkafka_links_rejected_total Links rejected, by "
             "reason.\n# TYPE ytkafka_links_rejected_total counter\n", r);
    for (i = 1; i < YTK_URL_RC_N; ++i) {
        ap_rprintf(r, "ytkafka_links_rejected_total{reason=\"%s\"} %"
                   APR_UINT64_T_FMT "\n", ytk_url_code((ytk_url_rc)i),
                   sn->rejected[i]);
    }
    ap_rprintf(r, "# HELP ytkafka_messages_produced_total Messages handed to "
               "librdkafka.\n# TYPE ytkafka_messages_produced_total counter\n"
               "ytkafka_messages_produced_total %" APR_UINT64_T_FMT "\n"
               "# HELP ytkafka_messages_delivered_total Messages the broker "
               "acknowledged.\n"
               "# TYPE ytkafka_messages_delivered_total counter\n"
               "ytkafka_messages_delivered_total %" APR_UINT64_T_FMT "\n",
               sn->produced, sn->delivered);
    ap_rputs("# HELP ytkafka_messages_failed_total Messages that failed, by "
             "reason.\n# TYPE ytkafka_messages_failed_total counter\n", r);
    for (i = 1; i < YTK_FAIL__COUNT; ++i) {
        ap_rprintf(r, "ytkafka_messages_failed_total{reason=\"%s\"} %"
                   APR_UINT64_T_FMT "\n", ytk_fail_code((ytk_fail_class)i),
                   sn->failed[i]);
    }
    ap_rprintf(r, "# HELP ytkafka_queue_depth Messages waiting in the "
               "producers' queues.\n# TYPE ytkafka_queue_depth gauge\n"
               "ytkafka_queue_depth %" APR_INT64_T_FMT "\n"
               "# HELP ytkafka_children Server processes counted.\n"
               "# TYPE ytkafka_children gauge\nytkafka_children %d\n"
               "# HELP ytkafka_producers Kafka producers, by broker state.\n"
               "# TYPE ytkafka_producers gauge\n"
               "ytkafka_producers{brokers=\"up\"} %d\n"
               "ytkafka_producers{brokers=\"down\"} %d\n"
               "# HELP ytkafka_brokers_up 1 if every producer reaches a "
               "broker.\n# TYPE ytkafka_brokers_up gauge\n"
               "ytkafka_brokers_up %d\n",
               sn->qdepth, sn->children, sn->producers - sn->down, sn->down,
               (sn->producers > 0 && sn->down <= 0) ? 1 : 0);
}

int ytk_status_handler(request_rec *r)
{
    ytk_snapshot sn;
    apr_table_t *args = NULL;
    const char *format;

    if (!r->handler || strcmp(r->handler, "ytkafka-status")) {
        return DECLINED;
    }
    r->allowed = (AP_METHOD_BIT << M_GET);
    ap_allow_methods(r, REPLACE_ALLOW, "GET", NULL);
    if (r->method_number != M_GET) {
        return HTTP_METHOD_NOT_ALLOWED;
    }
    if (!ytk_shm) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      YTK_LOGNO(00403) "status shared memory is missing");
        return HTTP_SERVICE_UNAVAILABLE;
    }
    ap_args_to_table(r, &args);
    format = apr_table_get(args, "format");
    snapshot(&sn);
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    if (format && !strcmp(format, "prometheus")) {
        emit_prometheus(r, &sn);
    }
    else if (!format || !strcmp(format, "json")) {
        emit_json(r, &sn);
    }
    else {
        return HTTP_BAD_REQUEST;
    }
    return OK;
}
