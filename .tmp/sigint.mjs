import { spawn } from 'node:child_process';
import WebSocket from 'ws';
const child = spawn(process.execPath, ['dist/src/cli/main.js', 'train', '--viz', '--port', '0', '--limit-train', '512', '--limit-valid', '256', '--epochs', '1', '--json', '--break', 'lossBegin'], { stdio: ['ignore', 'pipe', 'pipe'] });
let err = '', out = '';
child.stdout.on('data', (d) => (out += d));
child.stderr.on('data', (d) => {
  err += d;
  const m = /visualizer: (http:\S+)/.exec(err);
  if (m && !globalThis.ws) {
    const ws = (globalThis.ws = new WebSocket(m[1].replace('http', 'ws') + 'ws'));
    ws.on('message', (d) => {
      const msg = JSON.parse(d.toString());
      if (!['state', 'batches', 'events'].includes(msg.type)) console.log('msg', msg.type, msg.status ?? msg.reason ?? '', msg.path ?? '');
      if (msg.type === 'paused') setTimeout(() => child.kill('SIGINT'), 200);
    });
  }
});
child.on('exit', (code, sig) => { console.log('exit', code, sig); console.log(out); console.log(err.split('\n').slice(-6).join('\n')); });
