//! Shares (docs/shares.md): a hub's tree is the share `default`; `ssync-server
//! share list` shows what each share holds; tokens are granted shares read-only
//! or read-write, each mount holds exactly its share, a read-only grant mounts
//! read-only, every endpoint refuses a token without a grant, and a grant
//! revoked stops the mount.
use ssync_tests::{
    authed_client, bin, documented_endpoints, hub_tree, snapshot, tree, wait_for_content, wait_for_tree, wait_until,
    Hub, Mount,
};
use std::process::Command;
use std::time::Duration;

/// The `share list` row of `name`, split on whitespace.
fn share_row(hub: &Hub, name: &str) -> Vec<String> {
    let out = Command::new(bin("e2e-server")).args(["share", "list", "--data"]).arg(&hub.data).output().unwrap();
    assert!(out.status.success(), "share list: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let row = text.lines().find(|l| l.split_whitespace().next() == Some(name));
    row.unwrap_or_else(|| panic!("no share '{name}' in:\n{text}")).split_whitespace().map(String::from).collect()
}

#[test]
fn the_hubs_tree_is_the_default_share_and_share_list_shows_what_it_holds() {
    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::start(dir.path());
    let m = Mount::start(dir.path(), "m", &hub);
    std::fs::create_dir(m.path.join("d")).unwrap();
    std::fs::write(m.path.join("d/a"), b"12345").unwrap();
    std::fs::write(m.path.join("b"), b"123").unwrap();
    let arrived = wait_until(Duration::from_secs(20), || hub_tree(&hub).is_some_and(|t| t.len() == 3));
    assert!(arrived, "the hub never held the 3 entries: {:?}", hub_tree(&hub));
    // share, entries, bytes, latest change, retention.
    let row = share_row(&hub, "default");
    assert_eq!(row[1..3], ["3", "8"], "{row:?}");
    assert!(row[3].parse::<u64>().is_ok_and(|v| v >= 3), "{row:?}");
    assert_eq!(row[4..], ["the", "hub's"], "{row:?}");
}

/// Runs `ssync-server ARGS --data DIR`; returns stdout (trimmed).
fn server_cli(hub: &Hub, args: &[&str]) -> String {
    let out = Command::new(bin("e2e-server")).args(args).arg("--data").arg(&hub.data).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn status_of(m: &Mount) -> String {
    let out = Command::new(bin("e2e-ssync")).arg("status").arg(&m.path).output().unwrap();
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// The mount options /proc/mounts shows for `m`.
fn mount_options(m: &Mount) -> String {
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
    let line = mounts.lines().find(|l| l.split(' ').nth(1) == Some(m.path.to_str().unwrap()));
    line.unwrap_or_else(|| panic!("{} not in /proc/mounts", m.path.display())).split(' ').nth(3).unwrap().into()
}

/// Each documented endpoint under a share, with `{share}` filled in, sent
/// with `token`: (what, status, JSON body).
fn every_share_endpoint(url: &str, token: &str, share: &str) -> Vec<(String, u16, serde_json::Value)> {
    let http = authed_client(token);
    let zero = "0".repeat(64);
    let mut out = Vec::new();
    for (method, path, _) in documented_endpoints(url).into_iter().filter(|e| e.1.contains("{share}")) {
        let path = path.replace("{share}", share).replace("{id}", &zero);
        let req = match method.as_str() {
            "GET" => http.get(format!("{url}{path}?path=a")),
            "POST" => http.post(format!("{url}{path}")).json(&serde_json::json!({})),
            other => panic!("no test request for method {other}"),
        };
        let resp = req.send().unwrap();
        let status = resp.status().as_u16();
        out.push((format!("{method} {path}"), status, resp.json().unwrap_or_default()));
    }
    assert_eq!(out.len(), 21, "every tree and content endpoint is under /v1/shares/{{share}}/");
    out
}

/// Endpoints that only read a share: a read-only grant may use them.
fn reads(what: &str) -> bool {
    what.starts_with("GET ") || what.ends_with("/chunks/fetch") || what.ends_with("/manifests")
}

const WAIT: Duration = Duration::from_secs(20);

#[test]
fn three_shares_and_four_devices_each_see_and_change_only_what_they_were_given() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let hub = Hub::start(d);
    let url = hub.url();
    for share in ["photos", "taxes", "releases"] {
        server_cli(&hub, &["share", "add", share]);
    }
    let token = |args: &[&str]| server_cli(&hub, &[&["token", "add"], args].concat());
    let laptop = token(&["laptop", "--share", "photos:rw", "--share", "taxes", "--share", "releases:rw"]);
    let phone = token(&["phone", "--share", "photos:ro"]);
    let accountant = token(&["accountant", "--share", "taxes:rw"]);
    let buildbot = token(&["buildbot", "--share", "releases:ro"]);
    let listed = server_cli(&hub, &["token", "list"]);
    assert!(listed.contains("photos:rw releases:rw taxes:rw") && listed.contains("photos:ro"), "{listed}");

    // A token with several shares must say which; the error lists them.
    std::fs::create_dir(d.join("nowhere")).unwrap();
    let (code, said) = ssync_tests::run_bounded(
        Command::new(bin("e2e-mount"))
            .arg(d.join("nowhere"))
            .args(["--server", &url, "--cache-dir"])
            .arg(d.join("nowhere.cache"))
            .env("SSYNC_TOKEN", &laptop),
        WAIT,
    );
    assert_ne!(code, Some(0), "{said}");
    assert!(said.contains("several shares") && said.contains("photos (read-write), releases (read-write)"), "{said}");

    let l_photos = Mount::start_as(d, "laptop-photos", &hub, &laptop, &["--share", "photos"]);
    let l_releases = Mount::start_as(d, "laptop-releases", &hub, &laptop, &["--share", "releases"]);
    let phone_m = Mount::start_as(d, "phone", &hub, &phone, &[]);
    let acct_m = Mount::start_as(d, "accountant", &hub, &accountant, &[]);
    let bot_m = Mount::start_as(d, "buildbot", &hub, &buildbot, &[]);

    std::fs::write(l_photos.p("cat.jpg"), b"meow").unwrap();
    std::fs::create_dir(l_photos.p("album")).unwrap();
    std::fs::write(l_releases.p("v1.tar"), b"release one").unwrap();
    std::fs::write(acct_m.p("2026.pdf"), b"owed").unwrap();
    let photos = tree(&[("album", None), ("cat.jpg", Some("meow"))]);
    let releases = tree(&[("v1.tar", Some("release one"))]);
    wait_for_tree(&[&l_photos, &phone_m], &photos, WAIT);
    wait_for_tree(&[&l_releases, &bot_m], &releases, WAIT);
    wait_for_tree(&[&acct_m], &tree(&[("2026.pdf", Some("owed"))]), WAIT);
    assert_eq!(snapshot(&phone_m.path), photos, "the phone holds photos and nothing else");

    // Read-only grants mount read-only: the kernel refuses every write call.
    assert!(mount_options(&phone_m).split(',').any(|o| o == "ro"), "{}", mount_options(&phone_m));
    assert!(mount_options(&acct_m).split(',').any(|o| o == "rw"), "{}", mount_options(&acct_m));
    assert!(status_of(&phone_m).contains("share photos (read-only"), "{}", status_of(&phone_m));
    assert!(status_of(&acct_m).contains("share taxes (read-write)"), "{}", status_of(&acct_m));
    let before = share_row(&hub, "photos")[3].clone();
    let p = |rel: &str| phone_m.p(rel);
    let calls: Vec<(&str, std::io::Result<()>)> = vec![
        ("create", std::fs::write(p("new.txt"), b"x")),
        ("open for writing", std::fs::OpenOptions::new().write(true).open(p("cat.jpg")).map(drop)),
        ("open to append", std::fs::OpenOptions::new().append(true).open(p("cat.jpg")).map(drop)),
        ("truncate", nix::unistd::truncate(&p("cat.jpg"), 0).map_err(std::io::Error::from)),
        ("mkdir", std::fs::create_dir(p("dir"))),
        ("rmdir", std::fs::remove_dir(p("album"))),
        ("unlink", std::fs::remove_file(p("cat.jpg"))),
        ("rename", std::fs::rename(p("cat.jpg"), p("dog.jpg"))),
        ("link", std::fs::hard_link(p("cat.jpg"), p("cat2.jpg"))),
        ("symlink", std::os::unix::fs::symlink("cat.jpg", p("ln"))),
        ("chmod", std::fs::set_permissions(p("cat.jpg"), std::os::unix::fs::PermissionsExt::from_mode(0o600))),
        ("utimes", filetime_now(&p("cat.jpg"))),
        ("setxattr", xattr::set(p("cat.jpg"), "user.tag", b"v")),
        ("removexattr", xattr::remove(p("cat.jpg"), "user.tag")),
    ];
    for (what, result) in calls {
        let err = result.err().unwrap_or_else(|| panic!("{what} on a read-only mount succeeded"));
        assert_eq!(err.raw_os_error(), Some(libc::EROFS), "{what}: {err}");
    }
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(share_row(&hub, "photos")[3], before, "the hub saw no change of photos");
    assert_eq!(snapshot(&phone_m.path), photos);

    // No grant, no share: 403 on every endpoint, naming the share and the
    // grant; a share that does not exist answers the same.
    for (share, who, tok) in [("photos", "accountant", &accountant), ("nosuch", "accountant", &accountant)] {
        for (what, status, body) in every_share_endpoint(&url, tok, share) {
            assert_eq!(status, 403, "{what} by {who}: {body}");
            assert_eq!(body["code"], "forbidden", "{what}: {body}");
            let message = body["message"].as_str().unwrap_or_default();
            assert!(message.contains(&format!("share '{share}'")) && message.contains(who), "{what}: {body}");
        }
    }
    // A read-only grant reads, and is refused every change.
    for (what, status, body) in every_share_endpoint(&url, &phone, "photos") {
        match reads(&what) {
            true => assert_ne!(status, 403, "{what} reads photos: {body}"),
            false => {
                assert_eq!(status, 403, "{what} changes photos: {body}");
                assert!(body["message"].as_str().unwrap_or_default().contains("may only read share 'photos'"));
            }
        }
    }

    // A revoked grant stops the mount's syncing within a second or so; a
    // change made there meanwhile stays queued.
    let started = std::time::Instant::now();
    server_cli(&hub, &["token", "revoke-grant", "accountant", "--share", "taxes"]);
    let stopped = |s: &str| s.contains("STOPPED SYNCING") && s.contains("share 'taxes'");
    assert!(wait_until(Duration::from_secs(10), || stopped(&status_of(&acct_m))), "{}", status_of(&acct_m));
    eprintln!("the accountant's mount stopped syncing {:?} after its grant was revoked", started.elapsed());
    std::fs::write(acct_m.p("2027.pdf"), b"kept").unwrap();
    assert!(wait_until(WAIT, || status_of(&acct_m).contains("changes queued: 1")), "{}", status_of(&acct_m));
    assert_eq!(std::fs::read(acct_m.p("2027.pdf")).unwrap(), b"kept");
    assert!(acct_m.log().contains("refused this mount's share"), "{}", acct_m.log());
    // The other mounts go on.
    std::fs::write(l_photos.p("cat2.jpg"), b"purr").unwrap();
    wait_for_content(&phone_m.p("cat2.jpg"), b"purr", WAIT);
}

fn filetime_now(path: &std::path::Path) -> std::io::Result<()> {
    use nix::sys::stat::{utimensat, UtimensatFlags};
    use nix::sys::time::TimeSpec;
    let now = TimeSpec::new(1_700_000_000, 0);
    utimensat(nix::fcntl::AT_FDCWD, path, &now, &now, UtimensatFlags::FollowSymlink).map_err(std::io::Error::from)
}
