//! The lessons view: a list of lessons and, for the open one, its prose, an editable workbench and
//! an exercise checked against the real build results.
// @ts-check

import { h, errorText, utf8, shortDigest, formatBytes } from './util.js';
import { createWorkbench } from './workbench.js';
import { filesFromObject } from './context.js';
import { LESSONS } from './lessons-data.js';

const doneKey = 'lw-lessons-done';
const doneSet = () => new Set(JSON.parse(localStorage.getItem(doneKey) || '[]'));

/** @param {HTMLElement} main @param {{ api: import('./api.js').Api, serve: import('./api.js').ServeInfo, id?: string }} ctx */
export function renderLessons(main, { api, serve, id }) {
  const lesson = LESSONS.find((l) => l.id === id) || LESSONS[0];
  const done = doneSet();
  const list = h('ol', { class: 'lesson-list', testid: 'lesson-list' }, LESSONS.map((l) => h('li', {},
    h('a', { href: `#/lessons/${l.id}`, class: done.has(l.id) ? 'done' : '', 'aria-current': l === lesson ? 'page' : null, 'data-lesson': l.id }, l.title))));

  const state = { api, history: [], result: null, tags: [], error: null };
  const status = h('p', { testid: 'exercise-status', role: 'status' }, 'Not done yet.');
  const box = h('div', { class: 'exercise', testid: 'exercise' }, h('strong', {}, 'Exercise: '), lesson.task, status);
  const imagesEl = h('div');

  async function check() {
    try {
      const r = await lesson.check(state);
      status.textContent = (r.ok ? '✓ Done: ' : '') + r.message;
      status.className = r.ok ? 'ok' : 'muted';
      box.classList.toggle('passed', r.ok);
      box.dataset.passed = String(r.ok);
      if (r.ok) {
        const d = doneSet();
        d.add(lesson.id);
        localStorage.setItem(doneKey, JSON.stringify([...d]));
        list.querySelector(`[data-lesson="${lesson.id}"]`)?.classList.add('done');
      }
    } catch (e) {
      status.textContent = `Could not check: ${errorText(e)}`;
    }
    if (lesson.showImages) showImages();
  }

  async function showImages() {
    try {
      const imgs = await api.images();
      imagesEl.replaceChildren(h('h3', {}, `Images in this tab (${imgs.length})`),
        h('table', { class: 'kv' }, imgs.map((i) => h('tr', {}, h('td', { class: 'mono' }, i.name || '(untagged)'), h('td', { class: 'mono' }, shortDigest(i.digest)), h('td', {}, formatBytes(i.size))))),
        h('button', { type: 'button', onclick: async () => { await api.storage.clear(); showImages(); } }, 'Remove all images'));
    } catch (e) { imagesEl.replaceChildren(h('div', { class: 'error-box' }, errorText(e))); }
  }

  const wb = createWorkbench({
    api, serve, compact: true,
    dockerfile: lesson.dockerfile,
    files: filesFromObject(lesson.files),
    tag: lesson.tag || `lessons/${lesson.id}:latest`,
    buildArgs: {},
    onBuilt: (result, info) => {
      state.history.push({ result, events: info.events, tags: info.tags || [], error: info.error });
      state.result = result;
      state.tags = info.tags || [];
      state.error = info.error || null;
      check();
    },
  });

  // Plays the worked solution: edits, then builds, through the same controls a reader uses.
  async function solve() {
    for (const step of lesson.solution) {
      if (step.dockerfile !== undefined) wb.editor.text = step.dockerfile;
      if (step.files) {
        for (const [k, v] of Object.entries(step.files)) wb.context.files.set(k, utf8(v));
        wb.context.refresh();
      }
      if (step.tag !== undefined) wb.tagInput.value = step.tag;
      if (step.args !== undefined) wb.argsInput.value = step.args;
      if (step.build) await wb.build();
    }
  }

  const idx = LESSONS.indexOf(lesson);
  const next = LESSONS[idx + 1];
  main.replaceChildren(h('div', { class: 'lesson-layout' },
    h('nav', { 'aria-label': 'Lessons' }, h('h2', {}, 'Lessons'), list),
    h('article', {},
      h('h1', {}, `${idx + 1}. ${lesson.title}`),
      h('div', { class: 'prose', innerHTML: lesson.prose }),
      box,
      h('div', { class: 'row' },
        h('button', { type: 'button', onclick: check, testid: 'check-exercise' }, 'Check'),
        h('button', { type: 'button', onclick: solve, testid: 'show-solution' }, 'Show me (play the solution)'),
        h('span', { class: 'spacer' }),
        next ? h('a', { class: 'button', href: `#/lessons/${next.id}` }, `Next: ${next.title} →`) : null),
      lesson.tryRun ? h('section', { class: 'panel', testid: 'lesson-run', 'aria-label': 'Run it' },
        h('h3', {}, 'Run it'),
        serve?.containers
          ? h('p', {}, 'Served by layerwright serve: load the runnable variant (busybox as the base; `layerwright load -i guest/busybox.tar` from the built site, or `layerwright pull busybox`, gives serve a copy), press Build, then Run under the result. Change the command box to run something else in a new container.')
          : h('p', {}, "Load the runnable variant (the site's own linux/386 busybox as the base), press Build, then Run under the result: the container runs in a small Linux inside this tab (about 20 MB is downloaded the first time). Change the command box to run something else in a new container."),
        h('pre', { tabindex: '0' }, lesson.tryRun),
        h('button', { type: 'button', testid: 'load-runnable', onclick: () => { wb.editor.text = lesson.tryRun; } }, 'Load the runnable variant')) : null,
      lesson.runVariant ? h('details', {},
        h('summary', {}, 'A variant with RUN steps'),
        h('p', { class: 'muted' }, serve?.served ? 'This page is served by layerwright serve, so RUN steps can run.' : 'RUN steps run in a small Linux inside this tab (linux/386 images; about 20 MB is downloaded the first time). The exercise above works without it.'),
        h('pre', { tabindex: '0' }, lesson.runVariant),
        h('button', { type: 'button', testid: 'load-run-variant', onclick: () => { wb.editor.text = lesson.runVariant; } }, 'Load in the editor')) : null,
      imagesEl,
      h('div', { style: 'margin-top:12px' }, wb.el))));
  if (lesson.showImages) showImages();
  window.__lwLesson = { lesson, wb, state, solve, check };
}
