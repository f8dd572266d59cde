//! The instructions that change only the image config and the history: EXPOSE (ports split and checked as
//! BuildKit does), HEALTHCHECK (with Go's `%+v` history text) and VOLUME.

use std::collections::BTreeMap;

use lw_dockerfile::instructions;
use lw_oci::config::Empty;
use lw_oci::HealthConfig;

use super::expand;
use super::stage::{StageState, StepCtx};
use super::Shared;
use crate::{Error, StepError};

/// `EXPOSE`: the ports, split and expanded like words, as `PORT/PROTO` entries of the config.
pub(super) fn expose_step(
    cx: &StepCtx,
    st: &mut StageState,
    e: &instructions::ExposeCommand,
    env: &[(String, String)],
) -> Result<(), Error> {
    let (shared, line) = (cx.shared, cx.line);
    let mut words = Vec::new();
    for p in &e.ports {
        words.extend(
            shared
                .lexer
                .process_words(p, &env.to_vec())
                .map_err(|er| shared.err(line, er.to_string()))?,
        );
    }
    let ports = expose_ports(shared, line, &words)?;
    let map = st
        .config
        .config
        .exposed_ports
        .get_or_insert_with(BTreeMap::new);
    for p in &ports {
        map.insert(p.clone(), Empty {});
    }
    let text = format!("EXPOSE [{}]", ports.join(" "));
    st.metadata_step(shared, text);
    Ok(())
}

/// `HEALTHCHECK`: the config's health check; the history shows Go's `%+v` of it.
pub(super) fn healthcheck_step(
    cx: &StepCtx,
    st: &mut StageState,
    h: &instructions::HealthcheckCommand,
) {
    let shared = cx.shared;
    let hc = &h.health;
    let cfg = HealthConfig {
        test: Some(hc.test.clone()),
        interval: (hc.interval != 0).then_some(hc.interval),
        timeout: (hc.timeout != 0).then_some(hc.timeout),
        start_period: (hc.start_period != 0).then_some(hc.start_period),
        start_interval: (hc.start_interval != 0).then_some(hc.start_interval),
        retries: (hc.retries != 0).then_some(i64::from(hc.retries)),
    };
    st.config.config.healthcheck = Some(cfg);
    // Go's %+v of the HealthcheckConfig struct.
    let text = format!(
        "HEALTHCHECK {{Test:[{}] Interval:{} Timeout:{} StartPeriod:{} StartInterval:{} Retries:{}}}",
        hc.test.join(" "),
        go_duration(hc.interval),
        go_duration(hc.timeout),
        go_duration(hc.start_period),
        go_duration(hc.start_interval),
        hc.retries
    );
    st.metadata_step(shared, text);
}

/// `VOLUME`: each path, expanded, becomes a config volume.
pub(super) fn volume_step(
    cx: &StepCtx,
    st: &mut StageState,
    v: &instructions::VolumeCommand,
) -> Result<(), Error> {
    let (shared, line) = (cx.shared, cx.line);
    let mut vols = Vec::new();
    for w in &v.volumes {
        let p = expand(shared, line, w, &st.env)?;
        if p.is_empty() {
            return Err(shared.err(line, StepError::EmptyVolume));
        }
        st.config
            .config
            .volumes
            .get_or_insert_with(BTreeMap::new)
            .insert(p.clone(), Empty {});
        vols.push(p);
    }
    let text = format!("VOLUME [{}]", vols.join(" "));
    st.metadata_step(shared, text);
    Ok(())
}

/// Go's `time.Duration.String()`: `1h2m3.5s`, and below a second `500ms`, `1.5µs`, `7ns`.
fn go_duration(ns: i64) -> String {
    if ns == 0 {
        return "0s".into();
    }
    if ns < 0 {
        return format!(
            "-{}",
            go_duration(ns.unsigned_abs().min(i64::MAX as u64) as i64)
        );
    }
    if ns < 1_000_000_000 {
        let (unit, name, digits) = match ns {
            0..1_000 => return format!("{ns}ns"),
            1_000..1_000_000 => (1_000, "µs", 3),
            _ => (1_000_000, "ms", 6),
        };
        let (whole, frac) = (ns / unit, ns % unit);
        if frac == 0 {
            return format!("{whole}{name}");
        }
        let frac = format!("{frac:0digits$}");
        return format!("{whole}.{}{name}", frac.trim_end_matches('0'));
    }
    let secs = ns / 1_000_000_000;
    let frac = ns % 1_000_000_000;
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let sec = if frac == 0 {
        format!("{s}s")
    } else {
        format!("{s}.{}s", format!("{frac:09}").trim_end_matches('0'))
    };
    match (h, m) {
        (0, 0) => sec,
        (0, _) => format!("{m}m{sec}"),
        _ => format!("{h}h{m}m{sec}"),
    }
}

fn expose_ports(shared: &Shared, line: usize, words: &[String]) -> Result<Vec<String>, Error> {
    let mut out = Vec::new();
    for w in words {
        let (port, proto) = match w.split_once('/') {
            Some((p, proto)) => (p, proto.to_ascii_lowercase()),
            None => (w.as_str(), "tcp".to_string()),
        };
        if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
            return Err(shared.err(
                line,
                StepError::ExposeProto {
                    word: w.clone(),
                    proto,
                },
            ));
        }
        let bad = || shared.err(line, StepError::ExposePort { word: w.clone() });
        let (lo, hi) = match port.split_once('-') {
            Some((a, b)) => (
                a.parse::<u16>().map_err(|_| bad())?,
                b.parse::<u16>().map_err(|_| bad())?,
            ),
            None => {
                let p = port.parse::<u16>().map_err(|_| bad())?;
                (p, p)
            }
        };
        if hi < lo {
            return Err(bad());
        }
        for p in lo..=hi {
            out.push(format!("{p}/{proto}"));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::go_duration;

    #[test]
    fn durations_print_as_go_does() {
        let s = 1_000_000_000;
        for (ns, want) in [
            (0, "0s"),
            (7, "7ns"),
            (1_500, "1.5µs"),
            (500_000_000, "500ms"),
            (1_250_000, "1.25ms"),
            (s, "1s"),
            (s + 500_000_000, "1.5s"),
            (90 * s, "1m30s"),
            (3600 * s, "1h0m0s"),
            (-2 * s, "-2s"),
        ] {
            assert_eq!(go_duration(ns), want, "{ns}");
        }
    }
}
