/**
 * The bank account's events, with the history of their shapes.
 *
 * (In your own code, import from "effect-event-store"; the example imports the
 * sources so that its tests run without a build.)
 */
import { Schema } from "effect"
import { EventRegistry, EventType } from "effect-event-store"

/** The currencies an account can hold. */
export const Currency = Schema.Literal("EUR", "USD", "GBP")

/** An amount of money in cents: one movement is at most 1,000,000.00. */
export const Cents = Schema.Int.pipe(Schema.between(1, 100_000_000))

// --- AccountOpened: version 1 had no currency (every account was in euros) ----------

const AccountOpenedV1 = Schema.Struct({ owner: Schema.String })
const AccountOpenedV2 = Schema.Struct({ owner: Schema.String, currency: Currency })

export const AccountOpened = EventType.make("AccountOpened", {
  version: 2,
  schema: AccountOpenedV2,
  upcasters: {
    // A function on the decoded old version, returning the next version's stored form.
    1: EventType.upcast(AccountOpenedV1, (v1): typeof AccountOpenedV2.Encoded => ({ ...v1, currency: "EUR" }))
  }
})

// --- MoneyDeposited: version 1 stored euros as a decimal number, version 2 cents ----

const MoneyDepositedV1 = Schema.Struct({ amount: Schema.Number })

export const MoneyDeposited = EventType.make("MoneyDeposited", {
  version: 2,
  schema: Schema.Struct({ amount: Cents }),
  upcasters: {
    // A Schema transformation from the old stored form to the new stored form.
    1: EventType.upcast(
      Schema.transform(MoneyDepositedV1, Schema.Struct({ amount: Schema.Number }), {
        strict: true,
        decode: ({ amount }) => ({ amount: Math.round(amount * 100) }),
        encode: ({ amount }) => ({ amount: amount / 100 })
      })
    )
  }
})

export const MoneyWithdrawn = EventType.make("MoneyWithdrawn", { schema: Schema.Struct({ amount: Cents }) })

export const AccountClosed = EventType.make("AccountClosed", { schema: Schema.Struct({}) })

/** Every event of a bank account, checked when this module loads. */
export const BankEvents = EventRegistry.make(AccountOpened, MoneyDeposited, MoneyWithdrawn, AccountClosed)

/** `{ type: "AccountOpened", data: { owner, currency } } | { type: "MoneyDeposited", … } | …` */
export type BankEvent = EventRegistry.Event<typeof BankEvents>
