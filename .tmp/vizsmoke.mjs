import { spawn } from 'node:child_process';
import WebSocket from 'ws';
const child = spawn(process.execPath, ['test/support/vizTrain.mjs', JSON.stringify({ waitForGo: true })], { stdio: ['pipe', 'pipe', 'inherit'] });
let out = '';
const lines = [];
child.stdout.on('data', (d) => { out += d; let i; while ((i = out.indexOf('\n')) >= 0) { lines.push(out.slice(0, i)); console.log('child:', out.slice(0, i).slice(0, 200)); out = out.slice(i + 1); } });
const url = await new Promise((r) => { const t = setInterval(() => { const l = lines.find((x) => x.startsWith('visualizer: ')); if (l) { clearInterval(t); r(l.slice(12)); } }, 20); });
const ws = new WebSocket(url.replace('http', 'ws') + 'ws');
const msgs = [];
ws.on('message', (d) => {
  const m = JSON.parse(d.toString()); msgs.push(m);
  if (m.type !== 'state' && m.type !== 'batches' && m.type !== 'events') console.log('msg', m.type, JSON.stringify(m).slice(0, 300));
  if (m.type === 'hello' && m.status === 'idle') ws.send(JSON.stringify({ type: 'break', stage: 'lossBegin' }));
  if (m.type === 'breakpoints') child.stdin.write('go\n');
  if (m.type === 'paused' && m.reason === 'breakpoint') ws.send(JSON.stringify({ type: 'step' }));
  if (m.type === 'paused' && m.reason === 'step') { ws.send(JSON.stringify({ type: 'clear' })); ws.send(JSON.stringify({ type: 'resume' })); }
  if (m.type === 'done') { console.log('counts', msgs.reduce((a, m) => (a[m.type] = (a[m.type] ?? 0) + 1, a), {})); ws.close(); }
});
child.on('exit', (c) => console.log('exit', c));
