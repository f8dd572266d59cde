//! The Run panel under a build result: when the page is served by `layerwright serve`, runs the image as
//! `layerwright run -d` does (serve's container API) and shows its output, its exit code and links to the ports
//! it publishes on loopback; otherwise a linux/386 image runs in the tab's own VM (vmrunpanel.js), and other
//! images say what running needs.
// @ts-check

import { h, errorText } from './util.js';
import { runOnServe, containerApi } from './api.js';
import { renderVmRunPanel, commandWords } from './vmrunpanel.js';

/**
 * The panel for `result`.
 * @param {import('../../crates/wasm/js/index.js').BuildResult} result
 * @param {{ api: import('./api.js').Api, serve?: import('./api.js').ServeInfo | null, tag?: string }} ctx
 */
export function renderRunPanel(result, { api, serve, tag }) {
  if (!serve?.containers) {
    const cfg = result.config || {};
    if (cfg.os === 'linux' && cfg.architecture === '386' && api?.runContainer) return renderVmRunPanel(result, api);
    return h('p', { class: 'muted', testid: 'run-needs-serve' },
      'Run: this tab runs linux/386 images itself; for this one, open this page through `layerwright serve` (or `cargo xtask run`) to start a container from it on your machine.');
  }
  const c = result.config?.config || {};
  const exposed = Object.keys(c.ExposedPorts || {}).map((p) => p.replace(/\/tcp$/, ''));
  const cmdInput = h('input', { type: 'text', placeholder: JSON.stringify([...(c.Entrypoint || []), ...(c.Cmd || [])]), 'aria-label': 'Command (replaces CMD)', testid: 'run-cmd', style: 'flex:1;min-width:10em' });
  const portsInput = h('input', { type: 'text', value: exposed.join(' '), placeholder: '80 or 8080:80', 'aria-label': 'Published ports (-p)', testid: 'run-publish', size: 12 });
  const out = h('pre', { testid: 'run-output', tabindex: '0', 'aria-label': 'Container output' });
  const status = h('div', { role: 'status', testid: 'run-status' });
  const links = h('ul', { testid: 'run-ports', 'aria-label': 'Published ports' });
  let current = null;
  const forget = () => { if (current) fetch(`/api/containers/${current}?force=1`, { method: 'DELETE', keepalive: true, headers: serve.token ? { Authorization: `Bearer ${serve.token}` } : {} }); };
  addEventListener('pagehide', forget);

  async function run() {
    runBtn.disabled = true;
    out.textContent = '';
    links.replaceChildren();
    status.textContent = 'Pushing the image to layerwright serve…';
    try {
      const cmd = commandWords(cmdInput.value);
      const publish = portsInput.value.split(/[\s,]+/).filter(Boolean);
      const ctr = await runOnServe(api, serve, result, { tag, cmd, publish });
      current = ctr.id;
      links.replaceChildren(...ctr.ports.map((p) => h('li', {},
        p.url ? h('a', { href: p.url, target: '_blank', rel: 'noopener' }, p.url) : `${p.hostIp}:${p.hostPort}`, ` → container port ${p.containerPort}/${p.proto}`)));
      if (ctr.error) out.textContent = ctr.error + '\n';
      status.textContent = `Running ${ctr.name}…`;
      stopBtn.disabled = false;
      const logs = await containerApi(serve, 'GET', `/${ctr.id}/logs?follow=1`);
      const reader = logs.body.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        out.textContent += value;
      }
      const end = await containerApi(serve, 'GET', `/${ctr.id}`);
      status.replaceChildren(h('span', { class: end.exitCode === 0 ? 'ok' : 'err', testid: 'run-exit' }, `${end.name} exited with code ${end.exitCode}.`));
      // As `run --rm`: the output is shown, the container goes.
      await containerApi(serve, 'DELETE', `/${ctr.id}`);
      current = null;
      links.replaceChildren();
    } catch (e) {
      status.replaceChildren(h('span', { class: 'err', testid: 'run-error' }, errorText(e)));
    } finally {
      runBtn.disabled = false;
      stopBtn.disabled = true;
    }
  }

  async function stop() {
    stopBtn.disabled = true;
    try { if (current) await containerApi(serve, 'POST', `/${current}/stop?t=2`); } catch (e) { status.replaceChildren(h('span', { class: 'err', testid: 'run-error' }, errorText(e))); }
  }

  const runBtn = h('button', { type: 'button', class: 'primary', testid: 'run-button', onclick: run }, 'Run');
  const stopBtn = h('button', { type: 'button', testid: 'run-stop', disabled: true, onclick: stop }, 'Stop');
  return h('section', { 'aria-labelledby': 'run-h' },
    h('h3', { id: 'run-h' }, 'Run a container'),
    h('p', { class: 'muted' }, 'Starts the image on layerwright serve, as `layerwright run -d` does; ports are published on 127.0.0.1.'),
    h('div', { class: 'row' }, runBtn, stopBtn, h('label', {}, 'Command ', cmdInput), h('label', {}, 'Ports ', portsInput)),
    status, links, out);
}
