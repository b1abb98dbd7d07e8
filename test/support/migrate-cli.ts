import { execFile } from 'node:child_process';
import path from 'node:path';

const REPO = path.resolve(__dirname, '../..');
const CLI = path.join(REPO, 'src', 'store', 'migrate-cli.ts');

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `npm run db:migrate`'s script (src/store/migrate-cli.ts under tsx) with
 * the test process's environment plus `env`; a key set to undefined is removed.
 */
export function runMigrateCli(
  env: Record<string, string | undefined>,
  timeoutMs: number,
): Promise<CliRun> {
  return new Promise((resolve) => {
    const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env };
    for (const [k, v] of Object.entries(env)) if (v === undefined) delete childEnv[k];
    execFile(
      process.execPath,
      ['--require', 'tsx/cjs', CLI],
      { cwd: REPO, env: childEnv, timeout: timeoutMs },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : null) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}
