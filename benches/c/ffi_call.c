/*
 * ffi-call: the cost of a small-document get from C, and the latency from a
 * commit to its callback on the dispatcher thread. Run by scripts/bench-c
 * against the release library; prints one line per figure.
 */
#define _DEFAULT_SOURCE
#include "peat_mesh.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static PeatStr S(const char *s) {
    PeatStr r = {(const uint8_t *)s, s ? strlen(s) : 0};
    return r;
}

static double now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static double delivered_at;
static int delivered;

static void on_event(void *ctx, const PeatEvent *ev) {
    (void)ctx;
    if (ev->kind != PEAT_EVENT_KIND_DOC_CHANGED) return;
    double t = now_us();
    pthread_mutex_lock(&mu);
    delivered_at = t;
    delivered = 1;
    pthread_cond_signal(&cv);
    pthread_mutex_unlock(&mu);
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    int small = argc > 1 && strcmp(argv[1], "--small") == 0;
    int gets = small ? 2000 : 200000, commits = small ? 50 : 1000;
    char dir[] = "/tmp/peat-bench-c-XXXXXX";
    if (!mkdtemp(dir)) return 1;
    uint8_t secret[32] = {3};
    PeatNodeOptions o;
    memset(&o, 0, sizeof o);
    o.data_dir = S(dir);
    o.formation_id = S("bench");
    o.formation_secret = secret;
    o.formation_secret_len = 32;
    o.listen = S("127.0.0.1:0");
    PeatNode n;
    if (peat_node_open(&o, 10000, (PeatCancel){0}, &n, NULL)) return 1;
    if (peat_doc_put(n, S("b"), S("small"), S("{\"callsign\":\"A-1\",\"lat\":59.3,\"lon\":18.1}"), NULL)) return 1;

    for (int i = 0; i < 1000; i++) { /* warm up */
        char *json = NULL;
        peat_doc_get(n, S("b"), S("small"), &json, NULL);
        peat_string_free(json);
    }
    double t0 = now_us();
    for (int i = 0; i < gets; i++) {
        char *json = NULL;
        if (peat_doc_get(n, S("b"), S("small"), &json, NULL)) return 1;
        peat_string_free(json);
    }
    double per_get = (now_us() - t0) / gets;
    printf("ffi-call           small-document get from C (per call)            %14.3f us\n", per_get);

    PeatCallback cb = {NULL, on_event, NULL};
    PeatSubscription sub;
    if (peat_doc_subscribe_callback(n, S("b"), S("hot"), false, cb, &sub, NULL)) return 1;
    double *lat = calloc((size_t)commits, sizeof *lat);
    for (int i = 0; i < commits; i++) {
        char json[64];
        snprintf(json, sizeof json, "{\"i\":%d}", i);
        pthread_mutex_lock(&mu);
        delivered = 0;
        pthread_mutex_unlock(&mu);
        double start = now_us();
        if (peat_doc_merge_patch(n, S("b"), S("hot"), S(json), NULL)) return 1;
        pthread_mutex_lock(&mu);
        while (!delivered) pthread_cond_wait(&cv, &mu);
        lat[i] = delivered_at - start;
        pthread_mutex_unlock(&mu);
    }
    qsort(lat, (size_t)commits, sizeof *lat, cmp);
    printf("ffi-call           commit to callback p50                          %14.3f us\n", lat[commits / 2]);
    printf("ffi-call           commit to callback p99                          %14.3f us\n", lat[commits * 99 / 100]);
    free(lat);
    peat_subscription_close(sub, NULL);
    peat_node_close(n, 5000, NULL);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : 1;
}
