//! Rotation: a changed pair is swapped in, a broken one keeps the old value.

use std::time::Duration;

use gatehouse_certs::test_util::TestPki;

use super::*;
use crate::tls::files::load_certified_key;

fn leaf_der(w: &Watched<rustls::sign::CertifiedKey>) -> Vec<u8> {
    w.get().cert[0].as_ref().to_vec()
}

#[test]
fn changed_files_are_reloaded_and_broken_ones_ignored() {
    let pki = TestPki::new("gatehouse.local");
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key) = pki.server(&["localhost"]).write_to(dir.path(), "s");
    let (c, k) = (cert.clone(), key.clone());
    let w = Watched::load(
        "certificate",
        vec![cert.clone(), key.clone()],
        None,
        move || load_certified_key(&c, &k),
    )
    .expect("initial load");
    let first = leaf_der(&w);
    assert!(!w.check_now(), "nothing changed");

    // Half-written: a new certificate with the old key. Refused, the old pair keeps serving.
    let renewed = pki.server(&["localhost"]);
    std::fs::write(&cert, &renewed.cert_pem).expect("write cert");
    assert!(!w.check_now());
    assert_eq!(leaf_der(&w), first);

    // The key follows: the pair is consistent again and swapped in.
    std::thread::sleep(Duration::from_millis(5));
    std::fs::write(&key, &renewed.key_pem).expect("write key");
    assert!(w.check_now());
    let second = leaf_der(&w);
    assert_ne!(second, first);
    assert_eq!(second, renewed.cert_der_chain()[0].as_ref());

    // Garbage and removal keep the current pair.
    std::fs::write(&cert, "not a PEM file").expect("write garbage");
    assert!(!w.check_now());
    std::fs::remove_file(&key).expect("remove key");
    assert!(!w.check_now());
    assert_eq!(leaf_der(&w), second);
}

#[test]
fn watcher_thread_polls_and_stops_with_the_value() {
    let pki = TestPki::new("gatehouse.local");
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key) = pki.server(&["localhost"]).write_to(dir.path(), "s");
    let (c, k) = (cert.clone(), key.clone());
    let w = Watched::load(
        "certificate",
        vec![cert.clone(), key.clone()],
        Some(Duration::from_millis(20)),
        move || load_certified_key(&c, &k),
    )
    .expect("initial load");
    let first = leaf_der(&w);
    let renewed = pki.server(&["localhost"]);
    // Replace both files atomically, as cert managers do.
    for (path, body) in [(&key, &renewed.key_pem), (&cert, &renewed.cert_pem)] {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, body).expect("write tmp");
        std::fs::rename(&tmp, path).expect("rename");
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while leaf_der(&w) == first {
        assert!(std::time::Instant::now() < deadline, "not reloaded in time");
        std::thread::sleep(Duration::from_millis(10));
    }
    let weak = Arc::downgrade(&w);
    drop(w);
    // The thread holds a strong reference only while it checks: the value goes soon after.
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while weak.upgrade().is_some() {
        assert!(
            std::time::Instant::now() < deadline,
            "the watcher keeps the value alive"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}
