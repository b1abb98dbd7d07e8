/**
 * The README's API block works as pasted (issue 12): it is run with bash against the embedded
 * default (as `npm start` runs it: no secrets set, demo on, a fresh data folder) and every
 * curl in it must answer the status the tour expects.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startReplica, type Replica } from '../harness/replica';

const README = path.resolve(__dirname, '..', 'README.md');
const MARKER = '<!-- readme-api-test:';
/** How the block names the server; the test points it at its own port. */
const BASE_LINE = 'B=http://127.0.0.1:3000';

/** The ```sh block right after the marker comment. */
function apiBlock(): string {
  const text = fs.readFileSync(README, 'utf8');
  const at = text.indexOf(MARKER);
  expect(at).toBeGreaterThan(0);
  const block = /```sh\n([\s\S]*?)```/.exec(text.slice(at));
  if (!block) throw new Error('no ```sh block after the marker');
  return block[1]!;
}

/** Each curl also reports `status METHOD url` on stderr, for the test to read. */
const REPORTING_CURL = `curl() { command curl -sS -w '%{stderr}%{http_code} %{method} %{url_effective}\\n' "$@"; }\n`;

let dir: string | undefined;
let server: Replica | undefined;

afterAll(async () => {
  await server?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

test('every command of the README API block answers as the tour says', async () => {
  const block = apiBlock();
  expect(block).toContain(BASE_LINE);
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'readme-api-'));
  server = await startReplica({
    // The embedded default as `npm start` runs it: secrets generated into DATA_DIR, demo on.
    env: {
      NODE_ENV: 'development',
      AUTH_SECRET: undefined,
      ADMIN_TOKEN: undefined,
      DATA_DIR: path.join(dir, 'data'),
    },
    timeoutMs: 60000,
  });
  const script = REPORTING_CURL + block.replace(BASE_LINE, `B=${server.url}`);
  const run = spawnSync('bash', ['-c', script], { cwd: dir, encoding: 'utf8', timeout: 60000 });
  expect(run.error).toBeUndefined();

  const answers = run.stderr
    .split('\n')
    .filter((line) => /^\d{3} [A-Z]+ http/.test(line))
    .map((line) => {
      const [status, method, url] = line.split(' ');
      return `${status} ${method} ${new URL(url!).pathname}`;
    });
  // The answers have no trailing newline: the echo follows the last one on its line.
  const comment = /comment (\d+)\n/.exec(run.stdout)?.[1];
  expect(comment).toMatch(/^\d+$/);
  expect(answers).toEqual([
    '200 POST /api/demo/session',
    '200 GET /openapi.json',
    '201 PUT /api/admin/users/7',
    '201 PUT /api/admin/albums/2',
    '201 PUT /api/admin/tracks/b1',
    '200 GET /api/tracks/night-drive-01/comments',
    '201 POST /api/tracks/night-drive-01/comments',
    '201 POST /api/tracks/night-drive-01/comments',
    `200 PATCH /api/comments/${comment}`,
    '202 POST /api/tracks/night-drive-01/typing',
    '200 GET /api/tracks/night-drive-01/events',
    '200 GET /api/tracks/night-drive-01/events',
    '200 GET /api/me/events',
    `204 DELETE /api/comments/${comment}`,
    '200 GET /healthz',
    '200 GET /readyz',
    '200 GET /metrics',
  ]);
  // What the commands printed: the stream (with the replayed comment) and the document saved.
  expect(run.stdout).toContain('event: connected');
  expect(run.stdout).toContain('event: new_comment');
  expect(run.stdout).toContain('trackcomments_open_streams');
  const saved = JSON.parse(fs.readFileSync(path.join(dir, 'openapi.json'), 'utf8')) as {
    openapi: string;
  };
  expect(saved.openapi).toMatch(/^3\.1\./);
}, 120000);
