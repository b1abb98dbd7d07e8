/** Where a run's results go: JSON files under the results directory, profile summaries. */
import fs from 'node:fs';
import path from 'node:path';
import { waitFor } from '../../harness/wait';
import { generatorProfilePath, replicaProfilePath, summariseProfile } from './profile';
import { log } from './session';

const PROFILE_TOP = 12;

/** Writes a run's JSON as latest.json and as a stamped file; returns the text. */
export function writeResult(
  outDir: string,
  label: string,
  name: string,
  result: { started_at: string },
): string {
  fs.mkdirSync(outDir, { recursive: true });
  const json = JSON.stringify(result, null, 2);
  const stamp = result.started_at.replace(/[:.]/g, '-');
  fs.writeFileSync(
    path.join(outDir, `${name === 'bench' ? 'latest' : `latest-${name}`}.json`),
    json + '\n',
  );
  fs.writeFileSync(
    path.join(outDir, `${name}-${stamp}${label ? '-' + label : ''}.json`),
    json + '\n',
  );
  return json;
}

/** Where each replica's time went in the post window (the profiles are written as they stop). */
export async function printProfiles(profileDir: string, replicaPids: number[]): Promise<void> {
  for (const [i, pid] of replicaPids.entries()) {
    const file = replicaProfilePath(profileDir, pid);
    try {
      await waitFor(() => fs.existsSync(file), { what: file, timeoutMs: 10000, intervalMs: 50 });
      console.log(summariseProfile(file, PROFILE_TOP, `replica-${i + 1} profile (${file})`));
    } catch (err) {
      log(`no profile for replica-${i + 1}: ${(err as Error).message}`);
    }
  }
  const generator = generatorProfilePath(profileDir);
  if (fs.existsSync(generator)) {
    console.log(summariseProfile(generator, PROFILE_TOP, `generator profile (${generator})`));
  }
}
