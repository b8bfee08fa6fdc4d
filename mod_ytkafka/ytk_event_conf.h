/**
 * @file ytk_event_conf.h
 * @brief The directives of the ytkafka-produce handler: where a record's
 *        key, topic and headers come from, and which fields it must have.
 *
 * Kept apart from ytk_config.c: the directory config holds one pointer to
 * this (NULL while none of these directives is used), and the directive
 * table includes YTK_EVENT_CMDS.
 */
#ifndef YTK_EVENT_CONF_H
#define YTK_EVENT_CONF_H

#include <apr_tables.h>
#include <httpd.h>
#include <http_config.h>

/** The JSON type a YtKafkaRequireField asks for. */
typedef enum {
    YTK_JT_ANY = 0,
    YTK_JT_STRING,
    YTK_JT_NUMBER,
    YTK_JT_BOOLEAN,
    YTK_JT_OBJECT,
    YTK_JT_ARRAY
} ytk_jtype;

/** One YtKafkaRequireField. */
typedef struct {
    const char *name;
    ytk_jtype type;
} ytk_req_field;

/** One YtKafkaHeaderFromRequest. */
typedef struct {
    const char *http;       /**< request header name */
    const char *kafka;      /**< record header name */
} ytk_hdr_copy;

/** The ytkafka-produce settings of a directory. */
typedef struct ytk_event_conf {
    const char *key_field;              /**< YtKafkaKeyField, NULL = none */
    const char *topic_field;            /**< YtKafkaTopicField, NULL = none */
    apr_array_header_t *allow_topics;   /**< of const char *, NULL = unset */
    apr_array_header_t *require;        /**< of ytk_req_field, NULL = unset */
    apr_array_header_t *headers;        /**< of ytk_hdr_copy, NULL = unset */
} ytk_event_conf;

const char *ytk_set_key_field(cmd_parms *cmd, void *dconf, const char *arg);
const char *ytk_set_topic_field(cmd_parms *cmd, void *dconf,
                                const char *arg);
const char *ytk_add_allow_topic(cmd_parms *cmd, void *dconf,
                                const char *arg);
const char *ytk_add_require_field(cmd_parms *cmd, void *dconf,
                                  const char *name, const char *type);
const char *ytk_add_header_copy(cmd_parms *cmd, void *dconf,
                                const char *http, const char *kafka);

/** The directive table entries, for ytk_cmds. */
#define YTK_EVENT_CMDS \
    AP_INIT_TAKE1("YtKafkaKeyField", ytk_set_key_field, NULL, \
                  RSRC_CONF | ACCESS_CONF, \
                  "ytkafka-produce: the top-level field the key comes from"), \
    AP_INIT_TAKE1("YtKafkaTopicField", ytk_set_topic_field, NULL, \
                  RSRC_CONF | ACCESS_CONF, \
                  "ytkafka-produce: the top-level field naming the topic " \
                  "(only topics listed by YtKafkaAllowTopic)"), \
    AP_INIT_ITERATE("YtKafkaAllowTopic", ytk_add_allow_topic, NULL, \
                    RSRC_CONF | ACCESS_CONF, \
                    "ytkafka-produce: topics YtKafkaTopicField may name"), \
    AP_INIT_TAKE12("YtKafkaRequireField", ytk_add_require_field, NULL, \
                   RSRC_CONF | ACCESS_CONF, \
                   "ytkafka-produce: a field every record must have: name " \
                   "[string|number|boolean|object|array]"), \
    AP_INIT_TAKE12("YtKafkaHeaderFromRequest", ytk_add_header_copy, NULL, \
                   RSRC_CONF | ACCESS_CONF, \
                   "ytkafka-produce: copy a request header to the record: " \
                   "X-Name [kafka-name]")

/** Merge two (possibly NULL) settings: set values of @a add win. */
ytk_event_conf *ytk_event_conf_merge(apr_pool_t *p, ytk_event_conf *base,
                                     ytk_event_conf *add);

/**
 * check_config: every YtKafkaTopicField must have a YtKafkaAllowTopic in
 * its section or an enclosing one. Logs the directive and its place.
 * @return OK or !OK
 */
int ytk_event_conf_check(apr_pool_t *ptemp, const ap_directive_t *tree);

/** The JSON type name of @a t, e.g. "string". */
const char *ytk_jtype_name(ytk_jtype t);

#endif /* YTK_EVENT_CONF_H */
