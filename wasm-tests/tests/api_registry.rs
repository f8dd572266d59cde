//! lw-wasm's `push` (one platform, and two with their index), `pull` and `inspectRemote` against a real
//! Distribution registry with CORS headers, and the missing-CORS error. `cargo xtask test` starts the registries and sets, at compile time, LW_TEST_REGISTRY
//! (`127.0.0.1:PORT`, with CORS) and LW_TEST_REGISTRY_NOCORS (the same registry without CORS headers); see
//! xtask/src/wasm.rs.

#![cfg(target_arch = "wasm32")]

use js_sys::{Array, Object, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen_test::{console_log, wasm_bindgen_test};

fn get(v: &JsValue, k: &str) -> JsValue {
    Reflect::get(v, &JsValue::from_str(k)).unwrap()
}

fn set(o: &JsValue, k: &str, v: impl Into<JsValue>) {
    Reflect::set(o, &JsValue::from_str(k), &v.into()).unwrap();
}

fn insecure() -> JsValue {
    let o: JsValue = Object::new().into();
    set(&o, "insecure", true);
    o
}

fn message(e: JsValue) -> String {
    js_sys::Error::from(e).message().into()
}

fn in_browser() -> bool {
    Reflect::has(&js_sys::global(), &JsValue::from_str("document")).unwrap_or(false)
}

#[wasm_bindgen_test]
async fn push_pull_inspect_round_trip() {
    let Some(registry) = option_env!("LW_TEST_REGISTRY") else {
        console_log!("api registry: NOT RUN (LW_TEST_REGISTRY unset at compile time; cargo xtask test sets it)");
        return;
    };
    let files: JsValue = Object::new().into();
    set(
        &files,
        "hello.txt",
        Uint8Array::from(&b"hello registry\n"[..]),
    );
    let o: JsValue = Object::new().into();
    set(
        &o,
        "dockerfile",
        "FROM scratch\nCOPY hello.txt /\nCMD [\"/hello\"]\n",
    );
    set(&o, "files", files);
    set(&o, "tags", Array::of1(&JsValue::from_str("lw/regtest:1")));
    let built = lw_wasm::build(o).await.unwrap();
    let digest = get(&built, "manifestDigest").as_string().unwrap();
    let dest = format!("{registry}/lw/regtest:1");
    let pushed = lw_wasm::push("lw/regtest:1", &dest, insecure())
        .await
        .map_err(message)
        .unwrap();
    assert_eq!(
        get(&pushed, "digest").as_string().as_deref(),
        Some(digest.as_str())
    );

    let info = lw_wasm::inspect_remote(&dest, insecure())
        .await
        .map_err(message)
        .unwrap();
    assert_eq!(
        get(&info, "manifestDigest").as_string().as_deref(),
        Some(digest.as_str())
    );
    let layers = Array::from(&get(&info, "layers"));
    assert_eq!(layers.length(), 1);
    assert!(get(&layers.get(0), "createdBy")
        .as_string()
        .unwrap_or_default()
        .contains("COPY hello.txt"));
    assert_eq!(
        Array::from(&get(&info, "platforms"))
            .get(0)
            .as_string()
            .as_deref(),
        Some("linux/amd64")
    );

    lw_wasm::storage_clear();
    let pulled = lw_wasm::pull(&dest, insecure())
        .await
        .map_err(message)
        .unwrap();
    assert_eq!(
        get(&pulled, "digest").as_string().as_deref(),
        Some(digest.as_str())
    );
    let layer = get(&layers.get(0), "digest").as_string().unwrap();
    let bytes = lw_wasm::read_file(&dest, &layer, "hello.txt")
        .await
        .unwrap()
        .to_vec();
    assert_eq!(bytes, b"hello registry\n");
    // Pull a second time: nothing to fetch but the manifest, same answer.
    let again = lw_wasm::pull(&dest, insecure())
        .await
        .map_err(message)
        .unwrap();
    assert_eq!(
        get(&again, "digest").as_string(),
        get(&pulled, "digest").as_string()
    );
    console_log!("api registry: push, inspectRemote, pull round trip against {registry}: passed");
}

#[wasm_bindgen_test]
async fn two_platforms_are_pushed_with_their_index() {
    let Some(registry) = option_env!("LW_TEST_REGISTRY") else {
        console_log!(
            "api registry two platforms: NOT RUN (LW_TEST_REGISTRY unset at compile time)"
        );
        return;
    };
    let files: JsValue = Object::new().into();
    set(
        &files,
        "hello.txt",
        Uint8Array::from(&b"two platforms\n"[..]),
    );
    let o: JsValue = Object::new().into();
    set(
        &o,
        "dockerfile",
        "FROM scratch\nARG TARGETARCH\nLABEL arch=$TARGETARCH\nCOPY hello.txt /\n",
    );
    set(&o, "files", files);
    set(&o, "tags", Array::of1(&JsValue::from_str("lw/multi:1")));
    set(
        &o,
        "platforms",
        Array::of2(&"linux/amd64".into(), &"linux/arm64".into()),
    );
    let built = lw_wasm::build(o).await.map_err(message).unwrap();
    let index = get(&built, "indexDigest").as_string().unwrap();
    let dest = format!("{registry}/lw/multi:1");
    let pushed = lw_wasm::push("lw/multi:1", &dest, insecure())
        .await
        .map_err(message)
        .unwrap();
    assert_eq!(get(&pushed, "digest").as_string(), Some(index.clone()));

    // The registry lists both platforms under the tag; each one pulls back with its own config.
    let opts = insecure();
    set(&opts, "platform", "linux/arm64");
    let info = lw_wasm::inspect_remote(&dest, opts.clone())
        .await
        .map_err(message)
        .unwrap();
    let platforms: Vec<String> = Array::from(&get(&info, "platforms"))
        .iter()
        .filter_map(|v| v.as_string())
        .collect();
    assert_eq!(platforms, ["linux/amd64", "linux/arm64"]);
    let labels = get(&get(&get(&info, "config"), "config"), "Labels");
    assert_eq!(get(&labels, "arch").as_string().as_deref(), Some("arm64"));
    lw_wasm::storage_clear();
    let pulled = lw_wasm::pull(&dest, opts).await.map_err(message).unwrap();
    assert_eq!(
        get(&pulled, "digest").as_string(),
        get(&info, "manifestDigest").as_string()
    );
    console_log!("api registry two platforms: index {index} pushed to {registry}, linux/arm64 pulled back: passed");
}

#[wasm_bindgen_test]
async fn missing_cors_is_a_clear_error() {
    // In a browser: a registry that sends no CORS headers. In node (no CORS there): a port nobody listens on,
    // which fetch reports the same way (a TypeError).
    let target = if in_browser() {
        match option_env!("LW_TEST_REGISTRY_NOCORS") {
            Some(r) => r.to_string(),
            None => {
                console_log!("api registry missing CORS: NOT RUN (LW_TEST_REGISTRY_NOCORS unset)");
                return;
            }
        }
    } else {
        "127.0.0.1:9".to_string()
    };
    let e = lw_wasm::inspect_remote(&format!("{target}/lw/regtest:1"), insecure())
        .await
        .map(|_| ())
        .map_err(message);
    let e = e.expect_err("a registry without CORS must fail");
    assert!(
        e.contains("Access-Control-Allow-Origin") && e.contains(&target),
        "{e}"
    );
    console_log!(
        "api registry missing CORS ({}): passed: {e}",
        if in_browser() { "browser" } else { "node" }
    );
}
