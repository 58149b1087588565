//! Shares (docs/shares.md): a hub's tree is the share `default`; `ssync-server
//! share list` shows what each share holds; tokens are granted shares read-only
//! or read-write, each mount holds exactly its share, a read-only grant mounts
//! read-only, every endpoint refuses a token without a grant, and a grant
//! revoked stops the mount.
use ssync_common::api::{HashList, MissingResponse, WireList};
use ssync_common::chunks::list_of;
use ssync_common::ContentHash;
use ssync_tests::{
    authed_client, bin, documented_endpoints, hub_tree, snapshot, tree, wait_for_content, wait_for_tree, wait_until,
    Hub, Mount,
};
use std::process::Command;
use std::time::Duration;

fn status_json(resp: reqwest::blocking::Response) -> (u16, serde_json::Value) {
    let status = resp.status().as_u16();
    (status, resp.json().unwrap_or_default())
}

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

    // Deduplication without a side channel: through taxes, the photos'
    // chunks are missing, cannot be fetched, and their file is unknown.
    let raw = ssync_tests::pseudo_random(1 << 20, 27);
    std::fs::write(l_photos.p("raw.dng"), &raw).unwrap();
    wait_for_content(&phone_m.p("raw.dng"), &raw, WAIT);
    let (list, small) = (list_of(&raw), list_of(b"meow"));
    let hashes: Vec<ContentHash> = list.0.iter().chain(&small.0).map(|c| c.hash).collect();
    let acct = authed_client(&accountant);
    let taxes = format!("{url}/v1/shares/taxes");
    let missing = |who: &reqwest::blocking::Client, share: &str| -> Vec<ContentHash> {
        let body = serde_json::json!({ "chunks": HashList::encode(&hashes) });
        let resp = who.post(format!("{url}/v1/shares/{share}/chunks/missing")).json(&body).send().unwrap();
        let m: MissingResponse = resp.json().unwrap();
        m.missing.decode().unwrap()
    };
    assert_eq!(missing(&acct, "taxes"), hashes, "every chunk photos holds is missing in taxes");
    assert!(missing(&authed_client(&laptop), "photos").is_empty(), "and none in photos");
    let fetch = serde_json::json!({ "chunks": HashList::encode(&hashes[..1]) });
    let resp = acct.post(format!("{taxes}/chunks/fetch")).json(&fetch).send().unwrap();
    assert_eq!(resp.status().as_u16(), 404, "a chunk of photos fetched through taxes");
    for path in [format!("manifest/{}", list.id()), format!("content/{}", list.id())] {
        let resp = acct.get(format!("{taxes}/{path}")).send().unwrap();
        assert_eq!(resp.status().as_u16(), 404, "{path} of photos through taxes");
    }
    let many: serde_json::Value = acct
        .post(format!("{taxes}/manifests"))
        .json(&serde_json::json!({ "ids": [small.id()] }))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(many["manifests"], serde_json::json!([]), "photos' small file is unknown in taxes");
    // Naming the chunks in a commit does not make them taxes': send them first.
    let commit = serde_json::json!({
        "path": "stolen.dng", "base": 0, "id": list.id(), "size": raw.len(), "mode": 420, "mtime_ns": 0,
        "list": WireList::whole(&list),
    });
    let (status, body) = status_json(acct.post(format!("{taxes}/commit")).json(&commit).send().unwrap());
    assert_eq!((status, body["code"].as_str()), (422, Some("missing_chunks")), "{body}");
    // The same bytes written in taxes cross the network once more, and the
    // store still keeps each chunk once.
    let packed = ssync_tests::hub_packed_chunks(&hub.data);
    std::fs::write(acct_m.p("raw.dng"), &raw).unwrap();
    let arrived = wait_until(WAIT, || {
        acct.get(format!("{taxes}/content/{}", list.id())).send().is_ok_and(|r| r.status().is_success())
    });
    assert!(arrived, "taxes never held its own copy: {}", acct_m.log());
    // (A chunk stored again would be a new pack file.)
    assert_eq!(ssync_tests::hub_packed_chunks(&hub.data), packed, "no chunk is stored twice, no pack is written");

    // Node ids are the clients' choice, unique within a share: one of
    // photos' may name a new folder in taxes.
    let lap = authed_client(&laptop);
    let photos_tree: serde_json::Value =
        lap.get(format!("{url}/v1/shares/photos/tree")).send().unwrap().json().unwrap();
    let node = photos_tree["entries"].as_array().unwrap()[0]["node"].clone();
    assert!(node.is_string(), "{photos_tree}");
    let mkdir = serde_json::json!({ "path": "from-photos-id", "base": 0, "mode": 493, "mtime_ns": 0, "node": node });
    let (status, body) = status_json(lap.post(format!("{taxes}/mkdir")).json(&mkdir).send().unwrap());
    assert_eq!(status, 200, "a node id of photos in taxes: {body}");
    let photos_after: serde_json::Value =
        lap.get(format!("{url}/v1/shares/photos/tree")).send().unwrap().json().unwrap();
    assert_eq!(photos_after, photos_tree, "photos' entries are untouched by taxes' use of the id");
    let versions_of = |path: &str| -> usize {
        let v: serde_json::Value =
            lap.get(format!("{url}/v1/shares/photos/versions?path={path}")).send().unwrap().json().unwrap();
        v["versions"].as_array().map_or(0, Vec::len)
    };
    let first = photos_tree["entries"].as_array().unwrap()[0]["path"].as_str().unwrap().to_string();
    assert_eq!(versions_of(&first), 1, "photos' history is untouched too");

    // A revoked grant stops the mount's syncing within a second or so; a
    // change made there meanwhile stays queued.
    let started = std::time::Instant::now();
    server_cli(&hub, &["token", "revoke-grant", "accountant", "--share", "taxes"]);
    let stopped = |s: &str| s.contains("STOPPED SYNCING") && s.contains("share 'taxes'");
    assert!(wait_until(Duration::from_secs(10), || stopped(&status_of(&acct_m))), "{}", status_of(&acct_m));
    eprintln!("the accountant's mount stopped syncing {:?} after its grant was revoked", started.elapsed());
    std::fs::write(acct_m.p("2027.pdf"), b"kept").unwrap();
    assert!(wait_until(WAIT, || status_of(&acct_m).contains("changes queued: 1")), "{}", status_of(&acct_m));
    let kept = acct.get(format!("{taxes}/tree")).send().unwrap();
    assert_eq!(kept.status().as_u16(), 403, "taxes is closed to the accountant now");
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

/// Feed isolation: changes in one share wake no mount of another. The hub's
/// request count (`/v1/stats`) moves only by the requests made here while
/// 1,000 changes land in photos and a mount of taxes idles; a long-poll held
/// on taxes stays held, and answers at once when taxes changes.
#[test]
fn a_thousand_changes_in_one_share_cost_a_mount_of_another_no_request() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let hub = Hub::start(d);
    let url = hub.url();
    server_cli(&hub, &["share", "add", "photos"]);
    server_cli(&hub, &["share", "add", "taxes"]);
    let laptop = server_cli(&hub, &["token", "add", "laptop", "--share", "photos"]);
    let accountant = server_cli(&hub, &["token", "add", "accountant", "--share", "taxes"]);
    let b = Mount::start_as(d, "accountant", &hub, &accountant, &[]);
    std::fs::write(b.p("2026.pdf"), b"owed").unwrap();
    let acct = authed_client(&accountant);
    let tree_of = |share: &str| -> serde_json::Value {
        acct.get(format!("{url}/v1/shares/{share}/tree")).send().unwrap().json().unwrap()
    };
    assert!(wait_until(WAIT, || tree_of("taxes")["entries"].as_array().is_some_and(|e| e.len() == 1)));
    std::thread::sleep(Duration::from_millis(500)); // the mount's answer to its own change
    let cursor = tree_of("taxes")["cursor"].as_u64().unwrap();
    let held = {
        let poll = acct.get(format!("{url}/v1/shares/taxes/changes?since={cursor}&wait=25"));
        std::thread::spawn(move || {
            let resp = poll.send().unwrap();
            let page: serde_json::Value = resp.json().unwrap();
            (std::time::Instant::now(), page)
        })
    };
    std::thread::sleep(Duration::from_millis(200));

    let requests = || ssync_tests::hub_requests(&hub);
    let changes: Vec<serde_json::Value> = (0..1000)
        .map(
            |i| serde_json::json!({ "op": "mkdir", "path": format!("d{i:04}"), "base": 0, "mode": 493, "mtime_ns": 0 }),
        )
        .collect();
    let photos = authed_client(&laptop);
    // The mount of taxes still makes its own rare requests (a compare every
    // 15 s, a long-poll every 25 s): a window that catches one is measured
    // again, with fresh changes.
    let mut others = Vec::new();
    for round in 0..3 {
        let before = requests();
        let batch: Vec<serde_json::Value> = changes
            .iter()
            .map(|c| {
                let mut c = c.clone();
                c["path"] = format!("r{round}-{}", c["path"].as_str().unwrap()).into();
                c
            })
            .collect();
        let resp = photos.post(format!("{url}/v1/shares/photos/batch")).json(&serde_json::json!({ "changes": batch }));
        let answer: serde_json::Value = resp.send().unwrap().json().unwrap();
        assert_eq!(answer["done"].as_array().map(Vec::len), Some(1000), "{answer}");
        std::thread::sleep(Duration::from_millis(500)); // what a woken mount would ask by now
                                                        // The batch, and this count's own request.
        let by_others = requests() - before - 2;
        others.push(by_others);
        if by_others == 0 {
            break;
        }
    }
    assert_eq!(others.last(), Some(&0), "requests by others while photos took 1,000 changes, per try: {others:?}");
    assert!(!held.is_finished(), "a long-poll on taxes was answered by changes in photos");

    let changed = std::time::Instant::now();
    std::fs::write(b.p("2027.pdf"), b"due").unwrap();
    let (answered, page) = held.join().unwrap();
    let paths: Vec<&str> = page["entries"].as_array().unwrap().iter().filter_map(|e| e["path"].as_str()).collect();
    assert_eq!(paths, ["2027.pdf"], "the held long-poll answers with taxes' own change");
    eprintln!("the held long-poll on taxes answered {:?} after the change", answered - changed);
}
