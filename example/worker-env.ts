/**
 * What `npm run worker` lacks to take a job, one line for each missing or malformed variable,
 * or none. Checked at start: a worker without them would retry once a second forever (the AWS
 * SDK's `Region is missing`, a queue it cannot name) instead of saying what to set.
 */
export async function workerEnvProblems (): Promise<string[]> {
  const env = process.env
  const set = (name: string): boolean => (env[name] ?? '') !== ''
  if (set('REDIS_URL')) {
    return /^rediss?:\/\/\S+$/.test(env.REDIS_URL as string)
      ? []
      : [`REDIS_URL must be a redis:// or rediss:// URL (user and password in it), got ${JSON.stringify(env.REDIS_URL)}`]
  }
  if (!set('JOBS_QUEUE_URL') && !set('JOBS_TABLE')) {
    return ['no queue: set REDIS_URL (Redis or Valkey), or JOBS_QUEUE_URL and JOBS_TABLE (SQS and DynamoDB), to the queue and store the servers use']
  }
  const problems: string[] = []
  if (!set('JOBS_QUEUE_URL')) problems.push('JOBS_QUEUE_URL is not set: the URL of the SQS queue of the jobs (JOBS_TABLE is set)')
  if (!set('JOBS_TABLE')) problems.push('JOBS_TABLE is not set: the name of the DynamoDB table of the jobs (JOBS_QUEUE_URL is set)')
  if (await awsRegion() === undefined) problems.push('no AWS region: set AWS_REGION, or a region in the profile of your AWS config file')
  return problems
}

/** The region the AWS SDK would use (AWS_REGION, or the config file's profile), if any. */
async function awsRegion (): Promise<string | undefined> {
  const { SQSClient } = await import('@aws-sdk/client-sqs')
  const client = new SQSClient({})
  try {
    return await client.config.region()
  } catch {
    return undefined
  } finally {
    client.destroy()
  }
}
