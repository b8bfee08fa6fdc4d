/* GET /metrics over libmicrohttpd, in its own thread. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "ytc_log.h"
#include "ytc_metrics.h"

static struct MHD_Daemon *daemon_;

typedef struct {
    struct sockaddr_storage ss;
    int v6;
    int any;
} listen_addr;

static int parse_listen(const char *spec, listen_addr *out, char *err,
                        size_t errlen)
{
    const char *colon, *host_start, *host_end;
    char host[64], *end;
    long port;

    memset(out, 0, sizeof(*out));
    if (!spec || !*spec) {
        snprintf(err, errlen, "empty address");
        return -1;
    }
    if (spec[0] == '[') {
        host_start = spec + 1;
        if (!(host_end = strchr(spec, ']')) || host_end[1] != ':') {
            snprintf(err, errlen, "expected [IPV6]:PORT, got '%s'", spec);
            return -1;
        }
        colon = host_end + 1;
        out->v6 = 1;
    }
    else {
        if (!(colon = strrchr(spec, ':'))) {
            snprintf(err, errlen, "expected ADDR:PORT, got '%s'", spec);
            return -1;
        }
        host_start = spec;
        host_end = colon;
        if (memchr(spec, ':', (size_t)(colon - spec))) {
            snprintf(err, errlen, "an IPv6 address goes in brackets: "
                     "[ADDR]:PORT, got '%s'", spec);
            return -1;
        }
    }
    errno = 0;
    port = strtol(colon + 1, &end, 10);
    if (colon[1] < '0' || colon[1] > '9' || *end || errno || port < 1
        || port > 65535) {
        snprintf(err, errlen, "port must be 1..65535, got '%s'", colon + 1);
        return -1;
    }
    if ((size_t)(host_end - host_start) >= sizeof(host)) {
        snprintf(err, errlen, "address too long: '%s'", spec);
        return -1;
    }
    memcpy(host, host_start, (size_t)(host_end - host_start));
    host[host_end - host_start] = '\0';
    if (!*host) {
        if (out->v6) {
            snprintf(err, errlen, "empty IPv6 address in '%s'", spec);
            return -1;
        }
        out->any = 1;
    }
    if (out->v6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&out->ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        if (inet_pton(AF_INET6, host, &s6->sin6_addr) != 1) {
            snprintf(err, errlen, "not a numeric IPv6 address: '%s'", host);
            return -1;
        }
    }
    else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&out->ss;
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        if (out->any) {
            s4->sin_addr.s_addr = htonl(INADDR_ANY);
        }
        else if (inet_pton(AF_INET, host, &s4->sin_addr) != 1) {
            snprintf(err, errlen, "not a numeric IPv4 address: '%s' (use "
                     "[ADDR]:PORT for IPv6)", host);
            return -1;
        }
    }
    return 0;
}

int ytc_metrics_check_listen(const char *listen, char *err, size_t errlen)
{
    listen_addr a;

    return parse_listen(listen, &a, err, errlen);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    size_t n;

    (void)cls;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r')) {
        msg[--n] = '\0';
    }
    ytc_log(YTC_LOG_WARN, YTC_LOGNO(00901) "metrics: %s", msg);
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned int status,
                             const char *text, const char *allow)
{
    struct MHD_Response *r;
    enum MHD_Result ret;

    r = MHD_create_response_from_buffer(strlen(text), (void *)text,
                                        MHD_RESPMEM_PERSISTENT);
    if (!r) {
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                            "text/plain; charset=utf-8");
    if (allow) {
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
    }
    ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c,
                               const char *url, const char *method,
                               const char *version, const char *upload,
                               size_t *upload_size, void **req)
{
    struct MHD_Response *r;
    enum MHD_Result ret;
    char *text;
    size_t len;

    (void)cls;
    (void)version;
    (void)upload;
    (void)upload_size;
    (void)req;
    if (strcmp(url, "/metrics") != 0) {
        return reply(c, MHD_HTTP_NOT_FOUND, "not found: try /metrics\n",
                     NULL);
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED,
                     "method not allowed: use GET\n", "GET, HEAD");
    }
    if (!(text = ytc_metrics_render(&len))) {
        return reply(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n",
                     NULL);
    }
    r = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                            "text/plain; version=0.0.4; charset=utf-8");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    ret = MHD_queue_response(c, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ret;
}

int ytc_metrics_start(const char *listen)
{
    listen_addr a;
    char err[256];
    unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO
                         | MHD_USE_ERROR_LOG;

    if (daemon_) {
        return 0;
    }
    if (parse_listen(listen, &a, err, sizeof(err)) != 0) {
        ytc_log(YTC_LOG_ERR, YTC_LOGNO(00902) "--metrics %s: %s", listen,
                err);
        return -1;
    }
    if (a.any) {
        /* ":PORT": both families where the host has IPv6 */
        int fd = socket(AF_INET6, SOCK_STREAM, 0);
        if (fd >= 0) {
            struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&a.ss;
            uint16_t port = ((struct sockaddr_in *)&a.ss)->sin_port;
            close(fd);
            memset(&a.ss, 0, sizeof(a.ss));
            s6->sin6_family = AF_INET6;
            s6->sin6_port = port;
            s6->sin6_addr = in6addr_any;
            a.v6 = 1;
            flags |= MHD_USE_DUAL_STACK;
        }
    }
    else if (a.v6) {
        flags |= MHD_USE_IPv6;
    }
    daemon_ = MHD_start_daemon(flags, 0, NULL, NULL, handler, NULL,
                               MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
                               MHD_OPTION_SOCK_ADDR,
                               (struct sockaddr *)&a.ss,
                               MHD_OPTION_CONNECTION_LIMIT, (unsigned int)32,
                               MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)10,
                               MHD_OPTION_END);
    if (!daemon_) {
        ytc_log(YTC_LOG_ERR, YTC_LOGNO(00903) "--metrics %s: cannot listen "
                "(address in use or not on this host?)", listen);
        return -1;
    }
    ytc_log(YTC_LOG_INFO, YTC_LOGNO(00904) "metrics on http://%s/metrics",
            listen);
    return 0;
}

void ytc_metrics_stop(void)
{
    if (daemon_) {
        MHD_stop_daemon(daemon_);
        daemon_ = NULL;
    }
}
