/**
 * @file ytk_private.h
 * @brief Declarations every file of mod_ytkafka shares: the module record
 *        and the log tag macro.
 */
#ifndef YTK_PRIVATE_H
#define YTK_PRIVATE_H

#include <httpd.h>
#include <http_config.h>
#include <http_log.h>

/* So that "LogLevel ytkafka:debug" covers every file of the module.
 * mod_ytkafka.c gets the same from AP_DECLARE_MODULE. */
#ifndef YTK_MODULE_MAIN
APLOG_USE_MODULE(ytkafka);
#endif

extern module AP_MODULE_DECLARE_DATA ytkafka_module;

/**
 * The tag of one log call, "YTKnnnnn: ". Each call site has its own number,
 * never reused, so that tests and operators can match exact lines.
 * Ranges: 000xx module, 001xx config, 002xx producer, 003xx send,
 * 004xx status, 005xx-006xx producer faults and ytkafka-produce.
 */
#define YTK_LOGNO(n) "YTK" #n ": "

/** The version in "source" and in the status output. */
#define YTK_MODULE_VERSION "0.1.0"

#endif /* YTK_PRIVATE_H */
