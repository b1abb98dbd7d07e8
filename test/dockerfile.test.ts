import fs from 'node:fs';
import path from 'node:path';

// Static checks of the image build: no docker engine runs where the suite runs, so the
// Dockerfile is read as text and checked against the files it builds from.

const ROOT = path.resolve(__dirname, '..');
const read = (file: string) => fs.readFileSync(path.join(ROOT, file), 'utf8');

describe('Dockerfile', () => {
  // Instructions, with line continuations joined and comments dropped.
  const instructions = read('Dockerfile')
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const stages: string[][] = [];
  for (const line of instructions) {
    if (/^FROM /i.test(line)) stages.push([]);
    stages.at(-1)?.push(line);
  }
  const runtime = stages.at(-1)!;
  const args = Object.fromEntries(
    instructions
      .filter((l) => /^ARG \w+=/.test(l))
      .map((l) => l.slice(4).split('=') as [string, string]),
  );
  const baseOf = (from: string) =>
    from.split(/\s+/)[1]!.replace(/^\$\{(\w+)\}$/, (_, name: string) => args[name] ?? name);

  it('is multi-stage and runs on node 20 slim', () => {
    expect(stages.length).toBeGreaterThanOrEqual(3);
    expect(baseOf(runtime[0]!)).toMatch(/^node:20(\.[\d.]+)?-(bookworm-)?slim$/);
  });

  it('generates the Prisma client and compiles at build time', () => {
    const build = stages.find((s) => s.some((l) => /^RUN npm run build\b/.test(l)));
    expect(build).toBeDefined();
    expect(build!.some((l) => /^COPY prisma\b/.test(l))).toBe(true);
    const scripts = (JSON.parse(read('package.json')) as { scripts: Record<string, string> })
      .scripts;
    expect(scripts.build).toMatch(/npm run prisma:generate/);
    expect(scripts['prisma:generate']).toMatch(/prisma generate/);
    expect(scripts.build).toMatch(/tsc -p tsconfig\.build\.json/);
    expect(stages.some((s) => s.some((l) => /npm ci\b.*--omit=dev/.test(l)))).toBe(true);
  });

  it('runs as a non-root user in production mode', () => {
    const users = runtime.filter((l) => /^USER /.test(l));
    expect(users.length).toBeGreaterThan(0);
    expect(users.at(-1)!.slice(5).trim()).not.toMatch(/^(root|0)(:|$)/);
    expect(runtime).toContain('ENV NODE_ENV=production');
    expect(runtime).toContain('EXPOSE 3000');
    expect(runtime).toContain('CMD ["node", "dist/main.js"]');
    expect(runtime.find((l) => /^HEALTHCHECK /.test(l))).toMatch(/\/healthz/);
  });

  it('keeps dependencies, data, build output, git and secrets out of the build context', () => {
    const ignored = read('.dockerignore')
      .split('\n')
      .map((l) => l.trim());
    for (const entry of ['node_modules', 'data', 'dist', '.git', 'test-artifacts', '.env']) {
      expect(ignored).toContain(entry);
    }
  });
});
