/**
 * The bank account aggregate: commands, state, domain errors, and the decider
 * that ties them together.
 */
import { Effect, Schema } from "effect"
import { Aggregate } from "effect-event-store"
import {
  AccountClosed,
  AccountOpened,
  type BankEvent,
  BankEvents,
  Cents,
  Currency,
  MoneyDeposited,
  MoneyWithdrawn
} from "./events.js"

// --- commands ------------------------------------------------------------------------

export const OpenAccount = Schema.TaggedStruct("OpenAccount", { owner: Schema.NonEmptyString, currency: Currency })
export const Deposit = Schema.TaggedStruct("Deposit", { amount: Cents })
export const Withdraw = Schema.TaggedStruct("Withdraw", { amount: Cents })
export const CloseAccount = Schema.TaggedStruct("CloseAccount", {})

/** Also the source of random commands in the property tests (`Arbitrary.make`). */
export const BankCommand = Schema.Union(OpenAccount, Deposit, Withdraw, CloseAccount)
export type BankCommand = typeof BankCommand.Type

// --- state -----------------------------------------------------------------------------

/** The state, with a schema so that it can be snapshotted. */
export const AccountState = Schema.Union(
  Schema.TaggedStruct("Unopened", {}),
  Schema.TaggedStruct("Open", { owner: Schema.String, currency: Currency, balance: Schema.Int }),
  Schema.TaggedStruct("Closed", { owner: Schema.String, currency: Currency })
)
export type AccountState = typeof AccountState.Type

const unopened: AccountState = { _tag: "Unopened" }

// --- domain errors -----------------------------------------------------------------------

export class AccountAlreadyOpened extends Schema.TaggedError<AccountAlreadyOpened>()("AccountAlreadyOpened", {}) {}

export class AccountNotOpen extends Schema.TaggedError<AccountNotOpen>()("AccountNotOpen", {
  status: Schema.Literal("Unopened", "Closed")
}) {}

export class InsufficientFunds extends Schema.TaggedError<InsufficientFunds>()("InsufficientFunds", {
  balance: Schema.Int,
  amount: Schema.Int
}) {}

export class BalanceNotZero extends Schema.TaggedError<BalanceNotZero>()("BalanceNotZero", { balance: Schema.Int }) {}

export type BankError = AccountAlreadyOpened | AccountNotOpen | InsufficientFunds | BalanceNotZero

// --- the decider ------------------------------------------------------------------------------

export const evolve = (state: AccountState, event: BankEvent): AccountState => {
  switch (event.type) {
    case "AccountOpened":
      return { _tag: "Open", owner: event.data.owner, currency: event.data.currency, balance: 0 }
    case "MoneyDeposited":
      return state._tag === "Open" ? { ...state, balance: state.balance + event.data.amount } : state
    case "MoneyWithdrawn":
      return state._tag === "Open" ? { ...state, balance: state.balance - event.data.amount } : state
    case "AccountClosed":
      return state._tag === "Open" ? { _tag: "Closed", owner: state.owner, currency: state.currency } : state
  }
}

const open = (state: AccountState) =>
  state._tag === "Open" ? Effect.succeed(state) : Effect.fail(new AccountNotOpen({ status: state._tag }))

export const decide = (
  command: BankCommand,
  state: AccountState
): Effect.Effect<ReadonlyArray<BankEvent>, BankError> => {
  switch (command._tag) {
    case "OpenAccount":
      return state._tag === "Unopened"
        ? Effect.succeed([AccountOpened.make({ owner: command.owner, currency: command.currency })])
        : Effect.fail(new AccountAlreadyOpened())
    case "Deposit":
      return Effect.as(open(state), [MoneyDeposited.make({ amount: command.amount })])
    case "Withdraw":
      return Effect.flatMap(open(state), (account) =>
        command.amount > account.balance
          ? Effect.fail(new InsufficientFunds({ balance: account.balance, amount: command.amount }))
          : Effect.succeed([MoneyWithdrawn.make({ amount: command.amount })]))
    case "CloseAccount":
      return Effect.flatMap(open(state), (account) =>
        account.balance === 0
          ? Effect.succeed([AccountClosed.make({})])
          : Effect.fail(new BalanceNotZero({ balance: account.balance })))
  }
}

export const BankAccount = Aggregate.make({
  name: "BankAccount",
  events: BankEvents,
  initialState: unopened,
  evolve,
  decide,
  // A snapshot after every 20 events; bump schemaVersion whenever AccountState or evolve changes.
  snapshot: { schema: AccountState, schemaVersion: 1, every: 20 }
})
