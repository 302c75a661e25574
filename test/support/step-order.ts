/**
 * The take-over promotes the standby and fences the broken Slave side by side (failover/take-over.ts): the
 * events they record, and the VMS calls they make, come in either order. These put the pair in step order
 * (the promotion first) where the two are next to each other. Anywhere else they stay where they are, so a
 * spec expecting the step order still fails when either step runs before the claim or after the camera move.
 */
const SIDE_BY_SIDE: ReadonlyArray<readonly [first: string, second: string]> = [
  ['standby-promoted', 'slave-fenced'],
  ['promote', 'fence'],
];

export const inStepOrder = <T>(items: readonly T[], nameOf: (item: T) => string): T[] => {
  const ordered = [...items];
  for (let index = 0; index + 1 < ordered.length; index += 1) {
    const here = ordered[index] as T;
    const next = ordered[index + 1] as T;
    const swapped = SIDE_BY_SIDE.some(([first, second]) => nameOf(here) === second && nameOf(next) === first);
    if (swapped) ordered.splice(index, 2, next, here);
  }
  return ordered;
};

/** Names (events or VMS operations) in step order. */
export const namesInStepOrder = (names: readonly string[]): string[] => inStepOrder(names, (name) => name);
