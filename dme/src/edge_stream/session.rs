//! One stream's state and its decisions, free of I/O: [`Session::init`] checks the first
//! message; [`Session::on_message`] and [`Session::on_push`] take a client message or a push
//! and return the event to send, if any, reading the DME's current tables and keeping the
//! registry in step when the stream moves to another instance.

use std::sync::Arc;
use std::time::Instant;

use edge_model::{AppKey, HealthCheck};
use geodata::LatLon;

use crate::convert;
use crate::edge_cookie;
use crate::edge_events::registry::{Client, GroupKey, Placement, Push, PushKind};
use crate::edge_events::stats::{self, label, statistics};
use crate::error::ApiError;
use crate::matcher;
use crate::proto::client_edge_event::ClientEventType as In;
use crate::proto::server_edge_event::ServerEventType as Out;
use crate::proto::{self, ClientEdgeEvent, ServerEdgeEvent};
use crate::service::{Ctx, Dme};
use crate::tables::{AppTable, Tables};

/// What a client message asks of the stream.
#[derive(Debug, PartialEq)]
pub enum Step {
    Reply(Box<ServerEdgeEvent>),
    Nothing,
    End,
}

/// The device facts the measurements are keyed by.
#[derive(Clone, Debug, Default, PartialEq)]
struct Device {
    os: String,
    model: String,
    network: String,
    signal: u64,
}

pub struct Session {
    app: AppKey,
    app_tag: u64,
    carrier: String,
    at: LatLon,
    /// Edge tag of the instance the client was last sent to.
    current: Option<u64>,
    group: GroupKey,
    /// The client's last reported average latency to `current`.
    latency_ms: Option<f64>,
    /// The client was told its instance is unusable and nothing else was found.
    stranded: bool,
    device: Device,
    tile: String,
    /// Measurement labels of the app and current instance, and of the whole client (those
    /// plus tile, carrier and device): rebuilt when they change, not per message.
    inst_labels: String,
    labels: String,
    client: Arc<Client>,
    tokens: f64,
    refilled: Instant,
}

fn event(kind: Out) -> ServerEdgeEvent {
    ServerEdgeEvent {
        event_type: kind as i32,
        ..Default::default()
    }
}

fn error_event(msg: String) -> Step {
    let mut e = event(Out::EventError);
    e.error_msg = msg;
    Step::Reply(Box::new(e))
}

impl Session {
    /// Checks the first message (INIT, a valid session cookie, an edge-events cookie of the
    /// same app) and registers the stream. `client` is its handle, already holding its queue.
    pub fn init(
        dme: &Dme,
        first: &ClientEdgeEvent,
        ctx: Ctx,
        client: impl FnOnce(LatLon) -> Arc<Client>,
    ) -> Result<(Self, Vec<ServerEdgeEvent>), ApiError> {
        if first.event_type != In::EventInitConnection as i32 {
            dme.count_refused(crate::api_stats::Method::StreamEdgeEvent, ctx);
            return Err(ApiError::invalid(
                "First message should have event type EVENT_INIT_CONNECTION",
            ));
        }
        let cfg = &dme.config().edge_events;
        let grace = i64::try_from(cfg.cookie_grace.as_secs()).unwrap_or(i64::MAX / 2);
        let started = dme.verify_session_app(&first.session_cookie, ctx, |tables, app| {
            let token = edge_cookie::verify(
                dme.keys(),
                app.edge_tag,
                &first.edge_events_cookie,
                ctx.now,
                grace,
            )
            .map_err(|e| match e {
                crate::cookie::CookieError::Missing => {
                    ApiError::unauthenticated("missing edge events cookie")
                }
                e => ApiError::unauthenticated(format!("invalid edge events cookie: {e}")),
            })?;
            let dynamic = first.device_info_dynamic.clone().unwrap_or_default();
            let stat = first.device_info_static.clone().unwrap_or_default();
            let device = Device {
                os: stat.device_os,
                model: stat.device_model,
                network: dynamic.data_network_type,
                signal: dynamic.signal_strength,
            };
            let mut s = Session {
                app: app.app.key.clone(),
                app_tag: app.edge_tag,
                carrier: dynamic.carrier_name,
                at: token.at,
                current: None,
                group: GroupKey::Nowhere(app.edge_tag),
                latency_ms: None,
                stranded: false,
                tile: stats::location_tile(token.at, cfg.tile_km),
                device,
                inst_labels: String::new(),
                labels: String::new(),
                client: client(token.at),
                tokens: f64::from(cfg.burst.max(1)),
                refilled: Instant::now(),
            };
            let exists = app.inst_by_tag(token.inst).is_some();
            if exists {
                s.current = Some(token.inst);
                s.group = GroupKey::Inst(token.inst);
            }
            s.set_inst_labels(app);
            dme.edge().registry.add(s.client.clone(), &s.placement(app));
            let mut events = vec![event(Out::EventInitConnection)];
            // Its instance went away or became unusable before the stream opened: say so now
            // (upstream never answered such a stream at all).
            let usable = app
                .inst_by_tag(token.inst)
                .is_some_and(|id| app.usable.get(id));
            if !usable {
                let kind = PushKind::Health(HealthCheck::ServerFail);
                if let Some(e) = s.unusable(dme, tables, app, event_for(kind)) {
                    events.push(e);
                }
            }
            Ok((s, events))
        })?;
        dme.edge().metrics.session(&started.0.labels);
        Ok(started)
    }

    /// The registry group and the instance's place in it.
    fn placement(&self, app: &AppTable) -> Placement {
        let inst = self
            .current
            .and_then(|t| app.inst_by_tag(t))
            .map(|id| &app.insts[id as usize]);
        Placement {
            group: self.group,
            app: self.app_tag,
            cloudlet: inst.map(|i| i.cloudlet.key.clone()),
            at: inst.map(|i| i.location),
        }
    }

    pub fn client(&self) -> &Arc<Client> {
        &self.client
    }

    pub fn group(&self) -> GroupKey {
        self.group
    }

    /// One message from the client, after INIT.
    pub fn on_message(&mut self, dme: &Dme, msg: &ClientEdgeEvent, ctx: Ctx) -> Step {
        if !self.admit(dme) {
            return error_event(
                "Limiting client messages. Most recent ClientEdgeEvent will not be processed: \
                 rate limited, please retry later"
                    .into(),
            );
        }
        match In::try_from(msg.event_type) {
            Ok(In::EventTerminateConnection) => Step::End,
            Ok(In::EventLatencySamples) => self.latency(dme, msg),
            Ok(In::EventLocationUpdate) => self.location(dme, msg, ctx),
            Ok(In::EventCustomEvent) => {
                let mut labels = self.inst_labels.clone();
                label(&mut labels, "stat", &msg.custom_event);
                let samples = msg.samples.iter().map(|s| s.value);
                dme.edge().metrics.custom(&labels, samples);
                Step::Nothing
            }
            Ok(In::EventInitConnection) => {
                error_event("Received EVENT_INIT_CONNECTION on an open stream".into())
            }
            Ok(In::EventUnknown) | Err(_) => error_event(format!(
                "Received unknown event type: {}",
                In::try_from(msg.event_type)
                    .map(|e| e.as_str_name().to_string())
                    .unwrap_or_else(|_| msg.event_type.to_string())
            )),
        }
    }

    /// The per-stream token bucket.
    fn admit(&mut self, dme: &Dme) -> bool {
        let cfg = &dme.config().edge_events;
        if cfg.messages_per_sec == 0 {
            return true;
        }
        let now = Instant::now();
        let elapsed = now.duration_since(self.refilled).as_secs_f64();
        self.refilled = now;
        self.tokens = (self.tokens + elapsed * f64::from(cfg.messages_per_sec))
            .min(f64::from(cfg.burst.max(1)));
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    fn latency(&mut self, dme: &Dme, msg: &ClientEdgeEvent) -> Step {
        if let Err(e) = convert::client_location(msg.gps_location.as_ref(), "Missing GpsLocation") {
            return error_event(format!(
                "Invalid EVENT_LATENCY_SAMPLES, invalid location: rpc error: code = InvalidArgument desc = {}",
                e.message
            ));
        }
        let values = msg.samples.iter().map(|s| s.value);
        let st = statistics(values.clone());
        if st.num_samples > 0 {
            self.latency_ms = Some(st.avg);
        }
        let signal = msg
            .device_info_dynamic
            .as_ref()
            .map_or(self.device.signal, |d| d.signal_strength);
        dme.edge().metrics.latency(&self.labels, values, signal);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let mut e = event(Out::EventLatencyProcessed);
        e.statistics = Some(proto::Statistics {
            avg: st.avg,
            min: st.min,
            max: st.max,
            std_dev: st.std_dev,
            variance: st.variance,
            num_samples: st.num_samples,
            timestamp: Some(proto::Timestamp {
                seconds: i64::try_from(now.as_secs()).unwrap_or(i64::MAX),
                nanos: i32::try_from(now.subsec_nanos()).unwrap_or(0),
            }),
        });
        Step::Reply(Box::new(e))
    }

    fn location(&mut self, dme: &Dme, msg: &ClientEdgeEvent, ctx: Ctx) -> Step {
        let at = match convert::client_location(msg.gps_location.as_ref(), "Missing GpsLocation") {
            Ok(at) => at,
            Err(e) => {
                return error_event(format!(
                    "Invalid EVENT_LOCATION_UPDATE, invalid location: rpc error: code = InvalidArgument desc = {}",
                    e.message
                ));
            }
        };
        let tile = stats::location_tile(at, dme.config().edge_events.tile_km);
        let mut device = self.device.clone();
        let mut carrier_changed = false;
        if let Some(d) = &msg.device_info_dynamic {
            device.network.clone_from(&d.data_network_type);
            device.signal = d.signal_strength;
            if !d.carrier_name.is_empty() && d.carrier_name != self.carrier {
                self.carrier.clone_from(&d.carrier_name);
                carrier_changed = true;
            }
        }
        if tile != self.tile || device != self.device {
            self.tile = tile;
            self.device = device;
            self.relabel();
            dme.edge().metrics.session(&self.labels);
        } else if carrier_changed {
            self.relabel();
        }
        self.at = at;
        self.client.set_location(at);
        let tables = dme.tables();
        match self.better(dme, &tables, ctx) {
            Some(e) => Step::Reply(Box::new(e)),
            None => Step::Nothing,
        }
    }

    /// A push from the registry.
    pub fn on_push(&mut self, dme: &Dme, push: Push, ctx: Ctx) -> Option<ServerEdgeEvent> {
        let tables = dme.tables();
        let app = tables.app_by_key(&self.app)?.clone();
        match push.kind {
            PushKind::Available => {
                if self.stranded && self.current == Some(push.about) {
                    self.stranded = false;
                    let id = app.inst_by_tag(push.about)?;
                    return Some(self.update_to(dme, &app, id, ctx));
                }
                self.better(dme, &tables, ctx)
            }
            _ if self.current != Some(push.about) => None,
            PushKind::LatencyRequest => Some(event(Out::EventLatencyRequest)),
            kind => {
                let ev = event_for(kind);
                let usable = app
                    .inst_by_tag(push.about)
                    .is_some_and(|id| app.usable.get(id));
                if usable {
                    Some(ev)
                } else {
                    self.unusable(dme, &tables, &app, ev)
                }
            }
        }
    }

    /// After dropped pushes: what the stream would have been told, from the current state. An
    /// unusable instance is reported by its likeliest cause, else a better one is announced.
    pub fn resync(&mut self, dme: &Dme) -> Option<ServerEdgeEvent> {
        let tables = dme.tables();
        let app = tables.app_by_key(&self.app)?.clone();
        let current = self.current.and_then(|t| app.inst_by_tag(t));
        match current {
            Some(id) if app.usable.get(id) => self.better(dme, &tables, Ctx::now(None)),
            _ if self.stranded => None,
            Some(id) => {
                let c = &app.insts[id as usize].cloudlet;
                let kind = if c.maintenance == edge_model::MaintenanceState::UnderMaintenance {
                    PushKind::Maintenance(c.maintenance)
                } else if c.state != edge_model::CloudletState::Ready {
                    PushKind::CloudletState(c.state)
                } else {
                    PushKind::Health(HealthCheck::ServerFail)
                };
                self.unusable(dme, &tables, &app, event_for(kind))
            }
            None => self.unusable(
                dme,
                &tables,
                &app,
                event_for(PushKind::Health(HealthCheck::ServerFail)),
            ),
        }
    }

    /// The current instance is unusable: attach a new one, or say none was found.
    fn unusable(
        &mut self,
        dme: &Dme,
        tables: &Tables,
        app: &Arc<AppTable>,
        mut ev: ServerEdgeEvent,
    ) -> Option<ServerEdgeEvent> {
        let ctx = Ctx::now(None);
        match self.best(tables, app) {
            Some((id, _)) => {
                let update = self.update_to(dme, app, id, ctx);
                ev.new_cloudlet = update.new_cloudlet;
                self.stranded = false;
            }
            None => {
                ev.error_msg = "Current appinst is unusable. Unable to find any cloudlets doing \
                                FindCloudlet - FindStatus is FIND_NOTFOUND"
                    .into();
                self.stranded = true;
            }
        }
        Some(ev)
    }

    /// The best instance for the client now, with its distance.
    fn best(&self, tables: &Tables, app: &AppTable) -> Option<(u32, f64)> {
        if app.app.platform_app {
            return None;
        }
        let carrier = tables.translate_carrier(&self.carrier);
        let found = matcher::find(app, &tables.settings, carrier, self.at, 1, &mut rand::rng());
        let best = found.first()?;
        let id = app.inst_by_tag(best.inst.edge_tag)?;
        Some((id, best.distance_km))
    }

    /// CLOUDLET_UPDATE if the best instance is another than the current one and beats the
    /// hysteresis margins.
    fn better(&mut self, dme: &Dme, tables: &Tables, ctx: Ctx) -> Option<ServerEdgeEvent> {
        let app = tables.app_by_key(&self.app)?.clone();
        let (id, dist) = self.best(tables, &app)?;
        let tag = app.insts[id as usize].edge_tag;
        if Some(tag) == self.current {
            return None;
        }
        let cfg = &dme.config().edge_events;
        let current = self
            .current
            .and_then(|t| app.inst_by_tag(t))
            .filter(|&c| app.usable.get(c));
        if let Some(c) = current {
            let here = app.insts[c as usize].location.distance_km(&self.at);
            if cfg.hysteresis_km > 0.0 && dist + cfg.hysteresis_km > here {
                return None;
            }
            if cfg.keep_below_latency_ms > 0.0
                && self
                    .latency_ms
                    .is_some_and(|l| l < cfg.keep_below_latency_ms)
            {
                return None;
            }
        }
        Some(self.update_to(dme, &app, id, ctx))
    }

    /// Moves the stream to instance `id` and builds the CLOUDLET_UPDATE announcing it.
    fn update_to(&mut self, dme: &Dme, app: &AppTable, id: u32, ctx: Ctx) -> ServerEdgeEvent {
        let inst = &app.insts[id as usize];
        let from = self.group;
        self.current = Some(inst.edge_tag);
        self.group = GroupKey::Inst(inst.edge_tag);
        self.latency_ms = None;
        if from != self.group {
            self.set_inst_labels(app);
            dme.edge()
                .registry
                .relocate(self.client.id, from, &self.placement(app));
        }
        let mut e = event(Out::EventCloudletUpdate);
        e.new_cloudlet = Some(dme.found_reply(app, inst, self.at, ctx));
        e
    }

    /// Rebuilds the app and instance labels (the current instance changed), then the rest.
    fn set_inst_labels(&mut self, app: &AppTable) {
        let mut l = String::new();
        label(&mut l, "apporg", &self.app.organization);
        label(&mut l, "app", &self.app.name);
        label(&mut l, "ver", &self.app.version);
        let inst = self
            .current
            .and_then(|t| app.inst_by_tag(t))
            .map(|id| &app.insts[id as usize]);
        let (name, org, cloudlet_org, cloudlet) = inst.map_or(("", "", "", ""), |i| {
            let c = &i.cloudlet.key;
            (app.name(i), app.organization(i), &*c.organization, &*c.name)
        });
        label(&mut l, "appinst", name);
        label(&mut l, "appinstorg", org);
        label(&mut l, "cloudletorg", cloudlet_org);
        label(&mut l, "cloudlet", cloudlet);
        self.inst_labels = l;
        self.relabel();
    }

    /// Rebuilds the client's labels: the instance's, then tile, carrier and device.
    fn relabel(&mut self) {
        let mut l = self.inst_labels.clone();
        label(&mut l, "locationtile", &self.tile);
        label(&mut l, "carrier", &self.carrier);
        label(&mut l, "datanetworktype", &self.device.network);
        label(&mut l, "deviceos", &self.device.os);
        label(&mut l, "devicemodel", &self.device.model);
        self.labels = l;
    }
}

/// The event a push of `kind` becomes, before any `new_cloudlet`.
fn event_for(kind: PushKind) -> ServerEdgeEvent {
    match kind {
        PushKind::Health(h) => {
            let mut e = event(Out::EventAppinstHealth);
            e.health_check = h as i32;
            e
        }
        PushKind::CloudletState(s) => {
            let mut e = event(Out::EventCloudletState);
            e.cloudlet_state = s as i32;
            e
        }
        PushKind::Maintenance(m) => {
            let mut e = event(Out::EventCloudletMaintenance);
            e.maintenance_state = m as i32;
            e
        }
        PushKind::Available => event(Out::EventCloudletUpdate),
        PushKind::LatencyRequest => event(Out::EventLatencyRequest),
    }
}
