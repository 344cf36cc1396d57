//! StreamEdgeEvent over real sockets, driven by an independent client stack: Python grpcio with
//! stubs generated from `tests/python/mex_subset.proto` (written from the reference's field
//! numbers), through `tests/python/edge_client.py`. Controller-like changes go through a
//! [`Mirror`] published into the running DME, as the notify stream would.
//!
//! Geography of [`region`] (telekom client, public clouds padded by 100 km): from Berlin the
//! nearest usable instances are berlin (2 km), hamburg (vodafone, allied with telekom, 256 km),
//! munich (502 km), frankfurt (aws, 422 + 100 km); from Munich: munich, frankfurt (304 + 100),
//! berlin (504), hamburg (612).

#[path = "../common/mod.rs"]
mod common;
mod handshake;
mod lifecycle;
mod nearer;
mod pushes;
mod samples_location;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::edge_py::{Found, PyEdge};
use common::*;
use dme::fixture::{self, Builder};
use dme::mirror::Mirror;
use dme::{Ctx, Dme, DmeConfig};
use edge_model::{AppInst, AppInstKey, AppKey, CloudletKey, HealthCheck, MaintenanceState};
use edge_model::{CloudletState, Object, ObjectKey};
use serde_json::{Value, json};

const BERLIN: (f64, f64) = (52.5, 13.4);
const MUNICH: (f64, f64) = (48.14, 11.58);
const BERLIN_FQDN: &str = "berlin.berlin-telekom.local.edge.example.net";
const MUNICH_FQDN: &str = "munich.munich-telekom.local.edge.example.net";
const HAMBURG_FQDN: &str = "hamburg.hamburg-vodafone.local.edge.example.net";
const FRANKFURT_FQDN: &str = "frankfurt.frankfurt-aws.local.edge.example.net";

/// A DME fed from a mirror, so tests can change objects the way the controller would.
struct Live {
    server: Server,
    mirror: Mirror,
    version: u64,
}

impl Live {
    async fn start(b: Builder, config: DmeConfig) -> Self {
        let doc = b.build();
        let mut mirror = Mirror::from_deployment(&doc);
        let tables = mirror.build(None, 1);
        let server = start_dme(Dme::new(tables, keys(), config, None)).await;
        Self {
            server,
            mirror,
            version: 1,
        }
    }

    async fn py(&self) -> PyEdge {
        PyEdge::spawn(self.server.grpc).await
    }

    /// Publishes the mirror's changes and pushes the resulting events.
    fn publish(&mut self) {
        self.version += 1;
        self.server.dme.apply_mirror(&mut self.mirror, self.version);
    }

    fn inst(&self, name: &str) -> AppInst {
        self.mirror
            .objects()
            .app_inst(&inst_key(name))
            .unwrap_or_else(|| panic!("no instance {name}"))
            .clone()
    }

    fn set_health(&mut self, name: &str, health: HealthCheck) {
        let mut inst = self.inst(name);
        inst.health = health;
        self.mirror.apply(Object::AppInst(inst));
        self.publish();
    }

    fn set_maintenance(&mut self, org: &str, name: &str, state: MaintenanceState) {
        let key = fixture::cloudlet_key(org, name);
        let mut c = self
            .mirror
            .objects()
            .cloudlet(&key)
            .expect("cloudlet")
            .clone();
        c.maintenance_state = state;
        self.mirror.apply(Object::Cloudlet(c));
        self.publish();
    }
}

fn inst_key(name: &str) -> AppInstKey {
    AppInstKey {
        organization: fixture::app_key().organization,
        name: name.into(),
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn config() -> DmeConfig {
    DmeConfig::default()
}

/// A client of the default app registered and found at `at` on telekom, with its stream
/// `id` open and initialised.
async fn client(py: &mut PyEdge, id: &str, at: (f64, f64)) -> Found {
    let found = py
        .register_and_find(&fixture::app_key(), "telekom", at.0, at.1)
        .await;
    py.connect(id, &found, "telekom").await;
    found
}

fn close_to(got: &Value, want: f64, what: &str) {
    let got = got
        .as_f64()
        .unwrap_or_else(|| panic!("{what}: not a number: {got}"));
    let ok = if want == 0.0 {
        got.abs() < 1e-12
    } else {
        ((got - want) / want).abs() < 1e-9
    };
    assert!(ok, "{what}: got {got}, want {want}");
}

/// Checks an EVENT_LATENCY_PROCESSED's statistics: (avg, min, max, variance, n).
fn assert_stats(ev: &Value, avg: f64, min: f64, max: f64, variance: f64, n: u64) {
    assert_eq!(ev["event_type"], "EVENT_LATENCY_PROCESSED", "{ev}");
    let s = &ev["statistics"];
    assert!(s.is_object(), "no statistics: {ev}");
    close_to(&s["avg"], avg, "avg");
    close_to(&s["min"], min, "min");
    close_to(&s["max"], max, "max");
    close_to(&s["variance"], variance, "variance");
    close_to(&s["std_dev"], variance.sqrt(), "std_dev");
    assert_eq!(s["num_samples"], n, "{ev}");
}

fn assert_new_cloudlet(ev: &Value, fqdn: &str) {
    let nc = &ev["new_cloudlet"];
    assert!(nc.is_object(), "no new_cloudlet: {ev}");
    assert_eq!(nc["status"], "FIND_FOUND", "{ev}");
    assert_eq!(nc["fqdn"], fqdn, "{ev}");
    assert!(
        !nc["edge_events_cookie"]
            .as_str()
            .unwrap_or_default()
            .is_empty(),
        "no new edge events cookie: {ev}"
    );
}

fn assert_closed(v: &Value, code: &str) {
    assert_eq!(v["closed"], true, "expected a close with {code}, got {v}");
    assert_eq!(v["code"], code, "{v}");
}
