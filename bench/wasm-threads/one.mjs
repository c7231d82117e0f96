const n = +process.argv[2]; const t = performance.now(); let x = 0; for (let i = 0; i < n; i++) x = (x * 1664525 + 1013904223) | 0;
const c = process.cpuUsage(); console.log('ms', (performance.now() - t).toFixed(0), 'cpu ms', ((c.user + c.system) / 1000).toFixed(0), x & 1);
