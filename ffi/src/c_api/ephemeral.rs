//! Ephemeral messages: options at open (beacons and the multicast path
//! included), publish, topic subscriptions, the latest messages, counters.

use std::ffi::c_char;

use super::boundary::{
    bytes_arg, c_string, call, call_out, free_c_string, into_raw_slice, opt_c_string, str_arg,
    take_raw_slice, write_opt,
};
use super::types::{PeatBytes, PeatError, PeatNode, PeatStr, PeatSubscription};
use crate::error::{ErrorCode, SdkError, SdkResult};
use crate::records::{
    EphemeralOptions, EphemeralStatsRecord, MessageEventRecord, MessageRecord, PublishOptionsRecord,
};
use crate::sdk;

/// Ephemeral options of [`PeatNodeOptions`](super::PeatNodeOptions); zeroed
/// for the defaults (the `default` beacon preset, no multicast path).
#[repr(C)]
pub struct PeatEphemeralOptions {
    /// "default", "tactical" or "distributed"; empty for "default".
    pub beacon_preset: PeatStr,
    /// Beacon interval overriding the preset's; 0 for the preset's.
    pub beacon_interval_ms: u64,
    /// Beacon time to live overriding the preset's; 0 for the preset's.
    pub beacon_ttl_ms: u64,
    /// The multicast path's group "ADDR:PORT" (IPv4 multicast group or a
    /// broadcast address); empty for no multicast path.
    pub multicast_group: PeatStr,
    /// The local interface address it sends from and joins on.
    pub multicast_interface: PeatStr,
}

pub(crate) fn ephemeral_options(o: &PeatEphemeralOptions) -> SdkResult<EphemeralOptions> {
    Ok(EphemeralOptions {
        beacon_preset: str_arg(o.beacon_preset, "beacon_preset")?.to_string(),
        beacon_interval_ms: o.beacon_interval_ms,
        beacon_ttl_ms: o.beacon_ttl_ms,
        multicast_group: str_arg(o.multicast_group, "multicast_group")?.to_string(),
        multicast_interface: str_arg(o.multicast_interface, "multicast_interface")?.to_string(),
    })
}

/// How [`peat_publish`] sends one message.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct PeatPublishOptions {
    /// Lifetime in ms (1 ms to 1 h); 0 for 10 s. Receivers drop it after.
    pub ttl_ms: u64,
    /// How many times it may be forwarded (0 to 8); above 0 it is signed.
    pub hop_limit: u8,
    /// Also send it on the node's multicast path, if it has one.
    pub multicast: bool,
    /// Its class under bandwidth budgets: "critical", "high", "normal",
    /// "low" or "bulk"; empty (zeroed) for high. A message is never queued:
    /// one a budget has no room for now is dropped and counted
    /// (`PeatBandwidthStats.dropped_datagrams`) and not in `*out_peers`.
    pub priority: PeatStr,
}

/// Publishes `payload` on `topic` to every connected peer (one datagram
/// each; nothing is stored). With `json` the payload must be JSON text.
/// `options` NULL: 10 s, 2 hops, multicast. `*out_peers` (may be NULL): how
/// many peers it was sent to. A topic or payload past its bound (64 / 960
/// bytes), a reserved topic ("_peat/..."), a ttl or hop limit out of range:
/// `PEAT_STATUS_INVALID_ARGUMENT`.
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says:
/// inputs readable for the call, out-pointers writable, and anything passed back
/// to a `peat_*_free` function exactly as the library returned it.
#[no_mangle]
pub unsafe extern "C" fn peat_publish(
    node: PeatNode,
    topic: PeatStr,
    payload: *const u8,
    payload_len: usize,
    json: bool,
    options: *const PeatPublishOptions,
    out_peers: *mut u32,
    err: *mut *mut PeatError,
) -> i32 {
    call(err, || {
        // SAFETY: a non-NULL `options` points to a valid struct for this call.
        let o = match unsafe { options.as_ref() } {
            Some(o) => PublishOptionsRecord {
                ttl_ms: o.ttl_ms,
                hop_limit: o.hop_limit,
                multicast: o.multicast,
                priority: str_arg(o.priority, "priority")?.to_string(),
            },
            None => PublishOptionsRecord {
                ttl_ms: 0,
                hop_limit: 2,
                multicast: true,
                priority: String::new(),
            },
        };
        let payload = bytes_arg(payload, payload_len, "payload")?;
        let n = sdk::publish(node.id, str_arg(topic, "topic")?, payload, json, o)?;
        write_opt(out_peers, n);
        Ok(())
    })
}

/// A message received. Its strings and bytes are owned by the event or list
/// that holds it.
#[repr(C)]
pub struct PeatMessage {
    /// Publisher's node id (64 hex digits).
    pub origin: *mut c_char,
    /// Topic.
    pub topic: *mut c_char,
    /// Payload.
    pub payload: PeatBytes,
    /// Published as JSON (the payload is JSON text).
    pub json: bool,
    /// The publisher's number for it.
    pub seq: u64,
    /// The publisher's clock at publish, Unix ms.
    pub sent_at_ms: u64,
    /// How many nodes forwarded it.
    pub hops: u8,
    /// The peer it came from; NULL when it came on the multicast path.
    pub via_peer: *mut c_char,
    /// Milliseconds left before it expires.
    pub ttl_left_ms: u64,
}

fn message(m: MessageRecord) -> PeatMessage {
    let (ptr, len) = into_raw_slice(m.payload);
    PeatMessage {
        origin: c_string(m.origin),
        topic: c_string(m.topic),
        payload: PeatBytes { ptr, len },
        json: m.json,
        seq: m.seq,
        sent_at_ms: m.sent_at_ms,
        hops: m.hops,
        via_peer: opt_c_string(m.via_peer),
        ttl_left_ms: m.ttl_left_ms,
    }
}

/// # Safety
/// `m` as made by [`message`], freed once.
unsafe fn free_message(m: &PeatMessage) {
    // SAFETY: the strings and bytes came from `c_string`/`into_raw_slice` in
    // `message` and are freed once (the header's ownership rule).
    unsafe {
        free_c_string(m.origin);
        free_c_string(m.topic);
        free_c_string(m.via_peer);
        drop(take_raw_slice(m.payload.ptr, m.payload.len));
    }
}

/// What [`PeatMessageEvent`] holds.
#[repr(i32)]
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum PeatMessageEventKind {
    /// `message` holds a message.
    Message = 1,
    /// `lagged` messages were dropped (the reader fell behind); `message` is zeroed.
    Lagged = 2,
}

/// An event of a topic subscription. Free with [`peat_message_event_free`].
#[repr(C)]
pub struct PeatMessageEvent {
    /// What it holds.
    pub kind: PeatMessageEventKind,
    /// The message (kind MESSAGE).
    pub message: PeatMessage,
    /// Messages dropped (kind LAGGED).
    pub lagged: u64,
}

fn zero_message() -> PeatMessage {
    PeatMessage {
        origin: std::ptr::null_mut(),
        topic: std::ptr::null_mut(),
        payload: PeatBytes {
            ptr: std::ptr::null_mut(),
            len: 0,
        },
        json: false,
        seq: 0,
        sent_at_ms: 0,
        hops: 0,
        via_peer: std::ptr::null_mut(),
        ttl_left_ms: 0,
    }
}

/// Subscribes to ephemeral topics: `filter` is "*" (every topic), "PREFIX*"
/// or one topic. With `latest_only` the queue holds only the newest message
/// of each origin and topic. Read with [`peat_topic_next`]; close with
/// [`peat_subscription_close`].
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says:
/// inputs readable for the call, out-pointers writable, and anything passed back
/// to a `peat_*_free` function exactly as the library returned it.
#[no_mangle]
pub unsafe extern "C" fn peat_topic_subscribe(
    node: PeatNode,
    filter: PeatStr,
    latest_only: bool,
    out: *mut PeatSubscription,
    err: *mut *mut PeatError,
) -> i32 {
    call_out(err, out, "out", || {
        let id = sdk::subscribe_topic(node.id, str_arg(filter, "filter")?, latest_only)?;
        Ok(PeatSubscription { id })
    })
}

/// Waits up to `timeout_ms` for the next message of a topic subscription
/// (expired messages are never returned). `PEAT_STATUS_TIMEOUT` when none
/// came, `PEAT_STATUS_CLOSED` once closed and drained. Free the event with
/// [`peat_message_event_free`].
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says:
/// inputs readable for the call, out-pointers writable, and anything passed back
/// to a `peat_*_free` function exactly as the library returned it.
#[no_mangle]
pub unsafe extern "C" fn peat_topic_next(
    sub: PeatSubscription,
    timeout_ms: u64,
    out: *mut PeatMessageEvent,
    err: *mut *mut PeatError,
) -> i32 {
    call_out(err, out, "out", || {
        match sdk::next_message(sub.id, timeout_ms)? {
            Some(MessageEventRecord::Message(m)) => Ok(PeatMessageEvent {
                kind: PeatMessageEventKind::Message,
                message: message(m),
                lagged: 0,
            }),
            Some(MessageEventRecord::Lagged(n)) => Ok(PeatMessageEvent {
                kind: PeatMessageEventKind::Lagged,
                message: zero_message(),
                lagged: n,
            }),
            None => Err(SdkError::new(
                ErrorCode::Timeout,
                "no message within the timeout",
            )),
        }
    })
}

/// Frees what a message event holds (not the struct). Accepts a zeroed event.
///
/// # Safety
/// `ev` must be NULL, zeroed, or filled by [`peat_topic_next`], freed once.
#[no_mangle]
pub unsafe extern "C" fn peat_message_event_free(ev: *mut PeatMessageEvent) {
    // SAFETY: a non-NULL `ev` points to an event this library filled.
    if let Some(ev) = unsafe { ev.as_mut() } {
        // SAFETY: its message was made by `message` (or is zeroed) and is freed once.
        unsafe { free_message(&ev.message) };
        ev.message = zero_message();
    }
}

/// Messages owned by the library. Free with [`peat_message_list_free`].
#[repr(C)]
pub struct PeatMessageList {
    /// `len` messages; NULL when `len` is 0.
    pub items: *mut PeatMessage,
    /// Number of messages.
    pub len: usize,
}

/// The latest live message of each origin and topic that `filter` takes
/// ("*", "PREFIX*" or a topic). Free with [`peat_message_list_free`].
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says:
/// inputs readable for the call, out-pointers writable, and anything passed back
/// to a `peat_*_free` function exactly as the library returned it.
#[no_mangle]
pub unsafe extern "C" fn peat_latest_messages(
    node: PeatNode,
    filter: PeatStr,
    out: *mut PeatMessageList,
    err: *mut *mut PeatError,
) -> i32 {
    call_out(err, out, "out", || {
        let v: Vec<PeatMessage> = sdk::latest_messages(node.id, str_arg(filter, "filter")?)?
            .into_iter()
            .map(message)
            .collect();
        let (items, len) = into_raw_slice(v);
        Ok(PeatMessageList { items, len })
    })
}

/// Frees a message list. Accepts a zeroed list.
///
/// # Safety
/// `list` must be zeroed or exactly as returned by [`peat_latest_messages`].
#[no_mangle]
pub unsafe extern "C" fn peat_message_list_free(list: PeatMessageList) {
    // SAFETY: `items`/`len` are NULL or came from `into_raw_slice`, freed once.
    let Some(items) = (unsafe { take_raw_slice(list.items, list.len) }) else {
        return;
    };
    for m in items.iter() {
        // SAFETY: each message was made by `message`, freed once.
        unsafe { free_message(m) };
    }
}

/// Counters of the node's ephemeral path.
///
/// # Safety
/// Pointer arguments must be NULL or valid as the header's ownership rule says:
/// inputs readable for the call, out-pointers writable, and anything passed back
/// to a `peat_*_free` function exactly as the library returned it.
#[no_mangle]
pub unsafe extern "C" fn peat_ephemeral_stats(
    node: PeatNode,
    out: *mut EphemeralStatsRecord,
    err: *mut *mut PeatError,
) -> i32 {
    call_out(err, out, "out", || sdk::ephemeral_stats(node.id))
}
