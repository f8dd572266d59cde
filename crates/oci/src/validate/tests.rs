//! Unit tests for the validator: checks the image-spec corpus does not isolate, and the shape of the reports.

use super::*;
use serde_json::json;

const D1: &str = "sha256:c86f7763873b6c0aae22d963bab59b4f5debbed6685761b5951584f6efb0633b";
const D2: &str = "sha256:c57089565e894899735d458f0fd4bb17a0f1e0df8d72da392b85c9b35ee777cd";

fn reason(media_type: &str, doc: &str) -> String {
    match validate(media_type, doc.as_bytes()) {
        Err(Error::Invalid { reason, .. }) => reason,
        other => panic!("expected Invalid for {doc}, got {other:?}"),
    }
}

fn ok(media_type: &str, doc: &str) {
    if let Err(e) = validate(media_type, doc.as_bytes()) {
        panic!("expected {doc} to be valid: {e}");
    }
}

fn manifest_with_layer(layer: &str) -> String {
    format!(
        r#"{{"schemaVersion":2,"config":{{"mediaType":"{}","size":2,"digest":"{D1}"}},"layers":[{layer}]}}"#,
        media::OCI_CONFIG
    )
}

fn config_with(config: &str) -> String {
    format!(
        r#"{{"architecture":"amd64","os":"linux","config":{config},"rootfs":{{"type":"layers","diff_ids":[]}}}}"#
    )
}

#[test]
fn manifest_layer_with_negative_size() {
    let doc = manifest_with_layer(&format!(
        r#"{{"mediaType":"{}","size":-1,"digest":"{D2}"}}"#,
        media::OCI_LAYER_GZIP
    ));
    assert_eq!(
        reason(media::OCI_MANIFEST, &doc),
        "manifest: layers[0].size: -1 is negative"
    );
}

#[test]
fn index_manifest_size_may_be_negative() {
    // The index schema types manifests[].size as int64, not as a descriptor size.
    ok(
        media::OCI_INDEX,
        &format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{}","size":-1,"digest":"{D1}"}}]}}"#,
            media::OCI_MANIFEST
        ),
    );
}

#[test]
fn config_env_entries() {
    let r = reason(
        media::OCI_CONFIG,
        &config_with(r#"{"Env":["PATH=/bin", 7]}"#),
    );
    assert_eq!(
        r,
        "config: config.Env[1]: cannot decode a JSON number here: expected a string"
    );
    let r = reason(
        media::OCI_CONFIG,
        &config_with(r#"{"Env":["PATH=/bin", "=x"]}"#),
    );
    assert!(
        r.starts_with("config: config.Env[1]: \"=x\" does not match"),
        "{r}"
    );
    ok(
        media::OCI_CONFIG,
        &config_with(r#"{"Env":["A=", "B=c=d", "C\nD=e"]}"#),
    );
    // Go keeps the last Env it decoded (member names match case-insensitively); a later null empties it, while
    // the schema only sees the exact name "Env".
    ok(
        media::OCI_CONFIG,
        &config_with(r#"{"Env":["bad"],"env":null}"#),
    );
    assert!(reason(
        media::OCI_CONFIG,
        &config_with(r#"{"Env":["bad"],"Env":null}"#)
    )
    .contains("got null"));
    assert!(reason(
        media::OCI_CONFIG,
        &config_with(r#"{"Env":["A=b"],"env":["bad"]}"#)
    )
    .contains("env[0]"));
}

#[test]
fn config_env_slice_reuse_like_go() {
    // Go decodes each Env member into the same backing array; a null element keeps the slot's old string.
    // Later members are spelled differently so that only the typed step sees them (the schema is
    // case-sensitive and would see a null element in the last "Env").
    let cases = [
        (r#"{"Env":[null]}"#, false),
        (r#"{"Env":["A=b"],"env":[null]}"#, true),
        (r#"{"Env":["foo"],"env":[null]}"#, false),
        (
            r#"{"Env":["A=b","C=d"],"ENV":["x=y"],"env":[null,null]}"#,
            true,
        ),
        (r#"{"Env":["A=b"],"ENV":[],"env":[null]}"#, false),
        (r#"{"Env":["A=b"]},"CONFIG":{"env":[null]}"#, true),
        (
            r#"{"Env":["A=b"]},"CONFIG":{"Env":null},"Config":{"ENV":[null]}"#,
            false,
        ),
        (r#"{"Env":["A=b","foo"],"ENV":["x=y"]}"#, true),
        (r#"{"Env":["A=b"],"Env":[null]}"#, false), // the schema sees the null
    ];
    for (config, valid) in cases {
        let doc = config_with(config);
        assert_eq!(
            validate(media::OCI_CONFIG, doc.as_bytes()).is_ok(),
            valid,
            "{doc}"
        );
    }
    let r = reason(media::OCI_CONFIG, &config_with(r#"{"Env":[null]}"#));
    assert_eq!(r, "config: config.Env[0]: null (which Go decodes as \"\") does not match ^[^=]+=.*$ (want NAME=value)");
}

#[test]
fn config_shapes_without_other_faults() {
    let r = reason(
        media::OCI_CONFIG,
        &config_with(r#"{"Volumes":["/var/log"]}"#),
    );
    assert_eq!(
        r,
        "config: config.Volumes: cannot decode a JSON array here: expected an object"
    );
    let r = reason(
        media::OCI_CONFIG,
        &config_with(r#"{"ExposedPorts":{"80/tcp":"yes"}}"#),
    );
    assert_eq!(r, "config: config.ExposedPorts[\"80/tcp\"]: cannot decode a JSON string here: expected an object");
    ok(
        media::OCI_CONFIG,
        &config_with(
            r#"{"ExposedPorts":{"80/tcp":{}},"Volumes":{"/data":{"x":1}},"Labels":{"a":"b"}}"#,
        ),
    );
    let r = reason(media::OCI_CONFIG, &config_with(r#"{"ArgsEscaped":"true"}"#));
    assert_eq!(
        r,
        "config: config.ArgsEscaped: cannot decode a JSON string here: expected a boolean"
    );
    let r = reason(
        media::OCI_CONFIG,
        r#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layer","diff_ids":[]}}"#,
    );
    assert_eq!(r, "config: rootfs.type: must be \"layers\", got \"layer\"");
    let r = reason(
        media::OCI_CONFIG,
        r#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers"}}"#,
    );
    assert_eq!(r, "config: rootfs: missing required member \"diff_ids\"");
    let r = reason(
        media::OCI_CONFIG,
        r#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"history":[{"empty_layer":1}]}"#,
    );
    assert_eq!(
        r,
        "config: history[0].empty_layer: cannot decode a JSON number here: expected a boolean"
    );
}

#[test]
fn descriptor_digest_message() {
    assert_eq!(
        reason(media::OCI_DESCRIPTOR, r#"{"mediaType":"a/b","size":1}"#),
        "descriptor: missing required member \"digest\""
    );
    assert_eq!(
        reason(
            media::OCI_DESCRIPTOR,
            r#"{"mediaType":"a/b","size":1,"digest":null}"#
        ),
        "descriptor: digest: expected a string, got null"
    );
    let upper = D1.replace("c86f", "C86F");
    let doc = format!(
        r#"{{"mediaType":"{}","size":1,"digest":"{upper}"}}"#,
        media::OCI_LAYER_TAR
    );
    let r = reason(media::OCI_DESCRIPTOR, &doc);
    assert_eq!(r, format!("descriptor: digest: \"{upper}\" is not a valid digest: a sha256 digest must be lowercase hex"));
    // In a manifest only the schema pattern applies, as upstream.
    ok(
        media::OCI_MANIFEST,
        &manifest_with_layer(&format!(
            r#"{{"mediaType":"{}","size":1,"digest":"{upper}"}}"#,
            media::OCI_LAYER_TAR
        )),
    );
}

#[test]
fn typed_decode_is_case_insensitive_and_sees_duplicates() {
    let base = format!(
        r#""mediaType":"{}","size":1,"digest":"{D1}""#,
        media::OCI_LAYER_TAR
    );
    // Go stores "Size" in the size field, so a string there fails although the schema never sees it.
    let r = reason(media::OCI_DESCRIPTOR, &format!(r#"{{{base},"Size":"1"}}"#));
    assert_eq!(
        r,
        "descriptor: Size: cannot decode a JSON string here: expected an integer"
    );
    // A duplicate is decoded too, even though the schema only sees the last one.
    assert!(reason(media::OCI_DESCRIPTOR, &format!(r#"{{"size":"1",{base}}}"#)).contains("size"));
    // Unknown members are ignored by both steps.
    ok(
        media::OCI_DESCRIPTOR,
        &format!(r#"{{{base},"x-extra":{{"deep":[1,2,{{}}]}}}}"#),
    );
    // platform is not in the descriptor schema but is typed.
    let r = reason(
        media::OCI_DESCRIPTOR,
        &format!(r#"{{{base},"platform":{{"os":1}}}}"#),
    );
    assert_eq!(
        r,
        "descriptor: platform.os: cannot decode a JSON number here: expected a string"
    );
}

#[test]
fn nulls_pass_the_typed_step_but_not_the_schema() {
    let r = reason(
        media::OCI_DESCRIPTOR,
        &format!(r#"{{"mediaType":null,"size":1,"digest":"{D1}"}}"#),
    );
    assert_eq!(r, "descriptor: mediaType: expected a string, got null");
    ok(
        media::OCI_CONFIG,
        &config_with(r#"{"Cmd":null,"Entrypoint":null,"Volumes":null,"Labels":null}"#),
    );
    assert!(
        reason(media::OCI_CONFIG, &config_with(r#"{"ExposedPorts":null}"#))
            .contains("ExposedPorts")
    );
    assert!(reason(media::OCI_CONFIG, &config_with("null"))
        .starts_with("config: config: expected an object"));
}

#[test]
fn numbers_as_go_reads_them() {
    let d = |size: &str| {
        format!(
            r#"{{"mediaType":"{}","size":{size},"digest":"{D1}"}}"#,
            media::OCI_LAYER_TAR
        )
    };
    ok(media::OCI_DESCRIPTOR, &d("-0"));
    ok(media::OCI_DESCRIPTOR, &d("9223372036854775807"));
    for bad in ["1.0", "1e3", "9223372036854775808", "\"5\"", "true"] {
        reason(media::OCI_DESCRIPTOR, &d(bad));
    }
    let m = |v: &str| {
        manifest_with_layer(&format!(
            r#"{{"mediaType":"a/b","size":1,"digest":"{D2}"}}],"schemaVersion":{v},"x":[0"#
        ))
    };
    ok(media::OCI_MANIFEST, &m("2"));
    assert_eq!(
        reason(media::OCI_MANIFEST, &m("3")),
        "manifest: schemaVersion: must be 2, got 3"
    );
    assert!(reason(media::OCI_MANIFEST, &m("2.0")).contains("not an integer"));
}

#[test]
fn data_and_times() {
    let d = |data: &str| {
        format!(r#"{{"mediaType":"text/plain","size":1,"digest":"{D1}","data":{data}}}"#)
    };
    ok(media::OCI_DESCRIPTOR, &d(r#""YQ==""#));
    ok(media::OCI_DESCRIPTOR, &d(r#""YQ\n==""#));
    assert!(reason(media::OCI_DESCRIPTOR, &d(r#""YQ""#)).contains("not valid padded base64"));
    // Go decodes a byte array into []byte, but the schema wants a string.
    assert_eq!(
        reason(media::OCI_DESCRIPTOR, &d("[1,2]")),
        "descriptor: data: expected a string, got an array"
    );
    assert!(reason(media::OCI_DESCRIPTOR, &d("[1,256]")).contains("data[1]"));

    let c = |created: &str| {
        format!(
            r#"{{"created":{created},"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":[]}}}}"#
        )
    };
    ok(media::OCI_CONFIG, &c(r#""2015-10-31T22:22:56.015925234Z""#));
    assert_eq!(
        reason(media::OCI_CONFIG, &c("null")),
        "config: created: expected a string, got null"
    );
    assert!(
        reason(media::OCI_CONFIG, &c(r#""2015-10-31 22:22:56Z""#)).starts_with("config: created:")
    );
    assert!(
        reason(media::OCI_CONFIG, &c(r#""2015-10-31T22:22:56\u005a""#)).contains("raw literal")
    );
    assert!(reason(media::OCI_CONFIG, &c("12")).contains("expected an RFC 3339 time string"));
}

#[test]
fn urls_annotations_and_media_types() {
    let d =
        |extra: &str| format!(r#"{{"mediaType":"text/plain","size":1,"digest":"{D1}",{extra}}}"#);
    ok(
        media::OCI_DESCRIPTOR,
        &d(r#""urls":["https://example.com/blob","ftp://[::1]/x"]"#),
    );
    assert_eq!(
        reason(
            media::OCI_DESCRIPTOR,
            &d(r#""urls":["https://ok.example/","value"]"#)
        ),
        "descriptor: urls[1]: \"value\" is not an absolute URI: relative URL (no scheme)"
    );
    // Keys the schema's ".{1,}" does not match escape it; Go's map[string]string still wants strings or null.
    ok(
        media::OCI_DESCRIPTOR,
        &d(r#""annotations":{"org.example":"x","":null,"\n":null}"#),
    );
    assert!(
        reason(media::OCI_DESCRIPTOR, &d(r#""annotations":{"":5}"#)).contains("expected a string")
    );
    let r = reason(
        media::OCI_DESCRIPTOR,
        &d(r#""annotations":{"org.example":"x","org.opencontainers.image.title":null}"#),
    );
    assert_eq!(
        r,
        "descriptor: annotations[\"org.opencontainers.image.title\"]: expected a string, got null"
    );
    let r = reason(
        media::OCI_DESCRIPTOR,
        &d(r#""artifactType":"application/x/y""#),
    );
    assert!(
        r.starts_with("descriptor: artifactType: \"application/x/y\" is not a valid media type"),
        "{r}"
    );
}

#[test]
fn index_platform_and_layout() {
    let idx = |platform: &str| {
        format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"a/b","size":1,"digest":"{D1}","platform":{platform}}}]}}"#
        )
    };
    ok(
        media::OCI_INDEX,
        &idx(r#"{"architecture":"arm64","os":"linux","os.features":["x"],"variant":"v8"}"#),
    );
    assert_eq!(
        reason(media::OCI_INDEX, &idx(r#"{"architecture":"arm64"}"#)),
        "index: manifests[0].platform: missing required member \"os\""
    );
    assert_eq!(
        reason(media::OCI_INDEX, &idx(r#"{"architecture":"arm64","os":"linux","os.features":[1]}"#)),
        "index: manifests[0].platform[\"os.features\"][0]: cannot decode a JSON number here: expected a string"
    );
    ok(
        media::OCI_LAYOUT_HEADER,
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    );
    assert_eq!(
        reason(
            media::OCI_LAYOUT_HEADER,
            r#"{"imageLayoutVersion":"1.1.0"}"#
        ),
        "layout: imageLayoutVersion: must be \"1.0.0\", got \"1.1.0\""
    );
    assert_eq!(
        reason(media::OCI_LAYOUT_HEADER, "[]"),
        "layout: expected an object, got an array"
    );
}

#[test]
fn docker_media_types_and_unknown_ones() {
    let m = manifest_with_layer(&format!(
        r#"{{"mediaType":"{}","size":1,"digest":"{D2}"}}"#,
        media::DOCKER_LAYER_GZIP
    ));
    ok(media::DOCKER_MANIFEST, &m);
    assert!(reason(media::DOCKER_MANIFEST_LIST, r#"{"schemaVersion":2}"#).starts_with("index: "));
    assert!(reason(media::DOCKER_CONFIG, r#"{"os":"linux"}"#).starts_with("config: "));
    let err = validate(media::OCI_LAYER_GZIP, b"{}").unwrap_err();
    assert!(matches!(err, Error::Invalid { .. }), "{err:?}");
}

#[test]
fn json_errors_and_values() {
    match validate(media::OCI_CONFIG, b"invalid JSON") {
        Err(Error::Json { what, message }) => {
            assert_eq!(what, "config document");
            assert!(message.contains("line 1, column 1"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let v = json!({"schemaVersion": 2, "manifests": []});
    assert!(validate_value(media::OCI_INDEX, &v).is_ok());
    let v = json!({"schemaVersion": 2, "manifests": [{"mediaType": "", "size": 1, "digest": D1}]});
    let err = validate_value(media::OCI_INDEX, &v).unwrap_err();
    assert!(err.to_string().contains("manifests[0].mediaType"), "{err}");
    let v = json!({"schemaVersion": 2.0, "manifests": []});
    assert!(validate_value(media::OCI_INDEX, &v).is_err());
}

#[test]
fn hostile_input_does_not_panic() {
    // Go's limit is 10,000 levels, counting the outer object.
    let deep = format!("{}{}", "[".repeat(9_999), "]".repeat(9_999));
    let doc = format!(r#"{{"schemaVersion":2,"manifests":[],"x":{deep}}}"#);
    ok(media::OCI_INDEX, &doc);
    for bytes in [
        &b"\xff"[..],
        b"{\"a\":\"\xff\xfe\"}",
        b"{\"mediaType\":\"\\ud800\",\"size\":1,\"digest\":\"sha256:\"}",
        b"\"\\u",
        b"[",
        b"{\"config\":{\"Env\":[\"\\u0000=\"]}}",
    ] {
        for mt in [
            media::OCI_DESCRIPTOR,
            media::OCI_MANIFEST,
            media::OCI_INDEX,
            media::OCI_CONFIG,
            media::OCI_LAYOUT_HEADER,
        ] {
            let _ = validate(mt, bytes);
        }
    }
    let long = "x".repeat(500);
    let r = reason(
        media::OCI_DESCRIPTOR,
        &format!(r#"{{"mediaType":"{long}","size":1,"digest":"{D1}"}}"#),
    );
    assert!(r.len() < 300 && r.contains('…'), "{r}");
}

#[test]
fn paths_render() {
    let root = Path::Root;
    let a = root.key("layers");
    let b = a.index(3);
    let c = b.key("annotations");
    let d = c.key("org.example/x");
    assert_eq!(d.render(), "layers[3].annotations[\"org.example/x\"]");
    assert_eq!(root.key("os.version").render(), "[\"os.version\"]");
    assert_eq!(root.render(), "");
}

fn reason_as_docker(doc: &str) -> String {
    match validate_with(media::OCI_CONFIG, doc.as_bytes(), Nulls::AsDocker) {
        Err(Error::Invalid { reason, .. }) => reason,
        other => panic!("expected Invalid for {doc}, got {other:?}"),
    }
}

#[test]
fn docker_nulls_in_configs() {
    // What `docker import` writes (Docker 20.10), as the spec rejects it and as Docker reads it.
    let imported = config_with(
        r#"{"User":"","Env":null,"Cmd":null,"Image":"","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":null}"#,
    );
    assert_eq!(
        reason(media::OCI_CONFIG, &imported),
        "config: config.Env: expected an array, got null"
    );
    validate_with(media::OCI_CONFIG, imported.as_bytes(), Nulls::AsDocker).unwrap();
    for member in [
        "User",
        "WorkingDir",
        "StopSignal",
        "ExposedPorts",
        "Env",
        "ArgsEscaped",
        "Healthcheck",
        "Shell",
    ] {
        let doc = config_with(&format!(r#"{{"{member}":null}}"#));
        validate_with(media::OCI_CONFIG, doc.as_bytes(), Nulls::AsDocker)
            .unwrap_or_else(|e| panic!("{member}: null: {e}"));
    }
    let top = r#"{"architecture":"amd64","os":"linux","created":null,"author":null,"variant":null,"os.version":null,"os.features":null,"config":null,"history":null,"rootfs":{"type":"layers","diff_ids":[]}}"#;
    assert!(validate(media::OCI_CONFIG, top.as_bytes()).is_err());
    validate_with(media::OCI_CONFIG, top.as_bytes(), Nulls::AsDocker).unwrap();
    let history = r#"{"architecture":"amd64","os":"linux","history":[{"created":null,"author":null,"created_by":null,"comment":null,"empty_layer":null}],"rootfs":{"type":"layers","diff_ids":[]}}"#;
    validate_with(media::OCI_CONFIG, history.as_bytes(), Nulls::AsDocker).unwrap();
}

#[test]
fn docker_nulls_stay_out_of_the_platform_and_the_layers() {
    let with = |arch: &str, os: &str, rootfs: &str| {
        format!(r#"{{"architecture":{arch},"os":{os},"rootfs":{rootfs}}}"#)
    };
    let rootfs = r#"{"type":"layers","diff_ids":[]}"#;
    assert_eq!(
        reason_as_docker(&with("null", r#""linux""#, rootfs)),
        "config: architecture: expected a string, got null"
    );
    assert_eq!(
        reason_as_docker(&with(r#""amd64""#, "null", rootfs)),
        "config: os: expected a string, got null"
    );
    assert_eq!(
        reason_as_docker(&with(r#""amd64""#, r#""linux""#, "null")),
        "config: rootfs: expected an object, got null"
    );
    assert_eq!(
        reason_as_docker(&with(
            r#""amd64""#,
            r#""linux""#,
            r#"{"type":"layers","diff_ids":null}"#
        )),
        "config: rootfs.diff_ids: expected an array, got null"
    );
    assert_eq!(
        reason_as_docker(&with(
            r#""amd64""#,
            r#""linux""#,
            &format!(r#"{{"type":"layers","diff_ids":[null,"{D1}"]}}"#)
        )),
        "config: rootfs.diff_ids[0]: expected a string, got null"
    );
    // Env entries themselves are still checked.
    assert!(reason_as_docker(&config_with(r#"{"Env":["NOEQUALS"]}"#)).contains("Env[0]"));
    // Only configs change: a manifest is as strict as before.
    assert!(validate_with(
        media::OCI_MANIFEST,
        manifest_with_layer(&format!(r#"{{"mediaType":null,"size":1,"digest":"{D2}"}}"#))
            .as_bytes(),
        Nulls::AsDocker
    )
    .is_err());
}
