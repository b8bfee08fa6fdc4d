/* Unit tests for consumer/ytc_offsets.c, the per-partition offset tracker:
 * a message's offset is stored only once it and every earlier message of
 * its partition are done (docs/ARCHITECTURE.md 7.4). Linked alone with
 * ytc_log.c and librdkafka; the commit tests run against librdkafka's mock
 * cluster and read the committed offsets back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ytc_loop_int.h"
#include <librdkafka/rdkafka_mock.h>   /* after rdkafka.h */

#define TOPIC "links"

static ytc_loop *loop_new(void)
{
    ytc_loop *L = calloc(1, sizeof(*L));

    assert_non_null(L);
    return L;
}

static void loop_free(ytc_loop *L)
{
    while (L->parts || L->zombies) {
        ytc_part **list = L->parts ? &L->parts : &L->zombies;
        ytc_part *p = *list;
        *list = p->next;
        while (p->head) {
            ytc_msg *m = p->head;
            p->head = m->next;
            ytc_msg_free(L, m);
        }
        ytc_part_free(p);
    }
    if (L->consumer) {
        rd_kafka_destroy(L->consumer);
    }
    free(L);
}

/* a message taken in as ytc_handle_message takes it: queued in offset
 * order, held (pending) by @a holds jobs or records */
static ytc_msg *take(ytc_loop *L, ytc_part *p, int64_t offset, int holds)
{
    ytc_msg *m = calloc(1, sizeof(*m));

    assert_non_null(m);
    m->loop = L;
    m->part = p;
    m->offset = offset;
    m->pending = holds;
    ytc_part_push(L, p, m);
    return m;
}

static void test_in_order(void **state)
{
    ytc_loop *L = loop_new();
    ytc_part *p = ytc_part_get(L, TOPIC, 0);
    ytc_msg *m[3];
    int i;

    (void)state;
    assert_int_equal(p->store_offset, -1);
    for (i = 0; i < 3; i++) {
        m[i] = take(L, p, 10 + i, 1);
    }
    for (i = 0; i < 3; i++) {
        p->dirty = 0;
        ytc_msg_release(m[i]);
        assert_int_equal(p->store_offset, 11 + i);
        assert_true(p->dirty);
        assert_int_equal(L->msgs, 2 - i);
    }
    assert_null(p->head);
    assert_null(p->tail);
    assert_int_equal(L->finished, 3);
    loop_free(L);
}

/* offsets need not be consecutive (compaction, transaction markers): the
 * next offset to store is the done message's plus one */
static void test_gaps(void **state)
{
    static const int64_t offs[] = { 10, 12, 15, 40 };
    ytc_loop *L = loop_new();
    ytc_part *p = ytc_part_get(L, TOPIC, 0);
    ytc_msg *m[4];
    size_t i;

    (void)state;
    for (i = 0; i < 4; i++) {
        m[i] = take(L, p, offs[i], 1);
    }
    for (i = 0; i < 4; i++) {
        ytc_msg_release(m[i]);
        assert_int_equal(p->store_offset, offs[i] + 1);
    }
    loop_free(L);
}

/* later messages done first: nothing moves until the head is done, then
 * everything contiguous at once; a message held twice needs both */
static void test_out_of_order(void **state)
{
    ytc_loop *L = loop_new();
    ytc_part *p = ytc_part_get(L, TOPIC, 0);
    ytc_msg *a = take(L, p, 5, 2), *b = take(L, p, 6, 1), *c = take(L, p, 7, 1);
    ytc_msg *d = take(L, p, 8, 1);

    (void)state;
    ytc_msg_release(c);
    ytc_msg_release(b);
    assert_int_equal(p->store_offset, -1);
    assert_false(p->dirty);
    ytc_msg_release(a);             /* one of its two holds */
    assert_int_equal(p->store_offset, -1);
    assert_ptr_equal(p->head, a);
    ytc_msg_release(a);
    assert_int_equal(p->store_offset, 8);   /* 5, 6, 7 done; 8 is not */
    assert_true(p->dirty);
    assert_ptr_equal(p->head, d);
    assert_int_equal(L->msgs, 1);
    ytc_msg_release(d);
    assert_int_equal(p->store_offset, 9);
    loop_free(L);
}

/* partitions are kept apart */
static void test_partitions_apart(void **state)
{
    ytc_loop *L = loop_new();
    ytc_part *p0 = ytc_part_get(L, TOPIC, 0), *p1 = ytc_part_get(L, TOPIC, 1);
    ytc_part *q0 = ytc_part_get(L, "other", 0);
    ytc_msg *a = take(L, p0, 100, 1), *b = take(L, p1, 3, 1);

    (void)state;
    assert_ptr_not_equal(p0, p1);
    assert_ptr_not_equal(p0, q0);
    assert_ptr_equal(ytc_part_get(L, TOPIC, 1), p1);
    assert_ptr_equal(ytc_part_find(L, "other", 0), q0);
    assert_null(ytc_part_find(L, "other", 1));
    ytc_msg_release(b);
    assert_int_equal(p1->store_offset, 4);
    assert_int_equal(p0->store_offset, -1);
    assert_int_equal(q0->store_offset, -1);
    ytc_msg_release(a);
    assert_int_equal(p0->store_offset, 101);
    loop_free(L);
}

/* a revoked partition still holding work becomes a zombie: the work
 * finishes, its offsets are not stored (they are another consumer's now),
 * and the zombie goes when empty; assigned again, it starts afresh */
static void test_revoke_assign(void **state)
{
    ytc_loop *L = loop_new();
    ytc_part *p = ytc_part_get(L, TOPIC, 0), *idle = ytc_part_get(L, TOPIC, 1);
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(2);
    ytc_msg *a = take(L, p, 20, 1), *b = take(L, p, 21, 1), *c;
    ytc_part *again;

    (void)state;
    (void)idle;
    L->assigned = 2;
    ytc_msg_release(a);
    assert_int_equal(p->store_offset, 21);
    rd_kafka_topic_partition_list_add(list, TOPIC, 0);
    rd_kafka_topic_partition_list_add(list, TOPIC, 1);
    ytc_revoke_parts(L, list);
    rd_kafka_topic_partition_list_destroy(list);
    assert_null(L->parts);                  /* partition 1 freed at once */
    assert_ptr_equal(L->zombies, p);
    assert_true(p->revoked);
    assert_false(p->dirty);
    assert_int_equal(L->assigned, 0);
    assert_null(ytc_part_find(L, TOPIC, 0));

    /* assigned again while the zombie lives: a new, separate tracker */
    again = ytc_part_get(L, TOPIC, 0);
    assert_ptr_not_equal(again, p);
    assert_int_equal(again->store_offset, -1);
    c = take(L, again, 21, 1);

    ytc_msg_release(b);             /* the zombie's last: it is freed */
    assert_null(L->zombies);
    assert_int_equal(again->store_offset, -1);
    assert_false(again->dirty);
    ytc_msg_release(c);
    assert_int_equal(again->store_offset, 22);
    assert_true(again->dirty);
    loop_free(L);
}

/* ---- store and commit, against librdkafka's mock cluster ------------ */

static rd_kafka_t *mock_consumer(const char *group)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char err[512];
    rd_kafka_t *rk;
    static const char *const props[][2] = {
        { "test.mock.num.brokers", "1" },
        { "enable.auto.commit", "false" },
        { "enable.auto.offset.store", "false" },
        { "log_level", "3" },
    };
    size_t i;

    for (i = 0; i < sizeof(props) / sizeof(props[0]); i++) {
        assert_int_equal(rd_kafka_conf_set(conf, props[i][0], props[i][1],
                                           err, sizeof(err)),
                         RD_KAFKA_CONF_OK);
    }
    assert_int_equal(rd_kafka_conf_set(conf, "group.id", group, err,
                                       sizeof(err)), RD_KAFKA_CONF_OK);
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    assert_non_null(rk);
    assert_int_equal(rd_kafka_mock_topic_create(
                         rd_kafka_handle_mock_cluster(rk), TOPIC, 2, 1),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
    return rk;
}

static void assign(rd_kafka_t *rk)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(2);

    rd_kafka_topic_partition_list_add(l, TOPIC, 0);
    rd_kafka_topic_partition_list_add(l, TOPIC, 1);
    assert_int_equal(rd_kafka_assign(rk, l), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(l);
}

/* the group's committed offset of @a partition, -1001 if none */
static int64_t committed(rd_kafka_t *rk, int32_t partition)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    int64_t off;

    rd_kafka_topic_partition_list_add(l, TOPIC, partition);
    assert_int_equal(rd_kafka_committed(rk, l, 10000),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
    off = l->elems[0].offset;
    rd_kafka_topic_partition_list_destroy(l);
    return off;
}

/* only what is contiguous from the start is committed, per partition */
static void test_commit_contiguous(void **state)
{
    ytc_loop *L = loop_new();
    ytc_part *p0, *p1;
    ytc_msg *m0[3], *m1;
    int i;

    (void)state;
    L->consumer = mock_consumer("g-contiguous");
    assign(L->consumer);
    p0 = ytc_part_get(L, TOPIC, 0);
    p1 = ytc_part_get(L, TOPIC, 1);
    for (i = 0; i < 3; i++) {
        m0[i] = take(L, p0, i, 1);
    }
    m1 = take(L, p1, 0, 1);
    ytc_msg_release(m0[0]);
    ytc_msg_release(m0[2]);         /* 1 is still open */
    ytc_commit_sync(L, "test");
    assert_int_equal(committed(L->consumer, 0), 1);
    assert_int_equal(committed(L->consumer, 1), RD_KAFKA_OFFSET_INVALID);
    assert_false(p0->dirty);

    ytc_msg_release(m0[1]);
    ytc_msg_release(m1);
    ytc_commit_sync(L, "test");
    assert_int_equal(committed(L->consumer, 0), 3);
    assert_int_equal(committed(L->consumer, 1), 1);
    loop_free(L);
}

/* after an allocation failure nothing more is stored or committed */
static void test_frozen_stores_nothing(void **state)
{
    ytc_loop *L = loop_new();
    ytc_part *p;
    ytc_msg *a, *b;

    (void)state;
    L->consumer = mock_consumer("g-frozen");
    assign(L->consumer);
    p = ytc_part_get(L, TOPIC, 0);
    a = take(L, p, 0, 1);
    b = take(L, p, 1, 1);
    ytc_msg_release(a);
    ytc_commit_sync(L, "test");
    assert_int_equal(committed(L->consumer, 0), 1);

    ytc_offsets_freeze(L, "test");
    assert_true(L->fatal);
    ytc_msg_release(b);
    assert_int_equal(p->store_offset, 2);   /* tracked, never stored */
    ytc_commit_sync(L, "test");
    assert_int_equal(committed(L->consumer, 0), 1);
    loop_free(L);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_in_order),
        cmocka_unit_test(test_gaps),
        cmocka_unit_test(test_out_of_order),
        cmocka_unit_test(test_partitions_apart),
        cmocka_unit_test(test_revoke_assign),
        cmocka_unit_test(test_commit_contiguous),
        cmocka_unit_test(test_frozen_stores_nothing),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
