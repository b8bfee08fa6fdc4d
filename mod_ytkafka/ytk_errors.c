/* mod_ytkafka: failure classes and the librdkafka error -> HTTP mapper. */
#include "ytk_errors.h"

static const ytk_err_map map_ok = {
    201, YTK_FAIL_NONE, "ok", "delivered", 0 };
static const ytk_err_map map_queue_full = {
    503, YTK_FAIL_QUEUE_FULL, "queue_full",
    "the producer queue is full, retry later", 1 };
static const ytk_err_map map_down = {
    503, YTK_FAIL_BROKERS_DOWN, "brokers_down",
    "no Kafka broker is reachable, retry later", 5 };
static const ytk_err_map map_timeout = {
    504, YTK_FAIL_TIMED_OUT, "timed_out",
    "Kafka did not acknowledge the message in time, outcome unknown", 0 };
static const ytk_err_map map_too_large = {
    413, YTK_FAIL_TOO_LARGE, "message_too_large",
    "the message is larger than Kafka accepts", 0 };
static const ytk_err_map map_unknown_topic = {
    503, YTK_FAIL_UNKNOWN_TOPIC, "unknown_topic",
    "the Kafka topic does not exist or has no leader", 5 };
static const ytk_err_map map_not_authorized = {
    500, YTK_FAIL_NOT_AUTHORIZED, "not_authorized",
    "Kafka refused the producer access to the topic", 0 };
static const ytk_err_map map_purged = {
    503, YTK_FAIL_PURGED, "purged",
    "the message was purged at shutdown", 1 };
static const ytk_err_map map_fatal = {
    503, YTK_FAIL_FATAL, "producer_failed",
    "the Kafka producer of this server process failed", 5 };
static const ytk_err_map map_shutdown = {
    503, YTK_FAIL_SHUTDOWN, "shutting_down",
    "the server process is shutting down", 1 };
static const ytk_err_map map_kafka = {
    503, YTK_FAIL_KAFKA, "kafka_error", "Kafka refused the message", 1 };
static const ytk_err_map map_no_producer = {
    503, YTK_FAIL_NOT_CONFIGURED, "no_producer",
    "no Kafka producer is available in this server process", 5 };

const ytk_err_map *ytk_err_map_get(rd_kafka_resp_err_t err)
{
    switch (err) {
    case RD_KAFKA_RESP_ERR_NO_ERROR:
        return &map_ok;
    case RD_KAFKA_RESP_ERR__QUEUE_FULL:
        return &map_queue_full;
    case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
    case RD_KAFKA_RESP_ERR__TRANSPORT:
    case RD_KAFKA_RESP_ERR__RESOLVE:
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS:
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND:
    case RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION:
        return &map_down;
    case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
        return &map_timeout;
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
        return &map_too_large;
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
        return &map_unknown_topic;
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR__AUTHENTICATION:
        return &map_not_authorized;
    case RD_KAFKA_RESP_ERR__PURGE_QUEUE:
    case RD_KAFKA_RESP_ERR__PURGE_INFLIGHT:
        return &map_purged;
    case RD_KAFKA_RESP_ERR__FATAL:
        return &map_fatal;
    case RD_KAFKA_RESP_ERR__DESTROY:
        return &map_shutdown;
    default:
        return &map_kafka;
    }
}

const char *ytk_fail_code(ytk_fail_class c)
{
    static const char *const codes[YTK_FAIL__COUNT] = {
        "none", "queue_full", "brokers_down", "timed_out",
        "message_too_large", "unknown_topic", "not_authorized", "purged",
        "producer_failed", "shutting_down", "no_producer", "kafka_error",
    };

    return (c >= 0 && c < YTK_FAIL__COUNT) ? codes[c] : "unknown";
}

const ytk_err_map *ytk_err_map_no_producer(void)
{
    return &map_no_producer;
}
