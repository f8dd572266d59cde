//! COPY layers compressed through the page's `compressMember` callback (what the JS API's Web Workers answer): the
//! image is byte-identical to compressing on this thread whatever order the answers come back in, and a wrong
//! answer or a rejecting callback fails the build with the cause instead of writing a corrupt layer.

#![cfg(target_arch = "wasm32")]

use js_sys::{Array, Function, Object, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_test::{console_log, wasm_bindgen_test};

fn get(v: &JsValue, k: &str) -> JsValue {
    Reflect::get(v, &JsValue::from_str(k)).unwrap()
}

fn set(o: &JsValue, k: &str, v: impl Into<JsValue>) {
    Reflect::set(o, &JsValue::from_str(k), &v.into()).unwrap();
}

/// Files enough for several gzip members: text, random bytes (stored blocks), and one file cut inside.
fn files() -> JsValue {
    let files: JsValue = Object::new().into();
    let mut x: u64 = 11;
    for i in 0..8 {
        let len = if i == 3 {
            5_000_000
        } else {
            400_000 + i * 37_000
        };
        let data: Vec<u8> = (0..len)
            .map(|j| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                if i % 2 == 0 || j % 7 == 0 {
                    b"copy layer members "[j % 19]
                } else {
                    (x >> 56) as u8
                }
            })
            .collect();
        set(&files, &format!("d/f{i}"), Uint8Array::from(&data[..]));
    }
    files
}

/// `compressMember` written in JS: each call waits the next of `delays` ms (so answers come back out of order),
/// records itself in `calls`, then answers with `gzip` (a Rust closure here; the JS API's workers call the same
/// `gzipMember` export).
fn compress_member(gzip: &Function, delays: &[u32], calls: &Array) -> Function {
    let d = Array::new();
    for v in delays {
        d.push(&JsValue::from(*v));
    }
    let make = Function::new_with_args(
        "gzip, delays, calls",
        "let n = 0;
         return async (bytes, level) => {
           const wait = delays[n++ % delays.length];
           calls.push(bytes.length);
           await new Promise((r) => setTimeout(r, wait));
           return gzip(bytes, level);
         };",
    );
    make.call3(&JsValue::NULL, gzip, &d, calls)
        .unwrap()
        .unchecked_into()
}

async fn build(compress: Option<&Function>) -> Result<JsValue, String> {
    let o: JsValue = Object::new().into();
    set(
        &o,
        "dockerfile",
        "FROM scratch\nCOPY d/ /data/\nCOPY d/f1 /one\n",
    );
    set(&o, "files", files());
    set(&o, "noCache", true);
    if let Some(f) = compress {
        set(&o, "compressMember", f.clone());
        set(&o, "compressConcurrency", 3);
    }
    lw_wasm::build(o)
        .await
        .map_err(|e| String::from(js_sys::Error::from(e).message()))
}

#[wasm_bindgen_test]
async fn members_compressed_by_the_callback_give_the_same_image() {
    let inline = build(None).await.unwrap();
    let gzip = Closure::<dyn FnMut(Uint8Array, u32) -> Result<Uint8Array, JsValue>>::new(
        |b: Uint8Array, level: u32| {
            lw_wasm::gzip_member(&b.to_vec(), level).map(|m| Uint8Array::from(&m[..]))
        },
    );
    let calls = Array::new();
    let f = compress_member(
        gzip.as_ref().unchecked_ref(),
        &[30, 0, 12, 3, 0, 21, 7],
        &calls,
    );
    let pooled = build(Some(&f)).await.unwrap();
    assert_eq!(
        get(&pooled, "manifestDigest").as_string(),
        get(&inline, "manifestDigest").as_string()
    );
    // Both COPY layers went through the callback, in several members.
    assert!(calls.length() >= 4, "{} members", calls.length());
    console_log!(
        "compressMember: {} members, manifest {}",
        calls.length(),
        get(&pooled, "manifestDigest").as_string().unwrap()
    );
    drop(gzip);
}

#[wasm_bindgen_test]
async fn a_wrong_answer_or_a_rejection_fails_the_build() {
    // Answers with the member of other bytes: a valid gzip member, but not of this input.
    let other = Closure::<dyn FnMut(Uint8Array, u32) -> Result<Uint8Array, JsValue>>::new(
        |_b: Uint8Array, level: u32| {
            lw_wasm::gzip_member(b"not the input", level).map(|m| Uint8Array::from(&m[..]))
        },
    );
    let calls = Array::new();
    let f = compress_member(other.as_ref().unchecked_ref(), &[0], &calls);
    let e = build(Some(&f)).await.unwrap_err();
    assert!(e.contains("not a gzip member of its input"), "{e}");

    let reject = Function::new_with_args(
        "",
        "return async () => { throw new Error('worker gone'); };",
    )
    .call0(&JsValue::NULL)
    .unwrap();
    let e = build(Some(reject.unchecked_ref())).await.unwrap_err();
    assert!(e.contains("compressMember failed: worker gone"), "{e}");
    drop(other);
}

#[wasm_bindgen_test]
fn gzip_member_is_the_layer_encoder() {
    let data = b"gzip member gzip member gzip member".repeat(100);
    let m = lw_wasm::gzip_member(&data, 6).unwrap();
    let mut out = Vec::new();
    lw_layer::deflate::gzip_member(&data, 6, &mut out).unwrap();
    assert_eq!(m, out);
    assert!(lw_wasm::gzip_member(&data, 0).is_err());
}

/// The step's cache key and whether it was a cache hit, from the build's events.
async fn copy_key(big: &[u8]) -> (String, bool) {
    let o: JsValue = Object::new().into();
    set(&o, "dockerfile", "FROM scratch\nCOPY big /big\n");
    let files: JsValue = Object::new().into();
    set(&files, "big", Uint8Array::from(big));
    set(&o, "files", files);
    let events = Array::new();
    let ev = events.clone();
    let cb = Closure::<dyn FnMut(JsValue)>::new(move |e: JsValue| {
        ev.push(&e);
    });
    set(&o, "onEvent", cb.as_ref().clone());
    lw_wasm::build(o).await.unwrap();
    drop(cb);
    let done = events
        .iter()
        .find(|e| {
            get(e, "type").as_string().as_deref() == Some("stepFinished")
                && get(e, "layer").is_string()
        })
        .expect("the COPY step's stepFinished event");
    (
        get(&done, "cacheKey").as_string().unwrap(),
        get(&done, "cached").as_bool().unwrap(),
    )
}

#[wasm_bindgen_test]
async fn context_digests_from_webcrypto_key_the_cache_by_content() {
    // Files this large are hashed by WebCrypto, not by the engine: equal content must hit, other content miss.
    let a = vec![b'a'; 300_000];
    let mut b = a.clone();
    b[150_000] = b'b';
    let (ka, _) = copy_key(&a).await;
    let (kb, cached_b) = copy_key(&b).await;
    assert_ne!(ka, kb);
    assert!(!cached_b);
    let (ka2, cached_a2) = copy_key(&a).await;
    assert_eq!(ka2, ka);
    assert!(cached_a2);
}
