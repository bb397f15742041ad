// Preload (--import) for stop-signal.test.ts: the moment the exporter writes its `listening` line to
// stderr, the process sends itself SIGTERM, before it runs one more statement. This is what a
// supervisor that waits for that line does on a loaded machine, made certain instead of rare.
import fs from 'node:fs';

const writeSync = fs.writeSync;
fs.writeSync = function (fd, data, ...rest) {
  const n = writeSync.call(this, fd, data, ...rest);
  if (fd === 2 && String(data).includes('"msg":"listening"')) {
    fs.writeSync = writeSync;
    process.kill(process.pid, 'SIGTERM');
  }
  return n;
};
