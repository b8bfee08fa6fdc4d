/* mod_ytkafka: POSTed YouTube links to Apache Kafka.
 *
 * This file only declares the module and registers its hooks; each job has
 * its own file: ytk_config and ytk_event_conf (directives), ytk_producer
 * (the per-child Kafka producer), ytk_waiter (a request's wait for its
 * delivery reports), ytk_errors (the error mapper), ytk_body, ytk_answer
 * and ytk_reqid (what the handlers share), ytk_send, ytk_produce,
 * ytk_status and ytk_results (the handlers). */
#define YTK_MODULE_MAIN
#include <httpd.h>
#include <http_config.h>
#include <http_log.h>

#include "ytk_private.h"
#include "ytk_config.h"
#include "ytk_produce.h"
#include "ytk_producer.h"
#include "ytk_send.h"
#include "ytk_status.h"
#include "ytk_results.h"

static void ytk_child_init(apr_pool_t *pchild, server_rec *s)
{
    /* The status slot first: producers report their gauges into it. */
    ytk_status_child_init(pchild, s);
    ytk_producer_child_init(pchild, s);
    ytk_send_child_init();
}

static void ytk_register_hooks(apr_pool_t *p)
{
    ap_hook_check_config(ytk_config_check, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_check_config(ytk_results_check_config, NULL, NULL,
                         APR_HOOK_MIDDLE);
    ap_hook_post_config(ytk_status_post_config, NULL, NULL, APR_HOOK_MIDDLE);
    /* Before mod_dbd's post_config, which collects prepared statements. */
    ap_hook_post_config(ytk_results_post_config, NULL, NULL, APR_HOOK_FIRST);
    ap_hook_child_init(ytk_child_init, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_status(ytk_status_child_exited, NULL, NULL,
                         APR_HOOK_MIDDLE);
    ap_hook_handler(ytk_send_handler, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_handler(ytk_produce_handler, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_handler(ytk_status_handler, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_handler(ytk_results_handler, NULL, NULL, APR_HOOK_MIDDLE);
}

AP_DECLARE_MODULE(ytkafka) = {
    STANDARD20_MODULE_STUFF,
    ytk_create_dir_conf,
    ytk_merge_dir_conf,
    ytk_create_srv_conf,
    ytk_merge_srv_conf,
    ytk_cmds,
    ytk_register_hooks,
#if defined(AP_MODULE_FLAG_ALWAYS_MERGE)
    AP_MODULE_FLAG_NONE
#endif
};
