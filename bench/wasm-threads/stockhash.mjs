import crypto from 'crypto'; import * as tf from '@tensorflow/tfjs'; import '@tensorflow/tfjs-backend-wasm';
await tf.setBackend('wasm');
const a = tf.randomNormal([256, 784], 0, 1, 'float32', 1), b = tf.randomNormal([784, 512], 0, 1, 'float32', 2);
console.log('stock matMul sha256', crypto.createHash('sha256').update(Buffer.from(tf.matMul(a, b).dataSync().buffer)).digest('hex').slice(0, 16));
