#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "ytc_log.h"

int ytc_log_level = YTC_LOG_INFO;

static const char *const level_names[] = { "error", "warn", "info", "debug" };

void ytc_log(int level, const char *fmt, ...)
{
    char line[4096];
    char stamp[32];
    struct timeval tv;
    struct tm tm;
    va_list ap;
    int n;

    if (level > ytc_log_level) {
        return;
    }
    if (level < 0) {
        level = 0;
    }
    if (level > YTC_LOG_DEBUG) {
        level = YTC_LOG_DEBUG;
    }
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);

    va_start(ap, fmt);
    n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n < 0) {
        return;
    }
    /* one write per line so that concurrent writers do not interleave */
    fprintf(stderr, "%s.%03ldZ [%s] %s\n", stamp, (long)(tv.tv_usec / 1000),
            level_names[level], line);
}

int ytc_log_from_syslog(int syslog_level)
{
    if (syslog_level <= 3) {
        return YTC_LOG_ERR;
    }
    if (syslog_level == 4) {
        return YTC_LOG_WARN;
    }
    if (syslog_level <= 6) {
        return YTC_LOG_INFO;
    }
    return YTC_LOG_DEBUG;
}
