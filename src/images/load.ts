import type { Readable } from 'node:stream';
import { NotImplementedError } from '../errors/index.js';
import type { Ctx } from './context.js';
import type { LoadOptions, LoadResult } from './types.js';

export async function loadImages(_ctx: Ctx, _input: Readable, _opts: LoadOptions = {}): Promise<LoadResult> {
  throw new NotImplementedError('load: being written on this branch');
}
