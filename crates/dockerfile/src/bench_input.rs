//! A deterministic generator of large, realistic Dockerfiles for the frontend benchmarks
//! (native `benches/frontend.rs` and the wasm32 `wasm-tests/tests/bench_frontend.rs`).
//!
//! It lives in the crate (hidden from the docs) so both benchmarks time the same input.

use std::fmt::Write;

/// A generated Dockerfile and what parsing it must yield.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BenchInput {
    pub text: String,
    /// Physical lines (each ends with `\n`).
    pub lines: usize,
    /// `FROM` stages.
    pub stages: usize,
    /// Instructions (parser nodes), global `ARG`s included.
    pub instructions: usize,
}

/// Lines of one stage body: far below any `lines` a benchmark asks for.
const STAGE_BODY: usize = 96;

/// Generates a Dockerfile of exactly `lines` lines (at least 64): global ARGs, then stages
/// with ARG/ENV, WORKDIR, LABEL, RUN with continuations and `--mount`, COPY (also
/// `--from` an earlier stage), RUN and COPY heredocs, EXPOSE and USER.
pub fn dockerfile(lines: usize) -> BenchInput {
    let lines = lines.max(64);
    let mut g = Gen::default();
    g.line("# syntax=docker/dockerfile:1", 0);
    g.line("# A generated multi-stage build for benchmarks.", 0);
    g.line("ARG BASE_IMAGE=debian", 1);
    g.line("ARG BASE_TAG=bookworm-slim", 1);
    g.line("ARG VERSION=1.0.0", 1);
    g.blank();
    let mut stage = 0;
    // Whole stages while they fit, leaving room for the last one's header.
    while g.lines + STAGE_BODY + 16 <= lines {
        g.stage(stage, STAGE_BODY);
        stage += 1;
    }
    let rest = lines - g.lines;
    g.stage(stage, rest);
    BenchInput {
        lines: g.lines,
        stages: stage + 1,
        instructions: g.instructions,
        text: g.text,
    }
}

#[derive(Default)]
struct Gen {
    text: String,
    lines: usize,
    instructions: usize,
}

impl Gen {
    /// One physical line that starts `new_instructions` instructions.
    fn line(&mut self, s: &str, new_instructions: usize) {
        self.text.push_str(s);
        self.text.push('\n');
        self.lines += 1;
        self.instructions += new_instructions;
    }

    fn blank(&mut self) {
        self.line("", 0);
    }

    /// One stage of exactly `budget` lines (at least 14).
    fn stage(&mut self, i: usize, budget: usize) {
        let end = self.lines + budget;
        let mut s = String::new();
        let from = if i % 3 == 2 {
            format!("FROM build{} AS build{i}", i - 1)
        } else {
            format!("FROM ${{BASE_IMAGE}}:${{BASE_TAG}} AS build{i}")
        };
        self.line(&from, 1);
        self.line("ARG VERSION", 1);
        self.line("ARG JOBS=4", 1);
        let _ = write!(s, "ENV APP_HOME=/opt/app{i} \\");
        self.line(&s, 1);
        self.line("    PATH=/opt/app/bin:$PATH \\", 0);
        self.line("    APP_VERSION=${VERSION}", 0);
        self.line("WORKDIR ${APP_HOME}", 1);
        s.clear();
        let _ = write!(
            s,
            "LABEL org.opencontainers.image.title=\"stage {i}\" version=\"${{VERSION}}\""
        );
        self.line(&s, 1);
        self.line("COPY --chown=1000:1000 src/ ${APP_HOME}/src/", 1);
        if i > 0 {
            s.clear();
            let _ = write!(
                s,
                "COPY --from=build{} /opt/app{}/bin/ /usr/local/bin/",
                i - 1,
                i - 1
            );
            self.line(&s, 1);
        }
        // Blocks of 26 lines while they fit, keeping 3 lines for the tail.
        let mut k = 0;
        while self.lines + 26 + 3 <= end {
            self.block(i, k);
            k += 1;
        }
        // Fill up to the tail with single-line RUNs.
        while self.lines + 3 < end {
            s.clear();
            let _ = write!(
                s,
                "RUN echo \"filler {i}.{}\" >> /var/log/build.log",
                self.lines
            );
            self.line(&s, 1);
        }
        s.clear();
        let _ = write!(s, "EXPOSE {}", 8000 + i % 1000);
        self.line(&s, 1);
        self.line("USER app", 1);
        self.blank();
    }

    /// 26 lines, 6 instructions.
    fn block(&mut self, i: usize, k: usize) {
        let mut s = String::new();
        let _ = write!(s, "# step {k} of stage {i}");
        self.line(&s, 0);
        self.line("RUN apt-get update \\", 1);
        self.line(" && apt-get install -y --no-install-recommends \\", 0);
        self.line("      ca-certificates \\", 0);
        self.line("      curl \\", 0);
        self.line("      git \\", 0);
        self.line(" && rm -rf /var/lib/apt/lists/*", 0);
        s.clear();
        let _ = write!(s, "ENV STEP_{k}=value{k} STEP_DIR=${{APP_HOME}}/step{k}");
        self.line(&s, 1);
        self.line("RUN <<EOF", 1);
        self.line("set -eux", 0);
        self.line("make -j\"${JOBS}\" -C src", 0);
        self.line("make install PREFIX=\"${APP_HOME}\"", 0);
        self.line("EOF", 0);
        s.clear();
        let _ = write!(s, "COPY <<EOT /etc/app{i}-{k}.conf");
        self.line(&s, 1);
        self.line("name=app", 0);
        self.line("version=${APP_VERSION}", 0);
        self.line("EOT", 0);
        self.line("RUN --mount=type=cache,target=/root/.cache \\", 1);
        self.line("    ./configure --prefix=${APP_HOME} \\", 0);
        self.line("      --enable-shared && \\", 0);
        self.line("    make -j${JOBS} && \\", 0);
        self.line("    make check", 0);
        s.clear();
        let _ = write!(s, "COPY --chmod=0755 scripts/step{k}.sh ${{STEP_DIR}}/");
        self.line(&s, 1);
        self.line("ARG EXTRA_FLAGS=\"-O2 -g\"", 1);
        self.line("RUN echo \"${EXTRA_FLAGS}\" > /tmp/flags", 1);
        self.blank();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_line_count_and_parses_to_the_promised_shape() {
        for n in [64, 500, 5000] {
            let b = dockerfile(n);
            assert_eq!(b.lines, n);
            assert_eq!(b.text.lines().count(), n);
            let df = crate::parser::parse(b.text.as_bytes()).unwrap();
            assert_eq!(df.children.len(), b.instructions, "n={n}");
            let model = crate::model::Model::build(&df, &Default::default()).unwrap();
            assert_eq!(model.stages.len(), b.stages);
            assert!(model
                .stages
                .iter()
                .all(|s| s.instructions.iter().all(|i| i.error.is_none())));
        }
    }
}
