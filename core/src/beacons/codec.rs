//! A beacon's bytes: the payload of an ephemeral message on
//! [`super::BEACON_TOPIC`] (the origin and timestamp are the message's).
//! Postcard-encoded; every field is checked after decoding, and the geohash
//! must be the cell of the position it comes with.

use serde::{Deserialize, Serialize};

use super::geohash::Cell;
use super::{BeaconInfo, OperationalState};
use crate::error::{Error, Result};

/// Longest role or capability label, in bytes.
pub const MAX_LABEL: usize = 32;
/// Most capabilities in a beacon.
pub const MAX_CAPABILITIES: usize = 8;
const LAYOUT: u8 = 1;

#[derive(Serialize, Deserialize)]
struct WireBeacon {
    layout: u8,
    lat: f64,
    lon: f64,
    alt_m: Option<f32>,
    geohash: String,
    role: String,
    level: u8,
    capabilities: Labels,
    state: u8,
    battery_pct: Option<u8>,
    cpu_pct: Option<u8>,
    bandwidth_kbps: Option<u32>,
}

/// The capabilities on the wire: a sequence that is refused past
/// [`MAX_CAPABILITIES`] while it is read, so a claimed length never sizes an
/// allocation (a derived `Vec` would reserve for the count a peer claims).
struct Labels(Vec<String>);

impl Serialize for Labels {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Labels {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Labels;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                write!(f, "at most {MAX_CAPABILITIES} labels")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> std::result::Result<Labels, A::Error> {
                let mut v = Vec::new();
                while let Some(label) = seq.next_element::<String>()? {
                    if v.len() == MAX_CAPABILITIES {
                        return Err(serde::de::Error::custom(format!(
                            "more than {MAX_CAPABILITIES} capabilities"
                        )));
                    }
                    v.push(label);
                }
                Ok(Labels(v))
            }
        }
        d.deserialize_seq(Visit)
    }
}

pub(super) fn check_label(what: &str, s: &str) -> Result<()> {
    if s.len() > MAX_LABEL || s.chars().any(char::is_control) {
        return Err(Error::InvalidArgument(format!(
            "a {what} is at most {MAX_LABEL} bytes without control characters"
        )));
    }
    Ok(())
}

/// Encodes `info` with its geohash at `precision`; checks it first.
pub(crate) fn encode(info: &BeaconInfo, precision: u8) -> Result<(Vec<u8>, String)> {
    info.check()?;
    let geohash = Cell::of(info.lat, info.lon, precision)?.to_hash();
    let w = WireBeacon {
        layout: LAYOUT,
        lat: info.lat,
        lon: info.lon,
        alt_m: info.alt_m,
        geohash: geohash.clone(),
        role: info.role.clone(),
        level: info.level,
        capabilities: Labels(info.capabilities.clone()),
        state: info.state.code(),
        battery_pct: info.battery_pct,
        cpu_pct: info.cpu_pct,
        bandwidth_kbps: info.bandwidth_kbps,
    };
    let bytes = postcard::to_allocvec(&w).map_err(|e| Error::Internal(e.to_string()))?;
    Ok((bytes, geohash))
}

/// Decodes a beacon payload; a clear error for anything malformed, out of
/// range or lying (a geohash that is not the position's cell).
pub(crate) fn decode(bytes: &[u8]) -> Result<(BeaconInfo, String)> {
    let bad = |what: String| Error::Protocol(format!("beacon: {what}"));
    let (w, rest) = postcard::take_from_bytes::<WireBeacon>(bytes)
        .map_err(|e| bad(format!("malformed: {e}")))?;
    if !rest.is_empty() {
        return Err(bad("trailing bytes".into()));
    }
    if w.layout != LAYOUT {
        return Err(bad(format!("unknown layout {}", w.layout)));
    }
    let state = OperationalState::from_code(w.state)
        .ok_or_else(|| bad(format!("unknown state {}", w.state)))?;
    let info = BeaconInfo {
        lat: w.lat,
        lon: w.lon,
        alt_m: w.alt_m,
        role: w.role,
        level: w.level,
        capabilities: w.capabilities.0,
        state,
        battery_pct: w.battery_pct,
        cpu_pct: w.cpu_pct,
        bandwidth_kbps: w.bandwidth_kbps,
    };
    info.check().map_err(|e| bad(e.to_string()))?;
    let cell = Cell::parse(&w.geohash).map_err(|e| bad(e.to_string()))?;
    let own = Cell::of(info.lat, info.lon, cell.precision).map_err(|e| bad(e.to_string()))?;
    if own != cell {
        return Err(bad(format!(
            "geohash {} is not the cell of ({}, {})",
            w.geohash, info.lat, info.lon
        )));
    }
    Ok((info, cell.to_hash()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn info() -> BeaconInfo {
        BeaconInfo {
            lat: 59.3293,
            lon: 18.0686,
            alt_m: Some(28.0),
            role: "sensor".into(),
            level: 1,
            capabilities: vec!["camera".into(), "relay".into()],
            state: OperationalState::Ready,
            battery_pct: Some(80),
            cpu_pct: Some(12),
            bandwidth_kbps: Some(1_000),
        }
    }

    #[test]
    fn round_trips_and_refuses_lies() {
        let (bytes, hash) = encode(&info(), 7).unwrap();
        assert_eq!(hash.len(), 7);
        let (back, h) = decode(&bytes).unwrap();
        assert_eq!((back, h), (info(), hash));
        // a geohash elsewhere than the position
        let mut w: WireBeacon = postcard::from_bytes(&bytes).unwrap();
        w.geohash = "u4pruyd".into();
        assert!(decode(&postcard::to_allocvec(&w).unwrap()).is_err());
        // NaN, out of range, too many capabilities
        for bad in [
            BeaconInfo {
                lat: f64::NAN,
                ..info()
            },
            BeaconInfo {
                lon: 181.0,
                ..info()
            },
            BeaconInfo {
                battery_pct: Some(101),
                ..info()
            },
            BeaconInfo {
                capabilities: vec!["x".into(); 9],
                ..info()
            },
            BeaconInfo {
                role: "r".repeat(33),
                ..info()
            },
        ] {
            assert!(encode(&bad, 7).is_err(), "{bad:?}");
        }
        let mut w: WireBeacon = postcard::from_bytes(&bytes).unwrap();
        w.lat = f64::NAN;
        assert!(decode(&postcard::to_allocvec(&w).unwrap()).is_err());
    }

    #[test]
    fn a_claimed_count_of_capabilities_is_refused_while_read() {
        let (bytes, _) = encode(&info(), 7).unwrap();
        let mut w: WireBeacon = postcard::from_bytes(&bytes).unwrap();
        w.capabilities = Labels(vec!["c".into(); MAX_CAPABILITIES + 1]);
        let e = decode(&postcard::to_allocvec(&w).unwrap()).unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::Protocol, "{e}");
        // a count of a million in a few bytes: refused, nothing reserved for it
        let mut lie = postcard::to_allocvec(&1u8).unwrap();
        lie.extend_from_slice(&[0; 16]); // lat, lon
        lie.push(0); // no altitude
        lie.extend_from_slice(&[1, b's', 0, 0]); // geohash "s", role "", level 0
        lie.extend_from_slice(&[0xc0, 0x84, 0x3d]); // capabilities: 1,000,000
        assert!(decode(&lie).is_err());
    }

    proptest! {
        #[test]
        fn decoding_any_bytes_never_panics(b in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = decode(&b);
        }

        #[test]
        fn any_valid_beacon_round_trips(lat in -90.0f64..=90.0, lon in -180.0f64..=180.0, p in 1u8..=12) {
            let i = BeaconInfo::at(lat, lon);
            let (bytes, hash) = encode(&i, p).unwrap();
            prop_assert_eq!(decode(&bytes).unwrap(), (i, hash));
        }
    }
}
