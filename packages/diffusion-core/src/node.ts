// Explicit barrel of `@fad/diffusion-core/node`: everything that touches the file system.
// The main entry point (`@fad/diffusion-core`) has no Node import and bundles for the browser;
// these functions moved here from it with the same names and signatures.
export { writeFileAtomic } from './node/write-file-atomic';
export { loadUNet, saveUNet } from './node/unet-files';
export { loadAutoencoder, saveAutoencoder } from './node/autoencoder-files';
export { loadDiffusersUNet, saveDiffusersUNet } from './node/diffusers-files';
export type { LoadDiffusersUNetParams } from './node/diffusers-files';
