//! `shepherd`: the per-cloudlet metrics agent. It subscribes to the controller's notify stream
//! for its cloudlet, collects every `interval` (default 5 s) from the cloudlet's root LB, its
//! DMEs, the app instances' processes and the CRM's utilisation report, and writes the points
//! to InfluxDB 1.x (database `metrics`) and to its own Prometheus endpoint.
//!
//! Owns: the InfluxDB line protocol ([`line`]), the sinks behind [`MetricsSink`] (batched
//! writes to InfluxDB, [`sink::influx`]; latest values on `GET /metrics`,
//! [`sink::prometheus`]), the Prometheus text parser ([`promtext`]), the collectors (pure,
//! [`collect`]; their I/O, [`collector`]), the collection loop ([`agent::run`]) and the
//! `edgeplane shepherd` flags ([`cli`]).
//!
//! Does not own: the notify protocol and the objects (`edge-api`, `edge-model`), the metrics
//! the root LB and the DME serve (`dataplane`, `dme`; read over HTTP only), the pid files
//! (the CRM's `local` platform writes them), the binary's dispatch (`src/main.rs`), cluster
//! metrics (upstream's per-cluster Prometheus: there are no clusters to query here) and alerts.
//!
//! Layers, bottom up: [`line`], [`promtext`], [`throttle`] and [`http`] import nothing of the
//! crate but each other; [`collect`] (pure) and [`sink`] sit on them; [`collector`] drives the
//! collectors, [`subscribe`] mirrors the objects, [`agent`] runs both into the sinks, and
//! [`cli`] wires flags to it.
//!
//! # Measurements (upstream's names, tags and fields)
//!
//! Every instance series carries `app`, `ver`, `apporg`, `cloudlet`, `cloudletorg`, `cluster`,
//! `clusterorg` (the last two only for instances in a cluster) and, beyond upstream, `appinst`
//! (the instance's name: our instance key is `organization/name`, and two instances of one app
//! may share a cloudlet).
//!
//! | measurement | extra tags | field ← source |
//! |---|---|---|
//! | `appinst-connections` | `port` | `active` ← `rootlb_listener_active`; `accepts` ← `rootlb_listener_accepted_total`; `handled` ← Σ `rootlb_backend_connections_total` (connections handed to a backend); `bytesSent` ← Σ `rootlb_backend_bytes_in_total` (towards the instance, as envoy's `upstream_cx_tx_bytes_total`); `bytesRecvd` ← Σ `rootlb_backend_bytes_out_total` |
//! | `appinst-udp` | `port` | `bytesSent`/`bytesRecvd` as above; `datagramsSent` ← Σ `rootlb_backend_packets_in_total`; `datagramsRecvd` ← Σ `rootlb_backend_packets_out_total`; `sentErrs` ← `rootlb_udp_drops_send_total`; `overflow` ← `rootlb_udp_drops_full_total` |
//! | `appinst-cpu` | | `cpu` ← Δ(utime+stime) of the instance's pids / wall time, percent of one core |
//! | `appinst-mem` | | `mem` ← Σ `VmRSS` of the instance's pids, bytes |
//! | `cloudlet-utilization` | (cloudlet tags only) | `vCpuUsed`, `vCpuMax`, `memUsed`, `memMax` (MB), `diskUsed`, `diskMax` (GB) ← `CloudletInfo.resources` |
//! | `dme-api` | `apporg`, `app`, `ver`, `method`, `cloudletorg`, `cloudlet` (Shepherd's), `dmeId` (the DME's `host:port`) | `reqs` ← `dme_api_requests_total`; `errs` ← `dme_api_errors_total`; `foundCloudlet` ← `dme_api_found_cloudlet_total`; `notFound` ← `dme_api_not_found_total` (ours); one field per latency bucket named after its bound (`5ms`, `10ms`, ...) ← `dme_api_latency_seconds_bucket`, per bucket (not cumulative) |
//! | `latency-metric`, `device-metric`, `custom-metric` | the edge-events client's `apporg`, `app`, `ver`, `appinst`, `appinstorg`, `cloudletorg`, `cloudlet`, `locationtile`, `carrier`, `datanetworktype`, `deviceos`, `devicemodel` (`stat` for custom), `dmeId` | latency: `avg`, `min`, `max`, `variance`, `stddev`, `numsamples`, `total`, `signalstrength`, one field per bucket by lower bound (`0s`, `5ms`, ... `100ms`) ← `dme_edge_latency_ms_*`; device: `numsessions` ← `dme_edge_sessions_total`; custom: the statistics and `numsamples` ← `dme_edge_custom_*` (see `collect::edge_events`) |
//!
//! `port` is the app's own (internal) port behind the listener's public port, as upstream's
//! envoy `backend<port>` clusters were. Counters are written as read (cumulative since the root
//! LB or DME started; upstream's DME sent per-interval counts): take differences when querying
//! (`non_negative_difference`).
//!
//! Not filled: in `appinst-connections` the session-time percentiles (`P0` ... `P100`; the
//! root LB keeps no connection-length histogram); in `appinst-udp` `recvErrs` and `missed`
//! (not counted by the root LB); in `dme-api` `foundOperator` (the DME counts whether a cloudlet
//! was found, not whether the carrier matched); `appinst-disk`, `appinst-network` and the
//! `cluster-*` and `cloudlet-network`/`cloudlet-ipusage` measurements (no source); the `pod`
//! string of instance series.
//!
//! On the Prometheus endpoint each numeric field is the gauge `<measurement>_<field>` with
//! `-` made `_` (`appinst_connections_bytesSent{app=..,port=..}`), holding the latest value.
//! The endpoint also carries Shepherd's own counters (there only, not in InfluxDB):
//! `shepherd_rounds`, `shepherd_points`, `shepherd_scrapeErrors`, `shepherd_badLines`,
//! `shepherd_processErrors` and, per sink, `shepherd_<sink>{Accepted,Written,Dropped,Failed}`
//! (e.g. `shepherd_influxDropped`).

pub mod agent;
pub mod cli;
pub mod collect;
pub mod collector;
pub mod http;
pub mod line;
pub mod promtext;
pub mod sink;
pub mod subscribe;
pub mod throttle;

pub use agent::{DEFAULT_INTERVAL, ShepherdConfig, ShepherdError, run, run_with_objects};
pub use cli::{ShepherdArgs, run_shepherd, run_shepherd_until};
pub use collect::process::{ProcessSource, StateDirSource};
pub use collector::{Collector, Sources};
pub use line::{FieldValue, Point};
pub use sink::{InfluxConfig, InfluxSink, MetricsSink, PrometheusSink, SinkStats};
