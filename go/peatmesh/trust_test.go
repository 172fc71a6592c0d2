package peatmesh

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func openTrusted(t *testing.T, trust *Trust) (*Node, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n, err := Open(ctx, Config{
		DataDir: t.TempDir(), FormationID: "go", FormationSecret: secret, Listen: "127.0.0.1:0", Trust: trust,
	})
	if err == nil {
		t.Cleanup(func() { _ = n.Close() })
	}
	return n, err
}

func waitFor(t *testing.T, sub *Subscription, what string, pred func(Event) bool) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ev := <-sub.Events():
			if pred(ev) {
				return
			}
		case <-deadline:
			t.Fatalf("never saw %s", what)
		}
	}
}

// Conformance scenario 28: a formation authority, certificates set at
// runtime, admission by certificate, a node without one refused with the
// reason, a revocation that cuts the peer off and keeps it out, bad input
// refused.
func TestCertificatesAdmissionAndRevocation(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	auth, err := GenerateAuthority("go")
	if err != nil || len(auth.PublicKey) != 64 {
		t.Fatalf("authority %v %v", auth, err)
	}
	trust := auth.Trust(AdmitCertificate)
	a, err := openTrusted(t, trust)
	if err != nil {
		t.Fatal(err)
	}
	b, err := openTrusted(t, trust)
	if err != nil {
		t.Fatal(err)
	}
	c := open(t, secret)
	if m, err := a.Membership(); err != nil || m.State != "no_certificate" {
		t.Fatalf("membership %+v %v", m, err)
	}
	if m, err := c.Membership(); err != nil || m.State != "secret_only" {
		t.Fatalf("membership %+v %v", m, err)
	}
	if st, err := a.TrustStats(); err != nil || st.AdmissionMode != AdmitCertificate || st.Revocations != 0 {
		t.Fatalf("trust stats %+v %v", st, err)
	}
	certs := map[*Node]string{}
	for _, n := range []*Node{a, b} {
		id, _ := n.ID()
		cert, err := auth.Issue(Grant{Subject: id, Tier: TierTactical, Permissions: PermissionRelay, ValidFor: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		info, err := ParseCertificate(cert)
		if err != nil || info.Subject != id || info.Tier != TierTactical || info.Permissions != PermissionRelay ||
			info.FormationID != "go" || info.Issuer != auth.PublicKey || info.NotAfter.Sub(info.NotBefore) != time.Hour {
			t.Fatalf("info %+v %v", info, err)
		}
		if err := n.SetCertificateChain([]string{cert}); err != nil {
			t.Fatal(err)
		}
		if chain, err := n.CertificateChain(); err != nil || len(chain) != 1 || chain[0] != cert {
			t.Fatalf("chain %v %v", chain, err)
		}
		if m, err := n.Membership(); err != nil || m.State != "valid" || m.Tier != TierTactical || m.Permissions != PermissionRelay {
			t.Fatalf("membership %+v %v", m, err)
		}
		certs[n] = cert
	}
	// another node's certificate is not this node's chain
	if err := a.SetCertificateChain([]string{certs[b]}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("a chain for another key: %v", err)
	}
	events, err := a.SubscribePeers(64)
	if err != nil {
		t.Fatal(err)
	}
	defer events.Close()
	connect(t, b, a)
	bid, _ := b.ID()
	// a's side registers the connection when it publishes PeerConnected
	waitFor(t, events, "b connected", func(ev Event) bool { return ev.Kind == PeerConnected && ev.Peer == bid })
	if chain, err := a.PeerCertificateChain(bid); err != nil || len(chain) != 1 || chain[0] != certs[b] {
		t.Fatalf("peer chain %v %v", chain, err)
	}
	addrs, _ := a.Addrs()
	// a node with the formation secret only is refused, and told why
	if err := c.Connect(ctx, addrs[0]); !errors.Is(err, ErrAdmissionRefused) || !strings.Contains(err.Error(), "certificate required") {
		t.Fatalf("a node without a certificate: %v", err)
	}
	// the authority revokes b: a learns it, cuts b off and refuses it
	bEvents, err := b.SubscribePeers(64)
	if err != nil {
		t.Fatal(err)
	}
	defer bEvents.Close()
	aid, _ := a.ID()
	record, err := auth.Revoke(certs[b])
	if err != nil {
		t.Fatal(err)
	}
	if added, err := a.AddRevocation(ctx, record); err != nil || !added {
		t.Fatalf("add revocation %v %v", added, err)
	}
	if added, err := a.AddRevocation(ctx, record); err != nil || added {
		t.Fatalf("add it again %v %v", added, err)
	}
	waitFor(t, events, "b revoked", func(ev Event) bool { return ev.Kind == PeerRevoked && ev.Peer == bid })
	waitFor(t, events, "b cut off", func(ev Event) bool { return ev.Kind == PeerDisconnected && ev.Peer == bid })
	if st, _ := a.TrustStats(); st.Revocations != 1 {
		t.Fatalf("trust stats %+v", st)
	}
	// b dials again only once it has seen the close: until then its
	// connection still counts as live and Connect returns at once
	waitFor(t, bEvents, "b sees the close", func(ev Event) bool { return ev.Kind == PeerDisconnected && ev.Peer == aid })
	if err := b.Connect(ctx, addrs[0]); !errors.Is(err, ErrAdmissionRefused) || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("b reconnecting: %v", err)
	}
	// bad input
	bad := []error{}
	_, err = ParseCertificate("zz")
	bad = append(bad, err)
	_, err = auth.Issue(Grant{Subject: "not-a-node", Tier: TierEdge, ValidFor: time.Hour})
	bad = append(bad, err)
	_, err = auth.Issue(Grant{Subject: aid, Tier: "general", ValidFor: time.Hour})
	bad = append(bad, err)
	_, err = auth.Issue(Grant{Subject: aid, Tier: TierEdge})
	bad = append(bad, err)
	_, err = a.AddRevocation(ctx, "00")
	bad = append(bad, err)
	_, err = a.Revoke(ctx, "abc")
	bad = append(bad, err)
	_, err = NewAuthority("go", make([]byte, 32))
	bad = append(bad, err)
	_, err = NewAuthority("go", make([]byte, 31))
	bad = append(bad, err)
	_, err = openTrusted(t, &Trust{Authority: "00"})
	bad = append(bad, err)
	_, err = openTrusted(t, &Trust{Authority: auth.PublicKey, Mode: "maybe"})
	bad = append(bad, err)
	for i, err := range bad {
		if !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("bad input %d: %v", i, err)
		}
	}
	cancelled, stop := context.WithCancel(ctx)
	stop()
	if _, err := a.AddRevocation(cancelled, record); !errors.Is(err, context.Canceled) {
		t.Fatalf("a cancelled context: %v", err)
	}
}

// Conformance scenario 29: enrollment with a one-time token.
func TestEnrollment(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	auth, err := GenerateAuthority("go")
	if err != nil {
		t.Fatal(err)
	}
	trust := auth.Trust(AdmitCertificate)
	nodes := make([]*Node, 3)
	for i := range nodes {
		if nodes[i], err = openTrusted(t, trust); err != nil {
			t.Fatal(err)
		}
	}
	e, d, d2 := nodes[0], nodes[1], nodes[2]
	eid, _ := e.ID()
	cert, err := auth.Issue(Grant{Subject: eid, Tier: TierRegional, Permissions: PermissionEnroll | PermissionRelay, ValidFor: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.SetCertificateChain([]string{cert}); err != nil {
		t.Fatal(err)
	}
	token, err := e.CreateEnrollmentToken(TierEdge, PermissionRelay, 10*time.Minute)
	if err != nil || len(token) != 64 {
		t.Fatalf("token %q %v", token, err)
	}
	addrs, _ := e.Addrs()
	chain, err := d.Enroll(ctx, addrs[0], token)
	if err != nil || len(chain) != 2 || chain[1] != cert {
		t.Fatalf("enroll %v %v", chain, err)
	}
	did, _ := d.ID()
	if info, err := ParseCertificate(chain[0]); err != nil || info.Subject != did || info.Issuer != eid || info.Tier != TierEdge {
		t.Fatalf("info %+v %v", info, err)
	}
	if m, _ := d.Membership(); m.State != "valid" || m.Tier != TierEdge {
		t.Fatalf("membership %+v", m)
	}
	if _, err := d2.Enroll(ctx, addrs[0], token); !errors.Is(err, ErrAdmissionRefused) || !strings.Contains(err.Error(), "already used") {
		t.Fatalf("a spent token: %v", err)
	}
	if m, _ := d2.Membership(); m.State != "denied" || !strings.Contains(m.Reason, "already used") {
		t.Fatalf("membership %+v", m)
	}
	bad := []error{}
	_, err = e.CreateEnrollmentToken(TierRegional, 0, time.Minute)
	bad = append(bad, err)
	_, err = e.CreateEnrollmentToken(TierEdge, PermissionAdmin, time.Minute)
	bad = append(bad, err)
	_, err = e.CreateEnrollmentToken(TierEdge, 0, 0)
	bad = append(bad, err)
	_, err = d2.CreateEnrollmentToken(TierEdge, 0, time.Minute)
	bad = append(bad, err)
	_, err = d2.Enroll(ctx, addrs[0], "zz")
	bad = append(bad, err)
	for i, err := range bad {
		if !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("bad input %d: %v", i, err)
		}
	}
}

// Conformance scenario 30: key rotation keeps the data.
func TestKeyRotation(t *testing.T) {
	dir := t.TempDir()
	if _, err := RotateIdentity(dir); !errors.Is(err, ErrNotFound) {
		t.Fatalf("no identity yet: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfg := Config{DataDir: dir, FormationID: "go", FormationSecret: secret, Listen: "127.0.0.1:0"}
	n, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	old, _ := n.ID()
	if err := n.Put(ctx, "notes", "n1", map[string]any{"kept": true}); err != nil {
		t.Fatal(err)
	}
	_ = n.Close()
	id, err := RotateIdentity(dir)
	if err != nil || id == old || len(id) != 64 {
		t.Fatalf("rotate %q %v", id, err)
	}
	n, err = Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if got, _ := n.ID(); got != id {
		t.Fatalf("id %s, want %s", got, id)
	}
	if doc, err := n.Get(ctx, "notes", "n1"); err != nil || string(doc) != `{"kept":true}` {
		t.Fatalf("doc %s %v", doc, err)
	}
}

// Conformance scenario 31: changes signed by their writer and checked by a
// node that rejects unsigned ones; authors answered per change.
func TestSignedChanges(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	reject := map[string]CollectionPolicy{"orders": {Signatures: SignaturesReject}}
	openWith := func(p map[string]CollectionPolicy) *Node {
		n, err := Open(ctx, Config{
			DataDir: t.TempDir(), FormationID: "go", FormationSecret: secret, Listen: "127.0.0.1:0", Policies: p,
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = n.Close() })
		return n
	}
	a, b, u := openWith(reject), openWith(reject), openWith(nil)
	if p, err := b.Policy("orders"); err != nil || p.Signatures != SignaturesReject {
		t.Fatalf("policy %+v %v", p, err)
	}
	sub, err := b.Subscribe("orders", "", false, 16)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	connect(t, b, a)
	connect(t, u, b)
	if err := u.Put(ctx, "orders", "unsigned", map[string]any{"v": 0}); err != nil {
		t.Fatal(err)
	}
	if err := a.Put(ctx, "orders", "o1", map[string]any{"v": 1}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, sub, "o1", func(ev Event) bool { return ev.ID == "o1" })
	aID, _ := a.ID()
	got, err := b.Authors(ctx, "orders", "o1")
	if err != nil || len(got) != 1 || got[0].Author != aID || !got[0].Valid || len(got[0].Hash) != 64 || got[0].TimeMs <= 0 {
		t.Fatalf("authors %+v %v", got, err)
	}
	var st TrustStats
	for i := 0; i < 500; i++ {
		if st, err = b.TrustStats(); err != nil || st.ChangesRejected >= 1 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil || st.ChangesRejected < 1 || st.SignaturesVerified < 1 || st.ChangesUnsigned < 1 {
		t.Fatalf("stats %+v %v", st, err)
	}
	if _, err := b.Get(ctx, "orders", "unsigned"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the unsigned document reached b: %v", err)
	}
	if st, err := a.TrustStats(); err != nil || st.ChangesSigned < 1 {
		t.Fatalf("a signed nothing: %+v %v", st, err)
	}
	mine, err := u.Authors(ctx, "orders", "unsigned")
	if err != nil || len(mine) != 1 || mine[0].Author != "" || mine[0].Valid {
		t.Fatalf("own unsigned change %+v %v", mine, err)
	}
	if _, err := b.Authors(ctx, "orders", "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing document: %v", err)
	}
	if _, err := b.Authors(ctx, "orders", ""); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("empty id: %v", err)
	}
	done, stop := context.WithCancel(ctx)
	stop()
	if _, err := b.Authors(done, "orders", "o1"); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled context: %v", err)
	}
}
