use super::*;

fn labels(s: &Sample) -> Vec<(&str, &str)> {
    s.labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

#[test]
fn parses_a_root_lb_page() {
    let text = "\
# HELP rootlb_listener_active TCP connections open
# TYPE rootlb_listener_active gauge
rootlb_listener_active{listener=\"tcp:10000\",app=\"Org/arena\"} 3
rootlb_backend_bytes_in_total{listener=\"tcp:10000\",app=\"Org/arena\",backend=\"10.0.0.1:8080\"} 1234
rootlb_backend_connect_seconds_bucket{listener=\"tcp:10000\",app=\"Org/arena\",backend=\"10.0.0.1:8080\",le=\"+Inf\"} 7
plain_metric 1.5e3 1700000000000
";
    let page = parse(text);
    assert_eq!(page.bad_lines, 0);
    assert_eq!(page.samples.len(), 4);
    let s = &page.samples[1];
    assert_eq!(s.name, "rootlb_backend_bytes_in_total");
    assert_eq!(
        labels(s),
        [
            ("listener", "tcp:10000"),
            ("app", "Org/arena"),
            ("backend", "10.0.0.1:8080")
        ]
    );
    assert_eq!(s.value, 1234.0);
    assert_eq!(s.label("backend"), Some("10.0.0.1:8080"));
    assert_eq!(s.label("missing"), None);
    assert_eq!(page.samples[2].label("le"), Some("+Inf"));
    assert_eq!(page.samples[3].value, 1500.0);
    assert!(page.samples[3].labels.is_empty());
}

#[test]
fn unescapes_label_values_with_hostile_characters() {
    let text = r#"m{a="x,y} z=\"q\" \\ \n end",b = "2" , } +Inf"#;
    let page = parse(text);
    assert_eq!(page.bad_lines, 0);
    let s = &page.samples[0];
    assert_eq!(labels(s), [("a", "x,y} z=\"q\" \\ \n end"), ("b", "2")]);
    assert_eq!(s.value, f64::INFINITY);
}

#[test]
fn counts_lines_it_cannot_read_and_keeps_the_rest() {
    let bad = [
        "no_value",
        "m{a=\"unterminated} 1",
        "m{a=unquoted} 1",
        "m{=\"x\"} 1",
        "m{a=\"1\" b=\"2\"} 1",
        "m 1 notatimestamp",
        "m 1 2 3",
        "m notanumber",
        "9starts_with_digit 1",
        "{a=\"1\"} 1",
        "m{a=\"x\\",
    ];
    let text = format!("good 1\n{}\nalso_good{{a=\"b\"}} 2\n", bad.join("\n"));
    let page = parse(&text);
    assert_eq!(page.bad_lines, bad.len());
    let names: Vec<_> = page.samples.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["good", "also_good"]);
}

#[test]
fn reads_special_values() {
    let page = parse("a NaN\nb -Inf\nc +inf\nd -0.5\n");
    assert_eq!(page.bad_lines, 0);
    assert!(page.samples[0].value.is_nan());
    assert_eq!(page.samples[1].value, f64::NEG_INFINITY);
    assert_eq!(page.samples[2].value, f64::INFINITY);
    assert_eq!(page.samples[3].value, -0.5);
}

#[test]
fn sanitizes_names_and_escapes_values() {
    let table = [
        (
            "appinst-connections_bytesSent",
            "appinst_connections_bytesSent",
        ),
        ("dme-api_5ms", "dme_api_5ms"),
        ("5ms", "_5ms"),
        ("a b,c=d.ü", "a_b_c_d__"),
        ("", "_"),
    ];
    for (input, want) in table {
        assert_eq!(sanitize_name(input), want, "{input:?}");
    }
    let mut out = String::new();
    escape_label_value("a\\b\"c\nd", &mut out);
    assert_eq!(out, r#"a\\b\"c\nd"#);
    let line = format!("m{{v=\"{out}\"}} 1");
    assert_eq!(parse(&line).samples[0].label("v"), Some("a\\b\"c\nd"));
}
