/**
 * Generations of a projection's read model tables: readers see one generation
 * through views while the next is rebuilt beside it, and the views switch in
 * one transaction once the new generation has caught up.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import type { StoreError } from "./Errors.js"

/**
 * The generation a runner works on is no longer active (a rebuild switched
 * the views to a newer one): it must start over on the active one.
 *
 * @since 0.1.0
 * @category errors
 */
export class Superseded extends Schema.TaggedError<Superseded>()("Superseded", {
  name: Schema.String,
  generation: Schema.Number
}) {
  override get message(): string {
    return `Generation ${this.generation} of projection "${this.name}" is no longer active`
  }
}

/**
 * @since 0.1.0
 * @category models
 */
export interface GenerationState {
  readonly active: number
  readonly building: number | undefined
}

/**
 * The physical table of `table` in `generation`: `orders` → `orders_g2`.
 *
 * @since 0.1.0
 * @category naming
 */
export const tableName = (table: string, generation: number): string => `${table}_g${generation}`

/**
 * @since 0.1.0
 * @category models
 */
export interface Generations {
  /** The active generation and the one being built; creates generation 1 on first use. */
  readonly current: (name: string) => Effect.Effect<GenerationState, StoreError>
  /** Asks for a rebuild; returns the generation that will be built (the pending one if a rebuild is under way). */
  readonly requestRebuild: (name: string) => Effect.Effect<number, StoreError>
  /** In a batch transaction: holds the generation row, and fails unless `generation` is still active or being built. */
  readonly guard: (name: string, generation: number) => Effect.Effect<void, Superseded | StoreError>
  /**
   * In a batch transaction of the generation being built, after its checkpoint
   * moved to `position`: if the active generation's checkpoint is not ahead,
   * points the views at `generation` and makes it active. Returns whether it did.
   */
  readonly trySwitch: (
    name: string,
    generation: number,
    position: bigint,
    tables: ReadonlyArray<string>
  ) => Effect.Effect<boolean, StoreError>
  /** Points the views at `generation` (when it is created). */
  readonly publish: (generation: number, tables: ReadonlyArray<string>) => Effect.Effect<void, StoreError>
  /** Drops the tables of a generation nobody reads any more. */
  readonly drop: (generation: number, tables: ReadonlyArray<string>) => Effect.Effect<void, StoreError>
}

/**
 * The tag of the `Generations` service.
 *
 * @since 0.1.0
 * @category tags
 */
export const Generations: Context.Tag<Generations, Generations> = Context.GenericTag<Generations>(
  "effect-event-store/Generations"
)
