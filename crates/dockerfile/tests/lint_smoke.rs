//! Smoke test: a file that breaks many rules at once lints without panicking and the
//! findings serialize to JSON and SARIF.

use lw_dockerfile::lint::{format_text, lint, to_sarif, LintOptions};

const SRC: &str = "# check=experimental=all
ARG TAG
From alpine:${TAG} as Builder
RUN apt-get update && apt-get install curl | grep x
run cd /x && sudo make
CMD echo hi
CMD [\"echo\", \"$HOME\"]
ENV DEPS curl git
EXPOSE 80:80 80/TcP 99999
MAINTAINER me <a@b.c>
WORKDIR app
COPY $foo .
FROM Builder AS final
ENV AWS_SECRET_KEY=x
ADD . /app
";

#[test]
fn smoke() {
    let f = lint(SRC.as_bytes(), &LintOptions::default()).unwrap();
    print!("{}", format_text(&f, "Dockerfile"));
    assert!(f.len() > 15);
    let json = serde_json::to_string(&f).unwrap();
    assert!(json.contains("\"rule\":\"StageNameCasing\""));
    let sarif = to_sarif(&f, "Dockerfile");
    assert_eq!(sarif["version"], "2.1.0");
    assert_eq!(
        sarif["runs"][0]["results"].as_array().unwrap().len(),
        f.len()
    );
}
