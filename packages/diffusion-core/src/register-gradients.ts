// tfjs-core registers no gradient functions by itself (the `@tensorflow/tfjs` umbrella package
// does). Training needs them, so every module that differentiates imports this file.
import '@tensorflow/tfjs-core/dist/register_all_gradients.js';
