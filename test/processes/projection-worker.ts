/**
 * One process that runs the read-model projection of `readModel.ts` on the
 * PostgreSQL server, for the tests that SIGKILL it. It runs until it is
 * killed (or its projection fails, which ends it with a non-zero code).
 *
 *   node --import tsx --conditions=effect-event-store/source test/processes/projection-worker.ts \
 *     <schema> <advisory|lease> <worker name> [millis per event]
 *
 * It prints `STANDBY <pid>` / `ACTIVE <pid>` / `RESTARTING <pid> …` /
 * `FAILED <pid> …` whenever its runner state changes, and `HANDLE <position>`
 * as it starts on each event. The store's tables and the read model's must
 * exist (the test creates them), so a worker killed at start-up leaves no
 * half-run migration behind. It exits when its stdin closes, so that it does
 * not outlive a test process that died.
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import { PostgresCheckpointStore, PostgresEventStore } from "../../src/postgres/index.js"
import * as Projection from "../../src/Projection.js"
import { type LockKind, lockLayer, projection } from "./readModel.js"

const [schema, lock, worker, millis] = process.argv.slice(2)
if (schema === undefined || (lock !== "advisory" && lock !== "lease") || worker === undefined) {
  console.error("usage: projection-worker.ts <schema> <advisory|lease> <worker name> [millis per event]")
  process.exit(2)
}
const lockKind: LockKind = lock

process.stdin.on("close", () => process.exit(0))
process.stdin.resume()

const databaseUrl = process.env.DATABASE_URL ?? "postgres://root@127.0.0.1:5432/test"

const describeState = (state: Projection.RunnerState): string => {
  switch (state._tag) {
    case "Standby":
      return `STANDBY ${process.pid}`
    case "Running":
      return `ACTIVE ${process.pid}`
    case "Restarting":
      return `RESTARTING ${process.pid} ${state.reason}`
    case "Failed":
      return `FAILED ${process.pid} ${state.reason}`
  }
}

const program = Effect.gen(function*() {
  const runner = yield* Projection.start(projection({ schema, worker, millisPerEvent: Number(millis ?? 0) }))
  yield* runner.state.changes.pipe(
    Stream.changesWith((a, b) => a._tag === b._tag),
    Stream.runForEach((state) => Console.log(describeState(state))),
    Effect.forkScoped
  )
  return yield* runner.await
}).pipe(Effect.scoped)

const WorkerLive = Layer.mergeAll(
  PostgresEventStore.layer({ schema, migrate: false }),
  PostgresCheckpointStore.layer({ schema, migrate: false }),
  lockLayer(schema, lockKind)
).pipe(
  Layer.provideMerge(PgClient.layer({
    url: Redacted.make(databaseUrl),
    maxConnections: 5,
    applicationName: `projection-worker ${worker}`
  }))
)

program.pipe(Effect.provide(WorkerLive), NodeRuntime.runMain)
