/**
 * @file ytc_log.h
 * @brief Logging for ytkafka-consumer: tagged lines on stderr.
 *
 * Every call site has its own tag, YTC_LOGNO(nnnnn) -> "YTCnnnnn: ", never
 * reused, so that tests and operators can match exact lines. stdout carries
 * only results.
 */
#ifndef YTC_LOG_H
#define YTC_LOG_H

#define YTC_LOG_ERR   0
#define YTC_LOG_WARN  1
#define YTC_LOG_INFO  2
#define YTC_LOG_DEBUG 3

/** Prefix of a tagged log message. */
#define YTC_LOGNO(n) "YTC" #n ": "

/** Current threshold: messages above it are dropped. */
extern int ytc_log_level;

/** Write one line to stderr if @a level is at or below the threshold. */
void ytc_log(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/** Map a syslog level (librdkafka's log_cb) to ours. */
int ytc_log_from_syslog(int syslog_level);

#endif /* YTC_LOG_H */
