/** What the broker knows of a provider: its endpoints and what it promises (discovered or derived from a preset). */
export interface ProviderMetadata {
  readonly issuer: string;
  readonly authorizationEndpoint: string;
  readonly tokenEndpoint: string;
  readonly revocationEndpoint?: string;
  readonly endSessionEndpoint?: string;
  readonly userinfoEndpoint?: string;
  /** RFC 8628 §4: the device authorization endpoint, when the provider offers the device flow. */
  readonly deviceAuthorizationEndpoint?: string;
  readonly jwksUri: string;
  /** How to build the logout URL: OIDC RP-Initiated Logout, or Wristband's `/api/v1/logout`. */
  readonly logoutStyle: 'oidc' | 'wristband';
  /** RFC 9207 §3: the provider puts `iss` in every authorization response. */
  readonly authorizationResponseIssParameterSupported: boolean;
  /** `id_token_signing_alg_values_supported` (OIDC Discovery §3), when the provider listed it. */
  readonly idTokenSigningAlgValuesSupported?: readonly string[];
  /**
   * Where the optional endpoints came from: the OpenID discovery document, the provider's RFC 8414 metadata,
   * the profile's config, or the preset. Absent for an endpoint the provider offers nowhere.
   */
  readonly endpointSources?: Readonly<Partial<Record<OptionalEndpoint, EndpointSource>>>;
  /** Problems met while completing the metadata (an RFC 8414 document with another issuer), for `doctor`. */
  readonly notes?: readonly string[];
}

/** The endpoints a provider may leave out of its OpenID discovery document. */
export type OptionalEndpoint = 'revocationEndpoint' | 'endSessionEndpoint' | 'deviceAuthorizationEndpoint';
export type EndpointSource = 'openid-configuration' | 'oauth-authorization-server' | 'config' | 'preset';
