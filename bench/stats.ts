/**
 * Medians over runs and the ratios between contenders.
 */

/** The median of the values that are there; null when none is. */
export const median = (values: ReadonlyArray<number | null>): number | null => {
  const present = values.filter((value): value is number => value !== null && Number.isFinite(value))
  if (present.length === 0) return null
  const sorted = [...present].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1
    ? sorted[middle] ?? null
    : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2
}

/** `a / b`, or null when either is missing or b is 0. */
export const ratio = (a: number | null | undefined, b: number | null | undefined): number | null =>
  a === null || a === undefined || b === null || b === undefined || b === 0 ? null : a / b
