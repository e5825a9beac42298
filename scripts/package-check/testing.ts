// The testing entry point: a Given/When/Then specification of a tiny decider.
import { Effect, Schema } from "effect"
import { Aggregate, EventRegistry, EventType } from "effect-event-store"
import { DeciderSpecification } from "effect-event-store/testing"

const Added = EventType.make("Added", { schema: Schema.Struct({ amount: Schema.Number }) })
const Counter = Aggregate.make({
  name: "Counter",
  events: EventRegistry.make(Added),
  initialState: 0,
  evolve: (state: number, event) => state + event.data.amount,
  decide: (command: { readonly add: number }) => Effect.succeed([Added.make({ amount: command.add })])
})

await DeciderSpecification.make(Counter).given([Added.make({ amount: 1 })]).when({ add: 2 }).then([
  Added.make({ amount: 2 })
])
console.log("testing: ok")
