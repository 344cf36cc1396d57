//! The Prometheus sink through its HTTP endpoint: the sink conformance suite, read back by
//! scraping `GET /metrics` on 127.0.0.1 and parsing the page.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use shepherd::http::HttpClient;
use shepherd::promtext;
use shepherd::sink::prometheus::{metric_name, serve};
use shepherd::{MetricsSink, PrometheusSink};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use common::conformance::Backend;

struct Prometheus {
    sink: Arc<PrometheusSink>,
    url: String,
    /// Dropping it stops the endpoint.
    _stop: oneshot::Sender<()>,
}

async fn prometheus() -> Prometheus {
    let sink = Arc::new(PrometheusSink::new(Duration::from_secs(3600), 100_000));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/metrics", listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(serve(listener, sink.clone(), async {
        let _ = stopped.await;
    }));
    Prometheus {
        sink,
        url,
        _stop: stop,
    }
}

impl Backend for Prometheus {
    fn sink(&self) -> Arc<dyn MetricsSink> {
        self.sink.clone()
    }

    async fn read(
        &self,
        measurement: &str,
        field: &str,
    ) -> BTreeMap<BTreeMap<String, String>, f64> {
        let http = HttpClient::new(Duration::from_secs(10), 64 << 20);
        let r = http.get(&self.url).await.unwrap();
        assert_eq!(r.status, 200);
        let page = promtext::parse(&String::from_utf8_lossy(&r.body));
        assert_eq!(page.bad_lines, 0);
        let name = metric_name(measurement, field);
        page.samples
            .into_iter()
            .filter(|s| s.name == name)
            .map(|s| (s.labels.into_iter().collect(), s.value))
            .collect()
    }
}

conformance_tests!(prometheus());

#[tokio::test]
async fn the_endpoint_answers_only_get_metrics() {
    let p = prometheus().await;
    let http = HttpClient::new(Duration::from_secs(10), 1 << 20);
    let base = p.url.trim_end_matches("/metrics");
    assert_eq!(http.get(&format!("{base}/")).await.unwrap().status, 200);
    assert_eq!(
        http.get(&format!("{base}/other")).await.unwrap().status,
        404
    );
    let r = http
        .post(&p.url, "text/plain", bytes::Bytes::new())
        .await
        .unwrap();
    assert_eq!(r.status, 405);
}
