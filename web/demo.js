// Robust Video Matting demo on TF.js: the model runs as the RVM documentation's web demo runs it,
// tf.loadGraphModel(url) and model.executeAsync({src, r1i..r4i, downsample_ratio}, outputs),
// with the recurrent state fed back every frame (scalar zeros on the first one).
//
// URL parameters (all optional): model, backend (webgl|webgl-f16|wasm|cpu), ratio, video (a URL to
// play instead of choosing a file), bg (#rrggbb). window.demo exposes the state for tests.
'use strict';

const OUTPUTS = ['fgr', 'pha', 'r1o', 'r2o', 'r3o', 'r4o'];
const $ = (id) => document.getElementById(id);

const demo = {
  model: null,
  modelUrl: null,
  backend: null,
  state: null,
  ratio: null,
  running: false,
  frames: 0,
  fps: 0,
  alphaMean: null,
  error: null,
  renderer: null,
  times: [],
  loop: null,
  generation: 0,

  status(text) {
    $('status').textContent = text;
  },

  fail(err) {
    this.error = String(err && err.message ? err.message : err).split('\n')[0];
    this.running = false;
    this.stop();
    this.status(`Error: ${this.error}`);
  },

  async setBackend(name) {
    if (this.backend === name) return;
    const tfName = name === 'webgl-f16' ? 'webgl' : name;
    // The model's weights and the state live on the old backend: load them anew.
    this.model = null;
    this.state = null;
    tf.env().set('WEBGL_FORCE_F16_TEXTURES', name === 'webgl-f16');
    if (tfName === 'webgl' && (this.backend || '').startsWith('webgl')) {
      // The texture format is fixed when the WebGL backend starts: start a new one.
      tf.removeBackend('webgl');
      tf.registerBackend('webgl', () => new tf.MathBackendWebGL(), 2);
    }
    if (tfName === 'wasm') tf.wasm.setWasmPaths('/tfjs-wasm/');
    if (!(await tf.setBackend(tfName))) throw new Error(`TF.js backend ${tfName} is not available in this browser`);
    await tf.ready();
    this.backend = name;
    this.renderer = null;
    if (tfName === 'webgl') {
      const gl = tf.backend().gpgpu.gl;
      const info = gl.getExtension('WEBGL_debug_renderer_info');
      this.renderer = gl.getParameter(info ? info.UNMASKED_RENDERER_WEBGL : gl.RENDERER);
    }
  },

  async load() {
    const url = $('model').value;
    await this.setBackend($('backend').value);
    if (this.model === null || this.modelUrl !== url) {
      this.status(`Loading ${url} on ${this.backend}...`);
      if (this.model) this.model.dispose();
      this.model = null;
      this.model = await tf.loadGraphModel(url);
      this.modelUrl = url;
    }
    this.resetState();
  },

  resetState() {
    if (this.state) tf.dispose(this.state);
    this.state = [0, 0, 0, 0].map(() => tf.scalar(0));
  },

  async step(video) {
    const ratio = parseFloat($('ratio').value);
    if (ratio !== this.ratio) this.resetState(); // the states' sizes follow the ratio
    this.ratio = ratio;
    const src = tf.tidy(() => tf.browser.fromPixels(video).toFloat().div(255).expandDims(0));
    const start = performance.now();
    const [r1i, r2i, r3i, r4i] = this.state;
    const [fgr, pha, ...state] = await this.model.executeAsync(
      { src, r1i, r2i, r3i, r4i, downsample_ratio: tf.scalar(ratio) },
      OUTPUTS,
    );
    tf.dispose([src, ...this.state]);
    this.state = state;
    await this.draw(fgr, pha);
    this.times.push(performance.now() - start);
    if (this.times.length > 20) this.times.shift();
    this.fps = 1000 / (this.times.reduce((a, b) => a + b, 0) / this.times.length);
    this.frames += 1;
    $('fps').textContent = this.fps.toFixed(1);
    tf.dispose([fgr, pha]);
  },

  async draw(fgr, pha) {
    const bg = hexColour($('bg').value);
    const [alpha, foreground, composite, mean] = tf.tidy(() => {
      const a = pha.squeeze(0);
      const f = fgr.squeeze(0);
      const background = tf.tensor1d(bg).reshape([1, 1, 3]);
      const comp = f.mul(a).add(background.mul(tf.scalar(1).sub(a)));
      return [a, f, comp, a.mean()];
    });
    await tf.browser.toPixels(alpha, $('alpha'));
    await tf.browser.toPixels(foreground, $('foreground'));
    await tf.browser.toPixels(composite, $('composite'));
    this.alphaMean = (await mean.data())[0];
    tf.dispose([alpha, foreground, composite, mean]);
  },

  // Starts matting `video`; a loop already running finishes its frame and stops first.
  async run(video) {
    const generation = ++this.generation;
    this.frames = 0;
    if (this.loop) await this.loop;
    if (generation !== this.generation) return; // a later run() took over meanwhile
    this.loop = this.matte(video, generation);
    return this.loop;
  },

  stop() {
    this.generation += 1;
  },

  async matte(video, generation) {
    try {
      await this.load();
    } catch (err) {
      return this.fail(err);
    }
    this.error = null;
    this.frames = 0;
    this.times = [];
    this.running = true;
    const info = this.renderer ? `, renderer ${this.renderer}` : '';
    this.status(`Running on ${this.backend}${info} (TF.js ${tf.version.tfjs}).`);
    while (generation === this.generation) {
      if (video.readyState >= 2 && !video.paused) {
        try {
          await this.step(video);
        } catch (err) {
          return this.fail(err);
        }
      } else {
        await new Promise((resolve) => setTimeout(resolve, 30));
      }
      await new Promise((resolve) => requestAnimationFrame(resolve));
    }
    this.running = false;
  },

  async playUrl(url) {
    const video = $('video');
    video.srcObject = null;
    video.src = url;
    await video.play();
    this.run(video);
  },

  async webcam() {
    const video = $('video');
    try {
      video.srcObject = await navigator.mediaDevices.getUserMedia({ video: true });
    } catch (err) {
      return this.fail(`no webcam: ${err.message}`);
    }
    await video.play();
    this.run(video);
  },
};

function hexColour(hex) {
  return [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16) / 255);
}

window.demo = demo;
$('file').addEventListener('change', (e) => e.target.files[0] && demo.playUrl(URL.createObjectURL(e.target.files[0])));
$('webcam').addEventListener('click', () => demo.webcam());
$('stop').addEventListener('click', () => {
  demo.stop();
  $('video').pause();
});
for (const id of ['backend', 'model']) $(id).addEventListener('change', () => demo.running && demo.run($('video')));

const params = new URLSearchParams(location.search);
for (const id of ['model', 'backend', 'ratio', 'bg']) if (params.has(id)) $(id).value = params.get(id);
if (params.has('video')) demo.playUrl(params.get('video')).catch((err) => demo.fail(err));
