/** The `fad` executable (built to dist/bin.js with a shebang). */
import { main } from './cli';

main(process.argv).then(
  (code) => {
    // Exit once stdout has drained, even if a library left a timer or handle open.
    process.stdout.write('', () => process.exit(code));
  },
  (e) => {
    process.stderr.write(`fad: error: ${(e as Error)?.message ?? e}\n`);
    process.exit(1);
  },
);
