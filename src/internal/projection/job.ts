/**
 * A runner as its parts see it: the projection, the stores it runs on, its
 * options resolved once, its state, and the last checkpoint it saw.
 */
import * as Effect from "effect/Effect"
import * as Queue from "effect/Queue"
import * as Ref from "effect/Ref"
import { CheckpointStore } from "../../CheckpointStore.js"
import { EventStore } from "../../EventStore.js"
import type { Projection } from "../../Projection.js"
import * as Handler from "./handler.js"
import * as State from "./state.js"

export interface Job<E, R, T extends string> {
  readonly projection: Projection<E, R, T>
  readonly name: string
  /** The projection's handler, whatever its form. */
  readonly apply: Handler.Apply<E, R, T>
  /** A handler per event: at least once, each event is retried on its own. */
  readonly perEvent: boolean
  readonly store: EventStore
  readonly checkpoints: CheckpointStore
  readonly batchSize: number
  readonly exactlyOnce: boolean
  readonly state: State.StateRef
  /** The last checkpoint this runner saw, for its log lines. */
  readonly position: Ref.Ref<bigint>
  /** A skip or park through the runner's handle wakes it at once. */
  readonly resolved: Queue.Queue<void>
}

export const make = <E, R, T extends string>(
  projection: Projection<E, R, T>
): Effect.Effect<Job<E, R, T>, never, EventStore | CheckpointStore> =>
  Effect.gen(function*() {
    return {
      projection,
      name: projection.name,
      apply: Handler.applyOf(projection),
      perEvent: projection.handle !== undefined,
      store: yield* EventStore,
      checkpoints: yield* CheckpointStore,
      batchSize: projection.batchSize ?? 100,
      exactlyOnce: projection.delivery !== "at-least-once",
      state: yield* State.make,
      position: yield* Ref.make(0n),
      resolved: yield* Queue.sliding<void>(1)
    }
  })

/** `effect` with its log lines annotated with the projection and the runner's position. */
export const logged = <E, R, T extends string>(job: Job<E, R, T>) => <A, E1, R1>(effect: Effect.Effect<A, E1, R1>) =>
  Effect.flatMap(
    Ref.get(job.position),
    (at) => Effect.annotateLogs(effect, { projection: job.name, position: at.toString() })
  )
