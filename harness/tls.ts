import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

/** A certificate and its private key, as PEM files (what nginx's ssl_certificate* take). */
export interface TlsFiles {
  certificate: string;
  key: string;
}

/** The script docker compose runs at first start (service tls-cert); the tests use it too. */
const SELF_SIGNED_CERT_SCRIPT = path.resolve(__dirname, '../nginx/self-signed-cert.sh');

/**
 * Makes a self-signed certificate for 127.0.0.1 and localhost into `dir` (tls.crt, tls.key)
 * with nginx/self-signed-cert.sh, the script an operator's first start runs. Clients must
 * skip verification or trust the certificate itself (it is its own CA).
 */
export function makeSelfSignedCertificate(dir: string): TlsFiles {
  const files = { certificate: path.join(dir, 'tls.crt'), key: path.join(dir, 'tls.key') };
  fs.mkdirSync(dir, { recursive: true });
  const result = spawnSync('sh', [SELF_SIGNED_CERT_SCRIPT, dir, 'localhost'], {
    encoding: 'utf8',
    timeout: 30000,
  });
  if (result.status !== 0 || !fs.existsSync(files.certificate)) {
    throw new Error(
      `could not make a test certificate: ${result.error ?? ''}${result.stderr ?? ''}`,
    );
  }
  return files;
}

const versions = new Map<string, string>();

/** `nginx -v` of this binary, e.g. "1.22.1" (asked once per binary). */
export function nginxVersion(nginxBinary: string): string {
  let version = versions.get(nginxBinary);
  if (version === undefined) {
    const result = spawnSync(nginxBinary, ['-v'], { encoding: 'utf8', timeout: 15000 });
    const found = /nginx version: [^/\s]+\/(\d+\.\d+(?:\.\d+)?)/.exec(
      `${result.stderr ?? ''}${result.stdout ?? ''}`,
    );
    if (!found) throw new Error(`cannot tell the version of ${nginxBinary}: ${result.stderr}`);
    version = found[1]!;
    versions.set(nginxBinary, version);
  }
  return version;
}

/**
 * Whether this nginx has the `http2 on;` directive (1.25.1 and later). Older ones take HTTP/2
 * only as a `listen … http2` parameter, which newer ones still accept but warn about.
 * nginx/render.sh makes the same choice.
 */
export function hasHttp2Directive(version: string): boolean {
  const [major = 0, minor = 0, patch = 0] = version.split('.').map(Number);
  if (major !== 1) return major > 1;
  return minor > 25 || (minor === 25 && patch >= 1);
}
