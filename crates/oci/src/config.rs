//! Image configuration documents (OCI, with Docker's extension fields), history and rootfs.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Digest;

/// An empty JSON object, the value type of `ExposedPorts` and `Volumes`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Empty {}

/// The image configuration document (`application/vnd.oci.image.config.v1+json` or Docker's).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ImageConfig {
    // Field order is the byte order we write: BuildKit's exporter writes the top-level keys sorted, and an image
    // ID equal to BuildKit's needs the same bytes.
    pub architecture: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// `null` reads as empty, as Docker reads it.
    #[serde(default, deserialize_with = "null_as_default")]
    pub config: ContainerConfig,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// `null` reads as empty, as Docker reads it.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub history: Vec<History>,
    pub os: String,
    #[serde(
        rename = "os.features",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_features: Option<Vec<String>>,
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    pub rootfs: RootFs,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

/// `null` as the type's default, the way Go's `encoding/json` leaves a field at its zero value. Configs are never
/// re-serialized from what this reads (their bytes are kept), so the missing `null` cannot change a digest.
fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// The execution parameters of a container started from the image.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ContainerConfig {
    #[serde(rename = "User", default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(
        rename = "ExposedPorts",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub exposed_ports: Option<BTreeMap<String, Empty>>,
    #[serde(rename = "Env", default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    #[serde(
        rename = "Entrypoint",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub entrypoint: Option<Vec<String>>,
    #[serde(rename = "Cmd", default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(rename = "Volumes", default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<BTreeMap<String, Empty>>,
    #[serde(
        rename = "WorkingDir",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub working_dir: Option<String>,
    #[serde(rename = "Labels", default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(
        rename = "StopSignal",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub stop_signal: Option<String>,
    #[serde(
        rename = "ArgsEscaped",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub args_escaped: Option<bool>,
    /// Docker extension.
    #[serde(
        rename = "Healthcheck",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub healthcheck: Option<HealthConfig>,
    /// Docker extension.
    #[serde(rename = "OnBuild", default, skip_serializing_if = "Option::is_none")]
    pub on_build: Option<Vec<String>>,
    /// Docker extension.
    #[serde(rename = "Shell", default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<Vec<String>>,
}

/// Docker's HEALTHCHECK settings; durations in nanoseconds as Docker stores them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct HealthConfig {
    #[serde(rename = "Test", default, skip_serializing_if = "Option::is_none")]
    pub test: Option<Vec<String>>,
    #[serde(rename = "Interval", default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<i64>,
    #[serde(rename = "Timeout", default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<i64>,
    #[serde(
        rename = "StartPeriod",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub start_period: Option<i64>,
    #[serde(
        rename = "StartInterval",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub start_interval: Option<i64>,
    #[serde(rename = "Retries", default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<i64>,
}

/// The layer list of an image by uncompressed digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub diff_ids: Vec<Digest>,
}

impl Default for RootFs {
    fn default() -> Self {
        RootFs {
            kind: "layers".to_string(),
            diff_ids: Vec::new(),
        }
    }
}

/// One history entry; `empty_layer` marks steps that made no layer.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct History {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "std::ops::Not::not",
        deserialize_with = "null_as_default"
    )]
    pub empty_layer: bool,
}

impl ImageConfig {
    /// Diff IDs paired with the history entries that made them (entries with `empty_layer` get `None`).
    pub fn layer_history(&self) -> Vec<(Option<&Digest>, &History)> {
        let mut ids = self.rootfs.diff_ids.iter();
        self.history
            .iter()
            .map(|h| (if h.empty_layer { None } else { ids.next() }, h))
            .collect()
    }
}

/// Format seconds since the Unix epoch as RFC 3339 UTC (`1970-01-01T00:00:00Z`), as Go's time.Time marshals it.
pub fn rfc3339_from_epoch(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nulls_read_as_docker_reads_them() {
        // `docker import`'s config (Docker 20.10), trimmed.
        let c: ImageConfig = serde_json::from_str(
            r#"{"architecture":"amd64","config":{"User":"","Env":null,"Cmd":null,"Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":null,"ExposedPorts":null},"history":[{"created":"2026-12-06T04:57:12Z","comment":"Imported from -","empty_layer":null}],"os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#,
        )
        .unwrap();
        assert_eq!(c.config.env, None);
        assert_eq!(c.config.cmd, None);
        assert_eq!(c.config.user.as_deref(), Some(""));
        assert_eq!(c.history.len(), 1);
        assert!(!c.history[0].empty_layer);
        let c: ImageConfig = serde_json::from_str(
            r#"{"architecture":"amd64","os":"linux","config":null,"history":null,"rootfs":{"type":"layers","diff_ids":[]}}"#,
        )
        .unwrap();
        assert_eq!(c.config, ContainerConfig::default());
        assert!(c.history.is_empty());
        // The layer list is never defaulted.
        assert!(serde_json::from_str::<ImageConfig>(
            r#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":null}}"#
        )
        .is_err());
    }

    #[test]
    fn rfc3339() {
        assert_eq!(rfc3339_from_epoch(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_from_epoch(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339_from_epoch(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339_from_epoch(-1), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn docker_fields_round_trip_in_fixed_order() {
        let mut cfg = ImageConfig {
            architecture: "amd64".into(),
            os: "linux".into(),
            created: Some(rfc3339_from_epoch(0)),
            ..Default::default()
        };
        cfg.config.cmd = Some(vec!["sh".into()]);
        cfg.config.healthcheck = Some(HealthConfig {
            test: Some(vec!["CMD-SHELL".into(), "true".into()]),
            interval: Some(30_000_000_000),
            ..Default::default()
        });
        cfg.config.shell = Some(vec!["/bin/bash".into(), "-c".into()]);
        cfg.config.on_build = Some(vec!["RUN echo hi".into()]);
        cfg.config.stop_signal = Some("SIGTERM".into());
        cfg.config.exposed_ports = Some([("80/tcp".to_string(), Empty {})].into());
        cfg.history.push(History {
            created_by: Some("CMD [\"sh\"]".into()),
            empty_layer: true,
            ..Default::default()
        });
        let bytes = crate::to_canonical_json(&cfg);
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert_eq!(
            text,
            r#"{"architecture":"amd64","config":{"ExposedPorts":{"80/tcp":{}},"Cmd":["sh"],"StopSignal":"SIGTERM","Healthcheck":{"Test":["CMD-SHELL","true"],"Interval":30000000000},"OnBuild":["RUN echo hi"],"Shell":["/bin/bash","-c"]},"created":"1970-01-01T00:00:00Z","history":[{"created_by":"CMD [\"sh\"]","empty_layer":true}],"os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#
        );
        let back: ImageConfig = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(back, cfg);
        assert_eq!(crate::to_canonical_json(&back), bytes);
    }
}
