import type { Writable } from 'node:stream';
import { NotImplementedError } from '../errors/index.js';
import type { Ctx } from './context.js';
import type { SaveOptions } from './types.js';

export async function saveImages(_ctx: Ctx, _refs: string[], _output: Writable, _opts: SaveOptions = {}): Promise<void> {
  throw new NotImplementedError('save: being written on this branch');
}
