// The largest values a job's timing may take: the options refuse larger ones at registration,
// and a worker refuses a queue message that names larger ones.

// SQS keeps a received message hidden for at most 12 hours from its receipt, however often the
// worker extends it ("Amazon SQS visibility timeout", SQS Developer Guide): a job, with its
// longest lease and the writing of its result, must end within that, or its message reappears
// and a second worker starts it while the first still runs.
export const MAX_LEASE_SECONDS = 900
export const MAX_TIMEOUT_SECONDS = 43_200 - MAX_LEASE_SECONDS - 300

export const MAX_ATTEMPTS = 100

/** A result is kept at most a year (and a day). */
export const MAX_RESULT_TTL_SECONDS = 366 * 86_400
