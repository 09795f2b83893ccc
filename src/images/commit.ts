import { NotImplementedError } from '../errors/index.js';
import type { Digest } from '../oci/index.js';
import type { Ctx } from './context.js';
import type { CommitOptions } from './types.js';

export async function commitContainer(_ctx: Ctx, _container: string, _opts: CommitOptions = {}): Promise<{ id: Digest }> {
  throw new NotImplementedError('commit: being written on this branch');
}
