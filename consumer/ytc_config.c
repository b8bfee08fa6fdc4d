#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_strings.h>
#include <librdkafka/rdkafka.h>

#include "config.h"
#include "ytc_config.h"
#include "ytc_log.h"
#include "ytc_metrics.h"

enum {
    OPT_DB = 256,
    OPT_RESULTS_TOPIC,
    OPT_DLQ_TOPIC,
    OPT_YOUTUBE_URL,
    OPT_CONCURRENCY,
    OPT_MAX_ATTEMPTS,
    OPT_BACKOFF_MS,
    OPT_HTTP_TIMEOUT,
    OPT_SHUTDOWN_TIMEOUT,
    OPT_NO_FETCH,
    OPT_PARSE_WATCH,
    OPT_PARSE_OEMBED,
    OPT_VIDEO_ID,
    OPT_MAX_RPS,
    OPT_METRICS,
    OPT_REFRESH_AFTER,
    OPT_FETCH_MEMORY
};

static const char short_opts[] = "b:G:t:X:F:c:evqhV";

static const struct option long_opts[] = {
    { "brokers",          required_argument, NULL, 'b' },
    { "group",            required_argument, NULL, 'G' },
    { "topic",            required_argument, NULL, 't' },
    { "property",         required_argument, NULL, 'X' },
    { "config",           required_argument, NULL, 'F' },
    { "count",            required_argument, NULL, 'c' },
    { "exit-eof",         no_argument,       NULL, 'e' },
    { "verbose",          no_argument,       NULL, 'v' },
    { "quiet",            no_argument,       NULL, 'q' },
    { "help",             no_argument,       NULL, 'h' },
    { "version",          no_argument,       NULL, 'V' },
    { "db",               required_argument, NULL, OPT_DB },
    { "results-topic",    required_argument, NULL, OPT_RESULTS_TOPIC },
    { "dlq-topic",        required_argument, NULL, OPT_DLQ_TOPIC },
    { "youtube-url",      required_argument, NULL, OPT_YOUTUBE_URL },
    { "concurrency",      required_argument, NULL, OPT_CONCURRENCY },
    { "max-attempts",     required_argument, NULL, OPT_MAX_ATTEMPTS },
    { "backoff-ms",       required_argument, NULL, OPT_BACKOFF_MS },
    { "http-timeout",     required_argument, NULL, OPT_HTTP_TIMEOUT },
    { "shutdown-timeout", required_argument, NULL, OPT_SHUTDOWN_TIMEOUT },
    { "no-fetch",         no_argument,       NULL, OPT_NO_FETCH },
    { "parse-watch",      required_argument, NULL, OPT_PARSE_WATCH },
    { "parse-oembed",     required_argument, NULL, OPT_PARSE_OEMBED },
    { "video-id",         required_argument, NULL, OPT_VIDEO_ID },
    { "max-rps",          required_argument, NULL, OPT_MAX_RPS },
    { "metrics",          required_argument, NULL, OPT_METRICS },
    { "refresh-after",    required_argument, NULL, OPT_REFRESH_AFTER },
    { "fetch-memory",     required_argument, NULL, OPT_FETCH_MEMORY },
    { NULL, 0, NULL, 0 }
};

static void usage(FILE *out)
{
    fprintf(out,
"Usage: ytkafka-consumer [options]\n"
"Consume YouTube links from Kafka, fetch each video's metadata, store it.\n"
"\n"
"Kafka:\n"
"  -b, --brokers HOST:PORT[,..]  bootstrap brokers           (KAFKA_BROKERS)\n"
"  -G, --group ID                consumer group  [youtube-extractor] (YTK_GROUP)\n"
"  -t, --topic NAME              topic, repeatable [youtube-links]  (YTK_TOPICS)\n"
"  -X, --property PROP=VALUE     librdkafka property (repeatable)\n"
"  -F, --config FILE             file of PROP=VALUE lines, '#' comments\n"
"      --results-topic NAME      also produce each result here, key = video id\n"
"                                                            (YTK_RESULTS_TOPIC)\n"
"      --dlq-topic NAME          dead letters [<topic>.dlq]  (YTK_DLQ_TOPIC)\n"
"Storage:\n"
"      --db DSN                  sqlite3:PATH, pgsql:CONNINFO or none\n"
"                                [sqlite3:ytkafka.db]        (YTK_DB)\n"
"YouTube:\n"
"      --youtube-url URL         base URL [https://www.youtube.com] (YTK_YOUTUBE_URL)\n"
"      --concurrency N           videos fetched at once [16] (YTK_CONCURRENCY)\n"
"      --max-attempts N          tries before the DLQ [5]    (YTK_MAX_ATTEMPTS)\n"
"      --backoff-ms MS           first retry delay, doubled per try [500]\n"
"      --http-timeout MS         timeout of one HTTP request [15000]\n"
"      --max-rps N               at most N requests a second to YouTube,\n"
"                                0 = no cap [0] (YTK_MAX_RPS)\n"
"      --refresh-after SECONDS   reuse a stored ok/unavailable row younger\n"
"                                than this instead of fetching, 0 = always\n"
"                                fetch [3600]         (YTK_REFRESH_AFTER)\n"
"      --fetch-memory MIB        page bodies held at once, MiB\n"
"                                [2 x concurrency, at least 32]\n"
"Running:\n"
"      --shutdown-timeout MS     grace for in-flight work on SIGTERM [10000]\n"
"      --metrics ADDR:PORT       Prometheus /metrics here, e.g. 127.0.0.1:9464,\n"
"                                [::1]:9464, :9464 [off]     (YTK_METRICS)\n"
"      --no-fetch                parse and commit only, fetch nothing\n"
"  -c, --count N                 exit after N messages are finished\n"
"  -e, --exit-eof                exit when every partition is at its end\n"
"  -v, --verbose                 more logging (stderr)\n"
"  -q, --quiet                   errors only\n"
"  -h, --help                    this text\n"
"  -V, --version                 print the version\n"
"Offline:\n"
"      --parse-watch FILE [--parse-oembed FILE] [--video-id ID]\n"
"                                print the live record for saved answers\n"
"                                (outcome on stderr) and exit\n"
"\n"
"Results: one JSON line per video on stdout. Logs: stderr.\n");
}

static int bad_usage(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

static int bad_usage(const char *fmt, ...)
{
    va_list ap;

    fputs("ytkafka-consumer: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\nTry 'ytkafka-consumer --help'.\n", stderr);
    return 1;
}

/* 1 and a value in [lo, hi], or 0 */
static int parse_int(const char *s, long lo, long hi, long *out)
{
    char *end;
    long v;

    if (!s || !*s) {
        return 0;
    }
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || *end || v < lo || v > hi) {
        return 0;
    }
    *out = v;
    return 1;
}

/* check one property against a throwaway conf so mistakes show at start */
static int check_prop(const char *name, const char *value, char *err,
                      size_t errlen)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_res_t res;

    res = rd_kafka_conf_set(conf, name, value, err, errlen);
    rd_kafka_conf_destroy(conf);
    return res == RD_KAFKA_CONF_OK;
}

static int add_prop(ytc_config *cfg, apr_pool_t *p, const char *spec,
                    const char *origin)
{
    const char *eq = strchr(spec, '=');
    ytc_prop *prop;
    char err[512];

    if (!eq || eq == spec) {
        fprintf(stderr, "ytkafka-consumer: %s: expected PROP=VALUE, got '%s'\n",
                origin, spec);
        return 0;
    }
    prop = apr_array_push(cfg->props);
    prop->name = apr_pstrmemdup(p, spec, (apr_size_t)(eq - spec));
    prop->value = apr_pstrdup(p, eq + 1);
    prop->origin = origin;
    if (!check_prop(prop->name, prop->value, err, sizeof(err))) {
        fprintf(stderr, "ytkafka-consumer: %s: %s\n", origin, err);
        return 0;
    }
    return 1;
}

static int read_config_file(ytc_config *cfg, apr_pool_t *p, const char *path)
{
    FILE *fp = fopen(path, "r");
    char line[8192];
    int lineno = 0;

    if (!fp) {
        fprintf(stderr, "ytkafka-consumer: %s: %s\n", path, strerror(errno));
        return 0;
    }
    while (fgets(line, sizeof(line), fp)) {
        char *s = line, *e;
        const char *origin;

        lineno++;
        origin = apr_psprintf(p, "%s:%d", path, lineno);
        e = s + strlen(s);
        if (e > s && e[-1] != '\n' && !feof(fp)) {
            fprintf(stderr, "ytkafka-consumer: %s: line too long\n", origin);
            fclose(fp);
            return 0;
        }
        while (*s == ' ' || *s == '\t') {
            s++;
        }
        while (e > s && (e[-1] == '\n' || e[-1] == '\r' || e[-1] == ' '
                         || e[-1] == '\t')) {
            *--e = '\0';
        }
        if (!*s || *s == '#') {
            continue;
        }
        if (!add_prop(cfg, p, s, origin)) {
            fclose(fp);
            return 0;
        }
    }
    fclose(fp);
    return 1;
}

static const char *env(const char *name)
{
    const char *v = getenv(name);
    return (v && *v) ? v : NULL;
}

static int env_int(const char *name, long lo, long hi, int *out)
{
    const char *v = env(name);
    long n;

    if (!v) {
        return 1;
    }
    if (!parse_int(v, lo, hi, &n)) {
        fprintf(stderr, "ytkafka-consumer: %s: not a number in [%ld, %ld]: "
                "'%s'\n", name, lo, hi, v);
        return 0;
    }
    *out = (int)n;
    return 1;
}

int ytc_config_parse(ytc_config *cfg, apr_pool_t *p, int argc, char **argv)
{
    int c, verbosity = YTC_LOG_INFO;
    int set_conc = 0, set_att = 0, set_rps = 0, set_refresh = 0;
    long n;

    memset(cfg, 0, sizeof(*cfg));
    cfg->topics = apr_array_make(p, 4, sizeof(const char *));
    cfg->props = apr_array_make(p, 8, sizeof(ytc_prop));
    cfg->concurrency = 16;
    cfg->max_attempts = 5;
    cfg->backoff_ms = 500;
    cfg->backoff_max_ms = 60000;
    cfg->http_timeout_ms = 15000;
    cfg->shutdown_timeout_ms = 10000;
    cfg->refresh_after = 3600;

    optind = 1;
    while ((c = getopt_long(argc, argv, short_opts, long_opts, NULL)) != -1) {
        switch (c) {
        case 'b':
            cfg->brokers = optarg;
            break;
        case 'G':
            cfg->group = optarg;
            break;
        case 't':
            if (!*optarg) {
                return bad_usage("empty topic name");
            }
            APR_ARRAY_PUSH(cfg->topics, const char *) = optarg;
            break;
        case 'X':
            if (!add_prop(cfg, p, optarg, "-X")) {
                return 1;
            }
            break;
        case 'F':
            if (!read_config_file(cfg, p, optarg)) {
                return 1;
            }
            break;
        case 'c':
            if (!parse_int(optarg, 1, 1L << 40, &n)) {
                return bad_usage("-c: not a positive number: '%s'", optarg);
            }
            cfg->count = n;
            break;
        case 'e':
            cfg->exit_eof = 1;
            break;
        case 'v':
            verbosity++;
            break;
        case 'q':
            verbosity = YTC_LOG_ERR;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("ytkafka-consumer %s (librdkafka %s)\n", PACKAGE_VERSION,
                   rd_kafka_version_str());
            return 0;
        case OPT_DB:
            cfg->db = optarg;
            break;
        case OPT_RESULTS_TOPIC:
            cfg->results_topic = optarg;
            break;
        case OPT_DLQ_TOPIC:
            cfg->dlq_topic = optarg;
            break;
        case OPT_YOUTUBE_URL:
            cfg->youtube_url = optarg;
            break;
        case OPT_CONCURRENCY:
            if (!parse_int(optarg, 1, 4096, &n)) {
                return bad_usage("--concurrency: expected 1..4096, got '%s'",
                                 optarg);
            }
            cfg->concurrency = (int)n;
            set_conc = 1;
            break;
        case OPT_MAX_ATTEMPTS:
            if (!parse_int(optarg, 1, 1000, &n)) {
                return bad_usage("--max-attempts: expected 1..1000, got '%s'",
                                 optarg);
            }
            cfg->max_attempts = (int)n;
            set_att = 1;
            break;
        case OPT_BACKOFF_MS:
            if (!parse_int(optarg, 0, 3600000, &n)) {
                return bad_usage("--backoff-ms: bad value '%s'", optarg);
            }
            cfg->backoff_ms = (int)n;
            break;
        case OPT_HTTP_TIMEOUT:
            if (!parse_int(optarg, 1, 3600000, &n)) {
                return bad_usage("--http-timeout: bad value '%s'", optarg);
            }
            cfg->http_timeout_ms = (int)n;
            break;
        case OPT_SHUTDOWN_TIMEOUT:
            if (!parse_int(optarg, 0, 3600000, &n)) {
                return bad_usage("--shutdown-timeout: bad value '%s'", optarg);
            }
            cfg->shutdown_timeout_ms = (int)n;
            break;
        case OPT_NO_FETCH:
            cfg->no_fetch = 1;
            break;
        case OPT_PARSE_WATCH:
            cfg->parse_watch = optarg;
            break;
        case OPT_PARSE_OEMBED:
            cfg->parse_oembed = optarg;
            break;
        case OPT_MAX_RPS:
            if (!parse_int(optarg, 0, 100000, &n)) {
                return bad_usage("--max-rps: expected 0..100000, got '%s'",
                                 optarg);
            }
            cfg->max_rps = (int)n;
            set_rps = 1;
            break;
        case OPT_VIDEO_ID:
            cfg->video_id = optarg;
            break;
        case OPT_METRICS:
            cfg->metrics = optarg;
            break;
        case OPT_REFRESH_AFTER:
            if (!parse_int(optarg, 0, 100L * 365 * 86400, &n)) {
                return bad_usage("--refresh-after: expected seconds "
                                 "0..%ld, got '%s'", 100L * 365 * 86400,
                                 optarg);
            }
            cfg->refresh_after = (int)n;
            set_refresh = 1;
            break;
        case OPT_FETCH_MEMORY:
            if (!parse_int(optarg, 9, 65536, &n)) {
                return bad_usage("--fetch-memory: expected 9..65536 (MiB), "
                                 "got '%s'", optarg);
            }
            cfg->fetch_memory_mb = (int)n;
            break;
        default:
            fputs("Try 'ytkafka-consumer --help'.\n", stderr);
            return 1;
        }
    }
    if (optind < argc) {
        return bad_usage("unexpected argument '%s'", argv[optind]);
    }
    ytc_log_level = verbosity;

    /* the environment fills what the flags left unset */
    if (!cfg->brokers) {
        cfg->brokers = env("KAFKA_BROKERS");
    }
    if (!cfg->group) {
        cfg->group = env("YTK_GROUP");
    }
    if (!cfg->group) {
        cfg->group = "youtube-extractor";
    }
    if (cfg->topics->nelts == 0 && env("YTK_TOPICS")) {
        char *list = apr_pstrdup(p, env("YTK_TOPICS")), *last, *t;
        for (t = apr_strtok(list, ", ", &last); t;
             t = apr_strtok(NULL, ", ", &last)) {
            APR_ARRAY_PUSH(cfg->topics, const char *) = t;
        }
    }
    if (cfg->topics->nelts == 0) {
        APR_ARRAY_PUSH(cfg->topics, const char *) = "youtube-links";
    }
    if (!cfg->db) {
        cfg->db = env("YTK_DB");
    }
    if (!cfg->db) {
        cfg->db = "sqlite3:ytkafka.db";
    }
    if (!cfg->results_topic) {
        cfg->results_topic = env("YTK_RESULTS_TOPIC");
    }
    if (!cfg->dlq_topic) {
        cfg->dlq_topic = env("YTK_DLQ_TOPIC");
    }
    if (!cfg->youtube_url) {
        cfg->youtube_url = env("YTK_YOUTUBE_URL");
    }
    if (!cfg->youtube_url) {
        cfg->youtube_url = "https://www.youtube.com";
    }
    if ((!set_conc && !env_int("YTK_CONCURRENCY", 1, 4096, &cfg->concurrency))
        || (!set_att
            && !env_int("YTK_MAX_ATTEMPTS", 1, 1000, &cfg->max_attempts))
        || (!set_rps
            && !env_int("YTK_MAX_RPS", 0, 100000, &cfg->max_rps))
        || (!set_refresh
            && !env_int("YTK_REFRESH_AFTER", 0, 100L * 365 * 86400,
                        &cfg->refresh_after))) {
        return 1;
    }

    if (!cfg->metrics) {
        cfg->metrics = env("YTK_METRICS");
    }
    if (cfg->metrics) {
        char err[256];
        if (ytc_metrics_check_listen(cfg->metrics, err, sizeof(err)) != 0) {
            return bad_usage("--metrics: %s", err);
        }
    }

    if (strlen(cfg->youtube_url) > 512) {
        return bad_usage("--youtube-url: longer than 512 bytes");
    }
    if (strncmp(cfg->youtube_url, "https://", 8) != 0
        && strncmp(cfg->youtube_url, "http://", 7) != 0) {
        return bad_usage("--youtube-url: must start with https:// or "
                         "http://, got '%s'", cfg->youtube_url);
    }
    {
        char *u = apr_pstrdup(p, cfg->youtube_url);
        size_t len = strlen(u);
        while (len > 0 && u[len - 1] == '/') {
            u[--len] = '\0';
        }
        cfg->youtube_url = u;
    }
    if (strcmp(cfg->db, "none") != 0 && strncmp(cfg->db, "sqlite3:", 8) != 0
        && strncmp(cfg->db, "pgsql:", 6) != 0) {
        return bad_usage("--db: expected sqlite3:PATH, pgsql:CONNINFO or "
                         "none, got '%s'", cfg->db);
    }
    if (!cfg->parse_watch && !cfg->brokers) {
        int i, have = 0;
        for (i = 0; i < cfg->props->nelts; i++) {
            const ytc_prop *pr = &APR_ARRAY_IDX(cfg->props, i, ytc_prop);
            if (!strcmp(pr->name, "bootstrap.servers")
                || !strcmp(pr->name, "metadata.broker.list")) {
                have = 1;
            }
        }
        if (!have) {
            return bad_usage("no brokers: use -b, KAFKA_BROKERS or "
                             "-X bootstrap.servers=...");
        }
    }
    return -1;
}

const char *ytc_config_dlq_topic(const ytc_config *cfg, apr_pool_t *p,
                                 const char *topic)
{
    if (cfg->dlq_topic) {
        return cfg->dlq_topic;
    }
    return apr_pstrcat(p, topic, ".dlq", NULL);
}
