use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::dev::DevCa;
use crate::{DevCert, ServerCert, TlsError, load_pair};

/// Writes `contents` to `path` the way rotation tools do: a new file renamed over the old one.
fn replace(path: &Path, contents: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, contents).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn write_pair(dir: &Path, dev: &DevCert) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    replace(&cert, &dev.cert_pem);
    replace(&key, &dev.key_pem);
    (cert, key)
}

fn localhost() -> DevCert {
    DevCert::self_signed(&["localhost", "127.0.0.1"]).unwrap()
}

#[test]
fn a_good_pair_loads_with_its_chain() {
    let dir = tempfile::tempdir().unwrap();
    let ca = DevCa::new("test CA").unwrap();
    let leaf = ca.issue(&["localhost"]).unwrap();
    let (cert, key) = write_pair(dir.path(), &leaf);
    let (certs, _key) = load_pair(&cert, &key).unwrap();
    assert_eq!(certs.len(), 2, "leaf then CA");
    assert_eq!(certs[1], ca.cert_der());
    let server = ServerCert::from_files(&cert, &key).unwrap();
    assert_eq!(server.fingerprint(), leaf.fingerprint);
    assert_eq!(crate::fingerprint(&certs[0]), leaf.fingerprint);
}

#[test]
fn missing_files_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = write_pair(dir.path(), &localhost());
    let missing = dir.path().join("nope.pem");
    let e = load_pair(&missing, &key).unwrap_err();
    assert!(matches!(e, TlsError::Cert { .. }), "{e:?}");
    assert!(
        e.to_string().contains("nope.pem") && e.to_string().contains("cannot read"),
        "{e}"
    );
    let e = load_pair(&cert, &missing).unwrap_err();
    assert!(matches!(e, TlsError::Key { .. }), "{e:?}");
    assert!(
        e.to_string().starts_with("private key") && e.to_string().contains("nope.pem"),
        "{e}"
    );
    assert!(ServerCert::from_files(&missing, &key).is_err());
}

#[test]
fn files_without_pem_are_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = write_pair(dir.path(), &localhost());
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "this is not PEM\n").unwrap();
    let e = load_pair(&junk, &key).unwrap_err().to_string();
    assert!(
        e.contains("junk.pem") && e.contains("no PEM certificate"),
        "{e}"
    );
    let e = load_pair(&cert, &junk).unwrap_err().to_string();
    assert!(
        e.contains("junk.pem") && e.contains("no PEM private key"),
        "{e}"
    );
    // A certificate where the key should be is not a key either.
    let e = load_pair(&cert, &cert).unwrap_err();
    assert!(matches!(e, TlsError::Key { .. }), "{e:?}");
    // PEM framing around bytes that are not a certificate.
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(
        &garbage,
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let e = load_pair(&garbage, &key).unwrap_err();
    assert!(matches!(e, TlsError::Cert { .. }), "{e:?}");
}

#[test]
fn a_key_of_another_certificate_is_a_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, _) = write_pair(dir.path(), &localhost());
    let other = dir.path().join("other-key.pem");
    std::fs::write(&other, localhost().key_pem).unwrap();
    let e = load_pair(&cert, &other).unwrap_err();
    assert!(matches!(e, TlsError::Mismatch { .. }), "{e:?}");
    let text = e.to_string();
    assert!(
        text.contains("other-key.pem") && text.contains("cert.pem"),
        "{text}"
    );
}

#[test]
fn reload_picks_up_a_replaced_pair_and_only_then() {
    let dir = tempfile::tempdir().unwrap();
    let first = localhost();
    let (cert, key) = write_pair(dir.path(), &first);
    let server = ServerCert::from_files(&cert, &key).unwrap();
    assert!(!server.reload_if_changed().unwrap(), "nothing changed yet");
    let second = localhost();
    write_pair(dir.path(), &second);
    assert!(server.reload_if_changed().unwrap());
    assert_eq!(server.fingerprint(), second.fingerprint);
    assert!(!server.reload_if_changed().unwrap(), "already read");
}

#[test]
fn a_bad_replacement_keeps_the_old_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let first = localhost();
    let (cert, key) = write_pair(dir.path(), &first);
    let server = ServerCert::from_files(&cert, &key).unwrap();
    // A new certificate with the old key: half of a rotation.
    replace(&cert, &localhost().cert_pem);
    let e = server.reload_if_changed().unwrap_err();
    assert!(matches!(e, TlsError::Mismatch { .. }), "{e:?}");
    assert_eq!(server.fingerprint(), first.fingerprint);
    // Reported once, not at every poll.
    assert!(!server.reload_if_changed().unwrap());
    // A removed key file is an error too, and still keeps the old pair.
    std::fs::remove_file(&key).unwrap();
    assert!(server.reload_if_changed().is_err());
    assert_eq!(server.fingerprint(), first.fingerprint);
    // The rotation completed: picked up.
    let fixed = localhost();
    write_pair(dir.path(), &fixed);
    assert!(server.reload_if_changed().unwrap());
    assert_eq!(server.fingerprint(), fixed.fingerprint);
}

#[test]
fn dev_certificates_are_fixed() {
    let (server, dev) = ServerCert::dev_self_signed(&["localhost", "::1"]).unwrap();
    assert_eq!(server.fingerprint(), dev.fingerprint);
    assert!(server.paths().is_none());
    assert!(!server.reload_if_changed().unwrap());
    assert!(dev.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
    assert!(
        !format!("{dev:?}").contains("PRIVATE"),
        "no key in debug output"
    );
    assert!(ServerCert::dev_self_signed(&[]).is_err());
}

#[tokio::test]
async fn the_watcher_reloads_until_shut_down() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = write_pair(dir.path(), &localhost());
    let server = ServerCert::from_files(&cert, &key).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = server.watch(Duration::from_millis(20), async move {
        let _ = stopped.await;
    });
    let next = localhost();
    write_pair(dir.path(), &next);
    let watched = Arc::clone(&server);
    tokio::time::timeout(Duration::from_secs(10), async move {
        while watched.fingerprint() != next.fingerprint {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the watcher reloads the new pair");
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("the watcher stops")
        .unwrap();
}
