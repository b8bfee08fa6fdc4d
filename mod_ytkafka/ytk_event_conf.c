/* mod_ytkafka: the directives of the ytkafka-produce handler. */
#include <strings.h>

#include <apr_strings.h>
#include <apr_lib.h>

#include <httpd.h>
#include <http_config.h>
#include <http_log.h>

#include "ytk_private.h"
#include "ytk_config.h"
#include "ytk_event_conf.h"

static const char *const jtype_names[] = {
    "any", "string", "number", "boolean", "object", "array"
};

const char *ytk_jtype_name(ytk_jtype t)
{
    return (t >= YTK_JT_ANY && t <= YTK_JT_ARRAY) ? jtype_names[t] : "any";
}

static ytk_event_conf *event_conf(cmd_parms *cmd, void *dconf)
{
    ytk_dir_conf *dc = dconf;

    if (!dc->events) {
        dc->events = apr_pcalloc(cmd->pool, sizeof(*dc->events));
    }
    return dc->events;
}

/* A top-level member name: any non-empty string without control bytes. */
static const char *field_name(cmd_parms *cmd, const char *arg)
{
    const char *p;

    if (!*arg || strlen(arg) > 255) {
        return apr_psprintf(cmd->pool, "%s: needs a field name of 1 to 255 "
                            "bytes, got '%s'", cmd->cmd->name, arg);
    }
    for (p = arg; *p; ++p) {
        if ((unsigned char)*p < 0x20) {
            return apr_psprintf(cmd->pool, "%s: a field name has no control "
                                "characters", cmd->cmd->name);
        }
    }
    return NULL;
}

const char *ytk_set_key_field(cmd_parms *cmd, void *dconf, const char *arg)
{
    const char *err = field_name(cmd, arg);

    if (!err) {
        event_conf(cmd, dconf)->key_field = arg;
    }
    return err;
}

const char *ytk_set_topic_field(cmd_parms *cmd, void *dconf, const char *arg)
{
    const char *err = field_name(cmd, arg);

    if (!err) {
        event_conf(cmd, dconf)->topic_field = arg;
    }
    return err;
}

const char *ytk_add_allow_topic(cmd_parms *cmd, void *dconf, const char *arg)
{
    ytk_event_conf *ec = event_conf(cmd, dconf);

    if (!ytk_topic_name_ok(arg)) {
        return apr_psprintf(cmd->pool, "%s: needs Kafka topic names "
                            "([A-Za-z0-9._-], 1 to 249), got '%s'",
                            cmd->cmd->name, arg);
    }
    if (!ec->allow_topics) {
        ec->allow_topics = apr_array_make(cmd->pool, 4, sizeof(char *));
    }
    APR_ARRAY_PUSH(ec->allow_topics, const char *) = arg;
    return NULL;
}

const char *ytk_add_require_field(cmd_parms *cmd, void *dconf,
                                  const char *name, const char *type)
{
    ytk_event_conf *ec = event_conf(cmd, dconf);
    const char *err = field_name(cmd, name);
    ytk_req_field *f;
    int t = YTK_JT_ANY;

    if (err) {
        return err;
    }
    if (type) {
        for (t = YTK_JT_STRING; t <= YTK_JT_ARRAY; ++t) {
            if (!strcasecmp(type, jtype_names[t])) {
                break;
            }
        }
        if (t > YTK_JT_ARRAY) {
            return apr_psprintf(cmd->pool, "%s: the type must be string, "
                                "number, boolean, object or array, got '%s'",
                                cmd->cmd->name, type);
        }
    }
    if (!ec->require) {
        ec->require = apr_array_make(cmd->pool, 4, sizeof(ytk_req_field));
    }
    f = apr_array_push(ec->require);
    f->name = name;
    f->type = (ytk_jtype)t;
    return NULL;
}

static int token_ok(const char *s)
{
    if (!*s) {
        return 0;
    }
    for (; *s; ++s) {
        if (!apr_isalnum(*s) && !strchr("!#$%&'*+-.^_`|~", *s)) {
            return 0;
        }
    }
    return 1;
}

const char *ytk_add_header_copy(cmd_parms *cmd, void *dconf,
                                const char *http, const char *kafka)
{
    ytk_event_conf *ec = event_conf(cmd, dconf);
    ytk_hdr_copy *h;

    if (!token_ok(http)) {
        return apr_psprintf(cmd->pool, "%s: needs an HTTP header name, got "
                            "'%s'", cmd->cmd->name, http);
    }
    if (kafka && (!*kafka || strlen(kafka) > 255)) {
        return apr_psprintf(cmd->pool, "%s: the Kafka header name must have "
                            "1 to 255 bytes", cmd->cmd->name);
    }
    if (kafka && (!strcasecmp(kafka, "request-id")
                  || !strcasecmp(kafka, "content-type"))) {
        return apr_psprintf(cmd->pool, "%s: '%s' is set by the module "
                            "itself", cmd->cmd->name, kafka);
    }
    if (!ec->headers) {
        ec->headers = apr_array_make(cmd->pool, 4, sizeof(ytk_hdr_copy));
    }
    h = apr_array_push(ec->headers);
    h->http = http;
    h->kafka = kafka ? kafka : apr_pstrdup(cmd->pool, http);
    if (!kafka) {
        char *k = (char *)h->kafka;

        ap_str_tolower(k);
        if (!strcmp(k, "request-id") || !strcmp(k, "content-type")) {
            return apr_psprintf(cmd->pool, "%s: '%s' is set by the module "
                                "itself", cmd->cmd->name, k);
        }
    }
    return NULL;
}

#define YTK_PICK(n, b, a, field) \
    (n)->field = ((a) && (a)->field) ? (a)->field : ((b) ? (b)->field : NULL)

ytk_event_conf *ytk_event_conf_merge(apr_pool_t *p, ytk_event_conf *base,
                                     ytk_event_conf *add)
{
    ytk_event_conf *n;

    if (!base || !add) {
        return add ? add : base;
    }
    n = apr_pcalloc(p, sizeof(*n));
    YTK_PICK(n, base, add, key_field);
    YTK_PICK(n, base, add, topic_field);
    YTK_PICK(n, base, add, allow_topics);
    YTK_PICK(n, base, add, require);
    YTK_PICK(n, base, add, headers);
    return n;
}

/* Is there a YtKafkaAllowTopic among @a d's siblings or its ancestors'? */
static int allow_in_scope(const ap_directive_t *d)
{
    const ap_directive_t *level, *x;

    for (level = d; level; level = level->parent) {
        x = level->parent ? level->parent->first_child : ap_conftree;
        for (; x; x = x->next) {
            if (!strcasecmp(x->directive, "YtKafkaAllowTopic")) {
                return 1;
            }
        }
    }
    return 0;
}

static int check_tree(const ap_directive_t *d)
{
    int rv = OK;

    for (; d; d = d->next) {
        if (!strcasecmp(d->directive, "YtKafkaTopicField")
            && !allow_in_scope(d)) {
            ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_EMERG, 0, NULL,
                         YTK_LOGNO(00503) "YtKafkaTopicField: needs "
                         "YtKafkaAllowTopic in the same section (%s:%d): "
                         "only listed topics may be named by a body",
                         d->filename, d->line_num);
            rv = !OK;
        }
        if (d->first_child && check_tree(d->first_child) != OK) {
            rv = !OK;
        }
    }
    return rv;
}

int ytk_event_conf_check(apr_pool_t *ptemp, const ap_directive_t *tree)
{
    return check_tree(tree);
}
