import { ConfigError, loadConfig, type Config } from './config/config';
import { startServer } from './server';

/** Entry point: reads the configuration from the environment and runs the server until SIGTERM/SIGINT. */
export async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`trackcomments: ${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
  const running = await startServer(config);
  const onSignal = (signal: string) => {
    void running.shutdown(signal).then((code) => process.exit(code));
  };
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGINT', () => onSignal('SIGINT'));
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`trackcomments: failed to start: ${(err as Error).message}\n`);
    process.exit(1);
  });
}
