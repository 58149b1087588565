//! Nobody without a token gets in: every endpoint of the API document but
//! health and the document itself answers 401 (a JSON error) to a missing, wrong or revoked token; revoking ends a held
//! long-poll; a mount whose token is refused stops syncing, says so, and
//! keeps its queued changes for a restart with a valid token.
use ssync_tests::{authed_client, bin, hub_tree, wait_until, Cluster, Hub};
use std::process::Command;
use std::time::{Duration, Instant};

/// Runs `ssync-server token ...` on the hub's data dir; returns stdout.
fn token_cli(hub: &Hub, args: &[&str]) -> String {
    let out = Command::new(bin("e2e-server")).arg("token").args(args).arg("--data").arg(&hub.data).output().unwrap();
    assert!(out.status.success(), "token {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

const ZERO: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Every operation of the hub's own API document: (method, path with `{id}`
/// and `{share}` filled in, whether it is open to all).
fn documented_endpoints(url: &str) -> Vec<(String, String, bool)> {
    let all = ssync_tests::documented_endpoints(url).into_iter();
    all.map(|(m, p, open)| (m, p.replace("{id}", ZERO).replace("{share}", "default"), open)).collect()
}

/// One request to every endpoint that needs a token, with `auth` as the
/// Authorization header.
fn every_endpoint(url: &str, auth: Option<&str>) -> Vec<(String, reqwest::blocking::Response)> {
    let http = reqwest::blocking::Client::new();
    let mut out = Vec::new();
    for (method, path, _) in documented_endpoints(url).into_iter().filter(|(_, _, open)| !open) {
        let req = match method.as_str() {
            "GET" => http.get(format!("{url}{path}")),
            "POST" => http.post(format!("{url}{path}")).json(&serde_json::json!({})),
            other => panic!("no test request for method {other}"),
        };
        let req = match auth {
            Some(a) => req.header("authorization", a),
            None => req,
        };
        out.push((format!("{method} {path}"), req.send().unwrap()));
    }
    assert_eq!(
        out.len(),
        23,
        "endpoints that need a token (batch, digest, list, manifests, exchange and shares included)"
    );
    out
}

fn assert_all_401(url: &str, auth: Option<&str>) {
    for (what, resp) in every_endpoint(url, auth) {
        let status = resp.status().as_u16();
        let body: serde_json::Value = resp.json().unwrap_or_default();
        assert_eq!(status, 401, "{what} with {auth:?}: {body}");
        assert_eq!(body["code"], "unauthorized", "{what}: {body}");
        assert!(body["message"].as_str().is_some_and(|m| m.contains("token")), "{what}: {body}");
    }
}

#[test]
fn every_endpoint_but_health_and_the_document_needs_a_valid_token() {
    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::start(dir.path());
    let url = hub.url();
    assert_all_401(&url, None);
    assert_all_401(&url, Some("Bearer ssync_not-a-token"));
    assert_all_401(&url, Some("Basic aGFybmVzczpzZWNyZXQ="));
    assert_all_401(&url, Some(&format!("Bearer {}x", hub.token)));

    let victim = token_cli(&hub, &["add", "victim"]);
    let tree = authed_client(&victim).get(format!("{url}/v1/shares/default/tree")).send().unwrap();
    assert_eq!(tree.status().as_u16(), 200, "a fresh token works");
    assert!(token_cli(&hub, &["list"]).contains("victim"));
    token_cli(&hub, &["revoke", "victim"]);
    assert_all_401(&url, Some(&format!("Bearer {victim}")));
    assert!(!token_cli(&hub, &["list"]).contains("victim"));

    let open: Vec<String> = documented_endpoints(&url).into_iter().filter(|e| e.2).map(|e| e.1).collect();
    assert_eq!(open, ["/v1/health", "/v1/openapi.json"], "only liveness and the document are open");
    let health = reqwest::blocking::get(format!("{url}/v1/health")).unwrap();
    assert_eq!(health.status().as_u16(), 200, "health needs no token");
    let fine = hub.http().get(format!("{url}/v1/shares/default/tree")).send().unwrap();
    assert_eq!(fine.status().as_u16(), 200, "other tokens still work");
}

#[test]
fn revoking_a_token_ends_its_long_poll() {
    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::start(dir.path());
    let victim = token_cli(&hub, &["add", "victim"]);
    let url = hub.url();
    let poll = std::thread::spawn(move || {
        let started = Instant::now();
        let resp =
            authed_client(&victim).get(format!("{url}/v1/shares/default/changes?since=0&wait=30")).send().unwrap();
        (resp.status().as_u16(), started.elapsed())
    });
    std::thread::sleep(Duration::from_millis(500));
    token_cli(&hub, &["revoke", "victim"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !poll.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(poll.is_finished(), "the long-poll was still held 10 s after its token was revoked");
    let (status, took) = poll.join().unwrap();
    assert_eq!(status, 401);
    assert!(took < Duration::from_secs(5), "the long-poll ended only after {took:?}");
}

#[test]
fn a_refused_token_stops_the_mount_which_keeps_its_changes() {
    let mut c = Cluster::new(1);
    std::fs::write(c.mounts[0].p("before.txt"), b"synced").unwrap();
    let has = |hub: &Hub, name: &str| hub_tree(hub).is_some_and(|t| t.contains_key(name));
    assert!(wait_until(Duration::from_secs(10), || has(&c.hub, "before.txt")));

    // The mount's token (the harness token) is revoked; tests go on with another.
    let inspector = token_cli(&c.hub, &["add", "inspector"]);
    token_cli(&c.hub, &["revoke", "harness"]);
    let harness_token = std::mem::replace(&mut c.hub.token, inspector);
    std::fs::write(c.mounts[0].p("while-refused.txt"), b"must not be lost").unwrap();
    let log_says = |c: &Cluster| c.mounts[0].log().contains("refused this mount's token");
    assert!(wait_until(Duration::from_secs(10), || log_says(&c)), "{}", c.mounts[0].log());
    // `ssync status` reads a file the mount rewrites twice a second.
    let status = || {
        let out = Command::new(bin("e2e-ssync")).arg("status").arg(&c.mounts[0].path).output().unwrap();
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let stopped = |s: &str| s.contains("STOPPED SYNCING") && s.contains("token") && s.contains("changes queued: 1");
    assert!(wait_until(Duration::from_secs(5), || stopped(&status())), "{}", status());
    assert!(!has(&c.hub, "while-refused.txt"), "nothing reached the hub with a revoked token");
    assert_eq!(std::fs::read(c.mounts[0].p("while-refused.txt")).unwrap(), b"must not be lost");

    // A new token in the same file, a restart: the queued change goes through.
    c.mounts[0].stop();
    let fresh = token_cli(&c.hub, &["add", "harness2"]);
    assert_ne!(fresh, harness_token);
    std::fs::write(&c.hub.token_file, &fresh).unwrap();
    c.mounts[0].start_again();
    assert!(
        wait_until(Duration::from_secs(15), || has(&c.hub, "while-refused.txt")),
        "the change queued while refused never arrived: {}",
        c.mounts[0].log()
    );
}
