//! Latency statistics and location updates.

use super::*;

// ---- 2. Latency statistics ---------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_samples_statistics() {
    let s = start(region()).await;
    let mut py = PyEdge::spawn(s.grpc).await;
    client(&mut py, "a", BERLIN).await;
    let (lat, lon) = BERLIN;
    // No samples: all zeros.
    py.send_samples("a", &[], lat, lon).await;
    let ev = py.recv("a", 10.0).await;
    assert_stats(&ev, 0.0, 0.0, 0.0, 0.0, 0);
    // A single 0 counts.
    py.send_samples("a", &[0.0], lat, lon).await;
    let ev = py.recv("a", 10.0).await;
    assert_stats(&ev, 0.0, 0.0, 0.0, 0.0, 1);
    // Negatives are dropped.
    py.send_samples("a", &[-1.0, -2.5, -100.0], lat, lon).await;
    let ev = py.recv("a", 10.0).await;
    assert_stats(&ev, 0.0, 0.0, 0.0, 0.0, 0);
    py.send_samples("a", &[-1.0, 2.0, -3.0, 4.0], lat, lon)
        .await;
    let ev = py.recv("a", 10.0).await;
    assert_stats(&ev, 3.0, 2.0, 4.0, 2.0, 2);
    // 1..=9999 in one message: unbiased variance of 1..n is n(n+1)/12.
    let many: Vec<f64> = (1..=9999).map(f64::from).collect();
    py.send_samples("a", &many, lat, lon).await;
    let ev = py.recv("a", 20.0).await;
    assert_stats(&ev, 5000.0, 1.0, 9999.0, 9999.0 * 10000.0 / 12.0, 9999);
    py.expect_quiet("a", 0.3).await;
    py.exit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_samples_need_a_location() {
    let s = start(region()).await;
    let mut py = PyEdge::spawn(s.grpc).await;
    client(&mut py, "a", BERLIN).await;
    py.send("a", "LATENCY_SAMPLES", json!({"samples": [1.0, 2.0]}))
        .await;
    let ev = py.expect_event("a", "EVENT_ERROR").await;
    let msg = ev["error_msg"].as_str().unwrap_or_default();
    assert!(
        msg.starts_with("Invalid EVENT_LATENCY_SAMPLES, invalid location:"),
        "{ev}"
    );
    // Still usable.
    py.send_samples("a", &[1.0, 3.0], BERLIN.0, BERLIN.1).await;
    let ev = py.recv("a", 10.0).await;
    assert_stats(&ev, 2.0, 1.0, 3.0, 2.0, 2);
    py.exit().await;
}

// ---- 3. Location updates -----------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn location_update_moves_client_once() {
    let s = start(region()).await;
    let mut py = PyEdge::spawn(s.grpc).await;
    let f = client(&mut py, "a", BERLIN).await;
    assert_eq!(f.fqdn, BERLIN_FQDN);
    // Nothing changes while the client stays near its instance.
    py.send_location("a", 52.51, 13.41).await;
    py.expect_quiet("a", 0.7).await;
    py.send_location("a", MUNICH.0, MUNICH.1).await;
    let ev = py.expect_event("a", "EVENT_CLOUDLET_UPDATE").await;
    assert_new_cloudlet(&ev, MUNICH_FQDN);
    assert_ne!(ev["new_cloudlet"]["edge_events_cookie"], json!(f.edge));
    // Already told: a second update near Munich brings nothing.
    py.send_location("a", 48.2, 11.6).await;
    py.expect_quiet("a", 1.0).await;
    py.exit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn location_update_needs_a_valid_location() {
    let s = start(region()).await;
    let mut py = PyEdge::spawn(s.grpc).await;
    client(&mut py, "a", BERLIN).await;
    for bad in [json!({}), json!({"lat": 91.0, "lon": 13.0})] {
        py.send("a", "LOCATION_UPDATE", bad.clone()).await;
        let ev = py.expect_event("a", "EVENT_ERROR").await;
        let msg = ev["error_msg"].as_str().unwrap_or_default();
        assert!(
            msg.starts_with("Invalid EVENT_LOCATION_UPDATE, invalid location:"),
            "{bad}: {ev}"
        );
    }
    // Still usable.
    py.send_location("a", MUNICH.0, MUNICH.1).await;
    let ev = py.expect_event("a", "EVENT_CLOUDLET_UPDATE").await;
    assert_new_cloudlet(&ev, MUNICH_FQDN);
    py.exit().await;
}
