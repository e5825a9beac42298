import { PGlite } from "@electric-sql/pglite"
let last = Date.now(), maxGap = 0
const timer = setInterval(() => { const now = Date.now(); maxGap = Math.max(maxGap, now - last); last = now }, 10)
for (let i = 0; i < 2; i++) {
  maxGap = 0; last = Date.now()
  const t = Date.now()
  const db = await PGlite.create()
  await db.query("select 1")
  console.log("create", Date.now() - t, "max event-loop gap", maxGap)
  await db.close()
}
clearInterval(timer)
