use super::*;
use crate::links::{Faults, Medium};

/// A peer's bond address with one member link.
fn addr(id: u64, member: &CustomAddr) -> CustomAddr {
    BondAddr {
        id,
        members: vec![member.clone()],
    }
    .to_custom()
    .unwrap()
}

fn bond_on(m: &Medium, id: u64) -> Bond {
    let (port, rx) = m.attach().unwrap().open().unwrap();
    Bond::open(
        id,
        vec![("only".into(), port, rx)],
        PacePolicy::default(),
        CancellationToken::new(),
    )
    .unwrap()
}

#[tokio::test(start_paused = true)]
async fn peer_state_is_bounded_and_the_least_recently_heard_goes_first() {
    let m = Medium::new(Faults::default());
    let bond = bond_on(&m, 1);
    let member = m.attach().unwrap().addr();
    for id in 0..(MAX_BOND_PEERS as u64 + 10) {
        bond.inner.send(&addr(1000 + id, &member), b"packet");
        tokio::time::advance(Duration::from_millis(1)).await;
    }
    let peers = bond.inner.peers.locked();
    assert_eq!(peers.len(), MAX_BOND_PEERS);
    assert!(!peers.contains_key(&1000), "the oldest was forgotten");
    assert!(peers.contains_key(&(1000 + MAX_BOND_PEERS as u64 + 9)));
}

#[tokio::test(start_paused = true)]
async fn bad_frames_are_dropped_and_counted() {
    let m = Medium::new(Faults::default());
    let bond = bond_on(&m, 1);
    let stranger = m.attach().unwrap().addr();
    // Malformed.
    bond.inner
        .on_frame(0, stranger.clone(), Bytes::from_static(&[0x7f, 1]));
    // Data from a sender never met.
    let data = Frame::Data {
        from: 99,
        packet: Bytes::from_static(b"p"),
    };
    bond.inner.on_frame(0, stranger.clone(), data.encode());
    // A sender whose claimed address does not list the link it sent from.
    let other = m.attach().unwrap().addr();
    let claimed = addr(5, &other);
    let lying = Frame::DataFrom {
        from_addr: Bytes::from(claimed.to_vec()),
        packet: Bytes::from_static(b"p"),
    };
    bond.inner.on_frame(0, stranger.clone(), lying.encode());
    let s = bond.stats();
    assert_eq!(s.dropped_malformed, 2, "{s:?}");
    assert_eq!(s.dropped_unknown, 1, "{s:?}");
    assert_eq!(s.packets_in, 0);
    assert!(bond.inner.peers.locked().is_empty());
    // An honest first packet is taken and its sender remembered.
    let honest = addr(6, &stranger);
    let ok = Frame::DataFrom {
        from_addr: Bytes::from(honest.to_vec()),
        packet: Bytes::from_static(b"p"),
    };
    bond.inner.on_frame(0, stranger, ok.encode());
    assert_eq!(bond.stats().packets_in, 1);
    assert!(bond.inner.peers.locked().contains_key(&6));
}

#[tokio::test(start_paused = true)]
async fn a_full_queue_to_iroh_drops_and_counts() {
    let m = Medium::new(Faults::default());
    let bond = bond_on(&m, 1);
    let from = m.attach().unwrap().addr();
    let sender = addr(6, &from);
    let f = Frame::DataFrom {
        from_addr: Bytes::from(sender.to_vec()),
        packet: Bytes::from_static(b"p"),
    }
    .encode();
    for _ in 0..BOND_RECV_QUEUE + 5 {
        bond.inner.on_frame(0, from.clone(), f.clone());
    }
    let s = bond.stats();
    assert_eq!(s.packets_in, BOND_RECV_QUEUE as u64);
    assert_eq!(s.dropped_full, 5);
}

#[tokio::test(start_paused = true)]
async fn echoes_say_whether_the_prober_is_known() {
    let m = Medium::new(Faults::default());
    let bond = bond_on(&m, 1);
    let (raw, mut raw_rx) = m.attach().unwrap().open().unwrap();
    let probe = Frame::Probe {
        from: 6,
        seq: 1,
        nonce: 5,
    };
    async fn echo(bond: &Bond, raw: &dyn Member, rx: &mut Incoming, probe: &Frame) -> bool {
        bond.inner.on_frame(0, raw.addr(), probe.encode());
        let (_, bytes) = rx.recv().await.unwrap();
        match Frame::decode(bytes).unwrap() {
            Frame::Echo { known, seq: 1, .. } => known,
            other => panic!("{other:?}"),
        }
    }
    // Unknown: the prober must keep sending its whole address with its data.
    assert!(!echo(&bond, &*raw, &mut raw_rx, &probe).await);
    let sender = addr(6, &raw.addr());
    let first = Frame::DataFrom {
        from_addr: Bytes::from(sender.to_vec()),
        packet: Bytes::from_static(b"p"),
    };
    bond.inner.on_frame(0, raw.addr(), first.encode());
    assert!(echo(&bond, &*raw, &mut raw_rx, &probe).await);
}

#[tokio::test(start_paused = true)]
async fn a_live_peer_id_claimed_from_another_address_is_refused() {
    let m = Medium::new(Faults::default());
    let bond = bond_on(&m, 1);
    let (real, spoofer) = (m.attach().unwrap().addr(), m.attach().unwrap().addr());
    let from = |who: &CustomAddr| Frame::DataFrom {
        from_addr: Bytes::from(addr(6, who).to_vec()),
        packet: Bytes::from_static(b"p"),
    };
    bond.inner.on_frame(0, real.clone(), from(&real).encode());
    assert_eq!(bond.stats().packets_in, 1);
    // Someone else on the link claims peer 6: nothing of it reaches iroh and
    // the bond still sends peer 6's packets to the real address.
    tokio::time::advance(Duration::from_millis(500)).await;
    bond.inner
        .on_frame(0, spoofer.clone(), from(&spoofer).encode());
    let s = bond.stats();
    assert_eq!((s.packets_in, s.dropped_claims), (1, 1), "{s:?}");
    assert_eq!(bond.inner.peers.locked()[&6].addr, addr(6, &real));
    // Once the real address has been silent for the dead-link time, a new
    // address is taken (a peer that restarted with new link ports).
    tokio::time::advance(PacePolicy::default().dead_after).await;
    bond.inner
        .on_frame(0, spoofer.clone(), from(&spoofer).encode());
    assert_eq!(bond.stats().packets_in, 2);
    assert_eq!(bond.inner.peers.locked()[&6].addr, addr(6, &spoofer));
}
