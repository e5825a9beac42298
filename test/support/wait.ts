/**
 * Waiting in tests for something that happens by itself (a runner takes over,
 * a read model catches up): poll for the condition with a generous limit, never
 * sleep and hope. The limit only matters when the store is broken, so it is
 * long enough for a busy 2-core machine (a PGlite instance alone can take 20 s
 * to start there); a test that passes never waits for it.
 */
import { Duration, Effect, Schedule } from "effect"

/**
 * How long (in milliseconds) a file's shared client may take to start, in
 * `beforeAll` or an `it.layer`: PGlite took up to 20 s on a busy 2-core machine.
 */
export const startupTimeout = 180_000

/** How long to wait for a condition before calling it a failure. */
export const patience: Duration.Duration = Duration.seconds(60)

// Quick at first (most conditions hold within milliseconds), then every 100 ms,
// so that a long wait does not keep a single-connection database (PGlite) busy
// with polls while the work it waits for needs that connection.
const poll = Schedule.exponential(Duration.millis(5), 1.5).pipe(Schedule.union(Schedule.spaced(Duration.millis(100))))

/**
 * Succeeds once `check` gives true; fails with an `Error` naming `what` when it
 * has not within `timeout` (default `patience`).
 */
export const eventually = <E, R>(
  check: Effect.Effect<boolean, E, R>,
  what: string,
  timeout: Duration.DurationInput = patience
): Effect.Effect<void, E | Error, R> =>
  check.pipe(
    Effect.repeat({ schedule: poll, until: (done) => done }),
    Effect.asVoid,
    Effect.timeoutFail({
      duration: timeout,
      onTimeout: () => new Error(`timed out after ${Duration.format(timeout)} waiting until ${what}`)
    })
  )

/**
 * Succeeds once `progress` reaches `target`; fails only when it stops moving
 * for `stall` (default `patience`). For work whose total time grows with the
 * machine's load (a read model catching up with thousands of events): a limit
 * on the whole would be a guess, a limit on standing still is not.
 */
export const reaches = <E, R>(
  progress: Effect.Effect<number, E, R>,
  target: number,
  what: string,
  stall: Duration.DurationInput = patience
): Effect.Effect<void, E | Error, R> =>
  Effect.gen(function*() {
    let last = -1
    let movedAt = Date.now()
    while (true) {
      const value = yield* progress
      if (value >= target) return
      if (value !== last) {
        last = value
        movedAt = Date.now()
      } else if (Date.now() - movedAt > Duration.toMillis(stall)) {
        return yield* Effect.fail(
          new Error(`${what}: stuck at ${value} of ${target} for ${Duration.format(stall)}`)
        )
      }
      yield* Effect.sleep(Duration.millis(100))
    }
  })
