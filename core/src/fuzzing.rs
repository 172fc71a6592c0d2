//! Entry points for the cargo-fuzz targets in `fuzz/` (compiled only under
//! `--cfg fuzzing`, which cargo-fuzz sets): every decoder of bytes that come
//! from a peer or from disk. Each must return an error for bad input, never
//! panic, and never allocate beyond its stated bound.

use crate::blobs::fuzz_decoders as blobs;
use crate::blobs::{BlobHash, Outboard};
use crate::sync::rbsr::Reconciler;

/// A sync or admission frame body, and the change splitter on what decodes.
pub fn frame(data: &[u8]) {
    if let Ok(f) = crate::wire::decode(data) {
        let _ = crate::wire::encode(&f);
        let _ = crate::wire::split_changes(f);
    }
}

/// A reconciliation message, received as responder and as initiator.
pub fn reconcile(data: &[u8]) {
    let items: Vec<(u64, [u8; 32])> = (0..200u64)
        .map(|i| (i / 3, *blake3::hash(&i.to_le_bytes()).as_bytes()))
        .collect();
    let mut responder = Reconciler::new(items.clone());
    let _ = responder.process(data, &mut Vec::new(), &mut Vec::new());
    let mut initiator = Reconciler::new(items);
    let _ = initiator.initiate();
    let _ = initiator.process(data, &mut Vec::new(), &mut Vec::new());
}

/// A blob request or response header, and the range check a provider runs.
pub fn blob_message(data: &[u8]) {
    match blobs::decode::<blobs::BlobRequest>(data) {
        Ok(blobs::BlobRequest::Get { ranges, .. }) => {
            let _ = blobs::check_ranges(&ranges, 1 << 30);
        }
        Ok(blobs::BlobRequest::GetInClass { ranges, class, .. }) => {
            let _ = blobs::check_ranges(&ranges, 1 << 30);
            let _ = blobs::served_class(Some(class));
        }
        _ => {}
    }
    let _ = blobs::decode::<blobs::BlobResponse>(data);
}

/// A blob's leaf list as a provider sends it (first 8 bytes: the claimed size).
pub fn outboard(data: &[u8]) {
    if data.len() < 8 {
        return;
    }
    let size = u64::from_le_bytes(data[..8].try_into().unwrap_or_default()) % (1 << 26);
    let _ = Outboard::verify(BlobHash::of(&data[8..]), size, &data[8..]);
}

/// Stored rows and files: document metadata, blob metadata, blob checkpoints.
pub fn stored(data: &[u8]) {
    let _ = crate::storage::Meta::decode(data);
    let _ = blobs::decode_meta(BlobHash::of(b""), data);
    let _ = blobs::decode_checkpoint(data);
}

/// Raw Automerge bytes as `import` checks them.
pub fn automerge_import(data: &[u8]) {
    let _ = crate::storage::check_automerge_bytes(data);
}

/// A document body given as JSON text (every binding passes its writes so).
pub fn document_json(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = crate::storage::parse_document(text);
    }
}

/// A frame arriving on a member link of the bond, and a bond address (a
/// peer's `DataFrom` frames carry one).
pub fn link_frame(data: &[u8]) {
    crate::links::fuzz_decoders::frame(data);
}

/// An ephemeral datagram as a peer or the multicast path delivers it: the
/// sealed form opened, the decoder, the signature check, and the duplicate
/// window on what decodes.
pub fn ephemeral_datagram(data: &[u8]) {
    use std::sync::{Mutex, OnceLock};
    static SEALER: OnceLock<Mutex<crate::ephemeral::seal::Sealer>> = OnceLock::new();
    let sealer = SEALER.get_or_init(|| {
        Mutex::new(crate::ephemeral::seal::Sealer::new(
            crate::Formation::new("fuzz", [3; 32]),
            &iroh::SecretKey::from_bytes(&[4; 32]),
        ))
    });
    if let Ok(mut s) = sealer.lock() {
        let _ = s.open(data, 1_800_000_000);
    }
    if let Ok(w) = crate::ephemeral::message::Wire::decode(data) {
        let _ = w.verify();
        let _ = w.remaining(std::time::Duration::from_millis(1));
        let mut win = crate::ephemeral::window::Windows::new(2);
        let _ = win.check(&w.origin, w.seq);
        let _ = win.check(&w.origin, w.seq.wrapping_sub(1));
        assert_eq!(
            crate::ephemeral::message::Wire::decode(&w.encode()).ok(),
            Some(w)
        );
    }
}

/// A beacon payload, and a geohash string (a cell query's argument).
pub fn beacon(data: &[u8]) {
    if let Ok((info, hash)) = crate::beacons::decode_beacon(data) {
        let _ = crate::beacons::encode_beacon(&info, hash.len() as u8);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(cell) = crate::beacons::Cell::parse(text) {
            let _ = cell.with_neighbours();
            let _ = cell.bounds();
        }
    }
}

/// A membership certificate's bytes, and the chain check on what decodes;
/// the same bytes as an enrollment request and as an enroller's stored
/// token table.
pub fn certificate(data: &[u8]) {
    use crate::trust::{validate_chain, Certificate, EnrollmentRequest, Genesis, TokenStore};
    if let Ok(r) = EnrollmentRequest::from_bytes(data) {
        assert_eq!(r.to_bytes(), data, "one encoding per request");
        let _ = r.check(r.formation(), 1_800_000_000_000);
    }
    let _ = TokenStore::from_bytes(data);
    if let Ok(c) = Certificate::from_bytes(data) {
        assert_eq!(c.to_bytes(), data, "one encoding per certificate");
        if let Ok(authority) = c.issuer() {
            let genesis = Genesis {
                formation: c.formation().to_string(),
                authority,
            };
            let _ = validate_chain(&genesis, &[c.clone(), c], 1_800_000_000_000);
        }
    }
}

/// A revocation's bytes, and the signer check on what decodes; the same
/// bytes as a revocation record (the revocation with its revoker's chain,
/// as it spreads between nodes).
pub fn revocation(data: &[u8]) {
    use crate::trust::{Genesis, Revocation, RevocationRecord};
    let genesis = Genesis {
        formation: "fuzz".into(),
        authority: crate::NodeId(iroh::SecretKey::from_bytes(&[7; 32]).public()),
    };
    if let Ok(r) = Revocation::from_bytes(data) {
        assert_eq!(r.to_bytes(), data, "one encoding per revocation");
        let _ = r.check(&genesis, &[], 1_800_000_000_000);
    }
    if let Ok(r) = RevocationRecord::from_bytes(data) {
        assert_eq!(r.to_bytes(), data, "one encoding per record");
        let _ = r.check(&genesis, 1_800_000_000_000);
    }
}
