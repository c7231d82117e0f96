// two threads doing pure compute (no clock calls inside the loop)
import { Worker } from 'worker_threads';
const work = (n) => { let x = 0; for (let i = 0; i < n; i++) x = (x * 1664525 + 1013904223) | 0; return x; };
const N = +(process.argv[2] ?? 3e9) ;
const t1 = performance.now(); work(N / 4); const single = performance.now() - t1;
const c0 = process.cpuUsage(), w0 = performance.now();
const w = new Worker(`const n=${N/4};let x=0;for(let i=0;i<n;i++)x=(x*1664525+1013904223)|0;require('worker_threads').parentPort.postMessage(x)`, { eval: true });
work(N / 4);
await new Promise(r => w.on('message', r));
const wall = performance.now() - w0, cu = process.cpuUsage(c0);
console.log('single ms', single.toFixed(0), 'two threads ms', wall.toFixed(0), 'cpu/wall', ((cu.user + cu.system) / 1000 / wall).toFixed(2));
