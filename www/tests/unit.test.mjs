// Unit tests of the page's pure helpers (no browser needed).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { b64urlEncode, b64urlDecode } from '../src/util.js';
import { LESSONS } from '../src/lessons-data.js';

test('share encoding round-trips bytes', () => {
  const b = new Uint8Array([0, 1, 2, 250, 251, 252, 253, 254, 255]);
  assert.deepEqual(b64urlDecode(b64urlEncode(b)), b);
  assert.doesNotMatch(b64urlEncode(b), /[+/=]/);
});

test('lessons: twelve, each with prose, a Dockerfile, a task, a check and a solution', () => {
  assert.equal(LESSONS.length, 12);
  assert.equal(new Set(LESSONS.map((l) => l.id)).size, 12);
  for (const l of LESSONS) {
    assert.ok(l.prose.length > 300, l.id);
    assert.match(l.dockerfile, /^FROM /m, l.id);
    assert.ok(l.task && typeof l.check === 'function' && l.solution.length, l.id);
  }
});
