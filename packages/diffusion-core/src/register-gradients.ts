// tfjs-core registers no gradient functions by itself. Its unbundled
// `dist/register_all_gradients.js` works in bundlers but not in plain Node ESM (extensionless
// imports), and its Node bundle contains no gradients. tfjs-layers' bundles (Node CJS and the
// ESM build) register all of them on import, so every module that differentiates imports this.
import '@tensorflow/tfjs-layers';
