import { NotImplementedError } from '../errors/index.js';
import type { Digest } from '../oci/index.js';
import type { Ctx } from './context.js';
import type { SquashOptions } from './types.js';

export async function squashImage(_ctx: Ctx, _image: string, _opts: SquashOptions = {}): Promise<{ id: Digest }> {
  throw new NotImplementedError('squash: being written on this branch');
}
