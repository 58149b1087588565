//! A hub serving HTTPS with a certificate from a CA made here, and mounts
//! that trust only that CA: sync works end to end, and clients that do not
//! trust the CA, or speak plain HTTP, get nothing.
use ssync_tests::{bin, run_bounded, wait_for_content, Hub, Mount, SYNC_TIMEOUT};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

struct Pki {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

/// A CA, and a certificate it signed for 127.0.0.1 and localhost, as PEM files in `dir`.
fn make_pki(dir: &Path) -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "ssync test CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let mut leaf = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    leaf.distinguished_name.push(DnType::CommonName, "ssync test hub");
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = leaf.signed_by(&leaf_key, &ca, &ca_key).unwrap();
    let pki = Pki { ca: dir.join("ca.pem"), cert: dir.join("hub.pem"), key: dir.join("hub.key") };
    fs::write(&pki.ca, ca.pem()).unwrap();
    fs::write(&pki.cert, leaf.pem()).unwrap();
    fs::write(&pki.key, leaf_key.serialize_pem()).unwrap();
    pki
}

fn tls_hub(dir: &Path, pki: &Pki) -> Hub {
    let (cert, key) = (pki.cert.to_str().unwrap(), pki.key.to_str().unwrap());
    let flags = ["--tls-cert", cert, "--tls-key", key, "--header-timeout", "2"];
    let mut hub = Hub::start_with(&dir.join("hub"), "127.0.0.1:0", &flags);
    hub.ca_cert = Some(pki.ca.clone());
    hub
}

#[test]
fn two_mounts_sync_over_tls_with_their_own_ca() {
    let dir = tempfile::tempdir().unwrap();
    let pki = make_pki(dir.path());
    let hub = tls_hub(dir.path(), &pki);
    assert_eq!(hub.scheme, "https", "the hub says it serves HTTPS");
    let a = Mount::start(dir.path(), "a", &hub);
    let b = Mount::start(dir.path(), "b", &hub);

    fs::create_dir(a.p("docs")).unwrap();
    fs::write(a.p("docs/report.txt"), b"sent over TLS\n").unwrap();
    wait_for_content(&b.p("docs/report.txt"), b"sent over TLS\n", SYNC_TIMEOUT);
    // A file large enough to travel as chunks, and the other way round.
    let big = ssync_tests::pseudo_random(3 << 20, 11);
    fs::write(b.p("docs/big.bin"), &big).unwrap();
    wait_for_content(&a.p("docs/big.bin"), &big, SYNC_TIMEOUT);
    fs::rename(a.p("docs/report.txt"), a.p("docs/final.txt")).unwrap();
    wait_for_content(&b.p("docs/final.txt"), b"sent over TLS\n", SYNC_TIMEOUT);

    // The ssync command reaches the hub the way the mount does (its CA).
    let (code, out) =
        run_bounded(Command::new(bin("e2e-ssync")).arg("versions").arg(a.p("docs/big.bin")), Duration::from_secs(20));
    assert_eq!(code, Some(0), "ssync versions over TLS: {out}");
    for (name, log) in [("a", a.log()), ("b", b.log()), ("hub", hub.log())] {
        assert!(!log.contains("ERROR"), "{name} logged an error:\n{log}");
    }
}

#[test]
fn clients_that_do_not_trust_the_ca_or_speak_plain_http_get_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let pki = make_pki(dir.path());
    let hub = tls_hub(dir.path(), &pki);
    let health = format!("{}/v1/health", hub.url());

    let ca = reqwest::Certificate::from_pem(&fs::read(&pki.ca).unwrap()).unwrap();
    let trusting = reqwest::blocking::Client::builder().add_root_certificate(ca).build().unwrap();
    assert_eq!(trusting.get(&health).send().unwrap().status(), 200, "a client trusting the CA is served");

    let untrusting = reqwest::blocking::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    let err = untrusting.get(&health).send().expect_err("a client without the CA must refuse the hub");
    assert!(format!("{err:?}").to_lowercase().contains("certificate"), "{err:?}");

    let plain = format!("http://{}/v1/health", hub.addr);
    let answer = untrusting.get(&plain).send();
    assert!(answer.is_err() || answer.is_ok_and(|r| !r.status().is_success()), "plain HTTP must not be served");

    // A connection that never starts its handshake is closed (--header-timeout).
    let mut silent = std::net::TcpStream::connect(&hub.addr).unwrap();
    silent.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let closed = std::io::Read::read(&mut silent, &mut [0u8; 64]);
    assert!(matches!(closed, Ok(0)), "a silent TLS connection was held: {closed:?}");

    // A first mount that does not trust the hub's certificate refuses to
    // start (it has no cache to work from) and says why.
    let mountpoint = dir.path().join("m");
    fs::create_dir(&mountpoint).unwrap();
    // Runs a mount of `hub` with `extra` flags; it must exit, not mount.
    let mount_fails = |extra: &[&std::ffi::OsStr]| {
        let (code, out) = run_bounded(
            Command::new(bin("e2e-mount"))
                .arg(&mountpoint)
                .args(["--server", &hub.url(), "--token-file"])
                .arg(&hub.token_file)
                .args(extra),
            Duration::from_secs(30),
        );
        assert_ne!(code, Some(0), "the mount must not start: {out}");
        assert!(!ssync_tests::is_mounted(&mountpoint));
        out
    };
    let cache = dir.path().join("m.cache");
    let out = mount_fails(&["--cache-dir".as_ref(), cache.as_os_str()]);
    assert!(out.contains("cannot reach the hub") && out.to_lowercase().contains("certificate"), "{out}");

    // --ca-cert with a file that is not a certificate is refused up front.
    let out = mount_fails(&["--ca-cert".as_ref(), hub.token_file.as_os_str()]);
    assert!(out.contains("holds no PEM certificate"), "{out}");
}

#[test]
fn a_hub_given_a_bad_certificate_or_key_says_so_and_exits() {
    let dir = tempfile::tempdir().unwrap();
    let pki = make_pki(dir.path());
    let not_pem = dir.path().join("garbage.pem");
    fs::write(&not_pem, "not a certificate\n").unwrap();
    for (cert, key, expect) in [
        (&not_pem, &pki.key, "holds no PEM certificate"),
        (&pki.cert, &not_pem, "cannot read the private key"),
        (&pki.cert, &dir.path().join("missing.key"), "cannot read the private key"),
    ] {
        let (code, out) = run_bounded(
            Command::new(bin("e2e-server"))
                .args(["--listen", "127.0.0.1:0", "--data"])
                .arg(dir.path().join("hub"))
                .arg("--tls-cert")
                .arg(cert)
                .arg("--tls-key")
                .arg(key),
            Duration::from_secs(20),
        );
        assert_ne!(code, Some(0), "{out}");
        assert!(out.contains(expect), "wanted '{expect}' in: {out}");
    }
    let (code, out) = run_bounded(
        Command::new(bin("e2e-server")).args(["--listen", "127.0.0.1:0", "--tls-cert"]).arg(&pki.cert),
        Duration::from_secs(20),
    );
    assert_ne!(code, Some(0), "--tls-cert alone must be refused: {out}");
    assert!(out.contains("--tls-key"), "{out}");
}
