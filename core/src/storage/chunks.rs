//! Strict parsing of raw Automerge bytes before they are merged.
//!
//! Automerge's incremental load keeps whatever chunks parse and only logs the
//! rest, and a strict whole load refuses changes whose dependencies live in the
//! document being imported into. Neither says "these bytes are whole and
//! valid", so the chunk boundaries are walked here (the storage format is
//! public: magic, checksum, type, LEB128 length) and each chunk is parsed on
//! its own by Automerge: a document chunk is loaded, a change chunk decoded.

use automerge::{Automerge, Change, LoadOptions, OnPartialLoad};

use crate::error::{Error, Result};

const MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];
const DOCUMENT: u8 = 0;
const CHANGE: u8 = 1;
const COMPRESSED_CHANGE: u8 = 2;

fn bad(what: String) -> Error {
    Error::InvalidArgument(format!("not Automerge data: {what}"))
}

/// Checks that `bytes` are a sequence of complete, valid Automerge chunks.
pub(crate) fn check_automerge_bytes(bytes: &[u8]) -> Result<()> {
    let mut rest = bytes;
    let mut n = 0;
    while !rest.is_empty() {
        let chunk = next_chunk(rest).map_err(|e| bad(format!("chunk {n}: {e}")))?;
        let parsed = match chunk[8] {
            DOCUMENT => Automerge::load_with_options(
                chunk,
                LoadOptions::new().on_partial_load(OnPartialLoad::Error),
            )
            .map(|_| ())
            .map_err(|e| e.to_string()),
            CHANGE | COMPRESSED_CHANGE => Change::try_from(chunk)
                .map(|_| ())
                .map_err(|e| e.to_string()),
            t => Err(format!("unknown chunk type {t}")),
        };
        parsed.map_err(|e| bad(format!("chunk {n}: {e}")))?;
        rest = &rest[chunk.len()..];
        n += 1;
    }
    Ok(())
}

/// The first whole chunk of `b`.
fn next_chunk(b: &[u8]) -> std::result::Result<&[u8], String> {
    if b.len() < 10 || b[..4] != MAGIC {
        return Err("no chunk header".into());
    }
    let mut len: u64 = 0;
    let mut i = 9;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(i).ok_or("length cut short")?;
        i += 1;
        len |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            let end = (i as u64)
                .checked_add(len)
                .filter(|e| *e <= b.len() as u64)
                .ok_or_else(|| format!("chunk of {len} bytes, {} left", b.len() - i))?;
            return Ok(&b[..end as usize]);
        }
    }
    Err("length too long".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::transaction::Transactable;
    use automerge::ROOT;
    use proptest::prelude::*;

    fn doc() -> Automerge {
        let mut d = Automerge::new();
        d.transact::<_, _, automerge::AutomergeError>(|tx| tx.put(ROOT, "a", "some text here"))
            .unwrap();
        d
    }

    #[test]
    fn whole_saves_and_changes_pass_and_cuts_fail() {
        let mut d = doc();
        let save = d.save();
        check_automerge_bytes(&save).unwrap();
        let heads = d.get_heads();
        d.transact::<_, _, automerge::AutomergeError>(|tx| tx.put(ROOT, "b", 2i64))
            .unwrap();
        let incr = d.save_after(&heads);
        check_automerge_bytes(&incr).unwrap();
        let both = [save.clone(), incr.clone()].concat();
        check_automerge_bytes(&both).unwrap();
        for cut in [1, save.len() / 2, save.len() - 1] {
            assert!(check_automerge_bytes(&save[..cut]).is_err(), "cut at {cut}");
        }
        assert!(check_automerge_bytes(&both[..both.len() - 1]).is_err());
        let mut flipped = save.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 0xff;
        assert!(check_automerge_bytes(&flipped).is_err());
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = check_automerge_bytes(&b);
            let mut with_magic = MAGIC.to_vec();
            with_magic.extend(&b);
            let _ = check_automerge_bytes(&with_magic);
        }
    }
}
