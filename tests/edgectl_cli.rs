//! The real `edgectl` binary against an in-process region (controller + DME on OS-chosen ports):
//! documents, the `show -o yaml` fixed point, single objects from `field=value`, DME calls, and
//! bad input answered with exit code 1 and a message naming the problem.

mod common;

use std::path::Path;

use common::*;

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs `edgectl ARGS` against `ctl` (and `dme` where given).
async fn edgectl(ctl: &str, args: &[&str]) -> Out {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_edgectl"))
        .arg("--addr")
        .arg(ctl)
        .args(args)
        .env_remove("EDGECTL_ADDR")
        .env_remove("EDGECTL_DME_ADDR")
        .output()
        .await
        .expect("edgectl runs");
    let out = Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    out
}

async fn ok(ctl: &str, args: &[&str]) -> String {
    let out = edgectl(ctl, args).await;
    assert_eq!(out.code, 0, "edgectl {args:?}: {}", out.stderr);
    out.stdout
}

/// Fails with exit code 1 and a stderr containing `needle`.
async fn fails(ctl: &str, args: &[&str], needle: &str) {
    let out = edgectl(ctl, args).await;
    assert_eq!(
        out.code, 1,
        "edgectl {args:?}: {}{}",
        out.stdout, out.stderr
    );
    assert!(
        out.stderr.contains(needle),
        "edgectl {args:?}: `{}` lacks `{needle}`",
        out.stderr
    );
}

/// The `(revision N)` a mutation printed.
fn revision(stdout: &str) -> u64 {
    let tail = stdout.rsplit("(revision ").next().unwrap();
    tail.split(')').next().unwrap().parse().expect("a revision")
}

fn example_path() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/region.yaml")
        .display()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_objects_and_dme_calls() {
    let dir = tempfile::tempdir().unwrap();
    let ctl = start_controller(redb(dir.path()).await, None).await;
    let dme = start_dme(&[ctl.notify]).await;
    let (addr, dme_addr) = (ctl.api.to_string(), dme.grpc.to_string());
    let addr = addr.as_str();

    let first = edgectl(addr, &["apply", "-f", &example_path()]).await;
    assert_eq!(first.code, 0, "{}", first.stderr);
    let applied = first.stdout;
    assert!(applied.contains(" created, 0 updated"), "{applied}");
    // The example sets fields for a standalone DME that the controller computes itself: one
    // warning line per such object, naming the file, line, field and both values.
    let warnings: Vec<&str> = first
        .stderr
        .lines()
        .filter(|l| l.starts_with("warning: "))
        .collect();
    assert_eq!(warnings.len(), 2, "{}", first.stderr);
    assert!(warnings[0].contains("region.yaml:"), "{}", warnings[0]);
    assert!(
        warnings[0].contains("arena-frankfurt")
            && warnings[0]
                .contains("uri shared.frankfurt-1-telekom.eu.edge.example.net (the controller's: "),
        "{}",
        warnings[0]
    );
    assert!(
        warnings[1].contains("arena-marseille") && warnings[1].contains("health SERVER_FAIL"),
        "{}",
        warnings[1]
    );

    // show --all -o yaml is a document that applies back unchanged.
    let yaml = ok(addr, &["show", "--all", "-o", "yaml"]).await;
    assert!(yaml.contains("region: eu"), "{yaml}");
    let shown = dir.path().join("shown.yaml");
    std::fs::write(&shown, &yaml).unwrap();
    let again = edgectl(addr, &["apply", "-f", &shown.display().to_string()]).await;
    assert!(
        again.stdout.contains(": 0 created, 0 updated,"),
        "{}",
        again.stdout
    );
    // What `show` printed is what the controller computed: nothing to warn about.
    assert!(!again.stderr.contains("warning"), "{}", again.stderr);
    assert_eq!(ok(addr, &["show", "--all", "-o", "yaml"]).await, yaml);

    // The DME serves what was applied: a Telekom phone in Potsdam gets Berlin.
    ctl.wait_dme(revision(&applied)).await;
    let dme_args = |call: &'static str, extra: &[&'static str]| {
        let mut v = vec!["dme", "--dme-addr", dme_addr.as_str(), call];
        v.extend(["--app", "NimbusGames/arena-shooter/2.3"]);
        v.extend(extra);
        v
    };
    let potsdam = ["--carrier", "26201", "--lat", "52.3906", "--lon", "13.0645"];
    let found = ok(addr, &dme_args("find", &potsdam)).await;
    assert!(found.contains("cloudlet location: 52.52,13.405"), "{found}");
    assert!(
        found.contains("fqdn: arena-shooter23-nimbusgames.berlin-1-telekom.eu."),
        "{found}"
    );
    assert!(found.contains("tcp:443->443 tls"), "{found}");
    let listed = ok(
        addr,
        &dme_args("list", &[&potsdam[..], &["--limit", "2"]].concat()),
    )
    .await;
    assert!(listed.starts_with("berlin-1 (telekom)"), "{listed}");
    let reg = ok(addr, &dme_args("register", &[])).await;
    assert!(reg.starts_with("session_cookie: "), "{reg}");

    // One object from field=value pairs, shown as a table and as JSON.
    let berlin2 = ["cloudlet", "key.organization=telekom", "key.name=berlin-2"];
    let created = ok(
        addr,
        &[
            &["create"],
            &berlin2[..],
            &[
                "location.latitude=52.5",
                "location.longitude=13.4",
                "platform_type=fake",
            ],
        ]
        .concat(),
    )
    .await;
    assert!(created.contains("Cloudlet telekom/berlin-2"), "{created}");
    let table = ok(addr, &["show", "cloudlet", "--org", "telekom"]).await;
    assert!(
        table.starts_with("Cloudlet (5)\nORGANIZATION  NAME"),
        "{table}"
    );
    assert!(table.contains("telekom       berlin-2"), "{table}");

    // Update: only the named field changes (the mask), the rest is kept.
    ok(
        addr,
        &[
            &["update"],
            &berlin2[..],
            &["maintenance_state=under_maintenance"],
        ]
        .concat(),
    )
    .await;
    let yaml = ok(
        addr,
        &["show", "cloudlet", "--org", "telekom", "-o", "yaml"],
    )
    .await;
    let doc = edge_model::document::parse(&yaml).expect("show -o yaml parses");
    let c = doc
        .cloudlets
        .iter()
        .find(|c| c.key.name == "berlin-2")
        .expect("berlin-2 shown");
    assert_eq!(
        c.maintenance_state,
        edge_model::MaintenanceState::UnderMaintenance
    );
    assert_eq!((c.location.lat(), c.location.lon()), (52.5, 13.4));
    let json = ok(
        addr,
        &["show", "cloudlet", "--org", "telekom", "-o", "json"],
    )
    .await;
    assert!(json.starts_with("{\n  \"objects\": [\n"), "{json}");
    assert!(json.contains("\"name\": \"berlin-2\""), "{json}");

    ok(addr, &[&["delete"], &berlin2[..]].concat()).await;
    let table = ok(addr, &["show", "cloudlet", "--org", "telekom"]).await;
    assert!(!table.contains("berlin-2"), "{table}");

    // Deleting by document removes what it names; what is already gone is counted, not an
    // error. (A small document: the whole example takes seconds to settle.)
    let codes = dir.path().join("codes.yaml");
    std::fs::write(
        &codes,
        "version: 1\noperator_codes:\n  - {code: \"26201\", organization: telekom}\n  \
         - {code: \"99999\", organization: nobody}\n",
    )
    .unwrap();
    let deleted = ok(addr, &["delete", "-f", &codes.display().to_string()]).await;
    assert!(
        deleted.contains(": 1 deleted, 1 already absent"),
        "{deleted}"
    );
    let left = ok(addr, &["show", "operator_code", "-o", "table"]).await;
    assert!(!left.contains("26201") && left.contains("26202"), "{left}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_exits_1_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let ctl = start_controller(redb(dir.path()).await, None).await;
    let addr = ctl.api.to_string();
    let addr = addr.as_str();

    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "version: 1\ncloudlets:\n  - key: {organization: a, name: b}\n    location: {latitude: 1, longitude: 2, colour: red}\n",
    )
    .unwrap();
    fails(
        addr,
        &["apply", "-f", &bad.display().to_string()],
        "cloudlets[0].location",
    )
    .await;
    fails(addr, &["apply", "-f", &bad.display().to_string()], "line 4").await;
    fails(
        addr,
        &["apply", "-f", "/nonexistent.yaml"],
        "cannot read /nonexistent.yaml",
    )
    .await;

    let cl = [
        "create",
        "cloudlet",
        "key.organization=telekom",
        "key.name=x",
    ];
    fails(
        addr,
        &[&cl[..], &["location.colour=red"]].concat(),
        "location.colour: unknown field; Loc has latitude, longitude",
    )
    .await;
    fails(
        addr,
        &[&cl[..], &["location.latitude=north"]].concat(),
        "location.latitude: expected a number, got `north`",
    )
    .await;
    fails(
        addr,
        &[&cl[..], &["state=sleepy"]].concat(),
        "state: unknown value `sleepy`",
    )
    .await;
    fails(
        addr,
        &[&cl[..], &["platform_type"]].concat(),
        "`platform_type`: expected FIELD=VALUE",
    )
    .await;
    // The controller's validation, reported with its code.
    fails(addr, &cl, "InvalidArgument: cloudlet.location: is required").await;
    fails(
        addr,
        &["create", "clouds", "a=b"],
        "unknown ObjectKind `clouds`",
    )
    .await;
    fails(
        addr,
        &[
            "delete",
            "cloudlet",
            "key.organization=t",
            "key.name=nowhere",
        ],
        "NotFound",
    )
    .await;
    fails(
        addr,
        &["delete", "cloudlet", "key.name=a", "location.latitude=1"],
        "Cloudlet has no key field location.latitude",
    )
    .await;
    fails(
        addr,
        &["update", "cloudlet", "key.organization=t", "key.name=n"],
        "give at least one field to change",
    )
    .await;
    fails(
        addr,
        &[
            "update",
            "cloudlet",
            "key.organization=t",
            "key.name=n",
            "platform_type=x",
        ],
        "NotFound: no Cloudlet with key.organization=t key.name=n",
    )
    .await;
    fails(addr, &["show", "-o", "xml"], "invalid value 'xml'").await;
    fails(
        addr,
        &[
            "dme",
            "--dme-addr",
            addr,
            "find",
            "--app",
            "a/b",
            "--carrier",
            "c",
            "--lat",
            "1",
            "--lon",
            "2",
        ],
        "--app `a/b`: expected ORGANIZATION/NAME/VERSION",
    )
    .await;
    fails(
        "127.0.0.1:1",
        &["show"],
        "cannot connect to the controller at 127.0.0.1:1",
    )
    .await;
}
