/*
 * The conformance scenarios (docs/conformance.md) in C, against libpeat_mesh_ffi.
 * Run plainly and under valgrind by scripts/test-c. Prints "N passed, N failed".
 */
#define _DEFAULT_SOURCE
#include "peat_mesh.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int passed = 0, failed = 0;
static const char *current = "";

#define CHECK(cond)                                                                      \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "FAIL %s: %s:%d: %s\n", current, __FILE__, __LINE__, #cond); \
            return 0;                                                                    \
        }                                                                                \
    } while (0)

/* A status check that prints the library's message on failure. */
#define OK(call)                                                                                   \
    do {                                                                                           \
        int32_t rc_ = call_with_err_(call);                                                        \
        if (rc_ != PEAT_STATUS_OK) {                                                               \
            fprintf(stderr, "FAIL %s: %s:%d: %s -> %d (%s)\n", current, __FILE__, __LINE__, #call, \
                    rc_, last_message);                                                            \
            return 0;                                                                              \
        }                                                                                          \
    } while (0)

static const PeatCancel NO_CANCEL = {0};
static char last_message[512];
static PeatError *err_slot = NULL;
#define ERR (&err_slot)

/* Records the error message of the last call and frees the error. */
static int32_t call_with_err_(int32_t rc) {
    last_message[0] = 0;
    if (err_slot) {
        snprintf(last_message, sizeof last_message, "%s", peat_error_message(err_slot));
        peat_error_free(err_slot);
        err_slot = NULL;
    }
    return rc;
}

static PeatStr S(const char *s) {
    PeatStr r;
    r.ptr = (const uint8_t *)s;
    r.len = s ? strlen(s) : 0;
    return r;
}

static const uint8_t SECRET[32] = {7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
                                   7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7};
static const uint8_t OTHER_SECRET[32] = {1};

/* Opens a node in a fresh temp dir `dir` with `o`'s other options (its data
   dir, formation id and secret are filled in here). */
static int open_node_with(PeatNode *node, char *dir, const uint8_t *secret, PeatNodeOptions *o) {
    strcpy(dir, "/tmp/peat-c-XXXXXX");
    if (!mkdtemp(dir)) return 0;
    o->data_dir = S(dir);
    o->formation_id = S("conformance");
    o->formation_secret = secret;
    o->formation_secret_len = 32;
    return call_with_err_(peat_node_open(o, 10000, NO_CANCEL, node, ERR)) == PEAT_STATUS_OK;
}

static int open_node(PeatNode *node, char *dir, const uint8_t *secret) {
    PeatNodeOptions o;
    memset(&o, 0, sizeof o);
    o.listen = S("127.0.0.1:0");
    return open_node_with(node, dir, secret, &o);
}

static void rm_rf(const char *dir) {
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

static int connect_nodes(PeatNode from, PeatNode to) {
    PeatStringList addrs;
    memset(&addrs, 0, sizeof addrs);
    if (call_with_err_(peat_node_addrs(to, &addrs, ERR)) != PEAT_STATUS_OK || addrs.len == 0) return 0;
    int32_t rc = call_with_err_(peat_node_connect(from, S(addrs.items[0]), 10000, NO_CANCEL, ERR));
    peat_string_list_free(addrs);
    return rc == PEAT_STATUS_OK;
}

/* Waits for a DocChanged event on `id`; returns 1 if it came with `want` json. */
static int await_doc(PeatSubscription sub, const char *id, const char *want) {
    for (int i = 0; i < 100; i++) {
        PeatEvent ev;
        memset(&ev, 0, sizeof ev);
        int32_t rc = call_with_err_(peat_subscription_next(sub, 200, &ev, ERR));
        if (rc == PEAT_STATUS_TIMEOUT) continue;
        if (rc != PEAT_STATUS_OK) return 0;
        int hit = ev.kind == PEAT_EVENT_KIND_DOC_CHANGED && strcmp(ev.id, id) == 0 &&
                  (!want || strcmp(ev.json, want) == 0);
        peat_event_free(&ev);
        if (hit) return 1;
    }
    return 0;
}

static int t_abi_version(void) {
    CHECK(peat_abi_version() == PEAT_ABI_VERSION);
    return 1;
}

static int t_open_close(void) {
    PeatNode n;
    char dir[64];
    uint64_t before = peat_live_handles();
    CHECK(open_node(&n, dir, SECRET));
    CHECK(n.id != 0);
    CHECK(peat_live_handles() == before + 1);
    char *id = NULL;
    OK(peat_node_id(n, &id, ERR));
    CHECK(id && strlen(id) == 64);
    peat_string_free(id);
    OK(peat_node_close(n, 5000, ERR));
    CHECK(peat_live_handles() == before);
    rm_rf(dir);
    return 1;
}

static int t_two_nodes_sync(void) {
    PeatNode a, b;
    char da[64], db[64];
    CHECK(open_node(&a, da, SECRET));
    CHECK(open_node(&b, db, SECRET));
    PeatSubscription sub;
    OK(peat_doc_subscribe(b, S("tracks"), S(""), false, &sub, ERR));
    CHECK(connect_nodes(b, a));
    OK(peat_doc_put(a, S("tracks"), S("t1"), S("{\"lat\":1.5}"), ERR));
    CHECK(await_doc(sub, "t1", "{\"lat\":1.5}"));
    /* a peer's change says so, with the peer's id */
    char *a_id = NULL;
    OK(peat_node_id(a, &a_id, ERR));
    OK(peat_doc_put(a, S("tracks"), S("t2"), S("{\"lat\":2.5}"), ERR));
    int from_a = 0;
    for (int i = 0; i < 100 && !from_a; i++) {
        PeatEvent ev;
        memset(&ev, 0, sizeof ev);
        int32_t rc = call_with_err_(peat_subscription_next(sub, 200, &ev, ERR));
        if (rc == PEAT_STATUS_TIMEOUT) continue;
        CHECK(rc == PEAT_STATUS_OK);
        from_a = ev.kind == PEAT_EVENT_KIND_DOC_CHANGED && strcmp(ev.id, "t2") == 0 &&
                 ev.origin == PEAT_ORIGIN_PEER && ev.peer && strcmp(ev.peer, a_id) == 0;
        peat_event_free(&ev);
    }
    peat_string_free(a_id);
    CHECK(from_a);
    char *json = NULL;
    OK(peat_doc_get(b, S("tracks"), S("t1"), &json, ERR));
    CHECK(strcmp(json, "{\"lat\":1.5}") == 0);
    peat_string_free(json);
    PeatPeerList peers;
    OK(peat_node_peers(b, &peers, ERR));
    CHECK(peers.len == 1 && peers.items[0].connected && strlen(peers.items[0].id) == 64 &&
          peers.items[0].addr != NULL && peers.items[0].last_seen_ms > 0);
    peat_peer_list_free(peers);
    PeatNodeStats stats;
    /* counts read committed rows, which trail a received change by one group commit */
    for (int i = 0; i < 200; i++) {
        OK(peat_node_stats(b, &stats, ERR));
        if (stats.documents == 2) break;
        usleep(10000);
    }
    CHECK(stats.documents == 2 && stats.connected_peers == 1 && stats.subscriptions == 1 &&
          stats.frames_received > 0 && stats.bytes_received > 0);
    /* a normal sync refuses nothing (the Rust hostile-peer suite covers the other case) */
    CHECK(stats.refused_documents == 0);
    OK(peat_subscription_close(sub, ERR));
    OK(peat_node_close(a, 5000, ERR));
    OK(peat_node_close(b, 5000, ERR));
    rm_rf(da);
    rm_rf(db);
    return 1;
}

/* Scenario 33: per-peer sync traffic and queues, unread events and update
 * latency in the node's counters. */
static int peer_sync_of(PeatNode n, uint64_t out[4]) {
    PeatPeerList peers;
    if (call_with_err_(peat_node_peers(n, &peers, ERR)) != PEAT_STATUS_OK) return 0;
    int found = peers.len == 1;
    if (found) {
        out[0] = peers.items[0].sync_bytes_sent;
        out[1] = peers.items[0].sync_bytes_received;
        out[2] = peers.items[0].sync_queued_updates;
        out[3] = peers.items[0].sync_queued_reply_bytes;
    }
    peat_peer_list_free(peers);
    return found;
}

static int t_peer_traffic_queues_and_latency(void) {
    PeatNode a, b;
    char da[64], db[64];
    CHECK(open_node(&a, da, SECRET));
    CHECK(open_node(&b, db, SECRET));
    /* `sub` is left unread; `seen` (subscribed after it, so served after it)
     * tells when the three changes have arrived */
    PeatSubscription sub, seen;
    OK(peat_doc_subscribe(b, S("q"), S(""), false, &sub, ERR));
    OK(peat_doc_subscribe(b, S("q"), S(""), false, &seen, ERR));
    CHECK(connect_nodes(b, a));
    for (int i = 0; i < 3; i++) {
        char id[8];
        snprintf(id, sizeof id, "d%d", i);
        OK(peat_doc_put(a, S("q"), S(id), S("{\"n\":1}"), ERR));
    }
    CHECK(await_doc(seen, "d2", "{\"n\":1}"));
    OK(peat_subscription_close(seen, ERR));
    /* the three changes wait unread in B's subscription; each was timed */
    PeatNodeStats st;
    OK(peat_node_stats(b, &st, ERR));
    CHECK(st.queued_events == 3 && st.update_latency_count >= 3);
    CHECK(st.update_latency_sum_ms < st.update_latency_count * 60000);
    /* traffic both ways, per peer; A's queues towards B drain to nothing */
    uint64_t at_b[4], at_a[4];
    CHECK(peer_sync_of(b, at_b));
    CHECK(at_b[0] > 0 && at_b[1] > 0);
    int idle = 0;
    for (int i = 0; i < 500 && !idle; i++) {
        CHECK(peer_sync_of(a, at_a));
        idle = at_a[2] == 0 && at_a[3] == 0;
        if (!idle) usleep(10000);
    }
    CHECK(idle && at_a[0] >= at_b[1] / 2 && at_a[0] > 0);
    /* reading the events empties the queue */
    for (int i = 0; i < 3; i++) {
        PeatEvent ev;
        memset(&ev, 0, sizeof ev);
        OK(peat_subscription_next(sub, 5000, &ev, ERR));
        peat_event_free(&ev);
    }
    OK(peat_node_stats(b, &st, ERR));
    CHECK(st.queued_events == 0);
    OK(peat_subscription_close(sub, ERR));
    OK(peat_node_close(a, 5000, ERR));
    OK(peat_node_close(b, 5000, ERR));
    rm_rf(da);
    rm_rf(db);
    return 1;
}

static int t_get_list_delete_export_import(void) {
    PeatNode n;
    char dir[64];
    CHECK(open_node(&n, dir, SECRET));
    OK(peat_doc_put(n, S("u"), S("a"), S("{\"k\":1}"), ERR));
    OK(peat_doc_put(n, S("u"), S("b"), S("{\"k\":2}"), ERR));
    OK(peat_doc_merge_patch(n, S("u"), S("c"), S("{\"k\":3}"), ERR));
    PeatStringList ids;
    char *next = NULL;
    OK(peat_doc_list(n, S("u"), S(""), S(""), 2, &ids, &next, ERR));
    CHECK(ids.len == 2 && strcmp(ids.items[0], "a") == 0 && next != NULL);
    peat_string_list_free(ids);
    char *cursor = next;
    OK(peat_doc_list(n, S("u"), S(""), S(cursor), 10, &ids, &next, ERR));
    peat_string_free(cursor);
    CHECK(ids.len == 1 && strcmp(ids.items[0], "c") == 0 && next == NULL);
    peat_string_list_free(ids);
    bool deleted = false;
    OK(peat_doc_delete(n, S("u"), S("a"), &deleted, ERR));
    CHECK(deleted);
    char *json = NULL;
    CHECK(call_with_err_(peat_doc_get(n, S("u"), S("a"), &json, ERR)) == PEAT_STATUS_NOT_FOUND);
    CHECK(json == NULL);
    PeatBytes bytes;
    OK(peat_doc_export(n, S("u"), S("b"), &bytes, ERR));
    CHECK(bytes.len > 0);
    OK(peat_doc_import(n, S("copy"), S("b"), bytes.ptr, bytes.len, ERR));
    peat_bytes_free(bytes);
    OK(peat_doc_get(n, S("copy"), S("b"), &json, ERR));
    CHECK(strcmp(json, "{\"k\":2}") == 0);
    peat_string_free(json);
    OK(peat_node_close(n, 5000, ERR));
    rm_rf(dir);
    return 1;
}

static int t_subscribe_with_snapshot(void) {
    PeatNode n;
    char dir[64];
    CHECK(open_node(&n, dir, SECRET));
    OK(peat_doc_put(n, S("s"), S("x"), S("{\"v\":1}"), ERR));
    PeatSubscription sub;
    OK(peat_doc_subscribe(n, S("s"), S(""), true, &sub, ERR));
    PeatEvent ev;
    memset(&ev, 0, sizeof ev);
    OK(peat_subscription_next(sub, 2000, &ev, ERR));
    CHECK(ev.kind == PEAT_EVENT_KIND_DOC_CHANGED && ev.origin == PEAT_ORIGIN_SNAPSHOT && ev.peer == NULL);
    peat_event_free(&ev);
    OK(peat_doc_put(n, S("s"), S("y"), S("{\"v\":2}"), ERR));
    OK(peat_subscription_next(sub, 2000, &ev, ERR));
    CHECK(strcmp(ev.id, "y") == 0 && ev.origin == PEAT_ORIGIN_LOCAL && ev.peer == NULL);
    peat_event_free(&ev);
    CHECK(call_with_err_(peat_subscription_next(sub, 10, &ev, ERR)) == PEAT_STATUS_TIMEOUT);
    OK(peat_subscription_close(sub, ERR));
    OK(peat_node_close(n, 5000, ERR));
    rm_rf(dir);
    return 1;
}

static int t_subscribe_cycles_free_everything(void) {
    PeatNode n;
    char dir[64];
    CHECK(open_node(&n, dir, SECRET));
    uint64_t base = peat_live_handles();
    for (int i = 0; i < 2000; i++) {
        PeatSubscription sub;
        OK(peat_doc_subscribe(n, S("c"), S(""), false, &sub, ERR));
        OK(peat_subscription_close(sub, ERR));
    }
    CHECK(peat_live_handles() == base);
    OK(peat_node_close(n, 5000, ERR));
    rm_rf(dir);
    return 1;
}

static int t_unsubscribe_during_burst(void) {
    PeatNode n;
    char dir[64];
    CHECK(open_node(&n, dir, SECRET));
    PeatSubscription sub;
    OK(peat_doc_subscribe(n, S("b"), S(""), false, &sub, ERR));
    for (int i = 0; i < 50; i++) {
        char id[16];
        snprintf(id, sizeof id, "d%d", i);
        OK(peat_doc_put(n, S("b"), S(id), S("{}"), ERR));
        if (i == 25) OK(peat_subscription_close(sub, ERR));
    }
    PeatEvent ev;
    memset(&ev, 0, sizeof ev);
    /* after close returns, the handle is gone: nothing more is delivered */
    CHECK(call_with_err_(peat_subscription_next(sub, 10, &ev, ERR)) == PEAT_STATUS_INVALID_HANDLE);
    OK(peat_node_close(n, 5000, ERR));
    rm_rf(dir);
    return 1;
}

static int t_error_kinds_and_bad_input(void) {
    PeatNode n;
    char dir[64];
    CHECK(open_node(&n, dir, SECRET));
    PeatError *e = NULL;
    /* invalid argument: bad JSON, with an owned error object */
    CHECK(peat_doc_put(n, S("c"), S("d"), S("{not json"), &e) == PEAT_STATUS_INVALID_ARGUMENT);
    CHECK(e != NULL && peat_error_code(e) == PEAT_STATUS_INVALID_ARGUMENT && strlen(peat_error_message(e)) > 0);
    peat_error_free(e);
    /* errors are optional: NULL err is allowed */
    CHECK(peat_doc_put(n, S("c"), S("d"), S("[1]"), NULL) == PEAT_STATUS_INVALID_ARGUMENT);
    /* invalid UTF-8 */
    PeatStr bad = {(const uint8_t *)"\xff\xfe", 2};
    CHECK(call_with_err_(peat_doc_put(n, bad, S("d"), S("{}"), ERR)) == PEAT_STATUS_INVALID_ARGUMENT);
    /* NULL pointer with a length */
    PeatStr nul = {NULL, 5};
    CHECK(call_with_err_(peat_doc_put(n, S("c"), nul, S("{}"), ERR)) == PEAT_STATUS_INVALID_ARGUMENT);
    /* NULL out-pointer */
    CHECK(call_with_err_(peat_node_id(n, NULL, ERR)) == PEAT_STATUS_INVALID_ARGUMENT);
    CHECK(call_with_err_(peat_node_open(NULL, 1000, NO_CANCEL, NULL, ERR)) == PEAT_STATUS_INVALID_ARGUMENT);
    /* not found */
    char *json = NULL;
    CHECK(call_with_err_(peat_doc_get(n, S("c"), S("missing"), &json, ERR)) == PEAT_STATUS_NOT_FOUND);
    /* zero and stale handles */
    PeatNode zero = {0};
    CHECK(call_with_err_(peat_doc_put(zero, S("c"), S("d"), S("{}"), ERR)) == PEAT_STATUS_INVALID_HANDLE);
    PeatNode stale = {n.id + 100000};
    CHECK(call_with_err_(peat_node_close(stale, 100, ERR)) == PEAT_STATUS_INVALID_HANDLE);
    /* a subscription handle is not a node */
    PeatSubscription sub;
    OK(peat_doc_subscribe(n, S("c"), S(""), false, &sub, ERR));
    PeatNode wrong = {sub.id};
    CHECK(call_with_err_(peat_doc_put(wrong, S("c"), S("d"), S("{}"), ERR)) == PEAT_STATUS_INVALID_HANDLE);
    /* timeout */
    PeatEvent ev;
    memset(&ev, 0, sizeof ev);
    CHECK(call_with_err_(peat_subscription_next(sub, 1, &ev, ERR)) == PEAT_STATUS_TIMEOUT);
    /* closed: the node closes under an open subscription */
    OK(peat_node_close(n, 5000, ERR));
    CHECK(call_with_err_(peat_subscription_next(sub, 100, &ev, ERR)) == PEAT_STATUS_CLOSED);
    OK(peat_subscription_close(sub, ERR));
    /* double close */
    CHECK(call_with_err_(peat_node_close(n, 100, ERR)) == PEAT_STATUS_INVALID_HANDLE);
    CHECK(call_with_err_(peat_subscription_close(sub, ERR)) == PEAT_STATUS_INVALID_HANDLE);
    /* every free accepts NULL / zeroed values */
    peat_error_free(NULL);
    peat_string_free(NULL);
    PeatStringList empty_list = {NULL, 0};
    peat_string_list_free(empty_list);
    PeatBytes empty_bytes = {NULL, 0};
    peat_bytes_free(empty_bytes);
    peat_event_free(NULL);
    rm_rf(dir);
    return 1;
}

/* Document limits: JSON deeper than 100 levels or with an integer outside 64 bits
   is refused and stores nothing; u64::MAX round-trips exactly; a garbage or cut
   Automerge import is refused and leaves the document byte-identical. */
static char *deep_json(int levels) {
    char *s = malloc((size_t)levels * 6 + 2);
    if (!s) return NULL;
    char *p = s;
    for (int i = 0; i < levels; i++) p += sprintf(p, "{\"a\":");
    *p++ = '1';
    for (int i = 0; i < levels; i++) *p++ = '}';
    *p = 0;
    return s;
}

static int t_document_limits(void) {
    PeatNode n;
    char dir[64];
    CHECK(open_node(&n, dir, SECRET));
    char *json = NULL;
    const char *big = "{\"n\":18446744073709551617}";
    CHECK(call_with_err_(peat_doc_put(n, S("lim"), S("big"), S(big), ERR)) == PEAT_STATUS_INVALID_ARGUMENT);
    CHECK(call_with_err_(peat_doc_merge_patch(n, S("lim"), S("big"), S(big), ERR)) ==
          PEAT_STATUS_INVALID_ARGUMENT);
    CHECK(call_with_err_(peat_doc_get(n, S("lim"), S("big"), &json, ERR)) == PEAT_STATUS_NOT_FOUND);
    char *deep = deep_json(150);
    CHECK(deep != NULL);
    int32_t put_rc = call_with_err_(peat_doc_put(n, S("lim"), S("deep"), S(deep), ERR));
    int32_t patch_rc = call_with_err_(peat_doc_merge_patch(n, S("lim"), S("deep"), S(deep), ERR));
    free(deep);
    CHECK(put_rc == PEAT_STATUS_INVALID_ARGUMENT);
    CHECK(patch_rc == PEAT_STATUS_INVALID_ARGUMENT);
    CHECK(call_with_err_(peat_doc_get(n, S("lim"), S("deep"), &json, ERR)) == PEAT_STATUS_NOT_FOUND);
    /* the largest u64 is stored exactly, never as a float */
    OK(peat_doc_put(n, S("lim"), S("max"), S("{\"n\":18446744073709551615}"), ERR));
    OK(peat_doc_get(n, S("lim"), S("max"), &json, ERR));
    int same = strcmp(json, "{\"n\":18446744073709551615}") == 0;
    peat_string_free(json);
    CHECK(same);
    /* imports are all or nothing */
    OK(peat_doc_put(n, S("lim"), S("src"), S("{\"y\":\"a longer value so the save has some body to cut\"}"), ERR));
    PeatBytes save, before, after;
    OK(peat_doc_export(n, S("lim"), S("src"), &save, ERR));
    OK(peat_doc_export(n, S("lim"), S("max"), &before, ERR));
    static const uint8_t garbage[] = "\x85\x6f\x4a\x83 definitely not automerge";
    int32_t garbage_rc = call_with_err_(peat_doc_import(n, S("lim"), S("max"), garbage, sizeof garbage - 1, ERR));
    int32_t cut_rc = call_with_err_(peat_doc_import(n, S("lim"), S("max"), save.ptr, save.len / 2, ERR));
    peat_bytes_free(save);
    int32_t export_rc = call_with_err_(peat_doc_export(n, S("lim"), S("max"), &after, ERR));
    int identical = export_rc == PEAT_STATUS_OK && after.len == before.len &&
                    memcmp(after.ptr, before.ptr, before.len) == 0;
    peat_bytes_free(before);
    if (export_rc == PEAT_STATUS_OK) peat_bytes_free(after);
    CHECK(garbage_rc == PEAT_STATUS_INVALID_ARGUMENT);
    CHECK(cut_rc == PEAT_STATUS_INVALID_ARGUMENT);
    CHECK(identical);
    OK(peat_node_close(n, 5000, ERR));
    rm_rf(dir);
    return 1;
}

/* Every peat_*_free accepts NULL / zeroed values, and empty results are
   {NULL, 0} (what the header says), freed like any other. */
static int t_free_accepts_null_and_zeroed(void) {
    peat_error_free(NULL);
    peat_string_free(NULL);
    PeatStringList zero_list;
    memset(&zero_list, 0, sizeof zero_list);
    peat_string_list_free(zero_list);
    PeatBytes zero_bytes;
    memset(&zero_bytes, 0, sizeof zero_bytes);
    peat_bytes_free(zero_bytes);
    PeatPeerList zero_peers;
    memset(&zero_peers, 0, sizeof zero_peers);
    peat_peer_list_free(zero_peers);
    peat_event_free(NULL);
    PeatEvent zero_event;
    memset(&zero_event, 0, sizeof zero_event);
    peat_event_free(&zero_event);
    PeatCancel zero_cancel = {0};
    OK(peat_cancel_free(zero_cancel, ERR));
    CHECK(peat_cancel_free(zero_cancel, NULL) == PEAT_STATUS_OK);
    PeatTransfer zero_transfer = {0};
    OK(peat_transfer_free(zero_transfer, ERR));
    peat_message_event_free(NULL);
    PeatMessageEvent zero_message;
    memset(&zero_message, 0, sizeof zero_message);
    peat_message_event_free(&zero_message);
    PeatMessageList zero_messages;
    memset(&zero_messages, 0, sizeof zero_messages);
    peat_message_list_free(zero_messages);
    peat_beacon_event_free(NULL);
    PeatBeaconEvent zero_beacon_event;
    memset(&zero_beacon_event, 0, sizeof zero_beacon_event);
    peat_beacon_event_free(&zero_beacon_event);
    PeatBeaconList zero_beacons;
    memset(&zero_beacons, 0, sizeof zero_beacons);
    peat_beacon_list_free(zero_beacons);
    /* a real handle freed twice is still an error */
    PeatCancel token;
    OK(peat_cancel_new(&token, ERR));
    OK(peat_cancel_free(token, ERR));
    CHECK(call_with_err_(peat_cancel_free(token, ERR)) == PEAT_STATUS_INVALID_HANDLE);

    /* empty results: NULL items with len 0 */
    PeatNode n;
    char dir[64];
    CHECK(open_node(&n, dir, SECRET));
    PeatStringList ids;
    memset(&ids, 0xab, sizeof ids);
    char *next = (char *)&ids;
    OK(peat_doc_list(n, S("empty"), S(""), S(""), 10, &ids, &next, ERR));
    CHECK(ids.len == 0 && ids.items == NULL && next == NULL);
    peat_string_list_free(ids);
    PeatStringList connected;
    memset(&connected, 0xab, sizeof connected);
    OK(peat_node_connected_peers(n, &connected, ERR));
    CHECK(connected.len == 0 && connected.items == NULL);
    peat_string_list_free(connected);
    PeatPeerList peers;
    memset(&peers, 0xab, sizeof peers);
    OK(peat_node_peers(n, &peers, ERR));
    CHECK(peers.len == 0 && peers.items == NULL);
    peat_peer_list_free(peers);
    PeatBeaconList none;
    memset(&none, 0xab, sizeof none);
    OK(peat_beacons_since(n, 0, &none, ERR));
    CHECK(none.len == 0 && none.items == NULL);
    peat_beacon_list_free(none);
    PeatMessageList no_messages;
    memset(&no_messages, 0xab, sizeof no_messages);
    OK(peat_latest_messages(n, S("*"), &no_messages, ERR));
    CHECK(no_messages.len == 0 && no_messages.items == NULL);
    peat_message_list_free(no_messages);
    /* non-empty ones are freed the same way */
    OK(peat_doc_put(n, S("one"), S("a"), S("{\"k\":1}"), ERR));
    OK(peat_doc_list(n, S("one"), S(""), S(""), 10, &ids, &next, ERR));
    CHECK(ids.len == 1 && ids.items != NULL && strcmp(ids.items[0], "a") == 0);
    peat_string_list_free(ids);
    PeatBytes bytes;
    OK(peat_doc_export(n, S("one"), S("a"), &bytes, ERR));
    CHECK(bytes.len > 0 && bytes.ptr != NULL);
    peat_bytes_free(bytes);
    OK(peat_node_close(n, 5000, ERR));
    rm_rf(dir);
    return 1;
}

/* NUL inside a collection or id is refused by every call that takes one (a C
   string would end there: C and Go would see another id). */
static int t_nul_in_names_is_refused(void) {
    PeatNode n;
    char dir[64];
    CHECK(open_node(&n, dir, SECRET));
    PeatStr id_nul = {(const uint8_t *)"a\0b", 3};
    PeatStr coll_nul = {(const uint8_t *)"c\0d", 3};
    PeatStr colls[2] = {S("c"), coll_nul};
    PeatStr ids[2] = {id_nul, S("a")};
    for (int k = 0; k < 2; k++) {
        PeatStr c = colls[k], i = ids[k];
        CHECK(call_with_err_(peat_doc_put(n, c, i, S("{}"), ERR)) == PEAT_STATUS_INVALID_ARGUMENT);
        CHECK(strstr(last_message, "NUL") != NULL);
        CHECK(call_with_err_(peat_doc_merge_patch(n, c, i, S("{}"), ERR)) == PEAT_STATUS_INVALID_ARGUMENT);
        char *json = NULL;
        CHECK(call_with_err_(peat_doc_get(n, c, i, &json, ERR)) == PEAT_STATUS_INVALID_ARGUMENT);
        bool deleted;
        CHECK(call_with_err_(peat_doc_delete(n, c, i, &deleted, ERR)) == PEAT_STATUS_INVALID_ARGUMENT);
        PeatBytes b;
        CHECK(call_with_err_(peat_doc_export(n, c, i, &b, ERR)) == PEAT_STATUS_INVALID_ARGUMENT);
        const uint8_t junk[1] = {0};
        CHECK(call_with_err_(peat_doc_import(n, c, i, junk, 1, ERR)) == PEAT_STATUS_INVALID_ARGUMENT);
        PeatSubscription sub;
        CHECK(call_with_err_(peat_doc_subscribe(n, c, i, false, &sub, ERR)) == PEAT_STATUS_INVALID_ARGUMENT);
        PeatCallback cb = {NULL, NULL, NULL};
        CHECK(call_with_err_(peat_doc_subscribe_callback(n, c, i, false, cb, &sub, ERR)) ==
              PEAT_STATUS_INVALID_ARGUMENT);
    }
    PeatSubscription sub;
    CHECK(call_with_err_(peat_doc_subscribe(n, coll_nul, S(""), false, &sub, ERR)) == PEAT_STATUS_INVALID_ARGUMENT);
    PeatStringList list;
    char *next = NULL;
    CHECK(call_with_err_(peat_doc_list(n, coll_nul, S(""), S(""), 10, &list, &next, ERR)) ==
          PEAT_STATUS_INVALID_ARGUMENT);
    CHECK(call_with_err_(peat_doc_list(n, S("c"), id_nul, S(""), 10, &list, &next, ERR)) ==
          PEAT_STATUS_INVALID_ARGUMENT);
    CHECK(call_with_err_(peat_doc_list(n, S("c"), S(""), id_nul, 10, &list, &next, ERR)) ==
          PEAT_STATUS_INVALID_ARGUMENT);
    /* nothing was stored under a mangled id */
    OK(peat_doc_list(n, S("c"), S(""), S(""), 10, &list, &next, ERR));
    CHECK(list.len == 0);
    peat_string_list_free(list);
    OK(peat_node_close(n, 5000, ERR));
    rm_rf(dir);
    return 1;
}

/* A formation secret from the library: 32 random bytes, never all zeros; an
   all-zero secret (one never set) is refused when a node opens. */
static int t_formation_secret_generate(void) {
    uint8_t a[32], b[32], zero[32];
    memset(zero, 0, sizeof zero);
    OK(peat_formation_secret_generate(a, sizeof a, ERR));
    OK(peat_formation_secret_generate(b, sizeof b, ERR));
    CHECK(memcmp(a, zero, 32) != 0 && memcmp(a, b, 32) != 0);
    CHECK(call_with_err_(peat_formation_secret_generate(a, 31, ERR)) == PEAT_STATUS_INVALID_ARGUMENT);
    CHECK(call_with_err_(peat_formation_secret_generate(NULL, 32, ERR)) == PEAT_STATUS_INVALID_ARGUMENT);
    PeatNode n;
    char dir[64];
    CHECK(!open_node(&n, dir, zero));
    CHECK(strstr(last_message, "zero") != NULL);
    rm_rf(dir);
    CHECK(open_node(&n, dir, a));
    OK(peat_node_close(n, 5000, ERR));
    rm_rf(dir);
    return 1;
}

static int t_admission_refused(void) {
    PeatNode a, b;
    char da[64], db[64];
    CHECK(open_node(&a, da, SECRET));
    CHECK(open_node(&b, db, OTHER_SECRET));
    PeatSubscription events;
    OK(peat_peer_subscribe(a, &events, ERR));
    PeatStringList addrs;
    OK(peat_node_addrs(a, &addrs, ERR));
    CHECK(call_with_err_(peat_node_connect(b, S(addrs.items[0]), 10000, NO_CANCEL, ERR)) == PEAT_STATUS_ADMISSION_REFUSED);
    peat_string_list_free(addrs);
    PeatEvent ev;
    memset(&ev, 0, sizeof ev);
    OK(peat_subscription_next(events, 5000, &ev, ERR));
    CHECK(ev.kind == PEAT_EVENT_KIND_PEER_ADMISSION_REFUSED && ev.peer && ev.reason);
    peat_event_free(&ev);
    OK(peat_subscription_close(events, ERR));
    OK(peat_node_close(a, 5000, ERR));
    OK(peat_node_close(b, 5000, ERR));
    rm_rf(da);
    rm_rf(db);
    return 1;
}

static int t_close_with_subscriptions_in_flight(void) {
    PeatNode a, b;
    char da[64], db[64];
    CHECK(open_node(&a, da, SECRET));
    CHECK(open_node(&b, db, SECRET));
    PeatSubscription s1, s2;
    OK(peat_doc_subscribe(a, S("x"), S(""), false, &s1, ERR));
    OK(peat_peer_subscribe(a, &s2, ERR));
    CHECK(connect_nodes(b, a));
    for (int i = 0; i < 20; i++) OK(peat_doc_put(b, S("x"), S("k"), S("{\"i\":1}"), ERR));
    /* and a slow blob transfer from B into A */
    char src[128];
    snprintf(src, sizeof src, "%s/blob.bin", db);
    FILE *f = fopen(src, "wb");
    CHECK(f != NULL);
    for (int i = 0; i < (1 << 20); i++) fputc(i * 7 % 251, f);
    fclose(f);
    PeatBlobInfo info;
    OK(peat_blob_add_file(b, S(src), 10000, NO_CANCEL, &info, ERR));
    PeatTransfer t;
    OK(peat_blob_fetch(a, S(info.hash), NULL, 0, PEAT_TRANSFER_PROFILE_EDGE, 128u << 10, 0, S(""), &t, ERR));
    PeatTransferProgress p;
    memset(&p, 0, sizeof p);
    for (int i = 0; i < 1000 && p.done == 0; i++) {
        OK(peat_transfer_progress(t, &p, ERR));
        usleep(10000);
    }
    CHECK(p.done > 0 && !p.finished);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    OK(peat_node_close(a, 2000, ERR));
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    CHECK(secs < 3.0);
    PeatBlobInfo got;
    CHECK(call_with_err_(peat_transfer_wait(t, 5000, NO_CANCEL, &got, ERR)) == PEAT_STATUS_CANCELLED);
    OK(peat_transfer_free(t, ERR));
    OK(peat_subscription_close(s1, ERR));
    OK(peat_subscription_close(s2, ERR));
    OK(peat_node_close(b, 2000, ERR));
    rm_rf(da);
    rm_rf(db);
    return 1;
}

/* ---- push delivery ---- */

typedef struct {
    pthread_mutex_t mu;
    int events;
    int drops;
    int closed_events;
    int reentrant_ok; /* an SDK call made from inside the callback succeeded */
    int after_close;  /* callbacks that started after close returned */
    int closing_done;
    PeatNode node;
} cb_state;

static void on_event(void *ctx, const PeatEvent *ev) {
    cb_state *st = (cb_state *)ctx;
    pthread_mutex_lock(&st->mu);
    if (st->closing_done) st->after_close++;
    if (ev->kind == PEAT_EVENT_KIND_CLOSED) st->closed_events++;
    else st->events++;
    PeatNode node = st->node;
    pthread_mutex_unlock(&st->mu);
    if (ev->kind == PEAT_EVENT_KIND_DOC_CHANGED && strcmp(ev->id, "first") == 0) {
        /* calling back into the SDK, including a blocking call, from the callback */
        char *json = NULL;
        if (peat_doc_get(node, S(ev->collection), S(ev->id), &json, NULL) == PEAT_STATUS_OK) {
            pthread_mutex_lock(&st->mu);
            st->reentrant_ok = strcmp(json, ev->json) == 0;
            pthread_mutex_unlock(&st->mu);
            peat_string_free(json);
        }
    }
}

static void on_drop(void *ctx) {
    cb_state *st = (cb_state *)ctx;
    pthread_mutex_lock(&st->mu);
    st->drops++;
    pthread_mutex_unlock(&st->mu);
}

static int wait_for(cb_state *st, int *field, int want) {
    for (int i = 0; i < 500; i++) {
        pthread_mutex_lock(&st->mu);
        int v = *field;
        pthread_mutex_unlock(&st->mu);
        if (v >= want) return 1;
        usleep(10000);
    }
    return 0;
}

static int t_callback_subscription(void) {
    PeatNode n;
    char dir[64];
    CHECK(open_node(&n, dir, SECRET));
    cb_state st;
    memset(&st, 0, sizeof st);
    pthread_mutex_init(&st.mu, NULL);
    st.node = n;
    PeatCallback cb = {&st, on_event, on_drop};
    PeatSubscription sub;
    OK(peat_doc_subscribe_callback(n, S("cb"), S(""), false, cb, &sub, ERR));
    OK(peat_doc_put(n, S("cb"), S("first"), S("{\"a\":1}"), ERR));
    CHECK(wait_for(&st, &st.events, 1));
    CHECK(wait_for(&st, &st.reentrant_ok, 1));
    /* a burst, then close in the middle: nothing starts after close returns */
    for (int i = 0; i < 200; i++) {
        char id[16];
        snprintf(id, sizeof id, "b%d", i);
        OK(peat_doc_put(n, S("cb"), S(id), S("{}"), ERR));
        if (i == 100) {
            OK(peat_subscription_close(sub, ERR));
            pthread_mutex_lock(&st.mu);
            st.closing_done = 1;
            pthread_mutex_unlock(&st.mu);
        }
    }
    usleep(100000);
    pthread_mutex_lock(&st.mu);
    int drops = st.drops, after = st.after_close;
    pthread_mutex_unlock(&st.mu);
    CHECK(drops == 1);
    CHECK(after == 0);
    CHECK(call_with_err_(peat_subscription_close(sub, ERR)) == PEAT_STATUS_INVALID_HANDLE);
    OK(peat_node_close(n, 5000, ERR));
    pthread_mutex_destroy(&st.mu);
    rm_rf(dir);
    return 1;
}

static int t_callback_sees_node_close(void) {
    PeatNode n;
    char dir[64];
    CHECK(open_node(&n, dir, SECRET));
    cb_state st;
    memset(&st, 0, sizeof st);
    pthread_mutex_init(&st.mu, NULL);
    st.node = n;
    PeatCallback cb = {&st, on_event, on_drop};
    PeatSubscription sub;
    OK(peat_peer_subscribe_callback(n, cb, &sub, ERR));
    OK(peat_node_close(n, 5000, ERR));
    CHECK(wait_for(&st, &st.closed_events, 1));
    CHECK(st.drops == 0); /* the cleanup hook waits for the close of the handle */
    OK(peat_subscription_close(sub, ERR));
    CHECK(st.drops == 1);
    pthread_mutex_destroy(&st.mu);
    rm_rf(dir);
    return 1;
}

static int subscription_cycles = 0;
static void count_drop(void *ctx) {
    (void)ctx;
    subscription_cycles++;
}

static int t_callback_cycles_free_everything(void) {
    PeatNode n;
    char dir[64];
    CHECK(open_node(&n, dir, SECRET));
    uint64_t base = peat_live_handles();
    subscription_cycles = 0;
    for (int i = 0; i < 1000; i++) {
        PeatCallback cb = {NULL, NULL, count_drop};
        PeatSubscription sub;
        OK(peat_doc_subscribe_callback(n, S("c"), S(""), false, cb, &sub, ERR));
        OK(peat_subscription_close(sub, ERR));
    }
    CHECK(subscription_cycles == 1000);
    CHECK(peat_live_handles() == base);
    OK(peat_node_close(n, 5000, ERR));
    rm_rf(dir);
    return 1;
}

/* A queued subscription: the library bounds the waiting events, says when to
   read (on_ready), reports what a slow reader missed as LAGGED, signals the
   node's end, and runs on_drop once at close. */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int ready;
    int drops;
} ready_state;

static void on_ready(void *ctx) {
    ready_state *st = (ready_state *)ctx;
    pthread_mutex_lock(&st->mu);
    st->ready++;
    pthread_cond_signal(&st->cv);
    pthread_mutex_unlock(&st->mu);
}

static void on_ready_drop(void *ctx) {
    ready_state *st = (ready_state *)ctx;
    pthread_mutex_lock(&st->mu);
    st->drops++;
    pthread_mutex_unlock(&st->mu);
}

/* Waits (up to 5 s) for a ready signal and consumes it. */
static int await_ready(ready_state *st) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 5;
    pthread_mutex_lock(&st->mu);
    while (st->ready == 0) {
        if (pthread_cond_timedwait(&st->cv, &st->mu, &until) != 0) break;
    }
    int got = st->ready > 0;
    if (got) st->ready--;
    pthread_mutex_unlock(&st->mu);
    return got;
}

static int t_queued_subscription(void) {
    uint64_t base = peat_live_handles();
    PeatNode n;
    char dir[64];
    CHECK(open_node(&n, dir, SECRET));
    /* static: a failed CHECK leaves the subscription (and its ctx) alive */
    static ready_state st;
    memset(&st, 0, sizeof st);
    pthread_mutex_init(&st.mu, NULL);
    pthread_cond_init(&st.cv, NULL);
    PeatReadyCallback cb = {&st, on_ready, on_ready_drop};
    PeatSubscription sub;
    /* refused (an id over 512 bytes): on_drop never runs, the caller keeps ctx */
    char long_id[600];
    memset(long_id, 'x', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = 0;
    CHECK(call_with_err_(peat_doc_subscribe_queued(n, S("q"), S(long_id), false, 4, cb, &sub, ERR)) ==
          PEAT_STATUS_INVALID_ARGUMENT);
    OK(peat_doc_subscribe_queued(n, S("q"), S(""), false, 4, cb, &sub, ERR));
    /* the reader reads only after the writes (each durable): it has fallen behind */
    for (int i = 0; i < 20; i++) {
        char id[16];
        snprintf(id, sizeof id, "q%02d", i);
        OK(peat_doc_put(n, S("q"), S(id), S("{\"v\":1}"), ERR));
    }
    uint64_t lagged = 0;
    int docs = 0, last = 0;
    while (!last) {
        CHECK(await_ready(&st));
        for (;;) {
            PeatEvent ev;
            memset(&ev, 0, sizeof ev);
            int32_t rc = call_with_err_(peat_subscription_next(sub, 0, &ev, ERR));
            if (rc == PEAT_STATUS_TIMEOUT) break; /* drained: on_ready runs again when more wait */
            CHECK(rc == PEAT_STATUS_OK);
            if (ev.kind == PEAT_EVENT_KIND_LAGGED) lagged += ev.lagged;
            if (ev.kind == PEAT_EVENT_KIND_DOC_CHANGED) {
                docs++;
                last = strcmp(ev.id, "q19") == 0;
            }
            peat_event_free(&ev);
        }
    }
    CHECK(lagged > 0 && lagged + (uint64_t)docs == 20);
    /* the node's end: signalled, then reading returns CLOSED */
    OK(peat_node_close(n, 5000, ERR));
    int32_t rc;
    do {
        CHECK(await_ready(&st));
        PeatEvent ev;
        memset(&ev, 0, sizeof ev);
        rc = call_with_err_(peat_subscription_next(sub, 0, &ev, ERR));
        if (rc == PEAT_STATUS_OK) peat_event_free(&ev);
    } while (rc != PEAT_STATUS_CLOSED);
    CHECK(st.drops == 0);
    OK(peat_subscription_close(sub, ERR));
    CHECK(st.drops == 1);
    CHECK(peat_live_handles() == base);
    pthread_cond_destroy(&st.cv);
    pthread_mutex_destroy(&st.mu);
    rm_rf(dir);
    return 1;
}

/* A failed subscribe never calls the callback's on_drop: the caller keeps its
   ctx (here a malloc'd block freed below; a second free would show under valgrind). */
static int owned_drops = 0;
static void free_owned(void *ctx) {
    owned_drops++;
    free(ctx);
}
static void owned_progress(void *ctx, const PeatTransferProgress *p) {
    (void)ctx;
    (void)p;
}

static int t_failed_subscribe_keeps_ctx(void) {
    PeatNode n;
    char dir[64];
    CHECK(open_node(&n, dir, SECRET));
    uint64_t base = peat_live_handles();
    owned_drops = 0;
    PeatNode zero = {0};
    PeatSubscription sub = {0};
    void *ctx = malloc(16);
    PeatCallback cb = {ctx, NULL, free_owned};
    CHECK(call_with_err_(peat_doc_subscribe_callback(zero, S("c"), S(""), false, cb, &sub, ERR)) ==
          PEAT_STATUS_INVALID_HANDLE);
    CHECK(call_with_err_(peat_peer_subscribe_callback(zero, cb, &sub, ERR)) == PEAT_STATUS_INVALID_HANDLE);
    /* NULL out-pointer, and an invalid document id, on a live node */
    CHECK(call_with_err_(peat_doc_subscribe_callback(n, S("c"), S(""), false, cb, NULL, ERR)) ==
          PEAT_STATUS_INVALID_ARGUMENT);
    CHECK(call_with_err_(peat_peer_subscribe_callback(n, cb, NULL, ERR)) == PEAT_STATUS_INVALID_ARGUMENT);
    char long_id[600];
    memset(long_id, 'x', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = 0;
    CHECK(call_with_err_(peat_doc_subscribe_callback(n, S("c"), S(long_id), false, cb, &sub, ERR)) ==
          PEAT_STATUS_INVALID_ARGUMENT);
    PeatTransfer no_transfer = {0};
    PeatProgressCallback pcb = {ctx, owned_progress, free_owned};
    CHECK(call_with_err_(peat_transfer_on_progress(no_transfer, pcb, &sub, ERR)) == PEAT_STATUS_INVALID_HANDLE);
    CHECK(owned_drops == 0);
    CHECK(peat_live_handles() == base);
    /* the caller still owns ctx; now a successful subscribe takes it, and
       on_drop frees it exactly once after close */
    OK(peat_doc_subscribe_callback(n, S("c"), S(""), false, cb, &sub, ERR));
    CHECK(owned_drops == 0);
    OK(peat_subscription_close(sub, ERR));
    CHECK(owned_drops == 1);
    /* a closed node handle */
    OK(peat_node_close(n, 5000, ERR));
    ctx = malloc(16);
    PeatCallback cb2 = {ctx, NULL, free_owned};
    CHECK(call_with_err_(peat_doc_subscribe_callback(n, S("c"), S(""), false, cb2, &sub, ERR)) ==
          PEAT_STATUS_INVALID_HANDLE);
    CHECK(call_with_err_(peat_peer_subscribe_callback(n, cb2, &sub, ERR)) == PEAT_STATUS_INVALID_HANDLE);
    CHECK(owned_drops == 1);
    free(ctx);
    rm_rf(dir);
    return 1;
}

typedef struct {
    pthread_mutex_t mu;
    int records;
    int dropped;
} log_state;

static void on_log(void *ctx, int32_t level, const char *target, const char *message) {
    log_state *st = (log_state *)ctx;
    (void)target;
    if (level >= 1 && level <= 5 && message) {
        pthread_mutex_lock(&st->mu);
        st->records++;
        pthread_mutex_unlock(&st->mu);
    }
}

static void on_log_drop(void *ctx) {
    log_state *st = (log_state *)ctx;
    pthread_mutex_lock(&st->mu);
    st->dropped++;
    pthread_mutex_unlock(&st->mu);
}

static int t_log_callback(void) {
    log_state st;
    memset(&st, 0, sizeof st);
    pthread_mutex_init(&st.mu, NULL);
    PeatLogCallback cb = {&st, on_log, on_log_drop};
    OK(peat_log_set_callback(cb, 3, ERR));
    PeatNode n;
    char dir[64];
    CHECK(open_node(&n, dir, SECRET)); /* logs "node open" at info */
    OK(peat_node_close(n, 5000, ERR));
    int got = 0;
    for (int i = 0; i < 200 && !got; i++) {
        pthread_mutex_lock(&st.mu);
        got = st.records > 0;
        pthread_mutex_unlock(&st.mu);
        if (!got) usleep(10000);
    }
    CHECK(got);
    OK(peat_log_clear_callback(ERR));
    CHECK(st.dropped == 1);
    pthread_mutex_destroy(&st.mu);
    rm_rf(dir);
    return 1;
}

static const char *self_path = "";

/* Process exit with an open node: run ourselves as a child that opens a node and
   returns from main without closing it; it must exit 0, promptly. */
static int t_exit_with_open_node(void) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "timeout 20 '%s' --exit-with-open-node", self_path);
    int rc = system(cmd);
    CHECK(rc == 0);
    return 1;
}

static int child_exit_with_open_node(void) {
    PeatNode n;
    char dir[64];
    if (!open_node(&n, dir, SECRET)) return 2;
    if (peat_doc_put(n, S("x"), S("y"), S("{}"), NULL) != PEAT_STATUS_OK) return 3;
    return 0; /* node left open on purpose */
}

static void *cancel_later(void *arg) {
    usleep(200000);
    peat_cancel(*(PeatCancel *)arg, NULL);
    return NULL;
}

static int t_cancel_connect(void) {
    PeatNode n;
    char dir[64];
    CHECK(open_node(&n, dir, SECRET));
    PeatCancel token;
    OK(peat_cancel_new(&token, ERR));
    /* a peer that never answers */
    const char *ghost = "3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29@127.0.0.1:9";
    pthread_t t;
    CHECK(pthread_create(&t, NULL, cancel_later, &token) == 0);
    CHECK(call_with_err_(peat_node_connect(n, S(ghost), 30000, token, ERR)) == PEAT_STATUS_CANCELLED);
    pthread_join(t, NULL);
    OK(peat_cancel_free(token, ERR));
    CHECK(call_with_err_(peat_cancel_free(token, ERR)) == PEAT_STATUS_INVALID_HANDLE);
    OK(peat_node_close(n, 5000, ERR));
    rm_rf(dir);
    return 1;
}

/* Reopens a data dir another process shut down with its node open: the
   database must have been released and (with check_doc) the last acknowledged
   write be there. */
static int child_reopen(const char *dir, int check_doc) {
    PeatNodeOptions o;
    memset(&o, 0, sizeof o);
    o.data_dir = S(dir);
    o.formation_id = S("conformance");
    o.formation_secret = SECRET;
    o.formation_secret_len = 32;
    o.listen = S("127.0.0.1:0");
    PeatNode n;
    PeatError *e = NULL;
    if (peat_node_open(&o, 10000, NO_CANCEL, &n, &e) != PEAT_STATUS_OK) {
        fprintf(stderr, "reopen after shutdown: %s\n", e ? peat_error_message(e) : "?");
        peat_error_free(e);
        return 2;
    }
    char *json = NULL;
    int rc = !check_doc || (peat_doc_get(n, S("s"), S("last"), &json, NULL) == PEAT_STATUS_OK &&
                            strcmp(json, "{\"n\":99}") == 0)
                 ? 0
                 : 3;
    peat_string_free(json);
    if (peat_node_close(n, 5000, NULL) != PEAT_STATUS_OK) rc = 4;
    return rc;
}

/* Runs last: afterwards every call reports SHUT_DOWN. A node left open (with a
   subscription and a connected peer) is closed by shutdown: its store is
   flushed and its database released, so another process reopens the data dir
   while this one still runs and finds the last acknowledged write. */
static int t_shutdown(void) {
    PeatNode n, peer;
    char dir[64], peer_dir[64];
    CHECK(open_node(&n, dir, SECRET));
    CHECK(open_node(&peer, peer_dir, SECRET));
    CHECK(connect_nodes(peer, n));
    PeatSubscription sub;
    OK(peat_doc_subscribe(n, S("s"), S(""), true, &sub, ERR));
    char doc[32];
    for (int i = 0; i < 100; i++) {
        snprintf(doc, sizeof doc, "{\"n\":%d}", i);
        OK(peat_doc_put(n, S("s"), S("last"), S(doc), ERR));
    }
    OK(peat_shutdown(5000, ERR));
    CHECK(peat_live_handles() == 0);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "timeout 30 '%s' --reopen '%s'", self_path, dir);
    CHECK(system(cmd) == 0);
    snprintf(cmd, sizeof cmd, "timeout 30 '%s' --reopen-peer '%s'", self_path, peer_dir);
    CHECK(system(cmd) == 0);
    rm_rf(peer_dir);
    PeatNodeOptions o;
    memset(&o, 0, sizeof o);
    o.data_dir = S(dir);
    o.formation_id = S("x");
    o.formation_secret = SECRET;
    o.formation_secret_len = 32;
    PeatNode m;
    CHECK(call_with_err_(peat_node_open(&o, 1000, NO_CANCEL, &m, ERR)) == PEAT_STATUS_SHUT_DOWN);
    /* refused after shutdown, before anything is installed: on_drop is not
       called and the caller keeps (and frees) its ctx */
    owned_drops = 0;
    void *ctx = malloc(16);
    PeatLogCallback lcb = {ctx, NULL, free_owned};
    CHECK(call_with_err_(peat_log_set_callback(lcb, 3, ERR)) == PEAT_STATUS_SHUT_DOWN);
    CHECK(owned_drops == 0);
    free(ctx);
    OK(peat_log_clear_callback(ERR));
    CHECK(owned_drops == 0);
    OK(peat_shutdown(5000, ERR)); /* idempotent */
    rm_rf(dir);
    return 1;
}

/* ---- blobs ---- */

typedef struct {
    pthread_mutex_t mu;
    uint64_t last_done;
    int updates;
    int non_monotonic;
    int finished;
    int drops;
} progress_state;

static void on_progress(void *ctx, const PeatTransferProgress *p) {
    progress_state *st = (progress_state *)ctx;
    pthread_mutex_lock(&st->mu);
    if (p->done < st->last_done) st->non_monotonic++;
    st->last_done = p->done;
    st->updates++;
    if (p->finished) st->finished++;
    pthread_mutex_unlock(&st->mu);
}

static void on_progress_drop(void *ctx) {
    progress_state *st = (progress_state *)ctx;
    pthread_mutex_lock(&st->mu);
    st->drops++;
    pthread_mutex_unlock(&st->mu);
}

static int t_blob_fetch_progress_cancel_resume(void) {
    size_t handles_before = peat_live_handles();
    PeatNode a, b;
    char da[64], db[64];
    CHECK(open_node(&a, da, SECRET));
    CHECK(open_node(&b, db, SECRET));
    CHECK(connect_nodes(b, a));
    /* a 2 MiB source file that does not repeat */
    char src[128], out[128];
    snprintf(src, sizeof src, "%s/source.bin", da);
    snprintf(out, sizeof out, "%s/fetched.bin", db);
    size_t size = 2u << 20;
    unsigned char *data = malloc(size);
    CHECK(data != NULL);
    unsigned int seed = 12345;
    for (size_t i = 0; i < size; i++) data[i] = (unsigned char)(rand_r(&seed) >> 7);
    FILE *f = fopen(src, "wb");
    CHECK(f && fwrite(data, 1, size, f) == size);
    fclose(f);
    PeatBlobInfo info;
    OK(peat_blob_add_file(a, S(src), 10000, NO_CANCEL, &info, ERR));
    CHECK(info.size == size && strlen(info.hash) == 64 && strlen(info.sha256) == 64);
    char *a_id = NULL;
    OK(peat_node_id(a, &a_id, ERR));
    PeatStr providers[1] = {S(a_id)};

    /* slow fetch with pushed progress, cancelled part-way */
    progress_state st;
    memset(&st, 0, sizeof st);
    pthread_mutex_init(&st.mu, NULL);
    PeatTransfer t;
    OK(peat_blob_fetch(b, S(info.hash), providers, 1, PEAT_TRANSFER_PROFILE_EDGE, 256u << 10, 0, S(""), &t, ERR));
    PeatProgressCallback cb = {&st, on_progress, on_progress_drop};
    PeatSubscription psub;
    OK(peat_transfer_on_progress(t, cb, &psub, ERR));
    PeatTransferProgress p;
    memset(&p, 0, sizeof p);
    for (int i = 0; i < 3000 && p.done < (256u << 10); i++) {
        OK(peat_transfer_progress(t, &p, ERR));
        usleep(10000);
    }
    CHECK(p.done >= (256u << 10) && p.total == size);
    OK(peat_transfer_cancel(t, ERR));
    PeatBlobInfo got;
    CHECK(call_with_err_(peat_transfer_wait(t, 10000, NO_CANCEL, &got, ERR)) == PEAT_STATUS_CANCELLED);
    PeatBlobStatus bs;
    OK(peat_blob_status(b, S(info.hash), &bs, ERR));
    CHECK(bs.state == PEAT_BLOB_STATE_PARTIAL && bs.size == size && bs.present >= (256u << 10) && bs.present < size);
    OK(peat_subscription_close(psub, ERR));
    OK(peat_transfer_free(t, ERR));
    pthread_mutex_lock(&st.mu);
    CHECK(st.updates > 0 && st.non_monotonic == 0 && st.drops == 1);
    pthread_mutex_unlock(&st.mu);

    /* fetch again at full speed: resumes, completes, verifies */
    OK(peat_blob_fetch(b, S(info.hash), providers, 1, PEAT_TRANSFER_PROFILE_TACTICAL, 0, 0, S(""), &t, ERR));
    OK(peat_transfer_wait(t, 20000, NO_CANCEL, &got, ERR));
    CHECK(strcmp(got.hash, info.hash) == 0 && strcmp(got.sha256, info.sha256) == 0);
    OK(peat_transfer_progress(t, &p, ERR));
    CHECK(p.finished && p.resumed >= bs.present && p.received == size - p.resumed);
    OK(peat_transfer_free(t, ERR));
    uint64_t n = 0;
    OK(peat_blob_export(b, S(info.hash), S(out), 10000, NO_CANCEL, &n, ERR));
    CHECK(n == size);
    f = fopen(out, "rb");
    CHECK(f != NULL);
    unsigned char *back = malloc(size);
    CHECK(back && fread(back, 1, size, f) == size);
    fclose(f);
    CHECK(memcmp(back, data, size) == 0);
    free(back);
    free(data);
    /* bad input */
    CHECK(call_with_err_(peat_blob_fetch(b, S("nothex"), NULL, 0, PEAT_TRANSFER_PROFILE_TACTICAL, 0, 0, S(""), &t, ERR)) ==
          PEAT_STATUS_INVALID_ARGUMENT);
    CHECK(call_with_err_(peat_blob_fetch(b, S(info.hash), NULL, 0, 99, 0, 0, S(""), &t, ERR)) == PEAT_STATUS_INVALID_ARGUMENT);
    CHECK(call_with_err_(peat_blob_fetch(b, S(info.hash), NULL, 0, PEAT_TRANSFER_PROFILE_TACTICAL, 0, 0, S("urgent"), &t, ERR)) ==
          PEAT_STATUS_INVALID_ARGUMENT);
    CHECK(call_with_err_(peat_transfer_free(t, ERR)) == PEAT_STATUS_INVALID_HANDLE);
    peat_string_free(a_id);
    OK(peat_node_close(a, 5000, ERR));
    OK(peat_node_close(b, 5000, ERR));
    CHECK(peat_live_handles() == handles_before);
    rm_rf(da);
    rm_rf(db);
    return 1;
}

/* Progress pushed to a condition variable: waits on events, not on sleeps. */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    uint64_t done;
    int finished;
} progress_wait;

static void on_progress_signal(void *ctx, const PeatTransferProgress *p) {
    progress_wait *w = (progress_wait *)ctx;
    pthread_mutex_lock(&w->mu);
    w->done = p->done;
    if (p->finished) w->finished = 1;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->mu);
}

/* Waits up to `secs` for pushed progress of at least `bytes` (or the end). */
static int await_progress(progress_wait *w, uint64_t bytes, int secs) {
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += secs;
    pthread_mutex_lock(&w->mu);
    int timed_out = 0;
    while (w->done < bytes && !w->finished && !timed_out)
        timed_out = pthread_cond_timedwait(&w->cond, &w->mu, &deadline) != 0;
    int ok = w->done >= bytes;
    pthread_mutex_unlock(&w->mu);
    return ok;
}

static int t_blob_expected_size_and_discard_partial(void) {
    size_t handles_before = peat_live_handles();
    PeatNode a, b;
    char da[64], db[64];
    CHECK(open_node(&a, da, SECRET));
    CHECK(open_node(&b, db, SECRET));
    CHECK(connect_nodes(b, a));
    char src[128];
    snprintf(src, sizeof src, "%s/source.bin", da);
    size_t size = 2u << 20;
    FILE *f = fopen(src, "wb");
    CHECK(f != NULL);
    unsigned int seed = 777;
    for (size_t i = 0; i < size; i++) fputc((rand_r(&seed) >> 7) & 0xff, f);
    fclose(f);
    PeatBlobInfo info;
    OK(peat_blob_add_file(a, S(src), 10000, NO_CANCEL, &info, ERR));
    char *a_id = NULL;
    OK(peat_node_id(a, &a_id, ERR));
    PeatStr providers[1] = {S(a_id)};
    PeatTransfer t;
    PeatBlobInfo got;
    PeatBlobStatus bs;

    /* the only provider offers another size than expected: Corrupt, nothing kept */
    OK(peat_blob_fetch(b, S(info.hash), providers, 1, PEAT_TRANSFER_PROFILE_TACTICAL, 0, size + 1, S(""), &t, ERR));
    CHECK(call_with_err_(peat_transfer_wait(t, 20000, NO_CANCEL, &got, ERR)) == PEAT_STATUS_CORRUPT);
    OK(peat_transfer_free(t, ERR));
    OK(peat_blob_status(b, S(info.hash), &bs, ERR));
    CHECK(bs.state == PEAT_BLOB_STATE_MISSING);

    /* a slow fetch: discarding its partial is refused while it runs */
    progress_wait w;
    memset(&w, 0, sizeof w);
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cond, NULL);
    OK(peat_blob_fetch(b, S(info.hash), providers, 1, PEAT_TRANSFER_PROFILE_EDGE, 256u << 10, size, S(""), &t, ERR));
    PeatProgressCallback cb = {&w, on_progress_signal, NULL};
    PeatSubscription psub;
    OK(peat_transfer_on_progress(t, cb, &psub, ERR));
    CHECK(await_progress(&w, 64u << 10, 20));
    bool had = true;
    CHECK(call_with_err_(peat_blob_discard_partial(b, S(info.hash), &had, ERR)) ==
          PEAT_STATUS_INVALID_ARGUMENT);
    OK(peat_transfer_cancel(t, ERR));
    CHECK(call_with_err_(peat_transfer_wait(t, 10000, NO_CANCEL, &got, ERR)) == PEAT_STATUS_CANCELLED);
    OK(peat_subscription_close(psub, ERR));
    OK(peat_transfer_free(t, ERR));
    pthread_cond_destroy(&w.cond);
    pthread_mutex_destroy(&w.mu);
    OK(peat_blob_status(b, S(info.hash), &bs, ERR));
    CHECK(bs.state == PEAT_BLOB_STATE_PARTIAL && bs.present > 0);
    had = false;
    OK(peat_blob_discard_partial(b, S(info.hash), &had, ERR));
    CHECK(had);
    OK(peat_blob_status(b, S(info.hash), &bs, ERR));
    CHECK(bs.state == PEAT_BLOB_STATE_MISSING && bs.present == 0);
    OK(peat_blob_discard_partial(b, S(info.hash), &had, ERR));
    CHECK(!had);

    /* the next fetch, with the right size expected, starts from nothing */
    OK(peat_blob_fetch(b, S(info.hash), providers, 1, PEAT_TRANSFER_PROFILE_TACTICAL, 0, size, S("high"), &t, ERR));
    OK(peat_transfer_wait(t, 20000, NO_CANCEL, &got, ERR));
    CHECK(strcmp(got.hash, info.hash) == 0 && got.size == size);
    PeatTransferProgress p;
    OK(peat_transfer_progress(t, &p, ERR));
    CHECK(p.finished && p.resumed == 0 && p.done == size);
    OK(peat_transfer_free(t, ERR));
    /* a complete blob is never discarded */
    had = true;
    OK(peat_blob_discard_partial(b, S(info.hash), &had, ERR));
    CHECK(!had);
    OK(peat_blob_status(b, S(info.hash), &bs, ERR));
    CHECK(bs.state == PEAT_BLOB_STATE_COMPLETE);
    OK(peat_blob_discard_partial(b, S(info.hash), NULL, ERR)); /* out_had may be NULL */
    CHECK(call_with_err_(peat_blob_discard_partial(b, S("nothex"), &had, ERR)) ==
          PEAT_STATUS_INVALID_ARGUMENT);
    peat_string_free(a_id);
    OK(peat_node_close(a, 5000, ERR));
    OK(peat_node_close(b, 5000, ERR));
    CHECK(peat_live_handles() == handles_before);
    rm_rf(da);
    rm_rf(db);
    return 1;
}

/* ---- storage failure ---- */

/* A node whose data dir (a 3 MiB tmpfs) fills up: the failing put is an Io
 * error, so is every later one, and the peer-event subscription reports
 * StorageFailed once, with a reason and no peer. Mounting needs root (CI runs
 * as root): without it the test fails and says so. */
static int t_storage_failed(void) {
    char mnt[64];
    strcpy(mnt, "/tmp/peat-c-full-XXXXXX");
    CHECK(mkdtemp(mnt) != NULL);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "mount -t tmpfs -o size=3m tmpfs '%s'", mnt);
    if (system(cmd) != 0) {
        fprintf(stderr, "FAIL %s: mounting a tmpfs failed: this test needs root (run it as root, as CI does)\n",
                current);
        rmdir(mnt);
        return 0;
    }
    int ok = 0;
    char path[128];
    snprintf(path, sizeof path, "%s/filler", mnt);
    FILE *f = fopen(path, "wb");
    PeatNode n = {0};
    PeatSubscription sub = {0};
    char *pad = malloc(2100), *doc = malloc(2200);
    if (!f || !pad || !doc) goto out;
    for (int i = 0; i < 256 * 1024; i++) fputc(0, f);
    fclose(f);
    f = NULL;
    memset(pad, 'x', 2000);
    pad[2000] = 0;
    snprintf(path, sizeof path, "%s/node", mnt);
    PeatNodeOptions o;
    memset(&o, 0, sizeof o);
    o.data_dir = S(path);
    o.formation_id = S("conformance");
    o.formation_secret = SECRET;
    o.formation_secret_len = 32;
    o.listen = S("127.0.0.1:0");
    if (call_with_err_(peat_node_open(&o, 10000, NO_CANCEL, &n, ERR)) != PEAT_STATUS_OK) {
        fprintf(stderr, "FAIL %s: open: %s\n", current, last_message);
        goto out;
    }
    if (call_with_err_(peat_peer_subscribe(n, &sub, ERR)) != PEAT_STATUS_OK) goto out;
    int32_t rc = PEAT_STATUS_OK;
    int puts = 0;
    for (; puts < 100000 && rc == PEAT_STATUS_OK; puts++) {
        /* varied content so nothing compresses away */
        char id[32];
        snprintf(id, sizeof id, "d%d", puts);
        snprintf(doc, 2200, "{\"i\":%d,\"pad\":\"%s%d\",\"k\":%ld}", puts, pad, puts, (long)puts * 7919);
        rc = call_with_err_(peat_doc_put(n, S("fill"), S(id), S(doc), ERR));
    }
    if (rc != PEAT_STATUS_IO || puts < 2) {
        fprintf(stderr, "FAIL %s: after %d puts: status %d (%s), want PEAT_STATUS_IO\n", current, puts, rc,
                last_message);
        goto out;
    }
    /* fail-stop: even a tiny write is refused now */
    rc = call_with_err_(peat_doc_put(n, S("small"), S("s"), S("{\"a\":1}"), ERR));
    if (rc != PEAT_STATUS_IO) {
        fprintf(stderr, "FAIL %s: a later put gave %d, want PEAT_STATUS_IO\n", current, rc);
        goto out;
    }
    PeatEvent ev;
    memset(&ev, 0, sizeof ev);
    rc = call_with_err_(peat_subscription_next(sub, 10000, &ev, ERR));
    int good = rc == PEAT_STATUS_OK && ev.kind == PEAT_EVENT_KIND_STORAGE_FAILED && ev.peer == NULL &&
               ev.reason != NULL && strlen(ev.reason) > 0;
    if (!good)
        fprintf(stderr, "FAIL %s: event status %d kind %d peer %s reason %s\n", current, rc, (int)ev.kind,
                ev.peer ? ev.peer : "NULL", ev.reason ? ev.reason : "NULL");
    peat_event_free(&ev);
    if (!good) goto out;
    /* once: nothing else arrives (the node has no peers) */
    rc = call_with_err_(peat_subscription_next(sub, 300, &ev, ERR));
    if (rc != PEAT_STATUS_TIMEOUT) {
        fprintf(stderr, "FAIL %s: a second event (status %d kind %d)\n", current, rc, (int)ev.kind);
        peat_event_free(&ev);
        goto out;
    }
    ok = 1;
out:
    if (f) fclose(f);
    free(pad);
    free(doc);
    if (sub.id) call_with_err_(peat_subscription_close(sub, ERR));
    if (n.id && call_with_err_(peat_node_close(n, 10000, ERR)) != PEAT_STATUS_OK) {
        fprintf(stderr, "FAIL %s: close: %s\n", current, last_message);
        ok = 0;
    }
    snprintf(cmd, sizeof cmd, "umount '%s' || umount -l '%s'", mnt, mnt);
    if (system(cmd) != 0) fprintf(stderr, "%s: could not unmount %s\n", current, mnt);
    rmdir(mnt);
    return ok;
}

/* ---- discovery switches ---- */

static int t_static_peer_added_and_removed(void) {
    PeatNode a, b;
    char da[64], db[64];
    CHECK(open_node(&a, da, SECRET));
    CHECK(open_node(&b, db, SECRET));
    PeatSubscription sub;
    OK(peat_peer_subscribe(a, &sub, ERR));
    PeatStringList addrs;
    memset(&addrs, 0, sizeof addrs);
    OK(peat_node_addrs(b, &addrs, ERR));
    CHECK(addrs.len > 0);
    OK(peat_node_add_peer(a, S(addrs.items[0]), ERR));
    peat_string_list_free(addrs);
    int discovered = 0, connected = 0;
    for (int i = 0; i < 100 && !(discovered && connected); i++) {
        PeatEvent ev;
        memset(&ev, 0, sizeof ev);
        int32_t rc = call_with_err_(peat_subscription_next(sub, 200, &ev, ERR));
        if (rc == PEAT_STATUS_TIMEOUT) continue;
        CHECK(rc == PEAT_STATUS_OK);
        if (ev.kind == PEAT_EVENT_KIND_PEER_DISCOVERED) discovered = ev.source == PEAT_PEER_SOURCE_STATIC;
        if (ev.kind == PEAT_EVENT_KIND_PEER_CONNECTED) connected = 1;
        peat_event_free(&ev);
    }
    CHECK(discovered && connected);
    PeatPeerList peers;
    OK(peat_node_peers(a, &peers, ERR));
    CHECK(peers.len == 1 && peers.items[0].state == PEAT_PEER_STATE_CONNECTED &&
          peers.items[0].sources == PEAT_PEER_SOURCE_STATIC);
    char *b_id = NULL;
    OK(peat_node_id(b, &b_id, ERR));
    bool removed = false;
    OK(peat_node_remove_peer(a, S(b_id), &removed, ERR));
    CHECK(removed);
    OK(peat_node_remove_peer(a, S(b_id), &removed, ERR));
    CHECK(!removed);
    peat_peer_list_free(peers);
    peat_string_free(b_id);
    CHECK(call_with_err_(peat_node_add_peer(a, S("not-a-peer"), ERR)) == PEAT_STATUS_INVALID_ARGUMENT);
    OK(peat_subscription_close(sub, ERR));
    OK(peat_node_close(a, 5000, ERR));
    OK(peat_node_close(b, 5000, ERR));
    rm_rf(da);
    rm_rf(db);
    return 1;
}

/* Opens a node on two UDP links of its own on loopback ("primary" at level 0,
   "alternate" at level 1) and no UDP socket besides, with fast PACE timers. */
static int open_linked_node(PeatNode *node, char *dir) {
    PeatLinkOptions links[2];
    links[0].name = S("primary");
    links[0].bind = S("127.0.0.1:0");
    links[0].level = 0;
    links[1].name = S("alternate");
    links[1].bind = S("127.0.0.1:0");
    links[1].level = 1;
    PeatNodeOptions o;
    memset(&o, 0, sizeof o);
    o.links = links;
    o.links_len = 2;
    o.links_only = true;
    o.pace.probe_interval_ms = 100;
    o.pace.dead_after_ms = 600;
    o.pace.hold_down_ms = 1000;
    o.pace.blobs_below_level = 1; /* blobs on the primary only */
    PeatCollectionRule imagery;
    imagery.collection = S("imagery");
    imagery.below_level = 1; /* imagery on the primary only */
    o.pace.collection_rules = &imagery;
    o.pace.collection_rules_len = 1;
    return open_node_with(node, dir, SECRET, &o);
}

/* Waits up to 10 s for a link change away from a link (link_from set);
   returns 1 if it went from `from` to `to` at `level`. */
static int await_link_change(PeatSubscription sub, const char *from, const char *to, int32_t level) {
    for (int i = 0; i < 50; i++) {
        PeatEvent ev;
        memset(&ev, 0, sizeof ev);
        int32_t rc = call_with_err_(peat_subscription_next(sub, 200, &ev, ERR));
        if (rc == PEAT_STATUS_TIMEOUT) continue;
        if (rc != PEAT_STATUS_OK) return 0;
        int change = ev.kind == PEAT_EVENT_KIND_PEER_LINK_CHANGED && ev.link_from != NULL;
        int hit = change && ev.peer != NULL && strcmp(ev.link_from, from) == 0 && ev.link_to != NULL &&
                  strcmp(ev.link_to, to) == 0 && ev.level == level;
        peat_event_free(&ev);
        if (change) return hit;
    }
    return 0;
}

/* B's view of its only peer's link `i`; 0 if B has no peer or no such link. */
static int peer_link(PeatNode b, size_t i, PeatLinkHealth *out, char *name, size_t name_len) {
    PeatPeerList peers;
    memset(&peers, 0, sizeof peers);
    if (call_with_err_(peat_node_peers(b, &peers, ERR)) != PEAT_STATUS_OK) return 0;
    int ok = peers.len == 1 && peers.items[0].links_len == 2 && i < 2;
    if (ok) {
        *out = peers.items[0].links[i];
        snprintf(name, name_len, "%s", out->name);
        out->name = NULL; /* freed with the list */
    }
    peat_peer_list_free(peers);
    return ok;
}

static int t_links_pace_and_silencing(void) {
    PeatNode a, b;
    char da[64], db[64];
    CHECK(open_linked_node(&a, da));
    CHECK(open_linked_node(&b, db));
    PeatStringList addrs;
    memset(&addrs, 0, sizeof addrs);
    OK(peat_node_addrs(a, &addrs, ERR));
    CHECK(addrs.len == 1); /* links only: the link address */
    PeatSubscription ea, eb, docs;
    OK(peat_peer_subscribe(a, &ea, ERR));
    OK(peat_peer_subscribe(b, &eb, ERR));
    OK(peat_doc_subscribe(b, S("c"), S(""), false, &docs, ERR));
    OK(peat_node_connect(b, S(addrs.items[0]), 10000, NO_CANCEL, ERR));
    peat_string_list_free(addrs);
    OK(peat_doc_put(a, S("c"), S("d"), S("{\"x\":1}"), ERR));
    CHECK(await_doc(docs, "d", NULL));

    /* The primary's probes are answered within a few probe intervals. */
    PeatLinkHealth l0, l1;
    char n0[32] = "", n1[32] = "";
    int measured = 0;
    for (int i = 0; i < 100 && !measured; i++) {
        measured = peer_link(b, 0, &l0, n0, sizeof n0) && l0.rtt_us >= 0 && l0.last_answer_ms >= 0;
        if (!measured) usleep(50 * 1000);
    }
    CHECK(measured);
    CHECK(strcmp(n0, "primary") == 0 && l0.in_use && l0.level == 0 && l0.state != PEAT_LINK_STATE_DEAD);
    CHECK(l0.loss >= 0.0 && l0.loss <= 1.0 && !l0.silent);
    CHECK(peer_link(b, 1, &l1, n1, sizeof n1));
    CHECK(strcmp(n1, "alternate") == 0 && !l1.in_use && l1.level == 1);

    CHECK(call_with_err_(peat_node_set_link_silent(a, S("nope"), true, ERR)) == PEAT_STATUS_INVALID_ARGUMENT);
    OK(peat_node_set_link_silent(a, S("primary"), true, ERR));
    OK(peat_node_set_link_silent(b, S("primary"), true, ERR));
    CHECK(await_link_change(ea, "primary", "alternate", 1));
    CHECK(await_link_change(eb, "primary", "alternate", 1));
    OK(peat_doc_put(a, S("c"), S("e"), S("{\"x\":2}"), ERR));
    CHECK(await_doc(docs, "e", NULL));
    CHECK(peer_link(b, 0, &l0, n0, sizeof n0) && l0.silent && !l0.in_use);
    OK(peat_node_set_link_silent(a, S("primary"), false, ERR));
    OK(peat_node_set_link_silent(b, S("primary"), false, ERR));
    CHECK(await_link_change(ea, "alternate", "primary", 0));
    CHECK(await_link_change(eb, "alternate", "primary", 0));

    /* Bad link options are refused at open. */
    char dc[64];
    strcpy(dc, "/tmp/peat-c-XXXXXX");
    CHECK(mkdtemp(dc));
    PeatLinkOptions bad;
    bad.name = S("x");
    bad.bind = S("nowhere");
    bad.level = 0;
    PeatNodeOptions o;
    memset(&o, 0, sizeof o);
    o.data_dir = S(dc);
    o.formation_id = S("conformance");
    o.formation_secret = SECRET;
    o.formation_secret_len = 32;
    o.links = &bad;
    o.links_len = 1;
    PeatNode c = {0};
    CHECK(call_with_err_(peat_node_open(&o, 10000, NO_CANCEL, &c, ERR)) == PEAT_STATUS_INVALID_ARGUMENT);
    bad.bind = S("127.0.0.1:0");
    bad.level = 8;
    CHECK(call_with_err_(peat_node_open(&o, 10000, NO_CANCEL, &c, ERR)) == PEAT_STATUS_INVALID_ARGUMENT);
    /* A BLE link: opens where there is Bluetooth; here (no adapter, no
       BlueZ) the open fails with a network error naming Bluetooth. */
    bad.bind = S("ble");
    bad.level = 0;
    int32_t rc = call_with_err_(peat_node_open(&o, 10000, NO_CANCEL, &c, ERR));
    if (rc == PEAT_STATUS_OK) {
        OK(peat_node_close(c, 5000, ERR));
    } else {
        CHECK(rc == PEAT_STATUS_NETWORK && strstr(last_message, "Bluetooth") != NULL);
    }
    bad.bind = S("127.0.0.1:0");
    o.pace.blobs_below_level = 9;
    CHECK(call_with_err_(peat_node_open(&o, 10000, NO_CANCEL, &c, ERR)) == PEAT_STATUS_INVALID_ARGUMENT);
    o.pace.blobs_below_level = 0;
    PeatCollectionRule rule;
    rule.collection = S("imagery");
    rule.below_level = 0; /* 1-8 */
    o.pace.collection_rules = &rule;
    o.pace.collection_rules_len = 1;
    CHECK(call_with_err_(peat_node_open(&o, 10000, NO_CANCEL, &c, ERR)) == PEAT_STATUS_INVALID_ARGUMENT);
    o.pace.collection_rules = NULL; /* NULL with a length */
    CHECK(call_with_err_(peat_node_open(&o, 10000, NO_CANCEL, &c, ERR)) == PEAT_STATUS_INVALID_ARGUMENT);
    o.pace.collection_rules_len = 0;
    o.links = NULL; /* NULL with a length */
    CHECK(call_with_err_(peat_node_open(&o, 10000, NO_CANCEL, &c, ERR)) == PEAT_STATUS_INVALID_ARGUMENT);

    OK(peat_subscription_close(ea, ERR));
    OK(peat_subscription_close(eb, ERR));
    OK(peat_subscription_close(docs, ERR));
    OK(peat_node_close(a, 5000, ERR));
    OK(peat_node_close(b, 5000, ERR));
    rm_rf(da);
    rm_rf(db);
    rm_rf(dc);
    return 1;
}

/* Waits for the next message of `sub` from `origin` (any origin if NULL);
   fills `out` (free with peat_message_event_free). */
static int await_message(PeatSubscription sub, const char *origin, PeatMessageEvent *out) {
    for (int i = 0; i < 100; i++) {
        memset(out, 0, sizeof *out);
        int32_t rc = call_with_err_(peat_topic_next(sub, 200, out, ERR));
        if (rc == PEAT_STATUS_TIMEOUT) continue;
        if (rc != PEAT_STATUS_OK) return 0;
        if (out->kind == PEAT_MESSAGE_EVENT_KIND_MESSAGE &&
            (!origin || strcmp(out->message.origin, origin) == 0))
            return 1;
        peat_message_event_free(out);
    }
    return 0;
}

/* Scenario 25: ephemeral topics, latest-only, bounds, the multicast path,
   beacons with events and queries, expiry. */
/* Scenario 26: collection policies at open and at runtime (JSON), retention
   by garbage collection, storage counters, bad policies refused. */
static int t_policies_and_lifecycle(void) {
    PeatNode a;
    char da[64];
    PeatNodeOptions o;
    memset(&o, 0, sizeof o);
    o.listen = S("127.0.0.1:0");
    o.policies_json = S("{\"collections\": {\"log\": {\"priority\": \"bulk\", \"max_documents\": 3}}}");
    CHECK(open_node_with(&a, da, SECRET, &o));
    char *json = NULL;
    OK(peat_node_policy(a, S("log"), &json, ERR));
    CHECK(strstr(json, "\"priority\":\"bulk\"") && strstr(json, "\"max_documents\":3"));
    peat_string_free(json);
    OK(peat_node_policy(a, S("other"), &json, ERR));
    CHECK(strstr(json, "\"priority\":\"normal\"") && strstr(json, "\"sync\":\"full\""));
    peat_string_free(json);
    /* runtime: a collection's own policy, the default, removal */
    OK(peat_node_set_policy(a, S("cache"), S("{\"ttl_secs\": 3600, \"delete\": \"update_wins\"}"), ERR));
    OK(peat_node_policy(a, S("cache"), &json, ERR));
    CHECK(strstr(json, "\"ttl_secs\":3600") && strstr(json, "\"delete\":\"update_wins\""));
    peat_string_free(json);
    OK(peat_node_set_policy(a, S(""), S("{\"priority\": \"high\"}"), ERR));
    OK(peat_node_policy(a, S("other"), &json, ERR));
    CHECK(strstr(json, "\"priority\":\"high\"") != NULL);
    peat_string_free(json);
    OK(peat_node_policies(a, &json, ERR));
    CHECK(strstr(json, "\"cache\"") && strstr(json, "\"log\"") && strstr(json, "\"default\""));
    peat_string_free(json);
    bool removed = false;
    OK(peat_node_remove_policy(a, S("cache"), &removed, ERR));
    CHECK(removed);
    OK(peat_node_remove_policy(a, S("cache"), &removed, ERR));
    CHECK(!removed);
    /* retention: five written, the three newest kept */
    for (int i = 0; i < 5; i++) {
        char id[8], body[32];
        snprintf(id, sizeof id, "e%d", i);
        snprintf(body, sizeof body, "{\"i\": %d}", i);
        OK(peat_doc_put(a, S("log"), S(id), S(body), ERR));
    }
    PeatGarbageReport r;
    OK(peat_node_collect_garbage(a, 10000, &r, ERR));
    CHECK(r.evicted_documents == 2 && r.expired_documents == 0 && r.purged_tombstones == 0);
    PeatStringList ids;
    char *next = NULL;
    OK(peat_doc_list(a, S("log"), S(""), S(""), 10, &ids, &next, ERR));
    CHECK(ids.len == 3 && strcmp(ids.items[0], "e2") == 0 && strcmp(ids.items[2], "e4") == 0);
    peat_string_list_free(ids);
    peat_string_free(next);
    bool existed = false;
    OK(peat_doc_delete(a, S("log"), S("e4"), &existed, ERR));
    PeatStorageStats st;
    OK(peat_node_storage_stats(a, 10000, &st, ERR));
    CHECK(st.documents == 2 && st.tombstones == 1 && st.evicted_total == 2 && st.gc_runs >= 1);
    CHECK(st.document_bytes > 0 && st.expired_total == 0 && st.refused_expired_total == 0);
    /* bad policies: nothing changes */
    CHECK(peat_node_set_policy(a, S("log"), S("{\"priority\": \"urgent\"}"), NULL) == PEAT_STATUS_INVALID_ARGUMENT);
    CHECK(peat_node_set_policy(a, S("log"), S("{\"ttl_secs\": 0}"), NULL) == PEAT_STATUS_INVALID_ARGUMENT);
    CHECK(peat_node_set_policy(a, S("log"), S("{\"tll_secs\": 5}"), NULL) == PEAT_STATUS_INVALID_ARGUMENT);
    CHECK(peat_node_set_policy(a, S("log"), S("[1]"), NULL) == PEAT_STATUS_INVALID_ARGUMENT);
    CHECK(peat_node_policy(a, S(""), &json, NULL) == PEAT_STATUS_INVALID_ARGUMENT);
    OK(peat_node_policy(a, S("log"), &json, ERR));
    CHECK(strstr(json, "\"priority\":\"bulk\"") != NULL);
    peat_string_free(json);
    OK(peat_node_close(a, 5000, ERR));
    rm_rf(da);
    PeatNode bad;
    char dbad[64];
    o.policies_json = S("not json");
    CHECK(!open_node_with(&bad, dbad, SECRET, &o));
    CHECK(peat_node_open(&o, 10000, NO_CANCEL, &bad, NULL) == PEAT_STATUS_INVALID_ARGUMENT);
    rm_rf(dbad);
    /* a storage budget of 1 byte: every normal document goes at the next pass */
    PeatNode b;
    char db[64];
    memset(&o, 0, sizeof o);
    o.listen = S("127.0.0.1:0");
    o.storage_budget_bytes = 1;
    CHECK(open_node_with(&b, db, SECRET, &o));
    OK(peat_doc_put(b, S("tiles"), S("t0"), S("{\"x\": 1}"), ERR));
    OK(peat_doc_put(b, S("tiles"), S("t1"), S("{\"x\": 1}"), ERR));
    /* a collection kept until delivered: no peer holds its document, so it stays */
    OK(peat_node_set_policy(b, S("orders"), S("{\"keep_until_delivered\": true}"), ERR));
    OK(peat_node_policy(b, S("orders"), &json, ERR));
    CHECK(strstr(json, "\"keep_until_delivered\":true") != NULL);
    peat_string_free(json);
    OK(peat_doc_put(b, S("orders"), S("o1"), S("{\"x\": 1}"), ERR));
    PeatSubscription evs;
    OK(peat_peer_subscribe(b, &evs, ERR));
    OK(peat_node_collect_garbage(b, 10000, &r, ERR));
    CHECK(r.budget_evicted == 2);
    PeatEvent ev;
    OK(peat_subscription_next(evs, 5000, &ev, ERR));
    CHECK(ev.kind == PEAT_EVENT_KIND_STORAGE_EVICTED && ev.evicted == 2 && ev.stored_bytes > 0 && ev.peer == NULL);
    peat_event_free(&ev);
    OK(peat_subscription_close(evs, ERR));
    OK(peat_node_storage_stats(b, 10000, &st, ERR));
    CHECK(st.budget_evicted_total == 2 && st.documents == 1);
    OK(peat_node_close(b, 5000, ERR));
    rm_rf(db);
    o.storage_budget_bytes = 1000;
    o.storage_high_water_pct = 50;
    o.storage_low_water_pct = 80;
    CHECK(!open_node_with(&bad, dbad, SECRET, &o));
    rm_rf(dbad);
    return 1;
}

/* Scenario 27: bandwidth budgets at open and at runtime; datagrams past a
   budget dropped and counted; bad budgets refused and the old one kept. */
static int t_bandwidth_budgets(void) {
    PeatNode a, b;
    char da[64], db[64];
    PeatNodeOptions o;
    memset(&o, 0, sizeof o);
    o.listen = S("127.0.0.1:0");
    CHECK(open_node_with(&a, da, SECRET, &o));
    o.bandwidth_json = S("{\"per_peer\": 1024}");
    CHECK(open_node_with(&b, db, SECRET, &o));
    char *json = NULL;
    OK(peat_node_bandwidth(b, &json, ERR));
    CHECK(strcmp(json, "{\"per_peer\":1024}") == 0);
    peat_string_free(json);
    CHECK(connect_nodes(b, a));
    PeatPublishOptions direct = {10000, 0, false, S("")};
    uint8_t payload[900];
    memset(payload, 7, sizeof payload);
    uint32_t sent = 0;
    for (int i = 0; i < 100; i++) {
        uint32_t peers = 0;
        OK(peat_publish(b, S("pos/b"), payload, sizeof payload, false, &direct, &peers, ERR));
        sent += peers;
    }
    CHECK(sent >= 1 && sent <= 20);
    PeatBandwidthStats st;
    OK(peat_node_bandwidth_stats(b, &st, ERR));
    CHECK(st.dropped_datagrams == 100 - sent && st.bytes_limited >= 900 * (uint64_t)sent);
    const char *socket = "{\"links\":{\"socket\":40000}}";
    OK(peat_node_set_bandwidth(b, S(socket), ERR));
    const char *bad[] = {"{\"links\": {\"radio\": 5000}}", "{\"per_peer\": 10}", "{\"peer\": 1}", "not json"};
    for (int i = 0; i < 4; i++) {
        CHECK(peat_node_set_bandwidth(b, S(bad[i]), NULL) == PEAT_STATUS_INVALID_ARGUMENT);
        OK(peat_node_bandwidth(b, &json, ERR));
        CHECK(strcmp(json, socket) == 0);
        peat_string_free(json);
    }
    OK(peat_node_set_bandwidth(b, S("{}"), ERR));
    OK(peat_node_bandwidth(b, &json, ERR));
    CHECK(strcmp(json, "{}") == 0);
    peat_string_free(json);
    uint32_t peers = 0;
    OK(peat_publish(b, S("pos/b"), payload, sizeof payload, false, &direct, &peers, ERR));
    CHECK(peers == 1);
    /* a message's class; an unknown one is refused */
    PeatPublishOptions low = {10000, 0, false, S("low")};
    OK(peat_publish(b, S("pos/b"), payload, sizeof payload, false, &low, &peers, ERR));
    CHECK(peers == 1);
    PeatPublishOptions urgent = {10000, 0, false, S("urgent")};
    CHECK(peat_publish(b, S("pos/b"), payload, sizeof payload, false, &urgent, &peers, NULL) == PEAT_STATUS_INVALID_ARGUMENT);
    OK(peat_node_close(b, 5000, ERR));
    OK(peat_node_close(a, 5000, ERR));
    rm_rf(da);
    rm_rf(db);
    PeatNode nb;
    char dbad[64];
    o.bandwidth_json = S("{\"links\": {\"radio\": 5000}}");
    CHECK(!open_node_with(&nb, dbad, SECRET, &o));
    rm_rf(dbad);
    return 1;
}

/* Waits for a peer event of `kind` about `peer`. */
static int await_peer_event(PeatSubscription sub, int32_t kind, const char *peer) {
    for (int i = 0; i < 50; i++) {
        PeatEvent ev;
        memset(&ev, 0, sizeof ev);
        int32_t rc = call_with_err_(peat_subscription_next(sub, 200, &ev, ERR));
        if (rc == PEAT_STATUS_TIMEOUT) continue;
        if (rc != PEAT_STATUS_OK) return 0;
        int hit = ev.kind == kind && ev.peer && strcmp(ev.peer, peer) == 0;
        peat_event_free(&ev);
        if (hit) return 1;
    }
    return 0;
}

static int t_certificates_and_revocation(void) {
    uint8_t secret[32];
    OK(peat_authority_secret_generate(secret, sizeof secret, ERR));
    char *authority = NULL;
    OK(peat_authority_public_key(S("conformance"), secret, 32, &authority, ERR));
    CHECK(strlen(authority) == 64);
    char trust[200];
    snprintf(trust, sizeof trust, "{\"authority\": \"%s\", \"mode\": \"certificate\"}", authority);
    PeatNode a, b, c;
    char da[64], db[64], dc[64];
    PeatNodeOptions o;
    memset(&o, 0, sizeof o);
    o.listen = S("127.0.0.1:0");
    o.trust_json = S(trust);
    CHECK(open_node_with(&a, da, SECRET, &o));
    CHECK(open_node_with(&b, db, SECRET, &o));
    CHECK(open_node(&c, dc, SECRET));
    PeatMembership m;
    OK(peat_node_membership(a, &m, ERR));
    CHECK(strcmp(m.state, "no_certificate") == 0);
    OK(peat_node_membership(c, &m, ERR));
    CHECK(strcmp(m.state, "secret_only") == 0);
    PeatTrustStats ts;
    OK(peat_node_trust_stats(a, &ts, ERR));
    CHECK(strcmp(ts.admission_mode, "certificate") == 0 && ts.revocations == 0);
    char *certs[2] = {NULL, NULL};
    char *ids[2] = {NULL, NULL};
    PeatNode nodes[2] = {a, b};
    for (int i = 0; i < 2; i++) {
        OK(peat_node_id(nodes[i], &ids[i], ERR));
        PeatGrant g = {S(ids[i]), S("tactical"), 1, 0, 3600000};
        OK(peat_authority_issue(S("conformance"), secret, 32, &g, &certs[i], ERR));
        PeatCertificateInfo info;
        OK(peat_certificate_info(S(certs[i]), &info, ERR));
        CHECK(strcmp(info.subject, ids[i]) == 0 && strcmp(info.tier, "tactical") == 0 && info.permissions == 1);
        CHECK(strcmp(info.formation_id, "conformance") == 0 && strcmp(info.issuer, authority) == 0);
        CHECK(info.not_after_ms - info.not_before_ms == 3600000 && strlen(info.id) == 64);
        PeatStr chain[1] = {S(certs[i])};
        OK(peat_node_set_certificate_chain(nodes[i], chain, 1, ERR));
        PeatStringList got;
        OK(peat_node_certificate_chain(nodes[i], &got, ERR));
        CHECK(got.len == 1 && strcmp(got.items[0], certs[i]) == 0);
        peat_string_list_free(got);
        OK(peat_node_membership(nodes[i], &m, ERR));
        CHECK(strcmp(m.state, "valid") == 0 && strcmp(m.tier, "tactical") == 0 && m.permissions == 1);
        CHECK(m.not_after_ms > 0 && m.reason[0] == 0);
    }
    /* another node's certificate is not this node's chain */
    PeatStr wrong[1] = {S(certs[1])};
    CHECK(peat_node_set_certificate_chain(a, wrong, 1, NULL) == PEAT_STATUS_INVALID_ARGUMENT);
    PeatSubscription events;
    OK(peat_peer_subscribe(a, &events, ERR));
    CHECK(connect_nodes(b, a));
    /* a's side registers the connection when it publishes Connected */
    CHECK(await_peer_event(events, PEAT_EVENT_KIND_PEER_CONNECTED, ids[1]));
    PeatStringList peer_chain;
    OK(peat_node_peer_certificate_chain(a, S(ids[1]), &peer_chain, ERR));
    CHECK(peer_chain.len == 1 && strcmp(peer_chain.items[0], certs[1]) == 0);
    peat_string_list_free(peer_chain);
    /* a node with the formation secret only is refused, and told why */
    CHECK(!connect_nodes(c, a));
    CHECK(strstr(last_message, "certificate required") != NULL);
    /* the authority revokes b: a learns it, cuts b off and refuses it */
    PeatSubscription b_events;
    OK(peat_peer_subscribe(b, &b_events, ERR));
    char *record = NULL;
    OK(peat_authority_revoke(S("conformance"), secret, 32, S(certs[1]), &record, ERR));
    bool added = false;
    OK(peat_node_add_revocation(a, S(record), &added, ERR));
    CHECK(added);
    OK(peat_node_add_revocation(a, S(record), &added, ERR));
    CHECK(!added);
    CHECK(await_peer_event(events, PEAT_EVENT_KIND_PEER_REVOKED, ids[1]));
    CHECK(await_peer_event(events, PEAT_EVENT_KIND_PEER_DISCONNECTED, ids[1]));
    OK(peat_node_trust_stats(a, &ts, ERR));
    CHECK(ts.revocations == 1);
    /* b may dial again only once it has seen the close: until then its
       connection still counts as live and connect returns at once */
    CHECK(await_peer_event(b_events, PEAT_EVENT_KIND_PEER_DISCONNECTED, ids[0]));
    OK(peat_subscription_close(b_events, ERR));
    CHECK(!connect_nodes(b, a));
    CHECK(strstr(last_message, "revoked") != NULL);
    /* bad input */
    PeatCertificateInfo info;
    CHECK(peat_certificate_info(S("zz"), &info, NULL) == PEAT_STATUS_INVALID_ARGUMENT);
    char *out = NULL;
    PeatGrant bad_tier = {S(ids[0]), S("general"), 0, 0, 1000};
    CHECK(peat_authority_issue(S("conformance"), secret, 32, &bad_tier, &out, NULL) == PEAT_STATUS_INVALID_ARGUMENT);
    PeatGrant no_time = {S(ids[0]), S("edge"), 0, 0, 0};
    CHECK(peat_authority_issue(S("conformance"), secret, 32, &no_time, &out, NULL) == PEAT_STATUS_INVALID_ARGUMENT);
    CHECK(peat_authority_issue(S("conformance"), secret, 31, &no_time, &out, NULL) == PEAT_STATUS_INVALID_ARGUMENT);
    CHECK(peat_authority_issue(S("conformance"), secret, 32, NULL, &out, NULL) == PEAT_STATUS_INVALID_ARGUMENT);
    CHECK(peat_node_add_revocation(a, S("00"), NULL, NULL) == PEAT_STATUS_INVALID_ARGUMENT);
    CHECK(peat_node_revoke(a, S("abc"), NULL, NULL) == PEAT_STATUS_INVALID_ARGUMENT);
    CHECK(out == NULL);
    OK(peat_subscription_close(events, ERR));
    OK(peat_node_close(a, 5000, ERR));
    OK(peat_node_close(b, 5000, ERR));
    OK(peat_node_close(c, 5000, ERR));
    rm_rf(da);
    rm_rf(db);
    rm_rf(dc);
    PeatNode nd;
    char dd[64];
    o.trust_json = S("{\"authority\": \"00\"}");
    CHECK(!open_node_with(&nd, dd, SECRET, &o));
    rm_rf(dd);
    for (int i = 0; i < 2; i++) {
        peat_string_free(certs[i]);
        peat_string_free(ids[i]);
    }
    peat_string_free(record);
    peat_string_free(authority);
    return 1;
}

static int t_enrollment(void) {
    uint8_t secret[32];
    OK(peat_authority_secret_generate(secret, sizeof secret, ERR));
    char *authority = NULL;
    OK(peat_authority_public_key(S("conformance"), secret, 32, &authority, ERR));
    char trust[200];
    snprintf(trust, sizeof trust, "{\"authority\": \"%s\"}", authority);
    PeatNode e, d, d2;
    char de[64], dd[64], dd2[64];
    PeatNodeOptions o;
    memset(&o, 0, sizeof o);
    o.listen = S("127.0.0.1:0");
    o.trust_json = S(trust);
    CHECK(open_node_with(&e, de, SECRET, &o));
    CHECK(open_node_with(&d, dd, SECRET, &o));
    CHECK(open_node_with(&d2, dd2, SECRET, &o));
    char *eid = NULL, *did = NULL;
    OK(peat_node_id(e, &eid, ERR));
    OK(peat_node_id(d, &did, ERR));
    PeatGrant g = {S(eid), S("regional"), 3, 0, 3600000};
    char *cert = NULL;
    OK(peat_authority_issue(S("conformance"), secret, 32, &g, &cert, ERR));
    PeatStr chain_in[1] = {S(cert)};
    OK(peat_node_set_certificate_chain(e, chain_in, 1, ERR));
    char *token = NULL;
    OK(peat_node_create_enrollment_token(e, S("edge"), 1, 600000, &token, ERR));
    CHECK(strlen(token) == 64);
    PeatStringList addrs;
    OK(peat_node_addrs(e, &addrs, ERR));
    PeatStringList chain;
    OK(peat_node_enroll(d, S(addrs.items[0]), S(token), 10000, NO_CANCEL, &chain, ERR));
    CHECK(chain.len == 2 && strcmp(chain.items[1], cert) == 0);
    PeatCertificateInfo info;
    OK(peat_certificate_info(S(chain.items[0]), &info, ERR));
    CHECK(strcmp(info.subject, did) == 0 && strcmp(info.issuer, eid) == 0 && strcmp(info.tier, "edge") == 0);
    peat_string_list_free(chain);
    PeatMembership m;
    OK(peat_node_membership(d, &m, ERR));
    CHECK(strcmp(m.state, "valid") == 0 && strcmp(m.tier, "edge") == 0);
    /* the token is spent */
    CHECK(call_with_err_(peat_node_enroll(d2, S(addrs.items[0]), S(token), 10000, NO_CANCEL, &chain, ERR)) ==
          PEAT_STATUS_ADMISSION_REFUSED);
    CHECK(strstr(last_message, "already used") != NULL);
    OK(peat_node_membership(d2, &m, ERR));
    CHECK(strcmp(m.state, "denied") == 0 && strstr(m.reason, "already used") != NULL);
    /* bad input */
    char *out = NULL;
    CHECK(peat_node_create_enrollment_token(e, S("regional"), 0, 1000, &out, NULL) == PEAT_STATUS_INVALID_ARGUMENT);
    CHECK(peat_node_create_enrollment_token(e, S("edge"), 4, 1000, &out, NULL) == PEAT_STATUS_INVALID_ARGUMENT);
    CHECK(peat_node_create_enrollment_token(e, S("edge"), 0, 0, &out, NULL) == PEAT_STATUS_INVALID_ARGUMENT);
    CHECK(peat_node_create_enrollment_token(d2, S("edge"), 0, 1000, &out, NULL) == PEAT_STATUS_INVALID_ARGUMENT);
    CHECK(peat_node_enroll(d2, S(addrs.items[0]), S("zz"), 1000, NO_CANCEL, &chain, NULL) == PEAT_STATUS_INVALID_ARGUMENT);
    CHECK(out == NULL);
    peat_string_list_free(addrs);
    OK(peat_node_close(e, 5000, ERR));
    OK(peat_node_close(d, 5000, ERR));
    OK(peat_node_close(d2, 5000, ERR));
    rm_rf(de);
    rm_rf(dd);
    rm_rf(dd2);
    peat_string_free(token);
    peat_string_free(cert);
    peat_string_free(eid);
    peat_string_free(did);
    peat_string_free(authority);
    return 1;
}

/* Scenario 31: changes signed by their writer and checked by a node that
 * rejects unsigned ones; authors answered per change. */
/* Collections with their live counts, paged, and the blob fetches running. */
static int t_collections_and_transfers(void) {
    PeatNode a, b;
    char da[64], db[64];
    CHECK(open_node(&a, da, SECRET));
    CHECK(open_node(&b, db, SECRET));
    OK(peat_doc_put(a, S("alpha"), S("a1"), S("{\"n\":1}"), ERR));
    OK(peat_doc_put(a, S("alpha"), S("a2"), S("{\"n\":2}"), ERR));
    OK(peat_doc_put(a, S("beta"), S("b1"), S("{\"n\":1}"), ERR));
    OK(peat_doc_put(a, S("beta"), S("b2"), S("{\"n\":2}"), ERR));
    bool deleted = false;
    OK(peat_doc_delete(a, S("beta"), S("b1"), &deleted, ERR));
    PeatCollectionList cl;
    OK(peat_node_collections(a, S(""), 10, &cl, ERR));
    CHECK(cl.len == 2);
    CHECK(strcmp(cl.items[0].name, "alpha") == 0 && cl.items[0].documents == 2);
    CHECK(strcmp(cl.items[1].name, "beta") == 0 && cl.items[1].documents == 1);
    peat_collection_list_free(cl);
    /* a page at a time */
    OK(peat_node_collections(a, S(""), 1, &cl, ERR));
    CHECK(cl.len == 1 && strcmp(cl.items[0].name, "alpha") == 0);
    peat_collection_list_free(cl);
    OK(peat_node_collections(a, S("alpha"), 1, &cl, ERR));
    CHECK(cl.len == 1 && strcmp(cl.items[0].name, "beta") == 0);
    peat_collection_list_free(cl);
    OK(peat_node_collections(a, S("beta"), 1, &cl, ERR));
    CHECK(cl.len == 0 && cl.items == NULL);
    peat_collection_list_free(cl);
    CHECK(peat_node_collections(a, S(""), 0, &cl, NULL) == PEAT_STATUS_INVALID_ARGUMENT);
    CHECK(peat_node_collections(a, S(""), 10, NULL, NULL) == PEAT_STATUS_INVALID_ARGUMENT);
    PeatCollectionList zero;
    memset(&zero, 0, sizeof zero);
    peat_collection_list_free(zero);

    /* a slow fetch is listed while it runs, and not once cancelled */
    PeatTransferStatusList tl;
    OK(peat_blob_transfers(b, &tl, ERR));
    CHECK(tl.len == 0);
    peat_transfer_status_list_free(tl);
    CHECK(connect_nodes(b, a));
    char src[128];
    snprintf(src, sizeof src, "%s/source.bin", da);
    size_t size = 2u << 20;
    unsigned char *data = malloc(size);
    CHECK(data != NULL);
    unsigned int seed = 777;
    for (size_t i = 0; i < size; i++) data[i] = (unsigned char)(rand_r(&seed) >> 7);
    FILE *f = fopen(src, "wb");
    CHECK(f && fwrite(data, 1, size, f) == size);
    fclose(f);
    free(data);
    PeatBlobInfo info;
    OK(peat_blob_add_file(a, S(src), 10000, NO_CANCEL, &info, ERR));
    PeatTransfer t;
    OK(peat_blob_fetch(b, S(info.hash), NULL, 0, PEAT_TRANSFER_PROFILE_EDGE, 128u << 10, 0, S(""), &t, ERR));
    OK(peat_blob_transfers(b, &tl, ERR));
    CHECK(tl.len == 1 && strcmp(tl.items[0].hash, info.hash) == 0 && !tl.items[0].progress.finished);
    peat_transfer_status_list_free(tl);
    OK(peat_transfer_cancel(t, ERR));
    PeatBlobInfo got;
    CHECK(call_with_err_(peat_transfer_wait(t, 10000, NO_CANCEL, &got, ERR)) == PEAT_STATUS_CANCELLED);
    OK(peat_transfer_free(t, ERR));
    OK(peat_blob_transfers(b, &tl, ERR));
    CHECK(tl.len == 0);
    peat_transfer_status_list_free(tl);
    OK(peat_node_close(a, 5000, ERR));
    OK(peat_node_close(b, 5000, ERR));
    rm_rf(da);
    rm_rf(db);
    return 1;
}

static int t_signed_changes(void) {
    PeatNode a, b, u;
    char da[64], db[64], du[64];
    PeatNodeOptions o;
    memset(&o, 0, sizeof o);
    o.listen = S("127.0.0.1:0");
    o.policies_json = S("{\"collections\": {\"orders\": {\"signatures\": \"reject\"}}}");
    CHECK(open_node_with(&a, da, SECRET, &o));
    CHECK(open_node_with(&b, db, SECRET, &o));
    CHECK(open_node(&u, du, SECRET)); /* signs nothing */
    PeatSubscription sub;
    OK(peat_doc_subscribe(b, S("orders"), S(""), false, &sub, ERR));
    CHECK(connect_nodes(b, a));
    CHECK(connect_nodes(u, b));
    OK(peat_doc_put(u, S("orders"), S("unsigned"), S("{\"v\":0}"), ERR));
    OK(peat_doc_put(a, S("orders"), S("o1"), S("{\"v\":1}"), ERR));
    CHECK(await_doc(sub, "o1", "{\"v\":1}"));
    char *a_id = NULL;
    OK(peat_node_id(a, &a_id, ERR));
    PeatChangeAuthorList list;
    OK(peat_node_authors(b, S("orders"), S("o1"), &list, ERR));
    CHECK(list.len == 1 && list.items[0].valid && strcmp(list.items[0].author, a_id) == 0);
    CHECK(strlen(list.items[0].hash) == 64 && list.items[0].time_ms > 0);
    peat_change_author_list_free(list);
    /* the unsigned change is refused, counted, and never applied */
    PeatTrustStats ts;
    for (int i = 0; i < 500; i++) {
        OK(peat_node_trust_stats(b, &ts, ERR));
        if (ts.changes_rejected >= 1) break;
        usleep(10000);
    }
    CHECK(ts.changes_rejected >= 1 && ts.signatures_verified >= 1 && ts.changes_unsigned >= 1);
    char *doc = NULL;
    CHECK(peat_doc_get(b, S("orders"), S("unsigned"), &doc, NULL) == PEAT_STATUS_NOT_FOUND && doc == NULL);
    OK(peat_node_trust_stats(a, &ts, ERR));
    CHECK(ts.changes_signed >= 1 && ts.changes_rejected == 0);
    /* the writer's own view, and a document that does not exist */
    memset(&list, 0, sizeof list);
    OK(peat_node_authors(u, S("orders"), S("unsigned"), &list, ERR));
    CHECK(list.len == 1 && !list.items[0].valid && list.items[0].author[0] == 0);
    peat_change_author_list_free(list);
    memset(&list, 0, sizeof list);
    CHECK(peat_node_authors(b, S("orders"), S("nope"), &list, NULL) == PEAT_STATUS_NOT_FOUND);
    CHECK(list.items == NULL && list.len == 0);
    peat_change_author_list_free(list);
    CHECK(peat_node_authors(b, S("orders"), S(""), &list, NULL) == PEAT_STATUS_INVALID_ARGUMENT);
    OK(peat_subscription_close(sub, ERR));
    OK(peat_node_close(a, 5000, ERR));
    OK(peat_node_close(b, 5000, ERR));
    OK(peat_node_close(u, 5000, ERR));
    peat_string_free(a_id);
    rm_rf(da);
    rm_rf(db);
    rm_rf(du);
    return 1;
}

static int t_key_rotation(void) {
    PeatNode n;
    char dir[64];
    char *out = NULL;
    strcpy(dir, "/tmp/peat-c-XXXXXX");
    CHECK(mkdtemp(dir) != NULL);
    char sub[96];
    snprintf(sub, sizeof sub, "%s/n", dir);
    CHECK(peat_rotate_identity(S(sub), &out, NULL) == PEAT_STATUS_NOT_FOUND && out == NULL);
    PeatNodeOptions o;
    memset(&o, 0, sizeof o);
    o.listen = S("127.0.0.1:0");
    o.data_dir = S(sub);
    o.formation_id = S("conformance");
    o.formation_secret = SECRET;
    o.formation_secret_len = 32;
    OK(peat_node_open(&o, 10000, NO_CANCEL, &n, ERR));
    char *old = NULL;
    OK(peat_node_id(n, &old, ERR));
    OK(peat_doc_put(n, S("notes"), S("n1"), S("{\"kept\":true}"), ERR));
    OK(peat_node_close(n, 5000, ERR));
    char *new_id = NULL;
    OK(peat_rotate_identity(S(sub), &new_id, ERR));
    CHECK(strlen(new_id) == 64 && strcmp(new_id, old) != 0);
    OK(peat_node_open(&o, 10000, NO_CANCEL, &n, ERR));
    char *now = NULL;
    OK(peat_node_id(n, &now, ERR));
    CHECK(strcmp(now, new_id) == 0);
    char *doc = NULL;
    OK(peat_doc_get(n, S("notes"), S("n1"), &doc, ERR));
    CHECK(doc && strcmp(doc, "{\"kept\":true}") == 0);
    OK(peat_node_close(n, 5000, ERR));
    peat_string_free(doc);
    peat_string_free(now);
    peat_string_free(new_id);
    peat_string_free(old);
    rm_rf(dir);
    return 1;
}

static int t_ephemeral_and_beacons(void) {
    PeatNode a, b, c;
    char da[64], db[64], dc[64];
    char group[64];
    snprintf(group, sizeof group, "239.255.77.6:%d", 20000 + (int)(getpid() % 20000));
    PeatNodeOptions o;
    memset(&o, 0, sizeof o);
    o.listen = S("127.0.0.1:0");
    o.ephemeral.beacon_preset = S("tactical");
    o.ephemeral.beacon_interval_ms = 200;
    o.ephemeral.beacon_ttl_ms = 1000;
    o.ephemeral.multicast_group = S(group);
    o.ephemeral.multicast_interface = S("127.0.0.1");
    CHECK(open_node_with(&a, da, SECRET, &o));
    CHECK(open_node_with(&b, db, SECRET, &o));
    CHECK(open_node_with(&c, dc, SECRET, &o));
    PeatSubscription all, newest, beacons;
    OK(peat_topic_subscribe(a, S("pos/*"), false, &all, ERR));
    OK(peat_topic_subscribe(a, S("pos/*"), true, &newest, ERR));
    OK(peat_beacon_subscribe(a, &beacons, ERR));
    CHECK(connect_nodes(b, a));
    char *b_id = NULL, *c_id = NULL;
    OK(peat_node_id(b, &b_id, ERR));
    OK(peat_node_id(c, &c_id, ERR));

    PeatPublishOptions direct = {10000, 0, false, S("")};
    uint32_t peers = 99;
    const char *js = "{\"lat\":59.3}";
    OK(peat_publish(b, S("pos/b"), (const uint8_t *)js, strlen(js), true, &direct, &peers, ERR));
    CHECK(peers == 1);
    PeatMessageEvent ev;
    CHECK(await_message(all, b_id, &ev));
    CHECK(strcmp(ev.message.topic, "pos/b") == 0 && ev.message.json && ev.message.hops == 0);
    CHECK(ev.message.payload.len == strlen(js) && memcmp(ev.message.payload.ptr, js, strlen(js)) == 0);
    CHECK(ev.message.via_peer && strcmp(ev.message.via_peer, b_id) == 0);
    CHECK(ev.message.ttl_left_ms > 0 && ev.message.ttl_left_ms <= 10000);
    peat_message_event_free(&ev);
    for (int i = 1; i <= 3; i++) {
        char p = (char)('0' + i);
        OK(peat_publish(b, S("pos/b"), (const uint8_t *)&p, 1, false, &direct, NULL, ERR));
        CHECK(await_message(all, b_id, &ev));
        peat_message_event_free(&ev);
    }
    PeatMessageList latest;
    OK(peat_latest_messages(a, S("pos/*"), &latest, ERR));
    CHECK(latest.len == 1 && latest.items[0].payload.len == 1 && latest.items[0].payload.ptr[0] == '3');
    peat_message_list_free(latest);
    CHECK(await_message(newest, b_id, &ev)); /* latest-only: one, the newest */
    CHECK(ev.message.payload.len == 1 && ev.message.payload.ptr[0] == '3');
    peat_message_event_free(&ev);
    memset(&ev, 0, sizeof ev);
    CHECK(call_with_err_(peat_topic_next(newest, 0, &ev, ERR)) == PEAT_STATUS_TIMEOUT);
    /* bounds */
    static uint8_t big[961];
    CHECK(call_with_err_(peat_publish(b, S("pos/x"), big, sizeof big, false, &direct, NULL, ERR)) ==
          PEAT_STATUS_INVALID_ARGUMENT);
    CHECK(call_with_err_(peat_publish(b, S(""), big, 1, false, &direct, NULL, ERR)) == PEAT_STATUS_INVALID_ARGUMENT);
    CHECK(call_with_err_(peat_publish(b, S("_peat/x"), big, 1, false, &direct, NULL, ERR)) ==
          PEAT_STATUS_INVALID_ARGUMENT);
    CHECK(call_with_err_(peat_publish(b, S("pos/x"), (const uint8_t *)"nope", 4, true, &direct, NULL, ERR)) ==
          PEAT_STATUS_INVALID_ARGUMENT);
    PeatPublishOptions far = {1000, 9, false, S("")};
    CHECK(call_with_err_(peat_publish(b, S("pos/x"), big, 1, false, &far, NULL, ERR)) == PEAT_STATUS_INVALID_ARGUMENT);
    CHECK(call_with_err_(peat_publish(b, S("pos/x"), NULL, 3, false, &direct, NULL, ERR)) ==
          PEAT_STATUS_INVALID_ARGUMENT);
    PeatSubscription bad;
    CHECK(call_with_err_(peat_topic_subscribe(a, S(""), false, &bad, ERR)) == PEAT_STATUS_INVALID_ARGUMENT);
    /* the multicast path: c has no connection to a */
    PeatPublishOptions multi = {10000, 0, true, S("")};
    OK(peat_publish(c, S("pos/c"), (const uint8_t *)"group", 5, false, &multi, &peers, ERR));
    CHECK(peers == 0);
    CHECK(await_message(all, c_id, &ev));
    CHECK(ev.message.via_peer == NULL && ev.message.payload.len == 5);
    peat_message_event_free(&ev);

    /* beacons */
    PeatStr caps[1] = {S("camera")};
    PeatBeaconInfo info;
    memset(&info, 0, sizeof info);
    info.lat = 59.3293;
    info.lon = 18.0686;
    info.alt_m = 0.0 / 0.0;
    info.role = S("sensor");
    info.capabilities = caps;
    info.capabilities_len = 1;
    info.state = PEAT_NODE_STATE_READY;
    info.battery_pct = 80;
    info.cpu_pct = -1;
    info.bandwidth_kbps = -1;
    OK(peat_beacon_set(b, &info, ERR));
    int appeared = 0;
    char geohash[16] = {0};
    for (int i = 0; i < 100 && !appeared; i++) {
        PeatBeaconEvent be;
        memset(&be, 0, sizeof be);
        int32_t rc = call_with_err_(peat_beacon_next(beacons, 200, &be, ERR));
        if (rc == PEAT_STATUS_TIMEOUT) continue;
        CHECK(rc == PEAT_STATUS_OK);
        if (be.kind == PEAT_BEACON_EVENT_KIND_APPEARED && strcmp(be.beacon.node, b_id) == 0) {
            appeared = strcmp(be.beacon.role, "sensor") == 0 && be.beacon.state == PEAT_NODE_STATE_READY &&
                       be.beacon.battery_pct == 80 && be.beacon.cpu_pct == -1 && be.beacon.capabilities.len == 1 &&
                       strcmp(be.beacon.capabilities.items[0], "camera") == 0 && strlen(be.beacon.geohash) == 8 &&
                       be.beacon.alt_m != be.beacon.alt_m;
            snprintf(geohash, sizeof geohash, "%s", be.beacon.geohash);
        }
        peat_beacon_event_free(&be);
    }
    CHECK(appeared);
    PeatBeaconList list;
    OK(peat_beacons_near(a, 59.33, 18.07, 1000, &list, ERR));
    CHECK(list.len == 1 && strcmp(list.items[0].node, b_id) == 0 && list.items[0].distance_m < 1000);
    peat_beacon_list_free(list);
    OK(peat_beacons_near(a, 0, 0, 1000, &list, ERR));
    CHECK(list.len == 0);
    peat_beacon_list_free(list);
    geohash[5] = 0;
    OK(peat_beacons_in_cell(a, S(geohash), true, &list, ERR));
    CHECK(list.len == 1 && list.items[0].distance_m != list.items[0].distance_m);
    peat_beacon_list_free(list);
    OK(peat_beacons_since(a, 0, &list, ERR));
    CHECK(list.len == 1);
    peat_beacon_list_free(list);
    CHECK(call_with_err_(peat_beacons_near(a, 0, 0, -1, &list, ERR)) == PEAT_STATUS_INVALID_ARGUMENT);
    info.lat = 0.0 / 0.0;
    CHECK(call_with_err_(peat_beacon_set(b, &info, ERR)) == PEAT_STATUS_INVALID_ARGUMENT);
    info.lat = 91;
    CHECK(call_with_err_(peat_beacon_set(b, &info, ERR)) == PEAT_STATUS_INVALID_ARGUMENT);
    info.lat = 1;
    info.battery_pct = 101;
    CHECK(call_with_err_(peat_beacon_set(b, &info, ERR)) == PEAT_STATUS_INVALID_ARGUMENT);
    OK(peat_beacon_clear(b, ERR));
    int expired = 0;
    for (int i = 0; i < 100 && !expired; i++) {
        PeatBeaconEvent be;
        memset(&be, 0, sizeof be);
        int32_t rc = call_with_err_(peat_beacon_next(beacons, 200, &be, ERR));
        if (rc == PEAT_STATUS_TIMEOUT) continue;
        CHECK(rc == PEAT_STATUS_OK);
        expired = be.kind == PEAT_BEACON_EVENT_KIND_EXPIRED && strcmp(be.node, b_id) == 0;
        peat_beacon_event_free(&be);
    }
    CHECK(expired);
    PeatEphemeralStats st;
    OK(peat_ephemeral_stats(a, &st, ERR));
    CHECK(st.delivered >= 5 && st.malformed == 0);
    /* bad options at open */
    PeatNode d;
    char dd[64];
    o.ephemeral.multicast_interface = S("");
    CHECK(!open_node_with(&d, dd, SECRET, &o));
    rm_rf(dd);
    o.ephemeral.multicast_group = S("");
    o.ephemeral.beacon_preset = S("nope");
    CHECK(!open_node_with(&d, dd, SECRET, &o));
    rm_rf(dd);

    OK(peat_subscription_close(all, ERR));
    OK(peat_subscription_close(newest, ERR));
    OK(peat_subscription_close(beacons, ERR));
    peat_string_free(b_id);
    peat_string_free(c_id);
    OK(peat_node_close(a, 5000, ERR));
    OK(peat_node_close(b, 5000, ERR));
    OK(peat_node_close(c, 5000, ERR));
    rm_rf(da);
    rm_rf(db);
    rm_rf(dc);
    return 1;
}

typedef int (*test_fn)(void);
static const struct {
    const char *name;
    test_fn fn;
} TESTS[] = {
    {"abi_version", t_abi_version},
    {"open_close", t_open_close},
    {"two_nodes_sync", t_two_nodes_sync},
    {"peer_traffic_queues_and_latency", t_peer_traffic_queues_and_latency},
    {"get_list_delete_export_import", t_get_list_delete_export_import},
    {"subscribe_with_snapshot", t_subscribe_with_snapshot},
    {"subscribe_cycles_free_everything", t_subscribe_cycles_free_everything},
    {"unsubscribe_during_burst", t_unsubscribe_during_burst},
    {"error_kinds_and_bad_input", t_error_kinds_and_bad_input},
    {"free_accepts_null_and_zeroed", t_free_accepts_null_and_zeroed},
    {"nul_in_names_is_refused", t_nul_in_names_is_refused},
    {"document_limits", t_document_limits},
    {"formation_secret_generate", t_formation_secret_generate},
    {"admission_refused", t_admission_refused},
    {"close_with_subscriptions_in_flight", t_close_with_subscriptions_in_flight},
    {"callback_subscription", t_callback_subscription},
    {"callback_sees_node_close", t_callback_sees_node_close},
    {"queued_subscription", t_queued_subscription},
    {"callback_cycles_free_everything", t_callback_cycles_free_everything},
    {"failed_subscribe_keeps_ctx", t_failed_subscribe_keeps_ctx},
    {"log_callback", t_log_callback},
    {"cancel_connect", t_cancel_connect},
    {"blob_fetch_progress_cancel_resume", t_blob_fetch_progress_cancel_resume},
    {"blob_expected_size_and_discard_partial", t_blob_expected_size_and_discard_partial},
    {"storage_failed", t_storage_failed},
    {"static_peer_added_and_removed", t_static_peer_added_and_removed},
    {"links_pace_and_silencing", t_links_pace_and_silencing},
    {"ephemeral_and_beacons", t_ephemeral_and_beacons},
    {"policies_and_lifecycle", t_policies_and_lifecycle},
    {"bandwidth_budgets", t_bandwidth_budgets},
    {"certificates_and_revocation", t_certificates_and_revocation},
    {"enrollment", t_enrollment},
    {"key_rotation", t_key_rotation},
    {"signed_changes", t_signed_changes},
    {"collections_and_transfers", t_collections_and_transfers},
    {"exit_with_open_node", t_exit_with_open_node},
    {"shutdown", t_shutdown},
};

int main(int argc, char **argv) {
    self_path = argv[0];
    if (argc > 1 && strcmp(argv[1], "--exit-with-open-node") == 0) return child_exit_with_open_node();
    if (argc > 2 && strcmp(argv[1], "--reopen") == 0) return child_reopen(argv[2], 1);
    if (argc > 2 && strcmp(argv[1], "--reopen-peer") == 0) return child_reopen(argv[2], 0);
    for (size_t i = 0; i < sizeof TESTS / sizeof TESTS[0]; i++) {
        current = TESTS[i].name;
        if (TESTS[i].fn()) {
            passed++;
            printf("ok   %s\n", current);
        } else {
            failed++;
            printf("FAIL %s\n", current);
        }
        fflush(stdout);
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
