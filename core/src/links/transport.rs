//! The bond as iroh sees it: one custom transport whose single address
//! stands for all of the node's links.

use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};

use iroh::endpoint::transports::{
    CustomEndpoint, CustomSender, CustomTransport, RecvInfo, Transmit,
};
use iroh_base::CustomAddr;

use super::bond::{Bond, BondInner, ToIroh};
use crate::locks::LockExt;

impl CustomTransport for Bond {
    fn bind(&self) -> io::Result<Box<dyn CustomEndpoint>> {
        let rx = self
            .rx
            .locked()
            .take()
            .ok_or_else(|| io::Error::other("this bond is already bound"))?;
        Ok(Box::new(BondEndpoint {
            inner: self.inner.clone(),
            addrs: n0_watcher::Watchable::new(vec![self.inner.addr.clone()]),
            rx,
        }))
    }
}

#[derive(Debug)]
struct BondEndpoint {
    inner: Arc<BondInner>,
    addrs: n0_watcher::Watchable<Vec<CustomAddr>>,
    rx: ToIroh,
}

impl CustomEndpoint for BondEndpoint {
    fn watch_local_addrs(&self) -> n0_watcher::Direct<Vec<CustomAddr>> {
        self.addrs.watch()
    }

    fn create_sender(&self) -> Arc<dyn CustomSender> {
        Arc::new(BondSender {
            inner: self.inner.clone(),
        })
    }

    fn poll_recv(
        &mut self,
        cx: &mut Context,
        bufs: &mut [io::IoSliceMut<'_>],
        metas: &mut [noq_udp::RecvMeta],
        recv_infos: &mut [RecvInfo],
    ) -> Poll<io::Result<usize>> {
        let n = bufs.len().min(metas.len()).min(recv_infos.len());
        let mut filled = 0;
        while filled < n {
            match self.rx.poll_recv(cx) {
                Poll::Ready(Some((from, p))) => {
                    let len = p.len();
                    if bufs[filled].len() < len {
                        self.inner
                            .counters
                            .dropped_full
                            .fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    bufs[filled][..len].copy_from_slice(&p);
                    metas[filled].len = len;
                    metas[filled].stride = len;
                    recv_infos[filled] = RecvInfo::new(from, Some(self.inner.addr.clone()));
                    filled += 1;
                }
                Poll::Ready(None) if filled == 0 => {
                    return Poll::Ready(Err(io::Error::other("bond closed")))
                }
                Poll::Ready(None) | Poll::Pending => break,
            }
        }
        if filled == 0 {
            Poll::Pending
        } else {
            Poll::Ready(Ok(filled))
        }
    }
}

#[derive(Debug)]
struct BondSender {
    inner: Arc<BondInner>,
}

impl CustomSender for BondSender {
    fn is_valid_send_addr(&self, addr: &CustomAddr) -> bool {
        addr.id() == super::addr::BOND_TRANSPORT_ID
    }

    fn poll_send(
        &self,
        _cx: &mut Context,
        dst: &CustomAddr,
        _src: Option<&CustomAddr>,
        transmit: &Transmit<'_>,
    ) -> Poll<io::Result<()>> {
        let seg = transmit
            .segment_size
            .unwrap_or(transmit.contents.len())
            .max(1);
        for chunk in transmit.contents.chunks(seg) {
            self.inner.send(dst, chunk);
        }
        Poll::Ready(Ok(()))
    }
}
