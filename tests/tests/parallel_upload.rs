//! A large upload does not hold back small changes closed after it.
use ssync_tests::{pseudo_random, wait_until, Cluster, SYNC_TIMEOUT};
use std::fs;
use std::io::Write;
use std::time::Duration;

#[test]
fn a_small_file_passes_a_large_upload_and_both_arrive_intact() {
    let c = Cluster::new(2);
    let (a, b) = (&c.mounts[0], &c.mounts[1]);
    const MIB: usize = 384;
    let mut f = fs::File::create(a.p("large.bin")).unwrap();
    let mut want = Vec::with_capacity(MIB << 20);
    for i in 0..MIB {
        let chunk = pseudo_random(1 << 20, i as u64 + 7);
        f.write_all(&chunk).unwrap();
        want.extend_from_slice(&chunk);
    }
    drop(f);
    fs::write(a.p("small.txt"), b"closed after the large file").unwrap();
    let small =
        wait_until(SYNC_TIMEOUT, || fs::read(b.p("small.txt")).is_ok_and(|d| d == b"closed after the large file"));
    assert!(small, "the small file never arrived");
    let large_done = fs::metadata(b.p("large.bin")).is_ok_and(|m| m.len() == want.len() as u64);
    assert!(!large_done, "the small file waited for the large upload to finish");
    let large = wait_until(Duration::from_secs(300), || fs::read(b.p("large.bin")).is_ok_and(|d| d == want));
    assert!(large, "the large file never arrived intact");
}
