// Runs an RVM TF.js graph model in the browser for rvm-verify, the way the RVM web demo runs it:
// tf.loadGraphModel(url), then per frame model.executeAsync({src, r1i..r4i, downsample_ratio}, outputs),
// with scalar zeros as the recurrent state of the first frame.
//
// Frames travel as binary over the runner's local HTTP server, in the Node runner's format
// (written for this project): one JSON line, then the raw little-endian float32 data of each tensor.
//   GET  /io/TOKEN/in   {"ratio": r, "inputs": [{"name", "shape"}, ...]}  + data
//   POST /io/TOKEN/out  {"outputs": [{"name", "shape"}, ...], "ms": t}   + data
'use strict';

const OUTPUTS = ['fgr', 'pha', 'r1o', 'r2o', 'r3o', 'r4o'];

function webglRenderer() {
  const gl = document.createElement('canvas').getContext('webgl2') || document.createElement('canvas').getContext('webgl');
  if (!gl) return null;
  const info = gl.getExtension('WEBGL_debug_renderer_info');
  return gl.getParameter(info ? info.UNMASKED_RENDERER_WEBGL : gl.RENDERER);
}

const rvm = {
  model: null,

  // backend: webgl | webgl-f16 | wasm | cpu. Returns a description, or throws with one line.
  async load(modelUrl, backend) {
    const tfBackend = backend === 'webgl-f16' ? 'webgl' : backend;
    if (tfBackend === 'webgl') {
      const renderer = webglRenderer();
      if (renderer === null) throw new Error('the browser gives no WebGL context (Chromium needs --use-angle=swiftshader without a GPU)');
      if (backend === 'webgl-f16') tf.env().set('WEBGL_FORCE_F16_TEXTURES', true);
    }
    if (tfBackend === 'wasm') tf.wasm.setWasmPaths('/tfjs-wasm/');
    if (!(await tf.setBackend(tfBackend))) throw new Error(`TF.js backend ${tfBackend} failed to initialise`);
    await tf.ready();
    this.model = await tf.loadGraphModel(modelUrl);
    const info = { backend: tf.getBackend(), tfjs: tf.version.tfjs, userAgent: navigator.userAgent };
    if (tfBackend === 'webgl') {
      info.renderer = webglRenderer();
      info.webglVersion = tf.env().getNumber('WEBGL_VERSION');
      info.f16Textures = tf.env().getBool('WEBGL_FORCE_F16_TEXTURES') || !tf.env().getBool('WEBGL_RENDER_FLOAT32_ENABLED');
    }
    if (tfBackend === 'wasm') info.wasmFeatures = { simd: await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'), threads: await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT') };
    return info;
  },

  async step(token) {
    const buffer = await (await fetch(`/io/${token}/in`)).arrayBuffer();
    const bytes = new Uint8Array(buffer);
    const newline = bytes.indexOf(10);
    const request = JSON.parse(new TextDecoder().decode(bytes.subarray(0, newline)));
    let offset = newline + 1;
    const feeds = {};
    for (const { name, shape } of request.inputs) {
      const size = shape.reduce((a, b) => a * b, 1);
      // slice(): Float32Array views need 4-byte alignment, which the header length does not give.
      feeds[name] = tf.tensor(new Float32Array(buffer.slice(offset, offset + 4 * size)), shape, 'float32');
      offset += 4 * size;
    }
    feeds.downsample_ratio = tf.scalar(request.ratio, 'float32');
    const start = performance.now();
    const outs = await this.model.executeAsync(feeds, OUTPUTS);
    const values = await Promise.all(outs.map((t) => t.data()));
    const ms = performance.now() - start;
    const header = { outputs: OUTPUTS.map((name, i) => ({ name, shape: outs[i].shape })), ms };
    tf.dispose([...Object.values(feeds), ...outs]);
    const body = new Blob([JSON.stringify(header) + '\n', ...values]);
    const reply = await fetch(`/io/${token}/out`, { method: 'POST', body });
    if (!reply.ok) throw new Error(`posting the outputs failed: HTTP ${reply.status}`);
    return ms;
  },
};
window.rvm = rvm;
