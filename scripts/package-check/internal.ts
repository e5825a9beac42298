// What is not part of the API cannot be imported: "./internal/*" is null in `exports`.
export {}
const specifier: string = "effect-event-store/internal/migrations.js"
try {
  await import(specifier)
  throw new Error("effect-event-store/internal/* could be imported")
} catch (error) {
  if ((error as { code?: unknown }).code !== "ERR_PACKAGE_PATH_NOT_EXPORTED") throw error
  console.log("internal: not exported (ok)")
}
