/**
 * The bank account example's own tests: its rules as Given/When/Then
 * specifications, its invariants as properties (and a buggy variant that the
 * properties catch, shrunk to the two commands that show the bug), and the
 * whole thing on every backend — old rows upcast, commands handled with
 * snapshots, and snapshot + tail equal to a full replay.
 */
import { describe, expect, layer } from "@effect/vitest"
import { Arbitrary, Chunk, Effect, FastCheck, Option, Stream } from "effect"
import { it } from "vitest"
import {
  AccountAlreadyOpened,
  AccountNotOpen,
  type AccountState,
  BalanceNotZero,
  BankAccount,
  BankCommand,
  decide,
  evolve,
  InsufficientFunds
} from "../../examples/bank-account/BankAccount.js"
import {
  AccountClosed,
  AccountOpened,
  BankEvents,
  MoneyDeposited,
  MoneyWithdrawn
} from "../../examples/bank-account/events.js"
import * as Aggregate from "../../src/aggregate/Aggregate.js"
import * as CommandHandler from "../../src/aggregate/CommandHandler.js"
import * as TypedEventStore from "../../src/events/TypedEventStore.js"
import { EventStore } from "../../src/EventStore.js"
import { DeciderSpecification, Properties } from "../../src/testing/index.js"
import { backends, checkProperty, uniqueStream } from "../events/backends.js"
import { startupTimeout } from "../support/wait.js"

const { given } = DeciderSpecification.make(BankAccount)
const opened = AccountOpened.make({ owner: "Ada", currency: "EUR" })

describe("bank account rules", () => {
  it("an account is opened once", () =>
    given([]).when({ _tag: "OpenAccount", owner: "Ada", currency: "EUR" }).then([opened]))

  it("an account cannot be opened twice", () =>
    given([opened]).when({ _tag: "OpenAccount", owner: "Bob", currency: "USD" }).thenFails(new AccountAlreadyOpened()))

  it("a deposit is credited", () =>
    given([opened]).when({ _tag: "Deposit", amount: 500 }).then([MoneyDeposited.make({ amount: 500 })]))

  it("no deposit before the account is opened", () =>
    given([]).when({ _tag: "Deposit", amount: 500 }).thenFails(new AccountNotOpen({ status: "Unopened" })))

  it("a withdrawal within the balance is paid out", () =>
    given([opened, MoneyDeposited.make({ amount: 500 })]).when({ _tag: "Withdraw", amount: 500 })
      .then([MoneyWithdrawn.make({ amount: 500 })]))

  it("a withdrawal beyond the balance is refused", () =>
    given([opened, MoneyDeposited.make({ amount: 500 })]).when({ _tag: "Withdraw", amount: 501 })
      .thenFails(new InsufficientFunds({ balance: 500, amount: 501 })))

  it("only an empty account can be closed", () =>
    given([opened, MoneyDeposited.make({ amount: 1 })]).when({ _tag: "CloseAccount" })
      .thenFails(new BalanceNotZero({ balance: 1 })))

  it("a closed account takes no more money", () =>
    given([opened, AccountClosed.make({})]).when({ _tag: "Deposit", amount: 1 })
      .thenFails(new AccountNotOpen({ status: "Closed" })))
})

const balanceNeverNegative = (state: AccountState) => state._tag !== "Open" || state.balance >= 0

describe("bank account invariants (property tests)", () => {
  it("no sequence of commands makes the balance negative", () =>
    Properties.invariant(BankAccount, { commands: BankCommand, invariant: balanceNeverNegative, numRuns: 200 }))

  it("a closed account stays closed, and only an empty account closes", () =>
    Properties.invariant(BankAccount, {
      commands: BankCommand,
      invariant: (state, { before }) => {
        if (before._tag === "Closed") expect(state._tag).toBe("Closed")
        if (before._tag === "Open" && state._tag === "Closed") expect(before.balance).toBe(0)
      },
      numRuns: 200
    }))

  it("an overdraft bug is caught, and shrunk to: open, then withdraw the smallest amount", async () => {
    const Overdraft = Aggregate.make({
      ...BankAccount,
      name: "Overdraft",
      // The bug: withdrawals are never checked against the balance.
      decide: (command: BankCommand, state: AccountState) =>
        command._tag === "Withdraw" && state._tag === "Open"
          ? Effect.succeed([MoneyWithdrawn.make({ amount: command.amount })])
          : decide(command, state)
    })
    const violation = await Promise.resolve(
      Properties.invariant(Overdraft, { commands: BankCommand, invariant: balanceNeverNegative, seed: 1 })
    ).then(() => undefined, (error: unknown) => error)
    expect(violation).toBeInstanceOf(Properties.InvariantViolation)
    const { commands, state } = (violation as Properties.InvariantViolation<AccountState, BankCommand>).details
    expect(commands.map((command) => command._tag)).toEqual(["OpenAccount", "Withdraw"])
    expect(commands[1]).toEqual({ _tag: "Withdraw", amount: 1 })
    expect(state).toMatchObject({ _tag: "Open", balance: -1 })
  })

  it("every bank event survives encode → JSON → decode", () => Properties.roundTrip(BankEvents))
})

const collect = <A, E, R>(stream: Stream.Stream<A, E, R>) =>
  Effect.map(Stream.runCollect(stream), Chunk.toReadonlyArray)

for (const backend of backends("bank")) {
  describe.skipIf(!backend.available)(`bank accounts on ${backend.name}`, () => {
    layer(backend.layer, { timeout: startupTimeout, excludeTestServices: true })((it) => {
      it.effect("an account opened in 2023 (version 1 events) is handled today", () =>
        Effect.gen(function*() {
          const store = yield* EventStore
          const streamId = uniqueStream("Account")
          yield* store.append(streamId, [
            { eventType: "AccountOpened", schemaVersion: 1, data: { owner: "Ada" } },
            { eventType: "MoneyDeposited", schemaVersion: 1, data: { amount: 12.34 } }
          ])
          const accounts = yield* CommandHandler.make(BankAccount)
          expect((yield* accounts.load(streamId)).state).toEqual({
            _tag: "Open",
            owner: "Ada",
            currency: "EUR",
            balance: 1234
          })
          const result = yield* accounts.handle(streamId, { _tag: "Withdraw", amount: 1234 })
          expect(result.state).toMatchObject({ balance: 0 })
          const bank = yield* TypedEventStore.make(BankEvents)
          const events = yield* collect(bank.readStream(streamId))
          expect(events.map(({ data, schemaVersion, type }) => ({ type, data, schemaVersion }))).toEqual([
            { type: "AccountOpened", data: { owner: "Ada", currency: "EUR" }, schemaVersion: 1 },
            { type: "MoneyDeposited", data: { amount: 1234 }, schemaVersion: 1 },
            { type: "MoneyWithdrawn", data: { amount: 1234 }, schemaVersion: 1 }
          ])
        }))

      it.effect("random command sequences: snapshot + tail equals a full replay, and the balance never goes negative", () =>
        checkProperty(
          FastCheck.array(Arbitrary.make(BankCommand), { maxLength: backend.name === "memory" ? 60 : 30 }),
          (commands) =>
            Effect.gen(function*() {
              const accounts = yield* CommandHandler.make(BankAccount)
              const streamId = uniqueStream("Account")
              for (const command of commands) yield* Effect.either(accounts.handle(streamId, command))
              const loaded = yield* accounts.load(streamId)
              const bank = yield* TypedEventStore.make(BankEvents)
              const events = yield* collect(bank.readStream(streamId)).pipe(
                Effect.catchTag("StreamNotFound", () => Effect.succeed([]))
              )
              expect(loaded.state).toEqual(events.reduce(evolve, BankAccount.initialState))
              expect(loaded.version).toBe(events.length)
              if (events.length >= 20) expect(loaded.snapshotVersion).toBeGreaterThanOrEqual(20)
              expect(balanceNeverNegative(loaded.state)).toBe(true)
              expect(Option.isSome(yield* (yield* EventStore).streamVersion(streamId))).toBe(events.length > 0)
            }),
          { numRuns: backend.name === "memory" ? 50 : 10 }
        ))
    })
  })
}
