import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/**
 * Layering of src/: what each folder may import from the others (relative imports). Anything
 * not listed is a wrong-way import: http → domain → store; streams, bus and outbox below http;
 * events shared by all (and all the client may import); config and metrics at the bottom.
 * infra/ (database, Redis, secrets file) and lifecycle/ (listen, drain, shutdown, banner) serve
 * the composition root; app.ts, server.ts and main.ts are that root: they may import anything,
 * and nothing in a folder imports them.
 */
const LAYERS = {
  config: [],
  metrics: [],
  events: [],
  client: ['events'],
  domain: ['events', 'config', 'metrics'],
  auth: ['domain', 'events', 'config', 'metrics'],
  store: ['domain', 'events', 'generated', 'config', 'metrics'],
  bus: ['events', 'config', 'metrics'],
  outbox: ['bus', 'events', 'config', 'metrics'],
  streams: ['bus', 'events', 'config', 'metrics'],
  http: ['domain', 'auth', 'streams', 'events', 'config', 'metrics'],
  infra: ['store', 'bus', 'events', 'config', 'metrics'],
  lifecycle: ['infra', 'auth', 'store', 'events', 'config', 'metrics'],
};

/** In `files`, an import whose path matches `regex` fails `npm run lint` with `message`. */
function forbidImports(files, regex, message) {
  return {
    files,
    rules: { 'no-restricted-imports': ['error', { patterns: [{ regex, message }] }] },
  };
}

/**
 * One block per layer and folder depth (a file in src/<layer>/ leaves it with one `../`, in
 * src/<layer>/<sub>/ with two): a relative import that leaves the layer must name an allowed one.
 */
const layering = Object.entries(LAYERS).flatMap(([layer, allowed]) => {
  const notAllowed = allowed.length ? `(?!(?:${allowed.join('|')})(?:/|$))` : '';
  const rule = allowed.length ? `may import only ${allowed.join(', ')}` : 'imports nothing else';
  return [
    [`src/${layer}/*.ts`, '\\.\\./'],
    [`src/${layer}/*/*.ts`, '\\.\\./\\.\\./'],
  ].map(([files, up]) =>
    forbidImports(
      [files],
      `^${up}${notAllowed}`,
      `src/${layer} ${rule} in src (layering: eslint.config.mjs).`,
    ),
  );
});

export default tseslint.config(
  {
    ignores: [
      'node_modules',
      'dist',
      'data',
      'src/generated',
      'test-artifacts',
      'public/vendor',
      'public/build',
      'bench-results',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
    },
  },
  {
    files: ['public/**/*.js'],
    languageOptions: {
      sourceType: 'module',
      globals: {
        window: 'readonly',
        document: 'readonly',
        EventSource: 'readonly',
        fetch: 'readonly',
        console: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        setInterval: 'readonly',
        clearInterval: 'readonly',
        performance: 'readonly',
        requestAnimationFrame: 'readonly',
        URL: 'readonly',
        URLSearchParams: 'readonly',
        HTMLElement: 'readonly',
        Intl: 'readonly',
      },
    },
  },
  {
    files: ['**/*.js', '**/*.cjs'],
    ignores: ['public/**'],
    languageOptions: {
      sourceType: 'commonjs',
      globals: {
        require: 'readonly',
        module: 'writable',
        process: 'readonly',
        __dirname: 'readonly',
        console: 'readonly',
      },
    },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  ...layering,
  forbidImports(
    ['public/**/*.ts'],
    '^(?:\\.\\./)+src/(?!(?:client|events)(?:/|$))',
    'The demo page is a client of the contract: it imports only src/client and src/events.',
  ),
  forbidImports(
    ['bench/**/*.ts'],
    '^(?:\\.\\./)+test(?:/|$)',
    'The bench owns its helpers: bench/ does not import from test/.',
  ),
  forbidImports(
    ['harness/**/*.ts'],
    '^(?:\\.\\./)+(?:test|bench)(?:/|$)',
    'harness/ serves both the tests and the bench: it imports from neither.',
  ),
);
