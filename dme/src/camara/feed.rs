//! The operator feed: a text file the operator exports from its network (a UPF's address
//! pools, cell data) mapping IP prefixes and phone numbers to a location tile. Re-read when it
//! changes; a file that does not parse keeps the previous feed and is logged, so a half-written
//! export never empties the map.
//!
//! # Format
//! One entry per line, `#` comments and blank lines ignored:
//! ```text
//! ip    10.20.0.0/16      52.5200 13.4050 2000    # an address pool served near Berlin
//! ip    2001:db8:20::/48  52.5200 13.4050 2000
//! phone +4917012345678    48.1372 11.5756 500     # a subscriber's current cell
//! ```
//! `ip PREFIX LAT LON RADIUS_M` or `phone +E164 LAT LON RADIUS_M`. An address matches its
//! longest prefix. The location time of every entry is the file's modification time: when the
//! operator exported it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use geodata::LatLon;

use super::device::Identifier;
use super::locator::{DeviceLocator, Fix, LocateError};

/// How often the file's modification time is checked.
pub const POLL: Duration = Duration::from_secs(2);

/// Why a feed could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error("device feed {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("device feed line {line}: {reason}")]
    Line { line: usize, reason: String },
}

#[derive(Clone, Copy, Debug)]
struct Tile {
    center: LatLon,
    radius_m: f64,
}

/// A parsed feed.
#[derive(Debug, Default)]
pub struct Feed {
    /// (prefix length, masked address) → tile, per family; the lengths present, longest first.
    v4: HashMap<(u8, u32), Tile>,
    v4_lens: Vec<u8>,
    v6: HashMap<(u8, u128), Tile>,
    v6_lens: Vec<u8>,
    phones: HashMap<String, Tile>,
    /// Unix seconds: the export time.
    at: i64,
}

fn mask4(a: u32, len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        a & (u32::MAX << (32 - len))
    }
}

fn mask6(a: u128, len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        a & (u128::MAX << (128 - len))
    }
}

impl Feed {
    /// Parses a feed's text; `at` is its export time.
    pub fn parse(text: &str, at: i64) -> Result<Feed, FeedError> {
        let mut feed = Feed {
            at,
            ..Feed::default()
        };
        for (i, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let err = |reason: String| FeedError::Line {
                line: i + 1,
                reason,
            };
            let f: Vec<&str> = line.split_whitespace().collect();
            let [kind, key, lat, lon, radius] = f[..] else {
                return Err(err(
                    "expected `ip PREFIX LAT LON RADIUS_M` or `phone +E164 LAT LON RADIUS_M`"
                        .into(),
                ));
            };
            let num = |s: &str, what: &str| {
                s.parse::<f64>()
                    .map_err(|_| err(format!("{what} {s:?} is not a number")))
            };
            let center = LatLon::new(num(lat, "latitude")?, num(lon, "longitude")?)
                .map_err(|e| err(e.to_string()))?;
            let radius_m = num(radius, "radius")?;
            if !(1.0..=1.0e7).contains(&radius_m) {
                return Err(err(format!(
                    "radius {radius_m} m is not within 1 m-10 000 km"
                )));
            }
            let tile = Tile { center, radius_m };
            match kind {
                "ip" => feed.add_prefix(key, tile).map_err(err)?,
                "phone" => {
                    let digits = key.strip_prefix('+').unwrap_or("");
                    if !(5..=15).contains(&digits.len())
                        || !digits.bytes().all(|b| b.is_ascii_digit())
                        || digits.starts_with('0')
                    {
                        return Err(err(format!(
                            "{key:?} is not an E.164 number (+ and 5-15 digits)"
                        )));
                    }
                    if feed.phones.insert(key.to_string(), tile).is_some() {
                        return Err(err(format!("phone number {key} listed twice")));
                    }
                }
                other => return Err(err(format!("unknown entry kind {other:?} (ip or phone)"))),
            }
        }
        feed.v4_lens.sort_unstable_by(|a, b| b.cmp(a));
        feed.v4_lens.dedup();
        feed.v6_lens.sort_unstable_by(|a, b| b.cmp(a));
        feed.v6_lens.dedup();
        Ok(feed)
    }

    fn add_prefix(&mut self, key: &str, tile: Tile) -> Result<(), String> {
        let (addr, len) = key
            .split_once('/')
            .ok_or_else(|| format!("{key:?} is not a prefix (ADDRESS/LENGTH)"))?;
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("{addr:?} is not an IP address"))?;
        let len: u8 = len
            .parse()
            .map_err(|_| format!("prefix length {len:?} is not a number"))?;
        let dup = match addr {
            IpAddr::V4(a) if len <= 32 => {
                self.v4_lens.push(len);
                self.v4.insert((len, mask4(a.into(), len)), tile).is_some()
            }
            IpAddr::V6(a) if len <= 128 => {
                self.v6_lens.push(len);
                self.v6.insert((len, mask6(a.into(), len)), tile).is_some()
            }
            _ => return Err(format!("prefix length {len} is too long for {addr}")),
        };
        if dup {
            return Err(format!("prefix {key} listed twice"));
        }
        Ok(())
    }

    fn tile(&self, id: &Identifier) -> Option<Tile> {
        match id {
            Identifier::Phone(p) => self.phones.get(p).copied(),
            Identifier::Ipv4 { public, .. } => {
                let a = u32::from(*public);
                self.v4_lens
                    .iter()
                    .find_map(|&l| self.v4.get(&(l, mask4(a, l))).copied())
            }
            Identifier::Ipv6(a) => {
                let a = u128::from(*a);
                self.v6_lens
                    .iter()
                    .find_map(|&l| self.v6.get(&(l, mask6(a, l))).copied())
            }
        }
    }

    /// How many entries it holds.
    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len() + self.phones.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A feed file, followed as it changes.
pub struct FeedLocator {
    path: PathBuf,
    feed: ArcSwap<Feed>,
}

fn mtime(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn read(path: &Path) -> Result<Feed, FeedError> {
    let io = |source| FeedError::Io {
        path: path.to_path_buf(),
        source,
    };
    let text = std::fs::read_to_string(path).map_err(io)?;
    let at = mtime(path)
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    Feed::parse(&text, at)
}

impl FeedLocator {
    /// Reads the feed (it must parse) and re-reads it within [`POLL`] of each change; needs a
    /// Tokio runtime.
    pub fn open(path: &Path) -> Result<Arc<FeedLocator>, FeedError> {
        let feed = read(path)?;
        tracing::info!(path = %path.display(), entries = feed.len(), "device feed loaded");
        let locator = Arc::new(FeedLocator {
            path: path.to_path_buf(),
            feed: ArcSwap::from_pointee(feed),
        });
        tokio::spawn(watch(Arc::downgrade(&locator)));
        Ok(locator)
    }

    /// Re-reads the file now; on error the previous feed stays.
    pub fn reload(&self) -> Result<usize, FeedError> {
        let feed = read(&self.path)?;
        let n = feed.len();
        self.feed.store(Arc::new(feed));
        Ok(n)
    }
}

async fn watch(locator: std::sync::Weak<FeedLocator>) {
    let mut seen = locator.upgrade().and_then(|l| mtime(&l.path));
    loop {
        tokio::time::sleep(POLL).await;
        let Some(l) = locator.upgrade() else {
            return;
        };
        let now = mtime(&l.path);
        if now == seen {
            continue;
        }
        seen = now;
        match l.reload() {
            Ok(n) => tracing::info!(path = %l.path.display(), entries = n, "device feed reloaded"),
            Err(e) => tracing::warn!(error = %e, "keeping the previous device feed"),
        }
    }
}

impl DeviceLocator for FeedLocator {
    fn locate(&self, id: &Identifier, _now: i64) -> Result<Fix, LocateError> {
        let feed = self.feed.load();
        let tile = feed.tile(id).ok_or(LocateError::NotFound)?;
        Ok(Fix {
            center: tile.center,
            radius_m: tile.radius_m,
            at: feed.at,
        })
    }

    fn describe(&self) -> String {
        format!("feed {}", self.path.display())
    }
}

#[cfg(test)]
mod tests;
