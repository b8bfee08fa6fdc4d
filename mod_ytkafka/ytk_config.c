/* mod_ytkafka: directives, merge, getters and config-time validation. */
#include <apr_strings.h>
#include <apr_hash.h>
#include <apr_lib.h>

#include <httpd.h>
#include <http_config.h>
#include <http_core.h>
#include <http_log.h>

#include <librdkafka/rdkafka.h>

#include "ytk_private.h"
#include "ytk_config.h"
#include "ytk_event_conf.h"
#include "ytk_results.h"

/* The producer defaults (docs/ARCHITECTURE.md 7.6); YtKafkaProperty
 * overrides any of them. */
static const char *const ytk_defaults[][2] = {
    { "enable.idempotence", "true" },
    { "linger.ms", "5" },
    { "compression.type", "none" },
    { "message.timeout.ms", "30000" },
    { "client.id", "mod_ytkafka" },
};

#define YTK_MERGE(n, b, a, field, unset) \
    (n)->field = ((a)->field != (unset)) ? (a)->field : (b)->field

void *ytk_create_srv_conf(apr_pool_t *p, server_rec *s)
{
    ytk_srv_conf *sc = apr_pcalloc(p, sizeof(*sc));

    sc->props = apr_array_make(p, 4, sizeof(ytk_property));
    sc->flush_timeout = -1;
    return sc;
}

void *ytk_merge_srv_conf(apr_pool_t *p, void *basev, void *addv)
{
    const ytk_srv_conf *base = basev, *add = addv;
    ytk_srv_conf *n = apr_pcalloc(p, sizeof(*n));

    YTK_MERGE(n, base, add, brokers, NULL);
    YTK_MERGE(n, base, add, flush_timeout, -1);
    YTK_MERGE(n, base, add, results_table, NULL);
    YTK_MERGE(n, base, add, results_max_limit, 0);
    n->props = apr_array_append(p, base->props, add->props);
    n->own_producer = add->brokers || add->props->nelts
                      || add->flush_timeout != -1;
    return n;
}

void *ytk_create_dir_conf(apr_pool_t *p, char *dir)
{
    ytk_dir_conf *dc = apr_pcalloc(p, sizeof(*dc));

    dc->ack = YTK_ACK_UNSET;
    dc->ack_timeout = -1;
    dc->max_body = -1;
    dc->max_links = -1;
    return dc;
}

void *ytk_merge_dir_conf(apr_pool_t *p, void *basev, void *addv)
{
    const ytk_dir_conf *base = basev, *add = addv;
    ytk_dir_conf *n = apr_pcalloc(p, sizeof(*n));

    YTK_MERGE(n, base, add, topic, NULL);
    YTK_MERGE(n, base, add, ack, YTK_ACK_UNSET);
    YTK_MERGE(n, base, add, ack_timeout, -1);
    YTK_MERGE(n, base, add, max_body, -1);
    YTK_MERGE(n, base, add, max_links, -1);
    n->events = ytk_event_conf_merge(p, base->events, add->events);
    return n;
}

ytk_srv_conf *ytk_srv_conf_get(server_rec *s)
{
    return ap_get_module_config(s->module_config, &ytkafka_module);
}

const ytk_dir_conf *ytk_dir_conf_get(request_rec *r)
{
    return ap_get_module_config(r->per_dir_config, &ytkafka_module);
}

apr_interval_time_t ytk_conf_flush_timeout(const ytk_srv_conf *sc)
{
    return sc->flush_timeout >= 0 ? sc->flush_timeout : YTK_DEF_FLUSH_TIMEOUT;
}

const char *ytk_conf_topic(const ytk_dir_conf *dc)
{
    return dc->topic ? dc->topic : YTK_DEF_TOPIC;
}

ytk_ack_mode ytk_conf_ack(const ytk_dir_conf *dc)
{
    return dc->ack != YTK_ACK_UNSET ? (ytk_ack_mode)dc->ack
                                    : YTK_ACK_DELIVERED;
}

apr_interval_time_t ytk_conf_ack_timeout(const ytk_dir_conf *dc)
{
    return dc->ack_timeout > 0 ? dc->ack_timeout : YTK_DEF_ACK_TIMEOUT;
}

apr_off_t ytk_conf_max_body(const ytk_dir_conf *dc)
{
    return dc->max_body > 0 ? dc->max_body : YTK_DEF_MAX_BODY;
}

int ytk_conf_max_links(const ytk_dir_conf *dc)
{
    return dc->max_links > 0 ? dc->max_links : YTK_DEF_MAX_LINKS;
}

static const char *cmd_err(cmd_parms *cmd, const char *what, const char *arg)
{
    return apr_psprintf(cmd->pool, "%s: %s, got '%s'", cmd->cmd->name, what,
                        arg);
}

static const char *set_brokers(cmd_parms *cmd, void *dconf, const char *arg)
{
    ytk_srv_conf *sc = ytk_srv_conf_get(cmd->server);
    const char *p;

    if (!*arg) {
        return cmd_err(cmd, "needs host:port[,host:port...]", arg);
    }
    /* httpd leaves an undefined ${VAR} in place after warning AH00111. */
    if (ap_strstr_c(arg, "${")) {
        return cmd_err(cmd, "names an undefined variable: set it in httpd's "
                       "environment (Debian: /etc/apache2/envvars) or with "
                       "Define", arg);
    }
    for (p = arg; *p; ++p) {
        if (apr_isspace(*p) || apr_iscntrl(*p)) {
            return cmd_err(cmd, "a comma separated list without spaces "
                           "is expected", arg);
        }
    }
    sc->brokers = arg;
    return NULL;
}

static const char *set_property(cmd_parms *cmd, void *dconf,
                                const char *name, const char *value)
{
    ytk_srv_conf *sc = ytk_srv_conf_get(cmd->server);
    rd_kafka_conf_t *conf;
    rd_kafka_conf_res_t res;
    ytk_property *prop;
    char errstr[512];

    if (!strcmp(name, "bootstrap.servers")
        || !strcmp(name, "metadata.broker.list")) {
        return apr_psprintf(cmd->pool, "%s: set '%s' with YtKafkaBrokers",
                            cmd->cmd->name, name);
    }
    /* A throwaway configuration: librdkafka knows its properties best. */
    conf = rd_kafka_conf_new();
    res = rd_kafka_conf_set(conf, name, value, errstr, sizeof(errstr));
    rd_kafka_conf_destroy(conf);
    if (res != RD_KAFKA_CONF_OK) {
        return apr_psprintf(cmd->pool, "%s %s %s: %s", cmd->cmd->name, name,
                            value, errstr);
    }
    prop = apr_array_push(sc->props);
    prop->name = name;
    prop->value = value;
    prop->file = cmd->directive ? cmd->directive->filename : "?";
    prop->line = cmd->directive ? cmd->directive->line_num : 0;
    return NULL;
}

static const char *parse_seconds(cmd_parms *cmd, const char *arg,
                                 int allow_zero, apr_interval_time_t *out)
{
    apr_interval_time_t t;

    if (ap_timeout_parameter_parse(arg, &t, "s") != APR_SUCCESS || t < 0
        || (!allow_zero && t == 0)) {
        return cmd_err(cmd, allow_zero
                       ? "needs a number of seconds >= 0 (or with ms suffix)"
                       : "needs a number of seconds > 0 (or with ms suffix)",
                       arg);
    }
    if (t > apr_time_from_sec(3600)) {
        return cmd_err(cmd, "is limited to 3600 seconds", arg);
    }
    *out = t;
    return NULL;
}

static const char *set_flush_timeout(cmd_parms *cmd, void *dconf,
                                     const char *arg)
{
    ytk_srv_conf *sc = ytk_srv_conf_get(cmd->server);

    return parse_seconds(cmd, arg, 1, &sc->flush_timeout);
}

int ytk_topic_name_ok(const char *name)
{
    const char *p;

    /* Kafka's own rule for topic names. */
    if (!*name || strlen(name) > 249 || !strcmp(name, ".")
        || !strcmp(name, "..")) {
        return 0;
    }
    for (p = name; *p; ++p) {
        if (!apr_isalnum(*p) && *p != '.' && *p != '_' && *p != '-') {
            return 0;
        }
    }
    return 1;
}

static const char *set_topic(cmd_parms *cmd, void *dconf, const char *arg)
{
    ytk_dir_conf *dc = dconf;

    if (!*arg || strlen(arg) > 249 || !strcmp(arg, ".")
        || !strcmp(arg, "..")) {
        return cmd_err(cmd, "needs a Kafka topic name", arg);
    }
    if (!ytk_topic_name_ok(arg)) {
        return cmd_err(cmd, "a topic name has only [A-Za-z0-9._-]", arg);
    }
    dc->topic = arg;
    return NULL;
}

static const char *set_ack(cmd_parms *cmd, void *dconf, const char *arg)
{
    ytk_dir_conf *dc = dconf;

    if (!strcasecmp(arg, "delivered")) {
        dc->ack = YTK_ACK_DELIVERED;
    }
    else if (!strcasecmp(arg, "queued")) {
        dc->ack = YTK_ACK_QUEUED;
    }
    else {
        return cmd_err(cmd, "must be 'delivered' or 'queued'", arg);
    }
    return NULL;
}

static const char *set_ack_timeout(cmd_parms *cmd, void *dconf,
                                   const char *arg)
{
    ytk_dir_conf *dc = dconf;

    return parse_seconds(cmd, arg, 0, &dc->ack_timeout);
}

static const char *set_max_body(cmd_parms *cmd, void *dconf, const char *arg)
{
    ytk_dir_conf *dc = dconf;
    apr_off_t n;
    char *end;

    if (apr_strtoff(&n, arg, &end, 10) != APR_SUCCESS || *end || n <= 0
        || n > 64 * 1024 * 1024) {
        return cmd_err(cmd, "needs a number of bytes from 1 to 67108864",
                       arg);
    }
    dc->max_body = n;
    return NULL;
}

static const char *set_max_links(cmd_parms *cmd, void *dconf, const char *arg)
{
    ytk_dir_conf *dc = dconf;
    apr_int64_t n;
    char *end;

    n = apr_strtoi64(arg, &end, 10);
    if (end == arg || *end || n < 1 || n > 10000) {
        return cmd_err(cmd, "needs a number from 1 to 10000", arg);
    }
    dc->max_links = (int)n;
    return NULL;
}

const command_rec ytk_cmds[] = {
    AP_INIT_TAKE1("YtKafkaBrokers", set_brokers, NULL, RSRC_CONF,
                  "Kafka bootstrap brokers, host:port[,host:port...]"),
    AP_INIT_TAKE2("YtKafkaProperty", set_property, NULL, RSRC_CONF,
                  "a librdkafka producer property: name value"),
    AP_INIT_TAKE1("YtKafkaFlushTimeout", set_flush_timeout, NULL, RSRC_CONF,
                  "seconds a child waits for undelivered messages at exit"),
    AP_INIT_TAKE1("YtKafkaTopic", set_topic, NULL, RSRC_CONF | ACCESS_CONF,
                  "the Kafka topic links are produced to"),
    AP_INIT_TAKE1("YtKafkaAck", set_ack, NULL, RSRC_CONF | ACCESS_CONF,
                  "'delivered' (wait for the broker) or 'queued'"),
    AP_INIT_TAKE1("YtKafkaAckTimeout", set_ack_timeout, NULL,
                  RSRC_CONF | ACCESS_CONF,
                  "seconds to wait for the broker's delivery report"),
    AP_INIT_TAKE1("YtKafkaMaxBody", set_max_body, NULL,
                  RSRC_CONF | ACCESS_CONF, "largest request body in bytes"),
    AP_INIT_TAKE1("YtKafkaMaxLinks", set_max_links, NULL,
                  RSRC_CONF | ACCESS_CONF, "most links in one request"),
    YTK_EVENT_CMDS,
    AP_INIT_TAKE1("YtKafkaResultsTable", ytk_results_set_table, NULL,
                  RSRC_CONF, "the consumer's results table (videos)"),
    AP_INIT_TAKE1("YtKafkaResultsMaxLimit", ytk_results_set_max_limit, NULL,
                  RSRC_CONF, "most rows one GET /links?limit= answers"),
    { NULL }
};

const char *ytk_conf_apply(apr_pool_t *p, const ytk_srv_conf *sc,
                           rd_kafka_conf_t *conf, int with_brokers)
{
    char errstr[512];
    int i;

    for (i = 0; i < (int)(sizeof(ytk_defaults) / sizeof(ytk_defaults[0]));
         ++i) {
        if (rd_kafka_conf_set(conf, ytk_defaults[i][0], ytk_defaults[i][1],
                              errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
            return apr_psprintf(p, "default %s=%s: %s", ytk_defaults[i][0],
                                ytk_defaults[i][1], errstr);
        }
    }
    for (i = 0; i < sc->props->nelts; ++i) {
        const ytk_property *prop = &APR_ARRAY_IDX(sc->props, i, ytk_property);

        if (rd_kafka_conf_set(conf, prop->name, prop->value, errstr,
                              sizeof(errstr)) != RD_KAFKA_CONF_OK) {
            return apr_psprintf(p, "YtKafkaProperty %s %s (%s:%d): %s",
                                prop->name, prop->value, prop->file,
                                prop->line, errstr);
        }
    }
    if (with_brokers && sc->brokers
        && rd_kafka_conf_set(conf, "bootstrap.servers", sc->brokers, errstr,
                             sizeof(errstr)) != RD_KAFKA_CONF_OK) {
        return apr_psprintf(p, "YtKafkaBrokers %s: %s", sc->brokers, errstr);
    }
    return NULL;
}

static void check_log_cb(const rd_kafka_t *rk, int level, const char *fac,
                         const char *buf)
{
    /* Only configuration warnings matter for a throwaway instance. */
    if (level <= LOG_WARNING && !strcmp(fac, "CONFWARN")
        && !strstr(buf, "bootstrap.servers")) {
        ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_WARNING, 0, NULL,
                     YTK_LOGNO(00101) "YtKafkaProperty: librdkafka: %s", buf);
    }
}

/* Build the whole producer configuration once, as a child would, but
 * without brokers so that nothing connects. rd_kafka_new() catches what a
 * property alone cannot, e.g. acks=1 with enable.idempotence=true. */
static const char *check_producer_conf(apr_pool_t *p, const ytk_srv_conf *sc)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    const char *msg;
    rd_kafka_t *rk;
    char errstr[512];

    rd_kafka_conf_set_log_cb(conf, check_log_cb);
    if ((msg = ytk_conf_apply(p, sc, conf, 0))) {
        rd_kafka_conf_destroy(conf);
        return msg;
    }
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        return apr_psprintf(p, "YtKafkaProperty: the producer configuration "
                            "is inconsistent: %s", errstr);
    }
    rd_kafka_destroy(rk);
    return NULL;
}

static server_rec *find_vhost(server_rec *s, const ap_directive_t *d)
{
    for (; s; s = s->next) {
        if (s->defn_name && s->defn_line_number == (unsigned)d->line_num
            && !strcmp(s->defn_name, d->filename)) {
            return s;
        }
    }
    return NULL;
}

/* Record in @a users every server whose config tree sets the send handler. */
static void scan_handlers(apr_pool_t *p, const ap_directive_t *d,
                          server_rec *main_s, server_rec *cur,
                          apr_hash_t *users)
{
    for (; d; d = d->next) {
        server_rec *here = cur;

        if (!strcasecmp(d->directive, "<VirtualHost")) {
            here = find_vhost(main_s->next, d);
            if (!here) {
                here = cur;
            }
        }
        else if (!strcasecmp(d->directive, "SetHandler")
                 || !strcasecmp(d->directive, "AddHandler")) {
            const char *args = d->args;
            char *h = ap_getword_conf(p, &args);

            if (!strcasecmp(h, "ytkafka-send")
                || !strcasecmp(h, "ytkafka-produce")) {
                apr_hash_set(users, apr_pmemdup(p, &cur, sizeof(cur)),
                             sizeof(cur), d);
            }
        }
        if (d->first_child) {
            scan_handlers(p, d->first_child, main_s, here, users);
        }
    }
}

int ytk_config_check(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                     server_rec *s)
{
    apr_hash_t *users = apr_hash_make(ptemp);
    server_rec *sv;
    int rv = OK;

    scan_handlers(ptemp, ap_conftree, s, s, users);
    if (ytk_event_conf_check(ptemp, ap_conftree) != OK) {
        rv = !OK;
    }
    for (sv = s; sv; sv = sv->next) {
        ytk_srv_conf *sc = ytk_srv_conf_get(sv);
        const ap_directive_t *d = apr_hash_get(users, &sv, sizeof(sv));
        const char *msg;

        if (d && !sc->brokers) {
            ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_EMERG, 0, NULL,
                         YTK_LOGNO(00102) "YtKafkaBrokers: not set for server "
                         "%s:%u, which uses the ytkafka-send handler "
                         "(%s:%d)", sv->server_hostname ? sv->server_hostname
                         : "(main)", sv->port, d->filename, d->line_num);
            rv = !OK;
            continue;
        }
        if (sc->brokers && (sv == s || sc->own_producer)
            && (msg = check_producer_conf(ptemp, sc))) {
            ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_EMERG, 0, NULL,
                         YTK_LOGNO(00103) "%s", msg);
            rv = !OK;
        }
    }
    return rv;
}
