// A large two-layer image generated in the test and pushed straight to a loopback registry as a stream (no file on
// disk but the registry's own copy): layer 1 holds `mb` MB of gzip (8 MiB files, half random bytes and half text, so
// it inflates at a realistic rate), /gone.txt and /etc/hello.txt; layer 2 deletes /gone.txt (a whiteout) and
// overwrites /etc/hello.txt, so the wasted bytes are known.
import { createHash, randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { request } from 'node:http';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip, gzipSync } from 'node:zlib';

const FILE = 8 << 20;
const PIECE = 1 << 20;

function octal(n, width) { return n.toString(8).padStart(width - 1, '0') + '\0'; }

/** A ustar header for a regular file (or a directory when `dir`). */
export function tarHeader(name, size, dir = false) {
  const b = Buffer.alloc(512);
  b.write(name, 0, 100);
  b.write(octal(dir ? 0o755 : 0o644, 8), 100);
  b.write(octal(0, 8), 108);
  b.write(octal(0, 8), 116);
  b.write(octal(size, 12), 124);
  b.write(octal(0, 12), 136);
  b.write('        ', 148);
  b.write(dir ? '5' : '0', 156);
  b.write('ustar\0', 257);
  b.write('00', 263);
  let sum = 0;
  for (const x of b) sum += x;
  b.write(octal(sum, 7) + ' ', 148);
  return b;
}
const pad = (n) => Buffer.alloc((512 - (n % 512)) % 512);

function member(name, data) { return [tarHeader(name, data.length), data, pad(data.length)]; }

function hashing(h, count) {
  return new Transform({ transform(c, _e, cb) { h.update(c); count.n += c.length; cb(null, c); } });
}

async function http(method, url, body, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers }, (res) => {
      let text = '';
      res.on('data', (d) => { text += d; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, text }));
    });
    req.on('error', reject);
    if (body) req.end(body); else req.end();
  });
}

/** Uploads a blob from a stream (POST, one streamed PATCH, PUT with the digest); resolves to its descriptor. */
async function uploadStream(base, repo, mediaType, make) {
  const start = await http('POST', `${base}/v2/${repo}/blobs/uploads/`);
  if (start.status !== 202) throw new Error(`upload start: HTTP ${start.status} ${start.text}`);
  const loc = new URL(start.headers.location, base);
  const digest = createHash('sha256');
  const count = { n: 0 };
  const extra = await new Promise((resolve, reject) => {
    const req = request(loc, { method: 'PATCH', headers: { 'content-type': 'application/octet-stream' } }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 202 ? resolve(res.headers.location) : reject(new Error(`PATCH: HTTP ${res.statusCode}`))));
    });
    req.on('error', reject);
    make(count).then((src) => pipeline(src, hashing(digest, count), req)).catch(reject);
  });
  const d = `sha256:${digest.digest('hex')}`;
  const put = new URL(extra || loc, base);
  put.searchParams.set('digest', d);
  const done = await http('PUT', put, null, { 'content-length': '0' });
  if (done.status !== 201) throw new Error(`upload ${d}: HTTP ${done.status} ${done.text}`);
  return { mediaType, digest: d, size: count.n };
}

async function uploadBytes(base, repo, mediaType, bytes) {
  return uploadStream(base, repo, mediaType, async () => Readable.from([bytes]));
}

/**
 * Generates and pushes `host/repo:tag`. Resolves to what the test checks: the layer descriptors, the files of
 * layer 1, the wasted bytes, a big file's name and sha256, and the two versions of /etc/hello.txt.
 */
export async function pushBigImage(host, repo, tag, mb) {
  const base = `http://${host}`;
  const target = mb * 1e6;
  const hello1 = Buffer.from('hello from the streamed layer\n');
  const hello2 = Buffer.from('hello again, from layer 2\n');
  const gone = Buffer.alloc(1000, 'g');
  const files = [];
  let probe = null;
  const diff1 = createHash('sha256');
  const gzOut = { n: 0 };
  // Files until the compressed layer reaches the target (checked as the gzip output flows).
  async function* layer1() {
    yield tarHeader('etc/', 0, true);
    yield* member('etc/hello.txt', hello1);
    yield* member('gone.txt', gone);
    yield tarHeader('big/', 0, true);
    for (let i = 0; gzOut.n < target; i++) {
      const name = `big/f${String(i).padStart(5, '0')}.bin`;
      files.push(name);
      const h = i === 1 ? createHash('sha256') : null;
      yield tarHeader(name, FILE);
      for (let at = 0; at < FILE; at += PIECE) {
        const line = `${name} line ${at} `;
        const text = Buffer.from(line.repeat(Math.ceil(PIECE / 2 / line.length))).subarray(0, PIECE / 2);
        const piece = Buffer.concat([randomBytes(PIECE / 2), text]);
        h?.update(piece);
        yield piece;
      }
      if (h) probe = { path: name, sha256: h.digest('hex'), size: FILE };
    }
    yield Buffer.alloc(1024);
  }
  const l1 = await uploadStream(base, repo, 'application/vnd.oci.image.layer.v1.tar+gzip', async (count) => {
    const src = Readable.from(layer1());
    const gz = createGzip({ level: 1 });
    gz.on('data', () => { gzOut.n = count.n; });
    src.pipe(hashing(diff1, { n: 0 })).pipe(gz);
    return gz;
  });
  const tar2 = Buffer.concat([tarHeader('etc/', 0, true), ...member('etc/hello.txt', hello2), ...member('.wh.gone.txt', Buffer.alloc(0)), Buffer.alloc(1024)]);
  const gz2 = gzipSync(tar2);
  const l2 = await uploadBytes(base, repo, 'application/vnd.oci.image.layer.v1.tar+gzip', gz2);
  const config = Buffer.from(JSON.stringify({
    architecture: 'amd64', os: 'linux', config: { Cmd: ['/bin/true'] },
    rootfs: { type: 'layers', diff_ids: [`sha256:${diff1.digest('hex')}`, `sha256:${createHash('sha256').update(tar2).digest('hex')}`] },
    history: [{ created_by: 'generated big layer' }, { created_by: 'whiteout and overwrite' }],
  }));
  const cfg = await uploadBytes(base, repo, 'application/vnd.oci.image.config.v1+json', config);
  const manifest = JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: cfg, layers: [l1, l2] });
  const put = await http('PUT', `${base}/v2/${repo}/manifests/${tag}`, manifest, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' });
  if (put.status !== 201) throw new Error(`manifest: HTTP ${put.status} ${put.text}`);
  return { layers: [l1, l2], files, probe, hello1: hello1.toString(), hello2: hello2.toString(), wasted: gone.length + hello1.length };
}

/**
 * A small two-layer image of zstd layers (`zstd -3`, the CLI's frames), shaped like [pushBigImage]'s: layer 1 holds
 * /etc/hello.txt, /gone.txt and a 3 MiB file of half random bytes and half text; layer 2 deletes /gone.txt and
 * overwrites /etc/hello.txt. Resolves to the same fields as [pushBigImage].
 */
export async function pushZstdImage(host, repo, tag) {
  const base = `http://${host}`;
  const zstd = (tar) => {
    const r = spawnSync('zstd', ['-3', '-q', '-c'], { input: tar, maxBuffer: 64 << 20 });
    if (r.status !== 0) throw new Error(`zstd -3: ${r.error ?? r.stderr}`);
    return r.stdout;
  };
  const hello1 = Buffer.from('hello from a zstd layer\n');
  const hello2 = Buffer.from('hello again, from zstd layer 2\n');
  const gone = Buffer.alloc(1000, 'g');
  const big = Buffer.concat([randomBytes(3 << 19), Buffer.alloc(3 << 19, 'zstd text ')]);
  const tar1 = Buffer.concat([tarHeader('etc/', 0, true), ...member('etc/hello.txt', hello1), ...member('gone.txt', gone),
    tarHeader('big/', 0, true), ...member('big/f00000.bin', big), Buffer.alloc(1024)]);
  const tar2 = Buffer.concat([tarHeader('etc/', 0, true), ...member('etc/hello.txt', hello2), ...member('.wh.gone.txt', Buffer.alloc(0)), Buffer.alloc(1024)]);
  const type = 'application/vnd.oci.image.layer.v1.tar+zstd';
  const l1 = await uploadBytes(base, repo, type, zstd(tar1));
  const l2 = await uploadBytes(base, repo, type, zstd(tar2));
  const diff = (t) => `sha256:${createHash('sha256').update(t).digest('hex')}`;
  const config = Buffer.from(JSON.stringify({
    architecture: 'amd64', os: 'linux', config: { Cmd: ['/bin/true'] },
    rootfs: { type: 'layers', diff_ids: [diff(tar1), diff(tar2)] },
    history: [{ created_by: 'zstd layer' }, { created_by: 'whiteout and overwrite' }],
  }));
  const cfg = await uploadBytes(base, repo, 'application/vnd.oci.image.config.v1+json', config);
  const manifest = JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: cfg, layers: [l1, l2] });
  const put = await http('PUT', `${base}/v2/${repo}/manifests/${tag}`, manifest, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' });
  if (put.status !== 201) throw new Error(`manifest: HTTP ${put.status} ${put.text}`);
  return {
    layers: [l1, l2], files: ['big/f00000.bin'], hello1: hello1.toString(), hello2: hello2.toString(),
    probe: { path: 'big/f00000.bin', size: big.length, sha256: createHash('sha256').update(big).digest('hex') },
    wasted: gone.length + hello1.length,
  };
}
