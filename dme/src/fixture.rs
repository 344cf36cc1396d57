//! Synthetic deployments built in code, for tests, benchmarks and load tests: an app, cloudlets
//! at given places, one instance per cloudlet.

use edge_model::{
    App, AppInst, AppInstKey, AppKey, AppPort, Cloudlet, CloudletKey, CloudletState, Deployment,
    DeploymentKind, HealthCheck, LProto, MaintenanceState, OperatorCode, Settings, TrackedState,
};
use geodata::LatLon;

/// A deployment under construction.
pub struct Builder {
    doc: Deployment,
}

/// The default app of fixtures.
pub fn app_key() -> AppKey {
    AppKey {
        organization: "devorg".into(),
        name: "app".into(),
        version: "1.0".into(),
    }
}

/// A cloudlet key.
pub fn cloudlet_key(org: &str, name: &str) -> CloudletKey {
    CloudletKey {
        organization: org.into(),
        name: name.into(),
    }
}

/// An app with one TCP port.
pub fn app(key: AppKey) -> App {
    App {
        key,
        deployment: DeploymentKind::Docker,
        image_path: "registry.example.net/app:1".into(),
        access_ports: vec![tcp_port(443)],
        default_flavor: None,
        official_fqdn: Vec::new(),
        android_package_name: String::new(),
        auth_public_key: None,
        platform_app: false,
    }
}

fn tcp_port(port: i32) -> AppPort {
    AppPort {
        proto: LProto::Tcp,
        internal_port: port,
        public_port: port,
        ..AppPort::default()
    }
}

impl Default for Builder {
    fn default() -> Self {
        Self::new()
    }
}

impl Builder {
    /// An empty region with default settings except deterministic very-close handling.
    pub fn new() -> Self {
        let settings = Settings {
            randomize_very_close: false,
            ..Settings::default()
        };
        Self {
            doc: Deployment {
                region: "local".into(),
                settings,
                operator_codes: Vec::new(),
                flavors: Vec::new(),
                cloudlets: Vec::new(),
                apps: Vec::new(),
                cluster_insts: Vec::new(),
                app_insts: Vec::new(),
            },
        }
    }

    pub fn settings(mut self, f: impl FnOnce(&mut Settings)) -> Self {
        f(&mut self.doc.settings);
        self
    }

    pub fn operator_code(mut self, code: &str, org: &str) -> Self {
        self.doc.operator_codes.push(OperatorCode {
            code: code.into(),
            organization: org.into(),
        });
        self
    }

    pub fn app(mut self, app: App) -> Self {
        self.doc.apps.push(app);
        self
    }

    /// Adds a READY cloudlet.
    pub fn cloudlet(mut self, org: &str, name: &str, lat: f64, lon: f64) -> Self {
        self.doc.cloudlets.push(Cloudlet {
            key: cloudlet_key(org, name),
            location: LatLon::new(lat, lon).unwrap_or_default(),
            platform_type: "fake".into(),
            alliance_orgs: Vec::new(),
            maintenance_state: MaintenanceState::NormalOperation,
            state: CloudletState::Ready,
        });
        self
    }

    /// Changes the last added cloudlet.
    pub fn with_cloudlet(mut self, f: impl FnOnce(&mut Cloudlet)) -> Self {
        if let Some(c) = self.doc.cloudlets.last_mut() {
            f(c);
        }
        self
    }

    /// Adds a READY, healthy instance of `app` on the cloudlet `org/name`.
    pub fn inst(mut self, app: &AppKey, inst: &str, org: &str, name: &str) -> Self {
        self.doc.app_insts.push(AppInst {
            key: AppInstKey {
                organization: app.organization.clone(),
                name: inst.into(),
            },
            app: app.clone(),
            cloudlet: cloudlet_key(org, name),
            cluster: None,
            uri: format!("{inst}.{name}-{org}.local.edge.example.net"),
            mapped_ports: vec![tcp_port(443)],
            state: TrackedState::Ready,
            health: HealthCheck::Ok,
            platform_health: HealthCheck::Unknown,
        });
        self
    }

    /// Changes the last added instance.
    pub fn with_inst(mut self, f: impl FnOnce(&mut AppInst)) -> Self {
        if let Some(i) = self.doc.app_insts.last_mut() {
            f(i);
        }
        self
    }

    /// A cloudlet plus one instance of `app` on it, both named `name`.
    pub fn site(self, app: &AppKey, org: &str, name: &str, lat: f64, lon: f64) -> Self {
        self.cloudlet(org, name, lat, lon)
            .inst(app, name, org, name)
    }

    pub fn build(self) -> Deployment {
        self.doc
    }
}
