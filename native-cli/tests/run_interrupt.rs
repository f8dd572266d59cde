//! Ctrl-C during a RUN step: the container is killed, the step fails, and nothing stays mounted or running.
//! It signals the whole test process, so it runs in a process of its own (`lw_test_kit::process::alone`).

use crate::common;

use common::put_layer;
use layerwright::run::RuncExecutor;
use layerwright::store::Store;
use lw_engine::host::{RunExecutor, RunRequest};

#[test]
fn sigint_kills_the_container_and_cleans_up() {
    lw_test_kit::require!("runc", "/bin/busybox");
    if !lw_test_kit::process::alone() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("store");
    let store = Store::open(&root).unwrap();
    let (desc, diff_id) = put_layer(&store, &common::busybox_files(&[]));
    let mut exec = RuncExecutor::new(&store).unwrap();
    let mut blobs = layerwright::buildhost::StoreBlobs { store: &store };
    let req = RunRequest {
        layers: vec![desc],
        diff_ids: vec![diff_id],
        args: vec!["/bin/busybox".into(), "sleep".into(), "60".into()],
        env: vec!["PATH=/bin".into()],
        user: String::new(),
        workdir: "/".into(),
        network: "none".into(),
        extra_hosts: vec![],
        mounts: vec![],
        binds: vec![],
        files: vec![],
        platform: layerwright::store::host_platform(),
        source_date_epoch: None,
        location: "Dockerfile:2".into(),
        hostname: String::new(),
        insecure: false,
    };
    let killer = std::thread::spawn(|| {
        std::thread::sleep(std::time::Duration::from_secs(2));
        unsafe { libc::kill(libc::getpid(), libc::SIGINT) };
    });
    let t = std::time::Instant::now();
    let e = exec
        .run(&req, &mut blobs, &mut |_| {})
        .unwrap_err()
        .to_string();
    killer.join().unwrap();
    assert!(
        e.contains("Dockerfile:2") && e.contains("interrupted"),
        "{e}"
    );
    assert!(t.elapsed().as_secs() < 30, "the container was not killed");
    assert_eq!(exec.runtime.list().unwrap(), Vec::<String>::new());
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    assert!(!mounts.contains(root.to_str().unwrap()), "{mounts}");
    let left: Vec<_> = std::fs::read_dir(store.tmp_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "runc-state")
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    // The default SIGINT disposition is back.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    unsafe { libc::sigaction(libc::SIGINT, std::ptr::null(), &mut old) };
    assert_eq!(old.sa_sigaction, libc::SIG_DFL);
}
