/**
 * The projection workload: a projection catches up from a standing start over
 * the last events of the log into a SQL read model (readModel.ts), exactly
 * once, in batches of the store's default size; the clock runs until its
 * checkpoint is committed at the head. Then the read model's count of events
 * is kept beside the rate: it shows whether each event was applied once.
 */
import type { Contender, Session } from "./contenders/Contender.js"
import { measure, toMetrics } from "./measure.js"
import type { Metrics, Workload } from "./protocol.js"

export const run = async (
  contender: Contender,
  session: Session,
  workload: Extract<Workload, { kind: "projection" }>,
  tag: string
): Promise<Metrics> => {
  const tail = await contender.logTail(workload.events)
  const name = `rm_${tag.toLowerCase().replaceAll(/[^a-z0-9]/g, "_")}`
  const readModel = await session.readModel({ name, tail, batchSize: workload.batchSize })
  try {
    const measured = await measure(readModel.catchUp)
    // Checked, not enforced: a contender that skips or repeats events is reported as such (report.ts).
    const appliedEvents = await readModel.appliedEvents()
    return toMetrics(measured, { operations: workload.events, events: workload.events, appliedEvents })
  } finally {
    await readModel.drop()
  }
}
