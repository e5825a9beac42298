/**
 * A projection with tables over `Generations`: each generation has its own
 * tables and checkpoint; the runner follows the active one and, when a
 * rebuild is requested, builds the next one beside it until the views switch.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import { type Generations, Superseded, tableName } from "../../Generations.js"
import { checkpointName, type Projection, type Tables } from "../../Projection.js"
import type * as Batch from "./batch.js"
import { follow } from "./follow.js"
import type { Job } from "./job.js"

const rebuildPoll = Duration.seconds(1)

/** The tables of `generation` (the declared names themselves for none). */
export const tablesOf = <E, R, T extends string>(
  projection: Projection<E, R, T>,
  generation: number | undefined
): Tables<T> =>
  Object.fromEntries(
    Object.entries<string>(projection.tables ?? {}).map((
      [key, table]
    ) => [key, generation === undefined ? table : tableName(table, generation)])
  ) as Tables<T>

/** Runs the projection on its active generation, and builds a requested rebuild beside it. */
export const run = <E, R, T extends string>(job: Job<E, R, T>, gens: Generations) => {
  const { checkpoints, name, projection } = job
  const declared: ReadonlyArray<string> = projection.tables === undefined ? [] : Object.values(projection.tables)

  // The first time a generation is used: its tables, its views (unless it is
  // a rebuild, which readers see only once it has caught up) and its
  // checkpoint, in one transaction, so a crash leaves all or nothing.
  const prepare = (generation: number, publish: boolean) =>
    Effect.gen(function*() {
      const checkpoint = checkpointName(name, generation)
      const existing = yield* checkpoints.load(checkpoint)
      if (Option.isSome(existing)) return existing.value
      yield* checkpoints.transaction(Effect.gen(function*() {
        if (projection.setup) {
          yield* Effect.orDieWith(projection.setup(tablesOf(projection, generation)), (error) =>
            new Error(`The setup of projection "${name}" failed for generation ${generation}: ${String(error)}`))
        }
        if (publish) {
          yield* gens.publish(generation, declared)
        }
        yield* checkpoints.save(checkpoint, 0n, { expected: 0n })
      }))
      return 0n
    })

  const activeTarget = (generation: number): Batch.Target<T> => ({
    checkpoint: checkpointName(name, generation),
    tables: tablesOf(projection, generation),
    before: gens.guard(name, generation),
    after: () => Effect.void
  })

  // A rebuild: the next generation, built from the start beside the active
  // one; each of its batches tries to switch the views over, which succeeds
  // once it is not behind the active generation.
  const buildTarget = (generation: number): Batch.Target<T> => ({
    checkpoint: checkpointName(name, generation),
    tables: tablesOf(projection, generation),
    before: gens.guard(name, generation),
    after: (position) => gens.trySwitch(name, generation, position, declared)
  })

  const watchForRebuild = (active: number) =>
    Effect.gen(function*() {
      const { building } = yield* gens.current(name)
      if (building === undefined) return
      yield* Effect.logInfo(`Projection "${name}" rebuilds into generation ${building}`)
      const checkpoint = yield* prepare(building, false)
      const switched = Effect.flatMap(gens.current(name), (current) =>
        current.active === building ? Effect.fail(new Superseded({ name, generation: active })) : Effect.void)
      yield* switched
      return yield* follow(job, buildTarget(building), checkpoint, switched)
    }).pipe(Effect.repeat(Schedule.spaced(rebuildPoll)), Effect.zipRight(Effect.never))

  return Effect.gen(function*() {
    const { active } = yield* gens.current(name)
    // After a switch, the generation before is read by nobody.
    if (active > 1) yield* gens.drop(active - 1, declared)
    const checkpoint = yield* prepare(active, true)
    return yield* Effect.raceFirst(follow(job, activeTarget(active), checkpoint), watchForRebuild(active))
  })
}
