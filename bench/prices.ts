/**
 * us-east-1 list prices in US dollars, each with where it comes from and when it was read. The
 * first five were read on AWS's pricing pages on 2026-11-27; the others on 2026-12-04, from AWS's
 * pricing pages and announcements as quoted in the sources named. Check them before relying on
 * the figures: they change.
 */
export const PRICES = {
  date: '2026-12-04',
  region: 'us-east-1',
  /** Lambda, Arm (the template's `arm64`), per GB-second (aws.amazon.com/lambda/pricing, 2026-11-27). */
  lambdaGbSecond: 0.0000133334,
  /** Lambda, per request (same page). */
  lambdaRequest: 0.20 / 1e6,
  /**
   * Lambda bills the INIT phase of on-demand ZIP functions on managed runtimes like the
   * invocation, since 2025-08-01 ("AWS Lambda standardizes billing for the INIT phase", AWS
   * Compute Blog, 2025-04-29: cold starts "typically occur in under 1% of invocations").
   */
  initBilledSince: '2025-08-01',
  /** SQS standard queue, per request; each 64 KB chunk of a request's payload is billed as one (aws.amazon.com/sqs/pricing, 2026-11-27). */
  sqsRequest: 0.40 / 1e6,
  sqsChunkKb: 64,
  /** DynamoDB on demand: a read unit is one strongly consistent read of up to 4 KB, a write unit one write of up to 1 KB; a failed conditional write is billed too (aws.amazon.com/dynamodb/pricing/on-demand, 2026-11-27). */
  dynamoReadUnit: 0.125 / 1e6,
  dynamoWriteUnit: 0.625 / 1e6,
  /** API Gateway REST API, per request, first 333 million a month (aws.amazon.com/api-gateway/pricing, 2026-11-27). */
  restApiRequest: 3.50 / 1e6,
  /** API Gateway HTTP API, per request, first 300 million a month; metered in 512 KB increments (same page, as quoted in AWS's whitepaper "Best Practices for Designing Amazon API Gateway Private APIs", Cost optimization). */
  httpApiRequest: 1.00 / 1e6,
  httpApiMeterKb: 512,
  /** CloudWatch Logs ingestion of Lambda logs (vended logs), first 10 TB a month; tiered since 2025-05-01, the first tier the former flat rate (aws.amazon.com/cloudwatch/pricing; Duckbill Group, "Lambda logs pricing", 2025). */
  logsIngestionGb: 0.50,
  /** S3 Standard, per PUT (COPY, POST, LIST) and per GET request (aws.amazon.com/s3/pricing). */
  s3Put: 0.005 / 1000,
  s3Get: 0.0004 / 1000,
  /** Data transfer out to the internet, per GB after the first 100 GB a month: the same from S3, API Gateway and Lambda (aws.amazon.com/ec2/pricing/on-demand, data transfer). */
  transferOutGb: 0.09
} as const
