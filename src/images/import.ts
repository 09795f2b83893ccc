import type { Readable } from 'node:stream';
import { NotImplementedError } from '../errors/index.js';
import type { Digest } from '../oci/index.js';
import type { Ctx } from './context.js';
import type { ImportOptions } from './types.js';

export async function importImage(_ctx: Ctx, _source: Readable | URL, _opts: ImportOptions = {}): Promise<{ id: Digest }> {
  throw new NotImplementedError('import: being written on this branch');
}
