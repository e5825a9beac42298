/**
 * The bank account, end to end:
 *
 *   npm run example:bank                          # embedded PostgreSQL (PGlite), in memory
 *   DATABASE_URL=postgres://… npm run example:bank
 *
 * - an account opened years ago is stored as version 1 of AccountOpened and read
 *   as version 2;
 * - commands go through a command handler, with correlation ids in the metadata;
 * - two tellers race on the same account: the loser's ConcurrencyError is
 *   retried from a fresh load, and both withdrawals land;
 * - a snapshot is saved every 20 events, and loading reads it plus the events after it.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Chunk, Console, Effect, Random, Stream } from "effect"
import { CommandHandler, Correlation, EventStore, TypedEventStore } from "effect-event-store"
import { StoreLive } from "../store.js"
import { BankAccount, type BankCommand } from "./BankAccount.js"
import { BankEvents } from "./events.js"

const program = Effect.gen(function*() {
  const store = yield* EventStore.EventStore
  const accounts = yield* CommandHandler.make(BankAccount)
  // A new account each run: a server keeps the accounts of the runs before.
  const account = `Account-ada-${(yield* Random.nextIntBetween(100_000, 999_999)).toString(36)}`

  // Written long ago, before accounts had a currency: version 1 of the event.
  yield* store.append(account, [{ eventType: "AccountOpened", schemaVersion: 1, data: { owner: "Ada" } }])

  const deposit = (amount: number): BankCommand => ({ _tag: "Deposit", amount })
  const withdraw = (amount: number): BankCommand => ({ _tag: "Withdraw", amount })

  // Correlation ids set once around a unit of work reach every event it appends.
  yield* accounts.handle(account, deposit(10_000)).pipe(
    Correlation.withCorrelation({ correlationId: "request-1", causationId: "command-1" })
  )

  // Two tellers at once: both load version 2, one append wins, the other is retried.
  const tellers = yield* Effect.all([
    accounts.handle(account, withdraw(2_500), { correlationId: "teller-1" }),
    accounts.handle(account, withdraw(1_500), { correlationId: "teller-2" })
  ], { concurrency: "unbounded" })
  yield* Console.log(`Both tellers paid out, at versions ${tellers.map((result) => result.version).join(" and ")}`)

  // A refused command is a typed domain error, and nothing is stored.
  const refused = yield* Effect.flip(accounts.handle(account, withdraw(1_000_000)))
  yield* Console.log(`Refused: ${refused._tag}`)

  for (let i = 0; i < 20; i++) yield* accounts.handle(account, deposit(100))

  const loaded = yield* accounts.load(account)
  yield* Console.log(
    `${account} at version ${loaded.version}: ${JSON.stringify(loaded.state)} ` +
      `(from the snapshot at version ${loaded.snapshotVersion} and ${
        loaded.version - loaded.snapshotVersion
      } events after it)`
  )

  // Every reader decodes through the registry: the version 1 event comes back as version 2.
  const bank = yield* TypedEventStore.make(BankEvents)
  const history = yield* Stream.runCollect(bank.readStream(account, { limit: 4 }))
  for (const event of Chunk.toReadonlyArray(history)) {
    yield* Console.log(
      `  v${event.streamVersion} ${event.type} ${
        JSON.stringify(event.data)
      } (stored as schema version ${event.schemaVersion}` +
        `${event.metadata.correlationId === undefined ? "" : `, correlation ${event.metadata.correlationId}`})`
    )
  }
})

program.pipe(Effect.provide(StoreLive("bank-account", { inMemory: true })), NodeRuntime.runMain)
