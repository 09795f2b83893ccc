import { NotImplementedError } from '../errors/index.js';
import type { Digest, ImageConfig } from '../oci/index.js';
import type { Ctx } from './context.js';
import type { CreateImageOptions } from './types.js';

export async function createImage(_ctx: Ctx, _config: ImageConfig, _opts: CreateImageOptions = {}): Promise<{ id: Digest }> {
  throw new NotImplementedError('create: being written on this branch');
}
