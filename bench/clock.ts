/**
 * The clock of the live workloads, shared by the processes of one machine,
 * and an estimate of how far two processes' readings of it differ.
 */

/**
 * Milliseconds since the epoch with sub-millisecond resolution: the wall clock
 * read once when the process started (`performance.timeOrigin`), advanced by
 * the monotonic clock. Two processes on one machine read the same wall clock,
 * so their readings can be subtracted.
 */
export const now = (): number => performance.timeOrigin + performance.now()

/**
 * The other process's clock minus ours: `read` asks it for its `now()`; the
 * round trip with the smallest delay of `samples` gives the estimate (its
 * error is at most half that round trip).
 */
export const estimateSkew = async (read: () => Promise<number>, samples = 20): Promise<number> => {
  let best = { roundTrip: Infinity, skew: 0 }
  for (let i = 0; i < samples; i++) {
    const sent = now()
    const theirs = await read()
    const received = now()
    if (received - sent < best.roundTrip) best = { roundTrip: received - sent, skew: theirs - (sent + received) / 2 }
  }
  return best.skew
}
