//! The controller's REST/JSON mirror over a real socket: the full object lifecycle (with the
//! fake platform's CRM on the notify stream, as `edgeplane controller` runs it), and every class
//! of bad request answered with grpc-gateway's error body and status.

use std::net::SocketAddr;
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

struct Rest {
    addr: SocketAddr,
    _stop: tokio::sync::watch::Sender<bool>,
    _dir: tempfile::TempDir,
}

async fn start() -> Rest {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn edge_store::Store> =
        Arc::new(edge_store::RedbStore::open(dir.path()).await.unwrap());
    let handle = controller::server::start(store, "eu").await.unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    controller::server::spawn_rest(listener, &handle, stopped(rx.clone()));
    let api = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let notify = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let notify_addr = notify.local_addr().unwrap();
    tokio::spawn(controller::server::run(
        api,
        notify,
        handle,
        stopped(rx.clone()),
    ));
    crm::cli::spawn_fake(
        vec![notify_addr.to_string()],
        None,
        "127.0.0.1".parse().unwrap(),
        rx,
    );
    Rest {
        addr,
        _stop: tx,
        _dir: dir,
    }
}

impl Rest {
    /// POSTs `body` to `path` over HTTP/1.1 (no client library needed for one request per
    /// connection); returns the status and the JSON reply.
    async fn post(&self, path: &str, body: &str) -> (u16, Value) {
        let mut s = TcpStream::connect(self.addr).await.unwrap();
        let req = format!(
            "POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).await.unwrap();
        let mut raw = String::new();
        s.read_to_string(&mut raw).await.unwrap();
        let (head, body) = raw.split_once("\r\n\r\n").expect("an HTTP response");
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        let value = serde_json::from_str(body).unwrap_or(Value::String(body.into()));
        (status, value)
    }
}

fn cloudlet(name: &str) -> Value {
    json!({"cloudlet": {
        "key": {"organization": "telekom", "name": name},
        "location": {"latitude": 52.52, "longitude": 13.405},
        "platform_type": "fake",
    }})
}

fn app() -> Value {
    json!({"app": {
        "key": {"organization": "Nimbus", "name": "arena", "version": "1.0"},
        "image_path": "registry.example.net/nimbus/arena:1.0",
        "access_ports": "tcp:443",
    }})
}

fn app_inst(cloudlet: &str) -> Value {
    json!({"app_inst": {
        "key": {"organization": "Nimbus", "name": format!("arena-{cloudlet}")},
        "app": {"organization": "Nimbus", "name": "arena", "version": "1.0"},
        "cloudlet": {"organization": "telekom", "name": cloudlet},
    }})
}

fn create(object: &Value) -> String {
    json!({ "object": object }).to_string()
}

/// Asserts a grpc-gateway error body with `code` and a message containing `needle`.
fn assert_error(reply: &(u16, Value), status: u16, code: i64, needle: &str) {
    let (s, v) = reply;
    assert_eq!(*s, status, "{v}");
    assert_eq!(v["code"], code, "{v}");
    assert_eq!(v["error"], v["message"], "{v}");
    assert_eq!(v["details"], json!([]), "{v}");
    let msg = v["message"].as_str().unwrap();
    assert!(msg.contains(needle), "`{msg}` lacks `{needle}`");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_over_rest() {
    let rest = start().await;
    let (s, v) = rest
        .post("/api/v1/create", &create(&cloudlet("berlin-1")))
        .await;
    assert_eq!(s, 200, "{v}");
    assert!(v["revision"].as_u64().unwrap() > 0, "{v}");
    assert!(
        v["messages"].as_array().is_some_and(|m| !m.is_empty()),
        "{v}"
    );
    for o in [app(), app_inst("berlin-1")] {
        let (s, v) = rest.post("/api/v1/create", &create(&o)).await;
        assert_eq!(s, 200, "{v}");
    }

    // Show: by kind name, and the instance got its generated URI.
    let (s, v) = rest
        .post("/api/v1/show", r#"{"kind": "OBJECT_KIND_APP_INST"}"#)
        .await;
    assert_eq!(s, 200, "{v}");
    let insts = v["objects"].as_array().unwrap();
    assert_eq!(insts.len(), 1, "{v}");
    assert!(
        insts[0]["app_inst"]["uri"]
            .as_str()
            .unwrap()
            .contains("berlin-1"),
        "{v}"
    );
    let (_, all) = rest.post("/api/v1/show", "").await;
    assert!(all["objects"].as_array().unwrap().len() >= 3, "{all}");

    // Update with a field mask; enums by name both ways.
    let mut c = cloudlet("berlin-1");
    c["cloudlet"]["maintenance_state"] = json!("UNDER_MAINTENANCE");
    let body = json!({"object": c, "fields": ["maintenance_state"]}).to_string();
    let (s, v) = rest.post("/api/v1/update", &body).await;
    assert_eq!(s, 200, "{v}");
    let key = json!({"cloudlet": {"organization": "telekom", "name": "berlin-1"}});
    let (_, v) = rest
        .post("/api/v1/show", &json!({ "key": key }).to_string())
        .await;
    assert_eq!(
        v["objects"][0]["cloudlet"]["maintenance_state"],
        "UNDER_MAINTENANCE"
    );

    // Delete children first; the revision only grows.
    let inst_key = json!({"app_inst": {"organization": "Nimbus", "name": "arena-berlin-1"}});
    let (s, v) = rest
        .post("/api/v1/delete", &json!({ "key": inst_key }).to_string())
        .await;
    assert_eq!(s, 200, "{v}");
    let deleted_at = v["revision"].as_u64().unwrap();
    let (s, v) = rest.post("/api/v1/revision", "").await;
    assert_eq!(s, 200, "{v}");
    assert!(v["revision"].as_u64().unwrap() >= deleted_at, "{v}");
    let (_, v) = rest
        .post("/api/v1/show", r#"{"kind": "OBJECT_KIND_APP_INST"}"#)
        .await;
    assert_eq!(v["objects"], json!([]), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_clear_errors() {
    let rest = start().await;
    let create_at = |o: Value| create(&o);

    assert_error(
        &rest.post("/api/v1/create", "{not json").await,
        400,
        3,
        "invalid JSON",
    );
    // Unknown fields are named with their path.
    let mut c = cloudlet("x");
    c["cloudlet"]["location"]["colour"] = json!("red");
    let r = rest.post("/api/v1/create", &create_at(c)).await;
    assert_error(&r, 400, 3, "colour");
    assert_error(&r, 400, 3, "object.cloudlet.location");
    // A wrong enum name and a value out of range.
    let mut c = cloudlet("x");
    c["cloudlet"]["maintenance_state"] = json!("SLEEPING");
    assert_error(
        &rest.post("/api/v1/create", &create_at(c)).await,
        400,
        3,
        "SLEEPING",
    );
    let mut c = cloudlet("x");
    c["cloudlet"]["location"]["latitude"] = json!(123.0);
    assert_error(
        &rest.post("/api/v1/create", &create_at(c)).await,
        400,
        3,
        "latitude",
    );
    assert_error(
        &rest.post("/api/v1/create", "{}").await,
        400,
        3,
        "object: required",
    );
    // An update mask naming a key field.
    let body = json!({"object": cloudlet("x"), "fields": ["key"]}).to_string();
    assert_error(&rest.post("/api/v1/update", &body).await, 400, 3, "key");

    // Dangling reference: an instance on a cloudlet that does not exist.
    rest.post("/api/v1/create", &create_at(app())).await;
    let r = rest
        .post("/api/v1/create", &create_at(app_inst("nowhere")))
        .await;
    assert_error(&r, 404, 5, "nowhere");
    // Duplicate create.
    let (s, _) = rest
        .post("/api/v1/create", &create_at(cloudlet("berlin-1")))
        .await;
    assert_eq!(s, 200);
    let r = rest
        .post("/api/v1/create", &create_at(cloudlet("berlin-1")))
        .await;
    assert_error(&r, 409, 6, "already exists");
    // Deleting what an instance refers to.
    let (s, _) = rest
        .post("/api/v1/create", &create_at(app_inst("berlin-1")))
        .await;
    assert_eq!(s, 200);
    let key = json!({"key": {"cloudlet": {"organization": "telekom", "name": "berlin-1"}}});
    let r = rest.post("/api/v1/delete", &key.to_string()).await;
    assert_error(&r, 400, 9, "referenced by");
    // Nothing of the refused calls was written: still one cloudlet, one instance.
    let (_, v) = rest
        .post("/api/v1/show", r#"{"kind": "OBJECT_KIND_CLOUDLET"}"#)
        .await;
    assert_eq!(v["objects"].as_array().unwrap().len(), 1, "{v}");
    // Unknown path.
    assert_error(
        &rest.post("/api/v1/nope", "{}").await,
        404,
        5,
        "no such API path",
    );
}
