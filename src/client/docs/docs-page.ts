/**
 * The /docs page: renders /openapi.json (OpenAPI 3.1) with no third-party code, so it works
 * offline and under the default CSP (a script from 'self', no inline script or style: the
 * styles are a constructed stylesheet). It knows the parts of OpenAPI our document uses.
 */

type Json = Record<string, unknown>;
type Child = Node | string | null | undefined | false;

interface Doc {
  info: { title: string; version: string; summary?: string; description?: string };
  tags?: { name: string; description?: string }[];
  paths: Record<string, Record<string, Json>>;
  components: {
    schemas: Record<string, Json>;
    responses: Record<string, Json>;
    securitySchemes: Record<string, Json>;
  };
}

const PAGE_CSS = `
body { font: 15px/1.45 system-ui, sans-serif; margin: 0 auto; max-width: 64rem; padding: 1rem 1.5rem 4rem; color: #1d232b; }
h1 { margin-bottom: .2rem } h2 { border-bottom: 1px solid #d5dbe3; padding-bottom: .3rem; margin-top: 2.5rem }
code, .path { font-family: ui-monospace, monospace; font-size: .92em }
.op { border: 1px solid #d5dbe3; border-radius: 6px; margin: .8rem 0; padding: .6rem .9rem }
.op > h3 { margin: 0; font-size: 1rem; display: flex; gap: .6rem; align-items: baseline; flex-wrap: wrap }
.method { text-transform: uppercase; font-weight: 700; color: #fff; border-radius: 4px; padding: .05rem .45rem; font-size: .8rem; background: #4a5868 }
.method.get { background: #2f6fb1 } .method.post { background: #2d8a4e } .method.put { background: #a06a12 }
.method.patch { background: #7d5bb5 } .method.delete { background: #b43c3c }
.summary { font-weight: 400; color: #3d4752 } .muted { color: #66717d } h4 { margin: .7rem 0 .2rem; font-size: .9rem }
table { border-collapse: collapse; width: 100%; font-size: .9rem } td, th { text-align: left; vertical-align: top; padding: .2rem .5rem .2rem 0 }
ul.props { list-style: none; padding-left: 1rem; margin: .1rem 0 } .req { color: #b43c3c }
.schema { margin: .8rem 0 } .schema > h3 { margin: 0; font-size: 1rem }
`;

/** Appends the children that are there (null/false are skipped). */
function add(parent: HTMLElement, ...children: Child[]): HTMLElement {
  for (const c of children) if (c) parent.append(c);
  return parent;
}

function el(tag: string, attrs: Record<string, string> = {}, ...children: Child[]): HTMLElement {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return add(node, ...children);
}

/** Inline `code` spans of a description, as text nodes (never parsed as HTML). */
function prose(text: string | undefined, tag = 'p'): HTMLElement | null {
  if (!text) return null;
  const node = el(tag);
  text.split(/(`[^`]*`)/).forEach((part) => {
    node.append(
      part.startsWith('`') && part.endsWith('`') ? el('code', {}, part.slice(1, -1)) : part,
    );
  });
  return node;
}

const refName = (ref: string) => ref.slice(ref.lastIndexOf('/') + 1);
const schemaLink = (name: string) => el('a', { href: `#schema-${name}` }, name);

/** Constraints worth a reader's eye, in one line. */
function constraints(s: Json): string {
  const parts: string[] = [];
  const add = (key: string, label: string) => {
    if (s[key] !== undefined) parts.push(`${label} ${JSON.stringify(s[key])}`);
  };
  add('minimum', '≥');
  add('exclusiveMinimum', '>');
  add('maximum', '≤');
  add('minLength', 'min length');
  add('maxLength', 'max length');
  add('pattern', 'pattern');
  add('format', 'format');
  add('default', 'default');
  return parts.length ? ` (${parts.join(', ')})` : '';
}

/** A schema as a compact tree: type names, links to named schemas, object properties. */
function schemaView(s: Json | undefined): HTMLElement {
  const out = el('span');
  if (!s) return out;
  if (typeof s.$ref === 'string') {
    out.append(schemaLink(refName(s.$ref)));
    return out;
  }
  const alternatives = (s.anyOf ?? s.oneOf) as Json[] | undefined;
  if (alternatives?.every((alt) => typeof alt.title === 'string')) {
    // Named alternatives (the events of a stream): one entry each, with what it means.
    out.append('one of:');
    const list = el('ul', { class: 'props' });
    for (const alt of alternatives) {
      const { title, description, ...rest } = alt;
      list.append(
        add(
          el('li', { 'data-alternative': String(title) }),
          el('strong', {}, String(title)),
          description ? ' — ' : null,
          prose(description as string | undefined, 'span'),
          el('br'),
          schemaView(rest),
        ),
      );
    }
    out.append(list);
    return out;
  }
  if (alternatives) {
    alternatives.forEach((alt, i) => out.append(i ? ' | ' : '', schemaView(alt)));
    out.append(constraints(s));
    return out;
  }
  if (s.const !== undefined) out.append(el('code', {}, JSON.stringify(s.const)));
  else if (Array.isArray(s.enum))
    out.append(el('code', {}, s.enum.map((v) => JSON.stringify(v)).join(' | ')));
  else if (s.type === 'array') out.append('array of ', schemaView(s.items as Json));
  else if (s.contentSchema) out.append('JSON text: ', schemaView(s.contentSchema as Json));
  else out.append(Array.isArray(s.type) ? s.type.join(' | ') : String(s.type ?? 'any'));
  out.append(constraints(s));
  const props = s.properties as Record<string, Json> | undefined;
  if (props) {
    const required = new Set((s.required as string[] | undefined) ?? []);
    const list = el('ul', { class: 'props' });
    for (const [name, prop] of Object.entries(props)) {
      list.append(
        el(
          'li',
          {},
          el('code', {}, name),
          required.has(name) ? el('span', { class: 'req', title: 'required' }, '*') : null,
          ': ',
          schemaView(prop),
          prose(prop.description as string | undefined, 'span') ? ' — ' : null,
          prose(prop.description as string | undefined, 'span'),
        ),
      );
    }
    out.append(list);
  }
  return out;
}

function contentView(content: Record<string, Json> | undefined): HTMLElement | null {
  if (!content) return null;
  const list = el('ul', { class: 'props' });
  for (const [media, body] of Object.entries(content)) {
    list.append(el('li', {}, el('code', {}, media), ': ', schemaView(body.schema as Json)));
  }
  return list;
}

function operationView(doc: Doc, path: string, method: string, op: Json): HTMLElement {
  const section = el('section', {
    class: 'op',
    id: String(op.operationId ?? `${method}-${path}`),
    'data-method': method.toUpperCase(),
    'data-path': path,
  });
  add(
    section,
    el(
      'h3',
      {},
      el('span', { class: `method ${method}` }, method),
      el('span', { class: 'path' }, path),
      el('span', { class: 'summary' }, String(op.summary ?? '')),
    ),
    prose(op.description as string | undefined),
  );
  const security = (op.security as Json[] | undefined) ?? [];
  add(
    section,
    el(
      'p',
      { class: 'muted' },
      'Auth: ',
      security.length ? security.map((s) => Object.keys(s).join('+')).join(' or ') : 'none',
    ),
  );
  const params = (op.parameters as Json[] | undefined) ?? [];
  if (params.length) {
    const rows = params.map((p) =>
      el(
        'tr',
        {},
        el('td', {}, el('code', {}, String(p.name))),
        el('td', {}, String(p.in)),
        el('td', {}, schemaView(p.schema as Json)),
        el('td', {}, prose(p.description as string | undefined, 'span')),
      ),
    );
    add(section, el('h4', {}, 'Parameters'), el('table', {}, ...rows));
  }
  const body = op.requestBody as Json | undefined;
  if (body)
    add(section, el('h4', {}, 'Request body'), contentView(body.content as Record<string, Json>));
  const responses = el('ul', { class: 'props' });
  for (const [status, raw] of Object.entries(op.responses as Record<string, Json>)) {
    const response =
      typeof raw.$ref === 'string' ? (doc.components.responses[refName(raw.$ref)] ?? raw) : raw;
    responses.append(
      el(
        'li',
        {},
        el('strong', {}, status),
        ' ',
        prose(String(response.description ?? ''), 'span'),
        contentView(response.content as Record<string, Json> | undefined),
      ),
    );
  }
  add(section, el('h4', {}, 'Responses'), responses);
  return section;
}

function render(doc: Doc, root: HTMLElement): void {
  document.title = `${doc.info.title} API ${doc.info.version}`;
  add(
    root,
    el('h1', {}, `${doc.info.title} API`),
    el(
      'p',
      { class: 'muted' },
      `version ${doc.info.version} · `,
      el('a', { href: '/openapi.json' }, 'openapi.json'),
    ),
    prose(doc.info.summary),
    prose(doc.info.description),
    el('h2', {}, 'Authentication'),
  );
  const schemes = el('ul');
  for (const [name, scheme] of Object.entries(doc.components.securitySchemes)) {
    schemes.append(
      el('li', {}, el('code', {}, name), ': ', prose(String(scheme.description ?? ''), 'span')),
    );
  }
  add(root, schemes);
  const tags = doc.tags?.map((t) => t.name) ?? [];
  for (const tag of tags) {
    const info = doc.tags?.find((t) => t.name === tag);
    add(root, el('h2', { id: `tag-${tag}` }, tag), prose(info?.description));
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(item)) {
        if ((op.tags as string[] | undefined)?.includes(tag))
          add(root, operationView(doc, path, method, op));
      }
    }
  }
  add(root, el('h2', { id: 'schemas' }, 'Schemas'));
  for (const [name, schema] of Object.entries(doc.components.schemas)) {
    add(
      root,
      el(
        'div',
        { class: 'schema', id: `schema-${name}` },
        el('h3', {}, name),
        prose(schema.description as string | undefined),
        schemaView(schema),
      ),
    );
  }
  root.dataset.rendered = 'true';
}

async function main(): Promise<void> {
  const sheet = new CSSStyleSheet();
  sheet.replaceSync(PAGE_CSS);
  document.adoptedStyleSheets = [sheet];
  const root = document.getElementById('docs');
  if (!root) return;
  try {
    const res = await fetch('/openapi.json', { headers: { Accept: 'application/json' } });
    if (!res.ok) throw new Error(`GET /openapi.json: ${res.status}`);
    render((await res.json()) as Doc, root);
  } catch (err) {
    add(root, el('p', { role: 'alert' }, `Could not load the API description: ${String(err)}`));
    root.dataset.rendered = 'failed';
  }
}

void main();

export {};
