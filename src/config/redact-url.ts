/**
 * The URL with its password replaced by "***", for logs and error messages.
 * An unparseable URL is not printed at all: `unparseable` stands in for it.
 */
export function redactUrlPassword(url: string, unparseable = '(unparseable URL)'): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return unparseable;
  }
}
