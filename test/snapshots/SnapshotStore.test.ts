/**
 * The snapshot store on every backend: one snapshot per stream, the
 * replacement rule, the checks on input, and the typed load that ignores
 * snapshots of another schema version rather than mis-decoding them.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { describe, expect, layer } from "@effect/vitest"
import { Effect, Option, Schema } from "effect"
import { isCurrent, loadSnapshot, saveSnapshot, SnapshotStore } from "../../src/SnapshotStore.js"
import { backends, uniqueStream } from "../events/backends.js"
import { startupTimeout } from "../support/wait.js"

const Counter = Schema.Struct({ count: Schema.Int, since: Schema.Date })
const CounterV2 = Schema.Struct({ total: Schema.Int })

for (const backend of backends("snapshots")) {
  describe.skipIf(!backend.available)(`SnapshotStore on ${backend.name}`, () => {
    layer(backend.layer, { timeout: startupTimeout, excludeTestServices: true })((it) => {
      it.effect("loads what was saved, and none for a stream without a snapshot", () =>
        Effect.gen(function*() {
          const snapshots = yield* SnapshotStore
          const streamId = uniqueStream("Counter")
          expect(yield* snapshots.load(streamId)).toEqual(Option.none())
          yield* snapshots.save(streamId, {
            version: 3,
            firstVersion: 2,
            epoch: 4,
            schemaVersion: 1,
            state: { count: 3, tags: ["a", null] }
          })
          const loaded = Option.getOrThrow(yield* snapshots.load(streamId))
          expect(loaded).toMatchObject({
            streamId,
            version: 3,
            firstVersion: 2,
            epoch: 4,
            schemaVersion: 1,
            state: { count: 3, tags: ["a", null] }
          })
          expect(loaded.savedAt).toBeInstanceOf(Date)
        }))

      it.effect("delete removes the stream's snapshot; deleting where there is none changes nothing", () =>
        Effect.gen(function*() {
          const snapshots = yield* SnapshotStore
          const streamId = uniqueStream("Counter")
          yield* snapshots.delete(streamId)
          yield* snapshots.save(streamId, { version: 2, firstVersion: 1, epoch: 0, schemaVersion: 1, state: { n: 2 } })
          yield* snapshots.delete(streamId)
          expect(yield* snapshots.load(streamId)).toEqual(Option.none())
          expect(yield* Effect.flip(snapshots.delete(""))).toMatchObject({ _tag: "InvalidInput", field: "streamId" })
        }))

      it.effect("a newer snapshot replaces an older one (a later epoch, or the same epoch at a version as high); an older one of the same schema version does not", () =>
        Effect.gen(function*() {
          const snapshots = yield* SnapshotStore
          const streamId = uniqueStream("Counter")
          const stored = Effect.map(
            snapshots.load(streamId),
            Option.map((s) => [s.version, s.epoch, s.schemaVersion, s.state])
          )
          const save = (version: number, epoch: number, schemaVersion: number, state: string) =>
            snapshots.save(streamId, { version, firstVersion: 1, epoch, schemaVersion, state })
          yield* save(5, 0, 1, "five")
          yield* save(9, 0, 1, "nine")
          expect(yield* stored).toEqual(Option.some([9, 0, 1, "nine"]))
          yield* save(7, 0, 1, "seven, late")
          expect(yield* stored).toEqual(Option.some([9, 0, 1, "nine"]))
          yield* save(9, 0, 1, "nine again")
          expect(yield* stored).toEqual(Option.some([9, 0, 1, "nine again"]))
          yield* save(9, 1, 1, "nine, erased")
          expect(yield* stored).toEqual(Option.some([9, 1, 1, "nine, erased"]))
          yield* save(10, 0, 1, "ten, from before the erasure")
          expect(yield* stored).toEqual(Option.some([9, 1, 1, "nine, erased"]))
          // Another schema version always replaces, even at a lower stream version and epoch.
          yield* save(4, 0, 2, "four, new shape")
          expect(yield* stored).toEqual(Option.some([4, 0, 2, "four, new shape"]))
        }))

      it.effect("isCurrent: a snapshot is current while the stream shows the same first version at the same epoch and has reached it", () =>
        Effect.sync(() => {
          const snapshot = { version: 5, firstVersion: 3, epoch: 1 }
          expect(isCurrent(snapshot, { version: 8, firstVersion: 3, epoch: 1 })).toBe(true)
          expect(isCurrent(snapshot, { version: 5, firstVersion: 3, epoch: 1 })).toBe(true)
          expect(isCurrent(snapshot, { version: 8, firstVersion: 4, epoch: 1 })).toBe(false)
          expect(isCurrent(snapshot, { version: 8, firstVersion: 1, epoch: 1 })).toBe(false)
          expect(isCurrent(snapshot, { version: 8, firstVersion: 3, epoch: 2 })).toBe(false)
          expect(isCurrent(snapshot, { version: 4, firstVersion: 3, epoch: 1 })).toBe(false)
          expect(isCurrent(snapshot, { version: 0, firstVersion: 3, epoch: 1 })).toBe(false)
        }))

      it.effect("refuses bad input with InvalidInput, storing nothing", () =>
        Effect.gen(function*() {
          const snapshots = yield* SnapshotStore
          const streamId = uniqueStream("Counter")
          const refuse = (
            id: string,
            snapshot: { version: number; schemaVersion: number; state: unknown; firstVersion?: number; epoch?: number }
          ) => Effect.flip(snapshots.save(id, { firstVersion: 1, epoch: 0, ...snapshot }))
          expect(yield* refuse(streamId, { version: 0, schemaVersion: 1, state: {} }))
            .toMatchObject({ _tag: "InvalidInput", field: "snapshot.version" })
          expect(yield* refuse(streamId, { version: 1.5, schemaVersion: 1, state: {} }))
            .toMatchObject({ _tag: "InvalidInput", field: "snapshot.version" })
          expect(yield* refuse(streamId, { version: 1, schemaVersion: 0, state: {} }))
            .toMatchObject({ _tag: "InvalidInput", field: "snapshot.schemaVersion" })
          expect(yield* refuse(streamId, { version: 1, schemaVersion: 1, state: { n: 1n } }))
            .toMatchObject({
              _tag: "InvalidInput",
              field: "snapshot.state",
              reason: "snapshot.state.n is a bigint, which JSON cannot represent"
            })
          expect(yield* refuse(streamId, { version: 1, schemaVersion: 1, state: { at: new Date(0) } }))
            .toMatchObject({ _tag: "InvalidInput", field: "snapshot.state" })
          expect(yield* refuse(streamId, { version: 1, schemaVersion: 1, state: { balance: -0 } }))
            .toMatchObject({ _tag: "InvalidInput", field: "snapshot.state" })
          const throwing = Object.defineProperty({}, "balance", {
            enumerable: true,
            get() {
              throw new Error("not readable")
            }
          })
          expect(yield* refuse(streamId, { version: 1, schemaVersion: 1, state: throwing }))
            .toMatchObject({
              _tag: "InvalidInput",
              field: "snapshot.state",
              reason: "snapshot.state.balance could not be read: not readable"
            })
          const throwingVersion = Object.defineProperty(
            { schemaVersion: 1, state: {}, firstVersion: 1, epoch: 0 },
            "version",
            {
              enumerable: true,
              get() {
                throw new Error("no version")
              }
            }
          )
          expect(yield* Effect.flip(snapshots.save(streamId, throwingVersion as never)))
            .toMatchObject({ _tag: "InvalidInput", field: "snapshot" })
          expect(yield* refuse(streamId, { version: 3, firstVersion: 0, schemaVersion: 1, state: {} }))
            .toMatchObject({ _tag: "InvalidInput", field: "snapshot.firstVersion" })
          expect(yield* refuse(streamId, { version: 3, firstVersion: 5, schemaVersion: 1, state: {} }))
            .toMatchObject({ _tag: "InvalidInput", field: "snapshot.firstVersion" })
          expect(yield* refuse(streamId, { version: 3, epoch: -1, schemaVersion: 1, state: {} }))
            .toMatchObject({ _tag: "InvalidInput", field: "snapshot.epoch" })
          expect(yield* refuse("", { version: 1, schemaVersion: 1, state: {} }))
            .toMatchObject({ _tag: "InvalidInput", field: "streamId" })
          expect(yield* Effect.flip(snapshots.load("bad\u0000id"))).toMatchObject({
            _tag: "InvalidInput",
            field: "streamId"
          })
          expect(yield* snapshots.load(streamId)).toEqual(Option.none())
        }))

      it.effect("typed: state is encoded with its schema and decoded back", () =>
        Effect.gen(function*() {
          const streamId = uniqueStream("Counter")
          const state = { count: 12, since: new Date("2024-01-02T03:04:05.000Z") }
          yield* saveSnapshot(streamId, {
            schema: Counter,
            schemaVersion: 1,
            version: 12,
            firstVersion: 1,
            epoch: 0,
            state
          })
          expect(Option.getOrThrow(yield* (yield* SnapshotStore).load(streamId)).state)
            .toEqual({ count: 12, since: "2024-01-02T03:04:05.000Z" })
          expect(yield* loadSnapshot(streamId, { schema: Counter, schemaVersion: 1 }))
            .toEqual(Option.some({ state, version: 12, firstVersion: 1, epoch: 0, schemaVersion: 1 }))
        }))

      it.effect("typed: a snapshot of another schema version is ignored, then replaced by the next save", () =>
        Effect.gen(function*() {
          const streamId = uniqueStream("Counter")
          yield* saveSnapshot(streamId, {
            schema: Counter,
            schemaVersion: 1,
            version: 30,
            firstVersion: 1,
            epoch: 0,
            state: { count: 30, since: new Date(0) }
          })
          // Version 2 of the state has another shape: the old snapshot would not even decode, and is never tried.
          expect(yield* loadSnapshot(streamId, { schema: CounterV2, schemaVersion: 2 })).toEqual(Option.none())
          yield* saveSnapshot(streamId, {
            schema: CounterV2,
            schemaVersion: 2,
            version: 31,
            firstVersion: 1,
            epoch: 0,
            state: { total: 31 }
          })
          expect(yield* loadSnapshot(streamId, { schema: CounterV2, schemaVersion: 2 }))
            .toEqual(Option.some({ state: { total: 31 }, version: 31, firstVersion: 1, epoch: 0, schemaVersion: 2 }))
          expect(yield* loadSnapshot(streamId, { schema: Counter, schemaVersion: 1 })).toEqual(Option.none())
        }))

      it.effect("typed: a snapshot whose state no longer decodes is ignored, not mis-decoded", () =>
        Effect.gen(function*() {
          const streamId = uniqueStream("Counter")
          // The schema changed without a new schema version: the stored state does not fit it.
          yield* (yield* SnapshotStore).save(streamId, {
            version: 2,
            firstVersion: 1,
            epoch: 0,
            schemaVersion: 1,
            state: { count: "two" }
          })
          expect(yield* loadSnapshot(streamId, { schema: Counter, schemaVersion: 1 })).toEqual(Option.none())
        }))

      it.effect("typed: a state that does not encode is an InvalidInput", () =>
        Effect.gen(function*() {
          const streamId = uniqueStream("Counter")
          const error = yield* Effect.flip(
            saveSnapshot(streamId, {
              schema: Counter,
              schemaVersion: 1,
              version: 1,
              firstVersion: 1,
              epoch: 0,
              state: { count: 1.5, since: new Date(0) }
            })
          )
          expect(error).toMatchObject({ _tag: "InvalidInput", field: "snapshot.state" })
        }))

      const schema = backend.schema
      if (schema !== undefined) {
        it.effect("lives in the snapshots table of the store's schema, created by migration 0002", () =>
          Effect.gen(function*() {
            const sql = yield* Effect.serviceOption(SqlClient.SqlClient).pipe(Effect.map(Option.getOrThrow))
            const streamId = uniqueStream("Counter")
            yield* (yield* SnapshotStore).save(streamId, {
              version: 7,
              firstVersion: 1,
              epoch: 0,
              schemaVersion: 3,
              state: { n: 1 }
            })
            const rows = yield* sql<
              { readonly stream_version: string; readonly schema_version: number; readonly state: unknown }
            >`
              SELECT stream_version::text AS stream_version, schema_version, state
              FROM ${sql(`${schema}.snapshots`)} WHERE stream_id = ${streamId}`
            expect(rows).toEqual([{ stream_version: "7", schema_version: 3, state: { n: 1 } }])
            const migrations = yield* sql<{ readonly migration_id: number; readonly name: string }>`
              SELECT migration_id, name FROM ${sql(`${schema}.event_store_migrations`)} ORDER BY migration_id`
            expect(migrations.slice(0, 2)).toEqual([
              { migration_id: 1, name: "event_store" },
              { migration_id: 2, name: "snapshots" }
            ])
          }))

        it.effect("a snapshot saved before migration 0007 recorded what it summarises reads with firstVersion 0: never current", () =>
          Effect.gen(function*() {
            const sql = yield* Effect.serviceOption(SqlClient.SqlClient).pipe(Effect.map(Option.getOrThrow))
            const streamId = uniqueStream("Counter")
            yield* sql`INSERT INTO ${sql(`${schema}.snapshots`)} (stream_id, stream_version, schema_version, state)
              VALUES (${streamId}, 4, 1, '{"n": 4}'::jsonb)`
            const loaded = Option.getOrThrow(yield* (yield* SnapshotStore).load(streamId))
            expect(loaded).toMatchObject({ version: 4, firstVersion: 0, epoch: 0 })
            expect(isCurrent(loaded, { version: 4, firstVersion: 1, epoch: 0 })).toBe(false)
          }))
      }
    })
  })
}
