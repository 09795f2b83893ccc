import type { Registry } from '../harness/registry.js';

/**
 * The registry's request log from line `from` on, once `done` holds and the log has stayed quiet for a
 * few polls. The log reaches us through the registry's stdout, apart from (and often after) the HTTP
 * answer, so reading it right after the client's last response misses lines on a loaded machine.
 */
export async function registryLines(
  reg: Pick<Registry, 'requestLines'>, from: number, done: (lines: string[]) => boolean, timeoutMs = 10_000,
): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  let last = -1;
  let quiet = 0;
  for (;;) {
    const lines = reg.requestLines().slice(from);
    quiet = done(lines) && lines.length === last ? quiet + 1 : 0;
    if (quiet >= 3 || Date.now() > deadline) return lines;
    last = lines.length;
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** `done` for a push: the log shows the manifest PUT that ends it. */
export const manifestPut = (repo: string) => (lines: string[]): boolean => lines.some((l) => l.startsWith(`PUT /v2/${repo}/manifests/`));
