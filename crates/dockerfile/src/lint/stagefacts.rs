//! What a stage amounts to in the image: whether its layers ship (the layer-size rules
//! only matter there) and whether it builds something with the compilers it keeps
//! (`LW014`).

use super::baseimg;
use super::context::Ctx;
use super::runfacts::{self, prog_sub};
use super::shellscan::{commands, Cmd};
use crate::model::{BaseRef, Stage};

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

/// The line spans of the stages whose layers do not reach an image: builder stages that
/// other stages only COPY --from or mount. The target and every stage no other stage
/// uses (an alternative `--target` such as `dev`, unless it is named as a builder) ship,
/// with the stages they are built on.
pub(crate) fn unshipped_spans(cx: &Ctx) -> Vec<(usize, usize)> {
    let model = cx.model;
    let mut used = vec![false; model.stages.len()];
    for s in &model.stages {
        for d in &s.deps {
            if let BaseRef::Stage(i) = d.target {
                if let Some(u) = used.get_mut(i) {
                    *u = true;
                }
            }
        }
    }
    let mut shipped = vec![false; model.stages.len()];
    // An unused stage named as a builder (`build`, `builder`, `compile`) is a leftover,
    // never built by default; one named `dev`, `dev-envs`, `test` is a target of its own.
    let builder_name = |s: &Stage| {
        s.name
            .as_deref()
            .is_some_and(|n| n.contains("build") || n.contains("compile"))
    };
    let tops = model
        .stages
        .iter()
        .filter(|s| s.index == model.target || (!used[s.index] && !builder_name(s)));
    for top in tops {
        let mut cur = Some(top);
        while let Some(s) = cur.filter(|s| !shipped[s.index]) {
            shipped[s.index] = true;
            cur = baseimg::parent(cx, s);
        }
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

/// Official toolchain images: they ship a C compiler (and their language's) already.
const TOOLCHAIN_IMAGES: [&str; 4] = ["golang", "rust", "gcc", "buildpack-deps"];

/// Whether the stage is built on a toolchain image (any registry's mirror of one, as
/// Cloud Build's `.../docker-3p-trusted/golang`): a compiler installed on top of it is
/// not what puts build tools into the image, and such an image is usually a build step.
fn on_toolchain_base(cx: &Ctx, stage: &Stage) -> bool {
    let Some(image) = baseimg::root_image(cx, stage) else {
        return false;
    };
    let name = image.split('@').next().unwrap_or("");
    let name = name.rsplit('/').next().unwrap_or("");
    let name = name.split(':').next().unwrap_or("");
    TOOLCHAIN_IMAGES.contains(&name)
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
    if !builds_here || on_toolchain_base(cx, stage) {
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
