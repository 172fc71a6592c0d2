//! Property tests of the wire format.

use super::*;
use proptest::prelude::*;

fn arb_hash() -> impl Strategy<Value = Hash32> {
    any::<[u8; 32]>()
}

fn arb_frame() -> impl Strategy<Value = Frame> {
    prop_oneof![
        (any::<u32>(), any::<[u8; 8]>(), arb_hash()).prop_map(|(version, formation_tag, nonce)| {
            Frame::Hello {
                version,
                formation_tag,
                nonce,
            }
        }),
        (arb_hash(), arb_hash()).prop_map(|(nonce, proof)| Frame::Challenge { nonce, proof }),
        arb_hash().prop_map(|proof| Frame::Proof { proof }),
        Just(Frame::Welcome),
        ".{0,40}".prop_map(|reason| Frame::Refused { reason }),
        (
            any::<bool>(),
            proptest::collection::vec(any::<u8>(), 0..300)
        )
            .prop_map(|(start, msg)| Frame::Reconcile { start, msg }),
        proptest::collection::vec(any::<[u8; 8]>(), 0..10)
            .prop_map(|prefixes| Frame::Want { prefixes }),
        (
            ".{0,20}",
            ".{0,20}",
            proptest::collection::vec(arb_hash(), 0..4),
            any::<bool>()
        )
            .prop_map(|(collection, id, heads, answer)| Frame::Heads {
                collection,
                id,
                heads,
                answer
            }),
        (
            ".{0,20}",
            ".{0,20}",
            proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..100), 0..4),
            proptest::collection::vec(arb_hash(), 0..3)
        )
            .prop_map(|(collection, id, changes, heads)| Frame::Changes {
                collection,
                id,
                changes,
                heads
            }),
        (
            ".{0,20}",
            ".{0,20}",
            proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..100), 0..4),
        )
            .prop_map(|(collection, id, changes)| Frame::MoreChanges {
                collection,
                id,
                changes,
            }),
        (
            ".{0,20}",
            ".{0,20}",
            proptest::collection::vec(any::<u8>(), 0..100),
            any::<bool>()
        )
            .prop_map(|(collection, id, bytes, last)| Frame::ChangePiece {
                collection,
                id,
                bytes,
                last
            }),
        proptest::collection::vec(
            (".{0,10}", proptest::collection::vec(any::<u16>(), 0..4)),
            0..4
        )
        .prop_map(|o| Frame::Protocols {
            offers: o
                .into_iter()
                .map(|(name, versions)| ProtocolOffer { name, versions })
                .collect()
        }),
        (".{0,10}", any::<u16>()).prop_map(|(protocol, version)| Frame::Open { protocol, version }),
        Just(Frame::Ping),
        proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 0..5)
            .prop_map(|chain| Frame::Membership { chain }),
        (proptest::collection::vec(arb_hash(), 0..5), any::<bool>())
            .prop_map(|(ids, last)| Frame::RevocationIds { ids, last }),
        proptest::collection::vec(any::<u8>(), 0..300)
            .prop_map(|record| Frame::RevocationRecord { record }),
        proptest::collection::vec(any::<u8>(), 0..300)
            .prop_map(|request| Frame::Enroll { request }),
        proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 0..5)
            .prop_map(|chain| Frame::Enrolled { chain }),
        (
            ".{0,10}",
            ".{0,10}",
            proptest::collection::vec(arb_hash(), 0..3),
            proptest::collection::vec(
                proptest::option::of((any::<u16>(), proptest::collection::vec(any::<u8>(), 0..70))),
                0..5
            )
        )
            .prop_map(|(collection, id, authors, entries)| Frame::Signatures {
                collection,
                id,
                authors,
                entries: entries
                    .into_iter()
                    .map(|e| e.map(|(author, sig)| crate::wire::ChangeSig { author, sig }))
                    .collect(),
            }),
    ]
}

/// Reassembles what [`split_changes`] made, as a receiver does.
fn reassemble(frames: &[Frame]) -> (Vec<Vec<u8>>, Vec<Hash32>) {
    let (mut changes, mut piece) = (Vec::new(), Vec::new());
    for f in frames {
        match f {
            Frame::MoreChanges { changes: c, .. } => changes.extend(c.iter().cloned()),
            Frame::ChangePiece { bytes, last, .. } => {
                piece.extend_from_slice(bytes);
                if *last {
                    changes.push(std::mem::take(&mut piece));
                }
            }
            Frame::Changes {
                changes: c, heads, ..
            } => {
                changes.extend(c.iter().cloned());
                assert!(piece.is_empty());
                return (changes, heads.clone());
            }
            other => panic!("unexpected {}", other.name()),
        }
    }
    panic!("no final Changes frame")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn split_changes_stays_in_budget_and_reassembles(
        sizes in proptest::collection::vec(0usize..(3 * CHANGE_FRAME_BUDGET), 0..6),
    ) {
        let changes: Vec<Vec<u8>> = sizes
            .iter()
            .enumerate()
            .map(|(i, n)| vec![i as u8; *n])
            .collect();
        let heads = vec![[7u8; 32]];
        let frames = split_changes(Frame::Changes {
            collection: "c".into(),
            id: "d".into(),
            changes: changes.clone(),
            heads: heads.clone(),
        });
        for f in &frames {
            prop_assert!(encode(f).unwrap().len() <= CHANGE_FRAME_BUDGET + 1024);
        }
        prop_assert_eq!(reassemble(&frames), (changes, heads));
    }
}

proptest! {
    #[test]
    fn frames_round_trip(frame in arb_frame()) {
        let bytes = encode(&frame).unwrap();
        prop_assert_eq!(u32::from_be_bytes(bytes[..4].try_into().unwrap()) as usize, bytes.len() - 4);
        prop_assert_eq!(decode(&bytes[4..]).unwrap(), frame);
    }

    #[test]
    fn random_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode(&body);
    }

    #[test]
    fn truncated_frames_are_errors(frame in arb_frame(), cut in 0usize..64) {
        let bytes = encode(&frame).unwrap();
        let body = &bytes[4..];
        if cut < body.len() {
            prop_assert!(decode(&body[..body.len() - cut - 1]).is_err());
        }
    }

    #[test]
    fn trailing_garbage_is_an_error(frame in arb_frame(), extra in proptest::collection::vec(any::<u8>(), 1..8)) {
        let mut body = encode(&frame).unwrap()[4..].to_vec();
        body.extend(extra);
        prop_assert!(decode(&body).is_err());
    }
}

proptest! {
    #[test]
    fn frame_reader_splits_any_chunking(frames in proptest::collection::vec(arb_frame(), 1..8), chunk in 1usize..50) {
        let mut bytes = Vec::new();
        for f in &frames {
            bytes.extend(encode(f).unwrap());
        }
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let got = rt.block_on(async {
            let (mut w, r) = tokio::io::duplex(64);
            let writer = async move {
                use tokio::io::AsyncWriteExt;
                for c in bytes.chunks(chunk) {
                    w.write_all(c).await.unwrap();
                }
            };
            let reader = async move {
                let mut fr = FrameReader::new(r);
                let mut out = Vec::new();
                while let Some((f, _)) = fr.read().await.unwrap() {
                    out.push(f);
                    while let Some((f, _)) = fr.next_buffered().unwrap() {
                        out.push(f);
                    }
                }
                out
            };
            tokio::join!(writer, reader).1
        });
        prop_assert_eq!(got, frames);
    }
}

#[tokio::test]
async fn frame_reader_rejects_truncation_and_oversize() {
    let mut bytes = encode(&Frame::Welcome).unwrap();
    bytes.pop();
    let mut r = FrameReader::new(&bytes[..]);
    assert_eq!(
        r.read().await.unwrap_err().kind(),
        crate::ErrorKind::Protocol
    );
    let big: &[u8] = &[0xff, 0xff, 0xff, 0xff, 0];
    let mut r = FrameReader::new(big);
    assert_eq!(
        r.read().await.unwrap_err().kind(),
        crate::ErrorKind::Protocol
    );
}

#[tokio::test]
async fn admission_frames_are_capped() {
    let big = encode(&Frame::Refused {
        reason: "x".repeat(1000),
    })
    .unwrap();
    let mut r: &[u8] = &big;
    let err = read_frame_max(&mut r, MAX_ADMISSION_FRAME)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("256"), "{err}");
}

#[test]
fn reasons_are_cut_and_made_printable() {
    assert_eq!(sanitize_reason("ok reason"), "ok reason");
    assert_eq!(sanitize_reason("a\nb\u{1b}[31mc"), "a?b?[31mc");
    let long = sanitize_reason(&"y".repeat(10_000));
    assert_eq!(long.len(), MAX_REASON_LEN + 3);
}

#[tokio::test]
async fn oversized_length_is_rejected_without_allocating() {
    let mut bytes: &[u8] = &[0xff, 0xff, 0xff, 0xff, 1, 2, 3];
    let err = read_frame(&mut bytes).await.unwrap_err();
    assert_eq!(err.kind(), crate::ErrorKind::Protocol);
}

#[tokio::test]
async fn stream_cut_inside_frame_is_a_protocol_error() {
    let bytes = encode(&Frame::Welcome).unwrap();
    let mut longer = bytes.clone();
    longer[3] = 10; // claims 10 bytes, has 1
    let mut r: &[u8] = &longer;
    assert_eq!(
        read_frame(&mut r).await.unwrap_err().kind(),
        crate::ErrorKind::Protocol
    );
    let mut r: &[u8] = &bytes;
    assert_eq!(read_frame(&mut r).await.unwrap(), Some(Frame::Welcome));
    assert_eq!(read_frame(&mut r).await.unwrap(), None);
}

async fn read_frame<R: tokio::io::AsyncRead + Unpin>(
    r: &mut R,
) -> crate::error::Result<Option<Frame>> {
    Ok(read_frame_max(r, MAX_FRAME_LEN).await?.map(|(f, _)| f))
}
