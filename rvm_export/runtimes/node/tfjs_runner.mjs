// Runs an RVM TF.js graph model for rvm-verify: a persistent process, so the model loads once.
//
// Usage: node tfjs_runner.mjs MODEL_DIR [wasm|cpu]
// Protocol (stdin/stdout; written for this project, no library speaks it):
//   start:    the runner prints one JSON line {"ready": true, "backend": ...} or {"error": ...}.
//   request:  one JSON line {"ratio": r, "inputs": [{"name": "src", "shape": [B,H,W,3]}, {"name": "r1i", "shape": [...]}, ...]}
//             followed by the raw little-endian float32 data of each input, in that order.
//   response: one JSON line {"outputs": [{"name": "fgr", "shape": [...]}, ...]} followed by the raw float32 data,
//             or {"error": "..."} with no data.
// Node's `loadGraphModel('file://...')` needs tfjs-node; tf.io.fromMemory with the full artifacts works anywhere.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { loadGraphModel } from '@tensorflow/tfjs-converter';

const OUTPUTS = ['fgr', 'pha', 'r1o', 'r2o', 'r3o', 'r4o'];

function send(header, buffers = []) {
  process.stdout.write(JSON.stringify(header) + '\n');
  for (const b of buffers) process.stdout.write(b);
}

async function loadModel(dir) {
  const json = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8'));
  const weightSpecs = [];
  const shards = [];
  for (const group of json.weightsManifest) {
    weightSpecs.push(...group.weights);
    for (const p of group.paths) shards.push(readFileSync(join(dir, p)));
  }
  const all = Buffer.concat(shards);
  const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength);
  return loadGraphModel(
    tf.io.fromMemory({
      modelTopology: json.modelTopology,
      format: json.format,
      generatedBy: json.generatedBy,
      convertedBy: json.convertedBy,
      signature: json.signature,
      userDefinedMetadata: json.userDefinedMetadata,
      weightSpecs,
      weightData,
    }),
  );
}

function infer(model, request, data) {
  return tf.tidy(() => {
    const feeds = {};
    let offset = 0;
    for (const { name, shape } of request.inputs) {
      const size = shape.reduce((a, b) => a * b, 1);
      feeds[name] = tf.tensor(new Float32Array(data.buffer, data.byteOffset + offset * 4, size), shape, 'float32');
      offset += size;
    }
    feeds.downsample_ratio = tf.scalar(request.ratio, 'float32');
    const outs = model.execute(feeds, OUTPUTS);
    return OUTPUTS.map((name, i) => ({ name, shape: outs[i].shape, values: outs[i].dataSync() }));
  });
}

async function main() {
  const [dir, backend = 'wasm'] = process.argv.slice(2);
  let model;
  try {
    if (!(await tf.setBackend(backend))) throw new Error(`TF.js backend ${backend} is not available`);
    await tf.ready();
    model = await loadModel(dir);
  } catch (err) {
    send({ error: `cannot load ${dir}: ${err.message}` });
    process.exit(2);
  }
  send({ ready: true, backend: tf.getBackend(), tfjs: tf.version_core });

  let pending = Buffer.alloc(0);
  let request = null;
  let needed = 0;
  process.stdin.on('data', (chunk) => {
    pending = Buffer.concat([pending, chunk]);
    for (;;) {
      if (request === null) {
        const nl = pending.indexOf(10);
        if (nl < 0) return;
        request = JSON.parse(pending.subarray(0, nl).toString('utf8'));
        pending = pending.subarray(nl + 1);
        needed = 4 * request.inputs.reduce((n, i) => n + i.shape.reduce((a, b) => a * b, 1), 0);
      }
      if (pending.length < needed) return;
      const data = Buffer.from(pending.subarray(0, needed)); // aligned copy for Float32Array views
      pending = pending.subarray(needed);
      try {
        const outs = infer(model, request, data);
        send(
          { outputs: outs.map(({ name, shape }) => ({ name, shape })) },
          outs.map(({ values }) => Buffer.from(values.buffer, values.byteOffset, values.byteLength)),
        );
      } catch (err) {
        send({ error: String(err.message || err).split('\n')[0] });
      }
      request = null;
    }
  });
  process.stdin.on('end', () => process.exit(0));
}

main();
