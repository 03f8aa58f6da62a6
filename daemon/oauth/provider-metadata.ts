/** What the broker knows of a provider: its endpoints and what it promises (discovered or derived from a preset). */
export interface ProviderMetadata {
  readonly issuer: string;
  readonly authorizationEndpoint: string;
  readonly tokenEndpoint: string;
  readonly revocationEndpoint?: string;
  readonly endSessionEndpoint?: string;
  readonly userinfoEndpoint?: string;
  /** RFC 8628 §4 `device_authorization_endpoint`: the provider supports signing in without a browser here. */
  readonly deviceAuthorizationEndpoint?: string;
  readonly jwksUri: string;
  /** How to build the logout URL: OIDC RP-Initiated Logout, or Wristband's `/api/v1/logout`. */
  readonly logoutStyle: 'oidc' | 'wristband';
  /** RFC 9207 §3: the provider puts `iss` in every authorization response. */
  readonly authorizationResponseIssParameterSupported: boolean;
  /** `id_token_signing_alg_values_supported` (OIDC Discovery §3), when the provider listed it. */
  readonly idTokenSigningAlgValuesSupported?: readonly string[];
}
