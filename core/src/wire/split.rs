//! Keeping change data within a frame: a large reply becomes several frames.

use super::Frame;

/// Most bytes of change data put in one frame; a larger reply is split into
/// [`Frame::MoreChanges`] and [`Frame::ChangePiece`] frames by [`split_changes`].
pub const CHANGE_FRAME_BUDGET: usize = 1 << 20;

/// Largest single Automerge change accepted, from a peer or from a local
/// write (64 MiB). A document's whole history may be larger: it is sent as many
/// changes, each inside this bound.
pub const MAX_CHANGE_LEN: usize = 64 << 20;

/// Most heads accepted in one frame. A document has one head per concurrent
/// branch not yet merged; real documents have a handful.
pub const MAX_HEADS: usize = 1024;

/// Splits a [`Frame::Changes`] whose change data exceeds
/// [`CHANGE_FRAME_BUDGET`] into frames that each stay within it: complete
/// changes grouped into [`Frame::MoreChanges`], changes larger than the budget
/// cut into [`Frame::ChangePiece`]s, and a final `Changes` with the heads. Any
/// other frame is returned as it is.
pub fn split_changes(frame: Frame) -> Vec<Frame> {
    let Frame::Changes {
        collection,
        id,
        changes,
        heads,
    } = frame
    else {
        return vec![frame];
    };
    if changes.iter().map(Vec::len).sum::<usize>() <= CHANGE_FRAME_BUDGET {
        return vec![Frame::Changes {
            collection,
            id,
            changes,
            heads,
        }];
    }
    let mut out = Vec::new();
    let mut group: Vec<Vec<u8>> = Vec::new();
    let mut group_len = 0;
    let flush = |group: &mut Vec<Vec<u8>>, group_len: &mut usize, out: &mut Vec<Frame>| {
        if !group.is_empty() {
            out.push(Frame::MoreChanges {
                collection: collection.clone(),
                id: id.clone(),
                changes: std::mem::take(group),
            });
            *group_len = 0;
        }
    };
    for c in changes {
        if c.len() > CHANGE_FRAME_BUDGET {
            flush(&mut group, &mut group_len, &mut out);
            let n = c.len().div_ceil(CHANGE_FRAME_BUDGET);
            for (i, piece) in c.chunks(CHANGE_FRAME_BUDGET).enumerate() {
                out.push(Frame::ChangePiece {
                    collection: collection.clone(),
                    id: id.clone(),
                    bytes: piece.to_vec(),
                    last: i + 1 == n,
                });
            }
            continue;
        }
        if group_len + c.len() > CHANGE_FRAME_BUDGET {
            flush(&mut group, &mut group_len, &mut out);
        }
        group_len += c.len();
        group.push(c);
    }
    out.push(Frame::Changes {
        collection,
        id,
        changes: group,
        heads,
    });
    out
}
