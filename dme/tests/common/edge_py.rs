//! Drives `tests/python/edge_client.py`: an independent Python grpcio client (stubs generated
//! from `tests/python/mex_subset.proto`) that holds several StreamEdgeEvent streams and answers
//! one JSON line per JSON command. `scripts/test.sh` installs grpcio into `.venv`; set
//! `EDGEPLANE_PYTHON` to use another interpreter.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use edge_model::AppKey;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// The Python interpreter with grpcio: `EDGEPLANE_PYTHON`, else the workspace's `.venv`.
pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("EDGEPLANE_PYTHON") {
        return p.into();
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    assert!(
        venv.exists(),
        "no Python with grpcio: run scripts/test.sh (it creates .venv) or set EDGEPLANE_PYTHON"
    );
    venv
}

/// Extra time the driver may take beyond the waits a command asks for.
const SLACK: Duration = Duration::from_secs(30);

/// One running `edge_client.py`; killed when dropped.
pub struct PyEdge {
    child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
}

/// What a client got from RegisterClient and FindCloudlet.
#[derive(Clone, Debug)]
pub struct Found {
    pub session: String,
    pub edge: String,
    pub fqdn: String,
}

impl PyEdge {
    /// Starts the driver against the gRPC listener at `grpc`.
    pub async fn spawn(grpc: SocketAddr) -> Self {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/edge_client.py");
        let mut child = Command::new(python())
            .arg(script)
            .arg(grpc.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("python starts");
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        Self {
            child,
            stdin,
            stdout,
        }
    }

    /// Sends one command and returns its answer; `wait` is how long the command itself may
    /// legitimately take.
    pub async fn cmd_waiting(&mut self, cmd: Value, wait: Duration) -> Value {
        let mut line = cmd.to_string();
        line.push('\n');
        self.stdin
            .write_all(line.as_bytes())
            .await
            .expect("write to the driver");
        self.stdin.flush().await.expect("flush to the driver");
        let answer = tokio::time::timeout(wait + SLACK, self.stdout.next_line())
            .await
            .unwrap_or_else(|_| panic!("the driver did not answer {cmd}"))
            .expect("read from the driver")
            .unwrap_or_else(|| panic!("the driver exited on {cmd}"));
        serde_json::from_str(&answer).unwrap_or_else(|e| panic!("bad answer {answer:?}: {e}"))
    }

    pub async fn cmd(&mut self, cmd: Value) -> Value {
        self.cmd_waiting(cmd, Duration::ZERO).await
    }

    /// RegisterClient; returns the answer (`session_cookie` or `error`).
    pub async fn register_raw(&mut self, app: &AppKey) -> Value {
        self.cmd(
            json!({"op": "register", "org": app.organization, "app": app.name,
            "vers": app.version}),
        )
        .await
    }

    /// RegisterClient; returns the session cookie.
    pub async fn register(&mut self, app: &AppKey) -> String {
        let v = self.register_raw(app).await;
        assert_eq!(v["status"], "RS_SUCCESS", "register: {v}");
        v["session_cookie"].as_str().expect("session cookie").into()
    }

    /// FindCloudlet; returns the answer (status, fqdn, edge_events_cookie, cloudlet_location).
    pub async fn find(&mut self, session: &str, carrier: &str, lat: f64, lon: f64) -> Value {
        self.cmd(
            json!({"op": "find", "session": session, "carrier": carrier, "lat": lat,
            "lon": lon}),
        )
        .await
    }

    /// Registers `app` and finds from (`lat`, `lon`) on `carrier`, expecting an instance.
    pub async fn register_and_find(
        &mut self,
        app: &AppKey,
        carrier: &str,
        lat: f64,
        lon: f64,
    ) -> Found {
        let session = self.register(app).await;
        let v = self.find(&session, carrier, lat, lon).await;
        assert_eq!(v["status"], "FIND_FOUND", "find: {v}");
        let edge = v["edge_events_cookie"].as_str().unwrap_or_default();
        assert!(!edge.is_empty(), "no edge events cookie: {v}");
        Found {
            session,
            edge: edge.into(),
            fqdn: v["fqdn"].as_str().unwrap_or_default().into(),
        }
    }

    /// Opens stream `id` with arbitrary options (see edge_client.py: session, edge, carrier,
    /// lat, lon, read, init).
    pub async fn open_with(&mut self, id: &str, mut opts: Value) {
        opts["op"] = json!("open");
        opts["id"] = json!(id);
        let v = self.cmd(opts).await;
        assert_eq!(v["ok"], true, "open {id}: {v}");
    }

    /// Opens stream `id` and sends the INIT with these cookies and carrier.
    pub async fn open(&mut self, id: &str, session: &str, edge: &str, carrier: &str) {
        self.open_with(
            id,
            json!({"session": session, "edge": edge, "carrier": carrier}),
        )
        .await;
    }

    /// Opens stream `id` for a found client and expects the INIT reply.
    pub async fn connect(&mut self, id: &str, found: &Found, carrier: &str) {
        self.open(id, &found.session, &found.edge, carrier).await;
        let v = self.recv(id, 10.0).await;
        assert_eq!(v["event_type"], "EVENT_INIT_CONNECTION", "{id} init: {v}");
    }

    /// Sends one client event on stream `id`; `event` names it (`LOCATION_UPDATE`,
    /// `LATENCY_SAMPLES`, `CUSTOM_EVENT`, `TERMINATE`, `INIT`, `UNKNOWN`) and `fields` adds
    /// lat, lon, samples, custom, device_os, device_model, network, carrier, session, edge.
    pub async fn send(&mut self, id: &str, event: &str, mut fields: Value) {
        if fields.is_null() {
            fields = json!({});
        }
        fields["op"] = json!("send");
        fields["id"] = json!(id);
        fields["event"] = json!(event);
        let v = self.cmd(fields).await;
        assert_eq!(v["ok"], true, "send to {id}: {v}");
    }

    /// A location update.
    pub async fn send_location(&mut self, id: &str, lat: f64, lon: f64) {
        self.send(id, "LOCATION_UPDATE", json!({"lat": lat, "lon": lon}))
            .await;
    }

    /// Latency samples taken at (`lat`, `lon`).
    pub async fn send_samples(&mut self, id: &str, samples: &[f64], lat: f64, lon: f64) {
        self.send(
            id,
            "LATENCY_SAMPLES",
            json!({"samples": samples, "lat": lat, "lon": lon}),
        )
        .await;
    }

    /// The next event on stream `id`: an event object, `{"timeout":true}` or
    /// `{"closed":true,"code":..,"details":..}`.
    pub async fn recv(&mut self, id: &str, timeout: f64) -> Value {
        self.cmd_waiting(
            json!({"op": "recv", "id": id, "timeout": timeout}),
            Duration::from_secs_f64(timeout),
        )
        .await
    }

    /// The next event, which must be an event (not a timeout or close) of type `ty`.
    pub async fn expect_event(&mut self, id: &str, ty: &str) -> Value {
        let v = self.recv(id, 10.0).await;
        assert_eq!(v["event_type"], ty, "stream {id}: expected {ty}, got {v}");
        v
    }

    /// Waits for the stream to end; returns `{"closed":true,"code","details"}`, skipping up to
    /// 10 000 events still queued before the close, each within `timeout`.
    pub async fn expect_closed(&mut self, id: &str, timeout: f64) -> Value {
        for _ in 0..10 {
            let events = self.drain(id, 1000, timeout).await;
            let last = events.last().cloned().unwrap_or_default();
            if last["closed"] == true {
                return last;
            }
            assert!(
                last["timeout"] != true,
                "stream {id} still open after {timeout}s"
            );
        }
        panic!("stream {id} kept sending events");
    }

    /// Every event arriving on stream `id` within `secs` (a close ends the list).
    pub async fn quiet(&mut self, id: &str, secs: f64) -> Vec<Value> {
        let v = self
            .cmd_waiting(
                json!({"op": "quiet", "id": id, "secs": secs}),
                Duration::from_secs_f64(secs),
            )
            .await;
        v["events"].as_array().cloned().unwrap_or_default()
    }

    /// Asserts nothing arrives on stream `id` within `secs`.
    pub async fn expect_quiet(&mut self, id: &str, secs: f64) {
        let events = self.quiet(id, secs).await;
        assert!(events.is_empty(), "stream {id} got {events:?}");
    }

    /// Up to `count` events, each within `timeout` (a timeout or close ends the list, and is
    /// its last element).
    pub async fn drain(&mut self, id: &str, count: usize, timeout: f64) -> Vec<Value> {
        let v = self
            .cmd_waiting(
                json!({"op": "drain", "id": id, "count": count, "timeout": timeout}),
                Duration::from_secs_f64(timeout * count as f64),
            )
            .await;
        v["events"].as_array().cloned().unwrap_or_default()
    }

    /// Starts consuming a stream opened with `read: false`.
    pub async fn start_reading(&mut self, id: &str) {
        let v = self.cmd(json!({"op": "start_reading", "id": id})).await;
        assert_eq!(v["ok"], true, "start_reading {id}: {v}");
    }

    /// Half-closes the request side of stream `id`.
    pub async fn end(&mut self, id: &str) {
        let v = self.cmd(json!({"op": "end", "id": id})).await;
        assert_eq!(v["ok"], true, "end {id}: {v}");
    }

    /// Cancels stream `id`.
    pub async fn close(&mut self, id: &str) {
        let v = self.cmd(json!({"op": "close", "id": id})).await;
        assert_eq!(v["ok"], true, "close {id}: {v}");
    }

    /// Asks the driver to exit and waits for it.
    pub async fn exit(mut self) {
        let _ = self.cmd(json!({"op": "exit"})).await;
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
    }
}
