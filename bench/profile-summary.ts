/**
 * Summarises V8 .cpuprofile files (from `npm run bench -- --profile-dir d`):
 * self time by function and by package. Usage: npx tsx bench/profile-summary.ts <file|dir> [top]
 */
import fs from 'node:fs';
import path from 'node:path';
import { summariseProfile } from './lib/profile';

const target = process.argv[2];
const top = Number(process.argv[3] ?? 25);
if (!target) {
  console.error('usage: npx tsx bench/profile-summary.ts <file.cpuprofile|dir> [top]');
  process.exit(2);
}
const files = fs.statSync(target).isDirectory()
  ? fs
      .readdirSync(target)
      .filter((f) => f.endsWith('.cpuprofile'))
      .map((f) => path.join(target, f))
  : [target];
for (const f of files) console.log(`\n${summariseProfile(f, top)}`);
