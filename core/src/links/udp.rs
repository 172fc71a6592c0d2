//! A link over a UDP socket of its own, bound to one local address: an IP
//! interface the node should use as a separate link (a second LAN, an IP
//! radio), beside the node's main UDP socket.
//!
//! Links pair up by name: this node's link "radio" carries traffic to a
//! peer's link "radio" only, so two interfaces never cross. The address is
//! `name length (u8) | name | IP (4 or 16 bytes) | port (u16 BE)`. A link
//! sends only to the addresses peers give for it (configured, or of a peer
//! that reached it first), like any UDP socket; nothing is broadcast.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use bytes::Bytes;
use iroh_base::CustomAddr;
use tokio::sync::mpsc;

use super::bond::{Incoming, Member};

/// The iroh custom-transport id of a UDP link's addresses.
pub const UDP_LINK_ID: u64 = 0x5045_4154_0002;

/// Frames waiting for the bond from one UDP link.
const UDP_RECV_QUEUE: usize = 1024;

/// Largest datagram read (a bond frame is a QUIC packet plus a few bytes).
const MAX_DATAGRAM: usize = 2048;

pub(crate) fn encode(name: &str, at: SocketAddr) -> Option<CustomAddr> {
    let n = name.as_bytes();
    let mut d = Vec::with_capacity(1 + n.len() + 18);
    d.push(u8::try_from(n.len()).ok()?);
    d.extend_from_slice(n);
    match at.ip() {
        IpAddr::V4(ip) => d.extend_from_slice(&ip.octets()),
        IpAddr::V6(ip) => d.extend_from_slice(&ip.octets()),
    }
    d.extend_from_slice(&at.port().to_be_bytes());
    Some(CustomAddr::from_parts(UDP_LINK_ID, &d))
}

/// The link name and socket address of a UDP link address.
pub(crate) fn decode(addr: &CustomAddr) -> Option<(&str, SocketAddr)> {
    if addr.id() != UDP_LINK_ID {
        return None;
    }
    let d = addr.data();
    let (&len, rest) = d.split_first()?;
    let (name, rest) = rest.split_at_checked(len as usize)?;
    let name = std::str::from_utf8(name).ok()?;
    let (ip, port) = rest.split_at_checked(rest.len().checked_sub(2)?)?;
    let ip: IpAddr = match ip.len() {
        4 => <[u8; 4]>::try_from(ip).ok()?.into(),
        16 => <[u8; 16]>::try_from(ip).ok()?.into(),
        _ => return None,
    };
    let port = u16::from_be_bytes(port.try_into().ok()?);
    Some((name, SocketAddr::new(ip, port)))
}

#[derive(Debug)]
struct Port {
    name: String,
    local: CustomAddr,
    family_v4: bool,
    /// Sends go straight to the (non-blocking) socket: tokio's `try_send_to`
    /// reports "would block" until its reactor has seen the socket writable,
    /// which would drop the first datagrams of a fresh link.
    sender: std::net::UdpSocket,
}

impl Member for Port {
    fn addr(&self) -> CustomAddr {
        self.local.clone()
    }

    fn carries(&self, addr: &CustomAddr) -> bool {
        decode(addr).is_some_and(|(name, at)| name == self.name && at.is_ipv4() == self.family_v4)
    }

    fn send(&self, to: &CustomAddr, frame: Bytes) -> io::Result<()> {
        let (name, at) = decode(to).ok_or_else(|| io::Error::other("not a UDP link address"))?;
        if name != self.name {
            return Err(io::Error::other("an address of another link"));
        }
        // A full socket buffer drops the datagram, as the network would.
        match self.sender.send_to(&frame, at) {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// Binds the socket of UDP link `name` on `bind` and starts reading it.
pub(crate) fn open(name: &str, bind: SocketAddr) -> io::Result<(Arc<dyn Member>, Incoming)> {
    let std_socket = std::net::UdpSocket::bind(bind)?;
    std_socket.set_nonblocking(true)?;
    let at = std_socket.local_addr()?;
    let sender = std_socket.try_clone()?;
    let socket = Arc::new(tokio::net::UdpSocket::from_std(std_socket)?);
    let local = encode(name, at).ok_or_else(|| io::Error::other("link name over 255 bytes"))?;
    let (tx, rx) = mpsc::channel(UDP_RECV_QUEUE);
    let reader = socket.clone();
    let link = name.to_string();
    tokio::spawn(async move {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        loop {
            let got = tokio::select! {
                _ = tx.closed() => break,
                got = reader.recv_from(&mut buf) => got,
            };
            match got {
                Ok((n, from)) => {
                    let Some(from) = encode(&link, from) else {
                        break;
                    };
                    // Full: dropped like a full socket buffer.
                    let frame = Bytes::copy_from_slice(&buf[..n]);
                    let _ = tx.try_send((super::LinkAddr(from), frame));
                }
                Err(e) => {
                    tracing::debug!(link = %link, error = %e, "UDP link read failed");
                }
            }
        }
    });
    Ok((
        Arc::new(Port {
            name: name.to_string(),
            local,
            family_v4: at.is_ipv4(),
            sender,
        }),
        rx,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn addresses_round_trip(name in "[a-z0-9-]{0,40}", ip in any::<[u8; 16]>(), v4 in any::<bool>(), port in any::<u16>()) {
            let ip: IpAddr = if v4 { <[u8; 4]>::try_from(&ip[..4]).unwrap().into() } else { ip.into() };
            let at = SocketAddr::new(ip, port);
            let c = encode(&name, at).unwrap();
            prop_assert_eq!(decode(&c), Some((name.as_str(), at)));
        }

        #[test]
        fn any_bytes_decode_or_fail_cleanly(d in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode(&CustomAddr::from_parts(UDP_LINK_ID, &d));
        }
    }

    #[tokio::test]
    async fn links_pair_by_name_and_carry_frames() {
        // The very first datagram of a fresh link must go out (no readiness
        // to wait for): a lost one here would hang the test.
        let (a, _arx) = open("lan", "127.0.0.1:0".parse().unwrap()).unwrap();
        let (b, mut brx) = open("lan", "127.0.0.1:0".parse().unwrap()).unwrap();
        let (other, _orx) = open("radio", "127.0.0.1:0".parse().unwrap()).unwrap();
        assert!(a.carries(&b.addr()));
        assert!(!a.carries(&other.addr()));
        assert!(a.send(&other.addr(), Bytes::from_static(b"x")).is_err());
        a.send(&b.addr(), Bytes::from_static(b"hello")).unwrap();
        let (from, got) = brx.recv().await.unwrap();
        assert_eq!(&got[..], b"hello");
        assert_eq!(from.0, a.addr());
    }
}
