// Runs under the Lambda runtime's Node (22), beside the bundle and nothing but the AWS SDK:
// invokes the bundle's exports as Lambda would, for each invocation the test sends over IPC.
const { handler, worker } = await import(process.argv[2])
const exports = { handler, worker }
process.on('message', async ({ id, fn, event, ms }) => {
  const deadline = Date.now() + ms
  const context = { getRemainingTimeInMillis: () => deadline - Date.now(), awsRequestId: String(id), functionName: fn }
  try {
    process.send({ id, result: await exports[fn](event, context) })
  } catch (error) {
    process.send({ id, error: String(error?.stack ?? error) })
  }
})
process.send({ ready: process.version })
