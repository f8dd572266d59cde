// Boots the tab's guest once under node with v86 (www/node_modules/v86) and saves the booted state:
// `node boot.mjs GUEST_DIR STATE_OUT`. GUEST_DIR holds what `cargo xtask guest` assembled. The 9p device is
// present (as in the page, so the restored state has it) but unused until a RUN mounts it; so is the second serial
// port, the containers' terminal.
import { readFileSync, writeFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const [dir, out] = process.argv.slice(2);
const www = new URL('../../www/', import.meta.url).pathname;
const { V86 } = await import(pathToFileURL(join(www, 'node_modules/v86/build/libv86.mjs')));

const buf = (f) => {
  const b = readFileSync(join(dir, f));
  return { buffer: b.buffer.slice(b.byteOffset, b.byteOffset + b.length) };
};
const start = performance.now();
const emulator = new V86({
  wasm_path: join(www, 'node_modules/v86/build/v86.wasm'),
  memory_size: 128 * 1024 * 1024,
  vga_memory_size: 2 * 1024 * 1024,
  bios: buf('seabios.bin'),
  vga_bios: buf('vgabios.bin'),
  bzimage: buf('bzImage'),
  initrd: buf('initrd.img'),
  cmdline: readFileSync(join(dir, 'cmdline.txt'), 'utf8'),
  // The containers' terminal (the tab's `run`): the page restores the state with the same devices.
  uart1: true,
  filesystem: { handle9p: () => { throw new Error('no 9p request is expected while booting'); } },
  autostart: true,
  disable_keyboard: true,
  disable_mouse: true,
  disable_speaker: true,
});
let text = '';
const ready = new Promise((resolve, reject) => {
  const timer = setTimeout(() => reject(new Error('the guest did not say ready in 300 s; console:\n' + text)), 300000);
  emulator.add_listener('serial0-output-byte', (b) => {
    text += String.fromCharCode(b);
    if (text.includes('lw-guest: ready\n') || text.includes('lw-guest: ready\r\n')) {
      clearTimeout(timer);
      resolve();
    }
  });
});
await ready;
const booted = performance.now();
// Let the shell reach its read of the console before the snapshot.
await new Promise((r) => setTimeout(r, 500));
const state = await emulator.save_state();
writeFileSync(out + '.tmp', new Uint8Array(state));
renameSync(out + '.tmp', out);
console.log(JSON.stringify({
  cold_boot_ms: Math.round(booted - start),
  state_bytes: state.byteLength,
  console: text.split('\n').filter((l) => l.startsWith('lw-guest')).join(' | '),
}));
emulator.destroy();
process.exit(0);
