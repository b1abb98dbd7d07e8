import type { AddressInfo } from 'node:net';
import { signUserToken } from '../auth/tokens';
import type { ServiceSecrets } from '../infra/dev-secrets';
import { DEMO_USERS } from '../store/demo-seed';

/** The URL to print for the bound address, and a warning when it is reachable from elsewhere. */
export function describeListenAddress({ address, port }: AddressInfo): {
  base: string;
  reach: string;
} {
  if (address === '0.0.0.0' || address === '::') {
    const base = `http://${address === '::' ? 'localhost' : '127.0.0.1'}:${port}`;
    return { base, reach: `all interfaces (${address}): other machines can reach it` };
  }
  const host = address.includes(':') ? `[${address}]` : address;
  return { base: `http://${host}:${port}`, reach: `${host} only` };
}

/**
 * The embedded default's banner (never in production). Tokens are printed only when signed
 * with a generated secret: an operator's AUTH_SECRET may be shared with the main application.
 */
export async function printDemoHelp(
  address: AddressInfo,
  secrets: ServiceSecrets,
  demoPage: boolean,
): Promise<void> {
  const { base, reach } = describeListenAddress(address);
  const lines = ['', `trackcomments (embedded database) on ${base}, listening on ${reach}`];
  if (demoPage) lines.push(`Demo page: ${base}/`);
  let example = '$T';
  if (secrets.generated.authSecret) {
    lines.push('Demo tokens (valid 30 days):');
    for (const u of DEMO_USERS) {
      const token = await signUserToken(secrets.authSecret, u.id, 30 * 24 * 3600);
      if (example === '$T') example = token;
      lines.push(`  ${u.username.padEnd(6)} ${token}`);
    }
  } else {
    lines.push('Demo tokens: not printed, AUTH_SECRET is yours (sign in on the demo page).');
  }
  lines.push(
    secrets.generated.adminToken
      ? `Admin token: ${secrets.adminToken}`
      : 'Admin token: the ADMIN_TOKEN you set (not printed).',
    'Try:',
    `  curl -N -H "Authorization: Bearer ${example}" ${base}/api/tracks/night-drive-01/events`,
    `  curl -H "Authorization: Bearer ${example}" -H 'Content-Type: application/json' \\`,
    `       -d '{"content":"love this @bob","timestamp":42}' ${base}/api/tracks/night-drive-01/comments`,
    '',
  );
  process.stdout.write(lines.join('\n') + '\n');
}
