/** fad data inspect: classes and counts, image sizes and modes, odd files of a data folder. */
import type { Command } from 'commander';
import { effectiveConfig } from '../context';
import { inspectDataset } from '../data';
import { CliError } from '../errors';
import { abs, type CommandContext, globals } from './shared';

export function registerData(program: Command, { out }: CommandContext): void {
  // fad data inspect
  const data = program.command('data').description('look at a data folder');
  data
    .command('inspect')
    .description('classes and counts, image sizes and modes, unreadable and odd files')
    .option('-d, --data <dir>', 'data folder (class subfolders of PNG/TIFF/JPEG)')
    .option('--json', 'print the report as JSON')
    .action(async (o, cmd: Command) => {
      const g = globals(cmd);
      const cfg = effectiveConfig(g, { 'data.dir': abs(o.data) });
      if (!cfg.data.dir) throw new CliError('give the data folder: fad data inspect --data DIR');
      const r = await inspectDataset(cfg.data.dir);
      if (o.json) return out(`${JSON.stringify(r, null, 2)}\n`);
      const lines = [`data folder ${cfg.data.dir}: ${r.total} images in ${r.classes.length} classes`];
      const w = Math.max(...r.classes.map((c) => c.name.length), 5);
      for (const c of r.classes) lines.push(`  ${c.name.padEnd(w)}  ${String(c.count).padStart(6)}  (${c.folder})`);
      lines.push(`image sizes: ${Object.entries(r.sizes).map(([k, v]) => `${k} (${v})`).join(', ') || 'none'}`);
      lines.push(`image modes: ${Object.entries(r.modes).map(([k, v]) => `${k} (${v})`).join(', ') || 'none'}`);
      if (r.unreadable.length) lines.push(`unreadable files (${r.unreadable.length}):`, ...r.unreadable.slice(0, 20).map((u) => `  ${u.file}: ${u.reason}`));
      if (r.oddFiles.length) lines.push(`other files (${r.oddFiles.length}, ignored):`, ...r.oddFiles.slice(0, 20).map((f) => `  ${f}`));
      lines.push(r.warnings.length ? `warnings:\n${r.warnings.map((x) => `  - ${x}`).join('\n')}` : 'no problems found');
      out(`${lines.join('\n')}\n`);
    });
}
