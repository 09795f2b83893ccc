import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { CheckoutOptions, LocalImages } from '../images/index.js';

/** An image's root filesystem in a private temporary directory, removed by `remove()` or `await using`. */
export interface TempCheckout extends AsyncDisposable {
  /** The root of the checked-out tree. */
  readonly dir: string;
  /** The absolute path of an image path (`/etc/hostname`) inside the checkout. */
  path(imagePath: string): string;
  /** Reads a file of the image as text. */
  read(imagePath: string): string;
  remove(): Promise<void>;
}

/** Checks an image of `store` out into a fresh temporary directory. */
export async function checkoutToTemp(store: Pick<LocalImages, 'checkout'>, refOrID: string, opts: CheckoutOptions & { tmpdir?: string } = {}): Promise<TempCheckout> {
  const { tmpdir, ...rest } = opts;
  const parent = fs.mkdtempSync(path.join(tmpdir ?? os.tmpdir(), 'stowage-checkout-'));
  const dir = path.join(parent, 'rootfs');
  try {
    await store.checkout(refOrID, dir, rest);
  } catch (e) {
    fs.rmSync(parent, { recursive: true, force: true });
    throw e;
  }
  const remove = (): Promise<void> => fs.promises.rm(parent, { recursive: true, force: true });
  const inside = (p: string): string => path.join(dir, path.posix.normalize(`/${p}`));
  return {
    dir,
    path: inside,
    read: (p) => fs.readFileSync(inside(p), 'utf8'),
    remove,
    [Symbol.asyncDispose]: remove,
  };
}
