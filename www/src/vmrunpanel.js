//! The Run panel on a static host, for linux/386 images: runs the image in the tab's own Linux VM (the wasm
//! package's `runContainer`, `docker run -t [-i] --rm`) with an xterm.js terminal (loaded when first needed), shows
//! the exit code and the container's writable layer as docker's `diff` lines.
// @ts-check

import { h, errorText } from './util.js';

let xterm = null;

/** xterm.js and its stylesheet (build.mjs copies it from the npm package into vendor/). */
function loadXterm() {
  xterm ??= (async () => {
    const link = h('link', { rel: 'stylesheet', href: new URL('./vendor/xterm.css', document.baseURI).href });
    document.head.append(link);
    return import('@xterm/xterm');
  })();
  return xterm;
}

/** The words of the command box: a JSON array, or words split on blanks. */
export function commandWords(text) {
  const t = text.trim();
  if (!t) return [];
  return t.startsWith('[') ? JSON.parse(t) : t.split(/\s+/);
}

/** The panel for a linux/386 `result` (a build's), run with `api.runContainer`. */
export function renderVmRunPanel(result, api) {
  const c = result.config?.config || {};
  const shown = JSON.stringify([...(c.Entrypoint || []), ...(c.Cmd || [])]);
  const cmdInput = h('input', { type: 'text', placeholder: shown, 'aria-label': 'Command (replaces CMD)', testid: 'run-cmd', style: 'flex:1;min-width:10em' });
  const interactive = h('input', { type: 'checkbox', testid: 'run-interactive' });
  const screen = h('div', { class: 'terminal', testid: 'run-terminal' });
  const status = h('div', { role: 'status', testid: 'run-status' });
  const diffList = h('ul', { class: 'mono', testid: 'run-diff', 'aria-label': "The container's changes (docker diff)" });
  let current = null;
  let term = null;
  // The bytes this run's terminal got (data-received, with the terminal as the element's `terminal`: what a
  // test's failure message reports next to the drawn rows).
  let received = 0;

  async function run() {
    runBtn.disabled = true;
    diffList.replaceChildren();
    status.textContent = "Starting the tab's Linux VM…";
    try {
      const { Terminal } = await loadXterm();
      if (!term) {
        term = new Terminal({ rows: 24, cols: 80, fontSize: 13, scrollback: 2000 });
        term.open(screen);
        Object.assign(screen, { terminal: term });
        // Keys go to the container's terminal; its line discipline echoes them.
        term.onData((d) => current?.write(d));
      }
      term.reset();
      received = 0;
      screen.dataset.received = '0';
      // Into view now: xterm.js draws nothing while its element is off screen (it pauses its renderer until the
      // element intersects the viewport), and the Run button can sit at the window's bottom edge with the
      // terminal below it, so a short run's output would be drawn only once the user scrolls down.
      screen.scrollIntoView({ block: 'nearest' });
      current = await api.runContainer(result.manifestDigest, {
        cmd: commandWords(cmdInput.value), interactive: interactive.checked, rows: term.rows, cols: term.cols,
        onOutput: (bytes) => {
          received += bytes.length;
          screen.dataset.received = String(received);
          term.write(bytes);
        },
      });
      stopBtn.disabled = false;
      status.textContent = interactive.checked ? 'Running in this tab: type in the terminal.' : 'Running in this tab…';
      if (interactive.checked) term.focus();
      const end = await current.done;
      // The exit line only once the terminal has drawn every byte before it (xterm parses and renders a frame later).
      await new Promise((resolve) => term.write('', () => requestAnimationFrame(() => resolve(undefined))));
      status.replaceChildren(h('span', { class: end.exitCode === 0 ? 'ok' : 'err', testid: 'run-exit' },
        `The container exited with code ${end.exitCode}.`));
      diffList.replaceChildren(...(end.diff.length ? end.diff : ['(no changes)']).map((l) => h('li', {}, l)));
    } catch (e) {
      status.replaceChildren(h('span', { class: 'err', testid: 'run-error' }, errorText(e)));
    } finally {
      current = null;
      runBtn.disabled = false;
      stopBtn.disabled = true;
    }
  }

  const runBtn = h('button', { type: 'button', class: 'primary', testid: 'run-button', onclick: run }, 'Run');
  const stopBtn = h('button', { type: 'button', testid: 'run-stop', disabled: true, onclick: () => { stopBtn.disabled = true; current?.stop(3); } }, 'Stop');
  return h('section', { 'aria-labelledby': 'run-h' },
    h('h3', { id: 'run-h' }, 'Run a container'),
    h('p', { class: 'muted' }, "Runs the image in this tab's own Linux (linux/386), as `docker run -t --rm` does (`-i` when interactive); no network."),
    h('div', { class: 'row' }, runBtn, stopBtn, h('label', {}, 'Command ', cmdInput), h('label', {}, interactive, ' Interactive (-i)')),
    status, screen,
    h('details', {}, h('summary', {}, "The container's changes (docker diff)"), diffList));
}
