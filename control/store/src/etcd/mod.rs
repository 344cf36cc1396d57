//! The etcd store (cargo feature `etcd`): the same semantics mapped onto etcd v3.
//!
//! - Every key is stored under `namespace` (stripped again on the way out), so several
//!   stores, or parallel tests, can share one etcd without seeing each other's keys. Revisions
//!   are etcd's and therefore shared with everything else on that etcd.
//! - Compares: `Absent`/`Present` are `version == 0` / `version > 0`; `ModRevision` and
//!   `Value` map one to one (etcd also gives a missing key mod_revision 0 and fails value
//!   compares on it, which is where our documented semantics come from).
//! - Watches ask etcd to start *at* `start_revision` (not after it) and drop that revision's
//!   events themselves: a watch at exactly etcd's compaction revision may lack a delete of that
//!   revision, so starting there only counts as valid if we do not need its events. This makes
//!   "start < compaction revision ⇒ `Compacted`" hold exactly, as in the redb store.

mod watch;

use std::time::Duration;

use async_trait::async_trait;
use etcd_client::{
    Client, CompactionOptions, Compare as EtcdCompare, CompareOp, ConnectOptions, DeleteOptions,
    GetOptions, KvClient, TxnOp, WatchClient, WatchOptions,
};
use tokio::sync::watch as signal;

use crate::{
    Compare, KeyValue, Op, RangeResponse, Revision, Store, StoreError, Txn, TxnResponse,
    WatchStream,
};

/// Keys per page of a range read. etcd refuses values over its request limit (1.5 MiB by
/// default), so a page stays well below `MAX_RANGE_MESSAGE` however large the values are.
const PAGE: i64 = 128;
/// gRPC decode limit for range pages (tonic's default of 4 MiB is too small for a page of
/// large values).
const MAX_RANGE_MESSAGE: usize = 256 << 20;
/// gRPC decode limit for watch responses: gRPC's own maximum. A watcher catching up gets up to
/// 1000 revisions in one message, which we cannot page, and a refused message would end the
/// watch again after every re-watch. etcd is trusted, so only real memory bounds this.
const MAX_WATCH_MESSAGE: usize = i32::MAX as usize;

/// Where and how to reach etcd.
#[derive(Debug, Clone)]
pub struct EtcdOptions {
    /// Client endpoints, e.g. `["http://127.0.0.1:2379"]`.
    pub endpoints: Vec<String>,
    /// Prefix for every key this store touches, e.g. `b"/edgeplane/region-1/"`.
    pub namespace: Vec<u8>,
    /// Limit for establishing a connection. Default 5 s.
    pub connect_timeout: Duration,
    /// Limit for one unary request (get, range page, txn, compact). Default 10 s.
    pub request_timeout: Duration,
}

impl EtcdOptions {
    /// Options for `endpoints` with the given key namespace and default timeouts.
    pub fn new(endpoints: Vec<String>, namespace: impl Into<Vec<u8>>) -> Self {
        Self {
            endpoints,
            namespace: namespace.into(),
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
        }
    }
}

/// The etcd-backed [`Store`]. Cheap to clone; dropping the last clone ends its watches with
/// [`StoreError::Unavailable`], as the embedded store does.
#[derive(Clone)]
pub struct EtcdStore {
    kv: KvClient,
    watch: WatchClient,
    namespace: Vec<u8>,
    request_timeout: Duration,
    /// Never sent on: its only job is to be dropped with the last clone, which every watch
    /// stream notices through its receiver.
    _alive: std::sync::Arc<signal::Sender<()>>,
    alive: signal::Receiver<()>,
}

impl std::fmt::Debug for EtcdStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdStore")
            .field("namespace", &String::from_utf8_lossy(&self.namespace))
            .finish_non_exhaustive()
    }
}

impl EtcdStore {
    /// Connects and checks that etcd answers (so a wrong endpoint fails here, clearly).
    pub async fn connect(options: EtcdOptions) -> Result<Self, StoreError> {
        if options.endpoints.is_empty() {
            return Err(StoreError::InvalidRequest(
                "etcd store: no endpoints given".into(),
            ));
        }
        let connect = ConnectOptions::new()
            .with_connect_timeout(options.connect_timeout)
            .with_keep_alive(Duration::from_secs(10), Duration::from_secs(5));
        let endpoints = options.endpoints.join(",");
        let client = tokio::time::timeout(
            options.connect_timeout,
            Client::connect(&options.endpoints, Some(connect)),
        )
        .await
        .map_err(|_| StoreError::Unavailable(format!("etcd at {endpoints}: connect timed out")))?
        .map_err(|e| StoreError::Unavailable(format!("etcd at {endpoints}: {e}")))?;
        let (tx, rx) = signal::channel(());
        let store = Self {
            kv: client
                .kv_client()
                .max_decoding_message_size(MAX_RANGE_MESSAGE),
            watch: client
                .watch_client()
                .max_decoding_message_size(MAX_WATCH_MESSAGE),
            namespace: options.namespace,
            request_timeout: options.request_timeout,
            _alive: std::sync::Arc::new(tx),
            alive: rx,
        };
        store.current_revision().await.map_err(|e| match e {
            StoreError::Unavailable(m) | StoreError::Backend(m) => {
                StoreError::Unavailable(format!("etcd at {endpoints} does not answer: {m}"))
            }
            other => other,
        })?;
        Ok(store)
    }

    fn full_key(&self, key: &[u8]) -> Vec<u8> {
        [self.namespace.as_slice(), key].concat()
    }

    /// `(start, end)` of the etcd range holding every key under `prefix` in our namespace.
    fn prefix_range(&self, prefix: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let start = self.full_key(prefix);
        // etcd: key "\0" with range_end "\0" is the whole key space; range_end "\0" with any
        // other key means "every key from there on".
        match crate::prefix_end(&start) {
            Some(end) => (start, end),
            None if start.is_empty() => (vec![0], vec![0]),
            None => (start, vec![0]),
        }
    }

    fn strip<'a>(&self, key: &'a [u8]) -> Result<&'a [u8], StoreError> {
        key.strip_prefix(self.namespace.as_slice()).ok_or_else(|| {
            StoreError::Backend(format!(
                "etcd returned key {:?} outside namespace {:?}",
                String::from_utf8_lossy(key),
                String::from_utf8_lossy(&self.namespace)
            ))
        })
    }

    fn key_value(&self, kv: &etcd_client::KeyValue) -> Result<KeyValue, StoreError> {
        Ok(KeyValue {
            key: self.strip(kv.key())?.to_vec(),
            value: kv.value().to_vec(),
            create_revision: to_revision(kv.create_revision())?,
            mod_revision: to_revision(kv.mod_revision())?,
            version: to_revision(kv.version())?,
        })
    }

    /// Runs one unary request under the request timeout, mapping errors.
    async fn call<T>(
        &self,
        op: &'static str,
        fut: impl Future<Output = Result<T, etcd_client::Error>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.request_timeout, fut).await {
            Ok(result) => result.map_err(|e| map_error(op, e)),
            Err(_) => Err(StoreError::Unavailable(format!(
                "etcd {op}: no answer within {:?}",
                self.request_timeout
            ))),
        }
    }

    fn compare(&self, compare: &Compare) -> Result<EtcdCompare, StoreError> {
        let key = self.full_key(compare.key());
        Ok(match compare {
            Compare::Absent(_) => EtcdCompare::version(key, CompareOp::Equal, 0),
            Compare::Present(_) => EtcdCompare::version(key, CompareOp::Greater, 0),
            Compare::ModRevision(_, r) => {
                EtcdCompare::mod_revision(key, CompareOp::Equal, to_etcd(*r)?)
            }
            Compare::Value(_, v) => EtcdCompare::value(key, CompareOp::Equal, v.clone()),
        })
    }

    fn op(&self, op: &Op) -> TxnOp {
        match op {
            Op::Put { key, value } => TxnOp::put(self.full_key(key), value.clone(), None),
            Op::Delete(key) => TxnOp::delete(self.full_key(key), None),
            Op::DeletePrefix(prefix) => {
                let (start, end) = self.prefix_range(prefix);
                TxnOp::delete(start, Some(DeleteOptions::new().with_range(end)))
            }
        }
    }

    /// One attempt at a paged, consistent range read.
    async fn range_once(&self, prefix: &[u8]) -> Result<RangeResponse, StoreError> {
        let (mut from, end) = self.prefix_range(prefix);
        let mut kvs = Vec::new();
        let mut revision = 0; // 0 = "latest" for the first page; later pages pin its revision
        loop {
            let mut options = GetOptions::new().with_range(end.clone()).with_limit(PAGE);
            if revision != 0 {
                options = options.with_revision(revision);
            }
            let mut kv = self.kv.clone();
            let resp = self.call("range", kv.get(from, Some(options))).await?;
            if revision == 0 {
                revision = header_revision(resp.header())?;
            }
            for kv in resp.kvs() {
                kvs.push(self.key_value(kv)?);
            }
            match (resp.more(), resp.kvs().last()) {
                (true, Some(last)) => from = [last.key(), &[0]].concat(),
                _ => break,
            }
        }
        Ok(RangeResponse {
            kvs,
            revision: to_revision(revision)?,
        })
    }
}

#[async_trait]
impl Store for EtcdStore {
    async fn get(&self, key: &[u8]) -> Result<Option<KeyValue>, StoreError> {
        crate::check_key(key)?;
        let mut kv = self.kv.clone();
        let resp = self.call("get", kv.get(self.full_key(key), None)).await?;
        resp.kvs().first().map(|kv| self.key_value(kv)).transpose()
    }

    async fn range(&self, prefix: &[u8]) -> Result<RangeResponse, StoreError> {
        // Later pages read at the first page's revision; if a compaction overtakes that
        // revision mid-read, start over at a fresh one.
        let mut attempts = 0;
        loop {
            match self.range_once(prefix).await {
                Err(e) if history_compacted(&e) && attempts < 3 => attempts += 1,
                other => return other,
            }
        }
    }

    async fn txn(&self, txn: Txn) -> Result<TxnResponse, StoreError> {
        txn.validate()?;
        let compares = txn
            .compares
            .iter()
            .map(|c| self.compare(c))
            .collect::<Result<Vec<_>, _>>()?;
        let request = etcd_client::Txn::new()
            .when(compares)
            .and_then(txn.success.iter().map(|o| self.op(o)).collect::<Vec<_>>())
            .or_else(txn.failure.iter().map(|o| self.op(o)).collect::<Vec<_>>());
        let mut kv = self.kv.clone();
        let resp = self.call("txn", kv.txn(request)).await?;
        Ok(TxnResponse {
            succeeded: resp.succeeded(),
            revision: to_revision(header_revision(resp.header())?)?,
        })
    }

    async fn watch(
        &self,
        prefix: &[u8],
        start_revision: Revision,
    ) -> Result<WatchStream, StoreError> {
        let (key, end) = self.prefix_range(prefix);
        // etcd treats start revision 0 as "now"; we mean "from the beginning".
        let from = to_etcd(start_revision.max(1))?;
        let options = WatchOptions::new()
            .with_range(end)
            .with_start_revision(from);
        let mut client = self.watch.clone();
        let stream = self.call("watch", client.watch(key, Some(options))).await?;
        Ok(watch::stream(
            stream,
            self.namespace.clone(),
            start_revision,
            self.alive.clone(),
        ))
    }

    async fn current_revision(&self) -> Result<Revision, StoreError> {
        let mut kv = self.kv.clone();
        let options = GetOptions::new().with_count_only();
        let resp = self
            .call(
                "current_revision",
                kv.get(self.full_key(b""), Some(options)),
            )
            .await?;
        to_revision(header_revision(resp.header())?)
    }

    async fn compact(&self, revision: Revision) -> Result<(), StoreError> {
        let mut kv = self.kv.clone();
        // Physical: return only once etcd has really dropped the history, so that what we
        // report afterwards (Compacted or not) is settled.
        let options = CompactionOptions::new().with_physical();
        match self
            .call("compact", kv.compact(to_etcd(revision)?, Some(options)))
            .await
        {
            Err(e) if history_compacted(&e) => Ok(()), // already compacted that far
            other => other.map(drop),
        }
    }
}

/// etcd's "required revision has been compacted" (a read at, or compaction to, an old
/// revision). Only ever inspected internally, never returned as such.
fn history_compacted(e: &StoreError) -> bool {
    matches!(e, StoreError::Backend(m) if m.contains("required revision has been compacted"))
}

fn header_revision(header: Option<&etcd_client::ResponseHeader>) -> Result<i64, StoreError> {
    header
        .map(|h| h.revision())
        .ok_or_else(|| StoreError::Backend("etcd response without a header".into()))
}

fn to_revision(r: i64) -> Result<Revision, StoreError> {
    Revision::try_from(r)
        .map_err(|_| StoreError::Backend(format!("etcd sent negative revision {r}")))
}

fn to_etcd(r: Revision) -> Result<i64, StoreError> {
    i64::try_from(r)
        .map_err(|_| StoreError::InvalidRequest(format!("revision {r} is beyond etcd's range")))
}

/// Classifies etcd errors: transport trouble is `Unavailable`, etcd's own argument errors are
/// `InvalidRequest` or `Compacted`, the rest `Backend`.
fn map_error(op: &'static str, e: etcd_client::Error) -> StoreError {
    use etcd_client::Error as E;
    use tonic::Code;
    match e {
        E::GRpcStatus(status) => {
            let msg = status.message();
            match status.code() {
                // Checked by `history_compacted`; etcd sends it as OutOfRange.
                _ if msg.contains("required revision has been compacted") => {
                    StoreError::Backend(format!("etcd {op}: {msg}"))
                }
                _ if msg.contains("required revision is a future revision") => {
                    StoreError::InvalidRequest(format!("etcd {op}: {msg}"))
                }
                Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Aborted => {
                    StoreError::Unavailable(format!("etcd {op}: {msg}"))
                }
                // A connection dropped mid-stream (etcd stopped or restarted) surfaces as
                // Unknown with the HTTP/2 error as its message; it is an outage, not a bug.
                Code::Unknown
                    if msg.contains("h2 protocol error") || msg.contains("connection") =>
                {
                    StoreError::Unavailable(format!("etcd {op}: connection lost: {msg}"))
                }
                Code::InvalidArgument | Code::OutOfRange | Code::FailedPrecondition => {
                    StoreError::InvalidRequest(format!("etcd {op}: {msg}"))
                }
                code => StoreError::Backend(format!("etcd {op}: {code:?}: {msg}")),
            }
        }
        E::TransportError(e) => StoreError::Unavailable(format!("etcd {op}: {e}")),
        E::IoError(e) => StoreError::Unavailable(format!("etcd {op}: {e}")),
        other => StoreError::Backend(format!("etcd {op}: {other}")),
    }
}
