/**
 * A typed view of the `EventStore` for the events of one registry: `append`
 * takes events in their current shape and encodes them with the current
 * schema (storing its version); reads (`readStream`, `readAll`, `subscribe`)
 * decode every event through the registry's upcaster chain
 * (`EventRegistry.decode`), so code only ever sees the current shape. Built
 * on the `EventStore` service alone, so it works on every backend.
 *
 * @example
 * ```ts
 * import { Chunk, Effect, Schema, Stream } from "effect"
 * import { EventRegistry, EventType, TypedEventStore } from "effect-event-store"
 * import { MemoryEventStore } from "effect-event-store/memory"
 *
 * const MoneyDeposited = EventType.make("MoneyDeposited", { schema: Schema.Struct({ amount: Schema.Int }) })
 * const BankEvents = EventRegistry.make(MoneyDeposited)
 *
 * const program = Effect.gen(function*() {
 *   const bank = yield* TypedEventStore.make(BankEvents)
 *   yield* bank.append("Account-1", [MoneyDeposited.make({ amount: 100 })])
 *   const events = yield* Stream.runCollect(bank.readStream("Account-1"))
 *   return Chunk.toReadonlyArray(events).map((event) => event.data.amount)
 * })
 *
 * Effect.runPromise(program.pipe(Effect.provide(MemoryEventStore.layer()))).then((amounts) =>
 *   assert.deepStrictEqual(amounts, [100])
 * )
 * ```
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Stream from "effect/Stream"
import type { EventDecodeError, InvalidInput, StoreError, StreamDeleted, StreamNotFound } from "../Errors.js"
import {
  type AppendError,
  type AppendOptions,
  type AppendResult,
  type EventFilter,
  EventStore,
  type ReadAllOptions,
  type ReadStreamOptions,
  type StreamView,
  type SubscribeOptions
} from "../EventStore.js"
import * as EventRegistry from "./EventRegistry.js"
import type * as EventType from "./EventType.js"

/**
 * A `StreamView` whose events come in their current shape.
 *
 * @since 0.1.0
 * @category models
 */
export interface TypedStreamView<E extends EventType.Event, P extends EventRegistry.UnknownEventPolicy = "fail">
  extends Omit<StreamView, "events">
{
  readonly events: (
    options?: ReadStreamOptions
  ) => Stream.Stream<EventRegistry.Decoded<E, P>, InvalidInput | StoreError | EventDecodeError>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface TypedEventStore<E extends EventType.Event, P extends EventRegistry.UnknownEventPolicy = "fail"> {
  readonly registry: EventRegistry.EventRegistry<E>
  readonly unknownEvents: P
  /**
   * Encodes the events with their current schemas and appends them, all or
   * nothing. An event that does not encode is an `InvalidInput` naming it, and
   * nothing is stored.
   */
  readonly append: (
    streamId: string,
    events: ReadonlyArray<EventRegistry.Appendable<E>>,
    options?: AppendOptions
  ) => Effect.Effect<AppendResult, AppendError>
  /** The stream's events in their current shape. */
  readonly readStream: (
    streamId: string,
    options?: ReadStreamOptions
  ) => Stream.Stream<
    EventRegistry.Decoded<E, P>,
    StreamNotFound | StreamDeleted | InvalidInput | StoreError | EventDecodeError
  >
  /** The stream's view (`EventStore.viewStream`), its events in their current shape. */
  readonly viewStream: (
    streamId: string
  ) => Effect.Effect<TypedStreamView<E, P>, StreamDeleted | InvalidInput | StoreError>
  /**
   * The global log's events in their current shape. Under the `"skip"` policy
   * only the registry's event types are read from the store.
   */
  readonly readAll: (
    options?: ReadAllOptions
  ) => Stream.Stream<EventRegistry.Decoded<E, P>, InvalidInput | StoreError | EventDecodeError>
  /**
   * The live subscription's events in their current shape (caught up, then
   * following). Under `"skip"`, only the registry's event types are read.
   */
  readonly subscribe: (
    options?: SubscribeOptions
  ) => Stream.Stream<EventRegistry.Decoded<E, P>, InvalidInput | StoreError | EventDecodeError>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface TypedEventStoreOptions<P extends EventRegistry.UnknownEventPolicy> {
  /** What reads do with events whose type is not in the registry (default `"fail"`). */
  readonly unknownEvents?: P | undefined
}

/**
 * The typed view of the `EventStore` in context.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <E extends EventType.Event, P extends EventRegistry.UnknownEventPolicy = "fail">(
  registry: EventRegistry.EventRegistry<E>,
  options?: TypedEventStoreOptions<P>
): Effect.Effect<TypedEventStore<E, P>, never, EventStore> =>
  Effect.map(EventStore, (store) => {
    const unknownEvents = (options?.unknownEvents ?? "fail") as P
    const decode = EventRegistry.decodeStream(registry, unknownEvents)

    const append = (
      streamId: string,
      events: ReadonlyArray<EventRegistry.Appendable<E>>,
      appendOptions?: AppendOptions
    ) =>
      Effect.forEach(events, (event, i) => EventRegistry.encode(registry, event, `events[${i}]`)).pipe(
        Effect.flatMap((encoded) => store.append(streamId, encoded, appendOptions))
      )

    // Under "skip", events of other types would be read only to be dropped:
    // ask the store for the registry's types alone (the same result, less I/O).
    const narrow = <O extends { readonly filter?: EventFilter | undefined }>(options: O | undefined): O | undefined => {
      if (unknownEvents !== "skip") return options
      const wanted = options?.filter?.eventTypes
      const eventTypes = wanted === undefined ? registry.names : wanted.filter((name) => registry.types.has(name))
      if (eventTypes.length === 0) return options
      return { ...options as O, filter: { ...options?.filter, eventTypes } }
    }

    return {
      registry,
      unknownEvents,
      append,
      readStream: (streamId, readOptions) => decode(store.readStream(streamId, readOptions)),
      viewStream: (streamId) =>
        Effect.map(store.viewStream(streamId), (view) => ({
          version: view.version,
          firstVersion: view.firstVersion,
          epoch: view.epoch,
          events: (readOptions) => decode(view.events(readOptions))
        })),
      readAll: (readOptions) => decode(store.readAll(narrow(readOptions))),
      subscribe: (subscribeOptions) => decode(store.subscribe(narrow(subscribeOptions)))
    }
  })

/**
 * A `Context` tag for a typed store, with its layer:
 *
 * ```ts
 * class BankStore extends TypedEventStore.Tag<BankStore>()("app/BankStore", BankEvents) {}
 * // BankStore.layer: Layer<BankStore, never, EventStore>
 * ```
 *
 * @since 0.1.0
 * @category tags
 */
export const Tag =
  <Self>(): <const Id extends string, E extends EventType.Event, P extends EventRegistry.UnknownEventPolicy = "fail">(
    id: Id,
    registry: EventRegistry.EventRegistry<E>,
    options?: TypedEventStoreOptions<P>
  ) => TagClass<Self, Id, E, P> =>
  <const Id extends string, E extends EventType.Event, P extends EventRegistry.UnknownEventPolicy = "fail">(
    id: Id,
    registry: EventRegistry.EventRegistry<E>,
    options?: TypedEventStoreOptions<P>
  ): TagClass<Self, Id, E, P> => {
    const tag = Context.Tag(id)<Self, TypedEventStore<E, P>>()
    return Object.assign(tag, { layer: Layer.effect(tag, make(registry, options)) })
  }

/**
 * @since 0.1.0
 * @category tags
 */
export interface TagClass<
  Self,
  Id extends string,
  E extends EventType.Event,
  P extends EventRegistry.UnknownEventPolicy
> extends Context.TagClass<Self, Id, TypedEventStore<E, P>> {
  /** The typed store over the `EventStore` in context. */
  readonly layer: Layer.Layer<Self, never, EventStore>
}
