/**
 * The `fad` command line (commander). Thin: the global options are here; each command is a file in
 * commands/ that reads its flags into the config and calls the module that does the work. `main`
 * never throws: errors are printed as `fad: error: <message>` (with the stack under --debug) and
 * turned into an exit code.
 */
import { Command, CommanderError, Option } from 'commander';
import { registerAutoencoder } from './commands/autoencoder';
import { registerConfig } from './commands/config';
import { registerData } from './commands/data';
import { registerDemo } from './commands/demo';
import { registerEvaluate } from './commands/evaluate';
import { registerExperiment } from './commands/experiment';
import { registerExpert } from './commands/expert';
import { registerGenerate } from './commands/generate';
import { registerMerge } from './commands/merge';
import { registerReport } from './commands/report';
import { type CommandContext, choicesOf, collect } from './commands/shared';
import { registerTrain } from './commands/train';
import { registerUtility } from './commands/utility';
import { RunConfigSchema } from './config';
import { CliError, classifyError } from './errors';

export const VERSION = '0.1.0';

/** Builds the program. `out` receives normal output (tests capture it). */
export function buildProgram(out: (s: string) => void = (s) => process.stdout.write(s)): Command {
  const program = new Command('fad')
    .description('Feature-aligned diffusion for synthetic medical images: train, generate, evaluate, report.\nStart with `fad demo` (the whole experiment at toy scale, no data needed); `fad <command> --help` lists a command\'s options.')
    .version(VERSION, '-V, --version')
    .option('-c, --config <file>', 'YAML config file (see `fad config print` for every key)')
    .option('--set <key=value>', 'override one config key, e.g. --set diffusion.steps=500 (repeatable)', collect)
    .addOption(new Option('--backend <name>', 'TensorFlow.js backend (default: the config\'s run.backend, auto)').choices(choicesOf(RunConfigSchema.shape.backend)))
    .addOption(new Option('--precision <p>', 'native backend precision: fp32, or bf16 mixed precision (default: the config\'s run.precision, fp32)').choices(choicesOf(RunConfigSchema.shape.precision)))
    .option('--report-to <list>', 'training logs besides metrics.jsonl: tensorboard (events files in the run folder; view with tensorboard --logdir DIR) or none (default: the config\'s run.reportTo, tensorboard)')
    .option('-q, --quiet', 'only errors and results')
    .option('--debug', 'print stack traces of errors')
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({ writeOut: out, outputError: (s, write) => write(`fad: ${s.replace(/^error: /, 'error: ')}`) })
    .exitOverride();

  const ctx: CommandContext = { out };
  registerData(program, ctx);
  registerConfig(program, ctx);
  registerExpert(program, ctx);
  registerAutoencoder(program, ctx);
  registerTrain(program, ctx);
  registerGenerate(program, ctx);
  registerEvaluate(program, ctx);
  registerUtility(program, ctx);
  registerExperiment(program, ctx);
  registerMerge(program, ctx);
  registerReport(program, ctx);
  registerDemo(program, ctx);

  // Bare `fad` prints this help (exit 0). `fad bogus` is an unknown command and `fad --bogus` an
  // unknown option (exit 1, as every usage error), with commander's did-you-mean. Set after the
  // commands are added: they would inherit allowExcessArguments.
  program
    .helpCommand(true) // `fad help <command>`: commander drops it once the program has an action
    .allowExcessArguments()
    .allowUnknownOption()
    .action((_o, cmd: Command) => {
      const first = cmd.args[0];
      if (first === undefined) return cmd.outputHelp();
      // commander's own errors (with the suggestion); their methods are not in its typings.
      const c = cmd as Command & { unknownCommand?: () => never; unknownOption?: (flag: string) => never };
      if (first.startsWith('-')) {
        cmd.allowUnknownOption(false); // unknownOption() is silent while unknown options are allowed
        if (typeof c.unknownOption === 'function') return c.unknownOption(first);
        return cmd.error(`error: unknown option '${first}'`, { code: 'commander.unknownOption' });
      }
      if (typeof c.unknownCommand === 'function') return c.unknownCommand();
      return cmd.error(`error: unknown command '${first}'`, { code: 'commander.unknownCommand' });
    });
  return program;
}

/** Runs the CLI; resolves to the exit code (never rejects). */
export async function main(argv: string[] = process.argv, io: { out?: (s: string) => void; err?: (s: string) => void } = {}): Promise<number> {
  const err = io.err ?? ((s: string) => process.stderr.write(s));
  const debug = argv.includes('--debug');
  const program = buildProgram(io.out);
  program.configureOutput({ writeOut: io.out ?? ((s) => process.stdout.write(s)), writeErr: err, outputError: (s, write) => write(`fad: ${s}`) });
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode;
    // Filesystem, memory and divergence problems are the user's environment, not a fad bug.
    const original = e as Error;
    e = classifyError(e);
    const error = e as Error;
    const code = e instanceof CliError ? e.exitCode : 1;
    if (e instanceof CliError) err(`fad: ${code === 130 ? '' : 'error: '}${error.message}\n`);
    else err(`fad: error: ${error?.message ?? String(e)}${debug ? '' : '\n(an unexpected error: run again with --debug for the stack trace, and report it)'}\n`);
    if (debug && (original?.stack ?? error?.stack)) err(`${original?.stack ?? error.stack}\n`);
    return code;
  }
}
