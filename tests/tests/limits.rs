//! The hub's limits, each set by a flag: crossing one is a 4xx with a JSON
//! error, and a stalled or greedy client cannot hold the hub's resources.
use ssync_tests::{authed_client, Hub};
use std::io::{Read, Write};
use std::time::{Duration, Instant};

fn json_error(resp: reqwest::blocking::Response) -> (u16, serde_json::Value) {
    let status = resp.status().as_u16();
    (status, resp.json().expect("error bodies are JSON"))
}

/// Sends a chunk upload's head declaring `len` bytes and then only `body`
/// over a raw socket; returns the hub's answer.
fn upload_head_only(hub: &Hub, len: usize, body: &[u8]) -> String {
    let mut tcp = std::net::TcpStream::connect(&hub.addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let head = format!(
        "POST /v1/shares/default/chunks HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nContent-Length: {len}\r\n\r\n",
        hub.addr, hub.token
    );
    tcp.write_all(head.as_bytes()).unwrap();
    tcp.write_all(body).unwrap();
    let mut answer = vec![0u8; 4096];
    let n = tcp.read(&mut answer).expect("the hub answers instead of waiting for ever");
    String::from_utf8_lossy(&answer[..n]).to_string()
}

#[test]
fn a_token_may_hold_only_so_many_long_polls() {
    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::start_with(&dir.path().join("hub"), "127.0.0.1:0", &["--max-polls-per-token", "2"]);
    let url = hub.url();
    let held: Vec<_> = (0..2)
        .map(|_| {
            let (http, url) = (hub.http(), url.clone());
            std::thread::spawn(move || {
                http.get(format!("{url}/v1/shares/default/changes?since=0&wait=5")).send().unwrap().status()
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let (status, body) =
        json_error(hub.http().get(format!("{url}/v1/shares/default/changes?since=0&wait=5")).send().unwrap());
    assert_eq!((status, body["code"].as_str()), (429, Some("too_many")), "{body}");
    assert!(body["message"].as_str().unwrap().contains("--max-polls-per-token"), "{body}");
    // Other requests of the same token, and other tokens' polls, are not held back.
    assert_eq!(hub.http().get(format!("{url}/v1/shares/default/tree")).send().unwrap().status().as_u16(), 200);
    let out = std::process::Command::new(ssync_tests::bin("e2e-server"))
        .args(["token", "add", "other", "--data"])
        .arg(&hub.data)
        .output()
        .unwrap();
    let other = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let resp = authed_client(&other).get(format!("{url}/v1/shares/default/changes?since=0&wait=0")).send().unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    for h in held {
        assert_eq!(h.join().unwrap().as_u16(), 200, "the held polls end normally");
    }
    // Their slots are free again.
    let resp = hub.http().get(format!("{url}/v1/shares/default/changes?since=0&wait=0")).send().unwrap();
    assert_eq!(resp.status().as_u16(), 200);
}

#[test]
fn a_stalled_upload_body_is_ended_with_408() {
    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::start_with(&dir.path().join("hub"), "127.0.0.1:0", &["--body-idle-timeout", "1"]);
    let started = Instant::now();
    let answer = upload_head_only(&hub, 100_000, &[0u8; 10]); // then nothing more
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"code\":\"timeout\""), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(5), "answered after {:?}", started.elapsed());
}

/// Every endpoint that takes a JSON body.
const JSON_ENDPOINTS: [&str; 12] = [
    "/v1/shares/default/mkdir",
    "/v1/shares/default/delete",
    "/v1/shares/default/rename",
    "/v1/shares/default/exchange",
    "/v1/shares/default/setattr",
    "/v1/shares/default/commit",
    "/v1/shares/default/batch",
    "/v1/shares/default/chunks/missing",
    "/v1/shares/default/chunks/fetch",
    "/v1/shares/default/manifests",
    "/v1/shares/default/restore",
    "/v1/shares/default/restore-tree",
];

/// Sends a POST to `path` declaring `len` bytes, then only `body`; returns
/// the hub's answer (or what a read timeout of `wait` left) and when it came.
fn post_head_only(hub: &Hub, path: &str, len: usize, body: &[u8], wait: Duration) -> (String, Duration) {
    let mut tcp = std::net::TcpStream::connect(&hub.addr).unwrap();
    tcp.set_read_timeout(Some(wait)).unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\n\
         Content-Length: {len}\r\n\r\n",
        hub.addr, hub.token
    );
    let started = Instant::now();
    tcp.write_all(head.as_bytes()).unwrap();
    tcp.write_all(body).unwrap();
    let mut answer = vec![0u8; 4096];
    let n = tcp.read(&mut answer).unwrap_or(0);
    (String::from_utf8_lossy(&answer[..n]).to_string(), started.elapsed())
}

#[test]
fn stalled_json_bodies_get_408_and_oversized_ones_413_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::start_with(&dir.path().join("hub"), "127.0.0.1:0", &["--body-idle-timeout", "1"]);
    // One byte of a 100-byte body, then nothing: each endpoint at once.
    let answers: Vec<(&str, String, Duration)> = std::thread::scope(|s| {
        let held: Vec<_> = JSON_ENDPOINTS
            .iter()
            .map(|path| {
                let hub = &hub;
                s.spawn(move || {
                    let (answer, took) = post_head_only(hub, path, 100, b"{", Duration::from_secs(10));
                    (*path, answer, took)
                })
            })
            .collect();
        held.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (path, answer, took) in answers {
        assert!(answer.starts_with("HTTP/1.1 408"), "{path}: {answer}");
        assert!(answer.contains("\"code\":\"timeout\"") && answer.contains("--body-idle-timeout"), "{path}: {answer}");
        assert!(took <= Duration::from_secs(2), "{path}: answered after {took:?}, the limit is 1 s (+1 s)");
    }
    // A declared length over --max-body-mib (32 MiB by default) is refused
    // before a byte of the body is read: the answer comes with none sent.
    let hub = Hub::start_with(&dir.path().join("hub2"), "127.0.0.1:0", &["--body-idle-timeout", "60"]);
    for path in JSON_ENDPOINTS {
        let (answer, _) = post_head_only(&hub, path, 33 << 20, b"", Duration::from_secs(30));
        assert!(answer.starts_with("HTTP/1.1 413"), "{path}: {answer}");
        assert!(answer.contains("\"code\":\"too_large\"") && answer.contains("--max-body-mib"), "{path}: {answer}");
    }
    // Whole requests are served as before.
    let ok = hub
        .http()
        .post(format!("{}/v1/shares/default/mkdir", hub.url()))
        .json(&serde_json::json!({"path": "d", "base": 0, "mode": 493, "mtime_ns": 0}))
        .send()
        .unwrap();
    assert_eq!(ok.status().as_u16(), 200);
}

#[test]
fn uploads_and_hash_lists_past_their_limits_are_413() {
    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::start_with(
        &dir.path().join("hub"),
        "127.0.0.1:0",
        &["--max-upload-mib", "1", "--max-hashes", "2", "--max-body-mib", "1"],
    );
    let url = hub.url();
    // Refused from its Content-Length, before the hub reads the body.
    let answer = upload_head_only(&hub, 2 << 20, &[]);
    assert!(answer.starts_with("HTTP/1.1 413") && answer.contains("\"code\":\"too_large\""), "{answer}");
    let three: Vec<_> = (0..3u8).map(|i| ssync_common::ContentHash::of(&[i])).collect();
    let req = serde_json::json!({ "chunks": ssync_common::api::HashList::encode(&three) });
    let (status, body) =
        json_error(hub.http().post(format!("{url}/v1/shares/default/chunks/missing")).json(&req).send().unwrap());
    assert_eq!((status, body["code"].as_str()), (413, Some("too_large")), "{body}");
    assert!(body["message"].as_str().unwrap().contains("at most 2"), "{body}");
    let big = serde_json::json!({ "path": "x".repeat(2 << 20), "base": 0, "mode": 493, "mtime_ns": 0 });
    let (status, body) =
        json_error(hub.http().post(format!("{url}/v1/shares/default/mkdir")).json(&big).send().unwrap());
    assert_eq!((status, body["code"].as_str()), (413, Some("too_large")), "a JSON body past --max-body-mib: {body}");
}

/// Reads from `tcp` until the hub closes it; what it sent, or None if it
/// still held the connection after `limit`.
fn read_until_closed(tcp: &mut std::net::TcpStream, limit: Duration) -> Option<String> {
    tcp.set_read_timeout(Some(limit)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match tcp.read(&mut buf) {
            Ok(0) => return Some(String::from_utf8_lossy(&got).to_string()),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return Some(String::from_utf8_lossy(&got).to_string())
            }
            Err(_) => return None,
        }
    }
}

#[test]
fn a_client_that_never_finishes_its_headers_is_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::start_with(&dir.path().join("hub"), "127.0.0.1:0", &["--header-timeout", "1"]);
    let mut slow = std::net::TcpStream::connect(&hub.addr).unwrap();
    slow.write_all(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n").unwrap(); // and never the blank line
    let closed = read_until_closed(&mut slow, Duration::from_secs(15));
    assert!(closed.is_some(), "the hub held a connection whose headers never ended");
    assert!(!closed.unwrap().contains("200 OK"), "an unfinished request must not be served");
    // A silent connection (not a byte sent) is cut the same way.
    let mut silent = std::net::TcpStream::connect(&hub.addr).unwrap();
    assert!(read_until_closed(&mut silent, Duration::from_secs(15)).is_some(), "a silent connection was held");
    // Clients that send whole requests are served as before; a kept-alive
    // connection left idle is closed after the same time.
    let mut idle = std::net::TcpStream::connect(&hub.addr).unwrap();
    idle.write_all(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let answer = read_until_closed(&mut idle, Duration::from_secs(15)).expect("an idle connection was held");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(hub.http().get(format!("{}/v1/health", hub.url())).send().unwrap().status().as_u16(), 200);
}
