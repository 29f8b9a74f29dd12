import { backendsFromEnv } from './backends.js'

/**
 * What the environment lacks for the backends it names, one line for each missing or malformed
 * variable, or none. `needsQueue`: the embedded default will not do (`npm run worker`, which
 * only runs jobs of a shared queue). Checked at start: a process without them would retry once a
 * second forever (the AWS SDK's `Region is missing`, a queue it cannot name) instead of saying
 * what to set.
 */
export async function backendEnvProblems (needsQueue: boolean): Promise<string[]> {
  const env = process.env
  const set = (name: string): boolean => (env[name] ?? '') !== ''
  if (set('REDIS_URL')) {
    return /^rediss?:\/\/\S+$/.test(env.REDIS_URL as string)
      ? []
      : [`REDIS_URL must be a redis:// or rediss:// URL (user and password in it), got ${JSON.stringify(env.REDIS_URL)}`]
  }
  if (!set('JOBS_QUEUE_URL') && !set('JOBS_TABLE')) {
    return needsQueue ? ['no queue: set REDIS_URL (Redis or Valkey), or JOBS_QUEUE_URL and JOBS_TABLE (SQS and DynamoDB), to the queue and store the servers use'] : []
  }
  const problems: string[] = []
  if (!set('JOBS_QUEUE_URL')) problems.push('JOBS_QUEUE_URL is not set: the URL of the SQS queue of the jobs (JOBS_TABLE is set)')
  if (!set('JOBS_TABLE')) problems.push('JOBS_TABLE is not set: the name of the DynamoDB table of the jobs (JOBS_QUEUE_URL is set)')
  if (await awsRegion() === undefined) problems.push('no AWS region: set AWS_REGION, or a region in the profile of your AWS config file')
  return problems
}

/** The backends the environment names, or, when it lacks what they need, a list of it on stderr and exit 1. */
export async function backendsOrExit (command: string, needsQueue: boolean): Promise<ReturnType<typeof backendsFromEnv>> {
  const problems = await backendEnvProblems(needsQueue)
  if (problems.length === 0) {
    try {
      return backendsFromEnv()
    } catch (error) {
      problems.push((error as Error).message)
    }
  }
  process.stderr.write(`${command} cannot start:\n${problems.map(problem => `- ${problem}\n`).join('')}`)
  process.exit(1)
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
