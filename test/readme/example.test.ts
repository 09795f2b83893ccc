import { expect, test } from 'vitest';
import { buildImage, openStowage } from 'stowage';
import { checkoutToTemp, startTestRegistry } from 'stowage/testing';

test('an image built in code, served, pulled into a store and checked out', async () => {
  const image = await buildImage({ layers: [{ files: { '/etc/greeting': 'hello\n' } }] });
  await using registry = await startTestRegistry({ images: { 'demo/app:1': image } });
  await using store = await openStowage({ temporary: true });
  await store.pull(registry.ref('demo/app:1'));
  await using rootfs = await checkoutToTemp(store, registry.ref('demo/app:1'));
  expect(rootfs.read('/etc/greeting')).toBe('hello\n');
});
