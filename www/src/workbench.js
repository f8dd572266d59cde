//! The workbench: Dockerfile editor, lint findings, scope view, context panel, build controls,
//! progress log and results. The playground and every lesson use one.
// @ts-check

import { h, formatBytes, errorText, fromUtf8, shortDigest } from './util.js';
import { createEditor } from './editor.js';
import { createContextPanel } from './context.js';
import { renderResult } from './results.js';
import { httpExecutor, ensureBases } from './api.js';

/**
 * opts: {api, serve, dockerfile, files: Map, tag, buildArgs: {}, onChange(), onBuilt(result, info), compact}
 * Returns {el, editor, context, build(), history: [{result, events}], get dockerfile()}.
 */
export function createWorkbench(opts) {
  const { api, serve } = opts;
  const wb = { history: [], lastError: null };
  let lastFindings = [];

  const findingsEl = h('ul', { class: 'log', testid: 'lint-findings', 'aria-label': 'Lint findings' });
  const scopeEl = h('div', { class: 'scope', 'aria-live': 'polite' });
  const editorHost = h('div', { class: 'editor', testid: 'editor' });

  const context = createContextPanel({ files: opts.files, onChange: () => { editor.relint(); opts.onChange?.(); } });

  const editor = createEditor({
    parent: editorHost,
    doc: opts.dockerfile,
    api: () => api,
    // baseImages: the configs (Env, User, WorkingDir, digest) of the base images this tab's store holds, read by the
    // core, so lint judges them as BuildKit does and can pin FROM to the digest.
    lintOptions: (text) => ({
      contextHasDockerignore: context.files.has('.dockerignore'),
      dockerignore: context.files.has('.dockerignore') ? fromUtf8(context.files.get('.dockerignore')) : undefined,
      baseImages: api.baseImages ? api.baseImages(text) : undefined,
    }),
    onFindings: (f) => { lastFindings = f; renderFindings(); },
    onChange: () => opts.onChange?.(),
    onCursor: (line) => renderScope(line),
  });

  function renderFindings() {
    const all = h('button', {
      type: 'button', disabled: !lastFindings.some((f) => f.fix),
      onclick: async () => { editor.text = await api.applyFixes(editor.text, lastFindings); },
    }, 'Apply all fixes');
    findingsEl.replaceChildren(...lastFindings.map((f) => h('li', {},
      h('span', { class: f.severity === 'error' ? 'err' : 'warn' }, `${f.range.start.line}:${f.range.start.column}`),
      h('span', { class: 't' }, h('strong', {}, f.name), ' ', f.message, ' ',
        /^https?:\/\//.test(f.documentation || '') ? h('a', { href: f.documentation, target: '_blank', rel: 'noopener' }, 'docs')
          : f.documentation ? h('span', { class: 'muted' }, f.documentation) : null),
      f.fix ? h('button', { type: 'button', onclick: async () => { editor.text = await api.applyFixes(editor.text, [f]); } }, f.fix.description || 'Fix') : null)));
    if (!lastFindings.length) findingsEl.append(h('li', { class: 'ok' }, 'No lint findings.'));
    else findingsEl.append(h('li', {}, all));
  }

  function renderScope(line) {
    let parsed;
    try { parsed = api.parse(editor.text); } catch (e) { scopeEl.replaceChildren(h('span', { class: 'err' }, errorText(e))); return; }
    const stage = [...parsed.stages].reverse().find((s) => s.line <= line);
    const scope = [...parsed.scopes].reverse().find((s) => s.line <= line) || parsed.scopes[0];
    const vars = scope ? scope.vars.filter((v) => v.kind !== 'predefined') : [];
    scopeEl.replaceChildren(...[
      h('div', {}, h('strong', {}, `Line ${line}`), ' — stage: ',
        stage ? h('code', {}, `${stage.index}${stage.name ? ' "' + stage.name + '"' : ''} FROM ${stage.base}`) : h('span', { class: 'muted' }, '(global scope, before the first FROM)'),
        ` · ${parsed.stages.length} stage(s)`),
      vars.length ? h('table', {}, vars.map((v) => h('tr', {}, h('td', {}, v.kind.toUpperCase()), h('td', {}, v.name), h('td', {}, v.value ?? '(unset)'))))
        : h('div', { class: 'muted' }, 'No ARG or ENV values in scope here.'),
      parsed.diagnostics?.length ? h('ul', {}, parsed.diagnostics.map((d) => h('li', { class: d.severity === 'error' ? 'err' : 'warn' }, `${d.line}:${d.column} ${d.message}`))) : null].filter(Boolean));
  }

  // Build controls.
  const tagInput = h('input', { type: 'text', value: opts.tag || 'playground/image:latest', 'aria-label': 'Image tag', testid: 'build-tag', style: 'min-width:14em' });
  const argsInput = h('input', { type: 'text', value: Object.entries(opts.buildArgs || {}).map(([k, v]) => `${k}=${v}`).join(' '), placeholder: 'KEY=value …', 'aria-label': 'Build arguments', testid: 'build-args' });
  const targetInput = h('input', { type: 'text', placeholder: 'target stage', 'aria-label': 'Target stage', size: 10 });
  const noCache = h('input', { type: 'checkbox', id: 'nc-' + Math.random().toString(36).slice(2) });
  // Secrets for `RUN --mount=type=secret,id=ID` (`--secret id=ID,...`): id and value pairs, never saved or shared.
  const secretRows = h('div', { testid: 'secrets' });
  const addSecret = () => {
    const row = h('div', { class: 'row' },
      h('input', { type: 'text', placeholder: 'id', 'aria-label': 'Secret id', testid: 'secret-id', size: 12, spellcheck: 'false' }),
      h('input', { type: 'password', placeholder: 'value', 'aria-label': 'Secret value', testid: 'secret-value', autocomplete: 'off' }),
      h('button', { type: 'button', 'aria-label': 'Remove this secret', onclick: () => row.remove() }, 'Remove'));
    secretRows.append(row);
    return row;
  };
  const secretsEl = h('details', { testid: 'secrets-panel' },
    h('summary', {}, 'Secrets'),
    h('p', { class: 'muted' }, 'For `RUN --mount=type=secret,id=ID` (as `--secret id=ID`): mounted at /run/secrets/ID during the step only; never in a layer, the cache keys or a shared link. Kept in this page only.'),
    secretRows,
    h('button', { type: 'button', testid: 'add-secret', onclick: () => addSecret().querySelector('input')?.focus() }, 'Add a secret'));
  // The RUN cache mounts this browser keeps for the tab's VM (`storage.cacheMounts`), listed when opened.
  const cachesList = h('ul', { class: 'mono', testid: 'cache-mounts', 'aria-label': 'Cache mounts kept in this browser' });
  const showCaches = async () => {
    try {
      const kept = api.storage?.cacheMounts ? await api.storage.cacheMounts() : [];
      cachesList.replaceChildren(...(kept.length ? [...kept].reverse().map((c) => h('li', {}, `${c.id} · ${formatBytes(c.size)}`)) : [h('li', { class: 'muted' }, 'None.')]));
    } catch (e) { cachesList.replaceChildren(h('li', { class: 'err' }, errorText(e))); }
  };
  const cachesEl = h('details', { testid: 'cache-mounts-panel', ontoggle: (e) => { if (e.target.open) showCaches(); } },
    h('summary', {}, 'RUN caches'),
    h('p', { class: 'muted' }, "What `RUN --mount=type=cache` left in this browser for the tab's own Linux, by cache id (at most 64 MiB; the least recently used go first). Builds on layerwright serve use serve's caches."),
    cachesList,
    h('button', { type: 'button', testid: 'clear-cache-mounts', onclick: async () => { await api.storage.clearCacheMounts(); showCaches(); } }, 'Clear the RUN caches'));
  /** The secrets rows as `{id: value}`; an id given twice, or a value without an id, is an error. */
  const readSecrets = () => {
    const out = {};
    for (const row of secretRows.children) {
      const [idIn, valueIn] = row.querySelectorAll('input');
      const id = idIn.value.trim();
      if (!id) {
        if (valueIn.value) throw new Error('Secrets: a value has no id');
        continue;
      }
      if (/[,=\s]/.test(id)) throw new Error(`Secrets: the id ${JSON.stringify(id)} has a comma, an equals sign or a blank`);
      if (id in out) throw new Error(`Secrets: the id ${id} is given twice`);
      out[id] = valueIn.value;
    }
    return out;
  };
  const buildButton = h('button', { type: 'button', class: 'primary', testid: 'build-button', onclick: () => wb.build() }, 'Build');
  const log = h('ol', { class: 'log', testid: 'build-log', 'aria-label': 'Build progress', 'aria-live': 'polite', tabindex: '0' });
  const summary = h('div', { role: 'status' });
  const resultHost = h('div');

  wb.build = async () => {
    buildButton.disabled = true;
    log.replaceChildren();
    summary.replaceChildren(h('span', { class: 'muted' }, 'Building…'));
    const events = [];
    const rows = new Map();
    const t0 = performance.now();
    const buildArgs = {};
    for (const kv of argsInput.value.split(/\s+/).filter(Boolean)) {
      const i = kv.indexOf('=');
      if (i > 0) buildArgs[kv.slice(0, i)] = kv.slice(i + 1);
    }
    const files = {};
    for (const [k, v] of context.files) files[k] = v;
    const onEvent = (e) => {
      events.push(e);
      const key = `${e.stage}/${e.step}`;
      if (e.type === 'stageStarted') {
        const row = h('li', {}, h('span', { class: 't' }, h('strong', {}, `stage ${e.stage}${e.name ? ' ' + e.name : ''}`), ` from ${e.base}`));
        // The engine reports a stage once its FROM step has begun: show the stage heading above that step.
        const first = [...rows].find(([k]) => k.startsWith(`${e.stage}/`));
        if (first) first[1].row.before(row); else log.append(row);
      }
      else if (e.type === 'stageSkipped') log.append(h('li', { class: 'muted' }, h('span', { class: 't' }, `stage ${e.stage}${e.name ? ' ' + e.name : ''} skipped: nothing needs it`)));
      else if (e.type === 'stepStarted') {
        const status = h('span', { class: 'tag' }, '…');
        const size = h('span', { class: 'muted' });
        const row = h('li', {}, h('span', { class: 't' }, `[${e.step}/${e.total}] ${e.text}`), status, size);
        rows.set(key, { row, status, size, t: performance.now() });
        log.append(row);
      } else if (e.type === 'stepFinished') {
        const r = rows.get(key);
        if (r) {
          r.status.className = 'tag ' + (e.cached ? 'cached' : 'built');
          r.status.textContent = e.cached ? 'CACHED' : 'built';
          r.size.textContent = `${((performance.now() - r.t) / 1000).toFixed(2)}s${e.layer ? ' · ' + formatBytes(e.size) : ''}`;
        }
      } else if (e.type === 'output') log.append(h('li', { class: 'muted' }, h('span', { class: 't' }, e.data)));
      else if (e.type === 'warning') log.append(h('li', { class: 'warn' }, h('span', { class: 't' }, `line ${e.line}: ${e.message}`)));
      else if (e.type === 'finished') log.append(h('li', { class: 'ok' }, h('span', { class: 't' }, `wrote ${shortDigest(e.manifestDigest)}`)));
      log.scrollTop = log.scrollHeight;
    };
    const tags = tagInput.value.trim() ? [tagInput.value.trim()] : [];
    try {
      const buildOpts = { dockerfile: editor.text, files, buildArgs, tags, noCache: noCache.checked, onEvent };
      if (targetInput.value.trim()) buildOpts.target = targetInput.value.trim();
      const secrets = readSecrets();
      if (Object.keys(secrets).length) {
        buildOpts.secrets = secrets;
        if (serve?.served) log.append(h('li', { class: 'warn' }, h('span', { class: 't' }, "Secrets reach RUN steps in this tab's own VM only: layerwright serve's RUN does not get them yet.")));
      }
      if (serve?.served) {
        buildOpts.executor = httpExecutor(api, serve);
        const missing = await ensureBases(api, serve, editor.text, (note) => log.append(h('li', { class: 'muted' }, h('span', { class: 't' }, note))));
        for (const m of missing) log.append(h('li', { class: 'warn' }, h('span', { class: 't' }, `${m} is not in layerwright serve's store: run \`layerwright pull ${m}\` there, or load a tarball here`)));
      }
      const result = await api.build(buildOpts);
      const secs = ((performance.now() - t0) / 1000).toFixed(2);
      const steps = events.filter((e) => e.type === 'stepFinished');
      const cached = steps.filter((e) => e.cached).length;
      const prev = wb.history.length ? wb.history[wb.history.length - 1].result : null;
      wb.history.push({ result, events, tags });
      wb.lastError = null;
      summary.replaceChildren(h('span', { class: 'ok', testid: 'build-summary' }, `Built ${result.ref} in ${secs}s: ${steps.length} step(s), ${cached} cached.`));
      resultHost.replaceChildren(renderResult(result, { api, prev, serve, tag: tags[0] }));
      opts.onBuilt?.(result, { events, prev, tags });
      if (cachesEl.open) showCaches();
      editor.relint(); // the store changed: a base image may be known now
    } catch (e) {
      wb.lastError = e;
      summary.replaceChildren(h('div', { class: 'error-box', testid: 'build-error' }, errorText(e)));
      opts.onBuilt?.(null, { events, error: e });
    } finally {
      buildButton.disabled = false;
    }
  };

  wb.editor = editor;
  wb.context = context;
  wb.tagInput = tagInput;
  wb.argsInput = argsInput;
  wb.addSecret = addSecret;
  wb.el = h('div', { class: 'workbench' },
    h('div', { class: 'grid' },
      h('div', {},
        h('section', { class: 'panel', 'aria-labelledby': 'df-h' },
          h('div', { class: 'row' }, h('h2', { id: 'df-h', style: 'margin:0' }, 'Dockerfile'), h('span', { class: 'spacer' }), opts.toolbar || null),
          editorHost,
          h('h3', {}, 'At the cursor'), scopeEl,
          h('h3', {}, 'Lint'), findingsEl)),
      context.el),
    h('section', { class: 'panel', style: 'margin-top:12px', 'aria-label': 'Build' },
      h('div', { class: 'row' }, buildButton,
        h('label', {}, 'Tag ', tagInput),
        h('label', {}, 'Args ', argsInput),
        opts.compact ? null : h('label', {}, 'Target ', targetInput),
        h('label', { for: noCache.id }, noCache, ' no cache'),
        h('span', { class: 'muted' }, serve?.served ? 'RUN steps run on layerwright serve.' : "RUN steps run in this tab's own Linux (linux/386 images; no network).")),
      opts.compact ? null : h('div', { style: 'display:flex;gap:24px;align-items:flex-start;flex-wrap:wrap' }, secretsEl, cachesEl),
      summary, log),
    resultHost);
  findingsEl.append(h('li', { class: 'muted' }, 'Linting…'));
  renderScope(1);
  return wb;
}
