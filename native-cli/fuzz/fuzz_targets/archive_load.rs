#![no_main]
//! `load` of arbitrary bytes (docker archives, OCI layouts, compressed or not) into a fresh store. Nothing may
//! panic; a refused archive leaves no image, and nothing is written outside the store.

use layerwright::store::Store;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = std::env::temp_dir().join(format!("lw-fuzz-load-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store = Store::open(&dir.join("store")).expect("store");
    let res = layerwright::archive::load(&store, &mut &data[..], "fuzz input");
    if res.is_err() {
        assert!(store.records().expect("index").is_empty(), "a refused archive named an image");
    }
    let outside: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.file_name()).collect();
    assert_eq!(outside.len(), 1, "written beside the store: {outside:?}");
    let _ = std::fs::remove_dir_all(&dir);
});
