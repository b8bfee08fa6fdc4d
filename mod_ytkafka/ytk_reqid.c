/* mod_ytkafka: request ids. */
#include <stdint.h>
#include <string.h>

#include <apr_tables.h>

#include <httpd.h>

#include "ytk_reqid.h"

/* Request ids need to be unique, not secret: ap_random_insecure_bytes()
 * takes one process-wide mutex and runs SHA-256 per call, so each thread
 * seeds a xorshift128+ from it once per child (a forked child must not
 * repeat its parent's sequence) and draws from that. */
static unsigned int rid_generation;
typedef struct {
    uint64_t s[2];
    unsigned int generation;
} ytk_rid_rng;
static __thread ytk_rid_rng rid_rng;

void ytk_reqid_child_init(void)
{
    __atomic_add_fetch(&rid_generation, 1, __ATOMIC_RELEASE);
}

static uint64_t rid_next(ytk_rid_rng *g)
{
    uint64_t x = g->s[0];
    const uint64_t y = g->s[1];

    g->s[0] = y;
    x ^= x << 23;
    g->s[1] = x ^ y ^ (x >> 17) ^ (y >> 26);
    return g->s[1] + y;
}

static void rid_bytes(unsigned char raw[15])
{
    unsigned int gen = __atomic_load_n(&rid_generation, __ATOMIC_ACQUIRE);
    ytk_rid_rng *g = &rid_rng;  /* one TLS lookup in a module */
    uint64_t a, b;

    if (g->generation != gen || !(g->s[0] | g->s[1])) {
        do {
            ap_random_insecure_bytes(g->s, sizeof(g->s));
        } while (!(g->s[0] | g->s[1]));
        g->generation = gen;
    }
    a = rid_next(g);
    b = rid_next(g);
    memcpy(raw, &a, 8);
    memcpy(raw + 8, &b, 7);
}

const char *ytk_request_id(request_rec *r)
{
    static const char b64u[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const char *uid = apr_table_get(r->subprocess_env, "UNIQUE_ID");
    unsigned char raw[15];
    char *id;
    int i;

    if (uid && *uid) {
        return uid;
    }
    rid_bytes(raw);
    id = apr_palloc(r->pool, 21);
    for (i = 0; i < 5; ++i) {
        unsigned long v = ((unsigned long)raw[3 * i] << 16)
                          | ((unsigned long)raw[3 * i + 1] << 8)
                          | raw[3 * i + 2];

        id[4 * i] = b64u[(v >> 18) & 63];
        id[4 * i + 1] = b64u[(v >> 12) & 63];
        id[4 * i + 2] = b64u[(v >> 6) & 63];
        id[4 * i + 3] = b64u[v & 63];
    }
    id[20] = '\0';
    return id;
}
