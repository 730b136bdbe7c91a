import { PROJECT, sh } from './harness.js';

/** Creates fixture VMs (one per brand name) through the simulator's own CLI, as an operator would. */
export async function createFixtures(names: readonly string[]): Promise<void> {
  await sh(`node ${PROJECT}/build/test/sim/fixtures.js create ${names.join(' ')}`);
}

/** The UUID of the fixture VM of a brand, found the SmartOS way (`vmadm lookup`). */
export async function fixtureUuid(brand: string): Promise<string> {
  return (await sh(`vmadm lookup -1 brand=${brand}`)).trim();
}
