/**
 * This store: `PostgresEventStore.layer({ schema })` and
 * `PostgresCheckpointStore.layer` over `PgClient.layer` with a pool sized to
 * the workload's concurrency, called the way an Effect application calls it,
 * one `runPromise` per operation. Live subscriptions are `subscribe`, the
 * projection is `Projection.start` with exactly-once delivery and a handler
 * per event (one upsert per event, as the floor's). The `store-batch` variant
 * runs the projection workload only, with a batch handler: one multi-row
 * upsert per batch (a row per stream of the batch).
 *
 * The same adapter runs a *candidate*: a copy of `src/` with a change to
 * measure (`--candidate=<dir>`, the directory holding that copy's `src/` and
 * `migrations/`), side by side with the store as it is.
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqlClient from "@effect/sql/SqlClient"
import * as Cause from "effect/Cause"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import * as path from "node:path"
import { pathToFileURL } from "node:url"
import type * as CheckpointStoreModule from "../../src/CheckpointStore.js"
import type { EventData } from "../../src/EventData.js"
import type * as EventStoreModule from "../../src/EventStore.js"
import type * as PostgresModule from "../../src/postgres/index.js"
import type * as ProjectionModule from "../../src/Projection.js"
import type { RecordedEvent } from "../../src/RecordedEvent.js"
import type * as RunnerLockModule from "../../src/RunnerLock.js"
import { type Config, databaseUrl } from "../config.js"
import * as Database from "../database.js"
import { candidateVariable, type Workload } from "../protocol.js"
import * as ReadModel from "../readModel.js"
import { installedVersion, projectVersion } from "../versions.js"
import type { BenchEvent, ContenderFactory, Session } from "./Contender.js"

interface StoreModules {
  readonly EventStore: typeof EventStoreModule
  readonly CheckpointStore: typeof CheckpointStoreModule
  readonly Projection: typeof ProjectionModule
  readonly postgres: typeof PostgresModule
  readonly RunnerLock: typeof RunnerLockModule
}

const loadModules = async (root: URL): Promise<StoreModules> => {
  const load = (file: string) => import(new URL(file, root).href)
  return {
    EventStore: await load("src/EventStore.ts"),
    CheckpointStore: await load("src/CheckpointStore.ts"),
    Projection: await load("src/Projection.ts"),
    postgres: await load("src/postgres/index.ts"),
    RunnerLock: await load("src/RunnerLock.ts")
  }
}

const toEventData = (event: BenchEvent): EventData => ({
  eventId: event.id,
  eventType: event.type,
  data: event.data,
  metadata: event.metadata
})

const countChunks = <E>(stream: Stream.Stream<unknown, E>, onPage: (events: number) => void) =>
  Stream.runFold(Stream.chunks(stream), 0, (count, chunk) => {
    onPage(chunk.length)
    return count + chunk.length
  })

/** Fails with the fiber's failure, unless it only was interrupted. */
const orThrow = (exit: Exit.Exit<unknown, unknown>): void => {
  if (Exit.isFailure(exit) && !Exit.isInterrupted(exit)) throw new Error(Cause.pretty(exit.cause))
}

interface Variant {
  readonly id: "store" | "store-batch" | "candidate"
  readonly label: string
  readonly description: string
  /** How the projection's handler is written. */
  readonly handler: "per-event" | "batch"
}

const makeFrom = (root: URL, { handler, ...info }: Variant) => (schema: string, config: Config) => {
  let modules: Promise<StoreModules> | undefined

  const open = async (poolSize: number): Promise<Session> => {
    const { CheckpointStore, EventStore, Projection, postgres, RunnerLock } = await (modules ??= loadModules(root))
    const runtime = ManagedRuntime.make(
      Layer.mergeAll(
        postgres.PostgresEventStore.layer({
          schema,
          // The default, spelled out: the floor and Emmett poll at the same interval.
          subscriptions: { pollInterval: Duration.millis(config.pollIntervalMs) }
        }),
        postgres.PostgresCheckpointStore.layer({ schema, migrate: false }),
        // One process: the runner lock within it, as the store's projections had before it required one.
        RunnerLock.layerLocal
      ).pipe(
        Layer.provideMerge(PgClient.layer({
          url: Redacted.make(databaseUrl),
          maxConnections: poolSize,
          // Pools stay open between the runs of a workload, while the other contenders run.
          idleTimeout: "1 hour",
          applicationName: Database.applicationName
        }))
      )
    )
    const store = await runtime.runPromise(EventStore.EventStore)

    const follow: Session["follow"] = async (onEvent) => {
      const head = await runtime.runPromise(store.headPosition)
      const fiber = runtime.runFork(
        Stream.runForEach(
          store.subscribe({ from: head + 1n, batchSize: config.pageSize }),
          (event) => Effect.sync(() => onEvent(event.eventId))
        )
      )
      return { stop: async () => orThrow(await runtime.runPromise(Fiber.interrupt(fiber))) }
    }

    const readModel: Session["readModel"] = async ({ batchSize, name, tail }) => {
      const table = `${schema}.${Database.checked(name)}`
      const checkpointsTable = `${schema}.checkpoints`
      const withSql = <A>(f: (sql: SqlClient.SqlClient) => Effect.Effect<A, unknown>) =>
        runtime.runPromise(Effect.flatMap(SqlClient.SqlClient, f))
      await withSql((sql) => sql.unsafe(ReadModel.createTableText(table)))
      await runtime.runPromise(
        Effect.flatMap(CheckpointStore.CheckpointStore, (checkpoints) => checkpoints.save(name, tail.after))
      )

      // The handlers as an application writes them: the statement of readModel.ts per event,
      // or one statement per batch with a row per stream (a row cannot be upserted twice in one).
      const upsert = (event: RecordedEvent) =>
        Effect.flatMap(
          SqlClient.SqlClient,
          (sql) =>
            sql`INSERT INTO ${
              sql(table)
            } AS t (stream_id, events, last_position) VALUES (${event.streamId}, 1, ${event.position.toString()})
            ON CONFLICT (stream_id) DO UPDATE SET events = t.events + 1, last_position = EXCLUDED.last_position`
        )

      const upsertBatch = (events: ReadonlyArray<RecordedEvent>) =>
        Effect.flatMap(SqlClient.SqlClient, (sql) => {
          const streams = new Map<string, { events: number; last: bigint }>()
          for (const event of events) {
            const line = streams.get(event.streamId)
            if (line === undefined) streams.set(event.streamId, { events: 1, last: event.position })
            else streams.set(event.streamId, { events: line.events + 1, last: event.position })
          }
          const rows = Array.from(streams, ([streamId, line]) => ({
            stream_id: streamId,
            events: line.events,
            last_position: line.last.toString()
          }))
          return sql`INSERT INTO ${sql(table)} AS t ${sql.insert(rows)}
              ON CONFLICT (stream_id) DO UPDATE SET events = t.events + EXCLUDED.events, last_position = EXCLUDED.last_position`
        })

      const catchUp = Effect.scoped(Effect.gen(function*() {
        const checkpoints = yield* CheckpointStore.CheckpointStore
        // Set by the handler of the head's event, inside the batch's transaction:
        // from then on the checkpoint is polled until that transaction has committed.
        const handledHead = yield* Deferred.make<void>()
        const headHandled = Deferred.succeed(handledHead, undefined)
        const options = { name, batchSize, delivery: "exactly-once" } as const
        const runner = yield* Projection.start(
          handler === "batch"
            ? Projection.make({
              ...options,
              handleBatch: (events) =>
                events.some((event) => event.position >= tail.head)
                  ? Effect.zipRight(upsertBatch(events), headHandled)
                  : upsertBatch(events)
            })
            : Projection.make({
              ...options,
              handle: (event) =>
                event.position >= tail.head ? Effect.zipRight(upsert(event), headHandled) : upsert(event)
            })
        )
        const committed = checkpoints.load(name).pipe(
          Effect.repeat({
            schedule: Schedule.spaced("1 millis"),
            until: (position) => Option.getOrElse(position, () => 0n) >= tail.head
          })
        )
        yield* Effect.raceFirst(Effect.zipRight(Deferred.await(handledHead), committed), runner.await)
      }))

      return {
        catchUp: () => runtime.runPromise(catchUp),
        appliedEvents: async () => {
          const [row] = await withSql((sql) =>
            sql.unsafe<{ readonly events: string }>(ReadModel.appliedEventsText(table))
          )
          return Number(row?.events)
        },
        drop: async () => {
          await withSql((sql) =>
            Effect.zipRight(
              sql.unsafe(ReadModel.dropTableText(table)),
              sql`DELETE FROM ${sql(checkpointsTable)} WHERE name = ${name}`
            )
          )
        }
      }
    }

    return {
      append: (streamId, events, expectedVersion) =>
        runtime.runPromise(Effect.asVoid(store.append(streamId, events.map(toEventData), {
          expectedVersion: expectedVersion === 0 ? "no_stream" : expectedVersion
        }))),
      readStream: (streamId, pageSize) =>
        runtime.runPromise(countChunks(store.readStream(streamId, { batchSize: pageSize }), () => {})),
      readAll: (limit, pageSize, onPage) =>
        runtime.runPromise(countChunks(store.readAll({ limit, batchSize: pageSize }), onPage)),
      follow,
      readModel,
      close: () => runtime.dispose()
    }
  }

  return {
    info: {
      ...info,
      version: `${projectVersion()} (effect ${installedVersion("effect")}, @effect/sql-pg ${
        installedVersion("@effect/sql-pg")
      })`
    },
    // The layer migrates its own schema when it starts.
    prepare: async () => {
      const session = await open(1)
      await session.close()
    },
    open,
    bulkLoad: (events: number) => Database.bulkLoad(schema, events),
    logTail: (events: number) => Database.logTail(schema, events),
    cannotRun: (workload: Workload) =>
      handler === "batch" && workload.kind !== "projection"
        ? "the batch handler variant runs the projection workload only (the rest is the store's)"
        : undefined,
    scaleDown: () => undefined,
    dispose: () => Database.dropSchema(schema)
  }
}

const here = new URL("../../", import.meta.url)

/** The store in this working tree. */
export const make: ContenderFactory = makeFrom(here, {
  id: "store",
  label: "this store",
  description: "effect-event-store: PostgresEventStore.layer over PgClient.layer (@effect/sql-pg, node-postgres)",
  handler: "per-event"
})

/** The store in this working tree, its projection written with a batch handler. */
export const makeBatchHandler: ContenderFactory = makeFrom(here, {
  id: "store-batch",
  label: "this store, batch handler",
  description: "effect-event-store as `store`, the projection with `handleBatch`: one multi-row upsert per batch",
  handler: "batch"
})

/** The store from the copy in `$BENCH_CANDIDATE` (a directory with `src/` and `migrations/`). */
export const makeCandidate: ContenderFactory = (schema, config) => {
  const directory = process.env[candidateVariable]
  if (directory === undefined) {
    throw new Error(`Set ${candidateVariable} (run.ts --candidate=<dir>) to run the candidate`)
  }
  const root = pathToFileURL(path.resolve(directory) + path.sep)
  return makeFrom(root, {
    id: "candidate",
    label: "candidate",
    description: `this store built from ${directory}`,
    handler: "per-event"
  })(schema, config)
}
