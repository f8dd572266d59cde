//! RUN in the browser build through the caller's executor callback: the request it gets, reading parent layers
//! through `io.readBlob`, output streamed while the Promise is pending, the returned layer verified and stored,
//! the step cached, and failures (exit code, wrong diffId, a rejecting callback) reported with the line.

#![cfg(target_arch = "wasm32")]

use js_sys::{Array, Function, Object, Reflect, Uint8Array};
use lw_layer::tar::WriteOptions;
use lw_layer::{Entry, LayerWriter};
use lw_oci::media::Compression;
use sha2::{Digest as _, Sha256};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_test::{console_log, wasm_bindgen_test};

fn get(v: &JsValue, k: &str) -> JsValue {
    Reflect::get(v, &JsValue::from_str(k)).unwrap()
}

fn set(o: &JsValue, k: &str, v: impl Into<JsValue>) {
    Reflect::set(o, &JsValue::from_str(k), &v.into()).unwrap();
}

/// A gzip layer holding `/out` = `text`, as an executor would return it: (bytes, diffId).
fn layer(text: &[u8]) -> (Vec<u8>, String) {
    let mut lw = LayerWriter::new(Vec::new(), Compression::Gzip, WriteOptions::default()).unwrap();
    let mut e = Entry::file("out", 0o644, text.len() as u64);
    e.mtime = 0;
    lw.tar().append_bytes(&e, text).unwrap();
    let (bytes, info) = lw.finish().unwrap();
    (bytes, info.diff_id.to_string())
}

/// An executor written in JS, as a page would write one: it records each request, reads the parent layer,
/// reports output before and after a timer (so the answer really is asynchronous), then answers `answer`.
fn executor(calls: &Array, answer: &JsValue) -> Function {
    let make = Function::new_with_args(
        "calls, answer",
        "return async (req, io) => {
           calls.push(req);
           const parent = req.layers.length ? io.readBlob(req.layers[0].digest) : new Uint8Array();
           io.output('parent bytes ' + parent.length + '\\n');
           await new Promise((r) => setTimeout(r, 20));
           io.output(new TextEncoder().encode('hello from RUN\\n'));
           if (answer.reject) throw new Error(answer.reject);
           return answer;
         };",
    );
    make.call2(&JsValue::NULL, calls, answer)
        .unwrap()
        .unchecked_into()
}

async fn build(df: &str, exec: &Function, events: &Array) -> Result<JsValue, String> {
    let o: JsValue = Object::new().into();
    set(&o, "dockerfile", df);
    let files: JsValue = Object::new().into();
    set(&files, "base.txt", "base layer\n");
    set(&o, "files", files);
    set(&o, "executor", exec.clone());
    let ev = events.clone();
    let cb = Closure::<dyn FnMut(JsValue)>::new(move |e: JsValue| {
        ev.push(&e);
    });
    set(&o, "onEvent", cb.as_ref().clone());
    let r = lw_wasm::build(o)
        .await
        .map_err(|e| String::from(js_sys::Error::from(e).message()));
    drop(cb);
    r
}

fn answer(bytes: &[u8], diff_id: &str) -> JsValue {
    let l: JsValue = Object::new().into();
    set(
        &l,
        "mediaType",
        "application/vnd.oci.image.layer.v1.tar+gzip",
    );
    set(&l, "diffId", diff_id);
    set(&l, "bytes", Uint8Array::from(bytes));
    let a: JsValue = Object::new().into();
    set(&a, "exitCode", 0);
    set(&a, "layer", l);
    a
}

#[wasm_bindgen_test]
async fn run_through_the_executor_callback() {
    let df = "FROM scratch\nCOPY base.txt /\nRUN echo hi > /out\n";
    let (bytes, diff_id) = layer(b"hi\n");
    let calls = Array::new();
    let events = Array::new();
    let exec = executor(&calls, &answer(&bytes, &diff_id));
    let r = build(df, &exec, &events).await.unwrap();

    // The request: argv through the default SHELL, the stage's layers, the line.
    assert_eq!(calls.length(), 1);
    let req = calls.get(0);
    let args: Vec<String> = Array::from(&get(&req, "args"))
        .iter()
        .map(|a| a.as_string().unwrap())
        .collect();
    assert_eq!(args, ["/bin/sh", "-c", "echo hi > /out"]);
    assert_eq!(get(&req, "location").as_string().unwrap(), "Dockerfile:3");
    let layers = Array::from(&get(&r, "layers"));
    assert_eq!(layers.length(), 2);
    let req_layers = Array::from(&get(&req, "layers"));
    assert_eq!(req_layers.length(), 1);
    assert_eq!(
        get(&req_layers.get(0), "digest").as_string(),
        get(&layers.get(0), "digest").as_string()
    );

    // The layer the executor made is in the image under its real digest.
    let want = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
    let run_layer = layers.get(1);
    assert_eq!(get(&run_layer, "digest").as_string().unwrap(), want);
    assert_eq!(get(&run_layer, "diffId").as_string().unwrap(), diff_id);
    assert!(get(&run_layer, "createdBy")
        .as_string()
        .unwrap()
        .contains("echo hi > /out"));

    // Output reached the build's events, both chunks, in order; the parent layer was readable.
    let out: String = events
        .iter()
        .filter(|e| get(e, "type").as_string().as_deref() == Some("output"))
        .map(|e| get(&e, "data").as_string().unwrap())
        .collect();
    let parent_len = get(&req_layers.get(0), "size").as_f64().unwrap();
    assert_eq!(
        out,
        format!("parent bytes {parent_len}\nhello from RUN\n"),
        "{out}"
    );

    // Same build again: the RUN step is a cache hit and the executor is not called.
    let events2 = Array::new();
    let r2 = build(df, &exec, &events2).await.unwrap();
    assert_eq!(calls.length(), 1, "the cached RUN must not run again");
    assert_eq!(
        get(&r2, "manifestDigest").as_string(),
        get(&r, "manifestDigest").as_string()
    );
    assert_eq!(
        get(&Array::from(&get(&r2, "layers")).get(1), "cached").as_bool(),
        Some(true)
    );
    console_log!("api run: executor callback, output, cache: passed");
}

#[wasm_bindgen_test]
async fn executor_failures_name_the_line() {
    let (bytes, diff_id) = layer(b"x\n");
    let events = Array::new();

    // A non-zero exit code fails the build with the executor's message, or one naming the line.
    let fail: JsValue = Object::new().into();
    set(&fail, "exitCode", 3);
    set(&fail, "layer", JsValue::NULL);
    let e = build(
        "FROM scratch\nCOPY base.txt /\nRUN false\n",
        &executor(&Array::new(), &fail),
        &events,
    )
    .await
    .unwrap_err();
    assert!(
        e.contains("Dockerfile:3") && e.contains("exit code: 3"),
        "{e}"
    );

    // A layer whose diffId does not match its content is refused.
    let wrong = answer(
        &bytes,
        "sha256:0000000000000000000000000000000000000000000000000000000000000000",
    );
    let e = build(
        "FROM scratch\nCOPY base.txt /\nRUN wrong-diff\n",
        &executor(&Array::new(), &wrong),
        &events,
    )
    .await
    .unwrap_err();
    assert!(e.contains("Dockerfile:3") && e.contains("diffId"), "{e}");
    assert!(e.contains(&diff_id), "names the real diffId: {e}");

    // A callback that throws: its message, with the line.
    let rej: JsValue = Object::new().into();
    set(&rej, "reject", "runner unreachable");
    let e = build(
        "FROM scratch\nCOPY base.txt /\nRUN unreachable\n",
        &executor(&Array::new(), &rej),
        &events,
    )
    .await
    .unwrap_err();
    assert!(
        e.contains("Dockerfile:3") && e.contains("runner unreachable"),
        "{e}"
    );

    // Not a function: a clear option error.
    let o: JsValue = Object::new().into();
    set(&o, "dockerfile", "FROM scratch\n");
    set(&o, "executor", "http://127.0.0.1:1/");
    let e = lw_wasm::build(o).await.unwrap_err();
    let msg = String::from(js_sys::Error::from(e).message());
    assert!(msg.contains("executor must be a function"), "{msg}");
    console_log!("api run: executor failures: passed");
}
