// Unit tests of the page's pure helpers (no browser needed).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { b64urlEncode, b64urlDecode } from '../src/util.js';
import { analyse, registryHost } from '../src/inspector.js';
import { LESSONS } from '../src/lessons-data.js';

test('analyse: overwritten and whited-out files are wasted', () => {
  const f = (path, size) => ({ path, type: 'file', size, mode: 0o644 });
  const d = (path) => ({ path, type: 'dir', size: 0, mode: 0o755 });
  const r = analyse([
    [d('app'), f('app/big.bin', 1000), f('app/conf', 10)],
    [f('app/conf', 20), f('app/.wh.big.bin', 0)],
    [d('cache'), f('cache/a', 5)],
    [f('cache/.wh..wh..opq', 0), f('cache/b', 7)],
  ]);
  assert.equal(r.total, 1000 + 10 + 20 + 5 + 7);
  assert.equal(r.wasted, 1000 + 10 + 5);
  assert.deepEqual([...r.merged.keys()].sort(), ['app', 'app/conf', 'cache', 'cache/b']);
  assert.ok(Math.abs(r.efficiency - 27 / 1042) < 1e-9);
});

test('share encoding round-trips bytes', () => {
  const b = new Uint8Array([0, 1, 2, 250, 251, 252, 253, 254, 255]);
  assert.deepEqual(b64urlDecode(b64urlEncode(b)), b);
  assert.doesNotMatch(b64urlEncode(b), /[+/=]/);
});

test('registry hosts of references', () => {
  assert.equal(registryHost('alpine'), 'registry-1.docker.io');
  assert.equal(registryHost('docker.io/library/alpine:3'), 'registry-1.docker.io');
  assert.equal(registryHost('ghcr.io/o/r:1'), 'ghcr.io');
  assert.equal(registryHost('localhost:5000/a'), 'localhost:5000');
  assert.equal(registryHost('team/app'), 'registry-1.docker.io');
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
