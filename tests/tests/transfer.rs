//! Only changed bytes cross the network: copies and edits of synced files send
//! only the chunks the hub lacks, the hub stores each chunk once, and an upload
//! continues from the chunks an earlier, cut-off attempt left on the hub.
//! Bytes are the hub's own counters (`GET /v1/stats`).
use ssync_common::chunks::list_of;
use ssync_tests::{hub_packed_chunks, hub_traffic, pseudo_random, wait_for_content, Cluster, Hub};
use std::fs;
use std::time::Duration;

const MIB: u64 = 1 << 20;
const WAIT: Duration = Duration::from_secs(30);

/// Bytes in and out of the hub while `f` runs.
fn traffic_of(hub: &Hub, f: impl FnOnce()) -> u64 {
    let (r0, s0) = hub_traffic(hub);
    f();
    std::thread::sleep(Duration::from_millis(200)); // acknowledgements of the last change
    let (r1, s1) = hub_traffic(hub);
    (r1 - r0) + (s1 - s0)
}

#[test]
fn copies_and_edits_send_only_new_chunks() {
    let c = Cluster::new(2);
    let (a, b) = (&c.mounts[0], &c.mounts[1]);
    let data = pseudo_random(8 * MIB as usize, 11);
    fs::write(a.p("f.bin"), &data).unwrap();
    wait_for_content(&b.p("f.bin"), &data, WAIT);
    let stored = hub_packed_chunks(&c.hub.data);
    assert_eq!(stored.0, list_of(&data).len() as u64, "each chunk is stored once");

    let copy = traffic_of(&c.hub, || {
        fs::copy(a.p("f.bin"), a.p("copy.bin")).unwrap();
        wait_for_content(&b.p("copy.bin"), &data, WAIT);
    });
    assert!(copy < MIB / 2, "copying an 8 MiB file moved {copy} bytes");
    assert_eq!(hub_packed_chunks(&c.hub.data), stored, "the copy stores no chunk and no pack");

    let mut edited = data.clone();
    edited[4 * MIB as usize] ^= 0xff;
    let edit = traffic_of(&c.hub, || {
        fs::write(a.p("f.bin"), &edited).unwrap();
        wait_for_content(&b.p("f.bin"), &edited, WAIT);
    });
    // At most two chunks (256 KiB each at most) change, each sent up once and down once.
    assert!(edit < 5 * MIB / 4, "a one-byte edit of an 8 MiB file moved {edit} bytes");
    assert!(!a.log().contains("ERROR") && !b.log().contains("ERROR"), "{}\n{}", a.log(), b.log());
}

#[test]
fn an_upload_continues_from_chunks_the_hub_already_has() {
    let c = Cluster::new(2);
    let (a, b, url) = (&c.mounts[0], &c.mounts[1], c.hub.url());
    let data = pseudo_random(8 * MIB as usize, 12);
    // An earlier attempt that was cut off after sending the first half of the chunks.
    let list = list_of(&data);
    let mut frames = Vec::new();
    let mut sent = 0;
    for (off, ch) in list.with_offsets().take_while(|(off, _)| *off < 4 * MIB) {
        ssync_common::frames::encode(&mut frames, &ch.hash, &data[off as usize..(off + ch.len as u64) as usize], false);
        sent += ch.len as u64;
    }
    let http = c.hub.http();
    assert_eq!(
        http.post(format!("{url}/v1/shares/default/chunks")).body(frames).send().unwrap().status().as_u16(),
        200
    );

    let (r0, _) = hub_traffic(&c.hub);
    fs::write(a.p("big.bin"), &data).unwrap();
    wait_for_content(&b.p("big.bin"), &data, WAIT);
    let (r1, _) = hub_traffic(&c.hub);
    let received = r1 - r0;
    let rest = data.len() as u64 - sent;
    assert!(received < rest + MIB / 4, "the hub received {received} bytes; only {rest} were new");
}

#[test]
fn a_download_continues_from_the_chunks_it_already_assembled() {
    let mut c = Cluster::new(2);
    let url = c.hub.url();
    let data = pseudo_random(8 * MIB as usize, 13);
    c.mounts[1].stop();
    fs::write(c.mounts[0].p("big.bin"), &data).unwrap();
    let list = list_of(&data);
    let http = c.hub.http();
    // The whole body is read: a response dropped unread would go on
    // streaming, and its bytes would count against B's download below.
    let on_hub = ssync_tests::wait_until(WAIT, || {
        http.get(format!("{url}/v1/shares/default/content/{}", list.id()))
            .send()
            .and_then(|r| r.error_for_status())
            .and_then(|r| r.bytes())
            .is_ok_and(|body| body == data)
    });
    assert!(on_hub, "A's upload did not reach the hub");
    // What a download cut off halfway (kill -9, network loss) leaves in B's cache.
    let half = (4 * MIB) as usize;
    fs::write(c.mounts[1].cache.join("partial").join(list.id().to_hex()), &data[..half]).unwrap();
    let (_, s0) = hub_traffic(&c.hub);
    c.mounts[1].start_again();
    wait_for_content(&c.mounts[1].p("big.bin"), &data, WAIT);
    let (_, s1) = hub_traffic(&c.hub);
    let sent = s1 - s0;
    assert!(sent < (data.len() - half) as u64 + MIB / 2, "the hub sent {sent} bytes; B already had half");
    assert!(!c.mounts[1].cache.join("partial").join(list.id().to_hex()).exists(), "the partial file was installed");
}
