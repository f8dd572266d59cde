//! Docker 20.10 (Debian's docker.io, a private daemon) as the reference for `save` and `load`: images we build
//! load and run in docker with the same image IDs, configs and history; images docker built, imported and saved
//! (plain, gzip, bzip2, xz, zstd) load into our store with docker's IDs, and `load` prints what `docker load`
//! prints.

use crate::common;
use lw_test_kit::docker;

use std::path::Path;
use std::process::Command;

use common::{lw_ok, make_busybox_image, run_ok};
use docker::Dockerd;
use layerwright::store::Store;
use serde_json::Value;

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("{e}: {s}"))
}

/// Our image ID (config digest) for `name`, from `inspect`.
fn our_id(root: &Path, name: &str) -> String {
    let v = json(&lw_ok(root, &["inspect", name]));
    v[0]["Id"].as_str().unwrap().to_string()
}

/// Our history's `CreatedBy`, newest first (as `docker history` lists it).
fn our_history(root: &Path, name: &str) -> Vec<String> {
    let v = json(&lw_ok(root, &["history", "--no-trunc", "--json", name]));
    v.as_array()
        .unwrap()
        .iter()
        .map(|h| h["CreatedBy"].as_str().unwrap_or("").to_string())
        .collect()
}

fn docker_history(d: &Dockerd, name: &str) -> Vec<String> {
    d.docker_ok(&["history", "--no-trunc", "--format", "{{.CreatedBy}}", name])
        .lines()
        .map(String::from)
        .collect()
}

fn docker_id(d: &Dockerd, name: &str) -> String {
    d.docker_ok(&["image", "inspect", "--format", "{{.Id}}", name])
        .trim()
        .to_string()
}

/// A build context holding Debian's static busybox and `dockerfile`.
fn context(dir: &Path, dockerfile: &str) -> std::path::PathBuf {
    let ctx = dir.join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::copy(common::BUSYBOX, ctx.join("busybox")).unwrap();
    std::fs::write(ctx.join("Dockerfile"), dockerfile).unwrap();
    ctx
}

#[test]
fn images_we_save_load_and_run_in_docker() {
    lw_test_kit::require!("/bin/busybox");
    let Some(d) = Dockerd::shared() else {
        return;
    };
    lw_test_kit::require!("runc");
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("store");
    let store = Store::open(&root).unwrap();
    make_busybox_image(&store, "lwtest/bb:1", &[common::busybox_files(&[])]);
    let ctx = context(tmp.path(), "");
    let builds = [
        (
            "lwtest/scratch:1",
            "FROM scratch\nCOPY busybox /bin/busybox\nENV PATH=/bin GREETING=hello\n\
             CMD [\"/bin/busybox\", \"sh\", \"-c\", \"echo $GREETING from scratch\"]\n",
            "hello from scratch\n",
        ),
        (
            "lwtest/run:1",
            "FROM lwtest/bb:1\nRUN echo made by RUN > /made.txt && ls /bin > /bin.txt\n\
             WORKDIR /srv\nCMD [\"sh\", \"-c\", \"cat /made.txt; pwd; cat /bin.txt\"]\n",
            // busybox and its applet links as RUN listed them.
            "made by RUN\n/srv\nbusybox\ncat\necho\nls\nsh\ntrue\n",
        ),
        (
            "lwtest/multi:1",
            "FROM lwtest/bb:1 AS make\nRUN echo from stage one > /m.txt\n\
             FROM scratch\nCOPY --from=make /bin/busybox /bin/busybox\nCOPY --from=make /m.txt /m.txt\n\
             ENTRYPOINT [\"/bin/busybox\"]\nCMD [\"cat\", \"/m.txt\"]\n",
            "from stage one\n",
        ),
    ];
    for (name, dockerfile, _) in &builds {
        std::fs::write(ctx.join("Dockerfile"), dockerfile).unwrap();
        lw_ok(
            &root,
            &[
                "build",
                "-q",
                "--network",
                "none",
                "-t",
                name,
                ctx.to_str().unwrap(),
            ],
        );
    }
    let tar = tmp.path().join("ours.tar");
    let names: Vec<&str> = builds.iter().map(|b| b.0).collect();
    let mut args = vec!["save", "-o", tar.to_str().unwrap()];
    args.extend(&names);
    lw_ok(&root, &args);

    let out = d.docker_ok(&["load", "-i", tar.to_str().unwrap()]);
    let mut loaded: Vec<&str> = out.lines().collect();
    loaded.sort();
    let mut want: Vec<String> = names.iter().map(|n| format!("Loaded image: {n}")).collect();
    want.sort();
    assert_eq!(loaded, want, "docker load printed:\n{out}");

    for (name, _, output) in &builds {
        assert_eq!(docker_id(&d, name), our_id(&root, name), "{name}: image ID");
        assert_eq!(
            docker_history(&d, name),
            our_history(&root, name),
            "{name}: history"
        );
        let inspect = json(&d.docker_ok(&["image", "inspect", name]))[0].clone();
        let ours = json(&lw_ok(&root, &["inspect", name]))[0].clone();
        for key in ["Env", "Cmd", "Entrypoint"] {
            assert_eq!(
                inspect["Config"][key], ours["Config"][key],
                "{name}: Config.{key}"
            );
        }
        // Docker shows an unset string field as Go's zero value, "".
        let wd = match &ours["Config"]["WorkingDir"] {
            Value::Null => Value::String(String::new()),
            v => v.clone(),
        };
        assert_eq!(
            inspect["Config"]["WorkingDir"], wd,
            "{name}: Config.WorkingDir"
        );
        assert_eq!(
            inspect["RootFS"]["Layers"], ours["RootFS"]["Layers"],
            "{name}: diff IDs"
        );
        let ran = d.docker_ok(&["run", "--rm", "--network", "none", name]);
        assert_eq!(ran, *output, "{name}: container output");
    }
    for name in &names {
        d.docker_ok(&["rmi", name]);
    }
}

/// Compress `src` with a command-line tool (independent of our decoders) into `dst`.
fn compress(tool: &str, src: &Path, dst: &Path) {
    let out = std::fs::File::create(dst).unwrap();
    let st = Command::new(tool)
        .arg("-c")
        .arg(src)
        .stdout(out)
        .status()
        .unwrap_or_else(|e| panic!("{tool}: {e}"));
    assert!(st.success(), "{tool} -c {} failed", src.display());
}

#[test]
fn docker_built_and_imported_images_load_with_their_ids() {
    lw_test_kit::require!("bzip2", "xz", "zstd");
    let Some(d) = Dockerd::shared() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let ctx = context(
        tmp.path(),
        "FROM scratch\nCOPY busybox /bin/busybox\n\
         RUN [\"/bin/busybox\", \"sh\", \"-c\", \"/bin/busybox echo built by docker > /hello\"]\n\
         ENV FOO=bar\nEXPOSE 8080\nLABEL org.example.k=v\nCMD [\"/bin/busybox\", \"cat\", \"/hello\"]\n",
    );
    let built = "dk/built:1";
    let o = d
        .cmd()
        .env("DOCKER_BUILDKIT", "0")
        .args(["build", "--network", "none", "-q", "-t", built])
        .arg(&ctx)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "docker build: {}\n{}",
        String::from_utf8_lossy(&o.stderr),
        d.log()
    );
    // `docker import` writes a config full of nulls ("Env": null, "Cmd": null, ...).
    let layer = tmp.path().join("rootfs.tar");
    run_ok(
        Command::new("tar")
            .arg("-C")
            .arg(&ctx)
            .arg("-cf")
            .arg(&layer)
            .arg("busybox"),
    );
    let imported = "dk/imported:1";
    d.docker_ok(&["import", layer.to_str().unwrap(), imported]);

    let tagged = tmp.path().join("tagged.tar");
    d.docker_ok(&["save", "-o", tagged.to_str().unwrap(), built, imported]);
    // Saved by ID: an archive without names.
    let imported_id = docker_id(&d, imported);
    let untagged = tmp.path().join("untagged.tar");
    d.docker_ok(&["save", "-o", untagged.to_str().unwrap(), &imported_id]);

    // The same archive compressed. Docker 20.10 loads the gzip, bzip2 and xz ones (zstd only from Docker 23 on).
    let mut archives = vec![("plain", tagged.clone())];
    for (tool, ext) in [
        ("gzip", "gz"),
        ("bzip2", "bz2"),
        ("xz", "xz"),
        ("zstd", "zst"),
    ] {
        let p = tmp.path().join(format!("tagged.tar.{ext}"));
        compress(tool, &tagged, &p);
        archives.push((tool, p));
    }

    // The order of the lines is manifest.json's, which docker save picks anew each time: compare with docker
    // loading the same archive (for zstd, the same archive uncompressed).
    let docker_plain = d.docker_ok(&["load", "-i", tagged.to_str().unwrap()]);
    for (kind, archive) in &archives {
        let root = tmp.path().join(format!("store-{kind}"));
        let ours = lw_ok(&root, &["load", "-i", archive.to_str().unwrap()]);
        let docker_says = if *kind == "zstd" {
            docker_plain.clone()
        } else {
            d.docker_ok(&["load", "-i", archive.to_str().unwrap()])
        };
        assert_eq!(ours, docker_says, "{kind}: what load prints");
        for name in [built, imported] {
            assert_eq!(
                our_id(&root, name),
                docker_id(&d, name),
                "{kind}: {name}: image ID"
            );
            assert_eq!(
                our_history(&root, name),
                docker_history(&d, name),
                "{kind}: {name}: history"
            );
        }
        // `images` shows docker's IDs too.
        let images = json(&lw_ok(&root, &["images", "--json"]));
        let mut ids: Vec<&str> = images
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["ID"].as_str().unwrap())
            .collect();
        ids.sort();
        let mut want = vec![docker_id(&d, built), imported_id.clone()];
        want.sort();
        assert_eq!(ids, want, "{kind}: images");
    }

    // From stdin too (no file to sniff or seek): the xz archive.
    let (_, xz_archive) = archives.iter().find(|(k, _)| *k == "xz").unwrap();
    let root = tmp.path().join("store-stdin");
    let o = Command::new(env!("CARGO_BIN_EXE_layerwright"))
        .arg("--root")
        .arg(&root)
        .arg("load")
        .stdin(std::fs::File::open(xz_archive).unwrap())
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "load < xz: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&o.stdout), docker_plain);
    assert_eq!(our_id(&root, imported), imported_id);

    // What load prints, line for line as docker prints it, for a tagged and an untagged archive (docker loads
    // what it already has and prints the same lines).
    let root = tmp.path().join("store-print");
    for archive in [&tagged, &untagged] {
        let docker_says = d.docker_ok(&["load", "-i", archive.to_str().unwrap()]);
        let we_say = lw_ok(&root, &["load", "-i", archive.to_str().unwrap()]);
        assert_eq!(we_say, docker_says, "{}", archive.display());
    }
    assert!(lw_ok(&root, &["load", "-i", untagged.to_str().unwrap()])
        .starts_with(&format!("Loaded image ID: {imported_id}")),);

    // The image docker built runs from our store too: save it back and docker runs what we wrote.
    let back = tmp.path().join("back.tar");
    lw_ok(&root, &["tag", built, "lwtest/rebuilt:1"]);
    lw_ok(
        &root,
        &["save", "-o", back.to_str().unwrap(), "lwtest/rebuilt:1"],
    );
    d.docker_ok(&["load", "-i", back.to_str().unwrap()]);
    assert_eq!(docker_id(&d, "lwtest/rebuilt:1"), docker_id(&d, built));
    assert_eq!(
        d.docker_ok(&["run", "--rm", "--network", "none", "lwtest/rebuilt:1"]),
        "built by docker\n"
    );
    for name in [built, imported, "lwtest/rebuilt:1"] {
        d.docker_ok(&["rmi", name]);
    }
}

#[test]
fn a_daemon_that_cannot_start_says_why() {
    if let Some(why) = docker::unavailable() {
        return lw_test_kit::cannot_run(&why);
    }
    let Err(e) = Dockerd::start(&["--no-such-flag"]) else {
        panic!("dockerd started with an unknown flag");
    };
    assert!(e.contains("dockerd (overlay2) exited"), "{e}");
    assert!(e.contains("and with vfs"), "{e}");
    // The daemon's own words are in the message.
    assert!(e.contains("unknown flag: --no-such-flag"), "{e}");
}
