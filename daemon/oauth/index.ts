/** The provider side of the broker: metadata, the authorization request and response, tokens, logout. */
export { createHttpClient, backoffDelay, type HttpClient, type HttpClientOptions, type HttpRetryOptions } from './http.js';
export {
  discover,
  parseDiscoveryDocument,
  resolveProviderMetadata,
  clearProviderMetadataCache,
  type ProviderMetadata,
  type ProviderSource,
  type ResolveOptions,
} from './metadata.js';
export { wristbandMetadata, wristbandTenantHost, WRISTBAND_PATHS, type WristbandConfig, type WristbandMetadataOptions } from './wristband.js';
export { checkHttpsUrl, checkRedirectUri, isLoopbackHost, loopbackRedirect } from './url-rules.js';
export { generateCodeVerifier, calculateCodeChallenge } from './pkce.js';
export {
  createAuthorizationRequest,
  RESERVED_AUTHORIZATION_PARAMS,
  type AuthorizationRequest,
  type AuthorizationRequestOptions,
} from './authorization-request.js';
export {
  parseAuthorizationResponse,
  extractState,
  AuthorizationResponseError,
  type AuthorizationResponse,
  type ExpectedAuthorizationResponse,
} from './callback.js';
export {
  exchangeAuthorizationCode,
  refreshAccessToken,
  parseTokenResponse,
  isLoginRequired,
  DEFAULT_EXPIRES_IN_SECONDS,
  type TokenSet,
  type ExchangeAuthorizationCodeOptions,
  type RefreshAccessTokenOptions,
} from './token-endpoint.js';
export { ProviderEndpointError, TokenEndpointError, type FailureKind, type ProviderErrorDetails } from './provider-error.js';
export { revokeToken, NO_REVOCATION_ENDPOINT, type RevokeTokenOptions, type RevocationResult } from './revocation.js';
export { authenticateClient, clientAuthentication, type ClientAuthentication } from './client-auth.js';
export { validateIdToken, clearJwksCache, ID_TOKEN_ALGORITHMS, type IdTokenClaims, type ValidateIdTokenOptions } from './id-token.js';
export { preloadProviderModules } from './preload.js';
export { buildLogoutUrl, type LogoutUrlOptions } from './logout.js';
export { exchangeDeviceCode, DEVICE_CODE_GRANT_TYPE, type ExchangeDeviceCodeOptions } from './token-endpoint.js';
export {
  requestDeviceAuthorization,
  parseDeviceAuthorizationResponse,
  pollDeviceTokens,
  deviceAuthorizationEndpoint,
  DEFAULT_POLL_INTERVAL_SECONDS,
  SLOW_DOWN_INCREMENT_SECONDS,
  type DeviceAuthorization,
  type PollState,
} from './device-authorization.js';
