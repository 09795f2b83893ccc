/** docker's "Are you sure you want to continue? [y/N]" confirmation, read from stdin (EOF means no). */
import readline from 'node:readline';
import type { Context } from './command.js';

export async function confirm(ctx: Context, warning: string): Promise<boolean> {
  ctx.io.stdout.write(`${warning}\nAre you sure you want to continue? [y/N] `);
  const answer = await readLine(ctx.io.stdin);
  return /^\s*y(es)?\s*$/i.test(answer ?? '');
}

/** One line of input, or undefined at end of input. Leaves the stream paused so the process can exit. */
export function readLine(input: NodeJS.ReadableStream): Promise<string | undefined> {
  return new Promise((resolve) => {
    const rl = readline.createInterface({ input, terminal: false });
    let done = false;
    const finish = (v: string | undefined): void => {
      if (done) return;
      done = true;
      rl.close();
      input.pause();
      resolve(v);
    };
    rl.once('line', (l) => finish(l));
    rl.once('close', () => finish(undefined));
  });
}

/** Everything on stdin (for --password-stdin), without the final newline. */
export async function readAll(input: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of input) chunks.push(typeof c === 'string' ? Buffer.from(c) : (c as Buffer));
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

/** Asks on the terminal; with `hidden`, typed characters are not echoed (passwords). */
export async function ask(ctx: Context, question: string, hidden = false): Promise<string> {
  const input = ctx.io.stdin as NodeJS.ReadStream;
  ctx.io.stdout.write(question);
  if (!hidden || typeof input.setRawMode !== 'function') return (await readLine(input)) ?? '';
  input.setRawMode(true);
  input.resume();
  try {
    return await new Promise<string>((resolve, reject) => {
      let value = '';
      const onData = (chunk: Buffer | string): void => {
        for (const ch of String(chunk)) {
          if (ch === '\r' || ch === '\n' || ch === '\u0004') { input.off('data', onData); ctx.io.stdout.write('\n'); resolve(value); return; }
          if (ch === '\u0003') { input.off('data', onData); reject(new Error('interrupted')); return; }
          if (ch === '\u007f' || ch === '\b') value = value.slice(0, -1);
          else value += ch;
        }
      };
      input.on('data', onData);
    });
  } finally {
    input.setRawMode(false);
    input.pause();
  }
}
