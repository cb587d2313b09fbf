/**
 * Sirocco: SMTP servers the Tornado way. Subclass {@link RequestHandler}, hand it to an
 * {@link Application} with your settings, and `listen`.
 *
 * @example
 * ```ts
 * import { Application, RequestHandler } from 'sirocco';
 *
 * class Inbound extends RequestHandler {
 *   override async data() { console.log(this.request.mailFrom, this.request.body.length); }
 * }
 * await new Application(Inbound, { hostname: 'mx.example.com' }).listen(2525);
 * ```
 * @module
 */
export { Application, type AnyApplication } from './application.js';
export {
  RequestHandler,
  type HandlerClass,
  type HandlerService,
  type AnyHandlerClass,
  type AnyServedApplication,
  type ServedApplication,
  type HandlerTransaction,
  type HandlerStatics,
} from './app/request-handler.js';
export { Services, serviceKey, type ServiceKey } from './app/services.js';
export { SMTPRequest, MessageHeaders, type Envelope } from './app/request.js';
export { MessageStream, MessageTooBigError, MessageAbortedError } from './app/message-stream.js';
export { BodyBudget } from './app/body-budget.js';
export { MemoryLimitStore, type LimitStore } from './app/limit-store.js';
export { RedisLimitStore, type RedisLimitStoreOptions } from './net/redis-limit-store.js';
export type { MessageReplies } from './app/transaction.js';
export type { MailDsn, RcptDsn, NotifyCondition, OriginalRecipient } from './protocol/dsn.js';
export type { SessionInfo, TLSInfo, Peer, Forwarded } from './protocol/session-info.js';
export type { ProxyInfo, ProxySsl } from './protocol/proxy-header.js';
export { SettingsError, settingsSchema, type SettingsProblem } from './app/settings-schema.js';
export { ConnectionKitSettings } from './app/kit-settings.js';
export {
  ApplicationSettings,
  type SettingsInput,
  type TLSSettings,
  type SNIResolver,
  type ConnectHook,
  type HeloHook,
} from './app/settings.js';
export { SMTPServer, type StartOptions } from './server/smtp-server.js';
export { taskId } from './server/cluster.js';
export { DropConnection } from './app/errors.js';
export { SMTPError, formatReply, type Reply, type EnhancedCode, type SMTPErrorOptions } from './protocol/reply.js';
export { REPLIES } from './protocol/replies.js';
export type { BareLineEndingPolicy } from './protocol/data-decoder.js';
export type { EsmtpParams, BodyType } from './protocol/command.js';
export {
  scramSecret,
  SASL_MECHANISMS,
  type AuthCredentials,
  type PasswordCredentials,
  type TokenCredentials,
  type CramMd5Credentials,
  type ScramCredentials,
  type AuthDecision,
  type ScramSecret,
  type SaslMechanism,
} from './protocol/sasl.js';
export type { Authenticator } from './app/settings.js';
export { Sink } from './handlers/sink.js';
export { Debugging, DebuggingSettings } from './handlers/debugging.js';
export { Maildir, MaildirSettings, recipientFolder } from './handlers/maildir.js';
export { traceHeaders } from './handlers/trace.js';
export type { UnixSocketOptions } from './net/listeners.js';
export { canonicalAddress, mailboxFolder } from './storage/folder-names.js';
export type { AuthResult, MessageAuthentication } from './auth/verify.js';
