//! Byte layouts of the redb tables. Little-endian, length-prefixed, versioned by `FORMAT`.
//!
//! kv value:   create_rev u64 | mod_rev u64 | version u64 | value bytes
//! log value:  count u32 | count × (tag u8 | key_len u32 | key | [put: create_rev u64 |
//!             version u64 | value_len u32 | value])

use crate::{Event, KeyValue, Revision, StoreError};

/// Bumped on any incompatible change to the layouts below; checked on open.
pub(super) const FORMAT: u64 = 1;

const TAG_PUT: u8 = 1;
const TAG_DELETE: u8 = 2;
const KV_HEADER: usize = 24;

/// The stored form of a key's value plus its bookkeeping.
pub(super) fn encode_entry(
    create: Revision,
    modified: Revision,
    version: u64,
    value: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(KV_HEADER + value.len());
    out.extend_from_slice(&create.to_le_bytes());
    out.extend_from_slice(&modified.to_le_bytes());
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(value);
    out
}

/// (create_rev, mod_rev, version, value) of a stored entry.
pub(super) fn decode_entry(key: &[u8], raw: &[u8]) -> Result<KeyValue, StoreError> {
    let mut r = Reader {
        buf: raw,
        what: "key entry",
    };
    Ok(KeyValue {
        key: key.to_vec(),
        create_revision: r.u64()?,
        mod_revision: r.u64()?,
        version: r.u64()?,
        value: r.rest().to_vec(),
    })
}

/// Only the bookkeeping of a stored entry, for compares and puts (skips copying the value).
pub(super) fn decode_header(raw: &[u8]) -> Result<(Revision, Revision, u64), StoreError> {
    let mut r = Reader {
        buf: raw,
        what: "key entry",
    };
    Ok((r.u64()?, r.u64()?, r.u64()?))
}

/// The value part of a stored entry.
pub(super) fn entry_value(raw: &[u8]) -> &[u8] {
    raw.get(KV_HEADER..).unwrap_or_default()
}

pub(super) fn encode_events(events: &[Event]) -> Result<Vec<u8>, StoreError> {
    let size: usize = events
        .iter()
        .map(|e| 32 + e.key().len() + event_value_len(e))
        .sum();
    let mut out = Vec::with_capacity(4 + size);
    out.extend_from_slice(&len_u32(events.len())?.to_le_bytes());
    for event in events {
        match event {
            Event::Put(kv) => {
                out.push(TAG_PUT);
                out.extend_from_slice(&len_u32(kv.key.len())?.to_le_bytes());
                out.extend_from_slice(&kv.key);
                out.extend_from_slice(&kv.create_revision.to_le_bytes());
                out.extend_from_slice(&kv.version.to_le_bytes());
                out.extend_from_slice(&len_u32(kv.value.len())?.to_le_bytes());
                out.extend_from_slice(&kv.value);
            }
            Event::Delete { key, .. } => {
                out.push(TAG_DELETE);
                out.extend_from_slice(&len_u32(key.len())?.to_le_bytes());
                out.extend_from_slice(key);
            }
        }
    }
    Ok(out)
}

/// Decodes the events of `revision`, keeping only keys under `prefix` (the log stores all keys;
/// filtering here avoids copying values nobody asked for).
pub(super) fn decode_events(
    revision: Revision,
    raw: &[u8],
    prefix: &[u8],
) -> Result<Vec<Event>, StoreError> {
    let mut r = Reader {
        buf: raw,
        what: "change-log entry",
    };
    let count = r.u32()?;
    let mut events = Vec::new();
    for _ in 0..count {
        let tag = r.u8()?;
        let key_len = r.u32()? as usize;
        let key = r.take(key_len)?;
        let wanted = key.starts_with(prefix);
        match tag {
            TAG_PUT => {
                let create_revision = r.u64()?;
                let version = r.u64()?;
                let value_len = r.u32()? as usize;
                let value = r.take(value_len)?;
                if wanted {
                    events.push(Event::Put(KeyValue {
                        key: key.to_vec(),
                        value: value.to_vec(),
                        create_revision,
                        mod_revision: revision,
                        version,
                    }));
                }
            }
            TAG_DELETE => {
                if wanted {
                    events.push(Event::Delete {
                        key: key.to_vec(),
                        mod_revision: revision,
                    });
                }
            }
            other => {
                return Err(StoreError::Backend(format!(
                    "corrupt change-log entry at revision {revision}: unknown event tag {other}"
                )));
            }
        }
    }
    Ok(events)
}

fn event_value_len(event: &Event) -> usize {
    match event {
        Event::Put(kv) => kv.value.len(),
        Event::Delete { .. } => 0,
    }
}

fn len_u32(len: usize) -> Result<u32, StoreError> {
    u32::try_from(len).map_err(|_| {
        StoreError::InvalidRequest(format!("{len} bytes is too large for one key or value"))
    })
}

/// A bounds-checked cursor: corrupt bytes become an error naming what was being read.
struct Reader<'a> {
    buf: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], StoreError> {
        if self.buf.len() < n {
            return Err(StoreError::Backend(format!(
                "corrupt {}: needed {n} more bytes, {} left",
                self.what,
                self.buf.len()
            )));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, StoreError> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, StoreError> {
        let mut b = [0; 4];
        b.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(b))
    }

    fn u64(&mut self) -> Result<u64, StoreError> {
        let mut b = [0; 8];
        b.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(b))
    }

    fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_and_filter_by_prefix() {
        let events = vec![
            Event::Put(KeyValue {
                key: b"a/1".to_vec(),
                value: b"v".to_vec(),
                create_revision: 3,
                mod_revision: 7,
                version: 2,
            }),
            Event::Delete {
                key: b"b/1".to_vec(),
                mod_revision: 7,
            },
        ];
        let raw = encode_events(&events).unwrap();
        assert_eq!(decode_events(7, &raw, b"").unwrap(), events);
        assert_eq!(decode_events(7, &raw, b"b/").unwrap(), events[1..]);
    }

    #[test]
    fn truncated_input_is_an_error_not_a_panic() {
        let raw = encode_events(&[Event::Delete {
            key: b"k".to_vec(),
            mod_revision: 1,
        }])
        .unwrap();
        for cut in 0..raw.len() {
            assert!(matches!(
                decode_events(1, &raw[..cut], b""),
                Err(StoreError::Backend(_))
            ));
        }
        assert!(decode_entry(b"k", &[0; 10]).is_err());
    }
}
