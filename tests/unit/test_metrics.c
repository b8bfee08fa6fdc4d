/* Unit tests for consumer/ytc_metrics: the exposition text, the lag table
 * fed from librdkafka statistics, and the --metrics address check. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ytc_metrics.h"

static char *render(void)
{
    size_t len = 0;
    char *t = ytc_metrics_render(&len);

    assert_non_null(t);
    assert_int_equal(strlen(t), len);
    assert_true(len > 0 && t[len - 1] == '\n');
    return t;
}

/* @a line is a whole line of @a text */
static int has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    const char *p = text;

    while ((p = strstr(p, line)) != NULL) {
        if ((p == text || p[-1] == '\n') && p[n] == '\n') {
            return 1;
        }
        p += n;
    }
    return 0;
}

#define ASSERT_LINE(text, line) \
    do { \
        if (!has_line(text, line)) { \
            fail_msg("missing line: %s\n%s", line, text); \
        } \
    } while (0)

static int setup(void **state)
{
    (void)state;
    ytc_metrics_reset();
    return 0;
}

static void test_counters_and_gauges(void **state)
{
    char *t;

    (void)state;
    ytc_metrics_add(YTC_M_MESSAGES, 3);
    ytc_metrics_add(YTC_M_MESSAGES, 4);
    ytc_metrics_result("ok");
    ytc_metrics_result("ok");
    ytc_metrics_result("unavailable");
    ytc_metrics_result("error");
    ytc_metrics_result(NULL);
    ytc_metrics_add(YTC_M_RETRIES, 2);
    ytc_metrics_add(YTC_M_DLQ, 1);
    ytc_metrics_add(YTC_M__COUNTERS, 1);         /* ignored */
    ytc_metrics_set(YTC_G_JOBS, 12);
    ytc_metrics_set(YTC_G_OUTAGE_DATABASE, 1);
    ytc_metrics_set(YTC_G_PARTITIONS_PAUSED, -0);
    t = render();
    ASSERT_LINE(t, "# HELP ytkafka_consumer_messages_total Kafka messages "
                "taken in.");
    ASSERT_LINE(t, "# TYPE ytkafka_consumer_messages_total counter");
    ASSERT_LINE(t, "ytkafka_consumer_messages_total 7");
    ASSERT_LINE(t, "ytkafka_consumer_results_total{status=\"ok\"} 2");
    ASSERT_LINE(t, "ytkafka_consumer_results_total{status=\"unavailable\"} 1");
    ASSERT_LINE(t, "ytkafka_consumer_results_total{status=\"error\"} 2");
    ASSERT_LINE(t, "ytkafka_consumer_retries_total 2");
    ASSERT_LINE(t, "ytkafka_consumer_dlq_records_total 1");
    ASSERT_LINE(t, "# TYPE ytkafka_consumer_jobs gauge");
    ASSERT_LINE(t, "ytkafka_consumer_jobs 12");
    ASSERT_LINE(t, "ytkafka_consumer_dependency_outage"
                "{dependency=\"database\"} 1");
    ASSERT_LINE(t, "ytkafka_consumer_dependency_outage"
                "{dependency=\"youtube\"} 0");
    ASSERT_LINE(t, "ytkafka_consumer_partitions_paused 0");
    free(t);
}

static void test_histogram(void **state)
{
    char *t;

    (void)state;
    ytc_metrics_fetch_done(200, 10000);
    ytc_metrics_fetch_done(503, 300000);
    ytc_metrics_fetch_done(0, 100000000);
    ytc_metrics_fetch_done(429, 50000);      /* on a bound: le is inclusive */
    ytc_metrics_observe_fetch(-1);           /* clamped to 0 */
    t = render();
    ASSERT_LINE(t, "# TYPE ytkafka_consumer_fetch_duration_seconds histogram");
    ASSERT_LINE(t, "ytkafka_consumer_fetch_duration_seconds_bucket"
                "{le=\"0.05\"} 3");
    ASSERT_LINE(t, "ytkafka_consumer_fetch_duration_seconds_bucket"
                "{le=\"0.25\"} 3");
    ASSERT_LINE(t, "ytkafka_consumer_fetch_duration_seconds_bucket"
                "{le=\"0.5\"} 4");
    ASSERT_LINE(t, "ytkafka_consumer_fetch_duration_seconds_bucket"
                "{le=\"30\"} 4");
    ASSERT_LINE(t, "ytkafka_consumer_fetch_duration_seconds_bucket"
                "{le=\"+Inf\"} 5");
    ASSERT_LINE(t, "ytkafka_consumer_fetch_duration_seconds_count 5");
    ASSERT_LINE(t, "ytkafka_consumer_fetch_duration_seconds_sum 100.360000");
    ASSERT_LINE(t, "ytkafka_consumer_fetches_total 4");
    ASSERT_LINE(t, "ytkafka_consumer_fetch_failures_total 3");
    free(t);
}

static void test_lag_table(void **state)
{
    char *t, topic[32];
    int i;

    (void)state;
    ytc_metrics_lag("links", 0, 5);
    ytc_metrics_lag("links", 1, 9);
    ytc_metrics_lag("links", 1, 2);          /* replaces */
    ytc_metrics_lag("a\"b\\c\nd", 3, 1);     /* escaped */
    ytc_metrics_lag("links", 0, -1);         /* forgets */
    t = render();
    ASSERT_LINE(t, "ytkafka_consumer_partition_lag_messages"
                "{topic=\"links\",partition=\"1\"} 2");
    ASSERT_LINE(t, "ytkafka_consumer_partition_lag_messages"
                "{topic=\"a\\\"b\\\\c\\nd\",partition=\"3\"} 1");
    assert_null(strstr(t, "partition=\"0\""));
    free(t);

    for (i = 0; i < YTC_METRICS_MAX_PARTITIONS + 10; i++) {
        snprintf(topic, sizeof(topic), "t%d", i);
        ytc_metrics_lag(topic, i, 1);
    }
    t = render();
    ASSERT_LINE(t, "ytkafka_consumer_partition_lag_dropped_total 12");
    free(t);
}

static const char stats1[] =
    "{\"name\":\"c#consumer-1\",\"type\":\"consumer\",\"topics\":{"
    "\"links\":{\"topic\":\"links\",\"partitions\":{"
    "\"0\":{\"partition\":0,\"desired\":true,\"consumer_lag\":7,"
    "\"consumer_lag_stored\":5},"
    "\"1\":{\"partition\":1,\"desired\":true,\"consumer_lag\":4,"
    "\"consumer_lag_stored\":-1},"
    "\"2\":{\"partition\":2,\"desired\":false,\"consumer_lag\":3,"
    "\"consumer_lag_stored\":3},"
    "\"3\":{\"partition\":3,\"desired\":true,\"consumer_lag\":-1,"
    "\"consumer_lag_stored\":-1},"
    "\"-1\":{\"partition\":-1,\"desired\":false}}},"
    "\"other\":{\"partitions\":{"
    "\"0\":{\"partition\":0,\"desired\":true,\"consumer_lag\":0}}}}}";

static const char stats2[] =
    "{\"topics\":{\"links\":{\"partitions\":{"
    "\"1\":{\"partition\":1,\"desired\":true,\"consumer_lag_stored\":0}}}}}";

static void test_kafka_stats(void **state)
{
    char *t;

    (void)state;
    assert_int_equal(ytc_metrics_kafka_stats(stats1, sizeof(stats1) - 1), 0);
    t = render();
    ASSERT_LINE(t, "ytkafka_consumer_partition_lag_messages"
                "{topic=\"links\",partition=\"0\"} 5");
    ASSERT_LINE(t, "ytkafka_consumer_partition_lag_messages"
                "{topic=\"links\",partition=\"1\"} 4");
    ASSERT_LINE(t, "ytkafka_consumer_partition_lag_messages"
                "{topic=\"other\",partition=\"0\"} 0");
    assert_null(strstr(t, "partition=\"2\""));
    assert_null(strstr(t, "partition=\"3\""));
    assert_null(strstr(t, "partition=\"-1\""));
    free(t);

    /* a later document replaces the table: revoked partitions go away */
    assert_int_equal(ytc_metrics_kafka_stats(stats2, sizeof(stats2) - 1), 0);
    t = render();
    ASSERT_LINE(t, "ytkafka_consumer_partition_lag_messages"
                "{topic=\"links\",partition=\"1\"} 0");
    assert_null(strstr(t, "partition=\"0\""));
    free(t);

    /* not a statistics document: nothing changes */
    assert_int_equal(ytc_metrics_kafka_stats("{\"topics\":[", 11), -1);
    assert_int_equal(ytc_metrics_kafka_stats("[1]", 3), -1);
    t = render();
    ASSERT_LINE(t, "ytkafka_consumer_partition_lag_messages"
                "{topic=\"links\",partition=\"1\"} 0");
    free(t);
}

/* every family: HELP, then TYPE, then samples of its name only */
static void test_shape(void **state)
{
    char *t, *line, *save = NULL;
    char family[128] = "";
    int helps = 0, types = 0;

    (void)state;
    ytc_metrics_lag("links", 0, 1);
    t = render();
    for (line = strtok_r(t, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        if (!strncmp(line, "# HELP ", 7)) {
            const char *sp = strchr(line + 7, ' ');
            assert_non_null(sp);
            assert_true(!strncmp(line + 7, "ytkafka_consumer_", 17));
            snprintf(family, sizeof(family), "%.*s", (int)(sp - line - 7),
                     line + 7);
            helps++;
        }
        else if (!strncmp(line, "# TYPE ", 7)) {
            assert_true(!strncmp(line + 7, family, strlen(family)));
            if (strstr(line, " counter")) {
                size_t n = strlen(family);
                assert_true(n > 6 && !strcmp(family + n - 6, "_total"));
            }
            types++;
        }
        else {
            assert_true(family[0]);
            assert_true(!strncmp(line, family, strlen(family)));
        }
    }
    assert_int_equal(helps, types);
    assert_int_equal(helps, 19);   /* README "Metrics" lists every one */
    free(t);
}

static void test_check_listen(void **state)
{
    static const char *const good[] = {
        "127.0.0.1:9464", "0.0.0.0:1", ":65535", "[::1]:9464", "[::]:80",
        "[fe80::1]:9464", NULL
    };
    static const char *const bad[] = {
        "", "9464", ":", "127.0.0.1", "127.0.0.1:", "127.0.0.1:0",
        "127.0.0.1:65536", "127.0.0.1: 80", "127.0.0.1:+80", "127.0.0.1:-1",
        "127.0.0.1:80x", "localhost:80", "::1:80", "[::1]", "[::1]80",
        "[]:80", "[127.0.0.1]:80", "1.2.3:80", "256.0.0.1:80", NULL
    };
    char err[256];
    int i;

    (void)state;
    for (i = 0; good[i]; i++) {
        err[0] = '\0';
        if (ytc_metrics_check_listen(good[i], err, sizeof(err)) != 0) {
            fail_msg("'%s' refused: %s", good[i], err);
        }
    }
    for (i = 0; bad[i]; i++) {
        err[0] = '\0';
        if (ytc_metrics_check_listen(bad[i], err, sizeof(err)) != -1) {
            fail_msg("'%s' accepted", bad[i]);
        }
        assert_true(err[0] != '\0');
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_counters_and_gauges, setup),
        cmocka_unit_test_setup(test_histogram, setup),
        cmocka_unit_test_setup(test_lag_table, setup),
        cmocka_unit_test_setup(test_kafka_stats, setup),
        cmocka_unit_test_setup(test_shape, setup),
        cmocka_unit_test_setup(test_check_listen, setup),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
