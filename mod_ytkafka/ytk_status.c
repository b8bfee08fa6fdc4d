/* mod_ytkafka: shared-memory counters and the ytkafka-status handler. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
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
#define YTK_SHM_MAGIC 0x59544b32u   /* "YTK2", bump on layout change */
/* Children alive at once, old generations included. Overridable only so a
 * test can build a module whose segment has another size. */
#ifndef YTK_SLOTS
#define YTK_SLOTS     1024
#endif
#define YTK_URL_RC_N  (YTK_URL_BAD_ID + 1)

#define YTK_ADD(x, n) __atomic_fetch_add(&(x), (n), __ATOMIC_RELAXED)
#define YTK_GET(x)    __atomic_load_n(&(x), __ATOMIC_RELAXED)

static const int ytk_statuses[] = {
    201, 202, 207, 400, 405, 413, 415, 422, 500, 503, 504
};
#define YTK_NSTATUS ((int)(sizeof(ytk_statuses) / sizeof(ytk_statuses[0])))

/* A child's gauges. pid and start identify the process that owns it: a pid
 * alone may be reused by an unrelated process after a crash. While a child
 * claims a slot, pid holds its pid negated and start is being written: no
 * other child takes the slot then (it would see the new pid with the
 * previous owner's start and judge the owner dead), the status page does
 * not count it, and a claimer that dies in between leaves it claimable. */
typedef struct {
    apr_int32_t pid;
    apr_int32_t producers;
    apr_int32_t down;
    apr_int32_t pad;
    apr_int64_t qdepth;
    apr_uint64_t start;     /* the owner's start time, in clock ticks */
} ytk_slot;

typedef struct {
    apr_uint32_t magic;
    apr_uint32_t pad;
    apr_uint64_t size;      /* sizeof(ytk_shm_data) of the creator */
    apr_time_t created;
    apr_uint64_t requests[YTK_NSTATUS + 1];     /* last: any other */
    apr_uint64_t links_accepted;
    apr_uint64_t links_rejected[YTK_URL_RC_N];
    apr_uint64_t produced;
    apr_uint64_t delivered;
    apr_uint64_t failed[YTK_FAIL__COUNT];
    apr_uint64_t lost_after_queued;
    ytk_slot slots[YTK_SLOTS];
} ytk_shm_data;

/* Set in post_config in the parent, inherited by children. Static data is
 * reset when httpd reloads the module on restart; the segment itself lives
 * in the process pool. */
static ytk_shm_data *ytk_shm;
static ytk_slot *ytk_my_slot;

/* The segment another load of this module left in the process pool is
 * used only if it has this build's layout: a restart may load a newer
 * module (another slot count, more counters) into the same parent. */
static int shm_compatible(apr_shm_t *shm)
{
    const ytk_shm_data *d = apr_shm_baseaddr_get(shm);

    return apr_shm_size_get(shm) >= sizeof(ytk_shm_data)
           && d->magic == YTK_SHM_MAGIC && d->size == sizeof(ytk_shm_data);
}

int ytk_status_post_config(apr_pool_t *pconf, apr_pool_t *plog,
                           apr_pool_t *ptemp, server_rec *s)
{
    apr_pool_t *pproc = s->process->pool;
    apr_shm_t *shm = NULL;
    apr_status_t rv;
    void *data = NULL;
    ytk_shm_data *d;

    apr_pool_userdata_get(&data, YTK_SHM_KEY, pproc);
    if (data && shm_compatible(data)) {
        shm = data;
    }
    else {
        if (data) {
            /* Children of the old generation may still write into the old
             * segment, so it stays mapped until the parent exits. */
            ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s,
                         YTK_LOGNO(00700) "status shared memory of another "
                         "layout (%" APR_SIZE_T_FMT " bytes, magic %08x) "
                         "left by a previous load of the module: counters "
                         "start again in a new segment",
                         apr_shm_size_get(data),
                         ((ytk_shm_data *)apr_shm_baseaddr_get(data))->magic);
        }
        rv = apr_shm_create(&shm, sizeof(ytk_shm_data), NULL, pproc);
        if (rv != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s,
                         YTK_LOGNO(00401) "cannot create %" APR_SIZE_T_FMT
                         " bytes of anonymous shared memory for the "
                         "status counters", sizeof(ytk_shm_data));
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        d = apr_shm_baseaddr_get(shm);
        memset(d, 0, sizeof(ytk_shm_data));
        d->magic = YTK_SHM_MAGIC;
        d->size = sizeof(ytk_shm_data);
        d->created = apr_time_now();
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

/* Field 22 of /proc/PID/stat: when the process started, in clock ticks
 * since boot. 0 where there is no /proc (then only the pid is compared). */
static apr_uint64_t proc_start(apr_int32_t pid)
{
    char path[64], buf[1024], *p;
    unsigned long long start = 0;
    size_t n;
    FILE *f;
    int field;

    apr_snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    f = fopen(path, "r");
    if (!f) {
        return 0;
    }
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* The command name may hold spaces and parentheses: skip past the
     * last ')'. The state is field 3. */
    p = strrchr(buf, ')');
    if (!p) {
        return 0;
    }
    for (field = 2; *p && field < 22; ++p) {
        if (*p == ' ') {
            ++field;
        }
    }
    if (field == 22 && sscanf(p, "%llu", &start) != 1) {
        start = 0;
    }
    return (apr_uint64_t)start;
}

static int pid_alive(apr_int32_t pid)
{
    return pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM);
}

/* The slot's owner is still running: same pid and same start time. */
static int slot_owner_alive(const ytk_slot *slot)
{
    /* acquire: pairs with the claimer's release, so start is its own */
    apr_int32_t pid = __atomic_load_n(&slot->pid, __ATOMIC_ACQUIRE);
    apr_uint64_t start = YTK_GET(slot->start), now;

    if (!pid_alive(pid)) {
        return 0;
    }
    if (!start) {
        return 1;
    }
    now = proc_start(pid);
    return now == 0 || now == start;
}

void ytk_status_child_init(apr_pool_t *pchild, server_rec *s)
{
    apr_int32_t me = (apr_int32_t)getpid();
    apr_uint64_t my_start = proc_start(me);
    int i;

    if (!ytk_shm) {
        return;
    }
    for (i = 0; i < YTK_SLOTS; ++i) {
        ytk_slot *slot = &ytk_shm->slots[i];
        apr_int32_t old = YTK_GET(slot->pid);

        if (old < 0 && pid_alive(-old)) {
            continue;   /* another child is claiming it */
        }
        /* A free slot, or one a crashed child left behind (its pid gone,
         * or reused by another process since), or our own pid's from a
         * process that died before this one started. */
        if ((old <= 0 || !slot_owner_alive(slot)
             || (old == me && YTK_GET(slot->start) != my_start))
            && __atomic_compare_exchange_n(&slot->pid, &old, -me, 0,
                                           __ATOMIC_ACQ_REL,
                                           __ATOMIC_RELAXED)) {
            __atomic_store_n(&slot->producers, 0, __ATOMIC_RELAXED);
            __atomic_store_n(&slot->down, 0, __ATOMIC_RELAXED);
            __atomic_store_n(&slot->qdepth, 0, __ATOMIC_RELAXED);
            __atomic_store_n(&slot->start, my_start, __ATOMIC_RELAXED);
            /* Only now is the slot ours in everyone's eyes. */
            __atomic_store_n(&slot->pid, me, __ATOMIC_RELEASE);
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

void ytk_status_child_exited(server_rec *s, pid_t pid,
                             ap_generation_t gen, int sb_slot,
                             mpm_child_status state)
{
    int i;

    (void)s;
    (void)gen;
    (void)sb_slot;
    if (!ytk_shm || state != MPM_CHILD_EXITED) {
        return;
    }
    /* The parent saw this child exit (a crash included): its slot is free
     * now, before any other process can get the pid. */
    for (i = 0; i < YTK_SLOTS; ++i) {
        ytk_slot *slot = &ytk_shm->slots[i];
        apr_int32_t old = YTK_GET(slot->pid);

        /* its slot, or one it died claiming */
        if (old != 0 && (old == (apr_int32_t)pid
                         || old == -(apr_int32_t)pid)) {
            __atomic_store_n(&slot->producers, 0, __ATOMIC_RELAXED);
            __atomic_store_n(&slot->down, 0, __ATOMIC_RELAXED);
            __atomic_store_n(&slot->qdepth, 0, __ATOMIC_RELAXED);
            __atomic_compare_exchange_n(&slot->pid, &old, 0, 0,
                                        __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
        }
    }
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

void ytk_status_lost_after_queued(void)
{
    if (ytk_shm) {
        YTK_ADD(ytk_shm->lost_after_queued, 1);
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
    apr_uint64_t lost_after_queued;
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
    sn->lost_after_queued = YTK_GET(ytk_shm->lost_after_queued);
    for (i = 1; i < YTK_FAIL__COUNT; ++i) {
        sn->failed[i] = YTK_GET(ytk_shm->failed[i]);
        sn->failed_total += sn->failed[i];
    }
    for (i = 0; i < YTK_SLOTS; ++i) {
        ytk_slot *slot = &ytk_shm->slots[i];

        if (slot_owner_alive(slot)) {
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
               ",\"failed\":%" APR_UINT64_T_FMT
               ",\"lost_after_queued\":%" APR_UINT64_T_FMT
               ",\"failed_by_reason\":{",
               sn->produced, sn->delivered, sn->failed_total,
               sn->lost_after_queued);
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
    ap_rprintf(r, "# HELP ytkafka_messages_lost_after_queued_total Messages "
               "answered 202 (queued) that were then not delivered.\n"
               "# TYPE ytkafka_messages_lost_after_queued_total counter\n"
               "ytkafka_messages_lost_after_queued_total %" APR_UINT64_T_FMT
               "\n", sn->lost_after_queued);
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
