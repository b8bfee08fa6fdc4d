/* Strict YouTube URL to video id parser. See ytk_url.h. */
#include <stdio.h>
#include <string.h>

#include "ytk_url.h"

typedef enum {
    HOST_NONE = 0,
    HOST_YOUTUBE,   /* youtube.com family: id in path or ?v= */
    HOST_SHORT      /* youtu.be: id is the whole path */
} host_kind;

typedef struct {
    const char *s;
    size_t len;
} span;

static const char *const long_hosts[] = {
    "youtube.com", "www.youtube.com", "m.youtube.com", "music.youtube.com",
    "youtube-nocookie.com", "www.youtube-nocookie.com", NULL
};

/* Paths /<prefix>/ID[/]; "watch" is handled separately. */
static const char *const id_prefixes[] = {
    "/shorts/", "/embed/", "/v/", "/e/", "/live/", NULL
};

/* Eleven-character path words that name something other than a video. */
static const char *const not_videos[] = {
    "videoseries", "live_stream", NULL
};

static int lower(int c)
{
    return (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c;
}

static int ieq(span a, const char *b)
{
    size_t i, n = strlen(b);

    if (a.len != n) {
        return 0;
    }
    for (i = 0; i < n; i++) {
        if (lower((unsigned char)a.s[i]) != b[i]) {
            return 0;
        }
    }
    return 1;
}

static int eq(span a, const char *b)
{
    size_t n = strlen(b);

    return a.len == n && memcmp(a.s, b, n) == 0;
}

static int is_space(int c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v'
        || c == '\f';
}

static int is_id_char(int c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
        || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

int ytk_video_id_valid(const char *id, size_t len)
{
    size_t i;

    if (id == NULL || len != YTK_VIDEO_ID_LEN) {
        return 0;
    }
    for (i = 0; i < len; i++) {
        if (!is_id_char((unsigned char)id[i])) {
            return 0;
        }
    }
    return 1;
}

static ytk_url_rc take_id(span v, char *id)
{
    size_t i;

    if (!ytk_video_id_valid(v.s, v.len)) {
        return YTK_URL_BAD_ID;
    }
    for (i = 0; not_videos[i]; i++) {
        if (eq(v, not_videos[i])) {
            return YTK_URL_NO_VIDEO;
        }
    }
    memcpy(id, v.s, YTK_VIDEO_ID_LEN);
    id[YTK_VIDEO_ID_LEN] = '\0';
    return YTK_URL_OK;
}

/*
 * Split off a scheme. Returns 1 when @a in starts with "<scheme>:" in the
 * RFC 3986 sense, except that "host:digits" is read as a port, not a scheme,
 * so "youtube.com:443/watch" keeps working without a scheme.
 */
static int split_scheme(span in, span *scheme)
{
    size_t i, j;
    int c;

    for (i = 0; i < in.len; i++) {
        c = (unsigned char)in.s[i];
        if (c == ':') {
            break;
        }
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
              || (i > 0 && ((c >= '0' && c <= '9') || c == '+' || c == '-'
                            || c == '.')))) {
            return 0;
        }
    }
    if (i == 0 || i == in.len) {
        return 0;
    }
    for (j = i + 1; j < in.len; j++) {
        c = (unsigned char)in.s[j];
        if (c == '/' || c == '?' || c == '#') {
            break;
        }
        if (c < '0' || c > '9') {
            break;
        }
    }
    if (j > i + 1 && (j == in.len || in.s[j] == '/' || in.s[j] == '?'
                      || in.s[j] == '#')) {
        return 0;   /* host:port */
    }
    scheme->s = in.s;
    scheme->len = i;
    return 1;
}

static ytk_url_rc check_authority(span auth, host_kind *kind)
{
    span host = auth, port = { NULL, 0 };
    size_t i;
    int c;

    for (i = 0; i < auth.len; i++) {
        if (auth.s[i] == '@') {
            return YTK_URL_USERINFO;
        }
    }
    for (i = 0; i < auth.len; i++) {
        if (auth.s[i] == ':') {
            host.len = i;
            port.s = auth.s + i + 1;
            port.len = auth.len - i - 1;
            break;
        }
    }
    /* Letters, digits, '-' and '.' only: no %XX, '\', IDN or IP tricks. */
    for (i = 0; i < host.len; i++) {
        c = (unsigned char)host.s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
              || (c >= '0' && c <= '9') || c == '-' || c == '.')) {
            return YTK_URL_BAD_HOST;
        }
    }
    *kind = HOST_NONE;
    if (ieq(host, "youtu.be")) {
        *kind = HOST_SHORT;
    }
    for (i = 0; long_hosts[i] && *kind == HOST_NONE; i++) {
        if (ieq(host, long_hosts[i])) {
            *kind = HOST_YOUTUBE;
        }
    }
    if (*kind == HOST_NONE) {
        return YTK_URL_BAD_HOST;
    }
    if (port.s != NULL && !eq(port, "443") && !eq(port, "80")) {
        return YTK_URL_BAD_PORT;
    }
    return YTK_URL_OK;
}

/* Find v= in the query; several v's must agree. */
static ytk_url_rc watch_id(span query, char *id)
{
    size_t i = 0, start, eqpos;
    span v = { NULL, 0 }, val;

    while (i <= query.len) {
        start = i;
        eqpos = (size_t)-1;
        while (i < query.len && query.s[i] != '&') {
            if (query.s[i] == '=' && eqpos == (size_t)-1) {
                eqpos = i;
            }
            i++;
        }
        if (eqpos == start + 1 && query.s[start] == 'v') {
            val.s = query.s + eqpos + 1;
            val.len = i - eqpos - 1;
            if (v.s != NULL && (v.len != val.len
                                || memcmp(v.s, val.s, v.len) != 0)) {
                return YTK_URL_BAD_ID;
            }
            v = val;
        }
        i++;
    }
    if (v.s == NULL) {
        return YTK_URL_NO_VIDEO;
    }
    return take_id(v, id);
}

/* "/<prefix>ID" or "/<prefix>ID/" with nothing after. */
static ytk_url_rc path_id(span rest, char *id)
{
    span seg = rest;
    size_t i;

    for (i = 0; i < rest.len; i++) {
        if (rest.s[i] == '/') {
            seg.len = i;
            break;
        }
    }
    if (seg.len == 0) {
        return YTK_URL_NO_VIDEO;
    }
    if (rest.len > seg.len + 1) {
        return ytk_video_id_valid(seg.s, seg.len) ? YTK_URL_NO_VIDEO
                                                  : YTK_URL_BAD_ID;
    }
    return take_id(seg, id);
}

static ytk_url_rc parse(span in, char *id)
{
    span scheme, auth, path, query = { NULL, 0 }, rest;
    host_kind kind = HOST_NONE;
    ytk_url_rc rc;
    size_t i, plen;
    int c;

    for (i = 0; i < in.len; i++) {
        c = (unsigned char)in.s[i];
        if (c <= ' ' || c == 0x7f) {
            return YTK_URL_BAD_CHAR;
        }
    }
    if (split_scheme(in, &scheme)) {
        if (!ieq(scheme, "https") && !ieq(scheme, "http")) {
            return YTK_URL_BAD_SCHEME;
        }
        in.s += scheme.len + 1;
        in.len -= scheme.len + 1;
        /* http needs "//host"; "http:/x" or "http:x" is not a web URL. */
        if (in.len < 2 || in.s[0] != '/' || in.s[1] != '/') {
            return YTK_URL_BAD_SCHEME;
        }
        in.s += 2;
        in.len -= 2;
    }
    else if (in.len >= 2 && in.s[0] == '/' && in.s[1] == '/') {
        /* protocol-relative "//host/..." */
        in.s += 2;
        in.len -= 2;
    }

    auth = in;
    for (i = 0; i < in.len; i++) {
        c = in.s[i];
        if (c == '/' || c == '?' || c == '#') {
            auth.len = i;
            break;
        }
    }
    if ((rc = check_authority(auth, &kind)) != YTK_URL_OK) {
        return rc;
    }

    path.s = in.s + auth.len;
    path.len = in.len - auth.len;
    for (i = 0; i < path.len; i++) {
        if (path.s[i] == '#') {
            path.len = i;
            break;
        }
    }
    for (i = 0; i < path.len; i++) {
        if (path.s[i] == '?') {
            query.s = path.s + i + 1;
            query.len = path.len - i - 1;
            path.len = i;
            break;
        }
    }

    if (kind == HOST_SHORT) {
        if (path.len < 1) {
            return YTK_URL_NO_VIDEO;
        }
        rest.s = path.s + 1;
        rest.len = path.len - 1;
        return path_id(rest, id);
    }
    if (eq(path, "/watch")) {
        return query.s ? watch_id(query, id) : YTK_URL_NO_VIDEO;
    }
    for (i = 0; id_prefixes[i]; i++) {
        plen = strlen(id_prefixes[i]);
        if (path.len >= plen && memcmp(path.s, id_prefixes[i], plen) == 0) {
            rest.s = path.s + plen;
            rest.len = path.len - plen;
            return path_id(rest, id);
        }
    }
    return YTK_URL_NO_VIDEO;
}

ytk_url_rc ytk_url_video_id(const char *url, size_t len,
                            char id[YTK_VIDEO_ID_LEN + 1])
{
    span in;
    ytk_url_rc rc;

    id[0] = '\0';
    if (url == NULL || len == 0) {
        return YTK_URL_EMPTY;
    }
    if (len > YTK_URL_MAX_LEN) {
        return YTK_URL_TOO_LONG;
    }
    in.s = url;
    in.len = len;
    while (in.len > 0 && is_space((unsigned char)in.s[0])) {
        in.s++;
        in.len--;
    }
    while (in.len > 0 && is_space((unsigned char)in.s[in.len - 1])) {
        in.len--;
    }
    if (in.len == 0) {
        return YTK_URL_EMPTY;
    }
    rc = parse(in, id);
    if (rc != YTK_URL_OK) {
        id[0] = '\0';
    }
    return rc;
}

const char *ytk_url_code(ytk_url_rc rc)
{
    switch (rc) {
    case YTK_URL_OK:         return "ok";
    case YTK_URL_EMPTY:      return "empty";
    case YTK_URL_TOO_LONG:   return "too_long";
    case YTK_URL_BAD_CHAR:   return "bad_char";
    case YTK_URL_BAD_SCHEME: return "bad_scheme";
    case YTK_URL_USERINFO:   return "userinfo";
    case YTK_URL_BAD_PORT:   return "bad_port";
    case YTK_URL_BAD_HOST:   return "bad_host";
    case YTK_URL_NO_VIDEO:   return "no_video";
    case YTK_URL_BAD_ID:     return "bad_id";
    }
    return "unknown";
}

const char *ytk_url_strerror(ytk_url_rc rc)
{
    switch (rc) {
    case YTK_URL_OK:         return "ok";
    case YTK_URL_EMPTY:      return "empty link";
    case YTK_URL_TOO_LONG:   return "link is too long";
    case YTK_URL_BAD_CHAR:   return "link contains a space or control byte";
    case YTK_URL_BAD_SCHEME: return "scheme is not http or https";
    case YTK_URL_USERINFO:   return "link contains user information";
    case YTK_URL_BAD_PORT:   return "port is not 80 or 443";
    case YTK_URL_BAD_HOST:   return "not a YouTube host";
    case YTK_URL_NO_VIDEO:   return "YouTube link names no video";
    case YTK_URL_BAD_ID:     return "video id is not 11 of [A-Za-z0-9_-]";
    }
    return "unknown error";
}

void ytk_canonical_url(const char *id, char *buf, size_t buflen)
{
    size_t i;

    if (buf == NULL || buflen == 0) {
        return;
    }
    buf[0] = '\0';
    if (id == NULL || buflen < sizeof("https://www.youtube.com/watch?v=")
                                + YTK_VIDEO_ID_LEN) {
        return;
    }
    /* Stops at the first non-id byte, so a short string is never overread. */
    for (i = 0; i < YTK_VIDEO_ID_LEN; i++) {
        if (!is_id_char((unsigned char)id[i])) {
            return;
        }
    }
    snprintf(buf, buflen, "https://www.youtube.com/watch?v=%.11s", id);
}
