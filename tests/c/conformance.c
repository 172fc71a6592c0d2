/*
 * The conformance scenarios (docs/conformance.md) in C, against libpeat_mesh_ffi.
 * Run plainly and under valgrind by scripts/test-c. Prints "N passed, N failed".
 */
#define _DEFAULT_SOURCE
#include "peat_mesh.h"

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

static int open_node(PeatNode *node, char *dir, const uint8_t *secret) {
    strcpy(dir, "/tmp/peat-c-XXXXXX");
    if (!mkdtemp(dir)) return 0;
    PeatNodeOptions o;
    memset(&o, 0, sizeof o);
    o.data_dir = S(dir);
    o.formation_id = S("conformance");
    o.formation_secret = secret;
    o.formation_secret_len = 32;
    o.listen = S("127.0.0.1:0");
    return call_with_err_(peat_node_open(&o, 10000, node, ERR)) == PEAT_STATUS_OK;
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
    int32_t rc = call_with_err_(peat_node_connect(from, S(addrs.items[0]), 10000, ERR));
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
    char *json = NULL;
    OK(peat_doc_get(b, S("tracks"), S("t1"), &json, ERR));
    CHECK(strcmp(json, "{\"lat\":1.5}") == 0);
    peat_string_free(json);
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
    CHECK(ev.kind == PEAT_EVENT_KIND_DOC_CHANGED && strcmp(ev.origin, "snapshot") == 0);
    peat_event_free(&ev);
    OK(peat_doc_put(n, S("s"), S("y"), S("{\"v\":2}"), ERR));
    OK(peat_subscription_next(sub, 2000, &ev, ERR));
    CHECK(strcmp(ev.id, "y") == 0 && strcmp(ev.origin, "local") == 0);
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
    CHECK(call_with_err_(peat_node_open(NULL, 1000, NULL, ERR)) == PEAT_STATUS_INVALID_ARGUMENT);
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

static int t_admission_refused(void) {
    PeatNode a, b;
    char da[64], db[64];
    CHECK(open_node(&a, da, SECRET));
    CHECK(open_node(&b, db, OTHER_SECRET));
    PeatSubscription events;
    OK(peat_peer_subscribe(a, &events, ERR));
    PeatStringList addrs;
    OK(peat_node_addrs(a, &addrs, ERR));
    CHECK(call_with_err_(peat_node_connect(b, S(addrs.items[0]), 10000, ERR)) == PEAT_STATUS_ADMISSION_REFUSED);
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
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    OK(peat_node_close(a, 2000, ERR));
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    CHECK(secs < 3.0);
    OK(peat_subscription_close(s1, ERR));
    OK(peat_subscription_close(s2, ERR));
    OK(peat_node_close(b, 2000, ERR));
    rm_rf(da);
    rm_rf(db);
    return 1;
}

/* Runs last: afterwards every call reports SHUT_DOWN. */
static int t_shutdown(void) {
    PeatNode n;
    char dir[64];
    CHECK(open_node(&n, dir, SECRET));
    OK(peat_shutdown(5000, ERR));
    CHECK(peat_live_handles() == 0);
    PeatNodeOptions o;
    memset(&o, 0, sizeof o);
    o.data_dir = S(dir);
    o.formation_id = S("x");
    o.formation_secret = SECRET;
    o.formation_secret_len = 32;
    PeatNode m;
    CHECK(call_with_err_(peat_node_open(&o, 1000, &m, ERR)) == PEAT_STATUS_SHUT_DOWN);
    OK(peat_shutdown(5000, ERR)); /* idempotent */
    rm_rf(dir);
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
    {"get_list_delete_export_import", t_get_list_delete_export_import},
    {"subscribe_with_snapshot", t_subscribe_with_snapshot},
    {"subscribe_cycles_free_everything", t_subscribe_cycles_free_everything},
    {"unsubscribe_during_burst", t_unsubscribe_during_burst},
    {"error_kinds_and_bad_input", t_error_kinds_and_bad_input},
    {"admission_refused", t_admission_refused},
    {"close_with_subscriptions_in_flight", t_close_with_subscriptions_in_flight},
    {"shutdown", t_shutdown},
};

int main(void) {
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
