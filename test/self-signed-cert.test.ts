import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { checkNginxConfig } from '../harness/nginx';
import { makeSelfSignedCertificate } from '../harness/tls';

// nginx/self-signed-cert.sh is what docker compose's tls-cert service runs before nginx starts
// (with /bin/sh, in the nginx image). Here it runs with the local openssl into temp directories
// that stand in for the tls volume.

const SCRIPT = path.resolve(__dirname, '../nginx/self-signed-cert.sh');

interface ScriptRun {
  status: number | null;
  stdout: string;
  stderr: string;
}

function runScript(...args: string[]): ScriptRun {
  const result = spawnSync('/bin/sh', [SCRIPT, ...args], { encoding: 'utf8', timeout: 30000 });
  if (result.error) throw result.error;
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

const filesIn = (dir: string) => ({
  certificate: path.join(dir, 'tls.crt'),
  key: path.join(dir, 'tls.key'),
});

/** The certificate, and whether the key beside it is its private key. */
function inspect(dir: string): { cert: crypto.X509Certificate; keyMatches: boolean } {
  const files = filesIn(dir);
  const cert = new crypto.X509Certificate(fs.readFileSync(files.certificate));
  const key = crypto.createPrivateKey(fs.readFileSync(files.key));
  return { cert, keyMatches: cert.checkPrivateKey(key) };
}

let volume: string;
beforeEach(() => {
  // An empty directory, as a new named volume is.
  volume = fs.mkdtempSync(path.join(os.tmpdir(), 'trackcomments-tls-volume-'));
});
afterEach(() => fs.rmSync(volume, { recursive: true, force: true }));

describe('nginx/self-signed-cert.sh', () => {
  it('makes a self-signed certificate and its key at first start, for localhost and 127.0.0.1', () => {
    const made = runScript(volume);
    expect({ status: made.status, stderr: made.stderr }).toEqual({ status: 0, stderr: '' });
    expect(made.stdout).toMatch(/made a self-signed certificate for localhost/);
    // Nothing else is left in the volume (its temp directory is gone).
    expect(fs.readdirSync(volume).sort()).toEqual(['tls.crt', 'tls.key']);
    const { cert, keyMatches } = inspect(volume);
    expect(keyMatches).toBe(true);
    expect(cert.subject).toBe('CN=localhost');
    expect(cert.issuer).toBe(cert.subject);
    expect(cert.subjectAltName).toBe('DNS:localhost, IP Address:127.0.0.1');
    expect(new Date(cert.validTo).getTime()).toBeGreaterThan(Date.now() + 300 * 86400_000);
    // The key is for nginx's master (root) only.
    expect(fs.statSync(filesIn(volume).key).mode & 0o777).toBe(0o600);
  });

  it('keeps them at every later start', () => {
    expect(runScript(volume).status).toBe(0);
    const first = fs.readdirSync(volume).map((f) => fs.readFileSync(path.join(volume, f)));
    const again = runScript(volume);
    expect({ status: again.status, stderr: again.stderr }).toEqual({ status: 0, stderr: '' });
    expect(again.stdout).toMatch(/exist; keeping them/);
    const second = fs.readdirSync(volume).map((f) => fs.readFileSync(path.join(volume, f)));
    expect(second).toEqual(first);
  });

  it('keeps a certificate the operator mounted', () => {
    makeSelfSignedCertificate(volume);
    const before = inspect(volume).cert.fingerprint256;
    const kept = runScript(volume);
    expect(kept.status).toBe(0);
    expect(inspect(volume).cert.fingerprint256).toBe(before);
  });

  it('refuses half a pair and writes nothing', () => {
    makeSelfSignedCertificate(volume);
    fs.rmSync(filesIn(volume).key);
    const refused = runScript(volume);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toMatch(/only one of .*tls\.crt and .*tls\.key exists/);
    expect(fs.readdirSync(volume)).toEqual(['tls.crt']);
    // An empty key file counts as missing, not as a key.
    fs.writeFileSync(filesIn(volume).key, '');
    expect(runScript(volume).status).toBe(1);
    expect(fs.statSync(filesIn(volume).key).size).toBe(0);
  });

  it('names the certificate for the given server name too, and refuses a name that is none', () => {
    const named = runScript(volume, 'comments.example.com');
    expect(named.status).toBe(0);
    const { cert } = inspect(volume);
    expect(cert.subject).toBe('CN=comments.example.com');
    expect(cert.subjectAltName).toBe(
      'DNS:comments.example.com, DNS:localhost, IP Address:127.0.0.1',
    );
    const other = fs.mkdtempSync(path.join(volume, 'other-'));
    const refused = runScript(other, 'bad name;');
    expect(refused.status).toBe(1);
    expect(refused.stderr).toMatch(/must be a DNS name/);
    expect(fs.readdirSync(other)).toEqual([]);
  });

  it('makes what nginx -t accepts with the TLS template and the redirect; a mismatched key is refused', () => {
    expect(runScript(volume).status).toBe(0);
    const files = filesIn(volume);
    const accepted = checkNginxConfig({
      upstreams: ['127.0.0.1:3000'],
      tls: files,
      httpRedirect: true,
    });
    expect({ ok: accepted.ok, output: accepted.output }).toEqual({
      ok: true,
      output: expect.stringContaining('test is successful') as unknown,
    });
    expect(accepted.rendered).toContain(`ssl_certificate ${files.certificate};`);
    // Control: nginx -t really loads the files (a key of another certificate fails it).
    const other = fs.mkdtempSync(path.join(volume, 'other-'));
    expect(runScript(other).status).toBe(0);
    const mismatched = checkNginxConfig({
      upstreams: ['127.0.0.1:3000'],
      tls: { certificate: files.certificate, key: filesIn(other).key },
    });
    expect(mismatched.ok).toBe(false);
    expect(mismatched.output).toMatch(/key values mismatch/);
  });
});
