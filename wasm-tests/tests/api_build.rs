//! lw-wasm's `build`, the tab store, `exportTarball`/`loadTarball`, layer views, and the same-digest goldens shared
//! with native-cli/tests/wasm_golden.rs (wasm32 only: node and Chromium).

#![cfg(target_arch = "wasm32")]

use js_sys::{Array, Function, Object, Reflect, Uint8Array};
use lw_wasm_tests::golden;
use sha2::{Digest as _, Sha256};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::{console_log, wasm_bindgen_test};

fn get(v: &JsValue, k: &str) -> JsValue {
    Reflect::get(v, &JsValue::from_str(k)).unwrap()
}

fn set(o: &JsValue, k: &str, v: impl Into<JsValue>) {
    Reflect::set(o, &JsValue::from_str(k), &v.into()).unwrap();
}

fn files(list: &[(&str, &[u8])]) -> (String, JsValue) {
    let o: JsValue = Object::new().into();
    let mut df = String::new();
    for (p, b) in list {
        if *p == "Dockerfile" {
            df = String::from_utf8(b.to_vec()).unwrap();
        }
        set(&o, p, Uint8Array::from(*b));
    }
    (df, o)
}

async fn build(
    df: &str,
    files: &JsValue,
    tags: &[&str],
    extra: impl FnOnce(&JsValue),
) -> Result<JsValue, String> {
    let o: JsValue = Object::new().into();
    set(&o, "dockerfile", df);
    set(&o, "files", files.clone());
    let t: Array = tags.iter().map(|t| JsValue::from_str(t)).collect();
    set(&o, "tags", t);
    extra(&o);
    lw_wasm::build(o)
        .await
        .map_err(|e| js_sys::Error::from(e).message().into())
}

async fn blob_bytes(b: &web_sys::Blob) -> Vec<u8> {
    Uint8Array::new(&JsFuture::from(b.array_buffer()).await.unwrap()).to_vec()
}

#[wasm_bindgen_test]
async fn multi_stage_build_caches_and_exports() {
    let (df, ctx) = files(&[
        (
            "Dockerfile",
            b"FROM scratch AS a\nCOPY x /x\nFROM scratch\nCOPY --from=a /x /y\nCOPY z /z\n",
        ),
        ("x", b"ex"),
        ("z", b"zed"),
    ]);
    let events = Array::new();
    let ev = events.clone();
    let cb = Closure::<dyn FnMut(JsValue)>::new(move |e: JsValue| {
        ev.push(&e);
    });
    let f: Function = cb.as_ref().clone().unchecked_into();
    let r1 = build(&df, &ctx, &["demo/multi:1"], |o| {
        set(o, "onEvent", f.clone())
    })
    .await
    .unwrap();
    let layers = Array::from(&get(&r1, "layers"));
    assert_eq!(layers.length(), 2);
    assert!(layers
        .iter()
        .all(|l| get(&l, "cached").as_bool() == Some(false)));
    assert!(events
        .iter()
        .any(|e| get(&e, "type").as_string().as_deref() == Some("finished")));
    assert_eq!(
        get(&r1, "ref").as_string().as_deref(),
        Some("docker.io/demo/multi:1")
    );
    // Same build again: every step from the session cache, same digest.
    let r2 = build(&df, &ctx, &["demo/multi:1"], |_| {}).await.unwrap();
    let layers2 = Array::from(&get(&r2, "layers"));
    assert!(
        layers2
            .iter()
            .all(|l| get(&l, "cached").as_bool() == Some(true)),
        "second build not cached"
    );
    assert_eq!(
        get(&r1, "manifestDigest").as_string(),
        get(&r2, "manifestDigest").as_string()
    );
    // noCache rebuilds.
    let r3 = build(&df, &ctx, &["demo/multi:1"], |o| set(o, "noCache", true))
        .await
        .unwrap();
    assert!(Array::from(&get(&r3, "layers"))
        .iter()
        .all(|l| get(&l, "cached").as_bool() == Some(false)));

    // Layer views.
    let layer = get(&layers.get(0), "digest").as_string().unwrap();
    let entries = Array::from(
        &lw_wasm::layer_entries("demo/multi:1", &layer)
            .await
            .unwrap(),
    );
    assert!(
        entries
            .iter()
            .any(|e| get(&e, "path").as_string().as_deref() == Some("y")),
        "no y in layer"
    );
    let y = lw_wasm::read_file("demo/multi:1", &layer, "/y")
        .await
        .unwrap()
        .to_vec();
    assert_eq!(y, b"ex");

    // Export, clear, load back.
    let tar = lw_wasm::export_tarball("demo/multi:1", JsValue::UNDEFINED)
        .await
        .unwrap();
    let bytes = blob_bytes(&tar).await;
    assert!(bytes.len() > 2048 && bytes.len() % 512 == 0);
    let imgs = Array::from(&lw_wasm::images().unwrap());
    assert!(imgs
        .iter()
        .any(|i| get(&i, "name").as_string().as_deref() == Some("docker.io/demo/multi:1")));
    lw_wasm::storage_clear();
    assert_eq!(Array::from(&lw_wasm::images().unwrap()).length(), 0);
    let loaded = lw_wasm::load_tarball(tar.into()).await.unwrap();
    let first = Array::from(&get(&loaded, "images")).get(0);
    assert_eq!(
        get(&first, "digest").as_string(),
        get(&r1, "manifestDigest").as_string()
    );
    let again = blob_bytes(
        &lw_wasm::export_tarball("demo/multi:1", JsValue::UNDEFINED)
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(again, bytes, "export after load differs");
    let usage = lw_wasm::storage_usage().unwrap();
    assert_eq!(get(&usage, "images").as_f64(), Some(1.0));
    console_log!("api build: multi-stage, cache, export/load: passed");
}

#[wasm_bindgen_test]
async fn dockerignore_and_errors() {
    let (df, ctx) = files(&[
        ("Dockerfile", b"FROM scratch\nCOPY . /c/\n"),
        (".dockerignore", b"*.tmp\n"),
        ("keep", b"k"),
        ("drop.tmp", b"d"),
    ]);
    let r = build(&df, &ctx, &["demo/ignore"], |_| {}).await.unwrap();
    let layer = get(&Array::from(&get(&r, "layers")).get(0), "digest")
        .as_string()
        .unwrap();
    let paths: Vec<String> =
        Array::from(&lw_wasm::layer_entries("demo/ignore", &layer).await.unwrap())
            .iter()
            .map(|e| get(&e, "path").as_string().unwrap())
            .collect();
    assert!(paths.iter().any(|p| p == "c/keep"), "{paths:?}");
    assert!(!paths.iter().any(|p| p.ends_with("drop.tmp")), "{paths:?}");

    // RUN without an executor fails naming the line.
    let (df, ctx) = files(&[
        ("Dockerfile", b"FROM scratch\nCOPY keep /\nRUN echo hi\n"),
        ("keep", b"k"),
    ]);
    let e = build(&df, &ctx, &[], |_| {}).await.unwrap_err();
    assert!(e.contains("Dockerfile:3"), "{e}");
    // A missing file names its line too.
    let (df, ctx) = files(&[("Dockerfile", b"FROM scratch\nCOPY nope /\n")]);
    let e = build(&df, &ctx, &[], |_| {}).await.unwrap_err();
    assert!(e.contains(":2"), "{e}");
    console_log!("api build: .dockerignore and errors: passed");
}

/// What the page's glue does once it has loaded `pkg/lw_zstd.js`: hand lw-zstd's frame encoder (here linked into
/// this test binary: the same C, compiled for wasm32) to the main module as a JS function.
fn install_zstd_encoder() {
    let f = Closure::<dyn Fn(Uint8Array, u32) -> Result<Uint8Array, JsValue>>::new(
        |data: Uint8Array, level: u32| {
            let mut out = Vec::new();
            lw_zstd::frame(&data.to_vec(), level, &mut out)
                .map_err(|e| JsValue::from_str(&e.to_string()))?;
            Ok(Uint8Array::from(&out[..]))
        },
    );
    let func: Function = f.as_ref().unchecked_ref::<Function>().clone();
    lw_wasm::use_zstd_encoder(func, lw_zstd::version()).unwrap();
    f.forget();
    assert!(lw_wasm::has_zstd_encoder());
}

#[wasm_bindgen_test]
async fn same_digest_as_the_cli() {
    install_zstd_encoder();
    let mut failures = Vec::new();
    for c in golden::CASES {
        let (df, ctx) = files(c.files);
        let args: JsValue = Object::new().into();
        for (k, v) in c.build_args {
            set(&args, k, *v);
        }
        let r = build(&df, &ctx, &[c.tag], |o| {
            set(o, "buildArgs", args.clone());
            set(o, "platform", golden::PLATFORM);
            if let Some(comp) = c.compression {
                set(o, "compression", comp);
            }
        })
        .await
        .unwrap();
        let digest = get(&r, "manifestDigest").as_string().unwrap();
        let tar = blob_bytes(
            &lw_wasm::export_tarball(c.tag, JsValue::UNDEFINED)
                .await
                .unwrap(),
        )
        .await;
        let sha = hex::encode(Sha256::digest(&tar));
        console_log!("golden {}: manifest {digest} tarball sha256 {sha}", c.name);
        if digest != c.manifest_digest || sha != c.tarball_sha256 {
            let text = |k: &str| {
                String::from_utf8_lossy(&Uint8Array::new(&get(&r, k)).to_vec()).into_owned()
            };
            console_log!(
                "  config: {}\n  manifest: {}",
                text("configBytes"),
                text("manifestBytes")
            );
            failures.push(format!("{}: manifest {digest} tarball {sha}", c.name));
        }
    }
    console_log!(
        "same-digest goldens: {}/{} passed",
        golden::CASES.len() - failures.len(),
        golden::CASES.len()
    );
    assert!(failures.is_empty(), "golden mismatches: {failures:#?}");
}
