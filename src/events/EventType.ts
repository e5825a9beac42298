/**
 * Declaring an event type: its name, its current schema version with its
 * `Schema`, and the explicit chain of upcasters that turns the data stored at
 * every older version into the next version, up to the current one.
 *
 * Event types are gathered in an `EventRegistry`, which checks every chain
 * when it is built.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { EventType } from "effect-event-store"
 *
 * const AccountOpenedV1 = Schema.Struct({ owner: Schema.String })
 * const AccountOpenedV2 = Schema.Struct({ owner: Schema.String, currency: Schema.String })
 *
 * const AccountOpened = EventType.make("AccountOpened", {
 *   version: 2,
 *   schema: AccountOpenedV2,
 *   upcasters: {
 *     // version 1 → version 2, to the next version's stored form
 *     1: EventType.upcast(AccountOpenedV1, (v1): typeof AccountOpenedV2.Encoded => ({ ...v1, currency: "EUR" }))
 *   }
 * })
 *
 * // Events are always made (and appended) in the current version's shape.
 * const opened = AccountOpened.make({ owner: "Ada", currency: "GBP" })
 * assert.deepStrictEqual(opened, { type: "AccountOpened", data: { owner: "Ada", currency: "GBP" } })
 * ```
 *
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"

/**
 * @since 0.1.0
 * @category symbols
 */
export const TypeId: unique symbol = Symbol.for("effect-event-store/EventType")

/**
 * @since 0.1.0
 * @category symbols
 */
export type TypeId = typeof TypeId

/**
 * An event as domain code sees it: the name of its type and its data in the
 * current shape. What deciders return, what `evolve` folds and what the typed
 * store appends and reads.
 *
 * @since 0.1.0
 * @category models
 */
export interface Event<Name extends string = string, A = unknown> {
  readonly type: Name
  readonly data: A
}

/**
 * One step of an upcaster chain: how the data stored at version `n` becomes
 * the data of version `n + 1`, as that version would have stored it.
 *
 * - `Function`: the stored data is decoded with `schema` (the old version's
 *   schema), and `upcast` maps the decoded value to the next version's stored
 *   (encoded) form.
 * - `Schema`: `schema` is a transformation whose encoded side is version `n`'s
 *   stored form and whose decoded side is version `n + 1`'s stored form.
 *
 * Whatever the last step produces is decoded with the event type's current
 * schema, so a faulty upcaster surfaces as an `EventDecodeError`, never as a
 * wrongly shaped event.
 *
 * @since 0.1.0
 * @category models
 */
export type Upcaster =
  | {
    readonly _tag: "Function"
    readonly schema: Schema.Schema.AnyNoContext
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the decoded type of `schema`, whatever it is
    readonly upcast: (data: any) => unknown
  }
  | {
    readonly _tag: "Schema"
    readonly schema: Schema.Schema.AnyNoContext
  }

/**
 * An event type. `version` is the current schema version: events are always
 * appended in this version's shape, and stored events of older versions are
 * upcast to it on every read.
 *
 * @since 0.1.0
 * @category models
 */
export interface EventType<Name extends string, A, I = A> {
  readonly [TypeId]: TypeId
  readonly name: Name
  readonly version: number
  readonly schema: Schema.Schema<A, I, never>
  /** Keyed by the version each upcaster starts from: `1` turns version 1 into version 2. */
  readonly upcasters: Readonly<Record<number, Upcaster>>
  /** The event of this type with `data`. */
  readonly make: (data: A) => Event<Name, A>
  /** Whether `event` is of this type. */
  readonly is: <E extends Event>(event: E) => event is Extract<E, Event<Name, unknown>>
}

/**
 * Any event type.
 *
 * @since 0.1.0
 * @category models
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- EventType is invariant in A and I
export type Any = EventType<string, any, any>

/**
 * The event of an event type (a union of events for a union of types).
 *
 * @since 0.1.0
 * @category type-level
 */
export type EventOf<T> = T extends EventType<infer Name, infer A, infer _I> ? Event<Name, A> : never

/**
 * @since 0.1.0
 * @category models
 */
export interface EventTypeOptions<A, I> {
  /** The schema of the current version. */
  readonly schema: Schema.Schema<A, I, never>
  /** The current schema version (default 1). */
  readonly version?: number | undefined
  /** One upcaster from every older version, keyed by the version it starts from. */
  readonly upcasters?: Readonly<Record<number, Upcaster>> | undefined
}

/**
 * Declares an event type. The declaration is checked (names, versions, gaps
 * in the upcaster chain) when it is put in an `EventRegistry`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <const Name extends string, A, I>(
  name: Name,
  options: EventTypeOptions<A, I>
): EventType<Name, A, I> => ({
  [TypeId]: TypeId,
  name,
  version: options.version ?? 1,
  schema: options.schema,
  upcasters: options.upcasters ?? {},
  make: (data) => ({ type: name, data }),
  is: <E extends Event>(event: E): event is Extract<E, Event<Name, unknown>> => event.type === name
})

/**
 * An upcaster from one version to the next.
 *
 * - `upcast(OldSchema, (old) => next)`: decodes the stored data with the old
 *   version's schema and maps it to the next version's stored form.
 * - `upcast(transformation)`: a `Schema` from the old version's stored form to
 *   the next version's stored form (for example `Schema.transform(V1,
 *   Schema.encodedSchema(V2), …)`).
 *
 * Annotate the function's return type with the next version's encoded type
 * (`(v1): typeof V2.Encoded => …`) to have the compiler check it; the current
 * schema checks it at run time in any case.
 *
 * @since 0.1.0
 * @category constructors
 */
export const upcast: {
  <A, I>(schema: Schema.Schema<A, I, never>, upcast: (data: A) => unknown): Upcaster
  <A, I>(transformation: Schema.Schema<A, I, never>): Upcaster
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the overloads tie `upcast` to `schema`
} = (schema: Schema.Schema.AnyNoContext, upcast?: (data: any) => unknown): Upcaster =>
  upcast === undefined ? { _tag: "Schema", schema } : { _tag: "Function", schema, upcast }

/**
 * @since 0.1.0
 * @category guards
 */
export const isEventType = (u: unknown): u is Any => typeof u === "object" && u !== null && TypeId in u

/**
 * @since 0.1.0
 * @category guards
 */
export const isUpcaster = (u: unknown): u is Upcaster =>
  typeof u === "object" && u !== null && "_tag" in u && "schema" in u && Schema.isSchema(u.schema) &&
  (u._tag === "Schema" || (u._tag === "Function" && "upcast" in u && typeof u.upcast === "function"))
