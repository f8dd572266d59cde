//! The Dockerfile editor: CodeMirror 6 with a small Dockerfile mode, live lint with quick fixes,
//! hover help per instruction, and a cursor callback for the ARG/ENV scope view.
// @ts-check

import { EditorState, StateEffect } from '@codemirror/state';
import { EditorView, keymap, lineNumbers, highlightActiveLine, highlightActiveLineGutter, hoverTooltip, drawSelection } from '@codemirror/view';
import { defaultKeymap, history, historyKeymap } from '@codemirror/commands';
import { StreamLanguage, syntaxHighlighting, defaultHighlightStyle, bracketMatching } from '@codemirror/language';
import { linter, lintGutter, lintKeymap } from '@codemirror/lint';

// Asks the linter to run again although the text did not change (the build context did).
const refreshLint = StateEffect.define();
import { h } from './util.js';

export const INSTRUCTION_HELP = {
  FROM: 'Starts a build stage on top of a base image (or `scratch`, the empty image). `AS name` names the stage.',
  RUN: 'Runs a command in the image being built; the files it changes become a new layer. Needs a runner (layerwright serve).',
  COPY: 'Copies files from the build context (or another stage with --from) into the image, as a new layer.',
  ADD: 'Like COPY, but can also fetch URLs and unpack local tar archives. Prefer COPY unless you need that.',
  WORKDIR: 'Sets the working directory for the instructions that follow and for the container; creates it if missing.',
  ENV: 'Sets environment variables that persist in the image and in containers started from it.',
  ARG: 'Declares a build-time variable (set with a build arg). Not kept in the image config, unlike ENV.',
  LABEL: 'Adds key=value metadata to the image config (author, version, source…). No layer.',
  EXPOSE: 'Documents the ports the container listens on. It publishes nothing by itself.',
  CMD: 'The default command (or default arguments to ENTRYPOINT) for containers. Only the last CMD counts.',
  ENTRYPOINT: 'The executable that always runs when a container starts; CMD supplies its default arguments.',
  USER: 'Sets the user (and group) for the following RUN steps and for the container.',
  VOLUME: 'Marks a path as a mount point for data that should outlive the container.',
  ONBUILD: 'Registers an instruction that runs later, when another Dockerfile uses this image in FROM.',
  STOPSIGNAL: 'The signal sent to stop the container (default SIGTERM).',
  HEALTHCHECK: 'A command the runtime runs periodically to see whether the container is healthy.',
  SHELL: 'Changes the shell used by the shell form of RUN, CMD and ENTRYPOINT.',
  MAINTAINER: 'Deprecated: use LABEL org.opencontainers.image.authors=… instead.',
};

// A small stream tokenizer: keywords, comments, parser directives, flags, variables, strings, continuations.
const dockerfileMode = {
  name: 'dockerfile',
  startState: () => ({ atStart: true, cont: false }),
  token(stream, state) {
    if (stream.sol()) { state.atStart = !state.cont; state.cont = false; }
    if (stream.eatSpace()) return null;
    if (state.atStart && stream.match(/^#\s*(syntax|escape|check)\s*=.*/i)) return 'meta';
    if (state.atStart && stream.peek() === '#') { stream.skipToEnd(); return 'comment'; }
    if (state.atStart) {
      state.atStart = false;
      const m = stream.match(/^[A-Za-z]+/);
      if (m) return INSTRUCTION_HELP[m[0].toUpperCase()] ? 'keyword' : 'invalid';
    }
    if (stream.match(/^\\\s*$/)) { state.cont = true; return 'operator'; }
    if (stream.match(/^--[a-z-]+(=\S*)?/)) return 'attributeName';
    if (stream.match(/^\$\{[^}]*\}/) || stream.match(/^\$[A-Za-z_][A-Za-z0-9_]*/)) return 'variableName';
    if (stream.match(/^"(?:[^"\\]|\\.)*"?/) || stream.match(/^'[^']*'?/)) return 'string';
    if (stream.match(/^\b(AS|as)\b/)) return 'keyword';
    if (stream.match(/^[0-9]+\b/)) return 'number';
    stream.next();
    if (stream.eol() && stream.string.trimEnd().endsWith('\\')) state.cont = true;
    return null;
  },
  languageData: { commentTokens: { line: '#' } },
};

export const dockerfileLanguage = StreamLanguage.define(dockerfileMode);

function toPos(doc, p) {
  const line = doc.line(Math.min(Math.max(p.line, 1), doc.lines));
  return Math.min(line.from + Math.max((p.column || 1) - 1, 0), line.to);
}

/**
 * Creates the editor. opts: {parent, doc, api() -> API|null, lintOptions(text) -> {...}, onChange(text), onCursor(line)}
 */
export function createEditor(opts) {
  // Async: the linter is a module of its own that the API loads on first use. CodeMirror drops the answer when
  // the text changed meanwhile, and so do the findings shown beside the editor.
  const dfLinter = linter(async (view) => {
    const api = opts.api();
    if (!api) return [];
    const doc = view.state.doc;
    const text = doc.toString();
    let findings = [];
    try { findings = await api.lint(text, opts.lintOptions?.(text) || {}); } catch (e) { return [{ from: 0, to: 0, severity: 'error', message: String(e.message || e) }]; }
    if (view.state.doc !== doc) return [];
    opts.onFindings?.(findings);
    return findings.map((f) => {
      const from = toPos(doc, f.range.start);
      let to = toPos(doc, f.range.end);
      if (to <= from) to = Math.min(doc.lineAt(from).to, from + 1) || from;
      return {
        from, to,
        severity: f.severity === 'error' ? 'error' : f.severity === 'info' ? 'info' : 'warning',
        source: f.rule || f.name,
        message: `${f.name}: ${f.message}`,
        actions: f.fix ? [{
          name: f.fix.description || 'Fix',
          async apply(v) {
            const before = v.state.doc;
            const fixed = await opts.api().applyFixes(before.toString(), [f]);
            if (v.state.doc === before) v.dispatch({ changes: { from: 0, to: v.state.doc.length, insert: fixed } });
          },
        }] : [],
      };
    });
  }, { delay: 250, needsRefresh: (u) => u.transactions.some((t) => t.effects.some((e) => e.is(refreshLint))) });

  const hover = hoverTooltip((view, pos) => {
    const line = view.state.doc.lineAt(pos);
    const m = /^\s*([A-Za-z]+)/.exec(line.text);
    if (!m) return null;
    const start = line.from + m.index + m[0].length - m[1].length;
    const end = start + m[1].length;
    if (pos < start || pos > end) return null;
    const help = INSTRUCTION_HELP[m[1].toUpperCase()];
    if (!help) return null;
    return { pos: start, end, above: true, create: () => ({ dom: h('div', { class: 'lw-hover' }, h('strong', {}, m[1].toUpperCase()), ' — ', help) }) };
  });

  const view = new EditorView({
    parent: opts.parent,
    state: EditorState.create({
      doc: opts.doc || '',
      extensions: [
        lineNumbers(), highlightActiveLine(), highlightActiveLineGutter(), drawSelection(), history(), bracketMatching(),
        // Long RUN and CMD lines wrap instead of hiding past the right edge (and on phones).
        EditorView.lineWrapping,
        dockerfileLanguage, syntaxHighlighting(defaultHighlightStyle, { fallback: true }),
        dfLinter, lintGutter(), hover,
        keymap.of([...defaultKeymap, ...historyKeymap, ...lintKeymap]),
        EditorView.contentAttributes.of({ 'aria-label': 'Dockerfile editor' }),
        EditorView.updateListener.of((u) => {
          if (u.docChanged) opts.onChange?.(u.state.doc.toString());
          if (u.docChanged || u.selectionSet) opts.onCursor?.(u.state.doc.lineAt(u.state.selection.main.head).number);
        }),
      ],
    }),
  });
  return {
    view,
    get text() { return view.state.doc.toString(); },
    set text(t) { view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: t } }); },
    relint() { view.dispatch({ effects: refreshLint.of(null) }); },
  };
}
