//! Build events as data: the CLI, the browser and the tests all consume the same stream.

use serde::Serialize;

/// One thing that happened during a build. Timing is the host's business (the core has no clock).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum BuildEvent {
    /// A stage begins; `base` is what it builds on.
    #[serde(rename_all = "camelCase")]
    StageStarted {
        stage: usize,
        name: Option<String>,
        base: String,
    },
    /// A stage nothing needs is skipped, as BuildKit does.
    #[serde(rename_all = "camelCase")]
    StageSkipped { stage: usize, name: Option<String> },
    /// A step begins: `[stage/step] INSTRUCTION` at `line`.
    #[serde(rename_all = "camelCase")]
    StepStarted {
        stage: usize,
        step: usize,
        total: usize,
        line: usize,
        text: String,
    },
    /// A step ends; `cached` when its result came from the cache.
    #[serde(rename_all = "camelCase")]
    StepFinished {
        stage: usize,
        step: usize,
        line: usize,
        cached: bool,
        /// Digest of the layer made, if the step made one.
        layer: Option<String>,
        /// Compressed size of that layer.
        size: u64,
        cache_key: String,
    },
    /// Output of a RUN step.
    #[serde(rename_all = "camelCase")]
    Output {
        stage: usize,
        step: usize,
        data: String,
    },
    /// Something worth telling that does not stop the build.
    #[serde(rename_all = "camelCase")]
    Warning { line: usize, message: String },
    /// The image is written.
    #[serde(rename_all = "camelCase")]
    Finished {
        manifest_digest: String,
        config_digest: String,
    },
}
