import { BackendError } from './errors.js'

interface SdkClient {
  send: (command: any, options?: any) => Promise<unknown>
  destroy: () => void
}

/**
 * An AWS SDK client loaded on first use (the SDK costs nothing to apps that never use the
 * adapter), and the one place where SDK errors become `FST_LONG_RUNNING_BACKEND`, the SDK's own
 * error kept as `cause`. A client passed in by the user stays the user's: it is not destroyed.
 */
export class LazyAwsClient<Sdk, Client extends SdkClient> {
  readonly #service: string
  readonly #importSdk: () => Promise<Sdk>
  readonly #create: (sdk: Sdk) => Client
  readonly #owned: boolean
  #client: Client | undefined
  #sdk: Sdk | undefined

  constructor (service: string, importSdk: () => Promise<Sdk>, create: (sdk: Sdk) => Client, client: Client | undefined) {
    this.#service = service
    this.#importSdk = importSdk
    this.#create = create
    this.#client = client
    this.#owned = client === undefined
  }

  /** The SDK module, for its command classes. */
  async sdk (): Promise<Sdk> {
    this.#sdk ??= await this.#importSdk()
    this.#client ??= this.#create(this.#sdk)
    return this.#sdk
  }

  /** The client itself, for what takes a client rather than a command (S3's URL presigner). */
  async client (): Promise<Client> {
    await this.sdk()
    return this.#client as Client
  }

  /** Sends a command built from {@link sdk}; typed loosely here, once, for that reason. */
  async send (command: object, options?: { abortSignal?: AbortSignal }): Promise<any> {
    await this.sdk()
    try {
      return await (this.#client as Client).send(command, options)
    } catch (error) {
      throw new BackendError(`${this.#service} ${command.constructor.name}: ${(error as Error).name}`, { cause: error })
    }
  }

  close (): void {
    if (this.#owned) this.#client?.destroy()
  }
}
