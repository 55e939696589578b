// tfjs-core registers no gradient functions by itself. tfjs-layers' entry point registers all of
// them: its ESM build imports `@tensorflow/tfjs-core/dist/register_all_gradients`, and its Node
// build (the `main` that plain Node loads) bundles them into tfjs-core's global registry.
//
// Importing tfjs-layers (a peer dependency, needed anyway for `tapLayersModel`) rather than that
// deep path directly matters: `dist/register_all_gradients.js` uses extensionless relative
// imports, which plain Node ESM cannot resolve, so importing it breaks `node app.mjs`.
import '@tensorflow/tfjs-layers';
