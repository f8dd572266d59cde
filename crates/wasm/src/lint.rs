//! The build checks (`# check=error=true`) through the tab's lint module: `useBuildChecks(checks)` installs the
//! page's `checks(dockerfile, model) => [{rule, line}]` (the glue in `js/index.js` backs it with `pkg/lw_lint.js`,
//! lw-lint in a module of its own, loaded when the editor first lints or a build needs its checks) as lw-engine's
//! build checker, so the main module links none of the linter. `buildNeedsChecks` tells the glue when to load it.

use std::cell::RefCell;
use std::collections::BTreeMap;

use js_sys::Function;
use lw_dockerfile::lint::Violation;
use lw_dockerfile::model::ModelOptions;
use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;

thread_local! {
    static CHECKS: RefCell<Option<Function>> = const { RefCell::new(None) };
}

/// The build's model options as the lint module reads them (lw-lint's `ModelJs`).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ModelJs<'a> {
    build_args: &'a BTreeMap<String, String>,
    target: Option<&'a str>,
    target_platform: Option<String>,
    build_platform: Option<String>,
}

/// One violation as the lint module answers (lw-lint's `ViolationJs`).
#[derive(Deserialize)]
struct ViolationJs {
    rule: String,
    line: usize,
}

/// The violations by the page's function; `Err` names why it gave none (the build fails with it).
fn js_violations(src: &[u8], model: &ModelOptions) -> Result<Vec<Violation>, String> {
    let f = CHECKS
        .with(|f| f.borrow().clone())
        .ok_or("the lint module is not loaded")?;
    let m = ModelJs {
        build_args: &model.build_args,
        target: model.target.as_deref(),
        target_platform: model.target_platform.as_ref().map(|p| p.to_string()),
        build_platform: model.build_platform.as_ref().map(|p| p.to_string()),
    };
    let m = crate::js::to_js(&m).map_err(|e| crate::js::message(&e))?;
    let src = JsValue::from(String::from_utf8_lossy(src).as_ref());
    let answer = f
        .call2(&JsValue::NULL, &src, &m)
        .map_err(|e| format!("the lint module threw: {}", crate::js::message(&e)))?;
    let list: Vec<ViolationJs> = serde_wasm_bindgen::from_value(answer)
        .map_err(|e| format!("the lint module's answer: {e}"))?;
    Ok(list
        .into_iter()
        .map(|v| Violation {
            rule: v.rule,
            line: v.line,
        })
        .collect())
}

/// Install `checks` (lw-lint's `buildChecks`) as the build checks of every build this instance runs. A second call
/// replaces the function.
#[wasm_bindgen(js_name = useBuildChecks)]
pub fn use_build_checks(checks: Function) {
    CHECKS.with(|f| *f.borrow_mut() = Some(checks));
    lw_engine::engine::set_build_checker(lw_engine::engine::BuildChecker {
        violations: js_violations,
    });
}

/// Whether builds can run their checks (`build()` loads the lint module first when one needs them and they cannot).
#[wasm_bindgen(js_name = hasBuildChecks)]
pub fn has_build_checks() -> bool {
    lw_engine::engine::has_build_checker()
}

/// Whether building `dockerfile` runs the build checks (`# check=error=true`), by the engine's own directive parse.
#[wasm_bindgen(js_name = buildNeedsChecks)]
pub fn build_needs_checks(dockerfile: &str) -> bool {
    lw_engine::engine::needs_build_checks(dockerfile.as_bytes())
}
