// etcd for the Kubernetes discovery tests: one member, embedded, on the
// loopback URLs given as flags. It exists because the kube-apiserver built by
// scripts/k8s/build needs an etcd and Debian's etcd package lags the API
// server's supported versions.
package main

import (
	"flag"
	"log"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
)

func parse(raw string) url.URL {
	u, err := url.Parse(raw)
	if err != nil {
		log.Fatalf("bad URL %q: %v", raw, err)
	}
	return *u
}

func main() {
	dir := flag.String("data-dir", "etcd-data", "where etcd keeps its data")
	clientURL := flag.String("client-url", "http://127.0.0.1:23790", "client URL (listen and advertise)")
	peerURL := flag.String("peer-url", "http://127.0.0.1:23800", "peer URL (listen and advertise)")
	flag.Parse()

	cfg := embed.NewConfig()
	cfg.Name = "peat-test"
	cfg.Dir = *dir
	c, p := parse(*clientURL), parse(*peerURL)
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{c}, []url.URL{c}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{p}, []url.URL{p}
	cfg.InitialCluster = cfg.Name + "=" + p.String()
	cfg.LogLevel = "warn"
	// Test data only: the store lives for one test run.
	cfg.UnsafeNoFsync = true

	server, err := embed.StartEtcd(cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer server.Close()
	select {
	case <-server.Server.ReadyNotify():
		log.Printf("etcd ready on %s", c.String())
	case <-time.After(60 * time.Second):
		server.Server.Stop()
		log.Fatal("etcd did not become ready within 60 s")
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	select {
	case err := <-server.Err():
		log.Fatal(err)
	case s := <-stop:
		log.Printf("%v: stopping", s)
	}
}
