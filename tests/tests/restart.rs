//! Stopped, killed and restarted mounts: nothing closed is lost, and what
//! changed meanwhile arrives.
use ssync_tests::{wait_for_absence, wait_for_content, Cluster, CRASH_WINDOW, SYNC_TIMEOUT};
use std::fs;
use std::io::Write;

#[test]
fn changes_made_while_a_mount_was_stopped_arrive_when_it_starts() {
    let mut c = Cluster::new(2);
    fs::write(c.mounts[0].p("keep.txt"), b"keep").unwrap();
    fs::write(c.mounts[0].p("drop.txt"), b"drop").unwrap();
    wait_for_content(&c.mounts[1].p("drop.txt"), b"drop", SYNC_TIMEOUT);
    assert_eq!(c.mounts[1].stop(), Some(0), "a stopped mount exits 0");

    fs::write(c.mounts[0].p("new.txt"), b"made while b was away").unwrap();
    fs::write(c.mounts[0].p("keep.txt"), b"kept and edited").unwrap();
    fs::remove_file(c.mounts[0].p("drop.txt")).unwrap();
    fs::create_dir_all(c.mounts[0].p("dir/sub")).unwrap();

    c.mounts[1].start_again();
    let b = &c.mounts[1];
    wait_for_content(&b.p("new.txt"), b"made while b was away", SYNC_TIMEOUT);
    wait_for_content(&b.p("keep.txt"), b"kept and edited", SYNC_TIMEOUT);
    wait_for_absence(&b.p("drop.txt"), SYNC_TIMEOUT);
    assert!(ssync_tests::wait_until(SYNC_TIMEOUT, || b.p("dir/sub").is_dir()));
}

#[test]
fn changes_made_on_a_stopped_mounts_cache_are_sent_when_it_starts() {
    let mut c = Cluster::new(2);
    fs::write(c.mounts[0].p("a.txt"), b"v1").unwrap();
    wait_for_content(&c.mounts[1].p("a.txt"), b"v1", SYNC_TIMEOUT);
    // The hub goes away; a keeps working from its cache and queues.
    c.hub.stop();
    fs::write(c.mounts[0].p("a.txt"), b"v2 written offline").unwrap();
    fs::write(c.mounts[0].p("offline.txt"), b"new offline").unwrap();
    assert_eq!(fs::read(c.mounts[0].p("a.txt")).unwrap(), b"v2 written offline");
    c.hub.restart();
    wait_for_content(&c.mounts[1].p("a.txt"), b"v2 written offline", SYNC_TIMEOUT);
    wait_for_content(&c.mounts[1].p("offline.txt"), b"new offline", SYNC_TIMEOUT);
}

#[test]
fn kill_9_of_a_mount_loses_nothing_closed_before_the_crash_window() {
    let mut c = Cluster::new(2);
    fs::write(c.mounts[0].p("before.txt"), b"synced before").unwrap();
    wait_for_content(&c.mounts[1].p("before.txt"), b"synced before", SYNC_TIMEOUT);
    // Stop the hub so the writes below can only be in a's queue when it dies.
    c.hub.stop();
    fs::create_dir(c.mounts[0].p("work")).unwrap();
    for i in 0..20 {
        fs::write(c.mounts[0].p(&format!("work/f{i}.txt")), format!("closed file {i}")).unwrap();
    }
    fs::rename(c.mounts[0].p("before.txt"), c.mounts[0].p("work/moved.txt")).unwrap();
    std::thread::sleep(CRASH_WINDOW);
    c.mounts[0].kill9(); // and `umount -l` of the stale mount
    c.hub.restart();
    c.mounts[0].start_again(); // same cache: finishes its queue
    let b = &c.mounts[1];
    for i in 0..20 {
        wait_for_content(&b.p(&format!("work/f{i}.txt")), format!("closed file {i}").as_bytes(), SYNC_TIMEOUT);
    }
    wait_for_content(&b.p("work/moved.txt"), b"synced before", SYNC_TIMEOUT);
    wait_for_absence(&b.p("before.txt"), SYNC_TIMEOUT);
}

#[test]
fn fsync_makes_a_change_survive_an_immediate_kill_9() {
    let mut c = Cluster::new(2);
    c.hub.stop(); // the change can only be in a's queue
    let mut f = fs::File::create(c.mounts[0].p("synced.txt")).unwrap();
    f.write_all(b"fsync'd, then killed").unwrap();
    f.sync_all().unwrap();
    c.mounts[0].kill9(); // no pause: fsync alone made it durable
    drop(f);
    c.hub.restart();
    c.mounts[0].start_again();
    wait_for_content(&c.mounts[1].p("synced.txt"), b"fsync'd, then killed", SYNC_TIMEOUT);
}

#[test]
fn a_wiped_hub_does_not_make_mounts_delete_their_files() {
    let mut c = Cluster::new(1);
    fs::write(c.mounts[0].p("precious.txt"), b"only copy after the hub is wiped").unwrap();
    let synced = ssync_tests::wait_until(SYNC_TIMEOUT, || {
        ssync_tests::hub_tree(&c.hub).is_some_and(|t| t.contains_key("precious.txt"))
    });
    assert!(synced, "the file never reached the hub");
    assert_eq!(c.mounts[0].stop(), Some(0));
    c.hub.stop();
    fs::remove_dir_all(&c.hub.data).unwrap();
    c.hub.restart();
    c.mounts[0].start_again();
    let refused = ssync_tests::wait_until(SYNC_TIMEOUT, || c.mounts[0].log().contains("behind this cache"));
    assert!(refused, "the mount should refuse a hub that lost its history; log:\n{}", c.mounts[0].log());
    assert_eq!(fs::read(c.mounts[0].p("precious.txt")).unwrap(), b"only copy after the hub is wiped");
}
