//! Byte-identical output across targets: the fixture layer and image documents must hit the golden digests in wasm32
//! (node and headless Chromium, via wasm-bindgen-test) and natively (plain #[test]), from the same shared code.

use lw_wasm_tests::fixtures;

fn layer_case() -> String {
    let (outcome, problems) = fixtures::check_layer();
    let shown = outcome.map(|o| o.to_string()).unwrap_or_default();
    assert!(
        problems.is_empty(),
        "layer determinism: {} problem(s):\n  {}\ncomputed: {shown}",
        problems.len(),
        problems.join("\n  ")
    );
    format!("determinism layer: 1/1 passed ({shown})")
}

fn image_case() -> String {
    let (digests, problems) = fixtures::check_image();
    assert!(
        problems.is_empty(),
        "image documents: {} problem(s):\n  {}\ncomputed: {digests:?}",
        problems.len(),
        problems.join("\n  ")
    );
    let (config, manifest) = digests.expect("digests are present when there are no problems");
    format!("determinism image: 1/1 passed (config={config} manifest={manifest})")
}

#[cfg(target_arch = "wasm32")]
mod wasm {
    use wasm_bindgen_test::{console_log, wasm_bindgen_test};

    #[wasm_bindgen_test]
    fn gzip_layer_matches_golden() {
        console_log!("{}", super::layer_case());
    }

    #[wasm_bindgen_test]
    fn image_documents_match_golden() {
        console_log!("{}", super::image_case());
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod native {
    #[test]
    fn gzip_layer_matches_golden() {
        println!("{}", super::layer_case());
    }

    #[test]
    fn image_documents_match_golden() {
        println!("{}", super::image_case());
    }
}
