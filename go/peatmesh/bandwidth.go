package peatmesh

/*
#include <stdlib.h>
#include "peat_mesh.h"
*/
import "C"

import (
	"encoding/json"
	"runtime"
	"time"
)

// SocketLink names the node's own UDP socket in Bandwidth.Links.
const SocketLink = "socket"

// Bandwidth is a node's bandwidth budgets, in bytes per second. Every byte
// the node sends to a peer waits for the peer's budget (PerPeer) and for the
// budget of the link carrying it (Links, by link name; SocketLink for the UDP
// socket), higher priority classes first; ephemeral messages a budget has no
// room for are dropped and counted. The zero value limits nothing. Rates are
// at least 1024 bytes/s.
type Bandwidth struct {
	PerPeer uint64            // to each peer; 0: no limit
	Links   map[string]uint64 // over each link, all peers together
}

type bandwidthJSON struct {
	PerPeer *uint64           `json:"per_peer,omitempty"`
	Links   map[string]uint64 `json:"links,omitempty"`
}

// form is the budgets in the SDK's JSON form ("" for none).
func (b Bandwidth) form() string {
	if b.PerPeer == 0 && len(b.Links) == 0 {
		return ""
	}
	j := bandwidthJSON{Links: b.Links}
	if b.PerPeer > 0 {
		j.PerPeer = &b.PerPeer
	}
	out, _ := json.Marshal(j) // a struct of numbers and a string map always marshals
	return string(out)
}

// SetBandwidth replaces the node's budgets (Bandwidth{} lifts them). A link
// the node does not have or a rate below 1024 bytes/s is ErrInvalidArgument,
// and the old budgets stay.
func (n *Node) SetBandwidth(b Bandwidth) error {
	h, err := n.node()
	if err != nil {
		return err
	}
	form := b.form()
	if form == "" {
		form = "{}"
	}
	var e *C.PeatError
	rc := C.peat_node_set_bandwidth(h, str(form), &e)
	runtime.KeepAlive(form)
	return check(rc, e)
}

// Bandwidth returns the budgets in force.
func (n *Node) Bandwidth() (Bandwidth, error) {
	h, err := n.node()
	if err != nil {
		return Bandwidth{}, err
	}
	var out *C.char
	var e *C.PeatError
	if err := check(C.peat_node_bandwidth(h, &out, &e), e); err != nil {
		return Bandwidth{}, err
	}
	var j bandwidthJSON
	if err := json.Unmarshal([]byte(takeString(out)), &j); err != nil {
		return Bandwidth{}, err
	}
	b := Bandwidth{Links: j.Links}
	if j.PerPeer != nil {
		b.PerPeer = *j.PerPeer
	}
	return b, nil
}

// BandwidthStats is what the budgets did since the node opened.
type BandwidthStats struct {
	BytesLimited     uint64        // bytes sent under a budget
	Waits            uint64        // sends that waited for a budget
	Waited           time.Duration // their waiting in total
	DroppedDatagrams uint64        // ephemeral messages a budget had no room for
}

// BandwidthStats returns the budgets' counters.
func (n *Node) BandwidthStats() (BandwidthStats, error) {
	h, err := n.node()
	if err != nil {
		return BandwidthStats{}, err
	}
	var s C.PeatBandwidthStats
	var e *C.PeatError
	if err := check(C.peat_node_bandwidth_stats(h, &s, &e), e); err != nil {
		return BandwidthStats{}, err
	}
	return BandwidthStats{
		BytesLimited: uint64(s.bytes_limited), Waits: uint64(s.waits),
		Waited: time.Duration(s.waited_ms) * time.Millisecond, DroppedDatagrams: uint64(s.dropped_datagrams),
	}, nil
}
