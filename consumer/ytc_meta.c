#ifndef _GNU_SOURCE
#define _GNU_SOURCE             /* memmem */
#endif
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ytc_meta.h"
#include "ytc_fetch_limits.h"


const char *ytc_outcome_name(ytc_outcome o)
{
    switch (o) {
    case YTC_OUT_OK:          return "ok";
    case YTC_OUT_UNAVAILABLE: return "unavailable";
    case YTC_OUT_TRANSIENT:   return "transient";
    default:                  return "error";
    }
}

/* o[k1][k2]...; NULL if any step is missing */
static json_object *jget(json_object *o, ...)
{
    va_list ap;
    const char *k;

    va_start(ap, o);
    while (o && (k = va_arg(ap, const char *)) != NULL) {
        json_object *next = NULL;
        if (!json_object_is_type(o, json_type_object)
            || !json_object_object_get_ex(o, k, &next)) {
            o = NULL;
            break;
        }
        o = next;
    }
    va_end(ap);
    return o;
}

static const char *jstr(json_object *o)
{
    return (o && json_object_is_type(o, json_type_string))
        ? json_object_get_string(o) : NULL;
}

/* numbers arrive as JSON numbers or, mostly, as strings of digits */
static int jint64(json_object *o, int64_t *out)
{
    const char *s;
    char *e;
    long long v;

    if (!o) {
        return 0;
    }
    if (json_object_is_type(o, json_type_int)) {
        *out = json_object_get_int64(o);
        return 1;
    }
    if (json_object_is_type(o, json_type_double)) {
        *out = (int64_t)json_object_get_double(o);
        return 1;
    }
    s = jstr(o);
    if (!s || !*s) {
        return 0;
    }
    v = strtoll(s, &e, 10);
    if (*e) {
        return 0;
    }
    *out = (int64_t)v;
    return 1;
}

/* YouTube text: "..." or {"simpleText": "..."} or {"runs": [{"text"}...]} */
static void jtext(json_object *o, char *buf, size_t buflen)
{
    const char *s;
    json_object *runs;
    size_t i, n, used = 0;

    buf[0] = '\0';
    if (!o) {
        return;
    }
    if ((s = jstr(o)) || (s = jstr(jget(o, "simpleText", NULL)))) {
        snprintf(buf, buflen, "%s", s);
        return;
    }
    runs = jget(o, "runs", NULL);
    if (!runs || !json_object_is_type(runs, json_type_array)) {
        return;
    }
    n = json_object_array_length(runs);
    for (i = 0; i < n && used + 1 < buflen; i++) {
        s = jstr(jget(json_object_array_get_idx(runs, i), "text", NULL));
        if (s) {
            int w = snprintf(buf + used, buflen - used, "%s", s);
            if (w < 0) {
                break;
            }
            used += (size_t)w;
        }
    }
    if (used >= buflen) {
        buf[buflen - 1] = '\0';
    }
}

/* @return the string as stored in @a r (for the row), or NULL */
static const char *put_str(json_object *r, const char *key, const char *v)
{
    json_object *s = v ? json_object_new_string(v) : NULL;

    json_object_object_add(r, key, s);
    return s ? json_object_get_string(s) : NULL;
}

/* @return the number as stored in @a r (for the row), or -1 */
static int64_t put_int64(json_object *r, const char *key, json_object *src)
{
    int64_t v;

    if (!jint64(src, &v)) {
        json_object_object_add(r, key, NULL);
        return -1;
    }
    json_object_object_add(r, key, json_object_new_int64(v));
    return v;
}

static void put_bool(json_object *r, const char *key, json_object *src)
{
    json_object_object_add(r, key,
        (src && json_object_is_type(src, json_type_boolean))
        ? json_object_new_boolean(json_object_get_boolean(src)) : NULL);
}

static json_object *thumbnails(json_object *list)
{
    json_object *out = json_object_new_array();
    size_t i, n;

    if (!list || !json_object_is_type(list, json_type_array)) {
        return out;
    }
    n = json_object_array_length(list);
    for (i = 0; i < n; i++) {
        json_object *t = json_object_array_get_idx(list, i), *o;
        const char *url = jstr(jget(t, "url", NULL));
        if (!url) {
            continue;
        }
        o = json_object_new_object();
        put_str(o, "url", url);
        put_int64(o, "width", jget(t, "width", NULL));
        put_int64(o, "height", jget(t, "height", NULL));
        json_object_array_add(out, o);
    }
    return out;
}

static void add_formats(json_object *out, json_object *list, int adaptive)
{
    size_t i, n;

    if (!list || !json_object_is_type(list, json_type_array)) {
        return;
    }
    n = json_object_array_length(list);
    for (i = 0; i < n; i++) {
        json_object *f = json_object_array_get_idx(list, i), *o;
        if (!f || !json_object_is_type(f, json_type_object)) {
            continue;
        }
        o = json_object_new_object();
        put_int64(o, "itag", jget(f, "itag", NULL));
        put_str(o, "mime_type", jstr(jget(f, "mimeType", NULL)));
        put_int64(o, "bitrate", jget(f, "bitrate", NULL));
        put_int64(o, "width", jget(f, "width", NULL));
        put_int64(o, "height", jget(f, "height", NULL));
        put_str(o, "quality_label", jstr(jget(f, "qualityLabel", NULL)));
        put_str(o, "audio_quality", jstr(jget(f, "audioQuality", NULL)));
        put_int64(o, "content_length", jget(f, "contentLength", NULL));
        put_int64(o, "approx_duration_ms", jget(f, "approxDurationMs", NULL));
        json_object_object_add(o, "adaptive",
                               json_object_new_boolean(adaptive));
        json_object_object_add(o, "has_url", json_object_new_boolean(
            jget(f, "url", NULL) != NULL));
        json_object_object_add(o, "has_signature_cipher",
            json_object_new_boolean(
                jget(f, "signatureCipher", NULL) != NULL
                || jget(f, "cipher", NULL) != NULL));
        json_object_array_add(out, o);
    }
}

static json_object *keywords(json_object *list)
{
    json_object *out = json_object_new_array();
    size_t i, n;

    if (!list || !json_object_is_type(list, json_type_array)) {
        return out;
    }
    n = json_object_array_length(list);
    for (i = 0; i < n; i++) {
        const char *s = jstr(json_object_array_get_idx(list, i));
        if (s) {
            json_object_array_add(out, json_object_new_string(s));
        }
    }
    return out;
}

static const char *first_str(const char *a, const char *b)
{
    return a ? a : b;
}

/* why a player does not play: reason, the error screen, messages[0] */
static void playability_reason(json_object *ps, char *buf, size_t buflen)
{
    json_object *msgs;

    buf[0] = '\0';
    if (jstr(jget(ps, "reason", NULL))) {
        jtext(jget(ps, "reason", NULL), buf, buflen);
    }
    if (!buf[0]) {
        jtext(jget(ps, "errorScreen", "playerErrorMessageRenderer", "reason",
                   NULL), buf, buflen);
    }
    msgs = jget(ps, "messages", NULL);
    if (!buf[0] && msgs && json_object_is_type(msgs, json_type_array)
        && json_object_array_length(msgs) > 0) {
        jtext(json_object_array_get_idx(msgs, 0), buf, buflen);
    }
    if (!buf[0]) {
        jtext(jget(ps, "reason", NULL), buf, buflen);
    }
}

static int looks_like_consent(const char *body, size_t len)
{
    return memmem(body, len, "consent.youtube.com", 19) != NULL
        || memmem(body, len, "Before you continue to YouTube", 30) != NULL;
}

/* classify an HTTP failure; returns -1 when the answer is a usable 200 */
static int http_outcome(const char *what, const ytc_http_answer *a,
                        char *reason, size_t reasonlen)
{
    if (a->status == 0 && a->transport == YTC_TRANSPORT_TOO_LARGE) {
        snprintf(reason, reasonlen, "%s: body larger than %zu bytes", what,
                 (size_t)YTC_FETCH_MAX_BODY);
        return YTC_OUT_ERROR;
    }
    if (a->status == 0) {
        snprintf(reason, reasonlen, "%s: %s", what,
                 a->error[0] ? a->error : "transfer failed");
        return YTC_OUT_TRANSIENT;
    }
    if (a->status == 200) {
        return -1;
    }
    if (a->status == 429) {
        snprintf(reason, reasonlen, "%s: HTTP 429 rate limited", what);
        return YTC_OUT_TRANSIENT;
    }
    if (a->status >= 500 || a->status == 408
        || (a->status == 403 && !strcmp(what, "watch page"))) {
        snprintf(reason, reasonlen, "%s: HTTP %ld", what, a->status);
        return YTC_OUT_TRANSIENT;
    }
    if (a->status >= 300 && a->status < 400) {
        snprintf(reason, reasonlen, "%s: HTTP %ld redirect%s", what,
                 a->status,
                 strstr(a->location, "consent")
                 ? " to the consent page" : "");
        return YTC_OUT_TRANSIENT;
    }
    if (a->status == 404 || a->status == 410) {
        snprintf(reason, reasonlen, "%s: HTTP %ld not found", what,
                 a->status);
        return YTC_OUT_UNAVAILABLE;
    }
    snprintf(reason, reasonlen, "%s: HTTP %ld", what, a->status);
    return YTC_OUT_ERROR;
}

static long clamp_retry_after(long v)
{
    if (v < 0) {
        return -1;
    }
    return v > YTC_RETRY_AFTER_MAX ? YTC_RETRY_AFTER_MAX : v;
}

static int oembed_usable(const ytc_http_answer *a)
{
    return a && a->status == 200 && a->body && a->len > 0 && a->body[0] == '{';
}

/* a row says ok, unavailable, or error (a final transient is one) */
static const char *row_status(ytc_outcome out)
{
    return out == YTC_OUT_OK ? "ok"
         : out == YTC_OUT_UNAVAILABLE ? "unavailable" : "error";
}

void ytc_meta_row_init(ytc_row *row, const char *video_id, ytc_outcome out)
{
    memset(row, 0, sizeof(*row));
    row->video_id = video_id;
    row->status = row_status(out);
    row->duration_seconds = -1;
    row->view_count = -1;
}

ytc_outcome ytc_meta_extract(const char *video_id,
                             const ytc_http_answer *watch,
                             const ytc_http_answer *oembed,
                             json_object **result,
                             char *reason, size_t reasonlen,
                             long *retry_after)
{
    return ytc_meta_extract_row(video_id, watch, oembed, result, reason,
                                reasonlen, retry_after, NULL);
}

static ytc_outcome extract(const char *video_id,
                           const ytc_http_answer *watch,
                           const ytc_http_answer *oembed,
                           json_object **result,
                           char *reason, size_t reasonlen,
                           long *retry_after, ytc_row *row)
{
    json_object *pr = NULL, *oe = NULL, *vd, *mf, *ps, *r, *sd, *formats;
    const char *pstatus, *vid;
    char preason[512], buf[1024];
    ytc_outcome out = YTC_OUT_OK;
    ytc_pr_status prs = YTC_PR_NONE;
    int rc;

    *result = NULL;
    reason[0] = '\0';
    *retry_after = -1;

    rc = http_outcome("watch page", watch, reason, reasonlen);
    if (rc == YTC_OUT_UNAVAILABLE) {
        /* a definitive answer: a row saying so, not an error */
        json_object *pl = json_object_new_object();
        r = json_object_new_object();
        put_str(r, "video_id", video_id);
        put_str(r, "status", "unavailable");
        put_str(pl, "status", watch->status == 410 ? "GONE" : "NOT_FOUND");
        put_str(pl, "reason", reason);
        json_object_object_add(r, "playability", pl);
        *result = r;
        return YTC_OUT_UNAVAILABLE;
    }
    if (rc >= 0) {
        *retry_after = clamp_retry_after(watch->retry_after);
        return (ytc_outcome)rc;
    }
    if (oembed) {
        /* 401 (embedding off), 403 (private), 404 (removed): no JSON, fine */
        rc = http_outcome("oembed", oembed, reason, reasonlen);
        if (rc == YTC_OUT_TRANSIENT) {
            *retry_after = clamp_retry_after(oembed->retry_after);
            return YTC_OUT_TRANSIENT;
        }
        reason[0] = '\0';
        if (oembed_usable(oembed)) {
            oe = json_tokener_parse(oembed->body);
            if (oe && !json_object_is_type(oe, json_type_object)) {
                json_object_put(oe);
                oe = NULL;
            }
        }
    }

    pr = watch->body ? ytc_meta_player_response_ex(watch->body, watch->len,
                                                   &prs)
                     : NULL;
    if (!pr && prs != YTC_PR_NONE) {
        /* hostile or broken beyond use: final, no retries */
        if (prs == YTC_PR_TOO_LARGE) {
            snprintf(reason, reasonlen, "watch page: player response "
                     "larger than %zu bytes", (size_t)YTC_PR_MAX_BYTES);
        }
        else if (prs == YTC_PR_TOO_MANY_VALUES) {
            snprintf(reason, reasonlen, "watch page: player response "
                     "holds more than %ld values", YTC_PR_MAX_VALUES);
        }
        else if (prs == YTC_PR_TOO_DEEP) {
            snprintf(reason, reasonlen, "watch page: player response "
                     "nested deeper than %d", YTC_PR_MAX_DEPTH);
        }
        else {
            snprintf(reason, reasonlen, "watch page: %d player response "
                     "assignments, none parses", YTC_PR_MAX_ATTEMPTS);
        }
        json_object_put(oe);
        return YTC_OUT_ERROR;
    }
    if (!pr) {
        if (watch->body && looks_like_consent(watch->body, watch->len)) {
            snprintf(reason, reasonlen, "watch page: consent interstitial");
        }
        else {
            snprintf(reason, reasonlen,
                     "watch page: no ytInitialPlayerResponse");
        }
        json_object_put(oe);
        return YTC_OUT_TRANSIENT;
    }

    ps = jget(pr, "playabilityStatus", NULL);
    vd = jget(pr, "videoDetails", NULL);
    mf = jget(pr, "microformat", "playerMicroformatRenderer", NULL);
    pstatus = jstr(jget(ps, "status", NULL));
    playability_reason(ps, preason, sizeof(preason));
    vid = jstr(jget(vd, "videoId", NULL));

    if (vid && strcmp(vid, video_id) != 0) {
        snprintf(reason, reasonlen, "watch page: answer is for video %.16s",
                 vid);
        out = YTC_OUT_TRANSIENT;
        goto leave;
    }
    if (!pstatus) {
        snprintf(reason, reasonlen, "watch page: no playabilityStatus");
        out = YTC_OUT_TRANSIENT;
        goto leave;
    }
    if (!strcmp(pstatus, "OK") || !strcmp(pstatus, "LIVE_STREAM_OFFLINE")) {
        if (!vd) {
            snprintf(reason, reasonlen, "watch page: no videoDetails");
            out = YTC_OUT_TRANSIENT;
            goto leave;
        }
    }
    else if (!strcmp(pstatus, "LOGIN_REQUIRED")
             && strstr(preason, "not a bot")) {
        snprintf(reason, reasonlen, "watch page: bot check: %s", preason);
        out = YTC_OUT_TRANSIENT;
        goto leave;
    }
    else {
        out = YTC_OUT_UNAVAILABLE;
        snprintf(reason, reasonlen, "%s", preason[0] ? preason
                 : pstatus[0] ? pstatus : "not playable, no reason given");
    }

    r = json_object_new_object();
    put_str(r, "video_id", video_id);
    put_str(r, "status", out == YTC_OUT_OK ? "ok" : "unavailable");
    row->title = put_str(r, "title",
                         first_str(jstr(jget(vd, "title", NULL)),
                                   jstr(jget(oe, "title", NULL))));
    if (!row->title) {
        jtext(jget(mf, "title", NULL), buf, sizeof(buf));
        if (buf[0]) {
            row->title = put_str(r, "title", buf);
        }
    }
    row->author_name = put_str(r, "author_name",
        first_str(jstr(jget(oe, "author_name", NULL)),
                  first_str(jstr(jget(vd, "author", NULL)),
                            jstr(jget(mf, "ownerChannelName", NULL)))));
    put_str(r, "author_url",
            first_str(jstr(jget(oe, "author_url", NULL)),
                      jstr(jget(mf, "ownerProfileUrl", NULL))));
    row->channel_id = put_str(r, "channel_id",
        first_str(jstr(jget(vd, "channelId", NULL)),
                  jstr(jget(mf, "externalChannelId", NULL))));
    row->duration_seconds = put_int64(r, "duration_seconds",
        jget(vd, "lengthSeconds", NULL) ? jget(vd, "lengthSeconds", NULL)
                                        : jget(mf, "lengthSeconds", NULL));
    row->view_count = put_int64(r, "view_count",
        jget(vd, "viewCount", NULL) ? jget(vd, "viewCount", NULL)
                                    : jget(mf, "viewCount", NULL));
    json_object_object_add(r, "keywords",
                           keywords(jget(vd, "keywords", NULL)));
    if (jstr(jget(vd, "shortDescription", NULL))) {
        put_str(r, "description", jstr(jget(vd, "shortDescription", NULL)));
    }
    else {
        jtext(jget(mf, "description", NULL), buf, sizeof(buf));
        put_str(r, "description", buf[0] ? buf : NULL);
    }
    row->publish_date = put_str(r, "publish_date",
                                jstr(jget(mf, "publishDate", NULL)));
    put_str(r, "upload_date", jstr(jget(mf, "uploadDate", NULL)));
    put_str(r, "category", jstr(jget(mf, "category", NULL)));
    put_bool(r, "is_live", jget(vd, "isLiveContent", NULL));
    put_bool(r, "is_family_safe", jget(mf, "isFamilySafe", NULL));
    put_bool(r, "is_private", jget(vd, "isPrivate", NULL));
    if (jget(vd, "thumbnail", "thumbnails", NULL)) {
        json_object_object_add(r, "thumbnails",
            thumbnails(jget(vd, "thumbnail", "thumbnails", NULL)));
    }
    else if (jget(mf, "thumbnail", "thumbnails", NULL)) {
        json_object_object_add(r, "thumbnails",
            thumbnails(jget(mf, "thumbnail", "thumbnails", NULL)));
    }
    else {
        json_object *list = json_object_new_array();
        if (jstr(jget(oe, "thumbnail_url", NULL))) {
            json_object *t = json_object_new_object();
            put_str(t, "url", jstr(jget(oe, "thumbnail_url", NULL)));
            put_int64(t, "width", jget(oe, "thumbnail_width", NULL));
            put_int64(t, "height", jget(oe, "thumbnail_height", NULL));
            json_object_array_add(list, t);
        }
        json_object_object_add(r, "thumbnails", list);
    }
    {
        json_object *pl = json_object_new_object();
        put_str(pl, "status", pstatus);
        put_str(pl, "reason", preason[0] ? preason : NULL);
        json_object_object_add(r, "playability", pl);
    }
    sd = jget(pr, "streamingData", NULL);
    formats = json_object_new_array();
    add_formats(formats, jget(sd, "formats", NULL), 0);
    add_formats(formats, jget(sd, "adaptiveFormats", NULL), 1);
    json_object_object_add(r, "formats", formats);
    *result = r;

leave:
    json_object_put(pr);
    json_object_put(oe);
    return out;
}

ytc_outcome ytc_meta_extract_row(const char *video_id,
                                 const ytc_http_answer *watch,
                                 const ytc_http_answer *oembed,
                                 json_object **result,
                                 char *reason, size_t reasonlen,
                                 long *retry_after, ytc_row *row)
{
    ytc_row scratch;
    ytc_outcome out;

    if (!row) {
        row = &scratch;
    }
    ytc_meta_row_init(row, video_id, YTC_OUT_ERROR);
    out = extract(video_id, watch, oembed, result, reason, reasonlen,
                  retry_after, row);
    row->status = row_status(out);
    return out;
}
