/*
 * Two people, two machines, one document.
 *
 *   machine A:  PEAT_SECRET=<64 hex digits> ./sync /tmp/peat-a 0.0.0.0:7400 "" "hello from A"
 *               (prints "address: NODEID@...:7400"; B needs A's LAN address)
 *   machine B:  PEAT_SECRET=<same> ./sync /tmp/peat-b 0.0.0.0:7400 NODEID@A-ADDRESS:7400 "hello from B"
 *
 * Each side writes notes/<its node id> = {"text": ...} (when a text is given) and
 * prints every note it sees, until it has seen `PEAT_EXPECT` notes (default 2)
 * or 60 s pass. Build: cc sync.c $(pkg-config --cflags --libs peat-mesh)
 */
#define _POSIX_C_SOURCE 199309L
#include "peat_mesh.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static PeatStr S(const char *s) {
    PeatStr r = {(const uint8_t *)s, s ? strlen(s) : 0};
    return r;
}

static int fail(const char *what, PeatError *err) {
    fprintf(stderr, "%s failed: %s\n", what, peat_error_message(err));
    peat_error_free(err);
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s DATA_DIR LISTEN [PEER [TEXT]]\n", argv[0]);
        return 2;
    }
    const char *hex = getenv("PEAT_SECRET");
    uint8_t secret[32];
    if (!hex || strlen(hex) != 64) {
        fprintf(stderr, "set PEAT_SECRET to 64 hex digits (the formation secret)\n");
        return 2;
    }
    for (int i = 0; i < 32; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1) return 2;
        secret[i] = (uint8_t)v;
    }
    int expect = getenv("PEAT_EXPECT") ? atoi(getenv("PEAT_EXPECT")) : 2;

    PeatError *err = NULL;
    PeatNodeOptions o;
    memset(&o, 0, sizeof o);
    o.data_dir = S(argv[1]);
    o.formation_id = S("example");
    o.formation_secret = secret;
    o.formation_secret_len = 32;
    o.listen = S(argv[2]);
    PeatStr peer = S(argc > 3 ? argv[3] : NULL);
    if (peer.len > 0) { /* "" means: no peer, wait to be dialled */
        o.peers = &peer; /* dialled, and re-dialled if the link drops */
        o.peers_len = 1;
    }
    PeatNode node;
    if (peat_node_open(&o, 10000, (PeatCancel){0}, &node, &err)) return fail("open", err);

    char *id = NULL;
    if (peat_node_id(node, &id, &err)) return fail("node id", err);
    PeatStringList addrs;
    if (peat_node_addrs(node, &addrs, &err)) return fail("addrs", err);
    for (size_t i = 0; i < addrs.len; i++) printf("address: %s\n", addrs.items[i]);
    peat_string_list_free(addrs);
    fflush(stdout);

    PeatSubscription sub;
    if (peat_doc_subscribe(node, S("notes"), S(""), true, &sub, &err)) return fail("subscribe", err);
    if (argc > 4) {
        char json[512];
        snprintf(json, sizeof json, "{\"text\":\"%s\"}", argv[4]);
        if (peat_doc_put(node, S("notes"), S(id), S(json), &err)) return fail("put", err);
    }
    int seen = 0;
    for (int waited = 0; seen < expect && waited < 60; waited++) {
        PeatEvent ev;
        memset(&ev, 0, sizeof ev);
        int32_t rc = peat_subscription_next(sub, 1000, &ev, &err);
        if (rc == PEAT_STATUS_TIMEOUT) {
            peat_error_free(err);
            err = NULL;
            continue;
        }
        if (rc) return fail("next", err);
        if (ev.kind == PEAT_EVENT_KIND_DOC_CHANGED) {
            printf("note %s: %s (%s)\n", ev.id, ev.json, ev.origin == PEAT_ORIGIN_PEER ? ev.peer : "local");
            fflush(stdout);
            seen++;
        }
        peat_event_free(&ev);
    }
    /* Stay up a little so our own note reaches a peer that is still catching up
       (a note not sent before close is kept and syncs at the next meeting). */
    struct timespec linger = {2, 0};
    nanosleep(&linger, NULL);
    peat_string_free(id);
    peat_subscription_close(sub, NULL);
    if (peat_node_close(node, 5000, &err)) return fail("close", err);
    return seen >= expect ? 0 : 1;
}
