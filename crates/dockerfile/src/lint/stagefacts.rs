//! What a stage amounts to in the image: whether its layers ship (the layer-size rules
//! only matter there) and whether it builds something with the compilers it keeps
//! (`LW014`).

use super::baseimg;
use super::context::Ctx;
use super::runfacts::{self, prog_sub};
use super::shellscan::{commands, Cmd};
use crate::model::Stage;

/// Packages that are compilers or build systems (`LW014`).
const BUILD_TOOLS: [&str; 14] = [
    "build-essential",
    "gcc",
    "g++",
    "gcc-c++",
    "make",
    "cmake",
    "clang",
    "autoconf",
    "automake",
    "libtool",
    "golang",
    "rustc",
    "cargo",
    "ninja-build",
];

/// Rules about what a RUN leaves in its layer (package lists, caches): they matter only
/// in the stages whose layers the image is made of.
pub(crate) const LAYER_SIZE_RULES: [&str; 4] = ["LW005", "LW006", "LW019", "LW024"];

/// The line spans of the stages whose layers do not reach the target image (a builder
/// stage that others only COPY --from or mount).
pub(crate) fn unshipped_spans(cx: &Ctx) -> Vec<(usize, usize)> {
    let model = cx.model;
    let mut shipped = vec![false; model.stages.len()];
    let mut cur = model.stages.get(model.target);
    while let Some(s) = cur.filter(|s| !shipped[s.index]) {
        shipped[s.index] = true;
        cur = baseimg::parent(cx, s);
    }
    let starts: Vec<usize> = model
        .stages
        .iter()
        .map(|s| cx.df.children[s.from.node].start_line)
        .collect();
    (0..starts.len())
        .filter(|&i| !shipped[i])
        .map(|i| (starts[i], starts.get(i + 1).map_or(usize::MAX, |n| n - 1)))
        .collect()
}

/// Whether a command builds something (`make`, `go build`, `./configure` ...).
fn builds(c: &Cmd) -> bool {
    let (p, s) = prog_sub(c);
    matches!(
        p,
        "make" | "cmake" | "ninja" | "gcc" | "g++" | "cc" | "c++" | "configure" | "mvn" | "gradle"
    ) || matches!(
        (p, s),
        ("go", "build" | "install")
            | ("cargo", "build" | "install")
            | ("dotnet", "build" | "publish")
            | ("npm" | "yarn" | "pnpm", "run" | "build")
    ) || (p.starts_with("python") && c.has_arg(|a| a == "setup.py"))
}

/// LW014: compilers kept in a final stage that also builds something there. A stage that
/// installs them without building anything is a toolchain or development image (golang,
/// rust, buildpack-deps, dev containers): the tools are what it is for.
pub(crate) fn build_tools(cx: &mut Ctx, stage: &Stage) {
    let builds_here = stage
        .instructions
        .iter()
        .filter(|i| i.keyword == "run")
        .any(|i| commands(cx, &cx.df.children[i.node]).iter().any(builds));
    if !builds_here {
        return;
    }
    for ins in stage.instructions.iter().filter(|i| i.keyword == "run") {
        let node = &cx.df.children[ins.node];
        let cmds = commands(cx, node);
        for (k, c) in cmds.iter().enumerate() {
            let Some(inst) = runfacts::system_install(c) else {
                continue;
            };
            // Tools removed again in the same RUN never reach the layer.
            let kept = inst.packages.iter().find(|p| {
                BUILD_TOOLS.contains(p) && !runfacts::removed_later(&cmds, k, p, inst.virtual_name)
            });
            if let Some(tool) = kept {
                let msg = format!(
                    "Build tool '{tool}' is installed in the final stage; build in a separate stage and copy only the result"
                );
                cx.report("LW014", cx.node_range(node), msg, None);
                return;
            }
        }
    }
}
