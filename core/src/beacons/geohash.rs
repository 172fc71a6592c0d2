//! Geohash cells as integers: encoding, decoding, neighbours, and the cells
//! that cover a circle on the sphere.
//!
//! Written here rather than taken from a crate: the table indexes beacons by
//! the 60-bit integer form (a cell of any precision is then a contiguous
//! range of the index), and the covering of a circle across the antimeridian
//! and over the poles is the part that must be right; the string crates give
//! neither. The alphabet and the bit order (longitude first) are the standard
//! geohash ones, so strings interoperate with every other implementation.

use crate::error::{Error, Result};

/// Finest precision (characters); 5 bits each, 60 bits in all.
pub const MAX_PRECISION: u8 = 12;
/// Mean Earth radius (IUGG), metres.
pub const EARTH_RADIUS_M: f64 = 6_371_008.8;

const ALPHABET: &[u8; 32] = b"0123456789bcdefghjkmnpqrstuvwxyz";

/// A cell: `precision` characters, its bits in the low `5 * precision` bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cell {
    pub bits: u64,
    pub precision: u8,
}

/// Checks a coordinate: finite, latitude in [-90, 90], longitude in [-180, 180].
pub fn check_coords(lat: f64, lon: f64) -> Result<()> {
    if !lat.is_finite() || !lon.is_finite() {
        return Err(Error::InvalidArgument(
            "latitude and longitude must be finite numbers".into(),
        ));
    }
    if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
        return Err(Error::InvalidArgument(format!(
            "({lat}, {lon}) is out of range: latitude -90..90, longitude -180..180"
        )));
    }
    Ok(())
}

fn lon_bits(precision: u8) -> u32 {
    (5 * u32::from(precision)).div_ceil(2)
}

fn lat_bits(precision: u8) -> u32 {
    5 * u32::from(precision) / 2
}

/// Row (latitude) and column (longitude) of the cell holding a point.
fn indices(lat: f64, lon: f64, precision: u8) -> (u64, u64) {
    let (la, lo) = (lat_bits(precision), lon_bits(precision));
    let idx = |v: f64, min: f64, span: f64, bits: u32| {
        let n = (1u64 << bits) as f64;
        let i = ((v - min) / span * n).floor();
        (i.max(0.0) as u64).min((1u64 << bits) - 1)
    };
    (idx(lat, -90.0, 180.0, la), idx(lon, -180.0, 360.0, lo))
}

/// Interleaves a row and a column into cell bits (longitude first).
fn interleave(row: u64, col: u64, precision: u8) -> u64 {
    let total = 5 * u32::from(precision);
    let (mut r, mut c) = (lat_bits(precision), lon_bits(precision));
    let mut out = 0u64;
    for k in 0..total {
        out <<= 1;
        if k % 2 == 0 {
            c -= 1;
            out |= (col >> c) & 1;
        } else {
            r -= 1;
            out |= (row >> r) & 1;
        }
    }
    out
}

fn deinterleave(cell: Cell) -> (u64, u64) {
    let total = 5 * u32::from(cell.precision);
    let (mut row, mut col) = (0u64, 0u64);
    for k in 0..total {
        let bit = (cell.bits >> (total - 1 - k)) & 1;
        if k % 2 == 0 {
            col = (col << 1) | bit;
        } else {
            row = (row << 1) | bit;
        }
    }
    (row, col)
}

impl Cell {
    /// The cell of precision `precision` (1..=12) holding a point.
    pub fn of(lat: f64, lon: f64, precision: u8) -> Result<Cell> {
        check_coords(lat, lon)?;
        check_precision(precision)?;
        let (row, col) = indices(lat, lon, precision);
        Ok(Cell {
            bits: interleave(row, col, precision),
            precision,
        })
    }

    /// Parses a geohash string (1 to 12 characters of the geohash alphabet).
    pub fn parse(s: &str) -> Result<Cell> {
        let precision = u8::try_from(s.len()).unwrap_or(u8::MAX);
        check_precision(precision).map_err(|_| {
            Error::InvalidArgument(format!("a geohash is 1 to 12 characters: {s:?}"))
        })?;
        let mut bits = 0u64;
        for ch in s.bytes() {
            let v = ALPHABET
                .iter()
                .position(|&a| a == ch.to_ascii_lowercase())
                .ok_or_else(|| Error::InvalidArgument(format!("not a geohash: {s:?}")))?;
            bits = (bits << 5) | v as u64;
        }
        Ok(Cell { bits, precision })
    }

    /// Its geohash string.
    pub fn to_hash(self) -> String {
        (0..self.precision)
            .rev()
            .map(|i| ALPHABET[((self.bits >> (5 * u32::from(i))) & 31) as usize] as char)
            .collect()
    }

    /// The cell's bits aligned to the top of a `u64` (the index key form):
    /// the points inside this cell have keys in `start..=last`.
    pub fn key_range(self) -> (u64, u64) {
        let shift = 64 - 5 * u32::from(self.precision);
        let start = self.bits << shift;
        (start, start | ((1u64 << shift) - 1))
    }

    /// Its bounds: (south, west, north, east), degrees.
    pub fn bounds(self) -> (f64, f64, f64, f64) {
        let (row, col) = deinterleave(self);
        let h = 180.0 / (1u64 << lat_bits(self.precision)) as f64;
        let w = 360.0 / (1u64 << lon_bits(self.precision)) as f64;
        let s = -90.0 + row as f64 * h;
        let west = -180.0 + col as f64 * w;
        (s, west, s + h, west + w)
    }

    /// The cell and its up to 8 neighbours: across the antimeridian the
    /// columns wrap; beyond a pole there is no cell.
    pub fn with_neighbours(self) -> Vec<Cell> {
        let (row, col) = deinterleave(self);
        let rows = 1i64 << lat_bits(self.precision);
        let cols = 1i64 << lon_bits(self.precision);
        let mut out = Vec::with_capacity(9);
        for dr in -1i64..=1 {
            let r = row as i64 + dr;
            if r < 0 || r >= rows {
                continue;
            }
            for dc in -1i64..=1 {
                let c = (col as i64 + dc).rem_euclid(cols);
                let cell = Cell {
                    bits: interleave(r as u64, c as u64, self.precision),
                    precision: self.precision,
                };
                if !out.contains(&cell) {
                    out.push(cell);
                }
            }
        }
        out
    }
}

/// A point's index key: its precision-12 cell, top-aligned.
pub fn key_of(lat: f64, lon: f64) -> u64 {
    let (row, col) = indices(lat, lon, MAX_PRECISION);
    interleave(row, col, MAX_PRECISION) << 4
}

fn check_precision(p: u8) -> Result<()> {
    if (1..=MAX_PRECISION).contains(&p) {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "geohash precision is 1 to {MAX_PRECISION}, not {p}"
        )))
    }
}

/// Great-circle distance, metres (haversine).
pub fn distance_m(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = p2 - p1;
    let dl = (lon2 - lon1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * a.sqrt().min(1.0).asin()
}

/// At most this many cells are scanned for one circle; a circle needing more
/// at precision 1 (a large part of the globe) is answered by a full scan.
const MAX_COVER_CELLS: u64 = 64;

/// The cells (all of one precision) that together hold every point within
/// `radius_m` of (`lat`, `lon`); `None` if the circle is so large that the
/// whole table should be scanned. Conservative: the covering may hold points
/// outside the circle (the caller measures each), never misses one inside.
pub fn cover(lat: f64, lon: f64, radius_m: f64) -> Option<Vec<Cell>> {
    // Angular radius, with a margin for rounding in the trigonometry.
    let d = (radius_m / EARTH_RADIUS_M + 1e-9).to_degrees() + 1e-7;
    let south = lat - d;
    let north = lat + d;
    // The longitude half-width of a spherical cap: asin(sin d / cos lat).
    // Past a pole, or when that reaches 90°, every longitude is in.
    let half_lon = if north >= 90.0 || south <= -90.0 {
        None
    } else {
        let x = d.to_radians().sin() / lat.to_radians().cos();
        (x < 1.0).then(|| x.asin().to_degrees() + 1e-7)
    };
    let (south, north) = (south.max(-90.0), north.min(90.0));
    let mut chosen = None;
    for p in (1..=MAX_PRECISION).rev() {
        let h = 180.0 / (1u64 << lat_bits(p)) as f64;
        let w = 360.0 / (1u64 << lon_bits(p)) as f64;
        let rows = ((north - south) / h).ceil() as u64 + 1;
        let cols = match half_lon {
            Some(hl) => (((2.0 * hl) / w).ceil() as u64 + 1).min(1u64 << lon_bits(p)),
            None => 1u64 << lon_bits(p),
        };
        if rows.saturating_mul(cols) <= MAX_COVER_CELLS {
            chosen = Some(p);
            break;
        }
    }
    let p = chosen?;
    let (r0, _) = indices(south, 0.0, p);
    let (r1, _) = indices(north, 0.0, p);
    let cols_total = 1u64 << lon_bits(p);
    let col_list: Vec<u64> = match half_lon {
        None => (0..cols_total).collect(),
        Some(hl) => {
            // Walk east from the west edge, wrapping at the antimeridian.
            let west = lon - hl;
            let east = lon + hl;
            let wrap = |x: f64| ((x + 180.0).rem_euclid(360.0)) - 180.0;
            let (_, c0) = indices(0.0, wrap(west), p);
            let (_, c1) = indices(0.0, wrap(east), p);
            let n = if east - west >= 360.0 {
                cols_total
            } else {
                ((c1 + cols_total - c0) % cols_total) + 1
            };
            (0..n).map(|k| (c0 + k) % cols_total).collect()
        }
    };
    let mut cells = Vec::new();
    for r in r0..=r1 {
        for &c in &col_list {
            cells.push(Cell {
                bits: interleave(r, c, p),
                precision: p,
            });
        }
    }
    Some(cells)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_hashes() {
        // Published examples: the Jutland peninsula and the null island.
        assert_eq!(
            Cell::of(57.64911, 10.40744, 11).unwrap().to_hash(),
            "u4pruydqqvj"
        );
        assert_eq!(Cell::of(0.0, 0.0, 5).unwrap().to_hash(), "s0000");
        assert_eq!(Cell::of(-90.0, -180.0, 3).unwrap().to_hash(), "000");
        assert_eq!(Cell::of(90.0, 180.0, 3).unwrap().to_hash(), "zzz");
        let c = Cell::parse("u4pruydqqvj").unwrap();
        let (s, w, n, e) = c.bounds();
        assert!(s <= 57.64911 && 57.64911 <= n && w <= 10.40744 && 10.40744 <= e);
        assert!(Cell::parse("u4pa").is_err(), "'a' is not in the alphabet");
        assert!(Cell::parse("").is_err());
        assert!(Cell::of(f64::NAN, 0.0, 5).is_err());
        assert!(Cell::of(91.0, 0.0, 5).is_err());
        assert!(Cell::of(0.0, 0.0, 13).is_err());
    }

    #[test]
    fn neighbours_wrap_at_the_antimeridian_and_stop_at_the_poles() {
        let east_edge = Cell::of(0.1, 179.99, 4).unwrap();
        let n = east_edge.with_neighbours();
        assert_eq!(n.len(), 9);
        assert!(n.iter().any(|c| c.bounds().1 <= -179.9), "{n:?}");
        let pole = Cell::of(89.99, 10.0, 4).unwrap();
        assert_eq!(pole.with_neighbours().len(), 6);
    }

    #[test]
    fn key_ranges_nest() {
        let k = key_of(48.8584, 2.2945);
        for p in 1..=MAX_PRECISION {
            let (a, b) = Cell::of(48.8584, 2.2945, p).unwrap().key_range();
            assert!(a <= k && k <= b, "precision {p}");
        }
    }
}
