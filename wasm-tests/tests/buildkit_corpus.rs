//! The BuildKit corpus in the tab: every case a tab build can take (see `lw_wasm_tests::buildkit`) is built with
//! lw-wasm's `build` and its image config compared with the one BuildKit wrote. Equal configs mean equal diff IDs,
//! so equal layer contents; the count of configs whose digest (the image ID) equals BuildKit's is printed too.

#![cfg(target_arch = "wasm32")]

use js_sys::{Function, Object, Reflect, Uint8Array};
use lw_wasm_tests::buildkit::CASES;
use serde_json::Value;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_test::{console_log, wasm_bindgen_test};

fn set(o: &JsValue, k: &str, v: impl Into<JsValue>) {
    Reflect::set(o, &JsValue::from_str(k), &v.into()).unwrap();
}

fn get(v: &JsValue, k: &str) -> JsValue {
    Reflect::get(v, &JsValue::from_str(k)).unwrap()
}

/// What the page's glue does once it has loaded `pkg/lw_archive.js` (`build()` loads it for an ADD of a bzip2 or
/// xz file): lw-archive's decoder, here linked into this test binary, handed to the main module as a JS function.
fn install_archive_decoder() {
    let f = Closure::<dyn Fn(String, Uint8Array) -> Result<Uint8Array, JsValue>>::new(
        |codec: String, data: Uint8Array| {
            let c = lw_archive::Codec::from_name(&codec)
                .ok_or_else(|| JsValue::from_str(&format!("no codec {codec}")))?;
            let out = lw_archive::decode(c, &data.to_vec())
                .map_err(|e| JsValue::from_str(&e.to_string()))?;
            Ok(Uint8Array::from(&out[..]))
        },
    );
    lw_wasm::use_archive_decoder(f.as_ref().unchecked_ref::<Function>().clone());
    f.forget();
}

/// What the page's glue does once it has loaded `pkg/lw_lint.js` (`build()` loads it for a Dockerfile with
/// `# check=error=true`): lw-lint's build checks, here linked into this test binary, handed to the main module.
fn install_build_checks() {
    let f = Closure::<dyn Fn(String, JsValue) -> Result<JsValue, JsValue>>::new(
        |dockerfile: String, model: JsValue| lw_lint::web::build_checks(&dockerfile, model),
    );
    lw_wasm::use_build_checks(f.as_ref().unchecked_ref::<Function>().clone());
    f.forget();
}

#[wasm_bindgen_test]
async fn tab_builds_equal_buildkit() {
    install_archive_decoder();
    install_build_checks();
    assert!(lw_wasm::has_build_checks());
    let (mut equal, mut same_id) = (0, 0);
    let mut problems = Vec::new();
    for c in CASES {
        let want: Value = serde_json::from_str(c.expected).unwrap();
        let o: JsValue = Object::new().into();
        set(&o, "dockerfile", c.dockerfile);
        let files: JsValue = Object::new().into();
        for (p, b) in c.files {
            set(&files, p, Uint8Array::from(*b));
        }
        set(&o, "files", files);
        let args: JsValue = Object::new().into();
        for (k, v) in c.build_args {
            set(&args, k, *v);
        }
        set(&o, "buildArgs", args);
        if let Some(t) = c.target {
            set(&o, "target", t);
        }
        set(&o, "noCache", true);
        let got = lw_wasm::build(o).await;
        match (got, want["error"].as_str()) {
            (Err(_), Some(_)) => equal += 1,
            (Err(e), None) => problems.push(format!(
                "{}: BuildKit built it, the tab failed: {}",
                c.name,
                js_sys::Error::from(e).message()
            )),
            (Ok(_), Some(e)) => problems.push(format!(
                "{}: BuildKit failed ({e}), the tab built it",
                c.name
            )),
            (Ok(r), None) => {
                let bytes = Uint8Array::from(get(&r, "configBytes")).to_vec();
                let got: Value = serde_json::from_slice(&bytes).unwrap();
                // The deliberate divergence (README): `[]` for a null rootfs.diff_ids, no null created/history.
                let mut w = want["config"].clone();
                if w["rootfs"]["diff_ids"].is_null() {
                    w["rootfs"]["diff_ids"] = Value::Array(vec![]);
                }
                for k in ["created", "history"] {
                    if w.get(k).is_some_and(Value::is_null) {
                        w.as_object_mut().unwrap().remove(k);
                    }
                }
                if got == w {
                    equal += 1;
                } else {
                    problems.push(format!(
                        "{}: config differs:\n  BuildKit {w}\n  tab      {got}",
                        c.name
                    ));
                }
                if get(&r, "configDigest").as_string().as_deref() == want["config_digest"].as_str()
                {
                    same_id += 1;
                } else {
                    console_log!("{}: not BuildKit's config digest", c.name);
                }
            }
        }
    }
    console_log!(
        "buildkit corpus (tab): {equal}/{} equal, identical config digest: {same_id}",
        CASES.len()
    );
    assert!(
        CASES.len() >= 20,
        "only {} corpus cases reached the tab",
        CASES.len()
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
