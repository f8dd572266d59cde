//! lw-wasm's `parse`, and the lint module's `lint` and `applyFixes` (lw-lint, `pkg/lw_lint.js` in the tab), through
//! their JS-facing exports (wasm32 only: node and Chromium).

#![cfg(target_arch = "wasm32")]

use wasm_bindgen::JsValue;
use wasm_bindgen_test::{console_log, wasm_bindgen_test};

fn get(v: &JsValue, k: &str) -> JsValue {
    js_sys::Reflect::get(v, &JsValue::from_str(k)).unwrap()
}

fn len(v: &JsValue) -> u32 {
    js_sys::Array::from(v).length()
}

#[wasm_bindgen_test]
fn parse_gives_instructions_stages_scopes_and_dump() {
    let r = lw_wasm::parse("ARG BASE=scratch\nFROM ${BASE} AS build\nARG V=1\nENV X=$V\nCOPY a /b\nFROM build\nCMD [\"x\"]\n")
        .unwrap();
    assert_eq!(len(&get(&r, "instructions")), 7);
    let first = js_sys::Array::from(&get(&r, "instructions")).get(0);
    assert_eq!(get(&first, "keyword").as_string().as_deref(), Some("arg"));
    assert_eq!(get(&first, "line").as_f64(), Some(1.0));
    let stages = js_sys::Array::from(&get(&r, "stages"));
    assert_eq!(stages.length(), 2);
    assert_eq!(
        get(&stages.get(0), "base").as_string().as_deref(),
        Some("scratch")
    );
    assert_eq!(
        get(&stages.get(1), "base").as_string().as_deref(),
        Some("build")
    );
    let dump = get(&r, "dump").as_string().unwrap();
    assert!(
        dump.contains("(from \"${BASE}\" \"AS\" \"build\")"),
        "{dump}"
    );
    // The scope at COPY (line 5) holds V=1 (arg) and X=1 (env).
    let scopes = js_sys::Array::from(&get(&r, "scopes"));
    let at_copy = scopes
        .iter()
        .find(|s| get(s, "line").as_f64() == Some(5.0))
        .unwrap();
    let vars = js_sys::Array::from(&get(&at_copy, "vars"));
    let x = vars
        .iter()
        .find(|v| get(v, "name").as_string().as_deref() == Some("X"))
        .unwrap();
    assert_eq!(get(&x, "value").as_string().as_deref(), Some("1"));
    assert_eq!(get(&x, "kind").as_string().as_deref(), Some("env"));
    console_log!("api parse: 1/1 passed");
}

#[wasm_bindgen_test]
fn parse_errors_are_diagnostics_with_line() {
    let r = lw_wasm::parse("FROM scratch\nCOPY <<EOF /x\n").unwrap();
    let d = js_sys::Array::from(&get(&r, "diagnostics"));
    assert!(d.length() >= 1, "no diagnostic for an unterminated heredoc");
    assert_eq!(get(&d.get(0), "line").as_f64(), Some(2.0));
    assert_eq!(
        get(&d.get(0), "severity").as_string().as_deref(),
        Some("error")
    );
    // Instruction-level errors are diagnostics too.
    let r = lw_wasm::parse("FROM scratch\nENV\n").unwrap();
    assert!(
        js_sys::Array::from(&get(&r, "diagnostics")).length() >= 1,
        "no diagnostic for ENV without a value"
    );
}

#[wasm_bindgen_test]
fn lint_finds_and_fixes() {
    let src = "from scratch as Build\nMAINTAINER me\nCOPY a /b\n";
    let f = lw_lint::web::lint(src, JsValue::UNDEFINED).unwrap();
    let list = js_sys::Array::from(&f);
    let rules: Vec<String> = list
        .iter()
        .map(|x| get(&x, "rule").as_string().unwrap())
        .collect();
    assert!(
        rules.iter().any(|r| r == "MaintainerDeprecated"),
        "{rules:?}"
    );
    let first = list.get(0);
    let range = get(&first, "range");
    assert!(get(&get(&range, "start"), "line").as_f64().unwrap() >= 1.0);
    let fixed = lw_lint::web::apply_fixes(src, f).unwrap();
    assert_ne!(fixed, src, "no fix applied");
    let again = js_sys::Array::from(&lw_lint::web::lint(&fixed, JsValue::UNDEFINED).unwrap());
    assert!(
        again.length() < list.length(),
        "fixing did not reduce the findings: {fixed}"
    );
    console_log!(
        "api lint: {} findings, {} after fixes",
        list.length(),
        again.length()
    );
}
